"""The params section ``split``: train/val/test roles and how the kept epoch is chosen."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sonic.config.parse import bounded


@dataclass(frozen=True)
class SplitConfig:
    val_size: float = bounded(0.2, 0.0, 1.0, open_low=True, open_high=True)
    val_fold: int = bounded(1, 1)  # fold layouts: the fold held out (role test), scored once
    # inner: early stopping and the best epoch from a validation slice of the training clips;
    # last: a fixed number of epochs, the last one kept (no validation slice in fold layouts)
    select: Literal["inner", "last"] = "inner"
    select_size: float = bounded(0.1, 0.0, 1.0, open_low=True, open_high=True)  # fold layouts
    seed: int = 42
