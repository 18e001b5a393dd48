"""Mel features and the ``extract_mels`` stage: log-mels against librosa, resampling, trimming,
length fixing, the feature store, and bad input handled in-process and by the stage script."""
from __future__ import annotations

import dataclasses
import re
import runpy
import sys
from pathlib import Path

import librosa
import numpy as np
import pandas as pd
import pytest
import torch
import torchaudio

from sonic.audio.layouts import Clip, discover
from sonic.config import DataConfig, FeatureConfig, to_dict
from sonic.features.extract import BAD_FILES_COLUMNS, BadInputError, bad_files_table, extract
from sonic.features.mel import (
    LogMel,
    fix_length,
    power_to_db,
    prepare_waveform,
    resample,
    trim_silence,
    waves_to_mels,
)
from sonic.features.store import INDEX_COLUMNS, load_features, save_features

STAGES = Path(__file__).resolve().parents[1] / "stages"
MEL_TOL_DB = 5e-3  # measured max |ours - librosa| ≈ 1.5e-3 dB, in bins near the -80 dB floor
SMALL = FeatureConfig(sample_rate=16000, duration=1.0, n_fft=512, hop_length=160, n_mels=64,
                      f_min=50.0, f_max=7000.0)


def sine(freq: float, n: int, sr: int, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(n) / sr)).astype(np.float32)


def sample_waves(cfg: FeatureConfig) -> np.ndarray:
    """(2, n_samples): a decaying tone in noise, and a chirp that reaches the -top_db floor."""
    n, sr = cfg.n_samples, cfg.sample_rate
    t = np.arange(n) / sr
    rng = np.random.default_rng(0)
    decaying = 0.3 * np.sin(2 * np.pi * 440 * t) * np.exp(-2 * t) + 0.05 * rng.standard_normal(n)
    chirp = 0.5 * np.sin(2 * np.pi * (200 + 1500 * t) * t)
    return np.stack([decaying, chirp]).astype(np.float32)


def peak_hz(wave: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.fft.rfftfreq(len(wave), 1 / sr)[spectrum.argmax()])


# ------------------------------------------------------------------------------- log-mel
@pytest.mark.parametrize("cfg", [FeatureConfig(), SMALL], ids=["default", "16k-512-160-64"])
def test_log_mel_matches_librosa(cfg: FeatureConfig) -> None:
    """Same maths as ``librosa.power_to_db(librosa.feature.melspectrogram(...), ref=np.max,
    top_db=...)``: max abs difference below ``MEL_TOL_DB`` = 5e-3 dB (float32 rounding in the
    quietest bins; measured ≤ 1.5e-3 dB for both configurations)."""
    waves = sample_waves(cfg)
    ours = waves_to_mels(waves, cfg)
    assert ours.shape == (2, cfg.n_mels, cfg.n_frames) and ours.dtype == np.float32
    for wave, mel in zip(waves, ours):
        power = librosa.feature.melspectrogram(
            y=wave, sr=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length,
            n_mels=cfg.n_mels, fmin=cfg.f_min, fmax=cfg.f_max)
        reference = librosa.power_to_db(power, ref=np.max, top_db=cfg.top_db)
        assert np.abs(mel - reference).max() < MEL_TOL_DB
        assert mel.max() == 0.0 and mel.min() >= -cfg.top_db
    assert ours[1].min() == -cfg.top_db  # the chirp's empty bins sit on the floor


def test_batching_and_module_agree(tiny_features: FeatureConfig) -> None:
    waves = np.random.default_rng(1).uniform(-0.5, 0.5, (5, tiny_features.n_samples))
    waves = waves.astype(np.float32)
    whole = waves_to_mels(waves, tiny_features, batch_size=5)
    np.testing.assert_allclose(waves_to_mels(waves, tiny_features, batch_size=2), whole,
                               atol=1e-4)
    with torch.no_grad():
        module = LogMel(tiny_features)(torch.from_numpy(waves)).numpy()
    np.testing.assert_allclose(module, whole, atol=1e-4)


