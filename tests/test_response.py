"""Response curves: known points (0 and the total effect), shape, spend and errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from deepcausalmmm import DeepCausalMMM
from deepcausalmmm.exceptions import DataError

from .conftest import FAST


def test_response_curve_hits_zero_and_the_total_effect(fitted):
    curves = fitted.get_response_curves(multipliers=[0.5, 1.5])
    effects = fitted.get_channel_effects()
    assert sorted(curves["multiplier"].unique()) == [0.0, 0.5, 1.0, 1.5]  # 0 and 1 always included
    at = curves.set_index(["channel", "multiplier"])
    for c in fitted.channels_:
        assert at.loc[(c, 0.0), "response"] == 0.0
        assert at.loc[(c, 1.0), "response"] == pytest.approx(effects.loc[c, "total"], rel=1e-6)
        assert at.loc[(c, 1.0), "roi"] == pytest.approx(effects.loc[c, "roi"], rel=1e-6)
        assert at.loc[(c, 1.5), "spend"] == pytest.approx(1.5 * effects.loc[c, "spend"])


def test_response_rises_with_diminishing_returns(fitted):
    curves = fitted.get_response_curves(multipliers=np.linspace(0, 3, 13))
    for _, g in curves.groupby("channel"):
        r = g["response"].to_numpy()
        assert np.all(np.diff(r) > 0)  # non-negative channels: more activity, more KPI
        # Hill with slope ~1 past the knee: each extra unit of spend returns less.
        mr = g["marginal_roi"].to_numpy()
        assert mr[-1] < mr[len(mr) // 2]


def test_response_curves_restricted_and_plotted(fitted, small_sim):
    region = small_sim.regions[0]
    dates = np.unique(small_sim.dates)
    one = fitted.get_response_curves(["channel_1"], [1.0], regions=[region], period=(dates[30], dates[45]))
    everything = fitted.get_response_curves(["channel_1"], [1.0])
    assert 0 < one["response"].iloc[-1] < everything["response"].iloc[-1]
    fig = fitted.plot_response_curves(channels=["channel_1", "channel_2"])
    assert {t.name for t in fig.data if t.name} == {"channel_1", "channel_2"}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"channels": ["radio"]}, r"\['radio'\] are not fitted channels"),
        ({"multipliers": [-1.0, 1.0]}, "must be finite numbers >= 0"),
        ({"regions": ["nowhere"]}, "were not in the fitted data"),
        ({"period": ("2030-01-01", "2030-02-01")}, "contains no fitted dates; the fit covers 2023-01-02.."),
        ({"period": 2023}, r"must be a \(start, end\) pair of dates.*found 2023; e.g. period=\('2023-01-02'"),
        ({"period": "2023-13"}, r"`period` '2023-13' is neither a \(start, end\) pair of dates nor a calendar period"),
        ({"period": ("2023-01-02", "someday")}, "is not a pair of dates"),
    ],
)
def test_response_curve_errors(fitted, kwargs, message):
    with pytest.raises(DataError, match=message):
        fitted.get_response_curves(**kwargs)


def test_budget_bounds_per_channel(fitted):
    """A dict of bounds: a channel held at (1, 1) keeps its spend; the others share the budget."""
    free = fitted.optimize_budget(bounds=(0.5, 1.5))
    held = free["multiplier"].idxmax()  # the channel the free plan grows most
    plan = fitted.optimize_budget(bounds={held: (1.0, 1.0)})
    assert plan.loc[held, "multiplier"] == pytest.approx(1.0, abs=1e-9)
    assert plan["optimal_spend"].sum() == pytest.approx(plan["spend"].sum(), rel=1e-6)
    others = plan.drop(index=held)["multiplier"]
    assert others.between(0.5 - 1e-9, 1.5 + 1e-9).all()  # the default range for channels not named
    assert plan.attrs["kpi_gain"] <= free.attrs["kpi_gain"] + 1e-9 * abs(free.attrs["kpi_gain"])
    # a budget the per-channel bounds cannot reach names their range
    spend = plan["spend"]
    top = spend[held] + 1.5 * spend.drop(index=held).sum()
    with pytest.raises(DataError, match=rf"must lie in \[.*, {top:,.2f}\]"):
        fitted.optimize_budget(budget=1.01 * top, bounds={held: (1.0, 1.0)})
    # an asymmetric range for one channel is respected
    wide = fitted.optimize_budget(bounds={held: (0.9, 3.0)})
    assert 0.9 - 1e-9 <= wide.loc[held, "multiplier"] <= 3.0 + 1e-9
    assert wide.attrs["kpi_gain"] >= free.attrs["kpi_gain"] - 1e-6 * abs(free.attrs["kpi_gain"])


def test_budget_without_spend_in_the_chosen_cells_says_so(small_sim):
    X = small_sim.X.copy()
    dark = small_sim.regions[0]
    X.loc[np.asarray(small_sim.regions) == dark] = 0.0  # one region where no channel ran
    model = DeepCausalMMM(config=FAST).fit(X, small_sim.y, regions=small_sim.regions, dates=small_sim.dates)
    with pytest.raises(DataError, match=rf"no channel has spend .* \(regions '{dark}'.*choose regions or a period"):
        model.optimize_budget(regions=dark)
    assert len(model.optimize_budget()) == len(model.channels_)


def test_single_labels_mean_one_channel_or_region(fitted, small_sim):
    """A bare label is that one channel or region, not a sequence of its characters."""
    region = small_sim.regions[0]
    one = fitted.get_response_curves("channel_1", [1.0], regions=region)
    listed = fitted.get_response_curves(["channel_1"], [1.0], regions=[region])
    assert one.equals(listed) and set(one["channel"]) == {"channel_1"}
    np.testing.assert_allclose(fitted.get_channel_effects(regions=region)["total"],
                               fitted.get_channel_effects(regions=[region])["total"])


def test_budget_reallocation_follows_marginal_roi(fitted):
    plan = fitted.optimize_budget(bounds=(0.5, 1.5))
    assert plan["optimal_spend"].sum() == pytest.approx(plan["spend"].sum(), rel=1e-6)  # a pure reallocation
    assert plan["multiplier"].between(0.5 - 1e-9, 1.5 + 1e-9).all()
    assert plan.attrs["converged"] and plan.attrs["kpi_gain"] > 0
    marginal = fitted.get_response_curves(multipliers=[0.9, 1.1]).query("multiplier == 1.0")
    marginal = marginal.set_index("channel")["marginal_roi"]
    # Known answer for concave responses: money moves from the lowest to the highest marginal ROI.
    assert plan.loc[marginal.idxmax(), "multiplier"] > 1.0
    assert plan.loc[marginal.idxmin(), "multiplier"] < 1.0
    # The reported gain is what the model predicts for the new allocation.
    np.testing.assert_allclose(plan.loc[fitted.channels_[0], "response"],
                               fitted.get_channel_effects().loc[fitted.channels_[0], "total"], rtol=1e-6)
    # Each row says whether the data observe that channel's curve from zero (get_identification).
    assert plan["level"].to_dict() == fitted.get_identification()["level"].to_dict()


def test_budget_warns_when_the_optimiser_does_not_converge(fitted, monkeypatch):
    """An optimiser stopped by its iteration limit says so: a warning, and attrs."""
    import scipy.optimize

    real = scipy.optimize.minimize

    def one_iteration(*args, **kwargs):
        kwargs["options"] = {**kwargs.get("options", {}), "maxiter": 1}
        return real(*args, **kwargs)

    monkeypatch.setattr(scipy.optimize, "minimize", one_iteration)
    with pytest.warns(UserWarning, match="SLSQP stopped without converging.*Iteration limit"):
        plan = fitted.optimize_budget(bounds=(0.5, 1.5))
    assert not plan.attrs["converged"] and "Iteration limit" in plan.attrs["message"]
    assert plan["optimal_spend"].sum() == pytest.approx(plan["spend"].sum(), rel=1e-6)


def test_bigger_budget_beats_scaling_everything(fitted):
    current = fitted.optimize_budget(bounds=(0.5, 1.5))["spend"].sum()
    plan = fitted.optimize_budget(budget=1.2 * current, bounds=(0.5, 1.5))
    assert plan["optimal_spend"].sum() == pytest.approx(1.2 * current, rel=1e-6)
    uniform = fitted.get_response_curves(multipliers=[1.2]).query("multiplier == 1.2")["response"].sum()
    observed = plan["response"].sum()
    # Gain of the plan is at least that of spending 20% more on every channel (no graph here).
    assert plan.attrs["kpi_gain"] >= uniform - observed - 1e-6 * observed


def test_budget_plan_robustness_under_bootstrap(fitted):
    current = fitted.optimize_budget(bounds=(0.5, 1.5))["spend"].sum()
    # Known answer: with no channel graph every response rises with spend, so a plan that
    # spends 30% more beats the observed allocation in every replicate refit.
    bigger = fitted.optimize_budget(budget=1.3 * current, bounds=(0.5, 1.5), n_boot=3, level=0.8)
    assert bigger.attrs["gain_share_positive"] == 1.0
    assert 0 < bigger.attrs["gain_lo"] <= bigger.attrs["gain_hi"]
    assert bigger.attrs["n_boot"] == 3 and bigger.attrs["level"] == 0.8
    # this fit's own gain on the replicates' scale (a fraction of the modelled KPI)
    kpi = fitted.get_channel_contributions()["prediction"].sum()
    assert bigger.attrs["kpi_gain_fraction"] == pytest.approx(bigger.attrs["kpi_gain"] / kpi, rel=1e-6)
    # the same cells given as rows: each replicate scores the rows of the regions it drew, which
    # are its own cells, so the figures are the same
    d = fitted.get_channel_contributions().reset_index()  # the fitted rows' regions and dates
    rows = fitted.panel_.media[fitted.panel_.row_index[:, 0], fitted.panel_.row_index[:, 1]]
    ctrl = fitted.panel_.control_values[fitted.panel_.row_index[:, 0], fitted.panel_.row_index[:, 1]]
    as_rows = fitted.optimize_budget(budget=1.3 * current, bounds=(0.5, 1.5), n_boot=3, level=0.8,
                                     X=pd.DataFrame(rows, columns=fitted.channels_), regions=d["region"],
                                     dates=d["date"], controls=pd.DataFrame(ctrl, columns=fitted.controls_))
    np.testing.assert_allclose(as_rows["multiplier"], bigger["multiplier"], rtol=1e-6, atol=1e-9)
    for key in ("gain_lo", "gain_hi", "gain_share_positive", "kpi_gain_fraction"):
        assert as_rows.attrs[key] == pytest.approx(bigger.attrs[key], rel=1e-6), key
    # without n_boot the plan is the same and carries no robustness figures
    plain = fitted.optimize_budget(budget=1.3 * current, bounds=(0.5, 1.5))
    np.testing.assert_allclose(plain["multiplier"], bigger["multiplier"])
    assert "gain_lo" not in plain.attrs


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_boot": 1}, r"`n_boot` must be 0 \(no intervals\) or a whole number of at least 2"),
        ({"n_boot": 2, "level": 1.5}, r"in \(0, 1\)"),
        ({"n_boot": 2, "regions": ["geo_000"]}, "cannot be combined with `regions`"),
        ({"budget": 1e12}, r"`budget` 1,000,000,000,000.00 cannot be met with multipliers.*raise the maximum multipliers in `bounds`"),
        ({"budget": 1.0}, r"`budget` 1.00 cannot be met with multipliers.*lower the minimum multipliers in `bounds`"),
        ({"bounds": (1.2, 0.8)}, "0 <= low <= high"),
        ({"bounds": (1.0, 1.0)}, "low < high for at least one channel"),
        ({"bounds": {"radio": (0.5, 2.0)}}, r"`bounds` names \['radio'\], which are not among the channels"),
        ({"bounds": {"channel_1": (2.0,)}}, r"`bounds\['channel_1'\]` must be \(low, high\)"),
        ({"bounds": {"channel_1": (1.0, 1.0), "channel_2": (1.0, 1.0)}, "channels": ["channel_1", "channel_2"]},
         "low < high for at least one channel"),
        ({"bounds": 1.5}, r"must be \(low, high\).*found 1.5; e.g. bounds=\(0.5, 1.5\)"),
        ({"bounds": ("half", 1.5)}, "`bounds` must be a number, found 'half'"),
        ({"budget": "lots"}, "`budget` must be a number, found 'lots'"),
        ({"budget": float("nan")}, r"`budget` must be a finite number .*found nan; e.g. budget="),
        ({"budget": float("inf"), "by_region": True}, r"`budget` must be a finite number .*found inf"),
        ({"channels": ["radio"]}, r"\['radio'\] are not fitted channels"),
        ({"by_region": "yes"}, "`by_region` must be True or False, found 'yes'"),
    ],
)
def test_budget_errors(fitted, kwargs, message):
    with pytest.raises(DataError, match=message):
        fitted.optimize_budget(**kwargs)


def test_optimize_cli_matches_the_api(fitted, small_sim, tmp_path, capsys):
    from deepcausalmmm.cli import main

    model_file = str(fitted.save(tmp_path / "m.safetensors"))
    out = tmp_path / "plan.csv"
    assert main(["optimize", model_file, "--bounds", "0.7:1.3", "--channel-bounds", "channel_1=1:1",
                 "--out", str(out)]) == 0
    plan = pd.read_csv(out, index_col="channel")
    api = fitted.optimize_budget(bounds={"channel_1": (1, 1), "channel_2": (0.7, 1.3), "channel_3": (0.7, 1.3)})
    np.testing.assert_allclose(plan["multiplier"], api["multiplier"], rtol=1e-6, atol=1e-9)
    assert plan.loc["channel_1", "multiplier"] == pytest.approx(1.0)
    assert plan["kpi_gain"].iloc[0] == pytest.approx(api.attrs["kpi_gain"], rel=1e-6)
    # a region and a period, as the API's
    region, dates = small_sim.regions[0], np.unique(small_sim.dates)
    start, end = (pd.Timestamp(d).strftime("%Y-%m-%d") for d in (dates[10], dates[40]))
    assert main(["optimize", model_file, "--regions", region, "--start", start, "--end", end,
                 "--out", str(out)]) == 0
    api = fitted.optimize_budget(regions=[region], period=(start, end))
    np.testing.assert_allclose(pd.read_csv(out, index_col="channel")["multiplier"], api["multiplier"], rtol=1e-6)
    # --kpi-value: the profit plan, its figures as columns
    assert main(["optimize", model_file, "--kpi-value", "3", "--out", str(out)]) == 0
    api = fitted.optimize_budget(kpi_value=3.0)
    profit = pd.read_csv(out, index_col="channel")
    np.testing.assert_allclose(profit["multiplier"], api["multiplier"], rtol=1e-6)
    assert profit["profit_gain"].iloc[0] == pytest.approx(api.attrs["profit_gain"], rel=1e-6)
    assert "profit" in capsys.readouterr().out
    assert main(["optimize", model_file, "--kpi-value", "3", "--budget", "1000", "--out", str(tmp_path / "x.csv")]) == 2
    assert "Give one of them" in capsys.readouterr().err
    # --by-region: one row per region and channel, as the API's
    assert main(["optimize", model_file, "--by-region", "--out", str(out)]) == 0
    regional = pd.read_csv(out, index_col=["region", "channel"])
    np.testing.assert_allclose(regional["multiplier"], fitted.optimize_budget(by_region=True)["multiplier"], rtol=1e-6)
    # --channels takes patterns of the model's channels
    assert main(["optimize", model_file, "--channels", "channel_[12]", "--out", str(out)]) == 0
    api = fitted.optimize_budget(channels=["channel_1", "channel_2"])
    np.testing.assert_allclose(pd.read_csv(out, index_col="channel")["multiplier"], api["multiplier"], rtol=1e-6)
    assert main(["optimize", model_file, "--channels", "tv*", "--out", str(tmp_path / "none.csv")]) == 2
    assert "--channels pattern 'tv*' matches none of the model's channels" in capsys.readouterr().err
    # --plan scores a plan of one's own instead of optimising
    assert main(["optimize", model_file, "--plan", "channel_1=0.8,channel_3=1.3", "--out", str(out)]) == 0
    scored = pd.read_csv(out, index_col="channel")
    api = fitted.evaluate_plan({"channel_1": 0.8, "channel_3": 1.3})
    np.testing.assert_allclose(scored["plan_response"], api["plan_response"], rtol=1e-9)
    assert scored["kpi_change"].iloc[0] == pytest.approx(api.attrs["kpi_change"], rel=1e-9)
    # with --n-boot the plan's change over bootstrap refits, printed and in the CSV
    capsys.readouterr()
    assert main(["optimize", model_file, "--plan", "channel_1=0.8,channel_3=1.3", "--n-boot", "2",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    scored = pd.read_csv(out, index_col="channel")
    api = fitted.evaluate_plan({"channel_1": 0.8, "channel_3": 1.3}, n_boot=2)
    assert scored["kpi_change_fraction_lo"].iloc[0] == pytest.approx(api.attrs["kpi_change_fraction_lo"], rel=1e-9)
    assert (f"90% interval {api.attrs['kpi_change_fraction_lo'] * 100:+.2f}% to "
            f"{api.attrs['kpi_change_fraction_hi'] * 100:+.2f}% over 2 bootstrap refits") in printed
    # bad ranges and unknown channels: status 2, a message, no file
    capsys.readouterr()
    for args, message in ((["--bounds", "1.5"], "--bounds takes LOW:HIGH"),
                          (["--channel-bounds", "radio=1:1"], "--bounds / --channel-bounds names ['radio']"),
                          (["--channel-bounds", "channel_1"], "--channel-bounds takes channel=LOW:HIGH"),
                          (["--plan", "channel_1:0.8"], "--plan takes channel=MULTIPLIER pairs"),
                          (["--plan", "channel_1=lots"], "--plan channel_1 must be a number, found 'lots'"),
                          (["--plan", "radio=0.8"], "--plan ['radio'] are not fitted channels"),
                          # the API's errors speak of the command's options, and their fixes can be typed
                          (["--plan", "channel_1=-1"], "--plan must be finite numbers >= 0, found {'channel_1': -1.0}; "
                                                       "e.g. tv=0.8 for 80%"),
                          (["--budget", "1"], "the budget must lie in"),
                          (["--budget", "1"], "or lower the minimum multipliers in --bounds / --channel-bounds"),
                          (["--budget", "nan"], "--budget must be a finite number"),
                          (["--budget", "nan"], "or no --budget for that"),
                          (["--regions", "nowhere"], "--regions ['nowhere'] were not in the fitted data"),
                          (["--regions", "nowhere"], "or no --regions for all"),
                          (["--start", "2099-01-01"], "contains no fitted dates"),
                          (["--start", "2099-01-01"], "e.g. --start 20"),
                          (["--plan", "channel_1=0.8", "--budget", "5"], "['--budget'] do not apply"),
                          (["--plan", "channel_1=0.8", "--bounds", "0.5:1.50"], "['--bounds'] do not apply"),
                          (["--n-boot", "2", "--prior-spread", "nan"], "--prior-spread must be a finite number")):
        bad = tmp_path / "bad.csv"
        assert main(["optimize", model_file, *args, "--out", str(bad)]) == 2
        assert message in capsys.readouterr().err and not bad.exists()


def test_optimize_cli_takes_ranges_and_plans_per_region_from_files(fitted, small_sim, tmp_path, capsys):
    """--region-bounds (with --by-region) as the API's (region, channel) bounds; --plan-file scores
    a plan read from a CSV: a --by-region plan's own output gains what the optimiser said, and
    rows without a region equal --plan."""
    from deepcausalmmm.cli import main

    model_file = str(fitted.save(tmp_path / "m.safetensors"))
    regions = sorted(set(small_sim.regions))
    ranges = tmp_path / "ranges.csv"
    pd.DataFrame({"region": [regions[0], regions[1]], "channel": ["channel_1", "channel_3"],
                  "low": [1.0, 1.0], "high": [1.0, 3.0]}).to_csv(ranges, index=False)
    out = tmp_path / "plan.csv"
    assert main(["optimize", model_file, "--by-region", "--bounds", "0.6:1.4", "--region-bounds", str(ranges),
                 "--out", str(out)]) == 0
    plan = pd.read_csv(out, index_col=["region", "channel"])
    api = fitted.optimize_budget(by_region=True, bounds={**{c: (0.6, 1.4) for c in fitted.channels_},
                                                         (regions[0], "channel_1"): (1.0, 1.0),
                                                         (regions[1], "channel_3"): (1.0, 3.0)})
    np.testing.assert_allclose(plan["multiplier"], api["multiplier"], rtol=1e-6)
    assert plan.loc[(regions[0], "channel_1"), "multiplier"] == pytest.approx(1.0)
    assert plan.loc[(regions[1], "channel_3"), "multiplier"] > 1.4  # its own range lets it past --bounds
    assert plan.drop(index=[(regions[1], "channel_3")])["multiplier"].max() <= 1.4 + 1e-9
    # the optimiser's own output, scored as a plan, gains what it said
    scored = tmp_path / "scored.csv"
    assert main(["optimize", model_file, "--plan-file", str(out), "--out", str(scored)]) == 0
    assert pd.read_csv(scored)["kpi_change"].iloc[0] == pytest.approx(api.attrs["kpi_gain"], rel=1e-6)
    # rows without a region set every region: the same as --plan
    per_channel = tmp_path / "per_channel.csv"
    pd.DataFrame({"channel": ["channel_1", "channel_3"], "multiplier": [0.8, 1.3]}).to_csv(per_channel, index=False)
    assert main(["optimize", model_file, "--plan-file", str(per_channel), "--out", str(scored)]) == 0
    assert pd.read_csv(scored)["kpi_change"].iloc[0] == pytest.approx(
        fitted.evaluate_plan({"channel_1": 0.8, "channel_3": 1.3}).attrs["kpi_change"], rel=1e-9)
    # errors: status 2, a message naming the option, no file
    capsys.readouterr()
    no_high = tmp_path / "no_high.csv"
    pd.DataFrame({"region": [regions[0]], "channel": ["channel_1"], "low": [1.0]}).to_csv(no_high, index=False)
    twice = tmp_path / "twice.csv"
    pd.DataFrame({"channel": ["channel_1", "channel_1"], "multiplier": [0.8, 0.9]}).to_csv(twice, index=False)
    words = tmp_path / "words.csv"
    pd.DataFrame({"channel": ["channel_1"], "multiplier": ["more"]}).to_csv(words, index=False)
    nowhere = tmp_path / "nowhere.csv"
    pd.DataFrame({"region": ["atlantis"], "channel": ["channel_1"], "low": [1.0], "high": [1.0]}).to_csv(
        nowhere, index=False)
    for args, message in ((["--region-bounds", str(ranges)], "only --by-region optimises"),
                          (["--by-region", "--region-bounds", str(no_high)], "lacks column(s) ['high']"),
                          (["--by-region", "--region-bounds", str(nowhere)], "names a region not among the plan's"),
                          (["--by-region", "--region-bounds", str(tmp_path / "missing.csv")], "does not exist"),
                          (["--plan-file", str(twice)], "--plan-file line 3 repeats 'channel_1'"),
                          (["--plan-file", str(words)], "--plan-file line 2 multiplier must be a number"),
                          (["--plan-file", str(per_channel), "--plan", "channel_1=0.8"], "give one of them"),
                          (["--plan-file", str(per_channel), "--budget", "5"], "['--budget'] do not apply")):
        bad = tmp_path / "bad.csv"
        assert main(["optimize", model_file, *args, "--out", str(bad)]) == 2
        assert message in capsys.readouterr().err and not bad.exists()


def test_evaluate_plan_known_answers(fitted, small_sim):
    # keeping every channel as observed changes nothing
    same = fitted.evaluate_plan({c: 1.0 for c in fitted.channels_})
    assert same.attrs["kpi_change"] == pytest.approx(0.0, abs=1e-6) and same.attrs["spend_change"] == 0.0
    np.testing.assert_allclose(same["plan_response"], same["response"])
    # one channel: the response curve at that multiplier, minus at 1
    curves = fitted.get_response_curves(["channel_2"], [0.6]).set_index("multiplier")
    one = fitted.evaluate_plan({"channel_2": 0.6})
    assert one.attrs["kpi_change"] == pytest.approx(curves.loc[0.6, "response"] - curves.loc[1.0, "response"],
                                                    rel=1e-6)
    assert one.loc["channel_2", "plan_spend"] == pytest.approx(0.6 * one.loc["channel_2", "spend"])
    # the optimiser's plan gains what the optimiser said, in the same cells
    region = small_sim.regions[0]
    best = fitted.optimize_budget(regions=[region])
    check = fitted.evaluate_plan(best["multiplier"].to_dict(), regions=region)
    assert check.attrs["kpi_change"] == pytest.approx(best.attrs["kpi_gain"], rel=1e-6, abs=1e-6)
    np.testing.assert_allclose(check["plan_response"], best["optimal_response"], rtol=1e-6)
    assert check.attrs["spend_change"] == pytest.approx(0.0, abs=1e-6 * best["spend"].sum())


@pytest.mark.parametrize("multipliers, message", [
    ({}, "must be a non-empty dict"),
    ([("channel_1", 2.0)], "must be a non-empty dict"),
    ({"radio": 1.2}, r"\['radio'\] are not fitted channels"),
    ({"channel_1": -0.5}, "must be finite numbers >= 0"),
    ({"channel_1": "more"}, r"`multipliers\['channel_1'\]` must be a number, found 'more'"),
])
def test_evaluate_plan_errors(fitted, multipliers, message):
    with pytest.raises(DataError, match=message):
        fitted.evaluate_plan(multipliers)


def _next_quarter(data: pd.DataFrame, weeks: int = 13) -> pd.DataFrame:
    """The last ``weeks`` of every region's rows again, dated right after them: a plan ahead."""
    dates = pd.to_datetime(data["date"])
    rows = data[dates > dates.max() - pd.Timedelta(weeks=weeks)].copy()
    rows["date"] = pd.to_datetime(rows["date"]) + pd.Timedelta(weeks=weeks)
    return rows


