"""Small synthesisers of urban sounds, one function per class, for the demo data set.

Each gives a sound its *structure* (harmonic barks with a pitch glide, a buzzing motor, a
sweeping siren, ...) and nothing else: level, noise and format are set by :mod:`sonic.audio.demo`.
A synthesiser takes ``(rng, n_samples, sr)`` and returns mono float64 ``(n_samples,)``.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import fft, signal

Synth = Callable[[np.random.Generator, int, int], np.ndarray]


# ------------------------------------------------------------------------------ building blocks
def tone(
    rng: np.random.Generator, f0: np.ndarray, sr: int, n_harm: int, tilt: float
) -> np.ndarray:
    """Harmonics ``k * f0`` (f0 in Hz, shape ``(samples,)``) with amplitudes ``k ** -tilt``.

    Each harmonic fades out near 0.45 * sr, so glides never alias. The phase is wrapped to one
    cycle and the sines run in float32: SIMD float32 sine is ~30x faster than float64 of a large
    argument, and this loop is most of the generator's time.
    """
    cycles = np.cumsum(f0) / sr
    phase = (2 * np.pi * (cycles - np.floor(cycles))).astype(np.float32)
    out, f_lo, f_hi = np.zeros(f0.shape, np.float32), f0.min(), f0.max()
    for k in range(1, n_harm + 1):
        if k * f_lo >= 0.45 * sr:
            break
        harmonic = np.sin(np.float32(k) * phase + np.float32(rng.uniform(0, 2 * np.pi)))
        if k * f_hi > 0.4 * sr:
            harmonic *= np.clip((0.45 * sr - k * f0) / (0.05 * sr), 0, 1).astype(np.float32)
        out += np.float32(k**-tilt) * harmonic
    return out.astype(np.float64)


def noise(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Unit-RMS noise, shape ``(n,)``, power ~ 1 / f**exponent (0 white, 1 pink, 2 brown)."""
    m = fft.next_fast_len(n, real=True)  # an awkward (prime) length makes the FFT far slower
    spec = fft.rfft(rng.standard_normal(m, dtype=np.float32))
    spec /= np.maximum(np.arange(spec.size, dtype=np.float32), 1) ** np.float32(exponent / 2)
    x = fft.irfft(spec, m)[:n].astype(np.float64)
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


def filt(x: np.ndarray, sr: int, kind: str, cutoff: float | tuple[float, float]) -> np.ndarray:
    """Zero-phase ``kind`` filter ('lowpass', 'highpass', 'bandpass') at ``cutoff`` Hz.

    The gain is a 4th-order Butterworth's magnitude (a bandpass is its high- and low-pass
    product), applied in one FFT: 5 ms instead of sosfilt's 22 ms for 3.5 s at 44.1 kHz.
    """
    m = fft.next_fast_len(x.size, real=True)
    f = np.maximum(np.fft.rfftfreq(m, 1 / sr), 1e-3)
    lo, hi = {"lowpass": (None, cutoff), "highpass": (cutoff, None)}.get(kind, cutoff)
    gain = np.ones(f.size)
    if hi is not None:
        gain /= np.sqrt(1 + (f / hi) ** 8)
    if lo is not None:
        gain /= np.sqrt(1 + (lo / f) ** 8)
    return fft.irfft(fft.rfft(x, m) * gain, m)[: x.size]


def _decay(sr: int, tau: float, length: float = 0.06) -> np.ndarray:
    """``exp(-t / tau)`` for ``t`` in [0, ``length``) s; shape ``(int(length * sr),)``."""
    return np.exp(-np.arange(int(length * sr)) / (tau * sr))


def _ring(sr: int, freq: float, tau: float, length: float = 0.06) -> np.ndarray:
    """A sine at ``freq`` Hz decaying with time constant ``tau`` s, ``length`` s long."""
    t = np.arange(int(length * sr)) / sr
    return np.sin(2 * np.pi * freq * t) * _decay(sr, tau, length)


def _place(
    rng: np.random.Generator, n: int, sr: int, durs: np.ndarray, gaps: tuple[float, float]
) -> list[tuple[int, int]]:
    """Lay events ``durs`` s long out with random gaps (s) from a random start.

    Returns ``(start, stop)`` sample pairs; events that do not fit are dropped, but the first is
    always kept (clips are >= 1 s, events shorter).
    """
    gap = rng.uniform(*gaps, size=len(durs))
    ends = np.cumsum(durs + gap) - gap
    keep = max(1, int(np.sum(ends <= n / sr - 0.1)))
    t0 = rng.uniform(0.02, max(0.03, n / sr - ends[keep - 1] - 0.05))
    starts = t0 + np.concatenate([[0.0], ends[: keep - 1] + gap[: keep - 1]])
    return [(int(s * sr), min(n, int((s + d) * sr))) for s, d in zip(starts, durs[:keep])]


