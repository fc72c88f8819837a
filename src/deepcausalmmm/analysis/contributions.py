"""Contribution tables computed from a decomposition (no estimator, no plotting)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..constants import BASELINE, CONTROLS, DATE, PREDICTION, REGION

__all__ = ["contributions_frame", "kpi_change_frame", "summarize_contributions"]


def contributions_frame(
    regions: Sequence[Any],
    dates: Sequence[Any],
    channels: Sequence[str],
    baseline: np.ndarray,
    channel_values: np.ndarray,
    control_values: np.ndarray,
) -> pd.DataFrame:
    """One row per (region, date): channel columns, ``baseline``, ``controls``, ``prediction``.

    Parameters
    ----------
    regions, dates : sequences of length N
        Row labels.
    baseline : ndarray ``[N]``; channel_values : ``[N,C]``; control_values : ``[N,K]``
        In KPI units. ``prediction`` is their sum, so the table is additive by construction.
    """
    frame = pd.DataFrame(channel_values, columns=list(channels))
    frame[BASELINE] = baseline
    frame[CONTROLS] = control_values.sum(axis=1) if control_values.size else 0.0
    frame[PREDICTION] = frame[BASELINE] + frame[CONTROLS] + frame[list(channels)].sum(axis=1)
    frame.index = pd.MultiIndex.from_arrays([list(regions), list(dates)], names=[REGION, DATE])
    return frame


def summarize_contributions(
    contributions: pd.DataFrame, channels: Sequence[str], kpi_total: float | None = None
) -> pd.DataFrame:
    """One row per channel: ``contribution``, ``share_of_media``, ``share_of_kpi``.

    ``share_of_kpi`` divides by ``kpi_total`` (the observed KPI sum) when given,
    else by the summed prediction.
    """
    totals = contributions[list(channels)].sum(axis=0)
    media_total = float(totals.sum())
    denom = float(kpi_total) if kpi_total else float(contributions[PREDICTION].sum())
    out = pd.DataFrame(
        {
            "contribution": totals,
            "share_of_media": totals / media_total if media_total else 0.0 * totals,
            "share_of_kpi": totals / denom if denom else 0.0 * totals,
        }
    )
    out.index.name = "channel"
    return out


UNEXPLAINED = "unexplained"  # the KPI change's part the model does not explain (actual - prediction)


def kpi_change_frame(
    parts: Sequence[tuple[str, str, np.ndarray]],
    actual: np.ndarray,
    base: np.ndarray,
    compare: np.ndarray,
    regions: Sequence[Any],
    by_region: bool = False,
) -> pd.DataFrame:
    """The KPI's change from the ``base`` cells to the ``compare`` cells, part by part.

    Parameters
    ----------
    parts : (name, kind, values ``[R,T]``) triples
        An additive decomposition of the model's KPI in KPI units (names unique).
    actual : ndarray ``[R,T]``
        The observed KPI (read only where ``base`` or ``compare`` holds).
    base, compare : bool ndarrays ``[R,T]``
        The cells each period sums over.
    regions : sequence of the ``R`` region labels
    by_region : bool
        One block of rows per region holding a cell of either period, indexed by
        (``region``, ``part``), instead of the sums over regions.

    Returns
    -------
    DataFrame indexed by ``part``: ``kind``, ``base``, ``compare``, ``change`` (compare - base)
    and ``change_pct`` (the change in per cent of the base period's KPI), one row per part and
    a last row ``unexplained`` (the actual KPI minus the model's, kind ``residual``), so that
    ``change`` sums to the actual KPI's change exactly.
    """
    names = [name for name, _, _ in parts]
    residual = UNEXPLAINED
    while residual in names:
        residual += "_"
    model = np.sum([v for _, _, v in parts], axis=0)  # [R,T]
    rows = [*parts, (residual, "residual", actual - model)]

    def per_region(cells: np.ndarray) -> np.ndarray:  # [P,R]
        return np.stack([np.where(cells, v, 0.0).sum(axis=1) for _, _, v in rows])

    b, c = per_region(base), per_region(compare)  # [P,R]
    kinds = [kind for _, kind, _ in rows]
    labels = [name for name, _, _ in rows]
    if by_region:
        shown = np.flatnonzero(base.any(axis=1) | compare.any(axis=1))
        index = pd.MultiIndex.from_tuples([(regions[int(r)], n) for r in shown for n in labels],
                                          names=["region", "part"])
        b_val, c_val = b[:, shown].T.reshape(-1), c[:, shown].T.reshape(-1)
        base_kpi = np.repeat(b[:, shown].sum(axis=0), len(labels))
        kind = kinds * len(shown)
    else:
        index = pd.Index(labels, name="part")
        b_val, c_val = b.sum(axis=1), c.sum(axis=1)
        base_kpi = np.full(len(labels), b.sum())
        kind = kinds
    frame = pd.DataFrame({"kind": kind, "base": b_val, "compare": c_val}, index=index)
    frame["change"] = frame["compare"] - frame["base"]
    with np.errstate(divide="ignore", invalid="ignore"):
        frame["change_pct"] = np.where(base_kpi != 0, frame["change"] / np.abs(base_kpi) * 100, np.nan)
    return frame
