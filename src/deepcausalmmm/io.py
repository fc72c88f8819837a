"""Save and load fitted models as one safetensors file (no pickle).

The file holds tensors (network weights, scalers, the fitted panel) and a
string metadata map: format name and version, package version, the config as
JSON, channel/control/region names, dates and training history. Writing goes
to a temporary file that replaces the target only when complete.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from . import __version__
from .analysis.calibration import parse_lift_tests
from .components.graph import ChannelGraph
from .config import build_config
from .constants import SAVE_FORMAT, SAVE_FORMAT_VERSION
from .data.panel import Panel
from .data.scaling import PanelScaler
from .exceptions import ConfigError, DataError, ModelFileError
from .files import atomic_path, check_target
from .training import History

__all__ = ["save_model", "load_model"]


def _label(x: Any) -> Any:
    return x.item() if isinstance(x, np.generic) else x


def _dates_meta(dates: pd.Index) -> dict[str, Any]:
    if isinstance(dates, pd.DatetimeIndex):
        return {"kind": "datetime", "values": [d.isoformat() for d in dates]}
    return {"kind": "int", "values": [int(d) for d in dates]}


def _dates_from_meta(meta: dict[str, Any]) -> pd.Index:
    if meta["kind"] == "datetime":
        return pd.DatetimeIndex(pd.to_datetime(meta["values"])).as_unit("ns")
    return pd.Index(np.asarray(meta["values"], dtype=np.int64))


def save_model(model: Any, path: Path) -> Path:
    """Write ``model`` (a fitted DeepCausalMMM) to ``path`` atomically."""
    path = check_target(Path(path), "`path`", "model.safetensors")
    p: Panel = model.panel_
    tensors: dict[str, torch.Tensor] = {
        f"net.{k}": v.detach().cpu().contiguous() for k, v in model.net_.state_dict().items()
    }
    arrays = {
        "panel.media": p.media,
        "panel.control_values": p.control_values,
        "panel.y": p.y,
        "panel.observed": p.observed.astype(np.uint8),
        "panel.weight": p.weight,
        "panel.row_index": p.row_index.astype(np.int64),
        "knots": model.knots_,
        "graph.weights": model.graph_model_.weights,
        "graph.direction": _direction_array(model.graph_model_),
        "graph.assumed": _pair_marks(model.graph_model_, model.graph_model_.assumed),
        "graph.national": _national_array(model.graph_model_),
        "graph.dark": _pair_marks(model.graph_model_, model.graph_model_.dark),
        "graph.ordered": _pair_marks(model.graph_model_, model.graph_model_.ordered),
        "panel.spend": model.spend_,
        **model.scaler_.to_arrays(),
    }
    for k, v in arrays.items():
        tensors[k] = torch.from_numpy(np.array(v, copy=True))
    h: History = model.history_
    meta = {
        "format": SAVE_FORMAT,
        "format_version": str(SAVE_FORMAT_VERSION),
        "package_version": __version__,
        "config": json.dumps(model.config_.to_dict()),
        "channels": json.dumps(model.channels_),
        "controls": json.dumps(model.controls_),
        "regions": json.dumps([_label(r) for r in model.regions_]),
        "dates": json.dumps(_dates_meta(p.dates)),
        "graph_roots": json.dumps(model.graph_roots_),
        "graph_persistent_driver": json.dumps(model.graph_model_.persistent_driver),
        "lift_tests": json.dumps(_lift_tests_meta(getattr(model, "lift_tests_", None))),
        "interval_calibration": json.dumps(getattr(model, "interval_calibration_", None)),
        "estimator": json.dumps(
            {"random_state": model.random_state, "device": model.device, "verbose": model.verbose,
             "n_jobs": model.n_jobs}
        ),
        "history": json.dumps(
            {"train_loss": h.train_loss, "val_loss": h.val_loss, "best_epoch": h.best_epoch,
             "epochs_run": h.epochs_run, "refit_epochs": h.refit_epochs,
             "polish_evals": h.polish_evals, "stopped_early": h.stopped_early,
             "seconds": h.seconds}
        ),
    }
    with atomic_path(path, ".safetensors") as tmp:
        save_file(tensors, tmp, metadata=meta)
    return path


def load_model(cls: Any, path: Path) -> Any:
    """Rebuild an estimator of class ``cls`` from ``path``.

    Raises
    ------
    ModelFileError
        If the file is missing, corrupted, not a deepcausalmmm model, or from an
        incompatible format version.
    """
    path = Path(path)
    if path.is_dir():
        raise ModelFileError(f"model file '{path}' is a directory; pass the path of the file save() wrote, "
                             f"e.g. '{path / 'model.safetensors'}'")
    if not path.is_file():
        raise ModelFileError(f"model file '{path}' does not exist; pass the path given to save()")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelFileError(
            f"model file '{path}' could not be read ({exc}); it is corrupted or not a "
            "safetensors file written by DeepCausalMMM.save()"
        ) from None
    if meta.get("format") != SAVE_FORMAT:
        raise ModelFileError(
            f"model file '{path}' is not a deepcausalmmm model (format {meta.get('format')!r})"
        )
    version = meta.get("format_version")
    if version != str(SAVE_FORMAT_VERSION):
        raise ModelFileError(
            f"model file '{path}' has format version {version}, this package (version "
            f"{__version__}) reads version {SAVE_FORMAT_VERSION}; refit the model or load it with "
            f"deepcausalmmm {meta.get('package_version', '?')}"
        )
    try:
        cfg = build_config(json.loads(meta["config"]))
        est = json.loads(meta["estimator"])
        model = cls(config=cfg.to_dict(), **est)
        arr = {k: v.numpy() for k, v in tensors.items() if not k.startswith("net.")}
        regions = json.loads(meta["regions"])
        channels = json.loads(meta["channels"])
        controls = json.loads(meta["controls"])
        panel = Panel(
            regions=regions, dates=_dates_from_meta(json.loads(meta["dates"])), channels=channels,
            controls=controls, media=arr["panel.media"], control_values=arr["panel.control_values"],
            y=arr["panel.y"], observed=arr["panel.observed"].astype(bool),
            weight=arr["panel.weight"], row_index=arr["panel.row_index"],
        )
        knots = arr["knots"]
        stored = json.loads(meta.get("lift_tests", "null"))
        try:
            lifts = parse_lift_tests(pd.DataFrame(stored), channels, regions, panel.dates) if stored else None
        except DataError as exc:
            raise ModelFileError(f"model file '{path}' holds lift tests that do not fit its panel ({exc})") from None
        net = cls._make_net(cfg, panel, len(knots), lifts)
        net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")}, strict=True)
        net.eval()
        hist_d = json.loads(meta["history"])
    except (KeyError, ValueError, RuntimeError, ConfigError) as exc:
        raise ModelFileError(
            f"model file '{path}' is incomplete or inconsistent ({exc}); it cannot be loaded correctly"
        ) from None
    model.config_ = cfg
    model.panel_ = panel
    model.scaler_ = PanelScaler.from_arrays(arr)
    model.knots_ = knots
    model.net_ = net
    model.history_ = History(**hist_d)
    model.channels_ = channels
    model.controls_ = controls
    model.regions_ = regions
    roots = json.loads(meta["graph_roots"])
    model.spend_ = arr["panel.spend"]
    model.graph_model_ = ChannelGraph(arr["graph.weights"], tuple(channels.index(c) for c in roots),
                                      arr.get("graph.direction"), _marks_from(arr.get("graph.assumed")),
                                      _national_from(arr.get("graph.national")), _marks_from(arr.get("graph.dark")),
                                      _marks_from(arr.get("graph.ordered")),
                                      _persistent_from(meta.get("graph_persistent_driver")))
    model.graph_seconds_ = 0.0
    model._set_graph_frames()
    model._set_forecast_anchor()
    model.lift_tests_ = None if lifts is None else model._lift_report(lifts)
    try:  # absent from files written before calibrate_intervals existed
        model.interval_calibration_ = json.loads(meta.get("interval_calibration", "null"))
    except ValueError:
        raise ModelFileError(f"model file '{path}' holds an unreadable interval calibration") from None
    return model


def _when(x: Any) -> Any:
    if isinstance(x, (pd.Timestamp, np.datetime64)):
        return pd.Timestamp(x).isoformat()
    return _label(x)


def _lift_tests_meta(report: pd.DataFrame | None) -> list[dict[str, Any]] | None:
    """The lift tests given to fit (not the model's figures, which are recomputed on load)."""
    if report is None:
        return None
    return [
        {"channel": r.channel, "start": _when(r.start), "end": _when(r.end),
         "regions": None if r.regions is None else [_label(x) for x in r.regions],
         "lift": float(r.lift), "lift_se": float(r.lift_se)}
        for r in report.itertuples(index=False)
    ]


def _direction_array(graph: ChannelGraph) -> np.ndarray:
    C = graph.n_channels
    return graph.direction if graph.direction is not None else np.full((C, C), np.nan)


def _pair_marks(graph: ChannelGraph, marks: np.ndarray | None) -> np.ndarray:
    """``[C,C]`` edge marks (``assumed``: equal-CV; ``dark``: dark weeks; ``ordered``: turned to
    run as the pair's lagged edges) as stored; zeros when absent."""
    C = graph.n_channels
    return (marks if marks is not None else np.zeros((C, C), dtype=bool)).astype(np.uint8)


def _national_array(graph: ChannelGraph) -> np.ndarray:
    """``[C]`` marks of the channels bought nationally; empty where the graph did not check."""
    return (graph.national if graph.national is not None else np.zeros(0, dtype=bool)).astype(np.uint8)


def _national_from(stored: np.ndarray | None) -> np.ndarray | None:
    """The channels bought nationally; None where the graph did not check (an empty array) or the
    file predates them (session 19)."""
    if stored is None or np.asarray(stored).size == 0:
        return None
    return np.asarray(stored).astype(bool)


def _persistent_from(value: str | None) -> bool | None:
    """The saved ``persistent_driver`` flag (None in files saved before session 35, or a
    value that is not a JSON bool)."""
    if value is None:
        return None
    try:
        flag = json.loads(value)
    except ValueError:
        return None
    return flag if isinstance(flag, bool) else None


def _marks_from(stored: np.ndarray | None) -> np.ndarray | None:
    """Edge marks as saved by :func:`_pair_marks`; None where the file predates them (equal-CV marks:
    session 12; dark-weeks marks: session 33; lagged-edge marks: session 34)."""
    return None if stored is None else np.asarray(stored).astype(bool)
