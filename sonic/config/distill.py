"""The params section ``distill``: a student trained on its fold's teachers (stage
``cv_distill``)."""
from __future__ import annotations

from dataclasses import dataclass

from sonic.config.parse import bounded


@dataclass(frozen=True)
class DistillConfig:
    weight: float = bounded(0.5, 0.0, 1.0)  # share of the loss that follows the teachers
    temperature: float = bounded(2.0, 0.0, open_low=True)  # softens teachers and student alike
