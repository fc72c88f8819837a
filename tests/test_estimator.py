"""The estimator's public API and its sklearn-style contract."""

import copy
import os
import stat
import warnings

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
import torch
from sklearn.base import clone

from deepcausalmmm import ConfigError, DataError, DeepCausalMMM, ModelFileError, NotFittedError
from deepcausalmmm.datasets import simulate_panel

from .conftest import FAST


def test_seed_example_verbatim():
    sim = simulate_panel(5, 52, 3, seed=21)
    X, y, region_labels = sim.X, sim.y, sim.regions
    from deepcausalmmm import DeepCausalMMM

    model = DeepCausalMMM()
    model.fit(X=X, y=y, regions=region_labels,
              config_overrides={"loss": "huber",
                                "regularization": {"l1": 1e-4, "l2": 1e-3}})
    contributions = model.get_channel_contributions()
    fig1 = model.plot_contributions()
    fig2 = model.plot_dag()
    assert isinstance(fig1, go.Figure) and isinstance(fig2, go.Figure)
    assert model.config_.loss == "huber" and model.config_.regularization.l1 == 1e-4
    assert set(sim.channels) <= set(contributions.columns)
    assert {"baseline", "controls", "prediction"} <= set(contributions.columns)
    assert (contributions[sim.channels].to_numpy() >= 0).all()


def test_fit_returns_self_and_params(small_sim):
    model = DeepCausalMMM(config=FAST, random_state=4)
    assert model.fit(small_sim.X, small_sim.y, regions=small_sim.regions) is model
    assert model.get_params() == {"config": FAST, "random_state": 4, "device": "cpu", "verbose": False,
                                  "n_jobs": None}
    twin = clone(model)
    assert twin.get_params() == model.get_params() and not hasattr(twin, "net_")
    model.set_params(random_state=9)
    assert model.random_state == 9


@pytest.mark.parametrize("call", [
    lambda m, s: m.predict(s.X, regions=s.regions),
    lambda m, s: m.get_channel_contributions(),
    lambda m, s: m.contribution_summary(),
    lambda m, s: m.plot_contributions(),
    lambda m, s: m.plot_dag(),
    lambda m, s: m.get_unexplained_weeks(),
    lambda m, s: m.save("unused.safetensors"),
])
def test_not_fitted_errors(call, small_sim):
    with pytest.raises(NotFittedError):
        call(DeepCausalMMM(), small_sim)


def test_summary_shares(fitted):
    summary = fitted.contribution_summary()
    assert list(summary.index) == fitted.channels_
    assert summary["share_of_media"].sum() == pytest.approx(1.0)
    table = fitted.get_channel_contributions()
    np.testing.assert_allclose(summary["contribution"], table[fitted.channels_].sum())


def test_fit_frame_and_cube_inputs(small_sim):
    df = small_sim.data
    a = DeepCausalMMM(config=FAST).fit_frame(df, target="kpi", channels=small_sim.channels,
                                             date="date", region="region", controls=small_sim.controls)
    b = DeepCausalMMM(config=FAST).fit(small_sim.X, small_sim.y, regions=small_sim.regions,
                                       dates=small_sim.dates, controls=small_sim.control_frame)
    assert a.get_channel_contributions().equals(b.get_channel_contributions())
    with pytest.raises(DataError, match=r"`df` lacks column\(s\) \['tv'\]"):
        DeepCausalMMM().fit_frame(df, target="kpi", channels=["tv"])
    R, T = 6, 60
    cube = small_sim.X.to_numpy().reshape(R, T, 3)
    c = DeepCausalMMM(config=FAST).fit(cube, small_sim.y.reshape(R, T))
    assert c.get_channel_contributions().shape[0] == R * T


def test_holdout_rows_continue_history_with_carryover(small_sim):
    data = small_sim.data
    cut = sorted(data["date"].unique())[50]
    train, hold = data[data["date"] < cut], data[data["date"] >= cut].copy()
    model = DeepCausalMMM(config=FAST).fit(train[small_sim.channels], train["kpi"],
                                           regions=train["region"], dates=train["date"])
    hold[small_sim.channels] = 0.0  # no new spend: only carryover from fitted weeks remains
    table = model.get_channel_contributions(hold[small_sim.channels], regions=hold["region"],
                                            dates=hold["date"])
    first = table.xs(cut, level="date")
    assert (first[small_sim.channels].sum(axis=1) > 0).all()
    later = table.xs(sorted(hold["date"].unique())[-1], level="date")
    assert (later[small_sim.channels].sum(axis=1) < first[small_sim.channels].sum(axis=1)).all()
    pred = model.predict(hold[small_sim.channels], regions=hold["region"], dates=hold["date"])
    np.testing.assert_allclose(pred, table["prediction"].to_numpy())


