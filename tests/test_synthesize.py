"""The synthesis figures on known cases, with a small real judge trained on an easy task:
real clips passed off as generated score like real, noise scores at chance, copies are flagged."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sonic.config import (CASConfig, CGANConfig, CNNConfig, FeatureConfig, SynthesizeConfig,
                          TrainConfig)
from sonic.generation.gan import Generator
from sonic.generation.samples import (RealSets, Samples, headline, on_feature_scale,
                                         quality_report, sample_like)
from sonic.models import build_model
from sonic.models.checkpoint import Classifier
from sonic.training.data import MelSet
from sonic.training.loop import fit

N_MELS, T = 16, 20
CFG = SynthesizeConfig(n_boot=50, fd_dims=8, cas=CASConfig(widths=(8, 16), epochs=4,
                                                           batch_size=16, lr=5e-3, runs=2))


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def spectrograms(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two classes: energy in the low or in the high half of the mel bands, in dB, each clip's
    peak at 0 dB as the features have it."""
    labels = np.arange(n) % 2
    db = rng.uniform(-80, -60, (n, N_MELS, T)).astype(np.float32)
    for i, y in enumerate(labels):
        band = slice(0, 8) if y == 0 else slice(8, 16)
        db[i, band] = rng.uniform(-20, 0, (8, T))
        db[i] -= db[i].max()
    return db, labels


@pytest.fixture(scope="module")
def judge_and_data():
    rng = np.random.default_rng(0)
    train_db, train_y = spectrograms(96, rng)
    held_db, held_y = spectrograms(80, rng)
    mean, std = float(train_db.mean()), float(train_db.std())
    torch.manual_seed(0)
    model = build_model("cnn", CNNConfig(widths=(16, 16), fc=(16,), pool=(1, 1), dropout=0.0,
                                         fc_dropout=0.0), 2)
    cfg = TrainConfig(epochs=4, batch_size=16, lr=3e-3, precision="fp32", mixup_alpha=0.0,
                      freq_masks=0, time_masks=0, patience=10)
    fit(model, MelSet.of(train_db, train_y, mean, std), MelSet.of(held_db, held_y, mean, std),
        cfg, torch.device("cpu"), select=False)
    judge = Classifier("cnn", model.eval(), ["low", "high"], FeatureConfig(), mean, std, {})
    return judge, RealSets(train_db, train_y, held_db, held_y)


def report_for(judge, real, db, labels):
    return quality_report(judge, Samples(db, labels), db, real, CFG)


def test_real_clips_as_generated_score_like_real(judge_and_data):
    judge, real = judge_and_data
    fresh_db, fresh_y = spectrograms(80, np.random.default_rng(5))  # new real clips
    r = report_for(judge, real, fresh_db, fresh_y)
    assert r["judge_accuracy_real"]["value"] >= 0.9  # the judge really learned the task
    assert r["judge_accuracy"]["value"] >= 0.9
    assert r["roundtrip_accuracy"]["value"] == r["judge_accuracy"]["value"]
    lo, hi = r["inception_score_real"]["ci"]
    assert lo <= r["inception_score_real"]["value"] <= hi
    assert abs(r["inception_score"]["value"] - r["inception_score_real"]["value"]) < 0.15
    assert r["cas"]["value"] >= 0.9 and r["cas_real"]["value"] >= 0.9
    assert r["cas_runs"] == 2 and len(r["cas"]["runs"]) == 2  # one figure per classifier seed
    assert r["cas"]["value"] == pytest.approx(np.mean(r["cas"]["runs"]))
    assert r["frechet"]["ci"][0] <= r["frechet_floor"]["ci"][1]  # intervals overlap
    assert r["copy_rate"]["value"] <= 0.2  # about copy_quantile (0.05): fresh, not copies
    assert set(headline(r)) <= set(r) and len(headline(r)) <= 10


def test_noise_scores_at_chance_and_far_from_real(judge_and_data):
    judge, real = judge_and_data
    labels = np.arange(80) % 2
    noise = np.random.default_rng(1).uniform(-80, 0, (80, N_MELS, T)).astype(np.float32)
    r = report_for(judge, real, noise, labels)
    assert abs(r["judge_accuracy"]["value"] - 0.5) <= 0.2  # two balanced classes
    assert abs(r["cas"]["value"] - 0.5) <= 0.2  # nothing learnable about the classes
    assert r["inception_score"]["value"] < r["inception_score_real"]["ci"][0]
    assert r["frechet"]["ci"][0] > 3 * r["frechet_floor"]["ci"][1]


def test_copies_of_training_clips_are_flagged(judge_and_data):
    judge, real = judge_and_data
    r = report_for(judge, real, real.train_db[:80], real.train_y[:80])
    assert r["copy_rate"]["value"] >= 0.9
    assert r["copy_rate"]["nn_ratio"] < 0.05


def test_generated_log_mels_are_put_on_the_features_reference():
    x = np.random.default_rng(0).normal(0, 1, (3, N_MELS, T)).astype(np.float32)
    db = on_feature_scale(x, mean=-40.0, std=20.0, top_db=80.0)
    assert np.allclose(db.max(axis=(1, 2)), 0.0) and db.min() >= -80.0


def test_cas_twins_have_the_real_sets_size_and_class_balance():
    g = Generator(CGANConfig(z_dim=8, embed_dim=4, g_width=8), 3, N_MELS, T, -2.0, 2.0)
    labels = np.array([0, 0, 0, 1, 2, 2])
    twins = sample_like(g, labels, seed=1, mean=-40.0, std=20.0, top_db=80.0)
    assert twins.db.shape == (6, N_MELS, T) and list(twins.labels) == list(labels)
    assert np.allclose(twins.db.max(axis=(1, 2)), 0.0)
    assert np.array_equal(twins.db, sample_like(g, labels, 1, -40.0, 20.0, 80.0).db)
