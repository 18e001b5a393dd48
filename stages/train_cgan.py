"""Stage ``train_cgan``: the conditional GAN on the training clips' log-mels.

Batches stream from the memory-mapped features. Killed, it resumes from ``--resume`` on the next
run with the same params, data and code.
"""
import argparse
from pathlib import Path

from sonic.codedeps import code_deps
from sonic.config.cgan import CGANConfig
from sonic.config.features import FeatureConfig
from sonic.config.parse import load_sections
from sonic.generation.cgan_run import train_and_save_cgan

# the resume key hashes every file the stage runs: its code deps in dvc.yaml
CODE = code_deps("stages.train_cgan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--features", type=Path, required=True)
    parser.add_argument("--split", type=Path, required=True)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--samples", type=Path, required=True, help="folder for progress WAVs")
    parser.add_argument("--live", type=Path, required=True, help="DVCLive folder")
    parser.add_argument("--resume", type=Path, help="resume state (kept until the run ends)")
    args = parser.parse_args()
    params = load_sections(args.params, features=FeatureConfig, cgan=CGANConfig)
    train_and_save_cgan(params.cgan, params.features, features_dir=args.features,
                        split=args.split, checkpoint=args.checkpoint, samples=args.samples,
                        live_dir=args.live, resume=args.resume, code=CODE)


if __name__ == "__main__":
    main()
