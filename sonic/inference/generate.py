"""New sounds of a chosen class from a trained cGAN checkpoint, as log-mels and WAV bytes."""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from sonic.config import FeatureConfig
from sonic.generation.mel_to_wave import mel_db_to_wave
from sonic.generation.state import generate, load_gan_checkpoint, load_generator


class UnknownClassError(LookupError):
    """A class the generator was not trained on."""


@dataclass
class Sample:
    db: np.ndarray  # (n_mels, T) dB in [-top_db, 0]
    wave: np.ndarray  # (samples,) float32, peak 0.99

    def wav_bytes(self, sample_rate: int) -> bytes:
        buf = io.BytesIO()
        sf.write(buf, self.wave, sample_rate, format="WAV", subtype="PCM_16")
        return buf.getvalue()


class SoundGenerator:
    """A loaded cGAN generator plus what turns its output into audio.

    Parameters
    ----------
    path : ``cgan.pt`` as ``train_cgan`` writes it (weights, classes, dB mean and std).
    features : the feature params the GAN's training mels were made with — the classifiers'
        own, as both stages read ``params.yaml``'s ``features``; checked against the
        generator's output size.
    griffin_lim_iters : iterations of the inversion to audio.
    """

    def __init__(self, path: str | Path, features: FeatureConfig, griffin_lim_iters: int = 32,
                 device: torch.device | str = "cpu"):
        ckpt = load_gan_checkpoint(path)  # safetensors + JSON, or an older torch.save file
        self.G = load_generator(ckpt, device)
        if (self.G.n_mels, self.G.n_frames) != (features.n_mels, features.n_frames):
            raise ValueError(f"{path}: the generator makes {self.G.n_mels}×{self.G.n_frames} "
                             f"log-mels, the classifiers' features are "
                             f"{features.n_mels}×{features.n_frames}; train both on one params.yaml")
        self.classes: list[str] = list(ckpt["classes"])
        self.mean, self.std = float(ckpt["mean"]), float(ckpt["std"])
        self.features, self.iters = features, griffin_lim_iters

    def sample(self, label: str, n: int = 1, seed: int = 0) -> list[Sample]:
        """``n`` new clips of class ``label``; the same seed gives the same clips."""
        if label not in self.classes:
            raise UnknownClassError(f"unknown class {label!r}; the generator knows: "
                                    f"{', '.join(self.classes)}")
        z = torch.randn(n, self.G.z_dim, generator=torch.Generator().manual_seed(seed))
        labels = torch.full((n,), self.classes.index(label), dtype=torch.long)
        x = generate(self.G, z, labels)[:, 0].numpy()  # (n, n_mels, T) normalised
        db = np.clip(x * self.std + self.mean, -self.features.top_db, 0.0).astype(np.float32)
        waves = mel_db_to_wave(torch.from_numpy(db), self.features, self.iters, seed,
                               self.G.lo.device).numpy()
        return [Sample(d, w.astype(np.float32)) for d, w in zip(db, waves)]
