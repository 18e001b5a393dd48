"""A training stage's resume key hashes exactly the code deps dvc.yaml gives the stage, so an
edit that makes DVC re-run it also makes it start afresh rather than resume a stale state, and an
edit elsewhere (``sonic/generation/quality.py`` for the GAN) neither re-runs nor restarts it."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def stage_code(script: str) -> list[Path]:
    """``CODE`` of a stage script, the files its resume key hashes."""
    spec = importlib.util.spec_from_file_location(f"stage_{script}", REPO / "stages" / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [Path(c).resolve() for c in module.CODE]


@pytest.mark.parametrize("script, stages", [("train.py", ("train_cnn", "train_resnet")),
                                            ("train_cgan.py", ("train_cgan",))])
def test_resume_key_hashes_exactly_the_stage_code_deps(script: str,
                                                       stages: tuple[str, ...]) -> None:
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    code = set(stage_code(script))
    assert all(c.is_file() for c in code)  # files, never a whole folder
    for name in stages:
        deps = {(REPO / d).resolve() for d in dvc[name]["deps"]
                if d.split("/")[0] in ("sonic", "stages")}
        assert deps == code, (f"{name}: dvc.yaml only {sorted(map(str, deps - code))}, "
                              f"resume key only {sorted(map(str, code - deps))}")


def test_the_gan_resume_key_leaves_out_the_sample_quality_code() -> None:
    assert REPO / "sonic/generation/quality.py" not in stage_code("train_cgan.py")