def test_logmel_is_torchaudios_melspectrogram(tiny_features: FeatureConfig) -> None:
    """LogMel writes torchaudio's transform out for speed; the power it takes the log of must be
    the same, to 1e-3 dB (float32 rounding of |X|² computed two ways)."""
    cfg = tiny_features
    waves = torch.from_numpy(np.random.default_rng(2).uniform(-0.5, 0.5, (3, cfg.n_samples))
                             .astype(np.float32))
    reference = torchaudio.transforms.MelSpectrogram(
        sample_rate=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length,
        n_mels=cfg.n_mels, f_min=cfg.f_min, f_max=cfg.f_max, power=2.0, center=True,
        pad_mode="constant", norm="slaney", mel_scale="slaney")(waves)
    with torch.no_grad():
        ours = LogMel(cfg)(waves)
    np.testing.assert_allclose(ours.numpy(), power_to_db(reference, cfg.top_db).numpy(),
                               atol=1e-3)


def test_power_to_db_reference_and_floor() -> None:
    power = torch.tensor([[[1.0, 1e-2, 1e-12]], [[4.0, 4.0, 0.0]]])  # (B=2, n_mels=1, T=3)
    np.testing.assert_allclose(power_to_db(power, 80.0).numpy(),
                               [[[0.0, -20.0, -80.0]], [[0.0, 0.0, -80.0]]], atol=1e-5)
    assert power_to_db(power, None)[0, 0, 2].item() == pytest.approx(-100.0)  # AMIN = 1e-10


