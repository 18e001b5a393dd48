"""One training loop for every classifier: set LR, forward, loss, backward, clip, step, evaluate,
select — in plain sight, no callback framework.

Batches stream from the memory-mapped features through a ``DataLoader``; SpecAugment and MixUp
run batch-wise on the training device. Under torchrun each process trains on its share of every
global batch (``DistributedSampler``) and DDP averages the gradients. After every epoch the state
goes to a resume file (:mod:`sonic.training.resume`).
"""
from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import BatchSampler, DataLoader, DistributedSampler, SequentialSampler
from tqdm import tqdm

from sonic.config.train import TrainConfig
from sonic.precision import autocast, memory_format, use_bf16
from sonic.progress import progress
from sonic.training.data import MelSet
from sonic.training.distill import distill_loss, mix_targets
from sonic.training.distributed import Dist
from sonic.training.regularize import (bc_mix, mixed_cross_entropy, mixup, random_crop,
                                      spec_augment, time_shift)
from sonic.training.resume import ResumeFile, epoch_seed, resume_history


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


def batches(data: MelSet, sampler, batch_size: int, workers: int,
            device: torch.device) -> DataLoader:
    """Whole batches from ``data``: ``sampler``'s positions, ``batch_size`` at a time, read in
    one call each (``MelSet`` takes a list of positions), in ``workers`` processes (0: here)."""
    return DataLoader(data, sampler=BatchSampler(sampler, batch_size, drop_last=False),
                      batch_size=None, num_workers=workers, pin_memory=device.type == "cuda",
                      persistent_workers=workers > 0)


def mix_batch(xb: torch.Tensor, yb: torch.Tensor, cfg: TrainConfig, data: MelSet,
              gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                             float | torch.Tensor]:
    """MixUp or between-class mixing on ``cfg.mixup_prob`` of the batches: the (maybe mixed)
    normalised batch, ``yb`` and its partners' ``yb`` (labels, or the examples' positions) and
    the first one's weight (a float, or (B,))."""
    if cfg.mixing == "bc":
        if cfg.mixup_prob <= 0 or torch.rand(1, generator=gen).item() >= cfg.mixup_prob:
            return xb, yb, yb, 1.0
        mixed, y_a, y_b, r = bc_mix(xb * data.std + data.mean, yb, gen)  # in dB, then back
        return (mixed - data.mean) / data.std, y_a, y_b, r
    if cfg.mixup_alpha > 0 and torch.rand(1, generator=gen).item() < cfg.mixup_prob:
        return mixup(xb, yb, cfg.mixup_alpha, gen)
    return xb, yb, yb, 1.0


def weight_average(model: nn.Module, decay: float) -> AveragedModel | None:
    """An exponential moving average of ``model``'s weights and BN statistics, updated after
    every step (None when ``decay`` is 0)."""
    if decay <= 0:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


@torch.no_grad()
def evaluate(model: nn.Module, data: MelSet, batch_size: int, device: torch.device, bf16: bool,
             channels_last: bool, workers: int = 0, job: Dist = Dist()) -> dict[str, float]:
    """Validation loss (plain cross-entropy) and accuracy over ``data``; under DDP each process
    scores every ``world``-th clip and the sums are added up."""
    model.eval()
    share = data.take(range(job.rank, len(data), job.world))
    loss = correct = 0.0
    for xb, yb in batches(share, SequentialSampler(share), batch_size, workers, device):
        xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        with autocast(device, bf16):
            logits = model(xb)["logits"].float()
        loss += F.cross_entropy(logits, yb, reduction="sum").item()
        correct += (logits.argmax(-1) == yb).sum().item()
    loss, correct = job.sum([loss, correct], device)
    return {"val_loss": loss / len(data), "val_accuracy": correct / len(data)}


@dataclass
class TrainResult:
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best: dict[str, float] = field(default_factory=dict)
    best_state: dict[str, torch.Tensor] = field(default_factory=dict)  # CPU copy of the weights
    samples_per_s: float = 0.0
    bf16: bool = False
    resumed_from: int = 0  # the last epoch a resume file held (0: trained from the start)


@dataclass
class Run:
    """Everything one ``fit`` changes as it trains (and a resume file restores)."""

    model: nn.Module
    net: nn.Module  # ``model``, or its DDP wrapper
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    sampler: DistributedSampler
    loader: DataLoader
    stopper: EarlyStopping
    ema: AveragedModel | None
    bf16: bool
    channels_last: bool
    distill: Any = None  # the ``distill`` params section (weight, temperature) of a student
    seen: int = 0  # training samples, all processes
    train_time: float = 0.0  # seconds in training steps

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    @property
    def kept(self) -> nn.Module:
        """The weights evaluated and kept: the average where there is one."""
        return self.model if self.ema is None else self.ema.module


