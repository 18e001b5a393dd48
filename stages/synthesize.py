"""Stage ``synthesize``: new WAVs of every class from the GAN, judged by the trained CNN."""
import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import torch

from sonic.config import load_params
from sonic.features.store import load_features
from sonic.generation.plots import save_grid
from sonic.generation.synthesize import invert_all, quality_report, roundtrip_mels, sample_per_class
from sonic.generation.trainer import load_generator
from sonic.runtime import atomic_path, pick_device, seed_everything
from sonic.training.checkpoint import load_classifier
from sonic.training.report import open_live, rounded, write_details


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--generator", type=Path, required=True)
    parser.add_argument("--judge", type=Path, required=True, help="classifier checkpoint")
    parser.add_argument("--features", type=Path, required=True)
    parser.add_argument("--split", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="folder for <class>/NNN.wav")
    parser.add_argument("--live", type=Path, required=True, help="DVCLive folder")
    args = parser.parse_args()
    params = load_params(args.params)
    cfg, features = params.synthesize, params.features
    seed_everything(cfg.seed)
    device = pick_device(cfg.device)

    ckpt = torch.load(args.generator, map_location="cpu", weights_only=True)
    judge = load_classifier(args.judge)
    if ckpt["classes"] != judge.classes:
        raise SystemExit("synthesize: the GAN and the judge were trained on different classes")
    G = load_generator(ckpt, device)
    samples = sample_per_class(G, len(ckpt["classes"]), cfg.per_class, G.z_dim, cfg.seed,
                               ckpt["mean"], ckpt["std"], features.top_db)
    waves = invert_all(samples.db, features, cfg.griffin_lim_iters, cfg.seed, device)
    for i, (wave, label) in enumerate(zip(waves, samples.labels)):
        name = ckpt["classes"][label]
        with atomic_path(args.out / name / f"{i % cfg.per_class:03d}.wav") as tmp:
            sf.write(tmp, wave, features.sample_rate, subtype="PCM_16")
    live = open_live(args.live)
    with tempfile.TemporaryDirectory() as tmp:
        for c, name in enumerate(ckpt["classes"]):
            picture = Path(tmp) / f"{name}.png"
            save_grid(samples.db[samples.labels == c][:4], [name], min(4, cfg.per_class), picture)
            live.log_image(f"{name}.png", picture)

    feats = load_features(args.features)
    split = pd.read_csv(args.split, dtype=str, keep_default_na=False)
    rows = {role: feats.rows(split.loc[split["role"] == role, "clip_id"]) for role in ("train", "val")}
    code = {c: i for i, c in enumerate(judge.classes)}
    report = quality_report(
        judge, samples, roundtrip_mels(waves, features),
        train_db=np.asarray(feats.mels[rows["train"]]), val_db=np.asarray(feats.mels[rows["val"]]),
        val_labels=feats.index["label"].iloc[rows["val"]].map(code).to_numpy(), seed=cfg.seed)
    per_class = report.pop("per_class")
    live.summary = rounded(report)
    live.end()
    write_details(args.live / "report.json", {"per_class": per_class})
    print(f"synthesize: {len(waves)} WAVs in {args.out}; conditional accuracy "
          f"{report['conditional_accuracy']:.3f} (judge on real val "
          f"{report['judge_val_accuracy']:.3f}), round trip "
          f"{report['roundtrip_accuracy']:.3f}, Fréchet {report['frechet_distance']:.2f}"
          f" (floor {report['frechet_floor']:.2f})")


if __name__ == "__main__":
    main()
