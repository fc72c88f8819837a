"""Recovery of simulator truth (no channel graph), and the demo CLI end to end."""

import re

import numpy as np
import pandas as pd
import pytest

from deepcausalmmm import DeepCausalMMM, build_config
from deepcausalmmm.cli import DEMO_GRAPH, main, parse_graph
from deepcausalmmm.datasets import simulate_panel
from deepcausalmmm.exceptions import DataError


def test_channel_shares_within_5_points_on_20_regions():
    sim = simulate_panel(20, 104, 5, seed=0)
    model = DeepCausalMMM().fit(sim.X, sim.y, regions=sim.regions, dates=sim.dates,
                                controls=sim.control_frame)
    est = model.contribution_summary()["share_of_media"]
    err = (est - sim.true_shares()).abs() * 100
    assert err.max() < 5.0, err.round(2).to_dict()
    # in-sample fit is close to the noise-free truth
    table = model.get_channel_contributions()
    rel = np.abs(table["prediction"] - sim.truth["prediction"].to_numpy()) / sim.truth["prediction"].to_numpy()
    assert rel.mean() < 0.05


def test_simulator_truth_is_consistent():
    sim = simulate_panel(5, 30, 4, seed=1)
    truth = sim.truth
    parts = truth[sim.channels].sum(axis=1) + truth["baseline"] + truth["controls"]
    np.testing.assert_allclose(parts, truth["prediction"])
    size = sim.params["region_size"]
    assert size.max() / size.min() >= 5  # geo sizes differ by an order of magnitude
    assert sim.true_shares().sum() == pytest.approx(1.0)
    again = simulate_panel(5, 30, 4, seed=1)
    assert again.data.equals(sim.data)


def test_simulator_truth_paths_split_each_total_by_where_it_lands():
    """``truth_paths``: row c, column j is the fall in j's own contribution under do(c = 0).
    Rows sum to the total effects, the diagonal is the direct effects, and a path runs only from
    a channel to its descendants (here 1 -> 2 -> 3)."""
    sim = simulate_panel(6, 40, 4, seed=3, graph=[("channel_1", "channel_2", 0.5), ("channel_2", "channel_3", 0.4)])
    paths, effects = sim.truth_paths, sim.truth_effects
    assert list(paths.index) == list(paths.columns) == sim.channels
    np.testing.assert_allclose(paths.sum(axis=1), effects["total"], rtol=1e-12)
    np.testing.assert_allclose(np.diag(paths), effects["direct"], rtol=1e-12)
    np.testing.assert_allclose(np.diag(paths), sim.truth[sim.channels].sum(), rtol=1e-12)
    downstream = {("channel_1", "channel_2"), ("channel_1", "channel_3"), ("channel_2", "channel_3")}
    for parent in sim.channels:
        for child in sim.channels:
            if parent == child:
                continue
            if (parent, child) in downstream:
                assert paths.loc[parent, child] > 0.05 * paths.loc[parent, parent], (parent, child)
            else:
                assert paths.loc[parent, child] == 0.0, (parent, child)


def test_oracle_reference_recovers_known_scales(monkeypatch):
    """The benchmarks' oracle (least squares given the true contribution series): on a noiseless
    panel every channel's scale is 1 up to what its baseline form misses (each region's level and
    trend, two yearly harmonics in proportion to the region's mean KPI), and the totals it reports
    are the true paths times those scales; on a noisy panel a doubled contribution series comes
    back at half the scale."""
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from oracle import oracle_errors, oracle_scales, oracle_totals, share_errors, simulated_inputs

    clean = simulated_inputs(simulate_panel(10, 104, 4, seed=2, noise=0.0, graph=[("channel_1", "channel_3", 0.5)]))
    kpi, contrib, controls = clean["kpi"], clean["contrib"], clean["controls"]
    np.testing.assert_allclose(oracle_scales(kpi, contrib, controls), 1.0, atol=0.005)
    totals = oracle_totals(**clean)
    np.testing.assert_allclose(totals, clean["paths"].sum(axis=1), rtol=0.005)
    assert np.abs(share_errors(totals, clean["paths"])).max() < 0.1  # pp
    signed, root_err = oracle_errors(**clean, roots=(0, 2))
    np.testing.assert_array_equal(signed, share_errors(totals, clean["paths"]))
    assert root_err.shape == (2,) and (root_err < 0.5).all()  # % of channel_1's and channel_3's totals
    noisy = simulated_inputs(simulate_panel(10, 104, 4, seed=2, noise=0.05))
    kpi, contrib, controls = noisy["kpi"], noisy["contrib"], noisy["controls"]
    single = oracle_scales(kpi, contrib, controls)
    doubled = oracle_scales(kpi, contrib * np.array([2.0, 1.0, 1.0, 1.0]), controls)
    np.testing.assert_allclose(doubled, single / np.array([2.0, 1.0, 1.0, 1.0]), rtol=1e-8)
    with pytest.raises(ValueError, match=r"kpi must have shape \(10, 104\)"):
        oracle_scales(kpi[:, :-1], contrib)