def test_prediction_errors(fitted, small_sim):
    X = small_sim.X
    with pytest.raises(DataError, match=r"`regions` \['atlantis'\] were not in the fitted data"):
        fitted.predict(X.iloc[:3], regions=["atlantis"] * 3, dates=small_sim.dates[:3],
                       controls=small_sim.control_frame.iloc[:3])
    with pytest.raises(DataError, match=r"missing \['channel_3'\], unexpected \[\]\. Pass the fitted"):
        fitted.predict(X[["channel_1", "channel_2"]], regions=small_sim.regions,
                       dates=small_sim.dates, controls=small_sim.control_frame)
    with pytest.raises(DataError, match=r"missing \[\], unexpected \['radio'\]\. Pass the fitted"):
        fitted.predict(X.assign(radio=1.0), regions=small_sim.regions,
                       dates=small_sim.dates, controls=small_sim.control_frame)
    with pytest.raises(DataError, match="must lie on the fitted grid"):
        fitted.predict(X.iloc[:1], regions=small_sim.regions[:1],
                       dates=[pd.Timestamp("2000-01-03")], controls=small_sim.control_frame.iloc[:1])
    # the message names a date off the grid and how many are off
    dates = pd.DatetimeIndex(small_sim.dates[:3]) + pd.Timedelta(days=2)
    with pytest.raises(DataError, match=rf"found {dates[0]} \(3 date\(s\) off it\)"):
        fitted.predict(X.iloc[:3], regions=small_sim.regions[:3], dates=dates,
                       controls=small_sim.control_frame.iloc[:3])
    with pytest.raises(DataError, match="same kind as in fit \\(datetimes\\)"):
        fitted.predict(X.iloc[:3], regions=small_sim.regions[:3], dates=[0, 1, 2],
                       controls=small_sim.control_frame.iloc[:3])
    with pytest.raises(DataError, match="pass the same control columns"):
        fitted.predict(X.iloc[:3], regions=small_sim.regions[:3], dates=small_sim.dates[:3],
                       controls=small_sim.control_frame.iloc[:3, :1])


def test_config_errors_through_fit(small_sim):
    with pytest.raises(ConfigError, match=r"unknown config key 'training\.epoch'"):
        DeepCausalMMM().fit(small_sim.X, small_sim.y, config_overrides={"training": {"epoch": 3}})
    with pytest.raises(ConfigError, match=r"'coefficients.negative_channels' names \['radio'\]"):
        DeepCausalMMM().fit(small_sim.X, small_sim.y,
                            config_overrides={"coefficients": {"negative_channels": ["radio"]}})
    with pytest.raises(ConfigError, match="`device` must be"):
        DeepCausalMMM(device="tpu").fit(small_sim.X, small_sim.y)


def test_negative_channel_switch(small_sim):
    cfg = {**FAST, "coefficients": {"negative_channels": ["channel_3"]}}
    model = DeepCausalMMM(config=cfg).fit(small_sim.X, small_sim.y, regions=small_sim.regions)
    assert bool(model.net_.negative[2]) and not bool(model.net_.negative[0])


def test_save_load_identical(fitted, small_sim, tmp_path):
    path = fitted.save(tmp_path / "model.safetensors")
    loaded = DeepCausalMMM.load(path)
    kw = dict(regions=small_sim.regions, dates=small_sim.dates, controls=small_sim.control_frame)
    np.testing.assert_array_equal(fitted.predict(small_sim.X, **kw), loaded.predict(small_sim.X, **kw))
    assert loaded.get_channel_contributions().equals(fitted.get_channel_contributions())
    assert loaded.config_ == fitted.config_ and loaded.channels_ == fitted.channels_
    assert loaded.history_ == fitted.history_ and loaded.history_.polish_evals > 0
    pd.testing.assert_frame_equal(loaded.get_channel_parameters(), fitted.get_channel_parameters())
    pd.testing.assert_frame_equal(loaded.get_carryover(), fitted.get_carryover())


