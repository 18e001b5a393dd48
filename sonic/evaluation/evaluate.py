"""Scoring trained classifiers on held-out clips, and predicting test clips for a submission."""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

from sonic.evaluation.metrics import classification_report, confusion
from sonic.models.checkpoint import Classifier


def check_same_classes(models: dict[str, Classifier]) -> list[str]:
    """The class list all ``models`` share; they must agree or their probabilities can't mix."""
    names = list(models)
    classes = models[names[0]].classes
    for name in names[1:]:
        if models[name].classes != classes:
            raise ValueError(f"{names[0]} and {name} were trained on different classes; "
                             "re-run `dvc repro` so both use the same split")
    return classes


def predict_probs(models: dict[str, Classifier], db: np.ndarray) -> dict[str, np.ndarray]:
    """(N, n_mels, T) dB → class probabilities (N, C) per model, plus their average as
    ``ensemble`` when there are two or more models."""
    probs = {name: m.predict(db)["probs"] for name, m in models.items()}
    if len(probs) > 1:
        probs["ensemble"] = np.mean(list(probs.values()), axis=0)
    return probs


def evaluate_models(models: dict[str, Classifier], db: np.ndarray, labels: list[str],
                    n_bins: int) -> tuple[dict, dict[str, np.ndarray]]:
    """Figures for each model (and the ensemble) on labelled clips.

    Returns the report (``{model: figures}``) and each model's predicted class indices. No
    model is chosen here: these clips may be held out, and a choice made on them would leak.
    """
    classes = check_same_classes(models)
    code = {c: i for i, c in enumerate(classes)}
    unknown = sorted(set(labels) - set(code))
    if unknown:
        raise ValueError(f"labels {unknown} were never seen in training")
    y = np.array([code[label] for label in labels])
    probs = predict_probs(models, db)
    report = {name: classification_report(p, y, classes, n_bins) for name, p in probs.items()}
    preds = {name: p.argmax(axis=1) for name, p in probs.items()}
    return report, preds


def confusions(preds: dict[str, np.ndarray], labels: list[str], classes: list[str]
               ) -> dict[str, np.ndarray]:
    code = {c: i for i, c in enumerate(classes)}
    y = np.array([code[label] for label in labels])
    return {name: confusion(y, p, len(classes)) for name, p in preds.items()}


def score_answers(predicted: np.ndarray, truth: np.ndarray) -> dict:
    """Accuracy and macro-F1 of predicted against true label names. An answer the models never
    saw as a class can't be predicted and counts as an error, not as a skipped clip."""
    return {"accuracy": float((predicted == truth).mean()),
            "macro_f1": float(f1_score(truth, predicted, average="macro", zero_division=0)),
            "n_scored": int(len(truth))}


def submission_tables(probs: np.ndarray, filenames: list[str], classes: list[str]
                      ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The Kaggle ``filename,label`` table and the per-class probability table."""
    labels = [classes[i] for i in probs.argmax(axis=1)]
    submission = pd.DataFrame({"filename": filenames, "label": labels})
    table = pd.DataFrame(probs, columns=classes)
    table.insert(0, "filename", filenames)
    return submission, table
