"""The extraction benchmark: Sonic's batched extractor against a plain per-file librosa loop."""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from sonic.audio.layouts import Clip, discover
from sonic.config import DataConfig, FeatureConfig


@dataclass(frozen=True)
class Workload:
    clips: list[Clip]
    features: FeatureConfig  # trim off, duration = the longest clip
    n_classes: int  # labelled classes of the whole data set (before --limit)


def load_workload(root: str | Path, layout: str, base: FeatureConfig,
                  limit: int | None = None) -> Workload:
    """The clips to extract and the features config that frames them like librosa does.

    ``trim`` is turned off and ``duration`` set to the longest clip (s), so Sonic never crops
    a clip and both paths see the same samples.
    """
    clips, _ = discover(DataConfig(layout=layout, root=str(root)))
    n_classes = len({c.label for c in clips if c.label is not None})
    clips = clips[:limit] if limit else clips
    duration = max(sf.info(str(c.path)).duration for c in clips)
    return Workload(clips, dataclasses.replace(base, trim=False, duration=duration), n_classes)


def time_sonic(work: Workload, device: str, folder: Path) -> tuple[dict, np.ndarray]:
    """Run :func:`sonic.features.extract.extract`; figures and mels (N, n_mels, n_frames) dB.

    The time includes starting the decoding worker processes and writing the feature folder
    (to ``folder``), as the stage pays both.
    """
    import torch

    from sonic.features.extract import extract

    t0 = time.perf_counter()
    result = extract(work.clips, work.features, "skip", torch.device(device), out=folder)
    seconds = time.perf_counter() - t0
    figures = {"clips": len(result.index), "seconds": seconds,
               "clips_per_s": len(result.index) / seconds, "device": device,
               "workers": work.features.workers, "paths": list(result.index["source"])}
    return figures, result.mels


def librosa_mel(path: str | Path, cfg: FeatureConfig) -> np.ndarray:
    """The reference recipe for one file: (n_mels, frames) dB, frames = 1 + samples // hop."""
    import librosa

    y, sr = librosa.load(path, sr=cfg.sample_rate)
    power = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=cfg.n_fft, hop_length=cfg.hop_length,
                                           n_mels=cfg.n_mels, fmin=cfg.f_min, fmax=cfg.f_max)
    return librosa.power_to_db(power, ref=np.max, top_db=cfg.top_db)


def time_librosa(work: Workload) -> tuple[dict, np.ndarray]:
    """The per-file librosa loop over the same clips, after one untimed warm-up call (librosa
    imports its submodules lazily).

    torch is imported first, as in Sonic's part: on the reference machine that alone makes this
    loop 20-25 % faster (7.0-8.2 s vs 8.9-10.5 s for ESC-50, three runs each; the cause is not
    established), and the baseline should be the faster of the two.

    Returns figures and the outputs matched to Sonic's frame count: (N, n_mels, n_frames) dB,
    NaN in frames librosa did not compute (clips shorter than the duration), cropped past it.
    """
    import torch  # noqa: F401 - see above

    cfg = work.features
    for clip in work.clips[:3]:  # the warm-up; an unreadable first file is no reason to stop
        try:
            librosa_mel(clip.path, cfg)
            break
        except Exception:  # noqa: BLE001
            continue
    outputs, paths, failed = [], [], 0
    t0 = time.perf_counter()
    for clip in work.clips:
        try:
            outputs.append(librosa_mel(clip.path, cfg))
            paths.append(str(clip.path))
        except Exception:  # noqa: BLE001 - an unreadable file is skipped, as Sonic skips it
            failed += 1
    seconds = time.perf_counter() - t0
    matched = np.full((len(outputs), cfg.n_mels, cfg.n_frames), np.nan, dtype=np.float32)
    frames = []
    for i, db in enumerate(outputs):
        t = min(db.shape[1], cfg.n_frames)
        matched[i, :, :t] = db[:, :t]
        frames.append(db.shape[1])
    figures = {"clips": len(outputs), "failed": failed, "seconds": seconds,
               "clips_per_s": len(outputs) / seconds, "paths": paths,
               "frame_mismatch": sum(f != cfg.n_frames for f in frames)}
    return figures, matched


def compare(ours: np.ndarray, our_paths: list[str], ref: np.ndarray, ref_paths: list[str]
            ) -> dict:
    """Largest and mean |ours - librosa| in dB over the clips both kept and the frames both
    computed (NaN frames of ``ref`` are left out)."""
    row = {p: i for i, p in enumerate(our_paths)}
    pairs = [(row[p], j) for j, p in enumerate(ref_paths) if p in row]
    worst, worst_path, total, count = 0.0, None, 0.0, 0
    for i, j in pairs:
        diff = np.abs(ours[i] - ref[j])
        diff = diff[~np.isnan(diff)]
        if diff.size and diff.max() > worst:
            worst, worst_path = float(diff.max()), ref_paths[j]
        total, count = total + float(diff.sum()), count + diff.size
    return {"max_abs_db_diff": worst, "mean_abs_db_diff": total / max(count, 1),
            "worst_clip": worst_path, "clips_compared": len(pairs)}
