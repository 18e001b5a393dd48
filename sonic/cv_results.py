"""Cross-validation results as committed files, and the ESC-50 page generated from them.

``python -m sonic.cv_results collect`` reads the ``cv_*`` stages' outputs (``data/cv/<fold>/``)
and writes, under ``--out``: ``results.json`` (per fold, mean ± sd (ddof 1), the mean of the
folds no study choice looked at, per class, compute per clip and time per fold, with the
machine, date and command), ``per_class.csv`` and ``confusion_<model>.png`` (one confusion over
all folds) — from this workspace's ``data/cv``, or with ``--exp NAME[:MODEL]`` (once per
experiment: a ResNet run and a CNN run on other features, say) from each experiment's folds
read through DVC, joined in one result. ``study`` records one development-fold experiment in
``study.json``, with the params that shape a training (so the page shows, beside the change
as written, every value that differs from the row's baseline). ``ensemble`` scores the average
of finished cross-validation experiments (the same recipe trained with other seeds, on other
features, or another model: ``--exp NAME:cnn``) on every fold, their checkpoints read through
DVC at each experiment's revision — no retraining — into ``ensembles.json``. ``teachers``
copies such experiments' fold checkpoints to ``data/teachers/<fold>/``, where stage
``cv_distill`` trains a student on them (``cv.students``). ``page`` writes
the Markdown page, the accuracy-against-compute plot and the learning curves (each fold's
training loss per epoch, which ``collect`` keeps) from those files only, so the page can be
regenerated (and checked) anywhere::

    python -m sonic.cv_results collect --cv data/cv --dev-fold 1 --out metrics/esc50_cv \\
        --command "dvc exp run -n esc50_cv ..."
    python -m sonic.cv_results study --name dev_bc --cv data/cv --fold 1 \\
        --change "between-class mixing" --out metrics/esc50_cv
    python -m sonic.cv_results ensemble --name esc50_cv_seeds --exp esc50_cv --exp esc50_cv_s1 \\
        --dev-fold 1 --out metrics/esc50_cv
    python -m sonic.cv_results page --results metrics/esc50_cv --doc docs/esc50.md \\
        --plot plots/esc50_accuracy_vs_compute.png --curves plots/esc50_learning_curves.png
"""
from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import re
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import yaml

from sonic.docs.provenance import cpu_model
from sonic.runtime import write_json, write_text

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


STUDENT = "student_"  # a distilled student's checkpoint: student_<model>.pt (stage cv_distill)
TEACHERS_COMMAND = "python -m sonic.cv_results teachers"  # gathers a student's teachers


def file_part(rev: str) -> str:
    """A revision or experiment spec as part of a file name: anything but letters, digits and
    ``_.-`` becomes ``_``."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", rev)


def live_folder(model: str) -> str:
    """The folder of a fold's ``model`` that holds its run.json: ``train_<model>``, or a
    student's ``distill_<model>``."""
    return (f"distill_{model.removeprefix(STUDENT)}" if model.startswith(STUDENT)
            else f"train_{model}")


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


LOSS_CURVE = "plots/metrics/train/loss.tsv"  # DVCLive's training loss per epoch, in a live folder


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


def read_at(repo: Path, rev: str, path: str, target: Path, what: str,
            optional: bool = False) -> Path | None:
    """``path`` as experiment (or commit) ``rev`` left it, read through DVC from the cache or
    the remote, copied to ``target``; when it is not there, None if ``optional``, else a clear
    exit naming it."""
    import dvc.api

    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with dvc.api.open(path, repo=str(repo), rev=rev, mode="rb") as f:
            target.write_bytes(f.read())
    except Exception as err:  # noqa: BLE001 - DVC's errors differ by what is missing
        if optional:
            return None
        raise SystemExit(f"cv_results {what}: no {path} at {rev!r} ({type(err).__name__}: "
                         f"{err}); run that fold in the experiment, or `dvc exp pull` it") \
            from None
    return target


