"""The conditional GAN: shapes, output range, which weights each update touches, determinism."""
import math

import pytest
import torch

from sonic.config import CGANConfig
from sonic.generation.gan import Discriminator, Generator, UpBlock, diff_augment, minibatch_stddev
from sonic.generation.state import (
    checkpoint,
    fixed_grid,
    generate,
    load_generator,
    make_state,
    sampling_generator,
)
from sonic.generation.trainer import (
    discriminator_step,
    generator_step,
    mode_seeking_penalty,
    sample_inputs,
    train_cgan,
    train_step,
)
from sonic.training.resume import ResumeFile

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
    assert set(out) == {"d_loss", "g_loss", "d_real", "d_fake", "mode_seeking", "d_aux", "g_aux"}
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
    assert torch.equal(generate(G, z, y), generate(state.sampler, z, y))  # the average
    assert state.G.training  # generate() restores the mode it found



def test_the_gan_file_has_stable_bytes_no_pickle_and_samples_as_the_state(tmp_path):
    """``save_generator`` twice on one state: equal md5s (DVC keeps the stages below cached
    after a forced re-run); safetensors + JSON, so loading unpickles nothing; the rebuilt
    generator samples as the state's standing-statistics sampler does."""
    import hashlib

    from safetensors import safe_open

    from sonic.generation.state import load_gan_checkpoint, save_generator

    cfg = CGANConfig(**{**TINY.__dict__, "standing_batches": 2})
    state = make_state(cfg, n_classes=3, n_mels=16, n_frames=20, lo=LO, hi=HI)
    train_step(state, torch.zeros(4, 1, 16, 20), torch.tensor([0, 1, 2, 0]), cfg)
    for name in ("a.pt", "b.pt"):
        save_generator(tmp_path / name, state, cfg, ["x", "y", "z"], -40.0, 12.5)
    a, b = ((tmp_path / n).read_bytes() for n in ("a.pt", "b.pt"))
    assert hashlib.md5(a).hexdigest() == hashlib.md5(b).hexdigest()
    assert not a.startswith(b"PK")  # not a torch.save (zip + pickle) archive
    with safe_open(tmp_path / "a.pt", "pt") as f:
        assert any(k.startswith("G_sample/") for k in f.keys())
    ckpt = load_gan_checkpoint(tmp_path / "a.pt")
    assert ckpt["classes"] == ["x", "y", "z"] and (ckpt["mean"], ckpt["std"]) == (-40.0, 12.5)
    assert "opt_g" not in ckpt  # optimisers live in the resume file only
    z, y = fixed_grid(3, 2, cfg.z_dim, seed=1)
    assert torch.equal(generate(load_generator(ckpt), z, y),
                       generate(sampling_generator(state, cfg), z, y))
    with pytest.raises(FileNotFoundError, match="dvc repro train_cgan"):
        load_gan_checkpoint(tmp_path / "missing.pt")

def test_pictures_are_written(tmp_path):
    from sonic.generation.spectrogram_plots import save_grid, save_spectrogram

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
        out = block(torch.ones(1, 8, 8, 8), torch.zeros(1, dtype=torch.long))
    out = out[0, 0, 2:-2, 2:-2]  # (12, 12) away from the borders
    spread = (out.max() - out.min()).item()
    assert (spread > 1e-3) == checkerboard
    if checkerboard:  # and the pattern has period 2
        assert torch.allclose(out[::2, ::2], out[0, 0].expand(6, 6), atol=1e-5)


def test_class_batch_norm_carries_the_label_into_the_hidden_layers():
    """With ``cond_bn`` a class's own scale in a hidden block changes that class's samples
    only; without it the label has no way in below the first layer."""
    torch.manual_seed(0)
    g = Generator(TINY, n_classes=3, n_mels=16, n_frames=20, lo=LO, hi=HI).eval()
    z, y = torch.randn(6, TINY.z_dim), torch.tensor([0, 1, 2, 0, 1, 2])
    before = g(z, y)
    with torch.no_grad():
        g.blocks[1].norm.gain.weight[1] *= 3.0
    after = g(z, y)
    moved = (after - before).abs().flatten(1).amax(1)
    assert (moved[y == 1] > 1e-3).all() and (moved[y != 1] == 0).all()

    plain = Generator(CGANConfig(**{**TINY.__dict__, "cond_bn": False}), 3, 16, 20, LO, HI)
    assert not any("gain" in k or "bias.weight" in k for k in plain.state_dict())


