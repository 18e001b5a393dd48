"""Classifier registry, shapes, parameter counts, one optimizer step, bf16, pretrained loading."""
from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from sonic.config import CNNConfig, ResNetConfig
from sonic.models import MODELS, AudioResNet, build_model, load_pretrained

N_CLASSES = 10
DEFAULT = {"cnn": CNNConfig(), "resnet": ResNetConfig()}
# The full-size models of the seed project (params.yaml's defaults are narrower, for the demo):
# the 18 M-parameter CNN and torchvision's ResNet-18 widths, which pretrained weights need.
FULL = {"cnn": CNNConfig(widths=(64, 128, 256, 512), fc=(1024, 512, 256), pool=(4, 6)),
        "resnet": ResNetConfig(widths=(64, 128, 256, 512))}
# Narrow versions, fast enough on a shared CPU; dropout off so one step is deterministic.
SMALL = {
    "cnn": CNNConfig(widths=(8, 16, 16, 32), fc=(32, 16), pool=(2, 3), dropout=0.0, fc_dropout=0.0),
    "resnet": ResNetConfig(blocks=(1, 1, 1, 1), widths=(8, 16, 16, 32), dropout=0.0),
}
EMBED_DIM = {"cnn": (256, 16), "resnet": (256, 32)}  # (default, small)


@pytest.fixture(scope="module")
def tv_models():
    """torchvision's reference ResNets (a test-only dependency)."""
    return pytest.importorskip("torchvision.models")


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def make(name: str, cfg, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(name, cfg, N_CLASSES)


# ------------------------------------------------------------------------------- registry
def test_registry_names_and_unknown_name():
    assert set(MODELS) == {"cnn", "resnet"}
    with pytest.raises(ValueError, match="unknown model 'vgg'.*cnn, resnet"):
        build_model("vgg", CNNConfig(), N_CLASSES)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_rebuild_from_stored_config(name):
    model = make(name, SMALL[name])
    rebuilt = build_model(name, dataclasses.asdict(model.cfg), N_CLASSES)
    assert rebuilt.cfg == model.cfg
    assert type(rebuilt) is type(model)
    rebuilt.load_state_dict(model.state_dict())  # same keys and shapes


# --------------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("name", sorted(MODELS))
def test_forward_shapes_default_size(name):
    model = make(name, DEFAULT[name]).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 1, 64, 108))
    assert out["logits"].shape == (2, N_CLASSES)
    assert out["embedding"].shape == (2, EMBED_DIM[name][0]) == (2, model.embedding_dim)
    assert torch.isfinite(out["logits"]).all()


@pytest.mark.parametrize("shape", [(2, 1, 32, 40), (3, 1, 16, 21)])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_forward_shapes_small_input(name, shape):
    model = make(name, SMALL[name]).eval()
    with torch.no_grad():
        out = model(torch.randn(*shape))
    assert out["logits"].shape == (shape[0], N_CLASSES)
    assert out["embedding"].shape == (shape[0], EMBED_DIM[name][1])


@pytest.mark.parametrize("name", sorted(MODELS))
def test_embedding_is_what_the_classifier_reads(name):
    """The embedding is the penultimate representation: the last Linear applied to it gives the
    logits (dropout is the identity in eval mode)."""
    model = make(name, SMALL[name]).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 1, 32, 40))
    head = model.classifier if name == "cnn" else model.fc
    torch.testing.assert_close(head(out["embedding"]), out["logits"])


def test_resnet_without_the_stem_pool_has_the_same_weights_and_twice_the_map_each_way():
    pooled = make("resnet", SMALL["resnet"]).eval()
    unpooled = make("resnet", dataclasses.replace(SMALL["resnet"], stem_pool=False)).eval()
    unpooled.load_state_dict(pooled.state_dict())  # same keys and shapes: a pool has no weights
    maps = {}
    for name, model in (("pooled", pooled), ("unpooled", unpooled)):
        model.layer4.register_forward_hook(lambda m, i, o, name=name: maps.__setitem__(name, o))
        with torch.no_grad():
            model(torch.randn(1, 1, 64, 160))
    assert maps["pooled"].shape == (1, 32, 2, 5)  # n_mels / 32, T / 32
    assert maps["unpooled"].shape == (1, 32, 4, 10)  # n_mels / 16, T / 16


# ----------------------------------------------------------------------------- parameters
def test_cnn_parameter_count():
    model = make("cnn", FULL["cnn"])
    # convs (no bias, BN after) 4,686,144 + FC 12288→1024→512→256 13,240,064 + 256→10 2,570
    assert n_params(model) == 17_928_778
    assert n_params(model) >= 15_000_000  # the seed project's "15M+" figure


