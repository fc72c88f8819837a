"""Command line: ``deepcausalmmm demo``, ``fit``, ``predict``, ``optimize``, ``plan-test``, ``change``, ``effects``,
``report``, ``config`` and ``backtest``.

Examples::

    deepcausalmmm demo --out outputs/demo
    deepcausalmmm fit data.csv --target kpi --date date --region region \\
        --channels tv,search --controls price --config config.yaml --out outputs/run \\
        --lift-tests experiments.csv --spend tv=tv_spend
    deepcausalmmm predict outputs/run/model.safetensors plan.csv --date date --region region \\
        --out outputs/run/predictions.csv
    deepcausalmmm optimize outputs/run/model.safetensors --bounds 0.5:1.5 \\
        --channel-bounds tv=1:1,search=0.8:2 --out outputs/run/plan.csv
    deepcausalmmm optimize outputs/run/model.safetensors --frontier 0.8,0.9,1.1,1.2 \\
        --out outputs/run/frontier.csv
    deepcausalmmm plan-test outputs/run/model.safetensors candidates.csv --target-precision 0.2 \\
        --out outputs/run/test_plan.csv
    deepcausalmmm change outputs/run/model.safetensors --base 2023-10-02 2023-12-25 \\
        --compare 2024-09-30 2024-12-23 --out outputs/run/kpi_change.csv
    deepcausalmmm effects outputs/run/model.safetensors --by Q --out outputs/run/effects_by_quarter.csv
    deepcausalmmm effects outputs/run/model.safetensors --group digital=search,social --out outputs/run/groups.csv
    deepcausalmmm report outputs/run/model.safetensors --out outputs/report
    deepcausalmmm backtest data.csv --target kpi --date date --region region \\
        --channels tv,search --controls price --n-splits 3 --horizon 13 --out outputs/backtest.csv
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import re
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .analysis.backtest import forecast_metrics, last_value_forecast
from .constants import PRIOR_SPREAD
from .exceptions import ConfigError, DataError, ModelFileError
from .files import check_target

if TYPE_CHECKING:
    from .estimator import DeepCausalMMM


def _model_class() -> type[DeepCausalMMM]:
    """The estimator, imported when a command needs it (torch and scikit-learn take seconds to
    import; ``--help``, ``config`` and argument errors do not wait for them)."""
    from .estimator import DeepCausalMMM

    return DeepCausalMMM

__all__ = ["main", "write_outputs", "read_lift_tests", "parse_graph"]


def write_outputs(model: DeepCausalMMM, out: Path, n_boot: int = 0, prior_spread: float = PRIOR_SPREAD,
                  findings: list[str] | None = None) -> list[Path]:
    """Write the HTML report, contributions, summary, figures, the model file, the
    identification table (:meth:`DeepCausalMMM.get_identification`), the effects under
    intervention (``effects.csv``, :meth:`DeepCausalMMM.get_channel_effects`), the learned graph's
    edges (``dag_edges.csv``), the response curves (``response_curves.csv``), the weeks the
    fit misses far more than usual (``unexplained_weeks.csv``), the fitted channel parameters
    (``channel_parameters.csv``, :meth:`DeepCausalMMM.get_channel_parameters`) and the
    configuration the fit applied (``config.json``, usable as ``--config``) into ``out``, what
    moved the KPI from a year earlier (or the quarter before) to the last fitted quarter
    (``kpi_change.csv``, :meth:`DeepCausalMMM.get_kpi_change`; not for fits shorter than two
    quarters), each channel's ROI and marginal ROI by quarter (``effects_over_time.csv``,
    :meth:`DeepCausalMMM.get_effects_over_time`; years past 12 quarters, months under 3), and
    ``lift_tests.csv`` / ``roi_priors.csv`` when the fit had lift tests / ROI priors.
    A ``findings`` list gets the report's key findings as text lines.

    With ``n_boot >= 2`` also ``effect_intervals.csv`` (:meth:`DeepCausalMMM.get_effect_intervals`)
    and ``budget_plan.csv`` (:meth:`DeepCausalMMM.optimize_budget` with its bootstrap
    robustness figures as extra columns), and ``kpi_change.csv``, ``effects_over_time.csv`` and
    ``response_curves.csv`` gain intervals: all five, and the report's intervals, from one set of
    ``n_boot`` refits
    (:meth:`DeepCausalMMM.shared_refits`), each refit with its own prior strengths drawn with
    ``prior_spread``.
    """
    from .reporting import write_report  # plotly: imported when outputs are written

    out.mkdir(parents=True, exist_ok=True)
    files = [out / "report.html", out / "contributions.csv", out / "summary.csv",
             out / "contributions.html", out / "dag.html", out / "model.safetensors",
             out / "identification.csv"]
    tables: dict[str, Any] = {}  # the report's tables, written below without computing them again
    # with n_boot the report's intervals come from one set of refits (shared_refits), which the
    # tables written below hold
    write_report(model, files[0], findings, tables, n_boot=n_boot, prior_spread=prior_spread)
    model.get_channel_contributions().to_csv(files[1])
    model.contribution_summary().to_csv(files[2])
    model.plot_contributions().write_html(files[3], include_plotlyjs=True)
    model.plot_dag().write_html(files[4], include_plotlyjs=True)
    model.save(files[5])
    model.get_identification().to_csv(files[6])
    files += [out / "effects.csv", out / "dag_edges.csv", out / "response_curves.csv",
              out / "unexplained_weeks.csv", out / "channel_parameters.csv", out / "config.json"]
    tables["effects"].to_csv(files[7])
    model.get_dag_edges().to_csv(files[8], index=False)
    tables["response_curves"].to_csv(files[9], index=False)
    model.get_unexplained_weeks().to_csv(files[10])
    model.get_channel_parameters().to_csv(files[11])
    files[12].write_text(json.dumps(model.config_.to_dict(), indent=2) + "\n", encoding="utf-8")
    for name in ("kpi_change", "effects_over_time"):  # None for a fit shorter than two quarters / without spend
        if tables[name] is not None:
            files.append(out / f"{name}.csv")
            tables[name].to_csv(files[-1])
    if getattr(model, "lift_tests_", None) is not None:
        files.append(out / "lift_tests.csv")
        model.lift_test_report().to_csv(files[-1], index=False)
    if model.config_.calibration.roi_priors:
        files.append(out / "roi_priors.csv")
        model.roi_prior_report().to_csv(files[-1])
    if n_boot:
        files.append(out / "effect_intervals.csv")
        tables["effect_intervals"].to_csv(files[-1])
        plan = tables["budget_plan"]
        if plan is not None:
            plan = plan.copy()
            for key in ("kpi_gain", "kpi_gain_fraction", "gain_lo", "gain_hi", "gain_share_positive", "n_boot",
                        "prior_spread"):
                plan[key] = plan.attrs[key]
            files.append(out / "budget_plan.csv")
            plan.to_csv(files[-1])
    return files


def _sized(table: pd.DataFrame) -> dict[str, Any]:
    """Printing formats for ``table``'s number columns: KPI- and spend-sized ones (100 and more)
    without decimals, the rest with 4 significant digits."""
    return {c: "{:,.0f}".format if table[c].abs().max() >= 100 else "{:,.4g}".format
            for c in table.select_dtypes("number").columns}


def _check_n_boot_option(n_boot: int) -> None:
    """``--n-boot`` checked before any work: 0 (no intervals) or at least 2."""
    if n_boot == 1 or n_boot < 0:
        raise DataError(f"--n-boot must be 0 (no intervals) or at least 2, found {n_boot}")


def _prior_spread(value: float) -> float:
    """``--prior-spread`` checked before any fit, by the estimator's own rule, in the flag's words."""
    from .estimator import _check_prior_spread

    with _in_terms({"`prior_spread`": "--prior-spread", "prior_spread=": "--prior-spread "}):
        return _check_prior_spread(value)


def _read_csv(path: str, what: str) -> pd.DataFrame:
    """A CSV file as a DataFrame, or a ``DataError`` saying what is wrong with the path or file.

    The separator is read off the header line: a comma where it has one, otherwise a
    semicolon or a tab where it has one of those (spreadsheets saved in locales whose
    decimal mark is a comma write semicolons). In a semicolon-separated file, text
    columns whose every cell is a number written with a decimal comma (``1234,5``) are
    read as numbers.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{what} file '{path}' {'is not a file' if p.exists() else 'does not exist'}; "
                        "pass the path of a CSV file")
    for encoding in ("utf-8-sig", "cp1252"):  # UTF-8 (with or without a byte-order mark), else Windows' Western
        try:
            with p.open(encoding=encoding) as fh:
                header = fh.readline()
            sep = "," if "," in header else next((s for s in (";", "\t") if s in header), ",")
            df = pd.read_csv(p, sep=sep, encoding=encoding)
            break
        except UnicodeDecodeError:
            continue
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise DataError(f"{what} file '{path}' could not be read as CSV ({exc}); "
                            "pass a comma-, semicolon- or tab-separated file with a header row") from None
    else:
        raise DataError(f"{what} file '{path}' is neither UTF-8 nor Windows-1252 text; save it as UTF-8 CSV")
    if sep == ";":  # decimal commas: text columns whose every cell is a number such as 1234,5
        for col in df.columns:
            if pd.api.types.is_numeric_dtype(df[col]) or pd.api.types.is_datetime64_any_dtype(df[col]):
                continue
            text = df[col].dropna().astype(str).str.strip()
            if len(text) and text.str.contains(",").any() and text.str.fullmatch(r"[-+]?\d*(,\d+)?").all():
                df[col] = pd.to_numeric(df[col].astype(str).str.strip().str.replace(",", ".", regex=False),
                                        errors="coerce")
    return df


