"""``python -m sonic.inference.soundscape`` (also ``sonic soundscape``): build, score, plot."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

import sonic.inference.soundscape as package
from sonic.inference.events import DETECTORS, EventParams
from sonic.inference.soundscape.plots import plot
from sonic.inference.soundscape.scenes import SceneConfig, build, list_clips
from sonic.inference.soundscape.scoring import score
from sonic.runtime import write_text

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
        write_text(args.out, text)
    print(text, end="")


def parser() -> argparse.ArgumentParser:
    d, s = EventParams(), SceneConfig()
    p = argparse.ArgumentParser(prog="python -m sonic.inference.soundscape",
                                description=package.__doc__.split("\n\n")[0])
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
