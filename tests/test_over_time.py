"""Effects, spend and return period by period (``get_effects_over_time``): they add up to the
whole fit's effects, the marginal return counts carryover, the periods' returns follow the
simulator's, and its errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from deepcausalmmm import DataError, DeepCausalMMM, NotFittedError
from deepcausalmmm.data.history import default_frequency, period_blocks
from deepcausalmmm.datasets import simulate_panel

from .conftest import FAST

COLUMNS = ["start", "end", "n_dates", "n_cells", "complete", "spend", "total", "direct", "mediated", "total_share", "roi",
           "marginal_roi"]


def test_periods_add_up_to_the_whole_fit(mediated):
    table = mediated.get_effects_over_time("Q")
    assert list(table.columns) == COLUMNS and table.index.names == ["period", "channel"]
    labels = list(dict.fromkeys(table.index.get_level_values("period")))
    assert labels == ["2023Q1", "2023Q2", "2023Q3", "2023Q4", "2024Q1"]  # 60 weeks from 2023-01-02
    pd.testing.assert_frame_equal(mediated.get_effects_over_time(), table)  # quarters by default
    assert list(table.xs("2023Q1", level="period")["n_dates"]) == [13] * 3
    assert list(table.xs("2023Q1", level="period")["n_cells"]) == [13 * 6] * 3  # 6 regions observed throughout
    # the fit ends in February: its last quarter is only in part of the fit
    assert table.groupby(level="period")["complete"].first().to_dict() == {
        "2023Q1": True, "2023Q2": True, "2023Q3": True, "2023Q4": True, "2024Q1": False}
    whole = mediated.get_channel_effects()
    summed = table.groupby(level="channel")[["total", "direct", "spend"]].sum()
    for column in ("total", "direct", "spend"):
        np.testing.assert_allclose(summed[column], whole.loc[summed.index, column], rtol=1e-9)
    assert whole.loc["channel_1", "mediated"] > 0.01 * whole.loc["channel_1", "total"]  # the graph counts
    # each period's row is get_channel_effects over that period, which takes the label back
    for label in ("2023Q2", "2024Q1"):
        one = mediated.get_channel_effects(period=label)
        rows = table.xs(label, level="period")
        for column in ("total", "direct", "mediated", "total_share", "spend", "roi"):
            np.testing.assert_allclose(rows[column], one.loc[rows.index, column], rtol=1e-9, atol=1e-6)
    shares = table.groupby(level="period")["total_share"].sum()
    np.testing.assert_allclose(shares, 1.0, rtol=1e-12)
    np.testing.assert_allclose(table["roi"], table["total"] / table["spend"], rtol=1e-12)


def test_regions_add_up_and_years_hold_the_quarters(mediated):
    regions = mediated.regions_
    every = mediated.get_effects_over_time("Q", marginal=False)
    assert "marginal_roi" not in every.columns
    parts = [mediated.get_effects_over_time("Q", regions=regions[:2], marginal=False),
             mediated.get_effects_over_time("Q", regions=regions[2:], marginal=False)]
    for column in ("total", "direct", "spend"):
        np.testing.assert_allclose(parts[0][column] + parts[1][column], every[column], rtol=1e-9)
    years = mediated.get_effects_over_time("year", marginal=False)
    assert list(dict.fromkeys(years.index.get_level_values("period"))) == ["2023", "2024"]
    quarters = every.assign(year=[p[:4] for p in every.index.get_level_values("period")])
    by_year = quarters.groupby(["year", quarters.index.get_level_values("channel")])["total"].sum()
    np.testing.assert_allclose(years["total"].to_numpy(), by_year.to_numpy(), rtol=1e-9)


def test_marginal_return_counts_the_carryover_after_the_period(mediated):
    """Over one block of every fitted week the marginal return is the response curve's slope at
    today's spend (the same 0.9 / 1.1 multipliers); over a quarter it adds the KPI that the
    quarter's extra spend brings in later weeks, which a curve over the quarter alone leaves out."""
    T = mediated.panel_.shape[1]
    one = mediated.get_effects_over_time(T)
    curves = mediated.get_response_curves(multipliers=[0.9, 1.0, 1.1])
    at_one = curves[curves["multiplier"] == 1.0].set_index("channel")["marginal_roi"]
    np.testing.assert_allclose(one["marginal_roi"].to_numpy(), at_one[mediated.channels_].to_numpy(), rtol=1e-9)
    table = mediated.get_effects_over_time("Q")
    later = 0
    for label in ("2023Q1", "2023Q2", "2023Q3"):
        inside = mediated.get_response_curves(multipliers=[0.9, 1.0, 1.1], period=label)
        inside = inside[inside["multiplier"] == 1.0].set_index("channel")["marginal_roi"]
        forward = table.xs(label, level="period")["marginal_roi"]
        assert (forward >= inside[forward.index] - 1e-9).all()
        later += int((forward > inside[forward.index] * 1.02).sum())
    assert later >= 3  # carryover past a quarter's end is visible (measured: all 9)


