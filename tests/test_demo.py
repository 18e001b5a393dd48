"""The demo data set generator: layout, answers, determinism, formats, and no trivial cues."""
from __future__ import annotations

import csv
import dataclasses
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml
from scipy import signal

from sonic.audio.demo import (
    DURATION_RANGE,
    PEAK_CEILING,
    SYNTHS,
    Nuisance,
    INTERNAL_SR,
    _events,
    active_power,
    draw_nuisance,
    generate_demo,
    render_clip,
)
from sonic.config import ConfigError, DemoConfig, SplitConfig, load_params

CONFUSABLE = (("drilling", "jackhammer"), ("siren", "car_horn"), ("engine_idling", "street_music"))

ALL = DemoConfig(seed=3, classes=tuple(SYNTHS), train_per_class=6, test_per_class=2)


@pytest.fixture(scope="module")
def demo_set(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """Every class, 6 train + 2 test clips each (64 files), generated once for this module."""
    root = tmp_path_factory.mktemp("demo") / "data"
    return root, generate_demo(root, ALL)


def _answers(root: Path) -> list[dict[str, str]]:
    with open(root / "test_labels.csv", newline="") as f:
        return list(csv.DictReader(f))


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_layout_counts_and_summary(demo_set):
    root, summary = demo_set
    assert sorted(p.name for p in root.iterdir()) == ["test", "test_labels.csv", "train"]
    assert sorted(p.name for p in (root / "train").iterdir()) == sorted(ALL.classes)
    for c in ALL.classes:
        assert len(list((root / "train" / c).glob("*.wav"))) == ALL.train_per_class
    assert len(list((root / "test").glob("*.wav"))) == ALL.test_per_class * len(ALL.classes)
    assert summary["train"] == dict.fromkeys(ALL.classes, ALL.train_per_class)
    assert summary["test"] == dict.fromkeys(ALL.classes, ALL.test_per_class)
    assert summary["files"] == sum(summary["subtypes"].values()) == 64
    assert not list(root.parent.glob(".data.*")), "temporary trees left behind"


def test_answers_match_test_files_and_hide_the_class(demo_set):
    root, _ = demo_set
    with open(root / "test_labels.csv") as f:
        assert f.readline() == "filename,label\n"
    rows = _answers(root)
    names = [r["filename"] for r in rows]
    assert sorted(names) == sorted(p.name for p in (root / "test").iterdir())
    assert Counter(r["label"] for r in rows) == dict.fromkeys(ALL.classes, ALL.test_per_class)
    assert all(re.fullmatch(r"clip_\d{4}\.wav", n) for n in names)
    labels = [r["label"] for r in sorted(rows, key=lambda r: r["filename"])]
    assert labels != sorted(labels), "test clips are not shuffled: their order tells the class"


def test_formats_vary_like_real_data(demo_set):
    root, _ = demo_set
    infos = [sf.info(p) for p in root.rglob("*.wav")]
    assert len({i.samplerate for i in infos}) >= 3
    assert {i.channels for i in infos} == {1, 2}
    assert {i.subtype for i in infos} == {"PCM_16", "FLOAT"}
    for info in infos:
        assert DURATION_RANGE[0] - 0.01 <= info.duration <= DURATION_RANGE[1] + 0.01


def test_formats_and_durations_are_identical_across_classes(demo_set):
    """Each class gets the same multiset of (rate, channels, subtype, length): none is a cue."""
    root, _ = demo_set
    formats = {}
    for c in ALL.classes:
        infos = map(sf.info, (root / "train" / c).glob("*.wav"))
        formats[c] = sorted((i.samplerate, i.channels, i.subtype, i.frames) for i in infos)
    assert all(f == formats[ALL.classes[0]] for f in formats.values())


def test_levels_do_not_tell_the_class(demo_set):
    """Active level is normalised per clip; whole-file RMS and peak differ only by crest factor."""
    root, _ = demo_set
    active, rms, peak = {}, {}, {}
    for c in ALL.classes:
        audio = [sf.read(p, always_2d=True) for p in sorted((root / "train" / c).glob("*.wav"))]
        active[c] = np.median([10 * np.log10(active_power(x, sr)) for x, sr in audio])
        rms[c] = np.median([10 * np.log10(np.mean(x**2)) for x, _ in audio])
        peak[c] = np.median([20 * np.log10(np.abs(x).max()) for x, _ in audio])
        assert max(20 * np.log10(np.abs(x).max()) for x, _ in audio) <= PEAK_CEILING + 0.01
    levels = {"active": active, "rms": rms, "peak": peak}
    spread = {k: max(v.values()) - min(v.values()) for k, v in levels.items()}
    assert spread["active"] < 1.0, spread
    assert spread["rms"] < 15.0 and spread["peak"] < 15.0, spread


def test_render_clip_meets_its_nuisance():
    nuisance = Nuisance(duration=1.5, sample_rate=16000, channels=2, subtype="FLOAT",
                        level_db=-30.0, snr_db=10.0, background="hum")
    audio = render_clip("siren", nuisance, np.random.default_rng(0))
    assert audio.dtype == np.float32 and audio.shape == (24000, 2)
    assert 10 * np.log10(active_power(audio, 16000)) == pytest.approx(-30.0, abs=0.01)
    assert not np.allclose(audio[:, 0], audio[:, 1])


def test_generation_is_byte_identical_and_replaces_stale_output(tmp_path):
    small = DemoConfig(seed=11, classes=("rain", "jackhammer"), train_per_class=4, test_per_class=2)
    earlier = DemoConfig(seed=5, classes=("siren", "rain"), train_per_class=5, test_per_class=3)
    generate_demo(tmp_path / "a", earlier)
    generate_demo(tmp_path / "a", small)  # over a different, larger, earlier generation
    generate_demo(tmp_path / "b", small)
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert a == b
    assert not any("siren" in name for name in a)
    subtypes = {sf.info(tmp_path / "a" / n).subtype for n in a if n.endswith(".wav")}
    assert subtypes == {"PCM_16", "FLOAT"}
    # libsndfile's PEAK chunk holds the write time; the runs above may share a second
    assert not any(b"PEAK" in data[:200] for data in a.values())


def test_a_class_sounds_the_same_whatever_else_is_generated(tmp_path):
    for name, classes in (("one", ("drilling",)), ("two", ("car_horn", "drilling"))):
        cfg = DemoConfig(classes=classes, train_per_class=2, test_per_class=0)
        generate_demo(tmp_path / name, cfg)
    one, two = _files(tmp_path / "one"), _files(tmp_path / "two")
    drilling = {k: v for k, v in two.items() if "drilling" in k}
    assert len(drilling) == 2 and drilling == {k: v for k, v in one.items() if "drilling" in k}


def test_bad_configs_raise(tmp_path):
    with pytest.raises(ValueError, match="known classes: dog_bark, drilling"):
        generate_demo(tmp_path / "x", DemoConfig(classes=("dog_bark", "helicopter")))
    with pytest.raises(ValueError, match="distinct"):
        generate_demo(tmp_path / "x", DemoConfig(classes=("rain", "rain")))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        generate_demo(tmp_path / "mine", DemoConfig(classes=("rain",), train_per_class=1))
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    assert not (tmp_path / "x").exists()


def _structure(x: np.ndarray, sr: int) -> np.ndarray:
    """12 log-spaced band levels (dB re the loudest band) and the spread of frame levels (dB)."""
    freqs, _, spec = signal.stft(x, sr, nperseg=512)
    power = np.abs(spec) ** 2
    edges = np.geomspace(60, 7000, 13)
    bands = np.array([power[(freqs >= a) & (freqs < b)].sum() for a, b in zip(edges, edges[1:])])
    profile = 10 * np.log10(bands / bands.max() + 1e-12)
    return np.append(profile / 10, np.std(10 * np.log10(power.sum(0) + 1e-12)) / 5)


def test_classes_are_structurally_distinct():
    """Leave-one-out nearest class mean on clean clips is right far more often than chance."""
    sr, n, per_class = 16000, 24000, 4
    feats = {c: [_structure(f(np.random.default_rng(i), n, sr), sr) for i in range(per_class)]
             for c, f in SYNTHS.items()}
    correct = 0
    for c, rows in feats.items():
        for i, row in enumerate(rows):
            means = {k: np.mean([r for j, r in enumerate(v) if (k, j) != (c, i)], axis=0)
                     for k, v in feats.items()}
            correct += min(means, key=lambda k: np.sum((row - means[k]) ** 2)) == c
    assert correct / (per_class * len(SYNTHS)) >= 0.75


def _class_means(per_class: int) -> dict[str, np.ndarray]:
    sr, n = 16000, 24000
    return {c: np.mean([_structure(f(np.random.default_rng(i), n, sr), sr)
                        for i in range(per_class)], axis=0) for c, f in SYNTHS.items()}


def test_confusable_pairs_are_closer_than_most_classes():
    """Each designed pair is nearer (class means of clean clips) than the median pair of classes,
    and the first and third are each other's nearest class (drilling's after rain): the demo is
    hard where it claims to be."""
    means = _class_means(per_class=6)
    dist = {(a, b): np.linalg.norm(means[a] - means[b]) for a in means for b in means if a != b}
    median = np.median(list(dist.values()))
    for a, b in CONFUSABLE:
        assert dist[a, b] < median, (a, b, dist[a, b], median)
    for a, b in (CONFUSABLE[0], CONFUSABLE[2]):
        for c, partner in ((a, b), (b, a)):
            near_too = {"drilling": {"rain"}}.get(c, set())  # drilling: rain is nearer still
            nearest = min((k for k in means if k != c and k not in near_too),
                          key=lambda k: dist[c, k])
            assert nearest == partner, (c, nearest)


def test_default_demo_covers_every_class_with_enough_val_and_test_clips():
    """The committed params give 8 classes, >= 120 validation and >= 160 test clips, so a two
    point accuracy difference is more than one clip."""
    demo, split = load_params("params.yaml").demo, load_params("params.yaml").split
    assert demo == DemoConfig() and split == SplitConfig()
    assert set(demo.classes) == set(SYNTHS) and len(demo.classes) == 8
    assert round(split.val_size * demo.train_per_class) * len(demo.classes) >= 120
    assert demo.test_per_class * len(demo.classes) >= 160


def test_nuisances_follow_the_config_and_never_depend_on_the_class():
    cfg = DemoConfig(snr_db=(-3.0, 2.0), overlap_p=1.0, overlap_db=(-9.0, -8.0))
    drawn = [draw_nuisance(np.random.default_rng([1, 0, i]), cfg) for i in range(200)]
    assert all(-3.0 <= d.snr_db <= 2.0 and -9.0 <= d.overlap_db <= -8.0 for d in drawn)
    assert {d.overlap for d in drawn} == set(SYNTHS)
    assert 0.15 < np.mean([d.lowpass is not None for d in drawn]) < 0.45
    none = DemoConfig(overlap_p=0.0)
    assert all(draw_nuisance(np.random.default_rng(i), none).overlap is None for i in range(50))


def test_an_overlapping_event_stays_under_the_labelled_one():
    """The second event is added over part of the clip, about ``overlap_db`` under the clip's own
    event (unit active power), which it leaves untouched; the label's sound stays the loudest."""
    sr, n = INTERNAL_SR, INTERNAL_SR * 2
    near = Nuisance(duration=2.0, sample_rate=16000, channels=1, subtype="FLOAT", level_db=-20.0,
                    snr_db=10.0, background="pink")
    for own, other in (("siren", "jackhammer"), ("dog_bark", "rain"), ("drilling", "car_horn")):
        alone = _events(own, near, np.random.default_rng(4), n)
        both = _events(own, dataclasses.replace(near, overlap=other, overlap_db=-6.0),
                       np.random.default_rng(4), n)
        added = both - alone
        assert active_power(alone, sr) == pytest.approx(1.0)
        assert 10 * np.log10(active_power(added, sr)) < -3.0, (own, other)
        assert np.mean(added**2) > 0


def test_workers_do_not_change_a_single_byte(tmp_path):
    base = dict(seed=2, classes=("siren", "car_horn"), train_per_class=3, test_per_class=2)
    generate_demo(tmp_path / "one", DemoConfig(**base, workers=1))
    summary = generate_demo(tmp_path / "two", DemoConfig(**base, workers=2))
    assert _files(tmp_path / "one") == _files(tmp_path / "two")
    assert sum(summary["overlaps"].values()) == summary["files"] == 10


@pytest.mark.parametrize("key, value", [("snr_db", [10.0, 0.0]), ("overlap_db", [-5.0, 1.0]),
                                        ("overlap_p", 1.5), ("workers", 0)])
def test_bad_demo_params_name_the_key(tmp_path, key, value):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"demo": {key: value}}))
    with pytest.raises(ConfigError, match=f"demo.{key}"):
        load_params(path)
