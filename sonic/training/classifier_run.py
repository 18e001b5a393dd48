"""Stages ``train_cnn`` and ``train_resnet``'s work: data → :func:`~sonic.training.loop.fit` →
checkpoint, DVCLive folder and run details, resuming a killed run.

The resume key (:func:`~sonic.training.resume.fingerprint`) covers the params sections the stage
reads, the bytes of its inputs, the code it runs and the number of processes; any change starts
afresh.
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import Any

from dvclive import Live
import torch
from torch import nn

from sonic.config.features import FeatureConfig
from sonic.config.train import TrainConfig
from sonic.models import CONFIGS, build_model
from sonic.models.checkpoint import save_checkpoint
from sonic.report import open_live, rounded, write_details
from sonic.runtime import pick_device, seed_everything
from sonic.training import distributed
from sonic.training.data import ClassifierData, load_classifier_data
from sonic.training.distill import SoftTargets, load_teachers, soft_targets
from sonic.training.loop import TrainResult, fit, keep_best
from sonic.training.resume import ResumeFile, fingerprint


def stage_arguments(description: str) -> argparse.ArgumentParser:
    """The command line of a classifier-training stage (``train_*``, ``cv_train``,
    ``cv_distill``): which model, and every path, as ``dvc.yaml`` passes them."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--model", required=True, choices=sorted(CONFIGS))
    parser.add_argument("--features", type=Path, required=True)
    parser.add_argument("--split", type=Path, required=True)
    parser.add_argument("--augmented", type=Path, required=True)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--live", type=Path, required=True, help="DVCLive folder")
    parser.add_argument("--resume", type=Path, help="resume state (kept until the run ends)")
    return parser


def log_epoch(live: Live | None, record: dict) -> None:
    """One epoch's figures as DVCLive steps (``dvc exp show`` of a running experiment shows the
    summary); nothing on processes other than the first (``live`` None)."""
    if live is None:
        return
    live.step = record["epoch"]
    live.log_metric("train/loss", record["train_loss"])
    if "val_loss" in record:
        live.log_metric("val/loss", record["val_loss"])
        live.log_metric("val/accuracy", record["val_accuracy"])
    live.log_metric("lr", record["lr"])
    live.make_summary()


def resume_key(name: str, model_cfg: Any, cfg: TrainConfig, features: FeatureConfig,
               select: str, inputs: list[Path], code: list[Path], world: int,
               distill: Any = None) -> str:
    """The fingerprint a resume file must carry to be continued."""
    params = {"features": dataclasses.asdict(features), "train": dataclasses.asdict(cfg),
              "split.select": select, name: dataclasses.asdict(model_cfg), "world": world}
    if distill is not None:
        params["distill"] = dataclasses.asdict(distill)
    return fingerprint(params, inputs, code)


def run_details(data: ClassifierData, model: nn.Module, result: TrainResult, select: bool,
                device_type: str, world: int, seconds: float,
                soft: SoftTargets | None = None) -> dict:
    """``run.json``: how the kept model was trained and how fast (a student: from which
    teachers, and how well they and their mean fit the training labels)."""
    teachers = {} if soft is None else {"teachers": soft.teachers,
                                        "teachers_train_accuracy": soft.train_accuracy}
    return {**teachers, "selection": "best epoch on val" if select else "last epoch",
            "train_clips": data.train_clips, "train_samples": len(data.train),
            "val_clips": len(data.val), "parameters": sum(p.numel() for p in model.parameters()),
            "precision": "bf16" if result.bf16 else "fp32", "device": device_type,
            "processes": world, "threads": torch.get_num_threads(),
            "resumed_after_epoch": result.resumed_from,
            "samples_per_s": result.samples_per_s, "wall_time_s": seconds}


def train_classifier(name: str, model_cfg: Any, cfg: TrainConfig, features: FeatureConfig,
                     select: str, *, features_dir: Path, split: Path, augmented: Path,
                     checkpoint: Path, live_dir: Path, resume: Path | None,
                     code: list[Path], teachers: Path | None = None, distill: Any = None) -> None:
    """Train the registered classifier ``name`` on the cached mels (``augmented`` copies too
    when ``cfg.use_augmented``); write its checkpoint, ``live_dir`` and ``live_dir/run.json``.

    ``select`` is ``split.select`` (``inner``: the best epoch on val; ``last``). With
    ``teachers`` (a folder of checkpoints) and ``distill`` (the params section) it trains a
    student (:mod:`sonic.training.distill`). Under torchrun every process trains; only the
    first writes."""
    job, device = distributed.setup(pick_device(cfg.device))
    t0 = time.perf_counter()
    seed_everything(cfg.seed)
    augmented = augmented if cfg.use_augmented else None
    data = load_classifier_data(features_dir, split, augmented)
    model = build_model(name, model_cfg, len(data.classes))
    inputs = [features_dir / "mels.npy", features_dir / "index.csv", split]
    if augmented is not None:
        inputs += [augmented / "mels.npy", augmented / "index.csv"]
    soft = None
    if teachers is not None:
        soft = soft_targets(load_teachers(teachers, data.classes, features, data.mean, data.std),
                            data.train, distill.temperature)
        data.train = data.train.with_soft(soft.probs)
        inputs += sorted(Path(teachers).glob("*.pt"))
    key = resume_key(name, model_cfg, cfg, features, select, inputs, code, job.world,
                     distill if teachers is not None else None)
    state = ResumeFile(resume, key) if resume else None
    live = open_live(live_dir) if job.main else None
    result = fit(model, data.train, data.val, cfg, device, select=select == "inner",
                 on_epoch=lambda record: log_epoch(live, record), resume=state, job=job,
                 desc=name if soft is None else f"student {name}",
                 distill=distill if soft is not None else None)
    if job.main:
        best = result.best
        save_checkpoint(checkpoint, name, keep_best(model, result), data.classes, features,
                        data.mean, data.std, crop_frames=cfg.crop_frames,
                        test_crops=cfg.test_crops, **best,
                        **({} if soft is None else {"teachers": soft.teachers}))
        headline = {"best_epoch": result.best_epoch, "epochs": len(result.history)}
        if "val_accuracy" in best:
            headline["val"] = {"accuracy": best["val_accuracy"], "loss": best["val_loss"]}
        live.summary = rounded(headline)
        live.end()
        write_details(live_dir / "run.json", run_details(
            data, model, result, select == "inner", device.type, job.world,
            time.perf_counter() - t0, soft))
        if state is not None:
            state.clear()
        shown = f"val_accuracy {best['val_accuracy']:.3f} " if "val_accuracy" in best else ""
        print(f"{name}: kept epoch {result.best_epoch}/{len(result.history)} {shown}"
              f"({result.samples_per_s:.1f} samples/s, {'bf16' if result.bf16 else 'fp32'} on "
              f"{device.type}, {job.world} process{'es' if job.world > 1 else ''})")
    distributed.teardown(job)
