"""The committed ``dvc.lock`` (and so the committed metrics and plots) matches the committed code.

Editing a stage's script, a ``sonic`` module it imports or its params without re-running the
pipeline leaves ``dvc.lock`` describing code that no longer exists: the metrics in the README
would then come from another program. ``dvc status`` tells; this test runs it in a clone of the
last commit (so edits in the working tree neither hide nor fake a mismatch) and reads it for the
files and params git tracks (a fresh clone has no data outputs, which ``dvc status`` reports as
deleted or not in cache, and that is fine).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TRACKED = ("sonic/", "stages/", "params.yaml")


def test_lock_matches_the_committed_code_and_params(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", "--shared", str(REPO), str(clone)], check=True,
                   capture_output=True)  # HEAD's files; objects borrowed from REPO
    proc = subprocess.run([sys.executable, "-m", "dvc", "status", "--json"], cwd=clone,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    stale = {}
    for stage, changes in json.loads(proc.stdout or "{}").items():
        for change in changes:
            if not isinstance(change, dict):
                continue
            code = [path for path, state in change.get("changed deps", {}).items()
                    if path.startswith(TRACKED) and state == "modified"]
            params = change.get("changed params", {})
            if code or params:
                stale[stage] = {"code": code, "params": params}
    assert not stale, (f"dvc.lock is out of date for {stale}: run `dvc repro` (or `dvc commit "
                       "STAGE` for a change that cannot alter outputs) and commit dvc.lock, "
                       "metrics/ and plots/")
