"""How a model runs on a device — the precision and memory-format rules that training, inference,
serving and the benchmarks share, so that a model is served as it was trained.

- :func:`use_bf16`: ``auto`` means bf16 autocast where the hardware runs it natively (CUDA with
  bf16; CPUs whose oneDNN has bf16 kernels: avx512_bf16 or AMX), fp32 elsewhere; ``bf16`` and
  ``fp32`` force one.
- :func:`memory_format`: channels_last where asked for and safe (:func:`channels_last_safe`).
- :func:`autocast`: the context a forward pass runs in.
"""
from __future__ import annotations

import contextlib

import torch
from torch import nn

PRECISIONS = ("auto", "bf16", "fp32")


def use_bf16(precision: str, device: torch.device) -> bool:
    """Whether ``precision`` (``auto``, ``bf16`` or ``fp32``) means bf16 autocast on ``device``."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return precision == "bf16"
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def autocast(device: torch.device, bf16: bool):
    """bf16 autocast on ``device`` when ``bf16``, else a context that changes nothing."""
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


def memory_format(model: nn.Module, device: torch.device, bf16: bool,
                  channels_last: bool = True) -> torch.memory_format:
    """channels_last when asked for and :func:`channels_last_safe`; contiguous otherwise. With
    bf16 on AMX, channels_last gives 2-3x the windows/s of contiguous inputs."""
    if channels_last and channels_last_safe(model, device, bf16):
        return torch.channels_last
    return torch.contiguous_format
