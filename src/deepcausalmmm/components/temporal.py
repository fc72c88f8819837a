"""Time features and the time-dependent parts of the model.

* :func:`season_phase` / :func:`fourier_features`: calendar position of each
  grid date, as Fourier terms (datetimes use the calendar year, integer
  periods use ``period`` steps per cycle).
* :func:`trend_basis`: piecewise-linear (hat) basis with knots ending at the
  last fitted step; beyond it the trend stays flat or continues with a damped
  slope.
* :func:`residual_persistence`: week-to-week persistence of the fit's
  residuals, with which a forecast lets the last fitted week's residual fade.
* :func:`forecast_error_quantiles`: quantiles of in-sample pseudo-forecast
  errors per horizon, for forecast intervals.
* :class:`Baseline`: per-region level + trend + seasonality, with region
  deviations from shared shapes (shrunk by the loss).
* :class:`CalendarContext`: one GRU over calendar features and controls
  (never spend), for every region and for an average region.
* :class:`Effectiveness`: bounded time-varying media effectiveness from the
  regional context.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

__all__ = [
    "season_phase",
    "fourier_features",
    "day_of_week_features",
    "step_days",
    "DAY_OF_WEEK_ORDER",
    "make_knots",
    "trend_basis",
    "residual_persistence",
    "forecast_error_quantiles",
    "robust_region_scale",
    "Baseline",
    "CalendarContext",
    "Effectiveness",
]

_DAYS_PER_YEAR = 365.2425


def season_phase(dates: pd.Index, period: float) -> np.ndarray:
    """Position in the yearly cycle, in cycles, ``[T]``."""
    if isinstance(dates, pd.DatetimeIndex):
        days = (dates.as_unit("ns").asi8 // 86_400_000_000_000).astype(float)
        return days / _DAYS_PER_YEAR
    return np.asarray(dates, dtype=float) / period


DAY_OF_WEEK_ORDER = 3  # weekly harmonics 1..3: six columns, any zero-mean pattern over seven days


def step_days(dates: pd.Index) -> float | None:
    """The shortest step between dated rows, in days (None for integer periods or one date)."""
    if not isinstance(dates, pd.DatetimeIndex) or len(dates) < 2:
        return None
    return float(np.min(np.diff(dates.as_unit("ns").asi8)) / 86_400e9)


def day_of_week_features(dates: pd.Index) -> np.ndarray:
    """``[T, 2 * DAY_OF_WEEK_ORDER]``: weekly harmonics of each date's day (Monday = 0)."""
    assert isinstance(dates, pd.DatetimeIndex)
    return fourier_features(np.asarray(dates.day_of_week, dtype=float) / 7.0, DAY_OF_WEEK_ORDER)


def fourier_features(phase: np.ndarray, order: int) -> np.ndarray:
    """``[T, 2*order]``: sin and cos of ``2 pi k phase`` for k = 1..order."""
    k = np.arange(1, order + 1)
    ang = 2 * np.pi * phase[:, None] * k[None, :]  # [T,1] * [1,P] -> [T,P]
    return np.concatenate([np.sin(ang), np.cos(ang)], axis=1)  # [T,2P]


def make_knots(last: int, spacing: int) -> np.ndarray:
    """Knot positions ``0 = k_0 < ... < k_J = last``, spaced ``spacing`` back from ``last``."""
    knots = list(np.arange(last, 0, -spacing)[::-1].astype(float))
    if not knots or knots[0] > 0:
        knots = [0.0] + knots
    if len(knots) > 2 and knots[1] - knots[0] < spacing / 2:
        knots.pop(1)  # merge a short first interval
    return np.asarray(knots if len(knots) > 1 else [0.0, max(float(last), 1.0)])


def trend_basis(
    positions: np.ndarray, knots: np.ndarray, extrapolation: str = "flat", damping: float = 0.9
) -> np.ndarray:
    """Hat-function basis ``[T, J]`` evaluated at ``positions`` (steps since fit start)."""
    t = np.asarray(positions, dtype=float)
    J = len(knots)
    basis = np.zeros((len(t), J))
    tc = np.clip(t, knots[0], knots[-1])
    seg = np.clip(np.searchsorted(knots, tc, side="right") - 1, 0, J - 2)
    left, right = knots[seg], knots[seg + 1]
    w = (tc - left) / (right - left)
    rows = np.arange(len(t))
    basis[rows, seg] = 1 - w
    basis[rows, seg + 1] += w
    if extrapolation == "damped":
        h = np.maximum(t - knots[-1], 0.0)
        gain = damping * (1 - damping**h) / (1 - damping) / (knots[-1] - knots[-2])  # [T]
        basis[:, -1] += gain
        basis[:, -2] -= gain
    return basis


