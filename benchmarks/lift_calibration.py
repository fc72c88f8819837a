"""Lift-test calibration on simulated panels with a known channel graph.

Usage::

    python benchmarks/lift_calibration.py [--seeds 0,1,2] [--tests-per-channel 1] [--se 0.1 | --se noise] [--flighted [--empty]] [--channels a,b]
        [--config '{"calibration": {"tested_prior": 0.3}}'] [--plan] [--intervals 20 [--prior-spread 1.4]]

Same panels as ``causal_recovery.py`` (40 regions x 156 weeks x 8 channels,
edges channel_1 -> channel_2 -> channel_3, channel_1 -> channel_3). For
each seed, one geo experiment per channel (``--tests-per-channel``): the
channel switched off in 10 random regions for 8 random weeks (redrawn while
the channel is dark in them); the measured
lift is the simulator's true lift for those cells plus Gaussian noise with
standard deviation ``--se`` x the true lift, reported with that standard
error. ``--se noise`` measures each test as precisely as the KPI's noise
allows instead: standard deviation ``sqrt(2)`` times ``plan_lift_test``'s
noise floor for the test's cells on the fit without experiments (the test
cells' own noise and an equally noisy control group's). Prints total-effect share errors and the root channel's total-effect
error for the model fitted without the experiments and with them
(``fit(lift_tests=...)``), both fitted in this run.

``--flighted`` uses ``other_simulator.py``'s third design instead (four
flighted and four always-on channels, root tv; ``--empty`` without its
edges), and ``--channels`` limits the experiments to the named channels,
e.g. the always-on ones: ``--channels search,social,display,email``.

``--plan`` also prints, per experiment, what ``plan_lift_test`` on the fit
without experiments expected before the test was run: the model's lift over
the true lift, the noise floor ``noise_se`` over the true lift, and (on the
package's simulator, whose KPI noise is 6% of each cell's baseline) the noise
floor over the standard error that noise actually leaves on the test's cells.

``--intervals N`` runs ``get_effect_intervals(n_boot=N, prior_spread=S)``
(``--prior-spread S``, default the package's) on the calibrated fit (each
refit keeps the tests) and prints how many true total-effect shares its 90%
intervals hold.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from deepcausalmmm import DeepCausalMMM
from deepcausalmmm.datasets import simulate_panel
from deepcausalmmm.estimator import PRIOR_SPREAD

sys.path.insert(0, str(Path(__file__).resolve().parent))
from other_simulator import simulate_flighted  # noqa: E402

NOISE = 0.06  # the package simulator's KPI noise: sd as a fraction of each cell's baseline
GRAPH = [("channel_1", "channel_3", 0.6), ("channel_2", "channel_3", 0.5), ("channel_1", "channel_2", 0.4)]
ROOT = "channel_1"


def experiments(sim: Any, per_channel: int, se: float, rng: np.random.Generator,
                channels: list[str] | None = None) -> pd.DataFrame:
    """Random geo tests with noisy measured lifts (see module docstring)."""
    dates = np.unique(sim.dates)
    regions = list(dict.fromkeys(sim.regions))
    rows = []
    for channel in channels or sim.channels:
        for _ in range(per_channel):
            true = 0.0
            while true <= 0:  # a flighted channel may be dark in a window: nothing to test there
                chosen = list(rng.choice(regions, size=min(10, len(regions)), replace=False))
                start = int(rng.integers(52, len(dates) - 8))
                true = sim.true_lift(channel, chosen, dates[start], dates[start + 7])
            sd = se * abs(true)
            rows.append({"channel": channel, "start": dates[start], "end": dates[start + 7],
                         "regions": chosen, "lift": true + rng.normal(0, sd), "lift_se": sd, "true_lift": true})
    return pd.DataFrame(rows)


def print_plan(model: DeepCausalMMM, sim: Any, tests: pd.DataFrame) -> None:
    """``--plan``: ``plan_lift_test`` on the model without experiments, against each test's truth."""
    plan = model.plan_lift_test(tests[["channel", "start", "end", "regions"]])
    level = model.get_identification()["level"]
    truth = getattr(sim, "truth", None)
    dates, regions = np.asarray(sim.dates), np.asarray(sim.regions)
    for row, true in zip(plan.itertuples(), tests["true_lift"], strict=True):
        line = (f"  plan {row.channel} ({level[row.channel]}): model lift {row.model_lift / true:.2f} of the "
                f"true lift, noise floor {row.noise_se / true:.3f} of it")
        if truth is not None:  # the package's simulator: noise sd NOISE x each cell's baseline
            cells = (dates >= row.start) & (dates <= row.end) & np.isin(regions, row.regions)
            noise = np.sqrt(((NOISE * truth["baseline"].to_numpy()[cells]) ** 2).sum())
            line += f", {row.noise_se / noise:.2f} of the simulated noise's"
        print(line, flush=True)


