"""``python -m sonic.bench.hostile``: ``sonic serve`` under a bounded adversarial load.

The requests of issue 25 — a FLAC of an hour of tone, a WAV declaring 1 Hz, a 1e20 float sine,
a truncated WAV without its suffix, 33 channels, ``hop=0.00001``, an inspect answer of
``window=600&channels=64``, ``seed=2**70``, a foreign ``Origin`` and an unknown ``Host`` — are
sent ``--requests`` times, ``--concurrency`` at a time, to a real server on a free loopback port
while one normal client keeps posting a good clip. Reported: the status and time of each answer
by kind (and of all: slowest, median), the normal client's successes, failures and slowest
answer, the server's peak resident memory (``VmHWM``), the CPU model and the date. The same
requests serve ``tests/test_hostile_serve.py``.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from sonic.bench.inference import free_loopback_port
from sonic.docs.provenance import cpu_model
from sonic.bench.inference import start_server as serve_checkpoints
from sonic.inference.predictor import PIPELINE_MODELS


@dataclass(frozen=True)
class Hostile:
    """One request and the status it must get."""

    name: str
    route: str
    expect: int
    file: Path | None = None
    params: dict = field(default_factory=dict)
    headers: dict = field(default_factory=dict)
    body: dict | None = None  # JSON instead of a file


def write_inputs(folder: Path, long_seconds: float) -> dict[str, Path]:
    """The files: ``good.wav`` (1 s of tone) and the hostile ones (a few hundred kB at most)."""
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(8000, dtype=np.float32) / 8000
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    sf.write(folder / "good.wav", tone, 8000, subtype="PCM_16")
    with sf.SoundFile(folder / "long.flac", "w", 8000, 1, "PCM_16") as f:
        for _ in range(int(long_seconds)):  # a constant value: FLAC packs an hour into 89 kB
            f.write(np.full(8000, 0.25, np.float32))  # (a 440 Hz tone: 15 MB)
    sf.write(folder / "one_hz.wav", tone[:2000], 8000, subtype="PCM_16")
    data = bytearray((folder / "one_hz.wav").read_bytes())
    data[24:32] = (1).to_bytes(4, "little") + (2).to_bytes(4, "little")  # rate 1 Hz, 2 B/s
    (folder / "one_hz.wav").write_bytes(bytes(data))
    sf.write(folder / "loud.wav", tone * 1e20, 8000, subtype="FLOAT")
    sf.write(folder / "wide.wav", np.tile(tone[:800, None], (1, 33)), 8000, subtype="PCM_16")
    whole = (folder / "good.wav").read_bytes()
    (folder / "recording").write_bytes(whole[:len(whole) // 2])  # truncated, no suffix
    return {p.stem: p for p in folder.iterdir()}


def hostile_requests(files: dict[str, Path]) -> list[Hostile]:
    """The hostile requests of issue 25 and the 4xx each must get."""
    good = files["good"]
    return [
        Hostile("hour-long FLAC", "/api/predict", 422, files["long"]),
        Hostile("WAV declaring 1 Hz", "/api/predict", 422, files["one_hz"]),
        Hostile("1e20 float sine", "/api/predict", 422, files["loud"]),
        Hostile("33 channels", "/api/predict", 422, files["wide"]),
        Hostile("truncated WAV, no suffix", "/api/predict", 422, files["recording"]),
        Hostile("hop=0.00001", "/api/predict", 422, good, {"hop": "0.00001"}),
        Hostile("inspect window=600 channels=64", "/api/inspect", 422, good,
                {"window": "600", "channels": "64"}),
        Hostile("seed=2**70", "/api/generate", 422, body={"label": "x", "seed": 2**70}),
        Hostile("foreign Origin", "/api/predict", 403, good,
                headers={"Origin": "http://evil.example"}),
        Hostile("unknown Host", "/api/predict", 400, good, headers={"Host": "evil.example"}),
    ]


def send(base: str, request: Hostile, timeout: float = 60.0) -> tuple[int, str, float]:
    """(status, body, seconds) of one request."""
    url = f"{base}{request.route}"
    if request.params:
        url += "?" + "&".join(f"{k}={v}" for k, v in request.params.items())
    headers = dict(request.headers)
    if request.body is not None:
        data = json.dumps(request.body).encode()
        headers["Content-Type"] = "application/json"
    else:
        boundary = uuid.uuid4().hex
        data = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename='
                f'"{request.file.name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
                ).encode() + request.file.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
        headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
    req = urllib.request.Request(url, data, headers, method="POST")
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, response.read().decode(), time.perf_counter() - t0
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(), time.perf_counter() - t0


def start_server(models: Path, port: int, *extra: str, preexec_fn=None,
                 env: dict | None = None, names: tuple[str, ...] = ("cnn",)) -> subprocess.Popen:
    """``sonic serve`` with ``models``' ``<name>.pt`` for each of ``names`` on
    127.0.0.1:``port``, once it answers, one thread; ``preexec_fn`` runs in the child before it
    starts (e.g. a memory limit)."""
    return serve_checkpoints([models / f"{name}.pt" for name in names], port, *extra,
                             preexec_fn=preexec_fn,
                             env={"OMP_NUM_THREADS": "1", **(env or {})})


def peak_rss_mib(pid: int) -> float:
    """Peak resident memory (VmHWM) of a live process, MiB."""
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmHWM:"))


def run(models: Path, n_requests: int = 50, concurrency: int = 4,
        long_seconds: float = 3600.0, names: tuple[str, ...] = PIPELINE_MODELS) -> dict:
    """The adversarial load against a fresh server of ``names`` from ``models`` (by default
    the pipeline's classifiers, served as their ensemble); the figures as a dict."""
    with tempfile.TemporaryDirectory() as tmp:
        files = write_inputs(Path(tmp), long_seconds)
        kinds = hostile_requests(files)
        port = free_loopback_port()
        server = start_server(models, port, names=names)
        base = f"http://127.0.0.1:{port}"
        try:
            idle = peak_rss_mib(server.pid)
            good = Hostile("normal", "/api/predict", 200, files["good"])
            # the first request pays for what the server builds lazily; it is reported apart
            warm_status, _, warm_s = send(base, good)
            normal, stop = [], threading.Event()

            def client() -> None:
                while not stop.is_set():
                    status, _, seconds = send(base, good)
                    normal.append((status, seconds))

            thread = threading.Thread(target=client)
            thread.start()
            jobs = [kinds[i % len(kinds)] for i in range(n_requests)]
            with ThreadPoolExecutor(concurrency) as pool:
                answers = list(pool.map(lambda r: send(base, r), jobs))
            stop.set()
            thread.join()
            peak = peak_rss_mib(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)
    per_kind = {}
    for request, (status, _, seconds) in zip(jobs, answers):
        entry = per_kind.setdefault(request.name, {"expect": request.expect, "statuses": [],
                                                   "seconds": []})
        entry["statuses"].append(status)
        entry["seconds"].append(round(seconds, 3))
    return {"cpu": cpu_model(), "date": time.strftime("%Y-%m-%d", time.gmtime()),
            "models": [str(models / f"{name}.pt") for name in names],
            "hostile_requests": n_requests, "concurrency": concurrency,
            "all_as_expected": all(s == r.expect for r, (s, _, _) in zip(jobs, answers)),
            "slowest_s": round(max(s for _, _, s in answers), 3),
            "median_s": round(float(np.median([s for _, _, s in answers])), 3),
            "per_kind": per_kind, "normal_ok": sum(s == 200 for s, _ in normal),
            "normal_failed": sum(s != 200 for s, _ in normal),
            "normal_slowest_s": round(max((t for _, t in normal), default=0.0), 3),
            "first_request": {"status": warm_status, "seconds": round(warm_s, 3)},
            "server_rss_idle_mib": round(idle, 1), "server_rss_peak_mib": round(peak, 1)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=Path, default=Path("data/models"),
                        help="folder of the pipeline's checkpoints (default data/models)")
    parser.add_argument("--names", nargs="+", default=list(PIPELINE_MODELS),
                        help="checkpoints <models>/<name>.pt to serve (default: "
                             f"{' '.join(PIPELINE_MODELS)}, their ensemble)")
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--long-seconds", type=float, default=3600.0,
                        help="duration of the long FLAC (default one hour)")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.models, args.requests, args.concurrency, args.long_seconds,
                         tuple(args.names)), indent=2))


if __name__ == "__main__":
    main()
