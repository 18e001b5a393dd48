"""The params section ``cnn``: the log-mel CNN's layout."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sonic.config.parse import bounded


@dataclass(frozen=True)
class CNNConfig:
    widths: tuple[int, ...] = bounded((32, 64, 128, 256), 1)
    fc: tuple[int, ...] = bounded((256,), 1)
    pool: tuple[int, int] = bounded((2, 3), 1)  # adaptive-average-pool output before the FC head
    head: Literal["grid", "avgmax"] = "grid"  # avgmax: mean over mels, then mean + max over time
    dropout: float = bounded(0.2, 0.0, 1.0, open_high=True)  # after each conv block
    fc_dropout: float = bounded(0.5, 0.0, 1.0, open_high=True)
