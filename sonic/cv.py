"""Cross-validation summary over DVC experiments: ESC-50's 5-fold protocol.

ESC-50 is scored by 5-fold cross-validation over its ``fold`` column: train on four folds,
validate on the fifth, five times. Each fold is one DVC experiment that differs only in
``split.val_fold``; this module gathers their ``metrics/evaluate/metrics.json`` and reports each fold
and the mean ± sample standard deviation (ddof=1) over folds, per model::

    for k in 1 2 3 4 5; do
      dvc exp run --queue -n fold$k -S data.layout=esc50 -S data.root=/path/to/ESC-50 \\
          -S split.val_fold=$k
    done
    dvc queue start -j 1     # or more workers where memory allows
    dvc queue status         # wait until all five are done (Success)
    python -m sonic.cv --out results/esc50_cv

Adding the target ``evaluate`` to ``dvc exp run`` (after the ``-S`` options) runs only the
stages cross-validation needs: ``submit`` has no test clips to predict on ESC-50, and the cGAN
stages would train one generator per fold.

Or all folds in one ``dvc repro`` (the ``cv_*`` stages of ``dvc.yaml``, one per fold in
``params.yaml`` ``cv.folds``; adding or changing a fold re-runs that fold only), then
``python -m sonic.cv --pipeline`` reads ``data/cv/<fold>/evaluate/metrics.json``::

    dvc exp run -S data.layout=esc50 -S data.root=/path/to/ESC-50 -S 'cv.folds=[1,2,3,4,5]'
    python -m sonic.cv --pipeline --out results/esc50_cv

Otherwise it runs ``dvc exp show --json`` (or reads a saved copy with ``--input``), keeps finished
experiments only (not queued, running or failed ones, nor the workspace or baseline commit),
optionally only those named, with a name prefix or derived from one baseline commit, and
warns about missing folds, about two experiments for one fold (the newest is kept) and about
experiments that differ in anything but ``split.val_fold``. ``--out PREFIX`` writes
``PREFIX.csv``, ``PREFIX.md`` and ``PREFIX.json``.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from sonic.runtime import write_json, write_text
from sonic.split import FOLD_LAYOUTS

EVALUATE = "metrics/evaluate/metrics.json"  # its "test" section: the held-out fold
METRICS = ("accuracy", "macro_f1")
MODEL_ORDER = ("cnn", "resnet", "ensemble")
FINISHED = (None, "success")  # executor states of an experiment whose results are in place
COLUMNS = ["name", "rev", "baseline", "baseline_name", "timestamp", "layout", "val_fold",
           "other_params", "model", *METRICS]


def _flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _rows(rev: dict, baseline: dict) -> list[dict]:
    """The (model, metrics) rows of one experiment revision; none if it has no evaluate metrics."""
    data = rev.get("data") or {}
    scores = ((data.get("metrics") or {}).get(EVALUATE, {}).get("data") or {}).get("test")
    params = (data.get("params") or {}).get("params.yaml", {}).get("data")
    if rev.get("error") or not scores or not params:
        return []
    flat = _flatten(params)
    if flat.get("split.val_fold") is None:  # params older than the fold parameter
        return []
    other = {k: v for k, v in flat.items() if k != "split.val_fold"}
    common = {"name": rev.get("name") or rev["rev"][:7], "rev": rev["rev"],
              "baseline": baseline["rev"], "baseline_name": baseline.get("name"),
              "timestamp": data.get("timestamp"), "layout": flat.get("data.layout"),
              "val_fold": flat.get("split.val_fold"),
              "other_params": json.dumps(other, sort_keys=True, default=str)}
    return [{**common, "model": model, **{m: figures.get(m) for m in METRICS}}
            for model, figures in scores.items() if isinstance(figures, dict)]


def collect(exp_show_json: list[dict]) -> pd.DataFrame:
    """One row per (finished experiment, model) of a ``dvc exp show --json`` document.

    The document (DVC 3.x) is a list of commit entries ``{rev, name, data, error,
    experiments}``; ``experiments`` is a list of ``{name, executor: {state, ...} | null,
    revs: [{rev, name, data: {timestamp, params, metrics}, error}]}``. Experiments whose
    executor is queued, running or failed, revisions with an error, and revisions without
    ``metrics/evaluate/metrics.json`` are left out, as are the commit entries themselves.

    Returns
    -------
    pd.DataFrame
        Columns :data:`COLUMNS`; ``timestamp`` as pandas datetimes, ``val_fold`` int.
    """
    rows = []
    for commit in exp_show_json:
        for exp in commit.get("experiments") or []:
            if (exp.get("executor") or {}).get("state") not in FINISHED:
                continue
            for rev in exp.get("revs") or []:
                rows += _rows(rev, commit)
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["timestamp"] = pd.to_datetime(table["timestamp"])
    table["val_fold"] = table["val_fold"].astype(int)
    return table


def select(table: pd.DataFrame, names: Sequence[str] = (), name_prefix: str | None = None,
           baseline: str | None = None) -> pd.DataFrame:
    """Rows of the experiments named, starting with ``name_prefix``, or derived from
    ``baseline`` (a commit SHA prefix or a branch/tag name)."""
    keep = pd.Series(True, index=table.index)
    if names:
        by_sha = table["rev"].map(lambda rev: any(rev.startswith(n) for n in names))
        keep &= table["name"].isin(names) | by_sha.astype(bool)
    if name_prefix:
        keep &= table["name"].str.startswith(name_prefix)
    if baseline:
        keep &= table["baseline"].str.startswith(baseline) | (table["baseline_name"] == baseline)
    return table[keep]


def newest_per_fold(table: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Keep one experiment per ``val_fold``, the newest; warn about each one dropped."""
    runs = table.drop_duplicates("rev").sort_values(["timestamp", "name"])
    warnings = []
    for fold, group in runs.groupby("val_fold"):
        if len(group) > 1:
            kept = group.iloc[-1]
            warnings.append(f"fold {fold}: {len(group)} experiments ({', '.join(group['name'])})"
                            f"; keeping the newest, {kept['name']} ({kept['timestamp']})")
    kept_revs = runs.groupby("val_fold").tail(1)["rev"]
    return table[table["rev"].isin(kept_revs)], warnings


