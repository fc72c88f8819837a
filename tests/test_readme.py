"""The README's code and reference blocks, checked against the package.

The Quickstart is run exactly as printed; the configuration block must list
every default with its value; the command-line block may name only options
that the commands accept. A README that drifts from the code fails here.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
import yaml

from deepcausalmmm import DeepCausalMMM
from deepcausalmmm.cli import main as cli_main
from deepcausalmmm.config import MMMConfig, build_config

README = Path(__file__).resolve().parents[1] / "README.md"


def _block(heading: str, lang: str, level: str = "##") -> str:
    """The first ``lang`` code block after the section ``## heading`` (``level`` "###": a subsection)."""
    text = README.read_text(encoding="utf-8")
    section = text.split(f"\n{level} {heading}\n", 1)
    assert len(section) == 2, f"README has no section '{level} {heading}'"
    match = re.search(rf"```{lang}\n(.*?)```", section[1], re.S)
    assert match is not None, f"README section '{heading}' has no ```{lang} block"
    return match.group(1)


def test_quickstart_runs_as_printed_and_decomposes_exactly():
    ns: dict[str, Any] = {}
    exec(compile(_block("Quickstart", "python"), "README.md:Quickstart", "exec"), ns)
    model, contributions, sim = ns["model"], ns["contributions"], ns["sim"]
    channels = list(sim.X.columns)
    assert list(contributions.columns) == [*channels, "baseline", "controls", "prediction"]
    assert len(contributions) == 20 * 104
    parts = contributions[[*channels, "baseline", "controls"]].sum(axis=1)
    np.testing.assert_allclose(parts, contributions["prediction"], rtol=1e-6)
    assert (contributions[channels] >= 0).all().all()
    y = np.asarray(sim.y, dtype=float)
    pred = contributions["prediction"].to_numpy()
    r2 = 1 - ((y - pred) ** 2).sum() / ((y - y.mean()) ** 2).sum()
    assert r2 > 0.95, f"Quickstart fit explains too little: R^2 {r2:.3f}"
    # the overrides given in the Quickstart reached the fitted configuration
    assert model.config_.loss == "huber"
    assert model.config_.regularization.l1 == pytest.approx(1e-4)
    assert isinstance(model.plot_contributions(), go.Figure)
    assert isinstance(model.plot_dag(), go.Figure)


def test_forecast_interval_example_runs_as_printed(capsys):
    ns: dict[str, Any] = {}
    exec(compile(_block("Forecast intervals", "python", "###"), "README.md:Forecast intervals", "exec"), ns)
    band, future, inside = ns["band"], ns["future"], ns["inside"]
    assert len(band) == len(future) == 20 * 20
    assert list(band["horizon"].unique()) == list(range(1, 21))
    assert 0.75 <= inside.mean() <= 0.98  # measured 0.82 (README, "Forecast intervals")
    assert "inside their 90% intervals" in capsys.readouterr().out


def test_test_planning_example_runs_as_printed(capsys):
    ns: dict[str, Any] = {}
    exec(compile(_block("Planning a test", "python", "###"), "README.md:Planning a test", "exec"), ns)
    plan, always_on = ns["plan"], ns["always_on"]
    assert list(plan["channel"]) == always_on and always_on  # one row per always-on channel
    assert (plan["n_regions"] == 5).all() and (plan["weeks"] == 8).all()
    np.testing.assert_allclose(plan["relative_se"], plan["noise_se"] / plan["model_lift"])
    assert plan["noise_se"].nunique() == 1  # same cells, same noise
    assert "weeks_needed" in capsys.readouterr().out


def test_configuration_block_lists_every_default(tmp_path):
    block = _block("Configuration", "yaml")
    documented = yaml.safe_load(block)
    # the one example value in the block: a sign constraint for a control named price
    assert documented["controls"] == {"signs": {"price": "-"}}
    documented["controls"] = {"signs": {}}
    defaults = MMMConfig().to_dict()

    def keys(d: dict[str, Any], prefix: str = "") -> set[str]:
        out: set[str] = set()
        for k, v in d.items():
            out |= keys(v, f"{prefix}{k}.") if isinstance(v, dict) and v else {f"{prefix}{k}"}
        return out

    assert keys(documented) == keys(defaults), "README configuration keys differ from MMMConfig"
    path = tmp_path / "config.yaml"
    path.write_text(block, encoding="utf-8")
    loaded = build_config(path).to_dict()
    loaded["controls"] = {"signs": {}}
    assert loaded == defaults, "a README configuration value differs from its default"