def member_checkpoint(repo: Path, rev: str, fold: int, model: str, into: Path) -> Path:
    """``data/cv/<fold>/models/<model>.pt`` at ``rev`` (:func:`read_at`), copied to ``into``."""
    return read_at(repo, rev, f"data/cv/{fold}/models/{model}.pt",
                   into / f"{file_part(rev)}_{fold}_{model}.pt", "ensemble")


def gather_teachers(repo: Path, exps: Sequence[str], folds: Sequence[int], model: str,
                    out: Path) -> dict[int, list[Path]]:
    """The teachers of a student (stage ``cv_distill``): each experiment's fold checkpoint
    ``data/cv/<fold>/models/<model>.pt`` (``REV`` or ``REV:MODEL``, :func:`member_spec`), read
    through DVC at its revision, copied to ``out/<fold>/<rev>_<model>.pt``. Each fold's folder
    holds exactly these afterwards: checkpoints a former gathering left there are removed, so
    that no stale teacher joins."""
    specs = [member_spec(x, model) for x in exps]
    names = [f"{file_part(rev)}_{m}.pt" for rev, m in specs]
    if len(set(names)) < len(names):
        raise SystemExit("cv_results teachers: an experiment is named twice")
    gathered = {}
    for k in folds:
        folder = out / str(k)
        folder.mkdir(parents=True, exist_ok=True)
        gathered[k] = [read_at(repo, rev, f"data/cv/{k}/models/{m}.pt", folder / name,
                               "teachers") for (rev, m), name in zip(specs, names)]
        for stale in set(folder.glob("*.pt")) - set(gathered[k]):
            stale.unlink()
    return gathered


def fetch_cv(repo: Path, spec: str, folds: Sequence[int], into: Path) -> tuple[Path, list[str]]:
    """What :func:`collect` reads of experiment ``REV`` or ``REV:MODEL`` (``spec``), read
    through DVC and laid out under ``into`` as the ``cv_*`` stages leave ``data/cv``: each
    fold's scores and held-out predictions, each model's run.json and training-loss curve, and
    the first fold's checkpoints (for compute). Returns that folder and the models to collect
    from it."""
    rev, named = member_spec(spec, "")
    cv = into / file_part(spec) / "cv"
    for k in folds:
        read_at(repo, rev, f"data/cv/{k}/evaluate/metrics.json",
                cv / str(k) / "evaluate/metrics.json", "collect")
    models = [named] if named else list(json.loads(
        (cv / str(folds[0]) / "evaluate/metrics.json").read_text())["test"])
    for k in folds:
        for model in models:
            files = [f"evaluate/plots/sklearn/test/{model}_confusion.json"]
            if model != "ensemble":
                files += [f"{live_folder(model)}/run.json"] + ([f"models/{model}.pt"]
                                                        if k == folds[0] else [])
            for name in files:
                read_at(repo, rev, f"data/cv/{k}/{name}", cv / str(k) / name, "collect")
            if model != "ensemble":  # a run without its loss curve has no learning curve
                curve = f"{live_folder(model)}/{LOSS_CURVE}"
                read_at(repo, rev, f"data/cv/{k}/{curve}", cv / str(k) / curve, "collect",
                        optional=True)
    return cv, models


def member_spec(spec: str, model: str) -> tuple[str, str]:
    """``REV`` or ``REV:MODEL`` (a git ref name never holds ``:``; ``MODEL`` a registered model
    or a student of one, ``student_cnn``) → (revision, model)."""
    from sonic.models import MODELS

    rev, sep, named = spec.rpartition(":")
    known = named.removeprefix(STUDENT) in MODELS
    return (rev, named) if sep and known else (spec, model)


