""""None of these": the confidence score, its threshold calibrated on val clips, and the
``unknown`` label in ``sonic predict`` and ``/api/predict`` — against the session's small models
trained on three tones (low 220 Hz, mid 880 Hz, high 2500 Hz)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from sonic.inference.prediction import UNKNOWN
from sonic.inference.predictor import Predictor
from sonic.inference.unknown import calibrate_threshold, confidence
from sonic.serve.app import create_app, load

REPO = Path(__file__).resolve().parents[1]
SR = 8000


def foreign_sounds(folder: Path) -> list[Path]:
    """Sounds of no trained class: white noise, and a 1500 Hz tone (between mid and high)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    t = np.arange(SR // 2) / SR
    waves = {"white_noise.wav": 0.3 * rng.standard_normal(len(t)),
             "tone_1500hz.wav": 0.3 * np.sin(2 * np.pi * 1500 * t)
             + 0.01 * rng.standard_normal(len(t))}
    for name, wave in waves.items():
        sf.write(folder / name, wave.astype(np.float32), SR)
    return [folder / name for name in waves]


def test_calibrated_threshold_keeps_the_share_asked_for() -> None:
    scores = np.linspace(0.3, 1.0, 100)
    for keep in (0.5, 0.9, 0.95, 1.0):
        threshold = calibrate_threshold(scores, keep)
        assert (scores >= threshold).mean() >= keep
        assert (scores >= threshold).mean() <= keep + 0.01 + 1e-9
    assert confidence(np.array([[0.2, 0.5, 0.3], [0.9, 0.05, 0.05]])).tolist() == [0.5, 0.9]
    with pytest.raises(ValueError, match="keep"):
        calibrate_threshold(scores, 0.0)
    with pytest.raises(ValueError, match="no scores"):
        calibrate_threshold(np.array([]))


def test_threshold_from_val_clips_rejects_foreign_sounds_and_keeps_known_ones(
        trained, tmp_path: Path) -> None:
    predictor = Predictor.load("ensemble", trained.models)
    val = list(predictor.predict_files(trained.val_files, workers=1))
    threshold = calibrate_threshold(np.array([confidence(r.probs) for r in val]), 0.95)
    for result in val:
        result.unknown_threshold = threshold
    labels = [r.to_dict()["label"] for r in val]
    assert labels.count(UNKNOWN) <= 0.05 * len(val)
    right = sum(label == trained.classes[y] for label, y in zip(labels, trained.val_labels))
    assert right >= len(val) - 1, labels
    for path in foreign_sounds(tmp_path):
        result = predictor.predict_file(path)
        result.unknown_threshold = threshold
        d = result.to_dict()
        assert d["label"] == UNKNOWN, (path.name, d["confidence"], threshold)
        assert d["confidence"] < threshold and d["top"][0]["label"] in trained.classes
    result.unknown_threshold = None  # no threshold: the top class, as before
    assert result.to_dict()["label"] == result.to_dict()["top"][0]["label"]


def sonic(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sonic", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_cli_calibrates_then_predicts_unknown(trained, tmp_path: Path) -> None:
    models = ["--models-dir", str(trained.models), "--model", "ensemble"]
    calibrated = sonic("predict", *map(str, trained.val_files), *models,
                       "--calibrate-unknown", "0.95")
    assert calibrated.returncode == 0, calibrated.stderr
    threshold = float(calibrated.stdout)
    assert f"keeps 95% of {len(trained.val_files)} known clips" in calibrated.stderr
    noise, _ = foreign_sounds(tmp_path)
    known = trained.val_files[0]
    proc = sonic("predict", str(noise), str(known), *models, "--unknown-threshold",
                 str(threshold), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    by_file = {Path(r["file"]).name: r for r in json.loads(proc.stdout)}
    assert by_file[noise.name]["label"] == UNKNOWN
    assert by_file[Path(known).name]["label"] == Path(known).parent.name
    table = sonic("predict", str(noise), *models, "--unknown-threshold", str(threshold))
    assert "→ unknown" in table.stdout


def test_serve_labels_unknown_below_its_threshold(trained, tmp_path: Path) -> None:
    predictor, _ = load([str(trained.models / "cnn.pt"), str(trained.models / "resnet.pt")],
                        "none")
    noise = foreign_sounds(tmp_path)[0].read_bytes()
    files = {"file": ("noise.wav", noise, "audio/wav")}
    app = create_app(predictor, unknown_threshold=0.99)
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        answer = client.post("/api/predict", files=files).json()
        assert answer["label"] == UNKNOWN and answer["unknown_threshold"] == 0.99
        assert all(w["label"] == UNKNOWN for w in answer["windows"])
        lenient = client.post("/api/predict", params={"unknown_threshold": 0.0},
                              files=files).json()
        assert lenient["label"] == lenient["top"][0]["label"]
