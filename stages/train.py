"""Stages ``train_cnn`` and ``train_resnet``: train one registered classifier on the cached mels.

With ``train.nproc > 1`` the stage re-runs itself under torchrun; the same script runs under a
hand-made torchrun command across machines. Killed, it resumes from ``--resume`` on the next run
with the same params, data and code.
"""
import sys

from sonic.codedeps import code_deps
from sonic.config.features import FeatureConfig
from sonic.config.parse import load_sections
from sonic.config.split import SplitConfig
from sonic.config.train import TrainConfig
from sonic.models import CONFIGS
from sonic.training import distributed
from sonic.training.classifier_run import stage_arguments, train_classifier

# the resume key hashes every file the stage runs: its code deps in dvc.yaml
CODE = code_deps("stages.train")


def main() -> int:
    args = stage_arguments(__doc__).parse_args()
    params = load_sections(args.params, features=FeatureConfig, train=TrainConfig,
                           split=SplitConfig, **{args.model: CONFIGS[args.model]})
    status = distributed.relaunch(params.train.nproc, "stages.train")
    if status is not None:
        return status
    train_classifier(args.model, getattr(params, args.model), params.train, params.features,
                     params.split.select, features_dir=args.features, split=args.split,
                     augmented=args.augmented, checkpoint=args.checkpoint, live_dir=args.live,
                     resume=args.resume, code=CODE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
