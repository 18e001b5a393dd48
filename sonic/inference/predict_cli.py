"""``sonic predict``: run :class:`~sonic.inference.predictor.Predictor` over files and folders.

The parser is :func:`sonic.cli.build_parser`'s; exit status 0 when every file was predicted, 1
when at least one could not be (each named on stderr and in the output with its reason; the
others are still predicted), 2 when nothing could run (bad arguments, no model, no files).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

EXIT_OK, EXIT_SOME_FAILED, EXIT_UNUSABLE = 0, 1, 2


def _default_model() -> str:
    """``submit.model`` of ./params.yaml when run inside the project, else ``ensemble``."""
    if Path("params.yaml").is_file():
        from sonic.config import ConfigError, load_params

        try:
            return load_params("params.yaml").submit.model
        except ConfigError:
            pass
    return "ensemble"


def collect_files(paths: Sequence[str]) -> tuple[list[Path], list[str]]:
    """Files named directly (whatever their suffix) and every audio file under named folders,
    recursively, sorted; plus a warning for each folder without any."""
    from sonic.audio.io import audio_extensions

    suffixes, files, warnings = audio_extensions(), [], []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in suffixes
                           and p.is_file())
            if not found:
                warnings.append(f"{path}: no audio files in this folder (looked for "
                                f"{', '.join(sorted(suffixes)[:6])}, …)")
            files += found
        else:
            files.append(path)  # a missing or unreadable file is reported by read_audio
    return files, warnings


def run(args: argparse.Namespace) -> int:
    """``sonic predict``: every file's prediction to stdout, its events to files with
    ``--events``, or an unknown threshold with ``--calibrate-unknown``; the exit status."""
    from tqdm import tqdm

    from sonic.audio.io import AudioLimits
    from sonic.inference.output import WRITERS
    from sonic.inference.predictor import Predictor, UnknownModelError
    from sonic.runtime import pick_device

    files, warnings = collect_files(args.paths)
    for warning in warnings:
        print(f"sonic predict: {warning}", file=sys.stderr)
    if not files:
        print("sonic predict: no input files", file=sys.stderr)
        return EXIT_UNUSABLE
    try:
        limits = AudioLimits(max_seconds=args.max_seconds, hint="sonic predict --max-seconds")
        predictor = Predictor.load(args.model or _default_model(), args.models_dir,
                                   pick_device(args.device), args.batch_size, args.precision,
                                   limits)
        windowing = predictor.windowing(args.window, args.hop)
    except (FileNotFoundError, UnknownModelError, ValueError, RuntimeError) as err:
        print(f"sonic predict: {err}", file=sys.stderr)
        return EXIT_UNUSABLE
    progress = sys.stderr.isatty() and sys.stdout.isatty()  # no bar when the output is piped
    if args.calibrate_unknown is not None:
        return calibrate(predictor, files, windowing, args)
    writer = WRITERS[args.format](sys.stdout, args.top_k)
    failed = 0
    if args.events:  # one file at a time: the event gate needs each window's level
        from sonic.inference.events import EventParams

        try:
            params = EventParams(args.on, args.off, args.min_duration, args.merge_gap,
                                 None if args.gate_db == 0 else args.gate_db,
                                 None if args.floor_db == 0 else args.floor_db,
                                 args.detector, args.on_db, args.off_db)
        except ValueError as err:
            print(f"sonic predict: {err}", file=sys.stderr)
            return EXIT_UNUSABLE
        results = (predictor.predict_file(f, windowing=windowing) for f in files)
    else:
        results = predictor.predict_files(files, windowing=windowing, workers=args.workers,
                                          progress=progress)
    stems: set[str] = set()
    for result in results:
        result.unknown_threshold = args.unknown_threshold
        if not result.ok:
            failed += 1
            tqdm.write(f"sonic predict: {result.path}: {result.error}", file=sys.stderr)
        elif args.events:
            write_file_events(result, params, args.events_dir, stems)
        writer.write(result)
    writer.close()
    if failed:
        print(f"sonic predict: {failed} of {len(files)} files could not be predicted",
              file=sys.stderr)
    return EXIT_SOME_FAILED if failed else EXIT_OK


def write_file_events(result, params, out_dir: Path, stems: set[str]) -> None:
    """``<stem>.events.csv``, ``.events.json`` and ``.txt`` (Audacity labels) of one file in
    ``out_dir``; a stem already used in this run gets ``-2``, ``-3``… appended."""
    from sonic.inference.events import prediction_events, write_events

    stem, n = Path(result.path).stem, 1
    while (stem if n == 1 else f"{stem}-{n}") in stems:
        n += 1
    stem = stem if n == 1 else f"{stem}-{n}"
    stems.add(stem)
    events = prediction_events(result, params)
    paths = write_events(events, out_dir, stem, result.path, params)
    print(f"sonic predict: {result.path}: {len(events)} events → {paths[0].parent}/{stem}"
          ".{events.csv,events.json,txt}", file=sys.stderr)


def calibrate(predictor, files: list[Path], windowing, args: argparse.Namespace) -> int:
    """Print the unknown threshold that keeps ``args.calibrate_unknown`` of ``files`` (clips of
    the known classes, e.g. the val split): clip-level max softmax quantile."""
    import numpy as np

    from sonic.inference.unknown import calibrate_threshold, confidence

    results = list(predictor.predict_files(files, windowing=windowing, workers=args.workers))
    good = [r for r in results if r.ok]
    for r in results:
        if not r.ok:
            print(f"sonic predict: {r.path}: {r.error}", file=sys.stderr)
    if not good:
        print("sonic predict: no file could be scored to calibrate on", file=sys.stderr)
        return EXIT_UNUSABLE
    threshold = calibrate_threshold(np.array([confidence(r.probs) for r in good]),
                                    args.calibrate_unknown)
    print(f"sonic predict: --unknown-threshold {threshold:.4f} keeps "
          f"{args.calibrate_unknown:.0%} of {len(good)} known clips", file=sys.stderr)
    print(f"{threshold:.6f}")
    return EXIT_SOME_FAILED if len(good) < len(results) else EXIT_OK
