"""Stage ``evaluate``: both classifiers on the validation clips — figures, confusion matrices."""
import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from sonic.config import load_params
from sonic.evaluation.evaluate import confusions, evaluate_models
from sonic.evaluation.plots import save_confusion_png, write_confusion_csv
from sonic.features.store import load_features
from sonic.training.checkpoint import load_classifier
from sonic.training.report import write_metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--features", type=Path, required=True)
    parser.add_argument("--split", type=Path, required=True)
    parser.add_argument("--models", type=Path, nargs="+", required=True, help="checkpoints")
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--plots", type=Path, required=True, help="folder for confusion plots")
    args = parser.parse_args()
    params = load_params(args.params)

    models = {p.stem: load_classifier(p) for p in args.models}
    feats = load_features(args.features)
    split = pd.read_csv(args.split, dtype=str, keep_default_na=False)
    val = split[split["role"] == "val"]
    db = np.asarray(feats.mels[feats.rows(val["clip_id"])])
    labels = list(val["label"])
    report, preds = evaluate_models(models, db, labels, params.evaluate.calibration_bins)

    classes = next(iter(models.values())).classes
    for name, pred in preds.items():
        write_confusion_csv(args.plots / f"{name}_confusion.csv", labels,
                            [classes[i] for i in pred])
    save_confusion_png(args.plots / "confusion.png", confusions(preds, labels, classes), classes)
    write_metrics(args.metrics, report)
    summary = ", ".join(f"{n} acc {report[n]['accuracy']:.3f} F1 {report[n]['macro_f1']:.3f}"
                        for n in preds)
    print(f"evaluate on {len(labels)} validation clips: {summary}; best: {report['best_model']}")


if __name__ == "__main__":
    main()
