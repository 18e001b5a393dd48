"""Classifier checkpoints that rebuild their model from the file alone.

A checkpoint holds the weights plus everything needed to use them: the model name and config,
the class names, the feature params the mels were made with, and the input normalisation. The
file is safetensors with that metadata as JSON (:mod:`sonic.tensorfile`): the same weights give
the same bytes, and loading unpickles nothing.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from sonic.config.features import FeatureConfig
from sonic.config.parse import parse_section
from sonic.models import build_model
from sonic.tensorfile import load_payload, save_payload


def crop_starts(n_frames: int, frames: int, n_crops: int) -> list[int]:
    """Start frames of ``n_crops`` evenly spaced windows of ``frames`` frames, first and last
    flush with the clip's ends; one start (0) when the clip is no longer than a window."""
    if frames <= 0 or frames >= n_frames or n_crops <= 1:
        return [0] if frames <= 0 or frames >= n_frames else [(n_frames - frames) // 2]
    span = n_frames - frames
    return sorted({round(i * span / (n_crops - 1)) for i in range(n_crops)})


@dataclass
class Classifier:
    """A trained classifier ready for inference."""

    name: str
    model: nn.Module
    classes: list[str]
    features: FeatureConfig
    mean: float  # dB; inputs are (db - mean) / std
    std: float
    meta: dict[str, Any]

    def normalize(self, db: np.ndarray | torch.Tensor) -> torch.Tensor:
        """(B, n_mels, T) dB → (B, 1, n_mels, T) model input."""
        db = torch.as_tensor(np.asarray(db, dtype=np.float32))
        return ((db - self.mean) / self.std).unsqueeze(1)

    @property
    def crops(self) -> tuple[int, int]:
        """(frames, count) of the windows averaged at inference: a model trained on random crops
        (``train.crop_frames``) is scored on ``train.test_crops`` evenly spaced ones; (0, 1) for
        whole clips."""
        return int(self.meta.get("crop_frames", 0)), int(self.meta.get("test_crops", 1))

    def crop_outputs(self, x: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """The model's outputs for a normalised batch (B, 1, n_mels, T), one per window of
        :attr:`crops` (one for whole clips)."""
        frames, count = self.crops
        width = frames if 0 < frames < x.shape[-1] else x.shape[-1]
        return [self.model(x[..., s:s + width]) for s in crop_starts(x.shape[-1], frames, count)]

    @torch.no_grad()
    def predict(self, db: np.ndarray, batch_size: int = 64) -> dict[str, np.ndarray]:
        """Class probabilities (N, C) and embeddings (N, D) for (N, n_mels, T) dB spectrograms;
        with :attr:`crops`, the mean of those of the crops."""
        self.model.eval()
        device = next(self.model.parameters()).device
        probs, embs = [], []
        for start in range(0, len(db), batch_size):
            x = self.normalize(db[start:start + batch_size]).to(device)  # (B, 1, n_mels, T)
            outs = self.crop_outputs(x)
            probs.append(torch.stack([o["logits"].float().softmax(-1) for o in outs]).mean(0).cpu())
            embs.append(torch.stack([o["embedding"].float() for o in outs]).mean(0).cpu())
        return {"probs": torch.cat(probs).numpy(), "embedding": torch.cat(embs).numpy()}


def save_checkpoint(path: str | Path, name: str, model: nn.Module, classes: list[str],
                    features: FeatureConfig, mean: float, std: float, **meta: Any) -> None:
    """Write ``model`` (on any device) with everything :func:`load_classifier` needs; ``meta``
    holds JSON values (the best epoch's figures, ``crop_frames``, ``test_crops``)."""
    payload = {
        "model": name,
        "model_config": dataclasses.asdict(model.cfg),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "classes": list(classes),
        "features": dataclasses.asdict(features),
        "norm": {"mean": float(mean), "std": float(std)},
        "meta": meta,
    }
    save_payload(path, payload)


def load_classifier(path: str | Path, device: torch.device | str = "cpu") -> Classifier:
    """Rebuild a classifier from a checkpoint written by :func:`save_checkpoint`."""
    try:
        payload = load_payload(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no checkpoint; run `dvc repro` to train it") from None
    model_cfg = dict(payload["model_config"])
    if "pretrained" in model_cfg:
        model_cfg["pretrained"] = None  # the stored weights already include any transfer
    model = build_model(payload["model"], model_cfg, len(payload["classes"]))
    model.load_state_dict(payload["state_dict"])
    features = parse_section(FeatureConfig, payload["features"], "features")
    return Classifier(payload["model"], model.to(device).eval(), payload["classes"], features,
                      payload["norm"]["mean"], payload["norm"]["std"], payload["meta"])


def load_classifiers(paths: list[Path], device: torch.device | str = "cpu"
                     ) -> dict[str, Classifier]:
    """Each checkpoint by its file name's stem (``cnn``, ``resnet``)."""
    return {Path(p).stem: load_classifier(p, device) for p in paths}
