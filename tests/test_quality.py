"""Quality metrics on embeddings whose answer is known."""
import numpy as np
import pytest

from sonic.generation.quality import (
    bootstrap,
    bootstrap_runs,
    conditional_accuracy,
    copy_rate,
    frechet_distance,
    frechet_interval,
    inception_score,
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


def test_frechet_identical_sets_is_zero_and_a_shift_is_large():
    real = mixture(300, seed=1)
    assert frechet_distance(real, real) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(mixture(300, seed=2), real) < 0.2 * frechet_distance(
        mixture(300, seed=2, shift=2.0), real)


def test_frechet_reduces_dimension_when_samples_are_few():
    a, b = mixture(30, seed=1, dim=64), mixture(40, seed=2, dim=64)  # 30 ≤ 64: singular covs
    fd = frechet_distance(a, b)
    assert np.isfinite(fd) and fd > 0
    assert frechet_distance(a, b, max_dim=5) < fd  # fewer axes hold less of the distance


# ------------------------------------------------------------ inception score, intervals, copies

def test_inception_score_is_class_count_for_confident_balanced_and_one_for_uniform():
    confident = np.eye(4)[np.arange(400) % 4]
    assert inception_score(confident) == pytest.approx(4.0, rel=1e-6)
    assert inception_score(np.full((400, 4), 0.25)) == pytest.approx(1.0)
    collapsed = np.eye(4)[np.zeros(400, int)]  # confident but one class only
    assert inception_score(collapsed) == pytest.approx(1.0)


def test_bootstrap_interval_holds_the_value_and_narrows_with_more_samples():
    rng = np.random.default_rng(0)
    small, large = rng.normal(0, 1, 50), rng.normal(0, 1, 2000)
    v, lo, hi = bootstrap(np.mean, (small,), 200, 0)
    assert lo <= v <= hi and lo < 0 < hi
    _, lo2, hi2 = bootstrap(np.mean, (large,), 200, 0)
    assert hi2 - lo2 < (hi - lo) / 3  # ~1/sqrt(40) as wide
    assert bootstrap(np.mean, (small,), 200, 0) == (v, lo, hi)  # deterministic for a seed


def test_the_runs_bootstrap_carries_the_spread_between_training_runs():
    """Three runs scored on the same 400 clips: agreeing runs give the clip-only interval's
    width; runs 0.60 / 0.75 / 0.90 apart give a far wider one, which holds each run's mean."""
    rng = np.random.default_rng(0)
    agree = np.tile(rng.random(400) < 0.75, (3, 1))
    v, lo, hi = bootstrap_runs(agree, 300, 0)
    _, clo, chi = bootstrap(np.mean, (agree[0].astype(float),), 300, 0)
    assert v == agree.mean() and abs((hi - lo) - (chi - clo)) < 0.02
    apart = np.stack([rng.random(400) < p for p in (0.60, 0.75, 0.90)])
    v2, lo2, hi2 = bootstrap_runs(apart, 300, 0)
    assert hi2 - lo2 > 2 * (hi - lo) and lo2 < apart[1].mean() < hi2
    one = bootstrap_runs(agree[:1], 300, 0)
    assert one[0] == agree[0].mean() and one[1] < one[0] < one[2]


def test_frechet_interval_real_sits_on_the_floor_shifted_does_not():
    real, fresh = mixture(400, 1), mixture(400, 2)
    same = frechet_interval(fresh, real, max_dim=8, n_boot=30, seed=0)
    assert same["fd_ci"][0] <= same["floor_ci"][1] and same["floor_ci"][0] <= same["fd_ci"][1]
    off = frechet_interval(mixture(400, 3, shift=2.0), real, max_dim=8, n_boot=30, seed=0)
    assert off["fd_ci"][0] > 3 * off["floor_ci"][1]


def test_copy_rate_flags_copies_and_not_fresh_samples():
    train, held = mixture(300, 1), mixture(200, 2)
    fresh = copy_rate(mixture(200, 3), train, held, quantile=0.05)
    assert fresh["rate"] < 0.15 and 0.7 < fresh["ratio"] < 1.4
    assert copy_rate(held, train, held, 0.05)["rate"] == pytest.approx(0.05, abs=0.01)
    copies = copy_rate(train[:100] + 1e-3, train, held, quantile=0.05)
    assert copies["rate"] == 1.0 and copies["ratio"] < 0.01
