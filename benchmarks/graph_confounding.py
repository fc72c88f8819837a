"""Channel graphs on panels whose channels share a regional budget.

Usage::

    python benchmarks/graph_confounding.py [--seeds 0,1,2] [--size 40x156x8]

Each region's channels share a budget that moves them together: a 13-week
cycle with its own phase in every region (``quarterly``), white noise per
region-week (``weekly``, sd 0.1) or AR(1) 0.7 noise (``persistent``, sd 0.2),
on top of log-normal week-to-week activity (sd 0.3) and a yearly national
season. Every channel takes the budget's movement in full, or (``unequal``
rows) with its own loading drawn from 0.3-1.5: budgets are rarely split in
equal shares. No channel drives another (``empty``), or ch0 -> ch1, ch0 -> ch2,
ch1 -> ch2 (``edges``, weights 0.5, 0.4, 0.3 in typical-activity units). Only
the graph is learned (one training epoch). For each panel it prints the
learned pairs (parent, child at any lag) that are not true edges and the
true pairs found, with the defaults and, in the same run, with both
safeguards off: the F-test for regional cycles (``graph.regional_cycles:
false``) and the shared-driver step (``graph.shared_driver: false``).
"""

from __future__ import annotations

import argparse
import sys
import warnings

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from deepcausalmmm import DeepCausalMMM

EDGES = {(1, 0): 0.5, (2, 0): 0.4, (2, 1): 0.3}  # (child, parent): weight
BUDGETS = ("quarterly", "weekly", "persistent", "weekly unequal", "persistent unequal")
SPREAD = (0.3, 1.5)  # range of the channels' loadings on an ``unequal`` budget


def simulate(seed: int, budget: str, edges: bool, R: int, T: int, C: int) -> tuple[pd.DataFrame, list[str]]:
    """Long table (region, week, channels, kpi) and the channel names."""
    rng = np.random.default_rng(seed)
    t = np.arange(T)
    size = np.exp(rng.normal(0, 0.8, R))  # [R]
    load = rng.uniform(*SPREAD, C) if budget.endswith("unequal") else np.ones(C)  # [C]
    budget = budget.split()[0]
    if budget == "quarterly":
        b = 0.3 * np.sin(2 * np.pi * t[None, :] / 13 + rng.uniform(0, 2 * np.pi, R)[:, None])
    elif budget == "weekly":
        b = rng.normal(0, 0.1, (R, T))
    else:
        b = np.zeros((R, T))
        for k in range(1, T):
            b[:, k] = 0.7 * b[:, k - 1] + rng.normal(0, 0.2 * np.sqrt(1 - 0.49), R)
    season = 1 + 0.3 * np.sin(2 * np.pi * t / 52.18)  # [T]
    exo = (size[:, None, None] * season[None, :, None] * np.exp(b[:, :, None] * load)
           * rng.lognormal(0, 0.3, (R, T, C)) * rng.uniform(50, 500, C))  # [R,T,C]
    return panel_frame(add_edges(exo, EDGES if edges else {}), size, rng)


def add_edges(
    exo: np.ndarray, edges: dict[tuple[int, int], float], decay: float | tuple[float, ...] = 0.0,
    form: str = "additive",
) -> np.ndarray:
    """Observed activity ``[R,T,C]``: each child's exogenous part plus
    ``w * typical_child / typical_parent`` times each parent's activity (``edges``:
    (child, parent) -> w; parents have lower indices, so one pass in index order). With
    ``decay`` > 0 the parent's activity passes through a geometric lag kernel of unit sum
    (``(1 - decay) decay^l`` at lag ``l``) instead of acting in the same week; a tuple is the
    kernel's weights at lags 0, 1, .. (scaled to unit sum). ``form``
    "lift": each child's exogenous part is instead multiplied by ``1 + w * parent / parent's
    regional mean`` for each parent (a lift in proportion); "power": by ``(parent / parent's
    regional mean)^w`` (linear in logs)."""
    typical = exo.mean(axis=(0, 1))
    x = exo.copy()
    for c in range(x.shape[2]):
        for (child, parent), w in edges.items():
            if child == c:
                source = x[:, :, parent]
                if isinstance(decay, tuple):
                    source = lfilter(np.asarray(decay) / sum(decay), [1.0], source, axis=1)
                elif decay > 0:
                    source = lfilter([1 - decay], [1, -decay], source, axis=1)
                relative = source / np.maximum(source.mean(axis=1, keepdims=True), 1e-12)
                if form == "lift":
                    x[:, :, c] *= 1 + w * relative
                elif form == "power":
                    x[:, :, c] *= relative**w
                else:
                    x[:, :, c] += w * typical[c] / typical[parent] * source
    return x


