"""Thin DVC stage scripts: parse paths, load params, call sonic, write. Run as `python -m stages.NAME`.

The stage commands in dvc.yaml call `python`. When DVC is started as `.venv/bin/dvc` without
activating the environment, that `python` is whatever interpreter comes first on PATH and lacks
the project's packages; in that case the stage is re-run, unchanged, with the project's own
`.venv` interpreter.
"""
import importlib.util
import os
import sys
from pathlib import Path

_VENV_PYTHON = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "python"

if importlib.util.find_spec("torch") is None and _VENV_PYTHON.exists():
    os.execv(_VENV_PYTHON, [str(_VENV_PYTHON), *sys.orig_argv[1:]])
