"""Channel graph and attribution on randomly drawn media designs.

Usage::

    python benchmarks/random_designs.py [--seeds 0-69] [--graph-only] [--empty] [--config '{...}']

The other benchmarks fix one design each. Here every seed draws its own:

- panel size: 20, 40 or 80 regions x 104, 130 or 156 weeks x 5-10 channels;
- each channel's kind: always on (half of them; log-normal week-to-week
  movements nationally and per region, sd 0.05-0.3 and 0.1-0.4), flighted
  (35%; national bursts of 2-8 weeks at 0.6-1.4 of typical, gaps of 2-7
  weeks, regional variation sd 0.05-0.3) or in bursts (15%; a region-week
  is on with probability 0.15, at a gamma-distributed level: promotions,
  email drops);
- a budget season every channel shares (amplitude 0-0.4) and one of its own
  per channel (0-0.3), each with its own phase;
- region sizes log-normal (sd 0.8) and, unlike the other designs, **each
  region's own mix of channels** (every channel's regional intensity
  log-normal, sd 0.3), so that one region's TV drives a larger part of its
  search than another's;
- 1-3 mediation edges between random channels in a random order (a burst
  channel is never a child), weights 0.25-0.7 in typical-activity units,
  a third of them one week later; ``--empty`` draws none;
- per channel a geometric decay (0.1-0.7), a Hill curve (half saturation
  0.5-2, slope 0.8-2.5) on activity relative to the region's mean, and a
  coefficient (Dirichlet shares of 15-45% of the baseline);
- a baseline with a trend, a yearly season of its own phase and a control
  (yearly wave plus noise, effect of either sign); noise 4-8%.

True total effects come from simulating do(channel = 0) through the graph.
Per seed it prints the design, false and missed pairs (a reversed edge is
one of each), and, unless ``--graph-only`` (one training epoch: the graph
alone, about a second per panel), total-share errors for the model and the
mediation-blind baseline (``graph.mode="none"``) fitted in the same run,
with each true parent's total-effect error; at the end, the share errors
split by what our fit's ``get_identification()`` says of each channel
(``extrapolated`` always-on channels against ``observed`` ones) and how many
true parents' total effects are within 15%; then, for our fit, the signed
share errors by level, how our total over the true one follows the true
curve's elasticity at typical activity (always-on channels), and the
parents by level with their direct and mediated parts against the truth. In the same run the graph is
also learned with ``graph.regional_orientation: false`` (the orientation
score pooled over regions alone, the package up to session 25), and the
totals of both are printed at the end. Beside the two fits, the oracle
(``benchmarks/oracle.py``: least squares given every channel's true
contribution series, one scale per channel and the baseline to estimate) is
scored the same way, its channels grouped by our fit's identification level:
the noise floor when nothing about the curves has to be learned.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from deepcausalmmm import DeepCausalMMM

sys.path.insert(0, str(Path(__file__).resolve().parent))
from oracle import oracle_errors  # noqa: E402

GRAPH_ONLY = {"training": {"epochs": 1, "polish_steps": 0}}


def simulate(seed: int, empty: bool = False) -> tuple[pd.DataFrame, list[str], np.ndarray, dict]:
    """Long table (region, week, channels, ``ctrl``, ``kpi``), channel names, true total effects
    ``[C]`` and the design (``R``, ``T``, ``C``, ``kinds``, ``noise``, ``edges`` as (parent, child,
    weight, lag), and per channel the true ``decay``, ``half_saturation``, ``slope``, ``beta`` and
    ``direct`` effect: its contribution, other channels held as observed)."""
    rng = np.random.default_rng(seed)
    R, T, C = int(rng.choice([20, 40, 80])), int(rng.choice([104, 130, 156])), int(rng.integers(5, 11))
    kinds = [str(k) for k in rng.choice(["always", "flighted", "bursts"], C, p=[0.5, 0.35, 0.15])]
    size = np.exp(rng.normal(0, 0.8, R))  # [R]
    t = np.arange(T)
    shared = 1 + rng.uniform(0, 0.4) * np.sin(2 * np.pi * (t - rng.integers(52)) / 52)  # [T]
    exo = np.empty((R, T, C))
    for c in range(C):
        own = 1 + rng.uniform(0, 0.3) * np.cos(2 * np.pi * (t - rng.integers(52)) / 52)
        intensity = np.exp(rng.normal(0, 0.3, R))[:, None]  # the region's own mix
        if kinds[c] == "always":
            a = (shared * own * np.exp(rng.normal(0, rng.uniform(0.05, 0.3), T))
                 * np.exp(rng.normal(0, rng.uniform(0.1, 0.4), (R, T))))
        elif kinds[c] == "flighted":
            on, week = np.zeros(T), int(rng.integers(0, 6))
            while week < T:
                length = int(rng.integers(2, 9))
                on[week : week + length] = rng.uniform(0.6, 1.4)
                week += length + int(rng.integers(2, 8))
            a = shared * own * on * np.exp(rng.normal(0, rng.uniform(0.05, 0.3), (R, T)))
        else:
            a = (rng.random((R, T)) < 0.15) * rng.gamma(2.0, 1.0, (R, T)) * shared
        exo[:, :, c] = size[:, None] * intensity * a * rng.uniform(100, 5000)
    typical = exo.mean(axis=(0, 1))  # [C]
    order = [int(c) for c in rng.permutation(C)]  # parents come before children
    edges: list[tuple[int, int, float, int]] = []
    if not empty:
        candidates = [(order[i], order[j]) for i in range(C) for j in range(i + 1, C) if kinds[order[j]] != "bursts"]
        for k in rng.choice(len(candidates), int(rng.integers(1, 4)), replace=False):
            parent, child = candidates[k]
            edges.append((parent, child, float(rng.uniform(0.25, 0.7)), int(rng.choice([0, 0, 1]))))

    def activity(off: int | None = None) -> np.ndarray:
        x = exo.copy()
        for c in order:
            for parent, child, w, lag in edges:
                if child == c:
                    src = x[:, :, parent]
                    if lag:
                        src = np.concatenate([np.zeros((R, lag)), src[:, :-lag]], axis=1)
                    x[:, :, c] += w * typical[c] / typical[parent] * src
            if c == off:
                x[:, :, c] = 0.0
        return x

    decay, half, slope = rng.uniform(0.1, 0.7, C), rng.uniform(0.5, 2.0, C), rng.uniform(0.8, 2.5, C)
    beta = rng.dirichlet(np.full(C, 1.5)) * rng.uniform(0.15, 0.45)
    x = activity()
    regional_mean = x.mean(axis=1, keepdims=True) + 1e-9  # [R,1,C], of the observed activity

    def response(a: np.ndarray) -> np.ndarray:
        out = np.empty_like(a)
        for c in range(C):
            z = lfilter([1 - decay[c]], [1, -decay[c]], a[:, :, c], axis=1) / regional_mean[:, :, c]
            out[:, :, c] = z ** slope[c] / (z ** slope[c] + half[c] ** slope[c]) * (1 + half[c] ** slope[c])
        return size[:, None, None] * 1000 * beta * out  # [R,T,C]

    ctrl = np.sin(2 * np.pi * t / 52)[None, :] + rng.normal(0, 0.5, (R, T))
    base = size[:, None] * 1000 * (1 + rng.uniform(-0.002, 0.004) * t
                                   + rng.uniform(0, 0.15) * np.sin(2 * np.pi * (t - rng.integers(52)) / 52))
    base = base + rng.uniform(-30, 30) * size[:, None] * ctrl
    contrib = response(x)
    noise = float(rng.uniform(0.04, 0.08))
    y = base + contrib.sum(-1) + rng.normal(0, noise, (R, T)) * base
    paths = np.stack([(contrib - response(activity(off=c))).sum(axis=(0, 1)) for c in range(C)])  # [C,C]
    total = paths.sum(axis=1)
    names = [f"m{c}" for c in range(C)]
    df = pd.DataFrame({"region": np.repeat(np.arange(R), T),
                       "week": np.tile(pd.date_range("2022-01-02", periods=T, freq="W-SUN"), R)})
    for c, name in enumerate(names):
        df[name] = x[:, :, c].reshape(-1)
    df["ctrl"] = ctrl.reshape(-1)
    df["kpi"] = y.reshape(-1)
    design = {"R": R, "T": T, "C": C, "kinds": kinds, "noise": noise,
              "edges": [(names[p], names[c], w, lag) for p, c, w, lag in edges],
              "decay": decay, "half_saturation": half, "slope": slope, "beta": beta,
              "direct": contrib.sum(axis=(0, 1)),
              "oracle": {"kpi": y, "contrib": contrib, "paths": paths, "controls": ctrl[:, :, None]}}
    return df, names, total, design


def _fit(df: pd.DataFrame, names: list[str], config: dict) -> DeepCausalMMM:
    return DeepCausalMMM(config=config).fit(df[names], df["kpi"], regions=df["region"], dates=df["week"],
                                            controls=df[["ctrl"]])


def _pairs(model: DeepCausalMMM) -> set[tuple[str, str]]:
    edges = model.get_dag_edges()
    return set(zip(edges.parent, edges.child, strict=True))


def _seeds(text: str) -> list[int]:
    if "-" in text and "," not in text:
        lo, hi = (int(v) for v in text.split("-"))
        return list(range(lo, hi + 1))
    return [int(s) for s in text.split(",")]


def parse_seeds(ap: argparse.ArgumentParser, text: str) -> list[int]:
    """``--seeds`` as a list of ints (``0,3,5`` or the inclusive range ``0-69``), or exit with
    argparse's usage message naming what was found."""
    try:
        return _seeds(text)
    except ValueError:
        ap.error(f"--seeds: expected a list such as 0,3,5 or a range such as 0-69, found {text!r}")
        raise  # ap.error exits; for type checkers


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="0-9", help="a list (0,3,5) or an inclusive range (0-69)")
    ap.add_argument("--graph-only", action="store_true", help="learn the graph alone (one training epoch)")
    ap.add_argument("--empty", action="store_true", help="no true edges: every learned pair is false")
    ap.add_argument("--config", default="{}", help="JSON config overrides for every fit")
    args = ap.parse_args(argv)
    seeds = parse_seeds(ap, args.seeds)
    over = json.loads(args.config)
    base = {**over, **GRAPH_ONLY} if args.graph_only else over
    totals = {"ours": [0, 0, 0, 0, 0], "pooled": [0, 0, 0, 0, 0]}  # false, reversed, missed, found, true
    share_rows: list[tuple[str, float, float]] = []
    parent_rows: list[tuple[str, float]] = []  # (model, |total / true total - 1| %) per true parent
    level_rows: list[tuple[str, str, float]] = []  # (model, our fit's identification level, error pp)
    detail: list[dict] = []  # ours, per channel: what _print_detail summarises
    for seed in seeds:
        df, names, total, design = simulate(seed, args.empty)
        truth = {(p, c) for p, c, _, _ in design["edges"]}
        start = time.perf_counter()
        ours = _fit(df, names, base)
        seconds = time.perf_counter() - start
        pooled = _fit(df, names, {**base, **GRAPH_ONLY,
                                  "graph": {**base.get("graph", {}), "regional_orientation": False}})
        line = [f"seed {seed}: {design['R']} x {design['T']} x {design['C']}, kinds "
                f"{''.join(k[0] for k in design['kinds'])}, noise {design['noise']:.3f}, true edges "
                + (", ".join(f"{p}->{c} (w {w:.2f}, lag {lag})" for p, c, w, lag in design["edges"]) or "none")]
        for label, model in (("ours", ours), ("pooled", pooled)):
            got = _pairs(model)
            false, missed = got - truth, truth - got
            reversed_ = {(c, p) for p, c in false} & truth
            row = totals[label]
            for k, v in enumerate((len(false), len(reversed_), len(missed), len(got & truth), len(truth))):
                row[k] += v
            line.append(f"  {label:6s} graph: false {sorted(false)}, missed {sorted(missed)}")
        if not args.graph_only:
            blind = _fit(df, names, {**over, "graph": {**over.get("graph", {}), "mode": "none"}})
            share = total / total.sum()
            parents = sorted({names.index(p) for p, _, _, _ in design["edges"]})
            level = ours.get_identification()["level"]
            for label, model in (("ours", ours), ("blind", blind)):
                effects = model.get_channel_effects()
                err = np.abs(effects["total_share"].to_numpy() - share) * 100
                parent_err = np.abs(effects["total"].to_numpy()[parents] / total[parents] - 1) * 100
                line.append(f"  {label:6s} share error mean {err.mean():.2f} max {err.max():.2f} pp"
                            + (f"; fit {seconds:.1f} s" if label == "ours" else "")
                            + (f"; parents' total error {', '.join(f'{e:.1f}%' for e in parent_err)}"
                               if parents else ""))
                share_rows.append((label, err.mean(), err.max()))
                parent_rows += [(label, e) for e in parent_err]
                level_rows += [(label, lev, e) for lev, e in zip(level, err, strict=True)]
                if label == "ours":
                    detail += _channel_detail(level, _pairs(ours), effects, names, total, share, design)
            signed, parent_err = oracle_errors(**design["oracle"], roots=parents)
            err = np.abs(signed)
            line.append(f"  oracle share error mean {err.mean():.2f} max {err.max():.2f} pp"
                        + (f"; parents' total error {', '.join(f'{e:.1f}%' for e in parent_err)}"
                           if parents else ""))
            share_rows.append(("oracle", err.mean(), err.max()))
            parent_rows += [("oracle", e) for e in parent_err]
            level_rows += [("oracle", lev, e) for lev, e in zip(level, err, strict=True)]
        print("\n".join(line), flush=True)
    print()
    for label, (false, reversed_, missed, found, n_true) in totals.items():
        what = ("graph (defaults)" if over == {} else "graph (--config)") if label == "ours" \
            else "graph.regional_orientation false"
        print(f"{what:34s} false pairs {false} ({reversed_} reversed true edges), missed {missed}, "
              f"found {found}/{n_true}")
    if share_rows:
        for label in ("ours", "blind", "oracle"):
            means = [m for lab, m, _ in share_rows if lab == label]
            maxes = [x for lab, _, x in share_rows if lab == label]
            print(f"{label:6s} share error: mean over panels {np.mean(means):.2f} pp, panels with mean "
                  f"<= 2 pp {sum(m <= 2 for m in means)}/{len(means)}, worst channel {max(maxes):.2f} pp")
            by_level = {lev: [e for lab, lv, e in level_rows if lab == label and lv == lev]
                        for lev in sorted({lv for _, lv, _ in level_rows})}
            print("       by our fit's identification level: " + ", ".join(
                f"{lev} {np.mean(v):.2f} pp mean, {np.max(v):.2f} max ({len(v)} channels)"
                for lev, v in by_level.items()))
            errs = [e for lab, e in parent_rows if lab == label]
            if errs:
                print(f"       channels with a true child ({len(errs)}): total effect off by {np.mean(errs):.1f}% "
                      f"on average (median {np.median(errs):.1f}%), within 15% for {sum(e <= 15 for e in errs)}")
        _print_detail(pd.DataFrame(detail))
    return 0


