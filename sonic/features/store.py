"""The on-disk feature format shared by every stage after ``extract_mels``.

A feature folder holds stacked, memory-mappable arrays and one index table, never one file per
clip (DVC slows down on many small files):

``mels.npy``   (N, n_mels, n_frames) float32 log-mel in dB, each clip in [-top_db, 0]
``waves.npy``  (N, n_samples) float32 fixed-length mono waveforms (only where augmentation needs them)
``index.csv``  one row per clip, in array order
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sonic.runtime import atomic_path, save_npy

INDEX_COLUMNS = ("clip_id", "source", "label", "group", "role", "fold")


@dataclass(frozen=True)
class FeatureSet:
    """A loaded feature folder; arrays are read-only memory maps."""

    mels: np.ndarray  # (N, n_mels, n_frames) dB
    index: pd.DataFrame
    waves: np.ndarray | None = None  # (N, n_samples)

    def rows(self, clip_ids) -> np.ndarray:
        """Array positions of ``clip_ids``, in the given order."""
        position = pd.Series(np.arange(len(self.index)), index=self.index["clip_id"].to_numpy())
        return position.loc[list(clip_ids)].to_numpy()


def read_index(path: str | Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"clip_id": str, "source": str, "label": str, "group": str,
                                    "role": str}, keep_default_na=False, na_values={"label": [""]})


def write_table(path: str | Path, table: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)


def save_features(folder: str | Path, mels: np.ndarray, index: pd.DataFrame,
                  waves: np.ndarray | None = None) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if len(mels) != len(index) or (waves is not None and len(waves) != len(index)):
        raise ValueError("mels, waves and index must have one row per clip")
    save_npy(folder / "mels.npy", mels.astype(np.float32, copy=False))
    if waves is not None:
        save_npy(folder / "waves.npy", waves.astype(np.float32, copy=False))
    write_table(folder / "index.csv", index)


def load_features(folder: str | Path, waves: bool = False) -> FeatureSet:
    folder = Path(folder)
    if not (folder / "mels.npy").is_file():
        raise FileNotFoundError(f"{folder}/mels.npy not found; run `dvc repro` to extract features")
    return FeatureSet(
        mels=np.load(folder / "mels.npy", mmap_mode="r"),
        index=read_index(folder / "index.csv"),
        waves=np.load(folder / "waves.npy", mmap_mode="r") if waves else None,
    )
