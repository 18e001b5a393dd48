"""Training state, one adversarial step, and the epoch loop of the conditional GAN.

All mutable training state lives in :class:`GANState` (both networks, both optimizers, the
generator's moving average, the noise RNG and the step counter), so a checkpoint is that
dataclass's contents. :func:`train_step` does (1) a discriminator update then (2) a generator
update and returns named losses.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import BatchSampler, DataLoader, RandomSampler
from tqdm import tqdm

from sonic.config import CGANConfig
from sonic.generation.gan import Discriminator, Generator, diff_augment
from sonic.training.data import MelSet
from sonic.training.resume import ResumeFile, epoch_seed


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


# ------------------------------------------------------------------------------------- losses
def d_loss_fn(d_real: torch.Tensor, d_fake: torch.Tensor, loss: str) -> torch.Tensor:
    """Discriminator loss from logits on real (B,) and fake (B,) batches."""
    if loss == "hinge":
        return F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
    return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()  # BCE: -log σ(r) - log(1-σ(f))


def g_loss_fn(d_fake: torch.Tensor, loss: str) -> torch.Tensor:
    """Generator loss from logits on fakes (B,); BCE is the non-saturating -log σ(f)."""
    if loss == "hinge":
        return -d_fake.mean()
    return F.softplus(-d_fake).mean()


def mode_seeking_penalty(fake: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """MSGAN's term (Mao et al., 2019): 1 / (mean|G(z1) - G(z2)| / mean|z1 - z2|).

    Row i and row i + B//2 of ``fake`` (B, 1, M, T) share a label (see :func:`sample_inputs`),
    so the ratio is how far apart two noise vectors land *within one class*. Small-data cGANs
    otherwise collapse to one spectrogram per class: the label alone fools D early on.
    """
    half = len(fake) // 2
    if half == 0:  # a batch of one has no pair
        return fake.new_zeros(())
    d_out = (fake[:half] - fake[half:2 * half]).abs().mean()
    d_z = (z[:half] - z[half:2 * half]).abs().mean()
    return 1.0 / (d_out / d_z + 1e-5)


def mode_seeking_weight(cfg: CGANConfig) -> float:
    """``cfg.mode_seeking`` where the config has that field, else 1.0.

    Without the term the generator collapsed to one spectrogram per class in every short run
    measured (within-class spread 0.19 vs 0.69 real); with 1.0 it reached 0.62.
    """
    return float(getattr(cfg, "mode_seeking", 1.0))


def sample_inputs(state: GANState, n: int, z_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Fresh noise (n, z_dim) and labels (n,) on the state's device.

    Labels are drawn uniformly for the first ceil(n/2) rows and repeated, so row i and row
    i + n//2 share a class: the pairs :func:`mode_seeking_penalty` compares.
    """
    z = torch.randn(n, z_dim, generator=state.rng)
    y = torch.randint(0, state.n_classes, ((n + 1) // 2,), generator=state.rng).repeat(2)[:n]
    return z.to(state.device), y.to(state.device)


def seen_by_d(state: GANState, x: torch.Tensor, cfg: CGANConfig) -> torch.Tensor:
    """Spectrograms (B, 1, M, T) as D is shown them: through :func:`diff_augment` with
    ``cfg.d_augment`` (draws from the state's RNG, so a resumed run augments as an
    uninterrupted one), silence being the generator's floor ``lo``."""
    return diff_augment(x, cfg.d_augment, state.rng, state.G.lo.item())


# --------------------------------------------------------------------------------------- steps
def discriminator_step(state: GANState, real: torch.Tensor, labels: torch.Tensor,
                       fake: torch.Tensor, fake_labels: torch.Tensor,
                       cfg: CGANConfig) -> dict[str, float]:
    """One D update: real batch (B, 1, M, T) with labels (B,) up, fakes (B', 1, M, T) down.

    ``fake`` is detached here, so G gets no gradient and its weights cannot change. With
    ``cfg.aux_weight`` > 0, D's class head also learns the real batch's labels (real clips only:
    trained on fakes too, it would reward G for fakes that are easy to tell apart rather than
    like the real ones); with ``cfg.aux_twin`` a twin head learns the fakes' labels.
    """
    real, fake = seen_by_d(state, real, cfg), seen_by_d(state, fake.detach(), cfg)
    d_real, d_fake = state.D(real, labels), state.D(fake, fake_labels)
    loss = d_loss_fn(d_real, d_fake, cfg.loss)
    out = {"d_loss": loss.item(), "d_real": d_real.mean().item(), "d_fake": d_fake.mean().item()}
    if cfg.aux_weight > 0:
        aux = F.cross_entropy(state.D.class_logits(real), labels)
        loss = loss + cfg.aux_weight * aux
        out["d_aux"] = aux.item()
        if state.D.classify_fake is not None:  # TAC-GAN: the twin head learns the fakes' labels
            twin = F.cross_entropy(state.D.class_logits(fake, twin=True), fake_labels)
            loss = loss + cfg.aux_weight * twin
            out["d_twin"] = twin.item()
    state.opt_d.zero_grad(set_to_none=True)
    loss.backward()
    state.opt_d.step()
    return out


def generator_step(state: GANState, fake: torch.Tensor, fake_labels: torch.Tensor,
                   z: torch.Tensor, cfg: CGANConfig) -> dict[str, float]:
    """One G update through D on fakes (B, 1, M, T) made from noise z (B, z_dim) that still
    carry G's graph.

    D's weights are frozen for the backward pass (no gradient, no step): the gradient flows
    through D into the fakes only. The loss adds ``mode_seeking`` × the MSGAN penalty and
    ``aux_weight`` × the cross-entropy of D's class head on the fakes' intended labels (minus
    the twin head's, with ``aux_twin``: TAC-GAN); the averaged generator (if any) then follows G.
    """
    state.D.requires_grad_(False)  # also saves D's weight-gradient work
    try:
        seen = seen_by_d(state, fake, cfg)  # D judges augmented fakes; diversity is G's own
        adv = g_loss_fn(state.D(seen, fake_labels), cfg.loss)
        ms = mode_seeking_penalty(fake, z)
        loss = adv + mode_seeking_weight(cfg) * ms
        out = {"g_loss": adv.item(), "mode_seeking": ms.item()}
        if cfg.aux_weight > 0:
            named, twin = state.D.heads(state.D.features(seen, None))
            aux = F.cross_entropy(named, fake_labels)
            loss = loss + cfg.aux_weight * aux
            out["g_aux"] = aux.item()
            if twin is not None:  # TAC-GAN: away from fakes the twin head names easily
                twin_ce = F.cross_entropy(twin, fake_labels)
                loss = loss - cfg.aux_weight * twin_ce
                out["g_twin"] = twin_ce.item()
        state.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        state.opt_g.step()
    finally:
        state.D.requires_grad_(True)
    update_ema(state, cfg.ema)
    return out


def train_step(state: GANState, real: torch.Tensor, labels: torch.Tensor,
               cfg: CGANConfig) -> dict[str, float]:
    """One adversarial step on a real batch (B, 1, M, T) with labels (B,).

    One fake batch (uniformly drawn labels) serves both updates, as in the DCGAN reference
    loop: one G forward per step instead of two.

    Returns ``d_loss``, ``g_loss``, ``mode_seeking``, the mean D logits on the real and fake
    batches and, with ``aux_weight`` > 0, the class-head losses ``d_aux`` (real) and ``g_aux``
    (fakes), and with ``aux_twin`` the twin head's losses ``d_twin`` and ``g_twin`` (fakes).
    """
    state.G.train(), state.D.train()
    z, fake_labels = sample_inputs(state, real.shape[0], cfg.z_dim)
    fake = state.G(z, fake_labels)  # (B, 1, M, T), graph kept for step (2)
    # ---- (1) discriminator: real batch up, the (detached) fake batch down
    losses = discriminator_step(state, real, labels, fake, fake_labels, cfg)
    # ---- (2) generator: move the fakes to where the just-updated D calls them real
    losses |= generator_step(state, fake, fake_labels, z, cfg)
    state.step += 1
    return losses


# ---------------------------------------------------------------------------------------- loop
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


def train_cgan(state: GANState, data: MelSet | torch.Tensor | np.ndarray,
               labels: torch.Tensor | np.ndarray | None, cfg: CGANConfig,
               on_epoch: Callable[[int, GANState, dict], None] | None = None,
               resume: ResumeFile | None = None, keep: dict | None = None) -> list[dict]:
    """Train for ``cfg.epochs`` epochs over normalised spectrograms.

    Parameters
    ----------
    data : a :class:`MelSet` whose items are normalised log-mels (the classifiers' input
        scale), streamed batch by batch; or an (N, 1, n_mels, n_frames) array with ``labels``.
    labels : (N,) int class indices when ``data`` is an array; None for a MelSet.
    on_epoch : called as ``on_epoch(epoch, state, record)`` after each epoch (1-based), e.g. to
        save a picture of :func:`fixed_grid` samples every ``cfg.sample_every`` epochs. Epochs
        restored from ``resume`` are passed again first, with ``record["restored"] = True``.
    resume : after every epoch the whole state (both networks and optimizers, the noise RNG,
        the history and ``keep``) is saved there; a matching saved state is continued from.
    keep : anything ``on_epoch`` wants back after a resume (e.g. the grids it drew); saved with
        the state and updated in place when restored.

    Each epoch's batch order comes from a generator seeded with ``(seed, epoch)``, so a resumed
    run makes the draws an uninterrupted one makes.

    Returns
    -------
    One record per epoch: ``epoch`` and the epoch means of ``d_loss``, ``g_loss`` (adversarial
    part), ``mode_seeking`` (the penalty, unweighted), ``d_real`` and ``d_fake`` (D logits).
    """
    if not isinstance(data, MelSet):
        x = np.asarray(data, dtype=np.float32)
        data = MelSet.of(x[:, 0] if x.ndim == 4 else x, np.asarray(labels), 0.0, 1.0)
    order = torch.Generator()
    # Dropping the ragged last batch keeps BN batch statistics sane; never drop everything.
    sampler = BatchSampler(RandomSampler(data, generator=order), cfg.batch_size,
                           drop_last=len(data) > cfg.batch_size)
    loader = DataLoader(data, sampler=sampler, batch_size=None,
                        pin_memory=state.device.type == "cuda")
    history: list[dict] = []
    saved = resume.load() if resume is not None else None
    if saved is not None:
        restore(state, saved)
        history = saved["history"]
        if keep is not None:
            keep.update(saved["keep"])
        tqdm.write(f"cgan: resuming after epoch {len(history)} from {resume.path}")
    for record in history:
        if on_epoch is not None:
            on_epoch(record["epoch"], state, record | {"restored": True})
    for epoch in range(len(history) + 1, cfg.epochs + 1):
        order.manual_seed(epoch_seed(cfg.seed, epoch))
        sums: dict[str, float] = {}
        bar = tqdm(loader, desc=f"cgan {epoch}/{cfg.epochs}", leave=False, dynamic_ncols=True)
        for real, y in bar:
            losses = train_step(state, real.to(state.device), y.to(state.device), cfg)
            sums = {k: sums.get(k, 0.0) + v for k, v in losses.items()}
            bar.set_postfix(d=f"{losses['d_loss']:.3f}", g=f"{losses['g_loss']:.3f}")
        record = {"epoch": epoch} | {k: v / len(loader) for k, v in sums.items()}
        history.append(record)
        if on_epoch is not None:
            on_epoch(epoch, state, record)
        if resume is not None:
            resume.save(checkpoint(state, cfg) | {"rng": state.rng.get_state(),
                                                  "history": history, "keep": keep or {}})
    return history


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


def load_generator(ckpt: dict, device: torch.device | str = "cpu") -> Generator:
    """Rebuild the generator to sample from, in eval mode, from a :func:`checkpoint` dict:
    ``G_sample`` (:func:`sampling_generator`, which ``train_cgan`` adds to its final checkpoint)
    where present, else the moving average, else G."""
    G = Generator(CGANConfig(**ckpt["cfg"]), ckpt["n_classes"], ckpt["n_mels"],
                  ckpt["n_frames"], ckpt["lo"], ckpt["hi"])
    for key in ("G_sample", "G_ema", "G"):
        if ckpt.get(key) is not None:
            G.load_state_dict(ckpt[key])
            break
    return G.to(device).eval()
