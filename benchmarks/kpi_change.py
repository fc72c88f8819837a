"""How well ``get_kpi_change`` splits a KPI change between periods into the simulator's true parts.

Usage::

    python benchmarks/kpi_change.py [--seeds 0,1,2,3,4,5] [--size 20x156x5] [--noise 0.06]
                                    [--intervals N [--jobs J]]

For each seed this simulates a panel (``simulate_panel``, no channel graph: the
channel rows are direct contributions, which the simulator's ``truth`` holds per
cell), fits the default model and compares three pairs of periods:

- ``year``: the last 13 weeks against the same 13 weeks a year earlier (the
  report's comparison; the yearly season cancels);
- ``quarter``: the last 13 weeks against the 13 before them (the season moves);
- ``annual``: the last 52 weeks against the 52 before them;
- ``plan``: a model fitted on all but the last 13 weeks, given those weeks' media and
  controls as planned rows (``get_kpi_change(base, X=rows)``), against the same 13 weeks a
  year earlier: the forecast's parts against what truly moved the KPI (``forecast_err``: the
  forecast KPI's miss, in the same units).

The truth of each part's change is the simulator's: its baseline split into the
season (``params["kpi_season"]`` times each region's baseline unit) and the
rest, each channel's true contribution, and the controls' true effect. Errors
are in percentage points of the earlier period's KPI. Beside them, measured in
the same run, the naive reading of a KPI change without a model: the media did
not move it (the whole change is the baseline's), whose media error is the true
media change itself.

With ``--intervals N`` each comparison also runs ``get_kpi_change(n_boot=N)``
(region-bootstrap refits, each with its own prior strengths) and counts how many
channels' true changes (per cent of the earlier KPI) fall inside their 90%
intervals, and how wide those are.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import pandas as pd

from deepcausalmmm import DeepCausalMMM
from deepcausalmmm.datasets import simulate_panel


def _true_parts(sim, R: int, T: int) -> pd.DataFrame:
    """The simulator's truth per cell with its baseline split into ``season`` and ``trend``."""
    truth = sim.truth.copy()
    baseline = truth["baseline"].to_numpy().reshape(R, T)
    season = sim.params["kpi_season"]  # [T] a share of each region's baseline unit
    unit = baseline[:, 0] / (1 + season[0])  # the simulated trend is 1 at the first week
    truth["season"] = (unit[:, None] * season[None, :]).reshape(-1)
    truth["trend"] = truth["baseline"] - truth["season"]
    return truth


def _errors(table: pd.DataFrame, true: pd.Series, sim) -> dict:
    """``get_kpi_change``'s parts against the true changes (``true``: the truth's columns summed over
    the later period minus the earlier), in percentage points of the earlier period's KPI, beside
    the naive reading that the media moved nothing."""
    pct = 100 / table.attrs["base_kpi"]
    got = table["change"] * pct
    channels = list(sim.channels)
    err = (got[channels] - true[channels] * pct).abs()
    baseline = table.index[table["kind"] == "baseline"]  # level, trend, season (and a forecast's anchor)
    return {
        "kpi_change": table.attrs["change_pct"],
        "true_media": true[channels].sum() * pct, "media": got[channels].sum(),
        "media_err": abs(got[channels].sum() - true[channels].sum() * pct),
        "naive_media_err": abs(true[channels].sum() * pct),
        "channel_err_mean": err.mean(), "channel_err_max": err.max(),
        "naive_channel_err_mean": (true[channels] * pct).abs().mean(),
        "true_season": true["season"] * pct, "season": got["season"],
        "baseline_err": abs(got[baseline].sum() - true["baseline"] * pct),
        "controls_err": abs(got[list(sim.controls)].sum() - true["controls"] * pct),
    }


