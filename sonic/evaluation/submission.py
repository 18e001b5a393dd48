"""A submission row for every test file, the unusable ones included.

Kaggle rejects a submission with missing rows, so a test file ``extract_mels`` could not use
(``data/bad_files.csv``, role ``test``) still gets one: the *fallback*. With no audio to go on,
the best guess is the class prior, the share of each class among the labelled clips: its most
frequent class is the label (the most likely one to be right, so the best for accuracy; ties go
to the first class in the models' order) and the prior itself is the probability row (the
calibrated answer, so the best for log loss). The row is flagged in the ``fallback`` column of
the probability table with the reason the file could not be used.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np
import pandas as pd

FALLBACK = "fallback"  # the probability table's column naming why a row is a fallback


def kaggle_filename(clip_id: str) -> str:
    """The Kaggle filename of a test clip: its path below ``test/``."""
    return str(PurePosixPath(*PurePosixPath(clip_id).parts[1:]))


def class_prior(labels: pd.Series, classes: list[str]) -> np.ndarray:
    """(C,) share of each of ``classes`` among ``labels``; uniform when none is one of them."""
    counts = labels.value_counts().reindex(classes, fill_value=0).to_numpy(dtype=float)
    total = counts.sum()
    return counts / total if total else np.full(len(classes), 1.0 / len(classes))


@dataclass(frozen=True)
class Fallbacks:
    """The unusable test files: Kaggle filename, why, and the answer where one is known."""

    names: list[str]
    reasons: list[str]
    labels: np.ndarray  # (F,) object, None where unanswered

    @classmethod
    def from_bad_files(cls, table: pd.DataFrame) -> Fallbacks:
        """The rows of a ``bad_files.csv`` table whose role is ``test``."""
        test = table[table["role"] == "test"]
        labels = test["label"].astype(object).where(test["label"].notna(), None)
        return cls([kaggle_filename(c) for c in test["clip_id"]], list(test["reason"]),
                   labels.to_numpy())

    def __len__(self) -> int:
        return len(self.names)

    def plus(self, names: list[str], reasons: list[str], labels: np.ndarray) -> Fallbacks:
        """These fallbacks and more (e.g. test clips whose stored features are unusable)."""
        labels = [None if pd.isna(label) else label for label in labels]
        return Fallbacks(self.names + list(names), self.reasons + list(reasons),
                         np.concatenate([self.labels, np.asarray(labels, dtype=object)]))


NOT_FINITE = "its stored log-mel is not finite; re-run extract_mels (which now rejects such files)"


def finite_rows(db: np.ndarray) -> np.ndarray:
    """(N,) bool: the (N, n_mels, T) feature rows a model can score (every value finite), so that
    one broken row is that clip's fallback rather than NaN for the whole batch."""
    return np.isfinite(np.asarray(db).reshape(len(db), -1)).all(axis=1)


def with_fallbacks(probs: dict[str, np.ndarray], names: list[str], truth: np.ndarray,
                   fallbacks: Fallbacks, prior: np.ndarray
                   ) -> tuple[dict[str, np.ndarray], list[str], np.ndarray, list[str]]:
    """Append one ``prior`` row per fallback to every model's (N, C) probabilities and sort all
    rows by filename.

    Returns the (N + F, C) probabilities per model, the filenames, the answers (None where
    unknown) and the fallback reasons ("" for predicted rows), all in that order.
    """
    all_names = list(names) + fallbacks.names
    order = np.argsort(all_names, kind="stable")
    rows = np.tile(prior, (len(fallbacks), 1))
    joined = {m: np.concatenate([p, rows])[order] for m, p in probs.items()}
    answers = np.concatenate([np.asarray(truth, dtype=object), fallbacks.labels])[order]
    reasons = [""] * len(names) + fallbacks.reasons
    return (joined, [all_names[i] for i in order], answers, [reasons[i] for i in order])
