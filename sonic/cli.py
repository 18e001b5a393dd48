"""The ``sonic`` command: use what the pipeline trained.

::

    sonic predict PATH... [--model cnn|resnet|ensemble|FILE.pt] [--top-k K]
                  [--format table|json|csv] [--window SECONDS] [--hop SECONDS]
                  [--max-seconds SECONDS] [--unknown-threshold SCORE]
                  [--events [--events-dir DIR] [--on P] [--off P] [--min-duration S] ...]
                  [--calibrate-unknown KEEP]
    sonic serve   [--host 127.0.0.1] [--port 8000] [--models ...] [--generator FILE]
                  [--token TOKEN] [--max-seconds SECONDS] [--max-decoders N]
                  [--unknown-threshold SCORE]
    sonic export  --format onnx [--model cnn|resnet|FILE.pt] --out FILE.onnx
    sonic bench   ...   (python -m sonic.bench)
    sonic cv      ...   (python -m sonic.cv)
    sonic soundscape ... (python -m sonic.inference.soundscape: build and score soundscapes)

Exit status of ``predict``: 0 when every file was predicted, 1 when at least one file could not
be (each is named on stderr and in the output with its reason; the others are still
predicted), 2 when nothing could run (bad arguments, no model, no input files).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

MAX_SECONDS_PREDICT, MAX_SECONDS_SERVE = 10_800.0, 300.0  # longest file read, seconds


def predict(args: argparse.Namespace) -> int:
    from sonic.inference.predict_cli import run

    return run(args)


def serve(args: argparse.Namespace) -> int:
    from sonic.serve.app import run

    return run(args)


def export(args: argparse.Namespace) -> int:
    from sonic.inference.export import run

    return run(args)


def _positive(kind: type):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value
    return parse


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a probability in [0, 1], got {text}")
    return value


def _add_unknown_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--unknown-threshold", type=_probability, metavar="SCORE",
                        help="label a clip or window 'unknown' when its confidence (max "
                             "softmax) is below SCORE; calibrate it with --calibrate-unknown "
                             "(default: off)")


def _add_event_options(parser: argparse.ArgumentParser) -> None:
    from sonic.inference.events import DETECTORS, EventParams

    d = EventParams()
    g = parser.add_argument_group("events (docs/events.md)")
    g.add_argument("--events", action="store_true",
                   help="also write each file's sound events (onset, offset, class, confidence) "
                        "as <stem>.events.csv, <stem>.events.json and an Audacity label track "
                        "<stem>.txt")
    g.add_argument("--events-dir", type=Path, default=Path("events"),
                   help="where the event files go (default: ./events)")
    g.add_argument("--detector", choices=DETECTORS, default=d.detector,
                   help="activity: events where sound rises over the file's noise floor, each "
                        "labelled with its most probable class; probability: where a class's "
                        f"probability passes --on (default {d.detector}; a file without a noise "
                        "floor always uses probability)")
    g.add_argument("--on-db", type=float, default=d.on_db, metavar="DB",
                   help=f"activity: dB over the noise floor that starts an event (default "
                        f"{d.on_db:g})")
    g.add_argument("--off-db", type=float, default=d.off_db, metavar="DB",
                   help=f"activity: dB over the floor below which it ends (default {d.off_db:g})")
    g.add_argument("--on", type=_probability, default=d.on,
                   help=f"probability: probability that starts an event (default {d.on:g})")
    g.add_argument("--off", type=_probability, default=d.off,
                   help=f"probability: probability below which it ends (default {d.off:g})")
    g.add_argument("--min-duration", type=float, default=d.min_duration, metavar="S",
                   help=f"shorter events are dropped (default {d.min_duration:g} s)")
    g.add_argument("--merge-gap", type=float, default=d.merge_gap, metavar="S",
                   help=f"events of a class closer than this are joined (default "
                        f"{d.merge_gap:g} s)")
    g.add_argument("--gate-db", type=float, default=d.gate_db, metavar="DB",
                   help=f"probability: windows this far below the loudest are background; "
                        f"0: no gate "
                        f"(default {d.gate_db:g} dB)")
    g.add_argument("--floor-db", type=float, default=d.floor_db, metavar="DB",
                   help=f"probability: windows at most this far over the file's noise floor "
                        f"are background; 0: no floor gate (default {d.floor_db:g} dB)")


def _add_runtime_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto",
                        help="auto (cuda, then mps, then cpu), cuda, mps or cpu (default auto)")
    parser.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto",
                        help="auto: bf16 autocast where the hardware runs it natively, as in "
                             "training; else fp32 (default auto)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sonic", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("predict", help="classify audio files and folders",
                       description="Classify audio files and folders (recursively) with a "
                                   "trained model. Exit status: 0 all predicted, 1 some files "
                                   "could not be, 2 nothing could run.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="audio files or folders")
    p.add_argument("--model", help="cnn, resnet, ensemble or a checkpoint FILE.pt "
                                   "(default: params.yaml's submit.model, else ensemble)")
    p.add_argument("--models-dir", default="data/models", type=Path,
                   help="where cnn.pt and resnet.pt are (default: data/models)")
    p.add_argument("--top-k", type=_positive(int), default=3)
    p.add_argument("--format", choices=["table", "json", "csv"], default="table")
    p.add_argument("--window", type=_positive(float),
                   help="seconds per scored window (default: the checkpoint's clip duration)")
    p.add_argument("--hop", type=_positive(float), help="seconds between windows (default: "
                                                        "half the window)")
    p.add_argument("--workers", type=int, help="decoding processes (default: none on the CPU, "
                                               "where the models use every core; else one "
                                               "per core)")
    p.add_argument("--batch-size", type=_positive(int), default=16,
                   help="windows per forward (default 16)")
    p.add_argument("--max-seconds", type=_positive(float), default=MAX_SECONDS_PREDICT,
                   help="longest file read, refused from its header before decoding "
                        f"(default {MAX_SECONDS_PREDICT:g} s: 3 hours)")
    _add_unknown_option(p)
    p.add_argument("--calibrate-unknown", type=_share, metavar="KEEP",
                   help="instead of predicting, print the --unknown-threshold that keeps the "
                        "share KEEP (e.g. 0.95) of PATHs, clips of the known classes such as "
                        "the val split")
    _add_event_options(p)
    _add_runtime_options(p)
    p.set_defaults(run=predict)

    s = sub.add_parser("serve", help="HTTP API and the explorer page",
                       description="Serve the JSON API and the explorer page (FastAPI + uvicorn).")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--models", nargs="+", default=["data/models/cnn.pt", "data/models/resnet.pt"],
                   help="classifier checkpoints (default: the pipeline's cnn.pt and resnet.pt)")
    s.add_argument("--generator", help="cGAN checkpoint (default: data/models/cgan.pt if "
                                       "present; 'none' to serve without one)")
    s.add_argument("--max-upload-mb", type=_positive(float), default=50.0,
                   help="largest accepted upload in MB (default 50)")
    s.add_argument("--max-seconds", type=_positive(float), default=MAX_SECONDS_SERVE,
                   help="longest audio accepted, refused from its header before decoding "
                        f"(default {MAX_SECONDS_SERVE:g} s)")
    s.add_argument("--max-decoders", type=_positive(int), default=2,
                   help="uploads decoded at the same time; others wait (default 2)")
    s.add_argument("--token", default=os.environ.get("SONIC_TOKEN"),
                   help="required on every request (header 'Authorization: Bearer TOKEN', or "
                        "open /?token=TOKEN once in the browser); needed to bind a non-loopback "
                        "--host (default: $SONIC_TOKEN, else none)")
    s.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="a further Host header value to accept, e.g. the machine's name "
                        "(repeatable; loopback names and --host are always accepted)")
    _add_unknown_option(s)
    _add_runtime_options(s)
    s.set_defaults(run=serve)

    e = sub.add_parser("export", help="export a classifier to ONNX",
                       description="Export a trained classifier to ONNX (dynamic batch and "
                                   "time axes; input: log-mel dB, outputs: logits, probabilities).")
    e.add_argument("--format", choices=["onnx"], default="onnx")
    e.add_argument("--model", default="cnn", help="cnn, resnet or a checkpoint FILE.pt")
    e.add_argument("--models-dir", default="data/models", type=Path)
    e.add_argument("--out", type=Path, required=True)
    e.add_argument("--opset", type=int, default=18, help="ONNX opset, 18 to 28 (default 18)")
    e.set_defaults(run=export)

    sub.add_parser("bench", help="benchmarks (python -m sonic.bench --help)", add_help=False)
    sub.add_parser("cv", help="cross-validation summary (python -m sonic.cv --help)",
                   add_help=False)
    sub.add_parser("soundscape", help="build and score soundscapes with known events "
                                      "(python -m sonic.inference.soundscape --help)",
                   add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    try:
        _main(argv)
    except BrokenPipeError:  # the reader left (`sonic predict … | head`): stop without a trace
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit flush
        sys.exit(141)  # as a shell reports a command ended by SIGPIPE (128 + 13)


def _main(argv: Sequence[str] | None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "bench":
        from sonic.bench.cli import main as bench

        return bench(argv[1:])
    if argv and argv[0] == "cv":
        from sonic.cv import main as cv

        return cv(argv[1:])
    if argv and argv[0] == "soundscape":
        from sonic.inference.soundscape.cli import main as soundscape

        return soundscape(argv[1:])
    args = build_parser().parse_args(argv)
    sys.exit(args.run(args))


if __name__ == "__main__":
    main()
