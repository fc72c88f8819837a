"""The training loop on its own (a two-parameter net) and the estimator's two phases."""

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from deepcausalmmm import DeepCausalMMM, build_config
from deepcausalmmm.training import (
    PERSISTENCE_MAX,
    Target,
    data_loss,
    effective_cells,
    polish,
    pooled_persistence,
    total_loss,
    train,
)


@dataclass
class _Dec:
    prediction: torch.Tensor


class Line(nn.Module):
    """prediction = a * x + b: two parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.zeros(()))
        self.b = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return _Dec(self.a * x + self.b)

    def penalty(self, config, dec):
        return torch.zeros(())


def line_problem(val_weeks: int = 0):
    x = torch.linspace(0, 1, 40).reshape(2, 20)
    y = 3 * x + 1
    w = torch.ones_like(y)
    wv = torch.zeros_like(y)
    if val_weeks:
        wv[:, -val_weeks:] = 1
        w[:, -val_weeks:] = 0
    return x, Target(y, w, wv)


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_train_recovers_a_line(optimizer):
    x, target = line_problem()
    cfg = build_config(None, {"loss": "mse", "training": {"optimizer": optimizer, "epochs": 2000,
                                                          "learning_rate": 0.05, "patience": 50}})
    net = Line()
    hist = train(net, x, target, cfg)
    assert net.a.item() == pytest.approx(3.0, abs=1e-2)
    assert net.b.item() == pytest.approx(1.0, abs=1e-2)
    assert hist.train_loss[-1] <= hist.train_loss[0]
    assert hist.train_loss[-1] < 1e-4
    assert hist.epochs_run == len(hist.train_loss)


def test_validation_early_stopping_restores_best_epoch():
    x, target = line_problem(val_weeks=5)
    cfg = build_config(None, {"loss": "mse", "training": {"epochs": 300, "patience": 5,
                                                          "learning_rate": 0.05}})
    net = Line()
    hist = train(net, x, target, cfg)
    assert len(hist.val_loss) == hist.epochs_run
    best = int(np.argmin(hist.val_loss))
    assert hist.best_epoch == best
    with torch.no_grad():
        final_val = data_loss(net(x).prediction, target.y, target.weight_val, "mse", 1.0)
    assert float(final_val) == pytest.approx(hist.val_loss[best], rel=1e-5)


def test_huber_is_quadratic_inside_delta_and_linear_outside():
    y = torch.zeros(1, 2)
    w = torch.ones(1, 2)
    small = data_loss(torch.tensor([[0.01, 0.01]]), y, w, "huber", 0.05)
    assert float(small) == pytest.approx(0.01**2, rel=1e-5)
    big = data_loss(torch.tensor([[1.0, 1.0]]), y, w, "huber", 0.05)
    assert float(big) == pytest.approx(2 * 0.05 * (1.0 - 0.025), rel=1e-5)


def test_per_region_huber_threshold_in_the_loss():
    y = torch.zeros(2, 2)
    w = torch.ones(2, 2)
    delta = torch.tensor([[0.05], [0.5]])  # [R,1]
    pred = torch.tensor([[1.0, 1.0], [0.1, 0.1]])
    per_region = data_loss(pred, y, w, "huber", delta)
    # region 0 in its linear part, region 1 inside its (wider) quadratic part
    assert float(per_region) == pytest.approx((2 * 2 * 0.05 * (1.0 - 0.025) + 2 * 0.1**2) / 4, rel=1e-5)
    same = data_loss(pred, y, w, "huber", torch.full((2, 1), 0.05))
    assert float(same) == pytest.approx(float(data_loss(pred, y, w, "huber", 0.05)), rel=1e-6)


def test_region_huber_delta_follows_each_regions_noise():
    from deepcausalmmm.training import HUBER_K, HUBER_MIN, region_huber_delta

    rng = np.random.default_rng(0)
    t = np.arange(156)
    season = 1 + 0.1 * np.sin(2 * np.pi * t / 52)
    quiet = np.stack([season + rng.normal(0, 0.02, 156) for _ in range(20)])
    noisy = np.stack([season + rng.normal(0, 0.08, 156) for _ in range(20)])
    d_quiet, d_noisy = region_huber_delta(quiet), region_huber_delta(noisy)
    # four times the noise, about four times the threshold; the seasonal swing does not count
    assert 3.0 < d_noisy.mean() / d_quiet.mean() < 5.0
    # the running median follows part of the noise: the threshold is 0.6-0.75 of HUBER_K x sd
    assert 0.55 < d_quiet.mean() / (HUBER_K * 0.02) < 0.8
    flat_and_missing = np.stack([np.ones(50), np.full(50, np.nan), 1 + rng.normal(0, 0.05, 50)])
    d = region_huber_delta(flat_and_missing)
    assert d[0] == HUBER_MIN  # a constant KPI is not all outliers
    # no fitted weeks: the median of the other regions' noise scales (0 and d[2] / HUBER_K)
    assert d[1] == pytest.approx(d[2] / 2)


def test_auto_threshold_resists_a_spike_in_a_smooth_region():
    from deepcausalmmm.datasets import simulate_panel

    sim = simulate_panel(4, 60, 2, seed=3, noise=0.01)
    spiked = sim.y.copy()
    rows = np.flatnonzero(sim.regions == sim.regions[0])
    spiked[rows[-3]] *= 1.6  # one-week spike near the end of a smooth region
    fast = {"training": {"epochs": 200, "patience": 40, "polish_steps": 50}}

    def level_shift(cfg: dict) -> float:
        fits = [DeepCausalMMM(config={**fast, **cfg}).fit(sim.X, y, regions=sim.regions, dates=sim.dates)
                for y in (sim.y, spiked)]
        pred = [f.get_channel_contributions()["prediction"].to_numpy()[rows[-1]] for f in fits]
        return abs(pred[1] - pred[0]) / pred[0]

    assert level_shift({}) < 0.5 * level_shift({"huber_delta": 1.0})


def test_estimator_two_phases_with_validation_slice(small_sim):
    model = DeepCausalMMM(config={"training": {"validation_weeks": 8, "epochs": 80, "patience": 20}})
    model.fit(small_sim.X, small_sim.y, regions=small_sim.regions, dates=small_sim.dates)
    h = model.history_
    assert len(h.val_loss) == h.epochs_run > 0
    assert h.refit_epochs == round(0.25 * (h.best_epoch + 1))
    assert model.knots_[-1] == 59  # the trend spans every fitted week after phase 2
    # its repr summarises the per-epoch losses (a full list runs to thousands of characters)
    assert repr(h).startswith(f"History(train_loss=[{len(h.train_loss)} values, last {h.train_loss[-1]:.6g}], "
                              f"val_loss=[{len(h.val_loss)} values, last ")
    assert f"epochs_run={h.epochs_run}," in repr(h) and len(repr(h)) < 300
    table = model.get_channel_contributions()
    parts = table[model.channels_].sum(axis=1) + table["baseline"] + table["controls"]
    np.testing.assert_allclose(parts, table["prediction"], rtol=1e-5)


@pytest.mark.parametrize("kind", ["mse", "huber"])
def test_data_loss_resolves_changes_below_float32_rounding(kind):
    """Near the optimum a polish step lowers the loss by about 1e-7 of itself; a float32
    sum over a panel's cells cannot see that (it read these changes as 0 or 30-100% off),
    so the L-BFGS line search found no lower point and stopped. The sum is float64."""
    g = torch.Generator().manual_seed(0)
    y = torch.rand(190, 109, generator=g) + 0.5  # float32, a panel's size
    pred = y + 0.03 * torch.randn(190, 109, generator=g)
    w = torch.ones_like(y)
    delta = torch.full((190, 1), 1.0)  # wide Huber threshold: quadratic in every cell
    base = data_loss(pred, y, w, kind, delta)
    assert base.dtype == torch.float64
    for k in range(5):
        moved = pred.clone()
        moved[k, 7] = y[k, 7] + (pred[k, 7] - y[k, 7]) * 0.999  # one cell 0.1% closer
        exact = float(((pred[k, 7].double() - y[k, 7]) ** 2) * (1 - 0.999**2) / y.numel())
        assert exact < 1e-6 * float(base)
        assert float(base - data_loss(moved, y, w, kind, delta)) == pytest.approx(exact, rel=1e-4)


def test_polish_finishes_what_adam_started():
    x, target = line_problem()
    cfg = build_config(None, {"loss": "mse", "training": {"epochs": 20, "learning_rate": 0.05}})
    net = Line()
    train(net, x, target, cfg)  # 20 Adam steps: far from a = 3, b = 1
    assert abs(net.a.item() - 3.0) > 0.5
    evals = polish(net, x, target, cfg, steps=50)
    assert 0 < evals <= 100
    assert net.a.item() == pytest.approx(3.0, abs=1e-4)
    assert net.b.item() == pytest.approx(1.0, abs=1e-4)


def test_polish_starts_again_when_lbfgs_stops_early(monkeypatch):
    """L-BFGS can stop long before its step budget (a float32 direction that is not a
    descent direction; on an H200 a 2000-region fit stopped after 18 evaluations).
    The polish then starts a fresh L-BFGS run from where it stopped, within the same budget."""

    class StopsAfterOneStep(torch.optim.LBFGS):
        def __init__(self, params, **kw):
            kw["max_iter"] = 1
            super().__init__(params, **kw)

    x, target = line_problem()
    cfg = build_config(None, {"loss": "mse"})
    monkeypatch.setattr(torch.optim, "LBFGS", StopsAfterOneStep)
    one = Line()
    assert polish(one, x, target, cfg, steps=1) == 2  # one step: its evaluation and a line search
    assert 0.1 < abs(one.a.item() - 3.0) < 3.0  # moved, but one step is far from the answer
    net = Line()
    evals = polish(net, x, target, cfg, steps=150)
    assert 150 <= evals <= 188  # runs until the budget of one run (1.25 x 150 evaluations) is spent
    # one-step runs are steepest descent: slow, but on their way to a = 3, b = 1
    assert net.a.item() == pytest.approx(3.0, abs=0.05)
    assert net.b.item() == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("unit", [1.0, 1e-5])
def test_polish_does_not_depend_on_the_loss_scale(unit):
    """L-BFGS's first step (the negative gradient, at most unit length) and its test for
    keeping a curvature pair (y's > 1e-10) are absolute. With the loss as it is, a KPI in
    units of 1e-5 (a loss of about 1e-10) took 36 evaluations and stopped 2.5e-5 off
    the answer; the polish divides the objective by its starting value, so every scale
    is solved alike (10-14 evaluations, within 1e-6)."""
    x, target = line_problem()
    target = Target(target.y * unit, target.weight_train, target.weight_val)
    cfg = build_config(None, {"loss": "mse"})
    net = Line()
    evals = polish(net, x, target, cfg, steps=30)
    assert evals <= 20
    assert net.a.item() == pytest.approx(3.0 * unit, rel=1e-6)
    assert net.b.item() == pytest.approx(1.0 * unit, rel=1e-6)


def test_polish_with_zero_steps_or_at_the_optimum_changes_nothing():
    x, target = line_problem()
    cfg = build_config(None, {"loss": "mse"})
    net = Line()
    assert polish(net, x, target, cfg, steps=0) == 0
    assert net.a.item() == 0.0 and net.b.item() == 0.0
    with torch.no_grad():
        net.a.fill_(3.0)
        net.b.fill_(1.0)
    polish(net, x, target, cfg, steps=20)
    assert net.a.item() == pytest.approx(3.0, abs=1e-6)
    assert net.b.item() == pytest.approx(1.0, abs=1e-6)


def test_polish_keeps_frozen_parameters_and_solves_for_the_rest():
    x, target = line_problem()
    cfg = build_config(None, {"loss": "mse"})
    net = Line()
    polish(net, x, target, cfg, steps=50, frozen=("b",))
    assert net.b.item() == 0.0
    slope_through_origin = float((x * target.y).sum() / (x * x).sum())  # least squares with b = 0
    assert net.a.item() == pytest.approx(slope_through_origin, abs=1e-4)


def test_estimator_polish_lowers_the_fitted_objective(small_sim):
    """The same Adam run, then L-BFGS: the objective the model minimises ends lower,
    and the trend and seasonal shapes keep Adam's values unless polish_shapes is set."""
    losses, nets = {}, {}
    for steps, shapes in ((0, False), (100, False), (101, True)):
        # Adam stopped short of its plateau (60 epochs), as in a large fit: on this small panel
        # 150 epochs already reach the float32 floor, where no step can lower the loss
        training = {"epochs": 60, "patience": 40, "polish_steps": steps, "polish_shapes": shapes}
        model = DeepCausalMMM(config={"training": training}, random_state=0)
        model.fit(small_sim.X, small_sim.y, regions=small_sim.regions, dates=small_sim.dates)
        p = model.panel_
        R, T, _ = p.shape
        batch = model._batch(model.config_, p, model.scaler_, model.knots_, np.arange(R), p.media,
                             p.control_values, np.arange(T, dtype=float))
        target = model._target(model.config_, p, model.scaler_, "cpu", 0)
        with torch.no_grad():
            losses[steps] = float(total_loss(model.net_, batch, target, model.config_)[0])
        assert (model.history_.polish_evals > 0) == (steps > 0)
        nets[steps] = model.net_
    assert losses[100] < losses[0]
    for name in ("trend", "trend_dev", "season", "season_dev"):
        torch.testing.assert_close(getattr(nets[100].baseline, name), getattr(nets[0].baseline, name))
    assert not torch.allclose(nets[100].beta_raw, nets[0].beta_raw)
    assert not torch.allclose(nets[100].baseline.level, nets[0].baseline.level)
    assert not torch.allclose(nets[101].baseline.trend, nets[0].baseline.trend)  # polish_shapes
    assert losses[101] < losses[0]


def test_carryover_pooling_penalty_is_the_spread_of_gate_logits(fitted):
    """Known answer: the pooling term adds weight x sum over stages and channels of
    (logit - that stage's mean logit)^2, and nothing when the logits are equal."""
    net, cfg = fitted.net_, fitted.config_
    p = fitted.panel_
    R, T, _ = p.shape
    batch = fitted._batch(cfg, p, fitted.scaler_, fitted.knots_, np.arange(R), p.media,
                          p.control_values, np.arange(T, dtype=float))

    def penalty(weight: float, logits: torch.Tensor) -> float:
        c = build_config(cfg.to_dict(), {"regularization": {"carryover_pooling": weight}})
        with torch.no_grad():
            net.carryover.gate_logit.copy_(logits)
            return float(net.penalty(c, net(batch)))

    saved = net.carryover.gate_logit.detach().clone()
    try:
        logits = torch.tensor([[0.0, 1.0, 2.0], [-1.0, -1.0, -4.0]])  # spread 2 + 6 = 8
        assert penalty(0.5, logits) - penalty(0.0, logits) == pytest.approx(0.5 * 8.0, rel=1e-5)
        same = torch.full_like(logits, 0.7)
        assert penalty(0.5, same) == pytest.approx(penalty(0.0, same), abs=1e-6)
    finally:
        with torch.no_grad():
            net.carryover.gate_logit.copy_(saved)


def test_strong_carryover_pooling_gives_every_channel_the_same_gates(small_sim):
    """Wired through the config: with a dominant pooling weight the fitted gate logits agree
    across channels; with none they differ (the channels' carryovers differ in the simulator)."""
    spread = {}
    for weight in (0.0, 10.0):
        cfg = {"training": {"epochs": 150, "patience": 40, "polish_steps": 50},
               "regularization": {"carryover_pooling": weight}}
        model = DeepCausalMMM(config=cfg, random_state=0)
        model.fit(small_sim.X, small_sim.y, regions=small_sim.regions, dates=small_sim.dates)
        logits = model.net_.carryover.gate_logit.detach()
        spread[weight] = float((logits - logits.mean(dim=1, keepdim=True)).abs().max())
    assert spread[10.0] < 0.02
    assert spread[0.0] > 0.1


def test_a_target_without_thresholds_gets_its_regions_own_under_auto():
    """Known answer: a Target built outside the estimator (no per-region thresholds) is
    scored with the thresholds region_huber_delta computes from its training cells, not a
    fixed number; an explicit huber_delta is used as given."""
    from deepcausalmmm.training import region_huber_delta

    rng = np.random.default_rng(0)
    x = torch.linspace(0, 1, 80).reshape(2, 40)
    noise = np.stack([rng.normal(0, 0.01, 40), rng.normal(0, 0.2, 40)])  # quiet and noisy region
    y = 3 * x + 1 + torch.tensor(noise, dtype=torch.float32)
    target = Target(y, torch.ones_like(y), torch.zeros_like(y))
    net = Line()  # prediction 0: every error is large, so the thresholds matter
    auto = build_config(None, {"huber_delta": "auto"})
    delta = torch.tensor(region_huber_delta(y.numpy())[:, None], dtype=torch.float32)
    expected = data_loss(torch.zeros_like(y), y, target.weight_train, "huber", delta)
    got = total_loss(net, x, target, auto)[0].detach()
    assert float(got) == pytest.approx(float(expected), rel=1e-6)
    assert float(delta[1, 0]) > 5 * float(delta[0, 0])  # the noisy region's threshold is wider
    fixed = build_config(None, {"huber_delta": 0.05})
    assert float(total_loss(net, x, target, fixed)[0].detach()) == pytest.approx(
        float(data_loss(torch.zeros_like(y), y, target.weight_train, "huber", 0.05)), rel=1e-6)


def test_marginal_coefficient_prior_known_values(fitted):
    """Known answers: with half-saturation 1 and slope 1 the marginal prior equals the
    coefficient (ceiling) prior; with half-saturation 3 and slope 2, Hill(1) = 1/10, the
    marginal effect is 4 beta 2 (1/10)(9/10) = 0.72 beta, so the L2 term is 0.72^2 of it."""
    from deepcausalmmm.components.saturation import _logit

    net, cfg = fitted.net_, fitted.config_
    p = fitted.panel_
    R, T, _ = p.shape
    batch = fitted._batch(cfg, p, fitted.scaler_, fitted.knots_, np.arange(R), p.media,
                          p.control_values, np.arange(T, dtype=float))
    lo_k, hi_k, lo_s, hi_s = net.saturation.bounds

    def l2_term(prior: str, k: float, s: float) -> float:
        with torch.no_grad():
            net.saturation.k_raw.fill_(_logit(k, lo_k, hi_k))
            net.saturation.s_raw.fill_(_logit(s, lo_s, hi_s))
            dec = net(batch)
            on = build_config(cfg.to_dict(), {"regularization": {"coefficient_prior": prior, "l2": 1.0}})
            off = build_config(cfg.to_dict(), {"regularization": {"coefficient_prior": prior, "l2": 0.0}})
            return float(net.penalty(on, dec) - net.penalty(off, dec))

    saved = (net.saturation.k_raw.detach().clone(), net.saturation.s_raw.detach().clone())
    try:
        with torch.no_grad():
            gamma2 = float((net.gamma() ** 2).sum())
            beta2 = float((net.beta() ** 2).sum())
        assert l2_term("ceiling", 1.0, 1.0) == pytest.approx(beta2 + gamma2, rel=1e-4)
        assert l2_term("marginal", 1.0, 1.0) == pytest.approx(beta2 + gamma2, rel=1e-4)
        assert l2_term("marginal", 3.0, 2.0) == pytest.approx(0.72**2 * beta2 + gamma2, rel=1e-4)
        assert l2_term("ceiling", 3.0, 2.0) == pytest.approx(beta2 + gamma2, rel=1e-4)
    finally:
        with torch.no_grad():
            net.saturation.k_raw.copy_(saved[0])
            net.saturation.s_raw.copy_(saved[1])


def test_marginal_prior_lets_a_linear_response_stay_linear():
    """On a panel whose true response is linear (30% of the KPI), shrinking the curve's
    ceiling favours concave curves that carry too much level per unit of marginal effect;
    shrinking the marginal effect does not, so the half-saturations rise and the media
    share lands closer to the truth."""
    rng = np.random.default_rng(0)
    R, T = 20, 104
    size = np.exp(rng.uniform(0, np.log(5), R))  # [R]
    x = size[:, None, None] * rng.gamma(4, 0.25, (R, T, 2)) * 100  # [R,T,C]
    carried = np.zeros_like(x)
    for t in range(T):
        carried[:, t] = 0.6 * x[:, t] + (0.4 * carried[:, t - 1] if t else 0.0)
    media = size[:, None] * (carried / x.mean(axis=1, keepdims=True) * [0.2, 0.1]).sum(-1)  # [R,T]
    y = size[:, None] * 0.7 + media + rng.normal(0, 0.02, (R, T)) * size[:, None]
    true_share = media.sum() / y.sum()
    share, half_sat = {}, {}
    for prior in ("ceiling", "marginal"):
        model = DeepCausalMMM(config={"regularization": {"coefficient_prior": prior}, "graph": {"mode": "none"}})
        model.fit(x, y)
        share[prior] = model.contribution_summary()["share_of_kpi"].sum()
        half_sat[prior] = float(model.net_.saturation.half_saturation().detach().mean())
    assert abs(true_share - 0.30) < 0.01
    assert abs(share["marginal"] - true_share) < 0.5 * abs(share["ceiling"] - true_share)
    assert half_sat["marginal"] > 2 * half_sat["ceiling"]


def test_pooled_persistence_reads_the_ar1_coefficient_of_weighted_cells():
    rng = np.random.default_rng(0)
    R, T, rho = 50, 200, 0.6
    e = np.zeros((R, T))
    for t in range(1, T):
        e[:, t] = rho * e[:, t - 1] + rng.standard_normal(R)
    w = np.ones((R, T))
    got = float(pooled_persistence(torch.tensor(e), torch.tensor(w)))
    assert got == pytest.approx(rho, abs=0.03)
    # Cells with weight 0 (not fitted) are left out: garbage there does not move it.
    spoiled = e.copy()
    spoiled[:, 100:] = rng.standard_normal((R, T - 100)) * 50
    w[:, 100:] = 0.0
    assert float(pooled_persistence(torch.tensor(spoiled), torch.tensor(w))) == pytest.approx(rho, abs=0.04)
    # Pairs are weighted as the loss weighs their cells: heavy regions set it.
    mixed = np.zeros((2 * R, T))
    for t in range(1, T):
        mixed[:R, t] = 0.8 * mixed[:R, t - 1] + rng.standard_normal(R)
        mixed[R:, t] = 0.1 * mixed[R:, t - 1] + rng.standard_normal(R)
    heavy = np.concatenate([np.full((R, T), 1.0), np.full((R, T), 0.01)])
    assert float(pooled_persistence(torch.tensor(mixed), torch.tensor(heavy))) == pytest.approx(0.8, abs=0.04)
    assert float(pooled_persistence(torch.tensor(mixed), torch.tensor(heavy[::-1].copy()))) == pytest.approx(
        0.1, abs=0.05)
    # Alternating residuals count as 0, near-constant ones at most PERSISTENCE_MAX; all-zero ones 0.
    alt = np.tile([1.0, -1.0], (R, T // 2))
    assert float(pooled_persistence(torch.tensor(alt), torch.ones(R, T))) == 0.0
    walk = np.cumsum(rng.standard_normal((R, T)), axis=1)
    assert float(pooled_persistence(torch.tensor(walk), torch.ones(R, T))) == PERSISTENCE_MAX
    assert float(pooled_persistence(torch.zeros(R, T), torch.ones(R, T))) == 0.0


def test_effective_cells_is_the_ar1_variance_of_a_mean():
    # n (1 - rho) / (1 + rho): the variance of the mean of AR(1) series is (1 + rho) / (1 - rho)
    # times that of independent ones (long series).
    assert effective_cells(1000.0, 0.0) == 1000.0
    assert effective_cells(1000.0, 0.6) == pytest.approx(250.0)
    rng = np.random.default_rng(1)
    rho, T, n_series = 0.6, 4000, 400
    x = np.zeros((n_series, T))
    eps = rng.standard_normal((n_series, T)) * np.sqrt(1 - rho**2)  # unit marginal variance
    for t in range(1, T):
        x[:, t] = rho * x[:, t - 1] + eps[:, t]
    ratio = x.mean(axis=1).var() / (1.0 / T)  # against independent unit-variance cells
    assert ratio == pytest.approx(T / effective_cells(T, rho), rel=0.15)