def test_simulator_budget_season_in_phase_with_demand():
    """``budget_in_phase``: the budget season every channel shares peaks with the KPI's
    season; the other draws (sizes, curves, noise) are those of the same seed without."""
    free = simulate_panel(5, 104, 3, seed=2)
    tied = simulate_panel(5, 104, 3, seed=2, budget_in_phase=True)
    assert np.corrcoef(tied.params["budget_season"], tied.params["kpi_season"])[0, 1] > 0.9
    assert abs(np.corrcoef(free.params["budget_season"], free.params["kpi_season"])[0, 1]) < 0.9
    np.testing.assert_array_equal(tied.params["kpi_season"], free.params["kpi_season"])
    for key in ("region_size", "half_sat", "slope", "gates"):
        np.testing.assert_array_equal(tied.params[key], free.params[key])
    # spend follows the season more closely than at the seed's own phase (channels' own
    # cycles and flights move it too)
    corr = [np.corrcoef(sim.data.groupby("date")[sim.channels].sum().sum(axis=1), sim.params["kpi_season"])[0, 1]
            for sim in (free, tied)]
    assert corr[1] > corr[0] + 0.5, corr


def test_demo_cli_writes_outputs(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--regions", "4", "--weeks", "40", "--channels", "3"]) == 0
    printed = capsys.readouterr().out
    assert "estimated vs simulator truth" in printed
    assert "carryover and response curves, fitted vs simulator truth" in printed and "true_mean_lag" in printed
    assert "true_elasticity" in printed
    table = pd.read_csv(out / "contributions.csv", index_col=[0, 1])
    assert {"baseline", "controls", "prediction"} <= set(table.columns)
    assert (out / "contributions.html").read_text().count("plotly") > 0
    report = (out / "report.html").read_text()
    assert '<h2 id="effects-under-intervention">Effects under intervention</h2>' in report
    assert '<h2 id="weeks-the-model-does-not-explain">Weeks the model does not explain</h2>' in report
    params = pd.read_csv(out / "channel_parameters.csv", index_col=0)
    assert list(params.index) == ["channel_1", "channel_2", "channel_3"] and "mean_lag" in params.columns
    unexplained = pd.read_csv(out / "unexplained_weeks.csv", index_col=0)
    assert list(unexplained.columns) == ["kpi", "prediction", "residual", "residual_pct", "z"]
    model = DeepCausalMMM.load(out / "model.safetensors")
    assert model.channels_ == ["channel_1", "channel_2", "channel_3"]
    assert build_config(out / "config.json") == model.config_  # the applied configuration, reusable
    # the default demo panel has a mediation graph: the truth is printed beside what was learned
    assert "true channel graph: channel_1 -> channel_2 (weight 0.5, lag 0), channel_1 -> channel_3" in printed
    assert "learned channel graph:" in printed and "true_mediated" in printed
    ident = pd.read_csv(out / "identification.csv", index_col=0)
    effects = pd.read_csv(out / "effects.csv", index_col=0)
    pd.testing.assert_frame_equal(effects, model.get_channel_effects(), check_dtype=False, check_names=False)
    np.testing.assert_allclose(effects["total"], effects["direct"] + effects["mediated"], rtol=1e-9)
    edges = pd.read_csv(out / "dag_edges.csv")
    pd.testing.assert_frame_equal(edges, model.get_dag_edges(), check_dtype=False)
    curves = pd.read_csv(out / "response_curves.csv")
    assert set(curves["channel"]) == set(model.channels_)
    at_one = curves[np.isclose(curves["multiplier"], 1.0)].set_index("channel")["response"]
    np.testing.assert_allclose(at_one[effects.index], effects["total"], rtol=1e-6)  # x1 = the total effect
    assert ident["level"].tolist() == ["extrapolated", "observed", "extrapolated"]  # always-on: odd
    assert re.search(r"^channel_1 .* extrapolated$", printed, re.M)  # the share table's level column
    assert re.search(r"^channel_2 .* observed$", printed, re.M)
    # what all channels caused together, against their totals added, beside the truth's
    sim = simulate_panel(4, 40, 3, seed=0, graph=parse_graph(DEMO_GRAPH, model.channels_))
    true_media = sim.truth[model.channels_].to_numpy().sum()
    media = model.get_group_effects({"media": model.channels_}).iloc[0]
    assert (f"all channels switched off together (get_group_effects): {media['total']:,.0f} of the KPI (truth "
            f"{true_media:,.0f}); the channels' totals add up to {media['sum_of_totals']:,.0f} (truth "
            f"{sim.truth_effects['total'].sum():,.0f})") in printed
    # the direct return by year beside the truth's (40 weeks from 2023-01-02: part of 2023)
    assert "direct return by year, estimated vs simulator truth" in printed
    over = model.get_effects_over_time("Y", marginal=False).loc["2023"]
    line = re.search(r"^channel_1 +(\S+) +(\S+)$", printed.split("direct return by year", 1)[1], re.M)
    assert line is not None
    assert float(line.group(1)) == pytest.approx(over.loc["channel_1", "direct"] / over.loc["channel_1", "spend"],
                                                 abs=6e-4)
    assert float(line.group(2)) == pytest.approx(sim.truth["channel_1"].sum() / over.loc["channel_1", "spend"],
                                                 abs=6e-4)


def test_demo_graph_argument(capsys, tmp_path):
    channels = ["channel_1", "channel_2", "channel_3"]
    assert parse_graph("channel_1>channel_2:0.5, channel_2>channel_3:0.25:2", channels) == [
        ("channel_1", "channel_2", 0.5, 0), ("channel_2", "channel_3", 0.25, 2)]
    assert parse_graph("none", channels) == []
    for spec, says in [("channel_1-channel_2:0.5", "malformed"), ("channel_1>channel_2", "malformed"),
                       ("channel_1>channel_2:x", "malformed"), ("channel_1>channel_9:0.5", "channel_9"),
                       ("channel_1>channel_1:0.5", "two different channels"),
                       ("channel_1>channel_2:-1", "positive weight"),
                       ("channel_1>channel_2:0.5:-1", "lag >= 0")]:
        with pytest.raises(DataError, match=says):
            parse_graph(spec, channels)
    code = main(["demo", "--out", str(tmp_path / "d"), "--regions", "3", "--weeks", "30", "--channels", "2"])
    assert code == 2  # the default graph names channel_3
    err = capsys.readouterr().err
    assert "channel_3" in err and "--channels" in err
    assert not (tmp_path / "d").exists()  # nothing written on bad input
    assert main(["demo", "--out", str(tmp_path / "e"), "--regions", "3", "--weeks", "30", "--channels", "2",
                 "--graph", "none"]) == 0
    captured = capsys.readouterr()
    assert "true channel graph: no edges" in captured.out
    # warnings reach the command line as plain lines, without the package's source file and line
    assert "warning: graph: 3 regions x 30 weeks are too few region-weeks" in captured.err
    assert ".py:" not in captured.err


def test_fit_cli_reports_bad_input(tmp_path, capsys):
    sim = simulate_panel(3, 20, 2, seed=2)
    data = sim.data.copy()
    data.loc[0, "channel_1"] = -1
    path = tmp_path / "d.csv"
    data.to_csv(path, index=False)
    code = main(["fit", str(path), "--target", "kpi", "--channels", "channel_1,channel_2",
                 "--date", "date", "--region", "region", "--out", str(tmp_path / "o")])
    assert code == 2
    assert "negative" in capsys.readouterr().err
    args = ["--date", "date", "--region", "region", "--out", str(tmp_path / "o2")]
    # a misspelt column is named against the file's header before any fitting
    assert main(["fit", str(path), "--target", "kpi", "--channels", "channel_1,chanel_2", *args]) == 2
    err = capsys.readouterr().err
    assert "lacks the named column(s) ['chanel_2']" in err and "--channels" in err
    # a missing or unreadable file is a clear error (status 2), not a traceback
    assert main(["fit", str(tmp_path / "none.csv"), "--target", "kpi", "--channels", "channel_1", *args]) == 2
    assert "data file" in capsys.readouterr().err
    (tmp_path / "broken.csv").write_text('a,b\n1,2,3,4\n"x')
    assert main(["fit", str(tmp_path / "broken.csv"), "--target", "kpi", "--channels", "channel_1", *args]) == 2
    assert "could not be read as CSV" in capsys.readouterr().err
    # a KPI column holding text says what it found
    data = sim.data.astype({"kpi": str})
    data.loc[3, "kpi"] = "12 units"
    data.to_csv(path, index=False)
    assert main(["fit", str(path), "--target", "kpi", "--channels", "channel_1", *args]) == 2
    # (the API's errors in the file's terms: the --target column, the file's columns, its options)
    assert "--target column 'kpi' must be numeric (one KPI value per row), found e.g. '12 units'" in capsys.readouterr().err
    data = sim.data.copy()
    data.loc[3, "kpi"] = np.nan
    data.to_csv(path, index=False)
    assert main(["fit", str(path), "--target", "kpi", "--channels", "channel_1", *args]) == 2
    assert ("--target column 'kpi' has 1 NaN/non-finite value(s) (region 'geo_000', dates 2023-01-23); drop "
            "those rows, or keep them with any finite KPI value and weight 0 in a --weight column") in capsys.readouterr().err
    data = sim.data.astype({"channel_1": str})
    data.loc[4, "channel_1"] = "1.2k"
    data.to_csv(path, index=False)
    assert main(["fit", str(path), "--target", "kpi", "--channels", "channel_1", *args]) == 2
    assert (f"{path} column(s) ['channel_1'] are not numeric (1 of 60 cells of 'channel_1' are not numbers, e.g. "
            "'1.2k'); pass only numeric channel/control columns (fix or drop those cells) and name the region and "
            "date columns with --region and --date") in capsys.readouterr().err
    assert not (tmp_path / "o2").exists()  # nothing written by a failed fit


def test_cli_reads_semicolon_tab_and_windows_csv_files(tmp_path, capsys):
    from deepcausalmmm.cli import _read_csv

    from .conftest import FAST

    sim = simulate_panel(4, 40, 2, seed=5)
    data = sim.data.rename(columns={"channel_1": "TV (€)"})
    data["date"] = pd.to_datetime(data["date"]).dt.strftime("%Y-%m-%d")
    comma = tmp_path / "comma.csv"
    data.to_csv(comma, index=False)
    expected = pd.read_csv(comma)
    # spreadsheets in comma-decimal locales: semicolons and decimal commas; tabs; Windows-1252 text
    data.to_csv(tmp_path / "semi.csv", index=False, sep=";", decimal=",")
    data.to_csv(tmp_path / "tab.tsv", index=False, sep="\t")
    data.to_csv(tmp_path / "win.csv", index=False, encoding="cp1252")
    data.to_csv(tmp_path / "bom.csv", index=False, encoding="utf-8-sig")
    for name in ("semi.csv", "tab.tsv", "win.csv", "bom.csv"):
        pd.testing.assert_frame_equal(_read_csv(str(tmp_path / name), "data"), expected, check_dtype=False)
    # a semicolon file keeps text columns that are not all decimal-comma numbers as text
    (tmp_path / "mixed.csv").write_text("region;label;x\ngeo_1;a,b;1,5\ngeo_2;3,5;2\n", encoding="utf-8")
    mixed = _read_csv(str(tmp_path / "mixed.csv"), "data")
    assert mixed["x"].tolist() == [1.5, 2.0] and mixed["label"].tolist() == ["a,b", "3,5"]
    (tmp_path / "binary.csv").write_bytes(b"a,b\n\x81\x8d,1\n")
    with pytest.raises(DataError, match="neither UTF-8 nor Windows-1252 text; save it as UTF-8 CSV"):
        _read_csv(str(tmp_path / "binary.csv"), "data")
    # the same fit from the semicolon file as from the comma one
    cfg = tmp_path / "fast.json"
    cfg.write_text(__import__("json").dumps(FAST))
    args = ["--target", "kpi", "--channels", "TV (€),channel_2", "--date", "date", "--region", "region",
            "--config", str(cfg)]
    assert main(["fit", str(comma), *args, "--out", str(tmp_path / "a")]) == 0
    assert main(["fit", str(tmp_path / "semi.csv"), *args, "--out", str(tmp_path / "b")]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "b" / "effects.csv", index_col=0),
                                  pd.read_csv(tmp_path / "a" / "effects.csv", index_col=0))


