"""The HTML report: its content matches the API, it is self-contained and renders in a browser."""

from __future__ import annotations

import html
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from deepcausalmmm import DataError, DeepCausalMMM
from deepcausalmmm.reporting import column_decimals, section_id

from .conftest import FAST


@pytest.fixture(scope="module")
def report(fitted, tmp_path_factory):
    path = fitted.save_report(tmp_path_factory.mktemp("rep") / "report.html")
    return path, path.read_text(encoding="utf-8")


def effects_text(text: str) -> str:
    """The report's "Effects under intervention" section."""
    return text.split('<h2 id="effects-under-intervention">', 1)[1].split("<h2", 1)[0]


def test_report_sections_and_numbers_come_from_the_model(fitted, report):
    _, text = report
    for section in ["Key findings", "Panel and fit", "Contributions", "Effects under intervention",
                    "Return over time", "What the data identify", "Channel graph", "Response curves", "Channel parameters",
                    "Budget reallocation"]:
        assert f'<h2 id="{section_id(section)}">{section}</h2>' in text
        assert f'<a href="#{section_id(section)}">{section}</a>' in text  # the contents line links to it
    assert "Lift tests</h2>" not in text and 'href="#lift-tests"' not in text  # fitted without experiments
    effects = fitted.get_channel_effects()
    summary = fitted.contribution_summary()
    total_places = column_decimals(effects["total"])
    assert total_places == 0 and column_decimals(effects["roi"]) == 3  # KPI units: no decimals
    for c in fitted.channels_:  # the tables show the API's figures
        assert f"<td>{effects.loc[c, 'total']:,.0f}</td>" in text
        assert f"<td>{effects.loc[c, 'roi']:,.3f}</td>" in text
        assert f"<td>{summary.loc[c, 'share_of_media']:,.3f}</td>" in text
    ident = fitted.get_identification()
    for c in fitted.channels_:
        assert f"<td>{ident.loc[c, 'activity_floor']:,.3f}</td>" in text
    # listed in the identification table and again in the budget plan's level column
    assert text.count("<td>extrapolated</td>") == 2 * (ident["level"] == "extrapolated").sum() > 0
    params = fitted.get_channel_parameters()
    for c in fitted.channels_:  # the parameters table shows the API's figures too
        assert f"<td>{params.loc[c, 'half_saturation']:,.3f}</td>" in text
        assert f"<td>{params.loc[c, 'mean_lag']:,.3f}</td>" in text
    plan = fitted.optimize_budget()
    assert f"modelled gain {plan.attrs['kpi_gain']:,.0f}" in text
    # the regional plan: its gain beside the per-channel one, and its largest moves, as the API's
    regional = fitted.optimize_budget(by_region=True)
    assert "<h3>Moving budget between regions too</h3>" in text
    assert f"modelled gain {regional.attrs['kpi_gain']:,.0f}" in text
    assert f"against {plan.attrs['kpi_gain']:,.0f} moving it between channels only" in text
    top = (regional["optimal_spend"] - regional["spend"]).idxmax()
    assert f"<th>{top[0]}</th>" in text
    # each channel's regional marginal ROI: its spread and the regions at either end, as the API's
    curves = fitted.get_response_curves(multipliers=[0.9, 1.1], by_region=True)
    at = curves[curves["multiplier"] == 1.0]
    assert "<h3>Where the last unit of spend earns most</h3>" in text
    for c in fitted.channels_:
        g = at[at["channel"] == c].sort_values("marginal_roi", ascending=False)
        assert f"<td>{g['marginal_roi'].median():,.3f}</td>" in text
        assert f"<td>{', '.join(g['region'].head(3))}</td>" in text
    # a candidate experiment per always-on channel, sized by plan_lift_test
    always_on = list(ident.index[ident["level"] == "extrapolated"])
    regions, dates = list(fitted.regions_), fitted.panel_.dates
    planned = fitted.plan_lift_test(pd.DataFrame([
        {"channel": c, "start": dates[-8], "end": dates[-1], "regions": regions[::2]} for c in always_on]))
    assert "<h3>Experiments that would settle it</h3>" in text
    assert f"every second region ({len(regions[::2])} of {len(regions)}) over the last 8 fitted" in text
    lift_places, se_places = column_decimals(planned["model_lift"]), column_decimals(planned["noise_se"])
    for row in planned.itertuples():
        assert f"<td>{row.model_lift:,.{lift_places}f}</td>" in text
        assert f"<td>{row.noise_se:,.{se_places}f}</td>" in text
        needed = f"{int(row.weeks_needed)}" if np.isfinite(row.weeks_needed) else f"more than {len(dates)}"
        assert f"<td>{row.relative_se:,.3f}</td>\n      <td>{needed}</td>" in text
    # what moved the KPI: the last 13 weeks against the 13 before (60 weeks: no year earlier), as the API's
    d = fitted.panel_.dates
    change = fitted.get_kpi_change((d[34], d[46]), (d[47], d[59]))
    assert '<h2 id="what-moved-the-kpi">What moved the KPI</h2>' in text
    assert (f"The last fitted quarter ({change.attrs['compare_dates']}) against the quarter before "
            f"({change.attrs['base_dates']}): the KPI changed by {change.attrs['change']:,.0f} "
            f"({change.attrs['change_pct']:+.2f}%)") in text
    places = column_decimals(change["change"])
    for part in change.index:
        assert f"<th>{part}</th>\n      <td>{change.loc[part, 'kind']}</td>" in text
        assert f"<td>{change.loc[part, 'change']:,.{places}f}</td>" in text
    # the return over time: each channel's ROI and marginal ROI by quarter, as the API's; the fit
    # (60 weeks from 2023-01-02) ends inside 2024Q1, which is starred
    over = fitted.get_effects_over_time("Q")
    section = text.split('<h2 id="return-over-time">Return over time</h2>', 1)[1].split("<h2", 1)[0]
    assert "<th>2023Q4</th>" in section and "<th>2024Q1*</th>" in section
    assert "Periods marked * are covered only in part by the fit." in section
    for column in ("roi", "marginal_roi"):  # three significant digits each: channels differ in magnitude
        for value in over[column]:
            assert f"<td>{value:.3g}</td>" in section
    whole = over[over["complete"]]
    first, last = whole.xs("2023Q1", level="period"), whole.xs("2023Q4", level="period")
    moved = np.log(last["roi"] / first["roi"]).abs().idxmax()
    # what all channels caused together, against their totals added (get_group_effects)
    media = fitted.get_group_effects({"media": fitted.channels_}).iloc[0]
    assert f"All channels switched off together lose {media['total']:,.0f} of the KPI" in effects_text(text)
    # plotly.js is embedded once, so the file opens offline
    assert len(re.findall(r"\* plotly\.js v\d", text)) == 1
    # the key findings repeat the sections' figures, each from the API
    findings = text.split('<h2 id="key-findings">Key findings</h2>', 1)[1].split("<h2", 1)[0]
    assert f"Media drove {summary['share_of_kpi'].sum():.1%} of the KPI" in findings
    roi = effects["roi"].dropna()
    assert f"Highest return: {roi.idxmax()} ({roi.max():,.3g} KPI per unit of spend)" in findings
    assert f"The last quarter against the quarter before: KPI {change.attrs['change_pct']:+.2f}%" in findings
    assert f"gains {plan.attrs['kpi_gain']:,.0f} modelled KPI" in findings
    frontier_at = fitted.get_budget_frontier([0.8, 0.9, 1.1, 1.2]).loc[1.0, "marginal_roi"]
    assert f"returns {frontier_at:,.3g}." in findings
    always_on = [c for c in ident.index[(ident["level"] == "extrapolated") & ~ident["lift_tested"]]]
    assert f"{len(always_on)} always-on channel(s) without a lift test" in findings
    assert (f"Return over time: the ROI of {moved} moved most, from {first.loc[moved, 'roi']:,.3g} in 2023Q1 to "
            f"{last.loc[moved, 'roi']:,.3g} in 2023Q4") in findings
    # the regions that moved it most, each with its largest part, as the API's by-region rows
    rows = fitted.get_kpi_change((d[34], d[46]), (d[47], d[59]), by_region=True)
    per_region = rows.groupby(level="region")["change"].sum()
    top = per_region.idxmax()
    part = rows.loc[top, "change"].abs().idxmax()
    assert "<h3>Regions that moved it most</h3>" in text
    assert (f"<th>{top}</th>\n      <td>{rows.loc[top, 'base'].sum():,.0f}</td>\n      "
            f"<td>{rows.loc[top, 'compare'].sum():,.0f}</td>\n      <td>{per_region[top]:,.0f}</td>") in text
    assert f"<td>{part}</td>" in text
    # how much to spend: the budget frontier at 80-120% of the observed budget, as the API's
    frontier = fitted.get_budget_frontier([0.8, 0.9, 1.1, 1.2])
    assert "<h3>How much to spend</h3>" in text
    assert f"returns {frontier.loc[1.0, 'marginal_roi']:,.3g} of KPI" in text
    kpi_places = column_decimals(frontier["kpi_change"])
    for level in frontier.index:
        assert f"<td>{frontier.loc[level, 'kpi_change']:,.{kpi_places}f}</td>" in text
    # contributions, KPI change, return over time, graph, response curves, carryover, budget
    assert text.count("Plotly.newPlot") == 7
    assert "<script src=" not in text  # no external scripts
    assert "Caution:" not in text  # a sparse learned graph needs no caution
    R, T = len(fitted.regions_), len(fitted.panel_.dates)
    assert f"<td>{R} regions x {T} weeks x {len(fitted.channels_)} channels" in text


