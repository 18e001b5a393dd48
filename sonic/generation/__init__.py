"""Conditional generation of log-mel spectrograms, their inversion to audio, and its quality.

- ``gan``: :class:`Generator` and :class:`Discriminator`.
- ``trainer``: :class:`GANState`, :func:`train_step` ((1) discriminator, (2) generator) and the
  epoch loop :func:`train_cgan`; :func:`fixed_grid` and :func:`generate` for samples.
- ``invert``: :func:`mel_db_to_wave` (inverse mel filterbank + Griffin-Lim).
- ``quality``: conditional accuracy, Fréchet distance beside its real-data floor, memorisation.
- ``plots``: picture grids (imported on its own: it pulls in matplotlib).
"""
from sonic.generation.gan import Discriminator, Generator
from sonic.generation.invert import mel_db_to_wave, spectral_convergence
from sonic.generation.quality import (
    conditional_accuracy,
    frechet_distance,
    frechet_floor,
    frechet_vs_real,
    memorisation,
)
from sonic.generation.trainer import (
    GANState,
    checkpoint,
    fixed_grid,
    generate,
    load_generator,
    make_state,
    train_cgan,
    train_step,
)

__all__ = [
    "Discriminator", "Generator", "GANState", "checkpoint", "conditional_accuracy", "fixed_grid",
    "frechet_distance", "frechet_floor", "frechet_vs_real", "generate", "load_generator",
    "make_state", "mel_db_to_wave", "memorisation", "spectral_convergence", "train_cgan",
    "train_step",
]
