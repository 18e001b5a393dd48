"""Stage ``submit`` and ``sonic.evaluation.submission``: a row for every test file, an unusable
one given the training class prior as its fallback, flagged and named; ``data.on_bad_file:
fail`` stops at it instead."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sonic.config import to_dict
from sonic.evaluation.submission import (FALLBACK, NOT_FINITE, Fallbacks, class_prior,
                                         finite_rows, with_fallbacks)


def messy_test_set(root: Path, folder_set_writer, clip_writer) -> Path:
    """3 classes (``mid`` the most frequent: 3 clips, the others 2), test clips t0-t3: t2 cut
    off after its header (answered ``high``), t3 a broken link (unanswered)."""
    folder_set_writer(root, per_class=2, n_test=3)
    clip_writer(root / "train" / "mid" / "mid_extra.wav", 880.0)
    cut = root / "test" / "t2.wav"
    cut.write_bytes(cut.read_bytes()[:60])
    (root / "test" / "t3.wav").symlink_to("missing.wav")
    return root


def test_fallback_rows_are_the_prior_sorted_in_and_scored() -> None:
    prior = class_prior(pd.Series(["b", "a", "b", "zzz", None]), ["a", "b", "c"])
    np.testing.assert_allclose(prior, [1 / 3, 2 / 3, 0])  # unknown labels and None ignored
    np.testing.assert_allclose(class_prior(pd.Series([], dtype=str), ["a", "b"]), [0.5, 0.5])
    bad = pd.DataFrame({"file": ["r/test/x.wav", "r/train/a/y.wav", "r/test/sub/a.wav"],
                        "reason": ["empty file", "NaN", "broken"], "clip_id": [
                            "test/x.wav", "train/a/y.wav", "test/sub/a.wav"],
                        "role": ["test", "train", "test"], "label": ["c", "a", None]})
    fallbacks = Fallbacks.from_bad_files(bad)
    assert fallbacks.names == ["x.wav", "sub/a.wav"] and list(fallbacks.labels) == ["c", None]
    probs = {"cnn": np.array([[0.9, 0.1, 0.0]])}
    joined, names, truth, reasons = with_fallbacks(probs, ["m.wav"], np.array(["a"]), fallbacks,
                                                   prior)
    assert names == ["m.wav", "sub/a.wav", "x.wav"]
    assert list(truth) == ["a", None, "c"] and reasons == ["", "broken", "empty file"]
    np.testing.assert_allclose(joined["cnn"], [[0.9, 0.1, 0.0], prior, prior])


@pytest.fixture
def extracted(tmp_path: Path, trained, folder_set_writer, clip_writer, params_writer,
              manifest_writer, stage):
    """The messy set through extract_mels (skip), with the trained models' features params."""
    root = messy_test_set(tmp_path / "data", folder_set_writer, clip_writer)
    params = params_writer(tmp_path / "params.yaml", data={"layout": "folder", "root": str(root)},
                           features=to_dict(trained.features))
    run = stage("extract_mels.py", "--params", params, "--manifest",
                manifest_writer(root, tmp_path / "manifest.csv"), "--out", tmp_path / "features",
                "--report", tmp_path / "bad_files.csv")
    assert run.returncode == 0, run.stderr
    return params


def test_every_test_file_gets_a_row_unusable_ones_the_flagged_prior(
        extracted: Path, trained, tmp_path: Path, stage) -> None:
    out, probs, metrics = tmp_path / "submission.csv", tmp_path / "probs.csv", tmp_path / "m.json"
    run = stage("submit.py", "--params", extracted, "--features", tmp_path / "features",
                "--bad-files", tmp_path / "bad_files.csv",
                "--models", trained.models / "cnn.pt", trained.models / "resnet.pt",
                "--out", out, "--probs", probs, "--report", metrics)
    assert run.returncode == 0, run.stderr
    submission = pd.read_csv(out)
    assert submission["filename"].tolist() == ["t0.wav", "t1.wav", "t2.wav", "t3.wav"]
    assert submission.set_index("filename").loc[["t2.wav", "t3.wav"], "label"].tolist() == [
        "mid", "mid"]  # the most frequent training class
    table = pd.read_csv(probs, keep_default_na=False).set_index("filename")
    assert list(table.columns) == [*trained.classes, FALLBACK]  # high, low, mid
    assert table.loc[["t0.wav", "t1.wav"], FALLBACK].tolist() == ["", ""]
    assert "truncated WAV" in table.loc["t2.wav", FALLBACK]
    assert "symbolic link to missing.wav" in table.loc["t3.wav", FALLBACK]
    np.testing.assert_allclose(table.loc["t3.wav", trained.classes].astype(float), [2 / 7,
                                                                                   2 / 7, 3 / 7])
    for name in ("t2", "t3"):
        assert f"submit: test/{name}.wav could not be used (" in run.stderr
    assert "fallback mid (the training class prior" in run.stderr
    scored = json.loads(metrics.read_text())
    assert (scored["n_test"], scored["n_fallback"], scored["n_scored"]) == (4, 2, 3)


def test_fail_mode_stops_at_the_unusable_test_file(tmp_path: Path, folder_set_writer,
                                                   clip_writer, params_writer, manifest_writer,
                                                   stage) -> None:
    root = messy_test_set(tmp_path / "data", folder_set_writer, clip_writer)
    (root / "test" / "t3.wav").unlink()  # scan would stop at the broken link first
    params = params_writer(tmp_path / "params.yaml", data={
        "layout": "folder", "root": str(root), "on_bad_file": "fail"})
    run = stage("extract_mels.py", "--params", params, "--manifest",
                manifest_writer(root, tmp_path / "manifest.csv"), "--out", tmp_path / "features",
                "--report", tmp_path / "bad_files.csv")
    assert run.returncode == 1
    assert f"extract_mels: {root / 'test' / 't2.wav'}: truncated WAV" in run.stderr
    assert "set data.on_bad_file: skip" in run.stderr
    assert not (tmp_path / "bad_files.csv").exists()


def test_a_non_finite_feature_row_is_that_clips_fallback_not_the_batchs() -> None:
    """A stored log-mel with a NaN (features made before extract_mels rejected such files)
    costs only its own clip, which joins the fallbacks with its answer kept."""
    db = np.zeros((3, 4, 5), np.float32)
    db[1, 2, 3] = np.nan
    assert finite_rows(db).tolist() == [True, False, True]
    empty = Fallbacks([], [], np.array([], dtype=object))
    more = empty.plus(["b.wav", "c.wav"], [NOT_FINITE] * 2, np.array(["dog", np.nan], object))
    assert more.names == ["b.wav", "c.wav"] and list(more.labels) == ["dog", None]
    assert len(more) == 2 and more.reasons == [NOT_FINITE, NOT_FINITE]