def _param_warnings(runs: pd.DataFrame) -> list[str]:
    """Folds must differ in split.val_fold only; name any other parameter that varies."""
    settings = [json.loads(s) for s in runs.drop_duplicates("rev")["other_params"]]
    varying = sorted({k for s in settings for k in set(s) | set(settings[0])
                      if s.get(k) != settings[0].get(k)})
    if not varying:
        return []
    return [f"experiments differ in more than split.val_fold: {', '.join(varying)}"]


def aggregate(table: pd.DataFrame, folds: Sequence[int] | None = None
              ) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Per-fold figures and their mean and sample std (ddof=1) per model and metric.

    Returns
    -------
    summary : pd.DataFrame
        One row per (model, metric): ``fold<k>`` columns, ``mean``, ``std`` (ddof=1; NaN with a
        single fold) and ``n_folds``.
    kept : pd.DataFrame
        The rows of ``table`` that were used (one experiment per fold).
    warnings : list of str
        Duplicate folds (newest kept), missing folds, parameters that differ between folds.
    """
    if table.empty:
        raise ValueError("no finished experiment with metrics/evaluate/metrics.json was found")
    table, warnings = newest_per_fold(table)
    present = sorted(table["val_fold"].unique())
    missing = sorted(set(folds or []) - set(present))
    if missing:
        warnings.append(f"missing fold(s) {', '.join(map(str, missing))}: "
                        f"figures are over folds {', '.join(map(str, present))} only")
    warnings += _param_warnings(table)
    layouts = sorted(set(table["layout"].dropna()) - set(FOLD_LAYOUTS))
    if layouts:
        warnings.append(f"data.layout {', '.join(layouts)}: split.val_fold only picks the "
                        "validation fold for esc50 and urbansound8k; these runs are not "
                        "cross-validation folds")
    models = sorted(table["model"].unique(),
                    key=lambda m: (MODEL_ORDER.index(m) if m in MODEL_ORDER else 99, m))
    rows = []
    for model in models:
        for metric in METRICS:
            per_fold = table[table["model"] == model].set_index("val_fold")[metric].astype(float)
            row = {"model": model, "metric": metric}
            row.update({f"fold{k}": per_fold.get(k, np.nan) for k in present})
            row.update(mean=per_fold.mean(), std=per_fold.std(ddof=1),
                       n_folds=int(per_fold.notna().sum()))
            rows.append(row)
    return pd.DataFrame(rows), table, warnings


def to_markdown(summary: pd.DataFrame) -> str:
    """The summary as a GitHub Markdown table, figures to 4 decimals, mean ± std last."""
    folds = [c for c in summary.columns if c.startswith("fold")]
    head = ["model", "metric", *[f"fold {c[4:]}" for c in folds], "mean ± std (ddof=1)"]
    fmt = lambda v: "–" if pd.isna(v) else f"{v:.4f}"  # noqa: E731
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in summary.itertuples(index=False):
        r = row._asdict()
        cells = [r["model"], r["metric"], *[fmt(r[c]) for c in folds],
                 f"{fmt(r['mean'])} ± {fmt(r['std'])}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_json(summary: pd.DataFrame, table: pd.DataFrame, warnings: list[str]) -> dict:
    runs = table.drop_duplicates("rev").sort_values("val_fold")
    nan = lambda v: None if pd.isna(v) else float(v)  # noqa: E731
    models: dict[str, dict] = {}
    for r in summary.to_dict("records"):
        models.setdefault(r["model"], {})[r["metric"]] = {
            "per_fold": {k[4:]: nan(v) for k, v in r.items() if k.startswith("fold")},
            "mean": nan(r["mean"]), "std": nan(r["std"]), "n_folds": r["n_folds"]}
    return {"std": "sample standard deviation over folds (ddof=1)", "models": models,
            "experiments": [{"name": r.name, "rev": r.rev, "val_fold": int(r.val_fold),
                             "timestamp": str(r.timestamp)} for r in runs.itertuples()],
            "warnings": warnings}


def collect_pipeline(root: Path, params: str | Path = "params.yaml") -> pd.DataFrame:
    """The rows :func:`collect` makes, from the ``cv_*`` stages' outputs under ``root``
    (``data/cv``): one per (fold, model), the fold's ``test`` figures."""
    from sonic.config import load_params

    layout = load_params(params).data.layout
    rows = []
    for path in sorted(Path(root).glob("*/evaluate/metrics.json")):
        fold = int(path.parts[-3])
        scores = json.loads(path.read_text()).get("test") or {}
        stamp = pd.Timestamp(path.stat().st_mtime, unit="s").isoformat()
        common = {"name": f"cv_evaluate@{fold}", "rev": f"{root}/{fold}", "baseline": "workspace",
                  "baseline_name": None, "timestamp": stamp, "layout": layout, "val_fold": fold,
                  "other_params": "{}"}
        rows += [{**common, "model": model, **{m: figures.get(m) for m in METRICS}}
                 for model, figures in scores.items()]
    return pd.DataFrame(rows)


