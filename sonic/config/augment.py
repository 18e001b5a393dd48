"""The params section ``augment``: the waveform augmentations of stage ``augment``."""
from __future__ import annotations

from dataclasses import dataclass

from sonic.config.parse import PROBABILITY, bounded


@dataclass(frozen=True)
class RangeAug:
    """One augmentation: applied with probability ``p``, strength drawn uniformly in [low, high]."""

    p: float = bounded(0.5, **PROBABILITY)
    low: float = 0.0
    high: float = 0.0

    def problems(self) -> list[tuple[str, str]]:
        """(field, why) for values that are each fine but do not fit together."""
        if self.high < self.low:
            return [("high", f"must be ≥ low ({self.low}), got {self.high}")]
        return []


@dataclass(frozen=True)
class AugmentConfig:
    copies: int = bounded(1, 0)
    seed: int = 0
    p_unchanged: float = bounded(0.1, **PROBABILITY)  # chance a copy is left as it is
    time_stretch: RangeAug = RangeAug(0.5, 0.8, 1.25)  # rate; >1 is faster
    pitch_shift: RangeAug = RangeAug(0.5, -2.0, 2.0)  # semitones
    speed: RangeAug = RangeAug(0.3, 0.9, 1.1)  # resampling factor (pitch and tempo together)
    noise: RangeAug = RangeAug(0.5, 10.0, 30.0)  # SNR in dB
    noise_exponent: float = bounded(0.0, 0.0, 2.0)  # noise power ~ 1/f**exponent: 0 white, 1 pink
    time_shift: RangeAug = RangeAug(0.5, -0.2, 0.2)  # fraction of the clip, circular
    reverb: RangeAug = RangeAug(0.3, 0.2, 0.8)  # RT60 in seconds
    reverb_wet: float = bounded(0.3, **PROBABILITY)  # wet/dry mix of the reverb
    workers: int = bounded(2, 1)
