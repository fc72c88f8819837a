"""Attribution on panels from a second simulator, unlike the package's own.

Usage::

    python benchmarks/other_simulator.py [--seeds 0,1] [--linear | --flighted [--lagged] [--lift] [--multiplicative] [--regional-flights] | --logistic | --holidays [--holiday-control]] [--national] [--empty] [--roi-priors SD] [--intervals 20 [--prior-spread 1.4]] [--config '{"regularization": {"l2": 1e-4}}']

The package's simulator shares design choices with the model (two-stage
carryover, Hill curves relative to each region's typical activity). This one
does not: gamma-distributed activity, a budget cycle with a phase of its own
in every region, one-stage geometric carryover (0.4), a saturation curve
``a / (a + 0.8)`` on activity relative to the *panel* mean (large regions
saturate, small ones stay near linear; ``--linear`` makes it ``0.8 a``), and a
linear structural model among activities (ch0 -> ch1, ch0 -> ch2,
ch1 -> ch2; ``--empty`` drops them). True total effects come from simulating
do(channel = 0).

``--flighted`` switches to a third design, closer to a media plan: eight
named channels, four flighted (national bursts of 3-8 weeks with gaps of 2-7:
tv, video, radio, ooh) and four always-on (search, social, display, email),
each with a yearly budget season of its own phase, region sizes
log-normal, week-to-week regional variation log-normal (sd 0.3); a decay per
channel (0.1-0.7, one stage) and an S-shaped Hill curve per channel (half
saturation 0.5-2, slope 1-2) on activity relative to each region's mean; a
rising trend, a yearly baseline season and a price control (effect -0.5 per
unit); mediation tv -> search, tv -> social, social -> search (``--empty``
drops them; ``--lagged`` makes tv -> search act one week later and tv ->
social two weeks later; ``--lift`` makes each a lift in proportion, the child's
activity its own part times ``1 + w * parent / parent's regional mean``);
noise 6% of the baseline; root tv. ``--multiplicative`` makes the KPI the
baseline times ``exp`` of the summed responses (a log-scale model, in which a
channel's effect moves with the baseline and channels interact).

``--logistic`` is a fourth design, written in session 14 the way a
PyMC-Marketing-style simulation would be: five channels named as in a media
plan, TV and radio on or off nationally, geometric carryover, a logistic
saturation on spend relative to population, a temperature control, rows
shuffled, string regions and dates (see :func:`simulate_logistic`); root TV.
``--holidays`` is a fifth design, written in session 18 the way a Robyn-style
simulation might be: eight named channels with regional intensities of their
own, mediation through lag kernels, response per head of population, and two
holiday weeks a year that lift the KPI; the model gets only the price
control unless ``--holiday-control`` adds the holiday weeks (see
:func:`simulate_holidays`); root tv.
``--regional-flights`` (with ``--flighted``, session 33) draws the flighted
channels' bursts and gaps per region (a plan bought region by region, each
region dark in its own weeks) instead of one national plan.
``--national`` (with ``--flighted`` or ``--logistic``) buys tv and radio
nationally: the same relative plan in every region, no region-week
variation (the graph then learns their edges from the national series).
For each seed it prints the learned edges, total-share errors, the root's
total-effect error and the media share of KPI, for the model and for the
mediation-blind baseline (``graph.mode="none"``) fitted in the same run.
``--roi-priors SD`` adds a third fit: ROI priors (``calibration.roi_priors``)
on the channels the default fit marks ``extrapolated``, each centred on the
true ROI times ``exp(SD z)`` (``z`` standard normal, so the prior is as wrong
as its stated sd ``SD`` x mean).
``--intervals N`` runs ``get_effect_intervals(n_boot=N, prior_spread=S)``
(``--prior-spread S``, default the package's) on our fit and prints how many
true total-effect shares its 90% intervals hold, by identification level.
Each seed also prints the oracle (``benchmarks/oracle.py``): least squares
given every channel's true contribution series, estimating one scale per
channel and the baseline, the noise floor a model that must also learn the
curves is measured against (not with ``--multiplicative``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from deepcausalmmm import DeepCausalMMM
from deepcausalmmm.estimator import PRIOR_SPREAD

sys.path.insert(0, str(Path(__file__).resolve().parent))
from oracle import oracle_line  # noqa: E402

EDGES = {(1, 0): 0.4, (2, 0): 0.6, (2, 1): 0.5}  # (child, parent): weight, in typical-activity units


def activities(
    exo: np.ndarray, typical: np.ndarray, off: int | None = None, edges: dict | None = None
) -> np.ndarray:
    """Observed activity ``[R,T,C]`` from exogenous parts; ``off``: the channel set to 0."""
    x = exo.copy()
    for c in range(x.shape[2]):
        for (child, parent), w in (EDGES if edges is None else edges).items():
            if child == c:
                x[:, :, c] += w * typical[c] / typical[parent] * x[:, :, parent]
        if c == off:
            x[:, :, c] = 0.0
    return x


def record_truth(truth: dict | None, kpi: np.ndarray, contrib: np.ndarray, paths: np.ndarray,
                 controls: dict[str, np.ndarray]) -> None:
    """Fill ``truth`` (when given) with what :mod:`oracle` needs: the KPI ``[R,T]``, each
    channel's true contribution ``[R,T,C]``, the paths ``[C,C]`` (row ``c``, column ``j``: the fall
    in ``j``'s contribution under do(``c`` = 0)) and the design's control columns by name
    (``[R,T]`` each; :func:`oracle_controls` picks those the model gets)."""
    if truth is not None:
        truth.update(kpi=kpi, contrib=contrib, paths=paths, controls=controls)


def oracle_controls(truth: dict, names: list[str]) -> np.ndarray | None:
    """``[R,T,K]``: the recorded control columns ``names`` (the ones the model is given)."""
    return np.stack([truth["controls"][n] for n in names], axis=-1) if names else None


def simulate(seed: int, linear: bool, R: int = 40, T: int = 156, C: int = 6, empty: bool = False,
             truth: dict | None = None):
    """Long table, channel names, true total effects ``[C]`` and the true media share of KPI;
    ``truth`` (a dict, if given) receives the oracle's inputs (:func:`record_truth`)."""
    rng = np.random.default_rng(seed)
    size = np.exp(rng.uniform(0, np.log(10), R))  # [R]
    t = np.arange(T)
    cycle = 1 + 0.3 * np.sin(2 * np.pi * t[None, :] / 52 + rng.uniform(0, 2 * np.pi, R)[:, None])
    exo = np.stack([size[:, None] * cycle * rng.gamma(4, 0.25, (R, T)) * rng.uniform(50, 500)
                    for _ in range(C)], axis=-1)  # [R,T,C]
    typical = exo.mean(axis=(0, 1))  # [C]
    edges = {} if empty else EDGES
    x = activities(exo, typical, edges=edges)
    b = rng.dirichlet(np.full(C, 2.0)) * 0.4

    def carried(a: np.ndarray) -> np.ndarray:
        out = np.zeros_like(a)
        for k in range(T):
            out[:, k] = a[:, k] + (0.4 * out[:, k - 1] if k else 0.0)
        return out

    norm = carried(x).mean(axis=(0, 1))  # fixed by the observed activity

    def response(a: np.ndarray) -> np.ndarray:
        rel = carried(a) / norm
        shape = 0.8 * rel if linear else 1.8 * rel / (rel + 0.8)
        return size[:, None, None] * 1000 * b * shape  # [R,T,C]

    base = size[:, None] * 1000 * (1 + 0.05 * np.sin(2 * np.pi * t / 52))[None, :]
    contrib = response(x)
    y = base + contrib.sum(-1) + rng.normal(0, 0.04, (R, T)) * base
    paths = np.stack([(contrib - response(activities(exo, typical, off=c, edges=edges))).sum(axis=(0, 1))
                      for c in range(C)])  # [C,C]
    total = paths.sum(axis=1)
    record_truth(truth, y, contrib, paths, {})
    names = [f"ch{c}" for c in range(C)]
    df = pd.DataFrame({"region": np.repeat(np.arange(R), T), "week": np.tile(t, R)})
    for c, n in enumerate(names):
        df[n] = x[:, :, c].reshape(-1)
    df["kpi"] = y.reshape(-1)
    return df, names, total, contrib.sum() / y.sum()


