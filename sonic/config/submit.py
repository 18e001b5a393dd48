"""The params section ``submit``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class SubmitConfig:
    model: Literal["cnn", "resnet", "ensemble"] = "ensemble"
