"""What scoring one file gives: clip-level probabilities, each window's own, and how they read
as labels (top-k, or ``unknown`` below a confidence threshold) and as JSON."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

UNKNOWN = "unknown"  # the label of a clip or window whose confidence is below the threshold


@dataclass
class Prediction:
    """The result for one file: clip-level probabilities and, per window, its own."""

    path: str
    model: str
    classes: list[str]
    probs: np.ndarray | None = None  # (C,) mean of the window probabilities
    window_probs: np.ndarray | None = None  # (W, C)
    starts: np.ndarray | None = None  # (W,) seconds
    window: float = 0.0  # seconds
    precision: str = "fp32"  # of the forward passes: fp32 or bf16
    duration: float = 0.0  # seconds of the file
    sample_rate: int = 0
    channels: int = 0
    error: str | None = None
    levels: np.ndarray | None = None  # (W,) dB RMS of each window (predict_file only)
    band_db: np.ndarray | None = None  # (F, n_mels) unnormalised dB of short frames (predict_file)
    band_times: np.ndarray | None = None  # (F,) seconds, their centres
    unknown_threshold: float | None = None  # confidence below it: the label is ``unknown``

    @property
    def ok(self) -> bool:
        return self.error is None

    def label(self, probs: np.ndarray) -> tuple[str, float]:
        """The top class and its confidence (max softmax), or ``unknown`` where the confidence
        is below :attr:`unknown_threshold`."""
        best = int(np.argmax(probs))
        confidence = float(probs[best])
        if self.unknown_threshold is not None and confidence < self.unknown_threshold:
            return UNKNOWN, confidence
        return self.classes[best], confidence

    def labelled(self, probs: np.ndarray, k: int) -> dict:
        label, confidence = self.label(probs)
        return {"label": label, "confidence": round(confidence, 6), "top": self.top(probs, k)}

    def top(self, probs: np.ndarray, k: int) -> list[dict]:
        order = np.argsort(-probs, kind="stable")[:k]
        return [{"label": self.classes[i], "probability": round(float(probs[i]), 6)} for i in order]

    def to_dict(self, top_k: int = 3) -> dict:
        """The JSON structure shared by ``sonic predict --format json`` and ``POST /api/predict``."""
        if not self.ok:
            return {"file": self.path, "status": "error", "error": self.error, "model": self.model}
        windows = [{"start_s": round(float(s), 3),
                    "end_s": round(float(min(s + self.window, self.duration)), 3),
                    **self.labelled(p, top_k)}
                   for s, p in zip(self.starts, self.window_probs)]
        return {"file": self.path, "status": "ok", "model": self.model,
                "duration_s": round(self.duration, 3), "sample_rate": self.sample_rate,
                "channels": self.channels, "window_s": self.window, "precision": self.precision,
                "unknown_threshold": self.unknown_threshold, **self.labelled(self.probs, top_k),
                "windows": windows}
