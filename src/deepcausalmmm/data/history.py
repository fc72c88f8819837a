"""Place new rows on a fitted panel's timeline (continuation and counterfactuals)."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import DataError
from .panel import Panel, fmt_date, listed, month_anchor, month_grid, month_number

__all__ = [
    "align_to_fit", "comparison_periods", "default_frequency", "extend_history", "extend_grid", "grid_positions",
    "grid_spacing", "period_blocks", "period_name",
]


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
            f"`regions` {listed(unknown, 5)} were not in the fitted data; the model only predicts "
            f"fitted regions ({len(fit.regions)} of them, e.g. {fit.regions[:3]}). Drop those rows, "
            "or refit with them"
        )
    missing = [c for c in fit.channels if c not in new.channels]
    extra = [c for c in new.channels if c not in fit.channels]
    if missing or extra:
        raise DataError(
            f"`X` channels must match the fitted channels {fit.channels}; missing {missing}, "
            f"unexpected {extra}. Pass the fitted channel columns (0 for a channel switched off), "
            "without the unexpected ones"
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
        pos = grid_positions(fit_dates, new.dates)
    else:
        pos = np.zeros(len(new.dates))
    off = (pos < 0) | ~np.isclose(pos, np.round(pos))  # [T'] (never with a one-week fit: pos is 0)
    if off.any():
        raise DataError(
            f"`dates` must lie on the fitted grid ({fit_dates[0]} onwards, every "
            f"{grid_spacing(fit_dates)}); found "
            f"{new.dates[int(np.argmax(off))]} ({int(off.sum())} date(s) off it). Use the fit's "
            "dates, continued at the same spacing for forecasts"
        )
    return np.asarray([fit.regions.index(r) for r in new.regions]), np.round(pos).astype(int)


def _month_step(grid: pd.Index) -> tuple[str, int] | None:
    """``(anchor, months per step)`` of a grid of calendar months (two or more dates, all month
    starts or all month ends; see :func:`month_anchor`), else None."""
    if not isinstance(grid, pd.DatetimeIndex):
        return None
    anchor = month_anchor(grid)
    return None if anchor is None else (anchor, int(np.ptp(month_number(grid[:2]))))


def grid_spacing(grid: pd.Index) -> str:
    """The spacing of a fitted grid (two or more dates), in words."""
    months = _month_step(grid)
    return str(grid[1] - grid[0]) if months is None else f"{months[1]} month(s), at month {months[0]}s"


def period_name(grid: pd.Index) -> str:
    """What one step of a fitted grid is, in words (plural): "weeks", "months", "quarters",
    "days" or "periods" (integer periods, or another fixed spacing)."""
    if len(grid) < 2 or not isinstance(grid, pd.DatetimeIndex):
        return "periods"
    months = _month_step(grid)
    if months is not None:
        return {1: "months", 3: "quarters", 12: "years"}.get(months[1], "periods")
    return {pd.Timedelta(days=7): "weeks", pd.Timedelta(days=1): "days"}.get(grid[1] - grid[0], "periods")


_QUARTER_YEAR = {"weeks": (13, 52), "days": (91, 364), "months": (3, 12), "quarters": (1, 4)}  # steps


def comparison_periods(grid: pd.Index, year: float) -> tuple[tuple[Any, Any], tuple[Any, Any], str] | None:
    """The last quarter of a fitted grid and the quarter to compare it with.

    The same quarter a year earlier where the grid reaches back that far (the yearly season
    then cancels), else the quarter just before it. A quarter is 13 weeks, 91 days, 3 months
    or 1 quarter; on integer periods (or another spacing) a quarter of ``year``, the season's
    period in steps. Returns ``(base, compare, how)`` with each period a (first, last) pair
    of grid dates and ``how`` "a year earlier" or "the quarter before"; None for a grid
    shorter than two quarters (or of years).
    """
    name = period_name(grid)
    if name == "years":
        return None
    quarter, steps = _QUARTER_YEAR.get(name, (max(1, int(round(year / 4))), int(round(year))))
    T = len(grid)
    if T < 2 * quarter:
        return None
    start, how = (T - quarter - steps, "a year earlier") if T >= steps + quarter else (T - 2 * quarter, "the quarter before")
    return (grid[start], grid[start + quarter - 1]), (grid[T - quarter], grid[T - 1]), how


# words a user may give for a calendar frequency, and the pandas period alias each means
_FREQ_WORDS = {"year": "Y", "yearly": "Y", "annual": "Y", "quarter": "Q", "quarterly": "Q", "month": "M",
               "monthly": "M", "week": "W", "weekly": "W"}


def period_blocks(grid: pd.Index, freq: str | int, name: str = "freq") -> tuple[np.ndarray, list[str], np.ndarray]:
    """The periods of ``freq`` that a fitted grid's dates fall in.

    ``freq``: a pandas period alias (``"Y"``, ``"Q"``, ``"M"``, ``"W"``; also the words
    ``"year"``, ``"quarter"``, ``"month"``, ``"week"``), each date in the period its label falls
    in, which needs calendar dates; or a whole number ``n``: blocks of ``n`` steps from the first
    fitted date. Returns ``[T]`` each date's block (0, 1, ... in time order), the blocks' labels
    (``"2024Q3"``, which every ``period=`` argument takes back; for blocks of steps their first
    and last dates, ``"0..12"``, or the one date of a block of one) and ``[K]`` whether each block holds every grid date of its period (False for a
    quarter the fit starts or ends inside). ``name``: the argument, for errors.
    """
    T = len(grid)
    is_time = isinstance(grid, pd.DatetimeIndex)
    if isinstance(freq, numbers.Integral) and not isinstance(freq, bool):
        n = int(freq)
        if n < 1:
            raise DataError(f"`{name}` must be a whole number of steps >= 1 or a calendar frequency such as "
                            f"'Q', found {freq}; e.g. {name}=13 (blocks of 13 steps) or {name}='Q'")
        block = np.arange(T) // n
        ends = [(grid[i], grid[min(i + n, T) - 1]) for i in range(0, T, n)]
        labels = [fmt_date(a) if a == b else f"{fmt_date(a)}..{fmt_date(b)}" for a, b in ends]  # "0..12"; "39"
        complete = np.bincount(block) == n
        return block, labels, complete
    if not isinstance(freq, str):
        raise DataError(f"`{name}` must be a calendar frequency ('Y', 'Q', 'M', 'W') or a whole number of "
                        f"steps, found {freq!r} ({type(freq).__name__}); e.g. {name}='Q'")
    alias = _FREQ_WORDS.get(freq.strip().lower(), freq.strip())
    if not is_time:
        raise DataError(f"`{name}` {freq!r} is a calendar frequency, but the fit has no calendar dates (its rows "
                        f"are periods {grid[0]}..{grid[-1]}); give a whole number of steps instead, e.g. "
                        f"{name}=13, or refit with `dates`")
    try:
        periods = grid.to_period(alias)
    except (TypeError, ValueError):
        raise DataError(f"`{name}` {freq!r} is not a calendar frequency pandas knows; use 'Y', 'Q', 'M' or 'W' "
                        f"(or 'year', 'quarter', 'month', 'week'), or a whole number of steps, e.g. "
                        f"{name}='Q'") from None
    block, uniques = pd.factorize(periods, sort=True)
    complete = np.ones(len(uniques), dtype=bool)
    if T >= 2:
        # the first and last periods are whole when the grid's neighbouring dates fall outside them
        months = _month_step(grid)
        if months is None:
            before = grid[0] - (grid[1] - grid[0])
        else:
            before = (pd.Period(grid[0], "M") - months[1]).to_timestamp(how=months[0])
            before = before.normalize()
        after = extend_grid(grid, T + 1)[-1]
        complete[0] = pd.Period(before, alias) != uniques[0]
        complete[-1] &= pd.Period(after, alias) != uniques[-1]
    else:
        complete[:] = False
    return np.asarray(block), [str(u) for u in uniques], complete


def default_frequency(grid: pd.Index, year: float) -> str | int:
    """A frequency for a table of periods over a fitted grid: quarters (years past 12 quarters,
    months under 3); blocks of a quarter of ``year`` steps without calendar dates."""
    if not isinstance(grid, pd.DatetimeIndex):
        return max(1, int(round(year / 4)))
    span = len(grid.to_period("Q").unique())
    return "Y" if span > 12 else "M" if span < 3 else "Q"


def grid_positions(grid: pd.Index, dates: pd.Index) -> np.ndarray:
    """Position of each of ``dates`` on ``grid`` (two or more dates) continued both ways ``[T']``;
    a date off the grid gets a fractional position."""
    months = _month_step(grid)
    if months is not None and isinstance(dates, pd.DatetimeIndex):
        anchor, step = months
        on_anchor = dates.is_month_start if anchor == "start" else dates.is_month_end
        pos = (month_number(dates) - month_number(grid[:1])[0]) / step
        exact = np.asarray(on_anchor, dtype=bool) & np.asarray(dates == dates.normalize(), dtype=bool)
        return np.where(exact, pos, pos + 0.5).astype(float)  # off the month anchor: off the grid
    return np.asarray((dates - grid[0]) / (grid[1] - grid[0]), dtype=float)


def extend_grid(grid: pd.Index, periods: int) -> pd.Index:
    """``grid`` (two or more dates) continued to ``periods`` dates at its spacing."""
    months = _month_step(grid)
    if months is not None:
        return month_grid(grid[0], periods, months[1], months[0])
    if isinstance(grid, pd.DatetimeIndex):
        return pd.DatetimeIndex(pd.date_range(grid[0], periods=periods, freq=grid[1] - grid[0]))
    return pd.Index(grid[0] + int(grid[1] - grid[0]) * np.arange(periods), dtype=np.int64)


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
        grid = extend_grid(fit.dates, T)
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
