"""GPU fits: ``device="cuda"`` gives the same model as the CPU, up to float rounding.

These tests need a CUDA GPU and skip on machines without one (CI has none);
``benchmarks/gpu_check.sh`` runs them on a GPU machine.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from deepcausalmmm import DeepCausalMMM
from deepcausalmmm.datasets import simulate_panel

from .conftest import FAST

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA GPU on this machine; device='cuda' is checked on a GPU"
)


@pytest.fixture(scope="module")
def pair():
    sim = simulate_panel(6, 60, 3, seed=11)
    kw = dict(regions=sim.regions, dates=sim.dates, controls=sim.control_frame)
    cpu = DeepCausalMMM(config=FAST, random_state=0, device="cpu").fit(sim.X, sim.y, **kw)
    gpu = DeepCausalMMM(config=FAST, random_state=0, device="cuda").fit(sim.X, sim.y, **kw)
    return sim, kw, cpu, gpu


def test_cuda_fit_lives_on_the_gpu_and_matches_cpu(pair):
    sim, kw, cpu, gpu = pair
    assert next(gpu.net_.parameters()).device.type == "cuda"
    # The L-BFGS polish runs as on the CPU (under TF32 it stopped after a few evaluations).
    assert gpu.history_.polish_evals >= 0.5 * cpu.history_.polish_evals > 0
    y = np.asarray(sim.y, dtype=float)
    p_cpu, p_gpu = cpu.predict(sim.X, **kw), gpu.predict(sim.X, **kw)
    # Same seed and data: the two fits differ only by float rounding in the
    # optimiser path, so predictions agree to a small fraction of the KPI.
    assert np.abs(p_gpu - p_cpu).sum() / np.abs(y).sum() < 0.01
    r2 = 1 - ((y - p_gpu) ** 2).sum() / ((y - y.mean()) ** 2).sum()
    assert r2 > 0.9
    share_cpu = cpu.contribution_summary()["share_of_kpi"]
    share_gpu = gpu.contribution_summary()["share_of_kpi"]
    np.testing.assert_allclose(share_gpu, share_cpu, atol=0.01)


def test_cuda_effects_and_save_load_to_cpu(pair, tmp_path):
    sim, kw, _, gpu = pair
    eff = gpu.get_channel_effects()
    np.testing.assert_allclose(eff["total"], eff["direct"] + eff["mediated"], rtol=1e-6, atol=1e-6)
    path = gpu.save(tmp_path / "gpu.safetensors")
    loaded = DeepCausalMMM.load(path)
    assert next(loaded.net_.parameters()).device.type == "cpu"
    np.testing.assert_allclose(loaded.predict(sim.X, **kw), gpu.predict(sim.X, **kw), rtol=1e-4, atol=1e-3)
    # Forecast intervals read the trend from the model wherever it lives.
    band_gpu, band_cpu = gpu.predict_interval(sim.X, **kw), loaded.predict_interval(sim.X, **kw)
    np.testing.assert_allclose(band_gpu[["lower", "upper"]], band_cpu[["lower", "upper"]], rtol=1e-4, atol=1e-3)
    # Channel parameters and carryover weights are read from the model on its device.
    pd.testing.assert_frame_equal(gpu.get_channel_parameters(), loaded.get_channel_parameters(), rtol=1e-5)
    pd.testing.assert_frame_equal(gpu.get_carryover(), loaded.get_carryover(), rtol=1e-5, atol=1e-8)
    # What moved the KPI (the baseline's terms read from the model on its device) and the
    # budget frontier, as the model moved to the CPU gives them.
    d = gpu.panel_.dates
    change_gpu, change_cpu = (m.get_kpi_change((d[0], d[12]), (d[47], d[59])) for m in (gpu, loaded))
    np.testing.assert_allclose(change_gpu["change"], change_cpu["change"], rtol=1e-4, atol=1e-3)
    rows = sim.data[pd.to_datetime(sim.data["date"]) >= d[47]].drop(columns="kpi").copy()
    rows["date"] = pd.to_datetime(rows["date"]) + pd.Timedelta(weeks=13)  # next quarter, as planned rows
    plan = dict(X=rows, regions="region", dates="date", controls=["price", "promo"])
    ahead_gpu, ahead_cpu = (m.get_kpi_change((d[47], d[59]), **plan) for m in (gpu, loaded))
    np.testing.assert_allclose(ahead_gpu["change"], ahead_cpu["change"], rtol=1e-4, atol=1e-3)
    frontier_gpu, frontier_cpu = (m.get_budget_frontier([0.9, 1.1]) for m in (gpu, loaded))
    np.testing.assert_allclose(frontier_gpu["kpi_change"], frontier_cpu["kpi_change"], rtol=1e-3, atol=1e-2)
    # The return over time (switch-off and scaled passes on the model's device).
    over_gpu, over_cpu = (m.get_effects_over_time("Q") for m in (gpu, loaded))
    for column in ("total", "roi", "marginal_roi"):
        np.testing.assert_allclose(over_gpu[column], over_cpu[column], rtol=1e-3, atol=1e-3)


def test_cuda_fit_with_lift_tests_matches_cpu(pair):
    sim, kw, _, _ = pair
    dates = np.unique(sim.dates)
    regions = list(dict.fromkeys(sim.regions))[:3]
    truth = sim.true_lift("channel_1", regions, dates[20], dates[31])
    tests = pd.DataFrame([{"channel": "channel_1", "start": dates[20], "end": dates[31], "regions": regions,
                           "lift": 1.3 * truth, "lift_se": 0.02 * truth}])
    fits = [DeepCausalMMM(config=FAST, device=d).fit(sim.X, sim.y, lift_tests=tests, **kw) for d in ("cpu", "cuda")]
    lifts = [f.lift_tests_["model_lift"].iloc[0] for f in fits]
    assert lifts[1] == pytest.approx(lifts[0], rel=0.02)
    report = fits[1].lift_test_report()
    assert report["model_lift"].iloc[0] == pytest.approx(lifts[1])  # report recomputed on the GPU model


def test_cuda_fit_with_roi_priors_matches_cpu(pair):
    sim, kw, cpu, _ = pair
    roi = cpu.get_channel_effects()["roi"]
    cfg = {**FAST, "graph": {"mode": "fixed", "edges": [["channel_1", "channel_2"]]},  # a mediated prior
           "calibration": {"roi_priors": {"channel_1": [1.4 * roi["channel_1"], 0.02 * roi["channel_1"]],
                                          "channel_3": [0.7 * roi["channel_3"], 0.01 * roi["channel_3"]]}}}
    fits = [DeepCausalMMM(config=cfg, device=d).fit(sim.X, sim.y, **kw) for d in ("cpu", "cuda")]
    reports = [f.roi_prior_report() for f in fits]
    np.testing.assert_allclose(reports[1]["roi"], reports[0]["roi"], rtol=0.02)
    np.testing.assert_allclose(reports[1]["roi"], reports[1]["prior_mean"], rtol=0.05)
