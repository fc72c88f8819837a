"""Lift tests (geo experiments) as data: parsing and validation.

A lift test says: switching ``channel`` off in ``regions`` from ``start`` to
``end`` (inclusive) cost ``lift`` KPI units over those regions and weeks,
with standard error ``lift_se``. The model's lift for the same test is its
prediction minus its prediction under that intervention (the channel's
activity removed in those cells, and with it the activity the channel graph
says it induced in other channels), summed over the same cells.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..data.panel import fmt_date
from ..exceptions import DataError

__all__ = ["LiftTests", "parse_lift_tests", "LIFT_COLUMNS", "sum_variance_factor", "weeks_for_precision"]

LIFT_COLUMNS = ("channel", "start", "end", "lift", "lift_se")


@dataclass(frozen=True)
class LiftTests:
    """Parsed lift tests on a fitted panel's grid (``N`` tests, ``R`` regions, ``T`` weeks)."""

    frame: pd.DataFrame  # channel, start, end, regions (tuple, or None for all), lift, lift_se
    channel: np.ndarray  # [N] channel index
    regions: np.ndarray  # [N,R] bool: regions in the test
    weeks: np.ndarray  # [N,T] bool: weeks in the test window

    @property
    def lift(self) -> np.ndarray:
        """``[N]`` measured lift, KPI units."""
        return self.frame["lift"].to_numpy(dtype=float)

    @property
    def se(self) -> np.ndarray:
        """``[N]`` standard error of the measured lift."""
        return self.frame["lift_se"].to_numpy(dtype=float)

    def cells(self, i: int) -> np.ndarray:
        """``[R,T]`` bool: the cells of test ``i``."""
        return self.regions[i][:, None] & self.weeks[i][None, :]


