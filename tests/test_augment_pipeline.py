"""``augment_training_clips`` and stage ``augment``: copies of training clips only, one row per
copy, reproducible whatever the number of workers, and re-checked by ``load_classifier_data``."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sonic.augment.pipeline import augment_training_clips
from sonic.config import AugmentConfig, FeatureConfig, to_dict
from sonic.features.mel import waves_to_mels
from sonic.features.store import INDEX_COLUMNS, load_features, save_features, write_table
from sonic.training.data import load_classifier_data

AUG = AugmentConfig(copies=2, workers=1)
ROLES = ["train", "train", "val", "train", "val", "test"]  # six clips, as a split would label them
TRAIN = [i for i, role in enumerate(ROLES) if role == "train"]  # [0, 1, 3]


@pytest.fixture
def clips(tiny_features: FeatureConfig) -> tuple[np.ndarray, pd.DataFrame]:
    """Six fixed-length tones (N, n_samples) and their extract_mels index."""
    t = np.arange(tiny_features.n_samples) / tiny_features.sample_rate
    waves = np.stack([0.3 * np.sin(2 * np.pi * (300 + 150 * i) * t) for i in range(6)])
    labels = ["lo", "NA", "lo", "NA", "NA", None]  # "NA": a class name pandas reads as missing
    index = pd.DataFrame(
        [(f"c{i}", f"c{i}.wav", labels[i], f"g{i}", "test" if r == "test" else "train", 0)
         for i, r in enumerate(ROLES)], columns=list(INDEX_COLUMNS))
    return waves.astype(np.float32), index


def train_rows(index: pd.DataFrame) -> pd.DataFrame:
    return index.iloc[TRAIN].reset_index(drop=True)


def test_one_row_per_copy_of_each_training_clip(clips, tiny_features: FeatureConfig) -> None:
    waves, index = clips
    train = train_rows(index)
    mels, aug = augment_training_clips(waves[TRAIN], train, AUG, tiny_features)
    assert mels.shape == (3 * 2, tiny_features.n_mels, tiny_features.n_frames)
    assert mels.dtype == np.float32 and mels.max() <= 0.0 and mels.min() >= -tiny_features.top_db
    assert list(aug.columns) == ["aug_id", "clip_id", "label", "copy", "ops"]
    assert aug["clip_id"].tolist() == ["c0", "c0", "c1", "c1", "c3", "c3"]
    assert aug["label"].tolist() == ["lo", "lo", "NA", "NA", "NA", "NA"]
    assert aug["copy"].tolist() == [0, 1] * 3
    assert aug["aug_id"].is_unique and aug["aug_id"][1] == "c0#aug1"
    assert aug["ops"].map(lambda ops: isinstance(ops, str) and ops != "").all()


def test_no_clips_gives_empty_outputs(tiny_features: FeatureConfig) -> None:
    empty = pd.DataFrame(columns=["clip_id", "label"])
    mels, aug = augment_training_clips(np.empty((0, tiny_features.n_samples), np.float32), empty,
                                       AUG, tiny_features)
    assert mels.shape == (0, tiny_features.n_mels, tiny_features.n_frames) and len(aug) == 0


def test_same_seed_same_copies(clips, tiny_features: FeatureConfig) -> None:
    """Repeatable in-process; the stage test below checks two worker processes against one."""
    waves, index = clips
    train = train_rows(index)
    first, aug = augment_training_clips(waves[TRAIN], train, AUG, tiny_features)
    again, aug_again = augment_training_clips(waves[TRAIN], train, AUG, tiny_features)
    np.testing.assert_array_equal(first, again)
    pd.testing.assert_frame_equal(aug, aug_again)
    reseeded, _ = augment_training_clips(waves[TRAIN], train,
                                         dataclasses.replace(AUG, seed=1), tiny_features)
    assert not np.array_equal(first, reseeded)


def write_features_and_split(folder: Path, waves: np.ndarray, index: pd.DataFrame,
                             features: FeatureConfig) -> tuple[Path, Path]:
    """What extract_mels and split would have written for these clips."""
    save_features(folder / "features", waves_to_mels(waves, features), index, waves)
    split = index[["clip_id", "label", "group"]].assign(role=ROLES)
    write_table(folder / "split.csv", split)
    return folder / "features", folder / "split.csv"


def test_stage_augments_training_clips_only(tmp_path: Path, clips, tiny_features: FeatureConfig,
                                            params_writer, stage) -> None:
    """Stage ``augment`` on the split's rows, in two worker processes: copies of training clips
    only, identical to one in-process worker, and accepted by the classifier's loader."""
    waves, index = clips
    features, split = write_features_and_split(tmp_path, waves, index, tiny_features)
    params = params_writer(tmp_path / "params.yaml", features=to_dict(tiny_features),
                           augment=to_dict(dataclasses.replace(AUG, workers=2)))
    run = stage("augment.py", "--params", params, "--features", features, "--split", split,
                "--out", tmp_path / "augment")
    assert run.returncode == 0, run.stderr
    aug = load_features(tmp_path / "augment")
    roles = dict(zip(index["clip_id"], ROLES))
    assert {roles[c] for c in aug.index["clip_id"]} == {"train"}
    assert sorted(set(aug.index["clip_id"])) == ["c0", "c1", "c3"]

    one_worker, expected = augment_training_clips(waves[TRAIN], train_rows(index), AUG,
                                                  tiny_features)
    np.testing.assert_array_equal(aug.mels, one_worker)
    pd.testing.assert_frame_equal(aug.index, expected)

    data = load_classifier_data(features, split, tmp_path / "augment")
    assert len(data.train) == 3 + 6 and len(data.val) == 2 and data.train_clips == 3
    assert data.classes == ["NA", "lo"] and data.val_ids == ["c2", "c4"]
    np.testing.assert_array_equal(data.train.labels, [1, 0, 0] + [1, 1, 0, 0, 0, 0])
    x, _ = data.train[list(range(9))]  # the copies come from the augment stage's own array
    np.testing.assert_allclose(x[3:, 0].numpy() * data.std + data.mean, aug.mels, atol=1e-3)


def test_loader_refuses_copies_of_non_training_clips(tmp_path: Path, clips,
                                                     tiny_features: FeatureConfig) -> None:
    waves, index = clips
    features, split = write_features_and_split(tmp_path, waves, index, tiny_features)
    mels = waves_to_mels(waves[:2], tiny_features)
    leaky = pd.DataFrame({"aug_id": ["c0#aug0", "c2#aug0"], "clip_id": ["c0", "c2"],
                          "label": ["lo", "lo"], "copy": [0, 0], "ops": ["noise", "noise"]})
    save_features(tmp_path / "augment", mels, leaky)
    with pytest.raises(ValueError, match=r"augmented copies of non-training clips.*'c2'"):
        load_classifier_data(features, split, tmp_path / "augment")