def test_period_returns_follow_the_simulated_ones():
    """Quarter by quarter each channel's ROI relative to its whole-fit ROI moves as the truth's
    does (carryover a quarter inherits, saturation at high spend): closer to it than a constant
    return is (squared error 0.13 against 0.58 measured; log correlation 0.86)."""
    sim = simulate_panel(10, 104, 3, seed=4)
    model = DeepCausalMMM(config=FAST, random_state=0).fit(sim.X, sim.y, regions=sim.regions, dates=sim.dates,
                                                           controls=sim.control_frame)
    table = model.get_effects_over_time("Q", marginal=False)
    quarter = pd.DatetimeIndex(sim.truth.index.get_level_values("date")).to_period("Q").astype(str)
    true_effect = sim.truth[model.channels_].groupby(quarter).sum()
    spend = table["spend"].unstack("channel")
    effect = table["direct"].unstack("channel")
    assert list(true_effect.index) == list(spend.index)
    true_rel = (true_effect / spend) / (true_effect.sum() / spend.sum())
    rel = (effect / spend) / (effect.sum() / spend.sum())
    error = float(((rel - true_rel) ** 2).sum().sum())
    constant = float(((true_rel - 1) ** 2).sum().sum())
    assert error < 0.4 * constant
    assert np.corrcoef(np.log(rel.to_numpy().ravel()), np.log(true_rel.to_numpy().ravel()))[0, 1] > 0.7


def test_blocks_of_steps_on_a_fit_without_dates():
    sim = simulate_panel(3, 40, 2, seed=2)
    model = DeepCausalMMM(config=FAST, random_state=0).fit(np.asarray(sim.X), np.asarray(sim.y),
                                                           regions=np.asarray(sim.regions))
    table = model.get_effects_over_time(13)
    assert list(dict.fromkeys(table.index.get_level_values("period"))) == ["0..12", "13..25", "26..38", "39"]
    # by default: blocks of a quarter of the season's period (52.18 weekly steps: 13)
    pd.testing.assert_frame_equal(model.get_effects_over_time(), table)
    assert table.groupby(level="period", sort=False)["complete"].first().tolist() == [True, True, True, False]
    assert table.groupby(level="period", sort=False)["n_dates"].first().tolist() == [13, 13, 13, 1]
    np.testing.assert_allclose(table.groupby(level="channel")["total"].sum(),
                               model.get_channel_effects()["total"][model.channels_], rtol=1e-9)
    with pytest.raises(DataError, match=r"`freq` 'Q' is a calendar frequency, but the fit has no calendar dates"):
        model.get_effects_over_time("Q")
    # the labels go back into every period= argument: "13..25", and "39" for a block of one
    for label in ("13..25", "39"):
        np.testing.assert_allclose(model.get_channel_effects(period=label)["total"][model.channels_].to_numpy(),
                                   table.loc[label, "total"].to_numpy(), rtol=1e-9)
    with pytest.raises(DataError, match=r"`period` 'a..b' must be period numbers: a pair, or two joined by '..' "
                                        r"as in '0..39'"):
        model.get_channel_effects(period="a..b")


