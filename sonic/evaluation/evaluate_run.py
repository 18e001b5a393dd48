"""Stage ``evaluate``'s work: every classifier and their ensemble, scored once on each labelled
set of the split, into a DVCLive folder (headline figures, confusion matrices, per-class F1)
and ``report.json``.

``test`` — labelled clips that took no part in any choice (the held-out fold of a fold layout,
answered ``test/`` clips of a folder layout) — is the unbiased figure. ``val`` is scored too,
labelled as what it is: the clips that selected each model's epoch.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sonic.evaluation.confusion_plots import confusion_figure, per_class_table
from sonic.evaluation.evaluate import confusions, evaluate_models
from sonic.features.store import load_features
from sonic.models.checkpoint import Classifier
from sonic.report import open_live, rounded, write_details

SETS = {"test": "held out, never used for a choice", "val": "selected each model's epoch"}


def checkpoint_paths(models: list[Path], names: tuple[str, ...]) -> list[Path]:
    """Checkpoints as given; a folder stands for its ``<name>.pt`` for each of ``names``
    (``cv.models`` and ``cv.students``: the cv_evaluate stages)."""
    return [q for p in models for q in ([p / f"{m}.pt" for m in names] if p.is_dir() else [p])]


def log_set(live, name: str, report: dict, preds: dict, labels: list[str],
            classes: list[str]) -> None:
    """One set's confusion matrices and per-class F1 tables, per model, and its picture."""
    for model, pred in preds.items():
        live.log_sklearn_plot("confusion_matrix", labels, [classes[i] for i in pred],
                              name=f"{name}/{model}_confusion.json")
        live.log_plot(f"{name}/{model}_per_class", per_class_table(report[model]), x="f1",
                      y="class", template="bar_horizontal")
    live.log_image(f"{name}_confusion.png",
                   confusion_figure(confusions(preds, labels, classes), classes))


def evaluate_checkpoints(models: dict[str, Classifier], features_dir: Path, split: Path,
                         calibration_bins: int, live_dir: Path) -> list[str]:
    """Score ``models`` on the split's labelled ``test`` and ``val`` clips; write ``live_dir``
    and ``live_dir/report.json``; return one summary line per set scored."""
    classes = next(iter(models.values())).classes
    feats = load_features(features_dir)
    roles = pd.read_csv(split, dtype=str, keep_default_na=False)
    live = open_live(live_dir)
    headline, details, lines = {}, {}, []
    for name, meaning in SETS.items():
        clips = roles[(roles["role"] == name) & (roles["label"] != "")]
        if clips.empty:
            continue
        db = np.asarray(feats.mels[feats.rows(clips["clip_id"])])
        labels = list(clips["label"])
        report, preds = evaluate_models(models, db, labels, calibration_bins)
        headline[name] = {m: {"accuracy": r["accuracy"], "macro_f1": r["macro_f1"]}
                          for m, r in report.items()}
        details[name] = {"clips": len(labels), "meaning": meaning, "models": report}
        log_set(live, name, report, preds, labels, classes)
        lines.append(f"{name} ({len(labels)} clips, {meaning}): " + ", ".join(
            f"{m} acc {r['accuracy']:.3f} F1 {r['macro_f1']:.3f}" for m, r in report.items()))
    if not headline:
        raise SystemExit(f"evaluate: {split} has no labelled test or val clip to score")
    live.summary = rounded(headline)
    live.end()
    write_details(live_dir / "report.json", details)
    return lines
