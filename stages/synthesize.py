"""Stage ``synthesize``: new WAVs of every class from the GAN, and the figures that say how good
they are (inception score, judge accuracy, CAS, Fréchet distance, copies), each beside its
real-data value with a 95 % interval."""
import argparse
from pathlib import Path

from sonic.config.features import FeatureConfig
from sonic.config.invert import InvertConfig
from sonic.config.parse import load_sections
from sonic.config.synthesize import SynthesizeConfig
from sonic.generation.synthesize_run import synthesize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--generator", type=Path, required=True)
    parser.add_argument("--judge", type=Path, required=True, help="classifier checkpoint")
    parser.add_argument("--inverter", type=Path, required=True, help="stage train_inverter's")
    parser.add_argument("--features", type=Path, required=True)
    parser.add_argument("--split", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="folder for <class>/NNN.wav")
    parser.add_argument("--live", type=Path, required=True, help="DVCLive folder")
    args = parser.parse_args()
    params = load_sections(args.params, features=FeatureConfig, invert=InvertConfig,
                           synthesize=SynthesizeConfig)
    synthesize(params.synthesize, params.features, params.invert, generator=args.generator,
               judge=args.judge, inverter=args.inverter, features_dir=args.features,
               split=args.split, out=args.out, live_dir=args.live)


if __name__ == "__main__":
    main()
