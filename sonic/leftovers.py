"""Temporary files and folders that name the process that made them, so that what a killed
process left behind can be told from what a running one is still writing, and swept.

A name is ``<prefix><pid>-<random>``: :func:`sweep` removes those whose process is gone, and
also old-style names without a pid (``<prefix><random>``) once they are an hour old.
"""
from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

STALE_AFTER_S = 3600.0  # an untagged leftover older than this is removed


def tagged(prefix: str) -> str:
    """``prefix`` followed by this process's id, for ``tempfile.mkstemp`` / ``mkdtemp``."""
    return f"{prefix}{os.getpid()}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _stale(path: Path, match: re.Match) -> bool:
    if match.group("pid") is not None:
        return not _alive(int(match.group("pid")))
    try:
        return time.time() - path.lstat().st_mtime > STALE_AFTER_S
    except FileNotFoundError:
        return False


def sweep(folder: str | Path, prefix: str, suffix: str = "") -> list[Path]:
    """Remove the leftovers ``<prefix>[<pid>-]<random><suffix>`` in ``folder`` whose process is
    gone (or, without a pid, older than an hour); returns what was removed."""
    pattern = re.compile(rf"{re.escape(prefix)}(?:(?P<pid>\d+)-)?[A-Za-z0-9_]{{6,}}"
                         rf"{re.escape(suffix)}")
    removed = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for path in entries:
        match = pattern.fullmatch(path.name)
        if match is None or not _stale(path, match):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed
