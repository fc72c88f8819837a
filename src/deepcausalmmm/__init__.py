"""deepcausalmmm: marketing mix modelling with GRU-shaped carryover and causal structure."""

from __future__ import annotations

__version__ = "0.1.0"

from .config import MMMConfig, build_config
from .estimator import DeepCausalMMM
from .exceptions import ConfigError, DataError, ModelFileError, NotFittedError

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
