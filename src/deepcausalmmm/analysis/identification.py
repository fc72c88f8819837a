"""Which channels' levels the data observe, and which rest on the response curve's shape.

A channel's contribution (and its total effect, the KPI lost when it is
switched off) is its response from zero activity up to the activity it had.
The data show that part of the curve only where the channel's activity
drops far below its typical value: dark weeks of a flighted channel,
regional holdouts. An always-on channel stays within, say, half to twice
its typical activity; the data then show only how the KPI follows those
swings (a weak signal when they are small next to the KPI's noise), and how
much level sits under them comes from the curve's assumed shape (the Hill
curve and its slope prior). Those channels are the ones whose shares a
model gets most wrong on simulated panels, and the ones to calibrate with a
lift test.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..data.panel import static_channels

__all__ = ["identification_table", "EXTRAPOLATED_FLOOR"]

DARK = 0.05  # activity at or below 5% of the region's mean counts as a dark week
QUANTILE = 0.1  # the "floor": 10th percentile of activity relative to the region's mean
EXTRAPOLATED_FLOOR = 0.3  # default threshold: a floor at or above this is "extrapolated"


def identification_table(
    media: np.ndarray,
    observed: np.ndarray,
    channels: Sequence[str],
    threshold: float,
    lift_tested: Sequence[str] = (),
) -> pd.DataFrame:
    """One row per channel: ``activity_floor``, ``dark_share``, ``level``, ``lift_tested``.

    Parameters
    ----------
    media : ndarray ``[R,T,C]``
        Channel activity on the fitted grid.
    observed : ndarray ``[R,T]`` of bool
        Cells that count (filled cells are left out).
    threshold : float
        ``level`` is ``"extrapolated"`` when ``activity_floor`` is at or above it.
    lift_tested : channel names with a lift test in the fit.

    ``activity_floor``: the 10th percentile, over observed region-weeks of
    regions where the channel is active, of activity divided by that
    region's mean activity. ``dark_share``: the share of those region-weeks
    at or below 5% of the region's mean. ``level``: ``"observed"`` (the
    data reach down to low activity), ``"extrapolated"`` (they do not: the
    channel's contribution rests on the curve's shape), ``"no variation"`` (the same activity
    every week of each region: nothing shows its effect, which is fixed at 0 unless a lift test
    measures it) or ``"no activity"``.
    """
    rows = []
    tested = set(lift_tested)
    static = static_channels(media, observed)  # [C]
    obs = observed.astype(bool)  # [R,T]
    n_obs = obs.sum(axis=1)  # [R]
    for c, name in enumerate(channels):
        a = np.where(obs, media[:, :, c], 0.0)  # [R,T]
        mean = np.divide(a.sum(axis=1), n_obs, out=np.zeros(len(a)), where=n_obs > 0)  # [R]
        active = mean > 0  # [R]
        if not active.any():
            rows.append((np.nan, np.nan, "no activity", name in tested))
            continue
        rel = (a[active] / mean[active, None])[obs[active]]  # [cells] activity / region mean
        floor = float(np.quantile(rel, QUANTILE))
        dark = float(np.mean(rel <= DARK))
        level = "extrapolated" if floor >= threshold else "observed"
        if static[c]:
            level = "no variation"
        rows.append((floor, dark, level, name in tested))
    out = pd.DataFrame(rows, index=pd.Index(list(channels), name="channel"),
                       columns=["activity_floor", "dark_share", "level", "lift_tested"])
    return out
