"""One training loop for every classifier: set LR, forward, loss, backward, clip, step, evaluate,
checkpoint — in plain sight, no callback framework."""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from sonic.config import TrainConfig
from sonic.training.regularize import mixed_cross_entropy, mixup, spec_augment


def use_bf16(cfg: TrainConfig, device: torch.device) -> bool:
    """bf16 autocast where the hardware runs it natively (CUDA with bf16, CPUs with
    avx512_bf16/AMX); fp32 elsewhere or when asked."""
    if cfg.precision != "auto":
        return cfg.precision == "bf16"
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def autocast(device: torch.device, bf16: bool):
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def channels_last_safe(model: nn.Module, device: torch.device, bf16: bool) -> bool:
    """False for the one case known to crash: oneDNN's CPU bf16 kernels corrupt memory on
    channels_last convolutions narrower than 16 channels (seen with torch 2.11, a ResNet of
    width 4-8 on 32x87 inputs). Such toy widths gain nothing from channels_last anyway."""
    if device.type != "cpu" or not bf16:
        return True
    return all(m.out_channels >= 16 for m in model.modules() if isinstance(m, nn.Conv2d))


def make_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig, steps: int):
    if cfg.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps,
                                                   pct_start=cfg.pct_start)
    return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)


@dataclass
class EarlyStopping:
    """Tracks the best epoch by ``monitor``; ``step`` says whether this epoch is the new best."""

    monitor: str
    patience: int
    best: float = math.inf
    best_loss: float = math.inf
    bad_epochs: int = 0

    def step(self, metrics: dict[str, float]) -> bool:
        score = -metrics["val_accuracy"] if self.monitor == "val_accuracy" else metrics["val_loss"]
        # a tie on accuracy goes to the lower validation loss
        better = score < self.best - 1e-9 or (score <= self.best + 1e-9
                                              and metrics["val_loss"] < self.best_loss)
        if better:
            self.best, self.best_loss, self.bad_epochs = score, metrics["val_loss"], 0
        else:
            self.bad_epochs += 1
        return better

    @property
    def should_stop(self) -> bool:
        return self.bad_epochs >= self.patience


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int,
             device: torch.device, bf16: bool, channels_last: bool) -> dict[str, float]:
    """Validation loss (plain cross-entropy) and accuracy over (N, 1, M, T) inputs."""
    model.eval()
    loss, correct = 0.0, 0
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size].to(device)
        yb = y[start:start + batch_size].to(device)
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        with autocast(device, bf16):
            logits = model(xb)["logits"].float()
        loss += F.cross_entropy(logits, yb, reduction="sum").item()
        correct += (logits.argmax(-1) == yb).sum().item()
    return {"val_loss": loss / len(x), "val_accuracy": correct / len(x)}


@dataclass
class TrainResult:
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best: dict[str, float] = field(default_factory=dict)
    samples_per_s: float = 0.0
    bf16: bool = False


def fit(model: nn.Module, x_train: torch.Tensor, y_train: torch.Tensor, x_val: torch.Tensor,
        y_val: torch.Tensor, cfg: TrainConfig, device: torch.device,
        on_best: Callable[[nn.Module, int, dict], None], desc: str = "train") -> TrainResult:
    """Train ``model`` on normalised (N, 1, n_mels, T) tensors; call ``on_best`` at each new best.

    Shuffling, masks and MixUp draw from one CPU generator seeded with ``cfg.seed``, so a run is
    repeatable on CPU.
    """
    gen = torch.Generator().manual_seed(cfg.seed)
    bf16 = use_bf16(cfg, device)
    channels_last = cfg.channels_last and channels_last_safe(model, device, bf16)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model.to(device).to(memory_format=memory_format)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(x_train) / cfg.batch_size)
    sched = make_scheduler(opt, cfg, cfg.epochs * steps_per_epoch)
    stopper = EarlyStopping(cfg.monitor, cfg.patience)
    result, seen, train_time = TrainResult(bf16=bf16), 0, 0.0

    for epoch in range(1, cfg.epochs + 1):
        model.train()
        perm = torch.randperm(len(x_train), generator=gen)
        total, t0 = 0.0, time.perf_counter()
        bar = tqdm(range(0, len(perm), cfg.batch_size), desc=f"{desc} {epoch}/{cfg.epochs}",
                   unit="batch", leave=False)
        for start in bar:
            idx = perm[start:start + cfg.batch_size]
            xb, yb = x_train[idx], y_train[idx]  # (B, 1, n_mels, T), (B,)
            xb = spec_augment(xb, cfg.freq_masks, cfg.freq_mask_width, cfg.time_masks,
                              cfg.time_mask_width, gen)
            y_b, lam = yb, 1.0
            if cfg.mixup_alpha > 0 and torch.rand(1, generator=gen).item() < cfg.mixup_prob:
                xb, yb, y_b, lam = mixup(xb, yb, cfg.mixup_alpha, gen)
            xb = xb.to(device, memory_format=memory_format)
            yb, y_b = yb.to(device), y_b.to(device)
            with autocast(device, bf16):
                logits = model(xb)["logits"]
            loss = mixed_cross_entropy(logits.float(), yb, y_b, lam, cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
            bar.set_postfix(loss=f"{loss.item():.3f}")
        train_time += time.perf_counter() - t0
        seen += len(perm)

        metrics = {"epoch": epoch, "train_loss": total / len(perm),
                   **evaluate(model, x_val, y_val, cfg.batch_size, device, bf16,
                              channels_last),
                   "lr": opt.param_groups[0]["lr"]}
        result.history.append(metrics)
        if stopper.step(metrics):
            result.best_epoch, result.best = epoch, metrics
            on_best(model, epoch, metrics)
        tqdm.write(f"{desc} epoch {epoch}: train_loss {metrics['train_loss']:.3f} "
                   f"val_loss {metrics['val_loss']:.3f} val_acc {metrics['val_accuracy']:.3f}")
        if stopper.should_stop:
            tqdm.write(f"{desc}: early stop after epoch {epoch} (best epoch {result.best_epoch})")
            break
    result.samples_per_s = seen / max(train_time, 1e-9)
    return result


def to_inputs(db: np.ndarray, mean: float, std: float) -> torch.Tensor:
    """(N, n_mels, T) dB → (N, 1, n_mels, T) normalised float32 tensor."""
    return torch.from_numpy(((np.asarray(db, dtype=np.float32) - mean) / std)[:, None])
