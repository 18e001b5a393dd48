"""What a classifier sees and does with a clip: its input log-mel and the feature maps of every
conv block (CNN) or stage (ResNet), as compact images for the page and the API."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from sonic.models import AudioResNet, DeepAudioCNN
from sonic.models.checkpoint import Classifier


def feature_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The modules whose outputs are shown: each conv block of the CNN; the ResNet's stem
    (after its max-pool) and each of its stages."""
    if isinstance(model, DeepAudioCNN):
        return [(f"block{i + 1}", block) for i, block in enumerate(model.blocks)]
    if isinstance(model, AudioResNet):
        return [("stem", model.maxpool)] + [(f"layer{i + 1}", s) for i, s in enumerate(model.stages)]
    raise TypeError(f"no feature-map layers known for {type(model).__name__}")


def to_image(array: np.ndarray, lo: float, hi: float) -> list[list[int]]:
    """(H, W) values → rows of 0-255 integers, ``lo`` → 0 and ``hi`` → 255 (clipped)."""
    scaled = (np.asarray(array, dtype=np.float64) - lo) / max(hi - lo, 1e-12)
    return np.clip(np.rint(scaled * 255), 0, 255).astype(np.uint8).tolist()


def mel_image(db: np.ndarray, top_db: float) -> dict:
    """One (n_mels, T) dB spectrogram as an image: row 0 is the lowest mel band."""
    return {"shape": list(db.shape), "db_min": -top_db, "db_max": 0.0,
            "data": to_image(db, -top_db, 0.0)}


@torch.inference_mode()
def feature_maps(clf: Classifier, db: np.ndarray, channels: int = 8) -> list[dict]:
    """The ``channels`` most active channels (by mean activation) of every shown layer.

    Parameters
    ----------
    clf : a loaded classifier (CNN or ResNet).
    db : (n_mels, T) log-mel in dB, one window as the model sees it.
    channels : how many channels per layer.

    Returns
    -------
    One dict per layer, input side first: ``name``, ``channels`` (total), ``shape`` ([H, W]),
    ``maps``: [{``channel``, ``mean``, ``data`` (H rows of W 0-255 integers, one scale for the
    whole layer, 0 = no activation)}], strongest first.
    """
    captured: dict[str, torch.Tensor] = {}
    hooks = [module.register_forward_hook(
                 lambda _m, _i, out, name=name: captured.__setitem__(name, out.detach().float()))
             for name, module in feature_layers(clf.model)]
    try:
        clf.model.eval()
        device = next(clf.model.parameters()).device
        clf.model(clf.normalize(db[None]).to(device))
    finally:
        for hook in hooks:
            hook.remove()
    layers = []
    for name, _ in feature_layers(clf.model):
        maps = captured[name][0].cpu().numpy()  # (C, H, W), post-ReLU so ≥ 0
        means = maps.mean(axis=(1, 2))
        order = np.argsort(-means, kind="stable")[:channels]
        hi = float(maps[order].max()) if len(order) else 1.0
        layers.append({"name": name, "channels": int(maps.shape[0]), "shape": list(maps.shape[1:]),
                       "maps": [{"channel": int(c), "mean": round(float(means[c]), 5),
                                 "data": to_image(maps[c], 0.0, hi)} for c in order]})
    return layers


def envelope(wave: np.ndarray, points: int = 800) -> dict:
    """Min and max of a mono waveform over ``points`` equal spans, for drawing it."""
    n = len(wave)
    edges = np.linspace(0, n, min(points, n) + 1).astype(int)
    lo = [float(wave[a:b].min()) for a, b in zip(edges[:-1], edges[1:])]
    hi = [float(wave[a:b].max()) for a, b in zip(edges[:-1], edges[1:])]
    return {"min": [round(v, 4) for v in lo], "max": [round(v, 4) for v in hi]}
