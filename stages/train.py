"""Stages ``train_cnn`` and ``train_resnet``: train one registered classifier on the cached mels.

With ``train.nproc > 1`` the stage re-runs itself under torchrun; the same script runs under a
hand-made torchrun command across machines. Killed, it resumes from ``--resume`` on the next run
with the same params, data and code.
"""
import argparse
import dataclasses
import sys
import time
from pathlib import Path

from sonic.codedeps import code_deps
from sonic.config.features import FeatureConfig
from sonic.config.parse import load_sections
from sonic.config.split import SplitConfig
from sonic.config.train import TrainConfig
from sonic.models import CONFIGS, build_model
from sonic.runtime import pick_device, seed_everything
from sonic.training import distributed
from sonic.training.checkpoint import save_checkpoint
from sonic.training.data import load_classifier_data
from sonic.training.loop import fit, keep_best
from sonic.training.report import open_live, rounded, write_details
from sonic.training.resume import ResumeFile, fingerprint

# the resume key hashes every file the stage runs: its code deps in dvc.yaml
CODE = code_deps("stages.train")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--model", required=True, choices=["cnn", "resnet"])
    parser.add_argument("--features", type=Path, required=True)
    parser.add_argument("--split", type=Path, required=True)
    parser.add_argument("--augmented", type=Path, required=True)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--live", type=Path, required=True, help="DVCLive folder")
    parser.add_argument("--resume", type=Path, help="resume state (kept until the run ends)")
    args = parser.parse_args()
    params = load_sections(args.params, features=FeatureConfig, train=TrainConfig,
                           split=SplitConfig, **{args.model: CONFIGS[args.model]})
    cfg, model_cfg = params.train, getattr(params, args.model)
    status = distributed.relaunch(cfg.nproc, "stages.train")
    if status is not None:
        return status

    job, device = distributed.setup(pick_device(cfg.device))
    seed_everything(cfg.seed)
    augmented = args.augmented if cfg.use_augmented else None
    data = load_classifier_data(args.features, args.split, augmented)
    model = build_model(args.model, model_cfg, len(data.classes))
    select = params.split.select == "inner"
    inputs = [args.features / "mels.npy", args.features / "index.csv", args.split]
    if augmented is not None:
        inputs += [augmented / "mels.npy", augmented / "index.csv"]
    key = fingerprint({"features": dataclasses.asdict(params.features),
                       "train": dataclasses.asdict(cfg), "split.select": params.split.select,
                       args.model: dataclasses.asdict(model_cfg), "world": job.world},
                      inputs, CODE)
    resume = ResumeFile(args.resume, key) if args.resume else None

    live = open_live(args.live) if job.main else None

    def log_epoch(record: dict) -> None:
        if live is None:
            return
        live.step = record["epoch"]
        live.log_metric("train/loss", record["train_loss"])
        if "val_loss" in record:
            live.log_metric("val/loss", record["val_loss"])
            live.log_metric("val/accuracy", record["val_accuracy"])
        live.log_metric("lr", record["lr"])
        live.make_summary()  # `dvc exp show` of a running experiment shows this epoch

    t0 = time.perf_counter()
    result = fit(model, data.train, data.val, cfg, device, select=select, on_epoch=log_epoch,
                 resume=resume, job=job, desc=args.model)
    if job.main:
        best = result.best
        save_checkpoint(args.checkpoint, args.model, keep_best(model, result), data.classes,
                        params.features, data.mean, data.std, crop_frames=cfg.crop_frames,
                        test_crops=cfg.test_crops, **best)
        headline = {"best_epoch": result.best_epoch, "epochs": len(result.history)}
        if "val_accuracy" in best:
            headline["val"] = {"accuracy": best["val_accuracy"], "loss": best["val_loss"]}
        live.summary = rounded(headline)
        live.end()
        write_details(args.live / "run.json", {
            "selection": "best epoch on val" if select else "last epoch",
            "train_clips": data.train_clips, "train_samples": len(data.train),
            "val_clips": len(data.val), "parameters": sum(p.numel() for p in model.parameters()),
            "precision": "bf16" if result.bf16 else "fp32", "device": device.type,
            "processes": job.world, "resumed_after_epoch": result.resumed_from,
            "samples_per_s": result.samples_per_s, "wall_time_s": time.perf_counter() - t0,
        })
        if resume is not None:
            resume.clear()
        shown = f"val_accuracy {best['val_accuracy']:.3f} " if "val_accuracy" in best else ""
        print(f"{args.model}: kept epoch {result.best_epoch}/{len(result.history)} {shown}"
              f"({result.samples_per_s:.1f} samples/s, {'bf16' if result.bf16 else 'fp32'} on "
              f"{device.type}, {job.world} process{'es' if job.world > 1 else ''})")
    distributed.teardown(job)
    return 0


if __name__ == "__main__":
    sys.exit(main())
