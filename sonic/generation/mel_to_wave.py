"""Log-mel (dB) back to a waveform: linear magnitudes (least-squares inverse mel filterbank, or
the trained :class:`~sonic.generation.inverter_net.MelInverter`), then (fast) Griffin-Lim.

The dB the features use are relative to each clip's peak (``10 log10(S / max S)``), so absolute
loudness is gone; the waveform is therefore peak-normalised rather than restored to a level.
"""
from __future__ import annotations

import numpy as np
import torch
import torchaudio

from sonic.config.features import FeatureConfig


def _inverse_mel(power: torch.Tensor, cfg: FeatureConfig) -> torch.Tensor:
    """Mel power (B, n_mels, T) → linear power (B, n_fft/2+1, T) by least squares, clamped ≥ 0.

    The system is underdetermined (n_mels equations per frame for n_fft/2+1 unknowns). On CPU
    "gelsd" (SVD) gives the minimum-norm solution and copes with rank-deficient filterbanks
    (mel bands too narrow to hold an STFT bin). CUDA offers only "gels", which assumes full
    rank; builds whose CUDA lstsq refuses underdetermined systems (MAGMA-only, e.g. ROCm) raise
    a RuntimeError, and then the small solve is done on the CPU instead.
    """
    def solve(x: torch.Tensor, driver: str) -> torch.Tensor:
        inv_mel = torchaudio.transforms.InverseMelScale(
            n_stft=cfg.n_fft // 2 + 1, n_mels=cfg.n_mels, sample_rate=cfg.sample_rate,
            f_min=cfg.f_min, f_max=cfg.f_max or cfg.sample_rate / 2, norm="slaney",
            mel_scale="slaney", driver=driver,
        ).to(x.device)
        return inv_mel(x)

    if power.device.type != "cuda":
        return solve(power, "gelsd")
    try:
        return solve(power, "gels")
    except RuntimeError:
        return solve(power.cpu(), "gelsd").to(power.device)


def mel_db_to_wave(db: torch.Tensor, cfg: FeatureConfig, n_iter: int = 32, seed: int = 0,
                   device: torch.device | str = "cpu", momentum: float = 0.0,
                   inverter: torch.nn.Module | None = None) -> torch.Tensor:
    """Invert peak-relative log-mel dB spectrograms to peak-normalised waveforms.

    Parameters
    ----------
    db : Tensor (B, n_mels, T) or (n_mels, T)
        Log-mel power in dB relative to the clip's peak (≤ 0), *not* the classifiers'
        normalised scale: de-normalise first with ``db = x * std + mean``.
    cfg : FeatureConfig
        ``sample_rate``, ``n_fft``, ``hop_length``, ``n_mels``, ``f_min``, ``f_max``.
    n_iter : int
        Griffin-Lim iterations.
    seed : int
        Seeds Griffin-Lim's random initial phase. It is drawn from torch's global RNG, so the
        call runs inside ``torch.random.fork_rng``: deterministic, and the caller's RNG state is
        left untouched.
    device : where the least squares and Griffin-Lim run.
    momentum : Griffin-Lim momentum; 0.99 is the "fast Griffin-Lim" of Perraudin et al. (2013),
        which reaches in 32 iterations a spectral convergence plain Griffin-Lim needs ~100 for.
    inverter : a :class:`~sonic.generation.inverter_net.MelInverter` (on ``device``) that gives the
        linear magnitudes instead of the least-squares inverse filterbank.

    Returns
    -------
    Tensor (B, (T - 1) * hop_length) on the CPU, each row scaled to a peak of 0.99.
    """
    device = torch.device(device)
    db = db.to(device=device, dtype=torch.float32)
    db = db.unsqueeze(0) if db.dim() == 2 else db  # (B, M, T)
    if inverter is not None:
        with torch.no_grad():
            magnitude = torch.pow(10.0, inverter(db) / 20.0)  # (B, n_fft/2+1, T)
    else:
        power = torch.pow(10.0, db / 10.0)  # (B, M, T) mel power, peak 1
        magnitude = _inverse_mel(power, cfg).sqrt()  # (B, n_fft/2+1, T) linear STFT magnitude
    return griffin_lim(magnitude, cfg, n_iter, momentum, seed)


def griffin_lim(magnitude: torch.Tensor, cfg: FeatureConfig, n_iter: int, momentum: float,
                seed: int) -> torch.Tensor:
    """Linear STFT magnitudes (B, n_fft/2+1, T) → waveforms (B, (T-1)*hop) on the CPU, each
    scaled to a peak of 0.99. The random initial phase comes from ``seed`` in a forked RNG."""
    device = magnitude.device
    transform = torchaudio.transforms.GriffinLim(
        n_fft=cfg.n_fft, hop_length=cfg.hop_length, power=1.0, n_iter=n_iter, momentum=momentum,
    ).to(device)
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        wave = transform(magnitude)  # (B, (T-1)*hop)
    peak = wave.abs().amax(dim=1, keepdim=True).clamp_min(1e-8)
    return (0.99 * wave / peak).cpu()


def spectral_convergence(ref_mag: torch.Tensor, est_mag: torch.Tensor) -> float:
    """``||ref - est||_F / ||ref||_F`` over all elements: 0 is perfect, 1 is as bad as silence.

    Both are magnitude (not dB) spectrograms of the same shape; pass each as the same kind
    (e.g. mel magnitudes sqrt(mel power), both peak-normalised, as the waveform scale is free).
    """
    ref, est = ref_mag.double(), est_mag.double()
    return float(torch.linalg.norm((ref - est).flatten()) / torch.linalg.norm(ref.flatten()))


def stft_magnitude(waves: torch.Tensor, cfg: FeatureConfig) -> torch.Tensor:
    """(B, samples) → (B, n_fft/2+1, T) centred-STFT magnitudes, as the features take them."""
    window = torch.hann_window(cfg.n_fft, device=waves.device)
    return torch.stft(waves, cfg.n_fft, cfg.hop_length, window=window, center=True,
                      pad_mode="constant", return_complex=True).abs()


def waveform_convergence(ref: torch.Tensor, est: torch.Tensor, cfg: FeatureConfig) -> np.ndarray:
    """Spectral convergence (B,) of the linear STFT magnitudes of waveforms ``est`` against
    ``ref`` (both (B, samples), lengths may differ by a frame), each estimate first scaled by
    the least-squares gain that fits it to its reference (the waveform's level is free)."""
    a, b = stft_magnitude(ref, cfg).double(), stft_magnitude(est, cfg).double()
    t = min(a.shape[-1], b.shape[-1])
    a, b = a[..., :t].flatten(1), b[..., :t].flatten(1)
    gain = (a * b).sum(1, keepdim=True) / (b * b).sum(1, keepdim=True).clamp_min(1e-20)
    return (torch.linalg.norm(a - gain * b, dim=1) / torch.linalg.norm(a, dim=1)).numpy()
