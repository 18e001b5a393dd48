"""Classifier registry: a model name in ``params.yaml`` → its class.

Every classifier takes ``(cfg, n_classes)``, keeps ``self.cfg`` (so a checkpoint can store
``dataclasses.asdict(cfg)`` and rebuild the model), takes (B, 1, n_mels, T) log-mels and returns
``{"logits": (B, n_classes), "embedding": (B, model.embedding_dim)}``.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from sonic.config import CNNConfig, ResNetConfig
from sonic.models.cnn import DeepAudioCNN
from sonic.models.resnet import AudioResNet, load_pretrained

MODELS: dict[str, type[nn.Module]] = {"cnn": DeepAudioCNN, "resnet": AudioResNet}
CONFIGS: dict[str, type] = {"cnn": CNNConfig, "resnet": ResNetConfig}


def build_model(name: str, cfg: Any, n_classes: int) -> nn.Module:
    """Build the registered classifier ``name``.

    Parameters
    ----------
    name : str
        A key of :data:`MODELS`.
    cfg : dataclass or Mapping
        The model's config, or a mapping of it as stored in a checkpoint
        (``dataclasses.asdict(cfg)``; lists are turned back into tuples).
    n_classes : int
        Number of output classes.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; registered: {', '.join(sorted(MODELS))}")
    if isinstance(cfg, Mapping):
        cfg = CONFIGS[name](**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()})
    return MODELS[name](cfg, n_classes)


__all__ = ["MODELS", "CONFIGS", "build_model", "DeepAudioCNN", "AudioResNet", "load_pretrained"]
