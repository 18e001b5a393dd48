"""One bad file never costs the rest: a mixed batch in ``sonic predict`` keeps the good files'
rows, a decoding process killed mid-file (as the out-of-memory killer would) names that file and
never hangs (``ordered_map``, and ``extract_mels``' :func:`~sonic.features.extract.extract` with
its worker killed by pid), and what killed processes leave behind is swept."""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import soundfile as sf

from sonic.audio.layouts import Clip
from sonic.features.extract import WORKER_DIED, extract
from sonic.runtime import ordered_map, sweep, write_text

REPO = Path(__file__).resolve().parents[1]


def _square_or_die(job: int) -> int:
    if job == 3:
        os.kill(os.getpid(), signal.SIGKILL)  # what the out-of-memory killer does
    return job * job


def _died(job: int) -> int:
    return -job


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_killed_worker_costs_only_its_own_job_in_order() -> None:
    assert list(ordered_map(_square_or_die, range(8), 2, _died)) == [0, 1, 4, -3, 16, 25, 36,
                                                                        49]


def test_predict_mixed_batch_keeps_the_good_rows(trained, tmp_path: Path) -> None:
    """good, an 80 s file over ``--max-seconds 60``, a 1e20 float sine, good: both good files
    are predicted; each bad one is its own error row naming the limit; exit 1."""
    good = sorted((trained.data / "train" / "low").glob("*.wav"))[:2]
    t = np.arange(8000) / 8000
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    sf.write(tmp_path / "long.flac", np.tile(tone, 80), 8000)
    sf.write(tmp_path / "loud.wav", tone * 1e20, 8000, subtype="FLOAT")
    paths = [good[0], tmp_path / "long.flac", tmp_path / "loud.wav", good[1]]
    for workers in ("1", "2"):
        proc = subprocess.run([sys.executable, "-m", "sonic", "predict", *map(str, paths),
                               "--models-dir", str(trained.models), "--model", "cnn",
                               "--format", "json", "--max-seconds", "60", "--workers", workers],
                              capture_output=True, text=True, timeout=300,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert proc.returncode == 1, proc.stderr
        rows = json.loads(proc.stdout)
        assert [r["status"] for r in rows] == ["ok", "error", "error", "ok"]
        assert "the limit is 60 s (sonic predict --max-seconds)" in rows[1]["error"]
        assert "beyond ±100" in rows[2]["error"]
        assert f"{tmp_path / 'long.flac'}:" in proc.stderr


def test_stale_leftovers_are_swept_and_live_ones_kept(tmp_path: Path) -> None:
    dead, old = _dead_pid(), time.time() - 7200
    (tmp_path / f".extract-{dead}-abcd1234").mkdir()
    (tmp_path / f".extract-{os.getpid()}-abcd1234").mkdir()  # this process: still writing
    (tmp_path / f".out.{dead}-abcd1234.csv").write_text("half")
    (tmp_path / ".out.zyxw9876.csv").write_text("old style, two hours old")
    os.utime(tmp_path / ".out.zyxw9876.csv", (old, old))
    (tmp_path / ".out.keep.csv").write_text("not a leftover name")
    assert len(sweep(tmp_path, ".extract-")) == 1
    write_text(tmp_path / "out.csv", "a,b\n")  # an atomic write sweeps its own leftovers
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f".extract-{os.getpid()}-abcd1234", ".out.keep.csv", "out.csv"]


def _kill_whoever_opens(path: Path, done: threading.Event) -> int:
    """SIGKILL every child process of this one that has ``path`` open (what the out-of-memory
    killer does to a worker decoding a file too big for it), until ``done``; how many."""
    me, target, killed = psutil.Process(), str(path), set()
    while not done.is_set():
        for child in me.children(recursive=True):
            try:
                if child.pid not in killed and any(f.path == target
                                                   for f in child.open_files()):
                    child.send_signal(signal.SIGKILL)
                    killed.add(child.pid)
            except psutil.Error:  # ended on its own meanwhile
                pass
        time.sleep(0.001)
    return len(killed)


def test_extract_names_a_file_whose_worker_is_killed_and_keeps_the_others(
        tmp_path: Path, tiny_features, clip_writer) -> None:
    """Two decoding processes; the one reading an hour-long FLAC is killed, and so is the fresh
    process that reads it again alone: that file is rejected with the worker's death as its
    reason, every other clip keeps its row, in order, and extraction never hangs."""
    goods = [clip_writer(tmp_path / f"good{i}.wav", seconds=0.5) for i in range(5)]
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(8000) / 8000)).astype(np.float32)
    hour = tmp_path / "hour.flac"
    with sf.SoundFile(hour, "w", 8000, 1, "PCM_16") as f:
        for _ in range(3600):
            f.write(tone)
    paths = [goods[0], goods[1], hour, *goods[2:]]
    clips = [Clip(p.stem, p, "a", p.stem, "train") for p in paths]
    done, result, killed = threading.Event(), {}, []
    killer = threading.Thread(target=lambda: killed.append(_kill_whoever_opens(hour, done)))
    killer.start()
    worker = threading.Thread(target=lambda: result.update(out=extract(
        clips, dataclasses.replace(tiny_features, workers=2), out=tmp_path / "features")))
    worker.start()
    worker.join(timeout=300)  # a guard against a hang, not a timing
    done.set()
    killer.join()
    assert not worker.is_alive(), "extract hung after its worker was killed"
    extracted = result["out"]
    assert killed[0] >= 2  # the pool's worker, then the process that read it again alone
    assert [(b.path, b.reason) for b in extracted.bad] == [(str(hour), WORKER_DIED)]
    assert list(extracted.index["clip_id"]) == [p.stem for p in goods]
    assert extracted.mels.shape[0] == len(goods) and np.isfinite(extracted.mels).all()
    assert sorted(p.name for p in (tmp_path / "features").iterdir()) == ["mels.npy",
                                                                         "waves.npy"]