def _gate(rng: np.random.Generator, n: int, sr: int, durs: np.ndarray,
          gaps: tuple[float, float]) -> np.ndarray:
    """0-1 envelope of events ``durs`` s long laid out by :func:`_place`, with 15 ms attacks and
    30 ms releases; shape ``(n,)``."""
    gate = np.zeros(n)
    for a, b in _place(rng, n, sr, durs, gaps):
        ramp = np.arange(b - a) / sr
        gate[a:b] = np.minimum(1, ramp / 0.015) * np.minimum(1, ramp[::-1] / 0.03)
    return gate


def _pulses(rng: np.random.Generator, n: int, sr: int, rate: float, jitter: float) -> np.ndarray:
    """Sample indices of a ``rate`` Hz pulse train whose periods jitter by ``jitter`` (fraction)."""
    periods = (1 + jitter * rng.standard_normal(int(n / sr * rate) + 2)) / rate
    times = rng.uniform(0, 1 / rate) + np.cumsum(periods)
    return (times[times < n / sr - 0.01] * sr).astype(int)


# -------------------------------------------------------------------------------- synthesisers
def dog_bark(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """1-4 harmonic barks with a fast rise-then-fall pitch glide, through two formants."""
    out, f_dog = np.zeros(n), rng.uniform(350, 900)  # f_dog: the dog's size
    for a, b in _place(rng, n, sr, rng.uniform(0.1, 0.3, rng.integers(1, 5)), (0.08, 0.9)):
        u = np.linspace(0, 1, b - a)
        glide = np.minimum(1, 0.8 + u) * (1 - rng.uniform(0.3, 0.5) * u)
        burst = tone(rng, f_dog * rng.uniform(0.9, 1.15) * glide, sr, 14, 1.0)
        burst += 0.3 * rng.standard_normal(b - a)  # breath
        out[a:b] += np.minimum(1, u / 0.04) * np.exp(-u * rng.uniform(2, 4)) * burst
    f1, f2 = rng.uniform(500, 1000), rng.uniform(1500, 3000)
    formants = filt(out, sr, "bandpass", (0.8 * f1, 1.25 * f1))
    return 0.1 * out + formants + 0.6 * filt(out, sr, "bandpass", (0.8 * f2, 1.25 * f2))


def drilling(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """A motor whine with grinding hiss and spin-down/up pauses; half the drills hammer.

    A hammer drill's amplitude is a train of 15-35 blows/s with sharp attacks, the rate range of
    a jackhammer's impacts (its confusable partner); a plain drill's is a smooth 20-60 Hz AM.
    """
    t, gate = np.arange(n) / sr, np.ones(n)
    if rng.random() < 0.5:  # trigger released for a moment: the motor winds down and back up
        for _ in range(rng.integers(1, 3)):
            a = rng.integers(0, n)
            gate[a : a + int(rng.uniform(0.2, 0.6) * sr)] = 0.0
    pole = np.exp(-1 / (0.15 * sr))  # the motor's 150 ms inertia
    spin = signal.lfilter([1 - pole], [1, -pole], gate, zi=[pole])[0]
    wobble = 1 + 0.01 * np.sin(2 * np.pi * rng.uniform(2, 5) * t)
    if rng.random() < 0.5:  # hammer mode: a blow, then decay, at each cycle of the hammer
        blows = (rng.uniform(15, 35) * t + rng.random()) % 1.0
        am = 0.3 + np.exp(-blows * rng.uniform(5, 12))
    else:
        am = 1 + rng.uniform(0.2, 0.6) * np.sin(2 * np.pi * rng.uniform(20, 60) * t)
    grind = rng.uniform(0.1, 0.5) * filt(rng.standard_normal(n), sr, "highpass", 2000)
    f_motor = rng.uniform(150, 500) * (0.5 + 0.5 * spin) * wobble
    return spin**2 * am * (tone(rng, f_motor, sr, 20, rng.uniform(0.6, 1.0)) + grind)


def siren(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """A tone moving between two pitches: slow 'wail', fast 'yelp' or two-tone 'hi-lo'.

    Hi-lo alternates two pitches a car horn's interval apart (ratio 1.15-1.5) in the horn's
    pitch range, so only the alternation, not the notes, tells it from a two-tone horn.
    """
    t, lo, mode = np.arange(n) / sr, rng.uniform(420, 850), rng.integers(3)
    hi = lo * (rng.uniform(1.15, 1.5) if mode == 2 else rng.uniform(1.3, 2.0))
    if mode == 0:  # wail: smooth, slow rise and fall
        shape = 0.5 - 0.5 * np.cos(2 * np.pi * rng.uniform(0.2, 0.5) * t + rng.uniform(0, 6.3))
    elif mode == 1:  # yelp: fast rising sawtooth
        shape = (rng.uniform(2.5, 6) * t + rng.random()) % 1.0
    else:  # hi-lo: a square wave whose steps take ~4 % of a period (a clipped sine)
        cycle = np.sin(2 * np.pi * (rng.uniform(0.8, 2.5) * t + rng.random()))
        shape = 0.5 + 0.5 * np.clip(8 * cycle, -1, 1)
    drift = 10 ** (rng.uniform(-6, 6) * t / t[-1] / 20)  # approaching or receding, +-6 dB
    if rng.random() < 0.3:  # keyed on and off in 0.3-1.2 s whoops, honk-like
        drift *= _gate(rng, n, sr, rng.uniform(0.3, 1.2, 4), (0.1, 0.4))
    return drift * tone(rng, lo + (hi - lo) * shape, sr, 12, rng.uniform(0.7, 1.4))


def engine_idling(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """A jittered 20-50 Hz firing pulse train ringing a low body resonance, low-passed.

    Some idles lope (a 1.5-4 Hz swell, the beat rate of street music) and some carry a faint
    belt whine in the melody range: the overlap with its confusable partner, street_music.
    """
    pulses, idx = np.zeros(n), _pulses(rng, n, sr, rng.uniform(20, 50), 0.03)
    cylinders = rng.uniform(0.6, 1.0, rng.choice([4, 6]))  # uneven cylinders repeat each cycle
    pulses[idx] = cylinders[np.arange(idx.size) % cylinders.size]
    pulses[idx] *= 1 + 0.1 * rng.standard_normal(idx.size)
    body = _ring(sr, rng.uniform(70, 220), rng.uniform(0.005, 0.015))
    rattle = 0.2 * _ring(sr, rng.uniform(400, 900), 0.004)
    out = signal.oaconvolve(pulses, body + rattle)[:n] + 0.05 * noise(rng, n, 2.0)
    out = filt(out, sr, "lowpass", rng.uniform(300, 1200))
    t = np.arange(n) / sr
    if rng.random() < 0.5:  # lope: the idle swells and sags at a walking pace
        out *= 1 + rng.uniform(0.3, 0.7) * np.sin(2 * np.pi * rng.uniform(1.5, 4) * t)
    if rng.random() < 0.4:  # a belt or alternator whine
        whine = tone(rng, np.full(n, rng.uniform(250, 700)), sr, 4, 1.5)
        out += rng.uniform(0.1, 0.3) * np.sqrt(np.mean(out**2) / np.mean(whine**2)) * whine
    return out


def rain(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """A broadband hiss that swells in gusts, plus Poisson droplets ringing as rising chirps."""
    knots = rng.standard_normal(int(n / sr * 4) + 2)  # a new gust level every 0.25 s
    gusts = np.interp(np.arange(n) * 4 / sr, np.arange(knots.size), knots)
    swell = np.clip(1 + 0.3 * gusts, 0.2, None)
    bed = filt(noise(rng, n, rng.uniform(0, 1)), sr, "highpass", rng.uniform(300, 1000))
    drops, t = np.zeros(n), np.arange(int(0.008 * sr)) / sr
    for _ in range(3):  # three droplet sizes, each its own resonance
        k, train = int(rng.uniform(10, 70) * n / sr), np.zeros(n)
        train[rng.integers(0, n, k)] = rng.lognormal(0, 0.4, k)
        f = rng.uniform(1500, 5000) * (1 + 40 * t)  # a bubble's pitch rises as it shrinks
        chirp = np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-t / 0.002)
        drops += signal.oaconvolve(train, chirp)[:n]
    return swell * bed * rng.uniform(0.6, 1.2) + drops


def car_horn(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Long honks or a rhythmic beeping of a brassy chord (a quarter of horns: one tone).

    The notes (350-650 Hz, a third apart) overlap a hi-lo siren's; some honks droop in pitch
    as the car passes (Doppler).
    """
    f1 = rng.uniform(350, 650)
    notes = (f1,) if rng.random() < 0.25 else (f1, f1 * rng.uniform(1.18, 1.35))
    if rng.random() < 0.5:  # 1-3 long honks
        durs, gaps = rng.uniform(0.25, 1.5, rng.integers(1, 4)), (0.1, 0.5)
    else:  # beeping: 3-8 short honks
        durs, gaps = rng.uniform(0.12, 0.35, rng.integers(3, 9)), (0.08, 0.3)
    droop = np.ones(n)
    if rng.random() < 0.3:  # passing car: pitch falls ~4-8 % over the clip
        droop = 1 + rng.uniform(0.02, 0.04) * np.tanh(np.linspace(3, -3, n))
    gate, tilt = _gate(rng, n, sr, durs, gaps), rng.uniform(0.7, 1.4)  # a siren's brightness
    return gate * sum(tone(rng, f * droop, sr, 12, tilt) for f in notes)


def jackhammer(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Bursts of 12-30 impacts/s, each a noise crack, a metallic ring and a low thump.

    Half the hammers also carry their compressor's motor whine in the drill's pitch range
    (150-500 Hz), gated with the bursts: the overlap with its confusable partner, drilling.
    """
    crack = rng.standard_normal(int(0.06 * sr)) * _decay(sr, rng.uniform(0.004, 0.012))
    hit = crack + 0.5 * _ring(sr, rng.uniform(800, 3000), 0.02)
    hit += 0.8 * _ring(sr, rng.uniform(60, 120), 0.015)  # the thump
    rate, train, gate = rng.uniform(12, 30), np.zeros(n), np.zeros(n)
    for a, b in _place(rng, n, sr, rng.uniform(0.5, 2.5, rng.integers(1, 4)), (0.2, 0.8)):
        idx = a + _pulses(rng, b - a, sr, rate, 0.05)
        train[idx] = rng.uniform(0.7, 1.0, idx.size)
        gate[a:b] = 1.0
    out = signal.oaconvolve(train, hit)[:n]
    if rng.random() < 0.5:
        whine = tone(rng, np.full(n, rng.uniform(150, 500)), sr, 20, rng.uniform(0.6, 1.0))
        level = rng.uniform(0.3, 0.8) * np.sqrt(np.mean(out**2) / np.mean(whine**2 * gate + 1e-12))
        out += level * filt(gate, sr, "lowpass", 20) * whine
    return out


def street_music(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """A plucked pentatonic melody in eighth notes over a root/fifth bass on the beat.

    Half the buskers add a kick drum on the beat, and half are heard through a doorway
    (low-passed at 400-1500 Hz, melody faint): then the low, beat-rate pulses are close to a
    loping engine idle, its confusable partner.
    """
    beat, root = rng.uniform(0.25, 0.5), rng.uniform(200, 400)  # s, Hz
    scale = root * 2 ** (np.array([0, 2, 4, 7, 9, 12, 14, 16]) / 12)
    out, step, m = np.zeros(n), int(rng.integers(0, 5)), int(beat * sr)
    pluck = np.minimum(1, np.arange(m) / (0.005 * sr)) * np.exp(-np.arange(m) / (0.25 * m))
    kick = _ring(sr, rng.uniform(50, 100), rng.uniform(0.03, 0.06), 0.2) * (rng.random() < 0.5)
    melody = rng.uniform(0.3, 1.0)
    for i, a in enumerate(range(int(rng.uniform(0, beat) * sr), n, m // 2)):
        step = int(np.clip(step + rng.integers(-2, 3), 0, scale.size - 1))  # tunes move stepwise
        env = pluck[: n - a]
        out[a : a + m] += melody * env * tone(rng, np.full(env.size, scale[step]), sr, 8, 1.2)
        if i % 2 == 0:
            f_bass = root / 2 * (1.5 if i % 8 == 4 else 1.0)
            out[a : a + m] += 0.8 * env * tone(rng, np.full(env.size, f_bass), sr, 3, 1.0)
            out[a : a + kick.size] += 2.0 * kick[: n - a]
    if rng.random() < 0.5:  # through a doorway
        out = filt(out, sr, "lowpass", rng.uniform(400, 1500))
    return out


# name -> synthesiser; each takes (rng, samples, sample rate in Hz) and returns shape (samples,)
SYNTHS: dict[str, Synth] = {
    f.__name__: f
    for f in (dog_bark, drilling, siren, engine_idling, rain, car_horn, jackhammer, street_music)
}
