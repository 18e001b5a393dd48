"""The HTTP API of ``sonic serve`` (FastAPI, in-process) against small models trained in the
session: the same answers as ``sonic predict``, feature maps, generation, and every bad request
answered with a 4xx naming the problem while the server keeps answering."""
from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Iterator

import numpy as np
import pytest
import soundfile as sf
import uvicorn
from fastapi.testclient import TestClient

from sonic.bench.inference import free_loopback_port
from sonic.inference.predictor import Predictor
from sonic.serve.app import create_app, load

LIMIT = 1_000_000  # bytes: the upload limit of the test app
BASE = "http://127.0.0.1:8000"  # a Host the app answers to (loopback)


@pytest.fixture(scope="module")
def client(trained) -> TestClient:
    predictor, generator = load([str(trained.models / "cnn.pt"), str(trained.models / "resnet.pt")],
                                str(trained.models / "cgan.pt"))
    with TestClient(create_app(predictor, generator, LIMIT), base_url=BASE) as c:
        yield c


@pytest.fixture(scope="module")
def wav(trained) -> bytes:
    return (trained.data / "train" / "mid" / "mid1.wav").read_bytes()  # 0.35 s, stereo, 8 kHz


def upload(client: TestClient, route: str, data: bytes, name: str = "clip.wav", **params):
    return client.post(route, params=params, files={"file": (name, data, "audio/wav")})


def test_models_lists_classifiers_classes_and_generator(client, trained) -> None:
    info = client.get("/api/models").json()
    assert [m["name"] for m in info["models"]] == ["cnn", "resnet", "ensemble"]
    assert info["default"] == "ensemble" and info["classes"] == trained.classes
    assert info["models"][0]["layers"] == ["block1", "block2"]
    assert info["models"][1]["layers"] == ["stem", "layer1", "layer2"]
    assert info["generator"] == {"loaded": True, "classes": trained.classes}
    assert info["window_s"] == trained.features.duration and info["max_upload_bytes"] == LIMIT