def test_cli_out_paths_are_checked_before_any_work(tmp_path, capsys, monkeypatch):
    sim = simulate_panel(3, 20, 2, seed=2)
    data = tmp_path / "d.csv"
    sim.data.to_csv(data, index=False)
    model_file = DeepCausalMMM(config={"training": {"epochs": 5, "polish_steps": 0}, "graph": {"mode": "none"}}).fit(
        sim.X, sim.y, regions=sim.regions, dates=sim.dates).save(tmp_path / "m.safetensors")
    (tmp_path / "folder").mkdir()

    def no_fit(*args, **kwargs):
        raise AssertionError("fit ran before --out was checked")

    monkeypatch.setattr(DeepCausalMMM, "fit", no_fit)
    data_args = [str(data), "--target", "kpi", "--channels", "channel_*", "--date", "date", "--region", "region"]
    for command, out, message in (
            (["fit", *data_args], data, f"--out '{data}' is a file, and this writes several files into a folder; "
                                        f"give a folder path (new or existing), e.g. '{tmp_path / 'd_run'}'"),
            (["report", str(model_file)], model_file, "is a file, and this writes several files into a folder"),
            (["backtest", *data_args], tmp_path / "folder",
             f"--out '{tmp_path / 'folder'}' is a directory; give a file path inside it, e.g. "
             f"'{tmp_path / 'folder' / 'backtest.csv'}'"),
            (["predict", str(model_file), str(data)], model_file / "p.csv",
             f"lies under '{model_file}', which is a file, not a directory"),
            (["optimize", str(model_file)], tmp_path / "folder", "is a directory; give a file path inside it"),
            (["config"], tmp_path / "folder", "is a directory; give a file path inside it")):
        assert main([*command, "--out", str(out)]) == 2, command
        assert message in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv", "folder", "m.safetensors"]
    assert not any((tmp_path / "folder").iterdir())


