"""Stage ``train_cgan``: the conditional GAN on the training clips' log-mels.

Batches stream from the memory-mapped features. Killed, it resumes from ``--resume`` on the next
run with the same params, data and code.
"""
import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import soundfile as sf
import torch

from sonic.codedeps import code_deps
from sonic.config.cgan import CGANConfig
from sonic.config.features import FeatureConfig
from sonic.config.parse import load_sections
from sonic.generation.invert import mel_db_to_wave
from sonic.generation.plots import save_grid
from sonic.generation.state import (checkpoint, fixed_grid, generate, make_state,
                                    sampling_generator)
from sonic.generation.trainer import train_cgan
from sonic.runtime import atomic_path, pick_device, seed_everything
from sonic.training.data import load_classifier_data
from sonic.training.report import open_live, rounded, write_details
from sonic.training.resume import ResumeFile, fingerprint

GRID_PER_CLASS = 4  # samples per class row in the progress pictures
PROGRESS_GL_ITERS = 32  # Griffin-Lim iterations for progress WAVs (synthesize has its own param)
# the resume key hashes every file the stage runs: its code deps in dvc.yaml
CODE = code_deps("stages.train_cgan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--features", type=Path, required=True)
    parser.add_argument("--split", type=Path, required=True)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--samples", type=Path, required=True, help="folder for progress WAVs")
    parser.add_argument("--live", type=Path, required=True, help="DVCLive folder")
    parser.add_argument("--resume", type=Path, help="resume state (kept until the run ends)")
    args = parser.parse_args()
    params = load_sections(args.params, features=FeatureConfig, cgan=CGANConfig)
    cfg, features = params.cgan, params.features
    seed_everything(cfg.seed)
    device = pick_device(cfg.device)

    # the same training clips and normalisation the classifiers use, streamed
    data = load_classifier_data(args.features, args.split, augmented=None)
    lo, hi = (-features.top_db - data.mean) / data.std, (0.0 - data.mean) / data.std
    n_classes = len(data.classes)
    state = make_state(cfg, n_classes, features.n_mels, features.n_frames, lo, hi, device)
    z, labels = fixed_grid(n_classes, GRID_PER_CLASS, cfg.z_dim, cfg.seed)
    key = fingerprint({"features": dataclasses.asdict(features), "cgan": dataclasses.asdict(cfg)},
                      [args.features / "mels.npy", args.features / "index.csv", args.split], CODE)
    resume = ResumeFile(args.resume, key) if args.resume else None
    live = open_live(args.live)
    grids: dict = {}  # epoch → the progress grid (dB tensor), kept in the resume state

    def on_epoch(epoch: int, state, record: dict) -> None:
        live.step = epoch
        for name in ("d_loss", "g_loss", "d_real", "d_fake", "mode_seeking", "d_aux", "g_aux",
                     "d_twin", "g_twin"):
            if name in record:
                live.log_metric(f"cgan/{name}", record[name])
        live.make_summary()
        if epoch % cfg.sample_every and epoch != cfg.epochs:
            return
        if not record.get("restored"):
            x = generate(sampling_generator(state, cfg), z, labels)[:, 0]
            grids[epoch] = x * data.std + data.mean
        db = grids[epoch].numpy()
        with tempfile.TemporaryDirectory() as tmp:
            picture = Path(tmp) / f"epoch_{epoch:03d}.png"
            save_grid(db, data.classes, GRID_PER_CLASS, picture)
            live.log_image(f"grids/epoch_{epoch:03d}.png", picture)
        per_class = min(cfg.audio_samples, GRID_PER_CLASS)
        picks = [c * GRID_PER_CLASS + k for c in range(n_classes) for k in range(per_class)]
        waves = mel_db_to_wave(torch.from_numpy(db[picks]), features, PROGRESS_GL_ITERS,
                               cfg.seed, device).cpu().numpy()
        for i, wave in zip(picks, waves):
            name = f"{data.classes[i // GRID_PER_CLASS]}_{i % GRID_PER_CLASS}.wav"
            with atomic_path(args.samples / f"epoch_{epoch:03d}" / name) as tmp:
                sf.write(tmp, wave, features.sample_rate, subtype="PCM_16")

    t0 = time.perf_counter()
    history = train_cgan(state, data.train, None, cfg, on_epoch, resume=resume, keep=grids)
    with atomic_path(args.checkpoint) as tmp:
        torch.save(checkpoint(state, cfg) | {
            "G_sample": sampling_generator(state, cfg).state_dict(),
            "classes": data.classes, "mean": data.mean, "std": data.std}, tmp)
    last = history[-1]
    live.summary = rounded({"cgan": {"d_loss": last["d_loss"], "g_loss": last["g_loss"]}})
    live.end()
    write_details(args.live / "run.json", {**last, "train_clips": len(data.train),
                                           "wall_time_s": time.perf_counter() - t0})
    if resume is not None:
        resume.clear()
    print(f"train_cgan: {cfg.epochs} epochs on {len(data.train)} clips in "
          f"{time.perf_counter() - t0:.0f} s; final d_loss {last['d_loss']:.3f}, "
          f"g_loss {last['g_loss']:.3f}")


if __name__ == "__main__":
    main()
