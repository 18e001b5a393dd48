"""The synthesis figures on known cases, with a small real judge trained on an easy task."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sonic.config import CNNConfig, FeatureConfig, TrainConfig
from sonic.generation.synthesize import Samples, quality_report
from sonic.models import build_model
from sonic.training.checkpoint import Classifier
from sonic.training.data import MelSet
from sonic.training.loop import fit

N_MELS, T = 16, 20


def spectrograms(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two classes: energy in the low or in the high half of the mel bands, in dB."""
    labels = np.arange(n) % 2
    db = rng.uniform(-80, -60, (n, N_MELS, T)).astype(np.float32)
    for i, y in enumerate(labels):
        band = slice(0, 8) if y == 0 else slice(8, 16)
        db[i, band] = rng.uniform(-20, 0, (8, T))
    return db, labels


@pytest.fixture(scope="module")
def judge_and_data():
    rng = np.random.default_rng(0)
    train_db, train_y = spectrograms(64, rng)
    val_db, val_y = spectrograms(40, rng)
    mean, std = float(train_db.mean()), float(train_db.std())
    torch.manual_seed(0)
    model = build_model("cnn", CNNConfig(widths=(16, 16), fc=(16,), pool=(1, 1), dropout=0.0,
                                         fc_dropout=0.0), 2)
    cfg = TrainConfig(epochs=4, batch_size=16, lr=3e-3, precision="fp32", mixup_alpha=0.0,
                      freq_masks=0, time_masks=0, patience=10)
    fit(model, MelSet.of(train_db, train_y, mean, std), MelSet.of(val_db, val_y, mean, std), cfg,
        torch.device("cpu"), select=False)
    judge = Classifier("cnn", model.eval(), ["low", "high"], FeatureConfig(), mean, std, {})
    return judge, train_db, val_db, val_y


def test_real_clips_as_generated_score_like_the_judge(judge_and_data):
    judge, train_db, val_db, val_y = judge_and_data
    report = quality_report(judge, Samples(val_db, val_y), val_db, train_db, val_db, val_y, 0)
    assert report["judge_val_accuracy"] >= 0.9  # the judge really learned the task
    assert report["conditional_accuracy"] == report["judge_val_accuracy"]
    assert report["roundtrip_accuracy"] == report["judge_val_accuracy"]
    assert report["frechet_distance"] < 3 * report["frechet_floor"]
    assert 0.5 < report["memorisation"]["ratio"] < 2.0


def test_noise_scores_chance_and_sits_far_from_real(judge_and_data):
    judge, train_db, val_db, val_y = judge_and_data
    noise = np.random.default_rng(1).uniform(-80, 0, val_db.shape).astype(np.float32)
    real = quality_report(judge, Samples(val_db, val_y), val_db, train_db, val_db, val_y, 0)
    fake = quality_report(judge, Samples(noise, val_y), noise, train_db, val_db, val_y, 0)
    assert abs(fake["conditional_accuracy"] - 0.5) <= 0.2  # two balanced classes
    assert fake["frechet_distance"] > 10 * real["frechet_distance"]


def test_copies_of_training_clips_are_flagged_as_memorised(judge_and_data):
    judge, train_db, val_db, val_y = judge_and_data
    copies = Samples(train_db[:40], np.arange(40) % 2)
    report = quality_report(judge, copies, train_db[:40], train_db, val_db, val_y, 0)
    assert report["memorisation"]["ratio"] < 0.05
