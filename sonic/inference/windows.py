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
streaming resampler gives the same samples as one call). A clip up to
:data:`~sonic.features.stream.WHOLE_UP_TO_S` is held as its mono signal at the checkpoint's
rate (88 kB per second at 22.05 kHz); a longer file is read twice (:func:`stream_windows`): once
for its length and trim, once cut into windows as the samples arrive, so what is held is one
window, one block and one batch of log-mels, whatever the file's length.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, NamedTuple

import numpy as np
import torch

from sonic.audio.io import (BLOCK_FRAMES, AudioInfo, AudioLimits, BadAudioError, probe,
                             read_error)
from sonic.config import FeatureConfig
from sonic.features.mel import AMIN, cached_logmel, fix_length, power_to_db
from sonic.features.stream import WHOLE_UP_TO_S, Decoded, decode_mono, mono_pieces, scan_mono

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
    return _plan(decoded.path, len(decoded.wave), features, windowing)


def _plan(path: str, n: int, features: FeatureConfig, windowing: Windowing
          ) -> tuple[np.ndarray, int]:
    """:func:`plan_windows` of a trimmed wave of ``n`` samples."""
    size = int(round(windowing.window * features.sample_rate))
    hop = max(1, int(round(windowing.hop * features.sample_rate)))
    count = 1 if n <= size else (n - size) // hop + 2
    if count > MAX_WINDOWS:
        raise BadAudioError(path, f"would be cut into {count} windows of "
                                  f"{windowing.window:g} s every {windowing.hop:g} s; "
                                  f"the limit is {MAX_WINDOWS}: use a longer hop")
    return window_starts(n, size, hop), size


def _logmels(path: str, clips: list[np.ndarray], size: int,
             features: FeatureConfig) -> tuple[np.ndarray, torch.Tensor]:
    """(B, n_mels, frames) float32 dB of window samples, each padded at the end to ``size``,
    and their mel power before normalisation (B, n_mels, frames); a non-finite value is a
    BadAudioError naming the file."""
    waves = np.stack([fix_length(c, size) for c in clips]).astype(np.float32)
    power = cached_logmel(features).mel_power(torch.from_numpy(waves))
    mels = power_to_db(power, features.top_db).numpy()
    if not np.isfinite(mels).all():
        raise BadAudioError(path, "its log-mel spectrogram is not finite; re-export it as clean "
                                  "PCM")
    return mels, power


def band_db(power: torch.Tensor) -> torch.Tensor:
    """Mel power → unnormalised dB (no peak reference, no floor): the activity detector's
    levels, comparable between windows."""
    return 10.0 * torch.log10(power.clamp_min(AMIN))


