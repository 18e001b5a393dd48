"""The conditional GAN's training state and what is built from it.

All mutable training state lives in :class:`GANState` (both networks, both optimizers, the
generator's moving average, the noise RNG and the step counter), so a checkpoint is that
dataclass's contents: :func:`checkpoint` and :func:`restore` write and read it,
:func:`save_generator` writes the trained GAN's file, :func:`load_generator` rebuilds the
network to sample from, and :func:`sampling_generator` gives that network its standing
batch-norm statistics. The training itself is in
:mod:`sonic.generation.trainer`.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from sonic.config.cgan import CGANConfig
from sonic.config.parse import parse_section
from sonic.generation.gan import Discriminator, Generator
from sonic.tensorfile import load_payload, save_payload


@dataclass
class GANState:
    G: Generator
    D: Discriminator
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    rng: torch.Generator  # CPU generator for noise and fake labels: same draws on every device
    n_classes: int
    step: int = 0
    G_ema: Generator | None = None  # moving average of G's weights (``cgan.ema`` > 0)

    @property
    def device(self) -> torch.device:
        return self.G.lo.device

    @property
    def sampler(self) -> Generator:
        """The generator to sample from: the moving average where there is one."""
        return self.G if self.G_ema is None else self.G_ema


def make_state(cfg: CGANConfig, n_classes: int, n_mels: int, n_frames: int, lo: float,
               hi: float, device: torch.device | str = "cpu") -> GANState:
    """Build G, D, their Adam optimizers (betas (0.5, 0.999)) and, with ``cfg.ema`` > 0, the
    moving-average copy of G, all initialised from ``cfg.seed``.

    The weights are drawn inside a forked RNG, so building a state never disturbs the caller's
    global torch RNG, and the same seed gives the same weights on every call.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        G = Generator(cfg, n_classes, n_mels, n_frames, lo, hi).to(device)
        D = Discriminator(cfg, n_classes, n_mels, n_frames).to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=(0.5, 0.999))
    rng = torch.Generator().manual_seed(cfg.seed)
    G_ema = copy.deepcopy(G).requires_grad_(False) if cfg.ema > 0 else None
    return GANState(G, D, opt_g, opt_d, rng, n_classes, G_ema=G_ema)


@torch.no_grad()
def update_ema(state: GANState, decay: float) -> None:
    """Move the averaged generator towards G: ``w_ema ← d·w_ema + (1 − d)·w`` with
    ``d = min(decay, (1 + step) / (10 + step))`` (short memory while G changes fast early on,
    as TensorFlow's ExponentialMovingAverage with ``num_updates``). Batch-norm statistics are
    copied, not averaged: they must match the averaged weights' activations only roughly, and
    G's own are the nearest available (Yazıcı et al., 2019, average weights, not statistics).
    """
    if state.G_ema is None:
        return
    d = min(decay, (1 + state.step) / (10 + state.step))
    for avg, w in zip(state.G_ema.parameters(), state.G.parameters()):
        avg.lerp_(w, 1.0 - d)
    for avg, b in zip(state.G_ema.buffers(), state.G.buffers()):
        avg.copy_(b)


