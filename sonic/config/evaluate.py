"""The params section ``evaluate``."""
from __future__ import annotations

from dataclasses import dataclass

from sonic.config.parse import bounded


@dataclass(frozen=True)
class EvaluateConfig:
    calibration_bins: int = bounded(15, 1)
