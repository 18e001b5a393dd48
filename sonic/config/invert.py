"""The params section ``invert``: log-mel → waveform."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sonic.config.parse import bounded


@dataclass(frozen=True)
class InvertConfig:
    """Log-mel → waveform: the mel → linear-magnitude network (stage ``train_inverter``) and
    the Griffin-Lim that turns its magnitudes into audio (used by every stage that inverts)."""

    method: Literal["network", "lstsq"] = "network"  # lstsq: the least-squares inverse mel
    griffin_lim_iters: int = bounded(32, 1)
    momentum: float = bounded(0.99, 0.0, 1.0, open_high=True)  # fast Griffin-Lim; 0 = plain
    seed: int = 0
    hidden: int = bounded(256, 1)  # channels of the network's hidden conv layers
    kernel: int = bounded(5, 1)  # frames each conv layer sees (odd)
    layers: int = bounded(3, 1)  # hidden conv layers
    steps: int = bounded(400, 1)  # optimizer steps
    batch_size: int = bounded(16, 1)  # random crops per step
    crop: int = bounded(32, 1)  # frames per crop
    lr: float = bounded(2e-3, 0.0, open_low=True)  # AdamW, cosine decay to 0
    eval_clips: int = bounded(48, 1)  # held-out real clips the methods are compared on
    device: str = "auto"

    def problems(self) -> list[tuple[str, str]]:
        if self.kernel % 2 == 0:
            return [("kernel", f"must be odd (frames stay aligned), got {self.kernel}")]
        return []