def member_features(repo: Path, rev: str, into: Path):
    """``data/features`` (spectrograms and index) as experiment ``rev`` left it, read through
    DVC and copied to ``into``."""
    import shutil

    import dvc.api

    from sonic.features.store import load_features

    folder = into / f"features_{file_part(rev)}"
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("mels.npy", "index.csv"):
        try:
            with dvc.api.open(f"data/features/{name}", repo=str(repo), rev=rev,
                              mode="rb") as src, open(folder / name, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 24)
        except Exception as err:  # noqa: BLE001 - DVC's errors differ by what is missing
            raise SystemExit(f"cv_results ensemble: no data/features/{name} at {rev!r} "
                             f"({type(err).__name__}: {err}); members trained on different "
                             "features are each scored on their experiment's own") from None
    return load_features(folder)


def ensemble(repo: Path, exps: Sequence[str], folds: Sequence[int], dev_fold: int | None,
             model: str, features: Path, command: str) -> dict:
    """The average of the class probabilities of finished cross-validations on every held-out
    clip of every fold: per fold, mean ± sd, the mean of the folds no choice saw, per class,
    each member's own figures, and compute (the members' sum).

    A member is an experiment ``REV`` (its ``model``) or ``REV:MODEL`` (a CNN beside ResNets,
    say). Every member must have split the folds alike and know the same classes; members may
    differ in features (64 and 128 mel bands, say): when they all share one set, the clips
    come from ``features`` (the workspace's), otherwise each member is scored on its own
    experiment's ``data/features``, read through DVC."""
    import tempfile

    import dvc.api

    from sonic.features.store import load_features
    from sonic.models.checkpoint import load_classifier

    specs = [member_spec(x, model) for x in exps]
    out: dict = {"members": list(exps), "model": " + ".join(dict.fromkeys(m for _, m in specs)),
                 "machine": cpu_model(), "date": dt.date.today().isoformat(),
                 "command": command, "folds": list(folds), "dev_fold": dev_fold}
    per_fold, member_acc, preds = {}, {e: {} for e in exps}, []
    feature_sets: dict[int, object] = {}  # member index → the FeatureSet it is scored on
    with tempfile.TemporaryDirectory() as tmp:
        for k in folds:
            splits = {e: dvc.api.read(f"data/cv/{k}/split.csv", repo=str(repo), rev=rev)
                      for e, (rev, _) in zip(exps, specs)}
            if len(set(splits.values())) > 1:
                raise SystemExit(f"cv_results ensemble: the experiments split fold {k} "
                                 "differently; an ensemble needs the same folds")
            roles = pd.read_csv(io.StringIO(splits[exps[0]]), dtype=str, keep_default_na=False)
            test = roles[roles["role"] == "test"]
            paths = [member_checkpoint(repo, rev, k, m, Path(tmp)) for rev, m in specs]
            members = [load_classifier(path) for path in paths]
            if any(m.classes != members[0].classes for m in members):
                raise SystemExit(f"cv_results ensemble: fold {k}'s members know different "
                                 "classes; their probabilities cannot be averaged")
            if not feature_sets:
                shared = all(m.features == members[0].features for m in members)
                by_config: dict[str, object] = {}
                for i, ((rev, _), m) in enumerate(zip(specs, members)):
                    key = repr(m.features)
                    if key not in by_config:
                        by_config[key] = (load_features(features) if shared
                                          else member_features(repo, rev, Path(tmp)))
                    feature_sets[i] = by_config[key]
            probs = []
            for i, m in enumerate(members):
                feats = feature_sets[i]
                db = np.asarray(feats.mels[feats.rows(test["clip_id"])])
                if db.shape[1:] != (m.features.n_mels, m.features.n_frames):
                    where = features if shared else f"data/features at {specs[i][0]}"
                    raise SystemExit(f"cv_results ensemble: {where} holds {db.shape[1:]} "
                                     f"spectrograms, not those {exps[i]} was trained on; "
                                     "`dvc exp apply` one of the experiments first")
                probs.append(m.predict(db)["probs"])
            if k == folds[0]:
                compute = [model_compute(path, m.features.n_frames)
                           for path, m in zip(paths, members)]
            classes = members[0].classes
            truth = test["label"].map({c: i for i, c in enumerate(classes)}).to_numpy()
            for e, p in zip(exps, probs):
                member_acc[e][str(k)] = float((p.argmax(1) == truth).mean())
            mean = np.mean(probs, axis=0).argmax(1)
            per_fold[str(k)] = float((mean == truth).mean())
            preds.append(pd.DataFrame({"actual": test["label"].to_numpy(),
                                       "predicted": [classes[i] for i in mean]}))
    pooled = pd.concat(preds)
    per_class = (pooled["actual"] == pooled["predicted"]).groupby(pooled["actual"]).mean()
    out["accuracy"] = figures(per_fold, dev_fold)
    out["member_accuracy"] = {e: figures(a, dev_fold) for e, a in member_acc.items()}
    out["per_class"] = {c: float(a) for c, a in per_class.sort_index().items()}
    out["member_compute"] = dict(zip(exps, compute))
    out["compute"] = {key: sum(c[key] for c in compute) for key in ("params_m", "mflops")}
    out["clips"] = len(pooled)
    return out


