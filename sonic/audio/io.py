"""Reading audio files, with every way a file can be unusable turned into one clear error."""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import soundfile as sf


class BadAudioError(Exception):
    """A file that cannot be used as a clip; ``reason`` says why and what to do about it."""

    def __init__(self, path: str | Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def audio_extensions() -> frozenset[str]:
    """Lower-case suffixes (with the dot) of every container format libsndfile reads."""
    return frozenset({f".{name.lower()}" for name in sf.available_formats()} | {".oga", ".aif"})


def _wav_is_truncated(path: Path) -> bool:
    """True if a RIFF/WAVE file's ``data`` chunk claims more bytes than the file holds.

    libsndfile quietly reads what is there, so without this check a cut-off download would pass
    as a shorter clip.
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


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode a file into float32 samples.

    Returns
    -------
    audio : np.ndarray, shape (channels, samples), float32 in [-1, 1]
    sample_rate : int, Hz

    Raises
    ------
    BadAudioError
        For a missing, empty, truncated, undecodable, non-finite or all-zero file, or one whose
        channels cancel out when mixed to mono.
    """
    path = Path(path)
    if not path.is_file():
        raise BadAudioError(path, "file not found; check the path or the layout's index file")
    if path.stat().st_size == 0:
        raise BadAudioError(path, "empty file (0 bytes); re-copy or delete it")
    try:
        audio, sr = sf.read(path, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as err:
        raise BadAudioError(
            path, f"not a readable audio file ({err}); convert it to WAV/FLAC/OGG or remove it"
        ) from None
    if path.suffix.lower() == ".wav" and _wav_is_truncated(path):
        raise BadAudioError(path, "truncated WAV: the header promises more audio than the file "
                                  "holds; re-download or re-export it")
    if audio.shape[0] == 0:
        raise BadAudioError(path, "no samples (0 frames); re-export it or delete it")
    if not np.isfinite(audio).all():
        raise BadAudioError(path, "contains NaN or infinite samples; re-export it as PCM or "
                                  "clean float data")
    if not np.any(audio):
        raise BadAudioError(path, "silent: every sample is zero; delete it or replace it")
    if audio.shape[1] > 1 and _cancels_in_mono(audio):
        raise BadAudioError(path, f"silent once its {audio.shape[1]} channels are mixed to mono "
                                  "(they cancel out: one is the other inverted); re-export it "
                                  "with the polarity fixed, or keep one channel")
    return np.ascontiguousarray(audio.T), int(sr)


def _cancels_in_mono(audio: np.ndarray) -> bool:
    """True if the mean of the channels of (samples, channels) audio, the mono mix every model
    sees, is at least 80 dB (the default ``top_db``) below the loudest channel."""
    mono_peak = np.abs(audio.mean(axis=1, dtype=np.float64)).max()
    return bool(mono_peak <= 1e-4 * np.abs(audio).max())
