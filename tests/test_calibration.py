"""Lift tests: the simulator's true lift, the model's lift, calibration and errors."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from deepcausalmmm import DeepCausalMMM
from deepcausalmmm.datasets import simulate_panel
from deepcausalmmm.exceptions import ConfigError, DataError

from .conftest import FAST

GRAPH = [("channel_1", "channel_2", 0.5)]


@pytest.fixture(scope="module")
def sim():
    return simulate_panel(6, 60, 3, seed=11, graph=GRAPH)


def _kw(sim):
    return dict(regions=sim.regions, dates=sim.dates, controls=sim.control_frame)


def _geo_test(sim, channel="channel_1", lift=None, se=None):
    dates = np.unique(sim.dates)
    regions = list(dict.fromkeys(sim.regions))[:3]
    truth = sim.true_lift(channel, regions, dates[20], dates[31])
    return pd.DataFrame([{
        "channel": channel, "start": dates[20], "end": dates[31], "regions": regions,
        "lift": truth if lift is None else lift, "lift_se": 0.05 * truth if se is None else se,
    }])


def test_true_lift_is_the_simulated_intervention(sim):
    t = sim.truth_effects
    for c in sim.channels:  # the whole panel: exactly the total effect
        assert sim.true_lift(c) == pytest.approx(t.loc[c, "total"], rel=1e-12)
    dates = np.unique(sim.dates)
    regions = list(dict.fromkeys(sim.regions))
    part = [sim.true_lift("channel_1", regions[:3], dates[20], dates[31]),
            sim.true_lift("channel_1", regions[3:], dates[20], dates[31])]
    # Regions are independent, so two disjoint geo tests add up to the test on all regions.
    assert sum(part) == pytest.approx(sim.true_lift("channel_1", None, dates[20], dates[31]), rel=1e-12)
    assert 0 < part[0] < t.loc["channel_1", "total"]


def test_model_lift_of_a_national_test_is_the_total_effect(fitted, small_sim):
    dates = np.unique(small_sim.dates)
    tests = pd.DataFrame({
        "channel": fitted.channels_, "start": dates[0], "end": dates[-1], "lift": 1.0, "lift_se": 1.0,
    })
    report = fitted.lift_test_report(tests)
    effects = fitted.get_channel_effects()
    np.testing.assert_allclose(report["model_lift"], effects["total"].to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(report["z"], report["model_lift"] - 1.0)


def test_calibration_pulls_the_model_to_the_experiment(sim):
    kw = _kw(sim)
    measured = 1.6 * sim.true_lift("channel_1")  # an experiment far from what the data say
    tests = pd.DataFrame([{"channel": "channel_1", "start": np.min(sim.dates), "end": np.max(sim.dates),
                           "lift": measured, "lift_se": 0.01 * measured}])
    plain = DeepCausalMMM(config=FAST).fit(sim.X, sim.y, **kw)
    calibrated = DeepCausalMMM(config=FAST).fit(sim.X, sim.y, lift_tests=tests, **kw)
    before = plain.lift_test_report(tests)["model_lift"].iloc[0]
    after = calibrated.lift_tests_["model_lift"].iloc[0]
    assert abs(after - measured) < 0.5 * abs(before - measured)
    # The fit to the KPI barely moves: the level the test sets is one the data hardly pin.
    y = np.asarray(sim.y, dtype=float)
    err = [np.abs(m.predict(sim.X, **kw) - y).sum() / np.abs(y).sum() for m in (plain, calibrated)]
    assert err[1] < err[0] + 0.02


def test_true_geo_test_improves_that_channel(sim):
    kw = _kw(sim)
    tests = _geo_test(sim, "channel_1")
    plain = DeepCausalMMM(config=FAST).fit(sim.X, sim.y, **kw)
    calibrated = DeepCausalMMM(config=FAST).fit(sim.X, sim.y, lift_tests=tests, **kw)
    z_plain = abs(plain.lift_test_report(tests)["z"].iloc[0])
    z_cal = abs(calibrated.lift_test_report()["z"].iloc[0])
    assert z_cal < max(z_plain, 1.0)
    assert z_cal < 3.0


def test_tested_channels_drop_the_coefficient_prior(sim, fitted):
    # Known answer: the penalty without channel c's prior is the full one minus l2 * beta_c^2.
    net, cfg = fitted.net_, fitted.config_
    assert cfg.regularization.l1 == 0 and cfg.calibration.tested_prior == 0
    assert net.prior_weight.tolist() == [1.0, 1.0, 1.0]  # fitted without tests
    with torch.no_grad():
        dec = net(fitted._batch(cfg, fitted.panel_, fitted.scaler_, fitted.knots_,
                                np.arange(len(fitted.regions_)), fitted.panel_.media,
                                fitted.panel_.control_values, np.arange(len(fitted.panel_.dates), dtype=float)))
        full = float(net.penalty(cfg, dec))
        beta0 = float(net.beta()[0])
        net.prior_weight[0] = 0.0
        try:
            dropped = float(net.penalty(cfg, dec))
        finally:
            net.prior_weight[0] = 1.0
    assert full - dropped == pytest.approx(cfg.regularization.l2 * beta0**2, rel=1e-4)
    # Through fit: a tested channel's prior goes (0 by default), the others keep theirs, and the
    # model ends closer to an experiment the data alone would not reach.
    kw = _kw(sim)
    measured = 1.6 * sim.true_lift("channel_1")
    tests = pd.DataFrame([{"channel": "channel_1", "start": np.min(sim.dates), "end": np.max(sim.dates),
                           "lift": measured, "lift_se": 0.05 * measured}])
    z = {}
    for prior in (0.0, 1.0):
        model = DeepCausalMMM(config={**FAST, "calibration": {"tested_prior": prior}}).fit(
            sim.X, sim.y, lift_tests=tests, **kw)
        assert model.net_.prior_weight.tolist() == [prior, 1.0, 1.0]
        z[prior] = abs(model.lift_tests_["z"].iloc[0])
    assert z[0.0] < z[1.0]


def test_an_imprecise_test_that_drops_the_prior_warns(sim):
    kw = _kw(sim)
    weak = _geo_test(sim, "channel_1", se=0.5 * _geo_test(sim)["lift"].iloc[0])  # se 50% of the lift
    with pytest.warns(UserWarning, match=r"'channel_1' has a standard error of 50% of its lift.*dropped"):
        DeepCausalMMM(config=FAST).fit(sim.X, sim.y, lift_tests=weak, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the full prior kept, or a precise test: no warning
        DeepCausalMMM(config={**FAST, "calibration": {"tested_prior": 1.0}}).fit(
            sim.X, sim.y, lift_tests=weak, **kw)
        DeepCausalMMM(config=FAST).fit(sim.X, sim.y, lift_tests=_geo_test(sim), **kw)


def test_zero_weight_only_reports(sim):
    kw = _kw(sim)
    tests = _geo_test(sim)
    plain = DeepCausalMMM(config=FAST).fit(sim.X, sim.y, **kw)
    off = DeepCausalMMM(config={**FAST, "calibration": {"weight": 0.0}}).fit(
        sim.X, sim.y, lift_tests=tests, **kw
    )
    np.testing.assert_array_equal(plain.predict(sim.X, **kw), off.predict(sim.X, **kw))
    assert off.lift_tests_.equals(plain.lift_test_report(tests))


def test_lift_tests_survive_save_and_load(sim, tmp_path):
    tests = _geo_test(sim)
    model = DeepCausalMMM(config=FAST).fit(sim.X, sim.y, lift_tests=tests, **_kw(sim))
    loaded = DeepCausalMMM.load(model.save(tmp_path / "cal.safetensors"))
    pd.testing.assert_frame_equal(loaded.lift_tests_, model.lift_tests_, check_exact=False, rtol=1e-9)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda t: t.drop(columns="lift_se"), r"lacks column\(s\) \['lift_se'\]"),
        (lambda t: t.assign(channel="radio"), "'radio' is not a fitted channel"),
        (lambda t: t.assign(regions=[["geo_999"]]), r"\['geo_999'\] are not fitted regions"),
        (lambda t: t.assign(lift_se=0.0), "'lift_se' must be a positive number"),
        (lambda t: t.assign(lift=np.nan), "'lift' must be a finite number"),
        (lambda t: t.assign(start=pd.Timestamp("2030-01-07"), end=pd.Timestamp("2030-03-04")),
         "holds no fitted week"),
        (lambda t: t.assign(start=t.end, end=t.start), "is after 'end'"),
        (lambda t: t.iloc[:0], "has no rows"),
        (lambda t: "experiments.csv", "must be a DataFrame"),
    ],
)
def test_bad_lift_tests_name_the_problem_and_change_nothing(fitted, small_sim, change, message):
    good = _geo_test(small_sim)
    before = fitted.get_channel_contributions()
    with pytest.raises(DataError, match=message):
        DeepCausalMMM(config=FAST).fit(small_sim.X, small_sim.y, lift_tests=change(good), **_kw(small_sim))
    with pytest.raises(DataError, match=message):
        fitted.lift_test_report(change(good))
    assert fitted.get_channel_contributions().equals(before)


def test_lift_tests_as_records(fitted, small_sim):
    """A list of dicts, one per test, is read as the DataFrame it spells."""
    good = _geo_test(small_sim)
    pd.testing.assert_frame_equal(fitted.lift_test_report(good.to_dict("records")), fitted.lift_test_report(good))


def test_report_without_tests_says_how_to_get_one(fitted):
    with pytest.raises(DataError, match="no lift tests"):
        fitted.lift_test_report()


def test_fit_cli_with_lift_tests(sim, tmp_path, capsys):
    import json

    from deepcausalmmm.cli import main

    data = tmp_path / "d.csv"
    sim.data.to_csv(data, index=False)
    cfg = tmp_path / "fast.json"
    cfg.write_text(json.dumps(FAST))
    test = _geo_test(sim)
    row = test.iloc[0]
    lifts = tmp_path / "lifts.csv"
    pd.DataFrame([{"channel": row.channel, "start": str(row.start.date()), "end": str(row.end.date()),
                   "lift": row.lift, "lift_se": row.lift_se, "regions": ";".join(row.regions)}]).to_csv(
        lifts, index=False)
    args = ["fit", str(data), "--target", "kpi", "--channels", ",".join(sim.channels), "--controls",
            "price,promo", "--date", "date", "--region", "region", "--config", str(cfg)]
    assert main([*args, "--lift-tests", str(lifts), "--out", str(tmp_path / "o")]) == 0
    shape = f"fitted {sim.data['region'].nunique()} region(s) x {sim.data['date'].nunique()} periods x {len(sim.channels)} channels in "
    printed = capsys.readouterr().out
    assert shape in printed and " epochs)" in printed and "files to" in printed
    report = pd.read_csv(tmp_path / "o" / "lift_tests.csv")
    assert report.loc[0, "lift"] == pytest.approx(row.lift) and np.isfinite(report.loc[0, "model_lift"])
    pd.read_csv(lifts).assign(channel="radio").to_csv(lifts, index=False)
    assert main([*args, "--lift-tests", str(lifts), "--out", str(tmp_path / "bad")]) == 2
    assert "'radio' is not a fitted channel" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_bootstrap_replicates_carry_the_lift_tests(sim):
    """Intervals of a calibrated model come from refits calibrated to the same experiments: a
    replicate keeps the drawn copies of each test's regions, with the measured lift scaled by the
    share of the test's modelled lift those copies carry."""
    tests = _geo_test(sim, "channel_1")  # regions: the first three
    model = DeepCausalMMM(config=FAST).fit(sim.X, sim.y, lift_tests=tests, **_kw(sim))
    per_region = model._stored_lift_by_region()  # [1,R]
    assert per_region.sum() == pytest.approx(model.lift_tests_["model_lift"].iloc[0], rel=1e-9)
    assert (per_region[0, 3:] == 0).all() and (per_region[0, :3] > 0).all()
    R = len(model.regions_)
    same = model._replicate_tests(np.arange(R), per_region)  # every region once: the test itself
    assert same["regions"].iloc[0] == [0, 1, 2]
    assert same["lift"].iloc[0] == pytest.approx(tests["lift"].iloc[0], rel=1e-12)
    assert same["lift_se"].iloc[0] == pytest.approx(tests["lift_se"].iloc[0], rel=1e-12)
    draw = np.array([0, 0, 4, 5, 2, 3])  # region 0 twice, region 1 missing
    rep = model._replicate_tests(draw, per_region)
    share = per_region[0, :3] / per_region[0, :3].sum()
    assert rep["regions"].iloc[0] == [0, 1, 4]  # the replicate's copies of regions 0, 0, 2
    assert rep["lift"].iloc[0] == pytest.approx(tests["lift"].iloc[0] * (2 * share[0] + share[2]))
    assert rep["lift_se"].iloc[0] / rep["lift"].iloc[0] == pytest.approx(0.05)
    assert model._replicate_tests(np.array([3, 4, 5, 5, 4, 3]), per_region) is None  # none drawn
    draw, refit = next(model._bootstrap_refits(1, random_state=0, prior_spread=0.0))
    assert refit.lift_tests_ is not None and len(refit.lift_tests_) == 1


