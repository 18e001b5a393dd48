"""Stage ``evaluate``: both classifiers and their ensemble, scored once on the held-out clips.

``test`` — labelled clips that took no part in any choice (the held-out fold of a fold layout,
answered ``test/`` clips of a folder layout) — is the unbiased figure. ``val`` is scored too,
labelled as what it is: the clips that selected each model's epoch.
"""
import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from sonic.config.cv import CVConfig
from sonic.config.evaluate import EvaluateConfig
from sonic.config.parse import load_sections
from sonic.evaluation.evaluate import confusions, evaluate_models
from sonic.evaluation.plots import confusion_figure, per_class_table
from sonic.features.store import load_features
from sonic.training.checkpoint import load_classifier
from sonic.training.report import open_live, rounded, write_details

SETS = {"test": "held out, never used for a choice", "val": "selected each model's epoch"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--features", type=Path, required=True)
    parser.add_argument("--split", type=Path, required=True)
    parser.add_argument("--models", type=Path, nargs="+", required=True,
                        help="checkpoints, or folders holding one per cv.models name")
    parser.add_argument("--live", type=Path, required=True, help="DVCLive folder")
    args = parser.parse_args()
    params = load_sections(args.params, evaluate=EvaluateConfig, cv=CVConfig)

    # a folder holds one checkpoint per name in cv.models (the cv_evaluate stages)
    paths = [q for p in args.models
             for q in ([p / f"{m}.pt" for m in params.cv.models] if p.is_dir() else [p])]
    models = {p.stem: load_classifier(p) for p in paths}
    classes = next(iter(models.values())).classes
    feats = load_features(args.features)
    split = pd.read_csv(args.split, dtype=str, keep_default_na=False)
    live = open_live(args.live)
    headline, details, lines = {}, {}, []
    for name, meaning in SETS.items():
        clips = split[(split["role"] == name) & (split["label"] != "")]
        if clips.empty:
            continue
        db = np.asarray(feats.mels[feats.rows(clips["clip_id"])])
        labels = list(clips["label"])
        report, preds = evaluate_models(models, db, labels, params.evaluate.calibration_bins)
        headline[name] = {m: {"accuracy": r["accuracy"], "macro_f1": r["macro_f1"]}
                          for m, r in report.items()}
        details[name] = {"clips": len(labels), "meaning": meaning, "models": report}
        for model, pred in preds.items():
            live.log_sklearn_plot("confusion_matrix", labels, [classes[i] for i in pred],
                                  name=f"{name}/{model}_confusion.json")
            live.log_plot(f"{name}/{model}_per_class", per_class_table(report[model]), x="f1",
                          y="class", template="bar_horizontal")
        live.log_image(f"{name}_confusion.png",
                       confusion_figure(confusions(preds, labels, classes), classes))
        lines.append(f"{name} ({len(labels)} clips, {meaning}): " + ", ".join(
            f"{m} acc {r['accuracy']:.3f} F1 {r['macro_f1']:.3f}" for m, r in report.items()))
    if not headline:
        raise SystemExit(f"evaluate: {args.split} has no labelled test or val clip to score")
    live.summary = rounded(headline)
    live.end()
    write_details(args.live / "report.json", details)
    print("evaluate: " + "; ".join(lines))


if __name__ == "__main__":
    main()
