"""Working as a team (docs/team.md), offline: a bare git repository stands for the team's git
server and a local folder for its DVC remote.

Clone A runs the tiny pipeline, pushes git, the DVC cache and the run cache, then GTO tags and
an experiment. Clone B pulls and predicts, and `dvc repro` there runs no stage but `scan` (the
one that lists the data root on every run); it pulls the experiment and applies it. Clone C
reproduces a parameter value A ran in the experiment, from the run cache. A fresh folder gets the models
with `dvc artifacts get` from the bare repository, and `sonic predict` and `sonic serve` use
them.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from fastapi.testclient import TestClient
from test_pipeline_dvc import CLASSES, TINY  # the same tiny configuration

pytestmark = pytest.mark.slow

EXP = "one-epoch"  # A's experiment: one augmented copy, one epoch, up to train_cnn
EXP_SET = ("-S", "augment.copies=1", "-S", "train.epochs=1")
CLIP = "data/demo/test/clip_0000.wav"
ONLY_SCAN = {"scan": ["always changed"]}  # `dvc status` of an up-to-date workspace


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                          check=True).stdout


def gto(root: Path, *args: str) -> str:
    """The ``gto`` command of this interpreter's environment (it has no ``python -m``)."""
    return subprocess.run([str(Path(sys.executable).parent / "gto"), *args], cwd=root,
                          capture_output=True, text=True, check=True).stdout


def clone(origin: Path, dest: Path) -> Path:
    subprocess.run(["git", "clone", "-q", str(origin), str(dest)], check=True)
    git(dest, "config", "user.name", "teammate")
    git(dest, "config", "user.email", "teammate@localhost")
    return dest


def ran(output: str) -> set[str]:
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")}


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def team(tmp_path_factory, repo_copier, module_runner, committer) -> SimpleNamespace:
    """Clone A's work, pushed: the pipeline's results with their run cache, experiment EXP
    with its cache and run cache, and GTO versions of the three models (cnn also in prod)."""
    root = tmp_path_factory.mktemp("team")
    origin, storage = root / "origin.git", root / "storage"
    subprocess.run(["git", "init", "-q", "--bare", str(origin)], check=True)
    a = repo_copier(root / "a", TINY)
    git(a, "config", "user.name", "first")
    git(a, "config", "user.email", "first@localhost")
    git(a, "remote", "add", "origin", str(origin))
    module_runner(a, "dvc", "remote", "add", "-d", "storage", str(storage))
    committer(a, "a DVC remote")

    module_runner(a, "dvc", "repro")
    committer(a, "results")
    module_runner(a, "dvc", "push", "--run-cache")
    git(a, "push", "-q", "origin", "HEAD")
    baseline = SimpleNamespace(
        cnn=md5(a / "data/models/cnn.pt"),
        predictions=module_runner(a, "sonic", "predict", "--format", "json", CLIP))

    for model in ("cnn", "resnet", "cgan"):  # version v0.0.1 of each, at the results commit
        gto(a, "register", model)
    gto(a, "assign", "cnn", "--stage", "prod")
    git(a, "push", "-q", "origin", "--tags")

    module_runner(a, "dvc", "exp", "run", "--name", EXP, *EXP_SET, "train_cnn")
    module_runner(a, "dvc", "exp", "push", "--run-cache", "origin", EXP)
    experiment = SimpleNamespace(cnn=md5(a / "data/models/cnn.pt"),
                                 lock=yaml.safe_load((a / "dvc.lock").read_text())["stages"],
                                 metrics=(a / "metrics/train_cnn/metrics.json").read_text())
    return SimpleNamespace(root=root, origin=origin, storage=storage, a=a, baseline=baseline,
                           experiment=experiment)


@pytest.fixture(scope="module")
def dvc(module_runner):
    def run(root: Path, *args: str) -> str:
        return module_runner(root, "dvc", *args)
    return run


@pytest.fixture(scope="module")
def b(team, dvc) -> Path:
    """Clone B after `dvc pull`."""
    b = clone(team.origin, team.root / "b")
    dvc(b, "pull")
    return b


