"""Where a committed figure came from: the machine, the date and the command.

A benchmark JSON records its machine and date itself (``machine.cpu``, ``machine.date``). The
pipeline's stage outputs do not, so ``docs/provenance.yaml`` maps each such file to the CPU
model (``lscpu``) it was produced on and the SHA-256 of the content that record is about: when a
stage writes new figures the hash no longer matches and the page says "machine not recorded"
until ``python -m sonic.docs --stamp`` is run where they were produced. A file's date is the
date of the last commit that changed it, or today while it has uncommitted changes.
"""
from __future__ import annotations

import datetime
import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

PROVENANCE = "docs/provenance.yaml"
HEADER = """\
# The machine each committed metrics file was produced on, for files that do not record it
# themselves (the DVC stages' outputs). Written by `python -m sonic.docs --stamp`, which records
# this machine's CPU model (lscpu) for every file whose content (sha256) has no entry yet; an
# entry whose hash no longer matches the file is ignored. `command` is optional (default: the
# command sonic/docs/results.py names for that file).
"""
NOT_RECORDED = "machine not recorded"


@dataclass(frozen=True)
class Source:
    """One table's origin, printed under it."""

    paths: tuple[str, ...]
    machine: str
    date: str
    command: str

    def line(self) -> str:
        files = ", ".join(f"[`{p}`](../{p})" for p in self.paths)
        return f"*{files} · {self.machine} · {self.date} · `{self.command}`*"


def cpu_model() -> str:
    """This machine's CPU model as ``lscpu`` names it (``/proc/cpuinfo`` if lscpu is missing)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    with open("/proc/cpuinfo") as f:
        return next((line.split(":", 1)[1].strip() for line in f
                     if line.startswith("model name")), "unknown CPU")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


class Provenance:
    """Dates from git and machines from ``docs/provenance.yaml``, for files below ``root``."""

    def __init__(self, root: Path):
        self.root = Path(root)
        record = self.root / PROVENANCE
        self.entries: dict[str, dict] = (yaml.safe_load(record.read_text()) or {}
                                         if record.exists() else {})
        self._dirty = self._uncommitted()

    def _git(self, *args: str) -> str:
        proc = subprocess.run(["git", *args], cwd=self.root, capture_output=True, text=True)
        return proc.stdout if proc.returncode == 0 else ""

    def _uncommitted(self) -> set[str]:
        lines = self._git("status", "--porcelain", "--untracked-files=all", "--", "metrics")
        return {line[3:].strip() for line in lines.splitlines()}

    def date(self, path: str) -> str:
        """YYYY-MM-DD of the last commit that changed ``path``; today if it has changes since."""
        if path not in self._dirty:
            committed = self._git("log", "-1", "--format=%cs", "--", path).strip()
            if committed:
                return committed
        return datetime.date.today().isoformat()

    def machine(self, path: str) -> str:
        """The recorded machine of ``path`` if its entry is about the current content."""
        entry = self.entries.get(path) or {}
        if entry.get("sha256") == sha256(self.root / path) and entry.get("machine"):
            return entry["machine"]
        return NOT_RECORDED

    def command(self, path: str, default: str) -> str:
        return (self.entries.get(path) or {}).get("command") or default

    def source(self, paths: list[str], command: str) -> Source:
        """The origin of a table built from ``paths`` (the first names machine and command)."""
        dates = sorted({self.date(p) for p in paths})
        date = dates[0] if len(dates) == 1 else f"{dates[0]} to {dates[-1]}"
        return Source(tuple(paths), self.machine(paths[0]), date, self.command(paths[0], command))

    def stamp(self, paths: list[str], machine: str) -> list[str]:
        """Record ``machine`` for every path whose current content has no entry; return them."""
        changed = []
        for path in paths:
            entry = self.entries.setdefault(path, {})
            digest = sha256(self.root / path)
            if entry.get("sha256") != digest:
                entry.update(machine=machine, sha256=digest)
                changed.append(path)
        if changed:
            from sonic.runtime import write_text

            body = yaml.safe_dump(dict(sorted(self.entries.items())), sort_keys=False,
                                  allow_unicode=True, width=100)
            write_text(self.root / PROVENANCE, HEADER + body)
        return changed
