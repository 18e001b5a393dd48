"""Decoding a file to the mono signal a model sees, in bounded memory.

The file is read in checked blocks (:func:`~sonic.audio.io.read_blocks`), each mixed to mono
and resampled to the feature rate as a stream (soxr's streaming resampler gives exactly the
samples of one call), into one preallocated array; the silence trim is found ``chunk`` frames
at a time. So a file costs its mono signal at the feature rate (88 kB per second at 22.05 kHz)
and never its decoded channels at the file's rate: the same samples as
:func:`~sonic.features.mel.trimmed_signal` of :func:`~sonic.audio.io.read_audio`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import soxr

from sonic.audio.io import AudioInfo, AudioLimits, read_blocks
from sonic.config import FeatureConfig
from sonic.features.mel import AMIN, to_mono


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


def _resampled_mono(info: AudioInfo, blocks: Iterator[np.ndarray], rate: int) -> np.ndarray:
    """(samples,) float32 mono at ``rate`` from (channels, frames) blocks at ``info``'s rate,
    written into one preallocated array (no second copy of a long file)."""
    stream = None if info.sample_rate == rate else soxr.ResampleStream(
        info.sample_rate, rate, 1, dtype="float32", quality="HQ")
    out = np.empty(int(np.ceil(info.frames * rate / info.sample_rate)) + 16, np.float32)
    filled, extra = 0, []
    for block in blocks:
        mono = to_mono(block).astype(np.float32)
        piece = mono if stream is None else stream.resample_chunk(mono, last=False)
        filled = _append(out, filled, piece, extra)
    if stream is not None:
        filled = _append(out, filled, stream.resample_chunk(np.zeros(0, np.float32), last=True),
                         extra)
    return np.concatenate([out[:filled], *extra]) if extra else out[:filled]


def _append(out: np.ndarray, filled: int, piece: np.ndarray, extra: list) -> int:
    """Copy ``piece`` into ``out`` after ``filled`` samples (overflow, if any, into ``extra``)."""
    fit = min(len(piece), len(out) - filled)
    out[filled:filled + fit] = piece[:fit]
    if fit < len(piece):
        extra.append(piece[fit:].copy())
    return filled + fit


def trim_bounds_bounded(wave: np.ndarray, top_db: float, frame: int = 2048,
                        hop: int = 512, chunk: int = 1024) -> tuple[int, int]:
    """:func:`sonic.features.mel.trim_bounds`, the same arithmetic frame by frame, computed
    ``chunk`` frames at a time: 16 MB at most instead of 16 kB per frame of the whole file
    (2.5 GB for an hour at 22.05 kHz)."""
    if len(wave) < frame:
        return 0, len(wave)
    padded = np.pad(wave, frame // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, frame)[::hop]
    power = np.concatenate([np.mean(frames[i:i + chunk].astype(np.float64) ** 2, axis=1)
                            for i in range(0, len(frames), chunk)])
    rms_db = 10 * np.log10(np.maximum(power, AMIN))
    loud = np.flatnonzero(rms_db > rms_db.max() - top_db)
    if len(loud) == 0:
        return 0, len(wave)
    return int(loud[0] * hop), int(min(len(wave), (loud[-1] + 1) * hop))


def decode_mono(path: str | Path, features: FeatureConfig,
                limits: AudioLimits = AudioLimits()) -> Decoded:
    """Decode a file in blocks to mono at ``features.sample_rate`` and find its trimmed span
    (``extract_mels``' ``trimmed_signal``, sample for sample). Raises BadAudioError."""
    info, blocks = read_blocks(path, limits)
    signal = _resampled_mono(info, blocks, features.sample_rate)
    start, stop = (trim_bounds_bounded(signal, features.trim_db) if features.trim
                   else (0, len(signal)))
    return Decoded(str(path), signal, start, stop, info)
