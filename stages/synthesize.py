"""Stage ``synthesize``: new WAVs of every class from the GAN, and the figures that say how good
they are (inception score, judge accuracy, CAS, Fréchet distance, copies), each beside its
real-data value with a 95 % interval."""
import argparse
import dataclasses
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import torch

from sonic.config.features import FeatureConfig
from sonic.config.invert import InvertConfig
from sonic.config.parse import load_sections
from sonic.config.synthesize import SynthesizeConfig
from sonic.features.store import load_features
from sonic.generation.inverter import load_inverter
from sonic.generation.plots import save_grid
from sonic.generation.synthesize import (RealSets, headline, invert_all, quality_report,
                                         roundtrip_mels, sample_like, sample_per_class)
from sonic.generation.state import load_generator
from sonic.runtime import atomic_path, pick_device, seed_everything
from sonic.training.checkpoint import load_classifier
from sonic.training.report import open_live, rounded, write_details

BASELINE_N = 128  # generated spectrograms also inverted the old way (lstsq + plain GL)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--generator", type=Path, required=True)
    parser.add_argument("--judge", type=Path, required=True, help="classifier checkpoint")
    parser.add_argument("--inverter", type=Path, required=True, help="stage train_inverter's")
    parser.add_argument("--features", type=Path, required=True)
    parser.add_argument("--split", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="folder for <class>/NNN.wav")
    parser.add_argument("--live", type=Path, required=True, help="DVCLive folder")
    args = parser.parse_args()
    params = load_sections(args.params, features=FeatureConfig, invert=InvertConfig,
                           synthesize=SynthesizeConfig)
    cfg, features, inv_cfg = params.synthesize, params.features, params.invert
    seed_everything(cfg.seed)
    device = pick_device(cfg.device)

    ckpt = torch.load(args.generator, map_location="cpu", weights_only=True)
    judge = load_classifier(args.judge)
    classes = ckpt["classes"]
    if classes != judge.classes:
        raise SystemExit("synthesize: the GAN and the judge were trained on different classes")
    G = load_generator(ckpt, device)
    inverter = load_inverter(args.inverter, device) if inv_cfg.method == "network" else None
    per_class = max(cfg.per_class, -(-cfg.n_eval // len(classes)))
    samples = sample_per_class(G, len(classes), per_class, G.z_dim, cfg.seed, ckpt["mean"],
                               ckpt["std"], features.top_db)
    waves = invert_all(samples.db, features, inv_cfg, cfg.seed, device, inverter)
    for i, (wave, label) in enumerate(zip(waves, samples.labels)):
        if i % per_class < cfg.per_class:
            with atomic_path(args.out / classes[label] / f"{i % per_class:03d}.wav") as tmp:
                sf.write(tmp, wave, features.sample_rate, subtype="PCM_16")
    live = open_live(args.live)
    with tempfile.TemporaryDirectory() as tmp:
        for c, name in enumerate(classes):
            picture = Path(tmp) / f"{name}.png"
            n = min(4, per_class)
            save_grid(samples.db[samples.labels == c][:n], [name], n, picture)
            live.log_image(f"{name}.png", picture)

    # the old inversion (least squares + plain Griffin-Lim) on a few of each class, to compare
    few = np.arange(len(samples.labels)) % per_class < -(-BASELINE_N // len(classes))
    old = dataclasses.replace(inv_cfg, momentum=0.0)
    baseline = roundtrip_mels(invert_all(samples.db[few], features, old, cfg.seed, device),
                              features)
    real = real_sets(args.features, args.split, classes)
    # CAS trains on as many generated spectrograms as there are real training clips, per class;
    # each run on its own draw
    twins = [sample_like(G, real.train_y, cfg.seed + 1 + r, ckpt["mean"], ckpt["std"],
                         features.top_db) for r in range(cfg.cas.runs)]
    report = quality_report(judge, samples, roundtrip_mels(waves, features), real, cfg, device,
                            baseline_roundtrip=(baseline, samples.labels[few]), cas_samples=twins)
    figures = headline(report)
    live.summary = rounded(figures)
    live.end()
    write_details(args.live / "report.json", report)
    print(f"synthesize: {len(waves)} generated ({cfg.per_class} per class written to "
          f"{args.out}); " + ", ".join(f"{k} {v:.3f}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
