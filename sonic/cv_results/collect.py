"""A cross-validation's folds as ``results.json``: per fold, mean ± sd (ddof 1), the mean of the
folds no study choice looked at, per class, compute per clip, time per fold and each fold's
training loss, with the machine, date and command; former results kept in ``history.json``."""
from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from sonic.cv_results.fetch import LOSS_CURVE, STUDENT, TEACHERS_COMMAND, live_folder
from sonic.docs.provenance import cpu_model
from sonic.runtime import write_json


# the params sections of the classifiers: the keys of sonic.models.MODELS, written out because
# importing the registry imports torch, which the page's generation does without
MODEL_SECTIONS = ("cnn", "resnet")


def model_compute(checkpoint: Path, n_frames: int | None = None) -> dict[str, float]:
    """Parameters (M) and MFLOPs (2 per multiply-add, torch's FlopCounterMode) of one forward
    pass over one clip of ``n_frames`` frames (default: the clip length the checkpoint's
    features give), with the inference crops counted."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from sonic.models.checkpoint import crop_starts, load_classifier

    clf = load_classifier(checkpoint)
    n_frames = n_frames or clf.features.n_frames
    frames, count = clf.crops
    width = frames if 0 < frames < n_frames else n_frames
    crops = len(crop_starts(n_frames, frames, count))
    x = torch.zeros(1, 1, clf.features.n_mels, width)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        clf.model(x)
    return {"params_m": sum(p.numel() for p in clf.model.parameters()) / 1e6,
            "mflops": counter.get_total_flops() * crops / 1e6}


def fold_predictions(cv: Path, fold: int, model: str) -> pd.DataFrame:
    """(actual, predicted) of every held-out clip of ``fold`` for ``model``."""
    path = cv / str(fold) / "evaluate/plots/sklearn/test" / f"{model}_confusion.json"
    return pd.DataFrame(json.loads(path.read_text()))


def mean_sd(values: Sequence[float]) -> dict[str, float | None]:
    v = np.asarray(values, dtype=float)
    return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else None}


DELAY_S = 0.5  # the late start a study row is also scored at


def delayed_accuracy(cv: Path, fold: int, model: str, seconds: float = DELAY_S) -> float:
    """Accuracy of ``model`` on ``fold``'s test clips when each starts ``seconds`` later: its
    frames moved that far, the vacated ones at the clip's floor (silence), the end dropped —
    a recording that begins with a pause. ESC-50's clips start at their sound; a model that
    learnt where sounds start in a clip loses here what it will lose on users' recordings."""
    import torch

    from sonic.features.store import load_features
    from sonic.models.checkpoint import load_classifier
    from sonic.training.regularize import shift_frames

    clf = load_classifier(cv / str(fold) / "models" / f"{model}.pt")
    feats = load_features(cv.parent / "features")
    roles = pd.read_csv(cv / str(fold) / "split.csv", dtype=str, keep_default_na=False)
    test = roles[roles["role"] == "test"]
    db = torch.from_numpy(np.asarray(feats.mels[feats.rows(test["clip_id"])]))[:, None]
    frames = round(seconds * clf.features.sample_rate / clf.features.hop_length)
    moved = shift_frames(db, torch.full((len(db),), frames))[:, 0].numpy()
    truth = test["label"].map({c: i for i, c in enumerate(clf.classes)}).to_numpy()
    return float((clf.predict(moved)["probs"].argmax(1) == truth).mean())


def train_loss(live: Path) -> list[float]:
    """The training loss of every epoch that DVCLive logged in ``live`` (empty without one)."""
    path = live / LOSS_CURVE
    if not path.exists():
        return []
    return [round(float(v), 5) for v in pd.read_csv(path, sep="\t")["loss"]]


def collect(cv: Path, folds: Sequence[int], dev_fold: int | None, command: str,
            models: Sequence[str] | None = None) -> dict:
    """Every figure of a finished cross-validation under ``cv`` (see the module docstring), of
    ``models`` (default: every model its folds scored)."""
    scores = {str(k): json.loads((cv / str(k) / "evaluate/metrics.json").read_text())["test"]
              for k in folds}
    models = list(models or scores[str(folds[0])])
    out: dict = {"machine": cpu_model(), "date": dt.date.today().isoformat(),
                 "command": command, "folds": list(folds), "dev_fold": dev_fold, "models": {}}
    for model in models:
        per_fold = {k: fold[model]["accuracy"] for k, fold in scores.items()}
        preds = pd.concat([fold_predictions(cv, k, model) for k in folds])
        per_class = (preds["actual"] == preds["predicted"]).groupby(preds["actual"]).mean()
        entry = {"accuracy": figures(per_fold, dev_fold),
                 "per_class": {c: float(a) for c, a in per_class.sort_index().items()},
                 "clips": len(preds)}
        if model != "ensemble":
            runs = {str(k): json.loads((cv / str(k) / live_folder(model) / "run.json")
                                       .read_text()) for k in folds}
            entry["time"] = {k: {"wall_time_s": r["wall_time_s"],
                                 "samples_per_s": r["samples_per_s"],
                                 "train_samples": r["train_samples"], **resumed(r)}
                             for k, r in runs.items()}
            entry["compute"] = model_compute(cv / str(folds[0]) / "models" / f"{model}.pt")
            curves = {str(k): train_loss(cv / str(k) / live_folder(model)) for k in folds}
            if all(curves.values()):
                entry["train_loss"] = curves
        out["models"][model] = entry
    return out


