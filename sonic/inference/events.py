"""From overlapping windows' class probabilities to sound events: (onset s, offset s, class, conf).

The windows of a file overlap (``--hop`` below ``--window``), so every moment is scored by
several windows. :func:`frame_probs` cuts the time axis at every window start and end and gives
each piece the mean probability of the windows that cover it: a piecewise-constant curve per
class, with no extra resolution parameter. :func:`detect` then finds each class's events with
hysteresis — an event starts where the curve reaches ``on`` and lasts while it stays at or above
``off`` — joins events of one class closer than ``merge_gap``, and drops those shorter than
``min_duration``. Two level gates count windows as background, where a classifier asked about
near-silence or the steady noise between sounds still answers with some class: windows far
quieter than the loudest one (``gate_db`` below it), and, in a file with a clear noise floor,
windows barely above that floor (``floor_db`` over the level that :data:`FLOOR_PERCENTILE` % of
windows stay under). The floor gate applies only to files of at least :data:`FLOOR_MIN_WINDOWS`
windows whose loudest window stands :data:`FLOOR_MIN_RANGE_DB` over the floor, so a recording that
is one steady sound (rain, an engine) keeps every window.

:func:`top1_events` is the plain baseline: every window labelled with its top class, no
threshold. Both return :class:`Event` lists that :func:`write_events` writes as CSV, JSON and an
Audacity label track.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from sonic.runtime import write_text


DETECTORS = ("activity", "probability")


@dataclass(frozen=True)
class EventParams:
    """How window probabilities become events. Defaults: see docs/events.md (measured on
    soundscapes with :mod:`sonic.inference.soundscape`)."""

    on: float = 0.6  # probability that starts an event
    off: float = 0.5  # probability below which it ends (hysteresis: off <= on)
    min_duration: float = 0.3  # seconds; shorter events are dropped
    merge_gap: float = 0.5  # seconds; events of one class closer than this are joined
    gate_db: float | None = 40.0  # windows this far below the loudest are background; None: off
    floor_db: float | None = 1.5  # windows at most this far over the noise floor are background
    detector: str = "activity"  # activity: sounds over the noise floor | probability: the curves
    on_db: float = 2.5  # activity: dB over the floor (loudest quarter of mel bands) that starts one
    off_db: float = 0.5  # activity: dB over the floor below which it ends (off_db <= on_db)

    def __post_init__(self) -> None:
        if self.detector not in DETECTORS:
            raise ValueError(f"detector must be one of {', '.join(DETECTORS)}, got "
                             f"{self.detector!r}")
        if not 0.0 <= self.off <= self.on <= 1.0:
            raise ValueError(f"event thresholds need 0 <= off <= on <= 1, got on={self.on:g}, "
                             f"off={self.off:g}")
        if not 0.0 <= self.off_db <= self.on_db:
            raise ValueError(f"activity thresholds need 0 <= off_db <= on_db (dB), got "
                             f"on_db={self.on_db:g}, off_db={self.off_db:g}")
        if self.min_duration < 0 or self.merge_gap < 0:
            raise ValueError("min_duration and merge_gap must be >= 0 seconds")
        if self.gate_db is not None and self.gate_db <= 0:
            raise ValueError(f"gate_db must be positive (dB) or None, got {self.gate_db:g}")
        if self.floor_db is not None and self.floor_db <= 0:
            raise ValueError(f"floor_db must be positive (dB) or None, got {self.floor_db:g}")


@dataclass(frozen=True)
class Event:
    onset: float  # seconds from the file's start
    offset: float  # seconds
    label: str
    confidence: float  # duration-weighted mean probability over the event

    def to_dict(self) -> dict:
        return {"onset_s": round(self.onset, 3), "offset_s": round(self.offset, 3),
                "label": self.label, "confidence": round(self.confidence, 4)}


def frame_probs(probs: np.ndarray, starts: np.ndarray, window: float, duration: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """Piecewise-constant probability curves from overlapping windows.

    Parameters
    ----------
    probs : (W, C) probabilities of each window.
    starts : (W,) window starts, seconds; each window covers ``[start, start + window]``,
        clipped to ``duration``.

    Returns
    -------
    edges : (P + 1,) seconds, the piece boundaries (every window start and end).
    curve : (P, C) mean probability of the windows covering each piece (0 where none does).
    """
    ends = np.minimum(starts + window, max(duration, float(starts.max()) + 1e-6))
    edges = np.unique(np.concatenate([starts, ends]))
    first = np.searchsorted(edges, starts)  # piece index each window enters at
    last = np.searchsorted(edges, ends)  # and leaves at (exclusive)
    n, c = len(edges) - 1, probs.shape[1]
    total, count = np.zeros((n + 1, c)), np.zeros(n + 1)
    np.add.at(total, first, probs)
    np.add.at(total, last, -probs)
    np.add.at(count, first, 1)
    np.add.at(count, last, -1)
    total, count = np.cumsum(total, axis=0)[:n], np.cumsum(count)[:n]
    curve = np.where(count[:, None] > 0.5, total / np.maximum(count, 1)[:, None], 0.0)
    return edges, curve


FLOOR_PERCENTILE = 15.0  # the noise floor: the level this share (%) of windows stay under
FLOOR_MIN_WINDOWS = 8  # fewer windows: no floor to speak of
FLOOR_MIN_RANGE_DB = 6.0  # the loudest window this far over the floor, or the file is one sound


def background(levels: np.ndarray, gate_db: float | None, floor_db: float | None) -> np.ndarray:
    """(W,) bool: the windows that the level gates count as background (module docstring)."""
    quiet = np.zeros(len(levels), dtype=bool)
    if len(levels) == 0:
        return quiet
    if gate_db is not None:
        quiet |= levels < levels.max() - gate_db
    if floor_db is not None and has_floor(levels):
        quiet |= levels < np.percentile(levels, FLOOR_PERCENTILE) + floor_db
    return quiet


def has_floor(levels: np.ndarray) -> bool:
    """Whether windows of these (W,) dB levels stand on a noise floor: at least
    :data:`FLOOR_MIN_WINDOWS` of them, the loudest :data:`FLOOR_MIN_RANGE_DB` over the level
    that :data:`FLOOR_PERCENTILE` % stay under (else the file is one steady sound)."""
    return (len(levels) >= FLOOR_MIN_WINDOWS
            and levels.max() - np.percentile(levels, FLOOR_PERCENTILE) >= FLOOR_MIN_RANGE_DB)


def gate(probs: np.ndarray, levels: np.ndarray | None, gate_db: float | None,
         floor_db: float | None = None) -> np.ndarray:
    """(W, C) probabilities with the background windows (:func:`background` of ``levels``,
    (W,) dB) set to 0."""
    if levels is None:
        return probs
    return np.where(background(levels, gate_db, floor_db)[:, None], 0.0, probs)


def _runs(active: np.ndarray) -> list[tuple[int, int]]:
    """(first, stop) piece indices of each run of True."""
    padded = np.concatenate([[False], active, [False]]).astype(np.int8)
    change = np.flatnonzero(np.diff(padded))
    return list(zip(change[::2], change[1::2]))


def hysteresis(curve: np.ndarray, on: float, off: float) -> np.ndarray:
    """(P,) bool: True from where ``curve`` reaches ``on`` while it stays at or above ``off``
    (runs above ``off`` that never reach ``on`` stay False)."""
    active = np.zeros(len(curve), bool)
    for a, b in _runs(curve >= off):
        if (curve[a:b] >= on).any():
            active[a:b] = True
    return active


def _joined(runs: list[tuple[int, int]], onsets: list[float], offsets: list[float],
            gap: float) -> list[tuple[float, float, int, int]]:
    """Runs ``(first, stop)`` with their onsets and offsets in seconds, each joined to the one
    before when it starts less than ``gap`` after that one ends: ``(onset, offset, first,
    stop)`` of each joined run."""
    out: list[tuple[float, float, int, int]] = []
    for (a, b), onset, offset in zip(runs, onsets, offsets):
        if out and onset - out[-1][1] < gap:
            out[-1] = (out[-1][0], offset, out[-1][2], b)
        else:
            out.append((onset, offset, a, b))
    return out


def _segments(edges: np.ndarray, curve: np.ndarray, active: np.ndarray, label: str,
              params: EventParams) -> list[Event]:
    """One class's active pieces → merged, long-enough events."""
    runs = _runs(active)
    merged = _joined(runs, [edges[a] for a, _ in runs], [edges[b] for _, b in runs],
                     params.merge_gap)
    widths = np.diff(edges)
    events = []
    for onset, offset, a, b in merged:
        if offset - onset + 1e-9 < params.min_duration:
            continue
        w = widths[a:b] * active[a:b]
        conf = float((curve[a:b] * w).sum() / w.sum())
        events.append(Event(float(onset), float(offset), label, conf))
    return events


