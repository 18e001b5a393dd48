"""Stage ``scan`` and ``sonic.audio.manifest``: every entry below the data root listed with its
hash and status, broken links and unreadable entries named instead of crashing DVC, hashes
cached by (size, mtime, inode), and ``extract_mels`` re-run exactly when content changes."""
from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pandas as pd
import pytest

from sonic.audio.manifest import COLUMNS, OK, read_manifest, scan, write_manifest

AS_ROOT = os.geteuid() == 0  # root reads any file, so chmod 000 makes nothing unreadable
HOUR_AGO = time.time() - 3600


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_scan_lists_every_file_with_its_hash_and_names_broken_entries(folder_set: Path,
                                                                      tmp_path: Path) -> None:
    (folder_set / "train" / "low" / "gone.wav").symlink_to("nowhere.wav")
    (folder_set / "loop").symlink_to(".")  # a link back to a folder above: never walked
    os.mkfifo(folder_set / "test" / "pipe.wav")  # reading it would block
    entries, _ = scan(folder_set)
    by_path = {e.path: e for e in entries}
    files = sorted(p.relative_to(folder_set).as_posix() for p in folder_set.rglob("*")
                   if p.is_file())
    assert [e.path for e in entries if e.status == OK] == files  # sorted, answers CSV included
    for rel in files:
        assert (by_path[rel].md5, by_path[rel].size) == (md5(folder_set / rel),
                                                         (folder_set / rel).stat().st_size)
    gone = by_path["train/low/gone.wav"]
    assert (gone.status, gone.md5) == ("broken_link", "")
    assert "symbolic link to nowhere.wav, which does not exist" in gone.reason
    assert "restore its target or remove the link" in gone.reason
    assert by_path["loop"].status == "broken_link" and "loop" in by_path["loop"].detail
    assert by_path["test/pipe.wav"].status == "not_a_file"
    write_manifest(tmp_path / "m.csv", entries)
    assert list(pd.read_csv(tmp_path / "m.csv").columns) == list(COLUMNS)
    assert list(read_manifest(tmp_path / "m.csv").values()) == entries


@pytest.mark.skipif(AS_ROOT, reason="root reads a chmod 000 file or folder")
def test_scan_names_unreadable_files_and_folders(folder_set: Path) -> None:
    (folder_set / "test" / "t0.wav").chmod(0)
    (folder_set / "train" / "mid").chmod(0)
    try:
        by_path = {e.path: e for e in scan(folder_set)[0]}
    finally:
        (folder_set / "train" / "mid").chmod(0o755)
    assert by_path["test/t0.wav"].status == "unreadable"
    assert "make it readable" in by_path["test/t0.wav"].reason
    assert by_path["train/mid"].status == "unreadable"
    assert "cannot list the folder" in by_path["train/mid"].detail


def test_scan_reads_only_files_whose_size_mtime_or_inode_changed(folder_set: Path,
                                                                  clip_writer) -> None:
    for p in folder_set.rglob("*.wav"):
        os.utime(p, (HOUR_AGO, HOUR_AGO))  # old enough to cache (younger files are re-read)
    first, cache = scan(folder_set)
    assert "test_labels.csv" not in {Path(p).name for p in cache}  # just written: not cached
    low0 = os.path.abspath(folder_set / "train/low/low0.wav")
    cache[low0][3] = "0" * 32  # a cached hash is trusted while the file's key is unchanged ...
    assert {e.path: e.md5 for e in scan(folder_set, cache)[0]}["train/low/low0.wav"] == "0" * 32
    os.utime(low0)  # ... and not once its mtime changed; touching keeps the real hash
    again, cache = scan(folder_set, cache)
    assert again == first
    high0 = folder_set / "train/high/high0.wav"
    assert os.path.abspath(high0) in cache
    size = high0.stat().st_size
    clip_writer(high0, 250.0, 22050, 0.3, subtype="PCM_16")  # as written, another tone
    assert high0.stat().st_size == size  # same size: only the mtime tells
    changed = {e.path: e.md5 for e in scan(folder_set, cache)[0]}
    assert changed["train/high/high0.wav"] == md5(high0)
    assert changed["train/high/high0.wav"] != {e.path: e.md5 for e in first}["train/high/high0.wav"]