def read_lift_tests(path: str, df: pd.DataFrame, region: str | None) -> pd.DataFrame:
    """Lift tests from a CSV: ``channel,start,end,lift,lift_se[,regions]``.

    ``regions`` lists region labels separated by ``;`` (empty: all regions);
    labels are matched to the data's region column as text.
    """
    return _read_tests(path, [] if region is None else list(pd.unique(df[region])), "lift-test")


def _read_tests(path: str, region_labels: Sequence[object], what: str) -> pd.DataFrame:
    """A CSV of (candidate) lift tests, its ``regions`` cells (``a;b;c``) read as lists of labels."""
    tests = _read_csv(path, what)
    if "regions" in tests.columns:
        labels = {str(v): v for v in region_labels}

        def parse(cell: object) -> list[object] | None:
            if pd.isna(cell) or not str(cell).strip():
                return None
            return [labels.get(x.strip(), x.strip()) for x in str(cell).split(";") if x.strip()]

        tests["regions"] = tests["regions"].map(parse).astype(object)
    return tests


DEMO_GRAPH = "channel_1>channel_2:0.5,channel_1>channel_3:0.4"


def parse_graph(spec: str, channels: Sequence[str]) -> list[tuple[str, str, float, int]]:
    """Edges ``parent>child:weight[:lag]`` (comma-separated; ``none`` for no edges) for the simulator.

    Raises
    ------
    DataError
        For a malformed edge, an unknown channel, a self-loop, a negative lag
        or a weight that is not a positive number.
    """
    if spec.strip().lower() in ("", "none"):
        return []
    edges = []
    for item in spec.split(","):
        fix = ('write edges as parent>child:weight[:lag], e.g. "channel_1>channel_2:0.5", '
               'or --graph none')
        try:
            pair, *rest = item.strip().split(":")
            parent, child = (x.strip() for x in pair.split(">"))
            weight, lag = float(rest[0]), int(rest[1]) if len(rest) > 1 else 0
            if len(rest) > 2:
                raise ValueError
        except (ValueError, IndexError):
            raise DataError(f"--graph edge {item.strip()!r} is malformed; {fix}") from None
        unknown = [c for c in (parent, child) if c not in channels]
        if unknown:
            raise DataError(
                f"--graph edge {item.strip()!r} names {unknown}, but the simulated channels are "
                f"{list(channels)}; raise --channels or name existing channels"
            )
        if parent == child or lag < 0 or not weight > 0:
            raise DataError(
                f"--graph edge {item.strip()!r} needs two different channels, a positive weight "
                f"and a lag >= 0; {fix}"
            )
        edges.append((parent, child, weight, lag))
    return edges


def _demo(args: argparse.Namespace) -> int:
    from .datasets import simulate_panel

    channels = [f"channel_{c + 1}" for c in range(args.channels)]
    graph = parse_graph(args.graph, channels)
    sim = simulate_panel(args.regions, args.weeks, args.channels, seed=args.seed, graph=graph or None)
    print(f"simulated panel: {args.regions} regions x {args.weeks} weeks x {args.channels} channels")
    print("true channel graph: " + (", ".join(f"{p} -> {c} (weight {w:g}, lag {lag})"
                                             for p, c, w, lag in graph) or "no edges"))
    model = _model_class()(config=args.config, random_state=args.seed, verbose=args.verbose)
    model.fit(sim.X, sim.y, regions=sim.regions, dates=sim.dates, controls=sim.control_frame)
    h = model.history_
    print(f"fitted in {h.seconds:.1f} s ({h.epochs_run} + {h.refit_epochs} epochs)")
    edges = model.get_dag_edges()
    print("learned channel graph: " + (", ".join(
        f"{p} -> {c} (lag {lag}" + ("" if pd.isna(s) else f", direction support {s:.2f}")
        + (f", direction by {b}" if b in ("equal-cv", "dark weeks", "lagged edges") else "") + ")"
        for p, c, lag, s, b in edges[["parent", "child", "lag", "direction_support", "direction_basis"]]
        .itertuples(index=False)
    ) or "no edges"))
    effects, truth = model.get_channel_effects(), sim.truth_effects
    assert truth is not None  # simulate_panel always computes the true effects
    table = pd.DataFrame({
        "estimated_share": effects["total_share"],
        "true_share": truth["total_share"],
        "estimated_mediated": effects["mediated"] / effects["total"].sum(),
        "true_mediated": truth["mediated"] / truth["total"].sum(),
    })
    table["error_pp"] = (table.estimated_share - table.true_share) * 100
    print("\nchannel shares of the total media effect, estimated vs simulator truth (total = direct +"
          " mediated through the graph; mediated also as a share of the total):")
    shown = table.round(3) + 0.0  # + 0.0: no "-0.000" for rounding noise
    shown["level"] = model.get_identification()["level"]
    print(shown.to_string())
    print(f"mean absolute error: {table.error_pp.abs().mean():.2f} percentage points")
    media = model.get_group_effects({"media": channels}).iloc[0]
    true_media = float(sim.truth[channels].to_numpy().sum())  # every channel off: all their contributions
    print(f"all channels switched off together (get_group_effects): {media['total']:,.0f} of the KPI (truth "
          f"{true_media:,.0f}); the channels' totals add up to {media['sum_of_totals']:,.0f} (truth "
          f"{truth['total'].sum():,.0f}), counting {media['overlap']:,.0f} twice (truth "
          f"{truth['total'].sum() - true_media:,.0f}): what one channel drives in another is in both totals")
    print("level 'extrapolated': the channel is always on, so the data never show its response from "
          "zero; its share rests on the curve's assumed shape (get_identification). A lift test "
          "(fit --lift-tests) or an ROI prior (fit --roi-priors) settles it")
    fitted = model.get_channel_parameters()
    gates = sim.params["gates"]  # [C,2] the simulator's two carryover stages
    curves = pd.DataFrame({
        "mean_lag": fitted["mean_lag"], "true_mean_lag": (gates / (1 - gates)).sum(axis=1),
        "half_saturation": fitted["half_saturation"], "true_half_saturation": sim.params["half_sat"],
        "slope": fitted["slope"], "true_slope": sim.params["slope"],
        "elasticity": fitted["elasticity_at_typical"],
        # the simulator's carried activity is 1 at steady typical activity: Hill there is 1 / (1 + k^s)
        "true_elasticity": sim.params["slope"] * (1 - 1 / (1 + sim.params["half_sat"] ** sim.params["slope"])),
    })
    print("\ncarryover and response curves, fitted vs simulator truth (get_channel_parameters; "
          "half-saturation in multiples of typical activity; elasticity: per cent change of the "
          "contribution per per cent of activity at its typical level, which turns an always-on "
          "channel's marginal effect into its level):")
    print(curves.round(2).to_string())
    _demo_change(model, sim)
    _demo_over_time(model, sim)
    findings: list[str] = []
    files = write_outputs(model, Path(args.out), findings=findings)
    print()
    _print_findings(findings)
    print(f"\nwrote {len(files)} files to {Path(args.out).resolve()}:")
    for f in files:
        print(f"  {f.name}")
    return 0


def _demo_over_time(model: DeepCausalMMM, sim: Any) -> None:
    """Each channel's direct return year by year (get_effects_over_time) beside the simulator's:
    the truth's contributions per unit of spend (the truth holds each channel's own contribution
    per cell, so the direct effects)."""
    over = model.get_effects_over_time("Y", marginal=False)
    when = pd.DatetimeIndex(sim.truth.index.get_level_values("date")).to_period("Y").astype(str)
    true = sim.truth[model.channels_].groupby(when).sum()  # [year, channel]
    columns: dict[str, pd.Series] = {}
    for period, rows in over.groupby(level="period", sort=False):
        rows = rows.droplevel("period")
        paid = rows["spend"].where(rows["spend"] > 0)
        label = f"{period}{'' if rows['complete'].all() else '*'}"
        columns[f"estimated_{label}"] = rows["direct"] / paid
        columns[f"true_{label}"] = true.loc[period, rows.index] / paid
    print("\ndirect return by year, estimated vs simulator truth (get_effects_over_time: direct effect per unit of "
          "spend; * the fit covers the year in part):")
    print(pd.DataFrame(columns).round(3).to_string())


def _demo_change(model: DeepCausalMMM, sim: Any) -> None:
    """The report's "What moved the KPI" comparison beside the simulator's true parts."""
    from .reporting import kpi_change_periods

    periods = kpi_change_periods(model)
    if periods is None:
        return
    base, compare, how = periods
    change = model.get_kpi_change(base, compare)
    when = sim.truth.index.get_level_values("date")
    true = (sim.truth[(when >= compare[0]) & (when <= compare[1])].sum()
            - sim.truth[(when >= base[0]) & (when <= base[1])].sum())
    kinds = change["kind"]
    estimated = pd.Series({"baseline": change.loc[kinds == "baseline", "change"].sum(),
                           **change.loc[kinds == "channel", "change"],
                           "controls": change.loc[kinds == "control", "change"].sum(),
                           "unexplained": change.loc[kinds == "residual", "change"].sum()})
    true["unexplained"] = change.attrs["change"] - true["prediction"]  # the simulated noise's change
    table = pd.DataFrame({"estimated_pct": estimated, "true_pct": true.reindex(estimated.index)})
    table = table / change.attrs["base_kpi"] * 100
    a = change.attrs
    print(f"\nwhat moved the KPI from {a['base_dates']} ({how}) to {a['compare_dates']}: {a['change_pct']:+.2f}%, "
          "part by part in per cent of the earlier KPI, estimated vs simulator truth (get_kpi_change; "
          "channels: direct contributions):")
    print((table.round(2) + 0.0).to_string())