def test_the_class_head_learns_real_labels_from_the_sound_not_the_label_plane():
    """AC-GAN: D's class head, trained on real clips only, separates two classes that differ
    in loudness; its answer cannot depend on a claimed label (there is none to give it)."""
    cfg = CGANConfig(**{**TINY.__dict__, "aux_weight": 1.0})
    state = make_state(cfg, n_classes=2, n_mels=16, n_frames=20, lo=LO, hi=HI)
    gen = torch.Generator().manual_seed(0)
    y = torch.arange(16) % 2
    real = (y.float() * 2 - 1)[:, None, None, None] + 0.3 * torch.randn(16, 1, 16, 20,
                                                                       generator=gen)
    for _ in range(30):
        z, fy = sample_inputs(state, 16, cfg.z_dim)
        losses = discriminator_step(state, real, y, state.G(z, fy), fy, cfg)
    assert losses["d_aux"] < 0.1
    with torch.no_grad():
        assert (state.D.class_logits(real).argmax(1) == y).all()
    out = train_step(state, real[:4], y[:4], cfg)
    assert {"d_aux", "g_aux"} <= set(out) and math.isfinite(out["g_aux"])
    plain = CGANConfig(**{**TINY.__dict__, "aux_weight": 0.0})
    with pytest.raises(ValueError, match="aux_weight"):
        make_state(plain, 2, 16, 20, LO, HI).D.class_logits(real)
    assert set(train_step(make_state(plain, 2, 16, 20, LO, HI), real[:4], y[:4], plain)) == {
        "d_loss", "g_loss", "d_real", "d_fake", "mode_seeking"}


def test_the_twin_head_learns_the_fakes_labels_and_the_generator_climbs_its_loss():
    """TAC-GAN: with ``aux_twin`` a second class head learns the labels of fakes (D step), and
    the generator's update is the AC-GAN one plus ``aux_weight`` × the twin's cross-entropy
    gradient *ascended* (checked with plain SGD, where the step is minus the gradient)."""
    cfg = CGANConfig(**{**TINY.__dict__, "aux_weight": 0.5, "aux_twin": True, "ema": 0.0})
    state = make_state(cfg, n_classes=2, n_mels=16, n_frames=20, lo=LO, hi=HI)
    gen = torch.Generator().manual_seed(0)
    y = torch.arange(16) % 2
    real = torch.randn(16, 1, 16, 20, generator=gen)
    fake = (y.float() * 2 - 1)[:, None, None, None] + 0.3 * torch.randn(16, 1, 16, 20,
                                                                       generator=gen)
    for _ in range(30):
        losses = discriminator_step(state, real, y, fake, y, cfg)
    assert losses["d_twin"] < 0.1
    with torch.no_grad():
        assert (state.D.class_logits(fake, twin=True).argmax(1) == y).all()
    assert any(k.startswith("classify_fake") for k in state.D.state_dict())
    plain_d = Discriminator(CGANConfig(embed_dim=8, d_width=8), 2, 16, 20)
    with pytest.raises(ValueError, match="no twin head"):
        plain_d.class_logits(real, twin=True)

    without = make_state(cfg, n_classes=2, n_mels=16, n_frames=20, lo=LO, hi=HI)
    without.G.load_state_dict(state.G.state_dict()), without.D.load_state_dict(state.D.state_dict())
    without.D.classify_fake = None
    state.D.eval(), without.D.eval()  # no power iteration: both D's stay equal
    z, fy = sample_inputs(state, 8, cfg.z_dim)
    steps, reported = {}, {}
    for name, s in (("twin", state), ("plain", without)):
        before = params(s.G)
        s.opt_g = torch.optim.SGD(s.G.parameters(), lr=1.0)
        reported[name] = generator_step(s, s.G(z, fy), fy, z, cfg)
        steps[name] = {k: v - before[k] for k, v in params(s.G).items()}
    assert "g_twin" in reported["twin"] and "g_twin" not in reported["plain"]
    G = make_state(cfg, 2, 16, 20, LO, HI).G
    G.load_state_dict({**state.G.state_dict(), **{k: v - steps["twin"][k]
                                                   for k, v in params(state.G).items()}})
    twin_ce = torch.nn.functional.cross_entropy(state.D.class_logits(G(z, fy), twin=True), fy)
    grads = torch.autograd.grad(twin_ce, list(G.parameters()))
    for (k, _), g in zip(G.named_parameters(), grads):
        torch.testing.assert_close(steps["twin"][k] - steps["plain"][k], cfg.aux_weight * g,
                                   rtol=1e-3, atol=1e-6)