def figures(per_fold: dict[str, float], dev_fold: int | None) -> dict:
    """Per-fold accuracies with their mean ± sd and the mean of the folds no choice saw."""
    unseen = [a for k, a in per_fold.items() if int(k) != dev_fold]
    return {"per_fold": per_fold, **mean_sd(list(per_fold.values())),
            "unseen_folds_mean": float(np.mean(unseen)) if unseen else None}


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


def confusion_png(cv: Path, folds: Sequence[int], model: str, path: Path) -> None:
    """One confusion matrix over the held-out clips of every fold."""
    from sonic.evaluation.confusion_plots import confusion_figure

    preds = pd.concat([fold_predictions(cv, k, model) for k in folds])
    classes = sorted(preds["actual"].unique())
    code = {c: i for i, c in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes)), dtype=np.int64)
    np.add.at(matrix, (preds["actual"].map(code), preds["predicted"].map(code)), 1)
    import matplotlib.pyplot as plt

    fig = confusion_figure({f"{model}, folds {', '.join(map(str, folds))}": matrix}, classes)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


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


def history_table(history: list[dict]) -> list[str]:
    lines = ["| experiment | date | model | mean ± sd | mean of the folds no choice saw |",
             "|---|---|---|---|---|"]
    for h in history:
        for model, a in h["models"].items():
            sd = f" ± {pct(a['sd'])}" if a["sd"] is not None else ""
            lines.append(f"| `{h['name']}` | {h['date']} | {model} | {pct(a['mean'])}{sd} | "
                         f"{pct(a['unseen_folds_mean'])} |")
    return lines


# the params sections of the classifiers: the keys of sonic.models.MODELS, written out because
# importing the registry imports torch, which the page's generation does without
MODEL_SECTIONS = ("cnn", "resnet")
TRAINING_SECTIONS = ("features", "split", "augment", "train", "distill", *MODEL_SECTIONS)


def training_params(params_file: Path) -> dict:
    """The values of ``params_file`` that shape a fold's training, flat (``train.lr``)."""
    params = yaml.safe_load(params_file.read_text())
    return {f"{section}.{key}": value for section in TRAINING_SECTIONS
            for key, value in (params.get(section) or {}).items()}


def params_changed(row: dict, baseline: dict) -> list[str]:
    """``key old → new`` for every training param in which ``row`` differs from ``baseline``,
    the sections of models the row did not train left out (empty where either has none
    recorded)."""
    mine, theirs = row.get("params"), baseline.get("params")
    if not mine or not theirs:
        return []
    trained = {m.removeprefix(STUDENT) for m in row["accuracy"]}
    unused = {s for s in MODEL_SECTIONS if s not in trained}
    if not any(m.startswith(STUDENT) for m in row["accuracy"]):
        unused.add("distill")
    return [f"`{k}` {theirs.get(k, '–')} → {mine.get(k, '–')}"
            for k in sorted(set(mine) | set(theirs))
            if k.split(".")[0] not in unused and mine.get(k) != theirs.get(k)]