def panel_frame(x: np.ndarray, size: np.ndarray, rng: np.random.Generator) -> tuple[pd.DataFrame, list[str]]:
    """Long table (region, week, ch0.., kpi) for activity ``x`` ``[R,T,C]``: a KPI of a
    seasonal baseline, every channel's activity over its mean times 30 per unit of region size,
    and noise (5% of the baseline)."""
    R, T, C = x.shape
    t = np.arange(T)
    mean = x.mean(axis=(0, 1))
    kpi = (size[:, None] * 1000 * (1 + 0.05 * np.sin(2 * np.pi * t / 52.18))
           + (x / np.where(mean > 0, mean, 1)).sum(-1) * size[:, None] * 30
           + rng.normal(0, 0.05, (R, T)) * size[:, None] * 1000)
    names = [f"ch{c}" for c in range(C)]
    df = pd.DataFrame({"region": np.repeat(np.arange(R), T), "week": np.tile(t, R)})
    for c, n in enumerate(names):
        df[n] = x[:, :, c].reshape(-1)
    df["kpi"] = kpi.reshape(-1)
    return df, names


def learned_pairs(df: pd.DataFrame, names: list[str], graph: dict) -> set[tuple[str, str]]:
    """(parent, child) pairs of the graph learned with ``graph`` config overrides (one epoch)."""
    quick = {"training": {"epochs": 1, "polish_steps": 0}, "graph": graph}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the dense-graph warning is expected without safeguards
        model = DeepCausalMMM(config=quick).fit(df[names], df["kpi"], regions=df["region"], dates=df["week"])
    e = model.get_dag_edges()
    return set(zip(e.parent, e.child, strict=True))


def parse_size(ap: argparse.ArgumentParser, size: str) -> tuple[int, int, int]:
    """``--size`` as regions, weeks, channels (at least 4 channels: the true graphs use 3-4)."""
    try:
        R, T, C = (int(v) for v in size.split("x"))
    except ValueError:
        ap.error(f"--size must look like 40x156x8 (regions x weeks x channels), found {size!r}")
    if C < 4:
        ap.error(f"--size needs at least 4 channels (the true graphs use up to 4), found {C}")
    return R, T, C


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--size", default="40x156x8", help="regions x weeks x channels (at least 4 channels)")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    R, T, C = parse_size(ap, args.size)
    truth = {(f"ch{p}", f"ch{c}") for c, p in EDGES}
    print(f"{R} regions x {T} weeks x {C} channels; "
          "false pairs / true pairs found (of 3), per seed")
    width = max(28, 7 * len(seeds) + 2)
    print(f"{'budget':<19} {'graph':<6} {'defaults':<{width}} {'safeguards off'}")
    for budget in BUDGETS:
        for edges in (False, True):
            cells = []
            for safeguards in (True, False):
                res = []
                for seed in seeds:
                    df, names = simulate(seed, budget, edges, R, T, C)
                    got = learned_pairs(df, names, {"regional_cycles": safeguards, "shared_driver": safeguards})
                    true = truth if edges else set()
                    res.append(f"{len(got - true)}/{len(got & true)}" if edges else f"{len(got)}")
                cells.append(" ".join(res))
            print(f"{budget:<19} {'edges' if edges else 'empty':<6} {cells[0]:<{width}} {cells[1]}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
