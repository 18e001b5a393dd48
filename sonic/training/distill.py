"""Knowledge distillation: a student trained on its teachers' softened class probabilities beside
the labels (Hinton, Vinyals and Dean 2015).

The teachers are finished classifiers of the student's fold: the checkpoints in one folder
(``data/teachers/<fold>/`` for stage ``cv_distill``; ``python -m sonic.cv_results teachers``
gathers them from other experiments' cross-validations). Before the first epoch each teacher
scores every training clip once, as it is (no masks, shifts or mixing), at temperature ``T``;
the teachers' mean is the clip's soft target. A mixed batch mixes the soft targets with the
weights its labels get, and the loss is::

    (1 - w) * CE(labels, smoothed) + w * T² * KL(soft target ‖ softmax(student logits / T))

(``T²`` keeps the soft share's gradients on the scale of the hard share's whatever ``T``).

No teacher may have seen a clip the student is scored on. A teacher must know the student's
classes and features, and its input normalisation — the mean and standard deviation of the dB
values of the clips it trained on, stored in every checkpoint — must equal the student's to
float precision: the same training clips, which a teacher trained with the held-out fold (or
on any other set) does not have.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from sonic.config.features import FeatureConfig
from sonic.models.checkpoint import Classifier, load_classifier
from sonic.progress import progress
from sonic.training.data import MelSet

NORM_RTOL = 1e-6  # normalisations this close come from the same clips


@dataclass
class SoftTargets:
    """The teachers' mean probabilities for every training item, in the training set's order,
    and how well each teacher (and their mean) fits the labels."""

    probs: torch.Tensor  # (N, C)
    teachers: list[str]  # checkpoint file names
    train_accuracy: dict[str, float]  # per teacher and "mean": argmax vs label, training items


def load_teachers(folder: Path, classes: list[str], features: FeatureConfig, mean: float,
                  std: float) -> dict[str, Classifier]:
    """Every ``*.pt`` checkpoint in ``folder``, each checked to fit the student: its classes, its
    features and its training clips (through its input normalisation, see the module doc)."""
    paths = sorted(Path(folder).glob("*.pt"))
    if not paths:
        raise ValueError(f"{folder}: no teacher checkpoint (*.pt) here; gather the fold's teachers "
                         "with `python -m sonic.cv_results teachers` (docs/training.md)")
    teachers = {}
    for path in paths:
        teacher = load_classifier(path)
        if teacher.classes != classes:
            raise ValueError(f"{path}: this teacher knows other classes than the student's "
                             f"{len(classes)} ({teacher.classes[:3]}... vs {classes[:3]}...)")
        if teacher.features != features:
            raise ValueError(f"{path}: this teacher was trained on other features than the "
                             "student's params.yaml `features`; a teacher must read the same "
                             "spectrograms")
        if not (math.isclose(teacher.mean, mean, rel_tol=NORM_RTOL)
                and math.isclose(teacher.std, std, rel_tol=NORM_RTOL)):
            raise ValueError(f"{path}: this teacher trained on other clips than the student's "
                             f"training clips (its input normalisation {teacher.mean:.4f} ± "
                             f"{teacher.std:.4f} dB, the student's {mean:.4f} ± {std:.4f}): "
                             "a teacher of fold K must come from fold K of a cross-validation "
                             "with the same features and split params, never from another fold")
        teachers[path.name] = teacher
    return teachers


@torch.no_grad()
def teacher_probs(teacher: Classifier, x: torch.Tensor, temperature: float) -> torch.Tensor:
    """``softmax(logits / T)`` of a normalised batch (B, 1, n_mels, T); a teacher trained on crops
    averages its evenly spaced crops, as it does at inference."""
    return torch.stack([(o["logits"].float() / temperature).softmax(-1)
                        for o in teacher.crop_outputs(x)]).mean(0)


def soft_targets(teachers: dict[str, Classifier], train: MelSet, temperature: float,
                 batch_size: int = 128) -> SoftTargets:
    """Each training item scored once by every teacher (loaded in eval mode, on the CPU); the
    mean of their probabilities at ``temperature`` is its soft target."""
    per_teacher = {name: [] for name in teachers}
    chunks = range(0, len(train), batch_size)
    for start in progress(chunks, desc="teachers", unit="batch", leave=False):
        x, _ = train[list(range(start, min(start + batch_size, len(train))))]
        for name, teacher in teachers.items():
            per_teacher[name].append(teacher_probs(teacher, x, temperature))
    probs = {name: torch.cat(p) for name, p in per_teacher.items()}
    mean = torch.stack(list(probs.values())).mean(0)
    labels = train.labels
    accuracy = {name: float((p.argmax(-1) == labels).float().mean())
                for name, p in probs.items()}
    accuracy["mean"] = float((mean.argmax(-1) == labels).float().mean())
    return SoftTargets(mean, list(teachers), accuracy)


def mix_targets(q: torch.Tensor, i_a: torch.Tensor, i_b: torch.Tensor,
                lam: float | torch.Tensor) -> torch.Tensor:
    """The soft targets of a mixed batch: ``lam * q[i_a] + (1 - lam) * q[i_b]``, ``lam`` one
    weight for the batch (MixUp) or one per example (B,) (between-class mixing)."""
    if torch.is_tensor(lam):
        lam = lam.to(q.dtype).view(-1, 1)
    return lam * q[i_a] + (1 - lam) * q[i_b]


def distill_loss(logits: torch.Tensor, target: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T² * KL(target ‖ softmax(logits / T))``, the batch mean: 0 when the student's softened
    probabilities are the target."""
    log_p = F.log_softmax(logits / temperature, dim=-1)
    log_q = target.clamp_min(np.finfo(np.float32).tiny).log()
    return temperature**2 * (target * (log_q - log_p)).sum(-1).mean()
