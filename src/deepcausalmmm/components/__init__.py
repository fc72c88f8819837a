"""Model components (carryover, saturation, temporal parts), registered by name."""

from .carryover import GatedCarryover, apply_kernel, carryover_kernel
from .registry import get_component, register, registered
from .saturation import HillSaturation, hill
from .temporal import Baseline, Effectiveness

__all__ = [
    "GatedCarryover",
    "apply_kernel",
    "carryover_kernel",
    "HillSaturation",
    "hill",
    "Baseline",
    "Effectiveness",
    "get_component",
    "register",
    "registered",
]
