"""The training loop's parts: MixUp and label-smoothing maths, SpecAugment bounds, early
stopping, checkpoint round trip, stable checkpoint bytes and determinism of a tiny run."""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sonic.config import CNNConfig, FeatureConfig, ResNetConfig, TrainConfig
from sonic.models import build_model
from sonic.models.checkpoint import Classifier, load_classifier, save_checkpoint
from sonic.training.data import MelSet
from sonic.training.loop import EarlyStopping, fit
from sonic.training.regularize import mask_along, mixed_cross_entropy, mixup, spec_augment

TINY_CNN = CNNConfig(widths=(16, 16), fc=(16,), pool=(1, 1), dropout=0.0, fc_dropout=0.0)


def toy_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three classes of (16, 12) dB 'spectrograms' told apart by which band is loud."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    db = rng.uniform(-80, -60, (n, 16, 12)).astype(np.float32)
    for i, c in enumerate(y):
        db[i, 5 * c:5 * c + 5] = rng.uniform(-20, 0, (5, 12))
    return db, y


def test_label_smoothing_matches_its_definition():
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]])
    y = torch.tensor([0, 2])
    eps, k = 0.1, 3
    target = torch.full((2, k), eps / k)
    target[torch.arange(2), y] += 1 - eps
    expected = -(target * logits.log_softmax(-1)).sum(-1).mean()
    got = mixed_cross_entropy(logits, y, y, 1.0, eps)
    assert torch.allclose(got, expected, atol=1e-6)


def test_mixup_blends_inputs_and_losses_by_lambda():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(6, 1, 4, 5)
    y = torch.arange(6) % 3
    mixed, y_a, y_b, lam = mixup(x, y, 0.4, gen)
    assert 0.0 < lam < 0.99  # this seed draws a real blend
    for i in range(6):  # each row is lam * itself + (1 - lam) * one partner with label y_b[i]
        partner = (mixed[i] - lam * x[i]) / (1 - lam)
        matches = [j for j in range(6) if torch.allclose(partner, x[j], atol=1e-4)]
        assert len(matches) == 1 and y[matches[0]] == y_b[i]
    logits = torch.randn(6, 3)
    expected = lam * F.cross_entropy(logits, y_a) + (1 - lam) * F.cross_entropy(logits, y_b)
    assert torch.allclose(mixed_cross_entropy(logits, y_a, y_b, lam, 0.0), expected)


@pytest.mark.parametrize("dim,size", [(2, 16), (3, 12)])
def test_masks_stay_in_bounds_and_respect_width(dim, size):
    gen = torch.Generator().manual_seed(1)
    x = torch.ones(64, 1, 16, 12)
    out = mask_along(x, n_masks=1, max_width=5, dim=dim, generator=gen)
    zeros = (out == 0).all(dim=5 - dim).squeeze(1)  # (B, size): masked positions of each row
    for row in zeros:
        idx = torch.nonzero(row).flatten()
        if len(idx):
            assert len(idx) <= 5 and idx.max() < size
            assert (idx.diff() == 1).all()  # one contiguous band
    assert zeros.any()  # some masks were drawn
    wide = mask_along(x, n_masks=3, max_width=100, dim=dim, generator=gen)  # wider than the axis
    assert wide.shape == x.shape


def test_spec_augment_masks_both_axes_only():
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(8, 1, 16, 12)
    out = spec_augment(x, 2, 4, 2, 3, gen)
    changed = out != x
    assert (out[changed] == 0).all()
    zero = out[:, 0] == 0  # (B, 16, 12); randn is never exactly 0
    rows, cols = zero.all(dim=2), zero.all(dim=1)  # whole mel bins (B, 16), whole frames (B, 12)
    assert torch.equal(zero, rows[:, :, None] | cols[:, None, :])  # only whole bins and frames
    assert (rows.sum(1) <= 2 * 4).all() and (cols.sum(1) <= 2 * 3).all()  # within the widths
    assert rows.any(1).sum() >= 4 and cols.any(1).sum() >= 4  # both axes masked, not by chance


def test_early_stopping_stops_after_patience_and_tracks_best():
    stop = EarlyStopping("val_accuracy", patience=2)
    assert stop.step({"val_accuracy": 0.5, "val_loss": 1.0})
    assert stop.step({"val_accuracy": 0.5, "val_loss": 0.9})  # tie on accuracy, lower loss
    assert not stop.step({"val_accuracy": 0.4, "val_loss": 0.8})
    assert not stop.should_stop
    assert not stop.step({"val_accuracy": 0.5, "val_loss": 0.95})
    assert stop.should_stop


def test_fit_stops_early_and_reports_each_epoch():
    db, y = toy_data(30, 0)
    x = MelSet.of(db, y, float(db.mean()), float(db.std()))
    # lr 0: the weights never move, only BatchNorm's running statistics drift a little, so the
    # validation figures soon stop improving
    cfg = TrainConfig(epochs=30, batch_size=10, lr=0.0, patience=2, precision="fp32",
                      mixup_alpha=0.0)
    torch.manual_seed(0)
    result = fit(build_model("cnn", TINY_CNN, 3), x, x, cfg, torch.device("cpu"))
    assert len(result.history) < cfg.epochs
    assert len(result.history) == result.best_epoch + cfg.patience  # stopped by the rule
    assert {"epoch", "train_loss", "val_loss", "val_accuracy", "lr"} <= set(result.history[0])


