"""The params section ``cgan``: the conditional GAN and its training."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sonic.config.parse import bounded


@dataclass(frozen=True)
class CGANConfig:
    seed: int = 0
    z_dim: int = bounded(128, 1)
    embed_dim: int = bounded(32, 1)
    g_width: int = bounded(128, 1)  # channels of the first upsampling block; halved by each block
    d_width: int = bounded(16, 1)  # channels of the first discriminator block; doubled by each
    d_norm: Literal["spectral", "batch"] = "spectral"
    loss: Literal["bce", "hinge"] = "bce"
    mode_seeking: float = bounded(1.0, 0.0)  # weight of the MSGAN term against class collapse
    epochs: int = bounded(30, 1)
    batch_size: int = bounded(16, 2)  # BatchNorm needs two samples
    lr_g: float = bounded(5e-4, 0.0, open_low=True)
    lr_d: float = bounded(5e-4, 0.0, open_low=True)
    sample_every: int = bounded(20, 1)
    audio_samples: int = bounded(1, 0, 4)  # WAVs per class written at each sample_every
    upsample: Literal["resize", "transpose"] = "resize"  # transpose: the old, checkerboarding one
    cond_bn: bool = True  # per-class batch-norm scale/shift in G (False: label at the input only)
    aux_weight: float = bounded(1.0, 0.0)  # AC-GAN class loss on D (real clips) and G (fakes)
    aux_twin: bool = False  # TAC-GAN: a twin class head on fakes whose loss G maximises
    d_coords: bool = True  # D also sees fixed time and mel-bin ramps (where a sound sits)
    d_mbstd: int = bounded(0, 0)  # minibatch-stddev group size before D's last block (4 on FSDD)
    d_augment: float = bounded(0.0, 0.0, 1.0)  # DiffAugment: chance of each op on each clip D sees
    d_augment_ops: tuple[Literal["shift", "time", "mel"], ...] = ("shift", "time", "mel")  # its ops
    ema: float = bounded(0.999, 0.0, 1.0, open_high=True)  # averaged G, sampled from; 0 = off
    standing_batches: int = bounded(100, 0)  # batches re-estimating the sampler's BN statistics
    device: str = "auto"