def test_plans_on_rows_of_ones_own(fitted, small_sim):
    d = small_sim.data
    ch, ct = fitted.channels_, fitted.controls_
    # the fitted rows themselves: the same answers as the fitted cells
    replay = {"X": d[ch], "regions": d["region"], "dates": d["date"], "controls": d[ct]}
    np.testing.assert_allclose(fitted.get_response_curves(**replay)["response"],
                               fitted.get_response_curves()["response"], rtol=1e-9, atol=1e-6)
    best, again = fitted.optimize_budget(), fitted.optimize_budget(**replay)
    np.testing.assert_allclose(again["multiplier"], best["multiplier"], rtol=1e-6, atol=1e-9)
    assert again.attrs["kpi_gain"] == pytest.approx(best.attrs["kpi_gain"], rel=1e-6)
    # next quarter (after the fit, carryover from it): each channel's response is what predict
    # says the plan loses without that channel (for channels driving no other channel)
    plan = _next_quarter(d)
    rows = {"X": plan.drop(columns="kpi"), "regions": "region", "dates": "date", "controls": ct}  # named columns
    parents = set(fitted.get_dag_edges()["parent"])
    full = fitted.predict(plan.drop(columns="kpi"), regions="region", dates="date", controls=ct).sum()
    for c in [c for c in ch if c not in parents]:
        off = fitted.predict(plan.drop(columns="kpi").assign(**{c: 0.0}), regions="region", dates="date",
                             controls=ct).sum()
        one = fitted.evaluate_plan({c: 0.0}, X=plan.drop(columns="kpi"), regions="region", dates="date",
                                   controls=ct)
        assert one.loc[c, "response"] == pytest.approx(full - off, rel=1e-6)
        assert -one.attrs["kpi_change"] == pytest.approx(full - off, rel=1e-6)
        assert one.loc[c, "spend"] == pytest.approx(plan[c].sum())  # these channels are spend
        assert one.attrs["kpi_change_fraction"] == pytest.approx(one.attrs["kpi_change"] / full, rel=1e-9)
    # the fitted control columns left in X without `controls`: taken as the controls
    found = fitted.evaluate_plan({c: 0.9 for c in ch}, **{**rows, "controls": None})
    given = fitted.evaluate_plan({c: 0.9 for c in ch}, **rows)
    assert found.attrs["kpi_change_fraction"] == pytest.approx(given.attrs["kpi_change_fraction"], rel=1e-12)
    np.testing.assert_allclose(found["plan_response"], given["plan_response"], rtol=1e-12)
    # controls left out: each region's last fitted values, which change no response
    held = fitted.evaluate_plan({c: 1.0 for c in ch}, **{**rows, "X": rows["X"].drop(columns=ct), "controls": None})
    np.testing.assert_allclose(held["response"], fitted.evaluate_plan({c: 1.0 for c in ch}, **rows)["response"],
                               rtol=1e-9)
    # the optimiser's plan for next quarter keeps its budget and gains what it says
    ahead = fitted.optimize_budget(**rows)
    assert ahead["optimal_spend"].sum() == pytest.approx(plan[ch].to_numpy().sum(), rel=1e-6)
    assert ahead.attrs["kpi_gain"] >= 0
    check = fitted.evaluate_plan(ahead["multiplier"].to_dict(), X=plan[ch], regions=plan["region"],
                                 dates=plan["date"], controls=plan[ct])
    assert check.attrs["kpi_change"] == pytest.approx(ahead.attrs["kpi_gain"], rel=1e-6, abs=1e-6)
    # the response curves of the plan: at 1, each channel's response in it
    curves = fitted.get_response_curves(**rows).set_index(["channel", "multiplier"])
    whole = fitted.evaluate_plan({c: 1.0 for c in ch}, **rows)
    for c in ch:
        assert curves.loc[(c, 1.0), "response"] == pytest.approx(whole.loc[c, "response"], rel=1e-9)
    # weeks after the plan with no activity: nothing to scale or pay there, but the carryover of
    # the plan's spend into them now counts
    after = plan.drop(columns="kpi").assign(date=lambda f: pd.to_datetime(f["date"]) + pd.Timedelta(weeks=13),
                                            **{c: 0.0 for c in ch})
    longer = fitted.evaluate_plan({c: 1.0 for c in ch}, **{**rows, "X": pd.concat([rows["X"], after])})
    np.testing.assert_allclose(longer["spend"], whole["spend"])
    assert (longer["response"] > whole["response"]).all()
    # money per row for a channel whose values are not money
    paid = fitted.evaluate_plan({"channel_1": 1.2}, **rows, spend=pd.DataFrame({"channel_1": 2.0 * plan["channel_1"]}))
    assert paid.loc["channel_1", "spend"] == pytest.approx(2.0 * plan["channel_1"].sum())
    assert paid.loc["channel_1", "plan_spend"] == pytest.approx(2.4 * plan["channel_1"].sum())


