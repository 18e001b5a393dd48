"""A deterministic synthetic data set of urban sounds in the Kaggle layout.

Each class is a small synthesiser that gives the sound its *structure* (harmonic barks with a
pitch glide, a buzzing motor, a sweeping siren, ...). Everything that is not structure
(duration, loudness, SNR, background, sample rate, channels, sample format) is drawn by a
nuisance generator seeded only by ``(seed, split, index)``, so clip ``i`` of every class shares
it: each class gets exactly the same multiset of nuisances, and none of them can tell a class.

Synthesisers run at ``INTERNAL_SR`` and return a mono float64 array of shape ``(samples,)``;
the mixture is resampled with libsoxr to the file's rate, so low rates are band-limited.
"""
from __future__ import annotations

import shutil
import tempfile
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf
import soxr
from scipy import fft, signal
from tqdm import tqdm

from sonic.config import DemoConfig
from sonic.runtime import atomic_path, write_text

INTERNAL_SR = 44100  # Hz
FILE_RATES = (8000, 16000, 22050, 32000, 44100, 48000)  # Hz
DURATION_RANGE = (1.0, 6.0)  # s
LEVEL_RANGE = (-40.0, -18.0)  # dBFS, RMS of the active frames
SNR_RANGE = (5.0, 30.0)  # dB, event power over background power
PEAK_CEILING = -1.0  # dBFS; louder mixtures are scaled down, never clipped
P_STEREO = 0.25
BACKGROUNDS = ("pink", "brown", "hum")
Synth = Callable[[np.random.Generator, int, int], np.ndarray]


