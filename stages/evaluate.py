"""Stage ``evaluate``: both classifiers and their ensemble, scored once on the held-out clips.

``test`` — labelled clips that took no part in any choice (the held-out fold of a fold layout,
answered ``test/`` clips of a folder layout) — is the unbiased figure. ``val`` is scored too,
labelled as what it is: the clips that selected each model's epoch.
"""
import argparse
from pathlib import Path

from sonic.config.cv import CVConfig
from sonic.config.evaluate import EvaluateConfig
from sonic.config.parse import load_sections
from sonic.evaluation.evaluate_run import checkpoint_paths, evaluate_checkpoints
from sonic.models.checkpoint import load_classifiers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--features", type=Path, required=True)
    parser.add_argument("--split", type=Path, required=True)
    parser.add_argument("--models", type=Path, nargs="+", required=True,
                        help="checkpoints, or folders of the cv.models and cv.students ones")
    parser.add_argument("--live", type=Path, required=True, help="DVCLive folder")
    args = parser.parse_args()
    params = load_sections(args.params, evaluate=EvaluateConfig, cv=CVConfig)
    models = load_classifiers(checkpoint_paths(args.models, params.cv.checkpoints))
    lines = evaluate_checkpoints(models, args.features, args.split,
                                 params.evaluate.calibration_bins, args.live)
    print("evaluate: " + "; ".join(lines))


if __name__ == "__main__":
    main()