def test_resnet18_parameter_count_matches_torchvision(tv_models):
    ours = make("resnet", FULL["resnet"])
    ref = tv_models.resnet18(weights=None, num_classes=N_CLASSES)
    # Only difference: one input channel instead of three in the 64 × 7 × 7 stem.
    assert n_params(ours) == n_params(ref) - 64 * 2 * 49 == 11_175_370
    ours_sd, ref_sd = ours.state_dict(), ref.state_dict()
    assert list(ours_sd) == list(ref_sd)  # same names, same order
    assert all(ours_sd[k].shape == ref_sd[k].shape for k in ref_sd if k != "conv1.weight")


def test_resnet34_layout_matches_torchvision_names(tv_models):
    ours = AudioResNet(ResNetConfig(blocks=(3, 4, 6, 3)), N_CLASSES)
    assert list(ours.state_dict()) == list(tv_models.resnet34(weights=None).state_dict())


# ------------------------------------------------------------------------------- training
@pytest.mark.parametrize("name", sorted(MODELS))
def test_one_adamw_step_lowers_loss(name):
    model = make(name, SMALL[name]).train()
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(8, 1, 32, 40, generator=gen)
    y = torch.arange(8) % N_CLASSES
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    loss = F.cross_entropy(model(x)["logits"], y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    with torch.no_grad():
        after = F.cross_entropy(model(x)["logits"], y)
    assert after.item() < loss.item()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_channels_last_bf16_autocast(name):
    model = make(name, SMALL[name]).to(memory_format=torch.channels_last).eval()
    x = torch.randn(2, 1, 32, 40).to(memory_format=torch.channels_last)
    with torch.no_grad():
        ref = model(x.contiguous())["logits"]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(x)
    assert out["logits"].shape == (2, N_CLASSES)
    assert torch.isfinite(out["logits"].float()).all()
    assert torch.isfinite(out["embedding"].float()).all()
    # bf16 keeps ~3 significant digits: the logits must still be close to fp32's.
    torch.testing.assert_close(out["logits"].float(), ref, atol=0.1, rtol=0.1)


# ----------------------------------------------------------------------------- pretrained
def test_load_torchvision_resnet18(tmp_path, tv_models):
    torch.manual_seed(3)
    ref = tv_models.resnet18(weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save(ref.state_dict(), path)

    torch.manual_seed(0)
    fresh_fc = AudioResNet(FULL["resnet"], N_CLASSES).fc.weight.detach().clone()
    torch.manual_seed(0)  # same seed: the fc should come out exactly as it would without loading
    model = AudioResNet(dataclasses.replace(FULL["resnet"], pretrained=str(path)), N_CLASSES)

    sd = model.state_dict()
    torch.testing.assert_close(sd["conv1.weight"], ref.conv1.weight.mean(dim=1, keepdim=True))
    for key, value in ref.state_dict().items():
        if key != "conv1.weight" and not key.startswith("fc."):
            assert torch.equal(sd[key], value), key
    assert sd["fc.weight"].shape == (N_CLASSES, 512)
    assert torch.equal(sd["fc.weight"], fresh_fc)


def test_load_wrapped_resnet34(tmp_path, tv_models):
    torch.manual_seed(4)
    ref = tv_models.resnet34(weights=None)
    path = tmp_path / "resnet34.pt"
    torch.save({"state_dict": ref.state_dict(), "epoch": 3}, path)

    model = AudioResNet(dataclasses.replace(FULL["resnet"], blocks=(3, 4, 6, 3)), N_CLASSES)
    load_pretrained(model, path)
    assert torch.equal(model.layer3[5].conv2.weight, ref.layer3[5].conv2.weight)
    ours_bn, ref_bn = model.layer2[0].downsample[1], ref.layer2[0].downsample[1]
    assert torch.equal(ours_bn.running_var, ref_bn.running_var)


def test_mismatched_layout_raises_clear_error(tmp_path, tv_models):
    path = tmp_path / "resnet34.pth"
    torch.save(tv_models.resnet34(weights=None).state_dict(), path)
    model = AudioResNet(FULL["resnet"], N_CLASSES)
    with pytest.raises(ValueError) as err:
        load_pretrained(model, path)
    msg = str(err.value)
    assert "resnet34.pth" in msg
    assert "unexpected layer1.2." in msg
    assert "blocks (3, 4, 6, 3)" in msg and "(2, 2, 2, 2)" in msg