def test_period_blocks_and_default_frequency():
    weeks = pd.date_range("2023-02-06", periods=60, freq="7D")
    block, labels, complete = period_blocks(weeks, "Q")
    assert labels == ["2023Q1", "2023Q2", "2023Q3", "2023Q4", "2024Q1"]
    assert complete.tolist() == [False, True, True, True, True]  # starts in February, ends with March
    assert np.bincount(block).tolist() == [8, 13, 13, 13, 13]
    month_ends = pd.date_range("2023-02-28", periods=11, freq="ME")
    assert period_blocks(month_ends, "quarter")[2].tolist() == [False, True, True, True]
    assert period_blocks(pd.date_range("2023-01-31", periods=12, freq="ME"), "Q")[2].all()
    assert default_frequency(weeks, 52.18) == "Q"
    assert default_frequency(pd.date_range("2020-01-06", periods=200, freq="7D"), 52.18) == "Y"
    assert default_frequency(weeks[:20], 52.18) == "M"
    assert default_frequency(pd.Index(range(40)), 52.0) == 13


def test_over_time_errors_and_figure(mediated):
    with pytest.raises(NotFittedError):
        DeepCausalMMM().get_effects_over_time()
    with pytest.raises(DataError, match=r"`freq` 'fortnight' is not a calendar frequency pandas knows"):
        mediated.get_effects_over_time("fortnight")
    with pytest.raises(DataError, match=r"`freq` must be a whole number of steps >= 1 .* found 0"):
        mediated.get_effects_over_time(0)
    with pytest.raises(DataError, match=r"`freq` must be a calendar frequency .* found 1.5 \(float\)"):
        mediated.get_effects_over_time(1.5)
    with pytest.raises(DataError, match=r"`marginal` must be True or False"):
        mediated.get_effects_over_time("Q", marginal="yes")
    with pytest.raises(DataError, match=r"`regions` \['nowhere'\] were not in the fitted data"):
        mediated.get_effects_over_time("Q", regions=["nowhere"])
    with pytest.raises(DataError, match=r"`metric` must be one of \['roi', 'marginal_roi'"):
        mediated.plot_effects_over_time("profit")
    fig = mediated.plot_effects_over_time("marginal_roi", freq="Q")
    assert isinstance(fig, go.Figure) and len(fig.data) == 3
    table = mediated.get_effects_over_time("Q")
    first = fig.data[0]
    assert list(first.x) == list(dict.fromkeys(table.index.get_level_values("period")))
    np.testing.assert_allclose(first.y, table.xs("channel_1", level="channel")["marginal_roi"])
    assert list(first.marker.symbol) == ["circle"] * 4 + ["circle-open"]  # the last quarter in part