def tiny_run(seed: int = 0) -> tuple[list[dict], torch.nn.Module, float, float]:
    db, y = toy_data(36, 1)
    mean, std = float(db.mean()), float(db.std())
    torch.manual_seed(seed)
    model = build_model("cnn", TINY_CNN, 3)
    cfg = TrainConfig(epochs=3, batch_size=12, lr=3e-3, precision="fp32", seed=seed)
    data = MelSet.of(db, y, mean, std)
    result = fit(model, data, data, cfg, torch.device("cpu"))
    return result.history, model, mean, std


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_a_tiny_run_is_deterministic(tmp_path):
    """Two runs give the same history and, saved, the same checkpoint file byte for byte (what
    lets DVC keep the stages below a forced re-run cached)."""
    first, model_a, mean, std = tiny_run()
    second, model_b, _, _ = tiny_run()
    assert first == second
    for name, model in (("a.pt", model_a), ("b.pt", model_b)):
        save_checkpoint(tmp_path / name, "cnn", model, ["a", "b", "c"], FeatureConfig(n_mels=16),
                        mean, std, **first[-1])
    assert md5(tmp_path / "a.pt") == md5(tmp_path / "b.pt")


CHECKPOINT_MODELS = [("cnn", TINY_CNN), ("resnet", ResNetConfig(blocks=(1, 1), widths=(16, 16)))]


@pytest.mark.parametrize("name,cfg", CHECKPOINT_MODELS)
def test_checkpoint_round_trip_gives_identical_predictions(tmp_path, name, cfg):
    torch.manual_seed(0)
    model = build_model(name, cfg, 3).eval()
    db, _ = toy_data(6, 2)
    path = tmp_path / f"{name}.pt"
    save_checkpoint(path, name, model, ["a", "b", "c"], FeatureConfig(n_mels=16), -50.0, 20.0,
                    epoch=1)
    loaded = load_classifier(path)
    with torch.no_grad():
        expected = model(((torch.from_numpy(db) + 50.0) / 20.0).unsqueeze(1))["logits"]
    got = loaded.predict(db)["probs"]
    assert np.allclose(got, expected.softmax(-1).numpy(), atol=1e-6)
    assert loaded.classes == ["a", "b", "c"] and loaded.features.n_mels == 16
    assert math.isclose(loaded.mean, -50.0) and loaded.meta["epoch"] == 1
    original = Classifier(name, model, ["a", "b", "c"], FeatureConfig(n_mels=16), -50.0, 20.0, {})
    for key, value in original.predict(db).items():
        assert np.array_equal(got if key == "probs" else loaded.predict(db)[key], value), key


@pytest.mark.parametrize("name,cfg", CHECKPOINT_MODELS)
def test_two_saves_of_one_state_give_the_same_bytes(tmp_path, name, cfg):
    """The same weights and metadata give the same file: saved twice, from a copy of the model,
    and again from the checkpoint loaded back."""
    torch.manual_seed(0)
    model = build_model(name, cfg, 3).eval()
    rest = (["a", "b", "c"], FeatureConfig(n_mels=16), -50.0, 20.0)
    meta = {"epoch": 4, "val_accuracy": 0.8125, "val_loss": 0.1 + 0.2, "crop_frames": 8,
            "test_crops": 3}
    save_checkpoint(tmp_path / "one.pt", name, model, *rest, **meta)
    save_checkpoint(tmp_path / "two.pt", name, copy.deepcopy(model), *rest, **meta)
    back = load_classifier(tmp_path / "one.pt")
    assert back.meta == meta and back.crops == (8, 3)
    save_checkpoint(tmp_path / "three.pt", back.name, back.model, back.classes, back.features,
                    back.mean, back.std, **back.meta)
    assert md5(tmp_path / "one.pt") == md5(tmp_path / "two.pt") == md5(tmp_path / "three.pt")


def test_a_checkpoint_is_safetensors_with_its_metadata_as_json(tmp_path):
    """Weights under ``state_dict/<name>``, everything else as JSON in the header: nothing in
    the file needs unpickling."""
    from safetensors import safe_open

    model = build_model("cnn", TINY_CNN, 3)
    path = tmp_path / "cnn.pt"
    save_checkpoint(path, "cnn", model, ["a", "b", "c"], FeatureConfig(n_mels=16), -50.0, 20.0,
                    epoch=2)
    with safe_open(path, "pt") as f:
        header = json.loads(f.metadata()["sonic"])
        assert set(f.keys()) == {f"state_dict/{k}" for k in model.state_dict()}
    assert header["model"] == "cnn" and header["classes"] == ["a", "b", "c"]
    assert header["norm"] == {"mean": -50.0, "std": 20.0} and header["meta"] == {"epoch": 2}


def test_a_checkpoint_in_the_torch_save_format_still_loads(tmp_path):
    torch.manual_seed(0)
    model = build_model("cnn", TINY_CNN, 3).eval()
    path = tmp_path / "old.pt"
    torch.save({"model": "cnn", "model_config": dataclasses.asdict(TINY_CNN),
                "state_dict": model.state_dict(), "classes": ["a", "b", "c"],
                "features": dataclasses.asdict(FeatureConfig(n_mels=16)),
                "norm": {"mean": -50.0, "std": 20.0}, "meta": {"epoch": 1}}, path)
    db, _ = toy_data(6, 2)
    expected = Classifier("cnn", model, ["a", "b", "c"], FeatureConfig(n_mels=16), -50.0, 20.0,
                          {}).predict(db)["probs"]
    assert np.array_equal(load_classifier(path).predict(db)["probs"], expected)


def test_a_file_that_is_no_checkpoint_is_named_in_the_error(tmp_path):
    path = tmp_path / "cnn.pt"
    path.write_text("not a model at all")
    with pytest.raises(ValueError, match="cnn.pt: not a Sonic checkpoint.*dvc repro"):
        load_classifier(path)
    with pytest.raises(FileNotFoundError, match="missing.pt: no checkpoint"):
        load_classifier(tmp_path / "missing.pt")