def test_report_names_the_data_period():
    """The panel's step in words: weeks, months, quarters, days, or periods."""
    from deepcausalmmm.data.history import period_name

    assert period_name(pd.date_range("2024-01-01", periods=5, freq="7D")) == "weeks"
    assert period_name(pd.date_range("2024-01-31", periods=5, freq=pd.offsets.MonthEnd())) == "months"
    assert period_name(pd.date_range("2024-01-01", periods=5, freq="QS")) == "quarters"
    assert period_name(pd.date_range("2024-01-01", periods=5, freq="D")) == "days"
    assert period_name(pd.Index([0, 1, 2])) == "periods"


def test_report_cautions_about_a_dense_learned_graph(tmp_path):
    """Channels sharing a weekly regional budget, with the shared-driver step switched off: the
    graph links most pairs, and the report says what that usually means."""
    from .test_graph import _budget_panel

    X, y, kw = _budget_panel(6, "weekly")
    with pytest.warns(UserWarning, match="learned edges link"):
        model = DeepCausalMMM(config={**FAST, "graph": {"shared_driver": False}}).fit(X, y, **kw)
    edges = model.get_dag_edges()
    pairs = len({frozenset(pc) for pc in zip(edges.parent, edges.child, strict=True)})
    assert pairs > 5
    text = model.save_report(tmp_path / "r.html").read_text(encoding="utf-8")
    assert f"the learned edges link {pairs} of the 15 channel pairs" in text
    assert "set graph.mode=&#x27;none&#x27;" in text  # the fix, escaped like every other text


