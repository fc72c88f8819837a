"""Effects of groups of channels switched off together (``get_group_effects``): one channel is
its own row of get_channel_effects, all media are the sum of the contributions, and a parent
with its child counts the mediated part once, against known answers from the fit itself."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from deepcausalmmm import DataError, DeepCausalMMM, NotFittedError
from deepcausalmmm.cli import main


def test_groups_against_known_answers(mediated):
    effects = mediated.get_channel_effects()
    contributions = mediated.get_channel_contributions()[mediated.channels_].sum()
    table = mediated.get_group_effects({"tv": "channel_1", "pair": ["channel_1", "channel_2"],
                                        "apart": ["channel_2", "channel_3"], "media": mediated.channels_})
    assert list(table.columns) == ["channels", "total", "direct", "mediated", "sum_of_totals", "overlap",
                                   "media_share", "spend", "roi"]
    assert list(table.index) == ["tv", "pair", "apart", "media"] and table.index.name == "group"
    assert table.loc["pair", "channels"] == "channel_1, channel_2"
    # one channel: its own effects
    for column in ("total", "direct", "mediated", "spend", "roi"):
        assert table.loc["tv", column] == pytest.approx(effects.loc["channel_1", column], rel=1e-9)
    assert abs(table.loc["tv", "overlap"]) < 1e-6
    mediated_part = effects.loc["channel_1", "mediated"]
    assert mediated_part > 0.05 * effects.loc["channel_1", "total"]  # the edge carries a real part
    # a parent with its child: both contributions, the mediated part once; adding their totals
    # counts it twice
    pair = table.loc["pair"]
    assert pair["total"] == pytest.approx(contributions["channel_1"] + contributions["channel_2"], rel=1e-9)
    assert abs(pair["mediated"]) < 1e-6 * pair["total"]
    assert pair["overlap"] == pytest.approx(mediated_part, rel=1e-9)
    # no edge between the members: the totals add up
    apart = table.loc["apart"]
    assert apart["total"] == pytest.approx(effects.loc[["channel_2", "channel_3"], "total"].sum(), rel=1e-9)
    assert abs(apart["overlap"]) < 1e-6 * apart["total"]
    # every channel off: all that media contributed, which the channel totals overstate by the mediated part
    media = table.loc["media"]
    assert media["total"] == pytest.approx(contributions.sum(), rel=1e-9)
    assert media["overlap"] == pytest.approx(mediated_part, rel=1e-9)
    assert media["roi"] == pytest.approx(media["total"] / effects["spend"].sum(), rel=1e-9)
    # shares of what all media caused: media itself 1, a group its total over media's
    assert media["media_share"] == pytest.approx(1.0, rel=1e-12)
    assert pair["media_share"] == pytest.approx(pair["total"] / media["total"], rel=1e-12)


def test_groups_by_region_and_period_add_up(mediated):
    groups = {"pair": ["channel_1", "channel_2"]}
    whole = mediated.get_group_effects(groups)
    by_region = mediated.get_group_effects(groups, by_region=True)
    assert by_region.index.names == ["region", "group"] and len(by_region) == len(mediated.regions_)
    np.testing.assert_allclose(by_region[["total", "direct", "spend"]].sum().to_numpy(),
                               whole[["total", "direct", "spend"]].sum().to_numpy(), rtol=1e-9)
    halves = [mediated.get_group_effects(groups, period=p) for p in ("2023", "2024")]
    np.testing.assert_allclose(halves[0]["total"] + halves[1]["total"], whole["total"], rtol=1e-9)
    one = mediated.get_group_effects(groups, regions=mediated.regions_[:2])
    np.testing.assert_allclose(one["total"].sum(), by_region.loc[mediated.regions_[:2], "total"].sum(), rtol=1e-9)


def test_group_errors(mediated):
    with pytest.raises(NotFittedError):
        DeepCausalMMM().get_group_effects({"a": ["tv"]})
    for groups, message in (
        ({}, r"`groups` must be a non-empty dict \{name: \[channel, ...\]\}, found \{\}"),
        (["channel_1"], r"`groups` must be a non-empty dict"),
        ({"digital": []}, r"`groups\['digital'\]` must be a channel name or a non-empty list of them"),
        ({"digital": [1, 2]}, r"`groups\['digital'\]` must be a channel name or a non-empty list"),
        ({"digital": ["channel_1", "radio"]}, r"`groups\['digital'\]` names \['radio'\], which are not fitted"),
    ):
        with pytest.raises(DataError, match=message):
            mediated.get_group_effects(groups)
    with pytest.raises(DataError, match=r"`regions` \['x'\] were not in the fitted data"):
        mediated.get_group_effects({"a": "channel_1"}, regions=["x"])


def test_effects_command_with_groups(mediated, tmp_path, capsys):
    model_file = str(mediated.save(tmp_path / "m.safetensors"))
    out = tmp_path / "groups.csv"
    assert main(["effects", model_file, "--group", "pair=channel_1,channel_2", "--group", "apart=channel_3",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    table = pd.read_csv(out, index_col="group")
    api = mediated.get_group_effects({"pair": ["channel_1", "channel_2"], "apart": ["channel_3"]})
    np.testing.assert_allclose(table["total"], api["total"], rtol=1e-9)
    assert "overlap: what adding the members' own totals counts twice" in printed
    assert main(["effects", model_file, "--group", "tv=channel_1", "--n-boot", "2", "--out", str(out)]) == 0
    boot = pd.read_csv(out, index_col="group")
    api = mediated.get_group_effects({"tv": ["channel_1"]}, n_boot=2)
    assert boot.loc["tv", "roi_lo"] == pytest.approx(api.loc["tv", "roi_lo"], rel=1e-9)
    assert main(["effects", model_file, "--group", "media=channel_*", "--out", str(out)]) == 0  # a pattern
    media = pd.read_csv(out, index_col="group").loc["media"]
    assert media["channels"] == "channel_1, channel_2, channel_3"
    assert media["total"] == pytest.approx(mediated.get_group_effects({"m": mediated.channels_})["total"].iloc[0],
                                           rel=1e-9)
    for args, message in ((["--group", "pair"], "--group takes NAME=CHANNEL,CHANNEL"),
                          (["--group", "a=radio"], "--group 'a' names ['radio'], which are not fitted"),
                          (["--group", "a=tv_*"], "--group a pattern 'tv_*' matches none of the model's channels"),
                          (["--group", "a=channel_1", "--by", "Q"], "['--by'] do not apply"),
                          (["--group", "a=channel_1", "--n-boot", "2", "--by-region"], "['--by-region'] do not apply")):
        assert main(["effects", model_file, *args, "--out", str(tmp_path / "bad.csv")]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "bad.csv").exists()


def test_report_says_what_all_channels_caused_together(mediated, tmp_path):
    """With an edge the channels' totals overstate what all media caused; the report says by how much."""
    media = mediated.get_group_effects({"media": mediated.channels_}).iloc[0]
    effects = mediated.get_channel_effects()  # the report reads the group of all channels off these
    assert media["total"] == pytest.approx(effects["direct"].sum(), rel=1e-12)
    assert media["sum_of_totals"] == pytest.approx(effects["total"].sum(), rel=1e-12)
    text = mediated.save_report(tmp_path / "r.html").read_text(encoding="utf-8")
    total, added = effects["direct"].sum(), effects["total"].sum()
    assert f"All channels switched off together lose {total:,.0f} of the KPI" in text
    assert f"the channels' totals add up to {added:,.0f}, counting {added - total:,.0f} twice" in text