FLIGHTED = ["tv", "search", "social", "display", "video", "radio", "email", "ooh"]
FLIGHTED_EDGES = {(1, 0): 0.5, (2, 0): 0.3, (1, 2): 0.4}  # (child, parent), as EDGES
FLIGHTED_ORDER = (0, 2, 1, 3, 4, 5, 6, 7)  # parents before children


FLIGHTED_LAGS = {(1, 0): 1, (2, 0): 2}  # --lagged: (child, parent) -> weeks; tv -> search 1, tv -> social 2


def simulate_flighted(seed: int, empty: bool = False, R: int = 40, T: int = 156, noise: float = 0.06,
                      lagged: bool = False, lift: bool = False, national_buys: bool = False,
                      multiplicative: bool = False, regional_flights: bool = False, truth: dict | None = None):
    """The ``--flighted`` design: long table, names, true totals ``[C]``, true media share, and
    ``true_lift(channel, regions, start, end)``: the KPI lost over those region-weeks when the
    channel is switched off in them (its induced activity in children removed too).
    ``national_buys``: tv and radio bought nationally (no region-week variation; the same draws
    otherwise). ``multiplicative``: the KPI is the baseline times ``exp`` of the summed channel
    responses (a log-scale model, as Meridian's and Robyn's multiplicative options), so a channel's
    effect in KPI units moves with the baseline's trend, season and price, and channels interact:
    the true totals (each from its own do(channel = 0)) then sum to more than the media part of the
    KPI. The same draws otherwise. ``regional_flights``: the flighted channels' bursts and gaps
    drawn per region (each region's own plan, from a stream of their own; the rest of the draws
    the same). ``truth`` (a dict, if given) receives the oracle's inputs
    (:func:`record_truth`; not with ``multiplicative``, whose channel parts do not add up)."""
    rng = np.random.default_rng(seed)
    C = len(FLIGHTED)
    size = np.exp(rng.normal(0.0, 0.8, R))  # [R]
    t = np.arange(T)
    plan = np.empty((T, C))
    seasons = np.empty((T, C))

    def bursts(draw: np.random.Generator) -> np.ndarray:
        """``[T]``: bursts of 3-8 weeks at 0.6-1.4, gaps of 2-7 weeks."""
        on, k = np.zeros(T), 0
        while k < T:
            k += int(draw.integers(2, 8))  # gap
            n = int(draw.integers(3, 9))  # burst length
            on[k:k + n] = draw.uniform(0.6, 1.4)
            k += n
        return on

    for c in range(C):
        seasons[:, c] = 1 + 0.4 * np.sin(2 * np.pi * t / 52.18 + rng.uniform(0, 2 * np.pi))  # [T]
        if FLIGHTED[c] in ("tv", "video", "radio", "ooh"):
            plan[:, c] = seasons[:, c] * bursts(rng)
        else:
            plan[:, c] = seasons[:, c] * rng.lognormal(0.0, 0.15, T)
    plan = np.broadcast_to(plan, (R, T, C)).copy()  # [R,T,C]
    if regional_flights:
        own = np.random.default_rng([seed, 1])
        for c in (FLIGHTED.index(n) for n in ("tv", "video", "radio", "ooh")):
            plan[:, :, c] = seasons[None, :, c] * np.stack([bursts(own) for _ in range(R)])
    regional = rng.lognormal(0.0, 0.3, (R, T, C))  # [R,T,C]
    if national_buys:
        regional[:, :, [FLIGHTED.index("tv"), FLIGHTED.index("radio")]] = 1.0
    exo = size[:, None, None] * plan * regional * rng.uniform(50, 500, C)  # [R,T,C]
    typical = exo.mean(axis=(0, 1))  # [C]
    edges = {} if empty else FLIGHTED_EDGES
    lags = FLIGHTED_LAGS if lagged else {}
    parent_mean: dict[int, np.ndarray] = {}  # --lift: each parent's observed regional mean [R,1]

    def acts(off: int | None = None, cells: np.ndarray | None = None) -> np.ndarray:
        """Activity with channel ``off`` switched off in ``cells`` ``[R,T]`` (default: all)."""
        x = exo.copy()
        for c in FLIGHTED_ORDER:
            for (child, parent), w in edges.items():
                if child == c:
                    lag = lags.get((child, parent), 0)
                    src = np.concatenate([np.zeros((R, lag)), x[:, : T - lag, parent]], axis=1)  # [R,T]
                    if lift:  # the child's activity raised in proportion: 1 + w x parent / its mean
                        x[:, :, c] *= 1 + w * src / parent_mean[parent]
                    else:
                        x[:, :, c] += w * typical[c] / typical[parent] * src
            if off is None and lift:
                parent_mean[c] = x[:, :, c].mean(axis=1, keepdims=True)
            if c == off:
                x[:, :, c] = 0.0 if cells is None else np.where(cells, 0.0, x[:, :, c])
        return x

    decay = rng.uniform(0.1, 0.7, C)
    half = rng.uniform(0.5, 2.0, C)
    slope = rng.uniform(1.0, 2.0, C)

    def carried(a: np.ndarray) -> np.ndarray:
        out = np.zeros_like(a)
        for k in range(T):
            out[:, k] = a[:, k] + (decay * out[:, k - 1] if k else 0.0)
        return out

    x = acts()
    norm = carried(x).mean(axis=1, keepdims=True)  # [R,1,C]: each region's own mean
    b = rng.dirichlet(np.full(C, 1.5)) * 0.25  # contribution at typical activity, share of base

    def response(a: np.ndarray) -> np.ndarray:
        rel = carried(a) / norm
        h = rel**slope / (rel**slope + half**slope)
        return size[:, None, None] * 1000 * b * (1 + half**slope) * h  # [R,T,C]

    price = 1 + 0.05 * rng.standard_normal((R, T)).cumsum(axis=1) / np.sqrt(T)  # [R,T]
    base = size[:, None] * 1000 * (1 + 0.1 * t / T + 0.08 * np.sin(2 * np.pi * t / 52.18 + 1.0))[None, :]
    base = base - size[:, None] * 1000 * 0.5 * (price - 1)

    def media(a: np.ndarray) -> np.ndarray:
        """The KPI's media part ``[R,T]`` under activity ``a``."""
        if multiplicative:  # the same responses as log-scale effects (relative to the region's size)
            return base * np.expm1(response(a).sum(-1) / (size[:, None] * 1000))
        return response(a).sum(-1)

    contrib = media(x)  # [R,T]
    y = base + contrib + rng.normal(0, noise, (R, T)) * base
    if multiplicative:
        total = np.array([contrib.sum() - media(acts(off=c)).sum() for c in range(C)])
    else:
        parts = response(x)  # [R,T,C]
        paths = np.stack([(parts - response(acts(off=c))).sum(axis=(0, 1)) for c in range(C)])  # [C,C]
        total = paths.sum(axis=1)
        record_truth(truth, y, parts, paths, {"price": price})
    df = pd.DataFrame({"region": np.repeat(np.arange(R), T), "week": np.tile(t, R)})
    for c, n in enumerate(FLIGHTED):
        df[n] = x[:, :, c].reshape(-1)
    df["price"] = price.reshape(-1)
    df["kpi"] = y.reshape(-1)

    def true_lift(channel: str, regions: list[int], start: int, end: int) -> float:
        cells = np.zeros((R, T), dtype=bool)
        cells[np.ix_(np.asarray(regions), np.arange(start, end + 1))] = True
        off = media(acts(FLIGHTED.index(channel), cells))
        return float((contrib - off)[cells].sum())

    return df, list(FLIGHTED), total, contrib.sum() / y.sum(), true_lift