def test_effects_command_by_period_and_over_one_period(mediated, tmp_path, capsys):
    from deepcausalmmm.cli import main

    model_file = str(mediated.save(tmp_path / "m.safetensors"))
    out = tmp_path / "over.csv"
    assert main(["effects", model_file, "--by", "Q", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    table = pd.read_csv(out, index_col=["period", "channel"])
    expected = mediated.get_effects_over_time("Q")
    assert list(table.index) == list(expected.index)
    np.testing.assert_allclose(table["roi"], expected["roi"], rtol=1e-9)
    np.testing.assert_allclose(table["marginal_roi"], expected["marginal_roi"], rtol=1e-9)
    assert "roi: total effect per unit of spend in each period" in printed
    assert main(["effects", model_file, "--by", "--out", str(tmp_path / "default.csv")]) == 0  # alone: quarters
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "default.csv", index_col=["period", "channel"]), table)
    capsys.readouterr()
    assert "2024Q1*" in printed and "(* the fit covers the period in part)" in printed
    assert f"{expected.loc[('2023Q2', 'channel_3'), 'roi']:,.4g}" in printed
    # one period, two regions: get_channel_effects over them
    regions = mediated.regions_[:2]
    assert main(["effects", model_file, "--period", "2023Q3", "--regions", ";".join(regions),
                 "--out", str(out)]) == 0
    one = pd.read_csv(out, index_col="channel")
    np.testing.assert_allclose(one["total"], mediated.get_channel_effects(regions=regions, period="2023Q3")["total"],
                               rtol=1e-9)
    # with bootstrap intervals: each figure printed with its interval, the bounds in the CSV
    assert main(["effects", model_file, "--by", "Y", "--n-boot", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    years = pd.read_csv(out, index_col=["period", "channel"])
    row = years.loc[(2023, "channel_1")]
    assert f"{row['roi']:,.4g} [{row['roi_lo']:,.3g}, {row['roi_hi']:,.3g}]" in printed
    assert "90% intervals from 2 bootstrap refits" in printed
    assert main(["effects", model_file, "--n-boot", "2", "--out", str(out)]) == 0  # the whole fit's intervals
    whole = pd.read_csv(out, index_col="channel")
    np.testing.assert_allclose(whole["roi_lo"], mediated.get_effect_intervals(n_boot=2)["roi_lo"], rtol=1e-9)
    assert main(["effects", model_file, "--by", "Q", "--by-region", "--out", str(out)]) == 0
    assert "90 rows: 6 region(s) x their observed periods x 3 channels" in capsys.readouterr().out
    regional = pd.read_csv(out, index_col=["region", "period", "channel"])
    np.testing.assert_allclose(regional["roi"], mediated.get_effects_over_time("Q", by_region=True)["roi"], rtol=1e-9)
    blocks = mediated.get_effects_over_time(13, marginal=False)  # labels "2023-01-02..2023-03-27", ...
    label = blocks.index.get_level_values("period")[3]
    assert main(["effects", model_file, "--period", label, "--out", str(out)]) == 0
    np.testing.assert_allclose(pd.read_csv(out, index_col="channel")["total"], blocks.loc[label, "total"], rtol=1e-9)
    assert main(["effects", model_file, "--period", "2023-07-03", "2023-09-25", "--out", str(out)]) == 0
    np.testing.assert_allclose(pd.read_csv(out, index_col="channel")["total"],
                               mediated.get_channel_effects(period="2023Q3")["total"], rtol=1e-9)
    capsys.readouterr()
    for args, message in (
        (["--by", "fortnight"], "error: --by 'fortnight' is not a calendar frequency pandas knows"),
        (["--by", "0"], "error: --by must be a whole number of steps >= 1"),
        (["--by", "Q", "--period", "2023Q1"], "error: --by Q gives every period of the fit, one block of rows "
                                              "each, so ['--period'] does not apply"),
        (["--period", "2030Q1"], "error: --period '2030Q1' contains no fitted dates; the fit covers 2023-01-02.."
                                 "2024-02-19: give (start, end) with start <= end overlapping it, e.g. --period "
                                 "2023-01-02 2024-02-19"),
        (["--period", "a", "b", "c"], "error: --period takes a period's first and last dates (two values)"),
        (["--regions", "nowhere"], "error: --regions ['nowhere'] were not in the fitted data"),
        (["--n-boot", "1"], "error: --n-boot must be 0 (no intervals) or at least 2, found 1"),
        (["--n-boot", "2", "--period", "2023Q1"], "error: --n-boot refits redraw the fitted regions over every "
                                                  "fitted week, so ['--period'] do not apply"),
        (["--n-boot", "2", "--prior-spread", "-1"], "error: --prior-spread must be"),
    ):
        assert main(["effects", model_file, *args, "--out", str(tmp_path / "bad.csv")]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "bad.csv").exists()


def test_ragged_panel_counts_observed_cells_and_drops_unobserved_periods():
    sim = simulate_panel(4, 60, 2, seed=5)
    df = sim.data
    d = pd.DatetimeIndex(df["date"])
    late = (df["region"] == "geo_001") & (d < d.min() + pd.Timedelta(weeks=20))  # starts in week 20
    model = DeepCausalMMM(config=FAST).fit(df[~late], "kpi", regions="region", dates="date", controls=sim.controls)
    table = model.get_effects_over_time("Q", regions=["geo_001"], marginal=False)
    counts = table.groupby(level="period", sort=False)[["n_dates", "n_cells"]].first()
    # 2023Q1 (weeks 0-12) held none of its weeks: no rows; 2023Q2 (weeks 13-25) 6 of 13
    assert list(counts.index) == ["2023Q2", "2023Q3", "2023Q4", "2024Q1"]
    assert counts.loc["2023Q2"].tolist() == [13, 6] and counts.loc["2023Q3"].tolist() == [13, 13]
    every = model.get_effects_over_time("Q", marginal=False)
    assert every.xs("2023Q1", level="period")["n_cells"].tolist() == [3 * 13] * 2
    np.testing.assert_allclose(table["total"].to_numpy(),
                               [model.get_channel_effects(regions=["geo_001"], period=p).loc[c, "total"]
                                for p, c in table.index], rtol=1e-9)


def test_bootstrap_intervals_share_the_refits_of_the_effect_intervals(mediated, refit_count):
    """Over one block of every fitted week, the intervals on ROI and marginal ROI are those of
    get_effect_intervals, from the same refits (fitted once inside shared_refits())."""
    fitted_models = refit_count
    T = mediated.panel_.shape[1]
    with mediated.shared_refits():
        intervals = mediated.get_effect_intervals(n_boot=2)
        whole = mediated.get_effects_over_time(T, n_boot=2)
        quarters = mediated.get_effects_over_time("Q", n_boot=2)
    assert len(fitted_models) == 2
    for column in ("roi_lo", "roi_hi", "roi_sd", "marginal_roi_lo", "marginal_roi_hi", "marginal_roi_sd"):
        np.testing.assert_allclose(whole[column].to_numpy(), intervals[column][mediated.channels_].to_numpy(),
                                   rtol=1e-9)
    assert list(quarters.columns) == [*COLUMNS, "roi_lo", "roi_hi", "roi_sd", "marginal_roi_lo", "marginal_roi_hi",
                                      "marginal_roi_sd"]
    assert (quarters["roi_lo"] <= quarters["roi_hi"]).all()
    # the figure draws the bounds as error bars around each point
    from deepcausalmmm.plotting.figures import over_time_figure

    first = over_time_figure(quarters, "roi").data[0]
    rows = quarters.xs("channel_1", level="channel")
    np.testing.assert_allclose(first.error_y.array, np.maximum(rows["roi_hi"] - rows["roi"], 0.0))
    np.testing.assert_allclose(first.error_y.arrayminus, np.maximum(rows["roi"] - rows["roi_lo"], 0.0))
    assert quarters.attrs["n_boot"] == 2 and quarters.attrs["level"] == 0.9 and quarters.attrs["prior_spread"] == 1.4
    for kwargs, message in (({"n_boot": 1}, r"`n_boot` must be 0 \(no intervals\) or a whole number of at least 2"),
                            ({"n_boot": 2.5}, r"`n_boot` must be 0 .* found 2.5"),
                            ({"n_boot": 2, "regions": ["geo_000"]}, r"`n_boot` cannot be combined with `regions`: bootstrap replicates redraw"),
                            ({"n_boot": 2, "level": 1.5}, r"`level`"),
                            ({"n_boot": 2, "prior_spread": -1.0}, r"`prior_spread`")):
        with pytest.raises(DataError, match=message):
            mediated.get_effects_over_time("Q", **kwargs)
    assert len(fitted_models) == 2  # refused before any refit


def test_key_finding_compares_a_period_with_the_same_one_a_year_before():
    from deepcausalmmm.reporting import comparison_pair

    quarters = ["2023Q1", "2023Q2", "2023Q3", "2023Q4", "2024Q1", "2024Q2", "2024Q3"]
    assert comparison_pair(quarters) == ("2023Q3", "2024Q3")  # the season cancels
    assert comparison_pair(quarters[:4]) == ("2023Q1", "2023Q4")  # no year before: first and last
    assert comparison_pair(["2023-01", "2023-02", "2024-01", "2024-02"]) == ("2023-02", "2024-02")
    assert comparison_pair(["2023", "2024"]) == ("2023", "2024")
    assert comparison_pair(["0..12", "13..25", "26..38"]) == ("0..12", "26..38")  # blocks of steps
    assert comparison_pair(["2023Q1"]) is None
    # blocks of 13 weeks: four blocks make a year
    blocks = ["0..12", "13..25", "26..38", "39..51", "52..64", "65..77"]
    assert comparison_pair(blocks, blocks_per_year=4) == ("13..25", "65..77")
    assert comparison_pair(blocks[:4], blocks_per_year=4) == ("0..12", "39..51")


def test_key_finding_skips_channels_that_barely_ran():
    """The finding names the channel whose ROI moved most among those with at least a tenth of
    their typical spend in both periods: a channel with next to no spend in one has an ROI on
    nothing."""
    from deepcausalmmm.reporting import _over_time_finding

    index = pd.MultiIndex.from_product([["2023Q3", "2024Q3"], ["tv", "search", "radio"]], names=["period", "channel"])
    over = pd.DataFrame({"complete": True,
                         "spend": [100.0, 100.0, 0.5, 100.0, 100.0, 100.0],
                         "roi": [1.0, 2.0, 50.0, 1.5, 1.0, 2.0]}, index=index)
    line = _over_time_finding(over)
    assert line is not None and line.startswith("Return over time: the ROI of search moved most, from 2 in 2023Q3 "
                                                 "to 1 in 2024Q3")
    over.loc[("2023Q3", "radio"), "spend"] = 100.0  # radio ran: its fall from 50 to 2 is the largest
    assert "the ROI of radio moved most" in _over_time_finding(over)


def test_by_region_rows_add_up_to_the_pooled_ones(mediated):
    pooled = mediated.get_effects_over_time("Q")
    table = mediated.get_effects_over_time("Q", by_region=True)
    assert table.index.names == ["region", "period", "channel"]
    assert len(table) == len(mediated.regions_) * len(pooled)  # every region observed in every quarter
    summed = table.groupby(level=["period", "channel"], sort=False)[["total", "direct", "spend", "n_cells"]].sum()
    for column in ("total", "direct", "spend", "n_cells"):
        np.testing.assert_allclose(summed[column].to_numpy(), pooled[column].to_numpy(), rtol=1e-9)
    # the pooled marginal return is the regions' spend-weighted mean
    weighted = (table["marginal_roi"] * table["spend"]).groupby(level=["period", "channel"], sort=False).sum()
    np.testing.assert_allclose((weighted / summed["spend"]).to_numpy(), pooled["marginal_roi"].to_numpy(), rtol=1e-9)
    one = table.loc[mediated.regions_[0]]
    np.testing.assert_allclose(one["total"].to_numpy(),
                               mediated.get_effects_over_time("Q", regions=[mediated.regions_[0]])["total"].to_numpy(),
                               rtol=1e-9)
    shares = table.groupby(level=["region", "period"])["total_share"].sum()
    np.testing.assert_allclose(shares.to_numpy(), 1.0, rtol=1e-12)
    with pytest.raises(DataError, match=r"`n_boot` cannot be combined with `by_region`"):
        mediated.get_effects_over_time("Q", by_region=True, n_boot=2)
