"""Stage ``prepare``: generate the demo data set (competition layout) from ``demo`` params."""
import argparse
from pathlib import Path

from sonic.audio.demo import generate_demo
from sonic.config import load_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", type=Path, required=True, help="folder to write the data set to")
    args = parser.parse_args()
    summary = generate_demo(args.out, load_params(args.params).demo)
    print(f"demo data set written to {args.out}: {summary}")


if __name__ == "__main__":
    main()
