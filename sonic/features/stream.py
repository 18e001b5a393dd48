"""Decoding a file to the mono signal a model sees, in bounded memory.

The file is read in checked blocks (:func:`~sonic.audio.io.read_blocks`), each mixed to mono
and resampled to the feature rate as a stream (soxr's streaming resampler gives exactly the
samples of one call, whatever the block sizes): the same samples as
:func:`~sonic.features.mel.trimmed_signal` of :func:`~sonic.audio.io.read_audio`.

Two ways to use them:

- :func:`decode_mono` keeps the whole mono signal (88 kB per second at 22.05 kHz): for clips.
- :func:`scan_mono` then :func:`mono_pieces`: two passes over the file that never hold more than
  a block. The first finds the signal's length and the silence trim (frame powers, 1.2 MB per
  hour); the second yields the signal again, piece by piece, for whatever cuts it (windows, the
  centre crop). Decoding twice costs a few seconds per hour of audio; memory stays flat
  whatever the file's length.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import soxr

from sonic.audio.io import BLOCK_FRAMES, AudioInfo, AudioLimits, probe, read_blocks
from sonic.config import FeatureConfig
from sonic.features.mel import AMIN, fix_length, to_mono

WHOLE_UP_TO_S = 60.0  # files up to this long are decoded whole (5 MB); longer ones streamed
TRIM_FRAME, TRIM_HOP = 2048, 512  # trim_bounds' frames


@dataclass
class Decoded:
    """A file as mono float32 at the feature rate, with its trimmed span."""

    path: str
    signal: np.ndarray  # (samples,) the whole file, mono, at features.sample_rate
    start: int  # first sample kept by the trim
    stop: int  # one past the last
    info: AudioInfo

    @property
    def wave(self) -> np.ndarray:
        return self.signal[self.start:self.stop]


@dataclass(frozen=True)
class Scanned:
    """What the first pass over a file learns, without keeping its samples."""

    path: str
    length: int  # samples of the mono signal at features.sample_rate
    start: int  # first sample kept by the trim
    stop: int  # one past the last
    info: AudioInfo


def _mono_stream(info: AudioInfo, blocks: Iterator[np.ndarray], rate: int
                 ) -> Iterator[np.ndarray]:
    """(samples,) float32 mono pieces at ``rate`` from (channels, frames) blocks at ``info``'s
    rate; together, exactly ``soxr.resample`` of the whole mono signal."""
    stream = None if info.sample_rate == rate else soxr.ResampleStream(
        info.sample_rate, rate, 1, dtype="float32", quality="HQ")
    for block in blocks:
        mono = to_mono(block).astype(np.float32)
        yield mono if stream is None else stream.resample_chunk(mono, last=False)
    if stream is not None:
        yield stream.resample_chunk(np.zeros(0, np.float32), last=True)


def _resampled_mono(info: AudioInfo, blocks: Iterator[np.ndarray], rate: int) -> np.ndarray:
    """The whole of :func:`_mono_stream` in one preallocated array (no second copy)."""
    out = np.empty(int(np.ceil(info.frames * rate / info.sample_rate)) + 16, np.float32)
    filled, extra = 0, []
    for piece in _mono_stream(info, blocks, rate):
        fit = min(len(piece), len(out) - filled)
        out[filled:filled + fit] = piece[:fit]
        if fit < len(piece):
            extra.append(piece[fit:].copy())
        filled += fit
    return np.concatenate([out[:filled], *extra]) if extra else out[:filled]


def _frame_power(frames: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """Mean square (float64) of each row of ``frames`` (F, frame), ``chunk`` rows at a time."""
    return np.concatenate([np.mean(frames[i:i + chunk].astype(np.float64) ** 2, axis=1)
                           for i in range(0, len(frames), chunk)] or [np.zeros(0)])


def _bounds(power: np.ndarray, n: int, top_db: float, hop: int) -> tuple[int, int]:
    """:func:`~sonic.features.mel.trim_bounds`' rule on the frame powers of ``n`` samples."""
    rms_db = 10 * np.log10(np.maximum(power, AMIN))
    loud = np.flatnonzero(rms_db > rms_db.max() - top_db)
    if len(loud) == 0:
        return 0, n
    return int(loud[0] * hop), int(min(n, (loud[-1] + 1) * hop))


