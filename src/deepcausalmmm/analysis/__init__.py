"""Computations on fitted results (tables, effects); no plotting, no estimator state."""

from .contributions import contributions_frame, kpi_change_frame, summarize_contributions

__all__ = ["contributions_frame", "kpi_change_frame", "summarize_contributions"]