def test_fit_cli_spend_columns_and_weights(tmp_path, capsys):
    from .conftest import FAST

    sim = simulate_panel(4, 40, 2, seed=5)
    data = sim.data.copy()
    data["channel_1_cost"] = 3.0 * data["channel_1"]  # impressions at 3 per unit
    data["w"] = 1.0
    path = tmp_path / "d.csv"
    data.to_csv(path, index=False)
    cfg = tmp_path / "fast.json"
    cfg.write_text(__import__("json").dumps(FAST))
    args = ["fit", str(path), "--target", "kpi", "--channels", "channel_1,channel_2", "--date", "date",
            "--region", "region", "--config", str(cfg), "--weight", "w"]
    assert main([*args, "--spend", "channel_1=channel_1_cost", "--out", str(tmp_path / "o")]) == 0
    effects = pd.read_csv(tmp_path / "o" / "effects.csv", index_col=0)
    assert effects.loc["channel_1", "spend"] == pytest.approx(3.0 * data["channel_1"].sum())
    assert effects.loc["channel_2", "spend"] == pytest.approx(data["channel_2"].sum())
    assert effects.loc["channel_1", "roi"] == pytest.approx(effects.loc["channel_1", "total"] / effects.loc["channel_1", "spend"])
    # patterns: 'channel_*' also matches channel_1_cost, which --spend takes, so it is skipped
    # and the fit is the one above, bit for bit
    patterned = ["fit", str(path), "--target", "kpi", "--channels", "channel_*", "--date", "date",
                 "--region", "region", "--config", str(cfg), "--weight", "w"]
    assert main([*patterned, "--spend", "channel_1=channel_1_cost", "--out", str(tmp_path / "p")]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "p" / "effects.csv", index_col=0), effects)
    # optimize over plan rows after the fit: channel_1 costs its fitted 3 per unit unless given
    dates = pd.to_datetime(data["date"])
    ahead = data[dates > dates.max() - pd.Timedelta(weeks=8)].assign(
        date=lambda f: pd.to_datetime(f["date"]) + pd.Timedelta(weeks=8), channel_1_cost=lambda f: 5 * f["channel_1"])
    ahead.to_csv(tmp_path / "ahead.csv", index=False)
    model_file = str(tmp_path / "o" / "model.safetensors")
    assert main(["optimize", model_file, "--rows", str(tmp_path / "ahead.csv"), "--plan", "channel_1=1,channel_2=1",
                 "--out", str(tmp_path / "ahead_plan.csv")]) == 0
    scored = pd.read_csv(tmp_path / "ahead_plan.csv", index_col="channel")
    assert scored.loc["channel_1", "spend"] == pytest.approx(3.0 * ahead["channel_1"].sum())
    assert scored.loc["channel_2", "spend"] == pytest.approx(ahead["channel_2"].sum())
    assert "--date not given: using" in capsys.readouterr().err  # found the 'date' column
    rows = ["--rows", str(tmp_path / "ahead.csv"), "--date", "date", "--region", "region"]
    assert main(["optimize", model_file, *rows, "--spend", "channel_1=channel_1_cost",
                 "--out", str(tmp_path / "ahead_plan.csv")]) == 0
    best = pd.read_csv(tmp_path / "ahead_plan.csv", index_col="channel")
    assert best.loc["channel_1", "spend"] == pytest.approx(5.0 * ahead["channel_1"].sum())
    api = DeepCausalMMM.load(model_file).optimize_budget(
        X=ahead[["channel_1", "channel_2"]], regions=ahead["region"], dates=ahead["date"],
        spend=ahead[["channel_1_cost"]].set_axis(["channel_1"], axis=1))
    np.testing.assert_allclose(best["multiplier"], api["multiplier"], rtol=1e-6)
    for bad, named in ((["--regions", "geo_000"], "['--regions'] do not apply"),
                       (["--start", "2023-01-09", "--end", "2023-02-06"], "['--start', '--end'] do not apply")):
        assert main(["optimize", model_file, *rows, *bad, "--out", str(tmp_path / "no.csv")]) == 2
        assert named in capsys.readouterr().err
    assert main(["optimize", model_file, "--date", "date", "--out", str(tmp_path / "no.csv")]) == 2
    assert "['--date'] describe the columns of --rows" in capsys.readouterr().err
    assert not (tmp_path / "no.csv").exists()
    capsys.readouterr()
    assert main([*patterned[:5], "tv_*,channel_1", *patterned[6:], "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert "--channels pattern 'tv_*' matches none of the columns of" in err and "'channel_2'" in err
    assert not (tmp_path / "bad").exists()
    capsys.readouterr()
    assert main([*args, "--spend", "channel_1:channel_1_cost", "--out", str(tmp_path / "bad")]) == 2
    assert "channel=column pairs" in capsys.readouterr().err
    assert main([*args, "--spend", "tv=channel_1_cost", "--out", str(tmp_path / "bad")]) == 2
    assert "not among the channels" in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_fit_cli_writes_bootstrap_intervals_and_plan(tmp_path, capsys, monkeypatch):
    import json

    from .conftest import FAST

    sim = simulate_panel(5, 60, 2, seed=4)
    path = tmp_path / "d.csv"
    sim.data.to_csv(path, index=False)
    cfg = tmp_path / "fast.json"
    cfg.write_text(json.dumps(FAST))
    args = ["fit", str(path), "--target", "kpi", "--channels", "channel_1,channel_2", "--date", "date",
            "--region", "region", "--config", str(cfg)]
    assert main([*args, "--n-boot", "1", "--out", str(tmp_path / "bad")]) == 2
    assert "--n-boot must be 0" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    assert main([*args, "--n-boot", "2", "--prior-spread", "-1", "--out", str(tmp_path / "bad")]) == 2
    assert "--prior-spread must be a finite number >= 0" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()  # refused before fitting
    jobs: list[int | None] = []

    def one_at_a_time(self, n_tasks):  # --jobs reaches the refits (which run here one at a time)
        jobs.append(self.n_jobs)
        return 1

    monkeypatch.setattr(DeepCausalMMM, "_refit_workers", one_at_a_time)
    assert main([*args, "--n-boot", "2", "--out", str(tmp_path / "o"), "--verbose", "--jobs", "3"]) == 0
    assert jobs == [3]  # one set of refits, shared by the intervals, the plan and the KPI change
    printed = capsys.readouterr().out
    assert "panel: 5 regions x 60 weeks x 2 channels" in printed  # -v: the fit's progress, and each refit's
    assert printed.count("bootstrap refit 1/2: ") == 1 and printed.count("bootstrap refit 2/2: ") == 1
    # the KPI change, the effects over time, the response curves and the plan
    assert printed.count("reusing the 2 bootstrap refits of this shared_refits() block") == 4
    change = pd.read_csv(tmp_path / "o" / "kpi_change.csv", index_col="part")
    assert (change["change_pct_lo"] <= change["change_pct_hi"]).all()
    intervals = pd.read_csv(tmp_path / "o" / "effect_intervals.csv", index_col=0)
    assert list(intervals.index) == ["channel_1", "channel_2"]
    assert (intervals["total_share_lo"] <= intervals["total_share_hi"]).all()
    over = pd.read_csv(tmp_path / "o" / "effects_over_time.csv", index_col=["period", "channel"])
    assert (over["roi_lo"] <= over["roi_hi"]).all() and (over["marginal_roi_lo"] <= over["marginal_roi_hi"]).all()
    curves = pd.read_csv(tmp_path / "o" / "response_curves.csv")  # the report's curves, with their bands
    assert (curves["response_lo"] <= curves["response_hi"] + 1e-9).all()
    plan = pd.read_csv(tmp_path / "o" / "budget_plan.csv", index_col=0)
    assert plan["optimal_spend"].sum() == pytest.approx(plan["spend"].sum(), rel=1e-6)
    assert plan["n_boot"].eq(2).all() and plan["gain_share_positive"].between(0, 1).all()
    assert plan["prior_spread"].eq(1.4).all()  # the package default, written beside the figures


def test_predict_cli_forecasts_with_a_saved_model(tmp_path, capsys):
    """``fit`` on the first 50 weeks, then ``predict`` with its model file on all 60: the rows
    match the API's decomposition of the same rows (replayed weeks and forecast weeks alike)."""
    import json

    from .conftest import FAST

    sim = simulate_panel(4, 60, 2, seed=5)
    data = sim.data
    weeks = sorted(data["date"].unique())
    train = data[data["date"] < weeks[50]]
    (tmp_path / "fast.json").write_text(json.dumps(FAST))
    train.to_csv(tmp_path / "train.csv", index=False)
    data.to_csv(tmp_path / "all.csv", index=False)
    assert main(["fit", str(tmp_path / "train.csv"), "--target", "kpi", "--channels",
                 "channel_1,channel_2", "--controls", "price,promo", "--date", "date", "--region",
                 "region", "--config", str(tmp_path / "fast.json"), "--out", str(tmp_path / "o")]) == 0
    model_file = str(tmp_path / "o" / "model.safetensors")
    out = tmp_path / "p" / "pred.csv"
    assert main(["predict", model_file, str(tmp_path / "all.csv"), "--date", "date", "--region",
                 "region", "--out", str(out)]) == 0
    got = pd.read_csv(out)
    assert len(got) == len(data)
    model = DeepCausalMMM.load(model_file)
    again = pd.read_csv(tmp_path / "all.csv")
    want = model.get_channel_contributions(again[["channel_1", "channel_2"]],
                                           regions=again["region"].to_numpy(),
                                           dates=again["date"].to_numpy(),
                                           controls=again[["price", "promo"]])
    np.testing.assert_allclose(got["prediction"].to_numpy(), want["prediction"].to_numpy(), rtol=1e-9)
    # forecast weeks carry over from the fitted history: beyond week 50 they are not a refit
    late = pd.to_datetime(got["date"]) >= pd.Timestamp(weeks[50])
    assert late.sum() == 4 * 10 and np.isfinite(got.loc[late, "prediction"]).all()
    # 90% forecast intervals by default, as predict_interval gives them
    band = model.predict_interval(again[["channel_1", "channel_2"]], regions=again["region"].to_numpy(),
                                  dates=again["date"].to_numpy(), controls=again[["price", "promo"]])
    np.testing.assert_allclose(got[["lower", "upper"]].to_numpy(), band[["lower", "upper"]].to_numpy(),
                               rtol=1e-9)
    np.testing.assert_array_equal(got["horizon"], band["horizon"])
    assert (got.loc[late, "horizon"] > 0).all() and (got.loc[~late, "horizon"] == 0).all()
    assert "90% intervals in lower/upper" in capsys.readouterr().out
    assert main(["predict", model_file, str(tmp_path / "all.csv"), "--date", "date", "--region",
                 "region", "--level", "1.5", "--out", str(tmp_path / "lv.csv")]) == 2
    assert "--level must be" in capsys.readouterr().err and not (tmp_path / "lv.csv").exists()
    # errors: a missing channel column, no --date, a file that is not a model
    again.drop(columns=["channel_2"]).to_csv(tmp_path / "bad.csv", index=False)
    assert main(["predict", model_file, str(tmp_path / "bad.csv"), "--date", "date", "--region",
                 "region", "--out", str(tmp_path / "x.csv")]) == 2
    assert "channel_2" in capsys.readouterr().err and not (tmp_path / "x.csv").exists()
    again.assign(channel_1=-1.0).to_csv(tmp_path / "bad.csv", index=False)
    assert main(["predict", model_file, str(tmp_path / "bad.csv"), "--date", "date", "--region",
                 "region", "--out", str(tmp_path / "x.csv")]) == 2
    assert f"{tmp_path / 'bad.csv'} column 'channel_1' has" in capsys.readouterr().err  # the file's column
    # without --date the file's 'date' column is used (and said so); a file without one is an error
    assert main(["predict", model_file, str(tmp_path / "all.csv"), "--out", str(tmp_path / "auto.csv")]) == 0
    err = capsys.readouterr().err
    assert "--date not given: using" in err and "column 'date'" in err and "column 'region'" in err
    np.testing.assert_allclose(pd.read_csv(tmp_path / "auto.csv")["prediction"], got["prediction"], rtol=1e-9)
    again.rename(columns={"date": "period"}).to_csv(tmp_path / "week.csv", index=False)
    assert main(["predict", model_file, str(tmp_path / "week.csv"), "--region", "region",
                 "--out", str(tmp_path / "x.csv")]) == 2
    assert "--date" in capsys.readouterr().err and not (tmp_path / "x.csv").exists()
    assert main(["predict", str(tmp_path / "all.csv"), str(tmp_path / "all.csv"), "--date", "date",
                 "--out", str(tmp_path / "x.csv")]) == 2
    assert "model file" in capsys.readouterr().err and not (tmp_path / "x.csv").exists()


def test_fit_cli_finds_date_and_region_columns(tmp_path, capsys):
    """Without --date/--region, a regional file's 'date' and 'region' columns are used (rather than
    reading every row as one national series in file order), and stderr says so; a file without
    them is one national series, also said."""
    import json

    from .conftest import FAST

    sim = simulate_panel(3, 30, 2, seed=8)
    data = sim.data.rename(columns={"date": "Week", "region": "geo"})  # any case; week, geo
    data.to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "fast.json").write_text(json.dumps(FAST))
    base = ["fit", str(tmp_path / "d.csv"), "--target", "kpi", "--channels", "channel_1,channel_2",
            "--config", str(tmp_path / "fast.json")]
    assert main([*base, "--out", str(tmp_path / "auto")]) == 0
    err = capsys.readouterr().err
    assert "using" in err and "column 'Week'" in err and "column 'geo'" in err
    assert main([*base, "--date", "Week", "--region", "geo", "--out", str(tmp_path / "named")]) == 0
    auto = DeepCausalMMM.load(tmp_path / "auto" / "model.safetensors")
    named = DeepCausalMMM.load(tmp_path / "named" / "model.safetensors")
    assert auto.panel_.regions == named.panel_.regions == sorted(sim.data["region"].unique())
    assert len(auto.panel_.dates) == 30
    pd.testing.assert_frame_equal(auto.get_channel_effects(), named.get_channel_effects())
    capsys.readouterr()
    national = sim.data[sim.data["region"] == sim.data["region"].iloc[0]].drop(columns=["region", "date"])
    national.to_csv(tmp_path / "n.csv", index=False)
    assert main(["fit", str(tmp_path / "n.csv"), "--target", "kpi", "--channels", "channel_1,channel_2",
                 "--config", str(tmp_path / "fast.json"), "--out", str(tmp_path / "nat")]) == 0
    err = capsys.readouterr().err
    assert "no 'date' or 'week' column: rows are read as consecutive weeks" in err
    assert "one national series" in err


def test_backtest_cli_matches_the_api(tmp_path, capsys, monkeypatch):
    import json

    from .conftest import FAST

    sim = simulate_panel(4, 60, 2, seed=6)
    sim.data.to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "fast.json").write_text(json.dumps(FAST))
    out = tmp_path / "bt.csv"
    # --jobs reaches the model's n_jobs (worker processes themselves: test_uncertainty.py; here the
    # refits run one at a time, as the API's below)
    jobs: list[int | None] = []

    def one_at_a_time(self, n_tasks):
        jobs.append(self.n_jobs)
        return 1

    monkeypatch.setattr(DeepCausalMMM, "_refit_workers", one_at_a_time)
    assert main(["backtest", str(tmp_path / "d.csv"), "--target", "kpi", "--channels",
                 "channel_1,channel_2", "--date", "date", "--region", "region", "--config",
                 str(tmp_path / "fast.json"), "--n-splits", "2", "--horizon", "8", "--out", str(out), "-v",
                 "--jobs", "2"]) == 0
    assert jobs == [2]
    printed = capsys.readouterr().out
    assert "naive last-value forecast at" in printed
    got = pd.read_csv(out)
    # -v: one line per cutoff with its figures (the refits' own epochs not printed)
    lines = [line for line in printed.splitlines() if line.startswith("backtest cutoff")]
    assert len(lines) == 2 and "Adam epoch" not in printed
    assert lines[0].startswith(f"backtest cutoff 1/2 ({got['train_weeks'][0]} training weeks, to ")
    assert f"holdout WAPE {got['wape_pct'][0]:.2f}% (naive last value {got['naive_wape_pct'][0]:.2f}%)" in lines[0]
    want = DeepCausalMMM(config=FAST).backtest(
        sim.data[["channel_1", "channel_2"]], sim.data["kpi"].to_numpy(),
        regions=sim.data["region"].to_numpy(), dates=sim.data["date"].to_numpy(), n_splits=2, horizon=8)
    assert len(got) == 2 and got["cutoff"].is_monotonic_increasing
    np.testing.assert_allclose(got["wape_pct"], want["wape_pct"], rtol=1e-9)
    np.testing.assert_allclose(got["naive_wape_pct"], want["naive_wape_pct"], rtol=1e-9)
    np.testing.assert_allclose(got["coverage_pct"], want["coverage_pct"], rtol=1e-9)
    assert main(["backtest", str(tmp_path / "d.csv"), "--target", "sales", "--channels", "channel_1",
                 "--out", str(tmp_path / "x.csv")]) == 2
    assert "sales" in capsys.readouterr().err and not (tmp_path / "x.csv").exists()
    base = ["backtest", str(tmp_path / "d.csv"), "--target", "kpi", "--channels", "channel_1",
            "--out", str(tmp_path / "y.csv")]
    for flags, named in ((["--n-splits", "0"], "--n-splits"), (["--horizon", "-2"], "--horizon"),
                         (["--level", "90"], "--level")):
        assert main([*base, *flags]) == 2
        err = capsys.readouterr().err
        assert f"{named} must be" in err and "found" in err and "e.g." in err
    for jobs in ("0", "two"):
        with pytest.raises(SystemExit) as exit_info:
            main([*base, "--jobs", jobs])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert "--jobs" in err and f"found '{jobs}'" in err and "e.g. --jobs -1" in err
    assert not (tmp_path / "y.csv").exists()
    for command in (["predict", str(tmp_path / "m.safetensors"), str(tmp_path / "d.csv")],
                    ["optimize", str(tmp_path / "m.safetensors")]):
        assert main([*command, "--level", "90"]) == 2  # checked before the model file is read
        assert "--level must be" in capsys.readouterr().err


