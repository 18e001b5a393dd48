"""Stage ``submit``'s work: predict the layout's test clips → ``filename,label`` CSV (+ the
per-class probabilities), and score them where the layout has answers.

Every test file gets a row: one that ``extract_mels`` could not use, or whose mels are not
finite, gets the fallback (the training class prior, see :mod:`sonic.evaluation.submission`),
flagged and named on stderr.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from sonic.evaluation.evaluate import (check_same_classes, predict_probs, score_answers,
                                       submission_tables)
from sonic.evaluation.submission import (FALLBACK, NOT_FINITE, Fallbacks, class_prior,
                                         finite_rows, kaggle_filename, with_fallbacks)
from sonic.features.store import load_features, write_table
from sonic.models.checkpoint import Classifier
from sonic.report import write_details


def scores(probs: dict[str, np.ndarray], truth: np.ndarray, classes: list[str],
           choice: str) -> dict:
    """Every model's figures on the answered rows; the chosen one's also at the top level
    (``{}`` when nothing is answered)."""
    answered = pd.notna(truth)
    if not answered.any():
        return {}
    per_model = {name: score_answers(np.asarray(classes)[p[answered].argmax(1)],
                                     truth[answered].astype(str))
                 for name, p in probs.items()}
    return per_model[choice] | {"per_model": per_model}


def submit(models: dict[str, Classifier], choice: str, *, features_dir: Path, bad_files: Path,
           out: Path, probs_out: Path, report: Path) -> None:
    """Predict every test clip with ``choice`` (a model's name or ``ensemble``); write the
    submission ``out``, the probabilities ``probs_out`` and the run summary ``report``."""
    classes = check_same_classes(models)
    feats = load_features(features_dir)
    test = feats.index[feats.index["role"] == "test"]
    db = np.asarray(feats.mels[test.index.to_numpy()])
    fallbacks = Fallbacks.from_bad_files(pd.read_csv(bad_files, dtype=str))
    ok = finite_rows(db)
    broken = test[~ok]
    fallbacks = fallbacks.plus([kaggle_filename(c) for c in broken["clip_id"]],
                               [NOT_FINITE] * len(broken), broken["label"].to_numpy())
    test, db = test[ok], db[ok]
    empty = {choice: np.zeros((0, len(classes)))}
    prior = class_prior(feats.index.loc[feats.index["role"] != "test", "label"], classes)
    probs, names, truth, reasons = with_fallbacks(
        predict_probs(models, db) if len(test) else empty,
        [kaggle_filename(c) for c in test["clip_id"]], test["label"].to_numpy(), fallbacks, prior)
    submission, table = submission_tables(probs[choice], names, classes)
    table[FALLBACK] = reasons
    write_table(out, submission)
    write_table(probs_out, table)
    for name, reason in zip(fallbacks.names, fallbacks.reasons):
        print(f"submit: test/{name} could not be used ({reason}); its row is the fallback "
              f"{classes[prior.argmax()]} (the training class prior; column {FALLBACK} of "
              f"{probs_out})", file=sys.stderr)
    scored = {"model": choice, "n_test": len(names), "n_fallback": len(fallbacks)}
    scored |= scores(probs, truth, classes, choice)
    write_details(report, scored)
    score = f", accuracy {scored['accuracy']:.3f}" if "accuracy" in scored else " (no answers)"
    print(f"submit: {len(submission)} test clips with {choice} ({len(fallbacks)} fallback) → "
          f"{out}{score}")
