"""The data root's manifest: every entry below ``data.root`` with its size, content hash and
status, so that DVC tracks one small CSV instead of hashing the folder itself.

DVC hashing ``${data.root}`` as a dependency stops ``dvc repro`` before any stage runs when the
folder holds a broken symbolic link or an entry it cannot read. Stage ``scan`` walks the root
instead, names such entries and records them with their status; ``extract_mels`` depends on the
manifest and decodes only the files it lists as ``ok``. The manifest holds no times, so touching
a file changes nothing downstream and editing its content re-runs extraction.

Hashing is the only costly part of a scan, so a file is hashed again only when its
``(size, mtime_ns, inode)`` differs from the previous scan's, kept in a small JSON cache outside
DVC's outputs. A file modified less than :data:`RACY_NS` before the scan is never cached: a
second write within the file system's timestamp tick could otherwise keep size and time alike.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from sonic.runtime import atomic_path, write_text

COLUMNS = ("path", "size", "md5", "status", "detail")
OK = "ok"
RACY_NS = 2_000_000_000  # files younger than this at scan time are hashed, never cached

_WHAT_TO_DO = {
    "broken_link": "restore its target or remove the link",
    "unreadable": "make it readable (chmod) or remove it",
    "not_a_file": "remove it from the data root",
}


@dataclass(frozen=True)
class Entry:
    """One entry below the root. ``status`` is ``ok`` (a readable regular file, hashed),
    ``broken_link``, ``unreadable`` (a file or folder that cannot be read) or ``not_a_file`` (a
    FIFO, socket or device, which reading could block on)."""

    path: str  # relative to the root, "/"-separated
    size: int = 0  # bytes; 0 unless ok
    md5: str = ""  # content hash; "" unless ok
    status: str = OK
    detail: str = ""  # what is wrong, unless ok

    @property
    def reason(self) -> str:
        """What is wrong and what to do, for reports (``bad_files.csv``, the console)."""
        return f"{self.detail}; {_WHAT_TO_DO[self.status]}" if self.status != OK else ""


def _md5(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "md5").hexdigest()


def _walk(folder: str, rel: str, on_path: frozenset) -> list[tuple[str, str, os.stat_result | str]]:
    """``(relative path, absolute path, stat or status)`` of every non-folder entry below
    ``folder``, in name order. Links are followed; a link back to a folder on the current path
    (a loop) counts as broken."""
    found = []
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as err:
        return [(rel or ".", folder, f"unreadable:cannot list the folder: {err.strerror}")]
    for e in entries:
        sub = f"{rel}/{e.name}" if rel else e.name
        try:
            st = os.stat(e.path)  # follows links
        except FileNotFoundError:
            if e.is_symlink():
                found.append((sub, e.path, f"broken_link:symbolic link to "
                                           f"{os.readlink(e.path)}, which does not exist"))
            continue  # else removed while we looked
        except OSError as err:  # ELOOP, EACCES on a folder on the way, EIO
            kind = "broken_link" if e.is_symlink() else "unreadable"
            found.append((sub, e.path, f"{kind}:{err.strerror}"))
            continue
        if stat.S_ISDIR(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if key in on_path:
                found.append((sub, e.path, "broken_link:symbolic link loop back to a folder "
                                           "above it"))
            else:
                found += _walk(e.path, sub, on_path | {key})
        else:
            found.append((sub, e.path, st))
    return found


def _entry(rel: str, path: str, st: os.stat_result, cache: dict, fresh: dict,
           young_from: int) -> Entry:
    """Hash one file unless the cache knows it unchanged; ``fresh`` collects the next cache."""
    if not stat.S_ISREG(st.st_mode):
        return Entry(rel, status="not_a_file", detail="not a regular file (a FIFO, socket or "
                                                      "device)")
    key = [st.st_size, st.st_mtime_ns, st.st_ino]
    known = cache.get(path)
    if known is not None and known[:3] == key:
        md5 = known[3]
    else:
        try:
            md5 = _md5(path)
        except OSError as err:
            return Entry(rel, status="unreadable", detail=f"cannot read the file: {err.strerror}")
    if st.st_mtime_ns < young_from:
        fresh[path] = key + [md5]
    return Entry(rel, st.st_size, md5)


def scan(root: str | Path, cache: dict | None = None) -> tuple[list[Entry], dict]:
    """Every entry below ``root`` (links followed), sorted by path, and the cache to keep.

    ``cache`` maps absolute paths to ``[size, mtime_ns, inode, md5]`` from an earlier scan; only
    files that differ from it are read. Raises ``FileNotFoundError`` if ``root`` is no folder.
    """
    root = os.path.abspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"data.root {root} does not exist or is not a folder")
    young_from = time.time_ns() - RACY_NS
    top = os.stat(root)
    entries, fresh = [], {}
    for rel, path, st in _walk(root, "", frozenset({(top.st_dev, top.st_ino)})):
        if isinstance(st, str):
            status, detail = st.split(":", 1)
            entries.append(Entry(rel, status=status, detail=detail))
        else:
            entries.append(_entry(rel, path, st, cache or {}, fresh, young_from))
    return sorted(entries, key=lambda e: e.path), fresh


def write_manifest(path: str | Path, entries: list[Entry]) -> None:
    """``path,size,md5,status,detail``, one row per entry (no times: see the module docstring)."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(COLUMNS)
        out.writerows((e.path, e.size, e.md5, e.status, e.detail) for e in entries)


def read_manifest(path: str | Path) -> dict[str, Entry]:
    """Relative path → :class:`Entry`, as :func:`write_manifest` wrote them."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if rows and tuple(rows[0]) != COLUMNS:
        raise ValueError(f"{path}: expected columns {','.join(COLUMNS)}")
    return {r["path"]: Entry(r["path"], int(r["size"]), r["md5"], r["status"], r["detail"])
            for r in rows}


def load_cache(path: str | Path) -> dict:
    """The previous scan's cache, or an empty one when it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def save_cache(path: str | Path, cache: dict) -> None:
    write_text(path, json.dumps(cache))
