"""Training, validation and test sets as streaming views of the memory-mapped features.

Nothing here copies the feature arrays into RAM: a :class:`MelSet` holds row numbers into one or
more ``(N, n_mels, T)`` dB arrays (``np.load(..., mmap_mode="r")``) and reads one batch per call,
normalised on the way out. Peak memory is a batch, not the data set.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from sonic.features.store import load_features

CHUNK = 256  # rows per read when computing statistics


class MelSet(Dataset):
    """Labelled spectrograms gathered from ``parts``, each ``(array, rows)``: ``array`` is an
    ``(N, n_mels, T)`` dB array (a memory map is never copied whole) and ``rows`` the positions
    to take from it, in order. Item ``i`` is ``(x, y)`` with ``x`` ``(1, n_mels, T)``
    ``(db - mean) / std`` float32.

    Indexing with a list of positions returns the whole batch ``(B, 1, n_mels, T), (B,)`` in
    one read per part (rows sorted, so a memory map reads forward), which is how the training
    loop's batch sampler uses it. A set given ``soft`` targets (N, C) (a distilled student's,
    :mod:`sonic.training.distill`) returns them as a third item, ``(B, C)``.
    """

    def __init__(self, parts: Sequence[tuple[np.ndarray, np.ndarray]], labels: np.ndarray,
                 mean: float, std: float, soft: torch.Tensor | None = None):
        self.parts = [(array, np.asarray(rows, dtype=np.int64)) for array, rows in parts]
        self.starts = np.cumsum([0] + [len(rows) for _, rows in self.parts])
        self.labels = torch.tensor(np.asarray(labels), dtype=torch.int64)  # a copy: never a view
        if len(self.labels) != self.starts[-1]:
            raise ValueError(f"{len(self.labels)} labels for {self.starts[-1]} spectrograms")
        self.mean, self.std = float(mean), float(std)
        if soft is not None and len(soft) != len(self.labels):
            raise ValueError(f"{len(soft)} soft targets for {len(self.labels)} spectrograms")
        self.soft = soft
        self.shape = self.parts[0][0].shape[1:] if self.parts else (0, 0)

    @classmethod
    def of(cls, db: np.ndarray, labels: np.ndarray, mean: float, std: float) -> "MelSet":
        """Every row of one ``(N, n_mels, T)`` dB array."""
        return cls([(db, np.arange(len(db)))], labels, mean, std)

    def take(self, positions: Sequence[int]) -> "MelSet":
        """The items at ascending ``positions``, as a set of their own (still no copy)."""
        idx = np.asarray(positions, dtype=np.int64)
        part = np.searchsorted(self.starts, idx, side="right") - 1
        parts = [(array, rows[idx[part == p] - self.starts[p]])
                 for p, (array, rows) in enumerate(self.parts)]
        soft = None if self.soft is None else self.soft[torch.from_numpy(idx)]
        return MelSet(parts, self.labels[torch.from_numpy(idx)].numpy(), self.mean, self.std, soft)

    def with_soft(self, soft: torch.Tensor) -> "MelSet":
        """The same items with soft targets (N, C) beside their labels."""
        return MelSet(self.parts, self.labels.numpy(), self.mean, self.std, soft)

    def __len__(self) -> int:
        return int(self.starts[-1])

    def __getitem__(self, index: int | Sequence[int]) -> tuple[torch.Tensor, ...]:
        single = np.isscalar(index)
        idx = np.atleast_1d(np.asarray(index, dtype=np.int64))
        out = np.empty((len(idx), *self.shape), dtype=np.float32)
        part = np.searchsorted(self.starts, idx, side="right") - 1
        for p in np.unique(part):
            where = np.flatnonzero(part == p)
            array, rows = self.parts[p]
            source = rows[idx[where] - self.starts[p]]
            order = np.argsort(source, kind="stable")
            out[where[order]] = array[source[order]]
        x = torch.from_numpy((out - self.mean) / self.std).unsqueeze(1)
        y = self.labels[torch.from_numpy(idx)]
        items = (x, y) if self.soft is None else (x, y, self.soft[torch.from_numpy(idx)])
        return tuple(item[0] for item in items) if single else items


def db_stats(array: np.ndarray, rows: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation (dB) of ``array[rows]``, read ``CHUNK`` rows at a time and
    summed in float64."""
    total, squares, count = 0.0, 0.0, 0
    for start in range(0, len(rows), CHUNK):
        chunk = np.asarray(array[np.sort(rows[start:start + CHUNK])], dtype=np.float64)
        total, squares, count = total + chunk.sum(), squares + (chunk**2).sum(), count + chunk.size
    mean = total / count
    return float(mean), float(np.sqrt(max(squares / count - mean**2, 0.0)))


@dataclass
class ClassifierData:
    """The sets one classifier trains, selects and is scored on; ``mean``/``std`` (dB) are the
    real training clips' and normalise every set."""

    train: MelSet  # real training clips, then their augmented copies
    val: MelSet  # selects the epoch (empty under split.select: last in fold layouts)
    classes: list[str]
    mean: float
    std: float
    val_ids: list[str]
    train_clips: int  # real training clips (without copies)


def read_roles(split: str | Path) -> pd.DataFrame:
    return pd.read_csv(split, dtype=str, keep_default_na=False)


def load_classifier_data(features: str | Path, split: str | Path, augmented: str | Path | None
                         ) -> ClassifierData:
    """Training clips (plus augmented copies when ``augmented`` is given) and validation clips.

    Augmented copies are only ever made of training clips (stage ``augment``); here each copy's
    source is checked against the split again, so a copy of a validation or test clip can never
    leak in. The class list is the training clips' classes.
    """
    feats = load_features(features)
    roles = read_roles(split)
    train_ids = roles.loc[roles["role"] == "train", "clip_id"]
    val_ids = roles.loc[roles["role"] == "val", "clip_id"]
    labels = feats.index.set_index("clip_id")["label"]
    classes = sorted(labels[train_ids].unique())
    code = {c: i for i, c in enumerate(classes)}
    unseen = sorted(set(labels[val_ids]) - set(code))
    if unseen:
        raise ValueError(f"validation classes {unseen[:3]} have no training clip; check the split")

    train_rows = np.sort(feats.rows(train_ids))
    # normalisation from real training clips only, never from validation or augmented copies
    mean, std = db_stats(feats.mels, train_rows)
    parts = [(feats.mels, train_rows)]
    y_train = [feats.index["label"].iloc[train_rows].map(code).to_numpy(np.int64)]
    if augmented is not None:
        aug = load_features(augmented)
        leaked = set(aug.index["clip_id"]) - set(train_ids)
        if leaked:
            raise ValueError(f"augmented copies of non-training clips found: {sorted(leaked)[:3]}; "
                             "re-run `dvc repro augment`")
        parts.append((aug.mels, np.arange(len(aug.index))))
        y_train.append(aug.index["label"].map(code).to_numpy(np.int64))
    val_rows = feats.rows(val_ids)
    return ClassifierData(
        train=MelSet(parts, np.concatenate(y_train), mean, std),
        val=MelSet([(feats.mels, val_rows)], labels[list(val_ids)].map(code).to_numpy(np.int64),
                   mean, std),
        classes=classes, mean=mean, std=std, val_ids=list(val_ids),
        train_clips=len(train_rows),
    )
