"""The live latency benchmark's bookkeeping (sonic/bench/live.py) on a constructed page record:
which onsets it finds, which clip each is, and the time to its label; the microphone file."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sonic.bench.live import GAPS_S, RATE, latencies, microphone_wav, onsets


def record(script: list[tuple[str, float, float]]) -> list[dict]:
    """A page record: 20 ms chunks captured at 1000 ms + their end (no delay), loud where the
    script says, and "shown" entries (label, stream second, delay in ms after that second)."""
    log, chunk, rate = [], 960, 48000
    loud_spans = [(1.0, 3.0), (6.0, 8.0)]  # seconds of the stream that are loud
    for i in range(int(10 * rate / chunk)):
        start, end = i * chunk / rate, (i + 1) * chunk / rate
        loud = next((max(0, round((a - start) * rate)) for a, b in loud_spans
                     if a < end and b > start), -1)
        log.append({"kind": "chunk", "t": 1000 + 1000 * end, "end": (i + 1) * chunk, "n": chunk,
                    "loud": loud, "rate": rate})
    for label, second, delay in script:
        log.append({"kind": "shown", "t": 1000 + 1000 * second + delay, "label": label,
                    "end_s": second, "heard_s": second})
    return sorted(log, key=lambda e: e["t"])


def test_latency_is_from_the_loud_sample_to_the_frame_showing_its_label() -> None:
    log = record([("rain", 0.5, 10), ("siren", 1.5, 40), ("siren", 2.0, 40),
                  ("rain", 4.0, 10), ("dog_bark", 6.8, 30), ("siren", 8.5, 30)])
    found = onsets(log, quiet_s=0.5)
    assert [round(o["stream_s"], 3) for o in found] == [1.0, 6.0]
    assert found[0]["captured_ms"] == pytest.approx(2000)
    # gaps: siren's onset to dog_bark's is 5 s, dog_bark's to the next siren's 4 s (looped)
    rows = latencies(log, ["siren", "dog_bark"], [5.0, 4.0], quiet_s=0.5)
    assert rows == [{"onset_s": 1.0, "label": "siren", "label_before": "rain",
                     "latency_ms": 540}]  # shown at 1.5 s + 40 ms, the sound began at 1.0 s


def test_microphone_file_alternates_quiet_and_clips(tmp_path: Path) -> None:
    clips = []
    for i, hz in enumerate([440.0, 1000.0]):
        t = np.arange(8000) / 16000
        clips.append(tmp_path / f"c{i}.wav")
        sf.write(clips[-1], 0.1 * np.sin(2 * np.pi * hz * t), 16000)
    gaps = microphone_wav(clips, tmp_path / "mic.wav")
    wave, rate = sf.read(tmp_path / "mic.wav")
    assert rate == RATE and len(wave) == pytest.approx((sum(GAPS_S) + 1.0) * RATE, abs=2)
    assert gaps == pytest.approx([0.5 + GAPS_S[1], 0.5 + GAPS_S[0]])
    assert np.abs(wave[:int(GAPS_S[0] * RATE)]).max() < 0.05  # quiet: below the page's onset
    assert np.abs(wave).max() == pytest.approx(0.5, abs=1e-3)
