"""How well "none of these" works: an open-set measurement of the unknown score.

Known classes are the ones the models trained on; unknown ones they never heard. Three lists of
files: ``calibrate`` (known classes, clips that trained nothing: the val split), ``known``
(known classes, held out: the test split) and ``unknown`` (only classes the models never saw).
For two scores, higher meaning "more likely known":

- **max softmax** (``msp``), the score ``--unknown-threshold`` uses (:mod:`sonic.inference.unknown`);
- **energy** (``energy``): ``logsumexp`` of the logits (Liu et al., 2020, "Energy-based
  Out-of-distribution Detection"), of the classifiers' mean logits for the ensemble;

both averaged over a clip's windows, it reports the AUROC of known against unknown, and, with
the threshold calibrated on ``calibrate`` to keep ``keep`` of its clips (95 % by default), the
share of ``known`` clips kept and of ``unknown`` clips rejected. The closed-set accuracy on
``known`` comes with it when its list has labels.

    python -m sonic.inference.openset --models-dir data/models --model resnet \\
        --calibrate val.csv --known test.csv --unknown unknown.csv --out openset.json

Each list is a CSV with a ``path`` column (and ``label`` for ``known``), or a text file of paths.
With ``--pipeline DIR`` (a project that ran ``dvc repro`` with ``data.classes`` set) the lists come
from the pipeline itself: ``calibrate`` its val split, ``known`` its test split, and ``unknown``
every clip of the data set (``params.yaml``'s ``data`` without its class filter) whose label the
models never saw::

    python -m sonic.inference.openset --pipeline . --model resnet --out openset.json
"""
from __future__ import annotations

import argparse
import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from sonic.inference.predictor import ENSEMBLE, Predictor
from sonic.inference.unknown import DEFAULT_KEEP, calibrate_threshold
from sonic.inference.windows import load_windows
from sonic.progress import progress
from sonic.runtime import write_json

SCORES = ("msp", "energy")


@dataclass
class Scored:
    """Per-clip scores of one list of files (unreadable files are left out and counted)."""

    paths: list[str]
    msp: np.ndarray
    energy: np.ndarray
    top: np.ndarray  # index of the top class
    failed: list[str]


def score_files(predictor: Predictor, paths: list[str], model: str | None = None,
                desc: str = "score") -> Scored:
    """Max softmax and energy per clip (each the mean over the clip's windows)."""
    model = predictor.resolve(model)
    windowing = predictor.windowing()
    kept, msp, energy, top, failed = [], [], [], [], []
    for path in progress(paths, desc=desc, unit="clip"):
        clip = load_windows(path, predictor.features, windowing, predictor.limits)
        if clip.error is not None:
            failed.append(f"{path}: {clip.error}")
            continue
        members = predictor.member_logits(clip.mels, model)  # one forward pass per model
        probs = torch.stack([m.softmax(-1) for m in members]).mean(dim=0).numpy()  # = window_probs
        logits = torch.stack(members).mean(dim=0)  # the ensemble's energy: of the mean logits
        kept.append(str(path))
        msp.append(float(probs.max(axis=-1).mean()))
        energy.append(float(torch.logsumexp(logits, dim=-1).mean()))
        top.append(int(probs.mean(axis=0).argmax()))
    return Scored(kept, np.array(msp), np.array(energy), np.array(top, dtype=int), failed)


def auroc(known: np.ndarray, unknown: np.ndarray) -> float:
    """Area under the ROC curve of telling known (positive) from unknown by the score."""
    y = np.r_[np.ones(len(known)), np.zeros(len(unknown))]
    return float(roc_auc_score(y, np.r_[known, unknown]))


def evaluate(calibrate: Scored, known: Scored, unknown: Scored, keep: float = DEFAULT_KEEP,
             labels: list[str] | None = None, classes: list[str] | None = None) -> dict:
    """The open-set figures for both scores; ``labels`` (per ``known`` path) adds accuracy."""
    if min(len(calibrate.paths), len(known.paths), len(unknown.paths)) == 0:
        raise ValueError("every list needs at least one readable clip")
    report: dict = {"n": {"calibrate": len(calibrate.paths), "known": len(known.paths),
                          "unknown": len(unknown.paths)},
                    "keep": keep, "failed": calibrate.failed + known.failed + unknown.failed}
    for name in SCORES:
        threshold = calibrate_threshold(getattr(calibrate, name), keep)
        k, u = getattr(known, name), getattr(unknown, name)
        report[name] = {"auroc": round(auroc(k, u), 4), "threshold": round(threshold, 6),
                        "known_kept": round(float((k >= threshold).mean()), 4),
                        "unknown_rejected": round(float((u < threshold).mean()), 4)}
    if labels is not None and classes is not None:
        predicted = [classes[i] for i in known.top]
        report["known_accuracy"] = round(float(np.mean([p == t for p, t in
                                                        zip(predicted, labels, strict=True)])), 4)
    return report


