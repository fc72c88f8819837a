"""Analytic checks of the model's building blocks."""

import numpy as np
import pytest
import torch

from deepcausalmmm.components import (
    GatedCarryover,
    HillSaturation,
    apply_kernel,
    carryover_kernel,
    get_component,
    hill,
    registered,
)
from deepcausalmmm.components.temporal import (
    CalendarContext,
    forecast_error_quantiles,
    make_knots,
    residual_persistence,
    trend_basis,
)


def test_single_stage_kernel_is_geometric():
    T, g = 12, 0.6
    gates = torch.full((1, T, 1), g, dtype=torch.float64)
    K = carryover_kernel(gates, max_lag=100)[0]
    for t in range(T):
        for s in range(T):
            expected = (1 - g) * g ** (t - s) if s <= t else 0.0
            assert K[t, s].item() == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_kernel_matches_recursion_with_time_varying_gates():
    rng = np.random.default_rng(0)
    T = 15
    g = rng.uniform(0.1, 0.9, (2, T, 1))
    x = rng.uniform(0, 3, T)
    s1 = s2 = 0.0
    expected = []
    for t in range(T):
        s1 = g[0, t, 0] * s1 + (1 - g[0, t, 0]) * x[t]
        s2 = g[1, t, 0] * s2 + (1 - g[1, t, 0]) * s1
        expected.append(s2)
    K = carryover_kernel(torch.tensor(g), max_lag=100)
    out = apply_kernel(K, torch.tensor(x)[None, :, None])[0, :, 0]
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-9)


def test_carryover_causal_finite_zero_monotone():
    K = carryover_kernel(torch.full((2, 30, 3), 0.7, dtype=torch.float64), max_lag=10)
    lag = torch.arange(30)[:, None] - torch.arange(30)[None, :]
    assert (K[:, lag < 0] == 0).all()  # never backwards in time
    assert (K[:, lag > 10] == 0).all()  # finite horizon
    assert (K >= 0).all()  # monotone in spend
    zero = apply_kernel(K, torch.zeros(4, 30, 3, dtype=torch.float64))
    assert (zero == 0).all()


def test_steady_state_preserves_level():
    K = carryover_kernel(torch.full((1, 200, 1), 0.5, dtype=torch.float64), max_lag=200)
    out = apply_kernel(K, torch.ones(1, 200, 1, dtype=torch.float64))
    assert out[0, -1, 0].item() == pytest.approx(1.0, abs=1e-9)


def test_hill_analytic_values():
    k, s = torch.tensor([2.0]), torch.tensor([1.7])
    assert hill(torch.tensor([[2.0]]), k, s).item() == pytest.approx(0.5)
    assert hill(torch.tensor([[0.0]]), k, s).item() == 0.0
    x = torch.tensor([[1.0]])
    assert hill(x, k, s).item() == pytest.approx(1 / (1 + 2.0**1.7))
    xs = torch.linspace(0, 10, 50)[:, None]
    assert (torch.diff(hill(xs, k, s)[:, 0]) >= 0).all()


def test_gradcheck():
    x = torch.rand(3, 1, dtype=torch.float64) + 0.1
    k = torch.tensor([0.7], dtype=torch.float64, requires_grad=True)
    s = torch.tensor([1.3], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: hill(x, a, b), (k, s))
    gates = torch.rand(2, 6, 2, dtype=torch.float64) * 0.8 + 0.1
    gates.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda g: carryover_kernel(g, 4), (gates,))


def test_registry_round_trip():
    assert get_component("carryover", "gated") is GatedCarryover
    assert get_component("saturation", "hill") is HillSaturation
    assert registered("carryover") == ["gated"] and registered("saturation") == ["hill"]
    with pytest.raises(KeyError, match="registered: "):
        get_component("saturation", "logistic")


def test_gates_stay_in_bounds():
    mod = GatedCarryover(3, 4, stages=2, gate_min=0.1, gate_max=0.6)
    with torch.no_grad():
        mod.gate_logit.fill_(50.0)
    g = mod.gates(torch.randn(20, 4)).detach()
    assert g.shape == (2, 20, 3)
    assert float(g.max()) <= 0.6 + 1e-6 and float(g.min()) >= 0.1


