""""None of these": a confidence score and the threshold below which a sound is ``unknown``.

The score is the max softmax probability (of the ensemble: of the mean probabilities) — a
classifier trained on closed classes is least sure on sounds of none of them. The threshold is
calibrated on clips of the known classes the models never trained on (the val split): the
score quantile that keeps ``keep`` of them (95 % by default), so by construction 5 % of known
clips are called ``unknown`` and what share of foreign sounds is rejected is the figure to
measure (docs/events.md).
"""
from __future__ import annotations

import numpy as np

DEFAULT_KEEP = 0.95  # share of known clips kept by a calibrated threshold


def confidence(probs: np.ndarray) -> np.ndarray:
    """(..., C) probabilities → (...) max softmax score in [1/C, 1]."""
    return np.asarray(probs).max(axis=-1)


def calibrate_threshold(scores: np.ndarray, keep: float = DEFAULT_KEEP) -> float:
    """The threshold that keeps (scores at or above it) a share ``keep`` of ``scores`` (N,),
    the confidences of known clips: their ``1 - keep`` quantile (lower interpolation, so at
    least ``keep`` of them are kept)."""
    scores = np.asarray(scores, dtype=np.float64)
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"keep must be in (0, 1], got {keep:g}")
    if scores.size == 0:
        raise ValueError("no scores to calibrate on: give clips of the known classes")
    return float(np.quantile(scores, 1.0 - keep, method="lower"))
