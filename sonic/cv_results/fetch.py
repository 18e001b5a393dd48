"""Finished cross-validation experiments read through DVC: a fold's scores, predictions,
training curve and checkpoint, and an experiment's spectrograms, as the experiment (or commit)
left them in the cache or the remote, laid out as the ``cv_*`` stages leave ``data/cv``."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Sequence


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


LOSS_CURVE = "plots/metrics/train/loss.tsv"  # DVCLive's training loss per epoch, in a live folder


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
