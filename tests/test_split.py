"""``sonic.split.split_roles``: stratified by class, whole groups only, test clips untouched,
seeded; fold layouts score the held-out fold and select on a slice of the other folds."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sonic.audio.layouts import discover
from sonic.config import DataConfig, SplitConfig, to_dict
from sonic.features.store import INDEX_COLUMNS
from sonic.split import split_roles, stratified_group_holdout

CLASSES = ("dog", "rain", "siren")


def folder_index(seed: int = 0, groups_per_class: int = 10) -> pd.DataFrame:
    """An extract_mels-style index: per class, groups of 1-4 clips (as group_regex would make),
    plus three test clips."""
    rng = np.random.default_rng(seed)
    rows = []
    for label in CLASSES:
        for g in range(groups_per_class):
            group = f"{label}-src{g}"
            for take in range(rng.integers(1, 5)):
                rows.append((f"train/{label}/{group}_{take}.wav", label, group, "train", 0))
    rows += [(f"test/t{i}.wav", None, f"t{i}", "test", 0) for i in range(3)]
    return pd.DataFrame(rows, columns=["clip_id", "label", "group", "role", "fold"])


def esc50_index() -> pd.DataFrame:
    """Five folds × two classes × four clips, two clips per source recording."""
    rows = [(f"audio/{fold}-{src}-A-{take}.wav", label, f"{label}{fold}{src}", "train", fold)
            for fold in range(1, 6) for label in ("dog", "rain") for src in range(2)
            for take in range(2)]
    return pd.DataFrame(rows, columns=["clip_id", "label", "group", "role", "fold"])


@pytest.mark.parametrize("val_size", [0.2, 0.35])
def test_each_class_holds_out_its_share_by_whole_groups(val_size: float) -> None:
    index = folder_index()
    table = split_roles(index, SplitConfig(val_size=val_size, seed=1), "folder")
    assert list(table.columns) == ["clip_id", "label", "group", "role"]
    assert table["clip_id"].tolist() == index["clip_id"].tolist()
    pool = table[table["role"] != "test"]
    largest_group = pool.groupby("group").size().max()
    for label, clips in pool.groupby("label"):
        n_val = (clips["role"] == "val").sum()
        assert n_val >= 1, label
        assert abs(n_val - val_size * len(clips)) <= largest_group, (label, n_val, len(clips))
    roles_per_group = pool.groupby("group")["role"].nunique()
    assert (roles_per_group == 1).all(), "a group straddles train and val"


def test_test_clips_keep_role_test() -> None:
    index = folder_index()
    table = split_roles(index, SplitConfig(), "folder")
    is_test = index["role"] == "test"
    assert (table.loc[is_test, "role"] == "test").all()
    assert set(table.loc[~is_test, "role"]) == {"train", "val"}


def test_split_is_seeded() -> None:
    index = folder_index()
    first = split_roles(index, SplitConfig(seed=3), "folder")
    pd.testing.assert_frame_equal(first, split_roles(index, SplitConfig(seed=3), "folder"))
    other = split_roles(index, SplitConfig(seed=4), "folder")
    assert not first["role"].equals(other["role"])


def test_every_class_with_two_groups_is_validated() -> None:
    pool = pd.DataFrame({"label": ["a", "a", "b", "b", "b"],
                         "group": ["a1", "a2", "b1", "b2", "b3"]})
    chosen = stratified_group_holdout(pool, 0.1, seed=0)  # round(0.1 * n) would be 0
    assert len(chosen & {"a1", "a2"}) == 1 and len(chosen & {"b1", "b2", "b3"}) == 1


def test_same_named_clips_of_two_classes_are_split_as_their_own_groups(tmp_path,
                                                                      clip_writer) -> None:
    """``train/cat/00i.wav`` and ``train/dog/00i.wav`` from discover: 20 groups, not 10 shared
    by both classes, and each class holds out its own share."""
    root = tmp_path / "data"
    for label in ("cat", "dog"):
        for i in range(10):
            clip_writer(root / "train" / label / f"{i:03d}.wav")
    clips, _ = discover(DataConfig(layout="folder", root=str(root)))
    index = pd.DataFrame([(c.clip_id, str(c.path), c.label, c.group, c.role, c.fold)
                          for c in clips], columns=list(INDEX_COLUMNS))
    table = split_roles(index, SplitConfig(val_size=0.2, seed=0), "folder")
    assert table["group"].nunique() == 20
    assert (table.groupby("group")["label"].nunique() == 1).all()
    assert table[table["role"] == "val"].groupby("label").size().to_dict() == {"cat": 2, "dog": 2}


@pytest.mark.parametrize("val_size", [0.0, 1.0, -0.2])
def test_val_size_outside_0_1_is_rejected(val_size: float) -> None:
    with pytest.raises(ValueError, match="val_size must lie in"):
        split_roles(folder_index(), SplitConfig(val_size=val_size), "folder")


def test_esc50_holds_out_exactly_the_val_fold() -> None:
    index = esc50_index()
    table = split_roles(index, SplitConfig(val_fold=3, select="last"), "esc50")
    np.testing.assert_array_equal(table["role"] == "test", index["fold"] == 3)
    assert set(table["role"]) == {"train", "test"}  # nothing selects under select: last
    with pytest.raises(ValueError, match=r"split.val_fold=7 is not one of the folds"):
        split_roles(index, SplitConfig(val_fold=7), "esc50")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_inner_selection_never_looks_at_the_held_out_fold(seed: int) -> None:
    """select: inner cuts val from the training folds only: stratified (each class keeps its
    share), whole recordings, seeded; the held-out fold is exactly the test split."""
    index = esc50_index()
    cfg = SplitConfig(val_fold=3, select="inner", select_size=0.25, seed=seed)
    table = split_roles(index, cfg, "esc50")
    np.testing.assert_array_equal(table["role"] == "test", index["fold"] == 3)
    val = table[table["role"] == "val"]
    assert 3 not in set(index.loc[val.index, "fold"])
    assert val.groupby("label").size().to_dict() == {"dog": 4, "rain": 4}  # 0.25 of 16 each
    train_groups = set(table.loc[table["role"] == "train", "group"])
    assert train_groups.isdisjoint(val["group"])
    assert table.equals(split_roles(index, cfg, "esc50"))


@pytest.mark.parametrize("layout", ["esc50", "urbansound8k"])
def test_a_recording_in_the_held_out_fold_never_trains(layout: str) -> None:
    """Folds stay official, but a recording (ESC-50 src_file, UrbanSound8K fsID) with clips in
    the held-out fold and another — ESC-50 has four — keeps its other clips out of training and
    out of selection."""
    index = esc50_index()
    assert set(split_roles(index, SplitConfig(val_fold=2), layout)["role"]) == {"train", "val",
                                                                              "test"}
    index.loc[0, "fold"] = 2  # one take of fold 1's first recording (dog10) moved to fold 2
    table = split_roles(index, SplitConfig(val_fold=2), layout)
    np.testing.assert_array_equal(table["role"] == "test", index["fold"] == 2)
    assert table.loc[table["role"] == "excluded", "clip_id"].tolist() == [index.loc[1, "clip_id"]]
    for role in ("train", "val"):
        assert set(table.loc[table["role"] == role, "group"]).isdisjoint(
            table.loc[table["role"] == "test", "group"])


def test_urbansound8k_split_from_the_discovered_layout(tmp_path, urbansound8k_writer) -> None:
    """Discovered slices, held-out fold 2: exactly fold 2 is scored, whole recordings only."""
    urbansound8k_writer(tmp_path / "us8k")
    clips, _ = discover(DataConfig(layout="urbansound8k", root=str(tmp_path / "us8k")))
    index = pd.DataFrame([(c.clip_id, str(c.path), c.label, c.group, c.role, c.fold)
                          for c in clips], columns=list(INDEX_COLUMNS))
    table = split_roles(index, SplitConfig(val_fold=2), "urbansound8k")
    test = set(table.loc[table["role"] == "test", "clip_id"])
    assert test == {c.clip_id for c in clips if c.fold == 2}
    assert set(table.loc[table["role"] == "test", "group"]).isdisjoint(
        table.loc[table["role"].isin(["train", "val"]), "group"])


def test_urbansound8k_through_the_extract_and_split_stages(tmp_path, urbansound8k_writer,
                                                           tiny_features, params_writer,
                                                           manifest_writer, stage) -> None:
    """params alone (data.layout, data.root, split.val_fold) take the stages through it:
    48 kHz stereo slices decoded, folds kept in the index, fold 3 held out."""
    urbansound8k_writer(tmp_path / "us8k")
    params = params_writer(tmp_path / "params.yaml",
                           data={"layout": "urbansound8k", "root": str(tmp_path / "us8k")},
                           features=to_dict(tiny_features), split={"val_fold": 3})
    feats, report = tmp_path / "features", tmp_path / "bad.csv"
    manifest = manifest_writer(tmp_path / "us8k", tmp_path / "manifest.csv")
    run = stage("extract_mels.py", "--params", params, "--manifest", manifest, "--out", feats,
                "--report", report)
    assert run.returncode == 0, run.stderr
    index = pd.read_csv(feats / "index.csv")
    assert len(index) == 8 and sorted(index["fold"].unique()) == [1, 2, 3]
    run = stage("split.py", "--params", params, "--index", feats / "index.csv",
                "--out", tmp_path / "split.csv")
    assert run.returncode == 0, run.stderr
    roles = pd.read_csv(tmp_path / "split.csv").merge(index[["clip_id", "fold"]], on="clip_id")
    assert set(roles.loc[roles["role"] == "test", "fold"]) == {3}
    assert (roles["role"] == "test").sum() == 2