def read_list(path: Path) -> tuple[list[str], list[str] | None]:
    """Paths (and labels, if a ``label`` column exists) from a CSV with ``path``, or a text
    file of one path per line."""
    text = path.read_text()
    first = text.splitlines()[0] if text.strip() else ""
    if "path" in [c.strip() for c in first.split(",")]:
        rows = list(csv.DictReader(text.splitlines()))
        labels = [r["label"] for r in rows] if "label" in rows[0] else None
        return [r["path"] for r in rows], labels
    return [line.strip() for line in text.splitlines() if line.strip()], None


def pipeline_lists(root: Path, known_classes: list[str]
                   ) -> dict[str, tuple[list[str], list[str] | None]]:
    """The three lists of a pipeline run in ``root``: val and test clips of ``data/split.csv``
    (their files from ``data/features/index.csv``) and the data set's clips of other classes."""
    import dataclasses

    from sonic.audio.layouts import discover
    from sonic.config.data import DataConfig
    from sonic.config.parse import load_sections

    index = {r["clip_id"]: r for r in csv.DictReader((root / "data/features/index.csv").open())}
    split = list(csv.DictReader((root / "data/split.csv").open()))
    role = {name: [r for r in split if r["role"] == name] for name in ("val", "test")}
    if not role["val"] or not role["test"]:
        raise ValueError(f"{root}/data/split.csv needs val and test clips (split.select: inner)")
    data = load_sections(root / "params.yaml", data=DataConfig).data
    if data.classes is None:
        raise ValueError(f"{root}/params.yaml: data.classes is not set, so no class was held "
                         "back; train on some classes (data.classes) and score the rest")
    data = dataclasses.replace(data, classes=None)
    if not Path(data.root).is_absolute():
        data = dataclasses.replace(data, root=str(root / data.root))
    clips, _ = discover(data)
    unknown = [c for c in clips if c.label is not None and c.label not in known_classes]
    return {"calibrate": ([index[r["clip_id"]]["source"] for r in role["val"]], None),
            "known": ([index[r["clip_id"]]["source"] for r in role["test"]],
                      [r["label"] for r in role["test"]]),
            "unknown": ([str(c.path) for c in unknown], [c.label for c in unknown])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sonic.inference.openset",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--models-dir", type=Path,
                        help="default data/models (of --pipeline where given)")
    parser.add_argument("--model", default=ENSEMBLE, help="cnn, resnet, ensemble or a path")
    parser.add_argument("--pipeline", type=Path,
                        help="take the three lists from this project's pipeline run instead")
    parser.add_argument("--calibrate", type=Path,
                        help="clips of the known classes that trained nothing (the val split)")
    parser.add_argument("--known", type=Path,
                        help="held-out clips of the known classes (with a label column: accuracy)")
    parser.add_argument("--unknown", type=Path,
                        help="clips of classes the models never saw")
    parser.add_argument("--keep", type=float, default=DEFAULT_KEEP,
                        help="share of calibration clips the threshold keeps (default 0.95)")
    parser.add_argument("--out", type=Path, help="write the report here as JSON")
    args = parser.parse_args(argv)
    names = ("calibrate", "known", "unknown")
    if args.pipeline is None and None in (args.calibrate, args.known, args.unknown):
        parser.error("give --calibrate, --known and --unknown, or --pipeline DIR")
    models_dir = args.models_dir or (args.pipeline or Path(".")) / "data/models"
    predictor = Predictor.load(args.model, models_dir)
    if args.pipeline is not None:
        try:
            lists = pipeline_lists(args.pipeline, predictor.classes)
        except (OSError, ValueError, KeyError) as err:
            parser.exit(2, f"openset: {err}\n")
        if not lists["unknown"][0]:
            parser.exit(2, f"openset: {args.pipeline}: every class of the data set was trained "
                           "on; nothing is unknown\n")
    else:
        lists = {name: read_list(getattr(args, name)) for name in names}
    scored = {name: score_files(predictor, paths, desc=name)
              for name, (paths, _) in lists.items()}
    labels = lists["known"][1]
    if labels is not None:  # align the labels with the readable clips
        by_path = dict(zip(lists["known"][0], labels, strict=True))
        labels = [by_path[p] for p in scored["known"].paths]
    report = {"model": args.model,
              "held_back": sorted(set(lists["unknown"][1] or [])) or None, **evaluate(scored["calibrate"], scored["known"],
                                              scored["unknown"], args.keep, labels,
                                              predictor.classes)}
    if args.out:
        write_json(args.out, report)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
