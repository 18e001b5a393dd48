"""Soundscapes with known answers: long recordings built from held-out clips, and their scores.

``build`` places clips of known classes at random, non-overlapping times over a background
(pink noise, or a recording) at signal-to-noise ratios drawn from a list, and writes each
soundscape as ``scene_NNN.wav`` with its reference annotation ``scene_NNN.csv``
(``filename,onset,offset,event_label,snr_db,source``; an event spans the clip's sound: the clip
trimmed of what is more than ``trim_db`` below its loudest frame). ``score`` runs the models on
every soundscape, detects events (:mod:`sonic.inference.events`) and scores them against the
references with ``sed_eval``: segment-based F1 (1 s segments) and event-based F1 (onset collar
200 ms, offsets not scored), beside the plain per-window top-1 baseline. ``--tune`` also tries a
small grid of event parameters and reports the best by segment-based F1 — how the defaults of
:class:`~sonic.inference.events.EventParams` are measured.

::

    python -m sonic.inference.soundscape build --clips CLIPS --out DIR [--scenes 10]
        [--duration 60] [--events 8] [--snr 0 6 12] [--seed 0] [--background FILE]
    python -m sonic.inference.soundscape score DIR [--model ...] [--tune] [--out FILE.json]
"""
from __future__ import annotations

import argparse
import csv
import io
import itertools
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile as sf

from sonic.audio.io import read_audio
from sonic.features.mel import resample, to_mono, trim_bounds
from sonic.inference.events import (DETECTORS, Event, EventParams, detect, prediction_events,
                                   top1_events, write_atomic)

REFERENCE_FIELDS = ["filename", "onset", "offset", "event_label", "snr_db", "source"]


@dataclass(frozen=True)
class SceneConfig:
    duration: float = 60.0  # seconds per soundscape
    sample_rate: int = 22050  # Hz of the written WAVs
    events: int = 8  # clips placed per soundscape (fewer if they do not fit)
    snrs: tuple[float, ...] = (0.0, 6.0, 12.0)  # dB, clip RMS over background RMS; drawn per clip
    min_gap: float = 1.0  # seconds between two placed clips
    trim_db: float = 30.0  # dB below a clip's loudest frame that is not part of its event
    background_dbfs: float = -30.0  # RMS level of the background, dB full scale


def list_clips(source: Path, fold: int | None = None, audio_dir: Path | None = None
               ) -> list[tuple[Path, str]]:
    """(path, label) of held-out clips: a folder of ``<class>/<clip>`` subfolders, or a CSV
    with ``filename`` and ``label`` (or ESC-50's ``category``) columns, files relative to
    ``audio_dir`` (default: the CSV's folder), only fold ``fold`` when given."""
    from sonic.audio.io import audio_extensions

    if source.is_dir():
        found = [(p, p.parent.name) for p in sorted(source.glob("*/*"))
                 if p.suffix.lower() in audio_extensions()]
    elif source.is_file():
        with open(source, newline="") as f:
            rows = list(csv.DictReader(f))
        column = "label" if rows and "label" in rows[0] else "category"
        if not rows or "filename" not in rows[0] or column not in rows[0]:
            raise ValueError(f"{source}: needs the columns filename and label (or category)")
        if fold is not None:
            rows = [r for r in rows if int(r.get("fold", -1)) == fold]
        base = audio_dir or source.parent
        found = [(base / r["filename"], r[column]) for r in rows]
    else:
        raise FileNotFoundError(f"{source}: no such folder or CSV of clips")
    if not found:
        raise ValueError(f"{source}: no clips found (a folder needs <class>/<clip> files; a CSV "
                         "needs rows, of fold --fold when given)")
    return found


def load_mono(path: Path, sample_rate: int) -> np.ndarray:
    """(samples,) float32 mono at ``sample_rate``."""
    audio, sr = read_audio(path)
    return resample(to_mono(audio), sr, sample_rate).astype(np.float32)


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) noise with a 1/f power spectrum, unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))
    wave = np.fft.irfft(spectrum, n)
    return (wave / np.sqrt(np.mean(wave ** 2))).astype(np.float32)


def rms(wave: np.ndarray) -> float:
    return float(np.sqrt(np.mean(wave.astype(np.float64) ** 2) + 1e-20))


def onsets(lengths: list[float], duration: float, min_gap: float,
           rng: np.random.Generator) -> list[float]:
    """Random onsets (s) of clips of ``lengths`` seconds, in order, none overlapping and at
    least ``min_gap`` apart, all inside ``duration``: the free time is split at random."""
    free = duration - sum(lengths) - min_gap * (len(lengths) - 1)
    cuts = np.sort(rng.uniform(0, free, len(lengths)))
    out, used = [], 0.0
    for cut, length in zip(cuts, lengths):
        out.append(float(cut + used))
        used += length + min_gap
    return out


