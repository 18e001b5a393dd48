"""Training past one process and past a kill: streaming batches from memory maps, resume after
SIGKILL (classifiers and cGAN) to the uninterrupted result, stale resume states ignored, and
2-process DDP (gloo, through torchrun) against 1 process."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from sonic.config import CNNConfig, TrainConfig, to_dict
from sonic.models import build_model
from sonic.tensorfile import load_payload
from sonic.training.data import MelSet, db_stats
from sonic.training.loop import fit
from sonic.training.resume import ResumeFile, fingerprint

REPO = Path(__file__).resolve().parents[1]
TINY_CNN = CNNConfig(widths=(8, 8), fc=(16,), pool=(1, 1), dropout=0.2, fc_dropout=0.2)


def toy(n: int = 48, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, 16, 20) dB spectrograms of three classes (a loud band low, middle or high)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    db = rng.normal(-60, 5, (n, 16, 20)).astype(np.float32)
    for i, c in enumerate(y):
        db[i, 5 * c:5 * c + 5] += 30
    return db, y


def test_melset_reads_batches_from_a_memory_map_without_copying_it(tmp_path):
    db, y = toy(30)
    np.save(tmp_path / "mels.npy", db)
    mm = np.load(tmp_path / "mels.npy", mmap_mode="r")
    rows = np.array([3, 7, 1, 20, 11])
    extra = np.arange(4)
    data = MelSet([(mm, rows), (db[20:], extra)], np.r_[y[rows], y[20:24]], -50.0, 10.0)
    assert len(data) == 9
    x, labels = data[[8, 0, 4, 5]]  # across both parts, out of order
    expected = (db[[23, 3, 11, 20]] + 50.0) / 10.0
    np.testing.assert_allclose(x[:, 0].numpy(), expected, rtol=1e-6)
    assert labels.tolist() == [y[23], y[3], y[11], y[20]]
    one, label = data[2]
    assert one.shape == (1, 16, 20) and label == y[1]
    sub = data.take([1, 6, 8])
    assert len(sub) == 3 and sub[[0, 1, 2]][1].tolist() == [y[7], y[21], y[23]]
    mean, std = db_stats(mm, rows)
    assert mean == pytest.approx(db[rows].astype(np.float64).mean(), abs=1e-9)
    assert std == pytest.approx(db[rows].astype(np.float64).std(), abs=1e-9)


KILLED_RUN = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    import numpy as np, torch
    sys.path.insert(0, {tests!r})
    from test_scale import toy, tiny_fit_args
    from sonic.training.data import MelSet
    from sonic.training.loop import fit
    from sonic.training.resume import ResumeFile

    resume, out, kill_at = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    marker = resume.with_suffix(".killed")

    def on_epoch(record):
        if record["epoch"] == kill_at and not marker.exists():
            marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)  # before this epoch's state is saved

    model, train, val, cfg = tiny_fit_args()
    result = fit(model, train, val, cfg, torch.device("cpu"), on_epoch=on_epoch,
                 resume=ResumeFile(resume, "key"))
    torch.save({{"history": result.history, "best": result.best_state,
                "best_epoch": result.best_epoch, "resumed_from": result.resumed_from}}, out)
""")


def tiny_fit_args():
    db, y = toy(48)
    mean, std = float(db.mean()), float(db.std())
    torch.manual_seed(0)
    model = build_model("cnn", TINY_CNN, 3)
    cfg = TrainConfig(epochs=6, batch_size=8, lr=3e-3, precision="fp32", patience=3,
                      mixup_prob=0.5, freq_mask_width=3, time_mask_width=3)
    return (model, MelSet.of(db[:36], y[:36], mean, std), MelSet.of(db[36:], y[36:], mean, std),
            cfg)



