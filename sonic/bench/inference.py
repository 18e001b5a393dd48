"""``python -m sonic.bench --inference``: how fast trained models answer, from the CLI and HTTP.

``predict``
    ``sonic predict`` (the real command, in its own process, output to a file) over every clip
    of ``--data``: wall time including start-up and model loading, clips/s and windows/s. Beside
    it, the first 200 files through :class:`~sonic.inference.predictor.Predictor` one at a time
    in this process (models loaded, one decoding process, one forward per file) — what a naive
    loop over ``predict_file`` costs — and the largest probability difference between the two.
``serve``
    ``sonic serve`` on a free loopback port. Latency of ``POST /api/predict`` for one clip of
    the data (the first clip of at least 5 s, else the longest), ``--requests`` sequential
    requests after 3 warm-up ones: p50 and p95; the same for the page's second call
    (``/api/inspect``). Then ``--clients`` threads each send ``--requests`` predict requests
    (bounded by ``--seconds``), three times over: requests/s, errors, and the server's resident
    memory before the load and after each round (flat memory: no growth from round to round).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import soundfile as sf


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


ROUNDS = 3  # of the concurrent load, memory read after each
LOOP_CLIPS = 200  # files the per-file baseline runs over (its clips/s is what is compared)


def bench_predict(models: Path, files: list[Path], model: str) -> dict:
    """The CLI over ``files`` against a per-file loop over the first :data:`LOOP_CLIPS`."""
    from sonic.inference.predictor import Predictor

    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "out.json"
        t0 = time.perf_counter()
        with open(listing, "w") as out:
            proc = subprocess.run([sys.executable, "-m", "sonic", "predict", *map(str, files),
                                   "--models-dir", str(models), "--model", model,
                                   "--format", "json"], stdout=out, stderr=subprocess.PIPE,
                                  text=True)
        cli_s = time.perf_counter() - t0
        if proc.returncode not in (0, 1):
            raise RuntimeError(f"sonic predict failed: {proc.stderr[-2000:]}")
        results = json.loads(listing.read_text())
    ok = [r for r in results if r["status"] == "ok"]
    predictor = Predictor.load(model, models)
    predictor.predict_file(files[0])  # warm-up: lazily built modules, first allocations
    loop_files = files[:LOOP_CLIPS]
    t0 = time.perf_counter()
    loop = [predictor.predict_file(p) for p in loop_files]
    loop_s = time.perf_counter() - t0
    naive_s = _naive_loop(models, model, loop_files, predictor)
    diff = max(abs(a["probability"] - b["probability"])
               for r, p in zip(results, loop) if r["status"] == "ok"
               for a, b in zip(r["top"], p.to_dict(len(r["top"]))["top"]))
    n_windows = sum(len(r["windows"]) for r in ok)
    return {"clips": len(files), "predicted": len(ok), "windows": n_windows, "model": model,
            "window_s": ok[0]["window_s"] if ok else None,
            "cli_s": cli_s, "cli_clips_per_s": len(files) / cli_s,
            "cli_windows_per_s": n_windows / cli_s,
            "precision": ok[0]["precision"] if ok else None,
            "per_file_loop_clips": len(loop_files), "per_file_loop_s": loop_s,
            "per_file_loop_clips_per_s": len(loop_files) / loop_s,
            "speedup": (len(files) / cli_s) / (len(loop_files) / loop_s),
            "naive_fp32_loop_s": naive_s, "naive_fp32_clips_per_s": len(loop_files) / naive_s,
            "speedup_vs_naive": (len(files) / cli_s) / (len(loop_files) / naive_s),
            "max_top_probability_diff": diff,
            "note": "cli: `sonic predict` in its own process, start-up and model loading "
                    "included; per_file_loop: Predictor.predict_file per file in one process "
                    "(models already loaded) over the first per_file_loop_clips files; "
                    "naive_fp32: the same files, each through load_windows and every "
                    "model's Classifier.predict in fp32 (no bf16, no channels_last, no "
                    "batching across files); speedups: ratios of the clips/s"}


def _naive_loop(models: Path, model: str, files: list[Path], predictor) -> float:
    """Seconds for ``files`` one by one through :class:`Classifier.predict` in fp32: what the
    checkpoint API gives without the Predictor's precision, memory format and batching."""
    from sonic.inference.predictor import ENSEMBLE, PIPELINE_MODELS
    from sonic.inference.windows import load_windows
    from sonic.models.checkpoint import load_classifier

    names = PIPELINE_MODELS if model == ENSEMBLE else (model,)
    classifiers = [load_classifier(models / f"{n}.pt") for n in names]
    windowing = predictor.windowing()
    t0 = time.perf_counter()
    for path in files:
        clip = load_windows(path, predictor.features, windowing)
        if clip.error is None:
            np.mean([c.predict(clip.mels)["probs"] for c in classifiers], axis=0)
    return time.perf_counter() - t0


