"""Sound events from window probabilities, ``sonic predict --events``, ``/api/predict?events=``,
and soundscapes with known answers scored with sed_eval — against small models trained in the
session (tones: low 220 Hz, mid 880 Hz, high 2500 Hz)."""
from __future__ import annotations

import csv
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from sonic.inference.events import (ACTIVITY_SMOOTH_S, DETECTORS, FLOOR_MIN_WINDOWS, Event,
                                    EventParams, _runs, activity, background, detect,
                                    frame_probs, gate, hysteresis, prediction_events,
                                    top1_events)
from sonic.inference.predictor import Predictor
from sonic.inference.soundscape.plots import timeline_png
from sonic.inference.soundscape.scenes import SceneConfig, build, list_clips
from sonic.inference.soundscape.scoring import read_reference, score
from sonic.inference.windows import Windowing
from sonic.serve.app import create_app, load

REPO = Path(__file__).resolve().parents[1]
HZ = {"low": 220.0, "mid": 880.0, "high": 2500.0}
SR = 8000
WINDOW = Windowing(0.5, 0.125)  # the trained models' 0.5 s clip, every 1/8 s
# silence → low → silence → high → silence: (frequency or 0, seconds)
PARTS = [(0, 1.0), (HZ["low"], 1.5), (0, 1.0), (HZ["high"], 1.5), (0, 1.0)]
TRUTH = [(1.0, 2.5, "low"), (3.5, 5.0, "high")]


def write_parts(path: Path, parts: list[tuple[float, float]]) -> Path:
    """Tones in sequence; "silence" is a faint noise floor (-70 dB), as in a real recording."""
    rng = np.random.default_rng(0)
    chunks = []
    for hz, seconds in parts:
        t = np.arange(int(seconds * SR)) / SR
        tone = 0.3 * np.sin(2 * np.pi * hz * t) + 0.01 * rng.standard_normal(len(t))
        chunks.append(tone if hz else 3e-4 * rng.standard_normal(len(t)))
    sf.write(path, np.concatenate(chunks).astype(np.float32), SR)
    return path


def test_frame_probs_average_the_windows_covering_each_piece() -> None:
    probs = np.array([[1.0, 0.0], [0.0, 1.0]])
    edges, curve = frame_probs(probs, np.array([0.0, 0.5]), window=1.0, duration=1.5)
    assert edges.tolist() == [0.0, 0.5, 1.0, 1.5]
    np.testing.assert_allclose(curve, [[1, 0], [0.5, 0.5], [0, 1]])


def test_hysteresis_min_duration_and_merge_gap() -> None:
    curve = np.array([0.2, 0.6, 0.4, 0.35, 0.1, 0.45, 0.1, 0.9, 0.1])
    # starts at 0.6, holds while >= 0.3; the 0.45 run never reaches on=0.5
    assert hysteresis(curve, 0.5, 0.3).tolist() == [0, 1, 1, 1, 0, 0, 0, 1, 0]
    starts = np.arange(9) * 1.0  # windows of 1 s every 1 s: one piece each
    probs = np.stack([curve, 1 - curve], axis=1)
    base = EventParams(on=0.5, off=0.3, min_duration=0.0, merge_gap=0.0, gate_db=None)
    a = [e for e in detect(probs, starts, 1.0, 9.0, ["a", "b"], base) if e.label == "a"]
    assert [(e.onset, e.offset) for e in a] == [(1.0, 4.0), (7.0, 8.0)]
    assert a[0].confidence == pytest.approx((0.6 + 0.4 + 0.35) / 3)
    long = EventParams(0.5, 0.3, min_duration=2.0, merge_gap=0.0, gate_db=None)
    assert [(e.onset, e.label) for e in detect(probs, starts, 1.0, 9.0, ["a", "b"], long)
            if e.label == "a"] == [(1.0, "a")]
    merged = EventParams(0.5, 0.3, min_duration=0.0, merge_gap=3.5, gate_db=None)
    assert [(e.onset, e.offset) for e in detect(probs, starts, 1.0, 9.0, ["a", "b"], merged)
            if e.label == "a"] == [(1.0, 8.0)]
    with pytest.raises(ValueError, match="off <= on"):
        EventParams(on=0.3, off=0.5)


