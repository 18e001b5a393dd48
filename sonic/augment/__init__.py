"""Waveform augmentation: the single ops and :func:`augment_clip`, which chains them per copy."""
from sonic.augment.ops import (
    OP_ORDER,
    add_noise,
    augment_clip,
    change_speed,
    fit_length,
    pitch_shift,
    reverb,
    reverb_ir,
    time_shift,
    time_stretch,
)

__all__ = [
    "OP_ORDER",
    "add_noise",
    "augment_clip",
    "change_speed",
    "fit_length",
    "pitch_shift",
    "reverb",
    "reverb_ir",
    "time_shift",
    "time_stretch",
]