@torch.no_grad()
def sampling_generator(state: GANState, cfg: CGANConfig) -> Generator:
    """A copy of :attr:`GANState.sampler` with "standing" batch-norm statistics (BigGAN,
    Brock et al. 2019): the running means and variances re-estimated as plain averages over
    ``cfg.standing_batches`` batches of its own samples (``cfg.batch_size`` each, classes in
    turn, noise from ``cfg.seed``). The moving average's weights never produced the statistics
    it inherits from G; re-estimating them is what its eval-mode samples need. With 0 batches,
    the copy keeps the inherited statistics. The state itself is left untouched.
    """
    G = copy.deepcopy(state.sampler)
    if cfg.standing_batches == 0:
        return G.eval()
    norms = [m for m in G.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
    rng = torch.Generator().manual_seed(cfg.seed)
    G.train()
    for i in range(cfg.standing_batches):
        z = torch.randn(cfg.batch_size, cfg.z_dim, generator=rng)
        y = (torch.arange(cfg.batch_size) + i * cfg.batch_size) % state.n_classes
        G(z.to(state.device), y.to(state.device))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    return G.eval()


def fixed_grid(n_classes: int, per_class: int, z_dim: int,
               seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise (n_classes*per_class, z_dim) and labels [0]*per_class + [1]*per_class + ... .

    The same seed gives the same grid, so pictures from different epochs are comparable.
    """
    z = torch.randn(n_classes * per_class, z_dim, generator=torch.Generator().manual_seed(seed))
    return z, torch.arange(n_classes).repeat_interleave(per_class)


@torch.no_grad()
def generate(G: Generator, z: torch.Tensor, labels: torch.Tensor,
             batch_size: int = 64) -> torch.Tensor:
    """Eval-mode samples (N, 1, M, T) on the CPU from noise (N, z_dim) and labels (N,)."""
    was_training, device = G.training, G.lo.device
    G.eval()
    out = [G(z[i:i + batch_size].to(device), labels[i:i + batch_size].to(device)).cpu()
           for i in range(0, len(z), batch_size)]
    G.train(was_training)
    return torch.cat(out)


def restore(state: GANState, saved: dict) -> None:
    """Load a :func:`checkpoint` dict (plus ``rng`` when present) into ``state``."""
    state.G.load_state_dict(saved["G"])
    state.D.load_state_dict(saved["D"])
    state.opt_g.load_state_dict(saved["opt_g"])
    state.opt_d.load_state_dict(saved["opt_d"])
    state.step = saved["step"]
    if state.G_ema is not None:
        state.G_ema.load_state_dict(saved["G_ema"])
    if "rng" in saved:
        state.rng.set_state(saved["rng"])


def checkpoint(state: GANState, cfg: CGANConfig) -> dict:
    """Everything needed to rebuild and resume: config, sizes, range, weights, optimizers."""
    G = state.G
    return {
        "cfg": dataclasses.asdict(cfg), "n_classes": state.n_classes,
        "n_mels": G.n_mels, "n_frames": G.n_frames, "lo": G.lo.item(), "hi": G.hi.item(),
        "G": G.state_dict(), "D": state.D.state_dict(),
        "G_ema": None if state.G_ema is None else state.G_ema.state_dict(),
        "opt_g": state.opt_g.state_dict(), "opt_d": state.opt_d.state_dict(), "step": state.step,
    }


def save_generator(path: str | Path, state: GANState, cfg: CGANConfig, classes: list[str],
                   mean: float, std: float) -> None:
    """The trained GAN as :mod:`sonic.tensorfile` writes it (safetensors + JSON, no pickle; the
    same weights give the same bytes): the :func:`checkpoint` without the optimisers (the
    resume file keeps those), ``G_sample`` (:func:`sampling_generator`), the class names and
    the dB ``mean`` and ``std`` the generator's output is normalised with."""
    ckpt = {k: v for k, v in checkpoint(state, cfg).items() if k not in ("opt_g", "opt_d")}
    save_payload(path, ckpt | {"G_sample": sampling_generator(state, cfg).state_dict(),
                               "classes": list(classes), "mean": float(mean),
                               "std": float(std)})


def load_gan_checkpoint(path: str | Path) -> dict:
    """What :func:`save_generator` wrote (a ``torch.save`` file of older runs also reads)."""
    try:
        return load_payload(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no GAN checkpoint; run `dvc repro train_cgan`") from None


def load_generator(ckpt: dict, device: torch.device | str = "cpu") -> Generator:
    """Rebuild the generator to sample from, in eval mode, from a :func:`checkpoint` dict:
    ``G_sample`` (:func:`sampling_generator`, which stage ``train_cgan`` adds to its final
    checkpoint) where present, else the moving average, else G."""
    cfg = parse_section(CGANConfig, ckpt["cfg"], "cgan")
    G = Generator(cfg, ckpt["n_classes"], ckpt["n_mels"], ckpt["n_frames"], ckpt["lo"],
                  ckpt["hi"])
    for key in ("G_sample", "G_ema", "G"):
        if ckpt.get(key) is not None:
            G.load_state_dict(ckpt[key])
            break
    return G.to(device).eval()
