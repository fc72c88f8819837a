"""deepcausalmmm: marketing mix modelling with GRU-shaped carryover and causal structure.

The names below are imported on first use (PEP 562), so that ``import deepcausalmmm`` and
the command line's ``--help`` do not wait seconds for torch and scikit-learn.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "DeepCausalMMM",
    "MMMConfig",
    "build_config",
    "ConfigError",
    "DataError",
    "ModelFileError",
    "NotFittedError",
    "__version__",
]

_HOMES = {  # public name -> the module that defines it
    "DeepCausalMMM": ".estimator",
    "MMMConfig": ".config",
    "build_config": ".config",
    "ConfigError": ".exceptions",
    "DataError": ".exceptions",
    "ModelFileError": ".exceptions",
    "NotFittedError": ".exceptions",
}

if TYPE_CHECKING:
    from .config import MMMConfig, build_config
    from .estimator import DeepCausalMMM
    from .exceptions import ConfigError, DataError, ModelFileError, NotFittedError


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        value = getattr(import_module(_HOMES[name], __name__), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
