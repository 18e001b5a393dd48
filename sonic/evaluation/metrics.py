"""Classification figures: accuracy, macro-F1, per-class P/R/F1, log loss and calibration."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score, log_loss, precision_recall_fscore_support


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, n_bins: int = 15) -> float:
    """ECE: the confidence-weighted gap between confidence and accuracy, over equal-width bins.

    probs (N, C), y (N,) int. 0 is perfectly calibrated.
    """
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)  # conf 1.0 goes to the last bin
    ece = 0.0
    for b in range(n_bins):
        in_bin = bins == b
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - conf[in_bin].mean())
    return float(ece)


def classification_report(probs: np.ndarray, y: np.ndarray, classes: list[str],
                          n_bins: int = 15) -> dict:
    """All figures for predictions ``probs`` (N, C) against integer labels ``y`` (N,)."""
    labels = np.arange(len(classes))
    pred = probs.argmax(axis=1)
    p, r, f, support = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    return {
        "accuracy": float((pred == y).mean()),
        "macro_f1": float(f1_score(y, pred, labels=labels, average="macro", zero_division=0)),
        "log_loss": float(log_loss(y, np.clip(probs, 1e-7, 1.0), labels=labels)),
        "ece": expected_calibration_error(probs, y, n_bins),
        "n": int(len(y)),
        "per_class": {
            c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                "support": int(support[i])}
            for i, c in enumerate(classes)
        },
    }


def confusion(y: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(C, C) counts, rows = actual, columns = predicted."""
    return confusion_matrix(y, pred, labels=np.arange(n_classes))
