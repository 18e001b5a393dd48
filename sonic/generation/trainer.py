"""One adversarial step and the epoch loop of the conditional GAN.

:func:`train_step` does (1) a discriminator update then (2) a generator update on a
:class:`~sonic.generation.state.GANState` and returns named losses; :func:`train_cgan` runs the
epochs, with resume after any of them.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import BatchSampler, DataLoader, RandomSampler

from sonic.config.cgan import CGANConfig
from sonic.generation.gan import diff_augment
from sonic.generation.state import GANState, checkpoint, restore, update_ema
from sonic.progress import progress
from sonic.training.data import MelSet
from sonic.training.resume import ResumeFile, epoch_seed, resume_history


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
    ``cfg.d_augment`` and ``cfg.d_augment_ops`` (draws from the state's RNG, so a resumed run
    augments as an uninterrupted one), silence being the generator's floor ``lo``."""
    return diff_augment(x, cfg.d_augment, state.rng, state.G.lo.item(), cfg.d_augment_ops)


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
        save a picture of :func:`~sonic.generation.state.fixed_grid` samples every
        ``cfg.sample_every`` epochs. Epochs restored from ``resume`` are passed again first,
        with ``record["restored"] = True``.
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
    def restored(saved: dict) -> None:
        restore(state, saved)
        if keep is not None:
            keep.update(saved["keep"])

    history = resume_history(resume, restored, "cgan")
    for record in history:
        if on_epoch is not None:
            on_epoch(record["epoch"], state, record | {"restored": True})
    for epoch in range(len(history) + 1, cfg.epochs + 1):
        order.manual_seed(epoch_seed(cfg.seed, epoch))
        sums: dict[str, float] = {}
        bar = progress(loader, desc=f"cgan {epoch}/{cfg.epochs}", lines=1, leave=False)
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
