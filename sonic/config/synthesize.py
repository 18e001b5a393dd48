"""The params section ``synthesize``: generated clips and their quality figures."""
from __future__ import annotations

from dataclasses import dataclass

from sonic.config.parse import bounded


@dataclass(frozen=True)
class CASConfig:
    """The small classifier trained on generated clips (CAS) and, for reference, on real ones."""

    widths: tuple[int, ...] = bounded((16, 32, 64), 1)
    epochs: int = bounded(8, 1)
    batch_size: int = bounded(32, 1)
    lr: float = bounded(2e-3, 0.0, open_low=True)
    runs: int = bounded(3, 1)  # classifiers per source (seeds; fresh generated twins each)


@dataclass(frozen=True)
class SynthesizeConfig:
    seed: int = 0
    per_class: int = bounded(8, 1)  # WAVs written per class
    n_eval: int = bounded(512, 2)  # generated spectrograms the figures are computed on
    n_boot: int = bounded(200, 10)  # bootstrap resamples per 95 % interval
    fd_dims: int = bounded(64, 1)  # judge-embedding PCA dimensions for the Fréchet distance
    copy_quantile: float = bounded(0.05, 0.0, 1.0, open_low=True, open_high=True)
    cas: CASConfig = CASConfig()
    device: str = "auto"
