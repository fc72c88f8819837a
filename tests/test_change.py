"""What moved the KPI between two periods (``get_kpi_change``): exact, consistent with the
decomposition and the effects, close to the simulator's truth, and its errors."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from deepcausalmmm import DataError, DeepCausalMMM, NotFittedError
from deepcausalmmm.cli import main as cli_main
from deepcausalmmm.data.history import comparison_periods
from deepcausalmmm.datasets import simulate_panel


def _actual(sim, start, end) -> float:
    dates = pd.DatetimeIndex(sim.data["date"])
    inside = (dates >= start) & (dates <= end)
    return float(sim.data.loc[inside, "kpi"].sum())


def test_change_adds_up_to_the_actual_change_and_to_the_decomposition(fitted, small_sim):
    d = fitted.panel_.dates
    base, compare = (d[0], d[12]), (d[39], d[51])
    table = fitted.get_kpi_change(base, compare)
    parts = [*("level", "trend", "season"), *fitted.channels_, *fitted.controls_, "unexplained"]
    assert list(table.index) == parts and table.index.name == "part"
    assert list(table["kind"]) == ["baseline"] * 3 + ["channel"] * 3 + ["control"] * 2 + ["residual"]
    # the periods' totals are the observed KPI's, and the rows add up to its change exactly
    kpi_base, kpi_compare = _actual(small_sim, *base), _actual(small_sim, *compare)
    assert table["base"].sum() == pytest.approx(kpi_base, rel=1e-10)
    assert table["compare"].sum() == pytest.approx(kpi_compare, rel=1e-10)
    assert table["change"].sum() == pytest.approx(kpi_compare - kpi_base, rel=1e-9)
    assert table.attrs["change"] == pytest.approx(kpi_compare - kpi_base, rel=1e-9)
    assert table["change_pct"].sum() == pytest.approx(table.attrs["change_pct"], rel=1e-9)
    assert table.attrs["change_pct"] == pytest.approx((kpi_compare / kpi_base - 1) * 100, rel=1e-9)
    assert table.attrs["base_cells"] == table.attrs["compare_cells"] == 6 * 13
    assert table.attrs["base_dates"] == f"{d[0]:%Y-%m-%d}..{d[12]:%Y-%m-%d}"
    # each part is the decomposition's, summed over the period
    contributions = fitted.get_channel_contributions()
    when = contributions.index.get_level_values("date")
    for column, (start, end) in (("base", base), ("compare", compare)):
        period = contributions[(when >= start) & (when <= end)].sum()
        for c in fitted.channels_:
            assert table.loc[c, column] == pytest.approx(period[c], rel=1e-10)
        assert table.loc[fitted.controls_, column].sum() == pytest.approx(period["controls"], rel=1e-9, abs=1e-6)
        # the baseline's terms, each in the network's float32 and added in float64 here
        assert table.loc[["level", "trend", "season"], column].sum() == pytest.approx(period["baseline"], rel=1e-6)
    # equal periods over the same regions: the regions' constant level does not move
    assert table.loc["level", "change"] == pytest.approx(0.0, abs=1e-9 * kpi_base)
    # total effects: each channel's change of total effect between the periods
    effects = [fitted.get_channel_effects(period=p)["total"] for p in (base, compare)]
    np.testing.assert_allclose(table.loc[fitted.channels_, "total_effect_change"],
                               (effects[1] - effects[0]).to_numpy(), rtol=1e-10)
    assert table.loc[table["kind"] != "channel", "total_effect_change"].isna().all()


def test_change_by_region_adds_up_to_the_national_rows(fitted):
    d = fitted.panel_.dates
    base, compare = (d[0], d[12]), (d[39], d[51])
    national = fitted.get_kpi_change(base, compare)
    regional = fitted.get_kpi_change(base, compare, by_region=True)
    assert regional.index.names == ["region", "part"]
    assert list(regional.index.get_level_values("region").unique()) == fitted.regions_
    summed = regional.groupby(level="part", sort=False)[["base", "compare", "change", "total_effect_change"]].sum(
        min_count=1)
    for column in ("base", "compare", "change", "total_effect_change"):
        np.testing.assert_allclose(summed.loc[national.index, column], national[column], rtol=1e-9, atol=1e-6)
    # each region's per cent change is of its own base KPI
    first = regional.loc[fitted.regions_[0]]
    np.testing.assert_allclose(first["change_pct"], first["change"] / first["base"].sum() * 100)
    # two regions: the sums over them
    two = fitted.get_kpi_change(base, compare, regions=fitted.regions_[:2])
    np.testing.assert_allclose(two["change"], regional.loc[fitted.regions_[:2], "change"].groupby(
        level="part", sort=False).sum().loc[two.index], rtol=1e-9, atol=1e-6)


def test_change_a_year_apart_recovers_the_simulated_parts():
    """Last quarter against the same quarter a year earlier on a simulated panel: the season
    cancels as in the truth, and the media's change is the truth's within a quarter of it,
    where crediting the change to the baseline (media unchanged) misses it whole."""
    sim = simulate_panel(10, 104, 3, seed=4)
    model = DeepCausalMMM(random_state=0).fit(sim.X, sim.y, regions=sim.regions, dates=sim.dates,
                                              controls=sim.control_frame)
    d = model.panel_.dates
    base, compare = (d[39], d[51]), (d[91], d[103])
    assert comparison_periods(d, model.config_.baseline.period) == (base, compare, "a year earlier")
    table = model.get_kpi_change(base, compare)
    truth = sim.truth
    when = truth.index.get_level_values("date")
    true_change = (truth[(when >= compare[0]) & (when <= compare[1])].sum()
                   - truth[(when >= base[0]) & (when <= base[1])].sum())
    kpi = table.attrs["base_kpi"]
    # the true season's change a year apart is a rounding of the 52.18-week period: near 0
    R, T = 10, 104
    season = sim.params["kpi_season"]
    scale = truth["baseline"].to_numpy().reshape(R, T)[:, 0] / (1 + season[0])  # each region's baseline unit
    true_season = (scale[:, None] * (season[91:104].sum() - season[39:52].sum())).sum()
    assert abs(table.loc["season", "change"] - true_season) < 0.005 * kpi  # measured 0.0001 of the KPI
    media, true_media = table.loc[sim.channels, "change"].sum(), true_change[sim.channels].sum()
    assert abs(true_media) > 0.04 * kpi  # the media moved the KPI (measured -5.2%)
    assert abs(media - true_media) < 0.25 * abs(true_media)  # measured 0.04 of it
    for c in sim.channels:  # each channel within 1% of the KPI (measured 0.37 at worst)
        assert abs(table.loc[c, "change"] - true_change[c]) < 0.01 * kpi
    assert abs(table.loc[sim.controls, "change"].sum() - true_change["controls"]) < 0.005 * kpi


def test_change_intervals_from_bootstrap_refits():
    """n_boot: each part's change_pct spread over region-bootstrap refits. A year apart on a
    simulated panel, the channel whose true change is largest gets an interval of the right
    sign, the level's is exactly 0 (the periods hold equal weeks in every replicate), and the
    same random_state gives the same intervals."""
    sim = simulate_panel(10, 104, 3, seed=4)
    model = DeepCausalMMM(random_state=0).fit(sim.X, sim.y, regions=sim.regions, dates=sim.dates,
                                              controls=sim.control_frame)
    d = model.panel_.dates
    base, compare = (d[39], d[51]), (d[91], d[103])
    table = model.get_kpi_change(base, compare, n_boot=4)
    assert table.attrs["n_boot"] == 4 and table.attrs["n_used"] == 4 and table.attrs["level"] == 0.9
    assert table.attrs["change_pct_lo"] <= table.attrs["change_pct_hi"]
    assert (table["change_pct_lo"] <= table["change_pct_hi"]).all()
    assert table.loc["level", ["change_pct_lo", "change_pct_hi"]].abs().max() < 1e-9
    when = sim.truth.index.get_level_values("date")
    true = (sim.truth[(when >= compare[0]) & (when <= compare[1])].sum()
            - sim.truth[(when >= base[0]) & (when <= base[1])].sum())[sim.channels]
    largest = true.abs().idxmax()
    sign = np.sign(true[largest])
    assert sign * table.loc[largest, "change_pct_lo"] > 0 and sign * table.loc[largest, "change_pct_hi"] > 0
    # the point figures are the fit's own, unchanged by the refits
    np.testing.assert_allclose(table["change_pct"], model.get_kpi_change(base, compare)["change_pct"], rtol=1e-12)
    again = model.get_kpi_change(base, compare, n_boot=4)
    np.testing.assert_allclose(again["change_pct_lo"], table["change_pct_lo"], rtol=1e-9)
    for kwargs, message in (({"n_boot": 1}, r"`n_boot` must be 0 \(no intervals\) or a whole number of at least 2"),
                            ({"n_boot": 2, "regions": ["geo_000"]}, r"cannot be combined with `regions`"),
                            ({"n_boot": 2, "by_region": True}, r"cannot be combined with `by_region`"),
                            ({"n_boot": 2, "level": 1.5}, r"`level` must be in \(0, 1\)")):
        with pytest.raises(DataError, match=message):
            model.get_kpi_change(base, compare, **kwargs)


def test_change_compares_like_for_like_on_a_ragged_panel():
    """A region whose feed stops before the later period is left out by default (its whole KPI
    would show as change), and counted with matched=False, which warns."""
    from .conftest import FAST

    sim = simulate_panel(4, 60, 2, seed=5)
    data = sim.data
    weeks = np.sort(data["date"].unique())
    stopped = (data["region"] == "geo_003") & (data["date"] >= weeks[40])
    gap = (data["region"] == "geo_002") & (data["date"] == weeks[5])  # one missing week in the earlier period
    kept = data[~stopped & ~gap]
    model = DeepCausalMMM(config=FAST).fit(kept, "kpi", regions="region", dates="date", controls=sim.controls)
    base, compare = (weeks[0], weeks[12]), (weeks[47], weeks[59])
    like = model.get_kpi_change(base, compare)
    assert like.attrs["left_out"] == ["geo_002", "geo_003"] and like.attrs["regions"] == 2
    assert like.attrs["base_cells"] == like.attrs["compare_cells"] == 2 * 13
    assert like.loc["level", "change"] == pytest.approx(0.0, abs=1e-9 * like.attrs["base_kpi"])
    two = model.get_kpi_change(base, compare, regions=["geo_000", "geo_001"], matched=False)
    np.testing.assert_allclose(like["change"], two["change"], rtol=1e-9)  # the same as naming the two
    with pytest.warns(UserWarning, match=r"`base` holds 51 observed region-weeks and `compare` 39.*"
                                         r"regions whose weeks differ \(base / compare\): geo_002 12 / 13, geo_003 13 / 0"):
        every = model.get_kpi_change(base, compare, matched=False)
    assert every.attrs["left_out"] == [] and every.attrs["regions"] == 4
    inside = (kept["date"] >= compare[0]) & (kept["date"] <= compare[1])
    assert every.attrs["compare_kpi"] == pytest.approx(kept.loc[inside, "kpi"].sum(), rel=1e-10)
    with pytest.raises(DataError, match=r"`compare` .* holds no observed week of the selected regions \(\['geo_003'\]\)"):
        model.get_kpi_change(base, compare, regions=["geo_003"])
    with pytest.raises(DataError, match=r"no selected region is observed in every week of both .* matched=False"):
        model.get_kpi_change(base, compare, regions=["geo_002", "geo_003"])
    with pytest.raises(DataError, match=r"`matched` must be True or False"):
        model.get_kpi_change(base, compare, matched="yes")
    # rows as the later period: their regions must be observed in every week of `base`
    plan = dict(X=_later_rows(kept), regions="region", dates="date", controls=sim.controls)
    with pytest.raises(DataError, match=r"the rows' regions \['geo_002'\] are not observed in every week of "
                                        r"`base`.*pass matched=False"):
        model.get_kpi_change(base, **plan)
    with pytest.warns(UserWarning, match=r"`base` holds 38 observed region-weeks and the rows `X` 39.*geo_002 12 / 13"):
        every_week = model.get_kpi_change(base, matched=False, **plan)
    assert every_week.attrs["base_cells"] == 13 + 13 + 12 and every_week.attrs["regions"] == 3


def test_change_errors_and_warnings(fitted):
    d = fitted.panel_.dates
    with pytest.raises(NotFittedError):
        DeepCausalMMM().get_kpi_change((d[0], d[1]), (d[2], d[3]))
    with pytest.raises(DataError, match=r"`base` must be a \(start, end\) pair of dates.*e\.g\. base="):
        fitted.get_kpi_change(5, (d[2], d[3]))
    with pytest.raises(DataError, match=r"`base` 'soon' is neither a \(start, end\) pair of dates nor a calendar "
                                        r"period such as '2024Q3'"):
        fitted.get_kpi_change("soon", (d[2], d[3]))
    with pytest.raises(DataError, match=r"`compare` \('x', 'y'\) is not a pair of dates"):
        fitted.get_kpi_change((d[0], d[1]), ("x", "y"))
    with pytest.raises(DataError, match=r"`compare` .* contains no fitted dates; the fit covers"):
        fitted.get_kpi_change((d[0], d[1]), ("1990-01-01", "1990-03-01"))
    with pytest.raises(DataError, match=r"`regions` \['nowhere'\] were not in the fitted data"):
        fitted.get_kpi_change((d[0], d[1]), (d[2], d[3]), regions=["nowhere"])
    with pytest.warns(UserWarning, match=r"`base` holds 78 observed region-weeks and `compare` 60: .*; each of the "
                                         r"6 regions holds 13 observed weeks in `base` and 10 in `compare`\. "
                                         r"Compare periods of equal length"):
        uneven = fitted.get_kpi_change((d[0], d[12]), (d[40], d[49]))
    assert uneven.loc["level", "change"] < 0  # three weeks fewer of each region's level
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fitted.get_kpi_change((d[0], d[9]), (d[40], d[49]))  # equal periods: no warning


def test_change_waterfall_runs_from_one_kpi_to_the_other(fitted):
    d = fitted.panel_.dates
    fig = fitted.plot_kpi_change((d[0], d[12]), (d[39], d[51]))
    assert isinstance(fig, go.Figure)
    table = fitted.get_kpi_change((d[0], d[12]), (d[39], d[51]))
    (trace,) = fig.data
    assert trace.type == "waterfall"
    assert list(trace.x) == [table.attrs["base_dates"], *table.index, table.attrs["compare_dates"]]
    assert list(trace.measure) == ["absolute", *["relative"] * len(table), "total"]
    assert trace.y[0] + sum(trace.y[1:-1]) == pytest.approx(table.attrs["compare_kpi"], rel=1e-9)


def test_comparison_periods_by_grid():
    weeks = pd.date_range("2023-01-02", periods=104, freq="7D")
    assert comparison_periods(weeks, 52.18) == ((weeks[39], weeks[51]), (weeks[91], weeks[103]), "a year earlier")
    short = weeks[:60]
    assert comparison_periods(short, 52.18) == ((short[34], short[46]), (short[47], short[59]), "the quarter before")
    assert comparison_periods(weeks[:25], 52.18) is None
    months = pd.date_range("2022-01-01", periods=30, freq="MS")
    assert comparison_periods(months, 12.0) == ((months[15], months[17]), (months[27], months[29]), "a year earlier")
    days = pd.date_range("2024-01-01", periods=500, freq="D")
    assert comparison_periods(days, 365.25) == ((days[45], days[135]), (days[409], days[499]), "a year earlier")
    periods = pd.Index(np.arange(70))
    assert comparison_periods(periods, 52.18) == ((5, 17), (57, 69), "a year earlier")
    assert comparison_periods(pd.date_range("2000-01-01", periods=10, freq="YS"), 1.5) is None


def test_change_command_writes_the_table(fitted, small_sim, tmp_path, capsys):
    path = fitted.save(tmp_path / "model.safetensors")
    out = tmp_path / "change.csv"
    assert cli_main(["change", str(path), "--out", str(out)]) == 0
    written = pd.read_csv(out, index_col="part")
    d = fitted.panel_.dates
    expected = fitted.get_kpi_change((d[34], d[46]), (d[47], d[59]))  # 60 weeks: the quarter before
    np.testing.assert_allclose(written["change"], expected["change"], rtol=1e-9)
    printed = capsys.readouterr().out
    assert f"change {expected.attrs['change']:+,.0f} ({expected.attrs['change_pct']:+.2f}%)" in printed
    regions = ";".join(fitted.regions_[:2])
    assert cli_main(["change", str(path), "--base", f"{d[0]:%Y-%m-%d}", f"{d[12]:%Y-%m-%d}", "--compare",
                     f"{d[39]:%Y-%m-%d}", f"{d[51]:%Y-%m-%d}", "--regions", regions, "--by-region",
                     "--out", str(out)]) == 0
    by_region = pd.read_csv(out, index_col=["region", "part"])
    assert list(by_region.index.get_level_values("region").unique()) == fitted.regions_[:2]
    printed = capsys.readouterr().out  # a line per region, the parts in the file
    first = by_region.loc[fitted.regions_[0]]
    assert f"{fitted.regions_[0]}" in printed and f"{first['change'].sum():,.0f}" in printed
    assert "each region's parts are in the CSV" in printed and "unexplained" not in printed
    assert cli_main(["change", str(path), "--n-boot", "2", "--out", str(out)]) == 0
    bounds = pd.read_csv(out, index_col="part")
    assert (bounds["change_pct_lo"] <= bounds["change_pct_hi"]).all()
    assert "intervals from 2 of 2 bootstrap refits" in capsys.readouterr().out
    assert cli_main(["change", str(path), "--n-boot", "2", "--by-region", "--out", str(out)]) == 2
    assert "--n-boot cannot be combined with --by-region: bootstrap replicates redraw" in capsys.readouterr().err
    # --rows: planned rows as the later period, as the API has it
    plan_file = out.parent / "plan.csv"
    _later_rows(small_sim.data).to_csv(plan_file, index=False)
    assert cli_main(["change", str(path), "--base", f"{d[47]:%Y-%m-%d}", f"{d[59]:%Y-%m-%d}", "--rows",
                     str(plan_file), "--date", "date", "--region", "region", "--out", str(out)]) == 0
    api = fitted.get_kpi_change((d[47], d[59]), X=_later_rows(small_sim.data), regions="region", dates="date",
                                controls=["price", "promo"])
    np.testing.assert_allclose(pd.read_csv(out, index_col="part")["change"], api["change"], rtol=1e-9)
    capsys.readouterr()
    assert cli_main(["change", str(path), "--rows", str(plan_file), "--compare", "2023Q1", "--out", str(out)]) == 2
    assert "so ['--compare'] do not apply" in capsys.readouterr().err
    assert cli_main(["change", str(path), "--base", "2001-01-01", "2001-02-01", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "error: --base ('2001-01-01', '2001-02-01') contains no fitted dates" in err
    assert f"e.g. --base {d[0]:%Y-%m-%d} {d[-1]:%Y-%m-%d}" in err


def test_change_on_a_fit_without_dates_takes_period_numbers():
    from .conftest import FAST

    sim = simulate_panel(3, 40, 2, seed=2)
    model = DeepCausalMMM(config=FAST).fit(sim.X, sim.y, regions=sim.regions)  # rows are periods 0..39
    table = model.get_kpi_change((0, 12), (np.int64(27), 39.0))
    assert table.attrs["base_dates"] == "0..12" and table.attrs["compare_dates"] == "27..39"
    y = np.asarray(sim.y, dtype=float).reshape(3, 40)
    assert table["change"].sum() == pytest.approx(y[:, 27:].sum() - y[:, :13].sum(), rel=1e-9)
    with pytest.raises(DataError, match=r"`base` \('0', '12'\) must be a pair of period numbers: the fit has no "
                                        r"calendar dates, its rows are periods 0\.\.39; e\.g\. base=\(0, 39\)"):
        model.get_kpi_change(("0", "12"), (27, 39))
    with pytest.raises(DataError, match=r"`period` \('a', 3\) must be a pair of period numbers"):
        model.get_channel_effects(period=("a", 3))


def test_change_takes_calendar_periods(fitted):
    """'2023Q1' is the weeks dated within that quarter: the same as their (first, last) pair, for
    get_kpi_change and every other period argument."""
    d = fitted.panel_.dates  # weekly from 2023-01-02
    by_label = fitted.get_kpi_change("2023Q1", pd.Period("2023Q2"))
    by_pair = fitted.get_kpi_change((d[0], d[12]), (d[13], d[25]))
    pd.testing.assert_frame_equal(by_label, by_pair)
    assert by_label.attrs["base_dates"] == "2023-01-02..2023-03-27"
    month = fitted.get_channel_effects(period="2023-02")
    pd.testing.assert_frame_equal(month, fitted.get_channel_effects(period=(d[5], d[8])))


def _later_rows(data: pd.DataFrame, weeks: int = 13) -> pd.DataFrame:
    """Each region's last ``weeks`` rows again, dated right after the data: next quarter's plan."""
    dates = pd.to_datetime(data["date"])
    rows = data[dates > dates.max() - pd.Timedelta(weeks=weeks)].copy()
    rows["date"] = pd.to_datetime(rows["date"]) + pd.Timedelta(weeks=weeks)
    return rows.drop(columns="kpi")


def test_change_to_planned_rows_is_the_forecast_part_by_part(fitted, small_sim):
    """Rows after the fit as the later period: its parts are the forecast's decomposition (they
    add up to predict), the earlier period's are the fit's, and the change adds up to the
    forecast minus the observed KPI."""
    import copy

    d = fitted.panel_.dates
    rows = _later_rows(small_sim.data)
    kw = dict(X=rows, regions="region", dates="date", controls=["price", "promo"])
    base = (d[47], d[59])
    model = copy.deepcopy(fitted)
    model.residual_persistence_ = 0.5  # a forecast anchor that lasts into the rows
    table = model.get_kpi_change(base, **kw)
    forecast = model.predict(rows, regions="region", dates="date", controls=["price", "promo"])
    # (the baseline's terms each in the network's float32, added in float64 here)
    assert table["compare"].sum() == pytest.approx(forecast.sum(), rel=1e-6)
    assert table.attrs["compare_kpi"] == pytest.approx(forecast.sum(), rel=1e-6)
    assert table.attrs["base_kpi"] == pytest.approx(_actual(small_sim, *base), rel=1e-10)
    assert table["change"].sum() == pytest.approx(forecast.sum() - _actual(small_sim, *base), rel=1e-6)
    assert table.attrs["compare_dates"] == f"{d[59] + pd.Timedelta(weeks=1):%Y-%m-%d}..{d[59] + pd.Timedelta(weeks=13):%Y-%m-%d}"
    # the rows' channels are the forecast decomposition's; the later period has no residual
    planned = model.get_channel_contributions(rows, regions="region", dates="date", controls=["price", "promo"])
    for c in model.channels_:
        assert table.loc[c, "compare"] == pytest.approx(planned[c].sum(), rel=1e-10)
    assert table.loc["unexplained", "compare"] == pytest.approx(0.0, abs=1e-6 * forecast.sum())
    # the anchor: each region's last residual times 0.5 per week after its last fitted week
    weeks_after = np.arange(1, 14)
    anchor = sum(model._anchor_resid[i] * (0.5 ** weeks_after).sum() for i in range(len(model.regions_)))
    assert table.loc["forecast anchor", "compare"] == pytest.approx(anchor, rel=1e-9)
    assert table.loc["forecast anchor", "base"] == 0.0
    # the earlier period is the fit's, as get_kpi_change over fitted periods has it
    fitted_periods = model.get_kpi_change(base, (d[34], d[46]))
    np.testing.assert_allclose(table.loc[fitted_periods.index, "base"], fitted_periods["base"], rtol=1e-10)
    # channels without descendants: total effect change = direct change (no graph on this fit)
    np.testing.assert_allclose(table.loc[model.channels_, "total_effect_change"],
                               table.loc[model.channels_, "change"], rtol=1e-8)
    # by region: the national rows summed
    regional = model.get_kpi_change(base, by_region=True, **kw)
    summed = regional.groupby(level="part", sort=False)["change"].sum()
    np.testing.assert_allclose(summed.loc[table.index], table["change"], rtol=1e-9, atol=1e-6)
    assert isinstance(model.plot_kpi_change(base, **kw), go.Figure)


def test_change_to_rows_inside_the_fit_replays_it(fitted, small_sim):
    """The fitted weeks given back as rows: every modelled part equals the fitted period's."""
    d = fitted.panel_.dates
    data = small_sim.data
    when = pd.to_datetime(data["date"])
    replay = data[(when >= d[47]) & (when <= d[59])].drop(columns="kpi")
    rows = fitted.get_kpi_change((d[0], d[12]), X=replay, regions="region", dates="date",
                                 controls=["price", "promo"])
    periods = fitted.get_kpi_change((d[0], d[12]), (d[47], d[59]))
    modelled = [p for p in periods.index if p != "unexplained"]
    np.testing.assert_allclose(rows.loc[modelled, "compare"], periods.loc[modelled, "compare"], rtol=1e-9)
    np.testing.assert_allclose(rows.loc[fitted.channels_, "total_effect_change"],
                               periods.loc[fitted.channels_, "total_effect_change"], rtol=1e-8)


def test_change_to_rows_errors(fitted, small_sim):
    d = fitted.panel_.dates
    rows = _later_rows(small_sim.data)
    kw = dict(X=rows, regions="region", dates="date", controls=["price", "promo"])
    with pytest.raises(DataError, match=r"either as `compare` \(fitted dates\) or as rows `X`.*not both"):
        fitted.get_kpi_change((d[0], d[12]), (d[13], d[25]), **kw)
    with pytest.raises(DataError, match=r"either as `compare` \(fitted dates\) or as rows `X`.*not neither"):
        fitted.get_kpi_change((d[0], d[12]))
    with pytest.raises(DataError, match=r"`n_boot` cannot be combined with rows `X`"):
        fitted.get_kpi_change((d[0], d[12]), n_boot=2, **kw)
    with pytest.raises(DataError, match=r"`regions` \['atlantis', .*\] were not in the fitted data"):
        fitted.get_kpi_change((d[0], d[12]), **{**kw, "X": rows.assign(region=rows["region"] + "_atlantis")
                                                .replace({"region": {"geo_000_atlantis": "atlantis"}})})
