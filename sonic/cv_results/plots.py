"""The page's figures: accuracy against compute beside the published anchors, the learning curves
(each fold's training loss per epoch) and one confusion over all folds."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from sonic.cv_results.collect import fold_predictions
from sonic.cv_results.text import pct


# Published ESC-50 five-fold means from scratch (accuracy %, parameters M, MFLOPs per clip as
# the papers count them; None where not stated). Pretrained models (AST, BEATs) are not the game.
ANCHORS = [
    {"name": "Piczak CNN", "accuracy": 64.5, "params_m": None, "mflops": None},
    {"name": "human listeners", "accuracy": 81.3, "params_m": None, "mflops": None},
    {"name": "Micro-ACDNet", "accuracy": 83.7, "params_m": 0.13, "mflops": 14.8},
    {"name": "ResNet seed (1 fold, selected on it)", "accuracy": 84.0, "params_m": None,
     "mflops": None},
    {"name": "EnvNet-v2 + BC", "accuracy": 84.9, "params_m": None, "mflops": None},
    {"name": "ACDNet", "accuracy": 87.1, "params_m": 4.7, "mflops": 544.0},
]


def save_png(fig, path: Path, **savefig: object) -> None:
    """Write ``fig`` to ``path`` atomically (no software stamp: the same figure, the same bytes)
    and close it."""
    import matplotlib.pyplot as plt

    from sonic.runtime import atomic_path

    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, metadata={"Software": None}, **savefig)
    finally:
        plt.close(fig)


def confusion_png(cv: Path, folds: Sequence[int], model: str, path: Path) -> None:
    """One confusion matrix over the held-out clips of every fold."""
    preds = pd.concat([fold_predictions(cv, k, model) for k in folds])
    classes = sorted(preds["actual"].unique())
    save_confusion(count_confusion(preds, classes), classes,
                   f"{model}, folds {', '.join(map(str, folds))}", path)


def count_confusion(preds: pd.DataFrame, classes: Sequence[str]) -> np.ndarray:
    """(n_classes, n_classes) clip counts of ``preds``' ``actual`` (rows) and ``predicted``
    (columns) labels, in the order of ``classes``."""
    code = {c: i for i, c in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes)), dtype=np.int64)
    np.add.at(matrix, (preds["actual"].map(code), preds["predicted"].map(code)), 1)
    return matrix


def confusion_matrix(counts: dict[str, dict[str, int]]) -> tuple[np.ndarray, list[str]]:
    """The matrix (rows: the actual class) and class order of an ensemble's ``confusion``
    (``{actual: {predicted: clips}}``, zeros left out)."""
    classes = list(counts)
    code = {c: i for i, c in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes)), dtype=np.int64)
    for actual, row in counts.items():
        for predicted, n in row.items():
            matrix[code[actual], code[predicted]] = n
    return matrix, classes


def save_confusion(matrix: np.ndarray, classes: Sequence[str], title: str, path: Path) -> None:
    """A confusion matrix (rows: the actual class) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from sonic.evaluation.confusion_plots import confusion_figure

    fig = confusion_figure({title: np.asarray(matrix)}, list(classes))
    save_png(fig, path)


