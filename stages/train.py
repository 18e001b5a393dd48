"""Stages ``train_cnn`` and ``train_resnet``: train one registered classifier on the cached mels."""
import argparse
import time
from pathlib import Path

import torch

from sonic.config import load_params
from sonic.models import build_model
from sonic.runtime import pick_device, seed_everything
from sonic.training.checkpoint import save_checkpoint
from sonic.training.data import load_classifier_data
from sonic.training.loop import fit, to_inputs
from sonic.training.report import write_history, write_metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--model", required=True, choices=["cnn", "resnet"])
    parser.add_argument("--features", type=Path, required=True)
    parser.add_argument("--split", type=Path, required=True)
    parser.add_argument("--augmented", type=Path, required=True)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--plots", type=Path, required=True)
    args = parser.parse_args()
    params = load_params(args.params)
    cfg, model_cfg = params.train, getattr(params, args.model)

    seed_everything(cfg.seed)
    device = pick_device(cfg.device)
    data = load_classifier_data(args.features, args.split,
                                args.augmented if cfg.use_augmented else None)
    model = build_model(args.model, model_cfg, len(data.classes))

    def on_best(model, epoch, metrics):
        save_checkpoint(args.checkpoint, args.model, model, data.classes, params.features,
                        data.mean, data.std, **metrics)

    t0 = time.perf_counter()
    result = fit(model, to_inputs(data.x_train, data.mean, data.std), torch.tensor(data.y_train),
                 to_inputs(data.x_val, data.mean, data.std), torch.tensor(data.y_val),
                 cfg, device, on_best, desc=args.model)
    write_history(args.plots, result.history)
    write_metrics(args.metrics, {
        "val_accuracy": result.best["val_accuracy"], "val_loss": result.best["val_loss"],
        "best_epoch": result.best_epoch, "epochs_run": len(result.history),
        "train_samples": len(data.y_train), "val_samples": len(data.y_val),
        "parameters": sum(p.numel() for p in model.parameters()),
        "precision": "bf16" if result.bf16 else "fp32", "device": device.type,
        "samples_per_s": result.samples_per_s, "wall_time_s": time.perf_counter() - t0,
    })
    print(f"{args.model}: best val_accuracy {result.best['val_accuracy']:.3f} at epoch "
          f"{result.best_epoch}/{len(result.history)} ({result.samples_per_s:.1f} samples/s, "
          f"{'bf16' if result.bf16 else 'fp32'} on {device.type})")


if __name__ == "__main__":
    main()
