"""Stage ``cv_distill``: a student classifier trained on one fold's labels and on the soft
targets of that fold's teachers (:mod:`sonic.training.distill`).

The student is the registered model ``--model`` with its params section; it trains as stage
``cv_train`` would (the ``train`` section, resumable), its loss a ``distill.weight`` share on the
teachers' probabilities. Killed, it resumes from ``--resume`` on the next run with the same
params, data, teachers and code.
"""
import sys
from pathlib import Path

from sonic.codedeps import code_deps
from sonic.config.distill import DistillConfig
from sonic.config.features import FeatureConfig
from sonic.config.parse import load_sections
from sonic.config.split import SplitConfig
from sonic.config.train import TrainConfig
from sonic.models import CONFIGS
from sonic.training import distributed
from sonic.training.classifier_run import stage_arguments, train_classifier

# the resume key hashes every file the stage runs: its code deps in dvc.yaml
CODE = code_deps("stages.distill")


def main() -> int:
    parser = stage_arguments(__doc__)
    parser.add_argument("--teachers", type=Path, required=True,
                        help="folder of the fold's teacher checkpoints (*.pt)")
    args = parser.parse_args()
    params = load_sections(args.params, features=FeatureConfig, train=TrainConfig,
                           split=SplitConfig, distill=DistillConfig,
                           **{args.model: CONFIGS[args.model]})
    status = distributed.relaunch(params.train.nproc, "stages.distill")
    if status is not None:
        return status
    try:
        train_classifier(args.model, getattr(params, args.model), params.train, params.features,
                         params.split.select, features_dir=args.features, split=args.split,
                         augmented=args.augmented, checkpoint=args.checkpoint,
                         live_dir=args.live, resume=args.resume, code=CODE,
                         teachers=args.teachers, distill=params.distill)
    except ValueError as err:  # a teacher that does not fit: named, with what to do
        print(f"cv_distill: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
