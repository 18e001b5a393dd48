"""Knowledge distillation: the loss, soft targets mixed as their labels are, the teachers' soft
targets, and the checks that keep a teacher that saw other clips out."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sonic.config import CNNConfig, DistillConfig, FeatureConfig, TrainConfig
from sonic.models import build_model
from sonic.models.checkpoint import load_classifier, save_checkpoint
from sonic.training.data import MelSet
from sonic.training.distill import (distill_loss, load_teachers, mix_targets, soft_targets,
                                    teacher_probs)
from sonic.training.loop import fit

TINY_CNN = CNNConfig(widths=(16, 16), fc=(16,), pool=(1, 1), dropout=0.0, fc_dropout=0.0)
CLASSES = ["a", "b", "c"]
FEATURES = FeatureConfig(n_mels=16)


def test_the_distillation_loss_is_t_squared_kl_and_zero_at_the_target():
    torch.manual_seed(0)
    logits = torch.randn(6, 3) * 3
    target = torch.softmax(torch.randn(6, 3), -1)
    for t in (1.0, 2.0, 4.0):
        expected = t**2 * F.kl_div(F.log_softmax(logits / t, -1), target, reduction="batchmean")
        assert distill_loss(logits, target, t) == pytest.approx(float(expected), rel=1e-5)
        assert distill_loss(logits, torch.softmax(logits / t, -1), t) == pytest.approx(0, abs=1e-6)
    one_hot = F.one_hot(torch.tensor([0, 2, 1, 1, 0, 2]), 3).float()  # no 0 · log 0 = nan
    assert torch.isfinite(distill_loss(logits, one_hot, 1.0))


def test_soft_targets_are_mixed_with_the_weights_of_their_labels():
    q = torch.softmax(torch.randn(4, 3), -1)
    a, b = torch.arange(4), torch.tensor([2, 3, 0, 1])
    assert torch.allclose(mix_targets(q, a, b, 0.7), 0.7 * q + 0.3 * q[b])
    lam = torch.tensor([1.0, 0.0, 0.25, 0.5])  # between-class mixing: one ratio per example
    mixed = mix_targets(q, a, b, lam)
    for i in range(4):
        assert torch.allclose(mixed[i], lam[i] * q[i] + (1 - lam[i]) * q[b[i]])
    assert torch.allclose(mixed.sum(-1), torch.ones(4))


def train(cfg: TrainConfig, train_set: MelSet, val: MelSet,
          distill: DistillConfig | None = None):
    torch.manual_seed(0)
    model = build_model("cnn", TINY_CNN, 3)
    return fit(model, train_set, val, cfg, torch.device("cpu"), select=False,
               distill=distill)


@pytest.mark.parametrize("mixing", ["mixup", "bc"])
def test_a_student_of_one_hot_teachers_learns_what_the_labels_teach(mixing, toy_mels):
    """Teachers sure of every label, T = 1, the whole loss on them: KL(mixed one-hot ‖ p) differs
    from the mixed cross-entropy by the targets' entropy alone, a constant, so the student takes
    the same steps as a plain run (mixed with the same partners and weights) — the weights end
    equal; with none of the loss on the teachers the run is the plain run exactly."""
    cfg = TrainConfig(epochs=2, batch_size=8, lr=3e-3, precision="fp32", mixing=mixing,
                      mixup_prob=1.0, mixup_alpha=0.4, label_smoothing=0.0, time_shift=2)
    data = toy_mels
    plain = train(cfg, data, data)
    one_hot = F.one_hot(data.labels, 3).float()
    student = train(cfg, data.with_soft(one_hot), data, DistillConfig(weight=1.0, temperature=1.0))
    for k, v in plain.best_state.items():
        if v.is_floating_point():
            assert torch.allclose(student.best_state[k], v, atol=1e-5), k
    noise = torch.softmax(torch.randn(len(data), 3), -1)
    ignored = train(cfg, data.with_soft(noise), data, DistillConfig(weight=0.0, temperature=2.0))
    assert ignored.history == plain.history
    listened = train(cfg, data.with_soft(noise), data, DistillConfig(weight=0.8, temperature=2.0))
    assert listened.history != plain.history  # the teachers' share moves the student


def test_a_student_needs_both_its_soft_targets_and_the_distill_params(toy_mels):
    cfg = TrainConfig(epochs=1, batch_size=8, precision="fp32")
    with pytest.raises(ValueError, match="soft targets"):
        train(cfg, toy_mels, toy_mels, DistillConfig())
    with pytest.raises(ValueError, match="soft targets"):
        train(cfg, toy_mels.with_soft(torch.full((24, 3), 1 / 3)), toy_mels)


def save_teacher(path, seed: int, mean: float, std: float, classes=CLASSES,
                 features=FEATURES, **meta) -> None:
    torch.manual_seed(seed)
    model = build_model("cnn", TINY_CNN, len(classes))
    torch.nn.init.normal_(model.classifier.weight, std=5.0)  # sure of something
    save_checkpoint(path, "cnn", model, classes, features, mean, std, **meta)


def test_the_soft_targets_are_the_teachers_mean_probabilities(tmp_path, toy_mels):
    data = toy_mels
    save_teacher(tmp_path / "a.pt", 0, data.mean, data.std)
    save_teacher(tmp_path / "b.pt", 1, data.mean, data.std, crop_frames=8, test_crops=3)
    teachers = load_teachers(tmp_path, CLASSES, FEATURES, data.mean, data.std)
    assert list(teachers) == ["a.pt", "b.pt"]
    db = np.stack([data.parts[0][0][i] for i in range(len(data))])
    at_1 = soft_targets(teachers, data, temperature=1.0, batch_size=5)
    # at T = 1 each teacher's share is what it predicts at inference (crops and all)
    expected = np.mean([t.predict(db)["probs"] for t in teachers.values()], axis=0)
    assert np.allclose(at_1.probs.numpy(), expected, atol=1e-5)
    assert at_1.train_accuracy["mean"] == pytest.approx(
        float((expected.argmax(1) == data.labels.numpy()).mean()))
    hot = soft_targets(teachers, data, temperature=4.0)
    x, _ = data[list(range(len(data)))]
    assert torch.allclose(hot.probs, torch.stack([teacher_probs(t, x, 4.0)
                                                 for t in teachers.values()]).mean(0))
    entropy = lambda p: -(p * p.log()).sum(-1).mean()  # noqa: E731
    assert entropy(hot.probs) > entropy(at_1.probs)  # a higher temperature softens


def test_a_teacher_that_trained_on_other_clips_is_refused(tmp_path, toy_mels):
    """A teacher's input normalisation is its training clips' mean and std: one trained with
    the held-out fold (any other clips) has others, and is named and refused."""
    data = toy_mels
    save_teacher(tmp_path / "good.pt", 0, data.mean, data.std)
    assert list(load_teachers(tmp_path, CLASSES, FEATURES, data.mean, data.std)) == ["good.pt"]
    save_teacher(tmp_path / "other_fold.pt", 1, data.mean + 0.01, data.std)
    with pytest.raises(ValueError, match=r"other_fold\.pt: this teacher trained on other clips"):
        load_teachers(tmp_path, CLASSES, FEATURES, data.mean, data.std)
    (tmp_path / "other_fold.pt").unlink()
    save_teacher(tmp_path / "classes.pt", 1, data.mean, data.std, classes=["a", "b", "d"])
    with pytest.raises(ValueError, match=r"classes\.pt: this teacher knows other classes"):
        load_teachers(tmp_path, CLASSES, FEATURES, data.mean, data.std)
    (tmp_path / "classes.pt").unlink()
    save_teacher(tmp_path / "mels.pt", 1, data.mean, data.std,
                 features=dataclasses.replace(FEATURES, hop_length=256))
    with pytest.raises(ValueError, match=r"mels\.pt: this teacher was trained on other features"):
        load_teachers(tmp_path, CLASSES, FEATURES, data.mean, data.std)
    with pytest.raises(ValueError, match="no teacher checkpoint"):
        load_teachers(tmp_path / "empty", CLASSES, FEATURES, data.mean, data.std)
    assert load_classifier(tmp_path / "good.pt").classes == CLASSES
