"""DESIGN.md's seven invariants, each checked on a fitted model."""

import numpy as np
import pandas as pd
import pytest
import torch

from deepcausalmmm import DeepCausalMMM
from deepcausalmmm.datasets import simulate_panel

from .conftest import FAST


def contributions_for(model, sim, X):
    return model.get_channel_contributions(X, regions=sim.regions, dates=sim.dates,
                                           controls=sim.control_frame)


def test_1_additive_decomposition(fitted, small_sim):
    table = fitted.get_channel_contributions()
    parts = table[fitted.channels_].sum(axis=1) + table["baseline"] + table["controls"]
    np.testing.assert_allclose(parts, table["prediction"], rtol=1e-5)
    pred = fitted.predict(small_sim.X, regions=small_sim.regions, dates=small_sim.dates,
                          controls=small_sim.control_frame)
    np.testing.assert_allclose(pred, table["prediction"].to_numpy(), rtol=1e-5)
    assert list(table.index.names) == ["region", "date"]
    assert len(table) == len(small_sim.data)


def test_2_zero_in_zero_out_counterfactual(fitted, small_sim):
    X0 = small_sim.X.copy()
    X0["channel_2"] = 0.0
    table = contributions_for(fitted, small_sim, X0)
    assert (table["channel_2"] == 0).all()
    # the other channels are untouched by the counterfactual
    base = fitted.get_channel_contributions()
    np.testing.assert_array_equal(table["channel_1"].to_numpy(), base["channel_1"].to_numpy())


def test_2_all_zero_channel_fits_to_zero():
    sim = simulate_panel(4, 40, 3, seed=5, zero_channels=(1,))
    with pytest.warns(UserWarning, match="zero in every row"):
        model = DeepCausalMMM(config=FAST).fit(sim.X, sim.y, regions=sim.regions, dates=sim.dates)
    assert (model.get_channel_contributions()["channel_2"] == 0).all()


def test_3_nonnegative_and_monotone_in_spend(fitted, small_sim):
    base = fitted.get_channel_contributions()
    assert (base[fitted.channels_].to_numpy() >= 0).all()
    X1 = small_sim.X.copy()
    X1["channel_1"] *= 1.5
    more = contributions_for(fitted, small_sim, X1)
    assert (more["channel_1"].to_numpy() >= base["channel_1"].to_numpy() - 1e-9).all()
    assert more["channel_1"].sum() > base["channel_1"].sum()


def test_4_carryover_is_causal_and_finite(fitted, small_sim):
    assert "_filter_cache" not in fitted.net_.carryover.__dict__  # training's media released
    data = small_sim.data
    week = sorted(data["date"].unique())[20]
    X1 = small_sim.X.copy()
    X1.loc[(data["date"] == week).to_numpy(), "channel_1"] += 5 * small_sim.X["channel_1"].mean()
    base = fitted.get_channel_contributions()["channel_1"].to_numpy()
    bumped = contributions_for(fitted, small_sim, X1)["channel_1"].to_numpy()
    dates = data["date"].to_numpy()
    before = dates < week
    np.testing.assert_array_equal(bumped[before], base[before])  # never backwards
    assert (bumped[dates == week] > base[dates == week]).all()
    horizon = fitted.config_.carryover.max_lag
    far = dates > week + pd.Timedelta(weeks=horizon)
    np.testing.assert_allclose(bumped[far], base[far], rtol=1e-6)  # finite horizon


def test_5_scalers_use_training_rows_only(small_sim):
    data = small_sim.data
    cut = sorted(data["date"].unique())[45]
    train = data[data["date"] < cut]
    model = DeepCausalMMM(config=FAST).fit(
        train[small_sim.channels], train["kpi"], regions=train["region"], dates=train["date"],
        controls=train[small_sim.controls])
    expected = train.groupby("region", sort=False)["kpi"].mean().to_numpy()
    np.testing.assert_allclose(model.scaler_.y_scale, expected)
    # predicting the holdout (with wild values) changes nothing fitted
    hold = data[data["date"] >= cut].copy()
    state = {k: v.clone() for k, v in model.net_.state_dict().items()}
    hold[small_sim.channels] *= 100
    model.predict(hold[small_sim.channels], regions=hold["region"], dates=hold["date"],
                  controls=hold[small_sim.controls])
    np.testing.assert_allclose(model.scaler_.y_scale, expected)
    assert all(torch.equal(state[k], v) for k, v in model.net_.state_dict().items())


def test_6_bitwise_determinism(small_sim):
    def run():
        return DeepCausalMMM(config={"training": {"epochs": 40, "polish_steps": 0}}, random_state=3).fit(
            small_sim.X, small_sim.y, regions=small_sim.regions, dates=small_sim.dates,
            controls=small_sim.control_frame).get_channel_contributions()

    a, b = run(), run()
    assert a.equals(b)


def test_6_default_fit_does_not_depend_on_the_seed(small_sim):
    """With the defaults (constant carryover gates, effectiveness off) no randomly initialised
    part reaches the prediction, so random_state cannot change the fit; with calendar-moved
    gates (context_scale 0.5) the GRU's initialisation does."""
    def contributions(seed, config):
        cfg = {"training": {"epochs": 40, "polish_steps": 0}, **config}
        return DeepCausalMMM(config=cfg, random_state=seed).fit(
            small_sim.X, small_sim.y, regions=small_sim.regions, dates=small_sim.dates,
            controls=small_sim.control_frame).get_channel_contributions()

    assert contributions(0, {}).equals(contributions(1, {}))
    moved = {"carryover": {"context_scale": 0.5}}
    assert not contributions(0, moved).equals(contributions(1, moved))


