"""Building soundscapes: held-out clips placed at random, non-overlapping times over a background
at drawn signal-to-noise ratios, each written as ``scene_NNN.wav`` beside its reference
annotation ``scene_NNN.csv`` (and all of them in ``reference.csv``)."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from sonic.audio.io import read_audio
from sonic.features.mel import resample, to_mono, trim_bounds
from sonic.runtime import atomic_path, write_text

REFERENCE_FIELDS = ["filename", "onset", "offset", "event_label", "snr_db", "source"]


@dataclass(frozen=True)
class SceneConfig:
    duration: float = 60.0  # seconds per soundscape
    sample_rate: int = 22050  # Hz of the written WAVs
    events: int = 8  # clips placed per soundscape (fewer if they do not fit)
    snrs: tuple[float, ...] = (0.0, 6.0, 12.0)  # dB, clip RMS over background RMS; drawn per clip
    min_gap: float = 1.0  # seconds between two placed clips
    trim_db: float = 30.0  # dB below a clip's loudest frame that is not part of its event
    background_dbfs: float = -30.0  # RMS level of the background, dB full scale


def list_clips(source: Path, fold: int | None = None, audio_dir: Path | None = None
               ) -> list[tuple[Path, str]]:
    """(path, label) of held-out clips: a folder of ``<class>/<clip>`` subfolders, or a CSV
    with ``filename`` and ``label`` (or ESC-50's ``category``) columns, files relative to
    ``audio_dir`` (default: the CSV's folder), only fold ``fold`` when given."""
    from sonic.audio.io import audio_extensions

    if source.is_dir():
        found = [(p, p.parent.name) for p in sorted(source.glob("*/*"))
                 if p.suffix.lower() in audio_extensions()]
    elif source.is_file():
        with open(source, newline="") as f:
            rows = list(csv.DictReader(f))
        column = "label" if rows and "label" in rows[0] else "category"
        if not rows or "filename" not in rows[0] or column not in rows[0]:
            raise ValueError(f"{source}: needs the columns filename and label (or category)")
        if fold is not None:
            rows = [r for r in rows if int(r.get("fold", -1)) == fold]
        base = audio_dir or source.parent
        found = [(base / r["filename"], r[column]) for r in rows]
    else:
        raise FileNotFoundError(f"{source}: no such folder or CSV of clips")
    if not found:
        raise ValueError(f"{source}: no clips found (a folder needs <class>/<clip> files; a CSV "
                         "needs rows, of fold --fold when given)")
    return found


def load_mono(path: Path, sample_rate: int) -> np.ndarray:
    """(samples,) float32 mono at ``sample_rate``."""
    audio, sr = read_audio(path)
    return resample(to_mono(audio), sr, sample_rate).astype(np.float32)


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) noise with a 1/f power spectrum, unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))
    wave = np.fft.irfft(spectrum, n)
    return (wave / np.sqrt(np.mean(wave ** 2))).astype(np.float32)


def rms(wave: np.ndarray) -> float:
    return float(np.sqrt(np.mean(wave.astype(np.float64) ** 2) + 1e-20))


def onsets(lengths: list[float], duration: float, min_gap: float,
           rng: np.random.Generator) -> list[float]:
    """Random onsets (s) of clips of ``lengths`` seconds, in order, none overlapping and at
    least ``min_gap`` apart, all inside ``duration``: the free time is split at random."""
    free = duration - sum(lengths) - min_gap * (len(lengths) - 1)
    cuts = np.sort(rng.uniform(0, free, len(lengths)))
    out, used = [], 0.0
    for cut, length in zip(cuts, lengths):
        out.append(float(cut + used))
        used += length + min_gap
    return out


def build_scene(sources: list[tuple[np.ndarray, str, str]], background: np.ndarray,
                cfg: SceneConfig, rng: np.random.Generator, name: str
                ) -> tuple[np.ndarray, list[dict]]:
    """One soundscape: (samples,) float32 and its reference rows.

    ``sources``: (trimmed mono clip at ``cfg.sample_rate``, label, source name) to place, in
    order; clips that do not fit in ``cfg.duration`` are left out.
    """
    sr, n = cfg.sample_rate, int(round(cfg.duration * cfg.sample_rate))
    lengths = [len(w) / sr for w, _, _ in sources]
    while sources and sum(lengths) + cfg.min_gap * (len(lengths) - 1) > cfg.duration:
        sources, lengths = sources[:-1], lengths[:-1]
    mix = background[:n].astype(np.float64).copy()
    noise_rms, rows = rms(mix), []
    for (wave, label, source), onset in zip(sources, onsets(lengths, cfg.duration,
                                                             cfg.min_gap, rng)):
        snr = float(rng.choice(cfg.snrs))
        start = int(round(onset * sr))
        mix[start:start + len(wave)] += wave * (noise_rms * 10 ** (snr / 20) / rms(wave))
        rows.append({"filename": name, "onset": round(start / sr, 4),
                     "offset": round((start + len(wave)) / sr, 4), "event_label": label,
                     "snr_db": snr, "source": source})
    peak = np.abs(mix).max()
    if peak > 0.99:  # the whole scene scaled down: the SNRs stay as drawn
        mix *= 0.99 / peak
    return mix.astype(np.float32), rows


def build(clips: list[tuple[Path, str]], out: Path, scenes: int, cfg: SceneConfig,
          seed: int = 0, background: Path | None = None) -> list[Path]:
    """Write ``scenes`` soundscapes and their references into ``out``; clips are drawn
    without replacement until each has been used, then again. Returns the WAV paths."""
    rng = np.random.default_rng(seed)
    sr, n = cfg.sample_rate, int(round(cfg.duration * cfg.sample_rate))
    bed = load_mono(background, sr) if background else None
    level = 10 ** (cfg.background_dbfs / 20)
    pool: list[int] = []
    out.mkdir(parents=True, exist_ok=True)
    written, all_rows = [], []
    for i in range(scenes):
        picks = []
        for _ in range(cfg.events):
            pool = pool or list(rng.permutation(len(clips)))
            picks.append(clips[pool.pop()])
        sources = []
        for path, label in picks:
            wave = load_mono(path, sr)
            a, b = trim_bounds(wave, cfg.trim_db)
            sources.append((wave[a:b], label, path.name))
        if bed is None:
            bg = pink_noise(n, rng) * level
        else:
            bg = np.resize(bed, n) * (level / rms(bed))
        name = f"scene_{i:03d}.wav"
        wave, rows = build_scene(sources, bg, cfg, rng, name)
        with atomic_path(out / name) as tmp:
            sf.write(tmp, wave, sr, subtype="PCM_16")
        write_text(out / f"scene_{i:03d}.csv", rows_csv(rows))
        written.append(out / name)
        all_rows += rows
    write_text(out / "reference.csv", rows_csv(all_rows))
    return written


def rows_csv(rows: list[dict]) -> str:
    text = io.StringIO()
    writer = csv.DictWriter(text, REFERENCE_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue()
