"""The params section ``cv``: the folds and models ``dvc repro`` cross-validates."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sonic.config.parse import bounded


@dataclass(frozen=True)
class CVConfig:
    folds: tuple[int, ...] = bounded((), 1)  # fold layouts: the folds `dvc repro` cross-validates
    models: tuple[Literal["cnn", "resnet"], ...] = ("cnn", "resnet")  # classifiers trained per fold
    # students distilled per fold from the checkpoints in data/teachers/<fold>/ (stage cv_distill)
    students: tuple[Literal["cnn", "resnet"], ...] = ()

    @property
    def checkpoints(self) -> tuple[str, ...]:
        """The names of a fold's checkpoints in ``data/cv/<fold>/models/``: its models, then
        its students (``student_<model>``)."""
        return self.models + tuple(f"student_{m}" for m in self.students)