def trim_bounds_bounded(wave: np.ndarray, top_db: float, frame: int = TRIM_FRAME,
                        hop: int = TRIM_HOP, chunk: int = 1024) -> tuple[int, int]:
    """:func:`sonic.features.mel.trim_bounds`, the same arithmetic frame by frame, computed
    ``chunk`` frames at a time: 16 MB at most instead of 16 kB per frame of the whole file
    (2.5 GB for an hour at 22.05 kHz)."""
    if len(wave) < frame:
        return 0, len(wave)
    padded = np.pad(wave, frame // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, frame)[::hop]
    return _bounds(_frame_power(frames, chunk), len(wave), top_db, hop)


class _StreamingTrim:
    """:func:`trim_bounds_bounded` of a signal fed piece by piece: the same frames (zero padding
    of ``frame // 2`` at both ends, one every ``hop``), holding one frame plus one piece."""

    def __init__(self, frame: int = TRIM_FRAME, hop: int = TRIM_HOP):
        self.frame, self.hop = frame, hop
        self.pending = np.zeros(frame // 2, np.float32)  # padded samples not yet past a frame
        self.powers: list[np.ndarray] = []
        self.n = 0  # samples fed

    def feed(self, piece: np.ndarray) -> None:
        self.n += len(piece)
        self._frames(piece)

    def _frames(self, piece: np.ndarray) -> None:
        self.pending = np.concatenate([self.pending, piece])
        if len(self.pending) < self.frame:
            return
        count = (len(self.pending) - self.frame) // self.hop + 1
        frames = np.lib.stride_tricks.sliding_window_view(self.pending, self.frame)[::self.hop]
        self.powers.append(_frame_power(frames[:count]))
        self.pending = self.pending[count * self.hop:]

    def bounds(self, top_db: float) -> tuple[int, int]:
        """After the last piece: ``(start, stop)`` as :func:`trim_bounds_bounded` gives them."""
        if self.n < self.frame:
            return 0, self.n
        self._frames(np.zeros(self.frame // 2, np.float32))  # the end's padding
        return _bounds(np.concatenate(self.powers), self.n, top_db, self.hop)


def decode_mono(path: str | Path, features: FeatureConfig,
                limits: AudioLimits = AudioLimits()) -> Decoded:
    """Decode a file in blocks to mono at ``features.sample_rate`` and find its trimmed span
    (``extract_mels``' ``trimmed_signal``, sample for sample). Raises BadAudioError."""
    info, blocks = read_blocks(path, limits)
    signal = _resampled_mono(info, blocks, features.sample_rate)
    start, stop = (trim_bounds_bounded(signal, features.trim_db) if features.trim
                   else (0, len(signal)))
    return Decoded(str(path), signal, start, stop, info)


def mono_pieces(path: str | Path, features: FeatureConfig, limits: AudioLimits = AudioLimits(),
                block_frames: int = BLOCK_FRAMES) -> Iterator[np.ndarray]:
    """The file's mono signal at ``features.sample_rate``, one decoded block at a time (every
    block checked as :func:`~sonic.audio.io.read_blocks` does). Raises BadAudioError."""
    info, blocks = read_blocks(path, limits, block_frames)
    return _mono_stream(info, blocks, features.sample_rate)


def scan_mono(path: str | Path, features: FeatureConfig, limits: AudioLimits = AudioLimits(),
              block_frames: int = BLOCK_FRAMES) -> Scanned:
    """First pass: the mono signal's length and trimmed span, as :func:`decode_mono` finds them,
    holding one block at a time. Raises BadAudioError (every check of the whole file)."""
    info, blocks = read_blocks(path, limits, block_frames)
    trim, n = _StreamingTrim(), 0
    for piece in _mono_stream(info, blocks, features.sample_rate):
        n += len(piece)
        if features.trim:
            trim.feed(piece)
    start, stop = trim.bounds(features.trim_db) if features.trim else (0, n)
    return Scanned(str(path), n, start, stop, info)


def take(pieces: Iterator[np.ndarray], start: int, stop: int) -> np.ndarray:
    """Samples ``start:stop`` of the signal that ``pieces`` make up, holding only those."""
    out, at = [], 0
    for piece in pieces:
        lo, hi = max(start - at, 0), min(stop - at, len(piece))
        if lo < hi:
            out.append(piece[lo:hi].copy())
        at += len(piece)
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def clip_wave(path: str | Path, features: FeatureConfig, limits: AudioLimits = AudioLimits(),
              whole_up_to: float = WHOLE_UP_TO_S) -> np.ndarray:
    """``extract_mels``' clip: the trimmed mono signal, its centre cropped or its end padded to
    ``features.n_samples`` (float32). Files longer than ``whole_up_to`` seconds are read in two
    passes (:func:`scan_mono`, then only the crop kept), so an hour costs what a clip does."""
    if probe(path, limits).duration <= whole_up_to:
        return fix_length(decode_mono(path, features, limits).wave, features.n_samples)
    scanned = scan_mono(path, features, limits)
    start, n = scanned.start, scanned.stop - scanned.start
    if n > features.n_samples:  # fix_length's centre crop
        start += (n - features.n_samples) // 2
    stop = start + min(n, features.n_samples)
    return fix_length(take(mono_pieces(path, features, limits), start, stop),
                      features.n_samples)