def test_report_names_channels_bought_nationally(tmp_path):
    """A panel whose channel_0 is one national plan: the report's graph section names it and
    says where its edges come from; a panel without one says nothing of the kind."""
    from .test_graph import _national_panel

    X, y, kw, _ = _national_panel(1, 0.5)
    model = DeepCausalMMM(config=FAST).fit(X, y, **kw)
    text = model.save_report(tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Bought nationally (the same plan in every region): channel_0." in text
    assert "<td>national</td>" in text  # the edge's direction_basis in the edge table
    X0, y0, kw0 = X.reshape(20, 104, 4)[:, :, 1:].reshape(-1, 3), y, kw
    plain = DeepCausalMMM(config=FAST).fit(X0, y0, **kw0)
    assert "Bought nationally" not in plain.save_report(tmp_path / "p.html").read_text(encoding="utf-8")


def test_report_lists_lift_tests(small_sim, tmp_path):
    dates = np.unique(small_sim.dates)
    tests = pd.DataFrame([{"channel": "channel_2", "start": dates[10], "end": dates[20],
                           "lift": 5000.0, "lift_se": 1000.0},
                          {"channel": "channel_1", "start": dates[30], "end": dates[40],  # always on
                           "lift": 8000.0, "lift_se": 1000.0}])
    model = DeepCausalMMM(config=FAST).fit(small_sim.X, small_sim.y, regions=small_sim.regions,
                                           dates=small_sim.dates, lift_tests=tests)
    text = model.save_report(tmp_path / "r.html").read_text(encoding="utf-8")
    assert '<h2 id="lift-tests">Lift tests</h2>' in text
    places = column_decimals(model.lift_tests_["model_lift"])
    assert f"{model.lift_tests_['model_lift'].iloc[0]:,.{places}f}" in text
    ident = model.get_identification()
    assert ident["lift_tested"].to_dict() == {"channel_1": True, "channel_2": True, "channel_3": False}
    assert ident["level"].to_dict() == {"channel_1": "extrapolated", "channel_2": "observed",
                                        "channel_3": "extrapolated"}
    # the planned experiments cover the untested always-on channel only
    planned = text.split("<h3>Experiments that would settle it</h3>")[1].split("</table>")[0]
    assert "<th>channel_3</th>" in planned and "<th>channel_1</th>" not in planned


@pytest.mark.skipif(shutil.which("chromium") is None, reason="no chromium on PATH to render the report")
def test_report_renders_in_headless_chromium(report):
    path, _ = report
    dom = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
         "--dump-dom", path.as_uri()],
        capture_output=True, text=True, timeout=120,
    ).stdout
    # Each rendered plotly figure holds SVG layers of class main-svg: seven figures drew.
    plots = re.findall(r'class="plot-container plotly"', dom)
    assert len(plots) == 7
    assert dom.count('class="main-svg"') >= 14
    assert '<g class="waterfalllayer mlayer"><g class="trace bars"' in dom  # the KPI change's waterfall drew


