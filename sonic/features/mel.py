"""From decoded audio to the fixed-length log-mel spectrograms every model sees.

The maths matches ``librosa.feature.melspectrogram`` (Slaney mel scale and normalisation,
centred STFT with zero padding) followed by ``librosa.power_to_db(S, ref=np.max, top_db=...)``;
``tests/test_features.py`` checks that to a stated tolerance.
"""
from __future__ import annotations

import functools
import warnings

import numpy as np
import soxr
import torch
import torchaudio
from torch import nn

from sonic.config import FeatureConfig

AMIN = 1e-10  # power floor before the log, as librosa's power_to_db


def to_mono(audio: np.ndarray) -> np.ndarray:
    """(channels, samples) → (samples,), the mean of the channels."""
    return audio.mean(axis=0) if audio.ndim == 2 else audio


def resample(wave: np.ndarray, sr: int, target: int) -> np.ndarray:
    """Band-limited resampling (soxr, the same "HQ" filter as librosa's default ``soxr_hq``)."""
    if sr == target:
        return wave
    return soxr.resample(wave, sr, target, quality="HQ").astype(np.float32, copy=False)


def trim_bounds(wave: np.ndarray, top_db: float, frame: int = 2048,
                hop: int = 512) -> tuple[int, int]:
    """``(start, stop)`` samples of ``wave`` left after cutting leading and trailing frames
    quieter than ``top_db`` below the loudest frame (RMS).

    Same rule as ``librosa.effects.trim``; a clip with no frame above the threshold, or shorter
    than one frame, is kept whole.
    """
    if len(wave) < frame:
        return 0, len(wave)
    padded = np.pad(wave, frame // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, frame)[::hop]
    rms_db = 10 * np.log10(np.maximum(np.mean(frames.astype(np.float64) ** 2, axis=1), AMIN))
    loud = np.flatnonzero(rms_db > rms_db.max() - top_db)
    if len(loud) == 0:
        return 0, len(wave)
    return int(loud[0] * hop), int(min(len(wave), (loud[-1] + 1) * hop))


def trim_silence(wave: np.ndarray, top_db: float, frame: int = 2048, hop: int = 512) -> np.ndarray:
    """``wave`` cut to :func:`trim_bounds`: leading and trailing silence removed."""
    start, stop = trim_bounds(wave, top_db, frame, hop)
    return wave if (start, stop) == (0, len(wave)) else wave[start:stop]


def fix_length(wave: np.ndarray, n_samples: int) -> np.ndarray:
    """Zero-pad at the end, or crop the centre, to exactly ``n_samples``."""
    if len(wave) >= n_samples:
        start = (len(wave) - n_samples) // 2
        return wave[start:start + n_samples]
    return np.pad(wave, (0, n_samples - len(wave)))


def trimmed_signal(audio: np.ndarray, sr: int, cfg: FeatureConfig) -> tuple[np.ndarray, int]:
    """Decoded audio (channels, samples) at ``sr`` Hz → mono float32 at cfg rate with leading and
    trailing silence cut when ``cfg.trim``, and the number of samples cut from its start."""
    wave = resample(to_mono(audio).astype(np.float32), sr, cfg.sample_rate)
    if not cfg.trim:
        return wave, 0
    start, stop = trim_bounds(wave, cfg.trim_db)
    return wave[start:stop], start


def prepare_waveform(audio: np.ndarray, sr: int, cfg: FeatureConfig) -> np.ndarray:
    """Decoded audio (channels, samples) at ``sr`` Hz → mono float32 (cfg.n_samples,) at cfg rate."""
    wave, _ = trimmed_signal(audio, sr, cfg)
    return fix_length(wave, cfg.n_samples).astype(np.float32, copy=False)


def power_to_db(power: torch.Tensor, top_db: float | None) -> torch.Tensor:
    """(B, n_mels, T) power → dB relative to each clip's peak, floored ``top_db`` below it."""
    db = 10.0 * torch.log10(power.clamp_min(AMIN))
    peak = db.amax(dim=(-2, -1), keepdim=True)
    db = db - peak
    return db.clamp_min(-top_db) if top_db is not None else db


class LogMel(nn.Module):
    """Waveforms (B, samples) → log-mel spectrograms in dB (B, n_mels, n_frames), each in [-top_db, 0].

    The same maths as ``torchaudio.transforms.MelSpectrogram(power=2, norm="slaney",
    mel_scale="slaney")`` (its filterbank, ``torch.stft`` with a periodic Hann window), written
    out so that the power is ``re² + im²`` rather than ``abs()`` squared and the filterbank is
    applied as a sparse matrix: 0.6 ms instead of 2.0-2.5 ms for one 5 s clip on one CPU core, the
    largest single cost of ``extract_mels``. ``tests/test_features.py`` checks it against both
    torchaudio's transform and librosa.
    """

    def __init__(self, cfg: FeatureConfig):
        super().__init__()
        self.n_fft, self.hop_length, self.top_db = cfg.n_fft, cfg.hop_length, cfg.top_db
        f_max = cfg.f_max if cfg.f_max is not None else float(cfg.sample_rate // 2)
        filters = torchaudio.functional.melscale_fbanks(
            cfg.n_fft // 2 + 1, cfg.f_min, f_max, cfg.n_mels, cfg.sample_rate,
            norm="slaney", mel_scale="slaney")  # (n_freqs, n_mels)
        self.register_buffer("filters", filters.T.contiguous(), persistent=False)
        self.register_buffer("window", torch.hann_window(cfg.n_fft), persistent=False)
        with warnings.catch_warnings():  # "sparse CSR support is in beta": mm is all we use
            warnings.simplefilter("ignore", UserWarning)
            self._sparse_filters = self.filters.to_sparse_csr()

    def forward(self, waves: torch.Tensor) -> torch.Tensor:
        return power_to_db(self.mel_power(waves), self.top_db)  # (B, n_mels, T)

    def mel_power(self, waves: torch.Tensor) -> torch.Tensor:
        """Waveforms (B, samples) → mel-band power (B, n_mels, n_frames), not normalised:
        one scale for every clip, so levels can be compared across windows of a file."""
        spec = torch.stft(waves, self.n_fft, self.hop_length, window=self.window, center=True,
                          pad_mode="constant", return_complex=True)  # (B, n_freqs, T)
        return self._to_mel(spec.real.square() + spec.imag.square())

    def _to_mel(self, power: torch.Tensor) -> torch.Tensor:
        if power.device.type != "cpu":
            return self.filters @ power
        # Each band spans a few neighbouring bins (1,008 of the default 65,664 weights are
        # non-zero), so on the CPU a sparse product costs a third of the dense one.
        batch, n_freqs, frames = power.shape
        mel = torch.sparse.mm(self._sparse_filters,
                              power.transpose(0, 1).reshape(n_freqs, batch * frames))
        return mel.reshape(-1, batch, frames).transpose(0, 1)


@functools.lru_cache(maxsize=4)
def cached_logmel(cfg: FeatureConfig) -> LogMel:
    """One :class:`LogMel` per process and config (its filterbank costs more than a clip)."""
    return LogMel(cfg)


@torch.no_grad()
def waves_to_mels(waves: np.ndarray, cfg: FeatureConfig, device: torch.device | str = "cpu",
                  batch_size: int | None = None) -> np.ndarray:
    """(N, samples) float32 → (N, n_mels, n_frames) float32 dB, computed in batches on ``device``."""
    logmel = LogMel(cfg).to(device)
    batch_size = batch_size or cfg.batch_size
    out = np.empty((len(waves), cfg.n_mels, cfg.n_frames), dtype=np.float32)
    for start in range(0, len(waves), batch_size):
        chunk = torch.from_numpy(np.ascontiguousarray(waves[start:start + batch_size])).to(device)
        out[start:start + len(chunk)] = logmel(chunk).cpu().numpy()
    return out
