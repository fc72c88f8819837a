"""Shared fixtures: small simulated panels and models fitted once per session."""

from __future__ import annotations

import pytest

from deepcausalmmm import DeepCausalMMM
from deepcausalmmm.datasets import SimulatedPanel, simulate_panel

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