def test_minibatch_stddev_lets_the_discriminator_see_a_batch_of_copies():
    """The appended channel is each consecutive group's mean feature spread: zero for copies,
    the spread of its own group otherwise; D's verdict on a clip then depends on its mates."""
    h = torch.randn(8, 3, 2, 5, generator=torch.Generator().manual_seed(0))
    out = minibatch_stddev(h, 4)
    assert out.shape == (8, 4, 2, 5) and torch.equal(out[:, :3], h)
    spread = [h[i:i + 4].std(dim=0, unbiased=False).mean() for i in (0, 4)]
    torch.testing.assert_close(out[:, 3, 0, 0], torch.stack(spread).repeat_interleave(4))
    assert (minibatch_stddev(h[:1].expand(8, -1, -1, -1), 4)[:, 3] < 1e-3).all()
    assert minibatch_stddev(h[:6], 4).shape == (6, 4, 2, 5)  # groups of gcd(6, 4) = 2

    torch.manual_seed(0)
    d = Discriminator(CGANConfig(embed_dim=8, d_width=8, d_mbstd=4), 3, 16, 20).eval()
    x = torch.randn(4, 1, 16, 20)
    copies = x[:1].expand(4, -1, -1, -1)
    with torch.no_grad():
        assert not torch.allclose(d.features(x, None)[0], d.features(copies, None)[0])


@pytest.mark.parametrize("coords", [False, True])
def test_only_a_discriminator_with_coordinates_sees_where_a_sound_sits(coords):
    """The same burst 16 frames (one stride of 2**4) later: convolutions and sum pooling give
    identical features when the burst's receptive field stays clear of the edges; the time and
    mel-bin ramps of ``d_coords`` make the position visible."""
    torch.manual_seed(0)
    d = Discriminator(CGANConfig(embed_dim=8, d_width=8, d_coords=coords), 3, 16, 160).eval()
    early, late = torch.zeros(2, 1, 1, 16, 160)
    early[..., 4:12, 46:50] = late[..., 4:12, 62:66] = 3.0
    with torch.no_grad():
        a, b = d.features(early, None), d.features(late, None)
    assert torch.allclose(a, b, rtol=1e-4, atol=1e-5) is not coords
    assert not any("coords" in k for k in d.state_dict())  # fixed ramps, not checkpointed


def test_the_averaged_generator_follows_g_with_a_warm_up():
    """w_ema ← d·w_ema + (1 − d)·w, d = min(ema, (1 + step)/(10 + step)); BN statistics copied;
    checkpoints sample from the average; ``ema: 0`` samples from G itself."""
    cfg = CGANConfig(**{**TINY.__dict__, "ema": 0.9})
    state = make_state(cfg, n_classes=2, n_mels=16, n_frames=20, lo=LO, hi=HI)
    assert state.sampler is state.G_ema and all(not p.requires_grad
                                                for p in state.G_ema.parameters())
    w_avg = {k: v.clone() for k, v in state.G_ema.state_dict().items()}
    train_step(state, torch.zeros(4, 1, 16, 20), torch.tensor([0, 1, 0, 1]), cfg)
    d = min(0.9, 1 / 10)  # step 0 at the time of the update
    w, avg = state.G.state_dict(), state.G_ema.state_dict()
    for k, v in avg.items():
        if k.endswith(("running_mean", "running_var", "num_batches_tracked")):
            assert torch.equal(v, w[k])
        elif v.is_floating_point():
            torch.testing.assert_close(v, d * w_avg[k] + (1 - d) * w[k])
    assert not torch.equal(avg["fc.weight"], w["fc.weight"])

    z, y = fixed_grid(2, 2, TINY.z_dim, seed=0)
    assert torch.equal(generate(load_generator(checkpoint(state, cfg)), z, y),
                       generate(state.G_ema, z, y))
    plain = make_state(CGANConfig(**{**TINY.__dict__, "ema": 0.0}), 2, 16, 20, LO, HI)
    assert plain.G_ema is None and plain.sampler is plain.G
    assert checkpoint(plain, TINY)["G_ema"] is None


