"""The open-set measurement (`python -m sonic.inference.openset`) on the session's small models
trained on three tones: held-out tones are known, noise and tones between the classes are not."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sonic.inference.openset import auroc, evaluate, score_files
from sonic.inference.predictor import Predictor

REPO = Path(__file__).resolve().parents[1]
SR = 8000


def write(folder: Path, waves: dict[str, np.ndarray]) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    for name, wave in waves.items():
        sf.write(folder / name, wave.astype(np.float32), SR)
    return [str(folder / name) for name in waves]


def tone(freq: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(SR // 2) / SR
    return 0.3 * np.sin(2 * np.pi * freq * t + rng.uniform(0, 6.28)) + 0.01 * rng.standard_normal(len(t))


@pytest.fixture(scope="module")
def lists(trained, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("openset")
    freqs = {"low": 220.0, "mid": 880.0, "high": 2500.0}
    known = write(root / "known", {f"{c}_{i}.wav": tone(f * (1 + 0.01 * i), 100 + i)
                                   for c, f in freqs.items() for i in range(3)})
    rng = np.random.default_rng(3)
    unknown = write(root / "unknown", {
        **{f"noise_{i}.wav": 0.3 * rng.standard_normal(SR // 2) for i in range(3)},
        **{f"tone_{f}hz.wav": tone(f, 7) for f in (1500.0, 4000.0, 550.0)}})
    return {"root": root, "calibrate": [str(p) for p in trained.val_files], "known": known,
            "known_labels": [Path(p).name.split("_")[0] for p in known], "unknown": unknown}


def test_auroc_orders_scores() -> None:
    assert auroc(np.array([0.9, 0.8]), np.array([0.1, 0.2])) == 1.0
    assert auroc(np.array([0.1, 0.2]), np.array([0.9, 0.8])) == 0.0
    assert auroc(np.array([0.5, 0.5]), np.array([0.5, 0.5])) == 0.5


def test_known_tones_score_above_foreign_sounds(trained, lists) -> None:
    predictor = Predictor.load("ensemble", trained.models)
    scored = {name: score_files(predictor, lists[name], desc=name)
              for name in ("calibrate", "known", "unknown")}
    assert [len(s.paths) for s in scored.values()] == [len(lists[n]) for n in scored]
    report = evaluate(scored["calibrate"], scored["known"], scored["unknown"], 0.95,
                      lists["known_labels"], predictor.classes)
    assert report["n"] == {"calibrate": len(lists["calibrate"]), "known": 9, "unknown": 6}
    assert report["known_accuracy"] == 1.0
    assert report["msp"]["auroc"] >= 0.9, report
    assert report["msp"]["unknown_rejected"] >= 0.5, report
    for name in ("msp", "energy"):  # the threshold keeps 95 % of the calibration clips
        kept = (getattr(scored["calibrate"], name) >= report[name]["threshold"]).mean()
        assert kept >= 0.95


def test_cli_writes_the_report_and_names_unreadable_files(trained, lists) -> None:
    root = lists["root"]
    bad = root / "broken.wav"
    bad.write_bytes(b"RIFF0000WAVEjunk")
    files = {}
    for name in ("calibrate", "known", "unknown"):
        files[name] = root / f"{name}.csv"
        with open(files[name], "w", newline="") as f:
            writer = csv.writer(f)
            if name == "known":
                writer.writerow(["path", "label"])
                writer.writerows(zip(lists["known"], lists["known_labels"]))
            else:
                writer.writerow(["path"])
                writer.writerows([p] for p in lists[name] + ([str(bad)] if name == "unknown" else []))
    out = root / "report.json"
    proc = subprocess.run([sys.executable, "-m", "sonic.inference.openset", "--models-dir",
                           str(trained.models), "--model", "resnet",
                           *[a for n, p in files.items() for a in (f"--{n}", str(p))],
                           "--out", str(out)], cwd=REPO, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert report == json.loads(proc.stdout)
    assert report["model"] == "resnet" and report["n"]["unknown"] == 6
    assert len(report["failed"]) == 1 and "broken.wav" in report["failed"][0]
    assert set(report["msp"]) == {"auroc", "threshold", "known_kept", "unknown_rejected"}


def pipeline_dir(root: Path, data: Path, classes: list[str] | None) -> Path:
    """A project folder as `dvc repro` leaves it: params.yaml, the features' index and the split
    (every third clip of a known class val, every third test, the rest train)."""
    (root / "data/features").mkdir(parents=True)
    clips = sorted(p for p in (data / "train").rglob("*.wav")
                   if classes is None or p.parent.name in classes)
    with (root / "data/features/index.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["clip_id", "source", "label", "group", "role", "fold"])
        w.writerows([p.relative_to(data).as_posix(), str(p), p.parent.name, p.stem, "train", 0]
                    for p in clips)
    with (root / "data/split.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["clip_id", "label", "group", "role"])
        w.writerows([p.relative_to(data).as_posix(), p.parent.name, p.stem,
                     ("val", "test", "train")[i % 3]] for i, p in enumerate(clips))
    listed = "null" if classes is None else "[" + ", ".join(classes) + "]"
    (root / "params.yaml").write_text(f"data:\n  layout: folder\n  root: {data}\n"
                                      f"  classes: {listed}\n")
    return root


def test_the_pipeline_gives_the_three_lists(trained, tmp_path) -> None:
    """--pipeline: calibrate = the val split, known = the test split with labels, unknown =
    every clip of the data set whose class the models never saw (data.classes lifted)."""
    from sonic.inference.openset import pipeline_lists

    root = pipeline_dir(tmp_path / "project", trained.data, ["low", "mid"])
    got = pipeline_lists(root, ["low", "mid"])
    split = list(csv.DictReader((root / "data/split.csv").open()))
    assert len(got["calibrate"][0]) == sum(r["role"] == "val" for r in split) > 0
    assert got["known"][1] == [r["label"] for r in split if r["role"] == "test"]
    assert {Path(p).parent.name for p in got["calibrate"][0] + got["known"][0]} == {"low", "mid"}
    high = sorted(str(p) for p in (trained.data / "train" / "high").glob("*.wav"))
    assert sorted(got["unknown"][0]) == high and set(got["unknown"][1]) == {"high"}
    # a run that held nothing back is named, not scored
    whole = pipeline_dir(tmp_path / "whole", trained.data, None)
    with pytest.raises(ValueError, match="data.classes is not set"):
        pipeline_lists(whole, ["low", "mid", "high"])


def test_cli_pipeline_names_a_run_with_nothing_unknown(trained, tmp_path) -> None:
    """Models trained on every class of the data set leave no unknown clip: a named exit 2."""
    root = pipeline_dir(tmp_path / "project", trained.data, ["low", "mid"])
    proc = subprocess.run([sys.executable, "-m", "sonic.inference.openset", "--pipeline",
                           str(root), "--models-dir", str(trained.models), "--model", "resnet"],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 2 and "nothing is unknown" in proc.stderr, proc.stderr
