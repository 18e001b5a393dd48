"""``python -m sonic.docs [--check | --stamp]``: see :mod:`sonic.docs`."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from sonic.docs import params, results
from sonic.docs.provenance import Provenance, cpu_model
from sonic.runtime import write_text

ROOT = Path(__file__).resolve().parents[2]
PAGES = {"docs/results.md": results.render, "docs/params.md": params.render}


def stale(root: Path = ROOT) -> list[str]:
    """The generated pages whose committed text differs from what :data:`PAGES` renders."""
    return [page for page, render in PAGES.items()
            if not (root / page).exists() or (root / page).read_text() != render(root)]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sonic.docs",
                                     description="Write docs/results.md and docs/params.md.")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 naming each page that is out of date")
    parser.add_argument("--stamp", action="store_true",
                        help="first record this machine's CPU model in docs/provenance.yaml for "
                             "every metrics file whose content has no entry")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.check:
        out = stale(args.root)
        for page in out:
            print(f"{page} is out of date: run python -m sonic.docs", file=sys.stderr)
        sys.exit(1 if out else 0)
    if args.stamp:
        machine = cpu_model()
        for path in Provenance(args.root).stamp(results.stamp_paths(args.root), machine):
            print(f"docs/provenance.yaml: {path} produced on {machine}")
    for page, render in PAGES.items():
        text = render(args.root)
        target = args.root / page
        if not target.exists() or target.read_text() != text:
            write_text(target, text)
            print(f"written {page}")


if __name__ == "__main__":
    main()