# ------------------------------------------------------------------------------ building blocks
def _tone(
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


def _noise(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Unit-RMS noise, shape ``(n,)``, power ~ 1 / f**exponent (0 white, 1 pink, 2 brown)."""
    m = fft.next_fast_len(n, real=True)  # an awkward (prime) length makes the FFT far slower
    spec = fft.rfft(rng.standard_normal(m, dtype=np.float32))
    spec /= np.maximum(np.arange(spec.size, dtype=np.float32), 1) ** np.float32(exponent / 2)
    x = fft.irfft(spec, m)[:n].astype(np.float64)
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


def _filt(x: np.ndarray, sr: int, kind: str, cutoff: float | tuple[float, float]) -> np.ndarray:
    """4th-order Butterworth ``kind`` ('lowpass', 'highpass', 'bandpass') at ``cutoff`` Hz."""
    return signal.sosfilt(signal.butter(4, cutoff, kind, fs=sr, output="sos"), x)


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
        burst = _tone(rng, f_dog * rng.uniform(0.9, 1.15) * glide, sr, 14, 1.0)
        burst += 0.3 * rng.standard_normal(b - a)  # breath
        out[a:b] += np.minimum(1, u / 0.04) * np.exp(-u * rng.uniform(2, 4)) * burst
    f1, f2 = rng.uniform(500, 1000), rng.uniform(1500, 3000)
    formants = _filt(out, sr, "bandpass", (0.8 * f1, 1.25 * f1))
    return 0.1 * out + formants + 0.6 * _filt(out, sr, "bandpass", (0.8 * f2, 1.25 * f2))


def drilling(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """A buzzing motor whine with motor-rate AM, grinding hiss and spin-down/up pauses."""
    t, gate = np.arange(n) / sr, np.ones(n)
    if rng.random() < 0.5:  # trigger released for a moment: the motor winds down and back up
        for _ in range(rng.integers(1, 3)):
            a = rng.integers(0, n)
            gate[a : a + int(rng.uniform(0.2, 0.6) * sr)] = 0.0
    pole = np.exp(-1 / (0.15 * sr))  # the motor's 150 ms inertia
    spin = signal.lfilter([1 - pole], [1, -pole], gate, zi=[pole])[0]
    wobble = 1 + 0.01 * np.sin(2 * np.pi * rng.uniform(2, 5) * t)
    am = 1 + rng.uniform(0.2, 0.6) * np.sin(2 * np.pi * rng.uniform(20, 60) * t)
    grind = rng.uniform(0.1, 0.4) * _filt(rng.standard_normal(n), sr, "highpass", 2000)
    whine = _tone(rng, rng.uniform(180, 600) * (0.5 + 0.5 * spin) * wobble, sr, 20, 0.7)
    return spin**2 * am * (whine + grind)


def siren(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """A tone sweeping between two pitches: slow 'wail' or fast 'yelp', drifting in level."""
    t, lo = np.arange(n) / sr, rng.uniform(500, 900)
    hi = lo * rng.uniform(1.6, 2.2)
    if rng.random() < 0.5:  # wail: smooth, slow rise and fall
        shape = 0.5 - 0.5 * np.cos(2 * np.pi * rng.uniform(0.2, 0.5) * t + rng.uniform(0, 6.3))
    else:  # yelp: fast rising sawtooth
        shape = (rng.uniform(2.5, 6) * t + rng.random()) % 1.0
    drift = 10 ** (rng.uniform(-6, 6) * t / t[-1] / 20)  # approaching or receding, +-6 dB
    return drift * _tone(rng, lo + (hi - lo) * shape, sr, 6, 1.5)


def engine_idling(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """A jittered 20-50 Hz firing pulse train ringing a low body resonance, low-passed."""
    pulses, idx = np.zeros(n), _pulses(rng, n, sr, rng.uniform(20, 50), 0.03)
    cylinders = rng.uniform(0.6, 1.0, rng.choice([4, 6]))  # uneven cylinders repeat each cycle
    pulses[idx] = cylinders[np.arange(idx.size) % cylinders.size]
    pulses[idx] *= 1 + 0.1 * rng.standard_normal(idx.size)
    body = _ring(sr, rng.uniform(80, 250), rng.uniform(0.005, 0.015))
    rattle = 0.2 * _ring(sr, rng.uniform(500, 900), 0.004)
    out = signal.oaconvolve(pulses, body + rattle)[:n] + 0.05 * _noise(rng, n, 2.0)
    return _filt(out, sr, "lowpass", rng.uniform(300, 800))


def rain(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """A broadband hiss that swells in gusts, plus Poisson droplets ringing as rising chirps."""
    knots = rng.standard_normal(int(n / sr * 4) + 2)  # a new gust level every 0.25 s
    gusts = np.interp(np.arange(n) * 4 / sr, np.arange(knots.size), knots)
    swell = np.clip(1 + 0.3 * gusts, 0.2, None)
    bed = _filt(_noise(rng, n, rng.uniform(0, 1)), sr, "highpass", rng.uniform(300, 1000))
    drops, t = np.zeros(n), np.arange(int(0.008 * sr)) / sr
    for _ in range(3):  # three droplet sizes, each its own resonance
        k, train = int(rng.uniform(10, 70) * n / sr), np.zeros(n)
        train[rng.integers(0, n, k)] = rng.lognormal(0, 0.4, k)
        f = rng.uniform(1500, 5000) * (1 + 40 * t)  # a bubble's pitch rises as it shrinks
        chirp = np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-t / 0.002)
        drops += signal.oaconvolve(train, chirp)[:n]
    return swell * bed * rng.uniform(0.6, 1.2) + drops


def car_horn(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """1-3 honks of a steady, brassy two-tone chord."""
    out, f1 = np.zeros(n), rng.uniform(330, 480)
    f2 = f1 * rng.uniform(1.18, 1.3)  # a third apart, like paired horns
    for a, b in _place(rng, n, sr, rng.uniform(0.25, 1.5, rng.integers(1, 4)), (0.1, 0.5)):
        ramp = np.arange(b - a) / sr
        env = np.minimum(1, ramp / 0.015) * np.minimum(1, ramp[::-1] / 0.03)
        for f in (f1, f2):
            out[a:b] += env * _tone(rng, np.full(b - a, f), sr, 20, 0.8)
    return out


def jackhammer(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Bursts of 10-20 impacts/s, each a noise crack, a metallic ring and a low thump."""
    crack = rng.standard_normal(int(0.06 * sr)) * _decay(sr, rng.uniform(0.004, 0.012))
    hit = crack + 0.5 * _ring(sr, rng.uniform(800, 3000), 0.02)
    hit += 0.8 * _ring(sr, rng.uniform(60, 120), 0.015)  # the thump
    rate, train = rng.uniform(10, 20), np.zeros(n)
    for a, b in _place(rng, n, sr, rng.uniform(0.5, 2.5, rng.integers(1, 4)), (0.2, 0.8)):
        idx = a + _pulses(rng, b - a, sr, rate, 0.05)
        train[idx] = rng.uniform(0.7, 1.0, idx.size)
    return signal.oaconvolve(train, hit)[:n]


def street_music(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """A plucked pentatonic melody in eighth notes over a root/fifth bass on the beat."""
    beat, root = rng.uniform(0.25, 0.5), rng.uniform(200, 400)  # s, Hz
    scale = root * 2 ** (np.array([0, 2, 4, 7, 9, 12, 14, 16]) / 12)
    out, step, m = np.zeros(n), int(rng.integers(0, 5)), int(beat * sr)
    pluck = np.minimum(1, np.arange(m) / (0.005 * sr)) * np.exp(-np.arange(m) / (0.25 * m))
    for i, a in enumerate(range(int(rng.uniform(0, beat) * sr), n, m // 2)):
        step = int(np.clip(step + rng.integers(-2, 3), 0, scale.size - 1))  # tunes move stepwise
        env = pluck[: n - a]
        out[a : a + m] += env * _tone(rng, np.full(env.size, scale[step]), sr, 8, 1.2)
        if i % 2 == 0:
            f_bass = root / 2 * (1.5 if i % 8 == 4 else 1.0)
            out[a : a + m] += 0.8 * env * _tone(rng, np.full(env.size, f_bass), sr, 3, 1.0)
    return out


# name -> synthesiser; each takes (rng, samples, sample rate in Hz) and returns shape (samples,)
SYNTHS: dict[str, Synth] = {
    f.__name__: f
    for f in (dog_bark, drilling, siren, engine_idling, rain, car_horn, jackhammer, street_music)
}


# ----------------------------------------------------------------------------------- nuisances
@dataclass(frozen=True)
class Nuisance:
    """Everything about a clip except its class; clip ``i`` of every class shares one."""

    duration: float  # s
    sample_rate: int  # Hz, of the written file
    channels: int  # 1 or 2
    subtype: str  # "PCM_16" or "FLOAT"
    level_db: float  # dBFS, RMS of the active frames
    snr_db: float  # dB, active event power over background power
    background: str  # one of BACKGROUNDS


def draw_nuisance(rng: np.random.Generator) -> Nuisance:
    """Draw a clip's nuisances from the module-level ranges, which are the same for all classes."""
    return Nuisance(
        duration=float(rng.uniform(*DURATION_RANGE)),
        sample_rate=int(rng.choice(FILE_RATES)),
        channels=2 if rng.random() < P_STEREO else 1,
        subtype="FLOAT" if rng.random() < 0.5 else "PCM_16",
        level_db=float(rng.uniform(*LEVEL_RANGE)),
        snr_db=float(rng.uniform(*SNR_RANGE)),
        background=str(rng.choice(BACKGROUNDS)),
    )


def active_power(x: np.ndarray, sr: int) -> float:
    """Mean power of the 20 ms frames within 20 dB of the loudest one (linear, full scale = 1).

    ``x`` has shape ``(samples,)`` or ``(samples, channels)``. Counting only active frames gives
    a sparse clip (one bark in six seconds) the same event level and SNR as a steady one.
    """
    hop = int(0.02 * sr)
    frames = x[: x.shape[0] // hop * hop].reshape(-1, hop * int(np.prod(x.shape[1:])))
    power = np.mean(frames**2, axis=1)
    return float(np.mean(power[power >= 0.01 * power.max()])) + 1e-20


def _background(rng: np.random.Generator, n: int, sr: int, kind: str) -> np.ndarray:
    """Unit-RMS background, shape ``(n,)``: pink or brown noise, or mains hum over faint noise."""
    if kind != "hum":
        return _noise(rng, n, 1.0 if kind == "pink" else 2.0)
    hum = _tone(rng, np.full(n, rng.choice([50.0, 60.0])), sr, 5, rng.uniform(0.5, 2.0))
    x = hum + 0.3 * np.sqrt(np.mean(hum**2)) * _noise(rng, n, 1.0)
    return x / np.sqrt(np.mean(x**2))


def render_clip(name: str, nuisance: Nuisance, rng: np.random.Generator) -> np.ndarray:
    """Synthesise one clip of class ``name`` in ``nuisance``'s background, level and format.

    Returns
    -------
    np.ndarray
        float32, shape ``(samples, nuisance.channels)`` at ``nuisance.sample_rate`` Hz, with an
        active level of ``level_db`` dBFS unless that would put the peak above ``PEAK_CEILING``.
    """
    n = int(round(nuisance.duration * INTERNAL_SR))
    clean = SYNTHS[name](rng, n, INTERNAL_SR)
    clean /= np.sqrt(active_power(clean, INTERNAL_SR))
    gain = 10 ** (-nuisance.snr_db / 20)
    bg = _background(rng, n, INTERNAL_SR, nuisance.background)
    channels = [clean + gain * bg]
    if nuisance.channels == 2:  # a second microphone <= 0.7 ms away, sharing most background
        lag, rho = int(rng.integers(1, 30)), rng.uniform(0.5, 0.9)
        bg2 = rho * bg + np.sqrt(1 - rho**2) * _background(rng, n, INTERNAL_SR, nuisance.background)
        near = np.concatenate([np.zeros(lag), clean[:-lag]]) * rng.uniform(0.7, 1.0)
        channels.append(near + gain * bg2)
    mix = np.stack(channels, axis=1)
    if nuisance.sample_rate != INTERNAL_SR:
        mix = soxr.resample(mix, INTERNAL_SR, nuisance.sample_rate)  # band-limits low rates
    mix *= 10 ** (nuisance.level_db / 20) / np.sqrt(active_power(mix, nuisance.sample_rate))
    mix *= min(1.0, 10 ** (PEAK_CEILING / 20) / np.max(np.abs(mix)))
    return mix.astype(np.float32)


# -------------------------------------------------------------------------------------- writing
_SPLITS = ("train", "test")  # a split's position here is part of its clips' seeds
_ROOT_ENTRIES = {"train", "test", "test_labels.csv"}  # everything a generation writes in root
_SFC_SET_ADD_PEAK_CHUNK = 0x1050  # from sndfile.h; soundfile's bindings do not name it


def _check(cfg: DemoConfig) -> None:
    """Raise ValueError for an unknown or repeated class, or a negative seed or count."""
    unknown = [c for c in cfg.classes if c not in SYNTHS]
    if unknown:
        raise ValueError(f"unknown demo class {unknown[0]!r}; known classes: {', '.join(SYNTHS)}")
    if not cfg.classes or len(set(cfg.classes)) != len(cfg.classes):
        raise ValueError(f"demo classes must be non-empty and distinct, got {list(cfg.classes)}")
    if min(cfg.seed, cfg.train_per_class, cfg.test_per_class) < 0:
        raise ValueError("demo seed and clip counts must be non-negative")


def _plan(cfg: DemoConfig) -> list[tuple[str, str, int, str]]:
    """``(split, class, index, path under root)`` of every clip.

    Test clips are shuffled and named by their position, so neither name nor order tells the class.
    """
    train = [("train", c, i, f"train/{c}/{c}_{i:04d}.wav")
             for c in cfg.classes for i in range(cfg.train_per_class)]
    test = [(c, i) for c in cfg.classes for i in range(cfg.test_per_class)]
    order = np.random.default_rng([cfg.seed, len(_SPLITS)]).permutation(len(test))
    return train + [("test", *test[j], f"test/clip_{k:04d}.wav") for k, j in enumerate(order)]


def _write_wav(path: Path, audio: np.ndarray, sr: int, subtype: str) -> None:
    """Write atomically; without the PEAK chunk, whose timestamp makes float WAVs differ."""
    with atomic_path(path) as tmp:
        with sf.SoundFile(tmp, "w", sr, audio.shape[1], subtype, format="WAV") as f:
            sf._snd.sf_command(f._file, _SFC_SET_ADD_PEAK_CHUNK, sf._ffi.NULL, sf._snd.SF_FALSE)
            f.write(audio)


def _write_all(out: Path, cfg: DemoConfig) -> dict:
    """Render and write every clip and the answers CSV under ``out``; return the summary."""
    summary: dict = {"classes": list(cfg.classes), "seconds": 0.0}
    summary |= {s: dict.fromkeys(cfg.classes, 0) for s in _SPLITS}
    counters = {key: Counter() for key in ("sample_rates", "channels", "subtypes")}
    answers = ["filename,label"]
    for split, label, index, relpath in tqdm(_plan(cfg), desc="demo clips", unit="clip"):
        seed = [cfg.seed, _SPLITS.index(split), index]
        nuisance = draw_nuisance(np.random.default_rng(seed))
        # the class name, not its position in cfg.classes, seeds the content: adding a class
        # leaves every other class's clips as they were
        content = np.random.default_rng(seed + [zlib.crc32(label.encode())])
        audio = render_clip(label, nuisance, content)
        _write_wav(out / relpath, audio, nuisance.sample_rate, nuisance.subtype)
        if split == "test":
            answers.append(f"{Path(relpath).name},{label}")
        summary[split][label] += 1
        summary["seconds"] += audio.shape[0] / nuisance.sample_rate
        counters["sample_rates"][str(nuisance.sample_rate)] += 1
        counters["channels"][str(nuisance.channels)] += 1
        counters["subtypes"][nuisance.subtype] += 1
    for split in _SPLITS:  # an empty split still gets its folder
        (out / split).mkdir(exist_ok=True)
    write_text(out / "test_labels.csv", "\n".join(answers) + "\n")
    summary["files"] = sum(counters["subtypes"].values())
    summary["seconds"] = round(summary["seconds"], 2)
    return summary | {key: dict(sorted(c.items())) for key, c in counters.items()}


def generate_demo(root: Path, cfg: DemoConfig) -> dict:
    """Write the demo data set under ``root``, replacing any previous generation there.

    Layout: ``train/<class>/<class>_NNNN.wav``, ``test/clip_NNNN.wav`` (shuffled) and
    ``test_labels.csv`` (``filename,label``). The tree is built beside ``root`` and renamed into
    place, so the result is a function of ``cfg`` alone, byte for byte, and never half-written.

    Returns
    -------
    dict
        JSON-friendly: ``classes``; ``train`` and ``test`` clip counts per class; ``files``;
        ``seconds`` of audio; files per ``sample_rates``, ``channels`` and ``subtypes``.

    Raises
    ------
    ValueError
        An unknown or repeated class, or a negative count or seed.
    FileExistsError
        ``root`` holds something a demo generation would not have written.
    """
    _check(cfg)
    root = Path(root)
    if root.is_file() or (root.is_dir() and not {p.name for p in root.iterdir()} <= _ROOT_ENTRIES):
        raise FileExistsError(f"refusing to replace {root}: it holds more than demo output")
    root.parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(prefix=f".{root.name}.new-", dir=root.parent))
    try:
        summary = _write_all(fresh, cfg)
        fresh.chmod(0o755)  # mkdtemp's 0700 would hide the data set from other users
        trash = Path(tempfile.mkdtemp(prefix=f".{root.name}.old-", dir=root.parent))
        if root.exists():
            root.rename(trash / root.name)
        fresh.rename(root)
    finally:
        shutil.rmtree(fresh, ignore_errors=True)  # gone already, unless something failed
    shutil.rmtree(trash)
    return summary