def test_standing_statistics_are_the_samplers_own_and_leave_the_state_alone():
    """The sampling copy's BN statistics are averages over its own samples' batches (so they
    differ from the inherited ones), deterministic, and computing them changes nothing in the
    state; with 0 batches the copy keeps the inherited statistics."""
    cfg = CGANConfig(**{**TINY.__dict__, "standing_batches": 20})
    state = make_state(cfg, n_classes=2, n_mels=16, n_frames=20, lo=LO, hi=HI)
    for _ in range(3):
        train_step(state, torch.zeros(4, 1, 16, 20), torch.tensor([0, 1, 0, 1]), cfg)
    before = {k: v.clone() for k, v in state.G_ema.state_dict().items()}
    a, b = sampling_generator(state, cfg), sampling_generator(state, cfg)
    assert all(torch.equal(v, state.G_ema.state_dict()[k]) for k, v in before.items())
    assert not a.training and a.fc_norm.bn.momentum == state.G_ema.fc_norm.bn.momentum
    assert torch.equal(a.fc_norm.bn.running_mean, b.fc_norm.bn.running_mean)
    assert not torch.allclose(a.fc_norm.bn.running_mean, before["fc_norm.bn.running_mean"])

    # the standing mean is the average of the per-batch means the sampler's own batches give
    with torch.no_grad():
        copy_ = load_generator(checkpoint(state, cfg) | {"G_sample": a.state_dict()})
        assert torch.equal(copy_.fc_norm.bn.running_mean, a.fc_norm.bn.running_mean)
        rng, means = torch.Generator().manual_seed(cfg.seed), []
        G = state.G_ema
        for i in range(cfg.standing_batches):
            z = torch.randn(cfg.batch_size, cfg.z_dim, generator=rng)
            y = (torch.arange(cfg.batch_size) + i * cfg.batch_size) % 2
            h = G.fc(torch.cat([z, G.embed(y)], 1)).view(-1, G.width, G.h0, G.w0)
            means.append(h.mean(dim=(0, 2, 3)))
    torch.testing.assert_close(a.fc_norm.bn.running_mean, torch.stack(means).mean(0))

    off = sampling_generator(state, CGANConfig(**{**cfg.__dict__, "standing_batches": 0}))
    assert torch.equal(off.fc_norm.bn.running_mean, before["fc_norm.bn.running_mean"])


