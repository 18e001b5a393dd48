"""From any audio file to the log-mel windows a trained classifier scores.

The preparation is ``extract_mels``' own, step for step: :func:`~sonic.audio.io.read_audio`
(every format, rate and channel count it accepts, and the same errors for unusable files), the
mean of the channels, soxr resampling to the checkpoint's rate, leading/trailing silence trimmed
when the checkpoint's features say so, then :class:`~sonic.features.mel.LogMel`. Only the last
step differs for long clips: instead of cropping the centre, the clip is cut into sliding
windows and each is scored. A clip no longer than one window gives exactly one window, padded at
the end as in training, so its log-mel is the row ``extract_mels`` stores for that file.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sonic.audio.io import BadAudioError, read_audio
from sonic.config import FeatureConfig
from sonic.features.mel import cached_logmel, fix_length, trimmed_signal


@dataclass(frozen=True)
class Windowing:
    """Window and hop lengths in seconds (the window's default is the checkpoint's duration)."""

    window: float
    hop: float

    @classmethod
    def default(cls, features: FeatureConfig, window: float | None = None,
                hop: float | None = None) -> Windowing:
        """``window`` defaults to ``features.duration``, ``hop`` to half the window."""
        window = features.duration if window is None else float(window)
        hop = window / 2 if hop is None else float(hop)
        if window <= 0 or hop <= 0:
            raise ValueError(f"window and hop must be positive seconds, got {window} and {hop}")
        return cls(window, hop)


@dataclass
class ClipWindows:
    """One file, decoded and cut into windows, or the reason it could not be."""

    path: str
    mels: np.ndarray | None = None  # (W, n_mels, n_frames) float32 dB, each window in [-top_db, 0]
    starts: np.ndarray | None = None  # (W,) window start times, seconds from the file's start
    duration: float = 0.0  # seconds of the decoded file
    sample_rate: int = 0  # Hz of the file
    channels: int = 0
    error: str | None = None


def window_starts(n: int, size: int, hop: int) -> np.ndarray:
    """Start samples of windows of ``size`` every ``hop`` over ``n`` samples.

    One window at 0 when ``n <= size``. Otherwise every ``hop``, and the last window always ends
    exactly at ``n``, so every sample is scored and no window runs past the end: a tail window
    is added — or, when it would start less than half a hop after the last one (a hop rounded to
    whole samples leaves such near-duplicates) and the window before still reaches it, the last
    window moves there instead.
    """
    if n <= size:
        return np.zeros(1, dtype=np.int64)
    starts = np.arange(0, n - size + 1, hop, dtype=np.int64)
    tail = n - size
    if tail - starts[-1] < hop / 2 and len(starts) > 1 and starts[-2] + size >= tail:
        starts[-1] = tail
        return starts
    return np.append(starts, tail) if tail > starts[-1] else starts


@torch.no_grad()
def windows_of(audio: np.ndarray, sr: int, features: FeatureConfig,
               windowing: Windowing) -> tuple[np.ndarray, np.ndarray]:
    """Decoded audio (channels, samples) at ``sr`` Hz → log-mel windows and their start times.

    Returns
    -------
    mels : (W, n_mels, frames) float32 dB; ``frames`` is ``features.n_frames`` when the window is
        the checkpoint's duration.
    starts : (W,) float64 seconds, on the file's own time axis (trimmed silence included).
    """
    wave, offset = trimmed_signal(audio, sr, features)  # extract_mels' steps before fix_length
    size = int(round(windowing.window * features.sample_rate))
    hop = max(1, int(round(windowing.hop * features.sample_rate)))
    starts = window_starts(len(wave), size, hop)
    batch = np.stack([fix_length(wave[s:s + size], size) for s in starts]).astype(np.float32)
    mels = cached_logmel(features)(torch.from_numpy(batch)).numpy()
    return mels, (starts + offset) / features.sample_rate


def load_windows(path: str | Path, features: FeatureConfig, windowing: Windowing) -> ClipWindows:
    """Read one file and cut it into log-mel windows; an unusable file comes back with ``error``.

    Never raises for a bad file, so that one bad file among many loses nothing else.
    """
    try:
        audio, sr = read_audio(path)
    except BadAudioError as err:
        return ClipWindows(str(path), error=err.reason)
    mels, starts = windows_of(audio, sr, features, windowing)
    return ClipWindows(str(path), mels, starts, audio.shape[1] / sr, sr, audio.shape[0])
