"""The live microphone path without a browser: :class:`LiveStream` on constructed audio
(silence → low → silence → high) with the small trained models, and ``/api/live`` over a real
WebSocket handshake (FastAPI's TestClient): its protocol, its bounds and the site guard."""
from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from sonic.inference.live import MAX_CHUNK_BYTES, LiveError, LiveParams, LiveStream, pcm16
from sonic.serve.app import create_app, load

RATE = 16000  # Hz of the "microphone" (the models' rate is 8 kHz: resampled as a stream)
CLASS_HZ = {"low": 220.0, "mid": 880.0, "high": 2500.0}  # the tones the models learnt
BASE = "http://127.0.0.1:8000"
LIVE = "ws://127.0.0.1:8000/api/live"  # a Host the guard answers to
SCRIPT = [(None, 1.0), ("low", 1.5), (None, 1.0), ("high", 1.5), (None, 0.5)]  # (class, s)


def scripted(script=SCRIPT, rate: int = RATE) -> np.ndarray:
    """Silence and class tones, one after the other, as float32 in [-1, 1]."""
    parts = []
    for label, seconds in script:
        t = np.arange(int(seconds * rate)) / rate
        parts.append(np.zeros(len(t)) if label is None else
                     0.3 * np.sin(2 * np.pi * CLASS_HZ[label] * t))
    return np.concatenate(parts).astype(np.float32)


def to_pcm16(wave: np.ndarray) -> bytes:
    return (np.clip(wave, -1, 1 - 2**-15) * 32768).astype("<i2").tobytes()


def chunks(wave: np.ndarray, seconds: float = 0.05, rate: int = RATE):
    step = int(seconds * rate)
    return (wave[i:i + step] for i in range(0, len(wave), step))


@pytest.fixture(scope="module")
def served(trained):
    predictor, _ = load([str(trained.models / "cnn.pt"), str(trained.models / "resnet.pt")],
                        "none")
    return predictor


def test_stream_labels_and_events_follow_the_sound(served) -> None:
    stream = LiveStream(served, RATE, params=LiveParams(hop=0.1))
    results = []
    for part in chunks(scripted()):
        stream.push(part)
        if stream.due():
            results.append(stream.step())
    window = served.features.duration
    assert stream.describe()["window_s"] == window
    # the resampler holds back a little (0.1 s here); then one answer every hop of audio once a full
    # window is in, the first at 0.5 s
    heard = stream.produced / stream.rate
    assert 5.3 < heard <= 5.5 and stream.received == len(scripted())
    # (a burst of the resampler's output may cover two grid points: one of them is skipped)
    assert len(results) == pytest.approx((heard - window) / 0.1 + 1, abs=2)
    gaps = np.diff([r["end_s"] for r in results])
    assert gaps.min() >= 0.1 - 1e-3 and gaps.max() <= 0.2 + 1e-3
    by_end = {r["end_s"]: r for r in results}
    label_at = lambda t: by_end[min(by_end, key=lambda e: abs(e - t))]["label"]  # noqa: E731
    assert label_at(2.4) == "low" and label_at(4.9) == "high"
    assert len(results[-1]["top"]) == 3
    events = {e["label"]: e for e in results[-1]["events"]}
    assert set(events) == {"low", "high"}, results[-1]["events"]
    # within a window of the truth (the events of a file, docs/events.md)
    assert abs(events["low"]["onset_s"] - 1.0) <= window
    assert abs(events["low"]["offset_s"] - 2.5) <= window
    assert abs(events["high"]["onset_s"] - 3.5) <= window
    assert abs(events["high"]["offset_s"] - 5.0) <= window


def test_stream_keeps_one_window_and_a_bounded_history(served) -> None:
    stream = LiveStream(served, RATE, params=LiveParams(hop=0.5, history=2.0))
    for part in chunks(scripted([("low", 6.0)]), seconds=0.25):
        stream.push(part)
        if stream.due():
            stream.step()
    assert len(stream._buffer) == stream.size
    assert len(stream._starts) == 5  # 2 s / 0.5 s + 1


