"""``augment``: augmented copies of the training clips only, as log-mels.

Each copy is drawn from its own random stream, seeded by (augment.seed, source clip, copy number),
so the result does not depend on how work is spread over processes.
"""
from __future__ import annotations

import zlib

import numpy as np
import pandas as pd
import torch

from sonic.augment.ops import augment_clip
from sonic.config import AugmentConfig, FeatureConfig
from sonic.features.mel import waves_to_mels
from sonic.progress import progress
from sonic.runtime import worker_pool


def _copy_rng(seed: int, clip_id: str, copy: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(clip_id.encode()), copy])


def _augment_one(job: tuple[np.ndarray, str, int, int, AugmentConfig]) -> tuple[np.ndarray, list[str]]:
    wave, clip_id, copy, sr, cfg = job
    return augment_clip(np.asarray(wave), sr, cfg, _copy_rng(cfg.seed, clip_id, copy))


def augment_training_clips(waves: np.ndarray, clips: pd.DataFrame, cfg: AugmentConfig,
                           features: FeatureConfig, device: torch.device | str = "cpu"
                           ) -> tuple[np.ndarray, pd.DataFrame]:
    """Make ``cfg.copies`` augmented copies of each clip in ``clips``.

    Parameters
    ----------
    waves : (N, n_samples) float32, the cached fixed-length waveforms of exactly these clips
    clips : table with ``clip_id`` and ``label``, one row per wave — the caller passes training
        clips only, which is what keeps validation and test clips out of augmentation

    Returns
    -------
    mels : (N * copies, n_mels, n_frames) float32 dB
    index : ``aug_id, clip_id, label, copy, ops`` mapping each copy to its source clip
    """
    jobs = [(waves[i], cid, c, features.sample_rate, cfg)
            for i, cid in enumerate(clips["clip_id"]) for c in range(cfg.copies)]
    bar = dict(total=len(jobs), desc="augment", unit="copy")
    if cfg.workers > 1 and len(jobs) > 1:
        with worker_pool(cfg.workers) as pool:
            results = list(progress(pool.imap(_augment_one, jobs, chunksize=4), **bar))
    else:
        results = [_augment_one(job) for job in progress(jobs, **bar)]
    n_mels, n_frames = features.n_mels, features.n_frames
    if not results:
        return np.empty((0, n_mels, n_frames), np.float32), pd.DataFrame(
            columns=["aug_id", "clip_id", "label", "copy", "ops"])
    mels = waves_to_mels(np.stack([wave for wave, _ in results]), features, device)
    index = pd.DataFrame({
        "aug_id": [f"{cid}#aug{c}" for cid in clips["clip_id"] for c in range(cfg.copies)],
        "clip_id": np.repeat(clips["clip_id"].to_numpy(), cfg.copies),
        "label": np.repeat(clips["label"].to_numpy(), cfg.copies),
        "copy": np.tile(np.arange(cfg.copies), len(clips)),
        "ops": ["+".join(ops) or "none" for _, ops in results],
    })
    return mels, index
