"""Stage ``synthesize``'s work: new WAVs of every class from the GAN, and the figures that say
how good they are (inception score, judge accuracy, CAS, Fréchet distance, copies), each beside
its real-data value with a 95 % interval."""
from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import torch

from sonic.config.features import FeatureConfig
from sonic.config.invert import InvertConfig
from sonic.config.synthesize import SynthesizeConfig
from sonic.features.store import load_features
from sonic.generation.inverter_net import load_inverter
from sonic.generation.samples import (RealSets, Samples, headline, invert_all,
                                         quality_report, roundtrip_mels, sample_like,
                                         sample_per_class)
from sonic.generation.spectrogram_plots import save_grid
from sonic.generation.state import load_gan_checkpoint, load_generator
from sonic.models.checkpoint import load_classifier
from sonic.report import open_live, rounded, write_details
from sonic.runtime import atomic_path, pick_device, seed_everything

BASELINE_N = 128  # generated spectrograms also inverted the old way (lstsq + plain GL)
PICTURED = 4  # spectrograms per class in the pictures


def real_sets(features: Path, split: Path, classes: list[str]) -> RealSets:
    """Training clips, and the labelled clips nothing trained on (val and answered test)."""
    feats = load_features(features)
    roles = pd.read_csv(split, dtype=str, keep_default_na=False)
    code = {c: i for i, c in enumerate(classes)}
    labels = feats.index["label"]

    def rows(names):
        ids = roles.loc[roles["role"].isin(names), "clip_id"]
        r = np.sort(feats.rows(ids))
        return r[labels.iloc[r].isin(code).to_numpy()]

    train, held = rows(["train"]), rows(["val", "test"])
    return RealSets(np.asarray(feats.mels[train]), labels.iloc[train].map(code).to_numpy(),
                    np.asarray(feats.mels[held]), labels.iloc[held].map(code).to_numpy())


def write_wavs(out: Path, waves: np.ndarray, samples: Samples, classes: list[str],
               per_class: int, keep: int, sample_rate: int) -> None:
    """The first ``keep`` of each class's ``per_class`` clips as ``out/<class>/NNN.wav``."""
    for i, (wave, label) in enumerate(zip(waves, samples.labels)):
        if i % per_class < keep:
            with atomic_path(out / classes[label] / f"{i % per_class:03d}.wav") as tmp:
                sf.write(tmp, wave, sample_rate, subtype="PCM_16")


def log_pictures(live, samples: Samples, classes: list[str]) -> None:
    """One picture per class of its first generated spectrograms."""
    with tempfile.TemporaryDirectory() as tmp:
        for c, name in enumerate(classes):
            picture = Path(tmp) / f"{name}.png"
            db = samples.db[samples.labels == c][:PICTURED]
            save_grid(db, [name], len(db), picture)
            live.log_image(f"{name}.png", picture)


def synthesize(cfg: SynthesizeConfig, features: FeatureConfig, inv_cfg: InvertConfig, *,
               generator: Path, judge: Path, inverter: Path, features_dir: Path, split: Path,
               out: Path, live_dir: Path) -> None:
    """Sample the GAN, write ``cfg.per_class`` WAVs per class to ``out``, and score the samples
    with ``judge`` (a classifier checkpoint) against the real clips; ``live_dir`` gets the
    headline figures and pictures, ``live_dir/report.json`` every figure."""
    seed_everything(cfg.seed)
    device = pick_device(cfg.device)
    ckpt = load_gan_checkpoint(generator)
    judge_model = load_classifier(judge)
    classes = ckpt["classes"]
    if classes != judge_model.classes:
        raise SystemExit("synthesize: the GAN and the judge were trained on different classes")
    G = load_generator(ckpt, device)
    net = load_inverter(inverter, device) if inv_cfg.method == "network" else None
    per_class = max(cfg.per_class, -(-cfg.n_eval // len(classes)))
    scale = (ckpt["mean"], ckpt["std"], features.top_db)
    samples = sample_per_class(G, len(classes), per_class, G.z_dim, cfg.seed, *scale)
    waves = invert_all(samples.db, features, inv_cfg, cfg.seed, device, net)
    write_wavs(out, waves, samples, classes, per_class, cfg.per_class, features.sample_rate)
    live = open_live(live_dir)
    log_pictures(live, samples, classes)

    # the old inversion (least squares + plain Griffin-Lim) on a few of each class, to compare
    few = np.arange(len(samples.labels)) % per_class < -(-BASELINE_N // len(classes))
    old = dataclasses.replace(inv_cfg, momentum=0.0)
    baseline = roundtrip_mels(invert_all(samples.db[few], features, old, cfg.seed, device),
                              features)
    real = real_sets(features_dir, split, classes)
    # CAS trains on as many generated spectrograms as there are real training clips, per class;
    # each run on its own draw
    twins = [sample_like(G, real.train_y, cfg.seed + 1 + r, *scale) for r in range(cfg.cas.runs)]
    report = quality_report(judge_model, samples, roundtrip_mels(waves, features), real, cfg,
                            device, baseline_roundtrip=(baseline, samples.labels[few]),
                            cas_samples=twins)
    figures = headline(report)
    live.summary = rounded(figures)
    live.end()
    write_details(live_dir / "report.json", report)
    print(f"synthesize: {len(waves)} generated ({cfg.per_class} per class written to {out}); "
          + ", ".join(f"{k} {v:.3f}" for k, v in figures.items()))
