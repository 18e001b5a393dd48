"""Seeding, device choice and atomic file output: the few helpers every stage shares."""
from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import random
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

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


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` only if the block succeeds.

    The temporary name keeps the suffix, so writers that infer a format from it (NumPy, soundfile,
    matplotlib) still do, and names this process (``.<stem>.<pid>-XXXXXXXX<suffix>``): leftovers
    of a killed writer are swept by the next write. The file and then its folder are fsynced
    around the rename, so after a crash ``path`` is either the old file or the whole new one.
    """
    from sonic.leftovers import sweep, tagged

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
