"""Waveform augmentations for mono float32 clips, and :func:`augment_clip`, which chains them.

Every function takes and returns a mono ``float32`` array of shape ``(samples,)``. The ops that
need randomness take an explicit :class:`numpy.random.Generator`, so a copy is reproducible from
the generator's state alone. The heavy lifting is done by fast compiled code: librosa's phase
vocoder for tempo and pitch, libsoxr for resampling and FFT convolution for reverb, because this
runs over every training clip times every copy on a couple of CPU cores.
"""
from __future__ import annotations

import librosa
import numpy as np
import soxr
from scipy.signal import fftconvolve

from sonic.audio.synths import noise as coloured_noise
from sonic.config import AugmentConfig, RangeAug

# The order augment_clip applies ops in: the three resampling/vocoder ops change the length and
# are cropped/padded back before anything else; reverb acts on the clean (re-timed) signal, as a
# room would; the shift only moves content; noise comes last so its SNR is measured against
# exactly the signal the model hears.
OP_ORDER: tuple[str, ...] = ("time_stretch", "speed", "pitch_shift", "reverb", "time_shift", "noise")


def _as_float32(wave: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(wave, dtype=np.float32)


def time_stretch(wave: np.ndarray, rate: float) -> np.ndarray:
    """Change tempo without changing pitch (phase vocoder).

    Parameters
    ----------
    wave : np.ndarray
        Mono waveform, shape ``(samples,)``.
    rate : float
        Tempo factor; ``> 1`` is faster (shorter), ``< 1`` slower.

    Returns
    -------
    np.ndarray
        float32, shape ``(round(samples / rate),)``.
    """
    if rate <= 0:
        raise ValueError(f"rate must be positive, got {rate}")
    return _as_float32(librosa.effects.time_stretch(_as_float32(wave), rate=rate))


def pitch_shift(wave: np.ndarray, sr: int, semitones: float) -> np.ndarray:
    """Shift pitch by ``semitones`` while keeping the duration.

    Parameters
    ----------
    wave : np.ndarray
        Mono waveform, shape ``(samples,)``.
    sr : int
        Sample rate in Hz.
    semitones : float
        Shift in semitones; frequencies are multiplied by ``2 ** (semitones / 12)``.

    Returns
    -------
    np.ndarray
        float32, same shape as ``wave``.
    """
    shifted = librosa.effects.pitch_shift(
        _as_float32(wave), sr=sr, n_steps=semitones, res_type="soxr_hq"
    )
    return _as_float32(shifted)


def change_speed(wave: np.ndarray, factor: float) -> np.ndarray:
    """Play the clip ``factor`` times faster, like a tape: duration / factor, pitch × factor.

    Parameters
    ----------
    wave : np.ndarray
        Mono waveform, shape ``(samples,)``.
    factor : float
        Speed factor; ``> 1`` is faster and higher.

    Returns
    -------
    np.ndarray
        float32, shape ``(≈ samples / factor,)``.
    """
    if factor <= 0:
        raise ValueError(f"factor must be positive, got {factor}")
    # Resampling from rate `factor` down to rate 1 keeps the samples' content but spaces them
    # 1/factor as far apart in output time; only the ratio of the two rates matters to soxr.
    return _as_float32(soxr.resample(_as_float32(wave), factor, 1.0, quality="HQ"))


def add_noise(wave: np.ndarray, snr_db: float, rng: np.random.Generator,
              exponent: float = 0.0) -> np.ndarray:
    """Add Gaussian noise at exactly ``snr_db`` relative to the clip's mean power.

    The drawn noise is rescaled to its target power, so the realised SNR is exact rather than
    correct only on average. A silent clip (zero power) is returned unchanged.

    Parameters
    ----------
    wave : np.ndarray
        Mono waveform, shape ``(samples,)``.
    snr_db : float
        Signal-to-noise ratio in dB.
    rng : np.random.Generator
        Source of the noise.
    exponent : float
        Spectral slope: the noise's power goes as ``1 / f**exponent`` (0 white, 1 pink,
        2 brown). Real backgrounds (traffic, wind, rooms) are closer to pink than to white.

    Returns
    -------
    np.ndarray
        float32, same shape as ``wave``.
    """
    wave = _as_float32(wave)
    power = float(np.mean(np.square(wave, dtype=np.float64)))
    if power == 0.0 or wave.size == 0:
        return wave.copy()
    if exponent == 0.0:
        noise = rng.standard_normal(wave.size)
    else:
        noise = coloured_noise(rng, wave.size, exponent)
    noise *= np.sqrt(power / 10.0 ** (snr_db / 10.0) / np.mean(noise**2))
    return _as_float32(wave + noise)


def time_shift(wave: np.ndarray, fraction: float) -> np.ndarray:
    """Circularly shift the clip by ``round(fraction * samples)`` samples (negative = left).

    Parameters
    ----------
    wave : np.ndarray
        Mono waveform, shape ``(samples,)``.
    fraction : float
        Shift as a fraction of the clip length.

    Returns
    -------
    np.ndarray
        float32, same shape as ``wave``.
    """
    wave = _as_float32(wave)
    return np.roll(wave, int(round(fraction * wave.size)))


def reverb_ir(sr: int, rt60: float, rng: np.random.Generator) -> np.ndarray:
    """Synthetic room impulse response: white noise under an exponential decay.

    The amplitude envelope is ``10 ** (-3 t / rt60)``, so the energy is 60 dB down after
    ``rt60`` seconds; the response is cut there, where what remains is negligible.

    Parameters
    ----------
    sr : int
        Sample rate in Hz.
    rt60 : float
        Reverberation time in seconds (time for a 60 dB energy decay).
    rng : np.random.Generator
        Source of the noise.

    Returns
    -------
    np.ndarray
        float32, shape ``(max(1, round(rt60 * sr)),)``, unit energy.
    """
    if rt60 <= 0:
        raise ValueError(f"rt60 must be positive, got {rt60}")
    t = np.arange(max(1, int(round(rt60 * sr)))) / sr
    ir = rng.standard_normal(t.size) * 10.0 ** (-3.0 * t / rt60)
    return _as_float32(ir / np.sqrt(np.sum(ir**2)))


def reverb(
    wave: np.ndarray, sr: int, rt60: float, wet: float, rng: np.random.Generator
) -> np.ndarray:
    """Add synthetic reverb: ``(1 - wet) * dry + wet * (dry ⊛ IR)``, rescaled to the input RMS.

    The wet path is scaled to the dry RMS before mixing, and the mix rescaled afterwards, so the
    loudness of the clip is preserved (exactly, in RMS) whatever ``wet`` is. The tail that would
    run past the clip's end is dropped so the length is kept.

    Parameters
    ----------
    wave : np.ndarray
        Mono waveform, shape ``(samples,)``.
    sr : int
        Sample rate in Hz.
    rt60 : float
        Reverberation time in seconds.
    wet : float
        Wet/dry mix in [0, 1].
    rng : np.random.Generator
        Source of the impulse response's noise.

    Returns
    -------
    np.ndarray
        float32, same shape as ``wave``.
    """
    wave = _as_float32(wave)
    rms = float(np.sqrt(np.mean(np.square(wave, dtype=np.float64)))) if wave.size else 0.0
    if rms == 0.0:
        return wave.copy()
    tail = fftconvolve(wave.astype(np.float64), reverb_ir(sr, rt60, rng))[: wave.size]
    tail_rms = float(np.sqrt(np.mean(tail**2)))
    if tail_rms > 0.0:
        tail *= rms / tail_rms
    mixed = (1.0 - wet) * wave + wet * tail
    mixed_rms = float(np.sqrt(np.mean(mixed**2)))
    return _as_float32(mixed * (rms / mixed_rms) if mixed_rms > 0.0 else mixed)


def fit_length(wave: np.ndarray, n_samples: int) -> np.ndarray:
    """Centre-crop or centre-pad with zeros to exactly ``n_samples``.

    Parameters
    ----------
    wave : np.ndarray
        Mono waveform, shape ``(samples,)``.
    n_samples : int
        Target length in samples.

    Returns
    -------
    np.ndarray
        float32, shape ``(n_samples,)``.
    """
    wave = _as_float32(wave)
    extra = wave.size - n_samples
    if extra >= 0:
        return wave[extra // 2 : extra // 2 + n_samples]
    before = -extra // 2
    return np.pad(wave, (before, -extra - before))


# Ops that change the length; their outputs are fitted back only once all of them have run,
# so a slower stretch followed by a faster speed change does not crop content twice.
_RETIMING = frozenset({"time_stretch", "speed", "pitch_shift"})


def _apply(
    name: str, wave: np.ndarray, strength: float, sr: int, cfg: AugmentConfig,
    rng: np.random.Generator,
) -> np.ndarray:
    """Run the op called ``name`` at ``strength`` (units as in :class:`AugmentConfig`)."""
    if name == "time_stretch":
        return time_stretch(wave, strength)
    if name == "speed":
        return change_speed(wave, strength)
    if name == "pitch_shift":
        return pitch_shift(wave, sr, strength)
    if name == "reverb":
        return reverb(wave, sr, strength, cfg.reverb_wet, rng)
    if name == "time_shift":
        return time_shift(wave, strength)
    if name == "noise":
        return add_noise(wave, strength, rng, cfg.noise_exponent)
    raise ValueError(f"unknown augmentation {name!r}")


def _draw(aug: RangeAug, rng: np.random.Generator) -> float | None:
    """The op's strength if it fires, else None. Always consumes two draws, so one op's
    probability never shifts the random stream of the ops after it."""
    fires = rng.random() < aug.p
    strength = rng.uniform(aug.low, aug.high)
    return float(strength) if fires else None


def augment_clip(
    wave: np.ndarray, sr: int, cfg: AugmentConfig, rng: np.random.Generator
) -> tuple[np.ndarray, list[str]]:
    """One augmented copy of a clip, and the names of the ops applied (in order).

    With probability ``cfg.p_unchanged`` the clip is returned as it is. Otherwise each op in
    :data:`OP_ORDER` fires independently with its own ``p`` and a strength uniform in its
    ``[low, high]``. If no op happens to fire the copy is simply unchanged (no re-draw): with
    the default config that adds about 3 % to the ``p_unchanged`` share of unchanged copies.

    Parameters
    ----------
    wave : np.ndarray
        Mono waveform, shape ``(samples,)``.
    sr : int
        Sample rate in Hz.
    cfg : AugmentConfig
        Probabilities and strength ranges (rates, semitones, speed factors, SNR in dB, shift
        as a fraction of the clip, RT60 in seconds).
    rng : np.random.Generator
        The only source of randomness: the same state gives the same copy.

    Returns
    -------
    tuple[np.ndarray, list[str]]
        float32 waveform of shape ``(samples,)`` and the applied op names (``[]`` if none).
    """
    wave = _as_float32(wave)
    if rng.random() < cfg.p_unchanged:
        return wave.copy(), []
    # Op names are AugmentConfig field names. Every decision is drawn before any op consumes
    # randomness (noise, impulse responses), so the decisions do not depend on the ops run.
    strengths = {name: _draw(getattr(cfg, name), rng) for name in OP_ORDER}
    out, applied = wave, []
    for name in OP_ORDER:
        if strengths[name] is None:
            continue
        if name not in _RETIMING:
            out = fit_length(out, wave.size)  # later ops see the clip at its original length
        out = _apply(name, out, strengths[name], sr, cfg, rng)
        applied.append(name)
    out = fit_length(out, wave.size)
    return (out.copy() if np.shares_memory(out, wave) else out), applied
