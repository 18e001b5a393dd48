"""``python -m sonic.bench --live``: from a sound's onset to its label on the explorer's screen.

The whole live path, as a user meets it: ``sonic serve`` on loopback, Debian's headless Chromium
opening the explorer page, whose microphone is Chromium's fake capture device playing a WAV
built here — quiet noise, clip A, quiet noise, clip B, looped (each clip's expected label is
what ``/api/predict`` says of it alone; the two gaps differ, so that the gap from an onset to the
next tells which clip it was). The page records, on its own clock (``state.liveLog``), when
each audio chunk was captured and where its first loud sample is (-26 dBFS), and when each
label reached the screen (the animation frame after the DOM changed). For every onset — a loud
chunk after ``min(GAPS_S) / 2`` of quiet ones — the latency is the time from its loud sample's
capture to the first frame showing its clip's label. The report gives them per onset, their
median and maximum, and the same less the window length (the issue's measure: at most 300 ms
beyond the window). An onset whose label was already on screen just before it is reported but
left out of the figures.
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from sonic.bench.inference import free_loopback_port, start_server

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
RATE = 48000  # Hz of the fake microphone's file
GAPS_S = (3.0, 4.0)  # seconds of quiet before clip A and before clip B (longer than a window)
PEAK = 0.5  # each clip is scaled to this peak
NOISE_RMS = 0.003  # the quiet between clips: white noise at -50 dBFS, as in a room


def predicted_label(url: str, clip: Path) -> str:
    """The top label ``/api/predict`` gives the clip alone."""
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"c.wav\""
            f"\r\nContent-Type: audio/wav\r\n\r\n").encode() + clip.read_bytes() \
        + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(f"{url}/api/predict", body, {
        "Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.load(response)["top"][0]["label"]


def microphone_wav(clips: list[Path], path: Path) -> list[float]:
    """Quiet noise then clip A, quiet noise then clip B (mono, 48 kHz, each scaled to
    :data:`PEAK`) as 16-bit PCM; returns the seconds from each clip's onset to the next's (the
    file loops)."""
    rng = np.random.default_rng(0)
    parts, waves = [], []
    for clip, gap in zip(clips, GAPS_S):
        wave, rate = sf.read(clip, dtype="float32", always_2d=True)
        wave = soxr.resample(wave.mean(axis=1), rate, RATE)
        waves.append(PEAK * wave / max(float(np.abs(wave).max()), 1e-9))
        parts += [NOISE_RMS * rng.standard_normal(int(gap * RATE)), waves[-1]]
    sf.write(path, np.concatenate(parts).astype(np.float32), RATE, subtype="PCM_16")
    return [len(w) / RATE + GAPS_S[(i + 1) % len(waves)] for i, w in enumerate(waves)]


def start_browser(profile: Path, wav: Path):
    """Headless Chromium whose microphone plays ``wav`` (never a downloaded browser)."""
    os.environ["SE_OFFLINE"] = "true"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--disable-background-networking", "--window-size=1280,800",
                 "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                 f"--use-file-for-fake-audio-capture={wav}",
                 "--autoplay-policy=no-user-gesture-required", f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)


def onsets(log: list[dict], quiet_s: float = min(GAPS_S) / 2) -> list[dict]:
    """Loud chunks after ``quiet_s`` of quiet ones: their stream second and capture time (ms)."""
    found, quiet = [], 0.0
    for e in (e for e in log if e["kind"] == "chunk"):
        if e["loud"] >= 0 and quiet >= quiet_s:
            found.append({"stream_s": (e["end"] - e["n"] + e["loud"]) / e["rate"],
                          "captured_ms": e["t"] - 1000 * (e["n"] - e["loud"]) / e["rate"]})
        quiet = quiet + e["n"] / e["rate"] if e["loud"] < 0 else 0.0
    return found


def latencies(log: list[dict], labels: list[str], gaps: list[float],
              quiet_s: float = min(GAPS_S) / 2) -> list[dict]:
    """Each onset with its clip's label (known from the gap to the next onset), the label on
    screen just before it, and the time until its label was shown (None: not yet)."""
    found, shown = onsets(log, quiet_s), [e for e in log if e["kind"] == "shown"]
    rows = []
    for i, onset in enumerate(found):
        if i + 1 >= len(found):
            break  # its clip is told by the gap to the next onset
        gap = found[i + 1]["stream_s"] - onset["stream_s"]
        clip = int(np.argmin([abs(gap - g) for g in gaps]))
        before = [e["label"] for e in shown if e["t"] < onset["captured_ms"]]
        after = [e for e in shown if e["t"] >= onset["captured_ms"] and e["label"] == labels[clip]
                 and e["end_s"] >= onset["stream_s"]]
        rows.append({"onset_s": round(onset["stream_s"], 3), "label": labels[clip],
                     "label_before": before[-1] if before else None,
                     "latency_ms": round(after[0]["t"] - onset["captured_ms"]) if after else None})
    return rows


def bench_live(models: Path, clips: list[Path], n_onsets: int = 6, seconds: float = 180.0
               ) -> dict:
    """Latency from onset to label on screen for ``n_onsets`` onsets (or ``seconds``)."""
    if len(clips) != len(GAPS_S):
        raise ValueError(f"give {len(GAPS_S)} clips, got {len(clips)}")
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            raise RuntimeError(f"{path} not found: apt-get install chromium chromium-driver")
    port = free_loopback_port()
    checkpoints = [models / "cnn.pt", models / "resnet.pt"]
    server = start_server(checkpoints, port, env={"SONIC_TOKEN": ""})
    url = f"http://127.0.0.1:{port}"
    tmp = Path(tempfile.mkdtemp(prefix="sonic-bench-live-"))
    driver = None
    try:
        with urllib.request.urlopen(f"{url}/api/models", timeout=30) as response:
            info = json.load(response)
        labels = [predicted_label(url, clip) for clip in clips]
        gaps = microphone_wav(clips, tmp / "microphone.wav")
        driver = start_browser(tmp / "profile", tmp / "microphone.wav")
        driver.get(url)
        deadline = time.monotonic() + seconds
        while not driver.find_element("id", "model-select").is_enabled():
            time.sleep(0.2)
        driver.find_element("id", "live-button").click()
        rows: list[dict] = []
        while time.monotonic() < deadline:
            time.sleep(1.0)
            rows = latencies(driver.execute_script("return state.liveLog"), labels, gaps)
            if sum(r["latency_ms"] is not None and r["label_before"] != r["label"]
                   for r in rows) >= n_onsets:
                break
        lag = driver.find_element("id", "live-lag").text
    finally:
        if driver is not None:
            driver.quit()
        server.terminate()
        server.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)
    counted = [r["latency_ms"] for r in rows
               if r["latency_ms"] is not None and r["label_before"] != r["label"]]
    window_ms = 1000 * info["window_s"]
    figures = {"median_ms": statistics.median(counted), "max_ms": max(counted)} if counted else {}
    if counted:
        figures.update(median_beyond_window_ms=figures["median_ms"] - window_ms,
                       max_beyond_window_ms=figures["max_ms"] - window_ms)
    return {"models": [str(p) for p in checkpoints], "model": info["default"],
            "window_s": info["window_s"], "clips": [str(c) for c in clips], "labels": labels,
            "onsets": rows, "counted": len(counted), "last_lag_text": lag, **figures}


def format_live(report: dict) -> str:
    m, live = report["machine"], report["live"]
    lines = [f"Sonic live latency, {m['date']}: {m['device_name']}, {m['cores_usable']}/"
             f"{m['cores']} cores; {live['model']} ({', '.join(live['labels'])}), "
             f"window {live['window_s']:g} s"]
    for r in live["onsets"]:
        lines.append(f"  onset {r['onset_s']:8.2f} s  {r['label']:<14} before: "
                     f"{r['label_before']}  latency {r['latency_ms']} ms")
    if live["counted"]:
        lines.append(f"onset → label on screen: median {live['median_ms']:.0f} ms, max "
                     f"{live['max_ms']:.0f} ms over {live['counted']} onsets; beyond the window: "
                     f"median {live['median_beyond_window_ms']:.0f} ms, max "
                     f"{live['max_beyond_window_ms']:.0f} ms")
    return "\n".join(lines)
