"""The panel data contract: validate user input and lay it out as [R,T,*] arrays.

Accepted layouts (see README, "Data"):

* ``X`` a DataFrame or 2-D array, one row per (region, week), one column per
  channel; ``y`` one KPI value per row; ``regions``/``dates`` one label per
  row (optional); ``controls`` a DataFrame/array aligned with ``X`` or a list
  of ``X``'s column names.
* ``X`` a 3-D array ``[regions, weeks, channels]`` with ``y`` ``[regions, weeks]``
  and optional ``controls`` ``[regions, weeks, controls]``.

Cells of the (region x week) grid that have no input row are *unobserved*:
media are 0 there, controls are forward/backward filled within the region,
and the KPI is masked out of the loss (never invented).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..constants import NATIONAL
from ..exceptions import DataError

__all__ = ["Panel", "build_panel", "listed", "stale_cells", "take_named_columns", "ArrayLike"]

ArrayLike = Any  # DataFrame, Series, ndarray or sequence


@dataclass(frozen=True)
class Panel:
    """A validated region x time panel.

    Attributes
    ----------
    regions : list
        Region labels, in grid order: sorted (text labels in natural order, "DMA 2" before
        "DMA 10") where the labels sort, else in order of first appearance (3-D input: the
        cube's order).
    dates : pandas.Index
        The regular time grid ``[T]`` (DatetimeIndex, or integer periods).
    channels, controls : list of str
        Channel and control names.
    media : ndarray ``[R,T,C]``
        Channel activity; 0 on unobserved cells.
    control_values : ndarray ``[R,T,K]``
        Controls; forward/backward filled within a region on unobserved cells.
    y : ndarray ``[R,T]`` or None
        KPI (NaN on unobserved cells); None for prediction inputs.
    observed : ndarray ``[R,T]`` of bool
        Whether an input row existed for the cell.
    weight : ndarray ``[R,T]``
        Loss weight per cell (sample weight; 0 where unobserved).
    """

    regions: list[Any]
    dates: pd.Index
    channels: list[str]
    controls: list[str]
    media: np.ndarray
    control_values: np.ndarray
    y: np.ndarray | None
    observed: np.ndarray
    weight: np.ndarray
    row_index: np.ndarray = field(repr=False)  # [N, 2] (region idx, time idx) per input row

    @property
    def shape(self) -> tuple[int, int, int]:
        """(R, T, C)."""
        return self.media.shape  # type: ignore[return-value]

    def measured(self) -> np.ndarray:
        """``[R,T]`` observed cells that are not filled gaps (:func:`stale_cells`): the cells
        whose activity is data, for the channel graph and what the data identify."""
        if self.y is None:
            return self.observed
        return self.observed & ~stale_cells(self.y, self.media, self.observed)


# ---------------------------------------------------------------------------
# helpers


def fmt_date(d: Any) -> str:
    if isinstance(d, (pd.Timestamp, np.datetime64)):
        return pd.Timestamp(d).strftime("%Y-%m-%d")
    return str(d)


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _where(region: Any, dates: Sequence[Any]) -> str:
    ds = sorted(dates)
    span = fmt_date(ds[0]) if len(ds) == 1 else f"{fmt_date(ds[0])}..{fmt_date(ds[-1])}"
    return f"region '{region}', dates {span}"


def _as_frame(values: ArrayLike, name: str, prefix: str) -> pd.DataFrame:
    if isinstance(values, pd.DataFrame):
        frame = values.copy()
        frame.columns = [str(c) for c in frame.columns]
        return frame.reset_index(drop=True)
    if isinstance(values, pd.Series):
        return values.to_frame(name=str(values.name or f"{prefix}0")).reset_index(drop=True)
    arr = np.asarray(values)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise DataError(
            f"`{name}` must be a DataFrame or a 2-D array (rows x columns), found an array "
            f"with {arr.ndim} dimensions; pass a 3-D [regions, weeks, {prefix}s] array only "
            "together with a 3-D `X`"
        )
    return pd.DataFrame(arr, columns=[f"{prefix}_{i}" for i in range(arr.shape[1])])


def _check_index(X: Any, other: Any, name: str) -> None:
    """Rows are matched by position; refuse pandas inputs whose index orders ``X``'s labels differently.

    When ``X`` and ``other`` are both pandas objects of the same length and
    hold the same index labels in a different order, matching them by
    position would pair each row of ``X`` with another row's value. With
    different labels (e.g. one index reset) position is what was meant, but
    a warning says so.
    """
    if not isinstance(X, (pd.DataFrame, pd.Series)) or not isinstance(other, (pd.DataFrame, pd.Series)):
        return
    a, b = X.index, other.index
    if len(a) != len(b) or a.equals(b):
        return
    if a.is_unique and b.is_unique and set(a) == set(b):
        i = int(np.argmax(np.asarray(a) != np.asarray(b)))
        la, lb = (v.item() if isinstance(v, np.generic) else v for v in (a[i], b[i]))
        raise DataError(
            f"`{name}` has the same index labels as `X` in a different order (row {i}: `X` has "
            f"label {la!r}, `{name}` has {lb!r}); rows are matched by position, so pass "
            f"`{name}.loc[X.index]` to match them by label, or `.to_numpy()` if the order is right"
        )
    warnings.warn(
        f"`{name}`'s index differs from `X`'s; rows are matched by position (as arrays), not by "
        "index label",
        UserWarning,
        stacklevel=4,
    )


NAMED_ARGUMENTS = ("y", "regions", "dates", "sample_weight")  # may name a column of a DataFrame X


def take_named_columns(X: ArrayLike, **named: Any) -> tuple[ArrayLike, dict[str, Any]]:
    """Arguments given as the name of one of ``X``'s columns, as that column.

    ``fit(df[cols], regions="region", dates="date")`` reads ``df["region"]`` and
    ``df["date"]`` and leaves those columns out of the channels (like ``controls``
    given as column names). Other values pass through unchanged; ``X`` is not
    modified (a copy without the named columns is returned).

    Raises
    ------
    DataError
        A string that is not a column of a DataFrame ``X``, or one column named twice.
    """
    names = {k: v for k, v in named.items() if isinstance(v, str)}
    if not names:
        return X, named
    if not isinstance(X, pd.DataFrame):
        k, v = next(iter(names.items()))
        raise DataError(
            f"`{k}` is the string {v!r}, but `X` is a {type(X).__name__}, not a DataFrame with "
            f"named columns; pass one value per row of `X` as `{k}`, or `X` as a DataFrame holding "
            f"a column {v!r}"
        )
    for k, v in names.items():
        if v not in X.columns:
            raise DataError(
                f"`{k}` is the string {v!r}, which is not a column of `X` (columns: "
                f"{listed([str(c) for c in X.columns])}); pass one value per row as `{k}`, or "
                "the name of a column of `X`"
            )
    taken = list(names.values())
    twice = next((v for v in taken if taken.count(v) > 1), None)
    if twice is not None:
        args = [f"`{k}`" for k, v in names.items() if v == twice]
        raise DataError(
            f"{' and '.join(args)} both name the column {twice!r} of `X`; name a different column "
            "for each"
        )
    out = dict(named)
    for k, v in names.items():
        out[k] = X[v]
    return X.drop(columns=taken), out


def listed(labels: Sequence[Any], most: int = 10) -> str:
    """``labels`` for a message: all of them, or the first ``most`` and how many more."""
    shown = ", ".join(repr(v.item() if isinstance(v, np.generic) else v) for v in list(labels)[:most])
    extra = len(labels) - most
    return f"[{shown}]" if extra <= 0 else f"[{shown}, ... and {extra} more]"


def _as_vector(values: ArrayLike, name: str) -> np.ndarray:
    if isinstance(values, pd.DataFrame):
        if values.shape[1] != 1:
            raise DataError(
                f"`{name}` must have one value per row, found a DataFrame with "
                f"{values.shape[1]} columns; pass a single column"
            )
        values = values.iloc[:, 0]
    arr = np.asarray(values)
    if arr.ndim != 1:
        arr = arr.reshape(-1) if arr.ndim == 2 and 1 in arr.shape else arr
    if arr.ndim != 1:
        raise DataError(f"`{name}` must be one-dimensional (one value per row), found shape {arr.shape}")
    return arr


def _check_numeric(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    dated = [c for c in frame.columns
             if pd.api.types.is_datetime64_any_dtype(frame[c]) or pd.api.types.is_timedelta64_dtype(frame[c])]
    if dated:
        raise DataError(
            f"`{name}` column(s) {dated} hold dates, not activity; pass them as `dates=` and drop "
            f"them from `{name}`" + (f", or name the column: `dates={str(dated[0])!r}`" if name == "X" else "")
        )
    bad = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        coerced = frame[bad].apply(pd.to_numeric, errors="coerce")
        failed = coerced.isna() & frame[bad].notna()  # text that is not a number (missing cells are NaN)
        really_bad = [c for c in bad if failed[c].any()]
        if really_bad:
            first = really_bad[0]
            examples = list(dict.fromkeys(frame.loc[failed[first].to_numpy(), first].tolist()))[:3]
            raise DataError(
                f"`{name}` column(s) {really_bad} are not numeric ({int(failed[first].sum())} of "
                f"{len(frame)} cells of {first!r} are not numbers, e.g. {', '.join(map(repr, examples))}); "
                "pass only numeric channel/control columns (fix or drop those cells) and give region "
                "and date labels through `regions=` and `dates=` (the labels, or the names of their "
                "columns in `X`)"
            )
        frame = frame.copy()
        frame[bad] = coerced
    return frame.astype(float) if frame.shape[1] else frame


_FINITE_FIX = {  # what to do about a NaN/infinite value, per argument
    "X": "fill them (missing spend is usually 0) or drop the rows",
    "controls": "fill them (e.g. carry the last known value forward) or drop the rows",
    "y": "drop those rows, or keep them with any finite KPI value and `sample_weight` 0 "
         "(the fit then ignores their KPI while media still carry over)",
}


def _check_finite(
    values: np.ndarray, columns: Sequence[str], name: str, reg: np.ndarray, dts: np.ndarray
) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        j = int(np.argmax(bad.any(axis=0)))
        rows = np.flatnonzero(bad[:, j])
        region = reg[rows[0]]
        in_region = rows[reg[rows] == region]
        kind = "NaN" if np.isnan(values[rows[0], j]) else "infinite"
        raise DataError(
            f"`{name}` column '{columns[j]}' has {len(rows)} {kind}/non-finite value(s) "
            f"({_where(region, dts[in_region])}); {_FINITE_FIX[name]}"
        )


MONTH_MIN_DAYS = 28  # dates at least this far apart, all month starts (or all month ends): a monthly grid


def month_anchor(dates: pd.DatetimeIndex) -> str | None:
    """``"start"`` / ``"end"`` when ``dates`` (two or more, at midnight, at least 28 days apart) are
    all month starts / all month ends: a grid of calendar months (or quarters), whose spacing in
    days varies. ``None`` otherwise (a fixed spacing such as weekly)."""
    uniq = dates.unique().sort_values()
    if len(uniq) < 2 or (uniq != uniq.normalize()).any() or (uniq[1:] - uniq[:-1]).min() < pd.Timedelta(days=MONTH_MIN_DAYS):
        return None
    if bool(uniq.is_month_start.all()):
        return "start"
    if bool(uniq.is_month_end.all()):
        return "end"
    return None


def month_number(dates: pd.DatetimeIndex) -> np.ndarray:
    """Calendar months since year 0 ``[T]`` (January 2024 -> 2024 * 12)."""
    return np.asarray(dates.year, dtype=np.int64) * 12 + np.asarray(dates.month, dtype=np.int64) - 1


def month_grid(start: pd.Timestamp, periods: int, months: int, anchor: str) -> pd.DatetimeIndex:
    """``periods`` dates from ``start``, every ``months`` calendar months, at month starts or ends."""
    offset = pd.offsets.MonthBegin(months) if anchor == "start" else pd.offsets.MonthEnd(months)
    return pd.DatetimeIndex(pd.date_range(start, periods=periods, freq=offset))


def _common_step(values: np.ndarray, message: Callable[[int, int], str]) -> int:
    """The smallest spacing of sorted integer positions ``values``, which must divide every
    offset from the first; else a DataError with ``message(step, index of a position off it)``."""
    step = int(np.diff(values).min())
    off = (values - values[0]) % step
    if (off != 0).any():
        raise DataError(message(step, int(np.flatnonzero(off)[0])))
    return step


def _regular_grid(dates: pd.Index) -> pd.Index:
    uniq = dates.unique().sort_values()
    if len(uniq) == 1:
        return uniq
    if isinstance(uniq, pd.DatetimeIndex):
        anchor = month_anchor(uniq)
        if anchor is not None:  # calendar months or quarters: steps counted in months
            months = month_number(uniq)
            step = _common_step(months, lambda step, i: (
                f"`dates` are irregular: month {anchor}s whose smallest spacing is {step} month(s) "
                f"but {fmt_date(uniq[i])} is off that grid; dates must lie on a regular grid (every "
                "month, every quarter, every week...)"))
            return month_grid(uniq[0], int((months[-1] - months[0]) // step) + 1, step, anchor)
        step = _common_step(uniq.asi8, lambda step, i: (
            f"`dates` are irregular: the smallest spacing is {pd.Timedelta(step)} but "
            f"{fmt_date(uniq[i])} is off that grid; dates must lie on a regular grid: a fixed "
            "spacing (e.g. all Mondays, or every day) or calendar months (all month starts, or all "
            "month ends)"))
        return pd.DatetimeIndex(pd.date_range(uniq[0], uniq[-1], freq=pd.Timedelta(step)))
    vals = np.asarray(uniq, dtype=np.int64)
    step = _common_step(vals, lambda step, i: (
        f"`dates` are irregular: integer periods with step {step} but {vals[i]} is off that grid; "
        "use consecutive period numbers"))
    return pd.Index(np.arange(vals[0], vals[-1] + step, step), dtype=np.int64)


DATE_FORMATS = {  # written dates pandas does not settle from the first value: day first or month first
    "31/12/2024": "%d/%m/%Y", "12/31/2024": "%m/%d/%Y", "31.12.2024": "%d.%m.%Y", "31-12-2024": "%d-%m-%Y",
    "12-31-2024": "%m-%d-%Y", "2024/12/31": "%Y/%m/%d", "31/12/24": "%d/%m/%y", "12/31/24": "%m/%d/%y",
}


def _written_dates(idx: pd.Index) -> pd.DatetimeIndex | None:
    """Text dates read in one form: ISO 8601 (2024-12-31, with or without a time; ISO weeks
    2024-W01 as their Mondays), else the one
    form of :data:`DATE_FORMATS` that reads every value, else, of several, the one form whose
    dates lie on a regular grid; None when none does (or several still do: pandas decides).

    pandas infers a form from the first value alone ('02/01/2023' as February 1st, then fails
    on '16/01/2023'), and where it infers none it reads each value on its own, mixing day-first
    and month-first readings ('01/08/24' as August 1st, '15/01/24' as January 15th)."""
    if not all(isinstance(v, str) for v in idx):
        return None
    text = pd.Index([v.strip() for v in idx])
    weeks = text.str.extract(r"^(\d{4})-?W(\d{2})(?:-?([1-7]))?$")
    if weeks[0].notna().all():  # ISO weeks (2024-W01, 2024W01, 2024-W01-1): each week's Monday (or given day)
        day = weeks[2].fillna("1")
        try:
            return pd.DatetimeIndex(pd.to_datetime(weeks[0] + "-W" + weeks[1] + "-" + day, format="%G-W%V-%u"))
        except ValueError:
            return None
    try:
        return pd.DatetimeIndex(pd.to_datetime(text, format="ISO8601"))
    except (ValueError, TypeError):
        pass
    fits = []
    for form in DATE_FORMATS.values():
        try:
            fits.append(pd.DatetimeIndex(pd.to_datetime(text, format=form)))
        except (ValueError, TypeError):
            continue
    if len(fits) > 1:
        fits = [f for f in fits if _on_a_grid(f)]
    return fits[0] if len(fits) == 1 else None


def _on_a_grid(dates: pd.DatetimeIndex) -> bool:
    try:
        _regular_grid(dates)
    except DataError:
        return False
    return True


DAY = pd.Timedelta(days=1)


def _check_aligned(grid: pd.Index, dates: pd.Index, r_of_row: np.ndarray, labels: list[Any]) -> None:
    """A DataError when every region's own dates are further apart than the shared grid's step:
    regions on different weekdays (one region's weeks starting on Sundays, the others' on
    Mondays) would make a daily grid with most days empty."""
    if not isinstance(grid, pd.DatetimeIndex) or len(grid) < 2 or len(dates) > len(labels) * len(grid) / 2:
        return  # offset regions leave at most half of the grid's cells with a row: a fuller grid is aligned
    step = grid[1] - grid[0]
    rows = pd.DataFrame({"r": r_of_row, "d": pd.DatetimeIndex(dates)}).sort_values(["r", "d"])
    gaps = rows.groupby("r")["d"].diff().dropna()
    if gaps.empty:
        return
    own = gaps.groupby(rows.loc[gaps.index, "r"]).min()  # each region's smallest spacing
    if own.min() <= step:
        return
    period = own.min()
    first = rows.groupby("r")["d"].min()
    phase = (first - first.min()) % period  # where in its spacing each region's dates fall
    common = phase.value_counts().index[0]
    shift = (common - phase + period / 2) % period - period / 2  # the nearest move onto the common phase
    odd = shift[shift != pd.Timedelta(0)]
    on = first[phase == common].iloc[0].day_name()
    moves = ", ".join(f"{labels[r]!r} by {d / DAY:+g} day(s)" for r, d in odd.iloc[:5].items())
    raise DataError(
        f"`dates` are at least {period / DAY:g} days apart within each region, but the regions' dates are "
        f"offset from each other (most regions' dates fall on {on}s, {listed([labels[r] for r in odd.index], 5)} "
        f"on {', '.join(sorted(set(first[odd.index].dt.day_name())))}s), so the regions' shared grid would "
        f"step by {step / DAY:g} day(s), most of its cells empty. Put every region's dates on the same days: "
        f"shift {moves}{' and so on' if len(odd) > 5 else ''} (with pandas, dates + pd.Timedelta(days=...) "
        "on those regions' rows)"
    )


def _parse_dates(raw: np.ndarray) -> pd.Index:
    idx = pd.Index(raw).infer_objects()  # an object array of ints is integer periods, not ns
    if isinstance(idx.dtype, pd.PeriodDtype):  # pandas periods (e.g. weeks): each one's first day
        idx = idx.to_timestamp(how="start")
    if pd.api.types.is_integer_dtype(idx):
        return idx.astype(np.int64)
    if pd.api.types.is_float_dtype(idx):
        if np.isnan(idx.to_numpy()).any() or not np.all(np.mod(idx.to_numpy(), 1) == 0):
            raise DataError(
                "`dates` are numbers that are not whole periods (or contain NaN); pass "
                "datetimes or integer period numbers"
            )
        return idx.astype(np.int64)
    written = _written_dates(idx)
    try:
        parsed = pd.DatetimeIndex(pd.to_datetime(idx)) if written is None else written
    except (ValueError, TypeError) as exc:
        raise DataError(
            f"`dates` could not be read as dates ({exc}); pass datetimes, ISO date strings "
            f"(2024-01-31), ISO weeks (2024-W05), dates written in one of the forms {list(DATE_FORMATS)} "
            "or integer period numbers"
        ) from None
    if parsed.hasnans:
        raise DataError(f"`dates` contain {int(parsed.isna().sum())} missing value(s) (NaT); every row "
                        "needs a date: fill them or drop those rows")
    if parsed.tz is not None:  # the calendar week is what counts: keep wall time, drop the zone
        parsed = parsed.tz_localize(None)
    return parsed.as_unit("ns")


# ---------------------------------------------------------------------------
# main entry point


def build_panel(
    X: ArrayLike,
    y: ArrayLike | None = None,
    regions: ArrayLike | None = None,
    dates: ArrayLike | None = None,
    controls: ArrayLike | Sequence[str] | None = None,
    sample_weight: ArrayLike | None = None,
    *,
    purpose: Literal["fit", "predict"] = "fit",
    min_weeks: int = 2,
    nonnegative: bool = True,
) -> Panel:
    """Validate inputs and return a :class:`Panel`.

    Parameters
    ----------
    X : DataFrame, 2-D array or 3-D array ``[R,T,C]``
        Channel activity (spend or impressions), one row per (region, week).
    y : array-like, optional
        KPI per row (required when ``purpose='fit'``).
    regions, dates : array-like, optional
        One label per row. No regions: one national series. No dates: row order
        within each region is time order.
    controls : DataFrame, array, or column name(s) of ``X``, optional
        ``y``, ``regions``, ``dates`` and ``sample_weight`` may also be the name of a
        column of a DataFrame ``X`` (:func:`take_named_columns`); named columns are
        not channels.
    sample_weight : array-like, optional
        Non-negative loss weight per row.
    purpose : {"fit", "predict"}
        ``fit`` requires ``y``, at least ``min_weeks`` weeks and two weeks per region.
    min_weeks : int
        Fewest grid weeks accepted for fitting.
    nonnegative : bool
        Reject negative channel values.

    Raises
    ------
    DataError
        For any violation of the contract; nothing is modified.
    """
    if X is None:
        raise DataError("`X` is required: pass a DataFrame or array of channel activity")
    if isinstance(controls, str):
        controls = [controls]
    X, named = take_named_columns(X, y=y, regions=regions, dates=dates, sample_weight=sample_weight)
    y, regions, dates, sample_weight = (named[k] for k in NAMED_ARGUMENTS)
    if isinstance(X, np.ndarray) and X.ndim == 3:
        return _from_cube(X, y, regions, dates, controls, sample_weight, purpose, min_weeks, nonnegative)

    for other, other_name in ((y, "y"), (regions, "regions"), (dates, "dates"), (sample_weight, "sample_weight"),
                              (controls, "controls")):
        _check_index(X, other, other_name)
    frame = _as_frame(X, "X", "channel")
    n = len(frame)
    if n == 0:
        raise DataError("`X` has no rows; pass at least one row per (region, week)")
    ctrl_frame: pd.DataFrame
    if controls is None:
        ctrl_frame = pd.DataFrame(index=range(n))
    elif isinstance(controls, (list, tuple)) and all(isinstance(c, str) for c in controls):
        missing = [c for c in controls if c not in frame.columns]
        if missing:
            raise DataError(
                f"`controls` names {missing} that are not columns of `X` (columns: "
                f"{list(frame.columns)}); pass existing column names or a separate DataFrame"
            )
        ctrl_frame = frame[list(controls)].reset_index(drop=True)
        frame = frame.drop(columns=list(controls))
    else:
        ctrl_frame = _as_frame(controls, "controls", "control")
        if len(ctrl_frame) != n:
            raise DataError(
                f"`controls` has {len(ctrl_frame)} rows but `X` has {n}; pass one control row "
                "per row of `X`"
            )
    if frame.shape[1] == 0:
        raise DataError("`X` has no channel columns; pass at least one channel")
    dup_cols = [c for c in frame.columns if list(frame.columns).count(c) > 1]
    if dup_cols:
        raise DataError(f"`X` has duplicate column names {sorted(set(dup_cols))}; rename them")

    yv: np.ndarray | None = None
    if y is not None:
        yv = _as_vector(y, "y")
        if len(yv) != n:
            raise DataError(f"`y` has {len(yv)} values but `X` has {n} rows; pass one KPI value per row")
        try:
            yv = yv.astype(float)
        except (TypeError, ValueError):
            bad = next((v for v in yv if not _is_number(v)), yv[0])
            raise DataError(f"`y` must be numeric (one KPI value per row), found e.g. {bad!r}; "
                            "convert it with pd.to_numeric and fix or drop the rows that fail") from None
    elif purpose == "fit":
        raise DataError("`y` is required to fit: pass the KPI, one value per row of `X`")

    if regions is None:
        reg = np.array([NATIONAL] * n, dtype=object)
    else:
        reg = _as_vector(regions, "regions").astype(object)
        if len(reg) != n:
            raise DataError(
                f"`regions` has {len(reg)} labels but `X` has {n} rows; pass one region label per row"
            )
        if pd.isna(pd.Series(reg)).any():
            raise DataError(f"`regions` contains {int(pd.isna(pd.Series(reg)).sum())} missing label(s); "
                            "every row needs a region: fill them or drop those rows")

    region_labels = _canonical_order(pd.unique(reg))
    r_of_row = pd.Index(region_labels).get_indexer(reg)

    if dates is None:
        pos = pd.Series(np.arange(n)).groupby(r_of_row).cumcount().to_numpy()
        dt_index: pd.Index = pd.Index(pos.astype(np.int64))
    else:
        dv = _as_vector(dates, "dates")
        if len(dv) != n:
            raise DataError(f"`dates` has {len(dv)} values but `X` has {n} rows; pass one date per row")
        dt_index = _parse_dates(dv)
    dts = np.asarray(dt_index)

    channels = [str(c) for c in frame.columns]
    ctrl_names = [str(c) for c in ctrl_frame.columns]
    overlap = set(channels) & set(ctrl_names)
    if overlap:
        raise DataError(f"columns {sorted(overlap)} are both channels and controls; pick one role")
    frame = _check_numeric(frame, "X")
    ctrl_frame = _check_numeric(ctrl_frame, "controls")
    media_rows = frame.to_numpy(dtype=float)
    ctrl_rows = ctrl_frame.to_numpy(dtype=float).reshape(n, len(ctrl_names))
    _check_finite(media_rows, channels, "X", reg, dts)
    _check_finite(ctrl_rows, ctrl_names, "controls", reg, dts)
    if yv is not None:
        _check_finite(yv[:, None], ["y"], "y", reg, dts)
    if nonnegative and (media_rows < 0).any():
        j = int(np.argmax((media_rows < 0).any(axis=0)))
        rows = np.flatnonzero(media_rows[:, j] < 0)
        region = reg[rows[0]]
        raise DataError(
            f"`X` column '{channels[j]}' has {len(rows)} negative value(s) "
            f"({_where(region, dts[rows[reg[rows] == region]])}); spend/activity must be >= 0"
        )

    wv: np.ndarray
    if sample_weight is None:
        wv = np.ones(n)
    else:
        wv = _as_vector(sample_weight, "sample_weight").astype(float)
        if len(wv) != n:
            raise DataError(
                f"`sample_weight` has {len(wv)} values but `X` has {n} rows; pass one weight per row"
            )
        if not np.isfinite(wv).all() or (wv < 0).any():
            i = int(np.flatnonzero(~np.isfinite(wv) | (wv < 0))[0])
            raise DataError(f"`sample_weight` must be finite and >= 0 for every row, found {wv[i]} in row "
                            f"{i}; use 0 for rows whose KPI the fit should ignore, 1 for ordinary rows")
        if purpose == "fit" and not (wv > 0).any():
            raise DataError("`sample_weight` is 0 for every row, so the fit has no KPI to learn from; "
                            "give the rows to fit a positive weight (1 for ordinary rows)")

    key = pd.DataFrame({"r": r_of_row, "d": dts})
    dup = key.duplicated(keep=False).to_numpy()
    if dup.any():
        first = np.flatnonzero(dup)[0]
        region = reg[first]
        same = dts[dup & (reg == region)]
        raise DataError(
            f"duplicate (region, date) rows: {int(dup.sum())} rows share a key "
            f"({_where(region, same)}); aggregate or drop duplicates so each region has one row "
            "per date"
        )

    grid = _regular_grid(pd.Index(dts) if dates is None else dt_index)
    _check_aligned(grid, dt_index, r_of_row, region_labels)
    t_of_row = grid.get_indexer(dt_index)
    R, T, C, K = len(region_labels), len(grid), len(channels), len(ctrl_names)

    if purpose == "fit":
        counts = np.bincount(r_of_row, minlength=R)
        single = [region_labels[i] for i in np.flatnonzero(counts < 2)]
        if single:
            raise DataError(
                f"region(s) {listed(single, 5)} have a single week of data; a region needs at least two "
                "weeks to be fitted. Drop it or add its history"
            )
        if T < min_weeks:
            raise DataError(
                f"the panel spans {T} weeks but the model needs at least {min_weeks} "
                "(config data.min_weeks); pass a longer history"
            )

    media = np.zeros((R, T, C))
    media[r_of_row, t_of_row] = media_rows
    ctrl = np.full((R, T, K), np.nan)
    ctrl[r_of_row, t_of_row] = ctrl_rows
    if K:
        for k in range(K):
            df_k = pd.DataFrame(ctrl[:, :, k].T)
            ctrl[:, :, k] = df_k.ffill().bfill().to_numpy().T
        ctrl = np.nan_to_num(ctrl, nan=0.0)
    observed = np.zeros((R, T), dtype=bool)
    observed[r_of_row, t_of_row] = True
    weight = np.zeros((R, T))
    weight[r_of_row, t_of_row] = wv
    ygrid: np.ndarray | None = None
    if yv is not None:
        ygrid = np.full((R, T), np.nan)
        ygrid[r_of_row, t_of_row] = yv

    if purpose == "fit":
        zero = [channels[c] for c in range(C) if not media[:, :, c].any()]
        if zero:
            warnings.warn(
                f"channel(s) {zero} are zero in every row; their contribution will be 0",
                UserWarning,
                stacklevel=3,
            )
        if ygrid is not None:
            counted = observed & (weight > 0)  # [R,T] cells whose KPI the fit uses
            zero = counted.any(axis=1) & ~(counted & (ygrid != 0)).any(axis=1)  # [R]
            dead = [region_labels[r] for r in np.flatnonzero(zero)]
            if dead:
                warnings.warn(
                    f"{len(dead)} region(s) ({listed(dead, 5)}) have KPI 0 in every fitted week; the fit still credits "
                    "their media with effects, offset by a negative baseline, and counts them in "
                    "totals and shares. If the KPI is not recorded there, drop those regions' rows",
                    UserWarning,
                    stacklevel=3,
                )
        measured = observed if ygrid is None else observed & ~stale_cells(ygrid, media, observed)
        flat = [channels[c] for c in np.flatnonzero(static_channels(media, measured))]
        if flat:
            warnings.warn(
                f"channel(s) {flat} have the same activity in every observed week of each region "
                "(no week-to-week variation anywhere); the data cannot show their effect, which a "
                "region's baseline would absorb just as well, so their contribution is fixed at 0 "
                "unless fit gets a lift test for them (fit(lift_tests=...)), which measures it",
                UserWarning,
                stacklevel=3,
            )
        twins = twin_channels(media, measured)
        if twins:
            pairs = ", ".join(f"'{channels[a]}' and '{channels[b]}' ({r:.4f})" for a, b, r in twins[:5])
            warnings.warn(
                f"channel pair(s) {pairs} move together in every region (correlation of their "
                f"activity relative to each region's mean at least {TWIN_CORRELATION}): the data "
                "cannot tell their effects apart, so the split between them comes from the priors, "
                "and the learned graph may link them at weight 1, each then counting the other's "
                "effect in its total. Merge each pair into one column (or drop one) unless they "
                "are truly different channels bought on the same plan",
                UserWarning,
                stacklevel=3,
            )
    return Panel(
        regions=region_labels,
        dates=grid,
        channels=channels,
        controls=ctrl_names,
        media=media,
        control_values=ctrl,
        y=ygrid,
        observed=observed,
        weight=weight,
        row_index=np.stack([r_of_row, t_of_row], axis=1),
    )


def _natural_key(label: str) -> tuple[tuple[tuple[int, Any], ...], str]:
    """Sort key of a text label with its digit runs read as numbers ("DMA 2" before "DMA 10"),
    the label itself breaking ties ("r01" and "r1")."""
    parts = (p for p in re.split(r"(\d+)", label) if p)
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts), label


def _canonical_order(labels: np.ndarray) -> list[Any]:
    """Region labels sorted (text labels in natural order, "DMA 2" before "DMA 10"), or in
    order of first appearance where labels of mixed types do not sort, so that the rows' order
    never changes a fit: the regions' order sets float sums, the graph's region bootstrap and
    everything per region."""
    items = list(labels)
    try:
        if all(isinstance(v, str) for v in items):
            return sorted(items, key=_natural_key)
        return sorted(items)
    except TypeError:  # mixed label types, e.g. 1 and "north"
        return items


TWIN_CORRELATION = 0.999  # relative-activity correlation from which two channels count as one


def twin_channels(media: np.ndarray, observed: np.ndarray) -> list[tuple[int, int, float]]:
    """Pairs ``(a, b, correlation)`` of channels whose activity relative to each region's mean
    (over the ``observed`` cells ``[R,T]``) correlates at ``TWIN_CORRELATION`` or more, pooled
    over regions: the same column given twice, or one channel in two units (spend and
    impressions at a fixed price). Channels that never vary within a region are left out."""
    obs = observed.astype(bool)  # [R,T]
    n = np.maximum(obs.sum(axis=1), 1)[:, None]  # [R,1]
    mean = np.where(obs[..., None], media, 0.0).sum(axis=1) / n  # [R,C]
    rel = np.divide(media, mean[:, None, :], out=np.zeros_like(media), where=mean[:, None, :] > 0)
    dev = (rel - (mean > 0)[:, None, :])[obs]  # [N,C] movements around each region's mean
    norm = np.sqrt((dev**2).sum(axis=0))  # [C]
    live = norm > 1e-9 * np.sqrt(max(len(dev), 1))
    if live.sum() < 2:
        return []
    corr = (dev.T @ dev) / np.outer(np.where(live, norm, 1.0), np.where(live, norm, 1.0))  # [C,C]
    a, b = np.nonzero(np.triu(corr >= TWIN_CORRELATION, k=1) & live[:, None] & live[None, :])
    return [(int(i), int(j), float(corr[i, j])) for i, j in zip(a, b, strict=True)]


def static_channels(media: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """``[C]`` bool: channels active somewhere whose activity never changes within a region
    over its observed weeks (a flat fee booked every week, or a per-region constant). Their
    effect is not identified: a region's baseline absorbs any level they could carry."""
    obs = observed.astype(bool)[..., None]  # [R,T,1]
    hi = np.where(obs, media, -np.inf).max(axis=1)  # [R,C]
    lo = np.where(obs, media, np.inf).min(axis=1)  # [R,C]
    seen = obs.any(axis=1)  # [R,1]
    spread = np.where(seen, hi - lo, 0.0)  # [R,C]
    size = np.where(seen, np.maximum(np.abs(hi), np.abs(lo)), 0.0)  # [R,C]
    varies = (spread > 1e-9 * np.maximum(size, 1e-300)).any(axis=0)  # [C]
    active = (np.where(obs, media, 0.0) != 0).any(axis=(0, 1))  # [C]
    return active & ~varies


def stale_cells(y: np.ndarray, media: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Cells ``[R,T]`` that look like filled gaps rather than measurements.

    A cell is stale when every channel is exactly 0 and its KPI exactly equals
    the KPI of an observed neighbouring week of the same region: the signature
    of a panel completed by forward/backward filling, where a feed stopped
    but its last value was carried on. Genuine weeks rarely repeat a KPI to
    the last digit while all media are dark.
    """
    R, T = observed.shape
    if T < 2:
        return np.zeros((R, T), dtype=bool)
    dark = observed & ~(media != 0).any(axis=2)  # [R,T]
    same = observed[:, 1:] & observed[:, :-1] & (y[:, 1:] == y[:, :-1])  # [R,T-1] t vs t-1
    repeat = np.zeros((R, T), dtype=bool)
    repeat[:, 1:] |= same
    repeat[:, :-1] |= same
    return dark & repeat


def _from_cube(
    X: np.ndarray,
    y: ArrayLike | None,
    regions: ArrayLike | None,
    dates: ArrayLike | None,
    controls: ArrayLike | None,
    sample_weight: ArrayLike | None,
    purpose: Literal["fit", "predict"],
    min_weeks: int,
    nonnegative: bool,
) -> Panel:
    R, T, C = X.shape
    reg_labels = list(regions) if regions is not None else (
        [NATIONAL] if R == 1 else [f"region_{i}" for i in range(R)]
    )
    if len(reg_labels) != R:
        raise DataError(
            f"`regions` has {len(reg_labels)} labels but the 3-D `X` has {R} regions; pass one "
            "label per region"
        )
    date_vals = list(dates) if dates is not None else list(range(T))
    if len(date_vals) != T:
        raise DataError(
            f"`dates` has {len(date_vals)} values but the 3-D `X` has {T} weeks; pass one date per week"
        )
    rr = np.repeat(np.asarray(reg_labels, dtype=object), T)
    dd = np.tile(np.asarray(date_vals), R)  # keep the dates' own dtype (ints stay periods)
    flat = X.reshape(R * T, C)  # [R,T,C] -> [R*T,C]
    yflat = None
    if y is not None:
        ya = np.asarray(y, dtype=float)
        if ya.shape != (R, T):
            raise DataError(f"`y` must have shape {(R, T)} to match the 3-D `X`, found {ya.shape}")
        yflat = ya.reshape(R * T)  # [R,T] -> [R*T]
    cflat = None
    if controls is not None:
        ca = np.asarray(controls, dtype=float)
        if ca.ndim != 3 or ca.shape[:2] != (R, T):
            raise DataError(
                f"`controls` must have shape ({R}, {T}, K) to match the 3-D `X`, found {ca.shape}"
            )
        cflat = ca.reshape(R * T, ca.shape[2])  # [R,T,K] -> [R*T,K]
    wflat = None
    if sample_weight is not None:
        wa = np.asarray(sample_weight, dtype=float)
        if wa.shape != (R, T):
            raise DataError(f"`sample_weight` must have shape {(R, T)}, found {wa.shape}")
        wflat = wa.reshape(R * T)
    return build_panel(
        flat,
        yflat,
        regions=rr,
        dates=dd,
        controls=cflat,
        sample_weight=wflat,
        purpose=purpose,
        min_weeks=min_weeks,
        nonnegative=nonnegative,
    )
