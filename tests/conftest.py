"""Shared fixtures: tiny synthetic audio data sets written with soundfile into a temp folder.

Every clip is a fraction of a second long so that decoding, resampling and mel extraction of a
whole data set take well under a second on one CPU core.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml

from sonic.audio.manifest import scan, write_manifest
from sonic.bench.dvc import commit, copy_repository
from sonic.config import CGANConfig, CNNConfig, DataConfig, FeatureConfig, ResNetConfig, TrainConfig
from sonic.training.data import MelSet

REPO = Path(__file__).resolve().parents[1]
RATES = (8000, 16000, 22050)  # Hz, the file rates the tiny sets cycle through
CLASS_HZ = {"low": 220.0, "mid": 880.0, "high": 2500.0}  # one tone per class

# Each kind of unusable file → a word its BadAudioError reason must contain.
BAD_CASES = {
    "truncated.wav": "truncated",
    "empty.wav": "empty file",
    "text.wav": "not a readable audio file",
    "nan.wav": "NaN",
    "silent.wav": "every sample is zero",
    "cancelling.wav": "channels are mixed to mono",
}


def tone(freq: float, seconds: float, sr: int, channels: int = 1, amp: float = 0.3,
         noise: float = 0.01, seed: int = 0) -> np.ndarray:
    """A sine plus a little white noise, float32, shape (samples, channels) as soundfile writes."""
    t = np.arange(int(round(seconds * sr))) / sr
    rng = np.random.default_rng(seed)
    mono = amp * np.sin(2 * np.pi * freq * t) + noise * rng.standard_normal(len(t))
    gains = np.linspace(1.0, 0.5, channels)  # stereo channels differ, so a mix-down is visible
    return (mono[:, None] * gains[None, :]).astype(np.float32)


def write_clip(path: Path, freq: float = 440.0, sr: int = 16000, seconds: float = 0.4,
               channels: int = 1, subtype: str | None = None, seed: int = 0) -> Path:
    """Write one synthetic clip; the format follows the suffix (.wav, .flac, .ogg)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, tone(freq, seconds, sr, channels, seed=seed), sr, subtype=subtype)
    return path


def write_bad_files(folder: Path) -> dict[Path, str]:
    """One file of each unusable kind in ``BAD_CASES``; returns path → expected reason word."""
    folder.mkdir(parents=True, exist_ok=True)
    truncated = write_clip(folder / "truncated.wav", sr=8000, subtype="PCM_16", seconds=0.5)
    data = truncated.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])  # a valid WAV cut in half
    (folder / "empty.wav").write_bytes(b"")
    (folder / "text.wav").write_text("this is a text file, not audio\n")
    nan = tone(440.0, 0.3, 8000)
    nan[100] = np.nan
    sf.write(folder / "nan.wav", nan, 8000, subtype="FLOAT")
    sf.write(folder / "silent.wav", np.zeros(2400, np.float32), 8000)
    left = tone(440.0, 0.3, 8000)[:, 0]
    sf.write(folder / "cancelling.wav", np.stack([left, -left], axis=1), 8000, subtype="PCM_16")
    return {folder / name: reason for name, reason in BAD_CASES.items()}


def write_folder_set(root: Path, per_class: int = 3, n_test: int = 2,
                     answers: bool = True) -> Path:
    """``<root>/train/<class>/<clip>.wav`` for the three ``CLASS_HZ`` classes, plus test clips.

    Clips cycle through ``RATES``; every odd clip is stereo and every third is 16-bit PCM (the
    rest float). Test clips are named ``t<i>.wav`` and answered in ``<root>/test_labels.csv``.
    """
    for c, (label, hz) in enumerate(CLASS_HZ.items()):
        for i in range(per_class):
            write_clip(root / "train" / label / f"{label}{i}.wav", hz, RATES[(c + i) % 3],
                       seconds=0.3 + 0.05 * i, channels=1 + i % 2,
                       subtype="PCM_16" if i % 3 == 0 else "FLOAT", seed=10 * c + i)
    labels = list(CLASS_HZ)
    rows = []
    for i in range(n_test):
        label = labels[i % len(labels)]
        write_clip(root / "test" / f"t{i}.wav", CLASS_HZ[label], RATES[i % 3], seed=100 + i)
        rows.append((f"t{i}.wav", label))
    if answers and n_test:
        pd.DataFrame(rows, columns=["filename", "label"]).to_csv(root / "test_labels.csv",
                                                                  index=False)
    return root


