"""Measured behaviour of the waveform augmentations on short synthetic signals (tones, bursts,
impulses), at the project's 22050 Hz rate. Tolerances are stated next to each assertion."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sonic.augment import (
    OP_ORDER,
    add_noise,
    augment_clip,
    change_speed,
    fit_length,
    pitch_shift,
    reverb,
    time_shift,
    time_stretch,
)
from sonic.config import AugmentConfig, RangeAug

SR = 22050  # Hz


def tone(freq: float, seconds: float, sr: int = SR) -> np.ndarray:
    """Harmonic tone (fundamental + a weaker 2nd harmonic), float32, shape (samples,)."""
    t = np.arange(int(round(seconds * sr))) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t) + 0.2 * np.sin(4 * np.pi * freq * t)).astype(
        np.float32
    )


def burst(freq: float, seconds: float, pad: float, sr: int = SR) -> np.ndarray:
    """A tone of ``seconds`` with ``pad`` seconds of silence either side."""
    z = np.zeros(int(round(pad * sr)), np.float32)
    return np.concatenate([z, tone(freq, seconds, sr), z])


def peak_hz(wave: np.ndarray, sr: int = SR) -> float:
    """Frequency of the largest FFT peak, refined by parabolic interpolation, in Hz."""
    mag = np.abs(np.fft.rfft(wave * np.hanning(wave.size)))
    k = int(np.argmax(mag[1:-1])) + 1
    a, b, c = np.log(mag[k - 1 : k + 2] + 1e-12)
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * sr / wave.size


def active_seconds(wave: np.ndarray, sr: int = SR) -> float:
    """Duration in s during which the 10 ms RMS envelope is above half its maximum."""
    hop = sr // 100
    frames = wave[: wave.size // hop * hop].reshape(-1, hop)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    return float(np.sum(rms > 0.5 * rms.max()) * hop / sr)


def snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    noise = noisy.astype(np.float64) - clean
    return float(10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean(noise**2)))


# ------------------------------------------------------------------------------ single ops
@pytest.mark.parametrize("semitones", [-2.0, 3.0])
def test_pitch_shift_moves_the_peak_by_the_semitone_ratio_and_keeps_length(semitones):
    wave = tone(440.0, 1.0)
    out = pitch_shift(wave, SR, semitones)
    assert out.shape == wave.shape and out.dtype == np.float32
    ratio = peak_hz(out) / peak_hz(wave)
    assert ratio == pytest.approx(2 ** (semitones / 12), rel=0.02)  # within 2 %


@pytest.mark.parametrize("rate", [0.8, 1.25])
def test_time_stretch_scales_duration_by_one_over_rate_and_keeps_pitch(rate):
    wave = burst(440.0, 2.0, pad=0.3)
    out = time_stretch(wave, rate)
    assert out.dtype == np.float32
    assert abs(out.size - wave.size / rate) <= 1  # samples
    # The vocoder blurs each edge by ~10 ms, hence a 2 s burst for a 2 % tolerance.
    assert active_seconds(out) / active_seconds(wave) == pytest.approx(1 / rate, rel=0.02)
    assert peak_hz(out) == pytest.approx(peak_hz(wave), rel=0.01)


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_change_speed_scales_duration_and_frequency_by_the_factor(factor):
    wave = burst(440.0, 1.0, pad=0.3)
    out = change_speed(wave, factor)
    assert out.dtype == np.float32
    assert abs(out.size - wave.size / factor) <= 1  # samples
    assert active_seconds(out) / active_seconds(wave) == pytest.approx(1 / factor, rel=0.02)
    assert peak_hz(out) / peak_hz(wave) == pytest.approx(factor, rel=0.01)


@pytest.mark.parametrize("target", [0.0, 10.0, 30.0])
def test_add_noise_hits_the_requested_snr(target):
    wave = tone(300.0, 0.5)
    out = add_noise(wave, target, np.random.default_rng(0))
    assert out.shape == wave.shape and out.dtype == np.float32
    assert snr_db(wave, out) == pytest.approx(target, abs=0.5)  # dB
    again = add_noise(wave, target, np.random.default_rng(0))
    np.testing.assert_array_equal(out, again)


@pytest.mark.parametrize("exponent", [1.0, 2.0])
def test_coloured_noise_hits_the_snr_and_tilts_its_spectrum(exponent):
    """Pink (1) and brown (2) noise keep the exact SNR; their power per octave band falls by
    about 3 dB per octave per unit of exponent (white noise's rises by 3 dB)."""
    sr, wave = SR, tone(300.0, 2.0)
    added = {e: add_noise(wave, 0.0, np.random.default_rng(0), exponent=e) - wave
             for e in (0.0, exponent)}
    assert snr_db(wave, wave + added[exponent]) == pytest.approx(0.0, abs=0.5)  # dB

    def band_db(x, low):  # power in [low, 2 low) Hz
        f = np.fft.rfftfreq(x.size, 1 / sr)
        p = np.abs(np.fft.rfft(x)) ** 2
        return 10 * np.log10(p[(f >= low) & (f < 2 * low)].sum())
    white = band_db(added[0.0], 2000) - band_db(added[0.0], 1000)
    coloured = band_db(added[exponent], 2000) - band_db(added[exponent], 1000)
    assert white == pytest.approx(3.0, abs=0.5)
    assert coloured == pytest.approx(3.0 - 3.0 * exponent, abs=0.5)


def test_white_noise_draws_what_it_always_drew():
    """exponent 0 is the plain Gaussian draw, so configs without a colour keep their copies."""
    wave = tone(300.0, 0.5)
    rng = np.random.default_rng(3)
    draw = np.random.default_rng(3).standard_normal(wave.size)
    out = add_noise(wave, 10.0, rng)
    scale = np.sqrt(np.mean(np.square(wave, dtype=np.float64)) / 10.0 / np.mean(draw**2))
    np.testing.assert_allclose(out, wave + draw * scale, atol=1e-6)


def test_add_noise_leaves_silence_alone():
    silent = np.zeros(1000, np.float32)
    np.testing.assert_array_equal(add_noise(silent, 10.0, np.random.default_rng(0)), silent)


@pytest.mark.parametrize("fraction", [0.25, -0.1, 0.0])
def test_time_shift_rolls_exactly(fraction):
    wave = np.random.default_rng(1).standard_normal(1000).astype(np.float32)
    out = time_shift(wave, fraction)
    np.testing.assert_array_equal(out, np.roll(wave, int(round(fraction * 1000))))
    if fraction < 0:
        assert out[0] == wave[100]  # negative moves content left


def schroeder_rt60(ir: np.ndarray, sr: int = SR) -> float:
    """RT60 in s from the -5..-25 dB slope of the Schroeder backward-integrated energy (T20)."""
    edc = np.cumsum((ir.astype(np.float64) ** 2)[::-1])[::-1]
    edc_db = 10 * np.log10(edc / edc[0] + 1e-300)
    fit = (edc_db <= -5) & (edc_db >= -25)
    slope, _ = np.polyfit(np.flatnonzero(fit) / sr, edc_db[fit], 1)  # dB per second
    return -60.0 / slope


@pytest.mark.parametrize("rt60", [0.3, 0.8])
def test_reverb_tail_after_an_impulse_decays_at_rt60(rt60):
    impulse = np.zeros(int(1.2 * SR), np.float32)
    impulse[0] = 1.0
    out = reverb(impulse, SR, rt60, wet=1.0, rng=np.random.default_rng(0))
    assert out.shape == impulse.shape and out.dtype == np.float32
    assert schroeder_rt60(out) == pytest.approx(rt60, rel=0.1)  # noise IR: within 10 %


def test_reverb_adds_a_tail_keeps_length_and_rms():
    impulse = np.zeros(SR, np.float32)
    impulse[SR // 10] = 1.0
    out = reverb(impulse, SR, 0.5, wet=0.5, rng=np.random.default_rng(0))
    assert out.shape == impulse.shape
    np.testing.assert_allclose(out[: SR // 10], 0.0, atol=1e-6)  # causal: FFT rounding only
    early = np.sum(out[SR // 10 + 1 : SR // 10 + SR // 8] ** 2)  # first 125 ms of the tail
    late = np.sum(out[SR // 10 + SR // 4 : SR // 10 + SR * 3 // 8] ** 2)  # 250-375 ms
    # 250 ms later at rt60 = 0.5 s the decay should be 60 * 0.25 / 0.5 = 30 dB.
    assert 10 * np.log10(late / early) == pytest.approx(-30.0, abs=5.0)
    wave = tone(500.0, 1.0)
    out = reverb(wave, SR, 0.5, wet=0.3, rng=np.random.default_rng(0))
    rms = lambda x: np.sqrt(np.mean(x.astype(np.float64) ** 2))  # noqa: E731
    assert rms(out) == pytest.approx(rms(wave), rel=0.01)
    assert not np.allclose(out, wave, atol=1e-3)


def test_fit_length_centres():
    wave = np.arange(1, 7, dtype=np.float32)
    np.testing.assert_array_equal(fit_length(wave, 4), [2, 3, 4, 5])
    np.testing.assert_array_equal(fit_length(wave, 9), [0, 1, 2, 3, 4, 5, 6, 0, 0])


# --------------------------------------------------------------------------- augment_clip
ALWAYS = AugmentConfig(
    p_unchanged=0.0,
    time_stretch=RangeAug(1.0, 0.8, 1.25),
    pitch_shift=RangeAug(1.0, -2.0, 2.0),
    speed=RangeAug(1.0, 0.9, 1.1),
    noise=RangeAug(1.0, 10.0, 30.0),
    time_shift=RangeAug(1.0, -0.2, 0.2),
    reverb=RangeAug(1.0, 0.2, 0.8),
)
NEVER = dataclasses.replace(
    ALWAYS, **{name: RangeAug(0.0, 1.0, 1.0) for name in OP_ORDER}
)


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    rng = np.random.default_rng(3)
    return (tone(330.0, 0.5) + 0.05 * rng.standard_normal(int(0.5 * SR))).astype(np.float32)


def test_augment_clip_applies_every_op_in_order_and_keeps_shape(clip):
    for seed in range(3):
        out, ops = augment_clip(clip, SR, ALWAYS, np.random.default_rng(seed))
        assert ops == list(OP_ORDER)
        assert out.shape == clip.shape and out.dtype == np.float32
        assert np.all(np.isfinite(out))


def test_augment_clip_default_config_keeps_shape_dtype_finiteness(clip):
    for seed in range(6):
        out, ops = augment_clip(clip, SR, AugmentConfig(), np.random.default_rng(seed))
        assert out.shape == clip.shape and out.dtype == np.float32
        assert np.all(np.isfinite(out)) and set(ops) <= set(OP_ORDER)


def test_augment_clip_is_deterministic_per_seed_and_differs_between_seeds(clip):
    a, ops_a = augment_clip(clip, SR, ALWAYS, np.random.default_rng(11))
    b, ops_b = augment_clip(clip, SR, ALWAYS, np.random.default_rng(11))
    c, _ = augment_clip(clip, SR, ALWAYS, np.random.default_rng(12))
    np.testing.assert_array_equal(a, b)
    assert ops_a == ops_b
    assert not np.allclose(a, c)


@pytest.mark.parametrize(
    "cfg", [dataclasses.replace(ALWAYS, p_unchanged=1.0), NEVER], ids=["p_unchanged=1", "all_p=0"]
)
def test_augment_clip_returns_an_exact_copy_when_nothing_applies(clip, cfg):
    out, ops = augment_clip(clip, SR, cfg, np.random.default_rng(0))
    assert ops == []
    np.testing.assert_array_equal(out, clip)
    assert out is not clip and not np.shares_memory(out, clip)
