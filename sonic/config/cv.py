"""The params section ``cv``: the folds and models ``dvc repro`` cross-validates."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sonic.config.parse import bounded


@dataclass(frozen=True)
class CVConfig:
    folds: tuple[int, ...] = bounded((), 1)  # fold layouts: the folds `dvc repro` cross-validates
    models: tuple[Literal["cnn", "resnet"], ...] = ("cnn", "resnet")  # classifiers trained per fold