def _plan_row(sim, truth: pd.DataFrame, T: int, seed: int) -> dict:
    """The ``plan`` comparison: fit on weeks ``0..T-14``, the last 13 weeks as planned rows."""
    data = sim.data
    weeks = sorted(data["date"].unique())
    history, later = data[data["date"] < weeks[T - 13]], data[data["date"] >= weeks[T - 13]]
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = DeepCausalMMM().fit(history, "kpi", regions="region", dates="date", controls=list(sim.controls))
        fit_s = time.perf_counter() - start
        base = (weeks[T - 65], weeks[T - 53])
        started = time.perf_counter()
        table = model.get_kpi_change(base, X=later.drop(columns="kpi"), regions="region", dates="date",
                                     controls=list(sim.controls))
        seconds = time.perf_counter() - started
    when = truth.index.get_level_values("date")
    true = (truth[when >= weeks[T - 13]].sum() - truth[(when >= base[0]) & (when <= base[1])].sum())
    return {"seed": seed, "pair": "plan", **_errors(table, true, sim),
            "forecast_err": (table.attrs["compare_kpi"] - float(later["kpi"].sum())) * 100 / table.attrs["base_kpi"],
            "fit_s": fit_s, "change_s": seconds}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="0,1,2,3,4,5")
    ap.add_argument("--size", default="20x156x5", help="regions x weeks x channels (weeks >= 104)")
    ap.add_argument("--noise", type=float, default=0.06)
    ap.add_argument("--intervals", type=int, default=0, help="bootstrap refits per comparison (0: none)")
    ap.add_argument("--jobs", type=int, default=None, help="n_jobs for the refits")
    args = ap.parse_args(argv)
    R, T, C = (int(v) for v in args.size.split("x"))
    if T < 104:
        print(f"--size needs at least 104 weeks for the annual comparison, found {T}", file=sys.stderr)
        return 2
    pairs = {"year": ((T - 65, T - 53), (T - 13, T - 1)), "quarter": ((T - 26, T - 14), (T - 13, T - 1)),
             "annual": ((T - 104, T - 53), (T - 52, T - 1))}
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        sim = simulate_panel(R, T, C, seed=seed, noise=args.noise)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = DeepCausalMMM(n_jobs=args.jobs).fit(sim.X, sim.y, regions=sim.regions, dates=sim.dates,
                                                        controls=sim.control_frame)
        fit_s = time.perf_counter() - start
        truth = _true_parts(sim, R, T)
        when = truth.index.get_level_values("date")
        d = model.panel_.dates
        for name, ((a0, a1), (b0, b1)) in pairs.items():
            started = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                table = model.get_kpi_change((d[a0], d[a1]), (d[b0], d[b1]), n_boot=args.intervals)
            seconds = time.perf_counter() - started
            true = (truth[(when >= d[b0]) & (when <= d[b1])].sum() - truth[(when >= d[a0]) & (when <= d[a1])].sum())
            rows.append({"seed": seed, "pair": name, **_errors(table, true, sim), "fit_s": fit_s,
                         "change_s": seconds})
            if args.intervals:
                channels = list(sim.channels)
                pct = 100 / table.attrs["base_kpi"]
                true_pct = true[channels] * pct
                inside = ((table.loc[channels, "change_pct_lo"] <= true_pct)
                          & (true_pct <= table.loc[channels, "change_pct_hi"]))
                rows[-1].update({"held": int(inside.sum()), "of": len(channels),
                                 "width": float((table.loc[channels, "change_pct_hi"]
                                                 - table.loc[channels, "change_pct_lo"]).mean())})
        if not args.intervals:  # the plan: fitted without the last 13 weeks, which come as rows
            rows.append(_plan_row(sim, truth, T, seed))
        print(f"seed {seed}: fitted in {fit_s:.1f} s", flush=True)
    table = pd.DataFrame(rows)
    pd.set_option("display.width", 200)
    print()
    print(table.drop(columns=["fit_s", "change_s", "held", "of", "width", "forecast_err"], errors="ignore").round(2)
          .to_string(index=False))
    print()
    print("mean over seeds, percentage points of the earlier period's KPI (naive: the media moved nothing)")
    summary = table.groupby("pair", sort=False)[
        ["media_err", "naive_media_err", "channel_err_mean", "naive_channel_err_mean", "channel_err_max",
         "baseline_err", "controls_err"]].mean()
    print(summary.round(2).to_string())
    if "forecast_err" in table:
        plan = table[table["pair"] == "plan"]
        print(f"plan: the forecast KPI of the 13 planned weeks missed the actual by "
              f"{plan['forecast_err'].abs().mean():.2f} points of the earlier KPI on average "
              f"({', '.join(f'{v:+.2f}' for v in plan['forecast_err'])})")
    if args.intervals:
        held = table.groupby("pair", sort=False)[["held", "of", "width"]].agg({"held": "sum", "of": "sum",
                                                                              "width": "mean"})
        print(f"\n90% intervals from {args.intervals} bootstrap refits: true channel changes inside")
        print(held.round(2).to_string())
        print(f"\nget_kpi_change with n_boot={args.intervals}: {table['change_s'].mean():.1f} s per call on average; "
              f"fits {table['fit_s'].mean():.1f} s on average")
        return 0
    print(f"\nget_kpi_change: {table['change_s'].mean() * 1000:.0f} ms per call on average; "
          f"fits {table['fit_s'].mean():.1f} s on average")
    return 0


if __name__ == "__main__":
    sys.exit(main())