def _help(*command: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_info:
        cli_main([*command, "--help"])
    assert exit_info.value.code == 0
    return out.getvalue()


def test_command_line_block_names_only_accepted_options():
    block = _block("Command line", "bash")
    commands = re.split(r"^deepcausalmmm ", block.replace("\\\n", " "), flags=re.M)[1:]
    assert [c.split()[0] for c in commands] == ["demo", "fit", "predict", "optimize", "optimize", "optimize", "optimize", "optimize",
                                                  "plan-test", "report", "change", "effects", "config",
                                                  "backtest"]
    for command in commands:
        name = command.split()[0]
        accepted = set(re.findall(r"--[a-z][a-z-]*", _help(name)))
        documented = set(re.findall(r"--[a-z][a-z-]*", command))
        assert documented <= accepted, f"README `{name}` options not accepted: {documented - accepted}"


def test_planning_ahead_example_runs_as_printed(capsys):
    ns: dict[str, Any] = {}
    exec(compile(_block("Budget reallocation", "python"), "README.md:Budget reallocation", "exec"), ns)
    plan, what_if, curves, rows = ns["plan"], ns["what_if"], ns["curves"], ns["next_quarter"]
    channels = list(plan.index)
    np.testing.assert_allclose(plan["spend"], rows[channels].sum().to_numpy())  # the rows' own spend
    assert plan["optimal_spend"].sum() == pytest.approx(plan["spend"].sum(), rel=1e-6)
    assert plan["multiplier"].between(0.7 - 1e-9, 1.3 + 1e-9).all() and plan.attrs["kpi_gain"] >= 0
    assert what_if.attrs["kpi_change"] < 0  # less of a channel with a positive effect: less KPI
    at_one = curves[curves["multiplier"] == 1.0].set_index("channel")["response"]
    np.testing.assert_allclose(at_one[channels], plan["response"], rtol=1e-9)
    assert "optimal_spend" in capsys.readouterr().out


def test_kpi_change_example_runs_after_the_quickstart():
    """The "What moved the KPI" block, run on the Quickstart's model (20 x 104 weeks)."""
    ns: dict[str, Any] = {}
    exec(compile(_block("Quickstart", "python"), "README.md:Quickstart", "exec"), ns)
    exec(compile(_block("What moved the KPI", "python"), "README.md:What moved the KPI", "exec"), ns)
    change, model, sim = ns["change"], ns["model"], ns["sim"]
    assert list(change.index) == ["level", "trend", "season", *model.channels_, "unexplained"]
    y = pd.Series(np.asarray(sim.y, dtype=float))
    weeks = sim.data.groupby("region").cumcount()  # fitted without dates: row order within a region
    d = model.panel_.dates
    assert list(d) == list(range(104))
    kpi = [y[(weeks >= a) & (weeks <= b)].sum() for a, b in ((d[39], d[51]), (d[91], d[103]))]
    assert change["change"].sum() == pytest.approx(kpi[1] - kpi[0], rel=1e-9)
    assert change["change_pct"].sum() == pytest.approx((kpi[1] / kpi[0] - 1) * 100, rel=1e-9)


def test_return_over_time_example_runs_after_the_quickstart():
    """The "Return over time" block, run on the Quickstart's model (fitted without dates)."""
    ns: dict[str, Any] = {}
    exec(compile(_block("Quickstart", "python"), "README.md:Quickstart", "exec"), ns)
    exec(compile(_block("Return over time", "python"), "README.md:Return over time", "exec"), ns)
    over, model = ns["over"], ns["model"]
    periods = list(dict.fromkeys(over.index.get_level_values("period")))
    assert periods == [f"{a}..{a + 12}" for a in range(0, 104, 13)]  # 8 blocks of 13 weeks
    effects = model.get_channel_effects()
    np.testing.assert_allclose(over.groupby(level="channel")["total"].sum()[model.channels_],
                               effects["total"][model.channels_], rtol=1e-9)


def test_contents_line_links_to_sections():
    """Every link of the README's contents line names a section heading (GitHub's anchors)."""
    text = README.read_text(encoding="utf-8")
    contents = text.split("Contents: ", 1)[1].split("\n\n", 1)[0]
    anchors = re.findall(r"\]\(#([^)]+)\)", contents)
    headings = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
                for h in re.findall(r"^#{2,3} (.+)$", text, flags=re.M)}
    assert len(anchors) >= 15
    assert [a for a in anchors if a not in headings] == []


def test_questions_table_names_methods_and_commands_that_exist():
    """Every call the "Questions" table names is a public method, every command a CLI command and
    every link a section."""
    text = README.read_text(encoding="utf-8")
    table = text.split("## Questions and the calls that answer them", 1)[1].split("\n## ", 1)[0]
    methods = set(re.findall(r"`(?:model\.)?([a-z_]+)\(", table))
    assert len(methods) >= 15
    assert [m for m in methods if not callable(getattr(DeepCausalMMM, m, None))] == []
    commands = set(re.findall(r"`(demo|fit|predict|optimize|plan-test|change|effects|report|config|backtest)\b", table))
    accepted = set(re.findall(r"\{([a-z,\-]+)\}", _help())[0].split(","))
    assert commands and commands <= accepted
    headings = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
                for h in re.findall(r"^#{2,3} (.+)$", text, flags=re.M)}
    assert [a for a in re.findall(r"\]\(#([^)]+)\)", table) if a not in headings] == []


def test_questions_table_names_the_calls_that_take_n_boot():
    import inspect

    text = README.read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith("| How sure is the model?"))
    named = re.findall(r"`([a-z_]+)`", row.split("`n_boot=` on", 1)[1])
    assert len(named) == 7
    assert [m for m in named if "n_boot" not in inspect.signature(getattr(DeepCausalMMM, m)).parameters] == []
