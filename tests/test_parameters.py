"""Fitted channel parameters: they rebuild the contributions, and the carryover matches its gates."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch


def test_parameters_rebuild_every_contribution(fitted, small_sim):
    """coefficient x multiplier x Hill(carried activity) x KPI scale is the model's contribution."""
    per_region = fitted.get_channel_parameters(by_region=True)
    weights = fitted.get_carryover()
    table = fitted.get_channel_contributions()
    regions = np.asarray(small_sim.regions)
    for region in np.unique(regions)[:3]:
        for channel in fitted.channels_:
            p = per_region.loc[(region, channel)]
            x = small_sim.X[channel].to_numpy()[regions == region] / p["typical_activity"]
            carried = np.convolve(x, weights[channel].to_numpy())[: len(x)]  # sum_l w_l x_(t-l)
            k = p["half_saturation_activity"] / p["typical_activity"]
            rebuilt = p["kpi_scale"] * p["coefficient"] * carried ** p["slope"] / (carried ** p["slope"] + k ** p["slope"])
            fitted_part = table.xs(region, level=0)[channel].to_numpy()
            np.testing.assert_allclose(rebuilt, fitted_part, rtol=1e-4, atol=1e-6 * np.abs(fitted_part).max())


def test_summary_agrees_with_the_weights_and_regions(fitted):
    table = fitted.get_channel_parameters()
    weights = fitted.get_carryover()
    per_region = fitted.get_channel_parameters(by_region=True)
    lag = weights.index.to_numpy()
    for c in fitted.channels_:
        w = weights[c].to_numpy()
        row = table.loc[c]
        assert row["carried_share"] == pytest.approx(w.sum())
        assert row["mean_lag"] == pytest.approx((w * lag).sum() / w.sum())
        assert row["peak_lag"] == int(np.argmax(w))
        assert np.cumsum(w)[int(row["weeks_to_90pct"])] >= 0.9 * w.sum() > (
            np.cumsum(w)[int(row["weeks_to_90pct"]) - 1] if row["weeks_to_90pct"] > 0 else -1)
        h = row["carried_share"] ** row["slope"]
        assert row["saturation_at_typical"] == pytest.approx(h / (h + row["half_saturation"] ** row["slope"]))

        def hill_at(x, row=row):  # the curve at steady activity x times typical
            v = (x * row["carried_share"]) ** row["slope"]
            return v / (v + row["half_saturation"] ** row["slope"])

        eps = 1e-6  # elasticity: d log Hill / d log activity at typical activity, by central difference
        numeric = (np.log(hill_at(1 + eps)) - np.log(hill_at(1 - eps))) / (np.log(1 + eps) - np.log(1 - eps))
        assert row["elasticity_at_typical"] == pytest.approx(numeric, rel=1e-5)
        mult = per_region.xs(c, level="channel")["region_multiplier"]
        assert row["region_multiplier_min"] == pytest.approx(mult.min())
        assert row["region_multiplier_max"] == pytest.approx(mult.max())
        np.testing.assert_allclose(per_region.xs(c, level="channel")["coefficient"], row["coefficient"] * mult)
    assert 0 < table.attrs["coefficient_bound"]
    assert (table["coefficient"] <= table.attrs["coefficient_bound"] + 1e-12).all()
    assert list(table.columns[table.columns.str.startswith("decay_stage_")]) == ["decay_stage_1", "decay_stage_2"]


def test_carryover_weights_are_the_two_stage_geometric_kernel(fitted):
    """Known answer: constant gates g1, g2 give w_l = (1-g1)(1-g2) sum_i g1^i g2^(l-i)."""
    model = copy.deepcopy(fitted)
    co = model.net_.carryover
    g = np.array([0.6, 0.3])  # stage gates for channel 0
    with torch.no_grad():
        p = (g - co.gate_min) / (co.gate_max - co.gate_min)
        co.gate_logit[:, 0] = torch.tensor(np.log(p / (1 - p)), dtype=co.gate_logit.dtype)
    w = model.get_carryover()[model.channels_[0]].to_numpy()
    lag = np.arange(len(w))
    expected = np.array([(1 - g[0]) * (1 - g[1]) * sum(g[0] ** i * g[1] ** (n - i) for i in range(n + 1))
                         for n in lag])
    np.testing.assert_allclose(w, expected, rtol=1e-5, atol=1e-7)
    table = model.get_channel_parameters()
    np.testing.assert_allclose(table.iloc[0][["decay_stage_1", "decay_stage_2"]].to_numpy(float), g, rtol=1e-5)
    # untruncated, the mean lag of two geometric stages is g1/(1-g1) + g2/(1-g2); the cut at max_lag
    # (26 weeks here) removes a negligible tail
    assert table.iloc[0]["mean_lag"] == pytest.approx(0.6 / 0.4 + 0.3 / 0.7, rel=1e-3)


def test_carryover_plot_draws_the_weights(fitted):
    fig = fitted.plot_carryover()
    weights = fitted.get_carryover()
    assert [t.name for t in fig.data] == fitted.channels_
    for trace in fig.data:
        np.testing.assert_allclose(trace.y, weights[trace.name].to_numpy())
        assert list(trace.x) == list(weights.index)
