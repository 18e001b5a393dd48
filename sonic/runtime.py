"""Seeding, device choice, worker processes and atomic file output: the few helpers every stage
shares.

Temporary files and folders name the process that made them (``<prefix><pid>-<random>``, see
:func:`tagged`), so that what a killed process left behind can be told from what a running one
is still writing, and swept (:func:`sweep`).
"""
from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import random
import re
import shutil
import sys
import tempfile
import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TypeVar

import numpy as np


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) and ask torch for deterministic kernels."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def pick_device(name: str = "auto"):
    """``auto`` → cuda, then mps, then cpu; any other name is taken as given and checked."""
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} asked for in params, but CUDA is not available here")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError(f"device {name!r} asked for in params, but MPS is not available here")
    return device


def _one_thread_per_worker() -> None:
    if "torch" in sys.modules:  # nested thread pools in every worker only contend for the cores
        sys.modules["torch"].set_num_threads(1)


def worker_pool(workers: int):
    """A process pool for CPU-bound NumPy work, one thread per worker.

    On Linux it forks: workers start in milliseconds and share the parent's memory-mapped arrays
    (spawning would re-import torch in every worker: seconds, and ~0.5 GB each). Elsewhere, where
    forking a process that loaded torch is unsafe, it spawns.
    """
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    return mp.get_context(method).Pool(workers, initializer=_one_thread_per_worker)

J = TypeVar("J")
R = TypeVar("R")


def _executor(workers: int) -> ProcessPoolExecutor:
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    return ProcessPoolExecutor(workers, mp_context=mp.get_context(method),
                               initializer=_one_thread_per_worker)


def _alone(fn: Callable[[J], R], job: J, on_death: Callable[[J], R]) -> R:
    """``fn(job)`` in a fresh process of its own; ``on_death(job)`` if that process dies."""
    with _executor(1) as pool:
        try:
            return pool.submit(fn, job).result()
        except BrokenProcessPool:
            return on_death(job)


def ordered_map(fn: Callable[[J], R], jobs: Iterable[J], workers: int,
                on_death: Callable[[J], R], ahead: int = 2) -> Iterator[R]:
    """``fn`` over ``jobs`` in ``workers`` processes, results in job order, surviving a worker
    killed mid-job.

    ``multiprocessing.Pool`` replaces a worker that dies (the out-of-memory killer's SIGKILL, a
    crash in a decoder) but loses its job: ``imap`` then waits for it forever. A
    ``ProcessPoolExecutor`` notices the death (``BrokenProcessPool``); the jobs that were in
    flight are then run again one at a time, each in a fresh process, so the one that kills its
    process gets ``on_death(job)`` (a named error) and every other job still gets its result.
    At most ``ahead * workers`` jobs are in flight, so results never pile up.
    """
    pending = deque(jobs)
    while pending:
        suspects: list[J] = []
        with _executor(workers) as pool:
            flight: deque[tuple[J, Future]] = deque()
            while pending or flight:
                while pending and len(flight) < ahead * workers:
                    job = pending.popleft()
                    flight.append((job, pool.submit(fn, job)))
                job, future = flight.popleft()
                try:
                    result = future.result()
                except BrokenProcessPool:
                    suspects = [job] + [j for j, _ in flight]
                    break
                yield result
        for job in suspects:  # earliest first, so the order is kept
            yield _alone(fn, job, on_death)


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


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` only if the block succeeds.

    The temporary name keeps the suffix, so writers that infer a format from it (NumPy, soundfile,
    matplotlib) still do, and names this process (``.<stem>.<pid>-XXXXXXXX<suffix>``): leftovers
    of a killed writer are swept by the next write. The file and then its folder are fsynced
    around the rename, so after a crash ``path`` is either the old file or the whole new one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep(path.parent, f".{path.stem}.", path.suffix)
    fd, tmp = tempfile.mkstemp(prefix=tagged(f".{path.stem}."), suffix=path.suffix,
                               dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make every output private
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
        _fsync(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    """Flush a file's (or a folder's entries') data to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def save_npy(path: str | Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        np.save(tmp, array)