def run_script(tmp_path: Path, name: str, *args: str) -> subprocess.CompletedProcess:
    script = tmp_path / f"{name}.py"
    script.write_text(KILLED_RUN.format(tests=str(REPO / "tests")))
    return subprocess.run([sys.executable, str(script), *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300)


def test_a_run_killed_after_an_epoch_resumes_to_the_uninterrupted_result(tmp_path):
    straight = run_script(tmp_path, "straight", str(tmp_path / "a.resume"),
                          str(tmp_path / "a.pt"), "0")
    assert straight.returncode == 0, straight.stderr
    killed = run_script(tmp_path, "killed", str(tmp_path / "b.resume"), str(tmp_path / "b.pt"),
                        "3")
    assert killed.returncode == -9  # SIGKILL, in epoch 3: epochs 1-2 are saved
    again = run_script(tmp_path, "killed", str(tmp_path / "b.resume"), str(tmp_path / "b.pt"),
                       "3")
    assert again.returncode == 0, again.stderr
    assert "resuming after epoch 2" in again.stdout + again.stderr
    a, b = (torch.load(tmp_path / n, weights_only=True) for n in ("a.pt", "b.pt"))
    assert b["resumed_from"] == 2 and a["resumed_from"] == 0
    assert a["history"] == b["history"] and a["best_epoch"] == b["best_epoch"]
    assert all(torch.equal(a["best"][k], b["best"][k]) for k in a["best"])


def test_a_resume_state_of_other_params_data_or_code_is_ignored(tmp_path, capsys):
    model, train, val, cfg = tiny_fit_args()
    cfg = TrainConfig(**{**to_dict(cfg), "epochs": 2})
    stale = ResumeFile(tmp_path / "state.pt", "old key")
    fit(model, train, val, cfg, torch.device("cpu"), resume=stale)
    assert stale.load() is not None  # a finished fit leaves it; the stage deletes it
    fresh = fit(*tiny_fit_args()[:3], cfg, torch.device("cpu"),
                resume=ResumeFile(tmp_path / "state.pt", "new key"))
    assert fresh.resumed_from == 0 and len(fresh.history) == 2
    assert "other params, data or code" in capsys.readouterr().err


def test_fingerprint_follows_params_bytes_and_code(tmp_path):
    data, code = tmp_path / "mels.npy", tmp_path / "code"
    data.write_bytes(b"abc")
    code.mkdir()
    (code / "loop.py").write_text("x = 1\n")
    (code / "note.txt").write_text("not code\n")
    key = fingerprint({"lr": 1e-3}, [data], [code])
    assert key == fingerprint({"lr": 1e-3}, [data], [code])
    assert key != fingerprint({"lr": 2e-3}, [data], [code])
    (code / "note.txt").write_text("still not code\n")
    assert key == fingerprint({"lr": 1e-3}, [data], [code])
    (code / "loop.py").write_text("x = 2\n")
    changed_code = fingerprint({"lr": 1e-3}, [data], [code])
    data.write_bytes(b"abd")
    assert len({key, changed_code, fingerprint({"lr": 1e-3}, [data], [code])}) == 3


GAN_RUN = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    import numpy as np, torch
    from sonic.config import CGANConfig
    from sonic.generation.state import make_state
    from sonic.generation.trainer import train_cgan
    from sonic.training.resume import ResumeFile

    resume, out, kill_at = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    marker = resume.with_suffix(".killed")
    cfg = CGANConfig(z_dim=8, embed_dim=4, g_width=16, d_width=4, epochs=4, batch_size=4,
                     aux_weight=0.5)
    gen = torch.Generator().manual_seed(1)
    data, labels = torch.rand(12, 1, 16, 20, generator=gen) * 4 - 2, torch.arange(12) % 2
    state = make_state(cfg, 2, 16, 20, -2.0, 2.0)
    kept = {{}}

    def on_epoch(epoch, state, record):
        if not record.get("restored"):
            kept[epoch] = sum(float(p.sum()) for p in state.G.parameters())
        if epoch == kill_at and not marker.exists():
            marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)

    history = train_cgan(state, data.numpy(), labels.numpy(), cfg, on_epoch,
                         resume=ResumeFile(resume, "key"), keep=kept)
    torch.save({{"history": history, "G": state.G.state_dict(), "G_ema": state.G_ema.state_dict(),
                "kept": kept}}, out)
