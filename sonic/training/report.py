"""Writing per-epoch curves (DVC plots) and final figures (DVC metrics) of a training run."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from sonic.runtime import atomic_path, write_json


def write_history(path: str | Path, history: list[dict[str, float]]) -> None:
    """One CSV row per epoch (epoch, train_loss, val_loss, val_accuracy, lr), for `dvc plots`."""
    with atomic_path(path) as tmp:
        pd.DataFrame(history).to_csv(tmp, index=False, float_format="%.6g")


def write_metrics(path: str | Path, metrics: dict) -> None:
    write_json(path, {k: round(v, 6) if isinstance(v, float) else v for k, v in metrics.items()})
