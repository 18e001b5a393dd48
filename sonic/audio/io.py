"""Reading audio files, with every way a file can be unusable turned into one clear error.

Decoding is bounded: the header (``soundfile.info``) is read first, so a file whose sample rate,
channel count or duration is out of bounds (:class:`AudioLimits`) is refused before a sample is
decoded, and the samples are then read in blocks, each checked as it arrives, never more than
the header promised and the limit allows.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf

BLOCK_FRAMES = 1 << 16  # frames per decoded block: 1.5 s at 44.1 kHz, 0.5 MB per stereo block


class BadAudioError(Exception):
    """A file that cannot be used as a clip; ``reason`` says why and what to do about it."""

    def __init__(self, path: str | Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


@dataclass(frozen=True)
class AudioLimits:
    """What a file may be before it is decoded, and what its samples may hold.

    ``max_seconds`` is None for no duration limit; ``hint`` names the option that sets it and is
    appended to the error (e.g. ``"sonic serve --max-seconds"``). ``max_amplitude`` bounds the
    absolute sample value (float files may exceed full scale 1.0 a little; 100 is +40 dB over it,
    beyond any recording, and far below where the spectrogram's power overflows float32).
    """

    max_seconds: float | None = None
    min_rate: int = 4_000
    max_rate: int = 192_000
    max_channels: int = 32
    max_amplitude: float = 100.0
    hint: str = ""


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says: frames per channel, sample rate (Hz) and channels."""

    frames: int
    sample_rate: int
    channels: int

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


def audio_extensions() -> frozenset[str]:
    """Lower-case suffixes (with the dot) of every container format libsndfile reads."""
    return frozenset({f".{name.lower()}" for name in sf.available_formats()} | {".oga", ".aif"})


def _wav_is_truncated(path: Path) -> bool:
    """True if a RIFF/WAVE file's ``data`` chunk claims more bytes than the file holds.

    The file is recognised by its first 12 bytes, whatever its name. libsndfile quietly reads
    what is there, so without this check a cut-off download would pass as a shorter clip.
    """
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return False
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk_id, chunk_size = struct.unpack("<4sI", f.read(8))
            if chunk_id == b"data":
                return chunk_size != 0xFFFFFFFF and pos + 8 + chunk_size > size
            pos += 8 + chunk_size + (chunk_size & 1)
    return False


def _unreadable(path: Path, err: Exception) -> BadAudioError:
    return BadAudioError(path, f"not a readable audio file ({err}); convert it to WAV/FLAC/OGG "
                               "or remove it")


def probe(path: str | Path, limits: AudioLimits = AudioLimits()) -> AudioInfo:
    """The header of a usable file, or BadAudioError for one that is missing, empty, truncated,
    undecodable, without samples, or out of ``limits`` — without decoding a sample."""
    path = Path(path)
    if not path.is_file():
        raise BadAudioError(path, "file not found; check the path or the layout's index file")
    if path.stat().st_size == 0:
        raise BadAudioError(path, "empty file (0 bytes); re-copy or delete it")
    if _wav_is_truncated(path):
        raise BadAudioError(path, "truncated WAV: the header promises more audio than the file "
                                  "holds; re-download or re-export it")
    try:
        header = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as err:
        raise _unreadable(path, err) from None
    info = AudioInfo(int(header.frames), int(header.samplerate), int(header.channels))
    _check_header(path, info, limits)
    return info


def _check_header(path: Path, info: AudioInfo, limits: AudioLimits) -> None:
    hint = f" ({limits.hint})" if limits.hint else ""
    if not limits.min_rate <= info.sample_rate <= limits.max_rate:
        raise BadAudioError(path, f"sample rate {info.sample_rate} Hz is outside "
                                  f"{limits.min_rate // 1000}-{limits.max_rate // 1000} kHz; "
                                  "resample it (e.g. to 44.1 kHz) first")
    if not 1 <= info.channels <= limits.max_channels:
        raise BadAudioError(path, f"{info.channels} channels; at most {limits.max_channels} "
                                  "are read: mix it down first")
    if info.frames <= 0:
        raise BadAudioError(path, "no samples (0 frames); re-export it or delete it")
    if limits.max_seconds is not None and info.duration > limits.max_seconds:
        raise BadAudioError(path, f"{info.duration:.0f} s long; the limit is "
                                  f"{limits.max_seconds:g} s{hint}: cut it into shorter files "
                                  "or raise the limit")


class _SampleChecks:
    """Checks on the samples, block by block, with what the end-of-file checks need."""

    def __init__(self, path: Path, limits: AudioLimits):
        self.path, self.limits = path, limits
        self.frames, self.peak, self.mono_peak = 0, 0.0, 0.0

    def block(self, block: np.ndarray) -> None:
        """One (frames, channels) float32 block."""
        if not np.isfinite(block).all():
            raise BadAudioError(self.path, "contains NaN or infinite samples; re-export it as "
                                           "PCM or clean float data")
        peak = float(np.abs(block).max())
        if peak > self.limits.max_amplitude:
            raise BadAudioError(self.path, f"samples reach {peak:.3g}, beyond ±"
                                           f"{self.limits.max_amplitude:g} (full scale is 1): "
                                           "not audio as recorded; re-export it normalised")
        self.frames += len(block)
        self.peak = max(self.peak, peak)
        if block.shape[1] > 1:
            mono = np.abs(block.mean(axis=1, dtype=np.float64)).max()
            self.mono_peak = max(self.mono_peak, float(mono))

    def finish(self, channels: int) -> None:
        """After the last block: no samples, all zero, or channels that cancel in mono."""
        if self.frames == 0:
            raise BadAudioError(self.path, "no samples (0 frames); re-export it or delete it")
        if self.peak == 0:
            raise BadAudioError(self.path, "silent: every sample is zero; delete it or replace it")
        # the mono mix every model sees, 80 dB (the default top_db) below the loudest channel
        if channels > 1 and self.mono_peak <= 1e-4 * self.peak:
            raise BadAudioError(self.path, f"silent once its {channels} channels are mixed to "
                                           "mono (they cancel out: one is the other inverted); "
                                           "re-export it with the polarity fixed, or keep one "
                                           "channel")


def read_blocks(path: str | Path, limits: AudioLimits = AudioLimits(),
                block_frames: int = BLOCK_FRAMES) -> tuple[AudioInfo, Iterator[np.ndarray]]:
    """The header, and the samples as checked (channels, frames) float32 blocks.

    The header is checked at once (:func:`probe`); each block as it is decoded; the whole file
    (silence, cancelling channels) after the last block. Never more frames are decoded than the
    header declares, so memory is bounded by the block however the file lies. Every problem is
    a :class:`BadAudioError` naming the file.
    """
    path = Path(path)
    info = probe(path, limits)
    return info, _blocks(path, info, limits, block_frames)


def _blocks(path: Path, info: AudioInfo, limits: AudioLimits,
            block_frames: int) -> Iterator[np.ndarray]:
    checks = _SampleChecks(path, limits)
    try:
        with sf.SoundFile(str(path)) as f:
            while checks.frames < info.frames:
                n = min(block_frames, info.frames - checks.frames)
                block = f.read(n, dtype="float32", always_2d=True)
                if len(block) == 0:
                    break
                checks.block(block)
                yield np.ascontiguousarray(block.T)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as err:
        raise _unreadable(path, err) from None
    checks.finish(info.channels)


def read_error(err: BaseException) -> str:
    """The per-file reason for any error while reading one file."""
    if isinstance(err, BadAudioError):
        return err.reason
    if isinstance(err, MemoryError):
        return ("ran out of memory while decoding it; cut it into shorter files or lower the "
                "duration limit (--max-seconds)")
    return f"could not be read ({type(err).__name__}: {err}); convert it to WAV/FLAC or remove it"


def read_audio(path: str | Path, limits: AudioLimits = AudioLimits()) -> tuple[np.ndarray, int]:
    """Decode a file into float32 samples.

    Returns
    -------
    audio : np.ndarray, shape (channels, samples), float32, each |sample| <= limits.max_amplitude
    sample_rate : int, Hz

    Raises
    ------
    BadAudioError
        For a missing, empty, truncated, undecodable, non-finite, too loud or all-zero file, one
        whose channels cancel out when mixed to mono, and one out of ``limits`` (rate, channels,
        duration: refused from its header, before decoding).
    """
    info, blocks = read_blocks(path, limits)
    audio = np.empty((info.channels, info.frames), np.float32)
    filled = 0
    for block in blocks:
        audio[:, filled:filled + block.shape[1]] = block
        filled += block.shape[1]
    return np.ascontiguousarray(audio[:, :filled]), info.sample_rate
