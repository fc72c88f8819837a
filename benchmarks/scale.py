"""Scaling benchmark: fit time and peak memory vs panel size on simulated panels.

Usage::

    python benchmarks/scale.py [--epochs 20] [--sizes 50x104x8,200x104x8,...] [--device cpu] [--repeat 1]

Each size runs in its own process (so peak memory is its own) for a fixed
number of Adam epochs without the L-BFGS polish (``--epochs 0``: a complete
default fit, polish included); the script prints seconds per loss evaluation
(an epoch or a polish step), the fit time that the longest default run
(``training.epochs`` epochs plus the polish) would take at that rate, peak
resident memory (and, on ``--device cuda``, peak GPU memory), and the fitted exponent of time vs regions x weeks x channels.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import numpy as np

from deepcausalmmm import MMMConfig

DEFAULT_SIZES = "50x104x8,200x104x8,500x104x8,500x156x20,1000x156x20,2000x156x20"

CHILD = r"""
import json, resource, sys, time
import torch
from deepcausalmmm import DeepCausalMMM, MMMConfig
from deepcausalmmm.datasets import simulate_panel
R, T, C, epochs, device = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
repeat = int(sys.argv[6])
sim = simulate_panel(R, T, C, seed=0)
fixed = {"epochs": epochs, "patience": 10**6, "polish_steps": 0}
cfg = {} if epochs == 0 else {"training": fixed}
times = []
for _ in range(repeat):
    model = DeepCausalMMM(config=cfg, device=device)
    t0 = time.perf_counter()
    model.fit(sim.X, sim.y, regions=sim.regions, dates=sim.dates, controls=sim.control_frame)
    times.append(time.perf_counter() - t0)
fit_s = times[0]
tr = MMMConfig().training
print(json.dumps({"fit_s": fit_s, "repeat_fit_s": times[1:], "epochs": model.history_.epochs_run,
                  "polish_evals": model.history_.polish_evals,
                  "max_evals": tr.epochs + tr.polish_steps * 5 // 4,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "gpu_peak_mb": (torch.cuda.max_memory_allocated() / 2**20
                                  if device.startswith("cuda") else 0.0),
                  "max_epochs": tr.epochs}))
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--epochs", type=int, default=20,
                    help="fixed epochs per size; 0 runs the default fit (stops at the loss plateau)")
    ap.add_argument("--sizes", default=DEFAULT_SIZES)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", default=None)
    ap.add_argument("--repeat", type=int, default=1,
                    help="fits per size in the same process; later fits' seconds are printed too "
                         "(on cuda the first pays the CUDA start-up)")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error(f"--repeat must be at least 1, found {args.repeat}")
    rows = []
    print(f"{'regions':>8}{'weeks':>7}{'chans':>7}{'cells':>12}{'s/epoch':>10}{'fit_s':>9}"
          f"{'full_fit_s*':>13}{'peak_MB':>10}{'gpu_MB':>9}")
    for size in args.sizes.split(","):
        R, T, C = (int(v) for v in size.split("x"))
        out = subprocess.run([sys.executable, "-c", CHILD, str(R), str(T), str(C), str(args.epochs),
                              args.device, str(args.repeat)], capture_output=True, text=True)
        if out.returncode != 0:
            print(f"{size}: failed\n{out.stderr[-2000:]}")
            continue
        res = json.loads(out.stdout.strip().splitlines()[-1])
        per_epoch = res["fit_s"] / (res["epochs"] + res["polish_evals"])
        row = {"regions": R, "weeks": T, "channels": C, "cells": R * T * C, **res,
               "s_per_epoch": per_epoch, "full_fit_s": per_epoch * res["max_evals"]}
        rows.append(row)
        print(f"{R:8d}{T:7d}{C:7d}{R * T * C:12d}{per_epoch:10.3f}{res['fit_s']:9.1f}"
              f"{row['full_fit_s']:13.1f}{res['peak_mb']:10.0f}{res['gpu_peak_mb']:9.0f}")
        if res["repeat_fit_s"]:
            print(f"{'':8}same process, later fits: " + ", ".join(f"{t:.2f} s" for t in res["repeat_fit_s"]))
    if len(rows) >= 2:
        x = np.log([r["cells"] for r in rows])
        y = np.log([r["s_per_epoch"] for r in rows])
        slope = np.polyfit(x, y, 1)[0]
        print(f"\ngrowth exponent of time per epoch vs regions*weeks*channels: {slope:.2f}")
    tr = MMMConfig().training
    print("* full_fit_s: seconds per epoch x the most loss evaluations a default fit may make "
          f"({tr.epochs} Adam epochs + 1.25 x {tr.polish_steps} L-BFGS polish steps); a default "
          "fit stops Adam earlier when the loss plateaus")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
