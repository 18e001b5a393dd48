"""Cross-validation results as committed files, and the ESC-50 page generated from them."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

import pandas as pd

from sonic.cv_results.collect import archive, collect_all
from sonic.cv_results.ensemble import ensemble
from sonic.cv_results.fetch import fetch_cv, gather_teachers
from sonic.cv_results.page import (CURVES_PLOT, ENSEMBLE_CONFUSION, ensemble_table,
                                   page_from_files, results_tables)
from sonic.cv_results.plots import (accuracy_plot, confusion_matrix, confusion_png, curves_plot,
                                    save_confusion)
from sonic.cv_results.study import study_row, study_table, workspace_params
from sonic.docs.results import headline_ensemble
from sonic.runtime import write_json, write_text


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sonic.cv_results",
                                     description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    c = sub.add_parser("collect", help="results.json, per_class.csv, confusion PNGs")
    c.add_argument("--cv", type=Path, default=Path("data/cv"),
                   help="the cv_* stages' outputs in this workspace (when no --exp)")
    c.add_argument("--exp", action="append", default=[], metavar="REV[:MODEL]",
                   help="an experiment to collect instead, read through DVC (all its models, "
                        "or the one named); once per experiment, e.g. a ResNet run and a CNN "
                        "run (NAME:cnn)")
    c.add_argument("--repo", type=Path, default=Path("."))
    c.add_argument("--folds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    c.add_argument("--dev-fold", type=int, default=None)
    c.add_argument("--command", action="append", default=[],
                   help="the command that trained the folds (once per experiment)")
    c.add_argument("--timing", default="", help="how the folds shared the machine")
    c.add_argument("--out", type=Path, required=True)
    s = sub.add_parser("study", help="add one development-fold experiment to study.json")
    s.add_argument("--cv", type=Path, default=Path("data/cv"))
    s.add_argument("--fold", type=int, default=1)
    s.add_argument("--name", required=True)
    s.add_argument("--change", required=True, help="what this experiment changed")
    s.add_argument("--against", default=None, metavar="NAME",
                   help="the study's experiment this one changes (its baseline)")
    s.add_argument("--repeat-of", default=None, metavar="NAME",
                   help="the study's experiment this one repeats with another training seed")
    s.add_argument("--params", type=Path, default=None,
                   help="the experiment's params.yaml (default: the workspace's, two levels "
                        "above --cv)")
    s.add_argument("--out", type=Path, required=True)
    e = sub.add_parser("ensemble", help="score the average of finished cross-validation "
                                        "experiments into ensembles.json")
    e.add_argument("--name", required=True)
    e.add_argument("--exp", action="append", required=True, metavar="REV[:MODEL]",
                   help="an experiment name (or any git revision) with the folds' checkpoints, "
                        "optionally which of its cv.models (default --model); give it twice "
                        "or more")
    e.add_argument("--model", default="resnet",
                   help="which of cv.models, for members that do not name one (default resnet)")
    e.add_argument("--folds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    e.add_argument("--dev-fold", type=int, default=None)
    e.add_argument("--features", type=Path, default=Path("data/features"))
    e.add_argument("--repo", type=Path, default=Path("."))
    e.add_argument("--note", default="", help="what the members are (shown under the table)")
    e.add_argument("--out", type=Path, required=True)
    t = sub.add_parser("teachers", help="copy finished cross-validations' fold checkpoints to "
                                        "data/teachers/<fold>/, a student's teachers")
    t.add_argument("--exp", action="append", required=True, metavar="REV[:MODEL]",
                   help="an experiment name (or any git revision) with the folds' checkpoints, "
                        "optionally which of its models (default --model); once per teacher")
    t.add_argument("--model", default="cnn",
                   help="which of cv.models, for teachers that do not name one (default cnn)")
    t.add_argument("--folds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    t.add_argument("--repo", type=Path, default=Path("."))
    t.add_argument("--out", type=Path, default=Path("data/teachers"))
    g = sub.add_parser("page", help="the Markdown page and the accuracy-against-compute plot")
    g.add_argument("--results", type=Path, default=Path("metrics/esc50_cv"))
    g.add_argument("--doc", type=Path, default=Path("docs/esc50.md"))
    g.add_argument("--plot", type=Path, default=Path("plots/esc50_accuracy_vs_compute.png"))
    g.add_argument("--curves", type=Path, default=CURVES_PLOT,
                   help="where the learning curves' plot goes")
    g.add_argument("--ensemble-confusion", type=Path, default=ENSEMBLE_CONFUSION,
                   help="where the README's ensemble's confusion over all folds goes")
    args = parser.parse_args(argv)

    if args.what == "collect":
        import tempfile

        sources = " ".join(f"--exp {x}" for x in args.exp) or f"--cv {args.cv}"
        with tempfile.TemporaryDirectory() as tmp:
            cvs = ([fetch_cv(args.repo, x, args.folds, Path(tmp)) for x in args.exp]
                   or [(args.cv, None)])
            results, where = collect_all(cvs, args.folds, args.dev_fold,
                                         "\n".join(args.command))
            results["timing"] = args.timing
            results["collect_command"] = (
                f"python -m sonic.cv_results collect {sources}"
                + (f" --dev-fold {args.dev_fold}" if args.dev_fold else "") + f" --out {args.out}")
            archive(args.out, results)
            write_json(args.out / "results.json", results)
            rows = [{"model": m, "class": c, "accuracy": a}
                    for m, e in results["models"].items() for c, a in e["per_class"].items()]
            write_text(args.out / "per_class.csv", pd.DataFrame(rows).to_csv(index=False))
            for model, cv in where.items():
                confusion_png(cv, args.folds, model, args.out / f"confusion_{model}.png")
        print("\n".join(results_tables(results)))
    elif args.what == "study":
        path = args.out / "study.json"
        study = json.loads(path.read_text()) if path.exists() else []
        row = study_row(args.cv, args.fold, args.name, args.change, args.repeat_of,
                        args.against, args.params or workspace_params(args.cv))
        study = [r for r in study if r["name"] != args.name] + [row]
        write_json(path, study)
        print("\n".join(study_table(study)))
    elif args.what == "ensemble":
        if len(args.exp) < 2:
            raise SystemExit("cv_results ensemble: an ensemble needs two or more --exp")
        unnamed = any(":" not in x for x in args.exp)  # members that take --model
        command = ("python -m sonic.cv_results ensemble --name " + args.name + "".join(
            f" --exp {x}" for x in args.exp) + (f" --model {args.model}" if unnamed else "") + (
            f" --dev-fold {args.dev_fold}" if args.dev_fold else ""))
        row = {"name": args.name, "note": args.note,
               **ensemble(args.repo, args.exp, args.folds, args.dev_fold, args.model,
                          args.features, command)}
        path = args.out / "ensembles.json"
        rows = json.loads(path.read_text()) if path.exists() else []
        write_json(path, [r for r in rows if r["name"] != args.name] + [row])
        print("\n".join(ensemble_table([row])))
    elif args.what == "teachers":
        gathered = gather_teachers(args.repo, args.exp, args.folds, args.model, args.out)
        for k, paths in gathered.items():
            print(f"fold {k}: {', '.join(p.name for p in paths)} in {args.out / str(k)}")
    else:
        write_text(args.doc, page_from_files(args.results, args.plot, curves=args.curves,
                                             ensemble_confusion=args.ensemble_confusion))
        results = json.loads((args.results / "results.json").read_text())
        extra = {name: json.loads((args.results / f"{name}.json").read_text())
                 if (args.results / f"{name}.json").exists() else []
                 for name in ("history", "ensembles")}
        accuracy_plot(results, args.plot, extra["history"], extra["ensembles"])
        written = [args.doc, args.plot]
        pick = headline_ensemble(extra["ensembles"], results)
        if pick and "confusion" in pick:
            save_confusion(*confusion_matrix(pick["confusion"]),
                           f"{pick['name']}, folds {', '.join(map(str, pick['folds']))}",
                           args.ensemble_confusion)
            written.append(args.ensemble_confusion)
        if any("train_loss" in e for e in results["models"].values()):
            curves_plot(results, args.curves)
            written.append(args.curves)
        print("written " + ", ".join(map(str, written)))