LOGISTIC = ["TV Spend", "Paid Search", "Social Media", "Radio", "Print"]
LOGISTIC_EDGES = {(0, 1): 0.6, (2, 1): 0.3}  # (parent, child): weight in units of mean activity


def simulate_logistic(seed: int, empty: bool = False, R: int = 30, T: int = 130, noise: float = 0.05,
                      national_buys: bool = False, truth: dict | None = None):
    """The ``--logistic`` design: long table (rows shuffled), names, true totals ``[C]``, media share.

    Five channels named as in a media plan (TV and radio on or off nationally
    in runs of weeks, search, social and print always on), each with a yearly
    budget cosine of its own phase, region populations gamma-distributed,
    region-week noise log-normal (sd 0.25); geometric carryover (0.2-0.6)
    normalised to keep spend, a logistic saturation ``tanh(lambda z / 2)``
    (lambda 0.5-2.5) on carried spend relative to the channel's mean spend
    scaled by the region's population; a growing baseline with a yearly
    season and a temperature control; mediation TV -> search and
    social -> search (``--empty`` drops them); noise 5% of the baseline.
    Regions are strings, weeks are dates (Sundays) and the channel names
    hold spaces. ``national_buys``: TV and radio bought nationally (no
    region-week noise; the same draws otherwise). ``truth`` (a dict, if given)
    receives the oracle's inputs (:func:`record_truth`, in region x week
    order, before the rows are shuffled).
    """
    rng = np.random.default_rng(seed)
    C = len(LOGISTIC)
    pop = rng.gamma(2.0, 1.0, R) + 0.2  # [R]
    t = np.arange(T)
    plan = np.empty((T, C))
    for c, name in enumerate(LOGISTIC):
        season = 1 + 0.3 * np.cos(2 * np.pi * (t - rng.integers(52)) / 52)  # [T]
        if name in ("TV Spend", "Radio"):
            on = np.convolve((rng.random(T) < 0.55).astype(float), np.ones(3) / 3, mode="same") > 0.5
            plan[:, c] = season * on * rng.uniform(0.7, 1.3, T)
        else:
            plan[:, c] = season * np.exp(rng.normal(0.0, 0.2, T))
    regional = np.exp(rng.normal(0.0, 0.25, (R, T, C)))  # [R,T,C]
    if national_buys:
        regional[:, :, [LOGISTIC.index("TV Spend"), LOGISTIC.index("Radio")]] = 1.0
    exo = pop[:, None, None] * plan[None] * regional * rng.uniform(1e3, 2e4, C)  # [R,T,C]
    mean = exo.mean(axis=(0, 1))  # [C]
    edges = {} if empty else LOGISTIC_EDGES

    def acts(off: int | None = None) -> np.ndarray:
        x = exo.copy()
        if off is not None:
            x[:, :, off] = 0.0
        for (parent, child), w in edges.items():  # parents (0, 2) come before the child (1)
            if child != off:
                x[:, :, child] += w * mean[child] / mean[parent] * x[:, :, parent]
        return x

    alpha = rng.uniform(0.2, 0.6, C)
    lam = rng.uniform(0.5, 2.5, C)
    beta = rng.dirichlet(np.ones(C)) * 0.3  # contribution at mean spend, share of base

    def response(x: np.ndarray) -> np.ndarray:
        out = np.empty_like(x)
        for c in range(C):
            carried = lfilter([1 - alpha[c]], [1, -alpha[c]], x[:, :, c], axis=1)  # [R,T]
            z = carried / (mean[c] * pop[:, None] / pop.mean())
            out[:, :, c] = np.tanh(lam[c] * z / 2) / np.tanh(lam[c] / 2)
        return 1000 * pop[:, None, None] * beta * out  # [R,T,C]

    x = acts()
    temp = np.sin(2 * np.pi * t / 52)[None, :] + rng.normal(0.0, 0.3, (R, T))  # [R,T]
    base = 1000 * pop[:, None] * (1 + 0.002 * t + 0.1 * np.sin(2 * np.pi * t / 52 + 0.5))[None, :]
    base = base + 20 * pop[:, None] * temp
    contrib = response(x)
    y = base + contrib.sum(-1) + rng.normal(0.0, noise, (R, T)) * base
    paths = np.stack([(contrib - response(acts(off=c))).sum(axis=(0, 1)) for c in range(C)])  # [C,C]
    total = paths.sum(axis=1)
    record_truth(truth, y, contrib, paths, {"temperature": temp})
    dates = pd.date_range("2021-01-03", periods=T, freq="W-SUN")
    df = pd.DataFrame({"region": np.repeat([f"geo {i:02d}" for i in range(R)], T),
                       "week": np.tile(dates, R)})
    for c, name in enumerate(LOGISTIC):
        df[name] = x[:, :, c].reshape(-1)
    df["temperature"] = temp.reshape(-1)
    df["kpi"] = y.reshape(-1)
    df = df.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    return df, list(LOGISTIC), total, contrib.sum() / y.sum()