def accuracy_plot(results: dict, path: Path, history: list[dict] | None = None,
                  ensembles: list[dict] | None = None) -> None:
    """Accuracy against MFLOPs per clip (log scale): Sonic's models and five-fold ensembles
    beside the anchors. Earlier runs and ensembles share one legend entry each; the ensemble
    the README shows (:func:`~sonic.docs.results.headline_ensemble`) is drawn large and named."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sonic.docs.results import headline_ensemble

    fig, ax = plt.subplots(figsize=(9, 5), dpi=110)
    for a in ANCHORS:
        if a["mflops"] is not None:
            ax.scatter(a["mflops"], a["accuracy"], marker="s", color="grey")
            ax.annotate(f"{a['name']} ({a['params_m']} M)", (a["mflops"], a["accuracy"]),
                        textcoords="offset points", xytext=(5, -12), fontsize=8)
        else:
            ax.axhline(a["accuracy"], color="grey", lw=0.6, ls=":")
            ax.text(1.1, a["accuracy"] + 0.3, a["name"], fontsize=7, color="grey")
    label = "Sonic, earlier five-fold runs"
    for h in history or []:
        for a in h["models"].values():
            if "mflops" in a:
                ax.errorbar(a["mflops"], 100 * a["mean"], yerr=100 * (a["sd"] or 0), fmt="o",
                            mfc="none", color="grey", capsize=3, label=label)
                label = None
    for model, e in results["models"].items():
        if "compute" in e:
            c, acc = e["compute"], e["accuracy"]
            ax.errorbar(c["mflops"], 100 * acc["mean"], yerr=100 * (acc["sd"] or 0), fmt="o",
                        capsize=3, label=f"Sonic {model} ({c['params_m']:.2f} M)")
    full = [e for e in ensembles or [] if e["folds"] == results["folds"]]
    pick = headline_ensemble(full, results)
    label = "Sonic ensembles (averaged probabilities)"
    for e in full:
        if e is not pick:
            ax.scatter(e["compute"]["mflops"], 100 * e["accuracy"]["mean"], marker="D", s=18,
                       color="tab:purple", alpha=0.45, label=label)
            label = None
    if pick:
        c, acc = pick["compute"], pick["accuracy"]
        what = (pick["model"] if " + " in pick["model"]  # "cnn + resnet": one of each
                else f"{len(pick['members'])} × {pick['model']}")
        ax.errorbar(c["mflops"], 100 * acc["mean"], yerr=100 * (acc["sd"] or 0), fmt="D",
                    ms=8, color="tab:red", capsize=3,
                    label=f"Sonic {pick['name']}: the development fold's pick "
                          f"({what}, {c['params_m']:.2f} M)")
    ax.set_xscale("log")
    ax.set_xlim(1, 5000)
    ax.set_xlabel("MFLOPs per clip (log scale)")
    ax.set_ylabel("ESC-50 five-fold accuracy (%)")
    ax.set_title(f"From scratch; Sonic: {results['machine']}, {results['date']}", fontsize=8)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0, -0.13), ncol=2)
    fig.tight_layout()
    save_png(fig, path, bbox_inches="tight")


SMOOTH_EPOCHS = 10  # the learning curves' running mean


def mean_loss(entry: dict) -> np.ndarray:
    """A model's training loss per epoch (``collect``'s ``train_loss``), averaged over its folds."""
    return np.mean([np.asarray(v) for v in entry["train_loss"].values()], axis=0)


def curves_plot(results: dict, path: Path) -> None:
    """Training loss against epoch, one panel per model with a training-loss record: one line
    per fold (its held-out accuracy in the legend) and the folds' mean, smoothed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = [m for m, e in results["models"].items() if "train_loss" in e]
    fig, axes = plt.subplots(1, max(len(models), 1), figsize=(4 * max(len(models), 1), 3.6),
                             dpi=110, sharey=True, squeeze=False)
    for ax, model in zip(axes[0], models):
        e = results["models"][model]
        for k, losses in e["train_loss"].items():
            dev = " (dev)" if str(results.get("dev_fold")) == k else ""
            ax.plot(range(1, len(losses) + 1), losses, lw=0.6, alpha=0.6,
                    label=f"fold {k}{dev}: {pct(e['accuracy']['per_fold'][k])} % held out")
        mean = mean_loss(e)
        width = min(SMOOTH_EPOCHS, len(mean))
        smooth = np.convolve(mean, np.ones(width) / width, mode="valid")
        centre = np.arange(width, len(mean) + 1) - (width - 1) / 2
        ax.plot(centre, smooth, color="black", lw=1.6,
                label=f"mean of the folds, {width}-epoch running mean")
        ax.set_title(model, fontsize=9)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("training loss")
    fig.suptitle(f"ESC-50 five folds, training loss per epoch; {results['machine']}, "
                 f"{results['date']}", fontsize=8)
    fig.tight_layout()
    save_png(fig, path)
