"""Assembling training and validation tensors from the cached features."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sonic.features.store import load_features


@dataclass
class ClassifierData:
    """dB spectrograms with integer labels; ``mean``/``std`` are the training set's (dB)."""

    x_train: np.ndarray  # (N, n_mels, T) dB, real training clips then their augmented copies
    y_train: np.ndarray  # (N,) int64
    x_val: np.ndarray  # (M, n_mels, T) dB
    y_val: np.ndarray  # (M,) int64
    val_ids: list[str]
    classes: list[str]
    mean: float
    std: float


def load_classifier_data(features: str | Path, split: str | Path, augmented: str | Path | None
                         ) -> ClassifierData:
    """Training clips (plus augmented copies when ``augmented`` is given) and validation clips.

    Augmented copies are only ever made of training clips (stage ``augment``); here each copy's
    source is checked against the split again, so a copy of a validation clip can never leak in.
    """
    feats = load_features(features)
    roles = pd.read_csv(split, dtype=str, keep_default_na=False)
    train_ids = roles.loc[roles["role"] == "train", "clip_id"]
    val_ids = roles.loc[roles["role"] == "val", "clip_id"]
    labels = feats.index.set_index("clip_id")["label"]
    classes = sorted(labels[pd.concat([train_ids, val_ids])].unique())
    code = {c: i for i, c in enumerate(classes)}

    train_rows = np.sort(feats.rows(train_ids))
    x_train = np.asarray(feats.mels[train_rows])
    y_train = feats.index["label"].iloc[train_rows].map(code).to_numpy(np.int64)
    # normalisation from real training clips only, never from validation or augmented copies
    mean, std = float(x_train.mean()), float(x_train.std())
    if augmented is not None:
        aug = load_features(augmented)
        leaked = set(aug.index["clip_id"]) - set(train_ids)
        if leaked:
            raise ValueError(f"augmented copies of non-training clips found: {sorted(leaked)[:3]}; "
                             "re-run `dvc repro augment`")
        x_train = np.concatenate([x_train, np.asarray(aug.mels)])
        y_train = np.concatenate([y_train, aug.index["label"].map(code).to_numpy(np.int64)])
    val_rows = feats.rows(val_ids)
    return ClassifierData(
        x_train=x_train, y_train=y_train,
        x_val=np.asarray(feats.mels[val_rows]),
        y_val=labels[list(val_ids)].map(code).to_numpy(np.int64),
        val_ids=list(val_ids), classes=classes, mean=mean, std=std,
    )
