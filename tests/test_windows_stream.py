"""Long files streamed in two passes give the windows, levels, trim and crop of the whole-file
path (:func:`decode_mono` + :func:`window_batches`), and keep every per-block check."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from sonic.audio.io import BadAudioError
from sonic.features.mel import AMIN, cached_logmel, fix_length
from sonic.features.stream import clip_wave, decode_mono, scan_mono
from sonic.inference.events import window_levels
from sonic.inference.windows import Windowing, plan_windows, stream_windows, window_batches


def _scene(path: Path, seconds: float, sr: int = 16000, channels: int = 2,
           silence: float = 1.3) -> Path:
    """Silence, then tones and noise bursts that change every second, then silence: the trim,
    the resampler and the windows all have something to get wrong."""
    rng = np.random.default_rng(0)
    n, edge = int(seconds * sr), int(silence * sr)
    t = np.arange(n) / sr
    body = 0.2 * np.sin(2 * np.pi * (300 + 200 * np.floor(t)) * t)
    body += 0.05 * rng.standard_normal(n) * (np.floor(t) % 3 == 0)
    body[:edge] = body[-edge:] = 0.0
    audio = np.stack([body * (1 + 0.1 * c) for c in range(channels)], axis=1)
    sf.write(path, audio.astype(np.float32), sr,
             subtype="PCM_16" if path.suffix == ".flac" else "FLOAT")
    return path


def _whole(path: Path, features, windowing):
    decoded = decode_mono(path, features)
    batches = list(window_batches(decoded, features, windowing, batch=5))
    levels = window_levels(decoded.wave, *plan_windows(decoded, features, windowing))
    return (np.concatenate([m for m, _ in batches]), np.concatenate([s for _, s in batches]),
            levels)


def _streamed(path: Path, features, windowing, **kwargs):
    """info, mels, starts, levels (and band frames: dB, times) of the streamed path."""
    info, batches = stream_windows(path, features, windowing, batch=5, **kwargs)
    batches = list(batches)
    assert all(len(b.mels) <= 5 for b in batches)
    return info, *(np.concatenate(parts) for parts in zip(*batches))


def test_streaming_a_short_file_equals_the_whole_file_path(tmp_path: Path,
                                                           tiny_features) -> None:
    """12 s of 16 kHz stereo, resampled to 8 kHz, streamed in blocks of 1,000 frames (two
    passes forced with ``whole_up_to=0``): the same windows as decoding it whole."""
    path = _scene(tmp_path / "scene.wav", 12.0)
    windowing = Windowing(0.5, 0.3)
    mels, starts, levels = _whole(path, tiny_features, windowing)
    info, s_mels, s_starts, s_levels, s_bands, s_times = _streamed(
        path, tiny_features, windowing, whole_up_to=0, block_frames=1000)
    _, _, _, _, bands, times = _streamed(path, tiny_features, windowing)  # decoded whole
    assert (info.sample_rate, info.channels, info.frames) == (16000, 2, 192000)
    assert starts[0] > 1.0  # the leading silence was trimmed
    np.testing.assert_array_equal(s_starts, starts)
    np.testing.assert_allclose(s_mels, mels, atol=1e-4)
    np.testing.assert_allclose(s_levels, levels, atol=1e-6)
    np.testing.assert_array_equal(s_times, times)
    np.testing.assert_allclose(s_bands.astype(np.float32), bands.astype(np.float32), atol=0.05)


def test_a_long_file_streams_to_the_windows_it_had_whole(tmp_path: Path,
                                                         tiny_features) -> None:
    """A 150 s mono file (longer than what is decoded whole) with the default blocks."""
    path = _scene(tmp_path / "long.flac", 150.0, sr=8000, channels=1)
    windowing = Windowing(0.5, 0.5)
    mels, starts, levels = _whole(path, tiny_features, windowing)
    info, s_mels, s_starts, s_levels, *_ = _streamed(path, tiny_features, windowing)
    assert info.duration == 150.0 and len(starts) > 250
    np.testing.assert_array_equal(s_starts, starts)
    np.testing.assert_allclose(s_mels, mels, atol=1e-4)
    np.testing.assert_allclose(s_levels, levels, atol=1e-6)


@pytest.mark.parametrize("seconds", [0.1, 0.3, 12.0])
@pytest.mark.parametrize("trim", [True, False])
def test_the_first_pass_finds_the_trim_of_the_whole_signal(tmp_path: Path, tiny_features,
                                                           seconds: float, trim: bool) -> None:
    """Shorter than one trim frame, a few frames, and many; trimmed or not."""
    features = dataclasses.replace(tiny_features, trim=trim)
    path = _scene(tmp_path / "scene.wav", seconds, silence=seconds / 10)
    decoded = decode_mono(path, features)
    scanned = scan_mono(path, features, block_frames=777)
    assert (scanned.length, scanned.start, scanned.stop) == (len(decoded.signal),
                                                             decoded.start, decoded.stop)


def test_extract_mels_crop_of_a_long_file_is_the_whole_file_crop(tmp_path: Path,
                                                                 tiny_features) -> None:
    path = _scene(tmp_path / "scene.wav", 12.0)
    whole = fix_length(decode_mono(path, tiny_features).wave, tiny_features.n_samples)
    np.testing.assert_array_equal(clip_wave(path, tiny_features, whole_up_to=0), whole)
    np.testing.assert_array_equal(clip_wave(path, tiny_features), whole)


def test_a_bad_block_deep_in_a_long_file_is_refused_before_any_window(tmp_path: Path,
                                                                      tiny_features) -> None:
    """A NaN 100 s into a float file: the first pass names it; no batch is ever made."""
    audio = (0.1 * np.sin(np.arange(8000 * 120) / 5.0)).astype(np.float32)
    audio[8000 * 100] = np.nan
    sf.write(tmp_path / "nan.wav", audio, 8000, subtype="FLOAT")
    with pytest.raises(BadAudioError, match="NaN or infinite"):
        stream_windows(tmp_path / "nan.wav", tiny_features, Windowing(0.5, 0.25))


def test_the_band_frames_tile_the_file_with_the_stft_of_the_file_itself(tmp_path: Path,
                                                                        tiny_features) -> None:
    """The activity detector's frames: each window gives the frames nearest its own centre, so
    together they run once along the trimmed file, in order, a frame hop apart (under two at a
    window boundary), and each equals the STFT of the file itself at that moment — no window's
    zero padding got in."""
    path = _scene(tmp_path / "scene.wav", 12.0)
    windowing = Windowing(0.5, 0.3)
    decoded = decode_mono(path, tiny_features)
    _, _, starts, _, bands, times = _streamed(path, tiny_features, windowing)
    step = tiny_features.hop_length / tiny_features.sample_rate
    gaps = np.diff(times)
    assert gaps.min() > 0 and gaps.max() < 2 * step
    assert np.isclose(gaps, step).mean() > 0.9
    first = decoded.start / tiny_features.sample_rate
    end = decoded.stop / tiny_features.sample_rate
    assert times[0] == pytest.approx(first) and end - step <= times[-1] < end
    assert bands.shape == (len(times), tiny_features.n_mels) and bands.dtype == np.float16

    logmel = cached_logmel(tiny_features)
    half = tiny_features.n_fft // 2
    signal = torch.from_numpy(np.ascontiguousarray(decoded.signal, dtype=np.float32))
    inner = [i for i, t in enumerate(times)  # frames whose STFT lies inside the file
             if half <= round(t * tiny_features.sample_rate) <= len(signal) - half]
    for i in inner[::7]:
        c = round(times[i] * tiny_features.sample_rate)
        frame = signal[c - half:c + half]  # centred STFT of one frame: n_fft samples around c
        power = logmel.mel_power(frame[None])[0, :, 1]  # frame 1 of 3 is the centred one
        want = 10 * torch.log10(power.clamp_min(AMIN)).numpy()
        np.testing.assert_allclose(bands[i].astype(np.float32), want, atol=0.05)
