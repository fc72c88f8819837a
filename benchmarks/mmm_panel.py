"""MMM-panel benchmark (../shared/BENCHMARK.md) through the public API.

Usage::

    python benchmarks/mmm_panel.py [--data ../shared/data/mmm_data.csv] [--json out.json]
                                   [--backtest 3] [--sweep 36,40,...,96] [--explain]
                                   [--intervals N] [--jobs N] [--config JSON]

Prints one table with the model and the naive floors computed in the same run,
and how many holdout cells the model's 90% forecast intervals
(``predict_interval``) hold, at the split and at every swept cutoff.
The issue's targets are for the default configuration; ``--config`` (JSON
config overrides for every fit) is for comparing settings.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import r2_score

from deepcausalmmm import ConfigError, DeepCausalMMM, build_config

N_WEEKS = 109
HOLDOUT = int(N_WEEKS * 0.12)  # 13
BURN_IN = 6
FILLED_WEIGHT = 0.1  # BENCHMARK.md: a model may down-weight filled cells
INTERVAL_LEVEL = 0.9  # forecast intervals (predict_interval) scored beside the point metrics
DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mmm_data.csv"


def load_grid(path: Path) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Complete the panel to every DMA x week; keep an ``observed`` mask."""
    raw = pd.read_csv(path)
    media = [c for c in raw.columns if c.startswith("impressions_")]
    controls = [c for c in raw.columns if c.startswith("control_")]
    dmas = np.sort(raw["dmacode"].unique())
    weeks = np.arange(raw["weekid"].max() + 1)
    full = pd.MultiIndex.from_product([dmas, weeks], names=["dmacode", "weekid"]).to_frame(index=False)
    df = full.merge(raw, on=["dmacode", "weekid"], how="left", indicator=True)
    df["observed"] = df.pop("_merge").eq("both")
    df[media] = df[media].fillna(0.0)
    fill = controls + ["target_visits"]
    df[fill] = df.groupby("dmacode")[fill].transform(lambda s: s.ffill().bfill())
    return df.sort_values(["dmacode", "weekid"]).reset_index(drop=True), media, controls


def metrics(df: pd.DataFrame, pred: np.ndarray) -> dict[str, float]:
    """Pooled R^2, WAPE, national MAPE and per-DMA median R^2 over the rows of ``df``."""
    y = df["target_visits"].to_numpy()
    out = {
        "pooled_r2": float(r2_score(y, pred)),
        "wape_pct": float(np.abs(y - pred).sum() / np.abs(y).sum() * 100),
    }
    tmp = df[["dmacode", "weekid"]].assign(y=y, p=pred)
    nat = tmp.groupby("weekid")[["y", "p"]].sum()
    out["national_mape_pct"] = float((np.abs(nat.y - nat.p) / np.abs(nat.y)).mean() * 100)
    per = tmp.groupby("dmacode").apply(
        lambda g: r2_score(g.y, g.p) if g.y.nunique() > 1 else np.nan, include_groups=False
    )
    out["median_dma_r2"] = float(np.nanmedian(per))
    return out


