"""Stage ``train_cgan``: the conditional GAN on the training clips' log-mels."""
import argparse
import time
from pathlib import Path

import soundfile as sf
import torch

from sonic.config import load_params
from sonic.generation.invert import mel_db_to_wave
from sonic.generation.plots import save_grid
from sonic.generation.trainer import checkpoint, fixed_grid, generate, make_state, train_cgan
from sonic.runtime import atomic_path, pick_device, seed_everything
from sonic.training.data import load_classifier_data
from sonic.training.report import write_history, write_metrics

GRID_PER_CLASS = 4  # samples per class row in the progress pictures
PROGRESS_GL_ITERS = 32  # Griffin-Lim iterations for progress WAVs (synthesize has its own param)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--features", type=Path, required=True)
    parser.add_argument("--split", type=Path, required=True)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--samples", type=Path, required=True, help="folder for progress WAVs")
    parser.add_argument("--grids", type=Path, required=True, help="folder for progress pictures")
    parser.add_argument("--plots", type=Path, required=True, help="per-epoch losses CSV")
    parser.add_argument("--metrics", type=Path, required=True)
    args = parser.parse_args()
    params = load_params(args.params)
    cfg, features = params.cgan, params.features
    seed_everything(cfg.seed)
    device = pick_device(cfg.device)

    # the same training clips and normalisation the classifiers use
    data = load_classifier_data(args.features, args.split, augmented=None)
    x = (data.x_train - data.mean) / data.std
    lo, hi = (-features.top_db - data.mean) / data.std, (0.0 - data.mean) / data.std
    n_classes = len(data.classes)
    state = make_state(cfg, n_classes, features.n_mels, features.n_frames, lo, hi, device)
    z, labels = fixed_grid(n_classes, GRID_PER_CLASS, cfg.z_dim, cfg.seed)

    def on_epoch(epoch: int, state, record: dict) -> None:
        if epoch % cfg.sample_every and epoch != cfg.epochs:
            return
        db = generate(state.G, z, labels)[:, 0].numpy() * data.std + data.mean
        save_grid(db, data.classes, GRID_PER_CLASS, args.grids / f"epoch_{epoch:03d}.png")
        per_class = min(cfg.audio_samples, GRID_PER_CLASS)
        picks = [c * GRID_PER_CLASS + k for c in range(n_classes) for k in range(per_class)]
        waves = mel_db_to_wave(torch.from_numpy(db[picks]), features, PROGRESS_GL_ITERS,
                               cfg.seed, device).cpu().numpy()
        for i, wave in zip(picks, waves):
            name = f"{data.classes[i // GRID_PER_CLASS]}_{i % GRID_PER_CLASS}.wav"
            with atomic_path(args.samples / f"epoch_{epoch:03d}" / name) as tmp:
                sf.write(tmp, wave, features.sample_rate, subtype="PCM_16")

    t0 = time.perf_counter()
    history = train_cgan(state, x[:, None], data.y_train, cfg, on_epoch)
    with atomic_path(args.checkpoint) as tmp:
        torch.save(checkpoint(state, cfg) | {"classes": data.classes, "mean": data.mean,
                                             "std": data.std}, tmp)
    write_history(args.plots, history)
    write_metrics(args.metrics, {**{k: v for k, v in history[-1].items()},
                                 "train_clips": len(x), "wall_time_s": time.perf_counter() - t0})
    print(f"train_cgan: {cfg.epochs} epochs on {len(x)} clips in {time.perf_counter() - t0:.0f} s; "
          f"final d_loss {history[-1]['d_loss']:.3f}, g_loss {history[-1]['g_loss']:.3f}")


if __name__ == "__main__":
    main()