def test_lift_test_measures_a_constant_channel(sim, tmp_path):
    # A flat weekly fee shows nothing in the data (fixed at 0 without a test); a geo test on it
    # sets its level, and a saved model keeps it free.
    kw = _kw(sim)
    X = sim.X.assign(sponsorship=1000.0)
    dates = np.unique(sim.dates)
    regions = list(dict.fromkeys(sim.regions))[:3]
    tests = pd.DataFrame([{"channel": "sponsorship", "start": dates[20], "end": dates[31], "regions": regions,
                           "lift": 5000.0, "lift_se": 250.0}])
    with pytest.warns(UserWarning, match="sponsorship"):
        model = DeepCausalMMM(config=FAST).fit(X, sim.y, lift_tests=tests, **kw)
    assert model.get_channel_effects().loc["sponsorship", "total"] > 0
    assert model.lift_tests_["model_lift"].iloc[0] == pytest.approx(5000.0, rel=0.3)
    path = tmp_path / "m.safetensors"
    model.save(path)
    again = DeepCausalMMM.load(path)
    np.testing.assert_allclose(again.predict(X, **kw), model.predict(X, **kw), rtol=1e-6)


# ROI priors (calibration.roi_priors): a belief about a channel's whole-panel ROI, weighed as a
# national lift test over the fitted weeks would be.

