"""Batch-level regularisers applied during training: SpecAugment masks, MixUp, between-class
mixing (BC learning on spectrograms) and random crops."""
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


def mixed_cross_entropy(logits: torch.Tensor, y_a: torch.Tensor, y_b: torch.Tensor,
                        lam: float | torch.Tensor, label_smoothing: float) -> torch.Tensor:
    """Mixing loss with label smoothing: ``lam * CE(y_a) + (1 - lam) * CE(y_b)``, ``lam`` one
    weight for the batch (MixUp) or one per example (B,) (between-class mixing); plain
    cross-entropy when ``lam == 1``."""
    if not torch.is_tensor(lam):
        loss_a = F.cross_entropy(logits, y_a, label_smoothing=label_smoothing)
        if lam >= 1.0:
            return loss_a
        return lam * loss_a + (1 - lam) * F.cross_entropy(logits, y_b,
                                                          label_smoothing=label_smoothing)
    loss_a = F.cross_entropy(logits, y_a, label_smoothing=label_smoothing, reduction="none")
    loss_b = F.cross_entropy(logits, y_b, label_smoothing=label_smoothing, reduction="none")
    return (lam * loss_a + (1 - lam) * loss_b).mean()


def loudness_db(db: torch.Tensor) -> torch.Tensor:
    """A clip's gain in dB: the power of its loudest frame, summed over mel bins.

    ``db`` is (B, 1, n_mels, T) log-mel dB; returns (B,). BC learning takes the loudest frame of
    the waveform the same way, so that a quiet clip is not drowned by a loud one in a mix.
    """
    frame_power = (10.0 ** (db.float() / 10.0)).sum(dim=2)  # (B, 1, T)
    return 10.0 * torch.log10(frame_power.amax(dim=(1, 2)).clamp_min(1e-12))


def bc_coefficient(r: torch.Tensor, gain_a: torch.Tensor, gain_b: torch.Tensor) -> torch.Tensor:
    """BC learning's amplitude weight ``p`` of clip a for the label ratio ``r`` (Tokozume et al.
    2018, eq. 2): ``p = 1 / (1 + 10 ** ((g_a - g_b) / 20) * (1 - r) / r)``, so that a mix labelled
    ``r : 1 - r`` sounds that way; equal gains give ``p == r``."""
    return 1.0 / (1.0 + 10.0 ** ((gain_a - gain_b) / 20.0) * (1.0 - r) / r.clamp_min(1e-6))


def bc_mix(db: torch.Tensor, y: torch.Tensor, generator: torch.Generator
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Between-class mixing of spectrograms, as BC learning mixes waveforms.

    Each (B, 1, n_mels, T) dB clip is mixed with a random partner: label ratio ``r ~ U(0, 1)``
    per example, amplitude weights ``p`` and ``1 - p`` from :func:`bc_coefficient`, powers added
    as ``p² P_a + (1 - p)² P_b`` over ``p² + (1 - p)²`` (independent sounds add in power), and the
    mix set back to a 0 dB peak as every extracted clip is. Returns the mix (dB), both label
    vectors and ``r`` (B,), the weight of the first labels in the loss.
    """
    B = db.shape[0]
    r = torch.rand(B, generator=generator).to(db.device)
    perm = torch.randperm(B, generator=generator).to(db.device)
    gain = loudness_db(db)
    p = bc_coefficient(r, gain, gain[perm]).view(B, 1, 1, 1)
    wa, wb = p**2, (1 - p) ** 2
    power = (wa * 10.0 ** (db.float() / 10.0) + wb * 10.0 ** (db[perm].float() / 10.0)) / (wa + wb)
    peak = power.amax(dim=(1, 2, 3), keepdim=True)
    # both clips lie above the floor (-top_db re their 0 dB peaks) and the mix's peak is ≤ 1,
    # so the mix stays above the same floor: no clamp is needed
    mixed = 10.0 * torch.log10(power / peak)
    return mixed.to(db.dtype), y, y[perm], r


def time_shift(x: torch.Tensor, frames: int, generator: torch.Generator) -> torch.Tensor:
    """Each (B, 1, n_mels, T) example moved by its own whole number of frames, uniform in
    [-frames, frames], keeping its length: what leaves one end is dropped, and the frames it
    vacates at the other take the example's lowest value (its floor: silence), not a wrap of
    the other end. The batch unchanged, and nothing drawn, when ``frames`` is 0."""
    if frames <= 0:
        return x
    shift = torch.randint(-frames, frames + 1, (x.shape[0],), generator=generator)
    return shift_frames(x, shift.to(x.device))


def shift_frames(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Each (B, 1, n_mels, T) example moved ``shift[i]`` frames later (earlier when negative),
    its length kept, the vacated frames at its lowest value."""
    B, _, M, T = x.shape
    source = torch.arange(T, device=x.device)[None, :] - shift[:, None]  # (B, T)
    inside = ((source >= 0) & (source < T)).view(B, 1, 1, T)
    moved = x.gather(3, source.clamp(0, T - 1).view(B, 1, 1, T).expand(B, 1, M, T))
    return torch.where(inside, moved, x.amin(dim=(1, 2, 3), keepdim=True))


def random_crop(x: torch.Tensor, frames: int, generator: torch.Generator) -> torch.Tensor:
    """A random window of ``frames`` frames from each (B, 1, n_mels, T) example (its own start);
    the whole batch when ``frames`` is 0 or not shorter than T."""
    B, _, M, T = x.shape
    if frames <= 0 or frames >= T:
        return x
    start = torch.randint(0, T - frames + 1, (B,), generator=generator).to(x.device)
    index = (start[:, None] + torch.arange(frames, device=x.device)).view(B, 1, 1, frames)
    return x.gather(3, index.expand(B, 1, M, frames))

