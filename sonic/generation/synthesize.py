"""``synthesize``: sample the trained generator per class, turn the spectrograms into WAVs, and
judge both with the trained CNN — honest figures beside their real-data ceilings."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sonic.config import FeatureConfig
from sonic.features.mel import prepare_waveform, waves_to_mels
from sonic.generation.gan import Generator
from sonic.generation.invert import mel_db_to_wave
from sonic.generation.quality import conditional_accuracy, frechet_vs_real, memorisation
from sonic.generation.trainer import fixed_grid, generate
from sonic.training.checkpoint import Classifier


@dataclass
class Samples:
    db: np.ndarray  # (N, n_mels, T) generated log-mels in dB
    labels: np.ndarray  # (N,) intended class indices, per_class of each in class order


def sample_per_class(G: Generator, n_classes: int, per_class: int, z_dim: int, seed: int,
                     mean: float, std: float, top_db: float) -> Samples:
    """``per_class`` spectrograms of every class, mapped back from the classifiers' normalised
    scale to dB (clamped to the feature range [-top_db, 0])."""
    z, labels = fixed_grid(n_classes, per_class, z_dim, seed)
    x = generate(G, z, labels)[:, 0].numpy()  # (N, n_mels, T) normalised
    db = np.clip(x * std + mean, -top_db, 0.0).astype(np.float32)
    return Samples(db, labels.numpy())


def invert_all(db: np.ndarray, features: FeatureConfig, n_iter: int, seed: int,
               device: torch.device, batch_size: int = 16) -> np.ndarray:
    """(N, n_mels, T) dB → (N, samples) peak-normalised waveforms at the feature sample rate."""
    waves = [mel_db_to_wave(torch.from_numpy(db[i:i + batch_size]), features, n_iter, seed + i,
                            device).cpu().numpy()
             for i in range(0, len(db), batch_size)]
    return np.concatenate(waves).astype(np.float32)


def roundtrip_mels(waves: np.ndarray, features: FeatureConfig) -> np.ndarray:
    """Generated WAVs through exactly the ``extract_mels`` processing (trim, pad/crop, log-mel)."""
    prepared = np.stack([prepare_waveform(w[None], features.sample_rate, features) for w in waves])
    return waves_to_mels(prepared, features)


def quality_report(judge: Classifier, samples: Samples, roundtrip_db: np.ndarray,
                   train_db: np.ndarray, val_db: np.ndarray, val_labels: np.ndarray,
                   seed: int) -> dict:
    """All synthesis figures, each beside the real-data value it should be read against.

    ``judge`` is the trained CNN; its classes define the label indices.
    """
    classes = judge.classes
    gen = judge.predict(samples.db)
    train_emb = judge.predict(train_db)["embedding"]
    cond = conditional_accuracy(gen["probs"].argmax(1), samples.labels, classes)
    trip = conditional_accuracy(judge.predict(roundtrip_db)["probs"].argmax(1), samples.labels,
                                classes)
    ceiling = conditional_accuracy(judge.predict(val_db)["probs"].argmax(1), val_labels, classes)
    fd = frechet_vs_real(gen["embedding"], train_emb, seed=seed)
    return {
        "conditional_accuracy": cond["accuracy"],
        "judge_val_accuracy": ceiling["accuracy"],  # the ceiling: the judge on real clips
        "roundtrip_accuracy": trip["accuracy"],
        "frechet_distance": fd["fd"],
        "frechet_floor": fd["floor"],
        "frechet_ratio": fd["ratio"],
        "frechet_n": fd["n"],
        "memorisation": memorisation(gen["embedding"], train_emb),
        "n_generated": int(len(samples.labels)),
        "per_class": {c: {"conditional_accuracy": cond["per_class"][c],
                          "roundtrip_accuracy": trip["per_class"][c],
                          "judge_val_accuracy": ceiling["per_class"][c]} for c in classes},
    }
