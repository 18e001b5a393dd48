"""Scoring soundscapes: the models' events against the reference annotations with ``sed_eval``
(segment-based F1 over 1 s segments, event-based F1 with a 200 ms onset collar), beside the
per-window top-1 baseline, and the grid search that measures the event parameters' defaults."""
from __future__ import annotations

import csv
import itertools
from dataclasses import asdict
from pathlib import Path

import numpy as np

from sonic.inference.events import Event, EventParams, detect, top1_events

def read_reference(path: Path) -> list[dict]:
    """A reference CSV → sed_eval's event dicts (file, event_label, onset, offset)."""
    with open(path, newline="") as f:
        return [{"file": r["filename"], "event_label": r["event_label"],
                 "event_onset": float(r["onset"]), "event_offset": float(r["offset"])}
                for r in csv.DictReader(f)]


def as_sed(events: list[Event], file: str) -> list[dict]:
    return [{"file": file, "event_label": e.label, "event_onset": e.onset,
             "event_offset": e.offset} for e in events]


def sed_scores(reference: list[dict], estimated: list[dict], classes: list[str]) -> dict:
    """Segment-based (1 s) and event-based (onset collar 0.2 s, offsets not scored) micro F1,
    precision, recall and error rate from ``sed_eval``, over every file at once."""
    import sed_eval  # 5 s to import on a busy CPU: only when scoring

    files = sorted({e["file"] for e in reference} | {e["file"] for e in estimated})
    seg = sed_eval.sound_event.SegmentBasedMetrics(event_label_list=classes, time_resolution=1.0)
    ev = sed_eval.sound_event.EventBasedMetrics(event_label_list=classes, t_collar=0.2,
                                                evaluate_onset=True, evaluate_offset=False)
    for f in files:
        ref = [e for e in reference if e["file"] == f]
        est = [e for e in estimated if e["file"] == f]
        seg.evaluate(ref, est)
        ev.evaluate(ref, est)
    def figure(x) -> float:  # sed_eval's 0/0 (nothing detected, or nothing to find) is NaN: 0
        x = float(x)
        return 0.0 if np.isnan(x) else round(x, 4)

    out = {}
    for name, metric in (("segment_1s", seg), ("event_onset_200ms", ev)):
        overall = metric.results_overall_metrics()
        out[name] = {"f1": figure(overall["f_measure"]["f_measure"]),
                     "precision": figure(overall["f_measure"]["precision"]),
                     "recall": figure(overall["f_measure"]["recall"]),
                     "error_rate": figure(overall["error_rate"]["error_rate"])}
    return out


TUNE_GRID = {"on": (0.3, 0.4, 0.5, 0.6, 0.7), "off_drop": (0.0, 0.2),
             "min_duration": (0.0, 0.3, 1.0), "merge_gap": (0.0, 0.5, 1.0)}
TUNE_GRID_ACTIVITY = {"on_db": (1.5, 2.0, 2.5, 3.0, 4.0), "off_drop": (0.0, 1.0, 2.0),
                      "min_duration": (0.0, 0.3, 1.0), "merge_gap": (0.0, 0.5, 1.0)}


def tune(predictions: list, reference: list[dict], classes: list[str],
         detector: str = "activity") -> tuple[EventParams, dict]:
    """The grid point of ``detector`` (:data:`TUNE_GRID_ACTIVITY`: ``off_db = on_db - off_drop``,
    or :data:`TUNE_GRID`: ``off = on - off_drop``) with the best segment-based F1, ties broken
    by event-based F1; returns it and its scores."""
    best = None
    grid = TUNE_GRID_ACTIVITY if detector == "activity" else TUNE_GRID
    for on, drop, dur, gap in itertools.product(*grid.values()):
        if detector == "activity":
            params = EventParams(min_duration=dur, merge_gap=gap, on_db=on,
                                 off_db=max(0.0, on - drop))
        else:
            params = EventParams(on, max(0.0, on - drop), dur, gap, detector="probability")
        scores = sed_scores(reference, detections(predictions, params), classes)
        key = (scores["segment_1s"]["f1"], scores["event_onset_200ms"]["f1"])
        if best is None or key > best[0]:
            best = (key, params, scores)
    return best[1], best[2]


def detections(predictions: list, params: EventParams | None) -> list[dict]:
    """sed_eval event dicts of every prediction: :func:`detect` with ``params``, or the top-1
    baseline when ``params`` is None."""
    out = []
    for p in predictions:
        args = (p.window_probs, p.starts, p.window, p.duration, p.classes)
        events = (top1_events(*args) if params is None
                  else detect(*args, params, p.levels, p.band_db, p.band_times))
        out += as_sed(events, Path(p.path).name)
    return out


def score(scene_dir: Path, predictor, params: EventParams = EventParams(), window=None,
          hop=None, tune_params: bool = False) -> dict:
    """Events and the top-1 baseline of every ``scene_*.wav`` in ``scene_dir`` scored against
    ``reference.csv``; with ``tune_params`` also the best grid point."""
    wavs = sorted(scene_dir.glob("scene_*.wav"))
    if not wavs or not (scene_dir / "reference.csv").is_file():
        raise FileNotFoundError(f"{scene_dir}: no scene_*.wav with reference.csv; make them "
                                "with `python -m sonic.inference.soundscape build`")
    windowing = predictor.windowing(window, hop)
    predictions = [predictor.predict_file(w, windowing=windowing) for w in wavs]
    for p in predictions:
        if not p.ok:
            raise ValueError(f"{p.path}: {p.error}")
    reference, classes = read_reference(scene_dir / "reference.csv"), predictor.classes
    unknown = sorted({e["event_label"] for e in reference} - set(classes))
    if unknown:
        raise ValueError(f"{scene_dir}/reference.csv: labels the models do not know: "
                         f"{', '.join(unknown)}")
    result = {"scenes": len(wavs), "events": len(reference), "model": predictions[0].model,
              "window_s": windowing.window, "hop_s": windowing.hop,
              "params": asdict(params),
              "detected": sed_scores(reference, detections(predictions, params), classes),
              "top1_baseline": sed_scores(reference, detections(predictions, None), classes)}
    if tune_params:
        best, scores = tune(predictions, reference, classes, params.detector)
        result["tuned"] = {"params": asdict(best), **scores}
    return result
