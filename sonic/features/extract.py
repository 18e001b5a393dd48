"""``extract_mels``: decode every clip of a layout once, in parallel, into cached arrays."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from sonic.audio.io import BadAudioError, read_audio
from sonic.audio.layouts import BadFile, Clip
from sonic.config import FeatureConfig
from sonic.features.mel import prepare_waveform, waves_to_mels
from sonic.features.store import INDEX_COLUMNS
from sonic.runtime import worker_pool


class BadInputError(Exception):
    """Raised under ``data.on_bad_file: fail`` at the first unusable file."""


@dataclass
class Extracted:
    waves: np.ndarray  # (N, n_samples) float32
    mels: np.ndarray  # (N, n_mels, n_frames) float32 dB
    index: pd.DataFrame  # INDEX_COLUMNS, one row per clip
    bad: list[BadFile]


def _decode(job: tuple[Clip, FeatureConfig]) -> np.ndarray | BadFile:
    clip, cfg = job
    try:
        audio, sr = read_audio(clip.path)
        return prepare_waveform(audio, sr, cfg)
    except BadAudioError as err:
        return BadFile(str(clip.path), err.reason)


def decode_all(clips: list[Clip], cfg: FeatureConfig):
    """Yield (clip, waveform or BadFile) in clip order, decoding in ``cfg.workers`` processes."""
    jobs = [(clip, cfg) for clip in clips]
    bar = dict(total=len(jobs), desc="decode", unit="clip")
    if cfg.workers <= 1:
        results = map(_decode, jobs)
        yield from zip(clips, tqdm(results, **bar))
        return
    with worker_pool(cfg.workers) as pool:
        results = pool.imap(_decode, jobs, chunksize=8)
        yield from zip(clips, tqdm(results, **bar))


def extract(clips: list[Clip], cfg: FeatureConfig, on_bad_file: str = "skip",
            device: torch.device | str = "cpu") -> Extracted:
    """Decode, resample, trim and fix the length of every clip, then compute log-mels in batches.

    Unusable files are collected in ``bad`` (with ``on_bad_file="skip"``) or raise
    :class:`BadInputError` (``"fail"``); the other clips are kept either way under ``skip``.
    """
    waves, rows, bad = [], [], []
    for clip, result in decode_all(clips, cfg):
        if isinstance(result, BadFile):
            if on_bad_file == "fail":
                raise BadInputError(f"{result.path}: {result.reason} "
                                    "(set data.on_bad_file: skip to report and continue)")
            tqdm.write(f"skipping {result.path}: {result.reason}")
            bad.append(result)
            continue
        waves.append(result)
        rows.append((clip.clip_id, str(clip.path), clip.label, clip.group, clip.role, clip.fold))
    if not waves:
        raise BadInputError("no usable clips: every file was rejected (see the report above)")
    waves = np.stack(waves)
    mels = waves_to_mels(waves, cfg, device)
    index = pd.DataFrame(rows, columns=list(INDEX_COLUMNS))
    return Extracted(waves, mels, index, bad)


def bad_files_table(bad: list[BadFile]) -> pd.DataFrame:
    return pd.DataFrame([(b.path, b.reason) for b in bad], columns=["file", "reason"])