def band_frames(power: torch.Tensor, starts: np.ndarray, lengths: list[int], first: int,
                total: int, size: int, features: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    """The frames of windows ``first …`` (of ``total``) that tile the file: each window gives
    those whose centres lie nearer its own centre than a neighbour's, so every frame comes from
    the window where it sits mid-way (away from the zero padding at window edges).

    ``power`` (B, n_mels, frames) mel power of the batch's windows, ``starts`` (total,) every
    window's start sample, ``lengths`` the batch's window lengths in samples (the last may be
    short). Returns (F, n_mels) float16 dB, unnormalised, and (F,) float64 frame centres in
    seconds on the file's time axis.
    """
    hop_length, rate = features.hop_length, features.sample_rate
    centres = starts + size / 2
    db = band_db(power).numpy()
    parts, times = [], []
    for b, n in enumerate(lengths):
        j = first + b
        at = starts[j] + hop_length * np.arange(power.shape[-1])  # frame centres, samples
        keep = at < starts[j] + n
        if j > 0:
            keep &= at >= (centres[j - 1] + centres[j]) / 2
        if j < total - 1:
            keep &= at < (centres[j] + centres[j + 1]) / 2
        parts.append(db[b][:, keep].T)
        times.append(at[keep] / rate)
    return np.concatenate(parts).astype(np.float16), np.concatenate(times)


def window_batches(decoded: Decoded, features: FeatureConfig, windowing: Windowing,
                   batch: int = 16) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The log-mel windows of a decoded file, ``batch`` at a time.

    Yields
    ------
    mels : (B, n_mels, frames) float32 dB; ``frames`` is ``features.n_frames`` when the window
        is the checkpoint's duration. Non-finite values are a BadAudioError naming the file.
    starts : (B,) float64 seconds, on the file's own time axis (trimmed silence included).
    """
    return ((b.mels, b.starts) for b in _whole(decoded, features, windowing, batch))


class WindowBatch(NamedTuple):
    """Consecutive windows of one file."""

    mels: np.ndarray  # (B, n_mels, frames) float32 dB
    starts: np.ndarray  # (B,) float64 seconds on the file's time axis
    levels: np.ndarray  # (B,) dB RMS of each window's samples (full scale: 0 dB)
    band_db: np.ndarray  # (F, n_mels) float16 unnormalised dB of the frames these windows tile
    band_times: np.ndarray  # (F,) seconds, those frames' centres (see :func:`band_frames`)


def stream_windows(path: str | Path, features: FeatureConfig, windowing: Windowing,
                   limits: AudioLimits = AudioLimits(), batch: int = 16,
                   whole_up_to: float = WHOLE_UP_TO_S, block_frames: int = BLOCK_FRAMES
                   ) -> tuple[AudioInfo, Iterator[WindowBatch]]:
    """The windows of any file, ``batch`` at a time, in memory that does not grow with its
    length: the same windows as :func:`window_batches` of :func:`decode_mono`.

    A file up to ``whole_up_to`` seconds is decoded whole; a longer one in two passes: the
    first (done before this returns, so a bad file, or one of too many windows, raises here)
    finds its length and trim; the iterator decodes it again and cuts each window as its last
    sample arrives. Raises BadAudioError, at once or while iterating.
    """
    info = probe(path, limits)
    if info.duration <= whole_up_to:
        decoded = decode_mono(path, features, limits)
        return decoded.info, _whole(decoded, features, windowing, batch)
    scanned = scan_mono(path, features, limits, block_frames)
    starts, size = _plan(str(path), scanned.stop - scanned.start, features, windowing)
    spans = [(scanned.start + s, min(scanned.start + s + size, scanned.stop)) for s in starts]
    pieces = mono_pieces(path, features, limits, block_frames)
    return scanned.info, _batched(str(path), _cut(pieces, spans), starts + scanned.start, size,
                                  features, batch)


def _whole(decoded: Decoded, features: FeatureConfig, windowing: Windowing,
           batch: int) -> Iterator[WindowBatch]:
    starts, size = plan_windows(decoded, features, windowing)
    clips = (decoded.wave[s:s + size] for s in starts)
    return _batched(decoded.path, clips, starts + decoded.start, size, features, batch)


@torch.no_grad()
def _batched(path: str, clips: Iterator[np.ndarray], starts: np.ndarray, size: int,
             features: FeatureConfig, batch: int) -> Iterator[WindowBatch]:
    """``clips`` (each window's samples, starting at ``starts``: samples on the file's time
    axis) as log-mels, ``batch`` windows at a time."""
    part: list[np.ndarray] = []
    for i, clip in enumerate(clips, 1):
        part.append(clip)
        if len(part) == batch or i == len(starts):
            level = [float(np.dot(c, c)) / max(len(c), 1) for c in part]
            mels, power = _logmels(path, part, size, features)
            band_db, band_times = band_frames(power, starts, [len(c) for c in part],
                                              i - len(part), len(starts), size, features)
            yield WindowBatch(mels, starts[i - len(part):i] / features.sample_rate,
                              10 * np.log10(np.maximum(level, 1e-20)), band_db, band_times)
            part = []


def _cut(pieces: Iterator[np.ndarray], spans: list[tuple[int, int]]) -> Iterator[np.ndarray]:
    """The samples ``a:b`` of each (ordered, overlapping) span of the signal ``pieces`` make up,
    each as soon as its last sample arrives; held: the samples from the next span's start on."""
    held, at, i = np.zeros(0, np.float32), 0, 0  # held[0] is sample ``at`` of the signal
    for piece in pieces:
        held = np.concatenate([held, piece])
        while i < len(spans) and at + len(held) >= spans[i][1]:
            a, b = spans[i]
            yield held[a - at:b - at].copy()
            i += 1
        drop = min(len(held), (spans[i][0] if i < len(spans) else at + len(held)) - at)
        if drop > 0:
            held, at = held[drop:], at + drop
    for a, b in spans[i:]:  # the second pass came up short (the file changed): what is there
        yield held[max(a - at, 0):max(b - at, 0)].copy()


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


def one_window(decoded: Decoded, features: FeatureConfig, windowing: Windowing,
               index: int) -> tuple[np.ndarray, float, int]:
    """The log-mel (n_mels, frames) dB of window ``index`` (clamped to the last), its start in
    seconds on the file's time axis, and the number of windows — only that window computed."""
    starts, size = plan_windows(decoded, features, windowing)
    index = min(index, len(starts) - 1)
    s = starts[index]
    with torch.no_grad():
        mel = _logmels(decoded.path, [decoded.wave[s:s + size]], size, features)[0][0]
    return mel, float(s + decoded.start) / features.sample_rate, len(starts)
