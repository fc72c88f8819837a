"""Contribution tables computed from a decomposition (no estimator, no plotting)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..constants import BASELINE, CONTROLS, DATE, PREDICTION, REGION

__all__ = ["contributions_frame", "summarize_contributions"]


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
