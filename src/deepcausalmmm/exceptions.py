"""Exceptions raised by deepcausalmmm."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sklearn.exceptions import NotFittedError

__all__ = ["DataError", "ConfigError", "ModelFileError", "NotFittedError"]


def __getattr__(name: str) -> Any:
    """``NotFittedError`` is scikit-learn's (so ``except`` clauses written for scikit-learn
    catch ours too), imported on first use: scikit-learn takes seconds to import, which the
    command line's ``--help`` should not wait for."""
    if name == "NotFittedError":
        from sklearn.exceptions import NotFittedError

        return NotFittedError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class DataError(ValueError):
    """Input data do not satisfy the panel contract (see README, "Data")."""


class ConfigError(ValueError):
    """A configuration key is unknown or its value is out of range."""


class ModelFileError(ValueError):
    """A saved model file is corrupted, foreign or from an incompatible version."""
