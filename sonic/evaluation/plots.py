"""Confusion matrices as DVC plot data and as a picture."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from sonic.runtime import atomic_path  # noqa: E402


def write_confusion_csv(path: str | Path, actual: list[str], predicted: list[str]) -> None:
    """One row per clip (actual, predicted): the input of DVC's ``confusion`` template."""
    with atomic_path(path) as tmp:
        pd.DataFrame({"actual": actual, "predicted": predicted}).to_csv(tmp, index=False)


def save_confusion_png(path: str | Path, matrices: dict[str, np.ndarray], classes: list[str]) -> None:
    """Side-by-side confusion matrices (rows actual, columns predicted), one per model."""
    n = len(matrices)
    size = 1.2 + 0.45 * len(classes)
    fig, axes = plt.subplots(1, n, figsize=(size * n + 1, size), squeeze=False)
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
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