def test_bad_settings_and_chunks_are_named(served) -> None:
    with pytest.raises(LiveError, match="sample rate"):
        LiveStream(served, 1000)
    with pytest.raises(LiveError, match="hop"):
        LiveParams(hop=0.001)
    with pytest.raises(LiveError, match="limit"):
        pcm16(bytes(MAX_CHUNK_BYTES + 2))
    with pytest.raises(LiveError, match="16-bit"):
        pcm16(b"abc")


@pytest.fixture(scope="module")
def client(served) -> TestClient:
    with TestClient(create_app(served), base_url=BASE) as c:
        yield c


def test_websocket_streams_the_latest_windows_until_stop(client) -> None:
    """Audio sent far faster than real time: windows are skipped (never queued), and ``stop``
    sends the window of the latest audio before the server closes."""
    with client.websocket_connect(LIVE) as ws:
        ws.send_text(json.dumps({"sample_rate": RATE, "hop": 0.25}))
        ready = ws.receive_json()
        assert ready["type"] == "ready" and ready["classes"] == ["high", "low", "mid"]
        for part in chunks(scripted(), seconds=0.1):
            ws.send_bytes(to_pcm16(part))
        ws.send_text("stop")
        results = []
        with pytest.raises(WebSocketDisconnect) as closed:
            while True:
                results.append(ws.receive_json())
    assert closed.value.code == 1000
    assert results and all(r["type"] == "result" for r in results)
    assert len(results) <= 20  # 5.5 s every 0.25 s from 0.5 s, at most
    assert results[-1]["heard_s"] == pytest.approx(5.5)  # the latest audio, whatever was skipped
    assert [r["end_s"] for r in results] == sorted(r["end_s"] for r in results)


def test_websocket_refuses_bad_settings_and_oversized_chunks(client) -> None:
    with client.websocket_connect(LIVE) as ws:
        ws.send_text(json.dumps({"sample_rate": 10}))
        answer = ws.receive_json()
        assert answer["type"] == "error" and "sample_rate" in answer["detail"]
    with client.websocket_connect(LIVE) as ws:
        ws.send_text(json.dumps({"sample_rate": RATE, "model": "nope"}))
        assert "unknown model" in ws.receive_json()["detail"]
    with client.websocket_connect(LIVE) as ws:
        ws.send_text(json.dumps({"sample_rate": RATE}))
        ws.receive_json()
        ws.send_bytes(bytes(MAX_CHUNK_BYTES + 2))
        answer = ws.receive_json()
        assert answer["type"] == "error" and "limit" in answer["detail"]
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 1009


def test_websocket_meets_the_site_guard(served) -> None:
    with TestClient(create_app(served, token="s3cret"), base_url=BASE) as c:
        for headers, path in [({"Origin": "http://evil.example"}, f"{LIVE}?token=s3cret"),
                              ({}, LIVE), ({}, f"{LIVE}?token=wrong")]:
            with pytest.raises(WebSocketDisconnect) as refused:
                with c.websocket_connect(path, headers=headers):
                    pass
            assert refused.value.code == 1008
        for headers, path in [({}, f"{LIVE}?token=s3cret"),
                              ({"Authorization": "Bearer s3cret"}, LIVE),
                              ({"Origin": BASE}, f"{LIVE}?token=s3cret")]:
            with c.websocket_connect(path, headers=headers) as ws:
                ws.send_text(json.dumps({"sample_rate": RATE}))
                assert ws.receive_json()["type"] == "ready"
        # the page asks for the token itself: it and its files need none, the API does
        assert c.get("/").status_code == 200 and c.get("/static/app.js").status_code == 200
        assert c.get("/api/models").status_code == 401
        assert c.get("/api/models", headers={"Authorization": "Bearer s3cret"}).status_code == 200
