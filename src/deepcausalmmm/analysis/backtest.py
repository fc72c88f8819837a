"""Forecast metrics and rolling-origin cutoffs (pure functions on arrays)."""

from __future__ import annotations

import numpy as np

__all__ = ["forecast_metrics", "interval_metrics", "rolling_cutoffs", "last_value_forecast"]


def forecast_metrics(y: np.ndarray, pred: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """Metrics over the cells of ``[R,H]`` arrays where ``mask`` is true.

    Returns ``wape_pct`` (sum |y - yhat| / sum |y|), ``r2`` (pooled over cells)
    and ``national_mape_pct`` (sum over regions per week, then mean absolute
    percentage error over weeks).
    """
    yy, pp = y[mask], pred[mask]
    ss_res = float(((yy - pp) ** 2).sum())
    ss_tot = float(((yy - yy.mean()) ** 2).sum())
    nat_y = np.where(mask, y, 0.0).sum(axis=0)  # [H]
    nat_p = np.where(mask, pred, 0.0).sum(axis=0)  # [H]
    keep = nat_y != 0
    return {
        "wape_pct": float(np.abs(yy - pp).sum() / np.abs(yy).sum() * 100),
        "r2": 1 - ss_res / ss_tot if ss_tot > 0 else float("nan"),
        "national_mape_pct": float(np.mean(np.abs(nat_y[keep] - nat_p[keep]) / np.abs(nat_y[keep])) * 100),
    }


def interval_metrics(y: np.ndarray, lower: np.ndarray, upper: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """Interval scores over the cells of ``[R,H]`` arrays where ``mask`` is true.

    Returns ``coverage_pct`` (cells with ``lower <= y <= upper``) and
    ``interval_width_pct`` (sum of ``upper - lower`` over sum of ``|y|``).
    """
    yy, lo, hi = y[mask], lower[mask], upper[mask]
    return {
        "coverage_pct": float(((yy >= lo) & (yy <= hi)).mean() * 100),
        "interval_width_pct": float((hi - lo).sum() / np.abs(yy).sum() * 100),
    }


def rolling_cutoffs(n_weeks: int, n_splits: int, horizon: int, min_train: int) -> list[int]:
    """Cutoffs (first holdout week index), latest last, each ``horizon`` apart.

    Raises
    ------
    ValueError
        If ``n_splits`` or ``horizon`` is not a positive integer, or the earliest
        cutoff would leave fewer than ``min_train`` training weeks.
    """
    for name, value in (("n_splits", n_splits), ("horizon", horizon)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(
                f"`{name}` must be a positive whole number of {'cutoffs' if name == 'n_splits' else 'weeks'}, "
                f"found {value!r}; e.g. backtest(..., n_splits=3, horizon=13)"
            )
    cutoffs = [n_weeks - horizon * (i + 1) for i in range(n_splits)][::-1]
    if cutoffs[0] < min_train:
        raise ValueError(
            f"`n_splits`={n_splits} with `horizon`={horizon} leaves {max(cutoffs[0], 0)} "
            f"training weeks before the first cutoff; at least {min_train} are needed. "
            "Use fewer splits or a shorter horizon"
        )
    return cutoffs


def last_value_forecast(y: np.ndarray, observed: np.ndarray, horizon: int) -> np.ndarray:
    """Per region, the last observed training KPI held flat: ``[R,T]`` -> ``[R,horizon]``."""
    R, T = y.shape
    last_idx = np.where(observed, np.arange(T)[None, :], -1).max(axis=1)  # [R]
    last = np.where(last_idx >= 0, y[np.arange(R), np.maximum(last_idx, 0)], np.nan)  # [R]
    return np.repeat(last[:, None], horizon, axis=1)
