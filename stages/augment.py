"""Stage ``augment``: augmented log-mels of the training clips (never validation or test)."""
import argparse
from pathlib import Path

import pandas as pd

from sonic.augment.pipeline import augment_training_clips
from sonic.config.augment import AugmentConfig
from sonic.config.features import FeatureConfig
from sonic.config.parse import load_sections
from sonic.features.store import load_features, save_features
from sonic.runtime import pick_device


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--features", type=Path, required=True)
    parser.add_argument("--split", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    params = load_sections(args.params, features=FeatureConfig, augment=AugmentConfig)
    feats = load_features(args.features, waves=True)
    split = pd.read_csv(args.split, dtype=str, keep_default_na=False)  # a class may be "NA"
    train = split[split["role"] == "train"]
    rows = feats.rows(train["clip_id"])
    mels, index = augment_training_clips(feats.waves[rows], train, params.augment,
                                         params.features, pick_device(params.features.device))
    save_features(args.out, mels, index)
    print(f"augment: {len(index)} copies of {len(train)} training clips, mels {mels.shape}")


if __name__ == "__main__":
    main()