""")


def test_the_gan_killed_after_an_epoch_resumes_to_the_uninterrupted_result(tmp_path):
    script = tmp_path / "gan.py"
    script.write_text(GAN_RUN.format())

    def run(tag: str, kill: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(script), str(tmp_path / f"{tag}.resume"),
                               str(tmp_path / f"{tag}.pt"), kill], cwd=REPO,
                              capture_output=True, text=True, timeout=300)

    assert run("a", "0").returncode == 0
    assert run("b", "3").returncode == -9
    again = run("b", "3")
    assert again.returncode == 0, again.stderr
    assert "resuming after epoch 2" in again.stdout + again.stderr
    a, b = (torch.load(tmp_path / f"{t}.pt", weights_only=True) for t in "ab")
    assert a["history"] == b["history"] and a["kept"] == b["kept"]
    assert all(torch.equal(a[n][k], b[n][k]) for n in ("G", "G_ema") for k in a[n])


# ------------------------------------------------------------------------------ DDP, torchrun
@pytest.fixture
def staged(tmp_path, folder_set_writer, params_writer, manifest_writer, stage):
    """Features and split of a tone set, made by the real extract_mels and split stages."""
    from sonic.config import FeatureConfig

    root = tmp_path
    data = folder_set_writer(root / "data", per_class=16, n_test=0)
    features = FeatureConfig(sample_rate=8000, duration=0.5, n_fft=256, hop_length=128,
                             n_mels=32, workers=1, batch_size=8)
    params = params_writer(root / "params.yaml", data={"layout": "folder", "root": str(data)},
                           features=to_dict(features), split={"val_size": 0.25})
    manifest = manifest_writer(data, root / "manifest.csv")
    for script, *args in [("extract_mels.py", "--manifest", manifest, "--out", root / "features",
                           "--report", root / "bad.csv"),
                          ("split.py", "--index", root / "features/index.csv", "--out",
                           root / "split.csv")]:
        run = stage(script, "--params", params, *args)
        assert run.returncode == 0, run.stderr
    return root, features, stage, params_writer


def train_with(staged, nproc: int, device: str = "cpu") -> tuple[dict, dict, dict]:
    root, features, run_stage, write_params = staged
    out = root / f"nproc{nproc}-{device}"
    params = write_params(out.with_suffix(".yaml"), features=to_dict(features),
                          train={"device": device, "precision": "fp32", "epochs": 10,
                                 "batch_size": 12, "lr": 5e-3, "mixup_prob": 0.0,
                                 "freq_masks": 0, "time_masks": 0, "patience": 10,
                                 "use_augmented": False, "nproc": nproc},
                          cnn={"widths": [8, 16], "fc": [16], "pool": [2, 2], "dropout": 0.0,
                               "fc_dropout": 0.0})
    run = run_stage("train.py", "--params", params, "--model", "cnn", "--features",
                    root / "features", "--split", root / "split.csv", "--augmented",
                    root / "none", "--checkpoint", out / "cnn.pt", "--live", out / "live")
    assert run.returncode == 0, run.stdout + run.stderr
    return (json.loads((out / "live/metrics.json").read_text()),
            json.loads((out / "live/run.json").read_text()),
            load_payload(out / "cnn.pt"))


def test_two_gloo_processes_train_like_one(staged):
    """train.nproc=2 re-runs the stage under torchrun (gloo): each process takes half of every
    global batch of the same shuffled order. Without masks, MixUp or dropout the one difference
    is BatchNorm's statistics over half batches, so the validation figures agree within a
    tolerance, and the checkpoint has the same format."""
    one_metrics, one_run, one_ckpt = train_with(staged, 1)
    two_metrics, two_run, two_ckpt = train_with(staged, 2)
    assert (one_run["processes"], two_run["processes"]) == (1, 2)
    here = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
                          capture_output=True, text=True, check=True).stdout
    assert one_run["threads"] == int(here)  # the run's numbers depend on it
    assert one_run["train_samples"] == two_run["train_samples"]
    assert abs(one_metrics["val"]["accuracy"] - two_metrics["val"]["accuracy"]) <= 1 / 12 + 1e-9
    assert two_metrics["val"]["loss"] == pytest.approx(one_metrics["val"]["loss"], abs=0.1)
    assert one_ckpt.keys() == two_ckpt.keys()
    assert {k: v.shape for k, v in one_ckpt["state_dict"].items()} == \
        {k: v.shape for k, v in two_ckpt["state_dict"].items()}
    assert not (staged[0] / "nproc2-cpu/live/plots/metrics/train/loss.tsv").read_text().count(
        "\n") > 11  # one writer: 10 epochs + header, never two processes' rows
    assert pd.read_csv(staged[0] / "nproc2-cpu/live/plots/metrics/train/loss.tsv", sep="\t")[
        "step"].tolist() == list(range(1, 11))


# ------------------------------------------------------------------------------------ CUDA
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@needs_cuda
def test_fit_on_cuda_streams_pinned_batches_under_bf16_and_learns():
    """The CUDA path: batches from the memory map through pinned memory, bf16 autocast where
    the GPU has it, channels_last; the tone task is learnt as on the CPU."""
    model, train, val, cfg = tiny_fit_args()
    cfg = TrainConfig(**{**to_dict(cfg), "epochs": 8, "precision": "auto", "workers": 1})
    result = fit(model, train, val, cfg, torch.device("cuda"))
    assert result.bf16 == torch.cuda.is_bf16_supported()
    assert result.best["val_accuracy"] >= 0.9
    assert all(v.device.type == "cpu" for v in result.best_state.values())


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_two_nccl_processes_train_like_one(staged):
    one_metrics, _, _ = train_with(staged, 1, device="cuda")
    two_metrics, two_run, _ = train_with(staged, 2, device="cuda")
    assert two_run["processes"] == 2 and two_run["device"] == "cuda"
    assert abs(one_metrics["val"]["accuracy"] - two_metrics["val"]["accuracy"]) <= 1 / 12 + 1e-9