FIXED = {"mode": "fixed", "edges": [["channel_1", "channel_2"]]}  # channel_1's total has a mediated part


def _roi_fit(sim, priors, **extra):
    cfg = {**FAST, "calibration": {"roi_priors": priors}, **extra}
    return DeepCausalMMM(config=cfg).fit(sim.X, sim.y, **_kw(sim))


def test_roi_prior_term_is_the_total_effect_per_unit_spend(sim):
    # Invariant: the loss term's model total is get_channel_effects()["total"], for a channel with
    # a descendant in the graph (channel_1 -> channel_2: the counterfactual batch) and without.
    model = _roi_fit(sim, {"channel_1": [1.0, 1.0], "channel_3": [1.0, 1.0]}, graph=FIXED)
    assert model.graph_.loc["channel_1", "channel_2"] > 0  # the mediated path is exercised
    cfg, p = model.config_, model.panel_
    term = model._roi_term(cfg, p, model.scaler_, model.knots_, model.graph_model_, model.spend_,
                           1.0, torch.device("cpu"))
    assert term.mediated.tolist() == [True, False]
    batch = model._batch(cfg, p, model.scaler_, model.knots_, np.arange(len(model.regions_)), p.media,
                         p.control_values, np.arange(len(p.dates), dtype=float))
    with torch.no_grad():
        total = term.model_total(model.net_, model.net_(batch)).numpy()
    effects = model.get_channel_effects()
    np.testing.assert_allclose(total, effects.loc[["channel_1", "channel_3"], "total"], rtol=1e-4)
    # Weighed against the cells discounted for residual persistence: n (1 - rho) / (1 + rho).
    with torch.no_grad():
        dec = model.net_(batch)
        s2 = torch.tensor(0.01, dtype=torch.float64)
        base, persistent = (float(term.penalty(model.net_, dec, s2, rho)) for rho in (0.0, 0.6))
    z = (total - term.target.numpy()) / term.se.numpy()
    assert base == pytest.approx(0.01 / term.n_cells * (z**2).sum(), rel=1e-6)
    assert persistent == pytest.approx(4.0 * base, rel=1e-9)
    np.testing.assert_allclose(term.target.numpy(), effects.loc[["channel_1", "channel_3"], "spend"])


