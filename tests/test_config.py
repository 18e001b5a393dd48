"""``sonic.config``: the committed params load, defaults round-trip, and every bad key or value is
a :class:`ConfigError` that names the key's dotted path."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from sonic.config import (
    ConfigError,
    FeatureConfig,
    Params,
    RangeAug,
    load_params,
    parse_params,
    to_dict,
)

REPO = Path(__file__).resolve().parents[1]


def test_committed_params_load_and_round_trip() -> None:
    """Only types are checked here: the values are the project's to tune."""
    params = load_params(REPO / "params.yaml")
    assert isinstance(params.augment.noise, RangeAug)
    assert isinstance(params.cnn.widths, tuple) and isinstance(params.demo.classes, tuple)
    assert isinstance(params.features.top_db, float)
    assert parse_params(to_dict(params)) == params


def test_defaults_round_trip_through_yaml(tmp_path: Path) -> None:
    assert parse_params(to_dict(Params())) == Params()
    assert parse_params(None) == parse_params({}) == Params()
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(to_dict(Params())))
    assert load_params(path) == Params()


def test_missing_keys_keep_defaults_and_configs_are_frozen() -> None:
    params = parse_params({"features": {"n_mels": 64}})
    assert params.features == dataclasses.replace(FeatureConfig(), n_mels=64)
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.features.n_mels = 32  # type: ignore[misc]


@pytest.mark.parametrize("raw, key", [
    ({"bogus": 1}, "bogus"),
    ({"train": {"lrr": 0.1}}, "train.lrr"),
    ({"augment": {"noise": {"bogus": 1}}}, "augment.noise.bogus"),
])
def test_unknown_key_is_named(raw: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=rf"unknown key {key}\b"):
        parse_params(raw)


@pytest.mark.parametrize("raw, key", [
    ({"train": {"lr": "fast"}}, "train.lr"),
    ({"features": {"n_mels": 12.5}}, "features.n_mels"),
    ({"features": {"n_mels": True}}, "features.n_mels"),  # bool is not an int here
    ({"features": {"n_mels": None}}, "features.n_mels"),
    ({"train": {"lr": True}}, "train.lr"),
    ({"train": {"channels_last": "yes"}}, "train.channels_last"),
    ({"features": {"f_max": "high"}}, "features.f_max"),
    ({"cnn": {"widths": [64, "wide"]}}, r"cnn.widths\[1\]"),
    ({"cnn": {"widths": 64}}, "cnn.widths"),
    ({"cnn": {"pool": [4]}}, "cnn.pool"),
    ({"augment": {"noise": 3}}, "augment.noise"),
    ({"train": [1, 2]}, "train"),
])
def test_wrong_type_is_named(raw: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{key}: expected"):
        parse_params(raw)


def test_literal_violation_names_allowed_values() -> None:
    with pytest.raises(ConfigError) as err:
        parse_params({"data": {"layout": "zip"}})
    message = str(err.value)
    assert message.startswith("data.layout:")
    assert all(repr(v) in message for v in ("demo", "folder", "esc50"))
    assert "'zip'" in message


def test_ints_accepted_for_floats_and_lists_become_tuples() -> None:
    params = parse_params({
        "train": {"lr": 1, "grad_clip": 0},
        "features": {"f_max": 8000},
        "cnn": {"widths": [8, 16], "pool": [2, 3]},
        "demo": {"classes": ["a", "b"]},
    })
    assert params.train.lr == 1.0 and type(params.train.lr) is float
    assert type(params.train.grad_clip) is float
    assert params.features.f_max == 8000.0 and type(params.features.f_max) is float
    assert params.cnn.widths == (8, 16) and params.cnn.pool == (2, 3)
    assert params.demo.classes == ("a", "b")


def test_load_params_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "nope.yaml")
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(bad_yaml)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping of sections"):
        load_params(listing)
    typo = tmp_path / "typo.yaml"
    typo.write_text("augment:\n  noise: {p: 0.5, bogus: 1}\n")
    with pytest.raises(ConfigError, match=re.escape(f"{typo}: unknown key augment.noise.bogus")):
        load_params(typo)


def test_feature_sizes() -> None:
    cfg = FeatureConfig()  # 2.5 s at 22050 Hz, hop 512, centred frames
    assert cfg.n_samples == 55125
    assert cfg.n_frames == 55125 // 512 + 1 == 108


def test_exponent_floats_written_without_a_dot_are_floats():
    # PyYAML (YAML 1.1) reads `lr: 5e-4` as a string; DVC and YAML 1.2 read it as a float
    raw = yaml.safe_load("train:\n  lr: 5e-4\n  weight_decay: 1E-2\n")
    params = parse_params(raw)
    assert params.train.lr == 5e-4 and params.train.weight_decay == 1e-2


def test_params_yaml_holds_exactly_the_defaults() -> None:
    """One truth for defaults: a key left out of a params file means what params.yaml says."""
    assert load_params(REPO / "params.yaml") == Params()


@pytest.mark.parametrize("raw, message", [
    ({"train": {"patience": 0}}, "train.patience: must be ≥ 1, got 0"),
    ({"train": {"mixup_prob": 1.5}}, "train.mixup_prob: must be ≤ 1.0, got 1.5"),
    ({"train": {"lr": 0.0}}, "train.lr: must be > 0.0, got 0.0"),
    ({"split": {"val_size": 1.0}}, "split.val_size: must be < 1.0"),
    ({"cnn": {"widths": [64, 0]}}, "cnn.widths: must be ≥ 1, got (64, 0)"),
    ({"augment": {"noise": {"p": 0.5, "low": 30.0, "high": 10.0}}},
     "augment.noise.high: must be ≥ low (30.0), got 10.0"),
    ({"augment": {"time_shift": {"p": -0.1}}}, "augment.time_shift.p: must be ≥ 0.0"),
    ({"features": {"f_max": 20000.0}}, "features.f_max: must be above f_min (0.0) and at most "
                                       "half the sample rate (11025)"),
    ({"features": {"hop_length": 2048}}, "features.hop_length: must be ≤ n_fft (1024)"),
    ({"cgan": {"audio_samples": 5}}, "cgan.audio_samples: must be ≤ 4, got 5"),
])
def test_out_of_range_values_name_the_key(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_params(raw)
    assert message in str(err.value)