def build_scene(sources: list[tuple[np.ndarray, str, str]], background: np.ndarray,
                cfg: SceneConfig, rng: np.random.Generator, name: str
                ) -> tuple[np.ndarray, list[dict]]:
    """One soundscape: (samples,) float32 and its reference rows.

    ``sources``: (trimmed mono clip at ``cfg.sample_rate``, label, source name) to place, in
    order; clips that do not fit in ``cfg.duration`` are left out.
    """
    sr, n = cfg.sample_rate, int(round(cfg.duration * cfg.sample_rate))
    lengths = [len(w) / sr for w, _, _ in sources]
    while sources and sum(lengths) + cfg.min_gap * (len(lengths) - 1) > cfg.duration:
        sources, lengths = sources[:-1], lengths[:-1]
    mix = background[:n].astype(np.float64).copy()
    noise_rms, rows = rms(mix), []
    for (wave, label, source), onset in zip(sources, onsets(lengths, cfg.duration,
                                                             cfg.min_gap, rng)):
        snr = float(rng.choice(cfg.snrs))
        start = int(round(onset * sr))
        mix[start:start + len(wave)] += wave * (noise_rms * 10 ** (snr / 20) / rms(wave))
        rows.append({"filename": name, "onset": round(start / sr, 4),
                     "offset": round((start + len(wave)) / sr, 4), "event_label": label,
                     "snr_db": snr, "source": source})
    peak = np.abs(mix).max()
    if peak > 0.99:  # the whole scene scaled down: the SNRs stay as drawn
        mix *= 0.99 / peak
    return mix.astype(np.float32), rows


def build(clips: list[tuple[Path, str]], out: Path, scenes: int, cfg: SceneConfig,
          seed: int = 0, background: Path | None = None) -> list[Path]:
    """Write ``scenes`` soundscapes and their references into ``out``; clips are drawn
    without replacement until each has been used, then again. Returns the WAV paths."""
    rng = np.random.default_rng(seed)
    sr, n = cfg.sample_rate, int(round(cfg.duration * cfg.sample_rate))
    bed = load_mono(background, sr) if background else None
    level = 10 ** (cfg.background_dbfs / 20)
    pool: list[int] = []
    out.mkdir(parents=True, exist_ok=True)
    written, all_rows = [], []
    for i in range(scenes):
        picks = []
        for _ in range(cfg.events):
            pool = pool or list(rng.permutation(len(clips)))
            picks.append(clips[pool.pop()])
        sources = []
        for path, label in picks:
            wave = load_mono(path, sr)
            a, b = trim_bounds(wave, cfg.trim_db)
            sources.append((wave[a:b], label, path.name))
        if bed is None:
            bg = pink_noise(n, rng) * level
        else:
            bg = np.resize(bed, n) * (level / rms(bed))
        name = f"scene_{i:03d}.wav"
        wave, rows = build_scene(sources, bg, cfg, rng, name)
        tmp = out / f".{name}.tmp.wav"
        sf.write(tmp, wave, sr, subtype="PCM_16")
        tmp.replace(out / name)
        write_atomic(out / f"scene_{i:03d}.csv", rows_csv(rows))
        written.append(out / name)
        all_rows += rows
    write_atomic(out / "reference.csv", rows_csv(all_rows))
    return written


