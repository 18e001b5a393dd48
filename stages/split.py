"""Stage ``split``: each clip's role — train, val (selects the epoch), test (scored once), excluded."""
import argparse
import dataclasses
from pathlib import Path

from sonic.config.data import DataConfig
from sonic.config.parse import load_sections
from sonic.config.split import SplitConfig
from sonic.features.store import read_index, write_table
from sonic.split import split_roles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--index", type=Path, required=True, help="index.csv of extract_mels")
    parser.add_argument("--out", type=Path, required=True, help="split CSV to write")
    parser.add_argument("--val-fold", type=int, help="held-out fold instead of split.val_fold "
                                                      "(the cross-validation stages)")
    args = parser.parse_args()
    params = load_sections(args.params, data=DataConfig, split=SplitConfig)
    cfg = params.split
    if args.val_fold is not None:
        cfg = dataclasses.replace(cfg, val_fold=args.val_fold)
    table = split_roles(read_index(args.index), cfg, params.data.layout)
    write_table(args.out, table)
    counts = table.groupby("role").size().to_dict()
    print(f"split: {counts} over {table['label'].nunique()} classes")


if __name__ == "__main__":
    main()