HOLIDAY_NAMES = ["tv", "radio", "search", "social", "display", "video", "email", "affiliate"]
HOLIDAY_FLIGHTED = ("tv", "radio", "video")
# (parent, child): weight in typical-activity units and the kernel over lags 0, 1, ...
HOLIDAY_EDGES = {("tv", "search"): (0.5, (0.6, 0.3, 0.1)), ("social", "search"): (0.3, (1.0,)),
                 ("tv", "social"): (0.25, (0.5, 0.5))}
HOLIDAY_ORDER = ("tv", "radio", "video", "display", "email", "affiliate", "social", "search")


def simulate_holidays(seed: int, empty: bool = False, R: int = 40, T: int = 156, noise: float = 0.07,
                      holidays: bool = True, truth: dict | None = None):
    """The ``--holidays`` design: long table (with a 0/1 ``holiday`` column), names, true
    totals ``[C]`` and the true media share.

    Eight named channels (tv, radio and video in bursts of 2-6 weeks with gaps of 1-5, the rest
    always on), each with a yearly budget season of its own phase and a regional intensity of
    its own (log-normal, sd 0.3), region populations log-normal (sd 0.7), week-to-week noise
    log-normal (sd 0.25); mediation through lag kernels (tv -> search over lags 0-2,
    social -> search, tv -> social over lags 0-1; ``--empty`` drops them); geometric carryover
    (0.2-0.75) and a Hill curve (half saturation 0.6-1.8, slope 0.8-2.2) on carried activity
    per head of population; a trend, a yearly season, a price control and, unless
    ``holidays`` is False, the baseline up 25% and 40% in weeks 47-48 of every year.
    ``truth`` (a dict, if given) receives the oracle's inputs (:func:`record_truth`).
    """
    rng = np.random.default_rng(seed)
    C = len(HOLIDAY_NAMES)
    pop = rng.lognormal(0.0, 0.7, R)  # [R]
    t = np.arange(T)
    plan = np.empty((T, C))
    for c, name in enumerate(HOLIDAY_NAMES):
        season = 1 + 0.35 * np.sin(2 * np.pi * t / 52.18 + rng.uniform(0, 2 * np.pi))
        if name in HOLIDAY_FLIGHTED:
            on, k = np.zeros(T), 0
            while k < T:
                k += int(rng.integers(1, 6))
                n = int(rng.integers(2, 7))
                on[k:k + n] = 1.0
                k += n
            plan[:, c] = season * on
        else:
            plan[:, c] = season * rng.lognormal(0.0, 0.2, T)
    intensity = rng.lognormal(0.0, 0.3, (R, C))
    exo = (pop[:, None, None] * intensity[:, None, :] * plan[None] * rng.lognormal(0.0, 0.25, (R, T, C))
           * rng.uniform(1e3, 5e4, C))  # [R,T,C]
    typical = exo.mean(axis=(0, 1))
    edges = {} if empty else HOLIDAY_EDGES

    def acts(off: int | None = None) -> np.ndarray:
        x = exo.copy()
        for name in HOLIDAY_ORDER:
            c = HOLIDAY_NAMES.index(name)
            for (parent, child), (w, kernel) in edges.items():
                if child == name:
                    p = HOLIDAY_NAMES.index(parent)
                    x[:, :, c] += w * typical[c] / typical[p] * lfilter(kernel, [1.0], x[:, :, p], axis=1)
            if off == c:
                x[:, :, c] = 0.0
        return x

    decay = rng.uniform(0.2, 0.75, C)
    half = rng.uniform(0.6, 1.8, C)
    slope = rng.uniform(0.8, 2.2, C)
    beta = rng.dirichlet(np.full(C, 2.0)) * 0.3

    def carry(a: np.ndarray) -> np.ndarray:
        return np.stack([lfilter([1.0], [1.0, -decay[c]], a[:, :, c], axis=1) for c in range(C)], axis=-1)

    x = acts()
    norm = carry(x).mean(axis=(0, 1))  # [C], fixed by the observed activity

    def response(a: np.ndarray) -> np.ndarray:
        rel = carry(a) / (norm * (pop / pop.mean())[:, None, None])
        h = rel**slope / (rel**slope + half**slope)
        return pop[:, None, None] * 1000 * beta * h * (1 + half**slope)  # [R,T,C]

    holiday = np.zeros(T)
    if holidays:
        for week in range(47, T, 52):
            holiday[week:week + 2] = (0.25, 0.4)[: len(holiday[week:week + 2])]
    base = pop[:, None] * 1000 * (1 + 0.15 * t / T + 0.1 * np.sin(2 * np.pi * t / 52.18) + holiday)[None, :]
    price = 1 + 0.03 * rng.standard_normal((R, T)).cumsum(axis=1) / np.sqrt(T)
    base = base - pop[:, None] * 1000 * 0.8 * (price - 1)
    contrib = response(x)
    y = base + contrib.sum(-1) + rng.normal(0.0, noise, (R, T)) * base
    paths = np.stack([(contrib - response(acts(off=c))).sum(axis=(0, 1)) for c in range(C)])  # [C,C]
    total = paths.sum(axis=1)
    record_truth(truth, y, contrib, paths, {"price": price,
                                            "holiday": np.broadcast_to((holiday > 0).astype(float), (R, T))})
    df = pd.DataFrame({"region": np.repeat([f"DMA{r:03d}" for r in range(R)], T),
                       "week": np.tile(pd.date_range("2022-01-03", periods=T, freq="W-MON"), R)})
    for c, name in enumerate(HOLIDAY_NAMES):
        df[name] = x[:, :, c].reshape(-1)
    df["price"] = price.reshape(-1)
    df["holiday"] = np.tile((holiday > 0).astype(float), R)
    df["kpi"] = y.reshape(-1)
    return df, list(HOLIDAY_NAMES), total, contrib.sum() / y.sum()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", default="0,1")
    design = ap.add_mutually_exclusive_group()
    design.add_argument("--linear", action="store_true", help="linear responses instead of saturating")
    design.add_argument("--flighted", action="store_true",
                    help="the third design: flighted and always-on channels (see above)")
    design.add_argument("--logistic", action="store_true",
                        help="the fourth design: five named channels, logistic saturation (see above)")
    design.add_argument("--holidays", action="store_true",
                        help="the fifth design: eight named channels, lag-kernel mediation, two "
                        "holiday weeks a year (see above)")
    ap.add_argument("--holiday-control", action="store_true",
                    help="with --holidays: give the model the holiday weeks as a 0/1 control")
    ap.add_argument("--empty", action="store_true", help="no edges among activities")
    ap.add_argument("--lagged", action="store_true",
                    help="with --flighted: tv -> search one week later, tv -> social two weeks later")
    ap.add_argument("--lift", action="store_true",
                    help="with --flighted: a child's activity is raised in proportion, its own part "
                    "times 1 + w x parent / parent's regional mean, instead of an added part")
    ap.add_argument("--multiplicative", action="store_true",
                    help="with --flighted: the KPI is the baseline times exp(summed responses), "
                    "a log-scale model in which channels interact")
    ap.add_argument("--regional-flights", action="store_true",
                    help="with --flighted: tv, video, radio and ooh flighted region by region (each "
                    "region's own bursts and gaps) instead of nationally")
    ap.add_argument("--national", action="store_true",
                    help="with --flighted or --logistic: tv and radio bought nationally (the same "
                    "relative plan in every region, no region-week variation)")
    ap.add_argument("--roi-priors", type=float, default=None, metavar="SD",
                    help="also refit with an ROI prior (calibration.roi_priors) on every channel the "
                    "first fit marks `extrapolated` (always-on): mean the true ROI times exp(SD z), z "
                    "standard normal drawn per channel and seed, sd SD x that mean")
    ap.add_argument("--config", default="{}", help="JSON config overrides for both fits")
    ap.add_argument("--intervals", type=int, default=0, metavar="N",
                    help="also run get_effect_intervals(n_boot=N) on our fit and print how many true shares "
                    "its 90%% intervals hold (0: skip; N refits per seed)")
    ap.add_argument("--prior-spread", type=float, default=PRIOR_SPREAD, metavar="S",
                    help=f"with --intervals: get_effect_intervals(prior_spread=S) (default {PRIOR_SPREAD}, "
                    "the package's; 0: sampling variation only)")
    args = ap.parse_args(argv)
    if args.intervals < 0 or args.intervals == 1:
        ap.error(f"--intervals must be 0 (skip) or at least 2 refits, found {args.intervals}")
    if args.national and not (args.flighted or args.logistic):
        ap.error("--national needs --flighted or --logistic")
    if args.lagged and not args.flighted:
        ap.error("--lagged needs --flighted")
    if args.lift and not args.flighted:
        ap.error("--lift needs --flighted")
    if args.multiplicative and not args.flighted:
        ap.error("--multiplicative needs --flighted")
    if args.regional_flights and (not args.flighted or args.national):
        ap.error("--regional-flights needs --flighted (and not --national)")
    if args.holiday_control and not args.holidays:
        ap.error("--holiday-control needs --holidays")
    over = json.loads(args.config)
    for seed in (int(s) for s in args.seeds.split(",")):
        truth: dict = {}
        if args.flighted:
            df, names, total, media_share, _ = simulate_flighted(seed, empty=args.empty, lagged=args.lagged,
                                                                 lift=args.lift, national_buys=args.national,
                                                                 multiplicative=args.multiplicative,
                                                                 regional_flights=args.regional_flights, truth=truth)
            controls = df[["price"]]
        elif args.logistic:
            df, names, total, media_share = simulate_logistic(seed, empty=args.empty,
                                                              national_buys=args.national, truth=truth)
            controls = df[["temperature"]]
        elif args.holidays:
            df, names, total, media_share = simulate_holidays(seed, empty=args.empty, truth=truth)
            controls = df[["price", "holiday"] if args.holiday_control else ["price"]]
        else:
            df, names, total, media_share = simulate(seed, args.linear, empty=args.empty, truth=truth)
            controls = None
        share = total / total.sum()
        line = [f"seed {seed}: true media share of KPI {media_share:.3f}"]
        for label, mode in (("ours", "notears"), ("blind", "none")):
            model = DeepCausalMMM(config={**over, "graph": {**over.get("graph", {}), "mode": mode}})
            model.fit(df[names], df["kpi"], regions=df["region"], dates=df["week"], controls=controls)
            effects = model.get_channel_effects()
            err = (effects["total_share"].to_numpy() - share) * 100
            root = abs(effects["total"].to_numpy()[0] / total[0] - 1) * 100
            kpi_share = model.contribution_summary()["share_of_kpi"].sum()
            line.append(f"  {label:5s} share error mean {np.abs(err).mean():.2f} max "
                        f"{np.abs(err).max():.2f} pp; root total error {root:.1f}%; media share "
                        f"of KPI {kpi_share:.3f}; errors {np.round(err, 1).tolist()}")
            if mode == "notears" and args.intervals:
                line.append(_interval_line(model, share, args.intervals, args.prior_spread))
            if mode == "notears":
                national = getattr(model.graph_model_, "national", None)  # None before session 19
                if national is not None:
                    line.append("  bought nationally (edges learned from the national series): "
                                + ", ".join(c for c, f in zip(names, national, strict=True) if f))
                unexplained = model.get_unexplained_weeks()
                line.append(f"  weeks the fit misses (|z| >= 3): {len(unexplained)}" + "".join(
                    f", {pd.Timestamp(d).date() if isinstance(d, pd.Timestamp) else d} (z {z:.1f})"
                    for d, z in unexplained["z"].head(6).items()))
                edges = model.get_dag_edges()
                line.append("  learned edges " + ", ".join(
                    f"{p}->{c} (lag {lag}" + ("" if pd.isna(s) else f", support {s:.2f}") + ")"
                    for p, c, lag, s in edges[["parent", "child", "lag", "direction_support"]]
                    .itertuples(index=False)))
        given = [] if controls is None else list(controls.columns)
        line.append("  oracle " + (oracle_line(truth["kpi"], truth["contrib"], truth["paths"],
                                               oracle_controls(truth, given))
                                   if truth else "n/a: the KPI's channel parts do not add up (multiplicative)"))
        if args.roi_priors is not None:
            line.append(_prior_refit(df, names, controls, total, share, over, seed, args.roi_priors))
        print("\n".join(line), flush=True)
    return 0


