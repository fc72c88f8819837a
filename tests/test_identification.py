"""get_identification: which channels' levels the data observe (known answers)."""

from __future__ import annotations

import numpy as np
import pytest

from deepcausalmmm.analysis.identification import identification_table
from deepcausalmmm.exceptions import DataError


def test_identification_table_known_answers():
    R, T = 2, 10
    media = np.zeros((R, T, 5))
    media[:, :, 0] = np.tile([1.0, 1.25], T // 2) * [[1.0], [5.0]]  # always on: floor 0.89, no dark weeks
    media[:, :, 4] = [[1.0] * T, [5.0] * T]  # the same every week of each region: nothing to see
    media[:, :, 1] = np.tile([0.0, 2.0], T // 2)  # on/off: half the weeks dark
    media[0, :, 2] = np.r_[np.full(8, 1.0), 0.0, 1.0]  # one dark week in region 0; region 1 never active
    observed = np.ones((R, T), dtype=bool)
    observed[1, :2] = False  # unobserved cells do not count
    media[1, :2, 0] = 1000.0  # (they would otherwise move region 1's mean and floor)
    out = identification_table(media, observed, ["a", "b", "c", "d", "e"], threshold=0.3, lift_tested=["b"])
    assert out.loc["a", "activity_floor"] == pytest.approx(1 / 1.125)
    assert out.loc["a", "dark_share"] == 0.0
    assert out.loc["a", "level"] == "extrapolated"
    assert out.loc["b", "activity_floor"] == 0.0
    assert out.loc["b", "dark_share"] == pytest.approx(9 / 18)  # region 1: 4 of 8 observed weeks dark
    assert out.loc["b", "level"] == "observed"
    # channel c: region 1 inactive, left out; region 0 has 1 dark week of 10 -> floor at the 10th pct
    assert out.loc["c", "dark_share"] == pytest.approx(0.1)
    assert out.loc["c", "activity_floor"] == pytest.approx(np.quantile(np.r_[np.full(9, 10 / 9), 0.0], 0.1))
    assert out.loc["d", "level"] == "no activity" and np.isnan(out.loc["d", "activity_floor"])
    assert out.loc["e", "level"] == "no variation" and out.loc["e", "activity_floor"] == 1.0
    assert out["lift_tested"].tolist() == [False, True, False, False, False]


def test_always_on_channels_are_flagged_on_the_simulator(fitted):
    # simulate_panel: odd channel indices are flighted (national on/off blocks), even ones always on
    ident = fitted.get_identification()
    assert ident["level"].to_dict() == {
        "channel_1": "extrapolated", "channel_2": "observed", "channel_3": "extrapolated"}
    assert ident.loc["channel_2", "dark_share"] > 0.3 > ident.loc["channel_1", "dark_share"]
    assert not ident["lift_tested"].any()
    assert not ident["bought_nationally"].any()  # every channel varies by region and week
    # the always-on floors sit near half the typical activity (log-normal noise, sd 0.35)
    assert 0.3 < ident.loc["channel_1", "activity_floor"] < 0.8
    loose = fitted.get_identification(threshold=0.9)
    assert (loose["level"] == "observed").all()


@pytest.mark.parametrize("bad", [0, -0.1, 1.5, "0.3", True, None, float("nan")])
def test_identification_threshold_errors(fitted, bad):
    with pytest.raises(DataError, match=r"`threshold` must be a number in \(0, 1\].*found"):
        fitted.get_identification(threshold=bad)


def test_identification_accepts_numpy_numbers(fitted):
    assert fitted.get_identification(np.float32(0.3)).equals(fitted.get_identification(0.3))
