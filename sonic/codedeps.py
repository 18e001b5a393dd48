"""The project files a module runs: its imports, followed through ``sonic`` and ``stages``.

A stage's code deps in ``dvc.yaml`` are exactly the files ``python -m stages.NAME`` runs
(``tests/test_stage_deps.py`` checks both ways), and a training stage's resume key hashes the
same files (:mod:`sonic.training.resume`), so an edit that makes DVC re-run a stage also makes
it start afresh. Imports are read from the source (any depth, lazy ones inside functions and
relative ones included), never by running the code, except for a package that re-exports its
names lazily (a module ``__getattr__``, as :mod:`sonic.config` does): there the name's own
module is looked up, so ``from sonic.config import FeatureConfig`` runs
``sonic/config/features.py`` and not every section.
"""
from __future__ import annotations

import ast
import importlib
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the repository: sonic/ and stages/ live here
PACKAGES = ("sonic", "stages")  # the project's own code; everything else is a library


def module_file(name: str) -> Path | None:
    """``sonic.features.mel`` → its file (a module or a package's ``__init__.py``), or None."""
    base = ROOT.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


@cache
def _lazy(package: str) -> bool:
    """Whether ``package``'s ``__init__.py`` defines a module-level ``__getattr__``."""
    path = module_file(package)
    if path is None or path.name != "__init__.py":
        return False
    return any(isinstance(n, ast.FunctionDef) and n.name == "__getattr__"
               for n in ast.parse(path.read_text()).body)


def _home(package: str, name: str) -> str | None:
    """The module defining ``name``, re-exported lazily by ``package``."""
    if module_file(f"{package}.{name}") is not None or not _lazy(package):
        return None
    return getattr(getattr(importlib.import_module(package), name, None), "__module__", None)


def imported_names(path: Path) -> set[str]:
    """Dotted names of the project modules ``path`` imports, wherever the import statement is."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts)
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
            if base.split(".")[0] not in PACKAGES:
                continue
            names.add(base)
            for alias in node.names:
                names.add(f"{base}.{alias.name}")  # a submodule, if it is one
                names.add(_home(base, alias.name) or base)
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


def modules_run_by_stage(module: str) -> set[Path]:
    """What ``python -m module`` runs: the script, its package's ``__init__.py`` files, and all
    they import."""
    parts = module.split(".")
    starts = [module_file(".".join(parts[:i])) for i in range(1, len(parts) + 1)]
    if None in starts:
        raise FileNotFoundError(f"no module {module} under {ROOT}")
    return set().union(*(modules_run_by(p) for p in starts))


def code_deps(module: str) -> list[Path]:
    """The files ``python -m module`` runs, sorted, the inert ``sonic/__init__.py`` (only the
    version string) left out as ``dvc.yaml`` leaves it out."""
    root_init = ROOT / "sonic" / "__init__.py"
    return sorted(p for p in modules_run_by_stage(module) if p != root_init)
