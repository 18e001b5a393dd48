"""Honest quality numbers for generated spectrograms, as pure functions on arrays.

- :func:`conditional_accuracy`: does a trained classifier (the judge) hear the intended class?
- :func:`frechet_distance` / :func:`frechet_interval`: how far the generated embeddings' Gaussian
  is from the real one, reported beside the *floor* that real data itself reaches with the same
  sample sizes (small sets give a large FD even for a perfect generator).
- :func:`copy_rate`: are samples suspiciously close to training clips (copies)?
- :func:`inception_score`: exp E[KL(p(y|x) || p(y))] under the in-domain judge (WaveGAN's SC09
  protocol): high when each sample is confidently one class and the classes are balanced.
- :func:`bootstrap` / :func:`bootstrap_runs`: percentile 95 % intervals, resampling the samples
  (and, for several training runs, the runs).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import scipy.linalg


def conditional_accuracy(pred: np.ndarray, intended: np.ndarray,
                         classes: list[str] | tuple[str, ...]) -> dict:
    """Fraction of samples whose predicted class (N,) is the intended one (N,), overall and per
    class name (``None`` for a class with no samples)."""
    pred, intended = np.asarray(pred), np.asarray(intended)
    hit = pred == intended
    per_class = {}
    for i, name in enumerate(classes):
        mask = intended == i
        per_class[name] = float(hit[mask].mean()) if mask.any() else None
    return {"accuracy": float(hit.mean()) if len(hit) else float("nan"),
            "per_class": per_class, "n": int(len(hit))}


def _reduce(a: np.ndarray, b: np.ndarray, max_dim: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Project both sets onto the top-k principal axes of their union when k < D.

    ``k = min(D, max_dim, N - 1, M - 1)``: a sample covariance of N points has rank ≤ N - 1, so
    in more dimensions it is singular and ``sqrtm`` of the product is meaningless.
    """
    d = a.shape[1]
    k = min(d, max_dim or d, len(a) - 1, len(b) - 1)
    if k < 1:
        raise ValueError(f"need at least 2 samples in each set, got {len(a)} and {len(b)}")
    if k == d:
        return a, b
    union = np.concatenate([a, b])
    _, _, vt = np.linalg.svd(union - union.mean(0), full_matrices=False)
    return a @ vt[:k].T, b @ vt[:k].T  # (N, k), (M, k): centring cancels in the distance


def frechet_distance(a: np.ndarray, b: np.ndarray, max_dim: int | None = None) -> float:
    """Fréchet distance between Gaussians fitted to embeddings ``a`` (N, D) and ``b`` (M, D).

    ``||mu_a - mu_b||² + tr(S_a + S_b - 2 (S_a S_b)^½)``. When ``max_dim`` or the sample counts
    call for it (see :func:`_reduce`) both sets are first projected by a PCA fitted on their
    union, so values are comparable only between calls with the same sizes and ``max_dim``.
    A tiny imaginary part of the matrix square root (numerical noise) is dropped, and a near-
    singular product gets ``1e-6`` added to both diagonals, as in the reference FID code.
    """
    a, b = _reduce(np.asarray(a, np.float64), np.asarray(b, np.float64), max_dim)
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    covmean = scipy.linalg.sqrtm(s_a @ s_b)
    if not np.isfinite(covmean).all():
        eps = 1e-6 * np.eye(len(s_a))
        covmean = scipy.linalg.sqrtm((s_a + eps) @ (s_b + eps))
    covmean = covmean.real  # imaginary parts here are round-off, not signal
    diff = mu_a - mu_b
    return float(max(diff @ diff + np.trace(s_a) + np.trace(s_b) - 2 * np.trace(covmean), 0.0))


