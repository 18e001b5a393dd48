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

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("sonic", "stages")  # the project's own code; everything else is a library
ROOT_INIT = REPO / "sonic" / "__init__.py"  # only the version string (checked below)


def module_file(name: str) -> Path | None:
    """``sonic.features.mel`` → its file (a module or a package's ``__init__.py``), or None."""
    base = REPO.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def imported_names(path: Path) -> set[str]:
    """Dotted names of the project modules ``path`` imports, wherever the import statement is."""
    package = ".".join(path.relative_to(REPO).with_suffix("").parts)
    if path.name == "__init__.py":
        package = package.rsplit(".", 1)[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{node.module}" if node.module else parent
            else:
                base = node.module or ""
            names.add(base)
            names |= {f"{base}.{alias.name}" for alias in node.names}  # submodules, if any
    return {n for n in names if n.split(".")[0] in PACKAGES}


def modules_run_by(script: Path) -> set[Path]:
    """Every project file importing ``script`` runs: its imports, transitively, and the
    ``__init__.py`` of each package on the way (importing ``a.b.c`` runs ``a`` and ``a.b``)."""
    seen: set[Path] = set()
    todo = [script]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imported_names(path):
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                found = module_file(".".join(parts[:i]))
                if found is not None:
                    todo.append(found)
    return seen


def stage_scripts() -> dict[str, tuple[str, list[str]]]:
    """Stage name → (the module its ``cmd`` runs with ``python -m``, its declared deps)."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    out = {}
    for name, stage in stages.items():
        module = re.search(r"python -m (\S+)", stage["cmd"])[1]
        out[name] = (module, [str(d) for d in stage.get("deps", [])])
    return out


def modules_run_by_stage(module: str) -> set[Path]:
    """What ``python -m module`` runs: the script, its package's ``__init__.py`` files, and all
    they import."""
    parts = module.split(".")
    starts = [module_file(".".join(parts[:i])) for i in range(1, len(parts) + 1)]
    return set().union(*(modules_run_by(p) for p in starts))


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
            "sonic/training/checkpoint.py", "sonic/models/cnn.py", "sonic/config.py",
            "sonic/evaluation/__init__.py"} <= runs


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


def test_an_edit_to_the_sample_quality_code_leaves_the_gan_and_classifiers_cached() -> None:
    """``quality.py`` measures samples: the stages that measure them re-run, no training does."""
    listing = {name for name, (_, deps) in stage_scripts().items()
               if covered(REPO / "sonic/generation/quality.py", deps)}
    assert "synthesize" in listing
    assert not listing & {"train_cgan", "train_cnn", "train_resnet", "cv_train", "evaluate"}
