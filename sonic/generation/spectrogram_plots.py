"""Pictures of spectrograms: a class-by-sample grid and a single labelled spectrogram.

Drawn with matplotlib's Agg backend (no display needed) and written atomically, so a DVC output
is never a half-written PNG.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: stages run on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from sonic.runtime import atomic_path  # noqa: E402


def save_grid(specs: np.ndarray, classes: list[str] | tuple[str, ...], per_class: int,
              path: str | Path, title: str | None = None) -> None:
    """One row per class, ``per_class`` spectrograms across.

    Parameters
    ----------
    specs : array (n_classes * per_class, n_mels, T) (a singleton channel axis is dropped),
        ordered class by class as :func:`sonic.generation.state.fixed_grid` makes them. Any
        scale (dB or normalised); one colour scale is shared by all panels so rows compare.
    """
    specs = np.asarray(specs)
    specs = specs[:, 0] if specs.ndim == 4 else specs  # (N, M, T)
    n_rows = len(classes)
    if len(specs) != n_rows * per_class:
        raise ValueError(f"expected {n_rows}×{per_class} spectrograms, got {len(specs)}")
    vmin, vmax = float(specs.min()), float(specs.max())
    fig, axes = plt.subplots(n_rows, per_class, squeeze=False,
                             figsize=(1.6 * per_class + 1.2, 1.4 * n_rows + 0.4))
    for r, name in enumerate(classes):
        for c in range(per_class):
            ax = axes[r, c]
            ax.imshow(specs[r * per_class + c], origin="lower", aspect="auto",
                      cmap="magma", vmin=vmin, vmax=vmax, interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
        axes[r, 0].set_ylabel(name, fontsize=8, rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def save_spectrogram(spec: np.ndarray, title: str, path: str | Path,
                     label: str = "dB") -> None:
    """One spectrogram (n_mels, T) (or (1, n_mels, T)) with a colour bar labelled ``label``."""
    spec = np.asarray(spec)
    spec = spec[0] if spec.ndim == 3 else spec
    fig, ax = plt.subplots(figsize=(6, 3.2))
    im = ax.imshow(spec, origin="lower", aspect="auto", cmap="magma", interpolation="nearest")
    ax.set(title=title, xlabel="frame", ylabel="mel bin")
    fig.colorbar(im, ax=ax, label=label)
    fig.tight_layout()
    _save(fig, path)


def _save(fig: plt.Figure, path: str | Path) -> None:
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=100)
    finally:
        plt.close(fig)  # figures are global state in pyplot; leaking them grows memory per call