def write_urbansound8k(root: Path, missing: str | None = None) -> pd.DataFrame:
    """An 8-slice UrbanSound8K look-alike: official metadata columns, audio/fold<N>/, two
    recordings (fsIDs) cut into two slices each in folds 1 and 2, the rest one slice each."""
    rows = []
    for i, (fs_id, fold, label) in enumerate([(100, 1, "dog_bark"), (100, 1, "dog_bark"),
                                              (200, 2, "siren"), (200, 2, "siren"),
                                              (300, 3, "dog_bark"), (400, 3, "siren"),
                                              (500, 1, "siren"), (600, 2, "dog_bark")]):
        name = f"{fs_id}-{int(label == 'siren')}-0-{i}.wav"
        rows.append((name, fs_id, i * 0.5, i * 0.5 + 0.4, 1, fold, int(label == "siren"), label))
        if name != missing:
            write_clip(root / "audio" / f"fold{fold}" / name, sr=48000, seconds=0.1,
                        channels=2)
    meta = pd.DataFrame(rows, columns=["slice_file_name", "fsID", "start", "end", "salience",
                                       "fold", "classID", "class"])
    (root / "metadata").mkdir(parents=True)
    meta.to_csv(root / "metadata" / "UrbanSound8K.csv", index=False)
    return meta


def write_scan_manifest(root: Path, path: Path) -> Path:
    """What stage ``scan`` writes for ``root`` (the listing ``extract_mels`` reads files from)."""
    write_manifest(path, scan(root)[0])
    return path


def write_params(path: Path, **sections: dict) -> Path:
    """A params file holding only ``sections`` (the rest keep their defaults)."""
    path.write_text(yaml.safe_dump(sections, sort_keys=False))
    return path


