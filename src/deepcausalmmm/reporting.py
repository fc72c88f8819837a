"""One self-contained HTML report of a fitted model (``DeepCausalMMM.save_report``)."""

from __future__ import annotations

import contextlib
import html
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from . import __version__
from .analysis.identification import EXTRAPOLATED_FLOOR
from .components.graph import PERSISTENT_DRIVER_MESSAGE, dense_graph_message, edge_mask
from .constants import PRIOR_SPREAD
from .data.history import comparison_periods, default_frequency, period_name
from .files import atomic_path
from .plotting.figures import change_figure, frontier_figure, over_time_figure, response_figure

__all__ = ["write_report"]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
tbody th { max-width: 24em; overflow-wrap: anywhere; }
.scroll { overflow-x: auto; max-width: 100%; }
.note { color: #555; font-size: 0.9em; }
.contents { font-size: 0.9em; line-height: 1.6; }
"""


LARGE = 1000.0  # a column whose largest magnitude reaches this is shown without decimals


def column_decimals(values: pd.Series, digits: int = 3) -> int:
    """Decimals a report table shows for a float column: none for KPI- and spend-sized
    figures (largest magnitude at least ``LARGE``), ``digits`` otherwise, and more where even
    the largest is under 0.1, so that it keeps ``digits`` significant digits (an ROI per
    impression of 0.00042 shows as 0.000420, not 0.000)."""
    finite = values[np.isfinite(values.to_numpy(dtype=float))]
    top = float(finite.abs().max()) if len(finite) else 0.0
    if top >= LARGE:
        return 0
    if 0 < top < 0.1:
        return digits - 1 - int(np.floor(np.log10(top)))
    return digits


def _table(frame: pd.DataFrame, digits: int = 3) -> str:
    """``frame`` as an HTML table that scrolls sideways on its own when wider than the page
    (long channel names wrap)."""
    shown = frame.copy()
    for col in shown.columns:
        if pd.api.types.is_float_dtype(shown[col]):
            places = column_decimals(shown[col], digits)
            shown[col] = shown[col].map(lambda v, n=places: "" if pd.isna(v) else f"{v:,.{n}f}")
    return f'<div class="scroll">{shown.to_html(escape=True, border=0)}</div>'


def _when(value: Any) -> str:
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    return str(value)


def _figure(fig: go.Figure, first: bool) -> str:
    return pio.to_html(fig, full_html=False, include_plotlyjs=first, default_height="480px")


def _national_note(model: Any) -> str:
    """Which channels are bought nationally and what that means for their edges ("" if none)."""
    national = model.graph_model_.national
    if national is None or not national.any():  # none found (or the graph was not learned)
        return ""
    names = ", ".join(html.escape(str(c)) for c, f in zip(model.channels_, national, strict=True) if f)
    return (
        f"<p class='note'>Bought nationally (the same plan in every region): {names}. Their edges "
        "(direction_basis national) come from the national week-to-week series, where a plan that "
        "moves channels together looks the same as influence; edges between two of them, and from "
        "one on a smooth plan, are not learned. Give known ones with graph.required (an edge out of "
        "a smooth plan cannot be weighed and stays at 0).</p>"
    )


def _dense_note(model: Any) -> str:
    """Cautions when a learned graph links more channel pairs than a tree has, and when the
    activity showed a persistent shared driver and the graph has edges ("" otherwise)."""
    if model.config_.graph.mode != "notears":
        return ""
    required = edge_mask(model.channels_, model.config_.graph.required)
    message = dense_graph_message(model.graph_model_.weights, required)
    out = f"<p class='note'><b>Caution:</b> {html.escape(message)}.</p>" if message else ""
    if model.graph_model_.persistent_driver and model.graph_model_.edges():
        text = PERSISTENT_DRIVER_MESSAGE[0].upper() + PERSISTENT_DRIVER_MESSAGE[1:]
        out += f"<p class='note'><b>Caution:</b> {html.escape(text)}.</p>"
    return out


_PARAMETER_COLUMNS = ["coefficient", "half_saturation", "slope", "saturation_at_typical", "elasticity_at_typical",
                      "mean_lag", "peak_lag", "weeks_to_90pct"]


PLAN_WEEKS = 8  # the report's candidate experiment: the channel off for the last 8 fitted weeks


def _regional_margins(model: Any, shown: int = 3) -> list[str]:
    """Where each channel's last unit of spend earns most and least, region by region: the
    marginal ROI at observed spend (``get_response_curves(by_region=True)``, central differences
    at 0.9 and 1.1 times it), its spread over regions and the ``shown`` regions at each end.
    Nothing with fewer than two regions."""
    if len(model.regions_) < 2:
        return []
    curves = model.get_response_curves(multipliers=[0.9, 1.1], by_region=True)
    at = curves[(curves["multiplier"] == 1.0) & (curves["spend"] > 0)]
    rows = {}
    for channel, g in at.groupby("channel", sort=False):
        ranked = g.sort_values("marginal_roi", ascending=False)
        q = g["marginal_roi"].quantile([0.1, 0.5, 0.9])
        rows[channel] = {
            "regions": len(g), "p10": q.iloc[0], "median": q.iloc[1], "p90": q.iloc[2],
            "highest": ", ".join(map(str, ranked["region"].head(shown))),
            "lowest": ", ".join(map(str, ranked["region"].tail(shown).iloc[::-1])),
        }
    if not rows:
        return []
    table = pd.DataFrame.from_dict(rows, orient="index").rename_axis("channel")
    return [
        "<h3>Where the last unit of spend earns most</h3>",
        "<p class='note'>Each channel's marginal ROI (KPI per unit of spend for the last units, at "
        "observed spend) region by region: its 10th percentile, median and 90th percentile over the "
        f"regions where it ran, and the {shown} regions where it is highest and lowest. Moving a "
        "channel's spend from its lowest regions to its highest raises the modelled KPI; "
        "optimize_budget(by_region=True) finds the best such plan.</p>",
        _table(table),
    ]


def _regional_plan(model: Any, channel_gain: float, fitted_kpi: float, shown: int = 5) -> list[str]:
    """The same budget moved between regions as well (``optimize_budget(by_region=True)``): its
    gain beside the per-channel plan's and the ``shown`` largest moves each way. Nothing with
    fewer than two regions."""
    if len(model.regions_) < 2:
        return []
    plan = model.optimize_budget(by_region=True)
    moves = (plan["optimal_spend"] - plan["spend"]).rename("spend_change")
    table = plan[["spend", "optimal_spend", "multiplier"]].join(moves)
    shown_rows = pd.concat([table.nlargest(shown, "spend_change"), table.nsmallest(shown, "spend_change")])
    shown_rows = shown_rows[shown_rows["spend_change"] != 0]
    gain = plan.attrs["kpi_gain"]
    return [
        "<h3>Moving budget between regions too</h3>",
        "<p class='note'>The same total spend with a multiplier per region and channel (each 0.5-1.5, "
        f"optimize_budget(by_region=True)): modelled gain {gain:,.0f} "
        f"({gain / max(abs(fitted_kpi), 1e-12) * 100:.2f}% of the fitted KPI) against "
        f"{channel_gain:,.0f} moving it between channels only. The {shown} largest moves each way "
        "(spend_change in spend units); the model's forecast, not a measurement.</p>",
        _table(shown_rows) if len(shown_rows) else "<p>No region's spend moves.</p>",
    ]


REPORT_FRONTIER = (0.8, 0.9, 1.0, 1.1, 1.2)  # the report's budget levels (x observed spend)


def _frontier(frontier: pd.DataFrame) -> list[str]:
    """How much to spend: the best plan at 80-120% of the observed budget beside the same
    budget in today's mix (``get_budget_frontier(REPORT_FRONTIER)``), as a table and a figure."""
    at = frontier.loc[1.0, "marginal_roi"]
    columns = ["budget", "spend_change", "kpi_change", "mix_kpi_change", "incremental_roi", "marginal_roi"]
    return [
        "<h3>How much to spend</h3>",
        "<p class='note'>The best plan at each total budget (levels: multiples of the observed spend, every "
        "channel within 0.5-1.5 of its own) beside the same budget spent in today's mix: kpi_change is the "
        "modelled KPI against the observed plan; incremental_roi the KPI per unit of the budget's change with "
        "both plans best allocated; marginal_roi the frontier's slope. At today's budget the last unit of "
        f"spend, best allocated, returns {at:,.3g} of KPI: raise the budget while that is worth more than "
        "it costs (optimize_budget(kpi_value=...) finds that total). The model's forecast, not a "
        "measurement.</p>",
        _table(frontier[columns]),
        _figure(frontier_figure(frontier), first=False),
    ]


def _test_plan(model: Any, identification: pd.DataFrame) -> list[str]:
    """A candidate experiment for each untested ``extrapolated`` channel, sized by ``plan_lift_test``.

    The design is the same for every channel: switched off in every second
    region (label order; all regions of a one-region panel) over the last
    ``PLAN_WEEKS`` fitted weeks.
    """
    todo = identification.index[(identification["level"] == "extrapolated") & ~identification["lift_tested"]]
    if len(todo) == 0:
        return []
    dates = model.panel_.dates
    weeks = min(PLAN_WEEKS, len(dates))
    regions = list(model.regions_)
    chosen = regions[::2] if len(regions) > 1 else None
    plan = model.plan_lift_test(pd.DataFrame([
        {"channel": c, "start": dates[-weeks], "end": dates[-1], "regions": chosen} for c in todo
    ]))
    shown = plan[["channel", "n_regions", "weeks", "model_lift", "noise_se", "relative_se"]].copy()
    shown["weeks_needed"] = [
        f"{int(w)}" if np.isfinite(w) else (f"more than {len(dates)}" if lift > 0 else "n/a")
        for w, lift in zip(plan["weeks_needed"], plan["model_lift"], strict=True)
    ]
    where = f"every second region ({len(regions[::2])} of {len(regions)})" if chosen else "the panel's one series"
    return [
        "<h3>Experiments that would settle it</h3>",
        f"<p class='note'>For each always-on channel without a lift test: the channel switched off in "
        f"{where} over the last {weeks} fitted periods (plan_lift_test). model_lift is what the model "
        "expects the test to lose, and for these channels the model's level is what the test checks; "
        "noise_se is the standard error the KPI's own noise leaves on it (a floor: a control group "
        "adds its own); weeks_needed is how long the same regions would need for a standard error "
        "of 20% of model_lift (more than the fitted periods: longer than the data show; n/a: no lift).</p>",
        _table(shown.set_index("channel").round(3)),
    ]


def kpi_change_periods(model: Any) -> tuple[tuple[Any, Any], tuple[Any, Any], str] | None:
    """The report's comparison for ``model``: its last fitted quarter against the same quarter a
    year earlier, or the quarter before (:func:`comparison_periods`); None for short fits."""
    return comparison_periods(model.panel_.dates, model.config_.baseline.period)


def _kpi_change(model: Any, periods: tuple[Any, Any, str] | None, change: pd.DataFrame | None) -> list[str]:
    """The "What moved the KPI" section: the last quarter against a year earlier (or the quarter
    before), part by part (``change``, :meth:`get_kpi_change` over ``periods``), as a table and a
    waterfall, like for like (the regions observed in every week of both)."""
    esc = html.escape
    head = "<h2>What moved the KPI</h2>"
    if periods is None or change is None:
        return [head, "<p>The fit is shorter than two quarters: no period to compare the last one with.</p>"]
    base, compare, how = periods
    a = change.attrs
    steps = period_name(model.panel_.dates)
    left = a["left_out"]
    left_note = (f" ({len(left)} left out, not observed throughout both: "
                 f"{esc(', '.join(map(str, left[:10])))}{' ...' if len(left) > 10 else ''})" if left else "")
    return [
        head,
        f"<p class='note'>The last fitted quarter ({a['compare_dates']}) against {how} ({a['base_dates']}): "
        f"the KPI changed by {a['change']:,.0f} ({a['change_pct']:+.2f}%), summed over the {a['regions']} "
        f"region(s) observed in all {steps} of both{left_note}. Each row is a part of the fitted decomposition summed over each period; change_pct is "
        "its change in per cent of the earlier period's KPI, so the rows add up to the KPI's. level moves "
        "only when the periods hold different numbers of region-weeks; season is the yearly shape (it "
        "cancels a year apart, while a quarter against the one before mixes it with whatever moves with "
        "the season, media budgets included); a channel's row is its direct contribution (carryover of "
        "earlier spend included), and total_effect_change the change of its total effect, counting the "
        "activity it drives in other channels (those overlap, so they do not add up); unexplained is the "
        "actual KPI minus the model's. Compare other periods with get_kpi_change or the change "
        f"command.{_change_interval_note(a)}</p>",
        _table(change),
        _figure(change_figure(change, a["base_dates"], a["compare_dates"]), first=False),
        *_region_movers(model, base, compare),
    ]


def over_time_frequency(model: Any) -> str | int:
    """The report's periods for returns over time (:func:`default_frequency`): quarters, years
    past 12 quarters, months under 3; blocks of a quarter's steps without calendar dates."""
    return default_frequency(model.panel_.dates, model.config_.baseline.period)


def _over_time(over: pd.DataFrame | None) -> list[str]:
    """The "Return over time" section: each channel's ROI and marginal ROI period by period
    (``over``, :meth:`get_effects_over_time`), as two tables and a figure."""
    head = "<h2>Return over time</h2>"
    if over is None or over.empty:
        return [head, "<p>No spend in the fitted data: no return to show.</p>"]
    whole = over.groupby(level="period", sort=False)["complete"].first()
    names = {p: p if ok else f"{p}*" for p, ok in whole.items()}

    def pivot(column: str) -> pd.DataFrame:
        cells = _bounded(over, column) if f"{column}_lo" in over else _significant(over[column])
        table = cells.unstack("period")[list(whole.index)].rename(columns=names)
        table = table.loc[list(dict.fromkeys(over.index.get_level_values("channel")))]
        return table.rename_axis(index=None, columns="channel")  # one header row

    partial = (" Periods marked * are covered only in part by the fit." if not whole.all() else "")
    if "roi_lo" in over:
        a = over.attrs
        partial += (f" In brackets: {a['level']:.0%} intervals from {a['n_boot']} region-bootstrap refits (as "
                    "under Effects under intervention).")
    return [
        head,
        "<p class='note'>roi: each channel's total effect in the period's weeks (carryover of earlier "
        "spend included, activity it drives in other channels counted) per unit of the period's spend; "
        "the periods' totals add up to the effects above. It moves with spend (saturation) and with the "
        "carryover a period inherits. marginal_roi: the KPI the next unit of spend in the period would "
        "bring, over the period and the later fitted weeks its carryover reaches: where it is highest, "
        "extra spend earned most; in the last periods it leaves out carryover past the end of the fit, so it "
        f"reads low there.{partial} get_effects_over_time gives the table at other frequencies.</p>",
        "<h3>ROI by period</h3>", _table(pivot("roi")),
        "<h3>Marginal ROI by period</h3>", _table(pivot("marginal_roi")),
        _figure(over_time_figure(over, "roi"), first=False),
    ]


def _significant(values: pd.Series) -> pd.Series:
    """Figures as text with three significant digits each (no decimals from 1,000 on), for a
    table whose rows differ in magnitude (one channel's ROI 0.0149, another's 223)."""
    def cell(v: float) -> str:
        if not np.isfinite(v):
            return ""
        return f"{v:,.0f}" if abs(v) >= LARGE else f"{v:.3g}"

    return values.map(cell)


def _bounded(frame: pd.DataFrame, column: str) -> pd.Series:
    """``column`` of ``frame`` as text with its bootstrap interval (``column_lo`` / ``_hi``):
    ``0.394 [0.324, 0.481]``, each cell with the decimals its own three figures get in a table
    (a channel's ROI of 0.0149 keeps its digits beside another's of 1.3)."""
    def cell(v: float, lo: float, hi: float) -> str:
        if not np.isfinite(v):
            return ""
        n = column_decimals(pd.Series([v, lo, hi], dtype=float))
        return f"{v:,.{n}f} [{lo:,.{n}f}, {hi:,.{n}f}]"

    return pd.Series([cell(v, lo, hi) for v, lo, hi in
                      zip(frame[column], frame[f"{column}_lo"], frame[f"{column}_hi"], strict=True)],
                     index=frame.index, name=column)


def _curve_table(curves: pd.DataFrame) -> pd.DataFrame:
    """The response curves at multipliers 0.5, 1 and 1.5, as the report shows them: with
    bootstrap bounds, response, ROI and marginal ROI each with its range."""
    shown = curves[curves["multiplier"].isin([0.5, 1.0, 1.5])]
    if "response_lo" in shown:
        bounded = shown[["channel", "multiplier", "spend"]].copy()
        for column in ("response", "roi", "marginal_roi"):
            bounded[column] = _bounded(shown, column)
        shown = bounded
    return shown.set_index(["channel", "multiplier"])


def _effects_table(effects: pd.DataFrame, intervals: pd.DataFrame | None) -> pd.DataFrame:
    """The effects under intervention as the report shows them: with bootstrap ``intervals``
    (:meth:`get_effect_intervals`), share, ROI and marginal ROI each with its interval."""
    if intervals is None:
        return effects
    both = effects.join(intervals[["total_share_lo", "total_share_hi", "roi_lo", "roi_hi", "marginal_roi",
                                   "marginal_roi_lo", "marginal_roi_hi"]])
    shown = effects[["total", "direct", "mediated", "spend"]].copy()
    for column in ("total_share", "roi", "marginal_roi"):
        shown[column] = _bounded(both, column)
    return shown


def _media_note(effects: pd.DataFrame, fitted_kpi: float) -> str:
    """What all channels caused together against their totals added. Every channel switched off
    loses every channel's contribution, so that is the ``direct`` effects summed
    (:meth:`get_group_effects` of all channels, tested there)."""
    total, added_up = float(effects["direct"].sum()), float(effects["total"].sum())
    overlap = added_up - total
    share = total / max(abs(fitted_kpi), 1e-12) * 100
    if overlap > 1e-9 * max(abs(total), 1.0):
        added = (f"; the channels' totals add up to {added_up:,.0f}, counting {overlap:,.0f} "
                 "twice (what one channel drives in another is in both totals), so read shares of the total "
                 "against that sum and groups with get_group_effects")
    else:
        added = "; the channels' totals add up to it (no channel drives another)"
    return (f" All channels switched off together lose {total:,.0f} of the KPI ({share:.1f}% of the fitted "
            f"KPI){added}.")


def _interval_note(intervals: pd.DataFrame | None) -> str:
    """The sentence saying what the bootstrap columns are (empty without them)."""
    if intervals is None:
        return ""
    a = intervals.attrs
    return (f" {a['level']:.0%} intervals from {a['n_boot']} region-bootstrap refits, each with its "
            f"own prior strengths (prior_spread {a['prior_spread']:g}), in brackets; marginal_roi: the KPI per "
            "next unit of spend. They spread the estimate over the regions and the priors, not over the model's structure, "
            "and on simulated panels held fewer true values than their level says (README, Uncertainty).")


def _year_before(label: str) -> str | None:
    """The label of the calendar period a year before ``label`` ("2024Q3" -> "2023Q3"); None
    for labels that are not calendar periods (blocks of steps)."""
    try:
        period = pd.Period(label)
    except (TypeError, ValueError):
        return None
    return str((period.start_time - pd.DateOffset(years=1)).to_period(period.freq))


def comparison_pair(labels: list[str], blocks_per_year: int | None = None) -> tuple[str, str] | None:
    """The periods the key finding compares, among whole periods ``labels`` in time order (one
    run of consecutive periods): the last and the same period a year before it where that is
    whole too (the season then cancels; for blocks of steps, ``blocks_per_year`` blocks
    before), else the first and the last; None for fewer than two."""
    if len(labels) < 2:
        return None
    if blocks_per_year:  # blocks of steps: their labels are not calendar periods
        before = labels[-1 - blocks_per_year] if len(labels) > blocks_per_year else None
    else:
        before = _year_before(labels[-1])
    return (before if before in labels[:-1] else labels[0]), labels[-1]


def _over_time_finding(over: pd.DataFrame | None, blocks_per_year: int | None = None) -> str | None:
    """A key finding: the channel whose ROI moved most between the last whole period and the
    same period a year before (else the first whole period; :func:`comparison_pair`)."""
    if over is None or over.empty:
        return None
    whole = over[over["complete"]]
    pair = comparison_pair(list(dict.fromkeys(whole.index.get_level_values("period"))), blocks_per_year)
    if pair is None:
        return None
    periods = list(pair)
    first, last = whole.xs(periods[0], level="period"), whole.xs(periods[-1], level="period")
    before, after = first["roi"], last["roi"].reindex(first.index)
    typical = whole.groupby(level="channel")["spend"].mean().reindex(first.index)  # per whole period
    # both periods with a positive return on at least a tenth of the channel's typical spend (a
    # channel that barely ran in one of them has an ROI on next to nothing)
    usable = ((before > 0) & (after > 0) & (first["spend"] >= 0.1 * typical)
              & (last["spend"].reindex(first.index) >= 0.1 * typical))
    if not usable.any():
        return None
    channel = np.log(after[usable] / before[usable]).abs().idxmax()
    return (f"Return over time: the ROI of {channel} moved most, from {first.loc[channel, 'roi']:,.3g} in {periods[0]} "
            f"to {last.loc[channel, 'roi']:,.3g} in {periods[-1]} (spend {first.loc[channel, 'spend']:,.0f} to "
            f"{last.loc[channel, 'spend']:,.0f}).")


def _change_interval_note(attrs: dict[str, Any]) -> str:
    """What the KPI change's bootstrap columns are (empty without them)."""
    if not attrs.get("n_boot"):
        return ""
    return (f" change_pct_lo / _hi / _sd: {attrs['level']:.0%} intervals and spread from {attrs['n_used']} of "
            f"{attrs['n_boot']} region-bootstrap refits (the KPI's own change {attrs['change_pct_lo']:+.2f}% to "
            f"{attrs['change_pct_hi']:+.2f}% over the replicates' regions); on simulated panels they held fewer "
            "true changes than their level says (README, Known limits).")


def _plan_robustness(plan: pd.DataFrame) -> str:
    """The budget plan's bootstrap sentence (empty without ``n_boot``)."""
    a = plan.attrs
    if not a.get("n_boot") or "gain_lo" not in a:
        return ""
    return (f" Over {a['n_boot']} region-bootstrap refits, each with its own prior strengths, the plan's gain was "
            f"{a['gain_lo'] * 100:+.2f}% to {a['gain_hi'] * 100:+.2f}% of the modelled KPI ({a['level']:.0%} "
            f"interval; this fit {a['kpi_gain_fraction'] * 100:+.2f}%) and beat the observed allocation in "
            f"{a['gain_share_positive']:.0%} of them.")


def _region_movers(model: Any, base: tuple[Any, Any], compare: tuple[Any, Any], shown: int = 5) -> list[str]:
    """The regions that moved the KPI most each way between the periods, each with the part that
    moved it most (``get_kpi_change(by_region=True)``). Nothing with fewer than three regions."""
    if len(model.regions_) < 3:
        return []
    rows = model.get_kpi_change(base, compare, by_region=True)
    per = rows.groupby(level="region", sort=False)
    kpi = per[["base", "compare", "change"]].sum()
    kpi["change_pct"] = kpi["change"] / kpi["base"].abs().where(kpi["base"] != 0) * 100
    top = rows["change"].abs().groupby(level="region", sort=False).idxmax()  # (region, part) of the largest
    kpi["largest_part"] = [part for _, part in top.loc[kpi.index]]
    kpi["largest_part_change"] = [rows.loc[key, "change"] for key in top.loc[kpi.index]]
    movers = pd.concat([kpi.nlargest(shown, "change"), kpi.nsmallest(shown, "change")])
    movers = movers[~movers.index.duplicated()]
    return [
        "<h3>Regions that moved it most</h3>",
        f"<p class='note'>The {shown} regions whose KPI rose most and the {shown} whose KPI fell most between "
        "the two periods (like for like), with the part of the decomposition that moved each most "
        "(get_kpi_change(by_region=True)); change_pct is of the region's own earlier KPI.</p>",
        _table(movers),
    ]


def section_id(title: str) -> str:
    """The anchor of a report section: its title in lower case, runs of other characters as
    one hyphen ("What moved the KPI" -> "what-moved-the-kpi")."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def _with_contents(parts: list[str]) -> list[str]:
    """``parts`` with an anchor on every section heading and, after the report's first note, a
    line of links to them."""
    titles = [m.group(1) for m in (re.fullmatch(r"<h2>(.*)</h2>", p) for p in parts) if m]
    out = [re.sub(r"^<h2>(.*)</h2>$", lambda m: f'<h2 id="{section_id(m.group(1))}">{m.group(1)}</h2>', p)
           for p in parts]
    links = " · ".join(f'<a href="#{section_id(t)}">{t}</a>' for t in titles)
    first_note = next(i for i, p in enumerate(out) if p.startswith("<p class='note'>"))
    out.insert(first_note + 1, f"<nav class='contents'>{links}</nav>")
    return out


def key_findings(model: Any, r2: float, wape: float, summary: pd.DataFrame, effects: pd.DataFrame,
                 identification: pd.DataFrame, periods: tuple[Any, Any, str] | None,
                 change: pd.DataFrame | None, plan: pd.DataFrame | None, frontier: pd.DataFrame | None,
                 fitted_kpi: float, over: pd.DataFrame | None = None,
                 intervals: pd.DataFrame | None = None) -> list[str]:
    """The report's key findings as plain text lines: the fit, the media's share, returns, what
    moved the KPI last quarter, the budget and the channels to test, every figure from the
    sections of the report (and the API); with bootstrap ``intervals``
    (:meth:`get_effect_intervals`) and a plan with ``n_boot``, their intervals beside them."""
    R, T, _ = model.panel_.shape
    lines = [f"The fit explains the KPI with in-sample R^2 {r2:.4f} and WAPE {wape:.2f}% over {R} region(s) x "
             f"{T} {period_name(model.panel_.dates)}."]
    media = summary.sort_values("contribution", ascending=False)
    top = ", ".join(f"{c} ({v:.0%} of media)" for c, v in media["share_of_media"].head(3).items())
    lines.append(f"Media drove {summary['share_of_kpi'].sum():.1%} of the KPI (direct contributions); the largest "
                 f"channels: {top}.")
    roi = effects["roi"].dropna()
    if len(roi) >= 2:
        def bounds(channel: Any) -> str:  # ", 90% interval a-b" where the report has intervals
            if intervals is None:
                return ""
            lo, hi = intervals.loc[channel, "roi_lo"], intervals.loc[channel, "roi_hi"]
            return f"; {intervals.attrs['level']:.0%} of bootstrap refits {lo:,.3g} to {hi:,.3g}"

        lines.append(f"Highest return: {roi.idxmax()} ({roi.max():,.3g} KPI per unit of spend{bounds(roi.idxmax())}); "
                     f"lowest: {roi.idxmin()} ({roi.min():,.3g}{bounds(roi.idxmin())}), total effects counting what "
                     "a channel drives in other channels.")
    freq = over_time_frequency(model)
    year = model.config_.baseline.period
    blocks = int(round(year / freq)) if isinstance(freq, int) and abs(year / freq - round(year / freq)) < 0.1 else None
    moved_most = _over_time_finding(over, blocks)
    if moved_most is not None:
        lines.append(moved_most)
    if periods is not None and change is not None:
        moved = change.loc[change["change_pct"].abs() > 0, "change_pct"]
        biggest = moved.reindex(moved.abs().sort_values(ascending=False).index).head(3)
        parts = ", ".join(f"{k} {v:+.2f} points" for k, v in biggest.items())
        lines.append(f"The last quarter against {periods[2]}: KPI {change.attrs['change_pct']:+.2f}%; the largest "
                     f"moves: {parts}.")
    if plan is not None and frontier is not None:
        gain = plan.attrs["kpi_gain"]
        steps = plan["multiplier"] - 1.0
        up, down = steps.idxmax(), steps.idxmin()
        moves = (f", most into {up} (x{plan.loc[up, 'multiplier']:.2f}) and out of {down} "
                 f"(x{plan.loc[down, 'multiplier']:.2f})" if steps.max() > 0 > steps.min() else "")
        a = plan.attrs
        robust = (f" (beating the observed allocation in {a['gain_share_positive']:.0%} of {a['n_boot']} bootstrap "
                  "refits)" if a.get("n_boot") and "gain_share_positive" in a else "")
        lines.append(f"Budget: the same spend moved between channels gains {gain:,.0f} modelled KPI "
                     f"({gain / max(abs(fitted_kpi), 1e-12) * 100:.2f}% of the fitted KPI){robust}{moves}; at "
                     f"today's budget the last unit of spend, best allocated, returns "
                     f"{frontier.loc[1.0, 'marginal_roi']:,.3g}.")
    always_on = list(identification.index[(identification["level"] == "extrapolated")
                                          & ~identification["lift_tested"]])
    if always_on:
        lines.append(f"{len(always_on)} always-on channel(s) without a lift test, whose level rests on the curve's "
                     f"assumed shape: {', '.join(str(c) for c in always_on)}; a geo experiment would settle "
                     "each (What the data identify).")
    return lines


def _key_findings(lines: list[str]) -> list[str]:
    """The report's first section: ``lines`` (:func:`key_findings`) as a list."""
    return ["<h2>Key findings</h2>",
            "<p class='note'>The model's estimates, not measurements; the sections below give each figure "
            "and what it rests on.</p>",
            "<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in lines) + "</ul>"]


def report_data(model: Any, n_boot: int = 0, level: float = 0.9, random_state: int = 0,
                prior_spread: float = PRIOR_SPREAD) -> dict[str, Any]:
    """The figures the report and its key findings rest on: the in-sample fit (``r2``,
    ``wape``, ``fitted_kpi``), ``summary``, ``effects``, ``identification``, the last quarter's
    KPI change (``periods``, ``change``), the return over time (``over``), the budget
    ``frontier`` and ``plan``, and with ``n_boot`` their bootstrap intervals from one set of
    refits (``intervals``: :meth:`get_effect_intervals`; None without)."""
    p = model.panel_
    y = p.y
    assert y is not None
    has_spend = bool(np.any(model.spend_ > 0))
    periods = kpi_change_periods(model)
    n_boot, prior_spread = model._bootstrap_setup(n_boot, level, prior_spread, [])  # bad ones stop it here
    boot = {"n_boot": n_boot, "level": level, "random_state": random_state, "prior_spread": prior_spread}
    with model.shared_refits() if n_boot else contextlib.nullcontext():
        intervals = model.get_effect_intervals(**boot) if n_boot else None
        change = model.get_kpi_change(*periods[:2], **(boot if n_boot else {})) if periods is not None else None
        over = (model.get_effects_over_time(over_time_frequency(model), **(boot if n_boot else {}))
                if has_spend else None)
        curves = model.get_response_curves(**(boot if n_boot else {}))
        frontier = model.get_budget_frontier(REPORT_FRONTIER) if has_spend else None
        plan = None
        if frontier is not None:  # optimize_budget() at today's budget, planned once (again for its robustness)
            plan = model.optimize_budget(**boot) if n_boot else frontier.attrs["plan"]
    prediction = model._fitted_prediction()  # [R,T] KPI units
    obs = p.observed
    err = np.where(obs, prediction - y, 0.0)
    yo = y[obs]
    return {
        "r2": float(1 - (err[obs] ** 2).sum() / ((yo - yo.mean()) ** 2).sum()),
        "wape": float(np.abs(err).sum() / np.abs(np.where(obs, y, 0.0)).sum() * 100),
        "fitted_kpi": float(prediction[obs].sum()), "summary": model.contribution_summary(),
        "effects": model.get_channel_effects(), "identification": model.get_identification(EXTRAPOLATED_FLOOR),
        "periods": periods, "change": change, "over": over, "frontier": frontier, "plan": plan,
        "intervals": intervals, "curves": curves,
    }


def findings_of(model: Any, d: dict[str, Any]) -> list[str]:
    """:func:`key_findings` from :func:`report_data`'s figures ``d``."""
    return key_findings(model, d["r2"], d["wape"], d["summary"], d["effects"], d["identification"], d["periods"],
                        d["change"], d["plan"], d["frontier"], d["fitted_kpi"], d["over"], d["intervals"])


def write_report(model: Any, path: Path, findings: list[str] | None = None,
                 tables: dict[str, Any] | None = None, n_boot: int = 0, level: float = 0.9,
                 random_state: int = 0, prior_spread: float = PRIOR_SPREAD) -> Path:
    """Write ``model``'s report to ``path`` atomically; return the path. A ``findings`` list
    gets the key findings as plain text lines (:func:`key_findings`), for a caller to print; a
    ``tables`` dict gets the report's ``effects``, ``kpi_change``, ``effects_over_time``,
    ``response_curves`` and, with ``n_boot``, ``effect_intervals`` and ``budget_plan`` tables (None where the report has
    none), for a caller to write.

    Sections: the panel and the fit, channel contributions, what moved the KPI (the last
    fitted quarter against a year earlier or the quarter before, :meth:`get_kpi_change`),
    effects under intervention with ROI, the return over time (each channel's ROI and marginal
    ROI by quarter, :meth:`get_effects_over_time`), what the data identify (channels whose level is
    extrapolated from the curve's shape, with a candidate experiment for each
    untested one, sized by ``plan_lift_test``), weeks the model does not explain
    (candidates for event controls), the channel graph, response curves, a budget
    reallocation at the same total spend with the budget frontier at 80-120% of it
    (:meth:`get_budget_frontier`), and lift tests when the model has them. Plotly's script is embedded once, so the
    file opens offline.

    With ``n_boot >= 2`` the effects, the KPI change, the return over time and the budget plan
    carry region-bootstrap intervals at ``level`` from one set of ``n_boot`` refits
    (:meth:`shared_refits`; ``random_state`` and ``prior_spread`` as in
    :meth:`get_effect_intervals`), and the key findings quote them.
    """
    path = Path(path)
    p = model.panel_
    R, T, C = p.shape
    h = model.history_
    d = report_data(model, n_boot, level, random_state, prior_spread)
    intervals, change, over, frontier, plan = d["intervals"], d["change"], d["over"], d["frontier"], d["plan"]
    periods, summary, effects, identification = d["periods"], d["summary"], d["effects"], d["identification"]
    r2, wape, fitted_kpi = d["r2"], d["wape"], d["fitted_kpi"]
    unexplained = model.get_unexplained_weeks()
    edges = model.get_dag_edges()
    curves = d["curves"]
    if tables is not None:  # handed to the caller, which writes them as files without computing them again
        tables.update({"effects": effects, "kpi_change": change, "effects_over_time": over, "response_curves": curves,
                       "effect_intervals": intervals, "budget_plan": plan if n_boot else None})
    lines = findings_of(model, d)
    if findings is not None:
        findings.extend(lines)
    esc = html.escape
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>deepcausalmmm report</title><style>{_STYLE}</style></head><body>",
        "<h1>Marketing mix model report</h1>",
        f"<p class='note'>deepcausalmmm {esc(__version__)}, written "
        f"{datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}</p>",
        *_key_findings(lines),
        "<h2>Panel and fit</h2>",
        _table(pd.DataFrame({"value": [
            f"{R} regions x {T} {period_name(p.dates)} x {C} channels, {len(model.controls_)} controls",
            f"{_when(p.dates[0])} .. {_when(p.dates[-1])}",
            f"{h.seconds:.1f} s ({h.epochs_run} + {h.refit_epochs} epochs, {h.polish_evals} polish evaluations)",
            f"{r2:.4f}", f"{wape:.2f}%",
        ]}, index=["panel", "dates", "fit", "in-sample R^2 (observed cells)", "in-sample WAPE"])),
        "<h2>Contributions</h2>",
        "<p class='note'>Direct contributions: each channel through its own activity "
        "(baseline + controls + channels = prediction in every cell).</p>",
        _table(summary),
        _figure(model.plot_contributions(), first=True),
        *_kpi_change(model, periods, change),
        "<h2>Effects under intervention</h2>",
        "<p class='note'>total: KPI lost under do(channel = 0), the activity it drives in other "
        "channels removed through the channel graph; direct: other channels held as observed; "
        f"mediated = total - direct; roi = total / spend.{_media_note(effects, fitted_kpi)}"
        f"{_interval_note(intervals)}</p>",
        _table(_effects_table(effects, intervals)),
        *_over_time(over),
        "<h2>What the data identify</h2>",
        "<p class='note'>A channel's contribution is its response from zero activity up to what it "
        "had. Where its activity never falls far below typical (level: extrapolated, activity floor "
        f"at or above {EXTRAPOLATED_FLOOR:g} of the region's mean at the 10th percentile), the "
        "data show only how the KPI follows its swings around typical activity, and its level "
        "comes from the curve's assumed shape: its contribution, total effect and ROI need a lift "
        "test to be trusted (or, without one, an ROI prior saying what is believed: "
        "calibration.roi_priors). A channel with the same activity every week of each region (level: no "
        "variation) shows nothing at all; its effect is fixed at 0 unless a lift test measures it. "
        "moves_with names channels whose activity is the same up to a factor per region (one column "
        "given twice, or spend and impressions of one plan): the data cannot split their effect; "
        "merge them.</p>",
        _table(identification),
        *_test_plan(model, identification),
        "<h2>Weeks the model does not explain</h2>",
        "<p class='note'>Weeks whose national KPI the fit misses far more than usual (robust z of "
        "the national residual at or above 3). A holiday, promotion or outage that moves the KPI "
        "everywhere and is not among the controls is credited to whichever channels ran then; "
        "give such events as controls (a 0/1 column each).</p>",
        _table(unexplained.round(3)) if len(unexplained) else "<p>None.</p>",
        "<h2>Channel graph</h2>",
        _dense_note(model),
        _national_note(model),
        _table(edges) if len(edges) else "<p>No edges among channels were learned.</p>",
        _figure(model.plot_dag(), first=False),
        "<h2>Response curves</h2>",
        "<p class='note'>Each channel's activity scaled by a multiplier (0..2); response is the KPI "
        "against the channel switched off; the diamond marks the observed spend."
        + (f" Shaded, and in brackets: {curves.attrs['level']:.0%} of {curves.attrs['n_boot']} region-bootstrap "
           "refits, each refit's response per unit of its regions' spend times this curve's spend."
           if "response_lo" in curves else "") + "</p>",
        _figure(response_figure(curves), first=False),
        _table(_curve_table(curves)),
        "<h2>Channel parameters</h2>",
        "<p class='note'>The fitted response of each channel: coefficient (the curve's ceiling as a "
        "share of a region's mean KPI), half-saturation (carried activity, in multiples of the "
        "region's typical weekly activity, at half the ceiling), Hill slope, how saturated the "
        "channel is at steady typical activity, the elasticity there (per cent change of the "
        "contribution per per cent of activity: the contribution is the marginal effect divided by "
        "it, and for an always-on channel it comes from the curve's assumed shape), and its "
        "carryover: mean and peak lag and the weeks until 90% of a week's activity has acted.</p>",
        _table(model.get_channel_parameters()[_PARAMETER_COLUMNS].round(3)),
        _figure(model.plot_carryover(), first=False),
    ]
    if plan is not None and frontier is not None:
        parts += [
            "<h2>Budget reallocation</h2>",
            "<p class='note'>The same total spend moved between channels (multipliers 0.5-1.5) to "
            f"maximise the modelled KPI: modelled gain {plan.attrs['kpi_gain']:,.0f} "
            f"({plan.attrs['kpi_gain'] / max(abs(fitted_kpi), 1e-12) * 100:.2f}% of the "
            f"fitted KPI).{_plan_robustness(plan)} This is the model's forecast, not a measurement; test large "
            "moves.</p>",
            _table(plan),
            *_frontier(frontier),
            *_regional_margins(model),
            *_regional_plan(model, plan.attrs["kpi_gain"], fitted_kpi),
        ]
    lifts = getattr(model, "lift_tests_", None)
    if lifts is not None:
        shown = lifts.copy()
        shown["regions"] = shown["regions"].map(lambda r: "all" if r is None else ", ".join(map(str, r)))
        parts += ["<h2>Lift tests</h2>",
                  "<p class='note'>Experiments the model was calibrated to; z = (model - measured) / se.</p>",
                  _table(shown)]
    if model.config_.calibration.roi_priors:
        parts += ["<h2>ROI priors</h2>",
                  "<p class='note'>Beliefs about channels' ROI the model was fitted with (calibration."
                  "roi_priors), each weighed as a measurement of the channel's total effect; roi: the "
                  "fitted total effect per unit spend; z = (roi - prior_mean) / prior_sd.</p>",
                  _table(model.roi_prior_report().round(4))]
    parts.append("</body></html>")
    parts = _with_contents(parts)
    with atomic_path(path, ".html") as tmp:
        Path(tmp).write_text("\n".join(parts), encoding="utf-8")
    return path