def test_trend_basis_flat_extrapolation_and_partition_of_unity():
    knots = make_knots(40, 8)
    assert knots[0] == 0 and knots[-1] == 40
    B = trend_basis(np.arange(60), knots)
    np.testing.assert_allclose(B.sum(axis=1), 1.0)
    np.testing.assert_array_equal(B[45], B[59])  # flat beyond the last knot
    D = trend_basis(np.arange(60), knots, "damped", 0.5)
    w = np.arange(len(knots), dtype=float)  # slope 1/8 per step at the end
    assert D[41] @ w > w[-1]  # continues upward
    assert D[59] @ w == pytest.approx(w[-1] + (1 / 8) * 0.5 / (1 - 0.5), rel=1e-3)


def test_context_average_region_alone_matches_full_run():
    """Without effectiveness only the average region's GRU state is needed; it is the same state."""
    torch.manual_seed(0)
    ctx = CalendarContext(4, 3, 8)
    calendar, controls = torch.randn(30, 4), torch.randn(5, 30, 3)
    national_full, regional = ctx(calendar, controls)
    national_only, none = ctx(calendar, controls, regional=False)
    assert regional is not None and regional.shape == (5, 30, 8)
    assert none is None
    torch.testing.assert_close(national_only, national_full, rtol=1e-5, atol=1e-6)


