"""The ESC-50 page (``docs/esc50.md``), written from the committed result files only, so that it
can be regenerated, and checked, anywhere."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sonic.cv_results.collect import DELAY_S
from sonic.cv_results.fetch import STUDENT
from sonic.cv_results.plots import ANCHORS, mean_loss
from sonic.cv_results.study import seed_spread, study_digest, study_table
from sonic.cv_results.text import pct, wall_time


def newest_first(ensembles: list[dict], results: dict) -> list[dict]:
    """The ensembles over all of ``results``' folds, the last scored first, then those of the
    development fold in the order they were scored."""
    full = [e for e in reversed(ensembles) if e["folds"] == results["folds"]]
    return full + [e for e in ensembles if e["folds"] != results["folds"]]


def ensemble_table(ensembles: list[dict]) -> list[str]:
    """One block per ensemble: each member's five-fold figures, then the ensemble's."""
    lines = []
    for e in ensembles:
        folds = [str(k) for k in e["folds"]]
        dev = str(e.get("dev_fold"))
        head = " | ".join(f"fold {k}{' (dev)' if k == dev else ''}" for k in folds)
        lines += [f"| `{e['name']}`: {e['model']} | MFLOPs / clip | {head} | mean ± sd | "
                  "mean of the folds no choice saw |",
                  "|---|---|" + "---|" * len(folds) + "---|---|"]
        rows = [(f"member `{m}`", e["member_compute"][m]["mflops"], a)
                for m, a in e["member_accuracy"].items()]
        rows.append(("**average of the members' probabilities**", e["compute"]["mflops"],
                     e["accuracy"]))
        for label, mflops, a in rows:
            sd = f" ± {pct(a['sd'])}" if a["sd"] is not None else ""
            lines.append(f"| {label} | {mflops:.0f} | " + " | ".join(
                pct(a["per_fold"][k]) for k in folds) + f" | **{pct(a['mean'])}**{sd} | "
                f"{pct(a['unseen_folds_mean'])} |")
        lines += ["", *([e["note"], ""] if e.get("note") else []),
                  f"Machine: {e['machine']}; {e['date']}. Command: `{e['command']}`", ""]
    return lines


def history_table(history: list[dict]) -> list[str]:
    lines = ["| experiment | date | model | mean ± sd | mean of the folds no choice saw |",
             "|---|---|---|---|---|"]
    for h in history:
        for model, a in h["models"].items():
            sd = f" ± {pct(a['sd'])}" if a["sd"] is not None else ""
            lines.append(f"| `{h['name']}` | {h['date']} | {model} | {pct(a['mean'])}{sd} | "
                         f"{pct(a['unseen_folds_mean'])} |")
    return lines


def best_model(results: dict) -> str:
    """The model with the highest mean accuracy over the folds."""
    return max(results["models"], key=lambda m: results["models"][m]["accuracy"]["mean"])


def results_tables(results: dict) -> list[str]:
    """The five-fold tables: one row per model, then per-fold times, then per class."""
    folds = [str(k) for k in results["folds"]]
    dev = results.get("dev_fold")
    head = " | ".join(f"fold {k}{' (dev)' if str(dev) == k else ''}" for k in folds)
    lines = [f"| model | params (M) | MFLOPs / clip | {head} | mean ± sd | "
             "mean of the folds no choice saw |",
             "|---|---|---|" + "---|" * len(folds) + "---|---|"]
    for model, e in results["models"].items():
        acc, comp = e["accuracy"], e.get("compute", {})
        sd = f" ± {pct(acc['sd'])}" if acc["sd"] is not None else ""
        lines.append(f"| {model} | {comp.get('params_m', 0):.2f} | {comp.get('mflops', 0):.0f} | "
                     if comp else f"| {model} | – | sum of the above | ")
        lines[-1] += " | ".join(pct(acc["per_fold"][k]) for k in folds)
        lines[-1] += f" | **{pct(acc['mean'])}**{sd} | {pct(acc['unseen_folds_mean'])} |"
    lines += ["", "| model | " + " | ".join(f"fold {k}" for k in folds) + " | samples/s |",
              "|---|" + "---|" * len(folds) + "---|"]
    for model, e in results["models"].items():
        if "time" not in e:
            continue
        t = e["time"]
        rate = np.mean([t[k]["samples_per_s"] for k in folds])
        lines.append(f"| {model} (wall time) | " + " | ".join(
            wall_time(t[k]) for k in folds) + f" | {rate:.0f} |")
    if results.get("timing"):
        lines += ["", f"Timing: {results['timing']}"]
    return lines


def per_class_table(results: dict, worst: int = 10) -> list[str]:
    """The ``worst`` classes of the best model, pooled over every fold."""
    best = best_model(results)
    per_class = sorted(results["models"][best]["per_class"].items(), key=lambda kv: kv[1])
    lines = [f"| class ({best}, the {worst} hardest) | accuracy over all folds |", "|---|---|"]
    lines += [f"| {c} | {pct(a)} |" for c, a in per_class[:worst]]
    return lines


def ensemble_per_class(pick: dict, results: dict, confusion: str | None,
                       worst: int = 10) -> list[str]:
    """The headline ensemble's ``worst`` classes pooled over every fold, the best single
    model's accuracy on each beside, then its confusion over all folds (the PNG at
    ``confusion``)."""
    best = best_model(results)
    single = results["models"][best]["per_class"]
    hardest = sorted(pick["per_class"].items(), key=lambda kv: kv[1])[:worst]
    lines = [f"Per class, the README's ensemble `{pick['name']}` over all folds "
             f"({pick['clips']:,} clips), its {worst} hardest classes with the best single "
             f"model ({best}) beside; every class in metrics/esc50_cv/ensembles.json.", "",
             f"| class | ensemble | {best} |", "|---|---|---|"]
    lines += [f"| {c} | {pct(a)} | {pct(single[c]) if c in single else '–'} |"
              for c, a in hardest]
    if confusion and "confusion" in pick:
        lines += ["", f"![the ensemble's confusion over all folds]({confusion})"]
    return lines + [""]


def curves_table(results: dict) -> list[str]:
    """Each model's training loss, averaged over its folds and over each quarter of its epochs
    (one epoch's loss swings with its mixing draws), and the mean of its last tenth of epochs
    against the tenth before: above 0 where the schedule ended still learning."""
    lines = ["| model | epochs | first ¼ | second ¼ | third ¼ | last ¼ | "
             "fall from the ninth tenth to the last |", "|---|---|---|---|---|---|---|"]
    for model, e in results["models"].items():
        if "train_loss" not in e:
            continue
        mean = mean_loss(e)
        quarters = [part.mean() for part in np.array_split(mean, 4)]
        tenths = np.array_split(mean, 10)
        lines.append(f"| {model} | {len(mean)} | " + " | ".join(f"{v:.3f}" for v in quarters)
                     + f" | {tenths[-2].mean() - tenths[-1].mean():+.3f} |")
    return lines if len(lines) > 2 else []


def page(results: dict, study: list[dict], plot: str, confusion: str,
         history: list[dict] | None = None, ensembles: list[dict] | None = None,
         curves: str | None = None, ensemble_confusion: str | None = None) -> str:
    """The ESC-50 page: how to run it, the five-fold figures, their learning curves (the plot
    at ``curves``), the ensembles (the README's one per class, its confusion the plot at
    ``ensemble_confusion``), the study, the anchors."""
    from sonic.docs.results import headline_ensemble

    pick = headline_ensemble(ensembles or [], results)
    loss_table = curves_table(results) if curves else []
    best = best_model(results)
    acc = results["models"][best]["accuracy"]
    anchors = ["| published, from scratch | accuracy % | params (M) | MFLOPs |", "|---|---|---|---|"]
    anchors += [f"| {a['name']} | {a['accuracy']} | {a['params_m'] or '–'} | {a['mflops'] or '–'} |"
                for a in ANCHORS]
    text = [
        "# ESC-50 from scratch on two CPU cores",
        "",
        "<!-- generated by `python -m sonic.cv_results page` from metrics/esc50_cv/; "
        "do not edit -->",
        "",
        "Five-fold cross-validation of ESC-50 (2,000 clips, 50 classes, 16 kHz copy), every fold "
        "held out once and scored once, no pretrained weights. Each fold trains on the other "
        "four under `split.select: last` (every epoch runs and the last is kept), so no "
        "held-out clip makes any choice. The recipe's choices were made on one fold only, "
        f"the development fold ({results['dev_fold']}); the last column gives the mean of the "
        "folds that no choice looked at.",
        "",
        f"Machine: {results['machine']}, 2 cores, no GPU; {results['date']}. Command "
        "(`ESC50` is your copy in the official layout, see [data](data.md)):",
        "",
        "```bash",
        results["command"],
        results.get("collect_command", "python -m sonic.cv_results collect --cv data/cv "
                                       "--dev-fold 1 --out metrics/esc50_cv"),
        "```",
        "",
        "Each run is one DVC experiment through the `cv_*` stages; killed, `dvc exp run` with "
        "the same arguments resumes each fold after its last finished epoch. Each `-S` sets one "
        "value on top of the workspace's `params.yaml`, which keeps what the last experiment "
        "left there: run from the committed params (`git checkout params.yaml`) or set every "
        "value that differs — five of the study's runs below carried another run's values "
        "that way (four its crops, one its MixUp weights), as their rows say.",
        "",
        "## Five folds",
        "",
        *results_tables(results),
        "",
        f"Best model: {best}, {pct(acc['mean'])} % five-fold mean. Accuracy (%) on each "
        "held-out fold (400 clips); MFLOPs count one forward pass over one 5 s clip, 2 per "
        "multiply-add (torch's `FlopCounterMode`), crops included."
        + (" A `student_` model is one model distilled, fold by fold, from the fold's "
           "checkpoints of other five-fold runs (its teachers, trained without that fold; stage "
           "`cv_distill`, [training](training.md#distilling-an-ensemble-into-one-model)): it "
           "costs its own compute at inference, its teachers' only in training."
           if any(m.startswith(STUDENT) for m in results["models"]) else ""),
        "",
        *per_class_table(results),
        "",
        f"![confusion over all folds]({confusion})",
        "",
        *(["## Learning curves", "", f"![training loss per epoch]({curves})", "",
           "The training loss of every fold, epoch by epoch (DVCLive's `train/loss` in each "
           "fold's live folder: cross-entropy on the mixed, label-smoothed targets; a "
           "student's includes its teachers' term), each fold's held-out accuracy in the "
           "legend. Under `split.select: last` no held-out clip is scored before the last "
           "epoch, so there is no held-out curve: how held-out accuracy grows with training is "
           "measured by the study's runs at other epoch counts (its *epochs* column). The "
           "loss, averaged over the folds:", "", *loss_table, ""] if loss_table else []),
        *(["## Ensembles", "",
           "Finished experiments averaged: the ensemble takes the mean of their class "
           "probabilities on every held-out clip, so it costs the members' compute together. "
           "Scored by `python -m sonic.cv_results ensemble` from the experiments' checkpoints "
           "(read through DVC at each experiment's revision, nothing retrained); members "
           "trained on other features (64 and 128 mel bands) are each scored on their own "
           "experiment's spectrograms, and `--exp NAME:cnn` adds another model. An ensemble "
           "of development-fold runs has only that fold. The headline ensemble's members are "
           "chosen on that fold alone: a candidate joins when the development-fold ensemble "
           "with it scores more than without it, and the README gives the five-fold ensemble "
           "the development fold ranks first (ties: the cheaper), never the best five-fold "
           "mean.", "",
           *(ensemble_per_class(pick, results, ensemble_confusion) if pick else []),
           *ensemble_table(newest_first(ensembles, results))] if ensembles else []),
        *(["## Earlier five-fold runs", "",
           "The runs this recipe replaced, same protocol (their commands in "
           "metrics/esc50_cv/history.json):", "", *history_table(history), ""]
          if history else []),
        "## Accuracy against compute",
        "",
        f"![accuracy against MFLOPs]({plot})",
        "",
        *anchors,
        "",
        "## The study on the development fold",
        "",
        "Each row is a named DVC experiment on the development fold, in the order they ran: "
        "a five-fold run's fold-1 row (its recipe), then the changes tried against it, one "
        "thing at a time; the changes that paid went into the next recipe, whose fold-1 row "
        "follows them. One point is four of the fold's 400 clips. *Against its baseline*: "
        "the change from the experiment it changes, each side the mean of its seed runs; "
        "**helped** or **hurt** only beyond twice the sd that seed noise gives that "
        "difference (the pooled one-run seed sd below × √(1/n + 1/m) for n and m runs), "
        f"otherwise within noise. *Clips {DELAY_S:g} s late*: the same test clips each "
        f"starting {DELAY_S:g} s later (silence before, the end dropped) — ESC-50's clips "
        "start at their sound, users' recordings need not. Where a row recorded its training "
        "params, its change ends with every value that differs from its baseline's, read from "
        "the experiment's `params.yaml` rather than written by hand. Wall times depend on what "
        "else shared the cores: compare accuracy, not time.",
        "",
        *[line for line in study_digest(study) for line in (line, "")],
        *study_table(study),
        "",
        *(line for spread in seed_spread(study) for line in (spread, "")),
    ]
    return "\n".join(text)


CURVES_PLOT = Path("plots/esc50_learning_curves.png")
ENSEMBLE_CONFUSION = Path("plots/esc50_confusion_ensemble.png")


def page_from_files(results_dir: Path, plot: Path, root: Path = Path("."),
                    curves: Path = CURVES_PLOT,
                    ensemble_confusion: Path = ENSEMBLE_CONFUSION) -> str:
    """:func:`page` of ``results_dir``'s results.json and study.json (all paths relative to
    the repository ``root``; ``curves`` the learning curves' plot, ``ensemble_confusion`` the
    README's ensemble's confusion), for a page in docs/ (its links one folder up)."""
    results = json.loads((root / results_dir / "results.json").read_text())
    study_path = root / results_dir / "study.json"
    study = json.loads(study_path.read_text()) if study_path.exists() else []
    history_path = root / results_dir / "history.json"
    history = json.loads(history_path.read_text()) if history_path.exists() else []
    ensembles_path = root / results_dir / "ensembles.json"
    ensembles = json.loads(ensembles_path.read_text()) if ensembles_path.exists() else []
    confusion = results_dir / f"confusion_{best_model(results)}.png"
    return page(results, study, str(Path("..") / plot), str(Path("..") / confusion), history,
                ensembles, str(Path("..") / curves), str(Path("..") / ensemble_confusion))
