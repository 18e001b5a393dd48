"""A deterministic synthetic data set of urban sounds in the Kaggle layout.

Each class is a small synthesiser that gives the sound its *structure* (harmonic barks with a
pitch glide, a buzzing motor, a sweeping siren, ...). Everything that is not structure
(duration, loudness, SNR, background, a second overlapping event, distance, sample rate,
channels, sample format) is drawn by a nuisance generator seeded only by ``(seed, split,
index)``, so clip ``i`` of every class shares it: each class gets exactly the same multiset of
nuisances, and none of them can tell a class.

The set is meant to be hard enough that experiments show differences (accuracy well below 1):
three pairs of synthesisers overlap in character (drilling/jackhammer, siren/car_horn,
engine_idling/street_music), SNRs go below 0 dB, and half the clips carry another class's
sound 5-15 dB under the labelled one.

Synthesisers run at ``INTERNAL_SR`` and return a mono float64 array of shape ``(samples,)``;
the mixture is resampled with libsoxr to the file's rate, so low rates are band-limited.
"""
from __future__ import annotations

import contextlib
import shutil
import tempfile
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from sonic.audio.synths import SYNTHS, filt, noise, tone
from sonic.config import DemoConfig
from sonic.progress import progress
from sonic.runtime import atomic_path, worker_pool, write_text

INTERNAL_SR = 32000  # Hz; files at 44.1 and 48 kHz hold nothing above 16 kHz, like many real ones
FILE_RATES = (8000, 16000, 22050, 32000, 44100, 48000)  # Hz
DURATION_RANGE = (1.0, 4.0)  # s; features.duration crops the longer ones (2.5 s by default)
LEVEL_RANGE = (-40.0, -18.0)  # dBFS, RMS of the active frames
PEAK_CEILING = -1.0  # dBFS; louder mixtures are scaled down, never clipped
P_STEREO = 0.25
BACKGROUNDS = ("pink", "brown", "hum")
OVERLAPS = tuple(SYNTHS)  # a second event may be of any known class, the clip's own included
P_DISTANT = 0.3  # chance the events are heard from afar: low-passed ...
DISTANT_CUTOFF = (1000.0, 4000.0)  # ... at this many Hz




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
    overlap: str | None = None  # class of a second, quieter event; None: no second event
    overlap_db: float = -10.0  # dB, its active power re the labelled event's
    lowpass: float | None = None  # Hz, heard from afar: the events are low-passed; None: near