def score(model: DeepCausalMMM, sim: Any, root_channel: str = ROOT) -> dict[str, float]:
    effects = model.get_channel_effects()
    truth = sim.truth_effects
    err = (effects["total_share"] - truth["total_share"]) * 100
    root = abs(effects.loc[root_channel, "total"] / truth.loc[root_channel, "total"] - 1) * 100
    return {"mean_pp": float(err.abs().mean()), "max_pp": float(err.abs().max()), "root_pct": float(root)}


def interval_line(model: DeepCausalMMM, sim: Any, n_boot: int, prior_spread: float) -> str:
    """``--intervals``: how many true total-effect shares the calibrated fit's 90% intervals hold."""
    iv = model.get_effect_intervals(n_boot=n_boot, level=0.9, prior_spread=prior_spread)
    true = sim.truth_effects["total_share"].reindex(iv.index)
    held = (iv["total_share_lo"] <= true) & (true <= iv["total_share_hi"])
    width = (iv["total_share_hi"] - iv["total_share_lo"]) * 100
    missed = ", ".join(f"{c} {100 * true[c]:.1f} not in [{100 * iv.loc[c, 'total_share_lo']:.1f}, "
                       f"{100 * iv.loc[c, 'total_share_hi']:.1f}]" for c in iv.index[~held])
    return (f"  calibrated fit's 90% intervals ({n_boot} refits, prior_spread {prior_spread}, "
            f"{iv.attrs['seconds']:.0f} s) hold {int(held.sum())} of {len(iv)} true shares, mean width "
            f"{width.mean():.2f} pp" + (f"; missed: {missed}" if missed else ""))