def workspace_params(cv: Path) -> Path | None:
    """The ``params.yaml`` of the workspace whose ``cv`` outputs these are, where there is one."""
    path = cv.parent.parent / "params.yaml"
    return path if path.exists() else None


def study_row(cv: Path, fold: int, name: str, change: str, repeat_of: str | None = None,
              against: str | None = None, params_file: Path | None = None) -> dict:
    """One development-fold experiment: its test accuracy per model, their compute and their
    training time. ``repeat_of`` names the experiment this one repeats with only the training
    seed changed; ``against`` the one it changes (its baseline in the study's verdicts).
    ``params_file`` (the experiment's ``params.yaml``) records its training params."""
    scores = json.loads((cv / str(fold) / "evaluate/metrics.json").read_text())["test"]
    row = {"name": name, "fold": fold, "change": change,
           "accuracy": {m: s["accuracy"] for m, s in scores.items()},
           "compute": {m: model_compute(cv / str(fold) / "models" / f"{m}.pt")
                       for m in scores if m != "ensemble"}, "time": {},
           "machine": cpu_model(), "date": dt.date.today().isoformat()}
    if (cv / str(fold) / "split.csv").exists():
        row["delayed"] = {"seconds": DELAY_S, "accuracy": {
            m: delayed_accuracy(cv, fold, m) for m in row["compute"]}}
    if repeat_of:
        row["repeat_of"] = repeat_of
    if against:
        row["against"] = against
    if params_file is not None:
        row["params"] = training_params(params_file)
    for model in row["compute"]:
        run = cv / str(fold) / live_folder(model) / "run.json"
        if not run.exists():
            continue
        r = json.loads(run.read_text())
        summary = json.loads((run.parent / "metrics.json").read_text())
        row["time"][model] = {
            "wall_time_s": r["wall_time_s"], "samples_per_s": r["samples_per_s"],
            "epochs": summary["epochs"], "parameters": r["parameters"], **resumed(r)}
    return row


def resumed(run: dict) -> dict:
    """``{"resumed_after_epoch": n}`` when the training was continued from a resume file (its
    run.json's wall time then counts the last process only), else nothing."""
    n = run.get("resumed_after_epoch")
    return {"resumed_after_epoch": n} if n else {}


def wall_time(t: dict) -> str:
    """A training's wall time for a table; a resumed one says which epochs it counts."""
    text = f"{t['wall_time_s'] / 60:.1f} min"
    if t.get("resumed_after_epoch"):
        text += f" (epochs after {t['resumed_after_epoch']} only: resumed)"
    return text


def best_model(results: dict) -> str:
    """The model with the highest mean accuracy over the folds."""
    return max(results["models"], key=lambda m: results["models"][m]["accuracy"]["mean"])


def pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


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


def seed_rows(study: list[dict], name: str, model: str) -> list[dict]:
    """The study rows of experiment ``name`` and of its seed repeats that scored ``model``."""
    return [r for r in study
            if (r["name"] == name or r.get("repeat_of") == name) and model in r["accuracy"]]


def seed_runs(study: list[dict], name: str, model: str) -> list[float]:
    """Development-fold accuracies of experiment ``name`` and of its seed repeats."""
    return [r["accuracy"][model] for r in seed_rows(study, name, model)]


def seed_groups(study: list[dict]) -> list[tuple[dict, str, list[float]]]:
    """(experiment, model, accuracies) for every experiment the study repeats with other
    training seeds: its own run first, then its repeats'."""
    return [(row, model, accs) for row in study if not row.get("repeat_of")
            for model in row["accuracy"]
            if len(accs := seed_runs(study, row["name"], model)) > 1]