def test_the_floor_gate_drops_windows_at_the_noise_floor_but_not_a_steady_sound() -> None:
    rng = np.random.default_rng(0)
    noise = -40 + 0.3 * rng.standard_normal(20)  # a steady noise floor at -40 dB ...
    levels = noise.copy()
    levels[[5, 6, 12]] = [-39.5, -30.0, -25.0]  # ... a faint window, two clear sounds
    quiet = background(levels, gate_db=None, floor_db=1.5)
    assert not quiet[[6, 12]].any() and quiet[5]  # under 1.5 dB over the floor: background
    assert quiet.sum() >= 15
    assert not background(noise, None, 1.5).any()  # one steady sound: no floor to gate
    assert not background(levels[:FLOOR_MIN_WINDOWS - 1], None, 1.5).any()  # too few windows
    assert background(levels, 10.0, None).sum() == 18  # the old gate: 10 dB under the loudest
    probs = np.full((20, 2), 0.5)
    assert gate(probs, levels, None, 1.5)[quiet].sum() == 0
    with pytest.raises(ValueError, match="floor_db"):
        EventParams(floor_db=0.0)


def band_noise(seconds: float, rng: np.random.Generator, step: float = 0.02,
               n_mels: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Frames of coloured background noise: each band's level falls 0.5 dB per band (more
    energy low, as pink noise) and ripples by ±1.5 dB from frame to frame."""
    times = np.arange(0.0, seconds, step)
    tilt = -0.5 * np.arange(n_mels)
    return (-40 + tilt + 1.5 * rng.standard_normal((len(times), n_mels))), times


def test_activity_finds_a_narrow_band_sound_over_coloured_noise() -> None:
    """A sound 8 dB up in 6 of 64 bands (a horn) from 2 to 3 s and a broad one 3 dB up in every
    band from 5 to 7 s, over tilted noise: both found, to within a smoothing span, and nothing
    else — not the noise's ripple, not its louder low bands."""
    rng = np.random.default_rng(0)
    db, times = band_noise(10.0, rng)
    horn = (times >= 2) & (times < 3)
    broad = (times >= 5) & (times < 7)
    db[np.ix_(horn, np.arange(30, 36))] += 8.0
    db[broad] += 3.0
    active = activity(db.astype(np.float16), times, on_db=2.5, off_db=0.5)
    runs = [(times[a], times[b - 1]) for a, b in _runs(active)]
    assert len(runs) == 2, runs
    for (onset, offset), (a, b) in zip(runs, [(2, 3), (5, 7)]):
        assert abs(onset - a) <= ACTIVITY_SMOOTH_S and abs(offset - b) <= ACTIVITY_SMOOTH_S
    assert not activity(band_noise(10.0, rng)[0], times, 2.5, 0.5).any()  # noise alone


def test_activity_events_take_the_class_with_the_highest_curve_over_each_sound() -> None:
    """Windows of 1 s every 0.25 s; class "a" is most probable around the first sound, "b"
    around the second, though neither passes the probability detector's `on`: the activity
    detector finds both with the right labels and the mean curve as confidence; a file
    without a noise floor (too few windows) falls back to the probability detector."""
    rng = np.random.default_rng(1)
    db, times = band_noise(10.0, rng)
    for a, b in [(2, 3), (6, 7.5)]:
        db[(times >= a) & (times < b)] += 10.0
    starts = np.arange(0.0, 9.01, 0.25)
    centre = starts + 0.5
    pa = np.where((centre > 1.5) & (centre < 3.5), 0.45, 0.3)
    pb = np.where((centre > 5.5) & (centre < 8.0), 0.45, 0.3)
    probs = np.stack([pa, pb, 1 - pa - pb], axis=1)
    levels = np.where(((centre > 1.5) & (centre < 3.5)) | ((centre > 5.5) & (centre < 8)),
                      -20.0, -40.0)
    params = EventParams(min_duration=0.3, merge_gap=0.5)
    events = detect(probs, starts, 1.0, 10.0, ["a", "b", "c"], params, levels, db, times)
    assert [e.label for e in events] == ["a", "b"], events
    assert abs(events[0].onset - 2) < 0.2 and abs(events[1].offset - 7.5) < 0.2
    assert 0.3 < events[0].confidence <= 0.45
    assert detect(probs, starts, 1.0, 10.0, ["a", "b", "c"],
                  dataclasses.replace(params, detector="probability"), levels) == []
    few = slice(0, FLOOR_MIN_WINDOWS - 1)
    assert detect(probs[few], starts[few], 1.0, 2.5, ["a", "b", "c"], params, levels[few], db,
                  times) == detect(probs[few], starts[few], 1.0, 2.5, ["a", "b", "c"],
                                   dataclasses.replace(params, detector="probability"),
                                   levels[few])
    with pytest.raises(ValueError, match="off_db <= on_db"):
        EventParams(on_db=1.0, off_db=2.0)
    with pytest.raises(ValueError, match="detector must be one of"):
        EventParams(detector="energy")


