"""Region-bootstrap intervals: they widen with noise, are ordered, and reject bad arguments."""

from __future__ import annotations

import copy
import re
import warnings

import numpy as np
import pandas as pd
import pytest

from deepcausalmmm import DeepCausalMMM
from deepcausalmmm.datasets import simulate_panel
from deepcausalmmm.exceptions import ConfigError, DataError

from .conftest import FAST


def clone_of(model: DeepCausalMMM) -> DeepCausalMMM:
    """A fitted model's copy to change parameters of (not the session's shared model)."""
    return copy.deepcopy(model)


def _intervals(noise: float):
    sim = simulate_panel(8, 60, 3, seed=11, noise=noise)
    model = DeepCausalMMM(config=FAST).fit(sim.X, sim.y, regions=sim.regions, dates=sim.dates,
                                           controls=sim.control_frame)
    return model, model.get_effect_intervals(n_boot=4, level=0.8)


def test_intervals_widen_with_noise_and_are_ordered():
    quiet_model, quiet = _intervals(0.02)
    _, noisy = _intervals(0.15)
    # Same panel, seven times the KPI noise: replicate fits disagree more.
    assert noisy["total_share_sd"].mean() > 1.5 * quiet["total_share_sd"].mean()
    for table in (quiet, noisy):
        assert (table["total_share_lo"] <= table["total_share_hi"]).all()
        assert (table["roi_lo"] <= table["roi_hi"]).all() and (table["total_share_sd"] > 0).all()
        assert table.attrs["n_boot"] == 4 and table.attrs["level"] == 0.8
    np.testing.assert_allclose(quiet["total_share"], quiet_model.get_channel_effects()["total_share"])
    # marginal ROI at the current allocation: the response curve's slope between x0.9 and x1.1
    curves = quiet_model.get_response_curves(multipliers=[0.9, 1.1]).set_index(["channel", "multiplier"])
    for ch in quiet.index:
        slope = (curves.loc[(ch, 1.1), "response"] - curves.loc[(ch, 0.9), "response"]) / (
            curves.loc[(ch, 1.1), "spend"] - curves.loc[(ch, 0.9), "spend"])
        assert quiet.loc[ch, "marginal_roi"] == pytest.approx(slope, rel=1e-9)
    for table in (quiet, noisy):
        assert (table["marginal_roi_lo"] <= table["marginal_roi_hi"]).all()
        # Hill curves with carryover are concave in spend: the next unit returns less than the average
        assert (table["marginal_roi"] < table["roi"]).all()
        assert (table["marginal_roi_hi"] > 0).all() and (table["marginal_roi_sd"] > 0).all()


def test_refits_side_by_side_give_the_refits_one_at_a_time(tmp_path, capsys):
    """n_jobs=2: bootstrap replicates and backtest cutoffs refit in two worker processes, with the
    same results as one at a time (the same thread count: exactly) and the same warnings, raised
    in the calling process."""
    sim = simulate_panel(4, 52, 2, seed=3)
    kw = dict(regions=sim.regions, dates=sim.dates, controls=sim.control_frame)
    # short training (the results need not be good, only the same) on one thread in every fit
    one_thread = {"training": {"epochs": 60, "patience": 40, "polish_steps": 20, "threads": 1}}
    # a calibrated model: each replicate carries its share of a lift test, an ROI prior and spend
    dates, tested = np.unique(sim.dates), list(dict.fromkeys(sim.regions))[:2]
    lift = sim.true_lift("channel_1", tested, dates[20], dates[31])
    test = pd.DataFrame([{"channel": "channel_1", "start": dates[20], "end": dates[31], "regions": tested,
                          "lift": lift, "lift_se": 0.1 * lift}])
    calibrated = {**one_thread, "calibration": {"roi_priors": {"channel_2": [0.5, 0.2]}}}
    spend = pd.DataFrame({"channel_2": 2.0 * sim.X["channel_2"].to_numpy()})
    model = DeepCausalMMM(config=calibrated).fit(sim.X, sim.y, lift_tests=test, spend=spend, **kw)
    alone = model.get_effect_intervals(n_boot=2)
    plan_alone = model.optimize_budget(n_boot=2)
    two = np.isin(sim.regions, sim.regions[[0, -1]])  # 2 regions: the cutoffs' refits warn about their graph
    data = dict(X=sim.X[two], y=sim.y[two], regions=sim.regions[two], dates=sim.dates[two],
                controls=sim.control_frame[two], n_splits=2, horizon=6)

    def backtest(n_jobs):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            table = DeepCausalMMM(config=one_thread, n_jobs=n_jobs, verbose=True).backtest(**data)
        return table.drop(columns="fit_seconds"), [(w.category, str(w.message)) for w in caught]

    backtest_alone, warned_alone = backtest(None)
    model.set_params(n_jobs=2)
    pd.testing.assert_frame_equal(model.get_effect_intervals(n_boot=2), alone)
    # n_jobs=None follows a surrounding joblib configuration, in processes whatever backend it names
    from joblib import parallel_config

    model.set_params(n_jobs=None, verbose=True)
    capsys.readouterr()
    with parallel_config(backend="threading", n_jobs=2):
        plan = model.optimize_budget(n_boot=2)
    assert "2 refits side by side in 2 worker processes" in capsys.readouterr().out
    pd.testing.assert_frame_equal(plan, plan_alone)
    assert plan.attrs["gain_lo"] == plan_alone.attrs["gain_lo"]
    model.set_params(n_jobs=2, verbose=False)
    assert "side by side" not in capsys.readouterr().out
    side_by_side, warned = backtest(2)
    assert re.search(r"2 refits side by side in 2 worker processes, \d+ thread\(s\) each", capsys.readouterr().out)
    pd.testing.assert_frame_equal(side_by_side, backtest_alone)
    assert len(warned_alone) == 2 and "graph: with 2 region(s)" in warned_alone[0][1]
    assert warned == warned_alone
    # saved with the model
    assert DeepCausalMMM.load(model.save(tmp_path / "m.safetensors")).n_jobs == 2


