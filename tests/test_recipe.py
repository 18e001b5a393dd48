"""The ESC-50 recipe's training tools: between-class mixing, random crops and multi-crop
scoring, weight averaging (EMA) through a resume, and mean + max pooling (ResNet and CNN)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sonic.config import CNNConfig, FeatureConfig, ResNetConfig, TrainConfig
from sonic.models import build_model
from sonic.models.checkpoint import crop_starts, load_classifier, save_checkpoint
from sonic.training.data import MelSet
from sonic.training.loop import fit
from sonic.training.regularize import (bc_coefficient, bc_mix, loudness_db, mixed_cross_entropy,
                                       random_crop, time_shift)
from sonic.training.resume import ResumeFile

TINY_CNN = CNNConfig(widths=(16, 16), fc=(16,), pool=(1, 1), dropout=0.0, fc_dropout=0.0)


def flat_clip(level_db: float, n_mels: int = 8, frames: int = 10) -> torch.Tensor:
    """A (1, n_mels, T) dB clip: every bin at ``level_db`` but one at 0 dB (extracted clips
    are peak-normalised)."""
    db = torch.full((1, n_mels, frames), level_db)
    db[0, 0, 0] = 0.0
    return db


def test_bc_coefficient_corrects_the_label_ratio_for_loudness():
    r = torch.tensor([0.1, 0.3, 0.5, 0.9])
    same = bc_coefficient(r, torch.zeros(4), torch.zeros(4))
    assert torch.allclose(same, r)  # equal gains: the amplitude weight is the label ratio
    louder = bc_coefficient(r, torch.full((4,), 20.0), torch.zeros(4))  # a is 20 dB louder
    assert torch.allclose(louder, 1 / (1 + 10 * (1 - r) / r))
    assert (louder < r).all()  # the louder clip is turned down so the mix sounds r : 1 - r
    # the stated ratio: p * 10^(g_a/20) : (1 - p) * 10^(g_b/20) == r : 1 - r
    heard = louder * 10.0 ** (20 / 20) / ((1 - louder) * 10.0 ** (0 / 20))
    assert torch.allclose(heard, r / (1 - r), rtol=1e-5)


def test_bc_mix_adds_the_clips_power_with_the_stated_weights():
    db = torch.stack([flat_clip(-10.0), flat_clip(-40.0)])  # (2, 1, 8, 10)
    y = torch.tensor([0, 1])
    gen = torch.Generator().manual_seed(3)
    mixed, y_a, y_b, r = bc_mix(db, y, gen)
    gen = torch.Generator().manual_seed(3)
    r_again = torch.rand(2, generator=gen)
    perm = torch.randperm(2, generator=gen)
    assert torch.equal(r, r_again) and torch.equal(y_b, y[perm]) and torch.equal(y_a, y)
    gain = loudness_db(db)
    p = bc_coefficient(r, gain, gain[perm]).view(2, 1, 1, 1)
    power = (p**2 * 10 ** (db / 10) + (1 - p) ** 2 * 10 ** (db[perm] / 10)) / (p**2 + (1 - p)**2)
    expected = 10 * torch.log10(power / power.amax(dim=(1, 2, 3), keepdim=True))
    assert torch.allclose(mixed, expected, atol=1e-4)
    assert torch.allclose(mixed.amax(dim=(1, 2, 3)), torch.zeros(2))  # peak 0 dB, as extracted
    assert mixed.min() >= db.min() - 1e-4  # never below the clips' floor


def test_per_example_weights_in_the_mixing_loss():
    logits = torch.randn(3, 4)
    y_a, y_b = torch.tensor([0, 1, 2]), torch.tensor([3, 3, 0])
    lam = torch.tensor([1.0, 0.25, 0.5])
    ce = torch.nn.functional.cross_entropy
    expected = sum(lam[i] * ce(logits[i:i + 1], y_a[i:i + 1]) + (1 - lam[i])
                   * ce(logits[i:i + 1], y_b[i:i + 1]) for i in range(3)) / 3
    assert torch.allclose(mixed_cross_entropy(logits, y_a, y_b, lam, 0.0), expected)


def test_random_crops_are_windows_of_their_own_clip():
    x = torch.arange(40.0).view(1, 1, 1, 40).repeat(16, 1, 3, 1) + 100 * torch.arange(16.0).view(
        16, 1, 1, 1)
    out = random_crop(x, 7, torch.Generator().manual_seed(0))
    assert out.shape == (16, 1, 3, 7)
    starts = out[:, 0, 0, 0] - 100 * torch.arange(16.0)
    assert len(set(starts.tolist())) > 1  # each example has its own start
    for i, s in enumerate(starts.long().tolist()):
        assert torch.equal(out[i], x[i, :, :, s:s + 7])
    assert random_crop(x, 0, torch.Generator()) is x and random_crop(x, 40, torch.Generator()) is x


def test_time_shifts_move_each_clip_and_fill_with_its_floor():
    """Every example moves by its own shift in [-5, 5] frames, keeps its length, and the frames
    it vacates hold its own lowest value; 0 frames leaves the batch and the generator alone."""
    T = 30
    x = torch.arange(T, dtype=torch.float32).view(1, 1, 1, T).repeat(64, 1, 2, 1) + 100 * \
        torch.arange(64.0).view(64, 1, 1, 1)  # example i: 100 i + frame index, floor 100 i
    out = time_shift(x, 5, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    shifts = set()
    for i in range(64):
        floor = 100.0 * i
        # the first frame that is not floor-filled tells the shift
        row = out[i, 0, 0]
        s = int((row == floor).sum().item()) - 1 if row[0] == floor else -int(row[0] - floor)
        shifts.add(s)
        assert -5 <= s <= 5
        expected = torch.roll(x[i], s, dims=-1)
        if s > 0:
            expected[..., :s] = floor
        elif s < 0:
            expected[..., s:] = floor
        assert torch.equal(out[i], expected), i
    assert len(shifts) > 5  # each example its own shift, both ways
    gen = torch.Generator().manual_seed(3)
    assert time_shift(x, 0, gen) is x
    assert torch.equal(gen.get_state(), torch.Generator().manual_seed(3).get_state())


def test_crop_starts_cover_the_clip_evenly():
    assert crop_starts(157, 100, 5) == [0, 14, 28, 43, 57]
    assert crop_starts(157, 100, 1) == [28]  # one crop: the centre
    assert crop_starts(157, 0, 5) == [0] and crop_starts(50, 100, 3) == [0]


def test_multi_crop_scoring_is_the_mean_of_the_single_crops(tmp_path):
    torch.manual_seed(0)
    model = build_model("resnet", ResNetConfig(blocks=(1, 1), widths=(16, 16)), 3).eval()
    path = tmp_path / "resnet.pt"
    save_checkpoint(path, "resnet", model, ["a", "b", "c"], FeatureConfig(n_mels=16), -50.0,
                    20.0, crop_frames=12, test_crops=3)
    clf = load_classifier(path)
    db = np.random.default_rng(0).uniform(-80, 0, (5, 16, 30)).astype(np.float32)
    got = clf.predict(db)
    x = clf.normalize(db)
    with torch.no_grad():
        singles = [model(x[..., s:s + 12])["logits"].softmax(-1) for s in (0, 9, 18)]
    assert np.allclose(got["probs"], torch.stack(singles).mean(0).numpy(), atol=1e-6)
    assert not np.allclose(got["probs"], singles[0].numpy(), atol=1e-3)  # not just one crop


class Killed(Exception):
    pass


def run(cfg: TrainConfig, data: MelSet, resume: ResumeFile | None = None, kill_at: int = 0):
    def on_epoch(record: dict) -> None:
        if record["epoch"] == kill_at:
            raise Killed  # before this epoch's state is saved, as a kill would

    torch.manual_seed(0)
    model = build_model("cnn", TINY_CNN, 3)
    return model, fit(model, data, data, cfg, torch.device("cpu"), select=False,
                      resume=resume, on_epoch=on_epoch)


@pytest.mark.parametrize("mixing", ["mixup", "bc"])
def test_ema_weights_are_kept_and_survive_a_resume(tmp_path, mixing, toy_mels):
    cfg = TrainConfig(epochs=3, batch_size=8, lr=3e-3, precision="fp32", ema=0.5,
                      mixing=mixing, mixup_prob=1.0, crop_frames=8)
    model, whole = run(cfg, toy_mels)
    raw = model.state_dict()
    assert any(not torch.equal(whole.best_state[k], raw[k]) for k in raw
               if raw[k].is_floating_point())  # the average is kept, not the last step
    resume = ResumeFile(tmp_path / "state.pt", "key")
    with pytest.raises(Killed):
        run(cfg, toy_mels, resume, kill_at=3)  # killed during epoch 3: the file holds epochs 1-2
    _, resumed = run(cfg, toy_mels, resume)
    assert resumed.resumed_from == 2
    assert resumed.history == whole.history
    for k, v in whole.best_state.items():
        assert torch.equal(resumed.best_state[k], v), k  # the average was restored exactly


def test_avgmax_pooling_keeps_a_short_event():
    cfg = ResNetConfig(blocks=(1, 1), widths=(16, 16), pool="avgmax")
    model = build_model("resnet", cfg, 3).eval()
    x = torch.zeros(1, 1, 16, 64)
    out = model(x)
    assert out["logits"].shape == (1, 3) and out["embedding"].shape == (1, 16)
    stages_out = model.stages[-1](model.stages[0](model.maxpool(model.relu(model.bn1(
        model.conv1(x))))))
    pooled = stages_out.mean(dim=2)
    assert torch.allclose(out["embedding"], pooled.mean(-1) + pooled.amax(-1), atol=1e-6)


def test_cnn_avgmax_head_pools_mean_plus_max_over_frames_and_ignores_where_the_event_sits():
    grid = build_model("cnn", CNNConfig(widths=(8, 16), fc=(16,), pool=(2, 3)), 3).eval()
    torch.manual_seed(0)
    model = build_model("cnn", CNNConfig(widths=(8, 16), fc=(16,), head="avgmax"), 3).eval()
    assert model.fc[0].in_features == 16 and grid.fc[0].in_features == 16 * 6  # no grid cells
    x = torch.randn(2, 1, 16, 64)
    out = model(x)
    blocks = model.blocks(x).mean(dim=2)  # (B, 16, 64 // 4)
    assert torch.allclose(out["embedding"], model.fc(blocks.mean(-1) + blocks.amax(-1)), atol=1e-6)
    # An event moved by whole block strides (4 frames here) and kept clear of the clip's edges
    # is the same event to the avgmax head; the grid head places it in another cell.
    event = torch.zeros(1, 1, 16, 64)
    event[..., 4:8, 8:16] = 3.0
    late = torch.roll(event, 32, dims=-1)
    assert torch.allclose(model(event)["logits"], model(late)["logits"], atol=1e-5)
    assert not torch.allclose(grid(event)["logits"], grid(late)["logits"], atol=1e-3)
