"""Dimension names and shared constants.

Every tensor in the package is laid out with the dimensions named here, in
this order, so that shape comments such as ``[R,T,C]`` always mean
(region, time, channel).
"""

from __future__ import annotations

__all__ = [
    "REGION",
    "DATE",
    "CHANNEL",
    "CONTROL",
    "BASELINE",
    "CONTROLS",
    "PREDICTION",
    "NATIONAL",
    "SAVE_FORMAT",
    "SAVE_FORMAT_VERSION",
    "PRIOR_SPREAD",
]

REGION = "region"  # R: geo / market
DATE = "date"  # T: week (or other regular period)
CHANNEL = "channel"  # C: media channel
CONTROL = "control"  # K: control variable

# Column names of the contributions table besides the channel columns.
BASELINE = "baseline"
CONTROLS = "controls"
PREDICTION = "prediction"

# Label used when a panel has no regions (one national series).
NATIONAL = "national"

SAVE_FORMAT = "deepcausalmmm"
SAVE_FORMAT_VERSION = 1

# Default sd of each bootstrap replicate's log multiplier on the prior strengths (_SPREAD_PRIORS):
# 90% of draws within 0.1-10 times the fitted configuration's (exp(1.645 x 1.4) = 10); its coverage
# on the causal panels is in the README ("Uncertainty").
PRIOR_SPREAD = 1.4