@pytest.mark.skipif(shutil.which("chromium") is None, reason="no chromium on PATH to render the report")
def test_report_with_long_channel_names_fits_the_window(small_sim, tmp_path):
    """Channel names as long as the MMM panel's (55 characters) wrap; no table widens the page."""
    long = {c: f"impressions_{c}_delayed_lag_1_decay_0.05_delay_1_national" for c in small_sim.channels}
    model = DeepCausalMMM(config={"training": {"epochs": 20, "polish_steps": 0}}).fit(
        small_sim.X.rename(columns=long), small_sim.y, regions=small_sim.regions, dates=small_sim.dates)
    text = model.save_report(tmp_path / "r.html").read_text(encoding="utf-8")
    probe = ("<script>window.addEventListener('load', () => document.body.setAttribute('data-overflow', "
             "String(document.documentElement.scrollWidth - window.innerWidth)));</script></body>")
    page = tmp_path / "probe.html"
    page.write_text(text.replace("</body>", probe), encoding="utf-8")
    dom = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,900",
         "--virtual-time-budget=10000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    ).stdout
    overflow = re.search(r'data-overflow="(-?\d+)"', dom)
    assert overflow is not None, "the probe did not run"
    assert int(overflow.group(1)) <= 0  # nothing wider than the window


def test_report_tables_format_by_magnitude_and_scroll_on_their_own():
    from deepcausalmmm.reporting import _table

    frame = pd.DataFrame({"kpi": [1234567.891, 12.5], "share": [0.12345, np.nan], "n": [1, 2]},
                         index=["a_very_long_channel_name_" * 3, "b"])
    html_text = _table(frame)
    assert html_text.startswith('<div class="scroll">') and html_text.endswith("</div>")
    assert "<td>1,234,568</td>" in html_text and "<td>12</td>" in html_text  # KPI-sized: no decimals
    assert "<td>0.123</td>" in html_text and "<td></td>" in html_text  # small: 3 decimals; NaN blank
    assert "<td>1</td>" in html_text  # integers as they are
    assert column_decimals(pd.Series([999.0, -5.0])) == 3 and column_decimals(pd.Series([-1000.0])) == 0
    assert column_decimals(pd.Series([np.nan, np.inf, 2.0])) == 3
    # a column of small figures keeps 3 significant digits
    assert column_decimals(pd.Series([0.00042, 0.0001])) == 6 and column_decimals(pd.Series([0.05])) == 4
    assert column_decimals(pd.Series([0.0, 0.0])) == 3


def _with_bounds(row: pd.Series, column: str) -> str:
    """A figure and its bootstrap bounds as the report writes them: the decimals a table gives
    the three together (an ROI of 0.0149 keeps three significant digits)."""
    figures = [row[column], row[f"{column}_lo"], row[f"{column}_hi"]]
    n = column_decimals(pd.Series(figures, dtype=float))
    return "{:,.{n}f} [{:,.{n}f}, {:,.{n}f}]".format(*figures, n=n)