def test_diff_augment_shifts_and_masks_each_clip_and_passes_the_gradient():
    """Every cell of an augmented clip is either silence or the cell of the same mel bin a
    shift of at most T/8 frames earlier; with p = 1 each clip also loses one time band of T/8
    frames and one mel band of M/8 bins; the gradient reaches exactly the cells still shown;
    p = 0 is the identity and draws nothing."""
    b, m, t, floor = 64, 16, 40, -5.0
    code = (1000 * torch.arange(m)[:, None] + torch.arange(t)[None] + 1).float()  # unique > 0
    x = code.expand(b, 1, m, t).clone().requires_grad_(True)
    rng = torch.Generator().manual_seed(0)
    before = rng.get_state()
    assert diff_augment(x, 0.0, rng, floor) is x and torch.equal(rng.get_state(), before)

    out = diff_augment(x, 1.0, rng, floor)
    again = diff_augment(x, 1.0, torch.Generator().manual_seed(0), floor)
    assert torch.equal(out, again)  # the same draws give the same clips
    shown = out[:, 0] != floor
    bins, frames = out[:, 0].detach() // 1000, out[:, 0].detach() % 1000 - 1
    shifts = set()
    for i in range(b):
        assert torch.equal(bins[i][shown[i]], torch.arange(m)[:, None].expand(m, t)[shown[i]])
        shift = (torch.arange(t)[None].expand(m, t) - frames[i])[shown[i]].unique()
        assert len(shift) == 1 and abs(shift.item()) <= t // 8
        shifts.add(shift.item())
        assert (~shown[i]).all(dim=0).sum() >= t // 8  # a masked time band
        assert (~shown[i]).all(dim=1).sum() >= m // 8  # a masked mel band
    assert len(shifts) > 4  # clips are shifted independently
    out.sum().backward()
    assert x.grad.sum() == shown.sum()  # one unit of gradient per cell still shown

    half = diff_augment(x.detach(), 0.5, rng, floor)
    untouched = (half == x.detach()).flatten(1).all(1).float().mean()
    assert 0.03 < untouched < 0.3  # no op on a clip: 0.5 ** 3 = 0.125 expected


def test_diff_augment_leaves_out_the_ops_not_named_and_draws_the_same():
    """Without ``"time"`` no clip loses a time band (only the frames a shift vacates go silent)
    and every other cell is what the three ops would have made; with ``"shift"`` only, no mel
    band is masked either."""
    b, m, t, floor = 32, 16, 40, -5.0
    x = (1000 * torch.arange(m)[:, None] + torch.arange(t)[None] + 1).float().expand(b, 1, m, t)
    every = diff_augment(x, 1.0, torch.Generator().manual_seed(3), floor)
    no_time = diff_augment(x, 1.0, torch.Generator().manual_seed(3), floor, ("shift", "mel"))
    shift = diff_augment(x, 1.0, torch.Generator().manual_seed(3), floor, ("shift",))
    assert torch.equal(no_time[every != floor], every[every != floor])  # same shift, same band
    for i in range(b):
        silent_frames = (shift[i, 0] == floor).all(dim=0)
        vacated = silent_frames.sum().item()
        assert vacated <= t // 8  # the frames a shift vacates, at one end
        assert silent_frames[:vacated].all() or silent_frames[t - vacated:].all()
        assert not (shift[i, 0] == floor).all(dim=1).any()  # no mel band masked
        assert torch.equal((no_time[i, 0] == floor).all(dim=0), silent_frames)  # no time band
        assert (no_time[i, 0] == floor).all(dim=1).sum() == m // 8  # the mel band


def test_augmenting_the_discriminators_view_trains_and_resumes_deterministically(tmp_path, capsys):
    """With ``d_augment`` the augmentations come from the state's RNG: two runs agree, a run
    stopped after epoch 1 and resumed agrees with an uninterrupted one, and the losses differ
    from a run that shows D the clips as they are."""
    cfg = CGANConfig(**{**TINY.__dict__, "d_augment": 0.5})
    data, labels = torch.randn(8, 1, 16, 20), torch.tensor([0, 1] * 4)
    runs = []
    for _ in range(2):
        state = make_state(cfg, 2, 16, 20, LO, HI)
        runs.append((train_cgan(state, data, labels, cfg), state.G.state_dict()))
    resume = ResumeFile(tmp_path / "state.pt", "key")
    first = CGANConfig(**{**cfg.__dict__, "epochs": 1})
    train_cgan(make_state(first, 2, 16, 20, LO, HI), data, labels, first, resume=resume)
    state = make_state(cfg, 2, 16, 20, LO, HI)
    runs.append((train_cgan(state, data, labels, cfg, resume=resume), state.G.state_dict()))
    assert "resuming after epoch 1" in capsys.readouterr().out
    for history, weights in runs[1:]:
        assert history == runs[0][0]
        assert all(torch.equal(v, weights[k]) for k, v in runs[0][1].items())
    plain = make_state(TINY, 2, 16, 20, LO, HI)
    assert train_cgan(plain, data, labels, TINY) != runs[0][0]