def test_a_refit_in_a_worker_trains_on_its_share_of_the_cores(small_sim):
    """A worker's refit takes the threads it is given where the config leaves training.threads at 0
    (every core), and keeps a count the config names."""
    from deepcausalmmm.estimator import _Refit

    data = dict(X=small_sim.X, y=small_sim.y, regions=small_sim.regions, dates=small_sim.dates)
    short = {"training": {"epochs": 5, "polish_steps": 0}}
    model, seconds, given = _Refit(DeepCausalMMM(config=short), data).run(threads=3)
    assert model.config_.training.threads == 3 and seconds > 0 and given == []
    named = {"training": {**short["training"], "threads": 2}}
    assert _Refit(DeepCausalMMM(config=named), data).run(threads=3)[0].config_.training.threads == 2
    assert _Refit(DeepCausalMMM(config=short), data).run()[0].config_.training.threads == 0
    # A worker records the fit's warnings (to raise them again in the caller), less the quiet ones.
    national = dict(X=small_sim.X[:60], y=small_sim.y[:60], dates=small_sim.dates[:60])
    _, _, given = _Refit(DeepCausalMMM(config=short), national).run(threads=1, record=True)
    assert any(category is UserWarning and text.startswith("graph: 1 regions") for category, text in given)
    _, _, given = _Refit(DeepCausalMMM(config=short), national, quiet=("graph: ",)).run(threads=1, record=True)
    assert not any(text.startswith("graph: ") for _, text in given)


@pytest.mark.parametrize("n_jobs", [0, "2", 1.5, True])
def test_n_jobs_must_be_a_whole_number_other_than_0(small_sim, fitted, n_jobs):
    message = r"`n_jobs` must be None or a whole number other than 0 .* found .*; e.g. n_jobs=-1"
    with pytest.raises(ConfigError, match=message):
        DeepCausalMMM(config=FAST, n_jobs=n_jobs).fit(small_sim.X, small_sim.y, regions=small_sim.regions)
    with pytest.raises(ConfigError, match=message):  # before any refit
        DeepCausalMMM(config=FAST, n_jobs=n_jobs).backtest(small_sim.X, small_sim.y, regions=small_sim.regions,
                                                          n_splits=1, horizon=4)
    bad = clone_of(fitted).set_params(n_jobs=n_jobs)
    with pytest.raises(ConfigError, match=message):
        bad.get_effect_intervals(n_boot=2)
    with pytest.raises(ConfigError, match=message):  # before the plan is optimised
        bad.optimize_budget(n_boot=2)


@pytest.mark.parametrize("kwargs, message", [
    ({"n_boot": 1}, "at least 2"), ({"level": 1.5}, r"in \(0, 1\)"),
    *[({"prior_spread": bad}, r"`prior_spread` must be a finite number >= 0 .* found") for bad in
      (-0.5, float("nan"), "wide")],
])
def test_interval_arguments(fitted, kwargs, message):
    with pytest.raises(DataError, match=message):
        fitted.get_effect_intervals(**kwargs)
    with pytest.raises(DataError, match=message):  # the budget plan's refits take the same arguments
        fitted.optimize_budget(**{"n_boot": 2, **kwargs})