def _region_list(value: Any) -> tuple[Any, ...] | None:
    """A row's ``regions`` cell: None/NaN/NA (all regions), one label, or a list of labels."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or pd.api.types.is_scalar(value):
        return None if pd.isna(value) else (value,)
    return tuple(value)


def parse_lift_tests(
    tests: pd.DataFrame, channels: Sequence[str], regions: Sequence[Any], dates: pd.Index
) -> LiftTests:
    """Check ``tests`` against the panel and return them on its grid.

    Raises
    ------
    DataError
        Naming the column and row at fault: missing columns, unknown channels
        or regions, a window with no fitted weeks or ``start`` after ``end``,
        a non-finite lift, or a standard error that is not positive.
    """
    if isinstance(tests, (list, tuple)) and tests and all(isinstance(t, Mapping) for t in tests):
        tests = pd.DataFrame(list(tests))  # one dict per test, as records
    if not isinstance(tests, pd.DataFrame):
        raise DataError(
            f"`lift_tests` must be a DataFrame with columns {list(LIFT_COLUMNS)} (and optionally "
            f"'regions'), found {type(tests).__name__}"
        )
    missing = [c for c in LIFT_COLUMNS if c not in tests.columns]
    if missing:
        raise DataError(
            f"`lift_tests` lacks column(s) {missing}; it needs {list(LIFT_COLUMNS)}, plus 'regions' "
            "(a list per row; missing means all regions) when a test covered only some regions"
        )
    if len(tests) == 0:
        raise DataError("`lift_tests` has no rows; pass None to fit without lift tests")
    region_pos = {r: i for i, r in enumerate(regions)}
    is_time = isinstance(dates, pd.DatetimeIndex)
    n, R, T = len(tests), len(regions), len(dates)
    chan = np.zeros(n, dtype=int)
    reg = np.zeros((n, R), dtype=bool)
    wk = np.zeros((n, T), dtype=bool)
    rows = []
    for i, (_, row) in enumerate(tests.iterrows()):
        where = f"`lift_tests` row {i}"
        if row["channel"] not in channels:
            raise DataError(f"{where}: channel {row['channel']!r} is not a fitted channel; channels are {list(channels)}")
        chan[i] = list(channels).index(row["channel"])
        try:
            start = pd.Timestamp(row["start"]) if is_time else row["start"]
            end = pd.Timestamp(row["end"]) if is_time else row["end"]
            in_window = np.asarray((dates >= start) & (dates <= end), dtype=bool)
        except (TypeError, ValueError) as exc:
            raise DataError(
                f"{where}: 'start'/'end' ({row['start']!r}, {row['end']!r}) cannot be compared with "
                f"the fitted dates ({fmt_date(dates[0])}..{fmt_date(dates[-1])}): {exc}; use the same kind of value as `dates`"
            ) from None
        if start > end:
            raise DataError(f"{where}: 'start' {row['start']!r} is after 'end' {row['end']!r}; swap them")
        if not in_window.any():
            raise DataError(
                f"{where}: the window {row['start']!r}..{row['end']!r} holds no fitted week "
                f"({fmt_date(dates[0])}..{fmt_date(dates[-1])}); a lift test must fall inside the fitted period"
            )
        wk[i] = in_window
        listed = _region_list(row["regions"]) if "regions" in tests.columns else None
        if listed is None:
            reg[i] = True
        else:
            unknown = [r for r in listed if r not in region_pos]
            if unknown or not listed:
                raise DataError(
                    f"{where}: 'regions' {list(unknown or listed)[:5]} "
                    f"{'are not fitted regions' if unknown else 'is empty'}; list fitted regions, or "
                    "leave it missing for a national test"
                )
            reg[i, [region_pos[r] for r in listed]] = True
        lift, se = row["lift"], row["lift_se"]
        if not isinstance(lift, (int, float, np.number)) or not np.isfinite(lift):
            raise DataError(f"{where}: 'lift' must be a finite number (KPI units), found {lift!r}")
        if not isinstance(se, (int, float, np.number)) or not np.isfinite(se) or se <= 0:
            raise DataError(
                f"{where}: 'lift_se' must be a positive number (the lift's standard error, KPI "
                f"units), found {se!r}"
            )
        rows.append({
            "channel": row["channel"], "start": start, "end": end,
            "regions": listed, "lift": float(lift), "lift_se": float(se),
        })
    return LiftTests(pd.DataFrame(rows), chan, reg, wk)


def sum_variance_factor(weeks: int, rho: float) -> float:
    """Variance of a sum of ``weeks`` consecutive AR(1) values with unit variance and coefficient ``rho``.

    ``w + 2 sum_{k=1}^{w-1} (w - k) rho^k``: ``w`` for independent weeks,
    ``w^2`` as ``rho`` tends to 1 (one shock held over the whole window).
    """
    if weeks < 1:
        return 0.0
    k = np.arange(1, weeks, dtype=float)
    return float(weeks + 2.0 * ((weeks - k) * float(rho) ** k).sum())


def weeks_for_precision(relative_se: Callable[[int], float], target: float, max_weeks: int) -> float:
    """Fewest weeks (1..``max_weeks``) at which ``relative_se(weeks)`` is at most ``target``, or NaN.

    ``relative_se`` gives a test's noise standard error over its lift for a
    window of that many weeks (``inf`` where the lift is not positive). Found by
    doubling, then bisection: a longer window has more lift and, for
    non-negative effects, a standard error that grows more slowly, so the
    ratio falls with the length, up to the activity's own ups and downs.
    NaN when even ``max_weeks`` weeks fall short.
    """
    if max_weeks < 1:
        return float("nan")
    lo, hi = 0, 1  # relative_se(lo) > target (lo = 0: nothing run yet)
    while relative_se(hi) > target:
        if hi >= max_weeks:
            return float("nan")
        lo, hi = hi, min(2 * hi, max_weeks)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if relative_se(mid) <= target:
            hi = mid
        else:
            lo = mid
    return float(hi)
