"""Plotly figures built from computed tables (never from the estimator)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.colors as pc
import plotly.graph_objects as go

from ..constants import BASELINE, CONTROLS, DATE, PREDICTION

__all__ = [
    "carryover_figure", "change_figure", "contributions_figure", "dag_figure", "frontier_figure", "over_time_figure",
    "response_figure",
]


def contributions_figure(
    contributions: pd.DataFrame,
    channels: Sequence[str],
    actual: pd.Series | None = None,
    title: str = "KPI decomposition (sum over regions)",
) -> go.Figure:
    """Stacked areas of baseline, controls and channels over time, summed over regions.

    Parameters
    ----------
    contributions : DataFrame indexed by (region, date)
        As returned by ``get_channel_contributions``.
    channels : sequence of str
    actual : Series indexed like ``contributions``, optional
        Observed KPI, drawn as a line.
    """
    national = contributions.groupby(level=DATE).sum()
    fig = go.Figure()
    for col in [BASELINE, CONTROLS, *channels]:
        fig.add_trace(
            go.Scatter(x=national.index, y=national[col], name=col, stackgroup="kpi", mode="lines")
        )
    fig.add_trace(
        go.Scatter(x=national.index, y=national[PREDICTION], name=PREDICTION, mode="lines",
                   line={"color": "black", "dash": "dot"})
    )
    if actual is not None:
        nat_actual = actual.groupby(level=DATE).sum()
        fig.add_trace(go.Scatter(x=nat_actual.index, y=nat_actual, name="actual", mode="lines",
                                 line={"color": "black"}))
    fig.update_layout(title=title, xaxis_title=DATE, yaxis_title="KPI", hovermode="x unified")
    return fig


def dag_figure(
    adjacency: pd.DataFrame,
    roots: Sequence[str] = (),
    title: str | None = None,
    threshold: float = 0.0,
    direction: pd.DataFrame | None = None,
    lags: pd.DataFrame | None = None,
    assumed: pd.DataFrame | None = None,
    national: Sequence[str] = (),
    national_edges: Sequence[tuple[str, str]] = (),
    dark_edges: Sequence[tuple[str, str]] = (),
    ordered_edges: Sequence[tuple[str, str]] = (),
) -> go.Figure:
    """Channel graph on a circle; arrows parent -> child labelled with their weight.

    Parameters
    ----------
    adjacency : DataFrame, channels x channels
        Rows are parents, columns children; 0 means no edge.
    roots : channels to mark as roots (drawn as squares).
    threshold : edges with ``|weight| <= threshold`` are not drawn.
    direction : DataFrame, channels x channels, optional
        Direction support of learned same-week edges (NaN elsewhere); shown in
        the label, and edges below 0.8 are drawn grey (direction uncertain).
    lags : DataFrame of lists, channels x channels, optional
        The lags (weeks) at which each edge acts; shown in the label unless the
        edge is same-week only.
    assumed : DataFrame of bool, channels x channels, optional
        Edges whose direction the equal-CV rule chose (labelled ``equal-cv``).
    national : channels bought nationally (drawn as diamonds).
    national_edges : (parent, child) pairs learned from the national series (labelled
        ``national``; ``direction_basis`` "national" in ``get_dag_edges``).
    dark_edges : (parent, child) pairs whose direction their dark weeks set (labelled
        ``dark weeks`` and drawn black whatever the score's support).
    ordered_edges : (parent, child) same-week pairs turned to run as their lagged edges do
        (``direction_basis`` "lagged edges"; labelled ``lagged edges`` and drawn black).
    """
    names = list(adjacency.index)
    national_set, national_pairs, dark_pairs = set(national), set(national_edges), set(dark_edges)
    ordered_pairs = set(ordered_edges)
    n = len(names)
    pos = {
        name: (math.cos(2 * math.pi * i / max(n, 1)), math.sin(2 * math.pi * i / max(n, 1)))
        for i, name in enumerate(names)
    }
    fig = go.Figure()
    edges = 0
    for parent in names:
        for child in names:
            w = float(adjacency.loc[parent, child])
            if parent == child or abs(w) <= threshold:
                continue
            edges += 1
            (x0, y0), (x1, y1) = pos[parent], pos[child]
            d = float(direction.loc[parent, child]) if direction is not None else math.nan
            note = "" if math.isnan(d) else f"direction {d:.2f}"
            if note and assumed is not None and bool(assumed.loc[parent, child]):
                note += ", equal-cv"
            if (parent, child) in dark_pairs:
                note += ", dark weeks"
            if (parent, child) in ordered_pairs:
                note += ", lagged edges"
            if (parent, child) in national_pairs:
                note = "national"
            label = f"{w:.2f} ({note})" if note else f"{w:.2f}"
            at = list(lags.loc[parent, child]) if lags is not None else [0]
            if at != [0]:
                label += f", lag{'s' if len(at) > 1 else ''} {', '.join(map(str, at))}"
            settled = (parent, child) in dark_pairs or (parent, child) in ordered_pairs
            colour = "grey" if not math.isnan(d) and d < 0.8 and not settled else "black"
            fig.add_annotation(x=x1, y=y1, ax=x0, ay=y0, xref="x", yref="y", axref="x", ayref="y",
                               showarrow=True, arrowhead=3, arrowwidth=1 + 3 * min(abs(w), 1.0),
                               arrowcolor=colour, standoff=14, startstandoff=14)
            fig.add_annotation(x=(x0 + x1) / 2, y=(y0 + y1) / 2, text=label, showarrow=False,
                               font={"size": 10}, bgcolor="white")
    root_set = set(roots)
    symbol = {c: "square" if c in root_set else "diamond" if c in national_set else "circle" for c in names}
    fig.add_trace(
        go.Scatter(
            x=[pos[c][0] for c in names], y=[pos[c][1] for c in names], mode="markers+text",
            text=names, textposition="top center",
            marker={"size": 18, "symbol": [symbol[c] for c in names]},
            hovertext=[f"{c}{' (root)' if c in root_set else ''}"
                       f"{' (bought nationally)' if c in national_set else ''}" for c in names],
            name="channels",
        )
    )
    label = title or (f"Channel graph: {edges} edge(s)" if edges else
                      "Channel graph: no edges (graph learning off or none found)")
    fig.update_layout(title=label, showlegend=False, xaxis={"visible": False},
                      yaxis={"visible": False, "scaleanchor": "x"})
    return fig


def response_figure(curves: pd.DataFrame) -> go.Figure:
    """Response against spend, one line per channel; the observed spend (multiplier 1) marked;
    with bootstrap bounds (``response_lo`` / ``_hi``) a shaded band around each curve."""
    fig = go.Figure()
    palette = pc.qualitative.Plotly
    for k, (name, g) in enumerate(curves.groupby("channel", sort=False)):
        color = palette[k % len(palette)]
        if "response_lo" in g:  # the band: the upper bound, then the lower filled up to it
            fig.add_trace(go.Scatter(x=g["spend"], y=g["response_hi"], mode="lines", line={"width": 0},
                                     showlegend=False, legendgroup=str(name), hoverinfo="skip"))
            fig.add_trace(go.Scatter(x=g["spend"], y=g["response_lo"], mode="lines", line={"width": 0},
                                     fill="tonexty", fillcolor=_translucent(color), showlegend=False,
                                     legendgroup=str(name), hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=g["spend"], y=g["response"], mode="lines", name=str(name),
                                 legendgroup=str(name), line={"color": color},
                                 customdata=g[["multiplier", "marginal_roi"]].to_numpy(),
                                 hovertemplate="spend %{x:,.0f}<br>response %{y:,.0f}<br>"
                                 "x%{customdata[0]:.2f} of observed<br>marginal ROI %{customdata[1]:.3g}"))
        now = g[g["multiplier"] == 1.0]
        fig.add_trace(go.Scatter(x=now["spend"], y=now["response"], mode="markers", showlegend=False,
                                 legendgroup=str(name),
                                 marker={"size": 9, "symbol": "diamond", "color": color},
                                 hoverinfo="skip"))
    fig.update_layout(title="Response curves (total effect vs spend; diamond: observed spend)",
                      xaxis_title="spend", yaxis_title="KPI response", template="plotly_white")
    return fig


def carryover_figure(weights: pd.DataFrame) -> go.Figure:
    """Carryover weights against lag, one line per channel (``get_carryover``'s table)."""
    fig = go.Figure()
    for name in weights.columns:
        fig.add_trace(go.Scatter(x=weights.index, y=weights[name], mode="lines+markers", name=str(name),
                                 hovertemplate="lag %{x} weeks<br>weight %{y:.3f}"))
    fig.update_layout(title="Carryover: share of one week's activity acting each week after",
                      xaxis_title="lag (weeks)", yaxis_title="weight", template="plotly_white")
    return fig


def change_figure(change: pd.DataFrame, base_label: str = "base", compare_label: str = "compare") -> go.Figure:
    """Waterfall from the base period's KPI, through each part's change, to the compare
    period's KPI (``get_kpi_change``'s table, summed over regions)."""
    steps = [float(v) for v in change["change"]]
    names = [str(p) for p in change.index]
    base, compare = float(change["base"].sum()), float(change["compare"].sum())
    pct = ["" if not np.isfinite(v) else f"{v:+.1f}%" for v in change["change_pct"].to_numpy(dtype=float)]
    fig = go.Figure(go.Waterfall(
        x=[base_label, *names, compare_label],
        measure=["absolute", *["relative"] * len(steps), "total"],
        y=[base, *steps, 0.0],
        text=[f"{base:,.0f}", *pct, f"{compare:,.0f}"], textposition="outside",
        connector={"line": {"color": "#999"}},
    ))
    # the axis spans the running total's range (with room for the labels), not 0..KPI, so that
    # changes of a few per cent show; the two totals' bars are cut at its foot
    levels = base + np.cumsum([0.0, *steps])
    lo, hi = float(levels.min()), float(levels.max())
    pad = max(0.25 * (hi - lo), 0.01 * max(abs(base), abs(compare)), 1e-12)
    fig.update_layout(title=f"What moved the KPI: {base_label} to {compare_label} (sum over regions)",
                      yaxis={"title": "KPI (axis cut below)", "range": [lo - pad, hi + pad]},
                      showlegend=False, template="plotly_white")
    return fig


def frontier_figure(frontier: pd.DataFrame) -> go.Figure:
    """Modelled KPI change against total budget, best allocated and in today's mix, the
    observed plan marked (``get_budget_frontier``'s table)."""
    fig = go.Figure()
    roi = frontier["marginal_roi"].to_numpy(dtype=float)
    fig.add_trace(go.Scatter(x=frontier["budget"], y=frontier["kpi_change"], mode="lines+markers",
                             name="best allocation", customdata=np.stack([frontier.index, roi], axis=1),
                             hovertemplate="x%{customdata[0]:.2f} of observed spend<br>budget %{x:,.0f}<br>"
                             "KPI change %{y:,.0f}<br>marginal ROI %{customdata[1]:.3g}<extra></extra>"))
    fig.add_trace(go.Scatter(x=frontier["budget"], y=frontier["mix_kpi_change"], mode="lines", name="today's mix",
                             line={"dash": "dash"}))
    observed = float(frontier["budget"].iloc[0] - frontier["spend_change"].iloc[0])
    fig.add_trace(go.Scatter(x=[observed], y=[0.0], mode="markers", name="observed plan",
                             marker={"size": 10, "symbol": "diamond", "color": "black"}))
    fig.update_layout(title="Budget frontier: modelled KPI change against total spend",
                      xaxis_title="total spend of the planned channels", yaxis_title="KPI change vs observed plan",
                      template="plotly_white")
    return fig


_OVER_TIME_TITLES = {"roi": "Return on spend by period (total effect / spend)",
                     "marginal_roi": "Marginal return by period (KPI per next unit of spend, carryover included)",
                     "total": "Total effect by period", "total_share": "Share of the channels' total effect by period",
                     "spend": "Spend by period", "direct": "Direct effect by period"}


def over_time_figure(frame: pd.DataFrame, metric: str = "roi") -> go.Figure:
    """One line per channel of ``metric`` against period (``get_effects_over_time``'s table);
    periods the fit covers only in part get hollow markers, and bootstrap intervals
    (``metric_lo`` / ``_hi``, with ``n_boot``) error bars."""
    fig = go.Figure()
    for channel, rows in frame.groupby(level="channel", sort=False):
        periods = rows.index.get_level_values("period")
        whole = rows["complete"].to_numpy(dtype=bool)
        bounds = {}
        if f"{metric}_lo" in rows:  # bootstrap intervals as error bars
            value = rows[metric].to_numpy(dtype=float)
            bounds = {"error_y": {"type": "data", "symmetric": False, "thickness": 1,
                                  "array": np.maximum(rows[f"{metric}_hi"].to_numpy(dtype=float) - value, 0.0),
                                  "arrayminus": np.maximum(value - rows[f"{metric}_lo"].to_numpy(dtype=float), 0.0)}}
        fig.add_trace(go.Scatter(
            x=list(periods), y=rows[metric], mode="lines+markers", name=str(channel), **bounds,
            marker={"symbol": np.where(whole, "circle", "circle-open"), "size": 8},
            customdata=np.stack([rows["spend"].to_numpy(dtype=float), np.where(whole, "", " (part of the period)")],
                                axis=1),
            hovertemplate=f"{channel}<br>%{{x}}%{{customdata[1]}}<br>{metric} %{{y:.3g}}<br>spend "
                          "%{customdata[0]:,.0f}<extra></extra>"))
    fig.update_layout(title=_OVER_TIME_TITLES.get(metric, metric), xaxis_title="period", yaxis_title=metric,
                      xaxis={"type": "category"}, template="plotly_white")
    return fig


def _translucent(color: str, alpha: float = 0.18) -> str:
    """A ``#rrggbb`` colour as ``rgba(...)`` with ``alpha``."""
    r, g, b = (int(color.lstrip("#")[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"