class Baseline(nn.Module):
    """``level_r + trend_r(t) + season_r(t)`` in scaled KPI units.

    Trend and seasonality are shared shapes plus region deviations; the trend
    is anchored at 0 at the first knot so that ``level`` is identified.
    """

    def __init__(self, n_regions: int, n_knots: int, n_fourier: int) -> None:
        super().__init__()
        self.level = nn.Parameter(torch.full((n_regions,), 0.8))  # [R]
        self.trend = nn.Parameter(torch.zeros(n_knots - 1))  # [J-1]
        self.trend_dev = nn.Parameter(torch.zeros(n_regions, n_knots - 1))  # [R,J-1]
        self.season = nn.Parameter(torch.zeros(n_fourier))  # [P2]
        self.season_dev = nn.Parameter(torch.zeros(n_regions, n_fourier))  # [R,P2]

    def trend_weights(self, region_idx: Tensor) -> Tensor:
        """Knot values ``[R',J]`` (first knot fixed at 0)."""
        w = self.trend[None, :] + self.trend_dev[region_idx]  # [1,J-1] + [R',J-1] -> [R',J-1]
        return torch.cat([torch.zeros_like(w[:, :1]), w], dim=1)  # [R',J]

    def forward(self, basis: Tensor, fourier: Tensor, region_idx: Tensor) -> Tensor:
        """Baseline ``[R',T]`` from trend basis ``[T,J]`` and Fourier terms ``[T,P2]``."""
        level, trend, season = self.parts(basis, fourier, region_idx)
        return level + trend + season  # [R',1] + [R',T]

    def parts(self, basis: Tensor, fourier: Tensor, region_idx: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The baseline's terms: ``level`` ``[R',1]``, ``trend`` and ``season`` ``[R',T]`` (the
        yearly shape, with the day-of-week pattern where the Fourier terms hold one)."""
        trend = self.trend_weights(region_idx) @ basis.T  # [R',J] @ [J,T] -> [R',T]
        coef = self.season[None, :] + self.season_dev[region_idx]  # [R',P2]
        season = coef @ fourier.T  # [R',P2] @ [P2,T] -> [R',T]
        return self.level[region_idx][:, None], trend, season

    @torch.no_grad()
    def reknot(self, old_at_new: Tensor) -> None:
        """Move the trend to new knots, keeping its shape.

        ``old_at_new`` ``[J_new, J_old]`` is the old basis evaluated at the new
        knots (hat bases: the new knot values are the old trend's values there).
        """
        w = torch.cat([torch.zeros_like(self.trend[:1]), self.trend])  # [J_old]
        dev = torch.cat([torch.zeros_like(self.trend_dev[:, :1]), self.trend_dev], dim=1)  # [R,J_old]
        new_w = old_at_new @ w  # [J_new,J_old] @ [J_old] -> [J_new]
        new_dev = dev @ old_at_new.T  # [R,J_old] @ [J_old,J_new] -> [R,J_new]
        self.trend = nn.Parameter(new_w[1:].clone())
        self.trend_dev = nn.Parameter(new_dev[:, 1:].clone())

    def penalty(self, smoothness: float, shrinkage: float, season_shrinkage: float) -> Tensor:
        """Second differences of every region's trend, and region deviations' size."""
        w = torch.cat([torch.zeros_like(self.trend[:1]), self.trend])  # [J]
        w_r = w[None, :] + torch.cat(
            [torch.zeros_like(self.trend_dev[:, :1]), self.trend_dev], dim=1
        )  # [R,J]
        pen = torch.zeros((), dtype=w.dtype)
        if w_r.shape[1] >= 3:
            d2 = w_r[:, 2:] - 2 * w_r[:, 1:-1] + w_r[:, :-2]  # [R,J-2]
            pen = pen + smoothness * (d2**2).sum(dim=1).mean()
        dev = (self.trend_dev**2).sum(dim=1).mean()
        pen = pen + season_shrinkage * (self.season_dev**2).sum(dim=1).mean()
        return pen + shrinkage * dev


RESIDUAL_BURN_IN = 6  # first fitted weeks left out of the persistence estimate (carryover warm-up)


def residual_persistence(resid: np.ndarray, weight: np.ndarray, burn_in: int = RESIDUAL_BURN_IN) -> float:
    """Pooled AR(1) coefficient of in-sample residuals, clipped to ``[0, 0.99]``.

    ``resid`` ``[R,T]`` are residuals in region-relative units (KPI over the
    region's scale), ``weight`` ``[R,T]`` the loss weights of those cells (0 for
    unobserved ones). The coefficient is the weighted least-squares slope of
    ``resid[:, t+1]`` on ``resid[:, t]`` over every region (no intercept: the
    residuals of a fit with a per-region level have mean near 0), each pair
    weighted by the geometric mean of its two cells' weights. The first
    ``burn_in`` weeks are left out when at least 8 weeks remain. Returns 0
    when there are no weighted pairs or the residuals are all 0; a negative
    slope (alternating residuals) is 0 as well, so a forecast never flips the
    sign of the last residual.
    """
    resid = np.asarray(resid, dtype=float)
    weight = np.asarray(weight, dtype=float)
    if resid.shape[1] - burn_in >= 8:
        resid, weight = resid[:, burn_in:], weight[:, burn_in:]
    w = np.sqrt(weight[:, :-1] * weight[:, 1:])  # [R,T-1]
    w = np.where(np.isfinite(resid[:, :-1]) & np.isfinite(resid[:, 1:]), w, 0.0)
    prev = np.nan_to_num(resid[:, :-1])  # [R,T-1]
    nxt = np.nan_to_num(resid[:, 1:])  # [R,T-1]
    den = float((w * prev * prev).sum())
    if not den > 0:
        return 0.0
    return float(np.clip((w * prev * nxt).sum() / den, 0.0, 0.99))


INTERVAL_SHRINK = 30.0  # weeks' worth of the regions' median scale each region's own scale is pulled toward
MIN_ERRORS = 20  # fewest pseudo-forecast errors a horizon's quantiles are read from


def robust_region_scale(e: np.ndarray, shrink: float = INTERVAL_SHRINK) -> np.ndarray:
    """Each region's robust residual scale ``[R]`` from residuals ``e`` ``[R,T]`` (NaN: not used).

    1.4826 times the median absolute deviation around the region's median,
    shrunk toward the regions' median scale with ``shrink`` weeks' weight (so
    that a region with few weeks is not given a scale of its own); 1 where a
    region's residuals and the pooled scale are all 0.
    """
    n = np.isfinite(e).sum(axis=1)  # [R]
    has = n > 0
    med = np.full(len(e), np.nan)
    mad = np.zeros(len(e))
    if has.any():
        med[has] = np.nanmedian(e[has], axis=1)
        mad[has] = 1.4826 * np.nanmedian(np.abs(e[has] - med[has, None]), axis=1)
    pool = float(np.median(mad[has])) if has.any() else 0.0
    scale = np.sqrt((n * mad**2 + shrink * pool**2) / (n + shrink))  # [R]
    return np.where(scale > 0, scale, 1.0)


def forecast_error_quantiles(
    resid: np.ndarray,
    weight: np.ndarray,
    trend: np.ndarray,
    persistence: float,
    horizons: np.ndarray,
    probs: np.ndarray,
    damping: float | None = None,
    burn_in: int = RESIDUAL_BURN_IN,
    shrink: float = INTERVAL_SHRINK,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-region error scale ``[R]`` and pseudo-forecast error quantiles ``[H,P]``.

    ``resid`` ``[R,T]`` are the fit's residuals and ``trend`` ``[R,T]`` its
    fitted trend, both in region-relative units; ``weight`` ``[R,T]`` the loss
    weights (cells at 0 are left out). A forecast holds the trend at its last
    fitted value (or, with ``damping``, continues its last slope damped by
    ``damping`` per week) and lets the last residual fade by ``persistence``
    per week (0 when forecasts do not start from it). Made from an in-sample
    week ``t``, such a forecast would have missed week ``t + h`` by::

        e[t+h] + (trend[t+h] - trend at t+h as forecast from t) - persistence**h * e[t]

    so the errors hold the trend's own drift, which in-sample residuals do not.
    Horizon 0 is the residual itself (rows within the fitted period). Each
    region's errors are divided by its robust residual scale (1.4826 times the
    median absolute deviation, shrunk toward the regions' median scale with
    ``shrink`` weeks' weight, so that a region with few weeks is not given a
    scale of its own) and pooled over regions. Horizons longer than half the
    usable weeks read the longest such lag; a horizon with fewer than
    ``MIN_ERRORS`` errors reads the next shorter one (down to the residuals).

    Returns
    -------
    scale : ndarray ``[R]``
        Each region's error scale in region-relative units (1 where its
        residuals and the pooled scale are all 0).
    quantiles : ndarray ``[H,P]``
        Quantiles ``probs`` of the scaled errors at each of ``horizons``
        (NaN where no residual is usable at all).
    """
    resid = np.asarray(resid, dtype=float)
    weight = np.asarray(weight, dtype=float)
    trend = np.asarray(trend, dtype=float)
    slope = np.diff(trend, axis=1, prepend=trend[:, :1])  # [R,T] each week's trend change (0 first)
    if resid.shape[1] - burn_in >= 8:
        resid, weight, trend, slope = (a[:, burn_in:] for a in (resid, weight, trend, slope))
    e = np.where((weight > 0) & np.isfinite(resid), resid, np.nan)  # [R,T]
    scale = robust_region_scale(e, shrink)  # [R]
    T = e.shape[1]
    longest = max(1, T // 2)

    def errors(h: int) -> np.ndarray:
        if h == 0:
            out = e
        else:
            if damping is None:
                drift = trend[:, h:] - trend[:, :-h]
            else:
                drift = trend[:, h:] - trend[:, :-h] - slope[:, :-h] * damping * (1 - damping**h) / (1 - damping)
            out = e[:, h:] + drift - persistence**h * e[:, :-h]  # [R,T-h]
        z = (out / scale[:, None]).ravel()
        return z[np.isfinite(z)]

    cache: dict[int, np.ndarray] = {}
    q = np.full((len(horizons), len(probs)), np.nan)
    for i, h in enumerate(np.asarray(horizons, dtype=int)):
        lag = int(min(max(h, 0), longest, T - 1))
        while True:
            if lag not in cache:
                cache[lag] = errors(lag)
            if len(cache[lag]) >= MIN_ERRORS or lag == 0:
                break
            lag -= 1
        if len(cache[lag]):
            q[i] = np.quantile(cache[lag], probs)
    return scale, q


class CalendarContext(nn.Module):
    """One GRU over calendar features and a region's controls (never spend).

    Run for every region and for an average region (controls at their mean,
    0 after standardisation): the regional states drive time-varying
    effectiveness, the average-region state drives the carryover gates, so
    gates are shared by regions and the GRU recursion runs once per epoch.
    """

    def __init__(self, n_calendar: int, n_controls: int, hidden: int) -> None:
        super().__init__()
        self.gru = nn.GRU(n_calendar + n_controls, hidden, batch_first=True)

    def forward(
        self, calendar: Tensor, controls: Tensor, regional: bool = True
    ) -> tuple[Tensor, Tensor | None]:
        """``calendar`` ``[T,F]``, ``controls`` ``[R,T,K]`` -> (national ``[T,H]``, regional ``[R,T,H]``).

        With ``regional=False`` only the average region is run (the regional
        states are then ``None``): the recursion costs one sequence, not R+1.
        """
        R, T, K = controls.shape
        n = R + 1 if regional else 1
        cal = calendar[None].expand(n, -1, -1)  # [T,F] -> [n,T,F]
        avg = controls.new_zeros(1, T, K)  # [1,T,K]
        ctrl = torch.cat([controls, avg], dim=0) if regional else avg  # [n,T,K]
        h, _ = self.gru(torch.cat([cal, ctrl], dim=-1))  # [n,T,F+K] -> [n,T,H]
        return h[n - 1], (h[:R] if regional else None)


class Effectiveness(nn.Module):
    """Time-varying effectiveness ``m[R,T,C]`` in ``[low, high]``, 1 at initialisation."""

    def __init__(self, n_context: int, n_channels: int, low: float, high: float) -> None:
        super().__init__()
        self.low, self.high = low, high
        self.head = nn.Linear(n_context, n_channels)
        nn.init.zeros_(self.head.weight)
        p = (1.0 - low) / (high - low) if high > low else 0.5
        p = min(max(p, 1e-4), 1 - 1e-4)
        nn.init.constant_(self.head.bias, float(np.log(p / (1 - p))))

    def forward(self, context: Tensor) -> Tensor:
        """Regional context ``[R,T,H]`` -> multipliers ``[R,T,C]``."""
        return self.low + (self.high - self.low) * torch.sigmoid(self.head(context))  # [R,T,C]
