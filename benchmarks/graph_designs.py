"""Channel graphs on activity unlike the package's simulator: how edge recovery holds up.

Usage::

    python benchmarks/graph_designs.py [--seeds 0,1,2,3] [--designs gaussian,chain,...] [--size 40x156x8] [--empty]
        [--against equal_cv|negative_edges|dark_weeks|time_order]

Each panel has region sizes (log-normal, sd 0.8), a yearly national season and
per-channel scales; the channels' exogenous activity is drawn per design, and
the true graph (additive: a child's activity is its exogenous part plus
``w * typical_child / typical_parent * parent``) is either the triangle
ch0 -> ch1, ch0 -> ch2, ch1 -> ch2 (weights 0.5, 0.4, 0.3) or, for ``chain``,
ch0 -> ch1 -> ch2 -> ch3 and, for ``collider``, ch0 -> ch2 <- ch1. Designs:

- ``lognormal``: log-normal week-to-week activity, sd 0.3 (the reference);
- ``quiet``: log-normal, sd 0.1 (close to Gaussian);
- ``mixed``: log-normal with an sd of its own per channel, 0.1-0.5;
- ``gaussian``: Gaussian activity, CV 0.2 (no observational method can
  orient a same-week edge from non-Gaussianity here);
- ``gaussian unequal``: Gaussian with a CV of its own per channel, 0.1-0.4;
- ``chain``, ``collider``: Gaussian (CV 0.2) with those graphs;
- ``flighted root``: Gaussian (CV 0.2), ch0 in national bursts (2-7 weeks
  on or off);
- ``gaussian budget``: Gaussian (CV 0.2) under a regional budget that moves
  each region's channels together week to week (log-normal, sd 0.1; each
  channel's loading 0.3-1.5);
- ``heavy``: log-normal, sd 0.8; ``units``: channel scales from 10 to 10^7;
  ``ramps``: each channel grows or shrinks (x0.5-x2 over the panel, its own
  rate per region too); ``dropout``: channels 3+ absent from 40% of regions;
- ``reallocated``: each region's weekly budget (log-normal, sd 0.1) split
  among the channels by shares drawn every week (Dirichlet, concentration 3
  per channel: a share varies by about half its mean), so that money one
  channel gets another loses (negative correlations between channels);
- ``uniform``: uniform activity within +-35% (lighter tails than Gaussian);
  ``gamma``: gamma with shape 4 (CV 0.5); ``exponential``: gamma with shape 1
  (CV 1, many weeks near zero);
- ``kernel``, ``long kernel``: log-normal (sd 0.3), each child taking in its
  parents' activity through a geometric lag kernel of unit sum, decay 0.5
  (mean lag 1 week) or 0.8 (4 weeks), instead of in the same week;
  ``delayed kernel``: through weights 0.2, 0.5, 0.3 at lags 0, 1, 2 (the
  response peaks a week later); ``flat kernel``: 0.25 at each of lags 0-3;
  ``flighted flat kernel``, ``flighted delayed kernel``: the same with ch0 in
  national bursts (as ``flighted root``) and log-normal. Compare with
  ``--against time_order`` (session 34).
- ``multiplicative``: log-normal (sd 0.3), each child's exogenous part
  multiplied by ``1 + w * parent / parent's regional mean`` for each parent
  (a lift in proportion, "TV raises search by w") instead of an added part;
  ``multiplicative flighted``: the same with ch0 in national bursts (as
  ``flighted root``); ``power``: multiplied by ``(parent / parent's
  regional mean)^w`` (linear in logs).
- ``regional flights``: log-normal (sd 0.3), ch0 (the triangle's root)
  flighted per region-week, dark in 40% of each region's weeks (a TV or
  display plan bought region by region), its children always on;
  ``regional flights lift``: the same with the children lifted in
  proportion (as ``multiplicative``); ``flighted child lift``: ch2 (the
  triangle's sink) dark in 40% of the region-weeks and lifted in proportion,
  so a child is dark whenever its own part is (the pattern that, under added
  parts, would mark it a parent: ``graph.dark_weeks`` must leave it alone).
  Compare with ``--against dark_weeks``.

``--empty`` drops every true edge (each learned pair is then a false one).

Only the graph is learned (one training epoch). Per seed it prints false
pairs (parent, child at any lag; a reversed edge counts as one false pair
and one missed) / true pairs found, with the defaults and, in the same run,
with ``graph.equal_cv: false`` (the non-Gaussian score alone orients
same-week edges) or, with ``--against negative_edges``, with
``graph.negative_edges: true`` (edges of either sign), or with ``--against
dark_weeks`` / ``time_order`` that rule off.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd
from graph_confounding import add_edges, learned_pairs, panel_frame, parse_size  # same panel form and fit

TRIANGLE = {(1, 0): 0.5, (2, 0): 0.4, (2, 1): 0.3}  # (child, parent): weight in typical-activity units
GRAPHS = {"chain": {(1, 0): 0.5, (2, 1): 0.5, (3, 2): 0.5}, "collider": {(2, 0): 0.5, (2, 1): 0.4}}
AGAINST = {"equal_cv": ("equal_cv off", {"equal_cv": False}),
           "negative_edges": ("negative_edges on", {"negative_edges": True}),
           "dark_weeks": ("dark_weeks off", {"dark_weeks": False}),
           "time_order": ("time_order off", {"time_order": False})}
DESIGNS = ("lognormal", "quiet", "mixed", "gaussian", "gaussian unequal", "chain", "collider",
           "flighted root", "gaussian budget", "reallocated", "heavy", "units", "ramps", "dropout",
           "uniform", "gamma", "exponential", "kernel", "long kernel", "delayed kernel", "flat kernel", "flighted flat kernel", "flighted delayed kernel",
           "multiplicative", "multiplicative flighted",
           "power", "regional flights", "regional flights lift", "flighted child lift")
FORM = {"multiplicative": "lift", "multiplicative flighted": "lift", "power": "power",
        "regional flights lift": "lift", "flighted child lift": "lift"}
DARK = {"regional flights": 0, "regional flights lift": 0, "flighted child lift": 2}  # channel dark in 40% of cells
KERNEL = {"kernel": 0.5, "long kernel": 0.8, "delayed kernel": (0.2, 0.5, 0.3), "flat kernel": (0.25,) * 4,
          "flighted flat kernel": (0.25,) * 4, "flighted delayed kernel": (0.2, 0.5, 0.3)}


def simulate(seed: int, design: str, R: int, T: int, C: int, empty: bool = False) -> tuple[pd.DataFrame, list[str], set]:
    """Long table (region, week, channels, kpi), channel names and the true (parent, child) pairs
    (none with ``empty``)."""
    rng = np.random.default_rng(seed)
    t = np.arange(T)
    size = np.exp(rng.normal(0, 0.8, R))  # [R]
    season = 1 + 0.3 * np.sin(2 * np.pi * t / 52.18)  # [T]
    scale = 10.0 ** rng.uniform(1, 7, C) if design == "units" else rng.uniform(50, 500, C)  # [C]
    if design in ("gaussian", "gaussian unequal", "chain", "collider", "flighted root", "gaussian budget"):
        cv = rng.uniform(0.1, 0.4, C) if design == "gaussian unequal" else np.full(C, 0.2)
        noise = np.clip(1 + cv * rng.normal(size=(R, T, C)), 0.05, None)
    elif design == "uniform":  # sub-Gaussian: flat within +-35%
        noise = rng.uniform(0.65, 1.35, (R, T, C))
    elif design == "reallocated":  # weekly shares of a regional budget: a zero-sum split
        mean_share = rng.uniform(0.5, 2, C)
        mean_share /= mean_share.sum()
        shares = rng.dirichlet(3.0 * C * mean_share, size=(R, T))  # [R,T,C]
        noise = rng.lognormal(0, 0.1, (R, T))[:, :, None] * shares / mean_share
    elif design in ("gamma", "exponential"):  # skewed, shape 4 (CV 0.5) or 1 (CV 1)
        shape = 4.0 if design == "gamma" else 1.0
        noise = rng.gamma(shape, 1 / shape, (R, T, C))
    else:
        sd = {"quiet": 0.1, "heavy": 0.8}.get(design, 0.3)
        sd = rng.uniform(0.1, 0.5, C) if design == "mixed" else np.full(C, sd)
        noise = rng.lognormal(0, sd, (R, T, C))
    exo = size[:, None, None] * season[None, :, None] * noise * scale  # [R,T,C]
    if design in ("flighted root", "multiplicative flighted", "flighted flat kernel", "flighted delayed kernel"):
        on, week = np.zeros(T), 0
        while week < T:
            length = int(rng.integers(2, 8))
            on[week : week + length] = rng.random() < 0.6
            week += length
        exo[:, :, 0] *= on[None, :]
    if design == "gaussian budget":  # a regional budget moving the channels week to week
        exo *= np.exp(rng.normal(0, 0.1, (R, T))[:, :, None] * rng.uniform(0.3, 1.5, C))
    if design == "ramps":
        rate = rng.uniform(np.log(0.5), np.log(2), C)[None, :] + rng.normal(0, 0.3, (R, C))  # [R,C]
        exo *= np.exp(rate[:, None, :] * (t / T)[None, :, None])
    if design in DARK:  # flighted per region-week: dark in 40% of each region's weeks
        exo[:, :, DARK[design]] *= rng.random((R, T)) < 0.6
    if design == "dropout":
        for c in range(3, C):
            exo[rng.random(R) < 0.4, :, c] = 0.0
    edges = {} if empty else GRAPHS.get(design, TRIANGLE)
    x = add_edges(exo, edges, KERNEL.get(design, 0.0), FORM.get(design, "additive"))
    df, names = panel_frame(x, size, rng)
    return df, names, {(f"ch{p}", f"ch{c}") for c, p in edges}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="0,1,2,3")
    ap.add_argument("--designs", default=",".join(DESIGNS), help=f"comma-separated, from {', '.join(DESIGNS)}")
    ap.add_argument("--size", default="40x156x8", help="regions x weeks x channels (at least 4 channels)")
    ap.add_argument("--empty", action="store_true", help="no true edges: every learned pair is false")
    ap.add_argument("--against", default="equal_cv", choices=sorted(AGAINST),
                    help="the graph setting flipped in the second column")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    designs = [d.strip() for d in args.designs.split(",")]
    unknown = [d for d in designs if d not in DESIGNS]
    if unknown:
        ap.error(f"--designs: unknown {unknown}; choose from {', '.join(DESIGNS)}")
    R, T, C = parse_size(ap, args.size)
    print(f"{R} regions x {T} weeks x {C} channels{', no true edges' if args.empty else ''}; "
          "false pairs / true pairs found, per seed")
    width = max(24, 6 * len(seeds) + 8)
    label, flipped = AGAINST[args.against]
    print(f"{'design':<17} {'defaults':<{width}} {label:<{width}}")
    for design in designs:
        cells = []
        for graph in ({}, flipped):
            res, false, found, total = [], 0, 0, 0
            for seed in seeds:
                df, names, truth = simulate(seed, design, R, T, C, args.empty)
                got = learned_pairs(df, names, graph)
                res.append(f"{len(got - truth)}/{len(got & truth)}")
                false, found, total = false + len(got - truth), found + len(got & truth), total + len(truth)
            cells.append(" ".join(res) + f"  ({false}; {found}/{total})")
        print(f"{design:<17} {cells[0]:<{width}} {cells[1]}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