def draw_nuisance(rng: np.random.Generator, cfg: DemoConfig) -> Nuisance:
    """Draw a clip's nuisances from ``cfg``'s and the module's ranges, the same for all classes."""
    return Nuisance(
        duration=float(rng.uniform(*DURATION_RANGE)),
        sample_rate=int(rng.choice(FILE_RATES)),
        channels=2 if rng.random() < P_STEREO else 1,
        subtype="FLOAT" if rng.random() < 0.5 else "PCM_16",
        level_db=float(rng.uniform(*LEVEL_RANGE)),
        snr_db=float(rng.uniform(*cfg.snr_db)),
        background=str(rng.choice(BACKGROUNDS)),
        overlap=str(rng.choice(OVERLAPS)) if rng.random() < cfg.overlap_p else None,
        overlap_db=float(rng.uniform(*cfg.overlap_db)),
        lowpass=float(rng.uniform(*DISTANT_CUTOFF)) if rng.random() < P_DISTANT else None,
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
        return noise(rng, n, 1.0 if kind == "pink" else 2.0)
    hum = tone(rng, np.full(n, rng.choice([50.0, 60.0])), sr, 5, rng.uniform(0.5, 2.0))
    x = hum + 0.3 * np.sqrt(np.mean(hum**2)) * noise(rng, n, 1.0)
    return x / np.sqrt(np.mean(x**2))


def _span(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """A 0-1 envelope over a random 40-100 % of ``n`` samples, with 50 ms fades; shape ``(n,)``."""
    length = int(n * rng.uniform(0.4, 1.0))
    start, i = int(rng.integers(0, n - length + 1)), np.arange(n)
    return np.clip(np.minimum(i - start, start + length - i) / (0.05 * sr), 0, 1)


def _events(name: str, nuisance: Nuisance, rng: np.random.Generator, n: int) -> np.ndarray:
    """Class ``name``'s sound at unit active power, plus the nuisance's second event (over part of
    the clip, ``overlap_db`` under it) and distance low-pass; shape ``(n,)`` at ``INTERNAL_SR``."""
    clean = SYNTHS[name](rng, n, INTERNAL_SR)
    clean /= np.sqrt(active_power(clean, INTERNAL_SR))
    if nuisance.overlap is not None:
        other = SYNTHS[nuisance.overlap](rng, n, INTERNAL_SR)
        other *= 10 ** (nuisance.overlap_db / 20) / np.sqrt(active_power(other, INTERNAL_SR))
        clean += _span(rng, n, INTERNAL_SR) * other
    if nuisance.lowpass is not None:
        clean = filt(clean, INTERNAL_SR, "lowpass", nuisance.lowpass)
    return clean


def render_clip(name: str, nuisance: Nuisance, rng: np.random.Generator) -> np.ndarray:
    """Synthesise one clip of class ``name`` in ``nuisance``'s background, level and format.

    Returns
    -------
    np.ndarray
        float32, shape ``(samples, nuisance.channels)`` at ``nuisance.sample_rate`` Hz, with an
        active level of ``level_db`` dBFS unless that would put the peak above ``PEAK_CEILING``.
    """
    n = int(round(nuisance.duration * INTERNAL_SR))
    clean = _events(name, nuisance, rng, n)
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


def _render_and_write(job: tuple[Path, DemoConfig, str, str, int, str]) -> tuple[Nuisance, float]:
    """Render clip ``index`` of ``label`` in ``split`` and write it; return its nuisance and
    length in seconds. Each clip has its own seeds, so any worker may render any clip."""
    out, cfg, split, label, index, relpath = job
    seed = [cfg.seed, _SPLITS.index(split), index]
    nuisance = draw_nuisance(np.random.default_rng(seed), cfg)
    # the class name, not its position in cfg.classes, seeds the content: adding a class
    # leaves every other class's clips as they were
    content = np.random.default_rng(seed + [zlib.crc32(label.encode())])
    audio = render_clip(label, nuisance, content)
    _write_wav(out / relpath, audio, nuisance.sample_rate, nuisance.subtype)
    return nuisance, audio.shape[0] / nuisance.sample_rate


def _write_all(out: Path, cfg: DemoConfig) -> dict:
    """Render and write every clip and the answers CSV under ``out``; return the summary."""
    summary: dict = {"classes": list(cfg.classes), "seconds": 0.0}
    summary |= {s: dict.fromkeys(cfg.classes, 0) for s in _SPLITS}
    counters = {key: Counter() for key in ("sample_rates", "channels", "subtypes", "overlaps")}
    answers = ["filename,label"]
    plan = _plan(cfg)
    jobs = [(out, cfg, *clip) for clip in plan]
    with contextlib.ExitStack() as stack:
        if cfg.workers > 1 and len(jobs) > 1:
            pool = stack.enter_context(worker_pool(min(cfg.workers, len(jobs))))
            results = pool.imap(_render_and_write, jobs, chunksize=4)
        else:
            results = map(_render_and_write, jobs)
        for (split, label, _, relpath), (nuisance, seconds) in progress(
                zip(plan, results), total=len(plan), desc="demo clips", unit="clip"):
            if split == "test":
                answers.append(f"{Path(relpath).name},{label}")
            summary[split][label] += 1
            summary["seconds"] += seconds
            counters["sample_rates"][str(nuisance.sample_rate)] += 1
            counters["channels"][str(nuisance.channels)] += 1
            counters["subtypes"][nuisance.subtype] += 1
            counters["overlaps"][str(nuisance.overlap)] += 1
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
        ``seconds`` of audio; files per ``sample_rates``, ``channels``, ``subtypes`` and
        ``overlaps`` (the second event's class, ``"None"`` for none).

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
