"""The DVC pipeline itself, end to end, in a temporary copy of the repository with tiny params.

Covers `dvc repro` (and the no-op second run), `dvc exp run -S ...` re-running exactly the stages
downstream of the changed section, `dvc metrics diff`, `dvc plots show` and `dvc exp show`.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.slow

TINY = {
    "demo": {"train_per_class": 6, "test_per_class": 2},
    "features": {"workers": 1, "duration": 1.0, "n_mels": 32, "n_fft": 512, "hop_length": 256},
    "augment": {"copies": 2, "workers": 1},
    "train": {"epochs": 2, "batch_size": 8},
    "cnn": {"widths": [16, 16, 16, 16], "fc": [16, 16, 8], "pool": [1, 1]},
    "resnet": {"widths": [16, 16, 16, 16], "blocks": [1, 1, 1, 1]},
    "cgan": {"epochs": 2, "g_width": 16, "d_width": 8, "batch_size": 8, "sample_every": 1},
    "synthesize": {"per_class": 2, "griffin_lim_iters": 2},
}
CLASSES = ["dog_bark", "drilling", "siren", "engine_idling", "rain"]


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
    assert {"prepare", "extract_mels", "split", "augment", "train_cnn", "train_resnet",
            "evaluate", "submit", "train_cgan", "synthesize"} <= ran(out)
    evaluation = json.loads((repo / "metrics/evaluate.json").read_text())
    for model in ("cnn", "resnet"):
        assert 0.0 <= evaluation[model]["accuracy"] <= 1.0
        assert 0.0 <= evaluation[model]["macro_f1"] <= 1.0
    submission = pd.read_csv(repo / "data/submission.csv")
    assert list(submission.columns) == ["filename", "label"]
    assert len(submission) == 5 * 2
    assert "accuracy" in json.loads((repo / "metrics/submit.json").read_text())
    for name in CLASSES:
        assert sorted(p.name for p in (repo / "data/synth" / name).iterdir()) == ["000.wav",
                                                                                 "001.wav"]
        assert (repo / "plots/synth" / f"{name}.png").is_file()
        assert (repo / "data/cgan_samples/epoch_002" / f"{name}_0.wav").is_file()
    assert (repo / "plots/cgan/epoch_001.png").is_file()
    quality = json.loads((repo / "metrics/synthesize.json").read_text())
    for key in ("conditional_accuracy", "judge_val_accuracy", "roundtrip_accuracy",
                "frechet_distance", "frechet_floor", "memorisation"):
        assert key in quality
    assert ran(dvc(repo, "repro")) == set()
    committer(repo, "baseline results")


def test_augment_param_reruns_augment_but_not_extraction(repo, dvc):
    out = dvc(repo, "exp", "run", "-S", "augment.copies=1")  # the issue's own command
    assert "augment" in ran(out) and "extract_mels" not in ran(out)
    assert {"train_cnn", "train_resnet"} <= ran(out)


def test_gan_param_reruns_only_the_gan_stages(repo, dvc):
    out = dvc(repo, "exp", "run", "-S", "cgan.lr_g=0.0004")
    assert ran(out) == {"train_cgan", "synthesize"}


def test_lr_experiment_reruns_training_only_and_diffs(repo, dvc):
    out = dvc(repo, "exp", "run", "-S", "train.lr=5e-4")
    assert {"train_cnn", "train_resnet", "evaluate", "submit", "synthesize"} <= ran(out)
    assert not {"prepare", "extract_mels", "split", "augment", "train_cgan"} & ran(out)
    diff = json.loads(dvc(repo, "metrics", "diff", "--json"))
    assert any("train_cnn.json" in path for path in diff)
    html = repo / "plots_html"
    dvc(repo, "plots", "show", "-o", str(html))
    assert (html / "index.html").is_file()
    shown = json.loads(dvc(repo, "exp", "show", "--json"))
    assert len(shown) >= 1
