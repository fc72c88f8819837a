"""Forecast intervals calibrated out of sample (``calibrate_intervals``): rolling-origin refits on
the fitted weeks give each holdout cell the factor its interval needed; the intervals of later
forecasts are scaled by their conformal quantile, saved with the model and cleared by a refit."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pandas as pd
import pytest

from deepcausalmmm import DataError, DeepCausalMMM, NotFittedError
from deepcausalmmm.datasets import simulate_panel


@pytest.fixture(scope="module")
def split():
    """5 regions x 83 weeks; the model fitted on the first 70, the last 13 held out."""
    sim = simulate_panel(5, 83, 3, seed=0)
    d = sim.data
    dates = pd.to_datetime(d["date"])
    cut = sorted(dates.unique())[70]
    train, test = d[dates < cut], d[dates >= cut]
    model = DeepCausalMMM(random_state=0).fit(train, "kpi", regions="region", dates="date", controls=sim.controls)
    plain = copy.deepcopy(model)
    table = model.calibrate_intervals()
    return sim, train, test, model, plain, table


def _rows(frame: pd.DataFrame) -> dict:
    return {"X": frame.drop(columns="kpi"), "regions": "region", "dates": "date", "controls": ["price", "promo"]}


def test_calibration_table_and_its_guarantee(split):
    _, _, _, model, _, table = split
    assert list(table.columns) == ["cutoff", "train_weeks", "cells", "coverage_pct", "calibrated_coverage_pct"]
    assert table["train_weeks"].tolist() == [31, 44, 57]  # 3 cutoffs, 13 weeks each, ending at week 70
    a = table.attrs
    assert a == model.interval_calibration_
    assert a["n_cells"] == table["cells"].sum() == 3 * 13 * 5
    assert (a["level"], a["n_splits"], a["horizon"]) == (0.9, 3, 13)
    # the conformal quantile: at least `level` of the calibration cells inside once scaled
    assert a["calibrated_coverage_pct"] >= 90.0
    assert a["scale"] == max(1.0, a["scale_needed"])
    # on this panel the in-sample intervals held too few holdout cells (measured 62.6%)
    assert a["coverage_pct"] < 80.0 and a["scale"] > 1.2


def test_forecast_rows_scaled_and_fitted_rows_kept(split):
    _, train, test, model, plain, table = split
    scale = table.attrs["scale"]
    ahead, before = model.predict_interval(**_rows(test)), plain.predict_interval(**_rows(test))
    assert ahead.attrs["calibrated"] and not before.attrs["calibrated"]
    np.testing.assert_allclose(ahead["prediction"], before["prediction"])
    np.testing.assert_allclose(ahead["upper"] - ahead["prediction"], scale * (before["upper"] - before["prediction"]),
                               rtol=1e-9)
    np.testing.assert_allclose(ahead["prediction"] - ahead["lower"], scale * (before["prediction"] - before["lower"]),
                               rtol=1e-9)
    replay = model.predict_interval(**_rows(train))  # the fitted weeks: their own residual bands
    pd.testing.assert_frame_equal(replay, plain.predict_interval(**_rows(train)), check_like=True, check_exact=False)
    # out of sample, the calibrated intervals hold more of the 13 held-out weeks (measured 80.0% -> 100%)
    y = test["kpi"].to_numpy()
    held = [float(((y >= b["lower"]) & (y <= b["upper"])).mean()) for b in (before, ahead)]
    assert held[1] > held[0] and held[1] >= 0.9


def test_other_levels_saving_and_refitting(split, tmp_path):
    sim, train, test, model, plain, table = split
    with pytest.warns(UserWarning, match=r"calibrated at level 0.9 \(calibrate_intervals\); at level 0.8 they are "
                                         r"the fit's own, uncalibrated"):
        other = model.predict_interval(**_rows(test), level=0.8)
    assert not other.attrs["calibrated"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning where no row is a forecast
        model.predict_interval(**_rows(train), level=0.8)
    pd.testing.assert_frame_equal(other, plain.predict_interval(**_rows(test), level=0.8))
    loaded = DeepCausalMMM.load(model.save(tmp_path / "m.safetensors"))
    assert loaded.interval_calibration_ == model.interval_calibration_
    pd.testing.assert_frame_equal(loaded.predict_interval(**_rows(test)), model.predict_interval(**_rows(test)),
                                  check_exact=False, rtol=1e-6)
    refit = copy.deepcopy(model).fit(train, "kpi", regions="region", dates="date", controls=sim.controls)
    assert refit.interval_calibration_ is None


def test_narrowing_and_errors(split):
    _, _, _, model, plain, table = split
    narrow = copy.deepcopy(plain).calibrate_intervals(narrow=True)
    assert narrow.attrs["scale"] == narrow.attrs["scale_needed"] == table.attrs["scale_needed"]
    with pytest.raises(NotFittedError):
        DeepCausalMMM().calibrate_intervals()
    fresh = copy.deepcopy(plain)
    for kwargs, message in (({"level": 1.2}, r"`level`"), ({"narrow": "yes"}, r"`narrow` must be True or False"),
                            ({"n_splits": 8}, r"`n_splits`=8 with `horizon`=13 leaves -?\d+ training weeks")):
        with pytest.raises(DataError, match=message):
            fresh.calibrate_intervals(**kwargs)
    assert fresh.interval_calibration_ is None  # refused: nothing set


def test_fit_command_calibrates_and_predict_uses_it(split, tmp_path, capsys):
    from deepcausalmmm.cli import main

    sim, train, test, model, _, table = split
    train.to_csv(tmp_path / "train.csv", index=False)
    test.drop(columns="kpi").to_csv(tmp_path / "ahead.csv", index=False)
    args = ["fit", str(tmp_path / "train.csv"), "--target", "kpi", "--channels", "channel_*", "--controls",
            "price,promo", "--date", "date", "--region", "region"]
    assert main([*args, "--calibrate-intervals", "3", "--out", str(tmp_path / "run")]) == 0
    printed = capsys.readouterr().out
    cal = table.attrs
    assert (f"forecast intervals calibrated on 3 rolling cutoffs ({cal['n_cells']} holdout cells, 13 weeks ahead): "
            f"90% intervals held {cal['coverage_pct']:.1f}% there, so predict scales them by {cal['scale']:.3g}") in printed
    saved = DeepCausalMMM.load(tmp_path / "run" / "model.safetensors")
    assert saved.interval_calibration_ == pytest.approx(cal)
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "run" / "model.safetensors"), str(tmp_path / "ahead.csv"), "--date", "date",
                 "--region", "region", "--out", str(tmp_path / "p.csv")]) == 0
    assert f"with 90% intervals in lower/upper, calibrated out of sample (x{cal['scale']:.3g}" in capsys.readouterr().out
    written = pd.read_csv(tmp_path / "p.csv")
    api = model.predict_interval(**_rows(test))
    np.testing.assert_allclose(written["upper"], api["upper"], rtol=1e-6)
    assert main([*args, "--calibrate-intervals", "-1", "--out", str(tmp_path / "bad")]) == 2
    assert "--calibrate-intervals must be 0 (off) or a number of rolling cutoffs" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
