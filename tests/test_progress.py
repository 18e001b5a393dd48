"""Progress reports: a bar on a terminal, whole lines in a pipe (one per 10 %), checked with
the real ``prepare`` stage writing into a pipe and into a pseudo-terminal."""
from __future__ import annotations

import fcntl
import io
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

from sonic.progress import LineProgress, progress

REPO = Path(__file__).resolve().parents[1]


def test_in_a_pipe_one_line_per_tenth_and_none_or_one_when_asked():
    out = io.StringIO()
    bar = progress(range(25), desc="decode", unit="clip", file=out)
    assert isinstance(bar, LineProgress)
    for i in bar:
        bar.set_postfix(loss=f"{i:.1f}")
    lines = out.getvalue().splitlines()
    assert [line.split()[1] for line in lines] == [f"{p}%" for p in
                                                   (12, 20, 32, 40, 52, 60, 72, 80, 92, 100)]
    assert lines[-1].startswith("decode: 100% 25/25 [") and lines[-1].endswith("loss=24.0]")
    quiet, once, unknown = io.StringIO(), io.StringIO(), io.StringIO()
    list(progress(range(50), desc="epoch", lines=0, file=quiet))
    list(progress(range(50), desc="epoch", lines=1, file=once))
    list(progress(iter(range(7)), desc="scan", file=unknown))  # no length: one line at the end
    assert quiet.getvalue() == ""
    assert once.getvalue().startswith("epoch: 100% 50/50") and once.getvalue().count("\n") == 1
    assert unknown.getvalue().startswith("scan: 7 [") and unknown.getvalue().count("\n") == 1
    assert "\r" not in out.getvalue() + once.getvalue() + unknown.getvalue()


def prepare_cmd(tmp_path: Path) -> list[str]:
    """The ``prepare`` stage on 40 tiny demo clips (its progress goes to stderr)."""
    params = tmp_path / "params.yaml"
    params.write_text("demo:\n  classes: [dog_bark, siren]\n  train_per_class: 15\n"
                      "  test_per_class: 5\n  workers: 1\n")
    return [sys.executable, "-m", "stages.prepare", "--params", str(params), "--out",
            str(tmp_path / "demo")]


def test_a_stage_writing_into_a_pipe_gives_whole_lines(tmp_path):
    run = subprocess.run(prepare_cmd(tmp_path), cwd=REPO, capture_output=True, text=True,
                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert run.returncode == 0, run.stderr
    assert "\r" not in run.stdout + run.stderr
    bars = [line for line in run.stderr.splitlines() if line.startswith("demo clips:")]
    assert len(bars) == 10 and bars[-1].startswith("demo clips: 100% 40/40")
    assert len(run.stderr.splitlines()) <= 12 and len(run.stdout.splitlines()) <= 2


def test_a_stage_on_a_terminal_draws_a_bar(tmp_path):
    main, side = pty.openpty()
    fcntl.ioctl(side, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 100 columns
    proc = subprocess.Popen(prepare_cmd(tmp_path), cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=side)
    os.close(side)
    seen = b""
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:  # the terminal's far end closed
            break
        if not chunk:
            break
        seen += chunk
    os.close(main)
    assert proc.wait() == 0, seen.decode(errors="replace")
    assert b"\r" in seen and b"demo clips: 100%" in seen