def _fit(args: argparse.Namespace) -> int:
    _check_n_boot_option(args.n_boot)
    if args.calibrate_intervals < 0:
        raise DataError(f"--calibrate-intervals must be 0 (off) or a number of rolling cutoffs such as 3, found "
                        f"{args.calibrate_intervals}")
    _prior_spread(args.prior_spread)
    df = _read_csv(args.data, "data")
    _label_columns(args, df, args.data)
    spend = _pairs(args.spend, "--spend", "channel=column", "tv=tv_spend")
    taken = [args.target, *spend.values(), *(c for c in (args.date, args.region, args.weight) if c)]
    channels = _matching(args.channels, df.columns, "--channels", f"the columns of {args.data}", taken)
    controls = _matching(args.controls, df.columns, "--controls", f"the columns of {args.data}",
                         [*taken, *channels])
    named = [args.target, *channels, *controls, *spend.values(),
             *(c for c in (args.date, args.region, args.weight) if c)]
    _columns(df, named, "named", args.data)
    if args.n_boot and args.prior_spread == 0 and (args.region is None or df[args.region].nunique() < 2):
        raise DataError(
            f"--n-boot {args.n_boot} with --prior-spread 0 needs regional data: region-bootstrap intervals "
            f"redraw regions, and {args.data} has one series. Pass --region COLUMN, a --prior-spread "
            "above 0 (each refit with its own prior strengths), or leave out --n-boot"
        )
    lift_tests = read_lift_tests(args.lift_tests, df, args.region) if args.lift_tests else None
    priors = {channel: list(_range(text, f"--roi-priors {channel}",
                                   "MEAN:SD, an ROI and its standard deviation, e.g. 2.0:0.5"))
              for channel, text in _pairs(args.roi_priors, "--roi-priors", "channel=MEAN:SD", "tv=2.0:0.5").items()}
    model = _model_class()(config=args.config, random_state=args.seed, verbose=args.verbose, n_jobs=args.jobs)
    with _in_terms(_file_terms(args)):
        model.fit_frame(df, target=args.target, channels=channels, date=args.date, region=args.region,
                        controls=controls or None, weight=args.weight, lift_tests=lift_tests, spend=spend,
                        config_overrides={"calibration": {"roi_priors": priors}} if priors else None)
    h = model.history_
    regions, periods, n_channels = model.panel_.shape
    print(f"fitted {regions} region(s) x {periods} periods x {n_channels} channels in {h.seconds:.1f} s "
          f"({h.epochs_run} + {h.refit_epochs} epochs)", flush=True)
    if args.calibrate_intervals:  # before the model file is written, which keeps the calibration
        with _in_terms({"`n_splits`": "--calibrate-intervals", "`horizon`": "13"}):
            cal = model.calibrate_intervals(n_splits=args.calibrate_intervals).attrs
        print(f"forecast intervals calibrated on {cal['n_splits']} rolling cutoffs ({cal['n_cells']} holdout cells, "
              f"{cal['horizon']} weeks ahead): {cal['level']:.0%} intervals held {cal['coverage_pct']:.1f}% there, "
              f"so predict scales them by {cal['scale']:.3g} (needed {cal['scale_needed']:.3g})", flush=True)
    started = time.perf_counter()
    findings: list[str] = []
    files = write_outputs(model, Path(args.out), n_boot=args.n_boot, prior_spread=args.prior_spread,
                          findings=findings)
    print(model.contribution_summary().round(4).to_string())
    _print_findings(findings)
    print(f"wrote {len(files)} files to {Path(args.out).resolve()} in {time.perf_counter() - started:.1f} s")
    return 0


def _print_findings(findings: list[str]) -> None:
    """The report's key findings, a line each."""
    print("key findings (the report's first section; the model's estimates, not measurements):")
    for line in findings:
        print(f"- {line}")


def _pairs(arg: str | None, option: str, form: str, example: str) -> dict[str, str]:
    """``key=value,key=value`` (``--spend``, ``--channel-bounds``, ``--plan``) as {key: value text}."""
    out: dict[str, str] = {}
    for item in _names(arg):
        key, sep, value = item.partition("=")
        if not (sep and key and value):
            raise DataError(f"{option} takes {form} pairs separated by commas, e.g. {example}, found {item!r}")
        out[key] = value
    return out


def _label_columns(args: argparse.Namespace, df: pd.DataFrame, path: str) -> None:
    """Fill an omitted ``--date`` / ``--region`` with the file's column named ``date`` (else
    ``week``) / ``region`` (else ``geo``), in any case.

    Without them every row would be one national series in file order, which for a
    regional file silently strings the regions' weeks together. Says on stderr what it chose.
    """
    for option, meaning, names in (("date", "each row's week", ("date", "week")),
                                   ("region", "each row's region", ("region", "geo"))):
        if getattr(args, option) is not None:
            continue
        lowered = {str(c).strip().lower(): c for c in df.columns}
        found = [lowered[n] for n in names if n in lowered][:1]  # "date" before "week"
        if len(found) == 1:
            setattr(args, option, found[0])
            print(f"--{option} not given: using {path}'s column '{found[0]}' as {meaning} "
                  f"(pass --{option} COLUMN to choose another)", file=sys.stderr)
        elif option == "date":
            print(f"--date not given and {path} has no 'date' or 'week' column: rows are read as "
                  "consecutive weeks in file order (pass --date COLUMN if the file has dates)",
                  file=sys.stderr)
        else:
            print(f"--region not given and {path} has no 'region' or 'geo' column: all rows are one "
                  "national series (pass --region COLUMN for regional data)", file=sys.stderr)


def _names(arg: str | None) -> list[str]:
    """Column names from a comma-separated option (none for an absent one)."""
    return [c for c in (arg or "").split(",") if c]


def _matching(arg: str | None, columns: Sequence[Any], option: str, where: str,
              taken: Sequence[Any] = ()) -> list[Any]:
    """Names from a comma-separated option in which an item may be a shell-style pattern
    (``impressions_*``, ``control_0?``, ``[ab]_spend``): each pattern stands for the
    ``columns`` it matches (case-sensitive, in their order), except those in ``taken`` (the
    target, date, region, weight and spend columns other options name). Plain names pass
    through unchanged, to be checked against the file with the other options. A pattern that
    matches nothing raises a ``DataError`` naming ``option``; a column matched twice is kept once.
    """
    out: list[Any] = []
    for item in _names(arg):
        if not any(ch in item for ch in "*?["):
            found = [item]
        else:
            found = [c for c in columns if fnmatch.fnmatchcase(str(c), item) and c not in taken]
            if not found:
                raise DataError(
                    f"{option} pattern {item!r} matches none of {where}: {list(columns)}"
                    f"{' (not counting ' + str(list(taken)) + ', named by other options)' if taken else ''}. "
                    "Patterns are shell-style and case-sensitive: * any text, ? one character, "
                    "[ab] one of a or b; e.g. --channels 'impressions_*'"
                )
        out.extend(c for c in found if c not in out)
    return out


def _columns(df: pd.DataFrame, names: Sequence[str], what: str, path: str) -> None:
    missing = [c for c in names if c not in df.columns]
    if missing:
        raise DataError(
            f"{path} lacks the {what} column(s) {missing}; its columns are {list(df.columns)}. "
            + ("Check the column options (--target, --channels, --controls, --date, --region, "
               "--weight, --spend) against the file's header" if what == "named" else
               "Name them as in the data the model was fitted on")
        )


def _predict(args: argparse.Namespace) -> int:
    df = _read_csv(args.data, "data")
    _label_columns(args, df, args.data)
    if args.date is None:
        raise DataError(
            f"predict needs --date, the column of each row's week, and none was given ({args.data} "
            "has no 'date' or 'week' column either): rows are placed on the fitted timelines by their dates, "
            "and dates after the fit are forecasts. Add --date COLUMN"
        )
    model = _model_class().load(args.model)
    _columns(df, model.channels_, "channel", args.data)
    _columns(df, model.controls_, "control", args.data)
    _columns(df, [c for c in (args.date, args.region) if c], "date/region", args.data)
    inputs = {
        "regions": df[args.region].to_numpy() if args.region else None,
        "dates": df[args.date].to_numpy(),
        "controls": df[model.controls_] if model.controls_ else None,
    }
    actual = None
    if args.target:
        _columns(df, [args.target], "--target", args.data)
        actual = pd.to_numeric(df[args.target], errors="coerce").to_numpy(dtype=float)
        if np.isfinite(actual).sum() == 0:
            raise DataError(f"--target column '{args.target}' of {args.data} holds no numbers; give the column of "
                            "the KPI measured in those rows, or leave --target out")
    with _in_terms(_file_terms(args)):
        table, band = model._decompose_with_intervals(df[model.channels_], **inputs, level=args.level)
    for col in ("lower", "upper", "horizon"):
        table[col] = band[col].to_numpy()  # both frames are in input row order
    if actual is not None:
        table["actual"] = actual
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out)
    end = pd.Index(model.panel_.dates)[-1]
    end = end.date() if isinstance(end, pd.Timestamp) else end
    cal = model.interval_calibration_
    how = (f", calibrated out of sample (x{cal['scale']:.3g}, fit --calibrate-intervals)"
           if band.attrs.get("calibrated") and cal is not None else "")
    print(f"predicted {len(table)} rows ({table['prediction'].sum():,.1f} KPI in all; the fit ends "
          f"{end}, later rows are forecasts, with {args.level:.0%} intervals in lower/upper{how}); "
          f"wrote {out.resolve()}")
    if actual is not None:
        print(_accuracy(model, table, args.target))
    return 0


