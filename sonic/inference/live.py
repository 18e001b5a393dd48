"""Classify a live stream of PCM: a rolling buffer, its latest window scored every hop.

:class:`LiveStream` takes the samples a microphone sends (16-bit PCM at the browser's rate,
chunk by chunk), resamples them as a stream to the checkpoint's rate with soxr (the resampler of
:mod:`sonic.features.stream`), and keeps only the last window of them. Every ``hop`` seconds of
new audio, :meth:`LiveStream.step` scores that window through the same
:class:`~sonic.inference.predictor.Predictor` as ``sonic predict`` (the log-mel of
``window_batches``, the predictor's forward pass) and answers with the rolling top-k and the
events of :func:`sonic.inference.events.detect` over the last ``history`` seconds of window
results — the file path's hysteresis, minimum duration, merge gap and gate, run again on a
bounded history every hop, so an open event grows and a finished one stays as it was.

:meth:`push` and :meth:`step` may run in two threads (the server pushes while a window is
scored): ``step`` takes a consistent snapshot of the buffer under a lock. When scoring is slower
than the hop (a busy CPU), windows in between are skipped, never queued: the answer is always
about the latest audio. Memory: one window of samples and ``history / hop``
window results.
"""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

import numpy as np
import soxr
import torch

from sonic.audio.io import AudioLimits
from sonic.features.mel import cached_logmel, fix_length, power_to_db
from sonic.inference.events import EventParams, detect, window_levels
from sonic.inference.prediction import Prediction
from sonic.inference.predictor import Predictor
from sonic.inference.windows import band_db

MIN_HOP, MAX_HOP = 0.05, 5.0  # seconds between scored windows
MAX_HISTORY = 300.0  # seconds of window results kept for events
MAX_CHUNK_BYTES = 1 << 18  # one message of PCM: 256 kB (0.7 s of 16-bit audio at 192 kHz)


class LiveError(ValueError):
    """A live stream's settings or audio that cannot be used (the message says what to do)."""


@dataclass(frozen=True)
class LiveParams:
    """How often the latest window is scored and how much of the past its events cover."""

    hop: float = 0.25  # seconds of new audio between scored windows
    history: float = 60.0  # seconds of window results the events are found in
    top_k: int = 3

    def __post_init__(self) -> None:
        if not MIN_HOP <= self.hop <= MAX_HOP:
            raise LiveError(f"hop must be {MIN_HOP:g}-{MAX_HOP:g} s, got {self.hop:g}")
        if not 0 < self.history <= MAX_HISTORY:
            raise LiveError(f"history must be 0-{MAX_HISTORY:g} s, got {self.history:g}")
        if not 1 <= self.top_k <= 100:
            raise LiveError(f"top_k must be 1-100, got {self.top_k}")


def pcm16(data: bytes) -> np.ndarray:
    """Little-endian 16-bit PCM bytes → float32 samples in [-1, 1)."""
    if len(data) > MAX_CHUNK_BYTES:
        raise LiveError(f"a PCM message of {len(data)} bytes; the limit is {MAX_CHUNK_BYTES}: "
                        "send shorter chunks")
    if len(data) % 2:
        raise LiveError("PCM messages must hold whole 16-bit samples (an even byte count)")
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


