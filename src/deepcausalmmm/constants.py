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