def test_a_precise_roi_prior_sets_the_fitted_roi(sim):
    plain = DeepCausalMMM(config={**FAST, "graph": FIXED}).fit(sim.X, sim.y, **_kw(sim))
    roi = plain.get_channel_effects()["roi"]
    # Beliefs far from what the data say (1.6x and 0.6x), 1% standard deviation: the fitted ROI
    # (total effect per unit spend, mediated part included for channel_1) follows them.
    priors = {"channel_1": [1.6 * roi["channel_1"], 0.016 * roi["channel_1"]],
              "channel_3": [0.6 * roi["channel_3"], 0.006 * roi["channel_3"]]}
    model = _roi_fit(sim, priors, graph=FIXED)
    assert model.get_channel_effects()["mediated"]["channel_1"] > 0
    after = model.get_channel_effects()["roi"]
    for c, (mean, _) in priors.items():
        assert after[c] == pytest.approx(mean, rel=0.05), c
    assert model.net_.prior_weight.tolist() == [0.0, 1.0, 0.0]  # their coefficient priors dropped
    assert model.get_identification()["roi_prior"].tolist() == [True, False, True]
    assert not plain.get_identification()["roi_prior"].any()
    # Bootstrap refits keep the priors: each replicate's ROI stays at the belief.
    iv = model.get_effect_intervals(n_boot=2)
    for c, (mean, _) in priors.items():
        assert iv.loc[c, "roi_lo"] == pytest.approx(mean, rel=0.05) and iv.loc[c, "roi_hi"] == pytest.approx(
            mean, rel=0.05), c
    report = model.roi_prior_report()
    assert list(report.columns) == ["prior_mean", "prior_sd", "roi", "z"]
    np.testing.assert_allclose(report["roi"], after[["channel_1", "channel_3"]])
    np.testing.assert_allclose(report["z"], (report["roi"] - report["prior_mean"]) / report["prior_sd"])
    # A loose prior (sd 10x the mean) leaves the fit nearly where the data put it.
    loose = _roi_fit(sim, {"channel_1": [1.6 * roi["channel_1"], 16 * roi["channel_1"]]},
                     regularization={"l2": 0.0})
    free = DeepCausalMMM(config={**FAST, "regularization": {"l2": 0.0}}).fit(sim.X, sim.y, **_kw(sim))
    assert loose.get_channel_effects()["roi"]["channel_1"] == pytest.approx(
        free.get_channel_effects()["roi"]["channel_1"], rel=0.05)


