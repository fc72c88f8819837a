import json

import pytest
from pydantic import ValidationError

from deepcausalmmm import ConfigError, MMMConfig, build_config


def test_defaults_are_valid_and_frozen():
    cfg = build_config()
    assert isinstance(cfg, MMMConfig)
    assert cfg.loss in ("mse", "huber")
    with pytest.raises(ValidationError, match="frozen"):
        cfg.loss = "mse"  # type: ignore[misc]


def test_seed_keys_merge():
    cfg = build_config(None, {"loss": "huber", "regularization": {"l1": 1e-4, "l2": 1e-3}})
    assert cfg.loss == "huber"
    assert cfg.regularization.l1 == 1e-4 and cfg.regularization.l2 == 1e-3
    # untouched siblings keep their defaults
    assert cfg.regularization.smoothness == MMMConfig().regularization.smoothness


def test_merge_order_file_then_overrides_then_kwargs(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("training:\n  epochs: 50\n  learning_rate: 0.01\nloss: mse\n")
    cfg = build_config(path, {"training": {"epochs": 70}}, training__learning_rate=0.02)
    assert cfg.loss == "mse"
    assert cfg.training.epochs == 70
    assert cfg.training.learning_rate == 0.02
    jpath = tmp_path / "c.json"
    jpath.write_text(json.dumps({"huber_delta": 0.2}))
    assert build_config(jpath).huber_delta == 0.2


def test_unknown_key_names_path_and_allowed_keys():
    with pytest.raises(ConfigError, match=r"unknown config key 'regularization\.l3'.*allowed keys here: .*l1, l2"):
        build_config(None, {"regularization": {"l3": 1.0}})
    with pytest.raises(ConfigError, match=r"unknown config key 'lossy'"):
        build_config(None, {"lossy": "mse"})


def test_out_of_range_and_bad_choice():
    with pytest.raises(ConfigError, match=r"config key 'regularization\.l1'.*greater than or equal to 0"):
        build_config(None, {"regularization": {"l1": -1}})
    with pytest.raises(ConfigError, match=r"'regularization\.carryover_pooling'.*greater than or equal to 0"):
        build_config(None, {"regularization": {"carryover_pooling": -1e-6}})
    with pytest.raises(ConfigError, match=r"'regularization\.coefficient_prior'.*'ceiling' or 'marginal'"):
        build_config(None, {"regularization": {"coefficient_prior": "level"}})
    with pytest.raises(ConfigError, match=r"'calibration\.tested_prior'.*less than or equal to 1"):
        build_config(None, {"calibration": {"tested_prior": 1.5}})
    with pytest.raises(ConfigError, match=r"config key 'loss'.*'mse' or 'huber'"):
        build_config(None, {"loss": "mae"})
    with pytest.raises(ConfigError, match=r"gate_min .* must be < carryover.gate_max"):
        build_config(None, {"carryover": {"gate_min": 0.9, "gate_max": 0.5}})
    with pytest.raises(ConfigError, match=r"half_sat_min must be < saturation.half_sat_max, found 6.0 and 5.0; e.g."):
        build_config(None, {"saturation": {"half_sat_min": 6.0}})
    with pytest.raises(ConfigError, match=r"slope_min must be < saturation.slope_max, found 2.0 and 1.5; e.g."):
        build_config(None, {"saturation": {"slope_min": 2.0, "slope_max": 1.5}})


def test_bad_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        build_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        build_config(bad)


def test_round_trip_through_dict():
    cfg = build_config(None, {"training": {"epochs": 12}})
    assert build_config(cfg.to_dict()) == cfg


def test_huber_delta_auto_or_positive():
    assert build_config(None).huber_delta == "auto"
    assert build_config(None, {"huber_delta": 0.03}).huber_delta == 0.03
    for bad in (0, -0.1, "median"):
        with pytest.raises(ConfigError, match="huber_delta"):
            build_config(None, {"huber_delta": bad})


def test_a_value_and_a_key_inside_it_conflict():
    with pytest.raises(ConfigError, match=r"'training.epochs' sets a value inside 'training', which another key "
                                          r"of the same call sets to a value \(5\)"):
        build_config(None, None, **{"training": 5, "training.epochs": 3})


def test_config_command_writes_the_defaults_to_edit(tmp_path, capsys):
    from deepcausalmmm.cli import main

    for name in ("c.yaml", "c.json"):
        assert main(["config", "--out", str(tmp_path / name)]) == 0
        assert build_config(tmp_path / name) == MMMConfig()  # the defaults, reread as they were written
    # merged over a file of one's own
    (tmp_path / "mine.json").write_text(json.dumps({"training": {"epochs": 300}}))
    assert main(["config", "--config", str(tmp_path / "mine.json"), "--out", str(tmp_path / "m.yaml")]) == 0
    assert build_config(tmp_path / "m.yaml").training.epochs == 300
    assert main(["config", "--out", str(tmp_path / "c.txt")]) == 2
    assert "--out must end in .yaml, .yml or .json" in capsys.readouterr().err
    assert not (tmp_path / "c.txt").exists()
