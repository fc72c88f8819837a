"""Causal recovery on simulated panels with a known channel graph.

Usage::

    python benchmarks/causal_recovery.py [--seeds 0,1,2] [--regions 40] [--weeks 156] [--channels 8] \
        [--kernel 0.5] [--lift] [--config '{"regularization": {"coefficient_prior": "marginal"}}'] \
        [--national] [--in-phase] [--device cuda] [--roi-priors 0.2] [--media-share 0.1] [--intervals 20] \
        [--prior-spread 1.4] [--jobs 2]

For each seed, a panel with mediation edges (channel_1 -> channel_3,
channel_2 -> channel_3, channel_1 -> channel_2: think tv -> search,
social -> search, tv -> social) and one without edges. Prints edge F1,
false edges on the empty graph, total-effect share errors, the root
channel's total-effect error, and the same figures for the mediation-blind
baseline (the same model with ``graph.mode="none"``, fitted in this run).
``--kernel DECAY`` spreads each edge's weight over lags 0-7 with geometric
decay (a child takes in its parents' activity over several weeks, e.g. search
following TV's build-up), ``w (1 - d) d^l / (1 - d^8)`` at lag ``l``.
``--lift`` makes each edge a lift in proportion (``simulate_panel(...,
mediation="lift")``: the child's activity times ``1 + w x parent / parent's
regional mean`` instead of an added part).
``--national`` buys the root channel_1 nationally (the same plan in every
region, no region-week variation), so its edges are learned from the
national series.
``--in-phase`` puts the budget season every channel shares in phase with the
KPI's yearly season (spend peaks when demand does), so that seasonal demand
and media move together and only the rest of the channels' movements
identify their effects.
``--media-share S`` sets the simulated media's approximate share of the KPI
(``simulate_panel(media_share=S)``, default 0.3). At the same noise a smaller
share leaves the data less to identify each channel by: the oracle's errors
grow about in inverse proportion.
``--config`` applies JSON config overrides to every fit (default: none).
``--roi-priors SD`` refits each panel with ROI priors (``calibration.roi_priors``)
on the channels our fit marks ``extrapolated``, each centred on the true ROI
times ``exp(SD z)`` (``z`` standard normal: as wrong as its sd says), and
prints that fit's share and root errors under the seed's line.
``--intervals N`` runs ``get_effect_intervals(n_boot=N)`` (90%) on our fit and
prints how many of the true total-effect shares its intervals hold, split by
``get_identification()``'s level (``observed`` / ``extrapolated``), with the
mean width (slow: N refits per seed). ``--prior-spread S`` sets how far each
refit's prior strengths are drawn from the fit's (``get_effect_intervals(
prior_spread=S)``, default the package's; 0: the region bootstrap's sampling
variation only, which leaves out the priors' bias).

Beside both fits, the oracle (``benchmarks/oracle.py``): least squares given
every channel's true contribution series (true carryover, curves and
regional multipliers), estimating one scale per channel and the baseline;
its share and root errors are what the noise alone leaves when nothing about
the curves has to be learned.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from deepcausalmmm import DeepCausalMMM
from deepcausalmmm.datasets import simulate_panel
from deepcausalmmm.estimator import PRIOR_SPREAD

sys.path.insert(0, str(Path(__file__).resolve().parent))
from oracle import oracle_errors, simulated_inputs  # noqa: E402
from other_simulator import draw_roi_priors, roi_against_truth  # noqa: E402

GRAPH = [("channel_1", "channel_3", 0.6), ("channel_2", "channel_3", 0.5), ("channel_1", "channel_2", 0.4)]
ROOT = "channel_1"
KERNEL_LAGS = 8


def kernel_graph(decay: float) -> list[tuple[str, str, float, int]]:
    """:data:`GRAPH` with each edge's weight spread over lags 0..7, geometric ``decay``."""
    norm = (1 - decay) / (1 - decay**KERNEL_LAGS)
    return [(p, c, w * norm * decay**lag, lag) for p, c, w in GRAPH for lag in range(KERNEL_LAGS)]


def fit(sim, mode: str, over: dict | None = None, device: str = "cpu") -> tuple[DeepCausalMMM, float]:
    over = over or {}
    model = DeepCausalMMM(config={**over, "graph": {**over.get("graph", {}), "mode": mode}}, device=device)
    start = time.perf_counter()
    model.fit(sim.X, sim.y, regions=sim.regions, dates=sim.dates, controls=sim.control_frame)
    return model, time.perf_counter() - start