def _interval_line(model: DeepCausalMMM, share: np.ndarray, n_boot: int, prior_spread: float) -> str:
    """``--intervals``: how many true total-effect shares the fit's 90% intervals hold, by identification."""
    iv = model.get_effect_intervals(n_boot=n_boot, level=0.9, prior_spread=prior_spread)
    true = pd.Series(share, index=iv.index)
    held = (iv["total_share_lo"] <= true) & (true <= iv["total_share_hi"])
    width = (iv["total_share_hi"] - iv["total_share_lo"]) * 100
    level = model.get_identification()["level"].reindex(iv.index)
    parts = [f"{kind} {int(held[level == kind].sum())} of {int((level == kind).sum())}"
             for kind in ("observed", "extrapolated") if (level == kind).any()]
    return (f"  90% intervals ({n_boot} refits, prior_spread {prior_spread}, {iv.attrs['seconds']:.0f} s) hold "
            f"{int(held.sum())} of {len(iv)} true shares ({'; '.join(parts)}), mean width {width.mean():.2f} pp")


def _prior_refit(df: pd.DataFrame, names: list[str], controls: pd.DataFrame | None, total: np.ndarray,
                 share: np.ndarray, over: dict, seed: int, sd: float) -> str:
    """The fit again with ROI priors on its always-on channels (``--roi-priors``): one line."""
    first = DeepCausalMMM(config=over)
    first.fit(df[names], df["kpi"], regions=df["region"], dates=df["week"], controls=controls)
    level = first.get_identification()["level"]
    always_on = [c for c in names if level[c] == "extrapolated"]
    true_roi = {c: float(total[k] / df[c].sum()) for k, c in enumerate(names)}
    priors = draw_roi_priors(true_roi, always_on, sd, seed)
    model = DeepCausalMMM(config={**over, "calibration": {**over.get("calibration", {}), "roi_priors": priors}})
    model.fit(df[names], df["kpi"], regions=df["region"], dates=df["week"], controls=controls)
    effects = model.get_channel_effects()
    err = (effects["total_share"].to_numpy() - share) * 100
    root = abs(effects["total"].to_numpy()[0] / total[0] - 1) * 100
    return (f"  prior share error mean {np.abs(err).mean():.2f} max {np.abs(err).max():.2f} pp; root total "
            f"error {root:.1f}%; ROI priors (sd {sd:.0%}) on {len(always_on)} always-on channels, fitted ROI "
            f"vs true: {roi_against_truth(effects, true_roi, priors)}; errors {np.round(err, 1).tolist()}")


def draw_roi_priors(true_roi: dict[str, float], channels: list[str], sd: float, seed: int) -> dict[str, list[float]]:
    """``--roi-priors``: for each of ``channels`` a prior ``[mean, sd x mean]`` whose mean is its true
    ROI times ``exp(sd z)``, ``z`` standard normal (seeded by ``seed``), so as wrong as its sd says."""
    rng = np.random.default_rng(1000 + seed)
    priors = {}
    for c in channels:
        mean = true_roi[c] * float(np.exp(sd * rng.standard_normal()))
        priors[c] = [mean, sd * mean]
    return priors


def roi_against_truth(effects: pd.DataFrame, true_roi: dict[str, float], priors: dict[str, list[float]]) -> str:
    """Each prior channel's fitted ROI (``get_channel_effects``) and its prior's mean against the truth."""
    return ", ".join(f"{c} {effects.loc[c, 'roi'] / true_roi[c] - 1:+.0%} (prior {mean / true_roi[c] - 1:+.0%})"
                     for c, (mean, _) in priors.items())


if __name__ == "__main__":
    sys.exit(main())
