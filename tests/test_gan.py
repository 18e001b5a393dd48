"""The conditional GAN: shapes, output range, which weights each update touches, determinism."""
import math

import pytest
import torch

from sonic.config import CGANConfig
from sonic.generation.gan import Discriminator, Generator, UpBlock
from sonic.generation.trainer import (
    checkpoint,
    discriminator_step,
    fixed_grid,
    generate,
    generator_step,
    load_generator,
    make_state,
    mode_seeking_penalty,
    sample_inputs,
    train_cgan,
    train_step,
)

LO, HI = -1.7, 2.1  # a normalised range like the classifiers' (-top_db and 0 dB, standardised)
TINY = CGANConfig(z_dim=16, embed_dim=8, g_width=16, d_width=8, batch_size=4, epochs=2)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors gain nothing from threads, and on a shared 2-core machine a second thread
    spin-waits against other jobs (measured 9 s instead of 1 s for the training test)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def params(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def changed(before: dict, module: torch.nn.Module) -> list[str]:
    return [k for k, v in module.named_parameters() if not torch.equal(before[k], v)]


@pytest.mark.parametrize("n_mels, n_frames", [(128, 108), (40, 33), (17, 5)])
def test_generator_shape_and_range(n_mels, n_frames):
    torch.manual_seed(0)
    g = Generator(TINY, n_classes=3, n_mels=n_mels, n_frames=n_frames, lo=LO, hi=HI)
    x = g(torch.randn(3, TINY.z_dim), torch.tensor([0, 1, 2]))
    assert x.shape == (3, 1, n_mels, n_frames)
    assert x.min() >= LO and x.max() <= HI


@pytest.mark.parametrize("d_norm", ["spectral", "batch"])
@pytest.mark.parametrize("n_mels, n_frames", [(128, 108), (40, 33)])
def test_discriminator_gives_one_logit_per_clip(d_norm, n_mels, n_frames):
    cfg = CGANConfig(embed_dim=8, d_width=8, d_norm=d_norm)
    d = Discriminator(cfg, n_classes=3, n_mels=n_mels, n_frames=n_frames)
    out = d(torch.randn(4, 1, n_mels, n_frames), torch.tensor([0, 1, 2, 0]))
    assert out.shape == (4,) and torch.isfinite(out).all()


@pytest.mark.parametrize("d_norm", ["spectral", "batch"])
def test_each_update_touches_only_its_own_network(d_norm):
    cfg = CGANConfig(**{**TINY.__dict__, "d_norm": d_norm})
    state = make_state(cfg, n_classes=3, n_mels=40, n_frames=33, lo=LO, hi=HI)
    real, labels = torch.rand(4, 1, 40, 33) * (HI - LO) + LO, torch.tensor([0, 1, 2, 0])
    z, y = sample_inputs(state, 4, cfg.z_dim)

    g0, d0 = params(state.G), params(state.D)
    discriminator_step(state, real, labels, state.G(z, y), y, cfg)
    assert changed(g0, state.G) == []
    assert changed(d0, state.D), "the D step left D as it was"

    g0, d0 = params(state.G), params(state.D)
    generator_step(state, state.G(z, y), y, z, cfg)
    assert changed(d0, state.D) == []
    assert changed(g0, state.G), "the G step left G as it was"
    assert all(p.requires_grad for p in state.D.parameters())  # D unfrozen again


@pytest.mark.parametrize("loss", ["bce", "hinge"])
def test_train_step_returns_named_finite_losses(loss):
    cfg = CGANConfig(**{**TINY.__dict__, "loss": loss})
    state = make_state(cfg, n_classes=2, n_mels=16, n_frames=20, lo=LO, hi=HI)
    out = train_step(state, torch.zeros(4, 1, 16, 20), torch.tensor([0, 1, 0, 1]), cfg)
    assert set(out) == {"d_loss", "g_loss", "d_real", "d_fake", "mode_seeking"}
    assert all(isinstance(v, float) and math.isfinite(v) for v in out.values())
    assert state.step == 1


def test_fakes_come_in_same_class_pairs_for_the_mode_seeking_term():
    state = make_state(TINY, n_classes=5, n_mels=16, n_frames=20, lo=LO, hi=HI)
    z, y = sample_inputs(state, 6, TINY.z_dim)
    assert torch.equal(y[:3], y[3:]) and not torch.equal(z[:3], z[3:])
    same = torch.ones(4, 1, 8, 8)
    assert mode_seeking_penalty(same, z[:4]) > 1e4  # identical outputs: maximal penalty
    assert mode_seeking_penalty(same[:1], z[:1]) == 0  # no pair, no term


def run_tiny(seed: int) -> tuple[list[dict], dict, list[int]]:
    cfg = CGANConfig(**{**TINY.__dict__, "seed": seed})
    gen = torch.Generator().manual_seed(123)
    data, labels = torch.rand(10, 1, 16, 20, generator=gen) * (HI - LO) + LO, torch.arange(10) % 2
    state = make_state(cfg, n_classes=2, n_mels=16, n_frames=20, lo=LO, hi=HI)
    epochs: list[int] = []
    history = train_cgan(state, data.numpy(), labels.numpy(), cfg,
                         on_epoch=lambda epoch, st, record: epochs.append(epoch))
    return history, params(state.G), epochs


def test_train_cgan_is_deterministic_for_a_seed():
    h1, g1, epochs = run_tiny(seed=3)
    h2, g2, _ = run_tiny(seed=3)
    h3, _, _ = run_tiny(seed=4)
    assert epochs == [1, 2] and [r["epoch"] for r in h1] == [1, 2]
    assert h1 == h2 and all(torch.equal(g1[k], g2[k]) for k in g1)
    assert h1 != h3


def test_fixed_grid_and_checkpoint_round_trip():
    z, y = fixed_grid(n_classes=3, per_class=2, z_dim=16, seed=5)
    assert z.shape == (6, 16) and y.tolist() == [0, 0, 1, 1, 2, 2]
    assert torch.equal(z, fixed_grid(3, 2, 16, seed=5)[0])

    state = make_state(TINY, n_classes=3, n_mels=16, n_frames=20, lo=LO, hi=HI)
    train_step(state, torch.zeros(4, 1, 16, 20), torch.tensor([0, 1, 2, 0]), TINY)
    G = load_generator(checkpoint(state, TINY))
    assert torch.equal(generate(G, z, y), generate(state.G, z, y))
    assert state.G.training  # generate() restores the mode it found


def test_pictures_are_written(tmp_path):
    from sonic.generation.plots import save_grid, save_spectrogram

    specs = torch.rand(3 * 2, 1, 16, 20).numpy() * -80
    save_grid(specs, ("a", "b", "c"), per_class=2, path=tmp_path / "grid.png", title="epoch 1")
    save_spectrogram(specs[0], "one", tmp_path / "one.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.png", "one.png"]  # no temp left
    assert (tmp_path / "grid.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="3×3"):
        save_grid(specs, ("a", "b", "c"), per_class=3, path=tmp_path / "bad.png")


@pytest.mark.parametrize("upsample, checkerboard", [("resize", False), ("transpose", True)])
def test_resize_upsampling_leaves_no_checkerboard(upsample, checkerboard):
    """A flat input must come out flat: resize + conv gives every output pixel the same number
    of input taps; the stride-2, kernel-4 transposed conv alternates them (Odena et al. 2016)."""
    torch.manual_seed(0)
    block = UpBlock(8, 1, last=True, upsample=upsample)
    with torch.no_grad():
        out = block(torch.ones(1, 8, 8, 8))[0, 0, 2:-2, 2:-2]  # (12, 12) away from the borders
    spread = (out.max() - out.min()).item()
    assert (spread > 1e-3) == checkerboard
    if checkerboard:  # and the pattern has period 2
        assert torch.allclose(out[::2, ::2], out[0, 0].expand(6, 6), atol=1e-5)