def test_roi_priors_are_per_unit_of_spend_in_bootstrap_refits_too(sim):
    # channel_3 measured in impressions, its spend 2.5 per impression: the prior is on KPI per unit
    # of that spend, in the fit and in each bootstrap replicate (which gets the drawn regions' spend).
    spend = pd.DataFrame({"channel_3": 2.5 * sim.X["channel_3"].to_numpy()})
    plain = DeepCausalMMM(config=FAST).fit(sim.X, sim.y, spend=spend, **_kw(sim))
    mean = 1.5 * plain.get_channel_effects()["roi"]["channel_3"]
    model = DeepCausalMMM(config={**FAST, "calibration": {"roi_priors": {"channel_3": [mean, 0.01 * mean]}}}).fit(
        sim.X, sim.y, spend=spend, **_kw(sim))
    effects = model.get_channel_effects()
    assert effects.loc["channel_3", "spend"] == pytest.approx(spend["channel_3"].sum())
    assert effects.loc["channel_3", "roi"] == pytest.approx(mean, rel=0.05)
    iv = model.get_effect_intervals(n_boot=2)
    assert iv.loc["channel_3", "roi_lo"] == pytest.approx(mean, rel=0.05)
    assert iv.loc["channel_3", "roi_hi"] == pytest.approx(mean, rel=0.05)


def test_roi_prior_sets_a_constant_channels_level(sim):
    # A flat weekly fee is fixed at 0 without a measurement; an ROI prior on it frees it and sets
    # its level (the data have nothing to say against it).
    X = sim.X.assign(sponsorship=1000.0)
    cfg = {**FAST, "calibration": {"roi_priors": {"sponsorship": [0.5, 0.05]}}}
    with pytest.warns(UserWarning, match="sponsorship"):
        model = DeepCausalMMM(config=cfg).fit(X, sim.y, **_kw(sim))
    assert not model.get_channel_parameters().loc["sponsorship", "fixed_at_zero"]
    assert model.roi_prior_report().loc["sponsorship", "roi"] == pytest.approx(0.5, rel=0.1)


