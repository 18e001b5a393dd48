"""Quality metrics on embeddings whose answer is known."""
import numpy as np
import pytest

from sonic.generation.quality import (
    conditional_accuracy,
    frechet_distance,
    frechet_floor,
    frechet_vs_real,
    memorisation,
)

CLASSES = ("a", "b", "c", "d")


def mixture(n: int, seed: int, dim: int = 16, shift: float = 0.0) -> np.ndarray:
    """n embeddings (n, dim) from a fixed 4-cluster Gaussian mixture, optionally shifted."""
    centres = np.random.default_rng(0).normal(0, 3, (4, dim))
    rng = np.random.default_rng(seed)
    return centres[rng.integers(0, 4, n)] + rng.normal(0, 1, (n, dim)) + shift


def test_conditional_accuracy_on_known_predictions():
    intended = np.repeat(np.arange(4), 5)  # 5 per class
    pred = intended.copy()
    pred[[0, 5, 6]] = 3  # one miss in class a, two in b
    out = conditional_accuracy(pred, intended, CLASSES)
    assert out["accuracy"] == pytest.approx(17 / 20) and out["n"] == 20
    assert out["per_class"] == {"a": 0.8, "b": 0.6, "c": 1.0, "d": 1.0}
    # Real clips' predictions scored as "generated" give the judge's own accuracy, by definition.
    assert out["accuracy"] == np.mean(pred == intended)
    assert conditional_accuracy(pred[:5], intended[:5], CLASSES)["per_class"]["b"] is None


def test_random_predictions_score_chance():
    rng = np.random.default_rng(1)
    out = conditional_accuracy(rng.integers(0, 4, 8000), rng.integers(0, 4, 8000), CLASSES)
    assert out["accuracy"] == pytest.approx(0.25, abs=0.02)


def test_frechet_identical_sets_is_zero_and_shift_is_large():
    real = mixture(300, seed=1)
    assert frechet_distance(real, real) == pytest.approx(0.0, abs=1e-6)
    floor = frechet_floor(real, seed=0)
    assert floor > 0
    shifted = frechet_vs_real(mixture(300, seed=2, shift=2.0), real, seed=0)
    noise = frechet_vs_real(np.random.default_rng(3).normal(0, 3, (300, 16)), real, seed=0)
    assert shifted["ratio"] > 10 and noise["ratio"] > 10


def test_fresh_real_samples_score_near_the_floor():
    real = mixture(300, seed=1)
    out = frechet_vs_real(mixture(300, seed=2), real, seed=0)
    assert out["n"] == 150 and out["n_ref"] == 150
    assert 0.5 < out["ratio"] < 2.0  # measured 0.9..1.2 over seeds


def test_frechet_reduces_dimension_when_samples_are_few():
    a, b = mixture(30, seed=1, dim=64), mixture(40, seed=2, dim=64)  # 30 ≤ 64: singular covs
    fd = frechet_distance(a, b)
    assert np.isfinite(fd) and fd > 0
    assert frechet_distance(a, b, max_dim=5) < fd  # fewer axes hold less of the distance


def test_memorisation_ratio_separates_copies_from_fresh_samples():
    train = mixture(200, seed=1)
    fresh = memorisation(mixture(200, seed=2), train)
    assert fresh["ratio"] == pytest.approx(1.0, abs=0.15)
    rng = np.random.default_rng(4)
    copies = train[rng.integers(0, 200, 100)] + rng.normal(0, 1e-3, (100, 16))
    assert memorisation(copies, train)["ratio"] < 0.01