def rows_csv(rows: list[dict]) -> str:
    text = io.StringIO()
    writer = csv.DictWriter(text, REFERENCE_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue()


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


def timeline_png(reference: list[dict], events: list[Event], duration: float, path: Path,
                 title: str = "") -> None:
    """One lane per class: the reference events (grey, upper half) over the detected ones
    (coloured, lower half, shaded by confidence) along the recording's time axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = sorted({e["event_label"] for e in reference} | {e.label for e in events})
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(classes) + 1.2), dpi=110)
    for row, label in enumerate(classes):
        ref = [(e["event_onset"], e["event_offset"] - e["event_onset"]) for e in reference
               if e["event_label"] == label]
        ax.broken_barh(ref, (row + 0.05, 0.4), color="0.6")
        for e in (e for e in events if e.label == label):
            ax.broken_barh([(e.onset, e.offset - e.onset)], (row - 0.45, 0.4), color="C0",
                           alpha=0.35 + 0.65 * e.confidence)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    ax.set_ylim(-0.6, len(classes) - 0.4)
    ax.set_xlim(0, duration)
    ax.set_xlabel("time (s) — grey: reference, blue: detected (darker: more confident)")
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def plot(scene: Path, predictor, params: EventParams = EventParams(), window=None,
         hop=None, out: Path = Path("events_timeline.png")) -> list[Event]:
    """Detect the events of one soundscape and draw them against its reference
    (``reference.csv`` beside it); returns the events."""
    reference = [e for e in read_reference(scene.parent / "reference.csv")
                 if e["file"] == scene.name]
    result = predictor.predict_file(scene, windowing=predictor.windowing(window, hop))
    if not result.ok:
        raise ValueError(f"{scene}: {result.error}")
    events = prediction_events(result, params)
    rule = (f"activity on {params.on_db:g} / off {params.off_db:g} dB"
            if params.detector == "activity" else f"on {params.on:g} / off {params.off:g}")
    timeline_png(reference, events, result.duration, out,
                 f"{scene.name}: {result.model}, window {result.window:g} s, hop "
                 f"{predictor.windowing(window, hop).hop:g} s, {rule}")
    return events


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        if args.command == "build":
            cfg = SceneConfig(args.duration, args.sample_rate, args.events, tuple(args.snr))
            clips = list_clips(args.clips, args.fold, args.audio_dir)
            paths = build(clips, args.out, args.scenes, cfg, args.seed, args.background)
            print(f"soundscape: {len(paths)} soundscapes of {args.duration:g} s from "
                  f"{len(clips)} clips → {args.out}", file=sys.stderr)
            return
        from sonic.inference.predictor import Predictor

        predictor = Predictor.load(args.model, args.models_dir)
        params = EventParams(args.on, args.off, args.min_duration, args.merge_gap,
                             detector=args.detector, on_db=args.on_db, off_db=args.off_db)
        if args.command == "plot":
            events = plot(args.scene, predictor, params, args.window, args.hop, args.out)
            print(f"soundscape: {len(events)} events drawn → {args.out}", file=sys.stderr)
            return
        result = score(args.scenes_dir, predictor, params, args.window, args.hop, args.tune)
    except (FileNotFoundError, ValueError) as err:
        print(f"soundscape: {err}", file=sys.stderr)
        sys.exit(2)
    text = json.dumps(result, indent=1) + "\n"
    if args.out:
        write_atomic(args.out, text)
    print(text, end="")


def parser() -> argparse.ArgumentParser:
    d, s = EventParams(), SceneConfig()
    p = argparse.ArgumentParser(prog="python -m sonic.inference.soundscape",
                                description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="write soundscapes with reference annotations")
    b.add_argument("--clips", type=Path, required=True,
                   help="held-out clips: a folder of <class>/<clip>, or a CSV (filename, label "
                        "or category[, fold])")
    b.add_argument("--audio-dir", type=Path, help="where a CSV's files are (default: its folder)")
    b.add_argument("--fold", type=int, help="only this fold of a CSV (ESC-50: the held-out one)")
    b.add_argument("--out", type=Path, required=True)
    b.add_argument("--scenes", type=int, default=10)
    b.add_argument("--duration", type=float, default=s.duration, help="seconds per soundscape")
    b.add_argument("--sample-rate", type=int, default=s.sample_rate)
    b.add_argument("--events", type=int, default=s.events, help="clips per soundscape")
    b.add_argument("--snr", type=float, nargs="+", default=list(s.snrs), help="dB, drawn per clip")
    b.add_argument("--background", type=Path, help="a recording looped as background "
                                                     "(default: pink noise)")
    b.add_argument("--seed", type=int, default=0)
    c = sub.add_parser("score", help="detect events in soundscapes and score them (sed_eval)")
    c.add_argument("scenes_dir", type=Path)
    c.add_argument("--model", default="ensemble", help="cnn, resnet, ensemble or FILE.pt")
    c.add_argument("--models-dir", type=Path, default=Path("data/models"))
    c.add_argument("--window", type=float)
    c.add_argument("--hop", type=float)
    c.add_argument("--detector", choices=DETECTORS, default=d.detector)
    c.add_argument("--on-db", type=float, default=d.on_db)
    c.add_argument("--off-db", type=float, default=d.off_db)
    c.add_argument("--on", type=float, default=d.on)
    c.add_argument("--off", type=float, default=d.off)
    c.add_argument("--min-duration", type=float, default=d.min_duration)
    c.add_argument("--merge-gap", type=float, default=d.merge_gap)
    c.add_argument("--tune", action="store_true", help="also search the event parameters")
    c.add_argument("--out", type=Path, help="also write the scores here (JSON)")
    t = sub.add_parser("plot", help="draw one soundscape's detected events over its reference")
    t.add_argument("scene", type=Path, help="a scene_NNN.wav with reference.csv beside it")
    for action in c._actions:  # the same model and event options as score
        if action.dest in ("model", "models_dir", "window", "hop", "on", "off", "min_duration",
                           "merge_gap", "detector", "on_db", "off_db"):
            t._add_action(action)
    t.add_argument("--out", type=Path, default=Path("events_timeline.png"))
    return p


if __name__ == "__main__":
    main()