def _channel_detail(level: pd.Series, learned: set[tuple[str, str]], effects: pd.DataFrame, names: list[str],
                    total: np.ndarray, share: np.ndarray, design: dict) -> list[dict]:
    """Per channel of one panel: our fit's identification level, signed share error, our total
    over the true one, the true curve's elasticity at typical activity and, for a true parent,
    whether every edge out of it was learned and its direct and mediated parts over the truth."""
    s, k = design["slope"], design["half_saturation"]
    rows = []
    for c, name in enumerate(names):
        children = [child for parent, child, _, _ in design["edges"] if parent == name]
        mediated = total[c] - design["direct"][c]
        rows.append({
            "level": level[name], "signed_pp": (effects.loc[name, "total_share"] - share[c]) * 100,
            "ratio": effects.loc[name, "total"] / total[c], "true_share": share[c],
            "true_elasticity": s[c] * k[c] ** s[c] / (1 + k[c] ** s[c]), "parent": bool(children),
            "edges_found": all((name, child) in learned for child in children),
            "direct_ratio": effects.loc[name, "direct"] / design["direct"][c],
            "mediated_ratio": effects.loc[name, "mediated"] / mediated if mediated > 0 else np.nan,
        })
    return rows


def _print_detail(d: pd.DataFrame) -> None:
    """Where our share errors come from, by identification level (``_channel_detail`` rows)."""
    signed = ", ".join(f"{lev} {v:+.2f} pp" for lev, v in d.groupby("level")["signed_pp"].mean().items())
    print(f"ours   signed share error by level: {signed} (mean)")
    big = d[(d.level == "extrapolated") & (d.true_share > 0.03)]
    if len(big) > 2:
        r = np.corrcoef(np.log(big.ratio.clip(lower=1e-3)), big.true_elasticity)[0, 1]
        print(f"       {len(big)} extrapolated channels above 3% of total effects: log(total / true total) "
              f"correlates {r:.2f} with the true curve's elasticity at typical activity")
    for lev, g in d[d.parent].groupby("level"):
        err = (g.ratio - 1).abs() * 100
        ok = g[g.edges_found]
        print(f"       {lev} parents: total within 15% for {int((err <= 15).sum())} of {len(g)} (median error "
              f"{err.median():.1f}%); with every edge out found ({len(ok)}), median direct / mediated error "
              f"{((ok.direct_ratio - 1).abs() * 100).median():.1f} / {((ok.mediated_ratio - 1).abs() * 100).median():.1f}%")


if __name__ == "__main__":
    sys.exit(main())
