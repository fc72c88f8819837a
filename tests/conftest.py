"""Shared fixtures: small simulated panels and models fitted once per session."""

from __future__ import annotations

import os

if os.environ.get("PYTEST_XDIST_WORKER", "").startswith("gw"):
    # One core per worker (see pytest_configure): BLAS and OpenMP pools of one thread too, set
    # before numpy and torch load. Pools sized to the machine spin on a single core.
    for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_name] = "1"

import pytest

from deepcausalmmm import DeepCausalMMM
from deepcausalmmm.datasets import SimulatedPanel, simulate_panel


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (``-n N``), pin each worker to one core of its own.

    The fits here are small: one thread trains them as fast as two, and
    workers whose threads share cores wait on each other. Pinned, the
    estimator's default (``training.threads`` 0: the cores the process may
    use) gives each worker one thread, whatever the machine.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return
    if hasattr(os, "sched_setaffinity"):
        cores = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cores[int(worker[2:]) % len(cores)]})
    else:  # macOS, Windows: no affinity mask to narrow, so the default thread count is set directly
        import deepcausalmmm.estimator as estimator

        estimator.available_cores = lambda: 1


FAST = {"training": {"epochs": 150, "patience": 40, "polish_steps": 50}}


@pytest.fixture(scope="session")
def small_sim() -> SimulatedPanel:
    """6 regions x 60 weeks x 3 channels."""
    return simulate_panel(6, 60, 3, seed=11)


@pytest.fixture(scope="session")
def fitted(small_sim: SimulatedPanel) -> DeepCausalMMM:
    model = DeepCausalMMM(config=FAST, random_state=0)
    return model.fit(
        small_sim.X, small_sim.y, regions=small_sim.regions, dates=small_sim.dates,
        controls=small_sim.control_frame,
    )


@pytest.fixture
def refit_count(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that grows by one for every bootstrap or backtest refit fitted from here on."""
    fitted_models: list[int] = []
    real = DeepCausalMMM._refits

    def counting(self, tasks, n_tasks, workers):  # type: ignore[no-untyped-def]
        for model_, seconds in real(self, tasks, n_tasks, workers):
            fitted_models.append(1)
            yield model_, seconds

    monkeypatch.setattr(DeepCausalMMM, "_refits", counting)
    return fitted_models


@pytest.fixture(scope="session")
def mediated() -> DeepCausalMMM:
    """6 regions x 60 weeks x 3 channels with the graph channel_1 -> channel_2 given (channel_3
    apart), so that a channel's total effect differs from its direct one."""
    sim = simulate_panel(6, 60, 3, seed=11, graph=[("channel_1", "channel_2", 0.5)])
    config = {**FAST, "graph": {"mode": "fixed", "edges": [["channel_1", "channel_2"]]}}
    return DeepCausalMMM(config=config, random_state=0).fit(
        sim.X, sim.y, regions=sim.regions, dates=sim.dates, controls=sim.control_frame)
