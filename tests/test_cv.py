"""Cross-validation summary: parsing `dvc exp show --json` (a trimmed recording of DVC 3.67's
output) and the aggregation; then the documented recipe end to end — two folds of a tiny fake
ESC-50 queued with `dvc exp run --queue`, run by `dvc queue start`, summarised by `sonic.cv`."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
import soundfile as sf

from sonic.cv import aggregate, collect, main, select, to_markdown


def rev_data(rev: str, timestamp: str, fold: int, lr: float, scores: dict | None) -> dict:
    """The ``data`` of one row as DVC 3.67 writes it, trimmed to a few params and
    metrics/evaluate/metrics.json (the recording also had deps, outs and the other metrics files)."""
    params = {"data": {"layout": "esc50", "root": "/data/ESC-50"},
              "split": {"val_fold": fold}, "train": {"lr": lr}}
    missing = {"error": {"type": "FileNotFoundError",
                         "msg": "[Errno 2] No such file or directory: 'metrics/evaluate/metrics.json'"}}
    evaluate = missing if scores is None else {"data": {"test": {
        m: {"accuracy": a, "macro_f1": f} for m, (a, f) in scores.items()}}}
    return {"rev": rev, "timestamp": timestamp, "params": {"params.yaml": {"data": params}},
            "metrics": {"metrics/evaluate/metrics.json": evaluate} if scores != {} else {}}


def experiment(name: str, state: str | None, rev: str, timestamp: str, fold: int,
               scores: dict | None, lr: float = 0.001, error: dict | None = None) -> dict:
    executor = None if state is None else {"state": state, "name": "dvc-task",
                                           "local": {"returncode": 0}}
    return {"name": name, "executor": executor,
            "revs": [{"rev": rev, "name": name, "data": rev_data(rev, timestamp, fold, lr, scores),
                      "error": error, "experiments": None}]}


BASE = "0049240dea7248fb3043f34b2b1eb2cd25e634c2"
SHOWN = [
    {"rev": "workspace", "name": None, "error": None, "experiments": None,
     "data": rev_data("workspace", None, 1, 0.001, None)},
    {"rev": BASE, "name": "master", "error": None,
     "data": rev_data(BASE, "2026-11-21T12:35:25", 1, 0.001, None),
     "experiments": [
         experiment("fold2", "success", "abcf9e4b95efc8716582548fc2fe66d934276004",
                    "2026-11-21T12:38:07", 2,
                    {"cnn": (0.7, 0.6), "resnet": (0.8, 0.75), "ensemble": (0.85, 0.8)}),
         experiment("fold1", "success", "82bd344476144c0882726c18d195fc8f741a9699",
                    "2026-11-21T12:37:03", 1,
                    {"cnn": (0.5, 0.4), "resnet": (0.6, 0.5), "ensemble": (0.65, 0.6)}),
         # a re-run of fold 1 (executor cleared, as after `dvc queue remove`), newer, other lr
         experiment("fold1b", None, "5b1e0a0e2b1c4d7f8a9b0c1d2e3f405162738495",
                    "2026-11-21T12:40:10", 1,
                    {"cnn": (0.6, 0.5), "resnet": (0.7, 0.6), "ensemble": (0.75, 0.7)},
                    lr=0.0005),
         experiment("pending3", "queued", "b7a71aa9a40e8f9e60da37041bac819111bf6f65",
                    "2026-11-21T12:39:03", 3, {}),
         experiment("bad9", "failed", "63de6fb105592a00eb66f623b379fb59aadf08eb",
                    "2026-11-21T12:38:40", 9, None,
                    error={"msg": "Experiment run failed", "type": ""}),
     ]},
]


def test_collect_keeps_finished_experiments_only() -> None:
    table = collect(SHOWN)
    assert sorted(table["name"].unique()) == ["fold1", "fold1b", "fold2"]
    assert sorted(table["model"].unique()) == ["cnn", "ensemble", "resnet"]  # not best_model
    assert len(table) == 9 and table["val_fold"].dtype.kind == "i"
    row = table[(table["name"] == "fold2") & (table["model"] == "resnet")].iloc[0]
    assert (row["accuracy"], row["macro_f1"], row["val_fold"]) == (0.8, 0.75, 2)
    assert row["baseline"] == BASE and row["baseline_name"] == "master"


def test_select_by_name_prefix_and_baseline() -> None:
    table = collect(SHOWN)
    assert set(select(table, names=["fold2", "82bd344"])["name"]) == {"fold1", "fold2"}
    assert set(select(table, name_prefix="fold1")["name"]) == {"fold1", "fold1b"}
    assert len(select(table, baseline="0049240")) == 9 and len(select(table, baseline="main")) == 0


def test_aggregate_keeps_newest_per_fold_and_warns() -> None:
    summary, kept, warnings = aggregate(collect(SHOWN), folds=[1, 2, 3])
    assert set(kept["name"]) == {"fold1b", "fold2"}
    assert any("fold 1: 2 experiments" in w and "fold1b" in w for w in warnings)
    assert any("missing fold(s) 3" in w for w in warnings)
    assert any("train.lr" in w for w in warnings)  # fold1b was run with another lr
    cnn = summary[(summary["model"] == "cnn") & (summary["metric"] == "accuracy")].iloc[0]
    assert (cnn["fold1"], cnn["fold2"], cnn["n_folds"]) == (0.6, 0.7, 2)
    assert math.isclose(cnn["mean"], 0.65)
    assert math.isclose(cnn["std"], 0.1 / math.sqrt(2))  # sample std, ddof=1
    assert list(summary["model"].unique()) == ["cnn", "resnet", "ensemble"]
    assert "| cnn | accuracy | 0.6000 | 0.7000 | 0.6500 ± 0.0707 |" in to_markdown(summary)


def test_aggregate_without_experiments_is_an_error() -> None:
    with pytest.raises(ValueError, match="no finished experiment"):
        aggregate(collect(SHOWN[:1]))


def test_cli_reads_a_saved_document_and_writes_three_files(tmp_path, capsys) -> None:
    saved = tmp_path / "shown.json"
    saved.write_text(json.dumps(SHOWN))
    main(["--input", str(saved), "--name-prefix", "fold", "--folds", "1", "2",
          "--out", str(tmp_path / "cv")])
    out = capsys.readouterr()
    assert "keeping the newest, fold1b" in out.err and "0.6500 ± 0.0707" in out.out
    assert len(pd.read_csv(tmp_path / "cv.csv")) == 6  # 3 models x 2 metrics
    assert (tmp_path / "cv.md").read_text().startswith("| model | metric | fold 1 | fold 2 |")
    report = json.loads((tmp_path / "cv.json").read_text())
    assert report["models"]["resnet"]["accuracy"]["per_fold"] == {"1": 0.7, "2": 0.8}
    assert [e["name"] for e in report["experiments"]] == ["fold1b", "fold2"]


# ------------------------------------------------------------------------- end to end
TINY = {
    "demo": {"train_per_class": 2, "test_per_class": 0},
    "features": {"workers": 1, "duration": 1.0, "n_mels": 32, "n_fft": 512, "hop_length": 256},
    "augment": {"copies": 1, "workers": 1},
    "train": {"epochs": 1, "batch_size": 8},
    "cnn": {"widths": [16, 16, 16, 16], "fc": [16, 16, 8], "pool": [1, 1]},
    "resnet": {"widths": [16, 16, 16, 16], "blocks": [1, 1, 1, 1]},
}


def write_fake_esc50(root: Path) -> Path:
    """3 classes x 2 folds x 2 source files of 1 s tones, in the official ESC-50 layout."""
    rows, sr = [], 16000
    t = np.arange(sr) / sr
    for target, (category, hz) in enumerate({"low": 220.0, "mid": 880.0, "high": 2500.0}.items()):
        for fold in (1, 2):
            for k in range(2):
                src = f"{target}{fold}{k}"
                name = f"{fold}-{src}-A-{target}.wav"
                noise = 0.01 * np.random.default_rng(len(rows)).standard_normal(sr)
                (root / "audio").mkdir(parents=True, exist_ok=True)
                sf.write(root / "audio" / name, (0.3 * np.sin(2 * np.pi * hz * t) + noise)
                         .astype(np.float32), sr)
                rows.append((name, fold, target, category, False, src, "A"))
    (root / "meta").mkdir(parents=True)
    pd.DataFrame(rows, columns=["filename", "fold", "target", "category", "esc10", "src_file",
                                "take"]).to_csv(root / "meta/esc50.csv", index=False)
    return root


def wait_for_queue(root: Path, names: list[str], run, timeout: float = 600.0) -> str:
    """Wait until every experiment in ``names`` has finished; return `dvc queue status`.

    A finished experiment gets a git ref ``refs/exps/../<name>``, which git lists in
    milliseconds; `dvc queue status` (seconds of CPU that the workers need) is asked only every
    30 s, to notice a failure early. ``run(root, *args)`` runs ``python -m *args`` there.
    """
    deadline, asked = time.monotonic() + timeout, time.monotonic()
    while time.monotonic() < deadline:
        refs = subprocess.run(["git", "for-each-ref", "--format=%(refname)", "refs/exps"],
                              cwd=root, capture_output=True, text=True, check=True).stdout
        done = all(any(ref.endswith(f"/{n}") for ref in refs.split()) for n in names)
        if done:  # the worker may still be tidying up the last task for a moment
            status = run(root, "dvc", "queue", "status")
            if "Running" not in status:
                return status
        elif time.monotonic() - asked > 30:
            asked, status = time.monotonic(), run(root, "dvc", "queue", "status")
            assert "Failed" not in status, status
        time.sleep(2)
    raise AssertionError(f"the queue did not finish in {timeout:.0f} s:\n"
                         f"{run(root, 'dvc', 'queue', 'status')}")


@pytest.mark.slow
def test_queued_folds_are_summarised(tmp_path: Path, repo_copier, module_runner) -> None:
    def run(root: Path, *args: str) -> str:
        return module_runner(root, *args, timeout=300)

    data = write_fake_esc50(tmp_path / "ESC-50")
    root = repo_copier(tmp_path / "repo",
                       {**TINY, "data": {"layout": "esc50", "root": str(data)}})
    for fold in (1, 2):  # target evaluate: submit and the GAN stages play no part in CV
        run(root, "dvc", "exp", "run", "--queue", "-n", f"fold{fold}", "-S",
            f"split.val_fold={fold}", "evaluate")
    try:
        run(root, "dvc", "queue", "start", "-j", "1")
        status = wait_for_queue(root, ["fold1", "fold2"], run)
    finally:
        run(root, "dvc", "queue", "stop")
    assert status.count("Success") == 2, status

    out = run(root, "sonic.cv", "--folds", "1", "2", "--out", str(tmp_path / "cv"))
    assert "| cnn | accuracy |" in out
    report = json.loads((tmp_path / "cv.json").read_text())
    assert sorted(e["name"] for e in report["experiments"]) == ["fold1", "fold2"]
    for model in ("cnn", "resnet", "ensemble"):
        for metric in ("accuracy", "macro_f1"):
            figures = report["models"][model][metric]
            assert figures["n_folds"] == 2 and set(figures["per_fold"]) == {"1", "2"}
            assert 0 <= figures["mean"] <= 1 and figures["std"] is not None
    assert report["warnings"] == []


def write_three_fold_esc50(root: Path) -> Path:
    """``write_fake_esc50`` plus a third fold (same classes, new source files)."""
    write_fake_esc50(root)
    meta = pd.read_csv(root / "meta/esc50.csv")
    sr, t = 16000, np.arange(16000) / 16000
    rows = []
    for target, (category, hz) in enumerate({"low": 220.0, "mid": 880.0, "high": 2500.0}.items()):
        for k in range(2):
            src = f"{target}3{k}"
            name = f"3-{src}-A-{target}.wav"
            noise = 0.01 * np.random.default_rng(100 + len(rows)).standard_normal(sr)
            sf.write(root / "audio" / name, (0.3 * np.sin(2 * np.pi * hz * t) + noise)
                     .astype(np.float32), sr)
            rows.append((name, 3, target, category, False, src, "A"))
    pd.concat([meta, pd.DataFrame(rows, columns=meta.columns)]).to_csv(root / "meta/esc50.csv",
                                                                       index=False)
    return root


@pytest.mark.slow
def test_cross_validation_as_one_pipeline(tmp_path: Path, repo_copier, module_runner) -> None:
    """cv.folds makes one stage per fold (and model); `dvc repro` runs them all, adding a fold
    re-runs that fold only, and `sonic.cv --pipeline` summarises the folds' test figures; then a
    student distilled from a fold's teachers (:func:`check_a_student`)."""
    data = write_three_fold_esc50(tmp_path / "ESC-50")
    root = repo_copier(tmp_path / "repo", {**TINY, "data": {"layout": "esc50", "root": str(data)},
                                           "cv": {"folds": [1, 2]}})
    run = lambda *args: module_runner(root, *args)  # noqa: E731
    stages = {f"cv_{s}@{k}" for s in ("split", "augment", "evaluate") for k in (1, 2)}
    stages |= {f"cv_train@{k}-{m}" for k in (1, 2) for m in ("cnn", "resnet")}
    out = run("dvc", "repro", *sorted(stages))
    assert stages <= {line.split("'")[1] for line in out.splitlines()
                      if line.startswith("Running stage")}
    for k in (1, 2):
        roles = pd.read_csv(root / f"data/cv/{k}/split.csv")
        fold_of = roles["clip_id"].str.extract(r"audio/(\d)-")[0].astype(int)
        assert set(fold_of[roles["role"] == "test"]) == {k}  # the fold held out is scored
        assert k not in set(fold_of[roles["role"].isin(["train", "val"])])

    params = yaml.safe_load((root / "params.yaml").read_text())
    params["cv"]["folds"] = [1, 2, 3]
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = run("dvc", "repro", "cv_evaluate@3", "cv_evaluate@1", "cv_evaluate@2")
    ran = {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")}
    assert ran - {"scan"} == {"cv_split@3", "cv_augment@3", "cv_train@3-cnn",  # scan: always
                              "cv_train@3-resnet", "cv_evaluate@3"}

    out = run("sonic.cv", "--pipeline", "--folds", "1", "2", "3", "--out",
              str(tmp_path / "summary"))
    report = json.loads((tmp_path / "summary.json").read_text())
    for model in ("cnn", "resnet", "ensemble"):
        figures = report["models"][model]["accuracy"]
        assert figures["n_folds"] == 3 and set(figures["per_fold"]) == {"1", "2", "3"}
    assert "| cnn | accuracy |" in out
    check_a_student(root, run)


def check_a_student(root: Path, run) -> None:
    """cv.students adds a cv_distill stage per fold: a student trained on the soft targets of the
    checkpoints in data/teachers/<fold>/, which cv_evaluate scores beside the fold's models
    (``student_cnn``); a teacher from another fold is refused, by name, before any training."""
    from sonic.models.checkpoint import load_classifier, save_checkpoint

    teachers = root / "data/teachers"
    (teachers / "1").mkdir(parents=True)
    (teachers / "1/a_cnn.pt").write_bytes((root / "data/cv/1/models/cnn.pt").read_bytes())

    params = yaml.safe_load((root / "params.yaml").read_text())
    params["cv"]["students"] = ["cnn"]
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = run("dvc", "repro", "cv_evaluate@1")
    ran = {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")}
    assert ran - {"scan"} == {"cv_distill@1-cnn", "cv_evaluate@1"}  # no model retrained
    scores = json.loads((root / "data/cv/1/evaluate/metrics.json").read_text())["test"]
    assert {"cnn", "student_cnn", "ensemble"} <= set(scores)
    details = json.loads((root / "data/cv/1/distill_cnn/run.json").read_text())
    assert details["teachers"] == ["a_cnn.pt"]
    assert set(details["teachers_train_accuracy"]) == {"a_cnn.pt", "mean"}
    student = load_classifier(root / "data/cv/1/models/student_cnn.pt")
    assert student.meta["teachers"] == ["a_cnn.pt"]

    # fold 2's model trained on fold 1's clips: as a teacher of fold 1 it would leak them
    other = load_classifier(root / "data/cv/2/models/cnn.pt")
    save_checkpoint(teachers / "1/b_cnn.pt", "cnn", other.model, other.classes, other.features,
                    other.mean, other.std)
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    refused = subprocess.run([sys.executable, "-m", "dvc", "repro", "cv_distill@1-cnn"],
                             cwd=root, capture_output=True, text=True, env=env)
    assert refused.returncode != 0
    assert "b_cnn.pt: this teacher trained on other clips" in refused.stderr + refused.stdout