@pytest.mark.parametrize("detector", DETECTORS)
def test_events_of_a_constructed_recording_land_within_a_window_of_the_truth(
        trained, tmp_path: Path, detector: str) -> None:
    """silence → low → silence → high → silence: exactly two events, the right classes, each
    onset and offset within one window (0.5 s) of the truth, by either detector; the plain
    top-1 labels the silences too (as some class: that is what the level gate and thresholds
    are for)."""
    path = write_parts(tmp_path / "sequence.wav", PARTS)
    result = Predictor.load("ensemble", trained.models).predict_file(path, windowing=WINDOW)
    events = prediction_events(result, EventParams(detector=detector))
    assert [e.label for e in events] == [label for _, _, label in TRUTH], events
    for event, (onset, offset, _) in zip(events, TRUTH):
        assert abs(event.onset - onset) <= WINDOW.window, event
        assert abs(event.offset - offset) <= WINDOW.window, event
        assert 0 < event.confidence <= 1
    baseline = top1_events(result.window_probs, result.starts, result.window, result.duration,
                           result.classes)
    assert len(baseline) > len(events)


def sonic(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sonic", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_cli_writes_events_as_csv_json_and_audacity_labels(trained, tmp_path: Path) -> None:
    path = write_parts(tmp_path / "sequence.wav", PARTS)
    out = tmp_path / "events"
    proc = sonic("predict", str(path), "--models-dir", str(trained.models), "--model",
                 "ensemble", "--window", "0.5", "--hop", "0.125", "--events", "--events-dir",
                 str(out), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["status"] == "ok"
    labels = (out / "sequence.txt").read_text().splitlines()
    assert [line.split("\t")[2] for line in labels] == ["low", "high"]
    onset, offset, _ = labels[0].split("\t")
    assert abs(float(onset) - 1.0) <= 0.5 and abs(float(offset) - 2.5) <= 0.5
    rows = list(csv.DictReader((out / "sequence.events.csv").open()))
    assert [r["label"] for r in rows] == ["low", "high"] and rows[0]["file"] == str(path)
    doc = json.loads((out / "sequence.events.json").read_text())
    assert [e["label"] for e in doc["events"]] == ["low", "high"]
    assert doc["params"]["on"] == EventParams().on
    assert doc["params"]["detector"] == "activity"
    bad = sonic("predict", str(path), "--models-dir", str(trained.models), "--events",
                "--on", "0.2", "--off", "0.6", "--events-dir", str(out))
    assert bad.returncode == 2 and "off <= on" in bad.stderr
    bad = sonic("predict", str(path), "--models-dir", str(trained.models), "--events",
                "--on-db", "1", "--off-db", "2", "--events-dir", str(out))
    assert bad.returncode == 2 and "off_db <= on_db" in bad.stderr
    prob = sonic("predict", str(path), "--models-dir", str(trained.models), "--model",
                 "ensemble", "--window", "0.5", "--hop", "0.125", "--events", "--detector",
                 "probability", "--events-dir", str(tmp_path / "prob"))
    assert prob.returncode == 0, prob.stderr
    doc = json.loads((tmp_path / "prob" / "sequence.events.json").read_text())
    assert doc["params"]["detector"] == "probability"
    assert [e["label"] for e in doc["events"]] == ["low", "high"]


def test_api_returns_events_when_asked(trained, tmp_path: Path) -> None:
    predictor, _ = load([str(trained.models / "cnn.pt"), str(trained.models / "resnet.pt")],
                        "none")
    data = write_parts(tmp_path / "sequence.wav", PARTS).read_bytes()
    with TestClient(create_app(predictor), base_url="http://127.0.0.1:8000") as client:
        files = {"file": ("sequence.wav", data, "audio/wav")}
        answer = client.post("/api/predict", params={"events": "true", "window": 0.5,
                                                     "hop": 0.125}, files=files).json()
        assert [e["label"] for e in answer["events"]] == ["low", "high"]
        assert abs(answer["events"][1]["onset_s"] - 3.5) <= 0.5
        plain = client.post("/api/predict", files=files).json()
        assert "events" not in plain
        refused = client.post("/api/predict", params={"events": "true", "on": 0.2, "off": 0.6},
                              files=files)
        assert refused.status_code == 422 and "off <= on" in refused.json()["detail"]
        by_curve = client.post("/api/predict", params={"events": "true", "window": 0.5,
                                                       "hop": 0.125, "detector": "probability"},
                               files=files).json()
        assert [e["label"] for e in by_curve["events"]] == ["low", "high"]
        refused = client.post("/api/predict", params={"events": "true", "detector": "energy"},
                              files=files)
        assert refused.status_code == 422


def test_soundscapes_are_built_with_references_and_scored(trained, tmp_path: Path) -> None:
    """Two 12 s soundscapes of the training tones over pink noise at 6 and 12 dB SNR: the
    references match what was placed, and sed_eval scores the detections and the baseline;
    the activity detector finds the tones that the probability detector misses."""
    clips = list_clips(trained.data / "train")
    assert len(clips) == 27 and {label for _, label in clips} == set(HZ)
    cfg = SceneConfig(duration=12.0, sample_rate=SR, events=5, snrs=(6.0, 12.0))
    wavs = build(clips, tmp_path / "scenes", 2, cfg, seed=1)
    reference = read_reference(tmp_path / "scenes" / "reference.csv")
    assert len(wavs) == 2 and len(reference) == 10
    for wav in wavs:
        info = sf.info(wav)
        assert info.samplerate == SR and info.duration == pytest.approx(12.0)
        mine = sorted((e["event_onset"], e["event_offset"]) for e in reference
                      if e["file"] == wav.name)
        assert all(b[0] - a[1] >= cfg.min_gap - 1e-3 for a, b in zip(mine, mine[1:]))
        assert 0 <= mine[0][0] and mine[-1][1] <= 12.0
    again = build(clips, tmp_path / "again", 2, cfg, seed=1)
    assert sf.read(again[0])[0].tolist() == sf.read(wavs[0])[0].tolist()  # seeded

    predictor = Predictor.load("ensemble", trained.models)
    result = score(tmp_path / "scenes", predictor, hop=0.125)
    for kind in ("detected", "top1_baseline"):
        for metric in ("segment_1s", "event_onset_200ms"):
            assert 0 <= result[kind][metric]["f1"] <= 1
    # the baseline labels all background as some class: its segment precision suffers
    assert result["top1_baseline"]["segment_1s"]["recall"] > 0.8
    assert result["top1_baseline"]["segment_1s"]["precision"] < 0.7
    assert result["events"] == 10 and result["scenes"] == 2
    # the tones' probabilities rarely pass `on`; their rise over the noise is plain to see
    by_curve = score(tmp_path / "scenes", predictor, EventParams(detector="probability"),
                     hop=0.125)
    for metric in ("segment_1s", "event_onset_200ms"):
        assert result["detected"][metric]["f1"] >= 0.8
        assert result["detected"][metric]["f1"] > by_curve["detected"][metric]["f1"]


def test_the_timeline_picture_draws_reference_and_detected_lanes(tmp_path: Path) -> None:
    reference = [{"file": "s.wav", "event_label": "low", "event_onset": 1.0, "event_offset": 2.5},
                 {"file": "s.wav", "event_label": "high", "event_onset": 4.0, "event_offset": 5.0}]
    events = [Event(1.1, 2.4, "low", 0.9), Event(6.0, 6.5, "mid", 0.4)]
    out = tmp_path / "timeline.png"
    timeline_png(reference, events, 8.0, out, "s.wav")
    import matplotlib.image as mpimg

    image = mpimg.imread(out)
    assert image.shape[0] > 100 and image.shape[1] > 500  # three lanes: high, low, mid
    assert (image[..., :3].std(axis=(0, 1)) > 0).all()  # something was drawn