def test_command_line_help_and_package_import_do_not_load_torch():
    """torch and scikit-learn take seconds to import; `deepcausalmmm --help`, `config` and
    argument errors do not wait for them (the names of the package load on first use)."""
    import subprocess
    import sys

    probe = ("import sys, deepcausalmmm, deepcausalmmm.cli; "
             "print(sorted(m for m in ('torch', 'sklearn', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    import sklearn.exceptions

    import deepcausalmmm

    assert deepcausalmmm.NotFittedError is sklearn.exceptions.NotFittedError
    assert deepcausalmmm.DeepCausalMMM is DeepCausalMMM
    assert {"DeepCausalMMM", "build_config", "DataError"} <= set(dir(deepcausalmmm))
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        deepcausalmmm.Nope  # noqa: B018


def test_predict_cli_scores_rows_with_a_kpi_as_backtest_does(tmp_path, capsys):
    """`predict --target`: the rows' KPI written as `actual` and scored; a model fitted on the
    weeks before a cutoff scores its forecast rows as `backtest` scores that cutoff, beside the
    same naive last-value forecast."""
    import json

    from .conftest import FAST

    sim = simulate_panel(4, 60, 2, seed=6)
    data = sim.data
    dates = np.sort(data["date"].unique())
    cut = 48
    early, late = data[data["date"] < dates[cut]], data[data["date"] >= dates[cut]]
    (tmp_path / "fast.json").write_text(json.dumps(FAST))
    early.to_csv(tmp_path / "early.csv", index=False)
    late.to_csv(tmp_path / "late.csv", index=False)
    flags = ["--target", "kpi", "--channels", "channel_*", "--controls", "price,promo", "--date", "date",
             "--region", "region", "--config", str(tmp_path / "fast.json")]
    assert main(["fit", str(tmp_path / "early.csv"), *flags, "--out", str(tmp_path / "o")]) == 0
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "o" / "model.safetensors"), str(tmp_path / "late.csv"), "--target",
                 "kpi", "--out", str(tmp_path / "p.csv")]) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    written = pd.read_csv(tmp_path / "p.csv")
    np.testing.assert_array_equal(written["actual"], late["kpi"].to_numpy())
    want = DeepCausalMMM(config=FAST).backtest(data[["channel_1", "channel_2"]], data["kpi"].to_numpy(),
                                               data["region"].to_numpy(), data["date"].to_numpy(),
                                               data[["price", "promo"]], n_splits=1, horizon=60 - cut).iloc[0]
    assert want["train_weeks"] == cut
    figures = [float(x) for x in re.findall(r"(-?\d+\.\d+)%", line)]  # WAPE, WAPE, naive, MAPE, naive MAPE
    assert line.startswith(f"against --target 'kpi' in {len(late)} row(s): WAPE ")
    np.testing.assert_allclose(figures[1:], [want["wape_pct"], want["naive_wape_pct"], want["national_mape_pct"],
                                             want["naive_national_mape_pct"]], atol=0.006)
    # a --target column that is not there, or holds no numbers, is an error before anything is written
    for target, message in (("sales", "lacks the --target column(s) ['sales']"),
                            ("region", "--target column 'region' of")):
        assert main(["predict", str(tmp_path / "o" / "model.safetensors"), str(tmp_path / "late.csv"),
                     "--target", target, "--out", str(tmp_path / "x.csv")]) == 2
        assert message in capsys.readouterr().err and not (tmp_path / "x.csv").exists()
