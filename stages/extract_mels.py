"""Stage ``extract_mels``: decode every clip that stage ``scan`` listed into cached arrays."""
import argparse
import sys
from pathlib import Path

from sonic.audio.io import AudioLimits
from sonic.audio.layouts import LayoutError, discover
from sonic.audio.manifest import read_manifest
from sonic.config.data import DataConfig
from sonic.config.features import FeatureConfig
from sonic.config.parse import load_sections
from sonic.features.extract import BadInputError, bad_files_table, extract
from sonic.features.store import write_table
from sonic.runtime import pick_device


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--manifest", type=Path, required=True,
                        help="stage scan's listing of data.root: the only files read")
    parser.add_argument("--out", type=Path, required=True, help="feature folder to write")
    parser.add_argument("--report", type=Path, required=True, help="CSV of rejected files")
    parser.add_argument("--max-seconds", type=float, default=3600.0,
                        help="longer files are rejected from their header, before decoding "
                             "(default 3600 s)")
    args = parser.parse_args()
    params = load_sections(args.params, data=DataConfig, features=FeatureConfig)
    try:
        clips, bad = discover(params.data, read_manifest(args.manifest))
        if bad and params.data.on_bad_file == "fail":
            raise BadInputError(f"{bad[0].path}: {bad[0].reason} "
                                "(set data.on_bad_file: skip to report and continue)")
        limits = AudioLimits(max_seconds=args.max_seconds, hint="extract_mels --max-seconds")
        result = extract(clips, params.features, params.data.on_bad_file,
                         pick_device(params.features.device), out=args.out, limits=limits)
    except (LayoutError, BadInputError) as err:
        sys.exit(f"extract_mels: {err}")
    result.bad[:0] = bad
    for b in bad:
        print(f"skipping {b.path}: {b.reason}")
    write_table(args.out / "index.csv", result.index)
    write_table(args.report, bad_files_table(result.bad))
    roles = result.index["role"].value_counts().to_dict()
    print(f"extract_mels: {len(result.index)} clips {roles}, mels {result.mels.shape}, "
          f"{len(result.bad)} rejected (see {args.report})")


if __name__ == "__main__":
    main()
