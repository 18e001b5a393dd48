"""Confusion matrices as a picture, and per-class figures as plot rows."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def confusion_figure(matrices: dict[str, np.ndarray], classes: list[str]) -> plt.Figure:
    """Side-by-side confusion matrices (rows actual, columns predicted), one per model; counts
    written in the cells up to 20 classes."""
    n = len(matrices)
    size = 1.2 + 0.45 * len(classes)
    fig, axes = plt.subplots(1, n, figsize=(size * n + 1, size), squeeze=False, dpi=110)
    for ax, (name, m) in zip(axes[0], matrices.items()):
        ax.imshow(m, cmap="Blues")
        ax.set_title(f"{name}: accuracy {np.trace(m) / max(m.sum(), 1):.3f}")
        ax.set_xticks(range(len(classes)), classes, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(len(classes)), classes, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("actual")
        if len(classes) <= 20:
            for (i, j), v in np.ndenumerate(m):
                ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
                        color="white" if v > m.max() / 2 else "black")
    fig.tight_layout()
    return fig


def per_class_table(report: dict) -> list[dict]:
    """One row per class (class, precision, recall, f1, support) of a classification report."""
    return [{"class": c, **{k: round(v, 4) for k, v in figures.items()}}
            for c, figures in report["per_class"].items()]