def test_each_replicate_draws_its_own_prior_strengths(fitted, monkeypatch):
    """prior_spread s: replicate b refits the same drawn regions with l2 and hill_slope times
    exp(s z_b), reproducibly; s = 0 keeps the fit's priors. (What is checked is each refit's
    configuration, which `fit` settles before any training: the refits here stop there.)"""
    from deepcausalmmm import build_config

    reg = fitted.config_.regularization

    def configured_only(self, X, y, **kwargs):
        self.config_ = build_config(self.config)
        return self

    monkeypatch.setattr(DeepCausalMMM, "fit", configured_only)

    def replicates(spread: float) -> list[tuple[list[int], float, float]]:
        return [(draw.tolist(), refit.config_.regularization.l2 / reg.l2,
                 refit.config_.regularization.hill_slope / reg.hill_slope)
                for draw, refit in fitted._bootstrap_refits(3, 7, spread)]

    plain, spread, again = replicates(0.0), replicates(1.4), replicates(1.4)
    assert all(l2 == 1.0 and slope == 1.0 for _, l2, slope in plain)
    assert spread == again  # reproducible from random_state
    assert [d for d, _, _ in spread] == [d for d, _, _ in plain]  # the same regions are drawn
    logs = np.log([[l2, slope] for _, l2, slope in spread])  # [3,2] = 1.4 z
    assert np.all(np.abs(logs) > 1e-6) and np.all(np.abs(logs) < 1.4 * 5)
    assert len({round(v, 9) for v in logs.ravel()}) == 6  # a draw per prior and replicate
    # the rest of the configuration is the fit's
    for _, refit in fitted._bootstrap_refits(2, 7, 1.4):
        got, want = refit.config_.to_dict(), fitted.config_.to_dict()
        for key in ("l2", "hill_slope"):
            got["regularization"].pop(key), want["regularization"].pop(key)
        assert got == want


def test_a_national_series_has_prior_spread_intervals_only(tmp_path, capsys):
    """One region: without a prior spread every replicate would be the same fit (zero-width
    intervals), refused up front; with one, the replicates differ by their priors."""
    sim = simulate_panel(1, 60, 2, seed=3)
    model = DeepCausalMMM(config=FAST).fit(sim.X, sim.y, dates=sim.dates)
    for call in (lambda: model.get_effect_intervals(n_boot=3, prior_spread=0),
                 lambda: model.optimize_budget(n_boot=3, prior_spread=0)):
        with pytest.raises(DataError, match=r"`n_boot`: .* this fit has 1 \(a national series\), so with "
                           r"prior_spread=0 .* Give prior_spread > 0"):
            call()
    assert model.optimize_budget().attrs["converged"]  # without n_boot the plan still works
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = DeepCausalMMM(config=FAST).fit(sim.X, sim.y, dates=sim.dates)
    assert any(str(w.message).startswith("graph: 1 regions x 60 weeks") for w in caught)  # the fit warns
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        iv = model.get_effect_intervals(n_boot=3)  # the default prior spread
    assert not [w for w in caught if str(w.message).startswith("graph: ")]  # the refits do not repeat it
    del again
    assert (iv["total_share_hi"] > iv["total_share_lo"]).all() and iv.attrs["prior_spread"] == 1.4
    assert (iv["total_share_sd"] > 0).all()
    from deepcausalmmm.cli import main

    path = tmp_path / "national.csv"
    sim.data.drop(columns="region").to_csv(path, index=False)
    out = tmp_path / "o"
    assert main(["fit", str(path), "--target", "kpi", "--channels", "channel_1,channel_2", "--date", "date",
                 "--n-boot", "2", "--prior-spread", "0", "--out", str(out)]) == 2
    assert "--n-boot 2 with --prior-spread 0 needs regional data" in capsys.readouterr().err
    assert not out.exists()  # refused before fitting: no partial outputs


def test_shared_refits_fit_each_replicate_once_and_give_the_same_figures(fitted, refit_count):
    """Inside shared_refits(), the intervals, the plan's robustness and the KPI change's
    intervals with the same n_boot, random_state and prior_spread share one set of refits,
    and give what each gives alone; another random_state refits; the block's end lets go."""
    model = clone_of(fitted)
    alone = model.get_effect_intervals(n_boot=2)
    plan_alone = model.optimize_budget(n_boot=2)
    d = model.panel_.dates
    change_alone = model.get_kpi_change((d[0], d[12]), (d[47], d[59]), n_boot=2)
    refit_count.clear()  # the refits fitted from here on
    fitted_models = refit_count
    with model.shared_refits() as same:
        assert same is model
        shared = model.get_effect_intervals(n_boot=2)
        plan = model.optimize_budget(n_boot=2)
        with model.shared_refits():  # a nested block keeps the outer one's refits
            change = model.get_kpi_change((d[0], d[12]), (d[47], d[59]), n_boot=2)
        assert len(fitted_models) == 2  # one set of 2 refits for the three
        model.get_effect_intervals(n_boot=2, random_state=5)
        assert len(fitted_models) == 4  # other replicates: fitted
        model.get_effect_intervals(n_boot=2)
        assert len(fitted_models) == 4
    np.testing.assert_allclose(shared.to_numpy(dtype=float), alone.to_numpy(dtype=float), rtol=1e-12)
    for key in ("gain_lo", "gain_hi", "gain_share_positive"):
        assert plan.attrs[key] == pytest.approx(plan_alone.attrs[key], rel=1e-12)
    np.testing.assert_allclose(change["change_pct_lo"], change_alone["change_pct_lo"], rtol=1e-12)
    assert not hasattr(model, "_refit_store")  # the refits are let go with the block
    model.get_effect_intervals(n_boot=2)
    assert len(fitted_models) == 6
