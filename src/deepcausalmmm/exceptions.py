"""Exceptions raised by deepcausalmmm."""

from __future__ import annotations

from sklearn.exceptions import NotFittedError

__all__ = ["DataError", "ConfigError", "ModelFileError", "NotFittedError"]


class DataError(ValueError):
    """Input data do not satisfy the panel contract (see README, "Data")."""


class ConfigError(ValueError):
    """A configuration key is unknown or its value is out of range."""


class ModelFileError(ValueError):
    """A saved model file is corrupted, foreign or from an incompatible version."""
