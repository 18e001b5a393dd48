"""The DVC pipeline itself, end to end, in a temporary copy of the repository with tiny params.

Covers `dvc repro` (and the no-op second run), `dvc exp run -S ...` re-running exactly the stages
downstream of the changed section, `dvc metrics diff`, `dvc plots show` and `dvc exp show`. Stage
`scan` runs every time (`always_changed`: it lists the data root) and changes nothing when the
data did not change.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from sonic.tensorfile import load_payload

pytestmark = pytest.mark.slow

CLASSES = ["dog_bark", "drilling", "siren", "engine_idling", "rain"]
TINY = {
    "demo": {"classes": CLASSES, "train_per_class": 6, "test_per_class": 2},
    "features": {"workers": 1, "duration": 1.0, "n_mels": 32, "n_fft": 512, "hop_length": 256},
    "augment": {"copies": 2, "workers": 1},
    "train": {"epochs": 2, "batch_size": 8},
    "cnn": {"widths": [16, 16, 16, 16], "fc": [16, 16, 8], "pool": [1, 1]},
    "resnet": {"widths": [16, 16, 16, 16], "blocks": [1, 1, 1, 1]},
    "cgan": {"epochs": 2, "g_width": 16, "d_width": 8, "batch_size": 8, "sample_every": 1},
    "invert": {"steps": 3, "hidden": 8, "eval_clips": 4, "griffin_lim_iters": 2},
    "synthesize": {"per_class": 2, "n_eval": 20, "n_boot": 10, "fd_dims": 4,
                   "cas": {"widths": [8], "epochs": 1}},
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory, repo_copier) -> Path:
    """A git repository holding a copy of the project with tiny params, committed."""
    return repo_copier(tmp_path_factory.mktemp("sonic"), TINY)


@pytest.fixture(scope="module")
def dvc(module_runner):
    def run(root: Path, *args: str) -> str:
        return module_runner(root, "dvc", *args)
    return run


def ran(output: str) -> set[str]:
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")}


def test_repro_builds_everything_then_has_nothing_to_do(repo, dvc, committer):
    out = dvc(repo, "repro")
    assert {"prepare", "scan", "extract_mels", "split", "augment", "train_cnn", "train_resnet",
            "evaluate", "submit", "train_cgan", "train_inverter", "synthesize"} <= ran(out)
    evaluation = json.loads((repo / "metrics/evaluate/metrics.json").read_text())
    for split in ("test", "val"):  # the demo's answered test clips, and the selecting clips
        for model in ("cnn", "resnet", "ensemble"):
            assert set(evaluation[split][model]) == {"accuracy", "macro_f1"}  # headline only
            assert 0.0 <= evaluation[split][model]["accuracy"] <= 1.0
    report = json.loads((repo / "metrics/evaluate/report.json").read_text())
    assert set(report["test"]["models"]["cnn"]["per_class"]) == set(CLASSES)
    submission = pd.read_csv(repo / "data/submission.csv")
    assert list(submission.columns) == ["filename", "label"]
    assert len(submission) == 5 * 2
    assert "accuracy" in json.loads((repo / "metrics/submit.json").read_text())
    for model in ("cnn", "resnet"):  # DVCLive: one row per epoch, step = epoch
        live = repo / "metrics" / f"train_{model}"
        curve = pd.read_csv(live / "plots/metrics/val/accuracy.tsv", sep="\t")
        assert curve["step"].tolist() == [1, 2]
        assert set(json.loads((live / "metrics.json").read_text())) == {"best_epoch", "epochs",
                                                                       "val", "step"}
    images = repo / "metrics/synthesize/plots/images"
    for name in CLASSES:
        assert sorted(p.name for p in (repo / "data/synth" / name).iterdir()) == ["000.wav",
                                                                                 "001.wav"]
        assert (images / f"{name}.png").is_file()
        assert (repo / "data/cgan_samples/epoch_002" / f"{name}_0.wav").is_file()
    assert (repo / "metrics/train_cgan/plots/images/grids/epoch_001.png").is_file()
    assert (repo / "metrics/evaluate/plots/images/test_confusion.png").is_file()
    quality = json.loads((repo / "metrics/synthesize/metrics.json").read_text())
    assert set(quality) == {"inception_score", "inception_score_real", "judge_accuracy",
                            "roundtrip_accuracy", "cas", "cas_real", "frechet", "frechet_floor",
                            "copy_rate"}  # a handful of columns in `dvc exp show`
    details = json.loads((repo / "metrics/synthesize/report.json").read_text())
    assert details["n_generated"] == 20 and len(details["cas"]["ci"]) == 2
    assert "lstsq_gl" in json.loads(
        (repo / "metrics/train_inverter/metrics.json").read_text())["spectral_convergence"]
    assert ran(dvc(repo, "repro")) == {"scan"}
    committer(repo, "baseline results")


def test_a_training_stage_killed_by_sigkill_resumes_to_the_same_result(repo, dvc):
    """`dvc repro -f -s train_cnn` is killed (SIGKILL, the whole process group) once epoch 1's
    resume state exists; the next `dvc repro` continues after epoch 1 and ends with the
    committed baseline's checkpoint and DVCLive files."""
    resume = repo / "data/resume/cnn.pt"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "dvc", "repro", "-f", "-s", "train_cnn"],
                            cwd=repo, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while not resume.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert resume.exists(), "the stage ended before its first resume state could be seen"
    out = dvc(repo, "repro", "train_cnn")
    assert "resuming after epoch 1" in out
    assert not resume.exists()  # a finished stage deletes its resume state
    assert json.loads((repo / "metrics/train_cnn/run.json").read_text())[
        "resumed_after_epoch"] == 1
    lock = yaml.safe_load(_committed(repo, "dvc.lock"))["stages"]["train_cnn"]["outs"]
    md5 = next(o["md5"] for o in lock if o["path"] == "data/models/cnn.pt")
    cached = repo / ".dvc/cache/files/md5" / md5[:2] / md5[2:]
    assert _same_checkpoint(cached, repo / "data/models/cnn.pt")
    for name in ("metrics.json", "plots/metrics/train/loss.tsv", "plots/metrics/val/accuracy.tsv"):
        path = f"metrics/train_cnn/{name}"
        assert (repo / path).read_text() == _committed(repo, path), path


