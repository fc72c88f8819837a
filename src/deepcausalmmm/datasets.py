"""Simulated geo x week panels with known ground truth.

The simulator is written independently of the model code (plain numpy), so
recovering its truth is a genuine check. Realistic features: geo sizes that
differ ~10x, always-on and flighted channels, spend correlated across
channels through shared budget seasons, trend, yearly seasonality, a price
and a promotion control, two-stage carryover with delayed peaks, Hill
saturation relative to each region's typical spend, and Gaussian noise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .constants import BASELINE, CONTROLS, DATE, PREDICTION, REGION

__all__ = ["SimulatedPanel", "flight_plan", "simulate_panel"]


@dataclass(frozen=True)
class SimulatedPanel:
    """A simulated panel and its truth.

    Attributes
    ----------
    data : DataFrame
        Long table: ``region``, ``date``, one column per channel, per control, and ``kpi``.
    channels, controls : list of str
    truth : DataFrame indexed by (region, date)
        True contribution of every channel, plus ``baseline``, ``controls`` and
        the noise-free ``prediction`` (KPI = prediction + noise).
    params : dict
        True parameters: ``gates`` [C,2], ``half_sat`` [C], ``slope`` [C],
        ``beta`` [C], ``region_size`` [R], ``control_coef`` [K], ``edges``,
        ``budget_season`` [T] (the budget multiplier every channel shares) and
        ``kpi_season`` [T] (the baseline's yearly season, a share of its level).
    truth_effects : DataFrame
        Per channel: ``total`` (KPI lost under do(channel = 0), its induced
        activity in descendants removed), ``direct``, ``mediated``, ``total_share``.
    truth_paths : DataFrame
        Where each total effect lands: row ``c``, column ``j`` is the fall in channel
        ``j``'s own contribution under do(``c`` = 0), summed over the panel. Row sums
        are ``truth_effects["total"]``, the diagonal is ``direct``; off the diagonal,
        what ``c`` causes through the activity it induces in ``j``. With the true
        contributions (``truth``) it lets a benchmark score any estimate of the
        channels' scales, e.g. a least-squares fit that knows every curve.
    """

    data: pd.DataFrame
    channels: list[str]
    controls: list[str]
    truth: pd.DataFrame
    params: dict[str, Any] = field(repr=False)
    truth_effects: pd.DataFrame | None = field(default=None, repr=False)
    truth_paths: pd.DataFrame | None = field(default=None, repr=False)
    _lift: Callable[[int, np.ndarray], float] | None = field(default=None, repr=False, compare=False)

    @property
    def X(self) -> pd.DataFrame:
        """Channel columns."""
        return self.data[self.channels]

    @property
    def y(self) -> np.ndarray:
        """KPI per row."""
        return self.data["kpi"].to_numpy()

    @property
    def regions(self) -> np.ndarray:
        """Region label per row."""
        return self.data[REGION].to_numpy()

    @property
    def dates(self) -> np.ndarray:
        """Date per row."""
        return self.data[DATE].to_numpy()

    @property
    def control_frame(self) -> pd.DataFrame:
        """Control columns."""
        return self.data[self.controls]

    def true_lift(
        self, channel: str, regions: Sequence[Any] | None = None, start: Any = None, end: Any = None
    ) -> float:
        """What a perfect geo experiment would measure: the KPI lost over ``regions``
        (None: all) and weeks ``start``..``end`` (inclusive; None: open) when
        ``channel`` is switched off there, with the activity it induced in other
        channels removed too. Noise-free, computed by simulating the intervention.
        """
        if self._lift is None:
            raise ValueError("this SimulatedPanel was not built by simulate_panel(); no truth to simulate")
        frame = self.data
        in_regions = np.ones(len(frame), dtype=bool) if regions is None else frame[REGION].isin(list(regions)).to_numpy()
        when = pd.to_datetime(frame[DATE])
        in_weeks = np.ones(len(frame), dtype=bool)
        if start is not None:
            in_weeks &= (when >= pd.Timestamp(start)).to_numpy()
        if end is not None:
            in_weeks &= (when <= pd.Timestamp(end)).to_numpy()
        R = frame[REGION].nunique()
        cells = (in_regions & in_weeks).reshape(R, -1)  # rows are region-major, weeks in order
        return self._lift(self.channels.index(channel), cells)

    def true_shares(self) -> pd.Series:
        """Each channel's share of the total media contribution."""
        totals = self.truth[self.channels].sum()
        return totals / totals.sum()


def _two_stage(x: np.ndarray, g1: float, g2: float) -> np.ndarray:
    """Two gated stages over the last axis' time dimension: x ``[R,T]`` -> ``[R,T]``."""
    s1 = np.zeros(x.shape[0])
    s2 = np.zeros(x.shape[0])
    out = np.zeros_like(x)
    for t in range(x.shape[1]):
        s1 = g1 * s1 + (1 - g1) * x[:, t]
        s2 = g2 * s2 + (1 - g2) * s1
        out[:, t] = s2
    return out


_YEAR = 52.18  # weeks: the period of the simulated KPI's yearly season
_SEASON_PHASE = 1.0  # its phase (radians)


def simulate_panel(
    n_regions: int = 20,
    n_weeks: int = 104,
    n_channels: int = 5,
    seed: int = 0,
    *,
    noise: float = 0.05,
    media_share: float = 0.3,
    start: str = "2023-01-02",
    zero_channels: tuple[int, ...] = (),
    graph: Sequence[tuple[Any, ...]] | None = None,
    mediation: str = "additive",
    national: Sequence[Any] = (),
    budget_in_phase: bool = False,
) -> SimulatedPanel:
    """Simulate a panel with known contributions.

    Parameters
    ----------
    n_regions, n_weeks, n_channels : int
        Panel size (``n_weeks >= 8``, ``n_channels >= 1``).
    seed : int
        Random seed; the same seed gives the same panel.
    noise : float
        KPI noise standard deviation as a fraction of the region's baseline.
    media_share : float
        Approximate share of KPI driven by media (0..0.9).
    start : str
        First week (a Monday).
    zero_channels : tuple of int
        Channels whose spend is zero everywhere (for zero-in-zero-out checks).
    graph : list of (parent, child, weight[, lag]), optional
        Mediation edges among channel activities (names like ``"channel_1"`` or
        0-based indices). The child's activity gains ``weight`` x the parent's
        activity ``lag`` weeks earlier, in units of each channel's typical
        regional activity. Must be acyclic at lag 0. Truth effects
        (``truth_effects``) are computed by simulating do(channel = 0).
    mediation : {"additive", "lift"}
        How an edge acts: ``"additive"`` adds the induced activity as above;
        ``"lift"`` multiplies the child's activity by ``1 + weight`` x the
        parent's activity (``lag`` weeks earlier) over its observed regional
        mean, a lift in proportion ("TV raises search by 30% in a typical
        week"; the means stay fixed under interventions).
    national : channels (names like ``"channel_1"`` or 0-based indices) bought
        nationally: the same relative plan in every region (its activity is the
        region's size times the national plan, with no region-week variation and
        no regional dropout), like national TV. The draws are the same as without.
    budget_in_phase : bool
        Put the budget season shared by every channel in phase with the
        KPI's yearly season (spend peaks when demand does, the usual
        confounder of media and seasonality) instead of at a random phase.
        The other draws are the same as without.

    Returns
    -------
    SimulatedPanel
    """
    if n_regions < 1 or n_weeks < 8 or n_channels < 1:
        raise ValueError(
            f"simulate_panel needs n_regions >= 1, n_weeks >= 8, n_channels >= 1; found "
            f"{n_regions}, {n_weeks}, {n_channels}"
        )
    if mediation not in ("additive", "lift"):
        raise ValueError(f"`mediation` must be 'additive' or 'lift', found {mediation!r}")
    if not 0 <= media_share < 0.9:
        raise ValueError(f"`media_share` must be in [0, 0.9), found {media_share}")
    rng = np.random.default_rng(seed)
    R, T, C = n_regions, n_weeks, n_channels
    t = np.arange(T)
    dates = pd.date_range(start, periods=T, freq="7D")
    regions = [f"geo_{i:03d}" for i in range(R)]
    channels = [f"channel_{c + 1}" for c in range(C)]
    controls = ["price", "promo"]

    size = np.exp(rng.uniform(0, np.log(10), R))  # [R] geo size, 1..10
    size[: min(R, 2)] = [1.0, 10.0][: min(R, 2)]
    kpi_unit = 1000.0

    # Spend: shared budget season, channel-specific flights, regional noise.
    budget = 1 + 0.35 * np.sin(2 * np.pi * (t / 52.0) + rng.uniform(0, 2 * np.pi))  # [T]
    if budget_in_phase:  # the KPI season's first harmonic (below); the random phase stays drawn
        budget = 1 + 0.35 * np.sin(2 * np.pi * t / _YEAR + _SEASON_PHASE)
    spend = np.zeros((R, T, C))
    bought_nationally = {_channel_index(node, channels, f"`national` entry {node!r}") for node in national}
    for c in range(C):
        base = rng.uniform(50, 500)
        own = 1 + 0.25 * np.sin(2 * np.pi * t / rng.uniform(8, 30) + rng.uniform(0, 6))  # [T]
        if c % 2 == 1:  # flighted: on/off blocks nationally, some regional dropout
            on = flight_plan(rng, T)
            regional = rng.random((R, T)) > 0.1
            pattern = on[None, :] * regional
        else:
            pattern = np.ones((R, T))
        level = base * size[:, None] * budget[None, :] * own[None, :]  # [R,T]
        regional_noise = rng.lognormal(0, 0.35, (R, T))
        if c in bought_nationally:
            pattern = np.broadcast_to(on[None, :], (R, T)) if c % 2 == 1 else pattern
            regional_noise = np.ones((R, T))
        spend[:, :, c] = level * pattern * regional_noise
    for c in zero_channels:
        spend[:, :, c] = 0.0
    typical = np.array([spend[:, :, c].mean() for c in range(C)])
    typical = np.where(typical > 0, typical, 1.0)
    edges = _parse_edges(graph, channels)
    exogenous = spend.copy()
    spend = _apply_graph(exogenous, edges, typical, lift=mediation == "lift")
    observed_means = spend.mean(axis=1)  # [R,C]: a lift's reference level, fixed under interventions

    def apply(do: int | None = None, where: np.ndarray | None = None) -> np.ndarray:
        if mediation == "lift":
            return _apply_graph(exogenous, edges, typical, do, where, lift=True, means=observed_means)
        return _apply_graph(exogenous, edges, typical, do, where)

    # Truth parameters.
    g1 = rng.uniform(0.2, 0.7, C)
    g2 = np.where(rng.random(C) < 0.4, rng.uniform(0.3, 0.6, C), 0.0)  # some delayed peaks
    half_sat = rng.uniform(0.6, 1.8, C)
    slope = rng.uniform(1.0, 2.2, C)
    weights = rng.dirichlet(np.full(C, 2.0))
    u = rng.normal(0, 0.1, (R, C))

    mean_spend = spend.mean(axis=1)  # [R,C] the region's typical activity (fixed under interventions)
    mean_spend = np.where(mean_spend > 0, mean_spend, 1.0)

    def saturated(sp: np.ndarray) -> np.ndarray:
        sat = np.zeros((R, T, C))
        for c in range(C):
            carried = _two_stage(sp[:, :, c] / mean_spend[:, c : c + 1], g1[c], g2[c])  # [R,T]
            ratio = half_sat[c] / np.maximum(carried, 1e-12)
            sat[:, :, c] = np.where(carried > 0, 1 / (1 + ratio ** slope[c]), 0.0)
        return sat

    sat = saturated(spend)
    mean_sat = np.maximum(sat.mean(axis=(0, 1)), 1e-3)  # [C]
    beta = media_share / (1 - media_share) * weights / mean_sat  # [C] relative to baseline
    unit = size[:, None, None] * kpi_unit * beta[None, None, :] * np.exp(u)[:, None, :]  # [R,1,C]
    contrib = unit * sat  # [R,T,C]

    trend = 1 + rng.uniform(-0.1, 0.15) * t / T + rng.normal(0, 0.04, R)[:, None] * t / T  # [R,T]
    season = 0.08 * np.sin(2 * np.pi * t / _YEAR + _SEASON_PHASE) + 0.03 * np.cos(4 * np.pi * t / _YEAR)
    baseline = size[:, None] * kpi_unit * (trend + season[None, :])  # [R,T]

    price = 10 + np.cumsum(rng.normal(0, 0.1, (R, T)), axis=1)  # [R,T]
    promo = (rng.random((R, T)) < 0.15).astype(float)
    price_c = price - price.mean(axis=1, keepdims=True)
    ctrl_coef = np.array([-0.04, 0.05])
    ctrl_eff = size[:, None, None] * kpi_unit * np.stack(
        [ctrl_coef[0] * price_c, ctrl_coef[1] * (promo - promo.mean(axis=1, keepdims=True))], axis=-1
    )  # [R,T,K]

    clean = baseline + contrib.sum(-1) + ctrl_eff.sum(-1)
    kpi = clean + rng.normal(0, 1, (R, T)) * noise * baseline

    rr = np.repeat(regions, T)
    dd = np.tile(dates, R)
    data = pd.DataFrame({REGION: rr, DATE: dd})
    for c, name in enumerate(channels):
        data[name] = spend[:, :, c].reshape(-1)  # [R,T] -> [R*T]
    data["price"] = price.reshape(-1)
    data["promo"] = promo.reshape(-1)
    data["kpi"] = kpi.reshape(-1)

    truth = pd.DataFrame(contrib.reshape(R * T, C), columns=channels)
    truth[BASELINE] = baseline.reshape(-1)
    truth[CONTROLS] = ctrl_eff.sum(-1).reshape(-1)
    truth[PREDICTION] = clean.reshape(-1)
    truth.index = pd.MultiIndex.from_arrays([rr, dd], names=[REGION, DATE])
    paths = np.stack([(contrib - unit * saturated(apply(do=c))).sum(axis=(0, 1)) for c in range(C)])  # [C,C]
    totals = paths.sum(axis=1)
    direct = contrib.sum(axis=(0, 1))
    truth_effects = pd.DataFrame(
        {"total": totals, "direct": direct, "mediated": totals - direct,
         "total_share": totals / totals.sum()},
        index=pd.Index(channels, name="channel"),
    )
    truth_paths = pd.DataFrame(paths, index=pd.Index(channels, name="channel"), columns=channels)

    def lift(channel: int, cells: np.ndarray) -> float:
        off = apply(do=channel, where=cells)
        return float(((contrib - unit * saturated(off)).sum(-1) * cells).sum())

    params = {
        "budget_season": budget,
        "kpi_season": season,
        "gates": np.stack([g1, g2], axis=1),
        "half_sat": half_sat,
        "slope": slope,
        "beta": beta,
        "region_size": size,
        "region_deviation": u,
        "control_coef": ctrl_coef,
        "edges": [(channels[i], channels[j], w, lag) for i, j, w, lag in edges],
    }
    return SimulatedPanel(data, channels, controls, truth, params, truth_effects, truth_paths, lift)


def flight_plan(rng: np.random.Generator, T: int, lengths: tuple[int, int] = (3, 9), p_on: float = 0.55) -> np.ndarray:
    """``[T]`` 0/1 flights: runs of ``lengths[0]..lengths[1] - 1`` weeks, each on with probability ``p_on``."""
    on = np.zeros(T)
    week = 0
    while week < T:
        length = int(rng.integers(*lengths))
        on[week : week + length] = rng.random() < p_on
        week += length
    return on


def _parse_edges(graph: Sequence[tuple[Any, ...]] | None, channels: list[str]) -> list[tuple[int, int, float, int]]:
    if not graph:
        return []
    out = []
    for edge in graph:
        if len(edge) not in (3, 4):
            raise ValueError(f"graph edge {edge!r} must be (parent, child, weight) or (parent, child, weight, lag)")
        parent, child, weight = edge[:3]
        lag = int(edge[3]) if len(edge) == 4 else 0
        i, j = (_channel_index(node, channels, f"graph edge {edge!r}") for node in (parent, child))
        out.append((i, j, float(weight), lag))
    return out


def _channel_index(node: Any, channels: list[str], where: str) -> int:
    """Position of a channel given by name or by position (``where``: what named it, for errors)."""
    if isinstance(node, str):
        if node not in channels:
            raise ValueError(
                f"{where}: unknown channel {node!r}; the simulated channels are "
                f"{channels} (named from channel_1), or give positions 0..{len(channels) - 1}"
            )
        return channels.index(node)
    if not 0 <= int(node) < len(channels):
        raise ValueError(
            f"{where}: channel position {node!r} is outside 0..{len(channels) - 1} "
            f"for {len(channels)} channels; give a position in that range or a name from {channels}"
        )
    return int(node)


def _apply_graph(
    exogenous: np.ndarray,
    edges: list[tuple[int, int, float, int]],
    typical: np.ndarray,
    do: int | None = None,
    where: np.ndarray | None = None,
    lift: bool = False,
    means: np.ndarray | None = None,
) -> np.ndarray:
    """Add induced activity along ``edges`` (children after parents), ``[R,T,C]``.

    ``do``: a channel set to 0 (with its induced part) before its children are
    computed, in the cells of ``where`` ``[R,T]`` (None: everywhere).
    Edges at any lag must be acyclic as a whole (the simulator's restriction).
    ``lift``: each edge multiplies the child by ``1 + w x parent / parent's regional mean``
    instead, the means ``[R,C]`` given (interventions) or, by default, the parent's own.
    """
    spend = exogenous.copy()
    C = spend.shape[2]
    adj = np.zeros((C, C))
    for i, j, _w, _lag in edges:
        adj[i, j] = 1
    order: list[int] = []
    remaining = set(range(C))
    while remaining:
        ready = [j for j in sorted(remaining) if not any(adj[i, j] for i in remaining if i != j)]
        if not ready:
            raise ValueError("graph edges form a cycle; simulate_panel needs an acyclic graph")
        order += ready
        remaining -= set(ready)
    for j in order:
        for i, jj, w, lag in edges:
            if jj != j:
                continue
            parent = spend[:, :, i]
            mean = (parent.mean(axis=1) if means is None else means[:, i])[:, None]  # [R,1]
            if lag:
                parent = np.concatenate([np.zeros_like(parent[:, :lag]), parent[:, :-lag]], axis=1)
            if lift:
                spend[:, :, j] *= 1 + w * parent / np.where(mean > 0, mean, 1.0)
            else:
                spend[:, :, j] += w * typical[j] / typical[i] * parent
        if j == do:
            spend[:, :, j] = 0.0 if where is None else np.where(where, 0.0, spend[:, :, j])
    return spend