def test_report_with_bootstrap_intervals(fitted, tmp_path):
    """save_report(n_boot=...) shows the effects, the KPI change, the return over time and the
    budget plan with intervals from one set of refits, each figure as the API gives it."""
    with fitted.shared_refits():  # the report's refits are these: its nested block keeps them
        intervals = fitted.get_effect_intervals(n_boot=2)
        path = fitted.save_report(tmp_path / "r.html", n_boot=2)
        plan = fitted.optimize_budget(n_boot=2)
        over = fitted.get_effects_over_time("Q", n_boot=2)
        d = fitted.panel_.dates
        change = fitted.get_kpi_change((d[34], d[46]), (d[47], d[59]), n_boot=2)
        curves = fitted.get_response_curves(n_boot=2)
    text = path.read_text(encoding="utf-8")
    section = text.split('<h2 id="response-curves">', 1)[1].split("<h2", 1)[0]
    assert "Shaded, and in brackets: 90% of 2 region-bootstrap refits" in section
    row = curves[(curves["channel"] == "channel_1") & (curves["multiplier"] == 1.5)].iloc[0]
    assert f"<td>{_with_bounds(row, 'roi')}</td>" in section
    effects = text.split('<h2 id="effects-under-intervention">', 1)[1].split("<h2", 1)[0]
    assert "90% intervals from 2 region-bootstrap refits" in effects
    for c in fitted.channels_:
        assert f"<td>{_with_bounds(intervals.loc[c], 'roi')}</td>" in effects
    section = text.split('<h2 id="return-over-time">', 1)[1].split("<h2", 1)[0]
    assert f"<td>{_with_bounds(over.loc[('2023Q2', 'channel_1')], 'roi')}</td>" in section
    assert "In brackets: 90% intervals from 2 region-bootstrap refits" in section
    moved = text.split('<h2 id="what-moved-the-kpi">', 1)[1].split("<h2", 1)[0]
    assert "<th>change_pct_lo</th>" in moved
    assert f"the KPI's own change {change.attrs['change_pct_lo']:+.2f}% to {change.attrs['change_pct_hi']:+.2f}%" in moved
    a = plan.attrs
    assert (f"Over 2 region-bootstrap refits, each with its own prior strengths, the plan's gain was "
            f"{a['gain_lo'] * 100:+.2f}% to {a['gain_hi'] * 100:+.2f}% of the modelled KPI") in text
    findings = text.split('<h2 id="key-findings">Key findings</h2>', 1)[1].split("<h2", 1)[0]
    roi = fitted.get_channel_effects()["roi"]
    top = roi.idxmax()
    assert (f"Highest return: {top} ({roi.max():,.3g} KPI per unit of spend; 90% of bootstrap refits "
            f"{intervals.loc[top, 'roi_lo']:,.3g} to {intervals.loc[top, 'roi_hi']:,.3g})") in findings
    assert f"in {a['gain_share_positive']:.0%} of 2 bootstrap refits" in findings
    # bad bootstrap arguments stop it before anything is written
    for kwargs, message in (({"n_boot": 1}, "`n_boot` must be 0"), ({"n_boot": 2, "level": 2.0}, "`level`")):
        with pytest.raises(DataError, match=message):
            fitted.save_report(tmp_path / "bad.html", **kwargs)
    assert not (tmp_path / "bad.html").exists()


def test_key_findings_without_the_report(fitted, report):
    """get_key_findings gives the report's key findings, line for line, without writing it."""
    _, text = report
    lines = fitted.get_key_findings()
    shown = text.split('<h2 id="key-findings">Key findings</h2>', 1)[1].split("</ul>", 1)[0]
    assert re.findall(r"<li>(.*?)</li>", shown) == [html.escape(line) for line in lines]
    assert lines[0].startswith("The fit explains the KPI with in-sample R^2")
    with pytest.raises(DataError, match="`n_boot` must be 0"):
        fitted.get_key_findings(n_boot=1)


def test_bounded_cells_keep_small_figures_digits():
    from deepcausalmmm.reporting import _bounded

    frame = pd.DataFrame({"roi": [0.0149, 1.304, np.nan], "roi_lo": [0.00699, 1.153, 0.1],
                          "roi_hi": [0.0241, 1.454, 0.2]}, index=["a", "b", "c"])
    shown = _bounded(frame, "roi")
    assert shown.tolist() == ["0.0149 [0.0070, 0.0241]", "1.304 [1.153, 1.454]", ""]


def test_significant_cells():
    from deepcausalmmm.reporting import _significant

    shown = _significant(pd.Series([0.013871, 222.901, 1.0284, 12345.6, np.nan]))
    assert shown.tolist() == ["0.0139", "223", "1.03", "12,346", ""]