ACTIVITY_SMOOTH_S = 0.15  # moving average of the activity curve, seconds


def activity(band_db: np.ndarray, times: np.ndarray, on_db: float, off_db: float
             ) -> np.ndarray:
    """(F,) bool: the frames where a sound stands over the file's noise floor.

    Each mel band is smoothed over :data:`ACTIVITY_SMOOTH_S` and gets its own floor, the level
    :data:`FLOOR_PERCENTILE` % of the frames stay under; a frame's activity is the mean, over
    the loudest quarter of its bands, of how far each stands over its floor — so a narrow-band
    sound (a horn, a siren) counts as much as a broad one, and coloured background noise (more
    energy in the low bands) does not — less what that mean is at the file's floor (the
    background's own ripple). It is read with hysteresis: on at ``on_db``, off below ``off_db``.
    ``band_db`` (F, n_mels) and ``times`` (F,) as :func:`band_frames` gives them.
    """
    step = float(np.median(np.diff(times))) if len(times) > 1 else ACTIVITY_SMOOTH_S
    k = max(1, int(round(ACTIVITY_SMOOTH_S / max(step, 1e-6))))
    db = np.pad(band_db.astype(np.float32), ((k // 2, k - 1 - k // 2), (0, 0)), mode="edge")
    db = np.cumsum(np.concatenate([np.zeros((1, db.shape[1]), np.float32), db]), axis=0)
    smooth = (db[k:] - db[:-k]) / k  # (F, n_mels) moving average
    excess = smooth - np.percentile(smooth, FLOOR_PERCENTILE, axis=0)
    loudest = np.sort(excess, axis=1)[:, -max(1, smooth.shape[1] // 4):].mean(axis=1)
    return hysteresis(loudest - np.percentile(loudest, FLOOR_PERCENTILE), on_db, off_db)


def activity_events(probs: np.ndarray, starts: np.ndarray, window: float, duration: float,
                    classes: list[str], params: EventParams, band_db: np.ndarray,
                    band_times: np.ndarray) -> list[Event]:
    """Events where :func:`activity` finds a sound, each labelled with the class whose curve
    (:func:`frame_probs`) has the highest mean over it; its confidence is that mean. Spans of
    activity closer than ``merge_gap`` are joined, shorter than ``min_duration`` dropped."""
    active = activity(band_db, band_times, params.on_db, params.off_db)
    half = float(np.median(np.diff(band_times))) / 2 if len(band_times) > 1 else 0.0
    runs = _runs(active)
    spans = _joined(runs, [max(0.0, band_times[a] - half) for a, _ in runs],
                    [min(duration, band_times[b - 1] + half) for _, b in runs], params.merge_gap)
    edges, curve = frame_probs(probs, starts, window, duration)
    events = []
    for onset, offset, _, _ in spans:
        if offset - onset + 1e-9 < params.min_duration:
            continue
        overlap = np.clip(np.minimum(edges[1:], offset) - np.maximum(edges[:-1], onset), 0, None)
        if overlap.sum() <= 0:
            continue
        mean = overlap @ curve / overlap.sum()
        best = int(np.argmax(mean))
        events.append(Event(float(onset), float(offset), classes[best], float(mean[best])))
    return events


def detect(probs: np.ndarray, starts: np.ndarray, window: float, duration: float,
           classes: list[str], params: EventParams = EventParams(),
           levels: np.ndarray | None = None, band_db: np.ndarray | None = None,
           band_times: np.ndarray | None = None) -> list[Event]:
    """Events of every class, sorted by onset.

    ``probs`` (W, C) and ``starts`` (W,) seconds as :class:`~sonic.inference.prediction.Prediction`
    holds them; ``levels`` (W,) dB the windows' loudness, for the gate (None: no gate);
    ``band_db``, ``band_times`` the file's short frames for the activity detector. The activity
    detector runs when ``params.detector`` asks for it, the frames are there and the windows
    stand on a noise floor (:func:`has_floor`); otherwise — a file that is one steady sound, or
    too short to have a floor — the probability detector does.
    """
    if len(starts) == 0:
        return []
    if (params.detector == "activity" and band_db is not None and levels is not None
            and len(band_db) and has_floor(levels)):
        return activity_events(probs, starts, window, duration, classes, params, band_db,
                               band_times)
    edges, curve = frame_probs(gate(probs, levels, params.gate_db, params.floor_db), starts,
                               window, duration)
    events = [e for c, label in enumerate(classes)
              for e in _segments(edges, curve[:, c], hysteresis(curve[:, c], params.on,
                                                                  params.off), label, params)]
    return sorted(events, key=lambda e: (e.onset, e.label))


def top1_events(probs: np.ndarray, starts: np.ndarray, window: float, duration: float,
                classes: list[str]) -> list[Event]:
    """The baseline: each window's top class over the time from its start to the next window's
    start (the last: to its end), neighbours of one class joined; no threshold, no gate."""
    if len(starts) == 0:
        return []
    bounds = np.append(starts, min(starts[-1] + window, max(duration, starts[-1])))
    top = probs.argmax(axis=1)
    cut = [0, *(np.flatnonzero(np.diff(top)) + 1), len(top)]
    events = []
    for i, j in zip(cut[:-1], cut[1:]):
        conf = float(probs[i:j, top[i]].mean())
        events.append(Event(float(bounds[i]), float(bounds[j]), classes[top[i]], conf))
    return events


# ------------------------------------------------------------------------------ writing
def events_csv(events: list[Event], file: str = "") -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["file", "onset_s", "offset_s", "label", "confidence"])
    for e in events:
        d = e.to_dict()
        writer.writerow([file, d["onset_s"], d["offset_s"], d["label"], d["confidence"]])
    return out.getvalue()


def audacity_labels(events: list[Event]) -> str:
    """An Audacity label track: ``onset<TAB>offset<TAB>label`` per line (File → Import →
    Labels…)."""
    return "".join(f"{e.onset:.6f}\t{e.offset:.6f}\t{e.label}\n" for e in events)


def write_events(events: list[Event], out_dir: Path, stem: str, file: str,
                 params: EventParams | None = None) -> list[Path]:
    """``<stem>.events.csv``, ``<stem>.events.json`` and ``<stem>.txt`` (Audacity labels) in
    ``out_dir``, each written atomically; returns the three paths."""
    paths = [out_dir / f"{stem}.events.csv", out_dir / f"{stem}.events.json",
             out_dir / f"{stem}.txt"]
    doc = {"file": file, "params": asdict(params) if params else None,
           "events": [e.to_dict() for e in events]}
    for path, text in zip(paths, [events_csv(events, file), json.dumps(doc, indent=1) + "\n",
                                  audacity_labels(events)]):
        write_text(path, text)
    return paths


def window_levels(wave: np.ndarray, starts: np.ndarray, size: int) -> np.ndarray:
    """(W,) RMS level in dB (full scale: 0 dB) of ``wave[s:s + size]`` for each start sample;
    one window at a time, so nothing the size of the file is allocated."""
    levels = np.empty(len(starts))
    for i, s in enumerate(starts):
        part = wave[s:s + size]
        levels[i] = float(np.dot(part, part)) / max(len(part), 1)
    return 10 * np.log10(np.maximum(levels, 1e-20))


def prediction_events(prediction, params: EventParams = EventParams()) -> list[Event]:
    """:func:`detect` on a :class:`~sonic.inference.prediction.Prediction` (its window
    probabilities, starts, window length, duration, classes and, when set, window levels)."""
    if not prediction.ok:
        return []
    return detect(prediction.window_probs, prediction.starts, prediction.window,
                  prediction.duration, prediction.classes, params, prediction.levels,
                  prediction.band_db, prediction.band_times)
