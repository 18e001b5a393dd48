"""A small network that maps log-mel dB to linear STFT magnitudes (dB), trained on real clips.

The least-squares inverse of the mel filterbank (:func:`sonic.generation.mel_to_wave.mel_db_to_wave`
with ``method="lstsq"``) spreads each band's energy evenly over its bins, so harmonics blur into
flat bands and Griffin-Lim has to invent the missing detail. :class:`MelInverter` instead
learns, from the training clips' own STFTs, what the linear spectrum under a mel frame looks
like: a fixed "spread" (each linear bin takes the dB of the bands covering it) plus a residual
of a few 1-D convolutions over time (MelGAN/HiFi-GAN's idea of looking at neighbouring frames,
at a scale that trains in a minute on a CPU).

Scales: inputs are peak-relative mel dB in [-top_db, 0]; targets are linear-bin dB relative to
their own peak, clamped at -top_db. Both are divided by ``top_db`` inside the network.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchaudio

from sonic.config.features import FeatureConfig
from sonic.config.invert import InvertConfig
from sonic.features.mel import AMIN
from sonic.generation.mel_to_wave import (griffin_lim, mel_db_to_wave, stft_magnitude,
                                     waveform_convergence)
from sonic.progress import progress
from sonic.tensorfile import load_payload, save_payload


def filterbank(cfg: FeatureConfig) -> torch.Tensor:
    """The features' Slaney mel filterbank, (n_fft/2+1, n_mels)."""
    f_max = cfg.f_max if cfg.f_max is not None else float(cfg.sample_rate // 2)
    return torchaudio.functional.melscale_fbanks(cfg.n_fft // 2 + 1, cfg.f_min, f_max, cfg.n_mels,
                                                 cfg.sample_rate, norm="slaney",
                                                 mel_scale="slaney")


def spread_matrix(fb: torch.Tensor) -> torch.Tensor:
    """(n_freqs, n_mels) weights, each row summing to 1: a linear bin's dB as the weighted mean
    of the bands that cover it (a bin no band covers takes its nearest band's)."""
    w = fb / fb.amax(dim=0, keepdim=True).clamp_min(1e-12)  # each band peaks at 1
    empty = w.sum(1) == 0
    if empty.any():  # bins outside [f_min, f_max], or between too-narrow bands
        peaks = fb.argmax(dim=0).float()  # (n_mels,) the bin where each band peaks
        nearest = (torch.arange(len(fb))[:, None].float() - peaks[None]).abs().argmin(1)
        w[empty] = F.one_hot(nearest[empty], fb.shape[1]).float()
    return w / w.sum(1, keepdim=True)


class MelInverter(nn.Module):
    """Log-mel dB (B, n_mels, T) → linear-magnitude dB (B, n_fft/2+1, T), both ≤ 0.

    Parameters
    ----------
    cfg : InvertConfig
        ``hidden`` channels, ``layers`` hidden convolutions of ``kernel`` frames.
    features : FeatureConfig
        The mel settings (filterbank, ``top_db``) the spectrograms were made with.
    """

    def __init__(self, cfg: InvertConfig, features: FeatureConfig):
        super().__init__()
        self.top_db = features.top_db
        fb = filterbank(features)
        self.register_buffer("spread", spread_matrix(fb))  # (F, M)
        n_freqs, n_mels = fb.shape
        chans = [n_mels] + [cfg.hidden] * cfg.layers
        self.body = nn.Sequential(*[
            m for a, b in zip(chans[:-1], chans[1:])
            for m in (nn.Conv1d(a, b, cfg.kernel, padding=cfg.kernel // 2), nn.GELU())
        ])
        self.head = nn.Conv1d(cfg.hidden, n_freqs, 1)
        nn.init.zeros_(self.head.weight), nn.init.zeros_(self.head.bias)  # starts as the spread

    def forward(self, mel_db: torch.Tensor) -> torch.Tensor:
        x = mel_db / self.top_db  # (B, M, T) in [-1, 0]
        base = torch.einsum("fm,bmt->bft", self.spread, x)  # (B, F, T)
        out = base + self.head(self.body(x))  # (B, F, T)
        return (out * self.top_db).clamp(-self.top_db, 0.0)


def linear_targets(waves: torch.Tensor, features: FeatureConfig
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Waveforms (B, samples) → (mel dB (B, M, T) as the features make them, linear dB
    (B, F, T)), each relative to its own peak and clamped at -top_db. (The Slaney filters'
    weights are far below 1, so the two peaks differ by tens of dB; the waveform's level is
    free anyway.)"""
    window = torch.hann_window(features.n_fft, device=waves.device)
    spec = torch.stft(waves, features.n_fft, features.hop_length, window=window, center=True,
                      pad_mode="constant", return_complex=True)
    power = spec.real.square() + spec.imag.square()  # (B, F, T)
    fb = filterbank(features).to(waves.device)
    mel_db = 10 * torch.log10((fb.T @ power).clamp_min(AMIN))  # (B, M, T)
    lin_db = 10 * torch.log10(power.clamp_min(AMIN))
    top = features.top_db
    return (power_to_db_peak(mel_db).clamp_min(-top),
            power_to_db_peak(lin_db).clamp_min(-top))


def power_to_db_peak(db: torch.Tensor) -> torch.Tensor:
    """(B, F, T) dB → relative to each clip's own peak."""
    return db - db.amax(dim=(1, 2), keepdim=True)


def inverter_loss(pred_db: torch.Tensor, target_db: torch.Tensor, top_db: float) -> torch.Tensor:
    """L1 in dB (over ``top_db``, so quiet bins count) plus spectral convergence of the
    magnitudes (so the loud bins that make up most of the sound count most), (B, F, T) each."""
    pred, target = torch.pow(10.0, pred_db / 20.0), torch.pow(10.0, target_db / 20.0)
    sc = torch.linalg.norm((pred - target).flatten(1), dim=1) / torch.linalg.norm(
        target.flatten(1), dim=1).clamp_min(1e-8)
    return F.l1_loss(pred_db, target_db) / top_db + sc.mean()


def train_inverter(waves: np.ndarray, features: FeatureConfig, cfg: InvertConfig,
                   device: torch.device | str = "cpu") -> tuple[MelInverter, list[float]]:
    """Fit a :class:`MelInverter` on real waveforms (N, samples): ``cfg.steps`` AdamW steps on
    random ``cfg.crop``-frame crops, :func:`inverter_loss`, cosine learning rate.

    Returns the model (eval mode) and the loss of every step.
    """
    device = torch.device(device)
    gen = torch.Generator().manual_seed(cfg.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = MelInverter(cfg, features).to(device)
    mel, lin = [], []
    for i in range(0, len(waves), 64):  # targets once: the STFT costs more than a step
        m, l_ = linear_targets(torch.as_tensor(np.asarray(waves[i:i + 64])).to(device), features)
        mel.append(m), lin.append(l_)
    mel, lin = torch.cat(mel), torch.cat(lin)  # (N, M, T), (N, F, T)
    crop = min(cfg.crop, mel.shape[-1])
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps)
    losses = []
    for _ in progress(range(cfg.steps), desc="inverter", unit="step", leave=False):
        idx = torch.randint(0, len(mel), (cfg.batch_size,), generator=gen)
        start = torch.randint(0, mel.shape[-1] - crop + 1, (cfg.batch_size,), generator=gen)
        frames = start[:, None] + torch.arange(crop)  # (B, crop)
        x = mel[idx[:, None], :, frames].transpose(1, 2)  # (B, M, crop)
        y = lin[idx[:, None], :, frames].transpose(1, 2)  # (B, F, crop)
        loss = inverter_loss(model(x), y, features.top_db)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step(), sched.step()
        losses.append(loss.item())
    return model.eval(), losses


def save_inverter(path: str | Path, model: MelInverter, cfg: InvertConfig,
                  features: FeatureConfig) -> None:
    """Weights plus both configs, so :func:`load_inverter` rebuilds it from the file alone."""
    payload = {"cfg": dataclasses.asdict(cfg), "features": dataclasses.asdict(features),
               "state_dict": {k: v.cpu() for k, v in model.state_dict().items()}}
    save_payload(path, payload)  # same weights, same bytes (sonic.tensorfile)


def load_inverter(path: str | Path, device: torch.device | str = "cpu") -> MelInverter:
    payload = load_payload(path)
    feats = {k: tuple(v) if isinstance(v, list) else v for k, v in payload["features"].items()}
    model = MelInverter(InvertConfig(**payload["cfg"]), FeatureConfig(**feats))
    model.load_state_dict(payload["state_dict"])
    return model.to(device).eval()


def compare_methods(waves: np.ndarray, mel_db: np.ndarray, features: FeatureConfig,
                    cfg: InvertConfig, model: MelInverter, device: torch.device | str = "cpu",
                    batch_size: int = 16) -> dict[str, np.ndarray]:
    """Spectral convergence (N,) of each way back from log-mels (N, M, T) to the real
    waveforms (N, samples) they were made from:

    - ``lstsq_gl``: the least-squares inverse filterbank + plain Griffin-Lim (the old method);
    - ``lstsq_fgl``: the same magnitudes + fast Griffin-Lim (``cfg.momentum``);
    - ``network_fgl``: :class:`MelInverter` magnitudes + fast Griffin-Lim;
    - ``oracle_fgl``: the true linear magnitudes + fast Griffin-Lim, the floor any mel → linear
      mapping can reach with this phase retrieval.

    Every method runs ``cfg.griffin_lim_iters`` iterations from the same random phase.
    """
    out: dict[str, list] = {k: [] for k in ("lstsq_gl", "lstsq_fgl", "network_fgl", "oracle_fgl")}
    n_iter, seed = cfg.griffin_lim_iters, cfg.seed
    for i in progress(range(0, len(waves), batch_size), desc="compare", leave=False):
        ref = torch.as_tensor(np.asarray(waves[i:i + batch_size]))
        db = torch.as_tensor(np.asarray(mel_db[i:i + batch_size]))
        ests = {
            "lstsq_gl": mel_db_to_wave(db, features, n_iter, seed + i, device, 0.0),
            "lstsq_fgl": mel_db_to_wave(db, features, n_iter, seed + i, device, cfg.momentum),
            "network_fgl": mel_db_to_wave(db, features, n_iter, seed + i, device, cfg.momentum,
                                          model),
            "oracle_fgl": griffin_lim(stft_magnitude(ref.to(device), features), features, n_iter,
                                      cfg.momentum, seed + i),
        }
        for k, est in ests.items():
            out[k].append(waveform_convergence(ref, est.cpu(), features))
    return {k: np.concatenate(v) for k, v in out.items()}


if __name__ == "__main__":  # smoke run: shapes at the default size
    feats = FeatureConfig()
    net = MelInverter(InvertConfig(), feats)
    out = net(-80 * torch.rand(2, feats.n_mels, 40))
    print(tuple(out.shape), f"{sum(p.numel() for p in net.parameters()):,} params")