def test_residual_persistence_recovers_ar1_coefficient():
    rng = np.random.default_rng(3)
    R, T, phi = 40, 200, 0.7
    e = np.zeros((R, T))
    for t in range(1, T):
        e[:, t] = phi * e[:, t - 1] + rng.normal(0, 0.05, R)
    w = np.ones((R, T))
    assert residual_persistence(e, w) == pytest.approx(phi, abs=0.03)
    # White noise: near 0; alternating residuals: clipped to 0; all zero: 0.
    assert residual_persistence(rng.normal(0, 1, (R, T)), w) < 0.05
    alt = np.tile([1.0, -1.0], (R, T // 2))
    assert residual_persistence(alt, w) == 0.0
    assert residual_persistence(np.zeros((R, T)), w) == 0.0


def test_residual_persistence_weights_and_missing_cells():
    rng = np.random.default_rng(4)
    R, T = 20, 120
    persistent = np.cumsum(rng.normal(0, 1, (R, T)), axis=1) * 0.01  # random walk: ~1
    noise = rng.normal(0, 1, (R, T))
    both = np.concatenate([persistent, noise])
    w = np.concatenate([np.ones((R, T)), np.zeros((R, T))])  # the noisy regions weigh nothing
    assert residual_persistence(both, w) == pytest.approx(residual_persistence(persistent, w[:R]))
    assert residual_persistence(persistent, w[:R]) > 0.9
    holes = persistent.copy()
    holes[:, ::7] = np.nan  # unobserved cells drop the pairs they belong to
    assert 0.9 < residual_persistence(holes, np.ones((R, T))) <= 0.99
    # The first weeks are left out when enough remain: a wild start changes nothing.
    start = persistent.copy()
    start[:, :6] = rng.normal(0, 100, (R, 6))
    assert residual_persistence(start, np.ones((R, T))) == pytest.approx(
        residual_persistence(persistent[:, 6:], np.ones((R, T - 6))))


def test_forecast_error_quantiles_known_answers():
    """Scaled pseudo-forecast errors: white noise keeps the normal quantiles at every horizon,
    an AR(1) residual forecast with its own persistence narrows them by sqrt(1 - phi^(2h)), and a
    trend that drifts adds its drift (exactly, when the residuals are 0)."""
    rng = np.random.default_rng(7)
    R, T = 60, 400
    w = np.ones((R, T))
    flat = np.zeros((R, T))
    probs = np.array([0.05, 0.95])
    z = 1.6449
    noise = rng.normal(0, 0.04, (R, T))
    scale, q = forecast_error_quantiles(noise, w, flat, 0.0, np.array([0, 1, 5]), probs)
    np.testing.assert_allclose(scale, 0.04, rtol=0.2)  # each region's robust sd
    np.testing.assert_allclose(q, [[-z, z]] * 3, atol=0.12)
    phi = 0.7
    e = np.zeros((R, T))
    for t in range(1, T):
        e[:, t] = phi * e[:, t - 1] + rng.normal(0, 0.03, R)
    _, q = forecast_error_quantiles(e, w, flat, phi, np.array([0, 1, 2, 30]), probs)
    for row, h in zip(q, [0, 1, 2, 30], strict=True):
        np.testing.assert_allclose(row, [-z * np.sqrt(1 - phi ** (2 * h)) if h else -z,
                                         z * np.sqrt(1 - phi ** (2 * h)) if h else z], atol=0.12)
    # Trend drift with residuals all 0: the scale falls back to 1 and the errors are the drift.
    slope = np.linspace(0.001, 0.002, R)[:, None]
    trend = slope * np.arange(T)[None, :]
    scale, q = forecast_error_quantiles(flat, w, trend, 0.5, np.array([0, 3, 10]), probs)
    np.testing.assert_array_equal(scale, 1.0)
    np.testing.assert_allclose(q[0], [0, 0], atol=1e-12)
    np.testing.assert_allclose(q[1], np.quantile(slope[:, 0] * 3, probs), rtol=1e-9)
    np.testing.assert_allclose(q[2], np.quantile(slope[:, 0] * 10, probs), rtol=1e-9)
    # Damped: the forecast continues the last slope damped by d per week, so it misses by
    # slope * (h - d (1 - d^h) / (1 - d)).
    d = 0.8
    _, q = forecast_error_quantiles(flat, w, trend, 0.0, np.array([4]), probs, damping=d)
    np.testing.assert_allclose(q[0], np.quantile(slope[:, 0] * (4 - d * (1 - d**4) / (1 - d)), probs),
                               rtol=1e-9)


def test_forecast_error_quantiles_scales_weights_and_long_horizons():
    rng = np.random.default_rng(8)
    R, T = 40, 200
    sd = np.where(np.arange(R) < 20, 0.02, 0.08)[:, None]  # half the regions four times as noisy
    e = rng.normal(0, 1, (R, T)) * sd
    w = np.ones((R, T))
    flat = np.zeros((R, T))
    probs = np.array([0.05, 0.95])
    scale, q = forecast_error_quantiles(e, w, flat, 0.0, np.array([0]), probs)
    # Each region's own scale, pulled toward the median by 30 weeks' weight: noisy ones ~3x wider.
    assert 2.5 < scale[20:].mean() / scale[:20].mean() < 4.0
    np.testing.assert_allclose(q[0], [-1.645, 1.645], atol=0.15)
    # Cells with weight 0 are left out: wild values there change nothing.
    wild = e.copy()
    wild[:, 100:120] = 50.0
    w0 = w.copy()
    w0[:, 100:120] = 0.0
    s1, q1 = forecast_error_quantiles(wild, w0, flat, 0.0, np.array([0]), probs)
    s2, q2 = forecast_error_quantiles(np.where(w0 > 0, e, np.nan), w, flat, 0.0, np.array([0]), probs)
    np.testing.assert_array_equal(s1, s2)
    np.testing.assert_array_equal(q1, q2)
    # Horizons past half the usable weeks read the longest such lag; a 12-week fit still answers.
    _, q_long = forecast_error_quantiles(e, w, flat, 0.0, np.array([97, 500]), probs)
    np.testing.assert_array_equal(q_long[0], q_long[1])
    scale, q_short = forecast_error_quantiles(e[:3, :12], w[:3, :12], flat[:3, :12], 0.5,
                                              np.array([0, 1, 40]), probs)
    assert np.isfinite(q_short).all() and (q_short[:, 0] < q_short[:, 1]).all()


@pytest.mark.parametrize("stages", [1, 2, 3])
@pytest.mark.parametrize("max_lag", [0, 3, 7, 39, 100])
def test_banded_kernel_is_the_full_kernel(stages, max_lag):
    from deepcausalmmm.components.carryover import _full_kernel, apply_band, band_to_kernel, carryover_band

    rng = np.random.default_rng(stages * 100 + max_lag)
    T = 40
    gates = torch.tensor(rng.uniform(0.05, 0.95, (stages, T, 3)))  # time-varying gates
    full = _full_kernel(gates, max_lag)
    band = carryover_band(gates, max_lag)
    assert band.shape == (T, min(max_lag, T - 1) + 1, 3)
    torch.testing.assert_close(band_to_kernel(band), full, rtol=1e-12, atol=1e-14)
    x = torch.tensor(rng.uniform(0, 3, (5, T, 3)))
    torch.testing.assert_close(apply_band(band, x), apply_kernel(full, x), rtol=1e-12, atol=1e-14)


def test_long_series_use_the_band_with_the_same_result():
    from deepcausalmmm.components.carryover import _full_kernel, banded

    assert not banded(156, 26) and banded(400, 26) and banded(60, 3) and not banded(20, 100)
    torch.manual_seed(0)
    mod = GatedCarryover(3, 4, stages=2, max_lag=5, context_scale=0.5).double()
    with torch.no_grad():
        mod.head.weight.normal_()  # gates that move with the context
    context, x = torch.randn(120, 4, dtype=torch.float64), torch.rand(6, 120, 3, dtype=torch.float64)
    gates = mod.gates(context)
    assert float(gates.std(dim=1).min()) > 0.01
    torch.testing.assert_close(mod(x, context), apply_kernel(_full_kernel(gates, 5), x), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(carryover_kernel(gates, 5), _full_kernel(gates, 5), rtol=1e-12, atol=1e-14)
    g = (torch.rand(2, 30, 2, dtype=torch.float64) * 0.8 + 0.1).requires_grad_(True)
    from deepcausalmmm.components.carryover import apply_band, carryover_band

    xs = torch.rand(2, 30, 2, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda v: apply_band(carryover_band(v, 3), xs), (g,))


def test_filter_gradient_from_ffts_and_its_prepared_input():
    """The filter's gradient for the gates (computed from FFTs of the prepared media) equals
    torch's convolution gradient; the module's prepared input follows in-place changes and new
    tensors, and copies and pickles leave it out."""
    import copy
    import pickle

    from deepcausalmmm.components.carryover import apply_impulse, impulse_response

    torch.manual_seed(0)
    mod = GatedCarryover(3, 2, stages=2, max_lag=26, context_scale=0.0).double()
    with torch.no_grad():
        mod.gate_logit.normal_()
    x, context = torch.rand(4, 60, 3, dtype=torch.float64), torch.zeros(60, 2, dtype=torch.float64)
    x[:, :10, 0] = 0.0  # dark weeks
    w = torch.rand(4, 60, 3, dtype=torch.float64)
    ours = torch.autograd.grad((mod(x, context) * w).sum(), mod.gate_logit)[0]
    # an input that needs gradients takes torch's own convolution and its gradient
    reference = apply_impulse(impulse_response(mod.constant_gates(), 26), x.clone().requires_grad_(True))
    theirs = torch.autograd.grad((reference * w).sum(), mod.gate_logit)[0]
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)
    first = mod(x, context).detach()  # kept: the module prepared x above
    assert (first[:, :10, 0] == 0).all()  # zero in, zero out, exactly
    assert "_filter_cache" in mod.__dict__
    assert "_filter_cache" not in copy.deepcopy(mod).__dict__
    assert "_filter_cache" not in pickle.loads(pickle.dumps(mod)).__dict__
    with torch.no_grad():
        x.mul_(2.0)  # in place: the prepared copy is stale and must not be used
    torch.testing.assert_close(mod(x, context).detach(), 2 * first, rtol=1e-12, atol=0.0)
    other = torch.rand(4, 60, 3, dtype=torch.float64)  # a new tensor: prepared afresh
    direct = apply_impulse(impulse_response(mod.constant_gates(), 26), other.clone().requires_grad_(True))
    torch.testing.assert_close(mod(other, context), direct, rtol=1e-12, atol=0.0)
    mod.release()  # what fit calls when training ends
    with torch.no_grad():  # predictions and plans keep nothing
        torch.testing.assert_close(mod(other, context), direct.detach(), rtol=1e-12, atol=0.0)
    assert "_filter_cache" not in mod.__dict__


@pytest.mark.parametrize("stages", [1, 2, 3])
@pytest.mark.parametrize("max_lag", [0, 3, 26, 100])
def test_constant_gates_filter_is_the_full_kernel(stages, max_lag):
    """With gates that do not move (the default), the module applies the kernel as a causal
    filter; it must equal the full kernel of the same gates held at every step."""
    from deepcausalmmm.components.carryover import _full_kernel, apply_impulse, impulse_response

    torch.manual_seed(stages * 10 + max_lag)
    mod = GatedCarryover(4, 3, stages=stages, max_lag=max_lag, context_scale=0.0).double()
    with torch.no_grad():
        mod.gate_logit.normal_()
    T = 40
    x, context = torch.rand(5, T, 4, dtype=torch.float64), torch.randn(T, 3, dtype=torch.float64)
    full = _full_kernel(mod.gates(context), max_lag)  # [C,T,T]
    torch.testing.assert_close(mod(x, context), apply_kernel(full, x), rtol=1e-12, atol=1e-14)
    L = min(max_lag, T - 1)
    response = impulse_response(mod.constant_gates(), L)  # [C,L+1]
    torch.testing.assert_close(response, full[:, L, : L + 1].flip(-1), rtol=1e-12, atol=1e-14)
    g = (torch.rand(stages, 4, dtype=torch.float64) * 0.8 + 0.1).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: apply_impulse(impulse_response(v, 5), x[:2, :12]), (g,))
