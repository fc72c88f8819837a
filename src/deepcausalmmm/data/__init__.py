"""Panel validation, scaling and simulation."""

from .panel import Panel, build_panel
from .scaling import PanelScaler

__all__ = ["Panel", "build_panel", "PanelScaler"]