def _accuracy(model: DeepCausalMMM, table: pd.DataFrame, target: str) -> str:
    """``predict --target``: how the predictions of the rows with a KPI compare with it: WAPE and
    R^2 over them all, and over the forecast rows (after the fit) WAPE and national MAPE beside
    the naive forecast that holds each region's last fitted KPI, scored as ``backtest`` scores
    a cutoff (:func:`forecast_metrics` on a region x date grid of the rows)."""
    r, regions = pd.factorize(table.index.get_level_values(0))
    d, _ = pd.factorize(table.index.get_level_values(1))

    def grid(values: np.ndarray) -> np.ndarray:  # rows -> [regions, dates]; cells without a row NaN
        out = np.full((r.max() + 1, d.max() + 1), np.nan)
        out[r, d] = values
        return out

    p = model.panel_
    assert p.y is not None
    last = last_value_forecast(p.y, p.observed & (p.weight > 0), 1)[:, 0]  # [R] each region's last fitted KPI
    naive = grid(last[pd.Index(model.regions_).get_indexer(regions)][r])
    y, pred = grid(table["actual"].to_numpy()), grid(table["prediction"].to_numpy())
    known = np.isfinite(y)
    every = forecast_metrics(y, pred, known)
    line = (f"against --target '{target}' in {int(known.sum())} row(s): WAPE {every['wape_pct']:.2f}%, "
            f"R^2 {every['r2']:.4f}")
    ahead = known & (grid(table["horizon"].to_numpy()) > 0) & np.isfinite(naive)
    if ahead.any():
        ours, floor = forecast_metrics(y, pred, ahead), forecast_metrics(y, naive, ahead)
        line += (f"; the {int(ahead.sum())} forecast row(s) after the fit: WAPE {ours['wape_pct']:.2f}% (naive last "
                 f"value {floor['wape_pct']:.2f}%), national MAPE {ours['national_mape_pct']:.2f}% "
                 f"({floor['national_mape_pct']:.2f}%)")
    return line


def _range(text: str, option: str,
           form: str = "LOW:HIGH multipliers, e.g. 0.5:1.5") -> tuple[float, float]:
    """``A:B`` as two floats (``--bounds`` LOW:HIGH, ``--roi-priors`` MEAN:SD), or a ``DataError``
    naming ``option`` and the expected ``form``."""
    first, sep, second = text.partition(":")
    try:
        if not sep:
            raise ValueError
        return float(first), float(second)
    except ValueError:
        raise DataError(f"{option} takes {form}, found {text!r}") from None


def _number(value: object, option: str, kind: type = float, what: str = "a number") -> Any:
    """``value`` as ``kind`` (float or int), or a ``DataError`` naming ``option``."""
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise DataError(f"{option} must be {what}, found {value!r}") from None


DEFAULT_BOUNDS = "0.5:1.5"  # optimize_budget's default multiplier range, as --bounds


def _optimize(args: argparse.Namespace) -> int:
    alone = [name for name, value in (("--date", args.date), ("--region", args.region), ("--spend", args.spend))
             if value and not args.rows]
    if alone:
        raise DataError(f"{alone} describe the columns of --rows, which was not given; add --rows CSV (the plan's "
                        "rows), or drop them to plan over the fitted weeks")
    model = _model_class().load(args.model).set_params(verbose=args.verbose, n_jobs=args.jobs)
    common = _range(args.bounds or DEFAULT_BOUNDS, "--bounds")
    per = {channel: _range(text, f"--channel-bounds {channel}") for channel, text in
           _pairs(args.channel_bounds, "--channel-bounds", "channel=LOW:HIGH", "tv=1:1,search=0.8:2").items()}
    dates = pd.Index(model.panel_.dates)
    labels = {str(r): r for r in model.regions_}
    regions = [labels.get(r.strip(), r.strip()) for r in args.regions.split(";") if r.strip()] if args.regions else None
    period = None
    rows = _plan_rows(args, model) if args.rows else {}
    if rows:
        regions = rows.pop("regions")
    if args.start or args.end:
        start, end = args.start or dates[0], args.end or dates[-1]
        if not isinstance(dates, pd.DatetimeIndex):  # integer periods
            what = "a period number like the fit's dates"
            start, end = _number(start, "--start", int, what), _number(end, "--end", int, what)
        period = (start, end)
    if args.region_bounds and not args.by_region:
        raise DataError("--region-bounds sets ranges per (region, channel), which only --by-region optimises; "
                        "add --by-region, or give ranges per channel with --channel-bounds")
    if args.plan and args.plan_file:
        raise DataError("--plan and --plan-file both give a plan to score; give one of them")
    if args.plan or args.plan_file:
        option = "--plan" if args.plan else "--plan-file"
        unused = [name for name, value in (("--budget", args.budget), ("--channels", args.channels),
                                           ("--bounds", args.bounds), ("--channel-bounds", args.channel_bounds),
                                           ("--region-bounds", args.region_bounds), ("--kpi-value", args.kpi_value),
                                           ("--by-region", args.by_region), ("--frontier", args.frontier is not None))
                  if value]
        if unused:
            raise DataError(f"{option} scores the given multipliers as they are, so {unused} do not apply; "
                            f"drop them, or drop {option} to optimise")
        if args.plan:
            own: dict[Any, Any] = {channel: _number(text, f"--plan {channel}") for channel, text in
                                   _pairs(args.plan, "--plan", "channel=MULTIPLIER", "tv=0.8,search=1.3").items()}
        else:
            own = _keyed_table(args.plan_file, "--plan-file", ["multiplier"], labels, regional=False)
        with _in_terms({**_OPTIONS, "`multipliers`": option, "`channels`": option,
                        "{'tv': 0.8}": "tv=0.8" if args.plan else "0.8"}):
            plan = model.evaluate_plan(own, regions=regions, period=period, n_boot=args.n_boot, level=args.level,
                                       prior_spread=_prior_spread(args.prior_spread), **rows)
        keys: tuple[str, ...] = ("kpi_change", "kpi_change_fraction", "spend_change")
        if args.n_boot:
            keys += ("kpi_change_fraction_lo", "kpi_change_fraction_hi", "share_positive", "n_boot", "prior_spread")
        gain = plan.attrs["kpi_change"]
    else:
        names = _matching(args.channels, model.channels_, "--channels", "the model's channels") or None
        bounds: tuple[float, float] | dict[Any, tuple[float, float]]
        if per or args.region_bounds:  # the channels without a range of their own get --bounds, not the API's default
            if names is None:
                cells = model._plan_cells(regions, period, **rows) if rows else None
                names = model._budget_channels(None, regions, period, cells=cells)
            bounds = {**{c: common for c in names}, **per}
            if args.region_bounds:
                bounds.update(_keyed_table(args.region_bounds, "--region-bounds", ["low", "high"], labels,
                                           regional=True))
        else:
            bounds = common
        if args.frontier is not None:
            return _frontier(args, model, names, bounds, regions, period, rows)
        spread = _prior_spread(args.prior_spread)
        with _in_terms(_OPTIONS):
            plan = model.optimize_budget(budget=args.budget, channels=names, bounds=bounds, regions=regions,
                                         period=period, n_boot=args.n_boot, level=args.level,
                                         prior_spread=spread, kpi_value=args.kpi_value,
                                         by_region=args.by_region, **rows)
        keys = ("kpi_gain", "kpi_gain_fraction", "gain_lo", "gain_hi", "gain_share_positive", "n_boot",
                "prior_spread", "kpi_value", "spend_change", "profit_gain", "profit_gain_fraction")
        gain = plan.attrs["kpi_gain"]
    for key in keys:
        if key in plan.attrs:
            plan[key] = plan.attrs[key]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    plan.to_csv(out)
    print(plan.round(4).to_string())
    profit = (f", spend {plan.attrs['spend_change']:+,.1f}, profit {plan.attrs['profit_gain']:+,.1f} at "
              f"{plan.attrs['kpi_value']:g} per unit of KPI" if "profit_gain" in plan.attrs else "")
    a = plan.attrs
    if (args.plan or args.plan_file) and args.n_boot:
        profit += (f"; {a['kpi_change_fraction'] * 100:+.2f}% of the modelled KPI, {a['level']:.0%} interval "
                   f"{a['kpi_change_fraction_lo'] * 100:+.2f}% to {a['kpi_change_fraction_hi'] * 100:+.2f}% over "
                   f"{a['n_boot']} bootstrap refits, up in {a['share_positive']:.0%} of them")
    print(f"modelled KPI {'change' if args.plan or args.plan_file else 'gain'} {gain:,.1f}{profit} (the model's "
          f"forecast, not a measurement); wrote {out.resolve()}")
    return 0


def _frontier(args: argparse.Namespace, model: DeepCausalMMM, names: list[str] | None, bounds: Any,
              regions: list[Any] | None, period: tuple[Any, Any] | None, rows: dict[str, Any]) -> int:
    """``optimize --frontier``: :meth:`DeepCausalMMM.get_budget_frontier` written and printed."""
    from .estimator import FRONTIER_LEVELS

    unused = [name for name, value in (("--budget", args.budget), ("--kpi-value", args.kpi_value),
                                       ("--n-boot", args.n_boot)) if value]
    if unused:
        raise DataError(f"--frontier plans every budget of its levels, so {unused} do not apply; drop them, "
                        "or drop --frontier for one plan")
    text = args.frontier or ",".join(f"{v:g}" for v in FRONTIER_LEVELS)
    levels = [_number(item, "--frontier", float, "comma-separated budget levels such as 0.8,0.9,1.1,1.2")
              for item in text.split(",") if item.strip()]
    example = f"levels={list(FRONTIER_LEVELS)}"
    with _in_terms({**_OPTIONS, "`budget`": "the budget", "`levels`": "--frontier",
                    example: "--frontier " + ",".join(f"{v:g}" for v in FRONTIER_LEVELS)}):
        frontier = model.get_budget_frontier(levels, channels=names, bounds=bounds, regions=regions, period=period,
                                             by_region=args.by_region, **rows)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    frontier.to_csv(out)
    money = {c: "{:,.0f}".format for c in frontier.columns if c in ("budget", "spend_change") or c.endswith(" spend")}
    kpi = _sized(frontier[["kpi_change", "mix_kpi_change"]])
    print(frontier.to_string(formatters={**money, **kpi, "incremental_roi": "{:.4g}".format,
                                         "marginal_roi": "{:.4g}".format}, na_rep=""))
    print(f"at today's budget the last unit of spend, best allocated, returns {frontier.loc[1.0, 'marginal_roi']:.4g} "
          f"of KPI (the model's forecast, not a measurement)\nwrote {out.resolve()}")
    return 0