def naive_forecasts(train: pd.DataFrame, hold: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per-DMA last value, last-13 mean and train mean, held flat over the holdout."""
    g = train.groupby("dmacode")["target_visits"]
    last = g.last()
    mean13 = train[train.weekid >= train.weekid.max() - 12].groupby("dmacode")["target_visits"].mean()
    mean = g.mean()
    d = hold["dmacode"]
    return {
        "naive: last value": d.map(last).to_numpy(),
        "naive: last-13 mean": d.map(mean13).to_numpy(),
        "naive: train mean": d.map(mean).to_numpy(),
    }


def fit_and_score(
    df: pd.DataFrame, media: list[str], controls: list[str], cutoff: int, horizon: int,
    random_state: int = 0, config: dict | None = None,
) -> tuple[dict[str, dict[str, float]], DeepCausalMMM]:
    """Fit on weeks < cutoff, score weeks cutoff..cutoff+horizon-1, with naive floors."""
    train = df[df.weekid < cutoff]
    hold = df[(df.weekid >= cutoff) & (df.weekid < cutoff + horizon)]
    model = DeepCausalMMM(config=config, random_state=random_state)
    t0 = time.perf_counter()
    model.fit(
        train[media], train["target_visits"].to_numpy(), regions=train["dmacode"].to_numpy(),
        dates=train["weekid"].to_numpy(), controls=train[controls],
        sample_weight=np.where(train["observed"], 1.0, FILLED_WEIGHT),
    )
    fit_s = time.perf_counter() - t0
    band = model.predict_interval(hold[media], regions=hold["dmacode"].to_numpy(),
                                  dates=hold["weekid"].to_numpy(), controls=hold[controls],
                                  level=INTERVAL_LEVEL)
    pred_h = band["prediction"].to_numpy()  # predict's forecast
    scored_train = train[train.weekid >= BURN_IN]
    pred_t = model.predict(scored_train[media], regions=scored_train["dmacode"].to_numpy(),
                           dates=scored_train["weekid"].to_numpy(), controls=scored_train[controls])
    rows: dict[str, dict[str, float]] = {}
    m = metrics(hold, pred_h)
    m["train_r2"] = float(r2_score(scored_train["target_visits"], pred_t))
    m["gap"] = m["train_r2"] - m["pooled_r2"]
    m["fit_s"] = fit_s
    y_h = hold["target_visits"].to_numpy()
    m["interval_coverage_pct"] = float(((y_h >= band["lower"]) & (y_h <= band["upper"])).mean() * 100)
    m["interval_width_pct"] = float((band["upper"] - band["lower"]).sum() / np.abs(y_h).sum() * 100)
    rows["deepcausalmmm"] = m
    for name, pred in naive_forecasts(train, hold).items():
        rows[name] = metrics(hold, pred)
    return rows, model


SPIKE = 1.4  # a holdout cell above 1.4 x its DMA's holdout median KPI counts as a one-week spike


def explain(df: pd.DataFrame, media: list[str], controls: list[str], cutoff: int,
            model: DeepCausalMMM) -> dict[str, object]:
    """Print where the split's squared error sits, a budget reallocation and a test plan; return the figures."""
    train = df[df.weekid < cutoff]
    hold = df[(df.weekid >= cutoff) & (df.weekid < cutoff + HOLDOUT)].copy()
    hold["ours"] = model.predict(hold[media], regions=hold["dmacode"].to_numpy(),
                                 dates=hold["weekid"].to_numpy(), controls=hold[controls])
    hold["naive"] = naive_forecasts(train, hold)["naive: last value"]
    y = hold["target_visits"]
    sst = float(((y - y.mean()) ** 2).sum())
    hold["ratio"] = y / hold.groupby("dmacode")["target_visits"].transform("median")
    for c in ("ours", "naive"):
        hold[f"sse_{c}"] = (y - hold[c]) ** 2 / sst * 1e4  # share of 1 - R^2, x 1e-4
    print("\nlargest holdout squared errors (x 1e-4 of 1 - R^2; KPI / DMA holdout median):")
    top = hold.sort_values("sse_ours", ascending=False).head(5)
    print(top[["dmacode", "weekid", "target_visits", "ratio", "sse_ours", "sse_naive"]].round(2).to_string(index=False))
    spike = hold["ratio"] > SPIKE
    rest = hold[~spike]
    out: dict[str, object] = {
        "spike_cells": hold.loc[spike, ["dmacode", "weekid"]].to_numpy().tolist(),
        "spike_sse_ours": float(hold.loc[spike, "sse_ours"].sum()),
        "spike_sse_naive": float(hold.loc[spike, "sse_naive"].sum()),
        "r2_without_spikes_ours": float(r2_score(rest["target_visits"], rest["ours"])),
        "r2_without_spikes_naive": float(r2_score(rest["target_visits"], rest["naive"])),
    }
    print(f"cells above {SPIKE} x their DMA's holdout median: {out['spike_cells']}; they hold "
          f"{out['spike_sse_ours']:.1f} of {hold['sse_ours'].sum():.1f} (ours) and {out['spike_sse_naive']:.1f} "
          f"of {hold['sse_naive'].sum():.1f} (naive); pooled R^2 without them: ours "
          f"{out['r2_without_spikes_ours']:.5f}, naive {out['r2_without_spikes_naive']:.5f}")
    edges = model.get_dag_edges()
    effects = model.get_channel_effects()
    out.update({"graph_pairs": len(set(zip(edges.parent, edges.child, strict=True))),
                "graph_edges": len(edges), "graph_weight_sum": float(edges.weight.sum()),
                "graph_seconds": float(model.graph_seconds_),
                "mediated_share_of_total": float((effects.total - effects.direct).sum() / effects.total.sum())})
    print(f"\nchannel graph: {out['graph_pairs']} parent-child pairs ({out['graph_edges']} edges with their "
          f"lags), weights summing to {out['graph_weight_sum']:.2f}, learned in {out['graph_seconds']:.2f} s; "
          f"mediated effects {out['mediated_share_of_total'] * 100:.1f}% of the channels' total effects")
    unexplained = model.get_unexplained_weeks()
    out["unexplained_weeks"] = {int(k): round(float(z), 2) for k, z in unexplained["z"].items()}
    print(f"\nweeks the fit misses far more than usual (get_unexplained_weeks, |z| >= 3): "
          f"{len(unexplained)}")
    print(unexplained.round(2).to_string() if len(unexplained) else "none")
    t0 = time.perf_counter()
    plan = model.optimize_budget()
    seconds = time.perf_counter() - t0
    kpi = float(model.get_channel_contributions()["prediction"].sum())
    out.update({"budget_seconds": seconds, "budget_gain_pct": plan.attrs["kpi_gain"] / kpi * 100,
                "budget_multipliers": plan["multiplier"].round(3).to_dict()})
    print(f"\nbudget reallocation at the same total (optimize_budget, {seconds:.1f} s): modelled gain "
          f"{out['budget_gain_pct']:.2f}% of the fitted KPI; multipliers:")
    print(plan["multiplier"].round(3).to_string())
    regions, dates = list(model.regions_), model.panel_.dates
    t0 = time.perf_counter()
    tests = model.plan_lift_test(pd.DataFrame([
        {"channel": c, "start": dates[-8], "end": dates[-1], "regions": regions[::2]} for c in model.channels_]))
    seconds = time.perf_counter() - t0
    tests["level"] = model.get_identification()["level"].reindex(tests["channel"]).to_numpy()
    tests["channel"] = [m.group(0) if (m := re.search(r"Channel_\d+", c)) else c for c in tests["channel"]]
    out["test_plan"] = tests[["channel", "level", "model_lift", "relative_se", "weeks_needed"]].to_dict("records")
    print(f"\ntest plan (plan_lift_test, {seconds:.1f} s): each channel off in every second DMA "
          f"({len(regions[::2])}) over the last 8 fitted weeks; persistence {tests.attrs['persistence']:.3f}, "
          f"noise floor {tests['noise_se'].iloc[0]:,.0f}:")
    print(tests[["channel", "level", "model_lift", "relative_se", "weeks_needed"]].round(3).to_string(index=False))
    return out


def intervals(model: DeepCausalMMM, n_boot: int) -> dict[str, object]:
    """Region-bootstrap effect intervals and the budget plan's robustness on the split's fit."""
    eff = model.get_effect_intervals(n_boot=n_boot)
    cols = ["total_share", "total_share_lo", "total_share_hi", "marginal_roi", "marginal_roi_lo",
            "marginal_roi_hi"]
    print(f"\neffect intervals (get_effect_intervals, n_boot {n_boot}, prior_spread "
          f"{eff.attrs['prior_spread']}, 90%, "
          f"{eff.attrs['seconds']:.1f} s; marginal ROI in KPI per unit of activity):")
    print(eff[cols].round(4).to_string())
    t0 = time.perf_counter()
    plan = model.optimize_budget(n_boot=n_boot)
    seconds = time.perf_counter() - t0
    a = plan.attrs
    print(f"\nbudget plan robustness (optimize_budget, n_boot {n_boot}, {seconds:.1f} s): gain "
          f"{a['kpi_gain_fraction'] * 100:.2f}% of modelled KPI; replicates {a['gain_lo'] * 100:.2f} to "
          f"{a['gain_hi'] * 100:.2f}% (90%), plan ahead in {a['gain_share_positive'] * 100:.0f}% of replicates")
    return {"effect_intervals": eff[cols].to_dict(orient="index"), "effect_seconds": eff.attrs["seconds"],
            "prior_spread": eff.attrs["prior_spread"],
            "plan_gain_fraction": a["kpi_gain_fraction"], "plan_gain_lo": a["gain_lo"],
            "plan_gain_hi": a["gain_hi"], "plan_share_positive": a["gain_share_positive"],
            "plan_seconds": seconds, "plan_multipliers": plan["multiplier"].round(3).to_dict()}


def print_table(rows: dict[str, dict[str, float]], title: str) -> None:
    cols = ["pooled_r2", "wape_pct", "national_mape_pct", "median_dma_r2", "train_r2", "gap", "fit_s"]
    print(f"\n{title}")
    print(f"{'method':24s}" + "".join(f"{c:>18s}" for c in cols))
    for name, m in rows.items():
        cells = "".join(f"{m[c]:18.4f}" if c in m else f"{'-':>18s}" for c in cols)
        print(f"{name:24s}{cells}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--backtest", type=int, default=3, help="extra rolling cutoffs (0: none)")
    ap.add_argument("--sweep", default="", help="comma-separated cutoff weeks: the paper's "
                    "protocol (all cells, 13-week horizon) at each, ours vs naive last value")
    ap.add_argument("--random-state", type=int, default=0,
                    help="the model's seed (default 0); other seeds show run-to-run noise")
    ap.add_argument("--explain", action="store_true",
                    help="after the split: where the holdout squared error sits (largest cells, R^2 "
                    "without single-week spikes), the channel graph (pairs, weights, seconds, mediated "
                    "share of total effects), the weeks the fit misses far more than usual, a budget "
                    "reallocation of the fitted model and a test plan (plan_lift_test: each channel off in "
                    "every second DMA over the last 8 fitted weeks)")
    ap.add_argument("--intervals", type=int, default=0, metavar="N",
                    help="after the split: get_effect_intervals and optimize_budget with N "
                    "region-bootstrap refits each (slow: 2 N fits)")
    ap.add_argument("--jobs", type=int, default=None, metavar="N",
                    help="n_jobs of the backtest's and --intervals' refits (default: one at a time; -1: one "
                    "process per core)")
    ap.add_argument("--config", default=None, help="JSON config overrides for every fit "
                    "(default: the default configuration)")
    args = ap.parse_args(argv)
    try:
        over = json.loads(args.config) if args.config else None
        build_config(over)
    except json.JSONDecodeError as exc:
        print(f"--config must be JSON, e.g. '{{\"regularization\": {{\"l2\": 1e-3}}}}': {exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"--config: {exc}", file=sys.stderr)
        return 2
    if args.intervals == 1 or args.intervals < 0:
        print(f"--intervals must be 0 (off) or at least 2 refits, found {args.intervals}", file=sys.stderr)
        return 2
    if not args.data.is_file():
        print(f"data file {args.data} not found; pass --data PATH to mmm_data.csv", file=sys.stderr)
        return 2
    df, media, controls = load_grid(args.data)
    cutoff = N_WEEKS - HOLDOUT
    rows, model = fit_and_score(df, media, controls, cutoff, HOLDOUT, args.random_state, over)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows["deepcausalmmm"]["peak_mb"] = peak_mb
    print_table(rows, f"holdout weeks {cutoff}..{N_WEEKS - 1} (train 0..{cutoff - 1}), "
                      f"peak memory {peak_mb:.0f} MB, epochs {model.history_.epochs_run}"
                      f"+{model.history_.refit_epochs}")
    ours = rows["deepcausalmmm"]
    print(f"\n{INTERVAL_LEVEL:.0%} forecast intervals (predict_interval): holdout cells inside "
          f"{ours['interval_coverage_pct']:.1f}%, summed width {ours['interval_width_pct']:.1f}% of the KPI")
    summary = model.contribution_summary()
    print(f"\nmedia share of KPI: {summary.share_of_kpi.sum():.3f}; largest channel share of media: {summary.share_of_media.max():.3f}; min contribution: {summary.contribution.min():.1f}"
          )
    result: dict[str, object] = {"split": rows}
    if args.explain:
        result["explain"] = explain(df, media, controls, cutoff, model)
    if args.intervals:
        result["intervals"] = intervals(model.set_params(n_jobs=args.jobs), args.intervals)
    if args.backtest:
        t0 = time.perf_counter()
        bt = DeepCausalMMM(config=over, random_state=args.random_state, n_jobs=args.jobs).backtest(
            df[media], df["target_visits"].to_numpy(), regions=df["dmacode"].to_numpy(),
            dates=df["weekid"].to_numpy(), controls=df[controls], n_splits=args.backtest,
            horizon=HOLDOUT, sample_weight=np.where(df["observed"], 1.0, FILLED_WEIGHT))
        print(f"\nrolling-origin backtest (model.backtest, {args.backtest} cutoffs, observed cells, n_jobs "
              f"{args.jobs}, {time.perf_counter() - t0:.1f} s):")
        print(bt.round(4).to_string(index=False))
        result["backtest"] = bt.to_dict(orient="records")
    if args.sweep:
        cutoffs = [int(c) for c in args.sweep.split(",")]
        print(f"\ncutoff sweep ({len(cutoffs)} cutoffs, all cells, {HOLDOUT}-week horizon):")
        print(f"{'cutoff':>8s}{'WAPE':>10s}{'naive':>10s}{'nat.MAPE':>10s}{'naive':>10s}"
              f"{'R^2':>10s}{'naive':>10s}{'fit_s':>8s}{'media':>8s}{'max_ch':>8s}{'cover':>8s}")
        sweep = []
        for cut in cutoffs:
            r, m = fit_and_score(df, media, controls, cut, HOLDOUT, args.random_state, over)
            o, n = r["deepcausalmmm"], r["naive: last value"]
            s_ = m.contribution_summary()
            o["media_share_of_kpi"] = float(s_.share_of_kpi.sum())
            o["largest_channel_share_of_media"] = float(s_.share_of_media.max())
            sweep.append({"cutoff": cut, "ours": o, "naive_last_value": n})
            print(f"{cut:8d}{o['wape_pct']:10.2f}{n['wape_pct']:10.2f}{o['national_mape_pct']:10.2f}"
                  f"{n['national_mape_pct']:10.2f}{o['pooled_r2']:10.4f}{n['pooled_r2']:10.4f}"
                  f"{o['fit_s']:8.1f}{o['media_share_of_kpi']:8.3f}"
                  f"{o['largest_channel_share_of_media']:8.3f}{o['interval_coverage_pct']:8.1f}", flush=True)
        wins = sum(s["ours"]["wape_pct"] < s["naive_last_value"]["wape_pct"] for s in sweep)
        print(f"WAPE below the naive last value at {wins} of {len(sweep)} cutoffs; "
              f"{INTERVAL_LEVEL:.0%} intervals held "
              f"{np.mean([s['ours']['interval_coverage_pct'] for s in sweep]):.1f}% of the holdout cells "
              "on average ('cover')")
        result["sweep"] = sweep
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