def pooled_seed_sd(study: list[dict]) -> tuple[float | None, int]:
    """One run's seed sd pooled over every repeated experiment (each group's mean removed: one
    degree of freedom per group), and its degrees of freedom; (None, 0) without repeats."""
    groups = [np.asarray(accs) - np.mean(accs) for _, _, accs in seed_groups(study)]
    dof = sum(len(g) - 1 for g in groups)
    if not dof:
        return None, 0
    return float(np.sqrt(sum(float((g ** 2).sum()) for g in groups) / dof)), dof


def comparison(study: list[dict], row: dict, model: str) -> dict | None:
    """What one study row did against its baseline (``against``): the difference of the two
    experiments' means over their seed runs, and whether it clears twice the sd that seed
    noise gives such a difference (the pooled one-run sd × √(1/n + 1/m)): ``said`` is
    ``helped``, ``hurt``, ``within noise``, or None without repeats to tell the noise. None
    for a seed repeat, or without a baseline that scored a comparable model."""
    against = next((r for r in study if r["name"] == row.get("against")), None)
    if row.get("repeat_of") or against is None:
        return None
    # a baseline of one other model (a CNN row against a ResNet recipe) is compared as such, a
    # student (student_cnn) with the baseline's model of its kind
    base_model = model
    if model not in against["accuracy"]:
        kind = model.removeprefix(STUDENT)
        if kind in against["accuracy"]:
            base_model = kind
        elif len(against["accuracy"]) == 1:
            base_model = next(iter(against["accuracy"]))
    base = seed_runs(study, against["name"], base_model)
    if not base:
        return None
    own = seed_runs(study, row["name"], model)
    diff, (sd, _) = float(np.mean(own) - np.mean(base)), pooled_seed_sd(study)
    noise = None if sd is None else float(2 * sd * np.sqrt(1 / len(own) + 1 / len(base)))
    said = (None if noise is None else "helped" if diff > noise else "hurt" if diff < -noise
            else "within noise")
    return {"diff": diff, "against": against["name"], "base_model": base_model,
            "own_runs": len(own), "base_runs": len(base), "noise": noise, "said": said}


def baseline(c: dict, model: str) -> str:
    """The baseline of :func:`comparison` ``c`` as the page names it: its experiment, and its
    model where that is not ``model``."""
    return f"`{c['against']}`" + (f" {c['base_model']}" if c["base_model"] != model else "")


def verdict(study: list[dict], row: dict, model: str) -> str:
    """:func:`comparison` in a few words, for the study table."""
    if row.get("repeat_of"):
        return f"seed repeat of `{row['repeat_of']}`"
    c = comparison(study, row, model)
    if c is None:
        return "–"
    text = f"{100 * c['diff']:+.1f}" + (
        f" (its {c['own_runs']} seeds)" if c["own_runs"] > 1 else "") + (
        f" vs {baseline(c, model)}") + (f" ({c['base_runs']} seeds)" if c["base_runs"] > 1 else "")
    if c["said"] is None:
        return text
    return f"{text}: **{c['said']}** (noise ±{100 * c['noise']:.1f})"


def study_digest(study: list[dict]) -> list[str]:
    """The study in a few sentences: which changes cleared the seed noise, helping or
    hurting, and how many did not."""
    judged = [(row, model, c) for row in study for model in row["accuracy"]
              if (c := comparison(study, row, model)) is not None and c["said"] is not None]
    if not judged:
        return []
    lines = []
    for said in ("helped", "hurt"):
        named = [f"`{row['name']}`" + (f" {model}" if c["base_model"] != model else "")
                 + f" ({100 * c['diff']:+.1f} vs {baseline(c, model)})"
                 for row, model, c in judged if c["said"] == said]
        if named:
            lines.append(f"**{said.capitalize()}** beyond the seed noise: {', '.join(named)}.")
    within = sum(c["said"] == "within noise" for _, _, c in judged)
    lines.append(f"Of the {len(judged)} changes measured against a baseline, {within} stayed "
                 "within the seed noise: on one fold of 400 clips they neither helped nor "
                 "hurt measurably.")
    return [" ".join(lines)]