def test_7_contributions_only_from_own_channel(fitted, small_sim):
    X1 = small_sim.X.copy()
    X1["channel_3"] = X1["channel_3"][::-1].to_numpy() * 3  # scramble one channel
    base = fitted.get_channel_contributions()
    other = contributions_for(fitted, small_sim, X1)
    for c in ["channel_1", "channel_2"]:
        np.testing.assert_array_equal(other[c].to_numpy(), base[c].to_numpy())
    assert not np.allclose(other["channel_3"], base["channel_3"])


def test_row_order_and_label_types_do_not_change_the_fit(small_sim):
    """The same panel given as shuffled long rows, with regions under other names, fits the
    same model to the last bit: the grid is built from the labels, sorted, not from row order
    (the regions' order had set float sums and the graph's region bootstrap, so shuffled rows
    moved total effects by up to 0.9% and an edge's direction support from 0.805 to 0.835);
    tables and predictions come back keyed by the caller's labels and in the caller's row
    order."""
    cfg = {"training": {"epochs": 40, "polish_steps": 0}}
    kw = dict(regions=small_sim.regions, dates=small_sim.dates, controls=small_sim.control_frame)
    a = DeepCausalMMM(config=cfg).fit(small_sim.X, small_sim.y, **kw)
    perm = np.random.default_rng(0).permutation(len(small_sim.y))
    names = {r: f"Region {r.upper()}" for r in np.unique(small_sim.regions)}
    shuffled = dict(regions=np.array([names[r] for r in small_sim.regions])[perm],
                    dates=pd.DatetimeIndex(small_sim.dates)[perm],
                    controls=small_sim.control_frame.iloc[perm].reset_index(drop=True))
    X = small_sim.X.iloc[perm].reset_index(drop=True)
    b = DeepCausalMMM(config=cfg).fit(X, small_sim.y[perm], **shuffled)
    assert b.regions_ == sorted(names.values()) and a.regions_ == sorted(names)
    ca = a.get_channel_contributions()
    cb = b.get_channel_contributions()
    assert list(cb.index.get_level_values(0)[:3]) == list(shuffled["regions"][:3])  # caller's rows
    cb = cb.rename(index={v: k for k, v in names.items()}, level=0).loc[ca.index]
    np.testing.assert_array_equal(cb.to_numpy(), ca.to_numpy())
    np.testing.assert_array_equal(b.predict(X, **shuffled), a.predict(small_sim.X, **kw)[perm])
    pd.testing.assert_frame_equal(b.get_channel_effects(), a.get_channel_effects(), check_exact=True)
    pd.testing.assert_frame_equal(b.get_dag_edges(), a.get_dag_edges(), check_exact=True)


def test_unsortable_region_labels_keep_their_order():
    """Labels of mixed types do not sort; the grid then keeps their first appearance. Text
    labels sort with their numbers read as numbers."""
    from deepcausalmmm.data.panel import build_panel

    X = pd.DataFrame({"tv": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]})
    panel = build_panel(X, np.arange(6.0), regions=pd.Series(["north", "north", 7, 7, 2, 2]),
                        dates=[0, 1, 0, 1, 0, 1])
    assert panel.regions == ["north", 7, 2]
    panel = build_panel(X, np.arange(6.0), regions=["b", "b", "c", "c", "a", "a"],
                        dates=[0, 1, 0, 1, 0, 1])
    assert panel.regions == ["a", "b", "c"]
    np.testing.assert_array_equal(panel.y, [[4.0, 5.0], [0.0, 1.0], [2.0, 3.0]])
    panel = build_panel(X, np.arange(6.0), regions=["DMA 10", "DMA 10", "DMA 2", "DMA 2", "DMA 1", "DMA 1"],
                        dates=[0, 1, 0, 1, 0, 1])
    assert panel.regions == ["DMA 1", "DMA 2", "DMA 10"]  # text labels in natural order


def test_units_do_not_change_the_fit():
    """KPI in dollars or millions, each channel in its own unit (impressions, thousands of
    spend) and controls shifted and rescaled: the same model, with contributions in the
    KPI's unit. Shares, the learned graph and the interventions match; ROI moves with the
    units exactly (KPI unit over each channel's unit)."""
    sim = simulate_panel(12, 80, 3, seed=5, graph=[("channel_1", "channel_2", 0.6)])
    kw = dict(regions=sim.regions, dates=sim.dates)
    a = DeepCausalMMM(config=FAST).fit(sim.X, sim.y, controls=sim.control_frame, **kw)
    unit = np.array([1e-3, 1.0, 1e4])
    b = DeepCausalMMM(config=FAST).fit(sim.X * unit, sim.y * 1e6,
                                       controls=sim.control_frame * 7.0 + 3.0, **kw)
    assert (a.graph_.to_numpy() != 0).any()  # the edge is learned, so the graph is compared
    pd.testing.assert_frame_equal(b.graph_, a.graph_, rtol=1e-4, atol=1e-6)
    ca, cb = a.get_channel_contributions(), b.get_channel_contributions()
    np.testing.assert_allclose(cb.to_numpy() / 1e6, ca.to_numpy(), rtol=1e-4, atol=1e-4)
    ea, eb = a.get_channel_effects(), b.get_channel_effects()
    np.testing.assert_allclose(eb["total_share"], ea["total_share"], rtol=1e-4, atol=1e-6)
    for col in ["total", "direct", "mediated"]:
        np.testing.assert_allclose(eb[col] / 1e6, ea[col], rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(eb["roi"], ea["roi"] * 1e6 / unit, rtol=1e-4)
