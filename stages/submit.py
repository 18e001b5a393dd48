"""Stage ``submit``: predict the layout's test clips → ``filename,label`` CSV (+ probabilities).

Every test file gets a row: one that ``extract_mels`` could not use gets the fallback (the
training class prior, see ``sonic.evaluation.submission``), flagged and named on stderr.
"""
import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from sonic.config.parse import load_sections
from sonic.config.submit import SubmitConfig
from sonic.evaluation.evaluate import (check_same_classes, predict_probs, score_answers,
                                       submission_tables)
from sonic.evaluation.submission import (FALLBACK, NOT_FINITE, Fallbacks, class_prior,
                                         finite_rows, kaggle_filename, with_fallbacks)
from sonic.features.store import load_features, write_table
from sonic.training.checkpoint import load_classifier
from sonic.training.report import write_details


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--features", type=Path, required=True)
    parser.add_argument("--bad-files", type=Path, required=True, help="extract_mels' report")
    parser.add_argument("--models", type=Path, nargs="+", required=True, help="checkpoints")
    parser.add_argument("--out", type=Path, required=True, help="submission CSV")
    parser.add_argument("--probs", type=Path, required=True, help="per-class probabilities CSV")
    parser.add_argument("--report", type=Path, required=True, help="run summary JSON")
    args = parser.parse_args()
    choice = load_sections(args.params, submit=SubmitConfig).submit.model

    models = {p.stem: load_classifier(p) for p in args.models}
    classes = check_same_classes(models)
    feats = load_features(args.features)
    test = feats.index[feats.index["role"] == "test"]
    db = np.asarray(feats.mels[test.index.to_numpy()])
    fallbacks = Fallbacks.from_bad_files(pd.read_csv(args.bad_files, dtype=str))
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
    write_table(args.out, submission)
    write_table(args.probs, table)
    for name, reason in zip(fallbacks.names, fallbacks.reasons):
        print(f"submit: test/{name} could not be used ({reason}); its row is the fallback "
              f"{classes[prior.argmax()]} (the training class prior; column {FALLBACK} of "
              f"{args.probs})", file=sys.stderr)

    scored = {"model": choice, "n_test": len(names), "n_fallback": len(fallbacks)}
    answered = pd.notna(truth)
    if answered.any():  # score every model on the answers; the chosen one at the top level
        per_model = {name: score_answers(np.asarray(classes)[p[answered].argmax(1)],
                                         truth[answered].astype(str))
                     for name, p in probs.items()}
        scored |= per_model[choice] | {"per_model": per_model}
    write_details(args.report, scored)
    score = f", accuracy {scored['accuracy']:.3f}" if "accuracy" in scored else " (no answers)"
    print(f"submit: {len(submission)} test clips with {choice} ({len(fallbacks)} fallback) → "
          f"{args.out}{score}")


if __name__ == "__main__":
    main()
