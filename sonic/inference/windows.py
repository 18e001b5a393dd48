"""From any audio file to the log-mel windows a trained classifier scores, in bounded memory.

The preparation is ``extract_mels``' own, step for step: :func:`~sonic.audio.io.read_blocks`
(every format, rate and channel count ``read_audio`` accepts, the same errors for unusable files,
and the header checked against :class:`~sonic.audio.io.AudioLimits` before decoding), the mean
of the channels, soxr resampling to the checkpoint's rate, leading/trailing silence trimmed when
the checkpoint's features say so, then :class:`~sonic.features.mel.LogMel`. Only the last step
differs for long clips: instead of cropping the centre, the clip is cut into sliding windows and
each is scored. A clip no longer than one window gives exactly one window, padded at the end as
in training, so its log-mel is the row ``extract_mels`` stores for that file.

Memory: the file is decoded block by block, mixed to mono and resampled as a stream (soxr's
streaming resampler gives the same samples as one call), so what is held is the mono signal at
the checkpoint's rate (88 kB per second at 22.05 kHz) plus one batch of windows' log-mels.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from sonic.audio.io import AudioLimits, BadAudioError, read_error
from sonic.config import FeatureConfig
from sonic.features.mel import cached_logmel, fix_length
from sonic.features.stream import Decoded, decode_mono

MIN_WINDOW, MAX_WINDOW = 0.1, 60.0  # seconds
MIN_HOP_SHARE = 8  # hop >= window / 8: at most 8 windows over any sample
MAX_WINDOWS = 20_000  # per file: 3.5 h of 5 s windows every 0.625 s


class WindowingError(ValueError):
    """A window or hop out of bounds, or a file that would be cut into too many windows."""


@dataclass(frozen=True)
class Windowing:
    """Window and hop lengths in seconds (the window's default is the checkpoint's duration)."""

    window: float
    hop: float

    def __post_init__(self) -> None:
        if not MIN_WINDOW <= self.window <= MAX_WINDOW:
            raise WindowingError(f"window must be {MIN_WINDOW:g}-{MAX_WINDOW:g} s, got "
                                 f"{self.window:g}")
        if not self.window / MIN_HOP_SHARE <= self.hop <= MAX_WINDOW:
            raise WindowingError(f"hop must be at least window / {MIN_HOP_SHARE} "
                                 f"({self.window / MIN_HOP_SHARE:g} s) and at most "
                                 f"{MAX_WINDOW:g} s, got {self.hop:g}")

    @classmethod
    def default(cls, features: FeatureConfig, window: float | None = None,
                hop: float | None = None) -> Windowing:
        """``window`` defaults to ``features.duration``, ``hop`` to half the window."""
        window = features.duration if window is None else float(window)
        hop = window / 2 if hop is None else float(hop)
        return cls(window, hop)


@dataclass
class ClipWindows:
    """One file, decoded and cut into windows, or the reason it could not be.

    ``deferred``: too long to be cut in a decoding process and sent back whole; the caller
    scores it in batches with :func:`~sonic.features.stream.decode_mono` and
    :func:`window_batches` instead.
    """

    path: str
    mels: np.ndarray | None = None  # (W, n_mels, n_frames) float32 dB, each window in [-top_db, 0]
    starts: np.ndarray | None = None  # (W,) window start times, seconds from the file's start
    duration: float = 0.0  # seconds of the decoded file
    sample_rate: int = 0  # Hz of the file
    channels: int = 0
    error: str | None = None
    deferred: bool = False


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


def plan_windows(decoded: Decoded, features: FeatureConfig, windowing: Windowing
                 ) -> tuple[np.ndarray, int]:
    """Window start samples in the trimmed wave, and the window size in samples; a file that
    would give more than :data:`MAX_WINDOWS` windows is a BadAudioError naming it."""
    size = int(round(windowing.window * features.sample_rate))
    hop = max(1, int(round(windowing.hop * features.sample_rate)))
    n = len(decoded.wave)
    count = 1 if n <= size else (n - size) // hop + 2
    if count > MAX_WINDOWS:
        raise BadAudioError(decoded.path, f"would be cut into {count} windows of "
                                          f"{windowing.window:g} s every {windowing.hop:g} s; "
                                          f"the limit is {MAX_WINDOWS}: use a longer hop")
    return window_starts(n, size, hop), size


@torch.no_grad()
def window_batches(decoded: Decoded, features: FeatureConfig, windowing: Windowing,
                   batch: int = 16) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The log-mel windows of a decoded file, ``batch`` at a time.

    Yields
    ------
    mels : (B, n_mels, frames) float32 dB; ``frames`` is ``features.n_frames`` when the window
        is the checkpoint's duration. Non-finite values are a BadAudioError naming the file.
    starts : (B,) float64 seconds, on the file's own time axis (trimmed silence included).
    """
    starts, size = plan_windows(decoded, features, windowing)
    wave, logmel = decoded.wave, cached_logmel(features)
    for i in range(0, len(starts), batch):
        part = starts[i:i + batch]
        clips = np.stack([fix_length(wave[s:s + size], size) for s in part]).astype(np.float32)
        mels = logmel(torch.from_numpy(clips)).numpy()
        if not np.isfinite(mels).all():
            raise BadAudioError(decoded.path, "its log-mel spectrogram is not finite; "
                                              "re-export it as clean PCM")
        yield mels, (part + decoded.start) / features.sample_rate


def load_windows(path: str | Path, features: FeatureConfig, windowing: Windowing,
                 limits: AudioLimits = AudioLimits()) -> ClipWindows:
    """Read one file and cut it into log-mel windows; an unusable file comes back with ``error``.

    Never raises for a bad file (any exception while reading it, MemoryError included, becomes
    its ``error``), so that one bad file among many loses nothing else.
    """
    try:
        decoded = decode_mono(path, features, limits)
        batches = list(window_batches(decoded, features, windowing, batch=64))
    except Exception as err:  # noqa: BLE001 - one file's failure is that file's row
        return ClipWindows(str(path), error=read_error(err))
    info = decoded.info
    return ClipWindows(str(path), np.concatenate([m for m, _ in batches]),
                       np.concatenate([s for _, s in batches]), info.duration,
                       info.sample_rate, info.channels)


@torch.no_grad()
def one_window(decoded: Decoded, features: FeatureConfig, windowing: Windowing,
               index: int) -> tuple[np.ndarray, float, int]:
    """The log-mel (n_mels, frames) dB of window ``index`` (clamped to the last), its start in
    seconds on the file's time axis, and the number of windows — only that window computed."""
    starts, size = plan_windows(decoded, features, windowing)
    index = min(index, len(starts) - 1)
    s = starts[index]
    clip = fix_length(decoded.wave[s:s + size], size).astype(np.float32)
    mel = cached_logmel(features)(torch.from_numpy(clip[None]))[0].numpy()
    if not np.isfinite(mel).all():
        raise BadAudioError(decoded.path, "its log-mel spectrogram is not finite; "
                                          "re-export it as clean PCM")
    return mel, float(s + decoded.start) / features.sample_rate, len(starts)