def test_augment_param_reruns_augment_but_not_extraction(repo, dvc):
    out = dvc(repo, "exp", "run", "-S", "augment.copies=1")  # the issue's own command
    assert "augment" in ran(out) and "extract_mels" not in ran(out)
    assert {"train_cnn", "train_resnet"} <= ran(out)


def test_gan_param_reruns_only_the_gan_stages(repo, dvc):
    out = dvc(repo, "exp", "run", "-S", "cgan.lr_g=0.0004")
    assert ran(out) == {"scan", "train_cgan", "synthesize"}


def test_lr_experiment_reruns_training_only_and_diffs(repo, dvc):
    out = dvc(repo, "exp", "run", "-S", "train.lr=5e-4")
    assert {"train_cnn", "train_resnet", "evaluate", "submit", "synthesize"} <= ran(out)
    assert not {"prepare", "extract_mels", "split", "augment", "train_cgan"} & ran(out)
    diff = json.loads(dvc(repo, "metrics", "diff", "--json"))
    assert "metrics/train_cnn/metrics.json" in diff
    html = repo / "plots_html"
    dvc(repo, "plots", "show", "-o", str(html))
    assert (html / "index.html").is_file()
    shown = json.loads(dvc(repo, "exp", "show", "--json"))
    assert len(shown) >= 1


def test_two_process_training_through_dvc_exp_run(repo, dvc):
    """The issue's own command: `dvc exp run -S train.nproc=2` trains both models with two
    gloo processes under torchrun and writes the usual outputs once."""
    out = dvc(repo, "exp", "run", "-S", "train.nproc=2", "train_resnet")
    assert "train_resnet" in ran(out)
    details = json.loads((repo / "metrics/train_resnet/run.json").read_text())
    assert details["processes"] == 2
    curve = pd.read_csv(repo / "metrics/train_resnet/plots/metrics/train/loss.tsv", sep="\t")
    assert curve["step"].tolist() == [1, 2]


def test_exp_show_lists_a_handful_of_headline_metrics(repo, dvc):
    """Per-class figures live in report files, so `dvc exp show` stays a few columns a stage."""
    shown = json.loads(dvc(repo, "exp", "show", "--json"))
    metrics = shown[0]["rev"] == "workspace" and shown[0]["data"]["metrics"]
    columns = {f"{path}:{key}" for path, data in metrics.items()
               for key in _flat_keys(data["data"])}
    per_stage = {path: sum(c.startswith(path) for c in columns) for path in metrics}
    assert all(n <= 14 for n in per_stage.values()), per_stage
    assert not any("per_class" in c for c in columns)


def _flat_keys(d: dict, prefix: str = "") -> list[str]:
    return [k for key, v in d.items()
            for k in (_flat_keys(v, f"{prefix}{key}.") if isinstance(v, dict) else
                      [f"{prefix}{key}"])]


def test_plots_show_draws_each_plot_once(repo, dvc):
    """Every plot declared in dvc.yaml is rendered, and none twice."""
    shown = json.loads(dvc(repo, "plots", "show", "--json"))
    ids = list(shown["data"] if "data" in shown else shown)
    assert len(ids) == len(set(ids))
    declared = yaml.safe_load((repo / "dvc.yaml").read_text())["plots"]
    titles = [next(iter(p)) for p in declared if isinstance(p, dict)]
    for title in titles:
        assert title in ids, (title, ids)


TIMING = ("wall_time_s", "samples_per_s")  # the only figures that may differ between runs


def _committed(root: Path, path: str) -> str:
    return subprocess.run(["git", "show", f"HEAD:{path}"], cwd=root, capture_output=True,
                          text=True, check=True).stdout