def test_predict_answers_what_the_cli_prints(client, trained, wav) -> None:
    path = trained.data / "train" / "mid" / "mid1.wav"
    cli = subprocess.run([sys.executable, "-m", "sonic", "predict", str(path), "--models-dir",
                          str(trained.models), "--model", "ensemble", "--format", "json"],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    expected = json.loads(cli.stdout)[0]
    got = upload(client, "/api/predict", wav, name="mid1.wav").json()
    assert got == {**expected, "file": "mid1.wav"}
    assert got["top"][0]["label"] == "mid" and len(got["top"]) == 3


def test_predict_options(client, wav) -> None:
    got = upload(client, "/api/predict", wav, model="resnet", top_k=1, window=0.2, hop=0.1).json()
    assert got["model"] == "resnet" and len(got["top"]) == 1
    assert got["window_s"] == 0.2 and len(got["windows"]) == 3  # 0, 0.1 and the tail at 0.15


def test_inspect_returns_input_and_feature_maps(client, trained, wav) -> None:
    got = upload(client, "/api/inspect", wav, model="cnn", channels=4).json()
    n_mels, n_frames = trained.features.n_mels, trained.features.n_frames
    assert got["mel"]["shape"] == [n_mels, n_frames]
    mel = np.array(got["mel"]["data"])
    assert mel.shape == (n_mels, n_frames) and 0 <= mel.min() < mel.max() <= 255
    assert len(got["waveform"]["min"]) == len(got["waveform"]["max"]) > 100
    assert [layer["name"] for layer in got["layers"]] == ["block1", "block2"]
    block1 = got["layers"][0]
    assert block1["channels"] == 8 and block1["shape"] == [n_mels // 2, n_frames // 2]
    means = [m["mean"] for m in block1["maps"]]
    assert len(means) == 4 and means == sorted(means, reverse=True)  # the most active first
    assert max(np.max(m["data"]) for m in block1["maps"]) == 255  # one scale per layer
    resnet = upload(client, "/api/inspect", wav, model="resnet").json()
    assert [layer["name"] for layer in resnet["layers"]] == ["stem", "layer1", "layer2"]


def test_inspect_is_the_predictors(client, trained, wav, tmp_path) -> None:
    """One inference path: the route parses, calls Predictor.inspect and adds the file's name;
    the window index is clamped to the last window, whose start and end lie in the file."""
    path = tmp_path / "clip.wav"
    path.write_bytes(wav)
    predictor = Predictor.from_checkpoints([trained.models / "cnn.pt",
                                            trained.models / "resnet.pt"])
    assert predictor.default == "ensemble" and predictor.models == ["cnn", "resnet", "ensemble"]
    windowing = predictor.windowing(0.2, 0.1)
    direct = predictor.inspect(path, "resnet", window_index=99, channels=2, windowing=windowing)
    got = upload(client, "/api/inspect", wav, name="clip.wav", model="resnet", window_index=99,
                 channels=2, window=0.2, hop=0.1).json()
    assert got == {"file": "clip.wav", **json.loads(json.dumps(direct))}
    last = direct["n_windows"] - 1
    assert last >= 1 and direct["window"]["index"] == last
    assert 0 < direct["window"]["start_s"] < direct["window"]["end_s"] <= direct["duration_s"]


def test_generate_gives_wavs_and_spectrograms_of_the_class(client, trained) -> None:
    got = client.post("/api/generate", json={"label": "high", "n": 2, "seed": 5}).json()
    assert got["label"] == "high" and got["seed"] == 5 and len(got["clips"]) == 2
    audio, sr = sf.read(io.BytesIO(base64.b64decode(got["clips"][0]["wav_base64"])))
    assert sr == trained.features.sample_rate and got["sample_rate"] == sr
    assert len(audio) == (trained.features.n_frames - 1) * trained.features.hop_length
    assert 0.9 < np.abs(audio).max() <= 1.0  # peak-normalised to 0.99
    assert got["clips"][0]["mel"]["shape"] == [trained.features.n_mels, trained.features.n_frames]
    again = client.post("/api/generate", json={"label": "high", "n": 2, "seed": 5}).json()
    assert again["clips"] == got["clips"]  # same seed, same clips
    fresh = client.post("/api/generate", json={"label": "high"}).json()
    assert len(fresh["clips"]) == 1 and isinstance(fresh["seed"], int)


@pytest.mark.parametrize("name, word", [
    ("truncated.wav", "truncated"), ("empty.wav", "empty file"),
    ("text.wav", "not a readable audio file"), ("nan.wav", "NaN"),
    ("silent.wav", "every sample is zero"), ("cancelling.wav", "channels are mixed to mono"),
])
def test_bad_uploads_get_422_naming_the_file_and_problem(client, bad_files_writer, tmp_path,
                                                         name, word) -> None:
    bad = bad_files_writer(tmp_path)
    data = (tmp_path / name).read_bytes()
    for route in ("/api/predict", "/api/inspect"):
        response = upload(client, route, data, name=f"my_{name}")
        assert response.status_code == 422, response.text
        detail = response.json()["detail"]
        assert detail.startswith(f"my_{name}:") and word in detail
        assert "sonic-upload-" not in detail  # never the server's temporary path
    assert len(bad) == 6


def test_unknown_model_class_and_missing_parts(client, wav) -> None:
    unknown = upload(client, "/api/predict", wav, model="vgg")
    assert unknown.status_code == 404 and "unknown model 'vgg'" in unknown.json()["detail"]
    assert upload(client, "/api/inspect", wav, model="ensemble").status_code == 200  # first one
    assert upload(client, "/api/inspect", wav, model="vgg").status_code == 404
    cls = client.post("/api/generate", json={"label": "dog"})
    assert cls.status_code == 404 and "unknown class 'dog'" in cls.json()["detail"]
    assert client.post("/api/generate", json={"label": "high", "n": 99}).status_code == 422
    assert client.post("/api/predict").status_code == 422  # no file part
    assert upload(client, "/api/predict", wav, top_k=0).status_code == 422
    assert upload(client, "/api/predict", wav, window=-1).status_code == 422


@pytest.fixture(scope="module")
def live_server(client) -> Iterator[tuple[str, int]]:
    """The test app on a real loopback socket (uvicorn in a thread), for what an in-process
    client cannot show: when the server stops reading a body."""
    port = free_loopback_port()
    server = uvicorn.Server(uvicorn.Config(client.app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start within 30 s"
        time.sleep(0.05)
    yield "127.0.0.1", port
    server.should_exit = True
    thread.join(timeout=10)


def _read_reply(sock: socket.socket) -> str:
    """One whole HTTP response: the head, then as many body bytes as it declares."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096) or b"\r\n\r\n"
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = sock.recv(4096)
        if not chunk:
            break
        body += chunk
    return (head + b"\r\n\r\n" + body).decode()


def _response_ready(sock: socket.socket) -> bool:
    return bool(select.select([sock], [], [], 0)[0])


def test_declared_oversized_upload_gets_413_before_any_body_byte(live_server) -> None:
    with socket.create_connection(live_server, timeout=10) as sock:
        sock.sendall(b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/"
                     b"form-data; boundary=x\r\nContent-Length: 60000000\r\n\r\n")
        reply = _read_reply(sock)  # not one byte of the 60 MB body was sent
    assert reply.startswith("HTTP/1.1 413") and "limit is 1 MB" in reply


def test_streamed_oversized_upload_is_cut_off_at_the_limit(live_server) -> None:
    """Chunked, without a length: the 413 arrives after about the limit, long before the 5 MB
    offered have been sent."""
    chunk = b"\0" * 100_000
    part = (b'--x\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\n'
            b"Content-Type: audio/wav\r\n\r\n")
    sent = 0
    with socket.create_connection(live_server, timeout=10) as sock:
        sock.sendall(b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/"
                     b"form-data; boundary=x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"%x\r\n%s\r\n" % (len(part), part))
        with contextlib.suppress(OSError):  # the server may close while we still send
            while sent < 5_000_000 and not _response_ready(sock):
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
                time.sleep(0.01)
        reply = _read_reply(sock)
    assert reply.startswith("HTTP/1.1 413") and "upload too large" in reply
    assert sent < 3_000_000


def test_requests_never_touch_files_outside_a_temporary_folder(client, wav, tmp_path,
                                                               monkeypatch) -> None:
    """Uploads land in a fresh folder under the temp dir, under a fixed name, and are gone
    afterwards; a file or model name that looks like a path is only ever a name."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.chdir(tmp_path)
    response = upload(client, "/api/predict", wav, name="../../escape.wav")
    assert response.status_code == 200 and response.json()["file"] == "escape.wav"
    assert upload(client, "/api/predict", wav, model="../models/cnn.pt").status_code == 404
    assert upload(client, "/api/inspect", wav, name="/etc/passwd").status_code == 200
    assert list(scratch.iterdir()) == []  # every upload folder removed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tmp"]
    assert not (tmp_path.parent / "escape.wav").exists()


def test_server_keeps_answering_after_bad_requests(client, wav) -> None:
    for data in (b"", b"RIFF", b"not audio at all"):
        assert upload(client, "/api/predict", data).status_code == 422
    assert upload(client, "/api/predict", wav).status_code == 200


def test_without_a_generator_generate_says_so(trained, wav) -> None:
    predictor, generator = load([str(trained.models / "resnet.pt")], "none")
    with TestClient(create_app(predictor, generator), base_url=BASE) as c:
        info = c.get("/api/models").json()
        assert info["generator"]["loaded"] is False and info["default"] == "resnet"
        response = c.post("/api/generate", json={"label": "high"})
        assert response.status_code == 503 and "no generator loaded" in response.json()["detail"]
        assert upload(c, "/api/predict", wav).json()["model"] == "resnet"


def test_page_and_docs_are_served_without_external_urls(client) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "<html" in page.text.lower()
    docs = client.get("/docs")
    assert docs.status_code == 200
    for text in (page.text, docs.text):
        assert "cdn" not in text.lower() and "https://" not in text
    spec = client.get("/openapi.json").json()
    assert {"/api/predict", "/api/inspect", "/api/generate", "/api/models"} <= set(spec["paths"])
