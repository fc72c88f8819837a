"""Panel validation, scaling and simulation."""

from .panel import Panel, build_panel, stale_cells, static_channels
from .scaling import PanelScaler

__all__ = ["Panel", "build_panel", "stale_cells", "static_channels", "PanelScaler"]