def test_group_intervals_from_shared_refits(mediated, refit_count):
    """A group of one channel has get_effect_intervals' ROI intervals (the same refits, the
    same reading); all media's share is 1 in every refit."""
    with mediated.shared_refits():
        intervals = mediated.get_effect_intervals(n_boot=2)
        table = mediated.get_group_effects({"tv": "channel_1", "media": mediated.channels_}, n_boot=2)
    assert len(refit_count) == 2
    for column in ("roi_lo", "roi_hi", "roi_sd"):
        assert table.loc["tv", column] == pytest.approx(intervals.loc["channel_1", column], rel=1e-9)
    assert table.loc["media", "media_share_lo"] == pytest.approx(1.0) == table.loc["media", "media_share_hi"]
    assert table.attrs["n_boot"] == 2 and table.attrs["level"] == 0.9
    for kwargs, message in (({"n_boot": 1}, r"`n_boot` must be 0"),
                            ({"n_boot": 2, "by_region": True}, r"`n_boot` cannot be combined with `by_region`: bootstrap replicates redraw"),
                            ({"n_boot": 2, "level": 0.0}, r"`level`")):
        with pytest.raises(DataError, match=message):
            mediated.get_group_effects({"tv": "channel_1"}, **kwargs)
    assert len(refit_count) == 2