def _multipart(path: Path) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{path.name}"\r\nContent-Type: application/octet-stream\r\n\r\n').encode()
    return head + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode(), boundary


def _post(url: str, body: bytes, boundary: str) -> float:
    request = urllib.request.Request(url, body, method="POST", headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}"})
    t0 = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()
    return time.perf_counter() - t0


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS:"))


def free_loopback_port() -> int:
    """A TCP port nothing listens on at 127.0.0.1 now (the kernel's pick)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(checkpoints: list[Path], port: int, *extra: str, preexec_fn=None,
                 env: dict | None = None) -> subprocess.Popen:
    """``sonic serve`` of ``checkpoints`` on 127.0.0.1:``port``, once it answers (a refusal,
    such as a 401 under a token, counts); ``preexec_fn`` runs in the child before it starts
    (e.g. a memory limit), ``env`` adds to the environment."""
    cmd = [sys.executable, "-m", "sonic", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--models", *map(str, checkpoints), "--generator", "none", *extra]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              preexec_fn=preexec_fn, env={**os.environ, **(env or {})})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/models", timeout=2).read()
            return server
        except urllib.error.HTTPError:
            return server
        except OSError:
            if server.poll() is not None:
                raise RuntimeError(f"sonic serve exited: {server.stderr.read()[-2000:]}") from None
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("sonic serve did not answer within 120 s")


def _load(url: str, body: bytes, boundary: str, clients: int, requests: int,
          seconds: float) -> dict:
    """``clients`` threads, each up to ``requests`` requests, all stopping at ``seconds``."""
    done, errors, lock = [], [], threading.Lock()
    stop_at = time.monotonic() + seconds

    def client() -> None:
        for _ in range(requests):
            if time.monotonic() > stop_at:
                return
            try:
                elapsed = _post(url, body, boundary)
                with lock:
                    done.append(elapsed)
            except (OSError, urllib.error.HTTPError) as err:
                with lock:
                    errors.append(str(err))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {"clients": clients, "requests": len(done), "errors": len(errors),
            "first_errors": errors[:3], "seconds": wall, "requests_per_s": len(done) / wall,
            "latency_p50_ms": 1e3 * _percentile(done, 50) if done else None,
            "latency_p95_ms": 1e3 * _percentile(done, 95) if done else None}


def bench_serve(models: Path, clip: Path, requests: int, clients: int, seconds: float) -> dict:
    port = free_loopback_port()
    server = start_server([models / "cnn.pt", models / "resnet.pt"], port)
    try:
        base = f"http://127.0.0.1:{port}"
        body, boundary = _multipart(clip)
        timings = {}
        for route in ("predict", "inspect"):
            url = f"{base}/api/{route}"
            for _ in range(3):  # warm-up: first-call allocations, lazily built modules
                _post(url, body, boundary)
            timings[route] = [_post(url, body, boundary) for _ in range(requests)]
        # the load in rounds, memory read after each: a leak grows every round; allocator and
        # thread-pool warm-up only the first
        rss = [_rss_mib(server.pid)]
        rounds = []
        for _ in range(ROUNDS):
            rounds.append(_load(f"{base}/api/predict", body, boundary, clients, requests,
                                seconds / ROUNDS))
            rss.append(_rss_mib(server.pid))
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {"clip": str(clip), "clip_s": sf.info(str(clip)).duration, "requests": requests,
            **{f"{route}_p{q}_ms": 1e3 * _percentile(t, q)
               for route, t in timings.items() for q in (50, 95)},
            "concurrent": _merge(rounds), "rounds": rounds, "rss_mib_after_each_round": rss,
            "rss_mib_before_load": rss[0], "rss_mib_after_load": rss[-1]}


def _merge(rounds: list[dict]) -> dict:
    """The rounds of :func:`_load` as one load: sums, and the worst round's latency."""
    seconds = sum(r["seconds"] for r in rounds)
    done = sum(r["requests"] for r in rounds)
    return {"clients": rounds[0]["clients"], "requests": done,
            "errors": sum(r["errors"] for r in rounds), "seconds": seconds,
            "requests_per_s": done / seconds,
            "latency_p50_ms": max(r["latency_p50_ms"] or 0 for r in rounds),
            "latency_p95_ms": max(r["latency_p95_ms"] or 0 for r in rounds)}


def pick_clip(files: list[Path], seconds: float = 5.0) -> Path:
    """The first clip at least ``seconds`` long, else the longest."""
    durations = [(sf.info(str(f)).duration, f) for f in files[:200]]
    return next((f for d, f in durations if d >= seconds - 1e-3), max(durations)[1])


def bench_inference(models: Path, files: list[Path], model: str, requests: int, clients: int,
                    seconds: float) -> dict:
    os.environ.setdefault("TQDM_DISABLE", "1")
    return {"predict": bench_predict(models, files, model),
            "serve": bench_serve(models, pick_clip(files), requests, clients, seconds)}
