"""Stage ``scan``: list every entry below ``data.root`` with its size, hash and status (manifest).

Runs on every ``dvc repro`` (``always_changed``); only files changed since the last scan are
read. Broken links and unreadable entries are named here, not in a DVC traceback.
"""
import argparse
import sys
import time
from pathlib import Path

from sonic.audio.manifest import OK, load_cache, save_cache, scan, write_manifest
from sonic.config.data import DataConfig
from sonic.config.parse import load_sections


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", type=Path, required=True, help="manifest CSV to write")
    parser.add_argument("--cache", type=Path, required=True,
                        help="hash cache kept between runs (outside DVC's outputs)")
    args = parser.parse_args()
    data = load_sections(args.params, data=DataConfig).data
    t0 = time.perf_counter()
    try:
        entries, cache = scan(data.root, load_cache(args.cache))
    except FileNotFoundError as err:
        sys.exit(f"scan: {err}; point it at the folder that holds the data set")
    bad = [e for e in entries if e.status != OK]
    if bad and data.on_bad_file == "fail":
        sys.exit(f"scan: {Path(data.root) / bad[0].path}: {bad[0].reason} "
                 "(set data.on_bad_file: skip to report and continue)")
    for e in bad:
        print(f"scan: skipping {Path(data.root) / e.path}: {e.reason}", file=sys.stderr)
    write_manifest(args.out, entries)
    save_cache(args.cache, cache)
    print(f"scan: {len(entries) - len(bad)} files under {data.root}, {len(bad)} unusable, "
          f"{time.perf_counter() - t0:.2f} s → {args.out}")


if __name__ == "__main__":
    main()
