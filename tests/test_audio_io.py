"""``sonic.audio.io.read_audio``: good files decode to (channels, samples) float32, and every kind
of unusable file is a :class:`BadAudioError` whose reason names the problem."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sonic.audio.io import BadAudioError, audio_extensions, read_audio


def test_stereo_float_wav_reads_as_channels_by_samples(tmp_path: Path, clip_writer) -> None:
    path = clip_writer(tmp_path / "stereo.wav", sr=22050, seconds=0.25, channels=2,
                       subtype="FLOAT")
    audio, sr = read_audio(path)
    written, _ = sf.read(path, dtype="float32", always_2d=True)
    assert sr == 22050
    assert audio.shape == (2, 5512) and audio.dtype == np.float32
    np.testing.assert_array_equal(audio, written.T)
    assert audio.flags.c_contiguous


def test_mono_pcm_wav_reads_as_one_channel(tmp_path: Path, clip_writer) -> None:
    path = clip_writer(tmp_path / "mono.wav", sr=8000, seconds=0.5, subtype="PCM_16")
    audio, sr = read_audio(path)
    assert (audio.shape, sr) == ((1, 4000), 8000)
    assert np.abs(audio).max() <= 1.0


def test_every_bad_file_kind_is_rejected_with_its_reason(tmp_path: Path,
                                                         bad_files_writer) -> None:
    cases = bad_files_writer(tmp_path)
    cases[tmp_path / "missing.wav"] = "file not found"
    for path, reason in cases.items():
        with pytest.raises(BadAudioError) as err:
            read_audio(path)
        assert reason in err.value.reason, (path.name, err.value.reason)
        assert err.value.path == str(path)
        assert str(path) in str(err.value)


def test_truncated_wav_is_caught_although_libsndfile_reads_it(tmp_path: Path,
                                                              clip_writer) -> None:
    """libsndfile decodes the surviving half without complaint; the header check must not."""
    whole = clip_writer(tmp_path / "whole.wav", sr=8000, seconds=0.5, subtype="PCM_16")
    cut = tmp_path / "cut.wav"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    assert 0 < len(sf.read(cut)[0]) < 4000
    with pytest.raises(BadAudioError, match="truncated WAV"):
        read_audio(cut)


def test_header_only_wav_has_no_samples(tmp_path: Path) -> None:
    path = tmp_path / "zero_frames.wav"
    sf.write(path, np.zeros(0, np.float32), 8000)
    with pytest.raises(BadAudioError, match="no samples"):
        read_audio(path)


def test_infinite_samples_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "inf.wav"
    wave = np.full(800, 0.1, np.float32)
    wave[7] = np.inf
    sf.write(path, wave, 8000, subtype="FLOAT")
    with pytest.raises(BadAudioError, match="infinite"):
        read_audio(path)


def test_audio_extensions_cover_common_containers() -> None:
    assert {".wav", ".flac", ".ogg", ".aiff"} <= audio_extensions()
    assert ".txt" not in audio_extensions()
