"""The training-step benchmark: fp32 contiguous against Sonic's fast path (bf16 + channels_last)."""
from __future__ import annotations

import copy
import statistics
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sonic.config import TrainConfig
from sonic.models import build_model
from sonic.precision import autocast, channels_last_safe, use_bf16


def time_steps(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig,
               device: torch.device, bf16: bool, channels_last: bool, steps: int,
               warmup: int) -> dict[str, Any]:
    """``warmup`` untimed then ``steps`` timed training steps on the fixed batch ``x`` (B, 1, M, T).

    Each step is the loop's: forward (under autocast if ``bf16``), cross-entropy in fp32,
    backward, gradient clipping, AdamW step. Returns samples/s of the median step time (robust
    to other load on a shared machine) and every step's loss.
    """
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model.to(device).to(memory_format=fmt).train()
    xb, yb = x.to(device).contiguous(memory_format=fmt), y.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    torch.manual_seed(1)  # the same dropout draws in both modes
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    losses, times = [], []
    for _ in range(warmup + steps):
        t0 = time.perf_counter()
        with autocast(device, bf16):
            logits = model(xb)["logits"]
        loss = F.cross_entropy(logits.float(), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        losses.append(loss.item())  # waits for the device, as the training loop does
        times.append(time.perf_counter() - t0)
    out = {"samples_per_s": len(x) / statistics.median(times[warmup:]), "losses": losses}
    if device.type == "cuda":
        out["cuda_max_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return out


@torch.no_grad()
def logits_check(ref: nn.Module, fast: nn.Module, x: torch.Tensor, device: torch.device,
                 bf16: bool, channels_last: bool) -> dict[str, float]:
    """Eval-mode logits of the same weights, fp32 contiguous vs the fast path, on ``x``."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    ref.to(device).eval()
    fast.to(device).to(memory_format=fmt).eval()
    a = ref(x.to(device))["logits"].float()
    with autocast(device, bf16):
        b = fast(x.to(device).contiguous(memory_format=fmt))["logits"].float()
    return {"logits_max_abs_diff": (a - b).abs().max().item(),
            "logits_max_abs": a.abs().max().item(),
            "argmax_agreement": (a.argmax(-1) == b.argmax(-1)).float().mean().item()}


def bench_model(name: str, model_cfg: Any, cfg: TrainConfig, n_classes: int,
                shape: tuple[int, int, int, int], device: torch.device, steps: int,
                warmup: int) -> dict[str, Any]:
    """fp32 contiguous and fast-path training speed of model ``name`` on inputs ``shape``
    (B, 1, n_mels, n_frames), from the same initial weights."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=gen)
    y = torch.randint(n_classes, (shape[0],), generator=gen)
    torch.manual_seed(0)
    ref = build_model(name, model_cfg, n_classes)
    fast = copy.deepcopy(ref)
    bf16 = use_bf16(cfg.precision, device)
    channels_last = cfg.channels_last and channels_last_safe(fast, device, bf16)
    out: dict[str, Any] = {"input_shape": list(shape), "n_classes": n_classes,
                           "parameters": sum(p.numel() for p in ref.parameters()),
                           "warmup": warmup, "steps": steps,
                           "fast_precision": "bf16" if bf16 else "fp32",
                           "fast_channels_last": channels_last}
    out.update(logits_check(ref, fast, x, device, bf16, channels_last))
    slow = time_steps(ref, x, y, cfg, device, False, False, steps, warmup)
    quick = time_steps(fast, x, y, cfg, device, bf16, channels_last, steps, warmup)
    out.update(fp32_samples_per_s=slow["samples_per_s"], fast_samples_per_s=quick["samples_per_s"],
               speedup=quick["samples_per_s"] / slow["samples_per_s"],
               loss_initial=slow["losses"][0], loss_fp32=slow["losses"][-1],
               loss_fast=quick["losses"][-1])
    if device.type == "cuda":
        out.update(cuda_max_allocated_mib_fp32=slow["cuda_max_allocated_mib"],
                   cuda_max_allocated_mib_fast=quick["cuda_max_allocated_mib"])
    return out
