"""Region-bootstrap intervals: they widen with noise, are ordered, and reject bad arguments."""

from __future__ import annotations

import numpy as np
import pytest

from deepcausalmmm import DeepCausalMMM
from deepcausalmmm.datasets import simulate_panel
from deepcausalmmm.exceptions import DataError

from .conftest import FAST


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


@pytest.mark.parametrize("kwargs, message", [({"n_boot": 1}, "at least 2"), ({"level": 1.5}, r"in \(0, 1\)")])
def test_interval_arguments(fitted, kwargs, message):
    with pytest.raises(DataError, match=message):
        fitted.get_effect_intervals(**kwargs)


def test_a_national_series_has_no_region_bootstrap(tmp_path, capsys):
    """One region: every replicate would be the same fit, so zero-width intervals; refused up front."""
    sim = simulate_panel(1, 60, 2, seed=3)
    model = DeepCausalMMM(config=FAST).fit(sim.X, sim.y, dates=sim.dates)
    for call in (lambda: model.get_effect_intervals(n_boot=3), lambda: model.optimize_budget(n_boot=3)):
        with pytest.raises(DataError, match=r"`n_boot`: .* this fit has 1 \(a national series\)"):
            call()
    assert model.optimize_budget().attrs["converged"]  # without n_boot the plan still works
    from deepcausalmmm.cli import main

    path = tmp_path / "national.csv"
    sim.data.drop(columns="region").to_csv(path, index=False)
    out = tmp_path / "o"
    assert main(["fit", str(path), "--target", "kpi", "--channels", "channel_1,channel_2", "--date", "date",
                 "--n-boot", "2", "--out", str(out)]) == 2
    assert "--n-boot 2 needs regional data" in capsys.readouterr().err
    assert not out.exists()  # refused before fitting: no partial outputs