# ------------------------------------------------------------------- waveform preparation
@pytest.mark.parametrize("sr, target", [(22050, 8000), (16000, 48000)])
def test_resample_keeps_frequency_and_scales_length(sr: int, target: int) -> None:
    wave = sine(440.0, sr // 2, sr)  # 0.5 s
    out = resample(wave, sr, target)
    assert out.dtype == np.float32
    assert len(out) == round(len(wave) * target / sr)
    assert abs(peak_hz(out, target) - 440.0) <= 2.0  # the FFT bin is 2 Hz wide here
    assert resample(wave, sr, sr) is wave


def test_trim_silence_matches_librosa_within_a_hop() -> None:
    sr, hop = 22050, 512
    rng = np.random.default_rng(0)
    lead, body, tail = int(0.3 * sr), int(0.5 * sr), int(0.4 * sr)
    wave = np.concatenate([np.zeros(lead), sine(440.0, body, sr), np.zeros(tail)])
    wave = (wave + 1e-5 * rng.standard_normal(len(wave))).astype(np.float32)  # -100 dB hiss
    ours = trim_silence(wave, top_db=60.0)
    _, (start_ref, stop_ref) = librosa.effects.trim(wave, top_db=60.0, frame_length=2048,
                                                    hop_length=hop)
    starts = [s for s in range(max(0, start_ref - hop), start_ref + hop + 1)
              if np.array_equal(wave[s:s + len(ours)], ours)]
    assert len(starts) == 1, "the trimmed clip is not a contiguous slice near librosa's"
    assert abs(starts[0] - start_ref) <= hop
    assert abs(starts[0] + len(ours) - stop_ref) <= hop
    assert starts[0] <= lead and starts[0] + len(ours) >= lead + body  # the tone is whole
    assert len(ours) < len(wave) - (lead + tail) // 2  # most of the silence is gone


def test_trim_silence_keeps_short_or_flat_clips() -> None:
    short = sine(440.0, 1000, 22050)  # under one frame
    assert trim_silence(short, 60.0) is short
    flat = np.full(8000, 0.1, np.float32)
    assert len(trim_silence(flat, 60.0)) == len(flat)


def test_fix_length_pads_end_and_crops_centre() -> None:
    wave = np.arange(1, 11, dtype=np.float32)
    padded = fix_length(wave, 14)
    np.testing.assert_array_equal(padded, np.r_[wave, np.zeros(4, np.float32)])
    np.testing.assert_array_equal(fix_length(wave, 4), [4, 5, 6, 7])  # (10 - 4) // 2 = 3 cut
    np.testing.assert_array_equal(fix_length(wave, 10), wave)


def test_prepare_waveform_mixes_to_mono_at_exact_length(tiny_features: FeatureConfig) -> None:
    left = sine(440.0, 6000, 8000)
    stereo = np.stack([left, np.zeros_like(left)])  # (2, samples) at the target rate
    no_trim = dataclasses.replace(tiny_features, trim=False)
    out = prepare_waveform(stereo, 8000, no_trim)
    assert out.shape == (no_trim.n_samples,) and out.dtype == np.float32
    np.testing.assert_allclose(out, fix_length(left / 2, no_trim.n_samples))
    for sr in (16000, 44100):  # resampled, trimmed, then fixed to exactly n_samples
        audio = np.stack([sine(300.0, sr // 3, sr), sine(300.0, sr // 3, sr, 0.2)])
        assert prepare_waveform(audio, sr, tiny_features).shape == (tiny_features.n_samples,)


# --------------------------------------------------------------------------------- extract
def clips_with_bad_files(root: Path, folder_set_writer, bad_files_writer
                         ) -> tuple[list[Clip], dict[str, str]]:
    """The tiny folder set's clips plus one clip of each bad kind (and a missing file)."""
    folder_set_writer(root)
    bad = {str(p): r for p, r in bad_files_writer(root / "train" / "mid").items()}
    bad[str(root / "train" / "mid" / "gone.wav")] = "file not found"
    clips, _ = discover(DataConfig(layout="folder", root=str(root)))
    clips.append(Clip("train/mid/gone.wav", root / "train" / "mid" / "gone.wav", "mid", "gone",
                      "train"))
    return clips, bad


def test_extract_keeps_good_clips_and_reports_each_bad_one(
        tmp_path: Path, tiny_features: FeatureConfig, folder_set_writer, bad_files_writer) -> None:
    clips, bad = clips_with_bad_files(tmp_path / "data", folder_set_writer, bad_files_writer)
    good = [c for c in clips if str(c.path) not in bad]
    result = extract(clips, tiny_features)
    assert list(result.index.columns) == list(INDEX_COLUMNS)
    assert list(result.index["clip_id"]) == [c.clip_id for c in good]  # all 11, in order
    assert result.waves.shape == (11, tiny_features.n_samples)
    assert result.mels.shape == (11, tiny_features.n_mels, tiny_features.n_frames)
    assert {b.path: b.reason for b in result.bad}.keys() == bad.keys()
    for b in result.bad:
        assert bad[b.path] in b.reason
    table = bad_files_table(result.bad)
    assert list(table.columns) == list(BAD_FILES_COLUMNS) and len(table) == len(bad)
    assert set(table["role"]) == {"train"} and set(table["label"]) == {"mid"}
    assert set(table["clip_id"]) == {f"train/mid/{Path(f).name}" for f in bad}


def test_extract_fail_mode_names_the_file(tmp_path: Path, tiny_features: FeatureConfig,
                                          clip_writer) -> None:
    good = clip_writer(tmp_path / "a" / "good.wav")
    empty = tmp_path / "a" / "empty.wav"
    empty.write_bytes(b"")
    clips = [Clip(str(p), p, "a", p.stem, "train") for p in (good, empty)]
    with pytest.raises(BadInputError, match=re.escape(f"{empty}: empty file")) as err:
        extract(clips, tiny_features, on_bad_file="fail")
    assert "set data.on_bad_file: skip" in str(err.value)
    with pytest.raises(BadInputError, match="no usable clips"):
        extract(clips[1:], tiny_features)


# ----------------------------------------------------------------------------------- store
def test_feature_store_round_trip(tmp_path: Path) -> None:
    index = pd.DataFrame([("a", "x.wav", "dog", "g1", "train", 0),
                          ("b", "y.wav", None, "g2", "test", 0)], columns=list(INDEX_COLUMNS))
    mels = np.random.default_rng(0).normal(size=(2, 4, 3)).astype(np.float32)
    waves = np.ones((2, 7), np.float32)
    save_features(tmp_path / "f", mels, index, waves)
    feats = load_features(tmp_path / "f", waves=True)
    np.testing.assert_array_equal(feats.mels, mels)
    np.testing.assert_array_equal(feats.waves, waves)
    assert feats.index["label"].isna().tolist() == [False, True]  # unanswered test clip
    assert feats.rows(["b", "a"]).tolist() == [1, 0]
    assert load_features(tmp_path / "f").waves is None
    with pytest.raises(ValueError, match="one row per clip"):
        save_features(tmp_path / "g", mels[:1], index)
    with pytest.raises(FileNotFoundError, match="mels.npy not found"):
        load_features(tmp_path / "g")


# ------------------------------------------------------------------- the extract_mels stage
def test_extract_mels_stage_reports_bad_files(tmp_path: Path, tiny_features: FeatureConfig,
                                              folder_set_writer, bad_files_writer,
                                              clip_writer, params_writer, manifest_writer,
                                              stage) -> None:
    """The stage, decoding in two worker processes, against ``extract`` with one in-process."""
    root = folder_set_writer(tmp_path / "data")
    bad = {str(p): r for p, r in bad_files_writer(root / "train" / "high").items()}
    loose = clip_writer(root / "train" / "loose.wav")
    bad[str(loose)] = "directly in train/"
    two_workers = dataclasses.replace(tiny_features, workers=2)
    params = params_writer(tmp_path / "params.yaml",
                           data={"layout": "folder", "root": str(root)},
                           features=to_dict(two_workers))
    out, report = tmp_path / "features", tmp_path / "bad_files.csv"
    manifest = manifest_writer(root, tmp_path / "manifest.csv")
    run = stage("extract_mels.py", "--params", params, "--manifest", manifest, "--out", out,
                "--report", report)
    assert run.returncode == 0, run.stderr

    table = pd.read_csv(report)
    assert list(table.columns) == list(BAD_FILES_COLUMNS)
    assert dict(zip(table["file"], table["reason"])).keys() == bad.keys()
    for file, reason in zip(table["file"], table["reason"]):
        assert bad[file] in reason
        assert f"skipping {file}" in run.stdout
    assert f"{len(bad)} rejected" in run.stdout

    clips, _ = discover(DataConfig(layout="folder", root=str(root)))
    expected = extract(clips, tiny_features)  # workers=1
    assert len(expected.index) == 11 and set(expected.index["role"]) == {"train", "test"}
    feats = load_features(out, waves=True)
    pd.testing.assert_frame_equal(feats.index, expected.index)
    np.testing.assert_array_equal(feats.waves, expected.waves)
    np.testing.assert_array_equal(feats.mels, expected.mels)


def test_extract_mels_stage_rejects_wrong_layouts(tmp_path: Path, clip_writer, params_writer,
                                                  manifest_writer, stage, monkeypatch) -> None:
    """No train/ folder (run as DVC would) and ESC-50 without its index (run in-process, which
    is quicker and exits the same way)."""
    root = tmp_path / "data"
    clip_writer(root / "clips" / "a.wav")  # neither train/<class>/ nor meta/esc50.csv
    outputs = ["--manifest", manifest_writer(root, tmp_path / "m.csv"), "--out", tmp_path / "f",
               "--report", tmp_path / "r.csv"]
    params = params_writer(tmp_path / "folder.yaml", data={"layout": "folder", "root": str(root)})
    run = stage("extract_mels.py", "--params", params, *outputs)
    assert run.returncode == 1
    assert f"extract_mels: expected {root}/train/<class>/<clip>.wav" in run.stderr, run.stderr
    assert "found no train/ folder" in run.stderr

    params = params_writer(tmp_path / "esc50.yaml", data={"layout": "esc50", "root": str(root)})
    monkeypatch.setattr(sys, "argv", ["extract_mels.py", "--params", str(params),
                                      *map(str, outputs)])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(STAGES / "extract_mels.py"), run_name="__main__")
    assert str(exit_.value.code).startswith(
        f"extract_mels: expected the ESC-50 index at {root}/meta/esc50.csv")
    assert f"clips in {root}/audio/" in str(exit_.value.code)
    assert not (tmp_path / "f").exists() and not (tmp_path / "r.csv").exists()
