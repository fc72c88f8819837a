"""A reference for attribution benchmarks: least squares that knows every curve.

The simulators know each channel's true contribution in every region-week
(carryover, saturation curve and regional multiplier applied). The oracle is
given those series and estimates only how large each one is (one scale per
channel), beside a baseline it must estimate like any model: each region's
own level and linear trend, two yearly harmonics shared by the regions in
proportion to their mean KPI, and the controls the model is given (each in
proportion to the region's mean KPI), by weighted least squares in
region-relative units (each row divided by its region's mean KPI, as the
simulators' noise is a share of the region's baseline). Its total effects
are the true paths scaled: channel ``c``'s total is
``sum_j paths[c, j] * scale[j]``, where ``paths[c, j]`` is the fall in
channel ``j``'s contribution under do(``c`` = 0).

What it measures: how far the noise alone moves the channels' shares when
nothing about the curves has to be learned, i.e. the floor a model that must
also learn carryover and curve shapes is measured against. It is not a model
(it reads the truth) and it is not a bound (it has no prior; a model with a
good prior can land closer on one panel, e.g. where a channel's own activity
barely moves and its scale is poorly determined).
"""

from __future__ import annotations

from typing import Any

import numpy as np

YEAR = 52.18  # weeks


def oracle_scales(kpi: np.ndarray, contrib: np.ndarray, controls: np.ndarray | None = None,
                  harmonics: int = 2) -> np.ndarray:
    """Least-squares scale ``[C]`` of each channel's true contribution (1 = exact).

    ``kpi`` ``[R,T]``; ``contrib`` ``[R,T,C]``, each channel's true contribution in KPI units;
    ``controls`` ``[R,T,K]`` or None, the control values the model is given.
    """
    R, T, C = contrib.shape
    if kpi.shape != (R, T):
        raise ValueError(f"kpi must have shape {(R, T)} to match contrib {contrib.shape}, found {kpi.shape}")
    scale = np.abs(kpi).mean(axis=1)  # [R]
    scale = np.where(scale > 0, scale, 1.0)
    t = np.arange(T, dtype=float)
    eye = np.eye(R)
    cols = [np.kron(eye, np.ones((T, 1))), np.kron(eye, (t / T)[:, None])]  # level, trend per region
    waves = [f(2 * np.pi * k * t / YEAR) for k in range(1, harmonics + 1) for f in (np.sin, np.cos)]
    if waves:
        cols.append(np.kron(scale[:, None], np.stack(waves, axis=1)))  # shared shape x region's mean
    if controls is not None and controls.size:
        cols.append((controls * scale[:, None, None]).reshape(R * T, -1))
    cols.append(contrib.reshape(R * T, C))
    design = np.concatenate(cols, axis=1) / np.repeat(scale, T)[:, None]
    coef, *_ = np.linalg.lstsq(design, kpi.reshape(-1) / np.repeat(scale, T), rcond=None)
    return coef[-C:]


def oracle_totals(kpi: np.ndarray, contrib: np.ndarray, paths: np.ndarray,
                  controls: np.ndarray | None = None) -> np.ndarray:
    """The oracle's total effects ``[C]``: the true paths ``[C,C]`` times its scales."""
    return np.asarray(paths) @ oracle_scales(kpi, contrib, controls)


def share_errors(totals: np.ndarray, paths: np.ndarray) -> np.ndarray:
    """Signed total-share errors ``[C]`` in percentage points of estimated ``totals`` against the
    truth (the paths' row sums)."""
    true = np.asarray(paths).sum(axis=1)
    return (totals / totals.sum() - true / true.sum()) * 100


def simulated_inputs(sim: Any) -> dict[str, np.ndarray]:
    """The oracle's inputs from a :func:`deepcausalmmm.datasets.simulate_panel` panel (its rows
    run region by region, weeks in order): ``kpi``, ``contrib``, ``paths`` and ``controls``."""
    R, C = len(np.unique(sim.regions)), len(sim.channels)
    T = len(sim.y) // R
    return {"kpi": sim.y.reshape(R, T), "contrib": sim.truth[sim.channels].to_numpy().reshape(R, T, C),
            "paths": sim.truth_paths.to_numpy(), "controls": sim.control_frame.to_numpy().reshape(R, T, -1)}


def oracle_errors(kpi: np.ndarray, contrib: np.ndarray, paths: np.ndarray, controls: np.ndarray | None = None,
                  roots: list[int] | tuple[int, ...] = ()) -> tuple[np.ndarray, np.ndarray]:
    """The oracle's signed total-share errors ``[C]`` (pp) and the total-effect errors (%, absolute)
    of the channels ``roots`` against the truth (the paths' row sums)."""
    est = oracle_totals(kpi, contrib, paths, controls)
    idx = list(roots)
    true = np.asarray(paths).sum(axis=1)
    return share_errors(est, paths), np.abs(est[idx] / true[idx] - 1) * 100


def oracle_line(kpi: np.ndarray, contrib: np.ndarray, paths: np.ndarray, controls: np.ndarray | None,
                root: int | None = 0) -> str:
    """One benchmark line: the oracle's total-share errors (and the root's total-effect error)."""
    err, root_err = oracle_errors(kpi, contrib, paths, controls, () if root is None else (root,))
    text = f"share error mean {np.abs(err).mean():.2f} max {np.abs(err).max():.2f} pp"
    if root is not None:
        text += f"; root total error {root_err[0]:.1f}%"
    return text + f"; errors {np.round(err, 1).tolist()}"
