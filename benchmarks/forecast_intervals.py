"""Forecast-interval coverage on simulated panels (``predict_interval``).

Usage::

    python benchmarks/forecast_intervals.py [--seeds 0,1,2,3] [--size 40x156x8] [--holdout 26]
                                            [--noise 0.06] [--levels 0.8,0.9] [--calibrate N]

For each seed, fits ``simulate_panel`` on all but the last ``--holdout`` weeks
(default configuration), forecasts those weeks with ``predict_interval`` at
each level, and prints the share of holdout cells inside their interval, the
intervals' summed width over the summed KPI, and the forecast's WAPE. With
``--calibrate N`` also the same after ``calibrate_intervals(n_splits=N)`` at each
level (N refits per level on the fitted weeks; ``cal_`` columns). The
MMM panel's coverage is printed by ``mmm_panel.py`` (at the split and at every
swept cutoff).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from deepcausalmmm import DeepCausalMMM
from deepcausalmmm.datasets import simulate_panel


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", default="0,1,2,3")
    ap.add_argument("--size", default="40x156x8", help="regions x weeks x channels")
    ap.add_argument("--holdout", type=int, default=26, help="weeks forecast after the fit")
    ap.add_argument("--noise", type=float, default=0.06)
    ap.add_argument("--levels", default="0.8,0.9")
    ap.add_argument("--calibrate", type=int, default=0, metavar="N",
                    help="also calibrate the intervals on N rolling cutoffs of the fitted weeks (0: off)")
    args = ap.parse_args(argv)
    R, T, C = (int(v) for v in args.size.split("x"))
    levels = [float(v) for v in args.levels.split(",")]
    if not 0 < args.holdout < T:
        ap.error(f"--holdout must be between 1 and the weeks less one ({T - 1}), found {args.holdout}")
    kinds = ("cover", "width") + (("cal_cover", "cal_width", "scale") if args.calibrate else ())
    head = ["seed"] + [f"{k}_{lv:g}" for lv in levels for k in kinds] + ["wape", "fit_s"]
    print("".join(f"{h:>15s}" for h in head))
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        sim = simulate_panel(R, T, C, seed=seed, noise=args.noise)
        d = sim.data
        weeks = np.sort(d["date"].unique())
        train, hold = d[d["date"] < weeks[T - args.holdout]], d[d["date"] >= weeks[T - args.holdout]]
        start = time.perf_counter()
        model = DeepCausalMMM().fit(train[sim.channels], train["kpi"].to_numpy(),
                                    regions=train["region"].to_numpy(), dates=train["date"].to_numpy(),
                                    controls=train[sim.controls])
        fit_s = time.perf_counter() - start
        y = hold["kpi"].to_numpy()
        row = [float(seed)]
        ahead = {"X": hold[sim.channels], "regions": hold["region"].to_numpy(), "dates": hold["date"].to_numpy(),
                 "controls": hold[sim.controls]}
        for level in levels:
            model.interval_calibration_ = None  # the fit's own intervals first
            bands = [model.predict_interval(**ahead, level=level)]
            if args.calibrate:
                scale = model.calibrate_intervals(n_splits=args.calibrate, level=level).attrs["scale"]
                bands.append(model.predict_interval(**ahead, level=level))
            for band in bands:
                row += [float(((y >= band["lower"]) & (y <= band["upper"])).mean() * 100),
                        float((band["upper"] - band["lower"]).sum() / np.abs(y).sum() * 100)]
            if args.calibrate:
                row.append(scale)
            band = bands[0]
        row += [float(np.abs(y - band["prediction"]).sum() / np.abs(y).sum() * 100), fit_s]
        rows.append(row)
        print(f"{seed:15d}" + "".join(f"{v:15.2f}" for v in row[1:]), flush=True)
    print(f"{'mean':>15s}" + "".join(f"{v:15.2f}" for v in np.mean(rows, axis=0)[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
