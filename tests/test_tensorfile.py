"""Checkpoint files of stable bytes (``sonic.tensorfile``): nested payloads round trip, the same
payload gives the same file, ``torch.save`` archives still load, and the inverter uses them."""
from __future__ import annotations

import hashlib

import pytest
import torch

from sonic.config import FeatureConfig, InvertConfig
from sonic.generation.inverter_net import MelInverter, load_inverter, save_inverter
from sonic.tensorfile import load_payload, save_payload


def md5(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def payload() -> dict:
    gen = torch.Generator().manual_seed(0)
    return {"name": "x", "cfg": {"widths": [8, 16], "pool": None}, "empty": {},
            "weights": {"a.weight": torch.randn(3, 2, generator=gen),
                        "a.count": torch.tensor(7), "b": {"half": torch.ones(2).bfloat16()}},
            "score": 0.1 + 0.2}


def test_a_nested_payload_round_trips_in_order(tmp_path):
    save_payload(tmp_path / "p.pt", payload())
    back, want = load_payload(tmp_path / "p.pt"), payload()
    assert list(back) == list(want)
    assert back["cfg"] == want["cfg"] and back["empty"] == {} and back["score"] == want["score"]
    assert torch.equal(back["weights"]["a.weight"], want["weights"]["a.weight"])
    assert back["weights"]["a.count"].dtype == torch.int64
    assert back["weights"]["b"]["half"].dtype == torch.bfloat16


def test_the_same_payload_gives_the_same_bytes_and_torch_save_does_not(tmp_path):
    save_payload(tmp_path / "a.pt", payload())
    save_payload(tmp_path / "b.pt", payload())
    assert md5(tmp_path / "a.pt") == md5(tmp_path / "b.pt")
    torch.save(payload(), tmp_path / "c.pt")
    torch.save(payload(), tmp_path / "d.pt")
    assert md5(tmp_path / "c.pt") != md5(tmp_path / "d.pt")  # the random record id
    assert load_payload(tmp_path / "c.pt")["cfg"] == payload()["cfg"]  # old files still load


def test_keys_that_cannot_be_stored_are_named(tmp_path):
    with pytest.raises(TypeError, match="key 'a/b'"):
        save_payload(tmp_path / "p.pt", {"a/b": torch.ones(1)})
    with pytest.raises(TypeError, match="key 3 at opt"):
        save_payload(tmp_path / "p.pt", {"opt": {3: torch.ones(1)}})
    with pytest.raises(TypeError, match="p.pt: checkpoint metadata must be JSON"):
        save_payload(tmp_path / "p.pt", {"when": object()})
    assert not (tmp_path / "p.pt").exists()


def test_an_inverter_saved_twice_gives_one_file_that_rebuilds_it(tmp_path):
    features, cfg = FeatureConfig(n_mels=16, n_fft=256, hop_length=128), InvertConfig(hidden=8)
    torch.manual_seed(0)
    model = MelInverter(cfg, features).eval()
    save_inverter(tmp_path / "a.pt", model, cfg, features)
    save_inverter(tmp_path / "b.pt", model, cfg, features)
    assert md5(tmp_path / "a.pt") == md5(tmp_path / "b.pt")
    mel = torch.randn(2, 16, 10) * 10 - 40  # (B, n_mels, T) dB
    with torch.no_grad():
        assert torch.equal(load_inverter(tmp_path / "a.pt")(mel), model(mel))
