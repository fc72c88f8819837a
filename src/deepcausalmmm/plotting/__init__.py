"""Figures from computed results. Functions return plotly figures and never show them."""

from .figures import contributions_figure, dag_figure, response_figure

__all__ = ["contributions_figure", "dag_figure", "response_figure"]
