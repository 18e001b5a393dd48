"""Stage logs through DVCLive: one folder per stage, laid out as DVCLive lays it out.

``<folder>/metrics.json`` holds the stage's headline figures (what ``dvc exp show`` lists);
``<folder>/plots/metrics/*.tsv`` the per-epoch curves, ``plots/images`` pictures and
``plots/sklearn`` confusion matrices. ``dvc.yaml`` declares the folder as the stage's output and
points its top-level ``metrics:`` and ``plots:`` into it. Everything else a stage wants to keep
(per-class tables, run details) goes in plain files beside them, written atomically.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from dvclive import Live

from sonic.runtime import write_json


def open_live(folder: str | Path) -> Live:
    """A DVCLive logger writing to ``folder`` only: it neither edits ``dvc.yaml`` (the
    pipeline's own declares the plots) nor saves an experiment (``dvc exp run`` does that)."""
    return Live(str(folder), dvcyaml=False, save_dvc_exp=False, report=None)


def rounded(value: Any, digits: int = 6) -> Any:
    """``value`` with every float rounded to ``digits`` places, so JSON diffs show real changes."""
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v, digits) for v in value]
    return value


def write_details(path: str | Path, details: dict) -> None:
    """A JSON report file that is not a DVC metric (run details, per-class tables)."""
    write_json(path, rounded(details))
