"""``sonic serve`` against hostile input, the real server in a subprocess under a 4 GiB
address-space limit (``RLIMIT_AS``), on loopback: every request of issue 25 gets its 4xx naming
the problem, a normal request still succeeds afterwards, and the server is still running."""
from __future__ import annotations

import http.client
import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from sonic.bench.hostile import Hostile, hostile_requests, send, start_server, write_inputs
from sonic.bench.inference import free_loopback_port
from sonic.serve.app import MAX_INSPECT_VALUES, inspect_size

ADDRESS_SPACE = 4 << 30  # bytes: torch's libraries need ~3 GiB of address space to load


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture(scope="module")
def server(trained, tmp_path_factory) -> Iterator[tuple[str, subprocess.Popen, Path]]:
    """A server with ``--max-seconds 60`` and its own temp dir, where a killed server's upload
    folder was left behind."""
    tmp = tmp_path_factory.mktemp("server_tmp")
    (tmp / f"sonic-upload-{_dead_pid()}-abcd1234").mkdir()
    port = free_loopback_port()
    proc = start_server(trained.models, port, "--max-seconds", "60", preexec_fn=_limit_memory,
                        env={"TMPDIR": str(tmp)})
    yield f"http://127.0.0.1:{port}", proc, tmp
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    return write_inputs(tmp_path_factory.mktemp("hostile"), long_seconds=120)


def test_every_hostile_request_gets_its_4xx_and_the_server_keeps_serving(server, files) -> None:
    base, proc, _ = server
    for request in hostile_requests(files):
        status, body, _ = send(base, request, timeout=60)
        assert status == request.expect, (request.name, status, body)
        if status == 422 and request.file is not None and "hop" not in request.params \
                and "window" not in request.params:
            assert body.startswith(f'{{"detail":"{request.file.name}:'), (request.name, body)
    status, body, _ = send(base, Hostile("good", "/api/predict", 200, files["good"]))
    assert status == 200 and '"status":"ok"' in body
    assert proc.poll() is None


def test_hostile_answers_say_what_is_wrong(server, files) -> None:
    base = server[0]
    words = {"hour-long FLAC": "the limit is 60 s", "WAV declaring 1 Hz": "sample rate 1 Hz",
             "1e20 float sine": "beyond ±100", "33 channels": "33 channels",
             "truncated WAV, no suffix": "truncated WAV", "hop=0.00001": "window / 8",
             "foreign Origin": "cross-site", "unknown Host": "unknown Host"}
    for request in hostile_requests(files):
        if request.name in words:
            assert words[request.name] in send(base, request)[1], request.name


def test_inspect_answer_is_bounded(server, files) -> None:
    """The largest inspect request the params allow (a 60 s window, 64 channels) is either
    answered within MAX_INSPECT_VALUES numbers or refused with a 422 that says what to ask."""
    request = Hostile("big inspect", "/api/inspect", 422, files["good"],
                      {"window": "60", "channels": "64"})
    status, body, _ = send(server[0], request)
    if status == 422:  # the pipeline's models: too many feature-map numbers
        assert "fewer channels" in body
        return
    assert status == 200
    answer = json.loads(body)
    assert inspect_size(answer["layers"], answer["mel"]) <= MAX_INSPECT_VALUES
    assert len(body) < 16 * MAX_INSPECT_VALUES  # bytes: a bounded answer


def test_a_killed_servers_upload_folder_is_swept_at_start(server) -> None:
    tmp = server[2]
    assert not [p for p in tmp.iterdir() if p.name.startswith("sonic-upload-")]


def test_a_token_is_needed_off_loopback_and_then_on_every_request(trained, files) -> None:
    refused = subprocess.run([sys.executable, "-m", "sonic", "serve", "--host", "0.0.0.0",
                              "--models", str(trained.models / "cnn.pt")], capture_output=True,
                             text=True, timeout=60, env={**os.environ, "SONIC_TOKEN": ""})
    assert refused.returncode == 2 and "--token" in refused.stderr
    port = free_loopback_port()
    proc = start_server(trained.models, port, preexec_fn=_limit_memory,
                        env={"SONIC_TOKEN": "s3cret-token"})
    try:
        base, good = f"http://127.0.0.1:{port}", Hostile("g", "/api/predict", 200, files["good"])
        assert send(base, good)[0] == 401
        wrong = Hostile("g", "/api/predict", 401, files["good"],
                        headers={"Authorization": "Bearer nope"})
        assert send(base, wrong)[0] == 401
        right = Hostile("g", "/api/predict", 200, files["good"],
                        headers={"Authorization": "Bearer s3cret-token"})
        assert send(base, right)[0] == 200
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/?token=s3cret-token")
        reply = conn.getresponse()
        cookie = reply.getheader("set-cookie")
        assert reply.status == 303 and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        reply.read()
        conn.request("GET", "/api/models", headers={"Cookie": cookie.split(";")[0]})
        assert conn.getresponse().status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)