def exp_show(revs: Sequence[str] = (), all_commits: bool = False) -> list[dict]:
    """``dvc exp show --json`` of the repository in the current directory."""
    cmd = [sys.executable, "-m", "dvc", "exp", "show", "--json"]
    cmd += ["-A"] if all_commits else [a for rev in revs for a in ("--rev", rev)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"sonic.cv: {' '.join(cmd[2:])} failed:\n{proc.stderr.strip()}")
    return json.loads(proc.stdout)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Per-fold and mean ± std (ddof=1) figures of "
                                     "cross-validation experiments (see the module docstring).")
    parser.add_argument("names", nargs="*", help="only these experiments (names or SHAs)")
    parser.add_argument("--name-prefix", help="only experiments whose name starts with this")
    parser.add_argument("--baseline", help="only experiments derived from this commit/branch")
    parser.add_argument("--rev", action="append", default=[],
                        help="dvc exp show --rev (repeatable; default HEAD)")
    parser.add_argument("-A", "--all-commits", action="store_true", help="dvc exp show -A")
    parser.add_argument("--input", help="read a saved `dvc exp show --json` file instead")
    parser.add_argument("--pipeline", nargs="?", const="data/cv", metavar="DIR",
                        help="read the cv_* stages' outputs in DIR (default data/cv) instead")
    parser.add_argument("--folds", type=int, nargs="+", default=[1, 2, 3, 4, 5],
                        help="folds expected (warns about missing ones; default 1-5)")
    parser.add_argument("--out", help="write PREFIX.csv, PREFIX.md and PREFIX.json")
    args = parser.parse_args(argv)

    if args.pipeline:
        table = collect_pipeline(Path(args.pipeline))
    else:
        if args.input:
            with open(args.input) as f:
                shown = json.load(f)
        else:
            shown = exp_show(args.rev, args.all_commits)
        table = select(collect(shown), args.names, args.name_prefix, args.baseline)
    try:
        summary, kept, warnings = aggregate(table, args.folds)
    except ValueError as err:
        sys.exit(f"sonic.cv: {err}")
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    markdown = to_markdown(summary)
    print(markdown, end="")
    if args.out:
        write_text(f"{args.out}.csv", summary.to_csv(index=False))
        write_text(f"{args.out}.md", markdown)
        write_json(f"{args.out}.json", to_json(summary, kept, warnings))
        print(f"written {args.out}.csv, .md and .json")


if __name__ == "__main__":
    main()
