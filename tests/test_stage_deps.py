"""Every stage's ``deps`` in ``dvc.yaml`` cover every project module its script runs.

DVC re-runs a stage only when one of its declared deps changes, so a module a stage imports but
does not declare can be edited without the stage noticing: its outputs stay "up to date" while
describing code that no longer exists (and ``tests/test_lock.py`` cannot tell). This test reads
each stage script's imports — at any depth, lazy ones inside functions included — follows them
through ``sonic`` (and ``stages``) transitively, and names every module file that no declared
dep covers, a dep covering a file when it is that file or a folder holding it.

The other way round, a declared code dep the stage never runs re-runs it for nothing (a change
to ``sonic/generation/quality.py``, used by ``synthesize`` alone, would retrain the GAN): code
deps are the module files the stage runs, never a folder and never a module it does not import.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from sonic.codedeps import ROOT as REPO
from sonic.codedeps import PACKAGES, modules_run_by_stage, module_file

ROOT_INIT = REPO / "sonic" / "__init__.py"  # only the version string (checked below)


def stage_scripts() -> dict[str, tuple[str, list[str]]]:
    """Stage name → (the module its ``cmd`` runs with ``python -m``, its declared deps)."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    out = {}
    for name, stage in stages.items():
        module = re.search(r"python -m (\S+)", stage["cmd"])[1]
        out[name] = (module, [str(d) for d in stage.get("deps", [])])
    return out


def covered(path: Path, deps: list[str]) -> bool:
    rel = path.relative_to(REPO).as_posix()
    return any(rel == d.rstrip("/") or rel.startswith(d.rstrip("/") + "/") for d in deps)


def test_the_root_package_init_holds_only_the_version() -> None:
    """``sonic/__init__.py`` runs in every stage but is exempt from the deps: keep it inert."""
    tree = ast.parse(ROOT_INIT.read_text())
    body = [n for n in tree.body if not (isinstance(n, ast.Expr) and isinstance(n.value,
                                                                               ast.Constant))]
    assert len(body) == 1 and isinstance(body[0], ast.Assign)
    assert [t.id for t in body[0].targets] == ["__version__"]


def test_the_walker_follows_lazy_relative_and_package_imports() -> None:
    runs = {p.relative_to(REPO).as_posix() for p in modules_run_by_stage("stages.submit")}
    assert {"stages/__init__.py", "sonic/evaluation/evaluate.py", "sonic/evaluation/metrics.py",
            "sonic/models/checkpoint.py", "sonic/models/cnn.py", "sonic/config/parse.py",
            "sonic/config/submit.py", "sonic/evaluation/__init__.py"} <= runs


def test_the_walker_finds_a_lazily_re_exported_name_in_its_own_module() -> None:
    """``from sonic.config import FeatureConfig`` runs ``sonic/config/features.py`` alone: the
    package re-exports names on first use, and the walker follows the name to its module."""
    from sonic.codedeps import imported_names

    mel = REPO / "sonic/features/mel.py"
    assert "from sonic.config import FeatureConfig" in mel.read_text()
    runs = {p.relative_to(REPO).as_posix() for p in modules_run_by_stage("sonic.features.mel")}
    assert {"sonic/config/__init__.py", "sonic/config/features.py"} <= runs
    assert not runs & {"sonic/config/params.py", "sonic/config/train.py", "sonic/config/cgan.py"}
    assert "sonic.config.features" in imported_names(mel)


@pytest.mark.parametrize("stage", sorted(stage_scripts()))
def test_stage_deps_cover_every_module_it_runs(stage: str) -> None:
    module, deps = stage_scripts()[stage]
    assert module_file(module) is not None, f"{stage}: cannot find {module}, which its cmd runs"
    missing = sorted(p.relative_to(REPO).as_posix() for p in modules_run_by_stage(module)
                     if p != ROOT_INIT and not covered(p, deps))
    assert not missing, (f"dvc.yaml: stage {stage} runs {', '.join(missing)} but does not list "
                         "it (or a folder holding it) in its deps")


@pytest.mark.parametrize("stage", sorted(stage_scripts()))
def test_stage_code_deps_are_only_the_modules_it_runs(stage: str) -> None:
    module, deps = stage_scripts()[stage]
    runs = {p.relative_to(REPO).as_posix() for p in modules_run_by_stage(module)}
    code = [d.rstrip("/") for d in deps if d.split("/")[0] in PACKAGES]
    folders = [d for d in code if (REPO / d).is_dir()]
    unused = [d for d in code if d not in runs and d not in folders]
    assert not folders, (f"dvc.yaml: stage {stage} lists the folder(s) {', '.join(folders)}: "
                         "list the modules it imports from there instead")
    assert not unused, (f"dvc.yaml: stage {stage} lists {', '.join(unused)}, which it does not "
                        "import: drop it, or an edit there re-runs the stage for nothing")


def stages_listing(path: str) -> set[str]:
    """The stages an edit to ``path`` re-runs: those whose deps in dvc.yaml cover it."""
    return {name for name, (_, deps) in stage_scripts().items() if covered(REPO / path, deps)}


CLASSIFIER_STAGES = {"prepare", "scan", "extract_mels", "split", "augment", "train_cnn",
                     "train_resnet", "evaluate", "submit", "cv_split", "cv_augment", "cv_train",
                     "cv_distill", "cv_evaluate"}


def test_an_edit_to_the_sample_quality_code_leaves_the_gan_and_classifiers_cached() -> None:
    """``quality.py`` measures samples: the stages that measure them re-run, no training does."""
    listing = stages_listing("sonic/generation/quality.py")
    assert "synthesize" in listing
    assert not listing & (CLASSIFIER_STAGES | {"train_cgan"})


def test_an_edit_to_the_gan_config_re_runs_the_gan_stages_only() -> None:
    """The ``cgan`` section's module: the GAN and what samples it re-run, no classifier does."""
    listing = stages_listing("sonic/config/cgan.py")
    assert "train_cgan" in listing
    assert listing <= {"train_cgan", "synthesize"}


@pytest.mark.parametrize("section", ["demo", "data", "features", "split", "augment", "train",
                                     "cnn", "resnet", "evaluate", "submit", "cgan", "invert",
                                     "synthesize", "cv", "distill"])
def test_a_section_module_is_a_dep_only_where_its_section_or_its_model_is_used(
        section: str) -> None:
    """An edit to one section's code re-runs the stages whose params list that section, or
    that build what it configures (the classifier registry holds both ``cnn`` and ``resnet``,
    and a checkpoint its ``features``; ``synthesize`` loads the GAN and trains small CNNs), and
    no other stage."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    readers = {name for name, stage in stages.items()
               if any(str(p).split(".")[0] == section for p in stage.get("params", []))}
    classifiers = {"train_cnn", "train_resnet", "cv_train", "cv_distill", "evaluate",
                   "cv_evaluate", "submit", "synthesize"}  # every stage that builds a classifier
    builds = {"cnn": classifiers, "resnet": classifiers, "train": {"synthesize"},
              "cgan": {"synthesize"},
              "features": classifiers,  # a checkpoint carries its features config
              "cv": {"evaluate"}}.get(section, set())  # cv.models names a folder's checkpoints
    listing = stages_listing(f"sonic/config/{section}.py")
    assert listing, f"no stage lists sonic/config/{section}.py"
    assert listing <= readers | builds, (f"sonic/config/{section}.py re-runs "
                                         f"{sorted(listing - readers - builds)}")