def test_scan_stage_reports_by_name_and_fail_mode_stops(folder_set: Path, tmp_path: Path,
                                                        params_writer, stage) -> None:
    link = folder_set / "train" / "low" / "gone.wav"
    link.symlink_to("nowhere.wav")
    out, cache = tmp_path / "manifest.csv", tmp_path / "tmp" / "cache.json"
    params = params_writer(tmp_path / "params.yaml",
                           data={"layout": "folder", "root": str(folder_set)})
    run = stage("scan.py", "--params", params, "--out", out, "--cache", cache)
    assert run.returncode == 0, run.stderr
    assert f"scan: skipping {link}: symbolic link to nowhere.wav" in run.stderr
    assert "12 files under" in run.stdout and "1 unusable" in run.stdout
    assert read_manifest(out)["train/low/gone.wav"].status == "broken_link"
    assert cache.is_file()

    params = params_writer(tmp_path / "fail.yaml", data={"layout": "folder", "root": str(
        folder_set), "on_bad_file": "fail"})
    run = stage("scan.py", "--params", params, "--out", tmp_path / "m2.csv", "--cache", cache)
    assert run.returncode == 1
    assert f"scan: {link}: symbolic link to nowhere.wav" in run.stderr
    assert "set data.on_bad_file: skip" in run.stderr and not (tmp_path / "m2.csv").exists()
    params = params_writer(tmp_path / "absent.yaml", data={"root": str(tmp_path / "absent")})
    run = stage("scan.py", "--params", params, "--out", tmp_path / "m3.csv", "--cache", cache)
    assert run.returncode == 1 and "absent does not exist" in run.stderr


# -------------------------------------------------------- the real pipeline, in a repo copy
TINY = {
    "data": {"layout": "folder", "root": "messy"},
    "demo": {"train_per_class": 2, "test_per_class": 1},
    "features": {"workers": 1, "duration": 0.5, "n_mels": 32, "n_fft": 256, "hop_length": 128,
                 "sample_rate": 8000},
    "augment": {"copies": 0, "workers": 1},
    "train": {"epochs": 1, "batch_size": 8},
    "cnn": {"widths": [8, 8, 8, 8], "fc": [8, 8, 8], "pool": [1, 1]},
    "resnet": {"widths": [8, 8, 8, 8], "blocks": [1, 1, 1, 1]},
}


def ran(output: str) -> set[str]:
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")}


@pytest.mark.slow
def test_dvc_repro_gets_past_broken_and_unreadable_entries(tmp_path: Path, repo_copier,
                                                           module_runner, folder_set_writer,
                                                           clip_writer) -> None:
    """A messy folder-layout root (a broken link in train/, one at the root, a cut-off test
    file, a chmod 000 test file): `dvc repro submit` runs through, every test file has a row,
    the unusable ones flagged; then a no-op, a touch and a content change."""
    repo = repo_copier(tmp_path / "sonic", TINY)
    root = folder_set_writer(repo / "messy", per_class=3, n_test=4)
    (root / "train" / "low" / "gone.wav").symlink_to("nowhere.wav")
    (root / "README").symlink_to("/nonexistent/README")
    cut = root / "test" / "t2.wav"
    cut.write_bytes(cut.read_bytes()[:60])  # the header promises more audio than there is
    (root / "test" / "t3.wav").chmod(0)  # unreadable (to anyone but root)

    out = module_runner(repo, "dvc", "repro", "submit")
    assert {"prepare", "scan", "extract_mels", "split", "train_cnn", "train_resnet",
            "submit"} <= ran(out)
    assert "scan: skipping messy/train/low/gone.wav: symbolic link to nowhere.wav" in out
    assert "scan: skipping messy/README: symbolic link to /nonexistent/README" in out
    assert "submit: test/t2.wav could not be used (truncated WAV" in out
    submission = pd.read_csv(repo / "data/submission.csv")
    assert submission["filename"].tolist() == ["t0.wav", "t1.wav", "t2.wav", "t3.wav"]
    probs = pd.read_csv(repo / "data/submission_probs.csv", keep_default_na=False)
    flagged = set(probs.loc[probs["fallback"] != "", "filename"])
    assert flagged == ({"t2.wav"} if AS_ROOT else {"t2.wav", "t3.wav"})
    if not AS_ROOT:
        assert "submit: test/t3.wav could not be used (cannot read the file" in out
    bad = pd.read_csv(repo / "data/bad_files.csv")
    assert {"messy/train/low/gone.wav", "messy/README", "messy/test/t2.wav"} <= set(bad["file"])

    assert ran(module_runner(repo, "dvc", "repro", "extract_mels")) == {"scan"}
    os.utime(root / "train" / "mid" / "mid1.wav")  # touched: same content, same manifest
    assert ran(module_runner(repo, "dvc", "repro", "extract_mels")) == {"scan"}
    clip_writer(root / "train" / "mid" / "mid1.wav", 900.0)  # new content
    assert ran(module_runner(repo, "dvc", "repro", "extract_mels")) == {"scan", "extract_mels"}
