"""Place new rows on a fitted panel's timeline (continuation and counterfactuals)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..exceptions import DataError
from .panel import Panel

__all__ = ["align_to_fit", "extend_history"]


def align_to_fit(fit: Panel, new: Panel) -> tuple[np.ndarray, np.ndarray]:
    """Fitted-region index ``[R']`` of each new region and fitted-grid position ``[T']`` of each new date.

    Raises
    ------
    DataError
        For unknown regions, channels or controls that differ from the fit, or
        dates off the fitted grid.
    """
    unknown = [r for r in new.regions if r not in fit.regions]
    if unknown:
        raise DataError(
            f"`regions` {unknown[:5]} were not in the fitted data; the model only predicts "
            f"fitted regions ({len(fit.regions)} of them, e.g. {fit.regions[:3]}). Drop those rows, "
            "or refit with them"
        )
    missing = [c for c in fit.channels if c not in new.channels]
    extra = [c for c in new.channels if c not in fit.channels]
    if missing or extra:
        raise DataError(
            f"`X` channels must match the fitted channels {fit.channels}; missing {missing}, "
            f"unexpected {extra}"
        )
    if sorted(new.controls) != sorted(fit.controls):
        raise DataError(
            f"`controls` must match the fitted controls {fit.controls}, found {new.controls}; pass "
            "the same control columns as in fit"
        )
    fit_dates = fit.dates
    if isinstance(fit_dates, pd.DatetimeIndex) != isinstance(new.dates, pd.DatetimeIndex):
        kind = "datetimes" if isinstance(fit_dates, pd.DatetimeIndex) else "integer periods"
        raise DataError(
            f"`dates` must be of the same kind as in fit ({kind}), found {new.dates[:1].tolist()}; "
            f"pass {kind} like the fit's {fit_dates[:2].tolist()}"
        )
    if len(fit_dates) > 1:
        pos = np.asarray((new.dates - fit_dates[0]) / (fit_dates[1] - fit_dates[0]), dtype=float)
    else:
        pos = np.zeros(len(new.dates))
    off = (pos < 0) | ~np.isclose(pos, np.round(pos))  # [T'] (never with a one-week fit: pos is 0)
    if off.any():
        raise DataError(
            f"`dates` must lie on the fitted grid ({fit_dates[0]} onwards, every "
            f"{fit_dates[1] - fit_dates[0]}); found "
            f"{new.dates[int(np.argmax(off))]} ({int(off.sum())} date(s) off it). Use the fit's "
            "dates, continued at the same spacing for forecasts"
        )
    return np.asarray([fit.regions.index(r) for r in new.regions]), np.round(pos).astype(int)


def extend_history(
    fit: Panel, new: Panel, reg_idx: np.ndarray, pos: np.ndarray
) -> tuple[pd.Index, np.ndarray, np.ndarray]:
    """The fitted history of ``reg_idx`` with ``new``'s observed cells written over it.

    Returns the grid ``[T]`` (the fitted grid, extended past its end if ``new``
    continues it), media ``[R',T,C]`` and controls ``[R',T,K]`` in the fitted
    channel/control order. Weeks after the fit that ``new`` does not give have
    no media and carry the last controls forward.
    """
    T_fit = len(fit.dates)
    T = max(T_fit, int(pos.max()) + 1)
    if T_fit > 1:
        step = fit.dates[1] - fit.dates[0]
        grid = (pd.DatetimeIndex(pd.date_range(fit.dates[0], periods=T, freq=step))
                if isinstance(fit.dates, pd.DatetimeIndex)
                else pd.Index(fit.dates[0] + int(step) * np.arange(T), dtype=np.int64))
    else:
        grid = fit.dates
    ch_order = [new.channels.index(c) for c in fit.channels]
    k_order = [new.controls.index(k) for k in fit.controls]
    media = np.zeros((len(reg_idx), T, len(fit.channels)))  # [R',T,C]
    media[:, :T_fit] = fit.media[reg_idx]
    ctrl = np.full((len(reg_idx), T, len(fit.controls)), np.nan)  # [R',T,K]
    ctrl[:, :T_fit] = fit.control_values[reg_idx]
    ri, ti = np.nonzero(new.observed)
    media[ri, pos[ti]] = new.media[ri, ti][:, ch_order]
    if k_order:
        ctrl[ri, pos[ti]] = new.control_values[ri, ti][:, k_order]
        for k in range(ctrl.shape[2]):
            ctrl[:, :, k] = pd.DataFrame(ctrl[:, :, k].T).ffill().to_numpy().T
    return grid, media, np.nan_to_num(ctrl)
