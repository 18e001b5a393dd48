"""Stage ``submit``: predict the layout's test clips → ``filename,label`` CSV (+ probabilities).

Every test file gets a row: one that ``extract_mels`` could not use gets the fallback (the
training class prior, see ``sonic.evaluation.submission``), flagged and named on stderr.
"""
import argparse
from pathlib import Path

from sonic.config.parse import load_sections
from sonic.config.submit import SubmitConfig
from sonic.evaluation.submit_run import submit
from sonic.models.checkpoint import load_classifiers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--features", type=Path, required=True)
    parser.add_argument("--bad-files", type=Path, required=True, help="extract_mels' report")
    parser.add_argument("--models", type=Path, nargs="+", required=True, help="checkpoints")
    parser.add_argument("--out", type=Path, required=True, help="submission CSV")
    parser.add_argument("--probs", type=Path, required=True, help="per-class probabilities CSV")
    parser.add_argument("--report", type=Path, required=True, help="run summary JSON")
    args = parser.parse_args()
    choice = load_sections(args.params, submit=SubmitConfig).submit.model
    submit(load_classifiers(args.models), choice, features_dir=args.features,
           bad_files=args.bad_files, out=args.out, probs_out=args.probs, report=args.report)


if __name__ == "__main__":
    main()
