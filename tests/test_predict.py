"""``sonic predict`` and the Predictor behind it, against small models trained in the session."""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sonic.audio.layouts import discover
from sonic.config import DataConfig
from sonic.features.extract import extract
from sonic.inference.predictor import Predictor
from sonic.inference.windows import Windowing, load_windows, window_starts
from sonic.models.checkpoint import load_classifier

REPO = Path(__file__).resolve().parents[1]
HZ = {"low": 220.0, "mid": 880.0, "high": 2500.0}  # conftest's CLASS_HZ: the classes' tones


def sonic(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """``python -m sonic ARGS`` with stdout and stderr piped, as a script would run it."""
    return subprocess.run([sys.executable, "-m", "sonic", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})


def write_sequence(path: Path, parts: list[tuple[float, float]], sr: int = 8000) -> Path:
    """A clip of tones in sequence: (frequency Hz or 0 for silence, seconds) each."""
    rng = np.random.default_rng(0)
    chunks = [(0.3 * np.sin(2 * np.pi * hz * np.arange(int(s * sr)) / sr) if hz else
               np.zeros(int(s * sr))) + 0.01 * rng.standard_normal(int(s * sr)) * bool(hz)
              for hz, s in parts]
    sf.write(path, np.concatenate(chunks).astype(np.float32), sr)
    return path


def test_window_starts_cover_the_clip_without_running_past_it() -> None:
    assert window_starts(100, 400, 200).tolist() == [0]  # shorter than a window: one, padded
    assert window_starts(400, 400, 200).tolist() == [0]
    assert window_starts(1000, 400, 200).tolist() == [0, 200, 400, 600]
    assert window_starts(1100, 400, 200).tolist() == [0, 200, 400, 600, 700]  # tail window
    assert window_starts(1001, 400, 200).tolist() == [0, 200, 400, 601]  # last one moved
    # 5 s at 22050 Hz, windows of 2.5 s every 1.25 s: the hop rounds to 27562 samples, and the
    # last window moves by one sample instead of nearly repeating
    assert window_starts(110250, 55125, 27562).tolist() == [0, 27562, 55125]


def test_predict_logmel_is_the_row_extract_mels_stores(trained) -> None:
    """Every training file no longer than the checkpoint's 0.5 s clip (8, 16 and 22.05 kHz, mono
    and stereo, PCM and float) gives one window whose log-mel is extract_mels' row for it,
    computed from the checkpoint's own feature params. Measured: identical (0.0 dB); the
    tolerance allows 1e-5 dB. Longer files are scored in several windows instead of the centre
    crop extract_mels keeps."""
    clips, _ = discover(DataConfig(layout="folder", root=str(trained.data)))
    stored = extract(clips, trained.features)
    predictor = Predictor.load(str(trained.models / "cnn.pt"))
    assert predictor.features == trained.features  # from the checkpoint, not params.yaml
    compared = 0
    for i, clip in enumerate(clips):
        got = load_windows(clip.path, predictor.features, predictor.windowing())
        assert got.error is None, got.error
        if got.duration > trained.features.duration:
            assert len(got.mels) > 1
            continue
        assert got.mels.shape == (1, *stored.mels.shape[1:])
        np.testing.assert_allclose(got.mels[0], stored.mels[i], rtol=0, atol=1e-5,
                                   err_msg=str(clip.path))
        compared += 1
    assert compared >= 15


def test_windows_follow_a_clip_that_changes_class(trained, tmp_path: Path) -> None:
    """0.3 s of silence, 1 s of the low tone, then 1 s of the high tone: windows of 0.5 s every
    0.25 s start on the file's own time axis (the trimmed silence counted) and their top class
    switches from low to high."""
    path = write_sequence(tmp_path / "a_then_b.wav", [(0, 0.3), (HZ["low"], 1.0),
                                                      (HZ["high"], 1.0)])
    predictor = Predictor.load("ensemble", trained.models)
    result = predictor.predict_file(path, windowing=Windowing(0.5, 0.25)).to_dict(top_k=1)
    windows = result["windows"]
    starts = [w["start_s"] for w in windows]
    # librosa's trimming rule keeps up to half of its 2048-sample RMS frame before the onset
    assert 0.3 - 1024 / 8000 - 1e-3 <= starts[0] <= 0.3
    # every 0.25 s, the last window ending exactly where the file ends (window_starts)
    assert np.diff(starts[:-1]) == pytest.approx([0.25] * (len(starts) - 2), abs=1e-3)
    assert 0 < starts[-1] - starts[-2] < 1.5 * 0.25
    assert windows[-1]["end_s"] == pytest.approx(2.3, abs=1e-3)
    tops = [w["top"][0]["label"] for w in windows]
    assert tops[0] == "low" and tops[-1] == "high", tops
    switch = tops.index("high")
    assert set(tops[:switch]) == {"low"} and set(tops[switch:]) <= {"high", "mid"}, tops
    assert result["status"] == "ok" and len(result["top"]) == 1


def test_clip_level_is_the_mean_of_the_window_probabilities(trained, tmp_path: Path) -> None:
    path = write_sequence(tmp_path / "long.wav", [(HZ["mid"], 1.7)])
    predictor = Predictor.load("resnet", trained.models)
    result = predictor.predict_file(path, windowing=Windowing(0.5, 0.5))
    assert len(result.window_probs) == 4  # 0, 0.5, 1.0 and the tail window 1.2-1.7
    np.testing.assert_allclose(result.probs, result.window_probs.mean(axis=0), atol=1e-7)
    assert result.to_dict()["top"][0]["label"] == "mid"


def test_cli_predicts_a_folder_names_bad_files_and_exits_1(trained, tmp_path: Path,
                                                           bad_files_writer) -> None:
    """Good files are predicted (recursively, all formats and rates) in input order; each bad
    one is named on stderr and as an error row with its reason; exit status 1."""
    bad = bad_files_writer(tmp_path / "mixed" / "bad")
    proc = sonic("predict", str(trained.data / "train"), str(tmp_path / "mixed"),
                 "--models-dir", str(trained.models), "--model", "ensemble", "--format", "json")
    assert proc.returncode == 1, proc.stderr
    results = json.loads(proc.stdout)
    good = [r for r in results if r["status"] == "ok"]
    errors = {Path(r["file"]).name: r["error"] for r in results if r["status"] == "error"}
    assert len(good) == 27 and len(errors) == len(bad)
    for path, word in bad.items():
        assert word in errors[path.name]
        assert f"{path}:" in proc.stderr
    right = sum(r["top"][0]["label"] == Path(r["file"]).parent.name for r in good)
    assert right >= 25, f"{right} of 27 training tones right"
    assert all(len(r["top"]) == 3 and r["model"] == "ensemble" for r in good)
    assert "\r" not in proc.stderr  # no progress bar when the output is piped


def test_cli_formats_and_exit_codes(trained, tmp_path: Path) -> None:
    files = sorted((trained.data / "train" / "low").glob("*.wav"))[:2]
    long = write_sequence(tmp_path / "long.wav", [(HZ["low"], 1.2)])
    args = ["--models-dir", str(trained.models), "--model", "cnn", "--top-k", "2"]
    table = sonic("predict", *map(str, files), str(long), *args)
    assert table.returncode == 0, table.stderr
    assert table.stdout.count("1. low") == 3 and "window" in table.stdout
    rows = list(csv.DictReader(io.StringIO(
        sonic("predict", *map(str, files), str(long), *args, "--format", "csv").stdout)))
    clip_rows = [r for r in rows if r["scope"] == "clip"]
    assert len(clip_rows) == 3 and {r["label_1"] for r in clip_rows} == {"low"}
    assert len([r for r in rows if r["scope"] == "window"]) == 4  # 0, 0.25, 0.5, 0.7 s
    assert set(rows[0]) >= {"label_2", "probability_2", "error"}

    missing = sonic("predict", str(files[0]), "--models-dir", str(tmp_path / "none"))
    assert missing.returncode == 2 and "dvc repro" in missing.stderr
    unknown = sonic("predict", str(files[0]), "--models-dir", str(trained.models),
                    "--model", "vgg")
    assert unknown.returncode == 2 and "unknown model 'vgg'" in unknown.stderr
    empty = sonic("predict", str(tmp_path / "nothing_here"), "--models-dir", str(trained.models))
    assert empty.returncode == 1 and "file not found" in empty.stderr


def test_a_reader_that_leaves_early_ends_predict_quietly(trained) -> None:
    """``sonic predict … | head``: once the pipe's reader is gone, predict stops with the
    shell's SIGPIPE status and no traceback."""
    files = sorted((trained.data / "train" / "low").glob("*.wav"))[:2]
    proc = subprocess.Popen([sys.executable, "-m", "sonic", "predict", *map(str, files),
                             "--models-dir", str(trained.models), "--format", "json"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    proc.stdout.close()  # the reader leaves before the first line
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 141, err.decode()
    assert b"Traceback" not in err and b"BrokenPipe" not in err


def test_checkpoint_file_as_model(trained) -> None:
    proc = sonic("predict", str(trained.data / "train" / "high"), "--model",
                 str(trained.models / "resnet.pt"), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert {r["model"] for r in json.loads(proc.stdout)} == {"resnet"}


def test_many_files_give_the_same_results_batched_and_one_by_one(trained) -> None:
    """Windows of consecutive files share forward passes (two decoding workers, batches of 4
    windows here): the results must not depend on the batching or the workers."""
    files = sorted((trained.data / "train").rglob("*.wav"))
    batched = Predictor.load("ensemble", trained.models, batch_size=4)
    together = list(batched.predict_files(files, workers=2))
    assert len(together) == len(files)  # one result per file: none dropped
    for path, result in zip(files, together):
        alone = batched.predict_file(path)
        assert result.path == str(path)
        np.testing.assert_allclose(result.probs, alone.probs, atol=1e-5)


def test_models_of_other_classes_or_features_are_not_ensembled(trained) -> None:
    cnn = load_classifier(trained.models / "cnn.pt")
    resnet = load_classifier(trained.models / "resnet.pt")
    renamed = dataclasses.replace(resnet, classes=["a", "b", "c"])
    with pytest.raises(ValueError, match="different classes"):
        Predictor({"cnn": cnn, "resnet": renamed})
    other = dataclasses.replace(resnet, features=dataclasses.replace(resnet.features, n_mels=64))
    with pytest.raises(ValueError, match="different features"):
        Predictor({"cnn": cnn, "resnet": other})