_OPTIONS = {  # optimize: the API's argument names and examples as the command's options
            "bounds=(0.5, 1.5)": "--bounds 0.5:1.5",
            "bounds={'tv': (1, 1), 'search': (0.8, 2)}": "--channel-bounds tv=1:1,search=0.8:2",
            "`budget`": "--budget", "budget=None": "no --budget", "budget=": "--budget ", "`bounds`": "--bounds / --channel-bounds",
            "`kpi_value`": "--kpi-value", "kpi_value=": "--kpi-value ", "`channels`": "--channels",
            "`n_boot`": "--n-boot", "n_boot=": "--n-boot ", "`regions`": "--regions", "`level`": "--level",
            "or None for all": "or no --regions for all", "`period`": "--start / --end"}


@contextmanager
def _in_terms(words: dict[str, str], period: str = "--start \\1 --end \\2") -> Iterator[None]:
    """A ``DataError`` raised in the block with the API's words in it (argument names such as
    ```budget```, examples such as ``budget=``, ``X``'s columns) replaced by the command's (``--budget``,
    the file's columns), so that the fix it gives can be typed as it reads; ``period``: what an
    example ``period=(start, end)`` becomes (``\\1``, ``\\2`` its dates)."""
    try:
        yield
    except DataError as exc:
        message = re.sub(r"period=\('([^']*)', '([^']*)'\)", period, str(exc))
        message = re.sub(r"\b(base|compare)=\('?([^',)]*)'?, '?([^',)]*)'?\)", r"--\1 \2 \3", message)
        for name, text in words.items():
            message = message.replace(name, text)
        raise DataError(message) from None


def _keyed_table(path: str, option: str, values: Sequence[str], labels: dict[str, Any],
                 regional: bool) -> dict[Any, Any]:
    """A CSV of ``[region,]channel,<values>`` rows (``--region-bounds``, ``--plan-file``) as a dict
    keyed by ``(region, channel)`` (by ``channel`` where the row has no region), each holding its
    ``values`` (one number, or a tuple). Region cells are matched to the model's labels as text."""
    table = _read_csv(path, option)
    need = (["region"] if regional else []) + ["channel", *values]
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise DataError(f"{option} file '{path}' lacks column(s) {missing}; it needs {need}"
                        + ("" if regional else " and may have a region column")
                        + f", one row per {'region and ' if regional else ''}channel; found {list(table.columns)}")
    if table.empty:
        raise DataError(f"{option} file '{path}' has no rows; give one per {'region and ' if regional else ''}channel")
    out: dict[Any, Any] = {}
    has_region = "region" in table.columns
    for i, row in enumerate(table.itertuples(index=False), start=2):  # line 1 is the header
        cells = row._asdict()
        numbers = tuple(_number(cells[v], f"{option} line {i} {v}") for v in values)
        region = cells["region"] if has_region else None
        key: Any = str(cells["channel"])
        if has_region and not (isinstance(region, float) and np.isnan(region)):
            # a region column with empty cells is read as floats: 501.0 is label 501
            text = str(int(region)) if isinstance(region, float) and region.is_integer() else str(region)
            key = (labels.get(text, region), key)
        elif regional:
            raise DataError(f"{option} line {i} has no region; give every row a region label")
        if key in out:
            raise DataError(f"{option} line {i} repeats {key!r}; give each key one row")
        out[key] = numbers if len(numbers) > 1 else numbers[0]
    return out


def _rows_frame(args: argparse.Namespace, what: str) -> pd.DataFrame:
    """The CSV of ``--rows`` with its date and region columns settled (``--date``/``--region``,
    else the file's 'date'/'week' and 'region'/'geo'); a date column is required."""
    df = _read_csv(args.rows, what)
    _label_columns(args, df, args.rows)
    if args.date is None:
        raise DataError(f"--rows needs --date, the column of each row's week, and none was given ({args.rows} "
                        "has no 'date' or 'week' column either): rows are placed on the fitted timelines by "
                        "their dates, after the fit to plan ahead. Add --date COLUMN")
    return df


def _plan_rows(args: argparse.Namespace, model: DeepCausalMMM) -> dict[str, Any]:
    """``optimize --rows``: the plan rows' channels, regions, dates, controls and spend as
    keyword arguments of ``optimize_budget`` / ``evaluate_plan``."""
    clash = [name for name, value in (("--regions", args.regions), ("--start", args.start), ("--end", args.end))
             if value]
    if clash:
        raise DataError(f"--rows plans over the rows of {args.rows}, so {clash} do not apply; drop them (put "
                        "only the regions and weeks to plan in the file), or drop --rows to plan over the "
                        "fitted weeks")
    df = _rows_frame(args, "plan rows")
    spend = _pairs(args.spend, "--spend", "channel=column", "tv=tv_spend")
    _columns(df, model.channels_, "channel", args.rows)
    held = not any(k in df.columns for k in model.controls_)  # none given: each region's last values
    if not held:
        _columns(df, model.controls_, "control", args.rows)
    _columns(df, [*spend.values(), *(c for c in (args.date, args.region) if c)], "named", args.rows)
    return {
        "X": df[model.channels_],
        "regions": df[args.region].to_numpy() if args.region else None,
        "dates": df[args.date].to_numpy(),
        "controls": df[model.controls_] if model.controls_ and not held else None,
        "spend": pd.DataFrame({c: df[col] for c, col in spend.items()}) if spend else None,
    }


def _change_rows(args: argparse.Namespace, model: DeepCausalMMM) -> dict[str, Any]:
    """``change --rows``: the planned rows' channels, regions, dates and controls as keyword
    arguments of ``get_kpi_change``."""
    clash = [name for name, value in (("--compare", args.compare), ("--regions", args.regions),
                                      ("--n-boot", args.n_boot)) if value]
    if clash:
        raise DataError(f"--rows is the later period, the rows of {args.rows}, so {clash} do not apply; drop them "
                        "(put only the regions and weeks to compare in the file), or drop --rows to compare "
                        "fitted periods")
    df = _rows_frame(args, "planned rows")
    _columns(df, [*model.channels_, *model.controls_], "channel or control", args.rows)
    return {
        "X": df[model.channels_],
        "regions": df[args.region].to_numpy() if args.region else None,
        "dates": df[args.date].to_numpy(),
        "controls": df[model.controls_] if model.controls_ else None,
    }


def _plan_test(args: argparse.Namespace) -> int:
    model = _model_class().load(args.model)
    tests = _read_tests(args.tests, model.regions_, "candidate-test")
    precision = _number(args.target_precision, "--target-precision", float, "a positive number such as 0.2")
    if not (np.isfinite(precision) and precision > 0):
        raise DataError(f"--target-precision must be a positive number such as 0.2 (the lift's standard "
                        f"error over the lift), found {args.target_precision!r}")
    plan = model.plan_lift_test(tests, target_precision=precision)
    plan["regions"] = plan["regions"].map(lambda r: "" if r is None else ";".join(str(x) for x in r))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    plan.to_csv(out, index=False)
    print(plan.round({c: 4 for c in plan.select_dtypes("number").columns}).to_string(index=False))
    print(f"noise_se is the KPI's own noise on each test (a floor: a control group adds its own); "
          f"model_lift is the model's expectation; wrote {out.resolve()}")
    return 0


def _period_values(given: Sequence[str], option: str, dates: pd.Index) -> Any:
    """A period option's values (one or two) as the API's ``period=`` takes them: one value as
    given (a calendar period such as 2023Q4, a block label such as 13..25, or one period
    number), two as a (first, last) pair, numbers where the fit's dates are period numbers."""
    if len(given) > 2:
        raise DataError(f"{option} takes a period's first and last dates (two values) or one calendar period "
                        f"such as 2023Q4, found {len(given)} values: {' '.join(given)}")
    if len(given) == 1:
        return given[0]
    if isinstance(dates, pd.DatetimeIndex):
        return tuple(given)
    return tuple(_number(text, option, int, "a period number like the fit's dates") for text in given)