def test_a_teammate_pulls_and_predicts_with_nothing_to_run(team, b, dvc, module_runner):
    assert json.loads(dvc(b, "status", "--json")) == ONLY_SCAN
    assert md5(b / "data/models/cnn.pt") == team.baseline.cnn
    assert module_runner(b, "sonic", "predict", "--format", "json", CLIP) == \
        team.baseline.predictions
    assert ran(dvc(b, "repro")) == {"scan"}  # scan lists the data again and changes nothing
    assert json.loads(dvc(b, "status", "--json")) == ONLY_SCAN
    assert git(b, "status", "--porcelain") == ""


def test_run_cache_skips_a_stage_a_teammate_already_ran(team, dvc):
    """A ran augment.copies=1 (in experiment EXP) and pushed its run cache: C, on the baseline
    commit, sets the same value and `dvc repro --pull` restores augment's output from the
    remote instead of running it (`dvc pull --run-cache` brings the run records, not the
    outputs they name). DVC saves no run cache for a stage with a `cache: false` output other
    than a metric or plot: the training and evaluation stages, whose DVCLive folders are such
    outputs."""
    c = clone(team.origin, team.root / "c")
    dvc(c, "pull", "--run-cache")
    params = yaml.safe_load((c / "params.yaml").read_text())
    params["augment"]["copies"] = 1
    (c / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = dvc(c, "repro", "--pull", "augment")
    assert "Stage 'augment' is cached - skipping run, checking out outputs" in out
    assert ran(out) == {"scan"}
    lock = yaml.safe_load((c / "dvc.lock").read_text())["stages"]
    assert lock["augment"]["outs"] == team.experiment.lock["augment"]["outs"]


def test_experiments_travel_through_the_git_remote(team, b, dvc):
    dvc(b, "exp", "pull", "origin", EXP)
    shown = json.loads(dvc(b, "exp", "show", "--json"))
    names = {exp.get("name") for commit in shown for exp in commit.get("experiments") or []}
    assert EXP in names
    out = dvc(b, "exp", "apply", EXP)
    assert not ran(out)
    assert md5(b / "data/models/cnn.pt") == team.experiment.cnn
    assert (b / "metrics/train_cnn/metrics.json").read_text() == team.experiment.metrics
    params = yaml.safe_load((b / "params.yaml").read_text())
    assert (params["augment"]["copies"], params["train"]["epochs"]) == (1, 1)
    assert json.loads(dvc(b, "status", "--json", "train_cnn")) == {}  # outputs match the lock


def test_artifacts_get_fetches_models_that_predict_and_serve_use(team, dvc, module_runner):
    """`dvc artifacts get` from the bare repository (no workspace, no cache: the data comes
    from the DVC remote), by stage (cnn in prod) and by latest version (resnet, cgan)."""
    shown = json.loads(gto(team.a, "show", "--json"))
    assert {name: shown[name]["version"] for name in shown} == {
        "cnn": "v0.0.1", "resnet": "v0.0.1", "cgan": "v0.0.1"}
    assert shown["cnn"]["stage"]["prod"] == "v0.0.1"
    deploy = team.root / "deploy"
    models = deploy / "models"
    models.mkdir(parents=True)
    dvc(deploy, "artifacts", "get", str(team.origin), "cnn", "--stage", "prod", "-o", "models")
    for name in ("resnet", "cgan"):
        dvc(deploy, "artifacts", "get", str(team.origin), name, "-o", "models")
    assert sorted(p.name for p in models.iterdir()) == ["cgan.pt", "cnn.pt", "resnet.pt"]
    assert md5(models / "cnn.pt") == team.baseline.cnn

    clip = str(team.a / CLIP)
    predictions = module_runner(deploy, "sonic", "predict", "--models-dir", "models",
                                "--format", "json", clip)
    assert json.loads(predictions)[0]["top"] == json.loads(team.baseline.predictions)[0]["top"]

    from sonic.serve.app import create_app, load  # what `sonic serve --models ...` runs

    predictor, generator = load([str(models / "cnn.pt"), str(models / "resnet.pt")],
                                str(models / "cgan.pt"))
    with TestClient(create_app(predictor, generator), base_url="http://127.0.0.1:8000") as client:
        info = client.get("/api/models").json()
        assert [m["name"] for m in info["models"]] == ["cnn", "resnet", "ensemble"]
        assert info["generator"] == {"loaded": True, "classes": sorted(CLASSES)}