def edge_f1(model: DeepCausalMMM, truth: set[tuple[str, str]]) -> tuple[float, set, set]:
    edges = model.get_dag_edges()
    est = set(zip(edges.parent, edges.child, strict=False))
    tp = len(est & truth)
    f1 = 2 * tp / (len(est) + len(truth)) if (est or truth) else 1.0
    return f1, est - truth, truth - est


def prior_line(sim, ours: DeepCausalMMM, over: dict, device: str, seed: int, sd: float) -> str:
    """``--roi-priors``: refit with ROI priors on ``ours``'s always-on channels; one line of figures."""
    level = ours.get_identification()["level"]
    always_on = [c for c in ours.channels_ if level[c] == "extrapolated"]
    truth = sim.truth_effects
    true_roi = (truth["total"] / ours.get_channel_effects()["spend"]).to_dict()
    priors = draw_roi_priors(true_roi, always_on, sd, seed)
    model, _ = fit(sim, "notears", {**over, "calibration": {**over.get("calibration", {}), "roi_priors": priors}},
                   device)
    effects = model.get_channel_effects()
    err = (effects["total_share"] - truth["total_share"]).abs() * 100
    root = abs(effects.loc[ROOT, "total"] / truth.loc[ROOT, "total"] - 1) * 100
    return (f"  with ROI priors (sd {sd:.0%}) on {always_on}: share error mean {err.mean():.2f} max "
            f"{err.max():.2f} pp, root total error {root:.1f}%; fitted ROI vs true: "
            f"{roi_against_truth(effects, true_roi, priors)}")


def interval_line(sim, ours: DeepCausalMMM, n_boot: int, prior_spread: float = PRIOR_SPREAD) -> str:
    """``--intervals``: how many true total-effect shares ``ours``'s 90% bootstrap intervals hold."""
    iv = ours.get_effect_intervals(n_boot=n_boot, level=0.9, prior_spread=prior_spread)
    true = sim.truth_effects["total_share"].reindex(iv.index)
    held = (iv["total_share_lo"] <= true) & (true <= iv["total_share_hi"])
    width = (iv["total_share_hi"] - iv["total_share_lo"]) * 100
    level = ours.get_identification()["level"].reindex(iv.index)
    parts = [f"{kind} {int(held[level == kind].sum())} of {int((level == kind).sum())}"
             for kind in ("observed", "extrapolated") if (level == kind).any()]
    missed = ", ".join(f"{c} {100 * true[c]:.1f} not in [{100 * iv.loc[c, 'total_share_lo']:.1f}, "
                       f"{100 * iv.loc[c, 'total_share_hi']:.1f}]" for c in iv.index[~held])
    return (f"  90% intervals ({n_boot} refits, {iv.attrs['seconds']:.0f} s) hold {int(held.sum())} of "
            f"{len(iv)} true shares ({'; '.join(parts)}), mean width {width.mean():.2f} pp"
            + (f"; missed: {missed}" if missed else ""))