def test_roi_priors_survive_save_and_load_and_reach_the_outputs(sim, fitted, tmp_path):
    model = _roi_fit(sim, {"channel_2": [0.5, 0.1]})
    loaded = DeepCausalMMM.load(model.save(tmp_path / "roi.safetensors"))
    assert loaded.config_.calibration.roi_priors == {"channel_2": (0.5, 0.1)}
    np.testing.assert_allclose(loaded.get_channel_effects()["roi"], model.get_channel_effects()["roi"])
    pd.testing.assert_frame_equal(loaded.roi_prior_report(), model.roi_prior_report())
    html = model.save_report(tmp_path / "report.html").read_text(encoding="utf-8")
    assert '<h2 id="roi-priors">ROI priors</h2>' in html and "prior_mean" in html
    with pytest.raises(DataError, match=r"no ROI priors: set config 'calibration.roi_priors'"):
        fitted.roi_prior_report()
    assert "ROI priors</h2>" not in fitted.save_report(tmp_path / "plain.html").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "priors, error, message",
    [
        ({"radio": [1.0, 0.2]}, ConfigError, r"'calibration.roi_priors' names \['radio'\], which are not channels"),
        ({"channel_1": [-1.0, 0.2]}, ConfigError, r"has mean -1.0; give a finite ROI >= 0"),
        ({"channel_1": [1.0, 0.0]}, ConfigError, r"has sd 0.0; give a finite standard deviation > 0"),
        ({"channel_1": [1.0]}, ConfigError, r"calibration.roi_priors.channel_1"),
        ({"dark": [1.0, 0.2]}, DataError, r"names \['dark'\], whose spend over the fitted weeks is 0"),
    ],
)
def test_bad_roi_priors_name_the_problem_and_change_nothing(fitted, small_sim, priors, error, message):
    X = small_sim.X.assign(dark=0.0)
    before = fitted.get_channel_contributions()
    with pytest.raises(error, match=message), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the all-zero channel's warning
        fitted.fit(X, small_sim.y, config_overrides={"calibration": {"roi_priors": priors}}, **_kw(small_sim))
    assert fitted.get_channel_contributions().equals(before)


def test_fit_cli_with_roi_priors(sim, tmp_path, capsys):
    import json

    from deepcausalmmm.cli import main

    data = tmp_path / "d.csv"
    sim.data.to_csv(data, index=False)
    cfg = tmp_path / "priors.json"
    cfg.write_text(json.dumps({**FAST, "calibration": {"roi_priors": {"channel_2": [0.5, 0.1]}}}))
    args = ["fit", str(data), "--target", "kpi", "--channels", ",".join(sim.channels), "--controls",
            "price,promo", "--date", "date", "--region", "region", "--config", str(cfg)]
    assert main([*args, "--out", str(tmp_path / "o")]) == 0
    report = pd.read_csv(tmp_path / "o" / "roi_priors.csv", index_col="channel")
    assert report.loc["channel_2", "prior_mean"] == 0.5 and np.isfinite(report.loc["channel_2", "roi"])
    saved = json.loads((tmp_path / "o" / "config.json").read_text())
    assert saved["calibration"]["roi_priors"] == {"channel_2": [0.5, 0.1]}
    cfg.write_text(json.dumps({**FAST, "calibration": {"roi_priors": {"radio": [0.5, 0.1]}}}))
    assert main([*args, "--out", str(tmp_path / "bad")]) == 2
    assert "'calibration.roi_priors' names ['radio'], which are not channels" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
    # --roi-priors: the same from the command line, merged over the config file's priors
    cfg.write_text(json.dumps({**FAST, "calibration": {"roi_priors": {"channel_2": [0.5, 0.1]}}}))
    assert main([*args, "--roi-priors", "channel_1=0.8:0.2", "--out", str(tmp_path / "o2")]) == 0
    report = pd.read_csv(tmp_path / "o2" / "roi_priors.csv", index_col="channel")
    assert report[["prior_mean", "prior_sd"]].to_dict("index") == {
        "channel_2": {"prior_mean": 0.5, "prior_sd": 0.1}, "channel_1": {"prior_mean": 0.8, "prior_sd": 0.2}}
    assert main([*args, "--roi-priors", "channel_1=0.8", "--out", str(tmp_path / "bad2")]) == 2
    assert "--roi-priors channel_1 takes MEAN:SD" in capsys.readouterr().err
    assert not (tmp_path / "bad2").exists()


