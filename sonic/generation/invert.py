"""Log-mel (dB) back to a waveform: least-squares inverse mel filterbank, then Griffin-Lim.

The dB the features use are relative to each clip's peak (``10 log10(S / max S)``), so absolute
loudness is gone; the waveform is therefore peak-normalised rather than restored to a level.
"""
from __future__ import annotations

import torch
import torchaudio

from sonic.config import FeatureConfig


def _driver(device: torch.device) -> str:
    # CUDA's lstsq has only "gels" (assumes full rank); on CPU "gelsd" (SVD-based) also copes with
    # rank-deficient filterbanks, e.g. mel bands too narrow to hold any STFT bin.
    return "gels" if device.type == "cuda" else "gelsd"


def mel_db_to_wave(db: torch.Tensor, cfg: FeatureConfig, n_iter: int = 32, seed: int = 0,
                   device: torch.device | str = "cpu") -> torch.Tensor:
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

    Returns
    -------
    Tensor (B, (T - 1) * hop_length) on the CPU, each row scaled to a peak of 0.99.
    """
    device = torch.device(device)
    db = db.to(device=device, dtype=torch.float32)
    db = db.unsqueeze(0) if db.dim() == 2 else db  # (B, M, T)
    n_stft = cfg.n_fft // 2 + 1
    inv_mel = torchaudio.transforms.InverseMelScale(
        n_stft=n_stft, n_mels=cfg.n_mels, sample_rate=cfg.sample_rate, f_min=cfg.f_min,
        f_max=cfg.f_max or cfg.sample_rate / 2, norm="slaney", mel_scale="slaney",
        driver=_driver(device),
    ).to(device)
    griffin_lim = torchaudio.transforms.GriffinLim(
        n_fft=cfg.n_fft, hop_length=cfg.hop_length, power=1.0, n_iter=n_iter,
    ).to(device)
    power = torch.pow(10.0, db / 10.0)  # (B, M, T) mel power, peak 1
    magnitude = inv_mel(power).sqrt()  # (B, n_fft/2+1, T) linear STFT magnitude (relu'd, ≥ 0)
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        wave = griffin_lim(magnitude)  # (B, (T-1)*hop)
    peak = wave.abs().amax(dim=1, keepdim=True).clamp_min(1e-8)
    return (0.99 * wave / peak).cpu()


def spectral_convergence(ref_mag: torch.Tensor, est_mag: torch.Tensor) -> float:
    """``||ref - est||_F / ||ref||_F`` over all elements: 0 is perfect, 1 is as bad as silence.

    Both are magnitude (not dB) spectrograms of the same shape; pass each as the same kind
    (e.g. mel magnitudes sqrt(mel power), both peak-normalised, as the waveform scale is free).
    """
    ref, est = ref_mag.double(), est_mag.double()
    return float(torch.linalg.norm((ref - est).flatten()) / torch.linalg.norm(ref.flatten()))
