"""Batch-level regularisers applied during training: SpecAugment masks and MixUp."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def mask_along(x: torch.Tensor, n_masks: int, max_width: int, dim: int,
               generator: torch.Generator) -> torch.Tensor:
    """Zero ``n_masks`` random bands of width 0..max_width along ``dim`` of each example.

    ``x`` is (B, 1, n_mels, T) and normalised, so 0 is the data mean: a masked band looks like
    "average energy", not silence. Bands always lie inside the axis (start ≤ size - width).
    """
    size = x.shape[dim]
    max_width = min(max_width, size)
    if n_masks <= 0 or max_width <= 0:
        return x
    B = x.shape[0]
    width = torch.randint(0, max_width + 1, (B, n_masks), generator=generator)
    start = (torch.rand(B, n_masks, generator=generator) * (size - width + 1)).long()
    pos = torch.arange(size)  # (size,)
    hit = (pos >= start[..., None]) & (pos < (start + width)[..., None])  # (B, n_masks, size)
    keep = ~hit.any(dim=1)  # (B, size)
    shape = [B, 1, 1, 1]
    shape[dim] = size
    return x * keep.view(shape).to(device=x.device, dtype=x.dtype)


def spec_augment(x: torch.Tensor, freq_masks: int, freq_width: int, time_masks: int,
                 time_width: int, generator: torch.Generator) -> torch.Tensor:
    """SpecAugment frequency and time masks on (B, 1, n_mels, T)."""
    x = mask_along(x, freq_masks, freq_width, dim=2, generator=generator)
    return mask_along(x, time_masks, time_width, dim=3, generator=generator)


def mixup(x: torch.Tensor, y: torch.Tensor, alpha: float, generator: torch.Generator
          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Blend each example with a random partner: ``lam * x + (1 - lam) * x[perm]``.

    Returns the mixed batch, both label vectors and ``lam`` ~ Beta(alpha, alpha); the loss is
    ``lam * CE(y_a) + (1 - lam) * CE(y_b)`` (:func:`mixed_cross_entropy`).
    """
    beta = torch.distributions.Beta(torch.tensor(alpha), torch.tensor(alpha))
    # Beta sampling has no generator argument; draw from uniforms through the inverse CDF instead
    # would be costly, so seed a private CPU stream from the generator for reproducibility.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
        lam = float(beta.sample())
    perm = torch.randperm(x.shape[0], generator=generator).to(x.device)
    return lam * x + (1 - lam) * x[perm], y, y[perm], lam


def mixed_cross_entropy(logits: torch.Tensor, y_a: torch.Tensor, y_b: torch.Tensor, lam: float,
                        label_smoothing: float) -> torch.Tensor:
    """MixUp loss with label smoothing; equals plain cross-entropy when ``lam == 1``."""
    loss_a = F.cross_entropy(logits, y_a, label_smoothing=label_smoothing)
    if lam >= 1.0:
        return loss_a
    return lam * loss_a + (1 - lam) * F.cross_entropy(logits, y_b, label_smoothing=label_smoothing)
