"""The benchmark harness: its pure helpers, and the CLI end to end on a tiny generated demo set."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

from sonic.bench.cli import _median_run
from sonic.bench.dvc import stages_run
from sonic.bench.extract import compare
from sonic.models import MODELS

REPO = Path(__file__).resolve().parents[1]
DB_TOL = 5e-3  # dB, as test_features' MEL_TOL_DB; measured ≈ 7e-4 on these clips
TINY = {  # small inputs and models; widths ≥ 16 (oneDNN bf16 channels_last, see loop.py)
    "features": {"sample_rate": 8000, "n_fft": 256, "hop_length": 256, "n_mels": 32,
                 "workers": 1},
    "train": {"batch_size": 4},
    "cnn": {"widths": [16, 16, 16, 16], "fc": [16, 16, 8], "pool": [1, 1]},
    "resnet": {"widths": [16, 16, 16, 16], "blocks": [1, 1, 1, 1]},
}


def test_compare_skips_missing_frames_and_unmatched_clips() -> None:
    ours = np.zeros((2, 3, 4), np.float32)
    ref = np.full((2, 3, 4), np.nan, np.float32)
    ref[0, :, :2] = 0.5  # librosa computed 2 of 4 frames; the rest must not count
    ref[1] = 0.25
    out = compare(ours, ["a", "b"], ref, ["c", "b"])  # only "b" is in both
    assert out["clips_compared"] == 1 and out["worst_clip"] == "b"
    assert out["max_abs_db_diff"] == 0.25
    out = compare(ours, ["a", "b"], ref, ["a", "b"])
    assert out["max_abs_db_diff"] == 0.5 and out["clips_compared"] == 2
    assert math.isclose(out["mean_abs_db_diff"], (6 * 0.5 + 12 * 0.25) / 18)  # 6 NaN left out


def test_stages_run_parses_dvc_output() -> None:
    output = ("Running stage 'train_cnn':\n> python -m stages.train\n"
              "Stage 'prepare' didn't change, skipping\nRunning stage 'evaluate':\n")
    assert stages_run(output) == ["train_cnn", "evaluate"]


def test_median_run_keeps_every_time_and_the_worst_memory() -> None:
    runs = [{"seconds": s, "clips": 4, "memory": {"peak_rss_mib": m}}
            for s, m in ((3.0, 10.0), (1.0, 30.0), (2.0, 20.0))]
    assert _median_run(runs) == {"seconds": 2.0, "clips": 4, "memory": {"peak_rss_mib": 30.0},
                                 "runs_s": [3.0, 1.0, 2.0]}


def test_bench_cli_writes_the_report(tmp_path: Path) -> None:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for section, values in TINY.items():
        params[section].update(values)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "sonic.bench", "--out", str(out), "--skip-dvc",
                           "--limit", "6", "--repeats", "2", "--steps", "2", "--warmup", "1",
                           "--threads", "1", "--params", str(tmp_path / "params.yaml")],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "extract" in proc.stdout and "train cnn" in proc.stdout  # the table
    report = json.loads(out.read_text())

    assert {"cpu", "cores", "torch", "device", "device_name", "date"} <= set(report["machine"])
    assert report["data"]["generated_demo"] and report["data"]["clips"] == 6
    assert report["features"]["trim"] is False
    features = report["features"]
    n_frames = int(round(features["duration"] * features["sample_rate"])) // 256 + 1
    extract = report["extract"]
    assert extract["clips"] == extract["clips_compared"] == 6
    assert extract["speedup"] > 0 and extract["sonic_clips_per_s"] > 0
    assert len(extract["sonic_runs_s"]) == len(extract["librosa_runs_s"]) == 2
    assert extract["sonic_s"] == max(extract["sonic_runs_s"])  # the upper median of two
    assert 0 <= extract["max_abs_db_diff"] < DB_TOL
    for name in MODELS:
        train = report["train"][name]
        assert train["speedup"] > 0 and train["fp32_samples_per_s"] > 0
        assert train["input_shape"] == [4, 1, 32, n_frames]
        assert train["fast_precision"] in ("bf16", "fp32")
        assert all(math.isfinite(train[k]) for k in ("logits_max_abs_diff", "loss_fp32",
                                                     "loss_fast"))
        assert report["memory"][f"train_{name}"]["peak_rss_mib"] > 0
    for part in ("extract_sonic", "extract_librosa"):
        assert report["memory"][part]["peak_rss_mib"] > 0
    assert report["dvc"] == {"skipped": True}


def test_inference_benchmark_end_to_end(trained, tmp_path: Path) -> None:
    """``--inference`` on the session's small models and their 27 training clips, with a bounded
    load (2 clients × 3 requests): every clip predicted, no request failed, figures present."""
    out = tmp_path / "inference.json"
    proc = subprocess.run(
        [sys.executable, "-m", "sonic.bench", "--inference", "--models", str(trained.models),
         "--data", str(trained.data), "--layout", "folder", "--requests", "3", "--clients", "2",
         "--seconds", "60", "--out", str(out)], cwd=REPO, capture_output=True, text=True,
        timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    predict, serve = report["predict"], report["serve"]
    assert predict["clips"] == predict["predicted"] == 27 and predict["windows"] >= 27
    assert predict["max_top_probability_diff"] < 1e-2  # batched CLI ≈ one file at a time
    assert serve["concurrent"]["requests"] == 3 * 6 and serve["concurrent"]["errors"] == 0
    assert len(serve["rss_mib_after_each_round"]) == 4
    assert 0 < serve["predict_p50_ms"] <= serve["predict_p95_ms"]
    assert "sonic predict (ensemble): 27 clips" in proc.stdout