def _plan_tests(model, sim):
    dates = np.unique(sim.dates)
    regions = list(dict.fromkeys(sim.regions))
    return pd.DataFrame(
        [{"channel": c, "start": dates[20], "end": dates[31], "regions": regions[:3]} for c in model.channels_]
        + [{"channel": "channel_1", "start": dates[10], "end": dates[50]}]  # national, 41 weeks
    )


def test_planned_lift_is_the_model_lift_and_its_noise_floor_the_simulated_noise(fitted, small_sim):
    tests = _plan_tests(fitted, small_sim)
    plan = fitted.plan_lift_test(tests)
    report = fitted.lift_test_report(tests.assign(lift=1.0, lift_se=1.0))
    np.testing.assert_allclose(plan["model_lift"], report["model_lift"], rtol=1e-12)
    assert list(plan["n_regions"]) == [3, 3, 3, 6] and list(plan["weeks"]) == [12, 12, 12, 41]
    # the simulator's noise: sd 5% of each cell's baseline, independent across cells
    base = small_sim.truth["baseline"].to_numpy()
    dates, regions = np.asarray(small_sim.dates), np.asarray(small_sim.regions)
    for row in plan.itertuples():
        cells = (dates >= row.start) & (dates <= row.end)
        if row.regions is not None:
            cells &= np.isin(regions, row.regions)
        true_se = np.sqrt(((0.05 * base[cells]) ** 2).sum())
        assert 0.85 < row.noise_se / true_se < 1.25  # measured 1.06 and 1.01
    np.testing.assert_allclose(plan["relative_se"], plan["noise_se"] / plan["model_lift"])
    assert plan.attrs["persistence"] == fitted.residual_persistence_


def test_sum_of_ar1_weeks_has_the_planned_variance():
    from deepcausalmmm.analysis.calibration import sum_variance_factor

    assert sum_variance_factor(8, 0.0) == 8.0
    assert sum_variance_factor(8, 1.0) == 64.0
    assert sum_variance_factor(0, 0.5) == 0.0
    rng = np.random.default_rng(0)
    rho, w, n = 0.6, 8, 200_000
    x = np.empty((n, w))
    x[:, 0] = rng.standard_normal(n)  # stationary start, unit variance
    for t in range(1, w):
        x[:, t] = rho * x[:, t - 1] + np.sqrt(1 - rho**2) * rng.standard_normal(n)
    assert x.sum(axis=1).var() == pytest.approx(sum_variance_factor(w, rho), rel=0.02)


def test_weeks_needed_is_the_first_length_that_reaches_the_target(fitted, small_sim):
    from deepcausalmmm.analysis.calibration import sum_variance_factor, weeks_for_precision

    weekly, var, rho = 100.0, 40_000.0, 0.5

    def rel(w):
        return np.sqrt(var * sum_variance_factor(w, rho)) / (weekly * w)

    w = weeks_for_precision(rel, 0.2, 500)
    assert rel(w) <= 0.2 < rel(w - 1)
    assert np.isnan(weeks_for_precision(rel, 0.2, int(w) - 1))  # not within the limit
    assert np.isnan(weeks_for_precision(lambda w: np.inf, 0.2, 500))  # no lift to measure
    assert weeks_for_precision(rel, 10.0, 500) == 1.0
    # the plan replays each length: a test of weeks_needed weeks ending in the same week reaches
    # the target, one a week shorter does not
    dates = np.unique(small_sim.dates)
    tests = _plan_tests(fitted, small_sim)
    plan = fitted.plan_lift_test(tests, target_precision=0.1)
    assert plan["weeks_needed"].notna().any()
    for row in plan.itertuples():
        if not np.isfinite(row.weeks_needed):
            continue
        end = int(np.flatnonzero(dates == np.datetime64(row.end))[0])
        n = int(row.weeks_needed)
        lengths = [n, n - 1] if n > 1 else [n]
        again = fitted.plan_lift_test(pd.DataFrame([
            {"channel": row.channel, "start": dates[end - k + 1], "end": dates[end], "regions": row.regions}
            for k in lengths]))
        assert again["relative_se"].iloc[0] <= 0.1
        if n > 1:
            assert again["relative_se"].iloc[1] > 0.1