@pytest.mark.parametrize("call, message", [
    (lambda m, p: m.optimize_budget(X=p, regions="region", dates="date", controls=["price", "promo"],
                                    period=("2023-01-02", "2023-06-01")), "`period` .* cannot be combined with `X`"),
    (lambda m, p: m.optimize_budget(X=p, regions="region", controls=["price", "promo"]), "`dates` are needed with `X`"),
    (lambda m, p: m.evaluate_plan({"channel_1": 1.1}, dates=p["date"]), "`dates` describe plan rows and need `X`"),
    (lambda m, p: m.get_response_curves(X=p.assign(region="geo_999").iloc[:13], regions="region", dates="date",
                                        controls=["price", "promo"]), r"\['geo_999'\] were not in the fitted data"),
    (lambda m, p: m.evaluate_plan({"channel_1": 1.1}, X=p, regions="region", dates="date",
                                  controls=["price", "promo"], spend=pd.DataFrame({"channel_1": [1.0]})),
     "`spend` has 1 rows but `X` has"),
])
def test_plan_rows_errors(fitted, small_sim, call, message):
    plan = _next_quarter(small_sim.data).drop(columns="kpi")
    with pytest.raises(DataError, match=message):
        call(fitted, plan)


def test_report_cli_writes_what_fit_writes_from_a_saved_model(fitted, tmp_path, capsys):
    from deepcausalmmm.cli import main

    model_file = str(fitted.save(tmp_path / "m.safetensors"))
    out = tmp_path / "rep"
    assert main(["report", model_file, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "wrote 15 files" in printed
    # the report's key findings, printed a line each
    share = fitted.contribution_summary()["share_of_kpi"].sum()
    assert "key findings (the report's first section" in printed
    assert f"- Media drove {share:.1%} of the KPI" in printed
    change = pd.read_csv(out / "kpi_change.csv", index_col="part")  # 60 weeks: the quarter before
    d = fitted.panel_.dates
    np.testing.assert_allclose(change["change"], fitted.get_kpi_change((d[34], d[46]), (d[47], d[59]))["change"],
                               rtol=1e-9)
    effects = pd.read_csv(out / "effects.csv", index_col="channel")
    np.testing.assert_allclose(effects["total"], fitted.get_channel_effects()["total"], rtol=1e-6)
    over = pd.read_csv(out / "effects_over_time.csv", index_col=["period", "channel"])
    expected = fitted.get_effects_over_time("Q")
    assert list(over.index) == list(expected.index) and list(over.columns) == list(expected.columns)
    np.testing.assert_allclose(over["marginal_roi"], expected["marginal_roi"], rtol=1e-6)
    contributions = pd.read_csv(out / "contributions.csv")
    assert len(contributions) == len(fitted.get_channel_contributions())
    assert '<h2 id="channel-graph">Channel graph</h2>' in (out / "report.html").read_text(encoding="utf-8")
    # the model file it writes is the same model
    again = DeepCausalMMM.load(out / "model.safetensors")
    pd.testing.assert_frame_equal(again.get_channel_contributions(), fitted.get_channel_contributions())
    for args, message in ((["--n-boot", "1"], "--n-boot must be 0"),
                          (["--n-boot", "2", "--prior-spread", "-1"], "--prior-spread must be"),):
        assert main(["report", model_file, *args, "--out", str(tmp_path / "bad")]) == 2
        assert message in capsys.readouterr().err
    assert main(["report", str(tmp_path / "none.safetensors"), "--out", str(tmp_path / "bad")]) == 2
    assert "none.safetensors" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_report_and_optimize_cli_give_jobs_to_the_refits(fitted, tmp_path, monkeypatch):
    """--jobs N reaches the refits' n_jobs (stopped where the workers would be chosen)."""
    from deepcausalmmm.cli import main

    class Reached(Exception):
        pass

    def record(self, n_tasks):
        raise Reached(self.n_jobs, n_tasks)

    model_file = str(fitted.save(tmp_path / "m.safetensors"))
    monkeypatch.setattr(DeepCausalMMM, "_refit_workers", record)
    for command in (["report", model_file, "--out", str(tmp_path / "rep")],
                    ["optimize", model_file, "--out", str(tmp_path / "plan.csv")]):
        with pytest.raises(Reached) as reached:
            main([*command, "--n-boot", "4", "-j", "3"])
        assert reached.value.args == (3, 4), command


def test_budget_for_profit_stops_where_spend_returns_its_cost(fitted):
    """With ``kpi_value`` the total is free: at the optimum each channel's last unit of spend
    returns its cost (marginal ROI x kpi_value = 1) unless a bound stops it first."""
    curves = fitted.get_response_curves(multipliers=[0.99, 1.01]).set_index(["channel", "multiplier"])
    mroi = [(curves.loc[(c, 1.01), "response"] - curves.loc[(c, 0.99), "response"])
            / (curves.loc[(c, 1.01), "spend"] - curves.loc[(c, 0.99), "spend"]) for c in fitted.channels_]
    value = 1.0 / float(np.median(mroi))  # some channels earn their cost at observed spend, some not
    plan = fitted.optimize_budget(kpi_value=value, bounds=(0.1, 5.0))
    assert plan.attrs["converged"] and plan.attrs["kpi_value"] == value
    assert plan.attrs["spend_change"] == pytest.approx((plan["optimal_spend"] - plan["spend"]).sum(), rel=1e-9)
    assert plan.attrs["profit_gain"] == pytest.approx(value * plan.attrs["kpi_gain"] - plan.attrs["spend_change"])
    assert plan.attrs["profit_gain"] > 0
    best = plan["multiplier"].to_dict()
    for c in fitted.channels_:
        m = best[c]
        up, down = (fitted.evaluate_plan({**best, c: m * f}) for f in (1.01, 0.99))
        marginal = value * (up.attrs["kpi_change"] - down.attrs["kpi_change"]) / (
            up.attrs["spend_change"] - down.attrs["spend_change"])
        if 0.1 + 1e-3 < m < 5.0 - 1e-3:
            assert marginal == pytest.approx(1.0, abs=0.02), c
        elif m >= 5.0 - 1e-3:
            assert marginal >= 0.98, c
        else:
            assert marginal <= 1.02, c
    # a KPI worth next to nothing: every channel at its lowest; worth a fortune: at its highest
    assert np.allclose(fitted.optimize_budget(kpi_value=1e-9 * value)["multiplier"], 0.5)
    assert np.allclose(fitted.optimize_budget(kpi_value=1e6 * value)["multiplier"], 1.5)
    # under bootstrap refits, cutting spend a nearly worthless KPI needs pays in every replicate
    cut = fitted.optimize_budget(kpi_value=1e-6 * value, n_boot=2)
    assert cut.attrs["gain_share_positive"] == 1.0 and cut.attrs["gain_lo"] > 0
    kpi = fitted.get_channel_contributions()["prediction"].sum()
    assert cut.attrs["profit_gain_fraction"] == pytest.approx(cut.attrs["profit_gain"] / (1e-6 * value * kpi), rel=1e-6)


@pytest.mark.parametrize("kwargs, message", [
    ({"kpi_value": 0}, "`kpi_value` must be a positive number"),
    ({"kpi_value": -2.0}, "`kpi_value` must be a positive number"),
    ({"kpi_value": "a lot"}, "`kpi_value` must be a number, found 'a lot'"),
    ({"kpi_value": 2.0, "budget": 1e5}, "were both given.*Give one of them"),
])
def test_kpi_value_errors(fitted, kwargs, message):
    with pytest.raises(DataError, match=message):
        fitted.optimize_budget(**kwargs)


def test_budget_by_region_moves_spend_between_regions_too(fitted, small_sim):
    per_channel = fitted.optimize_budget()
    plan = fitted.optimize_budget(by_region=True)
    assert plan.attrs["converged"]
    assert plan.index.names == ["region", "channel"] and len(plan) == len(fitted.regions_) * len(fitted.channels_)
    assert plan["optimal_spend"].sum() == pytest.approx(plan["spend"].sum(), rel=1e-9)  # the same budget
    assert plan["multiplier"].between(0.5 - 1e-9, 1.5 + 1e-9).all()
    # the per-channel plan is one of the plans it could choose, so it gains at least as much
    assert plan.attrs["kpi_gain"] >= per_channel.attrs["kpi_gain"] * (1 - 1e-4)
    # regions do not interact: each region's observed response sums to the channel's
    np.testing.assert_allclose(plan.groupby("channel")["response"].sum()[per_channel.index], per_channel["response"],
                               rtol=1e-6)
    # optimality: every (region, channel) inside its bounds earns the same at the margin, at least
    # as much where the upper bound stops it, at most as much where the lower one does. Checked on
    # the fitted rows with the plan applied, one region at a time (regions do not interact).
    d = small_sim.data
    planned = d.copy()
    for (region, channel), m in plan["multiplier"].items():
        planned.loc[planned["region"] == region, channel] *= m
    marginal = {}
    for region, channel in plan.index:
        rows = planned[planned["region"] == region].drop(columns="kpi")
        kw = {"X": rows, "regions": "region", "dates": "date", "controls": fitted.controls_}
        up, down = (fitted.evaluate_plan({channel: f}, **kw) for f in (1.01, 0.99))
        marginal[(region, channel)] = (up.attrs["kpi_change"] - down.attrs["kpi_change"]) / (
            up.attrs["spend_change"] - down.attrs["spend_change"])
    marginal = pd.Series(marginal)
    inside = plan["multiplier"].between(0.5 + 1e-3, 1.5 - 1e-3)
    assert inside.sum() >= 2
    price = marginal[inside].median()
    np.testing.assert_allclose(marginal[inside], price, rtol=0.01)  # measured: equal to 4 decimals
    assert (marginal[plan["multiplier"] >= 1.5 - 1e-3] >= 0.99 * price).all()
    assert (marginal[plan["multiplier"] <= 0.5 + 1e-3] <= 1.01 * price).all()
    # with kpi_value the price is 1 / kpi_value, and the plan beats the per-channel one on profit
    profit = fitted.optimize_budget(by_region=True, kpi_value=4.0)
    assert profit.attrs["profit_gain"] >= fitted.optimize_budget(kpi_value=4.0).attrs["profit_gain"] * (1 - 1e-4)
    # evaluate_plan keyed by (region, channel) scores the plan as the optimiser did
    scored = fitted.evaluate_plan(plan["multiplier"].to_dict())
    assert scored.attrs["kpi_change"] == pytest.approx(plan.attrs["kpi_gain"], rel=1e-6)
    np.testing.assert_allclose(scored["plan_response"], plan["optimal_response"], rtol=1e-9)
    assert scored.attrs["spend_change"] == pytest.approx(0.0, abs=1e-6 * plan["spend"].sum())
    # a channel key sets every region, a (region, channel) key overrides it: the same as a
    # per-channel plan where the override is 1 and the region's own cells are left out
    region = fitted.regions_[0]
    mixed = fitted.evaluate_plan({"channel_1": 0.8, (region, "channel_1"): 1.0})
    assert mixed.loc[(region, "channel_1"), "multiplier"] == 1.0
    others = fitted.evaluate_plan({"channel_1": 0.8}, regions=fitted.regions_[1:])
    assert mixed.attrs["kpi_change"] == pytest.approx(others.attrs["kpi_change"], rel=1e-9)
    for bad, message in (({("geo_999", "channel_1"): 1.0}, "a region not among the plan's"),
                         ({(region, "radio"): 1.0}, r"channels \['radio'\] that are not fitted"),
                         ({(region, "channel_1"): -1.0}, "must be a finite number >= 0")):
        with pytest.raises(DataError, match=message):
            fitted.evaluate_plan(bad)
    # bounds per (region, channel): one held as observed, one allowed up to 3 times its spend
    first, second = fitted.regions_[0], fitted.regions_[1]
    held = fitted.optimize_budget(by_region=True, bounds={(first, "channel_2"): (1, 1), (second, "channel_3"): (0.5, 3.0)})
    assert held.loc[(first, "channel_2"), "multiplier"] == 1.0
    assert held.loc[(second, "channel_3"), "multiplier"] > 1.5  # its best use: past the default bound
    assert held["optimal_spend"].sum() == pytest.approx(held["spend"].sum(), rel=1e-9)
    for bad, message in (({(first, "radio"): (1, 1)}, "a channel not among those reallocated"),
                         ({("geo_999", "channel_1"): (1, 1)}, "a region not among the plan's"),
                         ({(first, "channel_1"): (2, 1)}, r"must be \(low, high\) with 0 <= low <= high")):
        with pytest.raises(DataError, match=message):
            fitted.optimize_budget(by_region=True, bounds=bad)
    with pytest.raises(DataError, match=r"\(region, channel\) keys .* need by_region=True"):
        fitted.optimize_budget(bounds={(first, "channel_1"): (1, 1)})
    # the regions' own response curves: they sum to the pooled curve, and at 1 they are the
    # regional plan's observed responses
    curves = fitted.get_response_curves(multipliers=[0.5, 1.5], by_region=True)
    pooled = fitted.get_response_curves(multipliers=[0.5, 1.5]).set_index(["channel", "multiplier"])
    summed = curves.groupby(["channel", "multiplier"])[["spend", "response"]].sum()
    np.testing.assert_allclose(summed["response"], pooled.loc[summed.index, "response"], rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(summed["spend"], pooled.loc[summed.index, "spend"], rtol=1e-12)
    at_one = curves[curves["multiplier"] == 1.0].set_index(["region", "channel"])["response"]
    np.testing.assert_allclose(at_one[plan.index], plan["response"], rtol=1e-6)
    assert list(curves.columns[:2]) == ["region", "channel"] and curves["region"].nunique() == len(fitted.regions_)
    # under bootstrap refits (each drawn region keeps its own multipliers), a plan spending 30%
    # more beats the observed allocation in every replicate (no graph: responses rise with spend)
    more = fitted.optimize_budget(by_region=True, budget=1.3 * plan["spend"].sum(), n_boot=2)
    assert more.attrs["gain_share_positive"] == 1.0 and more.attrs["gain_lo"] > 0
    assert more.attrs["kpi_gain_fraction"] == pytest.approx(
        more.attrs["kpi_gain"] / fitted.get_channel_contributions()["prediction"].sum(), rel=1e-6)


def test_budget_frontier_known_answers(fitted):
    """Each level's plan spends its budget and beats today's mix; at today's budget the
    frontier's slope is the marginal return every channel inside its bounds earns at the
    optimum (the budget constraint's shadow price)."""
    frontier = fitted.get_budget_frontier([1.2, 0.8, 0.99, 1.01])
    assert list(frontier.index) == [0.8, 0.99, 1.0, 1.01, 1.2]  # sorted, 1.0 added
    now = fitted.optimize_budget()
    current = now["spend"].sum()
    np.testing.assert_allclose(frontier["budget"], frontier.index.to_numpy() * current, rtol=1e-12)
    np.testing.assert_allclose(frontier["spend_change"], (frontier.index.to_numpy() - 1) * current, atol=1e-6)
    assert frontier.loc[1.0, "kpi_change"] == pytest.approx(now.attrs["kpi_gain"], rel=1e-9)
    pd.testing.assert_frame_equal(frontier.attrs["plan"], now)  # the plan at today's budget, as optimize_budget
    assert frontier.loc[1.0, "mix_kpi_change"] == 0.0 and np.isnan(frontier.loc[1.0, "incremental_roi"])
    spends = frontier[[f"{c} spend" for c in now.index]]
    np.testing.assert_allclose(spends.sum(axis=1), frontier["budget"], rtol=1e-6)
    media = now["response"].sum()
    assert (frontier["kpi_change"] >= frontier["mix_kpi_change"] - 1e-6 * media).all()
    assert frontier["converged"].all()
    # started from today's best plan scaled, each level ends where optimize_budget's own start leads
    for level in (0.8, 1.2):
        cold = fitted.optimize_budget(budget=level * current)
        assert frontier.loc[level, "kpi_change"] == pytest.approx(cold.attrs["kpi_gain"], abs=1e-5 * media)
    # today's mix scaled by a level is evaluate_plan's
    mix = fitted.evaluate_plan({c: 1.2 for c in now.index}).attrs["kpi_change"]
    assert frontier.loc[1.2, "mix_kpi_change"] == pytest.approx(mix, rel=1e-12)
    increment = (frontier.loc[1.2, "kpi_change"] - frontier.loc[1.0, "kpi_change"]) / (0.2 * current)
    assert frontier.loc[1.2, "incremental_roi"] == pytest.approx(increment, rel=1e-12)
    # the shadow price: each channel inside its bounds, moved a little from the optimum
    slope = frontier.loc[1.0, "marginal_roi"]
    assert slope == pytest.approx((frontier.loc[1.01, "kpi_change"] - frontier.loc[0.99, "kpi_change"])
                                  / (0.02 * current), rel=1e-9)
    m = now["multiplier"].to_dict()
    inside = [c for c, v in m.items() if 0.5 + 1e-3 < v < 1.5 - 1e-3]
    assert inside  # measured: every channel of this fit
    for c in inside:
        up, down = (fitted.evaluate_plan({**m, c: m[c] + d}).attrs["kpi_change"] for d in (0.01, -0.01))
        assert (up - down) / (0.02 * now.loc[c, "spend"]) == pytest.approx(slope, rel=0.01)  # measured 1e-4
    # a larger budget best spent buys less per unit: the slope falls along the frontier
    assert frontier["marginal_roi"].is_monotonic_decreasing


@pytest.mark.parametrize("levels, message", [
    ([], r"`levels` must be positive numbers .* found \[\]"),
    ([0.9, -1.0], r"`levels` must be positive numbers .* found \[-1\.0\]"),
    (["a"], r"`levels` must be positive numbers .* found \['a'\]"),
    ([1.8], r"`levels` 1\.8: `budget` .* cannot be met with multipliers in \(0\.5, 1\.5\)"),
])
def test_budget_frontier_errors(fitted, levels, message):
    with pytest.raises(DataError, match=message):
        fitted.get_budget_frontier(levels)


def test_budget_frontier_by_region_and_figure(fitted):
    channel = fitted.get_budget_frontier([0.9, 1.1])
    regional = fitted.get_budget_frontier([0.9, 1.1], by_region=True)
    # multipliers per region can do what one per channel does, so they gain at least as much
    assert (regional["kpi_change"] >= channel["kpi_change"] - 1e-6 * abs(channel["kpi_change"]).max()).all()
    np.testing.assert_allclose(regional["mix_kpi_change"], channel["mix_kpi_change"], rtol=1e-12)
    fig = fitted.plot_budget_frontier([0.9, 1.1])
    best, mix, observed = fig.data
    np.testing.assert_allclose(best.y, channel["kpi_change"], rtol=1e-9)
    np.testing.assert_allclose(mix.y, channel["mix_kpi_change"], rtol=1e-9)
    assert observed.x[0] == pytest.approx(channel.loc[1.0, "budget"]) and observed.y[0] == 0.0


def test_optimize_cli_frontier(fitted, tmp_path, capsys):
    from deepcausalmmm.cli import main

    model_file = str(fitted.save(tmp_path / "m.safetensors"))
    out = tmp_path / "frontier.csv"
    assert main(["optimize", model_file, "--frontier", "0.9,1.1", "--bounds", "0.6:1.4", "--out", str(out)]) == 0
    written = pd.read_csv(out, index_col="level")
    api = fitted.get_budget_frontier([0.9, 1.1], bounds=(0.6, 1.4))
    assert list(written.index) == [0.9, 1.0, 1.1]
    np.testing.assert_allclose(written["kpi_change"], api["kpi_change"], rtol=1e-9)
    np.testing.assert_allclose(written["channel_1 spend"], api["channel_1 spend"], rtol=1e-9)
    assert f"returns {api.loc[1.0, 'marginal_roi']:.4g} of KPI" in capsys.readouterr().out
    assert main(["optimize", model_file, "--frontier", "--out", str(out)]) == 0  # the default levels
    assert list(pd.read_csv(out, index_col="level").index) == [0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4]
    capsys.readouterr()
    for args, message in ((["--frontier", "0.9,x"], "--frontier must be comma-separated budget levels"),
                          (["--frontier", "2"], "--frontier 2: the budget"),
                          (["--frontier", "0.9,-1"], "e.g. --frontier 0.6,0.7,0.8,0.9,1,1.1,1.2,1.3,1.4"),
                          (["--frontier", "--kpi-value", "3"], "['--kpi-value'] do not apply"),
                          (["--frontier", "--plan", "channel_1=0.8"], "['--frontier'] do not apply")):
        bad = tmp_path / "bad.csv"
        assert main(["optimize", model_file, *args, "--out", str(bad)]) == 2
        assert message in capsys.readouterr().err and not bad.exists()


def test_budget_frontier_on_plan_rows(fitted, small_sim):
    """Next quarter's flighting as rows: each level's plan is optimize_budget's on those rows,
    and today's mix is evaluate_plan's there."""
    plan = _next_quarter(small_sim.data).drop(columns="kpi")
    rows = dict(X=plan, regions="region", dates="date", controls=["price", "promo"])
    frontier = fitted.get_budget_frontier([0.9, 1.1], **rows)
    current = fitted.optimize_budget(**rows)["spend"].sum()
    assert frontier.loc[1.0, "budget"] == pytest.approx(current, rel=1e-12)
    assert frontier.loc[1.1, "budget"] == pytest.approx(plan[fitted.channels_].to_numpy().sum() * 1.1, rel=1e-9)
    cold = fitted.optimize_budget(budget=1.1 * current, **rows)
    assert frontier.loc[1.1, "kpi_change"] == pytest.approx(cold.attrs["kpi_gain"], abs=1e-5 * abs(cold["response"].sum()))
    mix = fitted.evaluate_plan({c: 0.9 for c in fitted.channels_}, **rows).attrs["kpi_change"]
    assert frontier.loc[0.9, "mix_kpi_change"] == pytest.approx(mix, rel=1e-12)


def test_what_if_intervals_from_bootstrap_refits(fitted, small_sim):
    """evaluate_plan(n_boot=...) scores the plan on the refits: the optimiser's plan scored so
    gives optimize_budget's robustness figures (the same refits and scoring); a plan that
    changes nothing changes nothing in any refit; a regional plan that sets every region alike
    is the channel plan; and on next quarter's rows too."""
    with fitted.shared_refits():
        best = fitted.optimize_budget(n_boot=2)
        scored = fitted.evaluate_plan(best["multiplier"].to_dict(), n_boot=2)
        same = fitted.evaluate_plan({c: 1.0 for c in fitted.channels_}, n_boot=2)
        regional = fitted.evaluate_plan({(r, c): m for r in fitted.regions_ for c, m in best["multiplier"].items()},
                                        n_boot=2)
        plan = _next_quarter(small_sim.data).drop(columns="kpi")
        ahead = fitted.evaluate_plan({"channel_1": 0.0}, X=plan, regions="region", dates="date",
                                     controls=fitted.controls_, n_boot=2)
    a = scored.attrs
    assert a["kpi_change_fraction_lo"] == pytest.approx(best.attrs["gain_lo"], rel=1e-9)
    assert a["kpi_change_fraction_hi"] == pytest.approx(best.attrs["gain_hi"], rel=1e-9)
    assert a["share_positive"] == best.attrs["gain_share_positive"]
    assert (a["n_boot"], a["level"], a["prior_spread"]) == (2, 0.9, 1.4)
    assert abs(same.attrs["kpi_change_fraction"]) < 1e-12  # float summation only
    assert abs(same.attrs["kpi_change_fraction_lo"]) < 1e-9 and abs(same.attrs["kpi_change_fraction_hi"]) < 1e-9
    for key in ("kpi_change_fraction_lo", "kpi_change_fraction_hi", "share_positive"):
        assert regional.attrs[key] == pytest.approx(a[key], rel=1e-9), key
    # switching a channel off next quarter loses KPI in every refit
    assert ahead.attrs["kpi_change_fraction_hi"] < 0 and ahead.attrs["share_positive"] == 0.0
    for kwargs, message in (({"n_boot": 1}, r"`n_boot` must be 0 \(no intervals\) or a whole number"),
                            ({"n_boot": 2, "regions": fitted.regions_[:2]}, r"`n_boot` cannot be combined with `regions`"),
                            ({"n_boot": 2, "prior_spread": -1.0}, r"`prior_spread`")):
        with pytest.raises(DataError, match=message):
            fitted.evaluate_plan({"channel_1": 0.8}, **kwargs)


def test_response_curve_bands_from_bootstrap_refits(mediated, refit_count):
    """At today's spend the curve's bootstrap bounds on ROI and marginal ROI are
    get_effect_intervals' (the same refits, the same slope between x0.9 and x1.1); the response
    bounds are the ROI bounds times this curve's spend."""
    with mediated.shared_refits():
        intervals = mediated.get_effect_intervals(n_boot=2)
        curves = mediated.get_response_curves(multipliers=[0.5, 0.9, 1.1, 1.5], n_boot=2)
    assert len(refit_count) == 2
    at_one = curves[curves["multiplier"] == 1.0].set_index("channel")
    for column in ("roi_lo", "roi_hi", "marginal_roi_lo", "marginal_roi_hi"):
        np.testing.assert_allclose(at_one[column], intervals.loc[at_one.index, column], rtol=1e-9)
    np.testing.assert_allclose(at_one["response_lo"], at_one["roi_lo"] * at_one["spend"], rtol=1e-9)
    assert curves.loc[curves["multiplier"] == 0.0, ["response_lo", "response_hi"]].abs().max().max() < 1e-6
    assert (curves["response_lo"] <= curves["response_hi"] + 1e-9).all()
    assert curves.attrs["n_boot"] == 2
    # drawn as a shaded band under each curve: its upper bound, then its lower bound filled up to it
    from deepcausalmmm.plotting.figures import response_figure

    traces = response_figure(curves).data
    band = [t for t in traces if t.fill == "tonexty"]
    assert len(band) == len(mediated.channels_)
    one = curves[curves["channel"] == "channel_1"]
    np.testing.assert_allclose(band[0].y, one["response_lo"])
    np.testing.assert_allclose(traces[0].y, one["response_hi"])
    for kwargs, message in (({"regions": mediated.regions_[:2]}, r"`n_boot` cannot be combined with `regions`"),
                            ({"by_region": True}, r"`n_boot` cannot be combined with `by_region`"),
                            ({"n_boot": 1}, r"`n_boot` must be 0")):
        with pytest.raises(DataError, match=message):
            mediated.get_response_curves(**{"n_boot": 2, **kwargs})
