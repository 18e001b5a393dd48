"""Stage ``prepare``: generate the demo data set (competition layout) from ``demo`` params."""
import argparse
from pathlib import Path

from sonic.audio.demo import generate_demo
from sonic.config.demo import DemoConfig
from sonic.config.parse import load_sections


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", type=Path, required=True, help="folder to write the data set to")
    args = parser.parse_args()
    summary = generate_demo(args.out, load_sections(args.params, demo=DemoConfig).demo)
    print(f"demo data set written to {args.out}: {summary}")


if __name__ == "__main__":
    main()
