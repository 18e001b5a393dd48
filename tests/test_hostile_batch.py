"""One bad file never costs the rest: a mixed batch in ``sonic predict`` keeps the good files'
rows, a decoding process killed mid-file (as the out-of-memory killer would) names that file and
never hangs, and what killed processes leave behind is swept."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

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