def _change(args: argparse.Namespace) -> int:
    from .data.history import period_name
    from .reporting import kpi_change_periods

    spread = _prior_spread(args.prior_spread)
    model = _model_class().load(args.model).set_params(n_jobs=args.jobs)
    dates = pd.Index(model.panel_.dates)
    labels = {str(r): r for r in model.regions_}
    regions = [labels.get(r.strip(), r.strip()) for r in args.regions.split(";") if r.strip()] if args.regions else None
    default = kpi_change_periods(model)
    periods: list[Any] = []  # (start, end) pairs, or calendar periods such as 2023Q4
    rows = _change_rows(args, model) if args.rows else {}
    if not args.rows and (args.date or args.region):
        raise DataError("--date and --region describe the columns of --rows, which was not given; add --rows CSV, "
                        "or drop them to compare fitted periods")
    for option, given, fallback in (("--base", args.base, 0), ("--compare", args.compare, 1)):
        if option == "--compare" and rows:
            periods.append(None)
            continue
        if given is None:
            if default is None:
                raise DataError(f"the fit covers {len(dates)} {period_name(dates)}, shorter than two quarters: there "
                                f"is no default period to compare; give both --base START END and --compare START END")
            periods.append(default[0] if fallback == 0 else default[1])
        else:
            periods.append(_period_values(given, option, dates))
    with _in_terms({"`base`": "--base", "`compare`": "--compare", "`regions`": "--regions",
                    "`by_region`": "--by-region", "`n_boot`": "--n-boot", "n_boot=": "--n-boot ",
                    "pass matched=False": "pass --all-cells"}):
        table = model.get_kpi_change(periods[0], periods[1], regions=rows.pop("regions", regions),
                                     by_region=args.by_region, matched=not args.all_cells, n_boot=args.n_boot,
                                     level=args.level, prior_spread=spread, **rows)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out)
    a = table.attrs
    print(f"KPI {a['base_dates']}: {a['base_kpi']:,.0f}; {a['compare_dates']}: {a['compare_kpi']:,.0f}; "
          f"change {a['change']:+,.0f} ({a['change_pct']:+.2f}%) over {a['regions']} region(s)"
          + (f"; left out, not observed in every week of both: {', '.join(map(str, a['left_out']))} "
             "(--all-cells counts them)" if a["left_out"] else ""))
    shown = table
    if args.by_region:  # one line per region here; every region's parts are in the CSV
        shown = table.groupby(level="region", sort=False)[["base", "compare", "change"]].sum()
        shown["change_pct"] = shown["change"] / shown["base"].abs().where(shown["base"] != 0) * 100
    kpi = {c: "{:,.0f}".format if shown[c].abs().max() >= 100 else "{:,.3g}".format
           for c in ("base", "compare", "change", "total_effect_change") if c in shown}
    pct = {c: "{:+.2f}".format for c in ("change_pct", "change_pct_lo", "change_pct_hi")}
    print(shown.to_string(formatters={**kpi, **pct, "change_pct_sd": "{:.2f}".format}, na_rep=""))
    if args.by_region:
        print("(one line per region: the KPI of each period and its change; each region's parts are in the CSV)")
    if args.n_boot:
        print(f"change_pct_lo/_hi: {a['level']:.0%} intervals from {a['n_used']} of {args.n_boot} bootstrap refits "
              f"(the KPI's own change {a['change_pct_lo']:+.2f}% to {a['change_pct_hi']:+.2f}%)")
    print(f"change_pct: per cent of the first period's KPI (the rows add up to the KPI's); "
          f"wrote {out.resolve()}")
    return 0


def _effects(args: argparse.Namespace) -> int:
    """``effects``: each channel's total, direct and mediated effect, spend and ROI over the fit, a
    period or (``--by``) period by period."""
    spread = _prior_spread(args.prior_spread)
    _check_n_boot_option(args.n_boot)
    model = _model_class().load(args.model).set_params(n_jobs=args.jobs)
    labels = {str(r): r for r in model.regions_}
    regions = [labels.get(r.strip(), r.strip()) for r in args.regions.split(";") if r.strip()] if args.regions else None
    if args.n_boot:
        clash = [name for name, value in (("--regions", args.regions), ("--period", args.period),
                                          ("--by-region", args.by_region)) if value]
        if clash:
            raise DataError(f"--n-boot refits redraw the fitted regions over every fitted week, so {clash} do not "
                            "apply; drop them for intervals, or drop --n-boot")
    boot = {"n_boot": args.n_boot, "level": args.level, "prior_spread": spread} if args.n_boot else {}
    if args.group and args.by is not None:
        raise DataError("--group gives each group's effects over the fit or a --period, so ['--by'] do not apply; "
                        "drop it, or drop --group")
    period: Any = None
    if args.period is not None:
        period = _period_values(args.period, "--period", model.panel_.dates)
    out = Path(args.out)

    def write(table: pd.DataFrame) -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(out)

    words = {"`regions`": "--regions", "`period`": "--period", "`freq`": "--by", "period=": "--period ",
             "freq=": "--by "}
    if args.by is not None:
        if args.period:
            raise DataError(f"--by {args.by or ''}".rstrip() + " gives every period of the fit, one block of rows "
                            "each, so ['--period'] "
                            "does not apply; drop it, or drop --by for one period's effects")
        freq: str | int | None = (None if not args.by.strip() else int(args.by) if args.by.strip().isdigit()
                                  else args.by)
        with _in_terms(words):
            table = model.get_effects_over_time(freq, regions=regions, by_region=args.by_region, **boot)
        write(table)
        if args.by_region:  # regions x periods x channels rows: the CSV holds them
            n_regions = table.index.get_level_values("region").nunique()
            print(f"{len(table)} rows: {n_regions} region(s) x their observed periods x {len(model.channels_)} "
                  f"channels (spend, total, direct, mediated, roi, marginal_roi per row); wrote {out.resolve()}")
            return 0
        whole = table.groupby(level="period", sort=False)["complete"].first()
        names = {p: p if ok else f"{p}*" for p, ok in whole.items()}
        for column, what in (("roi", "total effect per unit of spend in each period"),
                             ("marginal_roi", "KPI per next unit of spend in the period, its carryover included")):
            cells = table[column]
            if args.n_boot:  # each figure with its interval
                cells = pd.Series([f"{v:,.4g} [{lo:,.3g}, {hi:,.3g}]" if np.isfinite(v) else "" for v, lo, hi in
                                   zip(cells, table[f"{column}_lo"], table[f"{column}_hi"], strict=True)],
                                  index=table.index)
            shown = cells.unstack("period")[list(whole.index)].rename(columns=names)
            shown = shown.loc[list(dict.fromkeys(table.index.get_level_values("channel")))]
            print(f"{column}: {what}")
            print(shown.rename_axis(index=None, columns="channel").to_string(float_format="{:,.4g}".format))
        note = " (* the fit covers the period in part)" if not whole.all() else ""
        bounds = (f"; {args.level:.0%} intervals from {args.n_boot} bootstrap refits (roi_lo, roi_hi, ...)"
                  if args.n_boot else "")
        print(f"{len(whole)} periods{note}; spend, total, direct and mediated effects per period{bounds} are in "
              f"the CSV; wrote {out.resolve()}")
        return 0
    if args.group:
        groups: dict[str, list[str]] = {}
        for text in args.group:
            name, sep, chans = text.partition("=")
            if not sep or not name.strip() or not chans.strip():
                raise DataError(f"--group takes NAME=CHANNEL,CHANNEL (a group's name and its channels), found "
                                f"{text!r}; e.g. --group digital=search,social")
            groups[name.strip()] = _matching(chans, model.channels_, f"--group {name.strip()}",
                                             "the model's channels")  # patterns such as 'impressions_*'

        with _in_terms({**words, "`groups[": "--group ", "]`": ""}, period=r"--period \1 \2"):
            table = model.get_group_effects(groups, regions=regions, period=period, by_region=args.by_region, **boot)
        write(table)
        print(table.drop(columns="channels").to_string(formatters=_sized(table), na_rep=""))
        for name, members in groups.items():  # the members below the figures (long names stay readable)
            print(f"{name}: {', '.join(members)}")
        print("total: KPI lost with every channel of the group switched off together; overlap: what adding the "
              f"members' own totals counts twice (what one drives in another); wrote {out.resolve()}")
        return 0
    if args.n_boot:
        table = model.get_effect_intervals(**boot)
        write(table)
        print(table.to_string(float_format="{:,.4g}".format))
        print(f"{args.level:.0%} intervals from {args.n_boot} region-bootstrap refits, each with its own prior "
              f"strengths (--prior-spread {spread:g}); wrote {out.resolve()}")
        return 0
    with _in_terms(words, period=r"--period \1 \2"):
        table = model.get_channel_effects(regions=regions, period=period, by_region=args.by_region)
    write(table)
    print(table.to_string(formatters=_sized(table), na_rep=""))
    print("total: KPI lost under do(channel = 0), what the channel drives in other channels included; direct: "
          f"other channels held as observed; roi = total / spend; wrote {out.resolve()}")
    return 0


def _report(args: argparse.Namespace) -> int:
    _check_n_boot_option(args.n_boot)
    _prior_spread(args.prior_spread)
    model = _model_class().load(args.model).set_params(verbose=args.verbose, n_jobs=args.jobs)
    if args.n_boot:
        model._check_bootstrap_regions(args.prior_spread)
    findings: list[str] = []
    files = write_outputs(model, Path(args.out), n_boot=args.n_boot, prior_spread=args.prior_spread,
                          findings=findings)
    print(model.contribution_summary().round(4).to_string())
    _print_findings(findings)
    print(f"wrote {len(files)} files to {Path(args.out).resolve()}")
    return 0