def _nn_dist(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Euclidean distance (N,) from each row of x to its nearest row of y, in row chunks."""
    out = np.empty(len(x))
    y_sq = (y**2).sum(1)
    for i in range(0, len(x), 1024):
        xc = x[i:i + 1024]
        d2 = (xc**2).sum(1)[:, None] + y_sq[None] - 2 * xc @ y.T  # (chunk, M)
        out[i:i + 1024] = np.sqrt(np.maximum(d2.min(1), 0.0))
    return out


def inception_score(probs: np.ndarray) -> float:
    """``exp(mean_x KL(p(y|x) || p(y)))`` for class probabilities (N, C); between 1 and C."""
    p = np.clip(np.asarray(probs, np.float64), 1e-12, 1.0)
    marginal = p.mean(0, keepdims=True)
    return float(np.exp((p * (np.log(p) - np.log(marginal))).sum(1).mean()))


def bootstrap(stat: Callable[..., float], arrays: tuple[np.ndarray, ...], n_boot: int,
              seed: int) -> tuple[float, float, float]:
    """``(value, low, high)``: ``stat(*arrays)`` and its percentile 95 % bootstrap interval.

    Each array is resampled with replacement on its own (first axis), ``n_boot`` times, so
    statistics of two independent samples (generated vs real) carry the spread of both.
    """
    rng = np.random.default_rng(seed)
    values = [stat(*(a[rng.integers(0, len(a), len(a))] for a in arrays)) for _ in range(n_boot)]
    low, high = np.percentile(values, [2.5, 97.5])
    return float(stat(*arrays)), float(low), float(high)


def bootstrap_runs(hits: np.ndarray, n_boot: int, seed: int) -> tuple[float, float, float]:
    """``(value, low, high)`` for the mean of a (runs R, clips N) 0/1 matrix — R classifiers
    trained on different seeds, each scored on the same N test clips.

    Each resample draws R runs *and* N clips with replacement, so the interval carries both the
    test-set sampling and the spread between training runs (which a clip-only bootstrap of one
    run leaves out). With one run it is the ordinary clip bootstrap.
    """
    hits = np.asarray(hits, dtype=np.float64)
    rng = np.random.default_rng(seed)
    n_runs, n = hits.shape
    values = [hits[rng.integers(0, n_runs, n_runs)][:, rng.integers(0, n, n)].mean()
              for _ in range(n_boot)]
    low, high = np.percentile(values, [2.5, 97.5])
    return float(hits.mean()), float(low), float(high)


def frechet_interval(gen: np.ndarray, held_out: np.ndarray, max_dim: int, n_boot: int,
                     seed: int) -> dict:
    """Generated-vs-real Fréchet distance and the real-vs-real floor at equal sizes, each with
    a 95 % interval.

    Each resample splits the held-out real embeddings (N, D) at random into a reference half R
    and a half H, draws |H| generated (with replacement) and |H| of H (with replacement), and
    measures both against the same R under the same PCA size ``max_dim``: ``fd`` and ``floor``
    differ only in where the |H| samples came from. Values are the resamples' medians.
    """
    rng = np.random.default_rng(seed)
    half = len(held_out) // 2
    fds, floors = [], []
    for _ in range(n_boot):
        perm = rng.permutation(len(held_out))
        ref, rest = held_out[perm[:half]], held_out[perm[half:2 * half]]
        fds.append(frechet_distance(gen[rng.integers(0, len(gen), half)], ref, max_dim))
        floors.append(frechet_distance(rest[rng.integers(0, half, half)], ref, max_dim))
    (fd, fd_lo, fd_hi), (fl, fl_lo, fl_hi) = (np.percentile(v, [50, 2.5, 97.5])
                                              for v in (fds, floors))
    return {"fd": float(fd), "fd_ci": [float(fd_lo), float(fd_hi)], "floor": float(fl),
            "floor_ci": [float(fl_lo), float(fl_hi)], "n": half}


def copy_rate(gen: np.ndarray, train: np.ndarray, held_out: np.ndarray,
              quantile: float = 0.05) -> dict:
    """Share of generated embeddings (N, D) closer to their nearest training embedding than
    ``quantile`` of fresh real clips are (held-out (H, D) → train).

    A generator that makes new sounds scores about ``quantile`` (the held-out clips themselves
    score exactly that); one that replays training clips scores near 1. ``ratio`` is the mean
    nearest-neighbour distance over the held-out clips' (≈ 1 fresh, ≈ 0 copies).
    """
    gen, train, held = (np.asarray(a, np.float64) for a in (gen, train, held_out))
    g2t, h2t = _nn_dist(gen, train), _nn_dist(held, train)
    threshold = float(np.quantile(h2t, quantile))
    return {"rate": float((g2t < threshold).mean()), "expected": quantile,
            "threshold": threshold, "ratio": float(g2t.mean() / max(h2t.mean(), 1e-12)),
            "gen_to_train": g2t, "held_to_train": h2t}