@dataclass
class FlightedSim:
    """``other_simulator.simulate_flighted``'s panel in the shape ``experiments``/``score`` read."""

    X: pd.DataFrame
    y: np.ndarray
    regions: np.ndarray
    dates: np.ndarray
    control_frame: pd.DataFrame
    channels: list[str]
    truth_effects: pd.DataFrame
    true_lift: Callable[[str, list, int, int], float]

    @classmethod
    def make(cls, seed: int, empty: bool) -> FlightedSim:
        df, names, total, _, lift = simulate_flighted(seed, empty=empty)
        truth = pd.DataFrame({"total": total, "total_share": total / total.sum()}, index=names)
        return cls(df[names], df["kpi"].to_numpy(), df["region"].to_numpy(), df["week"].to_numpy(),
                   df[["price"]], names, truth, lift)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--tests-per-channel", type=int, default=1)
    ap.add_argument("--se", default="0.1",
                    help="measurement noise, fraction of the true lift, or 'noise': sqrt(2) x the noise floor "
                    "plan_lift_test gives the test's cells")
    ap.add_argument("--flighted", action="store_true", help="other_simulator.py's flighted design")
    ap.add_argument("--empty", action="store_true", help="with --flighted: no edges among channels")
    ap.add_argument("--channels", default="", help="test only these channels (comma-separated)")
    ap.add_argument("--config", default="{}", help="JSON config overrides for both fits")
    ap.add_argument("--plan", action="store_true",
                    help="print plan_lift_test's expectation for each experiment against the truth")
    ap.add_argument("--intervals", type=int, default=0, metavar="N",
                    help="get_effect_intervals(n_boot=N) on the calibrated fit: how many true shares its "
                    "90%% intervals hold (0: skip; N refits per seed)")
    ap.add_argument("--prior-spread", type=float, default=PRIOR_SPREAD, metavar="S",
                    help=f"with --intervals: prior_spread of the refits (default {PRIOR_SPREAD})")
    args = ap.parse_args(argv)
    if args.intervals < 0 or args.intervals == 1:
        ap.error(f"--intervals must be 0 (skip) or at least 2 refits, found {args.intervals}")
    over = json.loads(args.config)
    from_noise = args.se == "noise"
    try:
        se = 0.1 if from_noise else float(args.se)
    except ValueError:
        ap.error(f"--se must be a fraction of the true lift (e.g. 0.1) or 'noise', found {args.se!r}")
    if not from_noise and not se > 0:
        ap.error(f"--se must be positive, found {args.se!r}")
    if args.empty and not args.flighted:
        ap.error("--empty needs --flighted")
    rows = []
    root = "tv" if args.flighted else ROOT
    for seed in (int(s) for s in args.seeds.split(",")):
        sim: Any = (FlightedSim.make(seed, args.empty) if args.flighted
                    else simulate_panel(40, 156, 8, seed=seed, noise=NOISE, graph=GRAPH))
        test_channels = [c for c in args.channels.split(",") if c] or list(sim.channels)
        unknown = sorted(set(test_channels) - set(sim.channels))
        if unknown:
            ap.error(f"--channels: unknown {unknown}; the panel's channels are {list(sim.channels)}")
        tests = experiments(sim, args.tests_per_channel, se, np.random.default_rng(1000 + seed),
                            test_channels)
        kw = dict(regions=sim.regions, dates=sim.dates, controls=sim.control_frame)
        t0 = time.perf_counter()
        plain = DeepCausalMMM(config=over).fit(sim.X, sim.y, **kw)
        t1 = time.perf_counter()
        if from_noise:  # as precise as the KPI's noise allows: the test cells' and a control group's
            floor = plain.plan_lift_test(tests[["channel", "start", "end", "regions"]])["noise_se"].to_numpy()
            sd = np.sqrt(2.0) * floor
            noise = np.random.default_rng(2000 + seed).normal(0.0, 1.0, len(tests))
            tests = tests.assign(lift=tests["true_lift"] + sd * noise, lift_se=sd)
        t_cal = time.perf_counter()
        calibrated = DeepCausalMMM(config=over).fit(sim.X, sim.y, lift_tests=tests.drop(columns="true_lift"), **kw)
        t2 = time.perf_counter()
        if args.plan:
            print_plan(plain, sim, tests)
        z_plain = plain.lift_test_report(tests.drop(columns="true_lift"))["z"].abs()
        report = calibrated.lift_test_report()
        z_cal = report["z"].abs()
        worst = report.loc[z_cal.idxmax()]
        c = plain.channels_.index(worst["channel"])
        tested = [plain.regions_.index(r) for r in (worst["regions"] or plain.regions_)]
        with torch.no_grad():
            coef = [float(m.net_.beta()[c]) for m in (plain, calibrated)]
            dev = [float(m.net_.region_dev[tested, c].mean()) for m in (plain, calibrated)]
        row = {"seed": seed, "tests": len(tests)}
        row.update({f"plain_{k}": v for k, v in score(plain, sim, root).items()})
        row.update({f"calibrated_{k}": v for k, v in score(calibrated, sim, root).items()})
        row.update({"plain_mean_abs_z": float(z_plain.mean()), "calibrated_mean_abs_z": float(z_cal.mean()),
                    "plain_fit_s": t1 - t0, "calibrated_fit_s": t2 - t_cal})
        rows.append(row)
        print(f"seed {seed}: {len(tests)} tests; share error mean/max plain "
              f"{row['plain_mean_pp']:.2f}/{row['plain_max_pp']:.2f} pp, calibrated "
              f"{row['calibrated_mean_pp']:.2f}/{row['calibrated_max_pp']:.2f} pp; root "
              f"{row['plain_root_pct']:.1f}% -> {row['calibrated_root_pct']:.1f}%", flush=True)
        print(f"  worst-fitted test after calibration: {worst['channel']}, z {worst['z']:.2f}; that "
              f"channel's shared coefficient {coef[0]:.4f} -> {coef[1]:.4f}, the tested regions' mean "
              f"deviation {dev[0]:.4f} -> {dev[1]:.4f}", flush=True)
        if args.intervals:
            print(interval_line(calibrated, sim, args.intervals, args.prior_spread), flush=True)
    table = pd.DataFrame(rows).set_index("seed")
    table.loc["mean"] = table.mean()
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print()
        print(table.round(3).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
