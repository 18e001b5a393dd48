"""The params section ``resnet``: the log-mel ResNet's layout."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sonic.config.parse import bounded


@dataclass(frozen=True)
class ResNetConfig:
    blocks: tuple[int, ...] = bounded((2, 2, 2, 2), 1)  # (3, 4, 6, 3) is the ResNet-34 layout
    widths: tuple[int, ...] = bounded((32, 64, 128, 256), 1)
    dropout: float = bounded(0.5, 0.0, 1.0, open_high=True)
    pool: Literal["avg", "avgmax"] = "avg"  # avgmax: mean over mels, then mean + max over time
    stem_pool: bool = True  # max-pool after the stem; false: 4x the map (and compute) after it
    pretrained: str | None = None  # local torchvision ResNet state dict