def run_stage(script: str, *args: str | Path) -> subprocess.CompletedProcess:
    """Run ``stages/<script>`` in a fresh interpreter, as DVC would; capture its output."""
    return subprocess.run([sys.executable, str(REPO / "stages" / script), *map(str, args)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)


def copy_repo(root: Path, params_update: dict[str, dict]) -> Path:
    """A committed git repository at ``root`` holding the project's files (not its results)
    with ``params_update`` merged into params.yaml section by section."""
    copy_repository(REPO, root)
    params = yaml.safe_load((root / "params.yaml").read_text())
    for section, values in params_update.items():
        params[section].update(values)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    commit(root, "tiny params")
    return root


def run_module(root: Path, *args: str, timeout: float | None = None) -> str:
    """``python -m *args`` in ``root`` with this interpreter's bin folder first on PATH (the
    stages and the queue's workers call ``python``); its output, asserting it succeeded.

    One torch thread per process: tiny tensors gain nothing from more, and on a busy shared CPU
    the threads' spin-waits make each step many times slower.
    """
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", *args], cwd=root, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def toy_mel_set(n: int = 24) -> MelSet:
    """``n`` spectrograms (16 mels × 12 frames, dB) of 3 classes, each class loud in its own 5
    bands over a quiet floor: a set a tiny model learns in a few epochs."""
    rng = np.random.default_rng(0)
    y = np.arange(n) % 3
    db = rng.uniform(-80, -60, (n, 16, 12)).astype(np.float32)
    for i, k in enumerate(y):
        db[i, 5 * k:5 * k + 5] = rng.uniform(-20, 0, (5, 12))
    return MelSet.of(db, y, float(db.mean()), float(db.std()))


# Helpers handed to tests as fixtures (tests never import conftest).
@pytest.fixture(scope="session")
def repo_copier() -> Callable[[Path, dict], Path]:
    return copy_repo


@pytest.fixture(scope="session")
def module_runner() -> Callable[..., str]:
    return run_module


@pytest.fixture(scope="session")
def committer() -> Callable[[Path, str], None]:
    return commit


@pytest.fixture
def clip_writer() -> Callable[..., Path]:
    return write_clip


@pytest.fixture
def bad_files_writer() -> Callable[[Path], dict[Path, str]]:
    return write_bad_files


@pytest.fixture
def folder_set_writer() -> Callable[..., Path]:
    return write_folder_set


@pytest.fixture
def urbansound8k_writer() -> Callable[..., pd.DataFrame]:
    return write_urbansound8k


@pytest.fixture
def params_writer() -> Callable[..., Path]:
    return write_params


@pytest.fixture
def manifest_writer() -> Callable[[Path, Path], Path]:
    return write_scan_manifest


@pytest.fixture
def stage() -> Callable[..., subprocess.CompletedProcess]:
    return run_stage


@pytest.fixture
def tiny_features() -> FeatureConfig:
    """8 kHz, 0.5 s, 32 mels: (32, 32) spectrograms, decoded in-process."""
    return FeatureConfig(sample_rate=8000, duration=0.5, n_fft=256, hop_length=128, n_mels=32,
                         workers=1, batch_size=8)


@pytest.fixture
def folder_set(tmp_path: Path) -> Path:
    """A three-class folder-layout set (9 train clips, 2 answered test clips)."""
    return write_folder_set(tmp_path / "data")


# ------------------------------------------------------------------------ small trained models
TRAINED_FEATURES = FeatureConfig(sample_rate=8000, duration=0.5, n_fft=256, hop_length=128,
                                 n_mels=32, workers=1, batch_size=8)
TRAINED_MODELS = {"cnn": CNNConfig(widths=(8, 16), fc=(32,), pool=(2, 2), dropout=0.1,
                                   fc_dropout=0.1),
                  "resnet": ResNetConfig(blocks=(1, 1), widths=(8, 16), dropout=0.1)}


def train_small_models(root: Path) -> SimpleNamespace:
    """Train a tiny CNN, ResNet and cGAN on ``write_folder_set`` tones (low / mid / high), the
    real code path end to end: files → ``extract`` → ``fit`` → checkpoints in ``root/models``.

    Every third clip is held out for validation. Returns the paths, the features config, and
    the validation clips (files, dB rows, label indices).
    """
    import torch

    from sonic.audio.layouts import discover
    from sonic.features.extract import extract
    from sonic.generation.state import make_state, save_generator
    from sonic.generation.trainer import train_cgan
    from sonic.models import build_model
    from sonic.models.checkpoint import save_checkpoint
    from sonic.training.data import MelSet
    from sonic.training.loop import fit, keep_best

    data = write_folder_set(root / "data", per_class=9, n_test=0)
    clips, _ = discover(DataConfig(layout="folder", root=str(data)))
    feats = extract(clips, TRAINED_FEATURES)
    classes = sorted(set(feats.index["label"]))
    y = feats.index["label"].map({c: i for i, c in enumerate(classes)}).to_numpy()
    val = np.arange(len(y)) % 3 == 0
    db = np.asarray(feats.mels)
    mean, std = float(db[~val].mean()), float(db[~val].std())
    cfg = TrainConfig(device="cpu", precision="fp32", epochs=12, batch_size=6, lr=3e-3,
                      mixup_prob=0.0, freq_mask_width=4, time_mask_width=4, patience=12)
    models = root / "models"
    for name, model_cfg in TRAINED_MODELS.items():
        torch.manual_seed(0)
        model = build_model(name, model_cfg, len(classes))
        result = fit(model, MelSet.of(db[~val], y[~val], mean, std),
                     MelSet.of(db[val], y[val], mean, std), cfg, torch.device("cpu"), desc=name)
        save_checkpoint(models / f"{name}.pt", name, keep_best(model, result), classes,
                        TRAINED_FEATURES, mean, std, **result.best)
    gan_cfg = CGANConfig(z_dim=8, embed_dim=4, g_width=16, d_width=4, epochs=2, batch_size=6)
    lo, hi = (-TRAINED_FEATURES.top_db - mean) / std, -mean / std
    state = make_state(gan_cfg, len(classes), TRAINED_FEATURES.n_mels, TRAINED_FEATURES.n_frames,
                       lo, hi)
    train_cgan(state, (db[~val, None] - mean) / std, y[~val], gan_cfg)
    save_generator(models / "cgan.pt", state, gan_cfg, classes, mean, std)  # as train_cgan does
    return SimpleNamespace(root=root, data=data, models=models, features=TRAINED_FEATURES,
                           classes=classes, val_files=list(feats.index["source"][val]),
                           val_db=db[val], val_labels=y[val])


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """Small real checkpoints (``cnn.pt``, ``resnet.pt``, ``cgan.pt``), trained once per session."""
    return train_small_models(tmp_path_factory.mktemp("trained"))


@pytest.fixture
def toy_mels():
    """A fresh :func:`toy_mel_set` of 24 clips."""
    return toy_mel_set()
