"""Stage ``submit``: predict the layout's test clips → ``filename,label`` CSV (+ probabilities)."""
import argparse
from pathlib import Path, PurePosixPath

import numpy as np

from sonic.config import load_params
from sonic.evaluation.evaluate import (check_same_classes, predict_probs, score_answers,
                                       submission_tables)
from sonic.features.store import load_features, write_table
from sonic.training.checkpoint import load_classifier
from sonic.training.report import write_details


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--features", type=Path, required=True)
    parser.add_argument("--models", type=Path, nargs="+", required=True, help="checkpoints")
    parser.add_argument("--out", type=Path, required=True, help="submission CSV")
    parser.add_argument("--probs", type=Path, required=True, help="per-class probabilities CSV")
    parser.add_argument("--report", type=Path, required=True, help="run summary JSON")
    args = parser.parse_args()
    choice = load_params(args.params).submit.model

    models = {p.stem: load_classifier(p) for p in args.models}
    classes = check_same_classes(models)
    feats = load_features(args.features)
    test = feats.index[feats.index["role"] == "test"]
    # the Kaggle filename is the path below test/
    names = [str(PurePosixPath(*PurePosixPath(c).parts[1:])) for c in test["clip_id"]]
    db = np.asarray(feats.mels[test.index.to_numpy()])
    empty = {choice: np.zeros((0, len(classes)))}
    probs = predict_probs(models, db) if len(test) else empty
    submission, table = submission_tables(probs[choice], names, classes)
    write_table(args.out, submission)
    write_table(args.probs, table)

    scored = {"model": choice, "n_test": len(test)}
    answered = test["label"].notna().to_numpy()
    if answered.any():  # score every model on the answers; the chosen one at the top level
        truth = test["label"].to_numpy()[answered]
        per_model = {name: score_answers(np.asarray(classes)[p[answered].argmax(1)], truth)
                     for name, p in probs.items()}
        scored |= per_model[choice] | {"per_model": per_model}
    write_details(args.report, scored)
    score = f", accuracy {scored['accuracy']:.3f}" if "accuracy" in scored else " (no answers)"
    print(f"submit: {len(submission)} test clips with {choice} → {args.out}{score}")


if __name__ == "__main__":
    main()