def _config(args: argparse.Namespace) -> int:
    """Write the default configuration (or ``--config`` merged over it) as YAML or JSON."""
    from .config import build_config

    cfg = build_config(args.config).to_dict()
    out = Path(args.out)
    if out.suffix.lower() not in {".yaml", ".yml", ".json"}:
        raise DataError(f"--out must end in .yaml, .yml or .json, found {out.name!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".json":
        out.write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")
    else:
        import yaml

        out.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    print(f"wrote the {'merged' if args.config else 'default'} configuration to {out.resolve()}; edit it "
          "and pass it to fit or backtest with --config (keys and defaults: README, 'Configuration')")
    return 0


def _backtest(args: argparse.Namespace) -> int:
    for flag, value in (("--n-splits", args.n_splits), ("--horizon", args.horizon)):
        if value < 1:
            raise DataError(f"{flag} must be a whole number of at least 1, found {value}; e.g. "
                            f"--n-splits 3 --horizon 13")
    df = _read_csv(args.data, "data")
    _label_columns(args, df, args.data)
    taken = [args.target, *(c for c in (args.date, args.region) if c)]
    channels = _matching(args.channels, df.columns, "--channels", f"the columns of {args.data}", taken)
    controls = _matching(args.controls, df.columns, "--controls", f"the columns of {args.data}",
                         [*taken, *channels])
    _columns(df, [args.target, *channels, *controls, *(c for c in (args.date, args.region) if c)],
             "named", args.data)
    model = _model_class()(config=args.config, random_state=args.seed, verbose=args.verbose, n_jobs=args.jobs)
    with _in_terms(_file_terms(args)):
        result = model.backtest(
            df[channels], df[args.target].to_numpy(),
            regions=df[args.region].to_numpy() if args.region else None,
            dates=df[args.date].to_numpy() if args.date else None,
            controls=df[controls] if controls else None,
            n_splits=args.n_splits, horizon=args.horizon, level=args.level,
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result.to_csv(out, index=False)
    print(result.round({c: 4 for c in result.select_dtypes("number").columns}).to_string(index=False))
    wins = int((result["wape_pct"] < result["naive_wape_pct"]).sum())
    print(f"holdout WAPE below the naive last-value forecast at {wins} of {len(result)} cutoffs; "
          f"wrote {out.resolve()}")
    return 0


def _data_arguments(cmd: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The long CSV, its named columns, the config file and the seed (``fit``, ``backtest``)."""
    cmd.add_argument("data", help="long CSV, one row per region and date")
    cmd.add_argument("--target", required=True, help="column of the KPI")
    cmd.add_argument("--channels", required=True,
                     help="comma-separated column names or shell-style patterns, e.g. 'impressions_*'")
    cmd.add_argument("--controls", default=None,
                     help="comma-separated column names or patterns, e.g. 'control_*' (columns already "
                          "taken by --channels, --target, --date, --region, --weight and --spend are skipped)")
    cmd.add_argument("--date", default=None,
                     help="column of each row's date or integer period (default: row order within a region)")
    cmd.add_argument("--region", default=None, help="column of region labels (default: one national series)")
    cmd.add_argument("--config", default=None, help="YAML/JSON config file")
    cmd.add_argument("--seed", type=int, default=0, help="the model's random_state (default 0)")
    return cmd


def _prior_spread_argument(cmd: argparse.ArgumentParser) -> None:
    """``--prior-spread``: each bootstrap refit's spread of the prior strengths (``--n-boot``)."""
    cmd.add_argument("--prior-spread", type=float, default=PRIOR_SPREAD,
                     help="with --n-boot: sd of each refit's log multiplier on the prior strengths "
                     f"(default {PRIOR_SPREAD}: 90%% within 0.1-10 times; 0: sampling variation only)")


def _jobs(text: str) -> int:
    """``--jobs``: a whole number other than 0."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value == 0:
        raise argparse.ArgumentTypeError(
            f"expected a whole number other than 0 (1: refits one at a time, -1: one process per core), "
            f"found {text!r}; e.g. --jobs -1")
    return value


def _jobs_argument(cmd: argparse.ArgumentParser, refits: str) -> None:
    cmd.add_argument("-j", "--jobs", type=_jobs, default=1, metavar="N",
                     help=f"processes running {refits} side by side (default 1: one at a time, each on every "
                     "core; -1: one per core, each on one)")


def _bootstrap_arguments(cmd: argparse.ArgumentParser, what: str, not_with: str) -> None:
    """``--n-boot``, ``--level``, ``--prior-spread`` and ``--jobs`` of a command whose figures
    (``what``) get region-bootstrap intervals; ``not_with``: the options they exclude."""
    cmd.add_argument("--n-boot", type=int, default=0,
                     help=f"region-bootstrap refits for intervals on {what} (0: none; each a full refit; not with "
                     f"{not_with})")
    cmd.add_argument("--level", type=float, default=0.9, help="interval level with --n-boot (default 0.9)")
    _prior_spread_argument(cmd)
    _jobs_argument(cmd, "--n-boot refits")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``deepcausalmmm`` command."""
    parser = argparse.ArgumentParser(prog="deepcausalmmm", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="fit a simulated panel (with a channel graph) and compare with its truth")
    demo.add_argument("-v", "--verbose", action="store_true",
            help="print progress: the panel, the graph, Adam's loss every 50 epochs")
    demo.add_argument("--out", default="outputs/demo", help="folder for the report and tables (default outputs/demo)")
    demo.add_argument("--regions", type=int, default=20, help="simulated regions (default 20)")
    demo.add_argument("--weeks", type=int, default=104, help="simulated weeks (default 104)")
    demo.add_argument("--channels", type=int, default=5, help="simulated channels (default 5)")
    demo.add_argument("--seed", type=int, default=0, help="the simulator's seed (default 0)")
    demo.add_argument("--config", default=None, help="YAML/JSON config file")
    demo.add_argument("--graph", default=DEMO_GRAPH,
                      help="true channel graph of the simulated panel, parent>child:weight[:lag] "
                      f"comma-separated, or none (default {DEMO_GRAPH})")
    demo.set_defaults(func=_demo)
    fit = _data_arguments(sub.add_parser("fit", help="fit a long CSV (one row per region and date)"))
    fit.add_argument("--lift-tests", default=None,
                     help="CSV of geo experiments to calibrate to: channel,start,end,lift,lift_se"
                     "[,regions as label;label;...]")
    fit.add_argument("--spend", default=None,
                     help="channels measured in impressions: channel=spend_column pairs, "
                     "comma-separated (ROI and budget plans then use money)")
    fit.add_argument("--roi-priors", default=None,
                     help="ROI priors, channel=MEAN:SD pairs comma-separated (config "
                     "calibration.roi_priors: total effect per unit of spend, e.g. search=1.8:0.4)")
    fit.add_argument("--weight", default=None,
                     help="column of loss weights per row (0: KPI ignored; e.g. 0.1 for filled gaps)")
    fit.add_argument("--n-boot", type=int, default=0,
                     help="region-bootstrap refits for effect_intervals.csv, budget_plan.csv and the intervals "
                     "of kpi_change.csv, shared by the three (0: none; each replicate is a full refit)")
    _prior_spread_argument(fit)
    fit.add_argument("--calibrate-intervals", type=int, default=0, metavar="N",
                     help="refit on the fitted weeks before N rolling cutoffs and widen the forecast intervals "
                     "(predict) so that they held their level 13 weeks ahead there (0: off; N full refits)")
    fit.add_argument("-v", "--verbose", action="store_true",
           help="print progress: the panel, the graph, Adam's loss every 50 epochs, a line per --n-boot refit")
    _jobs_argument(fit, "--n-boot refits")
    fit.add_argument("--out", default="outputs/fit",
                     help="folder for the model, report and tables (default outputs/fit)")
    fit.set_defaults(func=_fit)
    pred = sub.add_parser("predict", help="decompose and forecast the rows of a CSV with a saved model")
    pred.add_argument("model", help="a model file written by fit (model.safetensors)")
    pred.add_argument("data", help="CSV with the model's channel and control columns")
    pred.add_argument("--date", default=None, help="column of each row's week (required)")
    pred.add_argument("--region", default=None, help="column of region labels (a national model: none)")
    pred.add_argument("--level", type=float, default=0.9,
                      help="forecast interval level for the lower/upper columns (default 0.9)")
    pred.add_argument("--target", default=None,
                      help="column of the KPI measured in these rows: written as 'actual' and scored (WAPE, R^2; "
                           "forecast rows beside the naive last-value forecast)")
    pred.add_argument("--out", default="outputs/predictions.csv", help="CSV to write (default outputs/predictions.csv)")
    pred.set_defaults(func=_predict)
    opt = sub.add_parser("optimize", help="reallocate budget across channels with a saved model")
    opt.add_argument("model", help="a model file written by fit (model.safetensors)")
    opt.add_argument("--budget", type=float, default=None,
                     help="total spend of the chosen channels (default: what they spent)")
    opt.add_argument("--channels", default=None,
                     help="comma-separated channels to reallocate, or patterns, e.g. 'search_*'")
    opt.add_argument("--by-region", action="store_true",
                     help="one multiplier per region and channel: budget moves between regions too "
                     "(one row per region and channel)")
    opt.add_argument("--kpi-value", type=float, default=None,
                     help="money one unit of KPI is worth: the total spend is then free and the plan "
                     "maximises KPI value minus spend (not with --budget)")
    opt.add_argument("--bounds", default=None, help=f"LOW:HIGH multiplier range (default {DEFAULT_BOUNDS})")
    opt.add_argument("--channel-bounds", default=None,
                     help="per-channel ranges, channel=LOW:HIGH comma-separated (1:1 holds a channel)")
    opt.add_argument("--region-bounds", default=None,
                     help="with --by-region: a CSV of region,channel,low,high rows, ranges for those regions' "
                     "channels (the rest keep --bounds / --channel-bounds)")
    opt.add_argument("--frontier", nargs="?", const="", default=None, metavar="LEVELS",
                     help="plan every total budget in LEVELS (multiples of the observed spend, comma-separated; "
                     "default 0.6,0.7,...,1.4) and write one row per level: the best plan's KPI change beside "
                     "the same budget in today's mix, and the marginal ROI (get_budget_frontier)")
    opt.add_argument("--plan", default=None,
                     help="score this plan instead of optimising: channel=MULTIPLIER pairs, comma-separated "
                     "(e.g. tv=0.8,search=1.3; other channels as observed)")
    opt.add_argument("--plan-file", default=None,
                     help="score the plan in this CSV instead of optimising: channel,multiplier rows, with a "
                     "region column for multipliers per region (a row without a region sets every region); "
                     "e.g. the CSV an optimize run wrote")
    opt.add_argument("--rows", default=None,
                     help="plan over the rows of this long CSV instead of the fitted weeks (e.g. next quarter's "
                     "flighting: the model's channel columns per region and date, and its control columns, or "
                     "none of them to hold each region's last fitted values)")
    opt.add_argument("--date", default=None, help="with --rows: its date column (default: 'date' or 'week')")
    opt.add_argument("--region", default=None, help="with --rows: its region column (default: 'region' or 'geo')")
    opt.add_argument("--spend", default=None,
                     help="with --rows: money columns of channels measured otherwise, channel=column pairs "
                     "(others cost what a unit cost each region over the fit)")
    opt.add_argument("--regions", default=None, help="regions to plan for, separated by ';' (default all)")
    opt.add_argument("--start", default=None, help="first date of the planned period (default: the fit's)")
    opt.add_argument("--end", default=None, help="last date of the planned period (default: the fit's)")
    opt.add_argument("-v", "--verbose", action="store_true",
           help="print a line per bootstrap refit (--n-boot)")
    opt.add_argument("--n-boot", type=int, default=0,
                     help="region-bootstrap refits scoring the plan (0: none; each is a full refit)")
    opt.add_argument("--level", type=float, default=0.9, help="interval level for the refits' gains")
    _jobs_argument(opt, "--n-boot refits")
    _prior_spread_argument(opt)
    opt.add_argument("--out", default="outputs/budget_plan.csv", help="CSV to write (default outputs/budget_plan.csv)")
    opt.set_defaults(func=_optimize)
    plan = sub.add_parser("plan-test", help="size candidate geo lift tests with a saved model")
    plan.add_argument("model", help="a model file written by fit (model.safetensors)")
    plan.add_argument("tests", help="CSV of candidate tests: channel,start,end[,regions] (regions separated by ';')")
    plan.add_argument("--target-precision", default="0.2",
                      help="the lift's standard error over the lift to size for (default 0.2)")
    plan.add_argument("--out", default="outputs/test_plan.csv", help="CSV to write (default outputs/test_plan.csv)")
    plan.set_defaults(func=_plan_test)

    chg = sub.add_parser("change", help="what moved the KPI between two fitted periods, part by part, with a "
                         "saved model")
    chg.add_argument("model", help="a model file written by fit (model.safetensors)")
    chg.add_argument("--base", nargs="+", metavar="DATE", default=None,
                     help="the earlier period: its first and last dates, or one calendar period such as 2023Q4, "
                     "2023-11 or 2023 (default: the last fitted quarter a year earlier, or the quarter before it)")
    chg.add_argument("--compare", nargs="+", metavar="DATE", default=None,
                     help="the later period, as --base (default: the last fitted quarter)")
    chg.add_argument("--rows", default=None,
                     help="a long CSV of planned rows as the later period instead of --compare (next quarter's "
                     "flighting: the model's channel and control columns per region and date), forecast by the "
                     "model")
    chg.add_argument("--date", default=None, help="with --rows: its date column (default: 'date' or 'week')")
    chg.add_argument("--region", default=None, help="with --rows: its region column (default: 'region' or 'geo')")
    chg.add_argument("--regions", default=None, help="regions to sum over, separated by ';' (default all)")
    chg.add_argument("--by-region", action="store_true", help="one block of rows per region")
    chg.add_argument("--all-cells", action="store_true",
                     help="sum every observed cell of each period (default: like for like, only the regions "
                     "observed in every week of both)")
    _bootstrap_arguments(chg, "each part's change_pct", "--regions or --by-region")
    chg.add_argument("--out", default="outputs/kpi_change.csv", help="CSV to write (default outputs/kpi_change.csv)")
    chg.set_defaults(func=_change)

    eff = sub.add_parser("effects", help="each channel's total, direct and mediated effect and ROI, over the fit, "
                         "a period, or period by period (--by), with a saved model")
    eff.add_argument("model", help="a model file written by fit (model.safetensors)")
    eff.add_argument("--by", nargs="?", const="", default=None, metavar="FREQ",
                     help="period by period: Q (quarters), Y, M or W, or a whole number of steps (alone: quarters, "
                     "or blocks of 13 weekly steps without dates); adds each period's marginal ROI (default: one "
                     "row per channel over the whole fit)")
    eff.add_argument("--period", nargs="+", metavar="DATE", default=None,
                     help="only the weeks of one period: its first and last dates, or one calendar period such "
                     "as 2023Q4 (not with --by)")
    eff.add_argument("--regions", default=None, help="regions to sum over, separated by ';' (default all)")
    eff.add_argument("--by-region", action="store_true",
                     help="one row per region and channel (with --by: per region, period and channel)")
    eff.add_argument("--group", action="append", default=None, metavar="NAME=CHANNEL,CHANNEL",
                     help="a group of channels switched off together (repeat for several; channels may be "
                     "patterns such as 'search_*'): one row per group, what they drive in each other counted "
                     "once (not with --by)")
    _bootstrap_arguments(eff, "ROI and marginal ROI (with --group: media share and ROI)",
                         "--regions, --period or --by-region")
    eff.add_argument("--out", default="outputs/effects.csv", help="CSV to write (default outputs/effects.csv)")
    eff.set_defaults(func=_effects)

    rep = sub.add_parser("report", help="write the report and tables of a saved model (as fit does)")
    rep.add_argument("model", help="a model file written by fit or DeepCausalMMM.save (model.safetensors)")
    rep.add_argument("-v", "--verbose", action="store_true",
           help="print a line per bootstrap refit (--n-boot)")
    rep.add_argument("--n-boot", type=int, default=0,
                     help="region-bootstrap refits for effect_intervals.csv, budget_plan.csv and the intervals "
                     "of kpi_change.csv, shared by the three (0: none)")
    _prior_spread_argument(rep)
    _jobs_argument(rep, "--n-boot refits")
    rep.add_argument("--out", default="outputs/report", help="folder for the report and tables (default outputs/report)")
    rep.set_defaults(func=_report)

    conf = sub.add_parser("config", help="write the default configuration to a file to edit")
    conf.add_argument("--config", default=None, help="a config file to merge over the defaults first")
    conf.add_argument("--out", default="config.yaml", help="YAML (.yaml/.yml) or JSON (.json) file")
    conf.set_defaults(func=_config)
    back = _data_arguments(sub.add_parser(
        "backtest", help="rolling-origin refits, each scored beside the naive last-value forecast"))
    back.add_argument("--n-splits", type=int, default=3, help="cutoffs (each a full refit)")
    back.add_argument("--horizon", type=int, default=13, help="weeks forecast after each cutoff")
    back.add_argument("--level", type=float, default=0.9,
                      help="forecast interval level scored as coverage_pct (default 0.9)")
    back.add_argument("-v", "--verbose", action="store_true",
            help="print a line per cutoff: its fit's seconds and holdout WAPE beside the naive forecast's")
    _jobs_argument(back, "the cutoffs' refits")
    back.add_argument("--out", default="outputs/backtest.csv", help="CSV to write (default outputs/backtest.csv)")
    back.set_defaults(func=_backtest)
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning  # restored on leaving the block
        try:
            level = getattr(args, "level", None)  # predict, optimize, backtest
            if level is not None and not 0 < level < 1:
                raise DataError(f"--level must be an interval level between 0 and 1, found {level}; "
                                f"e.g. --level 0.9 for 90% intervals")
            _check_out(args)
            return int(args.func(args))
        except (DataError, ConfigError, FileNotFoundError, ModelFileError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2


def _file_terms(args: argparse.Namespace) -> dict[str, str]:
    """The words of errors the API raises on a data file's rows, in the file's terms (for
    :func:`_in_terms`): ```X``` column 'tv' as the file's column, ```y``` as the --target column,
    ```sample_weight``` as the --weight one."""
    words = {"`X` column": f"{args.data} column", "`controls` column": f"{args.data} column",
             "`regions` ": "regions ", "`sample_weight` 0": "weight 0 in a --weight column",
             "give region and date labels through `regions=` and `dates=` (the labels, or the names of "
             "their columns in `X`)": "name the region and date columns with --region and --date"}
    if getattr(args, "target", None):
        words["`y` column 'y'"] = f"--target column '{args.target}'"
        words["`y` "] = f"--target column '{args.target}' "
    if getattr(args, "weight", None):
        words["`sample_weight` "] = f"--weight column '{args.weight}' "
    return words


_FOLDERS = {"demo": "demo", "fit": "run", "report": "report"}  # commands whose --out is a folder of files
_EXAMPLES = {"predict": "predictions.csv", "optimize": "budget_plan.csv", "plan-test": "test_plan.csv",
             "config": "config.yaml", "backtest": "backtest.csv", "change": "kpi_change.csv",
             "effects": "effects.csv"}


def _check_out(args: argparse.Namespace) -> None:
    """``--out`` checked before any work: a folder for ``demo``, ``fit`` and ``report``, a file
    path for the others (not a folder, nothing under a file), or a ``DataError`` saying so."""
    folder = args.command in _FOLDERS
    check_target(Path(args.out), "--out", _FOLDERS[args.command] if folder else _EXAMPLES[args.command],
                 directory=folder)


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    """A warning as one ``warning: ...`` line on stderr (no source file and line, which mean
    nothing to someone running the command)."""
    print(f"warning: {message}", file=sys.stderr if file is None else file)


if __name__ == "__main__":
    sys.exit(main())