def start_run(model: nn.Module, train: MelSet, cfg: TrainConfig, device: torch.device,
              job: Dist, distill: Any = None) -> Run:
    """Model on the device (DDP-wrapped under torchrun), AdamW, the LR schedule over every
    step, the sampler and loader of this process's share, early stopping and the average."""
    bf16 = use_bf16(cfg.precision, device)
    fmt = memory_format(model, device, bf16, cfg.channels_last)
    model.to(device).to(memory_format=fmt)
    net = model
    if job.world > 1:
        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                      else None)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sampler = DistributedSampler(train, num_replicas=job.world, rank=job.rank, shuffle=True,
                                 seed=cfg.seed)
    loader = batches(train, sampler, cfg.batch_size // job.world, cfg.workers, device)
    sched = make_scheduler(opt, cfg, cfg.epochs * len(loader))
    return Run(model, net, opt, sched, sampler, loader, EarlyStopping(cfg.monitor, cfg.patience),
               weight_average(model, cfg.ema), bf16, fmt == torch.channels_last, distill)


def saved_state(run: Run, result: TrainResult) -> dict:
    """What a resume file holds after an epoch."""
    return {"model": run.model.state_dict(), "optimizer": run.opt.state_dict(),
            "scheduler": run.sched.state_dict(), "stopper": dataclasses.asdict(run.stopper),
            "history": result.history, "best_epoch": result.best_epoch,
            "best_state": result.best_state, "seen": run.seen, "train_time": run.train_time,
            "ema": None if run.ema is None else run.ema.state_dict()}


def restore(run: Run, result: TrainResult, saved: dict) -> None:
    """Put a :func:`saved_state` back into ``run`` and ``result``."""
    run.model.load_state_dict(saved["model"])
    run.opt.load_state_dict(saved["optimizer"])
    if run.ema is not None:
        run.ema.load_state_dict(saved["ema"])
    run.sched.load_state_dict(saved["scheduler"])
    run.stopper = EarlyStopping(**saved["stopper"])
    result.history, result.best_epoch = saved["history"], saved["best_epoch"]
    result.best_state = saved["best_state"]
    result.best = result.history[result.best_epoch - 1] if result.best_epoch else {}
    run.seen, run.train_time = saved["seen"], saved["train_time"]
    result.resumed_from = len(result.history)


def train_step(run: Run, xb: torch.Tensor, yb: torch.Tensor, cfg: TrainConfig, train: MelSet,
               gen: torch.Generator, soft: torch.Tensor | None = None) -> torch.Tensor:
    """One optimiser step on a batch (B, 1, n_mels, T), (B,) already on the device: shift,
    crop, SpecAugment, mixing, forward, loss, backward, clip, step, schedule, average. A
    student's batch brings its soft targets (B, C), mixed as its labels are. Returns the loss
    (a scalar tensor)."""
    xb = time_shift(xb, cfg.time_shift, gen)
    xb = random_crop(xb, cfg.crop_frames, gen)
    xb = spec_augment(xb, cfg.freq_masks, cfg.freq_mask_width, cfg.time_masks,
                      cfg.time_mask_width, gen)
    # mixed by position, so that labels and soft targets follow the same partners
    xb, i_a, i_b, lam = mix_batch(xb, torch.arange(len(yb), device=yb.device), cfg, train, gen)
    xb = xb.contiguous(memory_format=run.memory_format)
    with autocast(xb.device, run.bf16):
        logits = run.net(xb)["logits"].float()
    loss = mixed_cross_entropy(logits, yb[i_a], yb[i_b], lam, cfg.label_smoothing)
    if soft is not None:
        target = mix_targets(soft, i_a, i_b, lam)
        loss = ((1 - run.distill.weight) * loss
                + run.distill.weight * distill_loss(logits, target, run.distill.temperature))
    run.opt.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.grad_clip > 0:
        nn.utils.clip_grad_norm_(run.model.parameters(), cfg.grad_clip)
    run.opt.step()
    run.sched.step()
    if run.ema is not None:
        run.ema.update_parameters(run.model)
    return loss


def train_epoch(run: Run, train: MelSet, cfg: TrainConfig, epoch: int, device: torch.device,
                job: Dist, desc: str) -> float:
    """One pass over this process's share of ``train``; the mean training loss over every
    process. Masks, mixing and dropout draw from seeds of ``(seed, epoch, rank)``."""
    run.net.train()
    run.sampler.set_epoch(epoch)
    seed = epoch_seed(cfg.seed, epoch, job.rank)
    gen = torch.Generator().manual_seed(seed)  # masks and MixUp
    torch.manual_seed(seed + 1)  # dropout, on every device
    total = count = 0.0
    t0 = time.perf_counter()
    bar = progress(run.loader, desc=f"{desc} {epoch}/{cfg.epochs}", unit="batch", lines=0,
                   leave=False, disable=not job.main)  # lines=0: fit writes the epoch line
    for xb, yb, *soft in bar:  # (B, 1, n_mels, T), (B,): this process's share of a global batch
        xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
        soft = soft[0].to(device, non_blocking=True) if soft else None  # a student's (B, C)
        loss = train_step(run, xb, yb, cfg, train, gen, soft)
        total += loss.item() * len(yb)
        count += len(yb)
        bar.set_postfix(loss=f"{loss.item():.3f}")
    run.train_time += time.perf_counter() - t0
    total, count = job.sum([total, count], device)
    run.seen += int(count)
    return total / count


def keep_if_best(run: Run, result: TrainResult, metrics: dict[str, float], select: bool) -> None:
    """Record the epoch; keep its weights when it is the best so far (without selection: the
    last)."""
    result.history.append(metrics)
    if run.stopper.step(metrics) if select else True:
        result.best_epoch, result.best = metrics["epoch"], metrics
        result.best_state = {k: v.detach().cpu().clone()
                             for k, v in run.kept.state_dict().items()}


def fit(model: nn.Module, train: MelSet, val: MelSet, cfg: TrainConfig, device: torch.device, *,
        select: bool = True, on_epoch: Callable[[dict], None] | None = None,
        resume: ResumeFile | None = None, job: Dist = Dist(), desc: str = "train",
        distill: Any = None) -> TrainResult:
    """Train ``model``; return the history and the kept epoch's weights.

    ``select``: early stopping and the best epoch by ``cfg.monitor`` on ``val`` (needs clips);
    otherwise all ``cfg.epochs`` run and the last is kept (``val``, if any, is only scored).
    ``on_epoch`` sees every epoch's record in order, those restored from ``resume`` first.
    ``cfg.batch_size`` is the global batch: each of ``job.world`` processes takes an equal
    share, so one step sees the same clips whatever the number of processes.
    ``distill`` (the params section: weight, temperature) trains a student on the soft targets
    ``train`` carries (:meth:`MelSet.with_soft`).
    """
    if (distill is None) != (train.soft is None):
        raise ValueError("a student needs both the distill params and soft targets on its "
                         "training set")
    if select and len(val) == 0:
        raise ValueError("selecting the best epoch needs validation clips; with "
                         "split.select: last no epoch is selected")
    on_epoch = on_epoch or (lambda record: None)
    run = start_run(model, train, cfg, device, job, distill)
    result = TrainResult(bf16=run.bf16)
    for record in resume_history(resume, lambda saved: restore(run, result, saved), desc,
                                 announce=job.main):
        on_epoch(record)
    for epoch in range(len(result.history) + 1, cfg.epochs + 1):
        if select and run.stopper.should_stop:
            break
        metrics = {"epoch": epoch, "train_loss": train_epoch(run, train, cfg, epoch, device,
                                                             job, desc)}
        if len(val):
            metrics |= evaluate(run.kept, val, cfg.batch_size, device, run.bf16,
                                run.channels_last, cfg.workers, job)
        metrics["lr"] = run.opt.param_groups[0]["lr"]
        keep_if_best(run, result, metrics, select)
        on_epoch(metrics)
        if job.main:
            shown = " ".join(f"{k} {v:.3f}" for k, v in metrics.items() if k not in ("epoch", "lr"))
            tqdm.write(f"{desc} epoch {epoch}: {shown}")
            if resume is not None:
                resume.save(saved_state(run, result))
        job.barrier()  # no process runs ahead of the saved state
        if select and run.stopper.should_stop and job.main:
            tqdm.write(f"{desc}: early stop after epoch {epoch} (best epoch {result.best_epoch})")
    result.samples_per_s = run.seen / max(run.train_time, 1e-9)
    return result


def keep_best(model: nn.Module, result: TrainResult) -> nn.Module:
    """``model`` (moved to the CPU) with the kept epoch's weights loaded."""
    model = copy.deepcopy(model).cpu() if next(model.parameters()).device.type != "cpu" else model
    model.load_state_dict(result.best_state)
    return model.to(memory_format=torch.contiguous_format)