def oracle_figures(sim) -> tuple[float, float, float]:
    """The oracle's total-share error (mean, max, pp) and the root's total-effect error (%)."""
    err, root_err = oracle_errors(**simulated_inputs(sim), roots=(sim.channels.index(ROOT),))
    return float(np.abs(err).mean()), float(np.abs(err).max()), float(root_err[0])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--regions", type=int, default=40)
    ap.add_argument("--weeks", type=int, default=156)
    ap.add_argument("--channels", type=int, default=8)
    ap.add_argument("--noise", type=float, default=0.06)
    ap.add_argument("--media-share", type=float, default=0.3,
                    help="approximate share of the KPI driven by media (simulate_panel(media_share=...))")
    ap.add_argument("--kernel", type=float, default=None, metavar="DECAY",
                    help="spread each edge over lags 0-7 with this geometric decay (0 < DECAY < 1)")
    ap.add_argument("--lift", action="store_true",
                    help="edges lift the child in proportion instead of adding to it")
    ap.add_argument("--config", default="{}", help="JSON config overrides for every fit")
    ap.add_argument("--national", action="store_true",
                    help="the root channel_1 bought nationally (the same plan in every region, no "
                    "region-week variation; simulate_panel(national=...))")
    ap.add_argument("--in-phase", action="store_true",
                    help="the budget season every channel shares peaks with the KPI's yearly season "
                    "(simulate_panel(budget_in_phase=True))")
    ap.add_argument("--device", default="cpu", help='torch device for every fit ("cpu", "cuda")')
    ap.add_argument("--roi-priors", type=float, default=None, metavar="SD",
                    help="also refit with an ROI prior (calibration.roi_priors) on every channel our fit "
                    "marks `extrapolated`: mean the true ROI times exp(SD z), z standard normal drawn per "
                    "channel and seed, sd SD x that mean; prints a line per seed")
    ap.add_argument("--intervals", type=int, default=0, metavar="N",
                    help="also run get_effect_intervals(n_boot=N) on our fit and print how many true "
                    "shares the 90%% intervals hold (0: skip; slow, N refits per seed)")
    ap.add_argument("--prior-spread", type=float, default=PRIOR_SPREAD, metavar="S",
                    help="with --intervals: each refit draws its prior strengths (l2, hill_slope) "
                    f"times exp(S z), z standard normal (get_effect_intervals(prior_spread=S); default "
                    f"{PRIOR_SPREAD}, the package's; 0: sampling variation only)")
    ap.add_argument("--jobs", type=int, default=None, metavar="N",
                    help="with --intervals: the refits' n_jobs (default: one at a time; -1: one process per core)")
    args = ap.parse_args(argv)
    if args.intervals < 0 or args.intervals == 1:
        ap.error(f"--intervals must be 0 (skip) or at least 2 refits, found {args.intervals}")
    if not 0 < args.media_share < 0.9:
        ap.error(f"--media-share must be in (0, 0.9), found {args.media_share}")
    if args.kernel is not None and not 0 < args.kernel < 1:
        ap.error(f"--kernel must be a decay between 0 and 1 (exclusive), found {args.kernel}")
    graph = GRAPH if args.kernel is None else kernel_graph(args.kernel)
    over = json.loads(args.config)
    seeds = [int(s) for s in args.seeds.split(",")]
    truth_edges = {(p, c) for p, c, _ in GRAPH}
    rows = []
    for seed in seeds:
        sim = simulate_panel(args.regions, args.weeks, args.channels, seed=seed, noise=args.noise, graph=graph,
                             mediation="lift" if args.lift else "additive",
                             national=(ROOT,) if args.national else (), budget_in_phase=args.in_phase,
                             media_share=args.media_share)
        ours, t_ours = fit(sim, "notears", over, args.device)
        blind, t_blind = fit(sim, "none", over, args.device)
        f1, false, missed = edge_f1(ours, truth_edges)
        true_share = sim.truth_effects["total_share"]
        e_ours = ours.get_channel_effects()
        e_blind = blind.get_channel_effects()
        err_ours = (e_ours["total_share"] - true_share).abs() * 100
        err_blind = (e_blind["total_share"] - true_share).abs() * 100
        true_root = sim.truth_effects.loc[ROOT, "total"]
        root_ours = abs(e_ours.loc[ROOT, "total"] / true_root - 1) * 100
        root_blind = abs(e_blind.loc[ROOT, "total"] / true_root - 1) * 100
        empty = simulate_panel(args.regions, args.weeks, args.channels, seed=seed + 100, noise=args.noise,
                               national=(ROOT,) if args.national else (), budget_in_phase=args.in_phase,
                               media_share=args.media_share)
        m_empty, _ = fit(empty, "notears", over, args.device)
        n_false_empty = len(m_empty.get_dag_edges())
        o_mean, o_max, o_root = oracle_figures(sim)
        rows.append((seed, f1, n_false_empty, err_ours.mean(), err_ours.max(), err_blind.mean(),
                     err_blind.max(), o_mean, o_max, root_ours, root_blind, o_root, ours.graph_seconds_,
                     t_ours, t_blind))
        print(f"seed {seed}: learned edges {sorted((truth_edges | false) - missed)}; "
              f"false {sorted(false)}; missed {sorted(missed)}", flush=True)
        if args.roi_priors is not None:
            print(prior_line(sim, ours, over, args.device, seed, args.roi_priors), flush=True)
        if args.intervals:
            print(interval_line(sim, ours.set_params(n_jobs=args.jobs), args.intervals, args.prior_spread),
                  flush=True)
    head = ("seed", "edge_F1", "false_edges_empty", "share_err_mean_pp", "share_err_max_pp",
            "blind_err_mean_pp", "blind_err_max_pp", "oracle_err_mean_pp", "oracle_err_max_pp",
            "root_err_pct", "blind_root_err_pct", "oracle_root_pct", "graph_s", "fit_s", "blind_fit_s")
    print("\n" + "".join(f"{h:>19s}" for h in head))
    for r in rows:
        print("".join(f"{v:19.3f}" if isinstance(v, float) else f"{v:19d}" for v in r))
    arr = np.array([r[1:] for r in rows], dtype=float)
    print("mean" + "".join(f"{v:19.3f}" for v in arr.mean(axis=0)).rjust(19 * (len(head) - 1) + 4)[4:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
