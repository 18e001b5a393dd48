"""Documentation pages generated from the repository's own files, so their figures cannot go stale.

``python -m sonic.docs`` writes

``docs/results.md``
    every results table, from the committed metrics and benchmark JSON under ``metrics/``
    (:mod:`sonic.docs.results`), each with the machine, date and command it came from;
``docs/params.md``
    the params reference, from the one source of defaults: the dataclasses of
    :mod:`sonic.config` and the comments of ``params.yaml`` (:mod:`sonic.docs.params`);
``README.md``
    only the headline results table, between its two ``<!-- … -->`` markers.

``python -m sonic.docs --check`` writes nothing and exits 1 naming each page that differs from
what it would write (``tests/test_docs.py`` does the same). The stage outputs do not record the
machine they ran on; ``docs/provenance.yaml`` does, keyed by each file's content hash, and
``python -m sonic.docs --stamp`` records this machine's CPU model for every metrics file whose
content it has not seen yet (run it on the machine that produced them, then regenerate).
"""
from __future__ import annotations

# Comparing experiments in a 120-column terminal: headline metrics always, parameters only
# where experiments differ, no dependency hashes, no per-stage detail metrics. `--keep` wins
# over both `--only-changed` and `--drop`. Tested in tests/test_docs.py at COLUMNS=120.
EXP_SHOW = ["dvc", "exp", "show", "--only-changed",
            "--drop", r"Created|.*/|[a-z_]+$|test\.|val\.|cgan\.[dg]_|spectral",
            "--keep", r"test\.ensemble\.accuracy|judge_accuracy|cas$"]


def exp_show_command() -> str:
    """:data:`EXP_SHOW` as a shell line (single-quoted patterns), as the README shows it."""
    return " ".join(f"'{a}'" if any(c in a for c in "|\\$*") else a for a in EXP_SHOW)