class LiveStream:
    """One listener's stream: push samples as they come, :meth:`step` when :meth:`due`.

    Parameters
    ----------
    predictor : the loaded models (``sonic serve``'s own).
    sample_rate : Hz of the pushed samples (the browser's capture rate), 4-192 kHz.
    model : a name ``predictor`` knows, or None for its default.
    params, events : scoring cadence and the event rules (:class:`EventParams`).
    unknown_threshold : a confidence below it labels a window ``unknown``.
    """

    def __init__(self, predictor: Predictor, sample_rate: int, model: str | None = None,
                 params: LiveParams = LiveParams(), events: EventParams = EventParams(),
                 unknown_threshold: float | None = None) -> None:
        limits = AudioLimits()
        if not limits.min_rate <= sample_rate <= limits.max_rate:
            raise LiveError(f"sample rate must be {limits.min_rate}-{limits.max_rate} Hz, got "
                            f"{sample_rate}")
        self.predictor, self.model = predictor, predictor.resolve(model)
        self.params, self.events, self.in_rate = params, events, int(sample_rate)
        features = predictor.features
        self.rate, self.window = features.sample_rate, features.duration
        self.size = int(round(self.window * self.rate))
        self.hop = max(1, int(round(params.hop * self.rate)))
        self._resampler = soxr.ResampleStream(self.in_rate, self.rate, 1, dtype="float32")
        self._logmel = cached_logmel(features)
        self._buffer = np.zeros(0, np.float32)  # the last `size` samples at the model's rate
        self.received = 0  # samples pushed, at the input rate
        self.produced = 0  # samples at the model's rate
        self._next = self.size  # `produced` at which the next window is scored
        keep = int(np.ceil(params.history / params.hop)) + 1
        self._starts, self._probs, self._levels = (deque(maxlen=keep) for _ in range(3))
        self._bands = deque(maxlen=keep)  # per window: (frames' dB (F, n_mels), their times)
        self._lock = threading.Lock()  # push vs step's snapshot
        self._labels = Prediction("live", self.model, predictor.classes,
                                  unknown_threshold=unknown_threshold)

    def push(self, samples: np.ndarray) -> None:
        """Append mono float samples at the input rate; only the last window is kept."""
        out = self._resampler.resample_chunk(np.ascontiguousarray(samples, np.float32))
        with self._lock:
            self.received += len(samples)
            self.produced += len(out)
            self._buffer = np.concatenate([self._buffer, out])[-self.size:]

    def due(self) -> bool:
        """A full window is there and ``hop`` new seconds arrived since the last one scored."""
        return self.produced >= self._next

    def step(self) -> dict:
        """Score the latest window; the answer the page shows (JSON-ready).

        ``end_s``: the window's end on the stream's time axis (seconds at the model's rate);
        ``heard_s``: the input seconds received when it was scored (the page maps it to the
        moment it captured them, to show its lag); ``top``: the rolling top-k; ``events``: the
        events found in the last ``history`` seconds.
        """
        with self._lock:
            end, received, buffer = self.produced, self.received, self._buffer
            while self._next <= end:  # on the hop grid; windows missed while busy are skipped
                self._next += self.hop
        wave = fix_length(buffer, self.size).astype(np.float32)
        with torch.no_grad():
            power = self._logmel.mel_power(torch.from_numpy(wave[None]))
        mel = power_to_db(power, self._logmel.top_db).numpy()
        if not np.isfinite(mel).all():
            raise LiveError("the live audio's log-mel spectrogram is not finite")
        probs = self.predictor.window_probs(mel, self.model)[0]
        start = (end - self.size) / self.rate
        level = float(window_levels(wave, np.zeros(1, np.int64), self.size)[0])
        self._starts.append(start)
        self._probs.append(probs)
        self._levels.append(level)
        self._bands.append(self._new_frames(power[0], start))
        events = detect(np.array(self._probs), np.array(self._starts), self.window,
                        end / self.rate, self.predictor.classes, self.events,
                        np.array(self._levels), np.concatenate([b for b, _ in self._bands]),
                        np.concatenate([t for _, t in self._bands]))
        return {"type": "result", "end_s": round(end / self.rate, 3),
                "heard_s": round(received / self.in_rate, 3), "level_db": round(level, 1),
                **self._labels.labelled(probs, self.params.top_k),
                "events": [e.to_dict() for e in events]}

    def _new_frames(self, power: torch.Tensor, start: float) -> tuple[np.ndarray, np.ndarray]:
        """The window's frames of the audio that arrived since the last one scored (the last
        hop; the first window: all of it), less the frames whose STFT reaches past the end
        (zero-padded), as unnormalised dB (F, n_mels) and their times (F,) on the stream's
        axis, for the activity detector."""
        hop_length = self._logmel.hop_length
        edge = self._logmel.n_fft // 2
        centres = hop_length * np.arange(power.shape[-1])
        first = 0 if not self._bands else self.size - self.hop - edge  # the first: all of it
        keep = (centres >= first) & (centres < self.size - edge)
        db = band_db(power[:, keep])
        return db.T.numpy().astype(np.float16), start + centres[keep] / self.rate

    def describe(self) -> dict:
        """The first answer: what the stream will be scored with."""
        return {"type": "ready", "model": self.model, "classes": self.predictor.classes,
                "window_s": self.window, "hop_s": self.params.hop,
                "history_s": self.params.history, "sample_rate": self.rate,
                "max_chunk_bytes": MAX_CHUNK_BYTES}