def _outputs(lock_text: str) -> dict[str, str]:
    """Every stage output's hash in a dvc.lock, metrics files left out (they hold timings)."""
    stages = yaml.safe_load(lock_text)["stages"]
    return {out["path"]: out["md5"] for stage in stages.values() for out in stage.get("outs", [])
            if not out["path"].startswith("metrics/")}


def _figures(text: str) -> dict:
    """A metrics file's figures without the timings, at any depth."""
    def strip(x):
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k not in TIMING}
        return [strip(v) for v in x] if isinstance(x, list) else x
    return strip(json.loads(text))


def _same_checkpoint(a: Path, b: Path) -> bool:
    """What two checkpoints hold, tensor by tensor (both safetensors with JSON metadata, so equal
    contents also mean equal bytes; compared by content so that a difference names itself)."""
    x, y = (load_payload(p) for p in (a, b))

    def same(u, v) -> bool:
        if isinstance(u, torch.Tensor):
            return isinstance(v, torch.Tensor) and torch.equal(u, v)
        if isinstance(u, dict):
            return isinstance(v, dict) and u.keys() == v.keys() and all(same(u[k], v[k])
                                                                        for k in u)
        if isinstance(u, (list, tuple)):
            return len(u) == len(v) and all(same(i, j) for i, j in zip(u, v))
        return u == v

    return same(x, y)


def test_a_second_run_on_this_machine_is_bit_identical(repo, dvc, repo_copier, tmp_path):
    """`dvc repro` from nothing in a second copy gives the committed baseline of the first, bit
    for bit: every output's hash (checkpoints: their contents) and every figure but the
    timings."""
    again = repo_copier(tmp_path / "again", TINY)
    dvc(again, "repro")
    first = _outputs(_committed(repo, "dvc.lock"))
    second = _outputs((again / "dvc.lock").read_text())
    assert first.keys() == second.keys()
    for path, md5 in first.items():
        if path.endswith(".pt"):  # the first run's file, from DVC's cache by its hash
            cached = repo / ".dvc/cache/files/md5" / md5[:2] / md5[2:]
            assert _same_checkpoint(cached, again / path), path
        else:
            assert second[path] == md5, path
    produced = sorted(p.relative_to(again).as_posix() for p in (again / "metrics").rglob("*")
                      if p.is_file() and not p.name.startswith("bench"))
    assert produced
    for name in produced:
        if name.endswith(".json"):
            assert _figures((again / name).read_text()) == _figures(_committed(repo, name)), name
        elif not name.endswith(".png"):  # (pictures: the same figures drawn; not compared)
            assert (again / name).read_text() == _committed(repo, name), name


def _rows_named(shown: list[dict], name: str) -> list[dict]:
    return [rev for commit in shown for exp in commit.get("experiments") or []
            for rev in exp.get("revs") or [] if rev.get("name") == name]


def test_exp_show_follows_a_running_queued_experiment(repo, dvc):
    """A queued experiment's DVCLive summary is rewritten every epoch, so `dvc exp show` lists
    the running experiment with the epoch it has reached (a long run, killed once seen)."""
    dvc(repo, "exp", "run", "--queue", "--name", "long", "-S", "train.epochs=3000",
        "-S", "train.patience=3000")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "OMP_NUM_THREADS": "1"}
    # the worker outlives `dvc queue start` and keeps its output pipe open: don't capture it
    subprocess.Popen([sys.executable, "-m", "dvc", "queue", "start"], cwd=repo, env=env,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True)
    steps, deadline = [], time.monotonic() + 300
    try:
        while time.monotonic() < deadline and len(set(steps)) < 2:
            shown = subprocess.run([sys.executable, "-m", "dvc", "exp", "show", "--json"],
                                   cwd=repo, env=env, capture_output=True, text=True)
            if shown.returncode and ("does not exist" in shown.stderr or (
                    "No such file or directory" in shown.stderr and "/exps/run/" in shown.stderr)):
                time.sleep(1)  # DVC's races: the worker's temporary workspace is half made, or
                continue  # its run-info file (.dvc/tmp/exps/run/<rev>/<rev>.run) is being replaced
            assert shown.returncode == 0, shown.stderr
            for rev in _rows_named(json.loads(shown.stdout), "long"):
                metrics = (rev.get("data") or {}).get("metrics") or {}
                live = (metrics.get("metrics/train_cnn/metrics.json") or {}).get("data") or {}
                if "train" in live:  # the per-epoch summary, written while training runs
                    assert "loss" in live["train"] and "accuracy" in live["val"]
                    steps.append(live["step"])
            time.sleep(1)
    finally:
        for args in (("queue", "kill", "long"), ("queue", "stop", "--kill")):
            subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, env=env,
                           capture_output=True, timeout=120)
    assert len(set(steps)) >= 2, f"no running epochs seen in `dvc exp show`: {steps}"
    assert steps == sorted(steps) and 1 <= steps[0] < steps[-1] < 3000