def study_table(study: list[dict]) -> list[str]:
    """One row per experiment and model; where the study ran on more than one CPU, each wall
    time names its machine."""
    lines = ["| experiment | change | model | params (M) | MFLOPs / clip | epochs | "
             f"dev-fold accuracy | clips {DELAY_S:g} s late | against its baseline | wall time | "
             "samples/s |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    machines = len({row["machine"] for row in study if "machine" in row}) > 1
    by_name = {row["name"]: row for row in study}
    for row in study:
        base = by_name.get(row.get("repeat_of") or row.get("against") or "")
        changed = params_changed(row, base) if base else []
        change = row["change"] + (f" (params against `{base['name']}`: {'; '.join(changed)})"
                                  if changed else "")
        for model, acc in row["accuracy"].items():
            t, c = row["time"].get(model, {}), row.get("compute", {}).get(model)
            size = f"{c['params_m']:.2f} | {c['mflops']:.0f}" if c else "– | –"
            where = f" on {row['machine']}" if machines and "machine" in row else ""
            timing = f"{wall_time(t)}{where} | {t['samples_per_s']:.0f} |" if t else "– | – |"
            lines.append(f"| `{row['name']}` | {change} | {model} | {size} | "
                         f"{t.get('epochs', '–')} | {pct(acc)} | "
                         f"{pct(row.get('delayed', {}).get('accuracy', {}).get(model))} | "
                         f"{verdict(study, row, model)} | {timing}")
    return lines


def seed_spread(study: list[dict]) -> list[str]:
    """For each experiment that others repeat with another training seed (``repeat_of``), the
    spread of its development-fold accuracy over all its runs: the noise a one-run change has
    to clear before it means anything."""
    lines, groups = [], seed_groups(study)
    for row, model, accs in groups:
        runs = seed_rows(study, row["name"], model)
        names = ", ".join(f"`{r['name']}`" for r in runs)
        changed = ("training seed or the CPU" if len({r.get("machine") for r in runs}) > 1
                   else "training seed")
        spread = mean_sd(accs)
        lines.append(
            f"Seed noise: `{row['name']}` ({model}) trained {len(accs)} times with only the "
            f"{changed} changed ({names}) scores "
            f"{', '.join(pct(a) for a in accs)} on the development fold: "
            f"**{pct(spread['mean'])} ± {pct(spread['sd'])}** (mean ± sd), "
            f"{pct(min(accs))}–{pct(max(accs))}. A change measured by one run on this fold "
            f"differs from its recipe by chance by about {pct(np.sqrt(2) * spread['sd'])} "
            "points (sd of a difference of two runs), so only a larger gain, or the mean of "
            "several seeds, says that it helped.")
    if len(groups) > 1:  # each group's sd rests on few runs: pool them (ddof: one per group)
        pooled, dof = pooled_seed_sd(study)
        lines.append(f"Pooled over these {len(groups)} repeated recipes ({dof} degrees of "
                     f"freedom), one run's seed sd is **{pct(pooled)}** points and a one-run "
                     f"difference carries about {pct(np.sqrt(2) * pooled)}.")
    return lines


def elsewhere(machine: str, results: dict) -> str:
    """``, on MACHINE`` for a point from another CPU than ``results``' (the plot's title)."""
    return "" if machine == results["machine"] else f", on {machine}"


def accuracy_plot(results: dict, path: Path, history: list[dict] | None = None,
                  ensembles: list[dict] | None = None) -> None:
    """Accuracy against MFLOPs per clip (log scale): Sonic's models beside the anchors."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5), dpi=110)
    for a in ANCHORS:
        if a["mflops"] is not None:
            ax.scatter(a["mflops"], a["accuracy"], marker="s", color="grey")
            ax.annotate(f"{a['name']} ({a['params_m']} M)", (a["mflops"], a["accuracy"]),
                        textcoords="offset points", xytext=(5, -12), fontsize=8)
        else:
            ax.axhline(a["accuracy"], color="grey", lw=0.6, ls=":")
            ax.text(1.0, a["accuracy"] + 0.3, a["name"], fontsize=7, color="grey")
    for h in history or []:
        for model, a in h["models"].items():
            if "mflops" in a:
                ax.errorbar(a["mflops"], 100 * a["mean"], yerr=100 * (a["sd"] or 0), fmt="o",
                            mfc="none", color="grey", capsize=3,
                            label=f"Sonic {model}, earlier: {h['name']}"
                                  + elsewhere(h["machine"], results))
    for model, e in results["models"].items():
        if "compute" in e:
            c, acc = e["compute"], e["accuracy"]
            ax.errorbar(c["mflops"], 100 * acc["mean"], yerr=100 * (acc["sd"] or 0), fmt="o",
                        capsize=3, label=f"Sonic {model} ({c['params_m']:.2f} M)")
    for e in ensembles or []:
        if len(e["folds"]) != len(results["folds"]):  # a development-fold ensemble: no point
            continue
        c, acc = e["compute"], e["accuracy"]
        what = e["model"] if " + " in e["model"] else f"{len(e['members'])} × {e['model']}"
        ax.errorbar(c["mflops"], 100 * acc["mean"], yerr=100 * (acc["sd"] or 0), fmt="D",
                    capsize=3, label=f"Sonic {what}, averaged ({c['params_m']:.2f} M)"
                                     + elsewhere(e["machine"], results))
    ax.set_xscale("log")
    ax.set_xlim(1, 3000)
    ax.set_xlabel("MFLOPs per clip (log scale)")
    ax.set_ylabel("ESC-50 five-fold accuracy (%)")
    ax.set_title(f"From scratch; Sonic: {results['machine']}, {results['date']}", fontsize=8)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0, -0.16))  # below: no overlap
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, metadata={"Software": None}, bbox_inches="tight")
    plt.close(fig)


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
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


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
         curves: str | None = None) -> str:
    """The ESC-50 page: how to run it, the five-fold figures, their learning curves (the plot
    at ``curves``), the ensembles, the study, the anchors."""
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
           "of development-fold runs has only that fold.", "",
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


def page_from_files(results_dir: Path, plot: Path, root: Path = Path("."),
                    curves: Path = CURVES_PLOT) -> str:
    """:func:`page` of ``results_dir``'s results.json and study.json (all paths relative to
    the repository ``root``; ``curves`` the learning curves' plot), for a page in docs/ (its
    links one folder up)."""
    results = json.loads((root / results_dir / "results.json").read_text())
    study_path = root / results_dir / "study.json"
    study = json.loads(study_path.read_text()) if study_path.exists() else []
    history_path = root / results_dir / "history.json"
    history = json.loads(history_path.read_text()) if history_path.exists() else []
    ensembles_path = root / results_dir / "ensembles.json"
    ensembles = json.loads(ensembles_path.read_text()) if ensembles_path.exists() else []
    confusion = results_dir / f"confusion_{best_model(results)}.png"
    return page(results, study, str(Path("..") / plot), str(Path("..") / confusion), history,
                ensembles, str(Path("..") / curves))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
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
        command = ("python -m sonic.cv_results ensemble --name " + args.name + "".join(
            f" --exp {x}" for x in args.exp) + f" --model {args.model}" + (
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
        write_text(args.doc, page_from_files(args.results, args.plot, curves=args.curves))
        results = json.loads((args.results / "results.json").read_text())
        extra = {name: json.loads((args.results / f"{name}.json").read_text())
                 if (args.results / f"{name}.json").exists() else []
                 for name in ("history", "ensembles")}
        accuracy_plot(results, args.plot, extra["history"], extra["ensembles"])
        written = [args.doc, args.plot]
        if any("train_loss" in e for e in results["models"].values()):
            curves_plot(results, args.curves)
            written.append(args.curves)
        print("written " + ", ".join(map(str, written)))


if __name__ == "__main__":
    main()