@pytest.mark.parametrize("target", [0, -0.1, float("nan"), True, "20%"])
def test_bad_target_precision_names_the_argument(fitted, small_sim, target):
    with pytest.raises(DataError, match="`target_precision` must be a positive number"):
        fitted.plan_lift_test(_plan_tests(fitted, small_sim), target_precision=target)


def test_bad_planned_tests_name_the_problem_and_change_nothing(fitted, small_sim):
    before = fitted.get_channel_contributions()
    tests = _plan_tests(fitted, small_sim)
    with pytest.raises(DataError, match="is not a fitted channel"):
        fitted.plan_lift_test(tests.assign(channel="radio"))
    with pytest.raises(DataError, match="are not fitted regions"):
        fitted.plan_lift_test(tests.assign(regions=[["nowhere"]] * len(tests)))
    future = pd.Timestamp(np.unique(small_sim.dates)[-1]) + pd.Timedelta(weeks=4)
    with pytest.raises(DataError, match="holds no fitted week.*to plan a future test, give a past window"):
        fitted.plan_lift_test(tests.assign(start=future, end=future + pd.Timedelta(weeks=8)))
    with pytest.raises(DataError, match=r"`tests` lacks column\(s\) \['start'\]; a candidate test needs"):
        fitted.plan_lift_test(tests.drop(columns="start"))
    with pytest.raises(DataError, match="`tests` must be a DataFrame .* found str"):
        fitted.plan_lift_test("candidates.csv")
    with pytest.raises(DataError, match="`tests` row 0: channel 'radio'"):
        fitted.plan_lift_test(tests.assign(channel="radio"))
    assert fitted.get_channel_contributions().equals(before)
    assert not hasattr(fitted, "lift_tests_") or fitted.lift_tests_ is None
    pd.testing.assert_frame_equal(fitted.plan_lift_test(tests.to_dict("records")), fitted.plan_lift_test(tests))


def test_plan_test_cli_writes_the_plan_of_a_saved_model(fitted, small_sim, tmp_path, capsys):
    from deepcausalmmm.cli import main

    model = fitted.save(tmp_path / "model.safetensors")
    tests = _plan_tests(fitted, small_sim)
    csv = tmp_path / "candidates.csv"
    tests.assign(start=tests["start"].dt.date.astype(str), end=tests["end"].dt.date.astype(str),
                 regions=tests["regions"].map(lambda r: ";".join(r) if isinstance(r, list) else "")).to_csv(
        csv, index=False)
    out = tmp_path / "plan.csv"
    assert main(["plan-test", str(model), str(csv), "--target-precision", "0.1", "--out", str(out)]) == 0
    written = pd.read_csv(out)
    expected = fitted.plan_lift_test(tests, target_precision=0.1)
    np.testing.assert_allclose(written["model_lift"], expected["model_lift"], rtol=1e-5)
    np.testing.assert_allclose(written["noise_se"], expected["noise_se"], rtol=1e-5)
    np.testing.assert_array_equal(written["weeks_needed"], expected["weeks_needed"])
    assert written["regions"].fillna("").tolist() == [";".join(list(dict.fromkeys(small_sim.regions))[:3])] * 3 + [""]
    captured = capsys.readouterr()
    assert "noise_se is the KPI's own noise" in captured.out
    assert "warning" not in captured.err  # the printed table rounds its numbers only, not its dates
    for bad, message in (("0", "--target-precision must be a positive number"),
                         ("abc", "--target-precision must be a positive number")):
        assert main(["plan-test", str(model), str(csv), "--target-precision", bad,
                     "--out", str(tmp_path / "bad.csv")]) == 2
        assert message in capsys.readouterr().err
    pd.read_csv(csv).assign(channel="radio").to_csv(csv, index=False)
    assert main(["plan-test", str(model), str(csv), "--out", str(tmp_path / "bad.csv")]) == 2
    assert "'radio' is not a fitted channel" in capsys.readouterr().err
    assert not (tmp_path / "bad.csv").exists()
