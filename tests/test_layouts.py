"""``sonic.audio.layouts.discover``: the folder, ESC-50 and UrbanSound8K layouts, answers, groups, misplaced and
missing files, and wrong layouts that say what was expected where."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from sonic.audio.io import read_audio
from sonic.audio.layouts import LayoutError, discover
from sonic.audio.manifest import read_manifest
from sonic.config import ConfigError, DataConfig, parse_params


def folder_cfg(root: Path, **kw) -> DataConfig:
    return DataConfig(layout="folder", root=str(root), **kw)


def test_folder_layout_with_test_clips_and_answers(folder_set: Path) -> None:
    clips, bad = discover(folder_cfg(folder_set))
    assert bad == []
    train = [c for c in clips if c.role == "train"]
    test = [c for c in clips if c.role == "test"]
    assert len(train) == 9 and len(test) == 2
    assert {c.label for c in train} == {"low", "mid", "high"}
    low0 = next(c for c in train if c.clip_id == "train/low/low0.wav")
    assert (low0.path, low0.group, low0.fold) == (folder_set / "train/low/low0.wav",
                                                  "train/low/low0", 0)
    assert {c.clip_id: c.label for c in test} == {"test/t0.wav": "low", "test/t1.wav": "mid"}
    assert len({c.clip_id for c in clips}) == len(clips)


def test_answers_csv_elsewhere_and_unanswered_test_clips(folder_set: Path,
                                                        tmp_path: Path) -> None:
    (folder_set / "test_labels.csv").unlink()
    clips, _ = discover(folder_cfg(folder_set))
    assert all(c.label is None for c in clips if c.role == "test")
    answers = tmp_path / "answers.csv"
    answers.write_text("filename,label\nt1.wav,high\n")
    clips, _ = discover(folder_cfg(folder_set, answers=str(answers)))
    assert {c.clip_id: c.label for c in clips if c.role == "test"} == {
        "test/t0.wav": None, "test/t1.wav": "high"}


def test_bad_answers_files_are_layout_errors(folder_set: Path, tmp_path: Path) -> None:
    with pytest.raises(LayoutError, match="data.answers=.*does not exist"):
        discover(folder_cfg(folder_set, answers=str(tmp_path / "nope.csv")))
    (folder_set / "test_labels.csv").write_text("name,class\nt0.wav,low\n")
    with pytest.raises(LayoutError, match="expected columns filename,label"):
        discover(folder_cfg(folder_set))


def test_misplaced_files_are_reported_not_used(folder_set: Path, clip_writer) -> None:
    loose = clip_writer(folder_set / "train" / "loose.wav")
    deep = clip_writer(folder_set / "train" / "low" / "extra" / "deep.wav")
    (folder_set / "train" / "low" / "notes.txt").write_text("not audio, not a clip\n")
    clips, bad = discover(folder_cfg(folder_set))
    reasons = {Path(b.path): b.reason for b in bad}
    assert set(reasons) == {loose, deep}
    assert "directly in train/" in reasons[loose]
    assert "nested below a class folder" in reasons[deep]
    assert all("expected train/<class>/" in r for r in reasons.values())
    assert len(clips) == 11


def test_group_regex_groups_clips_by_source(tmp_path: Path, clip_writer) -> None:
    root = tmp_path / "data"
    for name in ("dog/src01_take1", "dog/src01_take2", "dog/src02_take1", "cat/odd"):
        clip_writer(root / "train" / f"{name}.wav")
    clips, _ = discover(folder_cfg(root, group_regex=r"^(src\d+)_"))
    groups = {c.clip_id: c.group for c in clips}
    assert groups == {"train/dog/src01_take1.wav": "src01", "train/dog/src01_take2.wav": "src01",
                      "train/dog/src02_take1.wav": "src02",
                      "train/cat/odd.wav": "train/cat/odd"}  # no match: its own path


def test_same_named_files_in_two_class_folders_are_two_groups(tmp_path: Path,
                                                               clip_writer) -> None:
    """The default group is the path without suffix; a group_regex still applies to the stem,
    so its group is shared across class folders."""
    root = tmp_path / "data"
    for name in ("train/dog/001", "train/cat/001", "train/dog/002", "test/001"):
        clip_writer(root / f"{name}.wav")
    clips, _ = discover(folder_cfg(root))
    assert {c.clip_id: c.group for c in clips} == {
        "train/cat/001.wav": "train/cat/001", "train/dog/001.wav": "train/dog/001",
        "train/dog/002.wav": "train/dog/002", "test/001.wav": "test/001"}
    clips, _ = discover(folder_cfg(root, group_regex=r"^(\d+)$"))
    assert {c.clip_id: c.group for c in clips if c.role == "train"} == {
        "train/cat/001.wav": "001", "train/dog/001.wav": "001", "train/dog/002.wav": "002"}


def test_discover_reads_only_the_manifest_and_reports_its_unusable_entries(
        folder_set: Path, tmp_path: Path, clip_writer, manifest_writer) -> None:
    gone = folder_set / "test" / "gone.wav"
    gone.symlink_to("nowhere.wav")
    (folder_set / "notes.txt").symlink_to("missing.txt")
    manifest = read_manifest(manifest_writer(folder_set, tmp_path / "manifest.csv"))
    clip_writer(folder_set / "train" / "low" / "late.wav")  # written after the scan
    clips, bad = discover(folder_cfg(folder_set), manifest)
    assert len(clips) == 11 and "train/low/late.wav" not in {c.clip_id for c in clips}
    assert [b.path for b in bad] == [str(gone), str(folder_set / "notes.txt")]
    assert "symbolic link to nowhere.wav, which does not exist" in bad[0].reason
    assert (bad[0].clip.clip_id, bad[0].clip.role) == ("test/gone.wav", "test")
    assert bad[1].clip is None and "missing.txt" in bad[1].reason


def test_wrong_folder_layouts_say_what_was_expected(tmp_path: Path, clip_writer) -> None:
    with pytest.raises(LayoutError, match="does not exist"):
        discover(folder_cfg(tmp_path / "absent"))
    root = tmp_path / "data"
    clip_writer(root / "clips" / "a.wav")
    with pytest.raises(LayoutError, match=r"expected .*train/<class>/<clip>.wav.*no train/ folder"):
        discover(folder_cfg(root))
    clip_writer(root / "train" / "a.wav")  # a train/ folder, but no class folder
    with pytest.raises(LayoutError, match="holds no audio files in class folders"):
        discover(folder_cfg(root))


def write_esc50(root: Path, clip_writer, missing: str | None = None) -> pd.DataFrame:
    """A 6-clip ESC-50 look-alike: official meta columns, clips in audio/."""
    rows = []
    for i in range(6):
        fold, category = 1 + i % 3, ("dog", "rain")[i % 2]
        filename = f"{fold}-{100 + i // 2}-A-{i % 2}.wav"
        rows.append((filename, fold, i % 2, category, i % 2 == 0, str(100 + i // 2), "A"))
        if filename != missing:
            clip_writer(root / "audio" / filename, sr=44100, seconds=0.1)
    meta = pd.DataFrame(rows, columns=["filename", "fold", "target", "category", "esc10",
                                       "src_file", "take"])
    (root / "meta").mkdir(parents=True)
    meta.to_csv(root / "meta" / "esc50.csv", index=False)
    return meta


def test_esc50_layout_and_a_missing_listed_file(tmp_path: Path, clip_writer) -> None:
    root = tmp_path / "ESC-50"
    meta = write_esc50(root, clip_writer, missing="2-100-A-1.wav")
    clips, bad = discover(DataConfig(layout="esc50", root=str(root)))
    assert [Path(b.path) for b in bad] == [root / "audio" / "2-100-A-1.wav"]
    assert "listed in meta/esc50.csv but missing from audio/" in bad[0].reason
    assert len(clips) == 5 and all(c.role == "train" for c in clips)
    by_id = {c.clip_id: c for c in clips}
    first = by_id["audio/1-100-A-0.wav"]
    assert (first.label, first.group, first.fold) == ("dog", "100", 1)
    assert {c.fold for c in clips} == set(meta["fold"])


def test_esc50_wrong_layouts(tmp_path: Path, clip_writer) -> None:
    root = tmp_path / "ESC-50"
    clip_writer(root / "audio" / "1-1-A-0.wav")
    with pytest.raises(LayoutError, match=r"ESC-50 index at .*meta/esc50.csv"):
        discover(DataConfig(layout="esc50", root=str(root)))
    (root / "meta").mkdir()
    (root / "meta" / "esc50.csv").write_text("filename,fold,target\n1-1-A-0.wav,1,0\n")
    with pytest.raises(LayoutError, match="missing column.*category.*src_file"):
        discover(DataConfig(layout="esc50", root=str(root)))


def test_flac_and_ogg_are_discovered_and_decoded(tmp_path: Path, clip_writer) -> None:
    root = tmp_path / "data"
    flac = clip_writer(root / "train" / "a" / "one.flac", sr=16000, seconds=0.25)
    ogg = clip_writer(root / "train" / "b" / "two.ogg", sr=22050, seconds=0.25, channels=2)
    clips, bad = discover(folder_cfg(root))
    assert bad == [] and sorted(c.path for c in clips) == sorted([flac, ogg])
    audio, sr = read_audio(flac)
    assert (audio.shape, sr) == ((1, 4000), 16000)
    audio, sr = read_audio(ogg)
    assert audio.shape[0] == 2 and abs(audio.shape[1] - 5512) <= 1 and sr == 22050


def test_urbansound8k_layout_groups_slices_by_recording(tmp_path: Path,
                                                        urbansound8k_writer) -> None:
    root = tmp_path / "UrbanSound8K"
    urbansound8k_writer(root, missing="600-0-0-7.wav")
    clips, bad = discover(DataConfig(layout="urbansound8k", root=str(root)))
    assert [Path(b.path) for b in bad] == [root / "audio" / "fold2" / "600-0-0-7.wav"]
    assert "missing from audio/fold2/" in bad[0].reason
    assert len(clips) == 7 and all(c.role == "train" for c in clips)
    first = next(c for c in clips if c.clip_id == "audio/fold1/100-0-0-0.wav")
    assert (first.label, first.group, first.fold) == ("dog_bark", "fsID 100", 1)
    assert sorted(c.clip_id for c in clips if c.group == "fsID 200") == [
        "audio/fold2/200-1-0-2.wav", "audio/fold2/200-1-0-3.wav"]
    audio, sr = read_audio(first.path)
    assert sr == 48000 and audio.shape[0] == 2


def test_urbansound8k_wrong_layouts(tmp_path: Path) -> None:
    root = tmp_path / "US8K"
    root.mkdir()
    with pytest.raises(LayoutError, match=r"UrbanSound8K index at .*metadata/UrbanSound8K.csv"):
        discover(DataConfig(layout="urbansound8k", root=str(root)))
    (root / "metadata").mkdir()
    (root / "metadata" / "UrbanSound8K.csv").write_text("slice_file_name,fold\na.wav,1\n")
    with pytest.raises(LayoutError, match="missing column"):
        discover(DataConfig(layout="urbansound8k", root=str(root)))


def test_esc10_subset_and_class_list_select_clips(tmp_path: Path, clip_writer,
                                                   folder_set_writer) -> None:
    root = tmp_path / "esc50"
    meta = write_esc50(root, clip_writer)
    clips, _ = discover(DataConfig(layout="esc50", root=str(root), subset="esc10"))
    assert sorted(c.clip_id for c in clips) == sorted(
        f"audio/{f}" for f in meta.loc[meta["esc10"], "filename"])
    clips, _ = discover(DataConfig(layout="esc50", root=str(root), classes=("rain",)))
    assert {c.label for c in clips} == {"rain"} and len(clips) == 3
    with pytest.raises(LayoutError, match="data.classes: no clip is labelled 'cat'"):
        discover(DataConfig(layout="esc50", root=str(root), classes=("cat",)))

    folder = folder_set_writer(tmp_path / "folder")
    clips, _ = discover(DataConfig(layout="folder", root=str(folder), classes=("low", "high")))
    assert {c.label for c in clips} == {"low", "high"}  # the answered test clips too


def test_subset_outside_esc50_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="data.subset: esc10 is a subset of the esc50 layout"):
        parse_params({"data": {"layout": "folder", "subset": "esc10"}})
