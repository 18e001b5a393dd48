"""Stage ``train_inverter``: the mel → linear-magnitude network on the real training clips, and
how much closer it brings inverted audio to the real clips than the old inversion does."""
import argparse
from pathlib import Path

from sonic.config.features import FeatureConfig
from sonic.config.invert import InvertConfig
from sonic.config.parse import load_sections
from sonic.generation.inverter_run import train_and_compare_inverter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--features", type=Path, required=True)
    parser.add_argument("--split", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="inverter checkpoint")
    parser.add_argument("--live", type=Path, required=True, help="DVCLive folder")
    args = parser.parse_args()
    params = load_sections(args.params, features=FeatureConfig, invert=InvertConfig)
    train_and_compare_inverter(params.invert, params.features, features_dir=args.features,
                               split=args.split, out=args.out, live_dir=args.live)


if __name__ == "__main__":
    main()