def figures(per_fold: dict[str, float], dev_fold: int | None) -> dict:
    """Per-fold accuracies with their mean ± sd and the mean of the folds no choice saw."""
    unseen = [a for k, a in per_fold.items() if int(k) != dev_fold]
    return {"per_fold": per_fold, **mean_sd(list(per_fold.values())),
            "unseen_folds_mean": float(np.mean(unseen)) if unseen else None}


def collect_all(cvs: Sequence[tuple[Path, Sequence[str] | None]], folds: Sequence[int],
                dev_fold: int | None, command: str) -> tuple[dict, dict[str, Path]]:
    """:func:`collect` of each (cv folder, models) in ``cvs`` — one per experiment, say a
    ResNet run and a CNN run on other features — as one result; also which folder each model
    came from. A model scored by two of them is refused: its figures would be ambiguous."""
    results: dict = {}
    where: dict[str, Path] = {}
    for cv, models in cvs:
        part = collect(cv, folds, dev_fold, command, models)
        clash = sorted(set(part["models"]) & set(where))
        if clash:
            raise SystemExit(f"cv_results collect: {', '.join(clash)} is in two experiments; "
                             "name one model of each (--exp NAME:cnn)")
        where.update(dict.fromkeys(part["models"], cv))
        results = {**part, "models": {**results.get("models", {}), **part["models"]}}
    return results, where


def experiment_runs(results: dict) -> list[dict]:
    """``results`` split into its experiments, one per ``dvc exp run`` command (a student's
    with the ``sonic.cv_results teachers`` line before it): each command with the models whose
    ``cv.models`` and ``cv.students`` it sets (all of them where it sets neither)."""
    parts = re.split(rf"\n(?={TEACHERS_COMMAND}|dvc exp run)", results.get("command", ""))
    commands: list[str] = []
    for i, part in enumerate(parts):
        if i and parts[i - 1].startswith(TEACHERS_COMMAND):
            commands[-1] += "\n" + part.strip()
        else:
            commands.append(part.strip())
    runs = []
    for command in commands:
        listed = {key: re.search(rf"cv\.{key}=\[([^\]]*)\]", command)
                  for key in ("models", "students")}
        names = {key: [m.strip() for m in found.group(1).split(",") if m.strip()]
                 for key, found in listed.items() if found}
        if "students" in names:  # a student's run: its students and its models (default all)
            names = [*names.get("models", MODEL_SECTIONS),
                     *(STUDENT + m for m in names["students"])]
        else:
            names = names.get("models", [])
        models = [m for m in results["models"] if m in names] or list(results["models"])
        runs.append({"command": command, "models": models})
    return runs


def summary(results: dict, command: str, models: Sequence[str]) -> dict:
    """One finished five-fold experiment of ``results`` in one line of history: its name,
    when, and per model the mean, sd, the folds no choice saw and the per-fold accuracies."""
    name = re.search(r"-n (\S+)", command)
    return {"name": name.group(1) if name else "", "date": results["date"],
            "machine": results["machine"], "command": command,
            "models": {m: {k: e["accuracy"][k] for k in ("per_fold", "mean", "sd",
                                                         "unseen_folds_mean")}
                       | ({"mflops": e["compute"]["mflops"]} if "compute" in e else {})
                       for m, e in results["models"].items() if m in models}}


def archive(out: Path, results: dict) -> list[dict]:
    """Keep the runs that ``results`` replaces: each experiment of ``out``/results.json whose
    command ``results`` no longer holds goes to ``out``/history.json (an experiment collected
    again, beside a new one, stays where it is). Returns the history."""
    path, history_path = out / "results.json", out / "history.json"
    history = json.loads(history_path.read_text()) if history_path.exists() else []
    if path.exists():
        previous = json.loads(path.read_text())
        kept = {run["command"] for run in experiment_runs(results)}
        gone = [run for run in experiment_runs(previous) if run["command"] not in kept]
        for run in gone:
            history = [h for h in history if h["command"] != run["command"]]
            history.append(summary(previous, run["command"], run["models"]))
        if gone:
            write_json(history_path, history)
    return history


def resumed(run: dict) -> dict:
    """``{"resumed_after_epoch": n}`` when the training was continued from a resume file (its
    run.json's wall time then counts the last process only), else nothing."""
    n = run.get("resumed_after_epoch")
    return {"resumed_after_epoch": n} if n else {}
