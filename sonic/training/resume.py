"""Resuming an interrupted training stage, and never from a stale state.

After every epoch the whole training state (weights, optimiser, scheduler, early stopping,
history, best weights so far) is written atomically to a resume file, with a fingerprint of
everything the run depends on: its params, the bytes of its input files, the source of the
code that trains (every code dep of the stage) and the torch version. A stage killed mid-run
and started again with the same fingerprint continues after the last completed epoch; any
other fingerprint — changed params, data, code or torch — means the file is ignored and
training starts fresh. A finished run deletes its resume file.

Each epoch draws its shuffling, masks, MixUp and dropout from generators seeded with
``(seed, epoch, rank)`` (:func:`epoch_seed`), so a resumed run makes exactly the draws the
uninterrupted one would have made.
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch
from tqdm import tqdm

from sonic.runtime import atomic_path


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """A 63-bit seed for one epoch of one process, independent across the three inputs."""
    state = np.random.SeedSequence([seed, epoch, rank]).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 31 | int(state[1]) >> 1


def fingerprint(params: Any, files: Iterable[str | Path], code: Iterable[str | Path]) -> str:
    """SHA-256 over ``params`` (JSON), the torch version (its kernels decide the numbers), the
    bytes of ``files`` and of the ``code`` files (a folder: every ``.py`` file in it), each name
    included."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode())
    digest.update(f"torch {torch.__version__}".encode())
    paths = [Path(f) for f in files]
    for path in map(Path, code):
        paths += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    for member in paths:
        digest.update(str(member).encode())
        with open(member, "rb") as f:
            digest.update(hashlib.file_digest(f, "sha256").digest())
    return digest.hexdigest()


class ResumeFile:
    """The resume state of one training stage at ``path``, valid for ``key`` only."""

    def __init__(self, path: str | Path, key: str):
        self.path, self.key = Path(path), key

    def load(self) -> dict | None:
        """The saved state when it matches this run's fingerprint, else None (and a message
        when a stale file is set aside)."""
        if not self.path.is_file():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as err:  # a file from an older format or a broken disk: start fresh
            print(f"{self.path}: unreadable resume state ({err}); training from the start",
                  file=sys.stderr)
            return None
        if state.get("key") != self.key:
            print(f"{self.path}: saved by a run with other params, data or code; training from "
                  "the start", file=sys.stderr)
            return None
        return state

    def save(self, state: dict) -> None:
        with atomic_path(self.path) as tmp:
            torch.save({**state, "key": self.key}, tmp)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def resume_history(resume: ResumeFile | None, restore: Callable[[dict], None], desc: str,
                   announce: bool = True) -> list[dict]:
    """The one resume replay of every training loop (classifiers and GAN): a saved state that
    matches this run is handed to ``restore`` (weights, optimisers, RNGs back in place) and its
    per-epoch history returned, for the loop to pass to its epoch callback again before it goes
    on after the last saved epoch; ``[]`` (train from the start) when there is none."""
    saved = resume.load() if resume is not None else None
    if saved is None:
        return []
    restore(saved)
    if announce:
        tqdm.write(f"{desc}: resuming after epoch {len(saved['history'])} from {resume.path}")
    return saved["history"]
