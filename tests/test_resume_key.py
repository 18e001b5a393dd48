"""The training stage's resume key covers every code dependency dvc.yaml gives the stage, so an
edit that makes DVC re-run it also makes it start afresh rather than resume a stale state."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def stage_code() -> list[Path]:
    """``CODE`` of stages/train.py, the files its resume key hashes."""
    spec = importlib.util.spec_from_file_location("train_stage", REPO / "stages" / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [Path(c).resolve() for c in module.CODE]


def covered(dep: Path, code: list[Path]) -> bool:
    """A dependency file or folder is in the key when it, or a folder above it, is listed."""
    return any(dep == c or c in dep.parents for c in code)


def test_resume_key_covers_every_code_dep_of_both_training_stages() -> None:
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    code = stage_code()
    for name in ("train_cnn", "train_resnet"):
        deps = [d for d in stages[name]["deps"] if d.split("/")[0] in ("sonic", "stages")]
        assert deps, name
        missing = [d for d in deps if not covered((REPO / d).resolve(), code)]
        assert not missing, f"{name}: code deps missing from stages/train.py CODE: {missing}"
    assert all(c.exists() for c in code)