def test_load_rejects_corrupt_foreign_and_future_files(fitted, tmp_path):
    path = fitted.save(tmp_path / "m.safetensors")
    raw = path.read_bytes()
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ModelFileError, match="corrupted"):
        DeepCausalMMM.load(bad)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a model at all")
    with pytest.raises(ModelFileError, match="corrupted"):
        DeepCausalMMM.load(junk)
    with pytest.raises(ModelFileError, match="does not exist"):
        DeepCausalMMM.load(tmp_path / "missing.safetensors")
    # a file from an incompatible format version
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata())
    meta["format_version"] = "99"
    future = tmp_path / "future.safetensors"
    save_file({k: v for k, v in load_file(str(path)).items()}, str(future), metadata=meta)
    with pytest.raises(ModelFileError, match="format version 99"):
        DeepCausalMMM.load(future)
    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(other), metadata={"format": "something-else"})
    with pytest.raises(ModelFileError, match="not a deepcausalmmm model"):
        DeepCausalMMM.load(other)


def test_failed_save_keeps_previous_file(fitted, tmp_path, monkeypatch):
    path = fitted.save(tmp_path / "m.safetensors")
    before = path.read_bytes()
    import deepcausalmmm.io as io

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(io, "save_file", boom)
    with pytest.raises(OSError):
        fitted.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_paths_that_cannot_hold_a_file_are_refused_before_any_work(fitted, tmp_path, monkeypatch):
    """A directory, or a path under a file, is a DataError naming `path` (the report is not
    computed first); loading a directory says it is one. Nothing is written."""
    import deepcausalmmm.reporting as reporting

    def never(*a, **k):
        raise AssertionError("the report was computed for a path it cannot be written to")

    monkeypatch.setattr(reporting, "write_report", never)
    (tmp_path / "plain.txt").write_text("x")
    for call, example in ((fitted.save_report, "report.html"), (fitted.save, "model.safetensors")):
        with pytest.raises(DataError, match=rf"`path` '.*' is a directory; .*{example}"):
            call(tmp_path)
        with pytest.raises(DataError, match=r"`path` .* lies under '.*plain.txt', which is a file"):
            call(tmp_path / "plain.txt" / "out.file")
    with pytest.raises(ModelFileError, match="is a directory"):
        DeepCausalMMM.load(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.txt"]


def test_saved_files_get_plain_file_permissions(fitted, tmp_path):
    """Written through a temporary file, but readable as a plain new file would be (not mkstemp's 0600)."""
    old = os.umask(0o022)
    try:
        model = fitted.save(tmp_path / "m.safetensors")
        report = fitted.save_report(tmp_path / "r.html")
    finally:
        os.umask(old)
    for path in (model, report):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors", "r.html"]


def test_plots_describe_results(fitted):
    fig = fitted.plot_contributions()
    names = {t.name for t in fig.data}
    assert set(fitted.channels_) | {"baseline", "controls", "prediction", "actual"} <= names
    dag = fitted.plot_dag()
    assert "no edges" in dag.layout.title.text
    assert list(dag.data[0].text) == fitted.channels_


def test_backtest_refits_per_cutoff_and_reports_naive(small_sim):
    model = DeepCausalMMM(config={"training": {"epochs": 60, "polish_steps": 0}})
    res = model.backtest(small_sim.X, small_sim.y, small_sim.regions, small_sim.dates,
                         small_sim.control_frame, n_splits=2, horizon=8)
    assert list(res["train_weeks"]) == [44, 52]
    assert not hasattr(model, "net_")  # the estimator itself is not fitted by a backtest
    # the naive figures are the per-region last training value held flat
    y = small_sim.y.reshape(6, 60)
    naive = np.repeat(y[:, 51:52], 8, axis=1)
    wape = np.abs(y[:, 52:60] - naive).sum() / np.abs(y[:, 52:60]).sum() * 100
    assert res["naive_wape_pct"].iloc[1] == pytest.approx(wape)
    assert (res["wape_pct"] > 0).all() and res["r2"].notna().all()
    # The intervals of predict_interval, scored on the same holdout cells.
    assert res.attrs["level"] == 0.9
    assert res["coverage_pct"].between(0, 100).all() and (res["interval_width_pct"] > 0).all()
    with pytest.raises(DataError, match=r"`level` must be in \(0, 1\)"):
        model.backtest(small_sim.X, small_sim.y, small_sim.regions, small_sim.dates, level=90)
    with pytest.raises(DataError, match="leaves 0 training weeks"):
        model.backtest(small_sim.X, small_sim.y, small_sim.regions, small_sim.dates,
                       n_splits=6, horizon=10)
    for bad, name in (({"n_splits": 0}, "n_splits"), ({"horizon": 0}, "horizon"),
                      ({"horizon": 2.5}, "horizon")):
        with pytest.raises(DataError, match=rf"`{name}` must be a positive whole number"):
            model.backtest(small_sim.X, small_sim.y, small_sim.regions, small_sim.dates, **bad)


def test_region_without_kpi_weight_warns(small_sim):
    weight = np.where(small_sim.regions == small_sim.regions[0], 0.0, 1.0)
    with pytest.warns(UserWarning, match=r"region\(s\) \['geo_000'\] have no KPI with positive"):
        DeepCausalMMM(config={"training": {"epochs": 2, "polish_steps": 0}}).fit(
            small_sim.X, small_sim.y, regions=small_sim.regions, sample_weight=weight)


def test_time_varying_effectiveness_option(small_sim):
    cfg = {"training": {"epochs": 60, "polish_steps": 0}, "effectiveness": {"enabled": True, "low": 0.7, "high": 1.4}}
    model = DeepCausalMMM(config=cfg).fit(small_sim.X, small_sim.y, regions=small_sim.regions,
                                          dates=small_sim.dates, controls=small_sim.control_frame)
    batch = model._batch(model.config_, model.panel_, model.scaler_, model.knots_, np.arange(6),
                         model.panel_.media, model.panel_.control_values, np.arange(60, dtype=float))
    m = model._run_net(batch).effectiveness
    assert float(m.min()) >= 0.7 and float(m.max()) <= 1.4 and float(m.std()) > 0
    X0 = small_sim.X.copy()
    X0["channel_2"] = 0.0
    table = model.get_channel_contributions(X0, regions=small_sim.regions, dates=small_sim.dates,
                                            controls=small_sim.control_frame)
    assert (table["channel_2"] == 0).all()
    parts = table[model.channels_].sum(axis=1) + table["baseline"] + table["controls"]
    np.testing.assert_allclose(parts, table["prediction"], rtol=1e-5)


def test_seasonality_needs_a_full_cycle():
    from deepcausalmmm.estimator import season_cycles

    weekly = pd.date_range("2024-01-01", periods=104, freq="7D")
    assert season_cycles(weekly, 52.1775) == pytest.approx(104 * 7 / 365.2425, rel=1e-9)
    assert season_cycles(pd.Index(np.arange(26)), 52.0) == pytest.approx(0.5)
    fast = {"training": {"epochs": 2, "polish_steps": 0}, "carryover": {"context_scale": 0.5}}
    short = simulate_panel(3, 40, 2, seed=1)  # 40 weeks: under one year
    long = simulate_panel(3, 60, 2, seed=1)
    args = lambda s: (s.X, s.y, s.regions, s.dates)  # noqa: E731
    short_fit = DeepCausalMMM(config={"training": {"epochs": 30, "polish_steps": 0},
                                      "carryover": {"context_scale": 0.5}}).fit(*args(short))
    assert short_fit.config_.baseline.fourier_order == 0
    assert short_fit.config_.carryover.context_scale == 0.0
    # a fine trend takes the KPI's path: knots every baseline.short_knot_spacing (2) weeks
    assert short_fit.config_.baseline.knot_spacing == 2
    np.testing.assert_allclose(np.diff(short_fit.knots_)[1:], 2.0)
    # gates no longer move with the calendar: every week has the same gates
    with torch.no_grad():
        national, _ = short_fit.net_.context(
            torch.randn(40, short_fit.net_.context.gru.input_size), torch.zeros(1, 40, 0),
            regional=False)
        gates = short_fit.net_.carryover.gates(national)  # [S,T,C]
    torch.testing.assert_close(gates, gates[:, :1].expand_as(gates))
    # barely one cycle (55 weeks, 1.05 periods) is under the default 1.1: no yearly shape yet
    barely = DeepCausalMMM(config=fast).fit(*args(simulate_panel(3, 55, 2, seed=1)))
    assert barely.config_.baseline.fourier_order == 0 and barely.config_.baseline.knot_spacing == 2
    long_fit = DeepCausalMMM(config=fast).fit(*args(long))
    assert long_fit.config_.baseline.fourier_order == 2
    assert long_fit.config_.carryover.context_scale == 0.5
    assert long_fit.config_.baseline.knot_spacing == 8
    always = {**fast, "baseline": {"min_season_cycles": 0}}
    model = DeepCausalMMM(config=always).fit(*args(short))
    assert model.config_.baseline.fourier_order == 2
    assert model.config_.carryover.context_scale == 0.5
    # the fitted configuration is what a saved model reloads with
    assert DeepCausalMMM(config=fast).fit(*args(short)).net_.baseline.season.numel() == 0


def _no_anchor(model: DeepCausalMMM) -> DeepCausalMMM:
    """A shallow copy of a fitted model whose forecasts do not start from the last residual."""
    other = copy.copy(model)
    base = model.config_.baseline.model_copy(update={"forecast_anchor": False})
    other.config_ = model.config_.model_copy(update={"baseline": base})
    return other


def test_forecast_starts_from_last_residual_and_fades(tmp_path):
    """KPI with a persistent (AR(1), 0.8) disturbance: the forecast carries the last
    residual forward, fading by the fitted persistence; media parts never change."""
    sim = simulate_panel(8, 80, 3, seed=5)
    d = sim.data.copy()
    rng = np.random.default_rng(0)
    weeks = np.sort(d["date"].unique())
    scale = d.groupby("region")["kpi"].mean()
    for r in d["region"].unique():
        e, u = np.zeros(len(weeks)), rng.normal(0, 0.05, len(weeks))
        for t in range(1, len(weeks)):
            e[t] = 0.8 * e[t - 1] + u[t]
        rows = d["region"] == r
        d.loc[rows, "kpi"] += scale[r] * e[np.searchsorted(weeks, d.loc[rows, "date"].to_numpy())]
    cut = weeks[70]
    tr, ho = d[d["date"] < cut], d[d["date"] >= cut]
    model = DeepCausalMMM(config=FAST, random_state=0).fit(
        tr[sim.channels], tr["kpi"].to_numpy(), regions=tr["region"].to_numpy(),
        dates=tr["date"].to_numpy(), controls=tr[sim.controls])
    phi = model.residual_persistence_
    assert 0.3 < phi < 0.9  # the fit absorbs part of the disturbance; white noise dilutes the rest
    plain = _no_anchor(model)
    kw = dict(regions=ho["region"].to_numpy(), dates=ho["date"].to_numpy(), controls=ho[sim.controls])
    table = model.get_channel_contributions(ho[sim.channels], **kw)
    table0 = plain.get_channel_contributions(ho[sim.channels], **kw)
    # Known answer: offset = last fitted week's residual x phi^(weeks ahead), in the baseline only.
    last = tr[tr["date"] == weeks[69]]
    resid = pd.Series(last["kpi"].to_numpy() - model.predict(
        last[sim.channels], regions=last["region"].to_numpy(), dates=last["date"].to_numpy(),
        controls=last[sim.controls]), index=last["region"].to_numpy())
    ahead = np.searchsorted(weeks, ho["date"].to_numpy()) - 69
    expected = ho["region"].map(resid).to_numpy() * phi ** ahead
    np.testing.assert_allclose((table["baseline"] - table0["baseline"]).to_numpy(), expected, atol=1e-6)
    np.testing.assert_array_equal(table[sim.channels].to_numpy(), table0[sim.channels].to_numpy())
    np.testing.assert_array_equal(table["controls"].to_numpy(), table0["controls"].to_numpy())
    # It helps where the disturbance persists: the first forecast week's error falls.
    y = ho["kpi"].to_numpy()
    first = (ho["date"] == cut).to_numpy()
    err = np.abs(y - table["prediction"].to_numpy())[first].sum()
    err0 = np.abs(y - table0["prediction"].to_numpy())[first].sum()
    assert err < 0.95 * err0
    # Fitted rows are untouched, and a saved model forecasts the same.
    kw_tr = dict(regions=tr["region"].to_numpy(), dates=tr["date"].to_numpy(), controls=tr[sim.controls])
    np.testing.assert_array_equal(model.predict(tr[sim.channels], **kw_tr), plain.predict(tr[sim.channels], **kw_tr))
    loaded = DeepCausalMMM.load(model.save(tmp_path / "m.safetensors"))
    assert loaded.residual_persistence_ == phi
    np.testing.assert_array_equal(loaded.predict(ho[sim.channels], **kw), table["prediction"].to_numpy())


def test_predict_without_dates_warns_unless_it_replays_the_fit():
    sim = simulate_panel(3, 30, 2, seed=2)
    model = DeepCausalMMM(config=FAST).fit(sim.X, sim.y, regions=sim.regions)  # no dates: row order
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        replay = model.predict(sim.X, regions=sim.regions)  # every fitted week: a replay, no warning
    np.testing.assert_allclose(replay, model.get_channel_contributions()["prediction"].to_numpy())
    head = sim.data.groupby("region").head(10)
    with pytest.warns(UserWarning, match="not a forecast.*pass `dates`.*ends at 29"):
        first = model.predict(head[sim.channels], regions=head["region"].to_numpy())
    week = head.groupby("region").cumcount().to_numpy()
    # Without dates the rows are weeks 0-9; with dates 30-39 they are a forecast.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        inside = model.predict(head[sim.channels], regions=head["region"].to_numpy(), dates=week)
        ahead = model.predict(head[sim.channels], regions=head["region"].to_numpy(), dates=week + 30)
    np.testing.assert_array_equal(first, inside)
    assert not np.allclose(ahead, inside)


def test_default_threads_follow_the_cores_the_process_may_use(small_sim, monkeypatch):
    """``training.threads`` 0 trains on as many threads as the process's affinity mask allows
    (a container pinned to one core gets one thread, not the machine's count), and the
    caller's torch thread setting is restored afterwards."""
    import deepcausalmmm.estimator as est

    if not hasattr(est.os, "sched_getaffinity"):
        pytest.skip("this OS has no CPU affinity mask; available_cores falls back to os.cpu_count()")
    seen: list[int] = []

    def record(n: int) -> None:  # recorded, not applied: the suite's own threads stay as they are
        seen.append(n)

    before = torch.get_num_threads()
    monkeypatch.setattr(est.os, "sched_getaffinity", lambda pid: {0})
    monkeypatch.setattr(est.torch, "set_num_threads", record)
    assert est.available_cores() == 1
    DeepCausalMMM(config=FAST).fit(small_sim.X, small_sim.y, regions=small_sim.regions,
                                   dates=small_sim.dates)
    assert seen == [1, before]  # trained on 1 thread, then the caller's setting back
    seen.clear()
    DeepCausalMMM(config={**FAST, "training": {**FAST.get("training", {}), "threads": 2}}).fit(
        small_sim.X, small_sim.y, regions=small_sim.regions, dates=small_sim.dates)
    assert seen == [2, before]


def test_unexplained_weeks_find_an_event_the_model_was_not_told_about():
    from .conftest import FAST

    sim = simulate_panel(8, 80, 3, seed=6)
    weeks = np.tile(np.arange(80), 8)
    y = np.asarray(sim.y, dtype=float) * np.where(np.isin(weeks, [40, 41]), 1.3, 1.0)  # a two-week event
    model = DeepCausalMMM(config=FAST).fit(sim.X, y, regions=sim.regions, dates=sim.dates)
    found = model.get_unexplained_weeks()
    dates = np.unique(np.asarray(sim.dates))
    assert set(found.index[:2]) == set(dates[[40, 41]])
    assert (found["z"].iloc[:2] > 5).all() and (found["residual_pct"].iloc[:2] > 10).all()
    # with the event as a control the fit explains it
    control = pd.DataFrame({"event": np.isin(weeks, [40, 41]).astype(float)})
    told = DeepCausalMMM(config=FAST).fit(sim.X, y, regions=sim.regions, dates=sim.dates, controls=control)
    assert not set(told.get_unexplained_weeks().index) & set(dates[[40, 41]])
    with pytest.raises(DataError, match=r"`threshold` must be a positive number"):
        model.get_unexplained_weeks(threshold=0)


def test_interval_metrics_known_answer():
    from deepcausalmmm.analysis.backtest import interval_metrics

    y = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    lower = y - np.array([[0.5, -0.1, 1.0], [0.0, 1.0, 1.0]])  # the second cell sits above its interval
    upper = y + 0.5
    mask = np.array([[True, True, True], [True, True, False]])
    got = interval_metrics(y, lower, upper, mask)
    assert got["coverage_pct"] == pytest.approx(80.0)
    width = (upper - lower)[mask].sum()
    assert got["interval_width_pct"] == pytest.approx(width / 15.0 * 100)


def test_predict_interval_covers_simulated_holdout(tmp_path):
    """Forecast intervals on a simulated panel (6% noise): the predictions are predict's, the
    fit's own residuals fall inside at the nominal rate, the holdout close to it, a lower
    level gives nested narrower bands, and a saved model gives the same intervals."""
    sim = simulate_panel(20, 104, 4, seed=1)
    d = sim.data
    weeks = np.sort(d["date"].unique())
    tr, ho = d[d["date"] < weeks[84]], d[d["date"] >= weeks[84]]
    model = DeepCausalMMM(random_state=0).fit(
        tr[sim.channels], tr["kpi"].to_numpy(), regions=tr["region"].to_numpy(),
        dates=tr["date"].to_numpy(), controls=tr[sim.controls])
    kw = dict(regions=ho["region"].to_numpy(), dates=ho["date"].to_numpy(), controls=ho[sim.controls])
    band = model.predict_interval(ho[sim.channels], **kw, level=0.9)
    assert band.attrs["level"] == 0.9 and list(band.columns) == [
        "region", "date", "prediction", "lower", "upper", "horizon"]
    np.testing.assert_array_equal(band["prediction"], model.predict(ho[sim.channels], **kw))
    np.testing.assert_array_equal(band["region"], ho["region"])
    np.testing.assert_array_equal(band["horizon"], np.searchsorted(weeks, ho["date"]) - 83)
    assert (band["lower"] < band["prediction"]).all() and (band["upper"] > band["prediction"]).all()
    y = ho["kpi"].to_numpy()
    covered = ((y >= band["lower"]) & (y <= band["upper"])).mean()
    assert 0.75 <= covered <= 0.98  # in-sample errors: near, not exactly, the nominal 90%
    width = band["upper"] - band["lower"]
    assert width[band["horizon"] == 20].mean() > width[band["horizon"] == 1].mean()
    half = model.predict_interval(ho[sim.channels], **kw, level=0.5)
    assert (half["lower"] >= band["lower"]).all() and (half["upper"] <= band["upper"]).all()
    assert ((y >= half["lower"]) & (y <= half["upper"])).mean() < covered
    # Fitted rows: horizon 0, and past the burn-in weeks the residuals the quantiles were read
    # from fall inside at exactly the nominal rate (up to ties).
    kw_tr = dict(regions=tr["region"].to_numpy(), dates=tr["date"].to_numpy(), controls=tr[sim.controls])
    fit_band = model.predict_interval(tr[sim.channels], **kw_tr, level=0.9)
    assert (fit_band["horizon"] == 0).all()
    late = (np.searchsorted(weeks, tr["date"]) >= 6)
    y_tr = tr["kpi"].to_numpy()[late]
    inside = (y_tr >= fit_band["lower"].to_numpy()[late]) & (y_tr <= fit_band["upper"].to_numpy()[late])
    assert inside.mean() == pytest.approx(0.9, abs=0.003)
    loaded = DeepCausalMMM.load(model.save(tmp_path / "m.safetensors"))
    pd.testing.assert_frame_equal(loaded.predict_interval(ho[sim.channels], **kw, level=0.9), band)
    for bad in (0, 1, 1.5, -0.2, True, "0.9", float("nan")):
        with pytest.raises(DataError, match=r"`level` must be in \(0, 1\), e.g. 0.9"):
            model.predict_interval(ho[sim.channels], **kw, level=bad)
    with pytest.raises(NotFittedError):
        DeepCausalMMM().predict_interval(ho[sim.channels], **kw)


def test_unnamed_arrays_predict_in_fitted_column_order(fitted, small_sim):
    """A plain array for X (and controls) is read in the fitted column order."""
    rows = slice(0, 12)
    X = small_sim.X.iloc[rows]
    kw = {"regions": small_sim.regions[rows], "dates": small_sim.dates[rows]}
    ctrl = small_sim.control_frame.iloc[rows][fitted.controls_]
    by_name = fitted.predict(X, controls=ctrl, **kw)
    np.testing.assert_array_equal(fitted.predict(X.to_numpy(), controls=ctrl.to_numpy(), **kw), by_name)
    with pytest.raises(DataError, match=r"`X` has 2 column\(s\) but the model was fitted on 3 channels"):
        fitted.predict(X.to_numpy()[:, :2], controls=ctrl, **kw)
    with pytest.raises(DataError, match=r"`controls` has 1 column\(s\) but the model was fitted on 2 controls"):
        fitted.predict(X, controls=ctrl.to_numpy()[:, :1], **kw)


def test_fit_frame_refuses_the_target_as_an_input(small_sim):
    with pytest.raises(DataError, match="the target column 'kpi' is also among the channels"):
        DeepCausalMMM().fit_frame(small_sim.data, target="kpi", channels=["channel_1", "kpi"],
                                  date="date", region="region")


def test_verbose_fit_reports_its_phases(small_sim, capsys):
    model = DeepCausalMMM(config=FAST, verbose=True).fit(small_sim.X, small_sim.y, regions=small_sim.regions,
                                                          dates=small_sim.dates)
    out = capsys.readouterr().out
    assert "panel: 6 regions x 60 weeks x 3 channels, 0 controls; device cpu" in out
    assert "channel graph (notears):" in out and "Adam epoch     0  loss" in out
    assert "validation" not in out  # no weeks held out by default, so no validation loss to show
    h = model.history_
    assert f"fit: {h.epochs_run} + {h.refit_epochs} Adam epochs, {h.polish_evals} polish evaluations" in out
    DeepCausalMMM(config=FAST).fit(small_sim.X, small_sim.y, regions=small_sim.regions, dates=small_sim.dates)
    assert capsys.readouterr().out == ""  # quiet by default


def test_score_is_r2_of_predict(fitted, small_sim):
    from sklearn.metrics import r2_score

    kw = dict(regions=small_sim.regions, dates=small_sim.dates, controls=small_sim.control_frame)
    pred = fitted.predict(small_sim.X, **kw)
    assert fitted.score(small_sim.X, small_sim.y, **kw) == pytest.approx(r2_score(small_sim.y, pred), rel=1e-12)
    with pytest.raises(DataError, match=r"`y` has 10 values but `X` has"):
        fitted.score(small_sim.X, np.asarray(small_sim.y)[:10], **kw)
    y = np.asarray(small_sim.y, dtype=float).copy()
    y[3] = np.nan
    with pytest.raises(DataError, match=r"`y` has 1 NaN/infinite value\(s\); score only rows with a measured KPI"):
        fitted.score(small_sim.X, y, **kw)
    with pytest.raises(DataError, match=r"`y` must be numeric, .* found dtype object; convert it with pd.to_numeric"):
        fitted.score(small_sim.X, np.array(["n/a"] * len(y), dtype=object), **kw)


def _daily_panel(seed: int = 0, R: int = 6, T: int = 140):
    """Daily rows whose baseline has a weekday pattern (weekends up 30-35%) and a channel bought
    mostly at weekends; true contributions per channel summed over the panel."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2024-01-01", periods=T, freq="D")  # a Monday
    weekday = np.array([0.0, 0.02, 0.04, 0.06, 0.1, 0.3, 0.35])
    weekday -= weekday.mean()
    weekend = np.asarray(dates.day_of_week >= 5)
    frames, truth = [], {"a": 0.0, "b": 0.0}
    for r in range(R):
        size = np.exp(rng.normal(0, 0.5))
        a = np.exp(rng.normal(0, 0.3, T))  # always on
        b = np.where(weekend, 2.5, 0.5) * np.exp(rng.normal(0, 0.3, T))  # mostly at weekends
        kpi = size * 1000 * (1 + weekday[dates.day_of_week] + 0.15 * a + 0.15 * b) * (1 + rng.normal(0, 0.02, T))
        frames.append(pd.DataFrame({"region": f"r{r}", "date": dates, "a": 100 * a, "b": 100 * b, "kpi": kpi}))
        truth["a"] += float((size * 150 * a).sum())
        truth["b"] += float((size * 150 * b).sum())
    return pd.concat(frames, ignore_index=True), truth, weekday


def test_day_of_week_pattern_in_daily_baseline(tmp_path):
    df, truth, weekday = _daily_panel()
    fits = {}
    for setting in ("auto", "off"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the sub-weekly settings warning
            fits[setting] = DeepCausalMMM(config={**FAST, "baseline": {"day_of_week": setting}}).fit(
                df, "kpi", regions="region", dates="date")
    on, off = fits["auto"], fits["off"]
    assert on.config_.baseline.day_of_week == "on" and off.config_.baseline.day_of_week == "off"
    base = on.get_channel_contributions()["baseline"].to_numpy().reshape(6, -1).mean(axis=0)  # [T]
    profile = pd.Series(base).groupby(np.arange(len(base)) % 7).mean()  # Monday first
    assert np.corrcoef(profile, weekday)[0, 1] > 0.95  # the baseline carries the weekday pattern
    ratio = {k: m.get_channel_contributions()["b"].sum() / truth["b"] for k, m in fits.items()}
    assert abs(ratio["auto"] - 1) < 0.5  # the weekend channel near its truth...
    assert ratio["off"] > 2  # ...which, without the pattern, takes the weekends' lift
    # saved and loaded, the daily model predicts the same
    loaded = DeepCausalMMM.load(on.save(tmp_path / "daily.safetensors"))
    rows = df.drop(columns="kpi")
    np.testing.assert_allclose(loaded.predict(rows, regions="region", dates="date"),
                               on.predict(rows, regions="region", dates="date"), rtol=1e-6)
    # on weekly (or undated) rows the setting cannot apply
    weekly = df[df["date"].dt.day_of_week == 0]
    with pytest.raises(ConfigError, match=r"baseline.day_of_week is 'on' but the rows have dates 7 days apart"):
        DeepCausalMMM(config={**FAST, "baseline": {"day_of_week": "on"}}).fit(
            weekly, "kpi", regions="region", dates="date")
    auto_weekly = DeepCausalMMM(config={"training": {"epochs": 2, "polish_steps": 0}}).fit(
        weekly, "kpi", regions="region", dates="date")
    assert auto_weekly.config_.baseline.day_of_week == "off"
