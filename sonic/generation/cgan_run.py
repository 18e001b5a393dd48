"""Stage ``train_cgan``'s work: the conditional GAN on the training clips' log-mels, with
progress pictures and WAVs every ``cgan.sample_every`` epochs, resuming a killed run.

Batches stream from the memory-mapped features, normalised as the classifiers' are. The resume
key covers the ``features`` and ``cgan`` sections, the bytes of the inputs and the code the stage
runs; the progress grids drawn so far travel in the resume file, so a resumed run logs the
pictures an uninterrupted one logs.
"""
from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path

import soundfile as sf
import torch
from dvclive import Live

from sonic.config.cgan import CGANConfig
from sonic.config.features import FeatureConfig
from sonic.generation.mel_to_wave import mel_db_to_wave
from sonic.generation.spectrogram_plots import save_grid
from sonic.generation.state import (GANState, fixed_grid, generate, make_state,
                                    sampling_generator, save_generator)
from sonic.generation.trainer import train_cgan
from sonic.report import open_live, rounded, write_details
from sonic.runtime import atomic_path, pick_device, seed_everything
from sonic.training.data import load_classifier_data
from sonic.training.resume import ResumeFile, fingerprint

GRID_PER_CLASS = 4  # samples per class row in the progress pictures
PROGRESS_GL_ITERS = 32  # Griffin-Lim iterations for progress WAVs (synthesize has its own param)
LOGGED = ("d_loss", "g_loss", "d_real", "d_fake", "mode_seeking", "d_aux", "g_aux", "d_twin",
          "g_twin")


@dataclasses.dataclass
class ProgressLog:
    """The per-epoch callback of :func:`~sonic.generation.trainer.train_cgan`: losses to
    DVCLive; every ``sample_every`` epochs (and the last) a grid of the fixed noise's samples,
    ``GRID_PER_CLASS`` per class, as a picture and ``audio_samples`` WAVs per class."""

    live: Live
    cfg: CGANConfig
    features: FeatureConfig
    classes: list[str]
    mean: float  # dB, the normalisation the generator's output undoes
    std: float
    samples: Path  # folder of epoch_NNN/<class>_<k>.wav
    device: torch.device
    grids: dict = dataclasses.field(default_factory=dict)  # epoch → grid (dB), resumed too

    def __call__(self, epoch: int, state: GANState, record: dict) -> None:
        self.live.step = epoch
        for name in LOGGED:
            if name in record:
                self.live.log_metric(f"cgan/{name}", record[name])
        self.live.make_summary()
        if epoch % self.cfg.sample_every and epoch != self.cfg.epochs:
            return
        if not record.get("restored"):
            z, labels = fixed_grid(len(self.classes), GRID_PER_CLASS, self.cfg.z_dim,
                                   self.cfg.seed)
            x = generate(sampling_generator(state, self.cfg), z, labels)[:, 0]
            self.grids[epoch] = x * self.std + self.mean
        db = self.grids[epoch].numpy()  # (classes × GRID_PER_CLASS, n_mels, T)
        self.picture(epoch, db)
        self.wavs(epoch, db)

    def picture(self, epoch: int, db) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            picture = Path(tmp) / f"epoch_{epoch:03d}.png"
            save_grid(db, self.classes, GRID_PER_CLASS, picture)
            self.live.log_image(f"grids/epoch_{epoch:03d}.png", picture)

    def wavs(self, epoch: int, db) -> None:
        per_class = min(self.cfg.audio_samples, GRID_PER_CLASS)
        picks = [c * GRID_PER_CLASS + k for c in range(len(self.classes))
                 for k in range(per_class)]
        waves = mel_db_to_wave(torch.from_numpy(db[picks]), self.features, PROGRESS_GL_ITERS,
                               self.cfg.seed, self.device).cpu().numpy()
        for i, wave in zip(picks, waves):
            name = f"{self.classes[i // GRID_PER_CLASS]}_{i % GRID_PER_CLASS}.wav"
            with atomic_path(self.samples / f"epoch_{epoch:03d}" / name) as tmp:
                sf.write(tmp, wave, self.features.sample_rate, subtype="PCM_16")


def train_and_save_cgan(cfg: CGANConfig, features: FeatureConfig, *, features_dir: Path,
                        split: Path, checkpoint: Path, samples: Path, live_dir: Path,
                        resume: Path | None, code: list[Path]) -> None:
    """Train on the split's training clips; write the checkpoint
    (:func:`~sonic.generation.state.save_generator`), the progress samples, ``live_dir`` and
    ``live_dir/run.json``."""
    seed_everything(cfg.seed)
    device = pick_device(cfg.device)
    data = load_classifier_data(features_dir, split, augmented=None)
    lo, hi = (-features.top_db - data.mean) / data.std, (0.0 - data.mean) / data.std
    state = make_state(cfg, len(data.classes), features.n_mels, features.n_frames, lo, hi,
                       device)
    key = fingerprint({"features": dataclasses.asdict(features), "cgan": dataclasses.asdict(cfg)},
                      [features_dir / "mels.npy", features_dir / "index.csv", split], code)
    resume_file = ResumeFile(resume, key) if resume else None
    live = open_live(live_dir)
    log = ProgressLog(live, cfg, features, data.classes, data.mean, data.std, samples, device)
    t0 = time.perf_counter()
    history = train_cgan(state, data.train, None, cfg, log, resume=resume_file, keep=log.grids)
    save_generator(checkpoint, state, cfg, data.classes, data.mean, data.std)
    last = history[-1]
    live.summary = rounded({"cgan": {"d_loss": last["d_loss"], "g_loss": last["g_loss"]}})
    live.end()
    write_details(live_dir / "run.json", {**last, "train_clips": len(data.train),
                                          "threads": torch.get_num_threads(),
                                          "wall_time_s": time.perf_counter() - t0})
    if resume_file is not None:
        resume_file.clear()
    print(f"train_cgan: {cfg.epochs} epochs on {len(data.train)} clips in "
          f"{time.perf_counter() - t0:.0f} s; final d_loss {last['d_loss']:.3f}, "
          f"g_loss {last['g_loss']:.3f}")
