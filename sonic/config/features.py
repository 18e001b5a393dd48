"""The params section ``features``: decoding and the log-mel spectrogram."""
from __future__ import annotations

from dataclasses import dataclass

from sonic.config.parse import bounded


@dataclass(frozen=True)
class FeatureConfig:
    sample_rate: int = bounded(22050, 1)  # Hz
    duration: float = bounded(2.5, 0.0, open_low=True)  # seconds every clip is padded or cropped to
    n_fft: int = bounded(1024, 2)
    hop_length: int = bounded(512, 1)
    n_mels: int = bounded(64, 1)
    f_min: float = bounded(0.0, 0.0)  # Hz
    f_max: float | None = None  # Hz; None means sample_rate / 2
    # dB below each clip's peak that the log-mel is clamped to
    top_db: float = bounded(80.0, 0.0, open_low=True)
    trim: bool = True
    trim_db: float = bounded(60.0, 0.0, open_low=True)  # dB below peak counted as silence
    device: str = "cpu"
    workers: int = bounded(2, 1)  # decoding processes
    batch_size: int = bounded(64, 1)  # clips per mel batch

    def problems(self) -> list[tuple[str, str]]:
        """(field, why) for values that are each fine but do not fit together."""
        out = []
        if self.hop_length > self.n_fft:
            out.append(("hop_length", f"must be ≤ n_fft ({self.n_fft}), got {self.hop_length}"))
        nyquist = self.sample_rate / 2
        if self.f_max is not None and not self.f_min < self.f_max <= nyquist:
            out.append(("f_max", f"must be above f_min ({self.f_min}) and at most half the "
                                 f"sample rate ({nyquist:g}), got {self.f_max}"))
        if self.f_min >= nyquist:
            out.append(("f_min", f"must be below half the sample rate ({nyquist:g}), got "
                                 f"{self.f_min}"))
        return out

    @property
    def n_samples(self) -> int:
        return int(round(self.duration * self.sample_rate))

    @property
    def n_frames(self) -> int:
        return self.n_samples // self.hop_length + 1  # centred STFT
