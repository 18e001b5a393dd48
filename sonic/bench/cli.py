"""``python -m sonic.bench``: run each measured part in a child process, then report."""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import yaml

from sonic.bench.dvc import time_pipeline
from sonic.bench.memory import TreePeak, own_peak_rss_mib
from sonic.config import DemoConfig, Params, load_params, to_dict
from sonic.runtime import pick_device, write_json

REPO = Path(__file__).resolve().parents[2]
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
INDEX_FILES = {"esc50": "meta/esc50.csv", "urbansound8k": "metadata/UrbanSound8K.csv"}
DEMO_PER_CLASS = 8  # generated clips per demo class without --data (and without --limit)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sonic.bench",
                                     description="Benchmark Sonic on this machine (see "
                                                 "sonic/bench/__init__.py for the JSON schema).")
    parser.add_argument("--out", type=Path, help="JSON report to write")
    parser.add_argument("--data", type=Path, help="data set root (default: a generated demo set)")
    parser.add_argument("--layout", choices=["esc50", "urbansound8k", "folder"],
                        help="layout of --data (default: esc50 if meta/esc50.csv exists, "
                             "urbansound8k if metadata/UrbanSound8K.csv does, else folder)")
    parser.add_argument("--params", type=Path, default=REPO / "params.yaml",
                        help="params file (features, train, model sizes; the DVC copy's too)")
    parser.add_argument("--skip-dvc", action="store_true", help="leave out the DVC timings")
    parser.add_argument("--limit", type=int, help="extract at most N clips")
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs of each extraction path, alternating; the median counts")
    parser.add_argument("--steps", type=int, default=10, help="timed training steps per mode")
    parser.add_argument("--warmup", type=int, default=2, help="untimed training steps first")
    parser.add_argument("--threads", type=int,
                        help="OMP/MKL/OpenBLAS threads of every part and DVC stage "
                             "(default: the libraries' own)")
    inference = parser.add_argument_group(
        "inference", "--inference measures trained models instead (sonic/bench/inference.py)")
    inference.add_argument("--inference", action="store_true",
                           help="sonic predict throughput and sonic serve latency / load")
    inference.add_argument("--models", type=Path, default=REPO / "data/models",
                           help="folder with cnn.pt and resnet.pt (default: data/models)")
    inference.add_argument("--model", default="ensemble", help="model for sonic predict")
    inference.add_argument("--requests", type=int, default=50,
                           help="sequential requests per route; per client under load")
    inference.add_argument("--clients", type=int, default=4, help="concurrent clients")
    inference.add_argument("--seconds", type=float, default=120.0,
                           help="time bound of the concurrent load")
    live = parser.add_argument_group(
        "live (--live): from a sound's onset to its label on the explorer page's screen, with "
        "Chromium's fake microphone (sonic/bench/live.py); the models of --models")
    live.add_argument("--live", action="store_true", help="measure the live microphone path")
    live.add_argument("--live-clips", type=Path, nargs="+",
                      default=[REPO / "data/demo/test/clip_0002.wav",
                               REPO / "data/demo/test/clip_0000.wav"],
                      help="clips played in turn after silences (default: two demo test clips)")
    live.add_argument("--live-onsets", type=int, default=6, help="onsets to measure")
    scale = parser.add_argument_group("scale (--scale): the train stage as data and processes grow")
    scale.add_argument("--scale", action="store_true",
                       help="peak RSS on 1x and 10x feature sets, 1 vs 2 processes, streaming vs "
                            "in-RAM batches")
    scale.add_argument("--scale-clips", type=int,
                       help="clips of the 1x set (default: the demo's training samples)")
    scale.add_argument("--scale-model", default="resnet", choices=["cnn", "resnet"])
    scale.add_argument("--scale-epochs", type=int, default=1)
    parser.add_argument("--part", help=argparse.SUPPRESS)  # extract | librosa | train:<model>
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.part is None and args.out is None:
        parser.error("--out is required")
    return args


def run_part(args: argparse.Namespace) -> None:
    """Child side: measure one part, write ``<work>/<part>.json`` (and arrays beside it)."""
    from sonic.bench.extract import load_workload, time_librosa, time_sonic

    params = load_params(args.params)
    work = load_workload(args.data, args.layout, params.features, args.limit)
    out = args.work / args.part.replace(":", "_")
    workers = {}
    if args.part == "extract":
        device = str(pick_device(params.features.device))
        with TreePeak() as tree:
            figures, mels = time_sonic(work, device, args.work / "features")
        workers["with_workers_peak_rss_mib"] = tree.peak_mib
        figures["features"] = to_dict(work.features)
        np.save(out.with_suffix(".npy"), mels)
    elif args.part == "librosa":
        figures, mels = time_librosa(work)
        np.save(out.with_suffix(".npy"), mels)
    else:
        from sonic.bench.train import bench_model

        name = args.part.split(":")[1]
        shape = (params.train.batch_size, 1, work.features.n_mels, work.features.n_frames)
        figures = bench_model(name, getattr(params, name), params.train, work.n_classes, shape,
                              pick_device(params.train.device), args.steps, args.warmup)
    memory = {"peak_rss_mib": own_peak_rss_mib(), **workers}
    write_json(out.with_suffix(".json"), {**figures, "memory": memory})


def child(part: str, args: argparse.Namespace, data: Path, layout: str, work: Path) -> dict:
    """Run ``--part part`` in a fresh interpreter and return what it wrote."""
    cmd = [sys.executable, "-m", "sonic.bench", "--part", part, "--work", str(work),
           "--data", str(data), "--layout", layout, "--params", str(args.params),
           "--steps", str(args.steps), "--warmup", str(args.warmup)]
    cmd += ["--limit", str(args.limit)] if args.limit else []
    if subprocess.run(cmd).returncode != 0:
        sys.exit(f"sonic.bench: part {part} failed (see above)")
    return json.loads((work / f"{part.replace(':', '_')}.json").read_text())


def resolve_data(args: argparse.Namespace, tmp: Path) -> tuple[Path, str, bool]:
    """(root, layout, generated?): ``--data`` as given, or a small demo set generated in ``tmp``."""
    if args.data:
        layout = args.layout or next((name for name, index in INDEX_FILES.items()
                                      if (args.data / index).is_file()), "folder")
        return args.data.resolve(), layout, False
    from sonic.audio.demo import generate_demo

    n_classes = len(DemoConfig().classes)
    per_class = math.ceil(args.limit / n_classes) if args.limit else DEMO_PER_CLASS
    generate_demo(tmp / "demo", DemoConfig(train_per_class=per_class, test_per_class=0))
    return tmp / "demo", "folder", True


def machine_info(params: Params) -> dict[str, Any]:
    import torch

    from sonic.precision import use_bf16

    cpu = platform.processor()
    with open("/proc/cpuinfo") as f:
        cpu = next((line.split(":", 1)[1].strip() for line in f
                    if line.startswith("model name")), cpu)
    device = pick_device(params.train.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu
    return {"cpu": cpu, "cores": os.cpu_count(), "cores_usable": len(os.sched_getaffinity(0)),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "device": device.type, "device_name": name,
            "bf16_native": use_bf16("auto", device),
            "python": platform.python_version(), "platform": platform.platform(),
            "librosa": version("librosa"), "dvc": version("dvc"),
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}


def dvc_params(args: argparse.Namespace) -> dict | None:
    """The DVC copy's params: the repository's own unless ``--params`` names another file.

    ``--data`` never reaches the DVC copy: its timings are those of the default pipeline on the
    demo set that ``prepare`` generates (a whole ESC-50 training run is what the results table
    measures, not a benchmark).
    """
    if args.params.resolve() == (REPO / "params.yaml").resolve():
        return None
    return yaml.safe_load(args.params.read_text())


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Every part but DVC, each in its child process; the report without ``machine`` and ``dvc``."""
    from sonic.bench.extract import compare
    from sonic.models import MODELS

    with tempfile.TemporaryDirectory(prefix="sonic-bench-") as tmp:
        work = Path(tmp)
        data, layout, generated = resolve_data(args, work)
        runs: dict[str, list[dict]] = {"extract": [], "librosa": []}
        for _ in range(args.repeats):  # alternating, so a slow spell of the machine hits both
            for part, results in runs.items():
                os.sync()  # the last run's outputs reach the disk now, not during this run
                results.append(child(part, args, data, layout, work))
        ours, ref = (_median_run(runs[part]) for part in ("extract", "librosa"))
        diff = compare(np.load(work / "extract.npy", mmap_mode="r"), ours.pop("paths"),
                       np.load(work / "librosa.npy", mmap_mode="r"), ref.pop("paths"))
        train = {name: child(f"train:{name}", args, data, layout, work) for name in MODELS}
    memory = {"extract_sonic": ours.pop("memory"), "extract_librosa": ref.pop("memory")}
    for name, figures in train.items():
        cuda = {k: v for k, v in figures.items() if k.startswith("cuda_max")}
        memory[f"train_{name}"] = {**figures.pop("memory"), **cuda}
    return {
        "data": {"root": None if generated else str(data), "layout": layout,
                 "generated_demo": generated, "clips": ours["clips"],
                 "n_classes": next(iter(train.values()))["n_classes"], "limit": args.limit},
        "features": {**ours.pop("features"),
                     "note": "params.yaml's features with trim: false and duration = the "
                             "longest clip, so no clip is cropped"},
        "extract": {
            "clips": ours["clips"], "sonic_s": ours["seconds"],
            "sonic_clips_per_s": ours["clips_per_s"], "sonic_runs_s": ours["runs_s"],
            "librosa_s": ref["seconds"], "librosa_runs_s": ref["runs_s"],
            "librosa_clips_per_s": ref["clips_per_s"],
            "speedup": ours["clips_per_s"] / ref["clips_per_s"], **diff,
            "clips_frame_mismatch": ref["frame_mismatch"], "device": ours["device"],
            "workers": ours["workers"],
            "note": "Sonic's extract() (decoding workers included) vs a per-file librosa "
                    "load + melspectrogram + power_to_db(ref=np.max) loop; each run in a fresh "
                    "process, alternating, median of the runs; trim off, duration = the longest "
                    "clip; frames librosa did not compute are not compared"},
        "train": train,
        "memory": memory,
    }


def _median_run(results: list[dict]) -> dict:
    """The run with the median time (the upper one of an even count), with every run's time
    under ``runs_s`` and the largest peak memory of them all."""
    times = [r["seconds"] for r in results]
    median = dict(sorted(results, key=lambda r: r["seconds"])[len(results) // 2])
    median["memory"] = {key: max(r["memory"][key] for r in results) for key in median["memory"]}
    return {**median, "runs_s": times}


def format_table(report: dict[str, Any]) -> str:
    """The report as a short plain-text table: Sonic's path, its baseline, the speedup, a check."""
    m, e, f = report["machine"], report["extract"], report["features"]
    row = "{:<14}{:>13}{:>13}{:>9}  {}".format
    lines = [f"Sonic benchmark, {m['date']}: {m['device_name']} ({m['device']}), "
             f"{m['cores_usable']}/{m['cores']} cores, torch {m['torch']}",
             row("part", "Sonic", "baseline", "speedup", "check"),
             row("extract", f"{e['sonic_clips_per_s']:.1f} clip/s",
                 f"{e['librosa_clips_per_s']:.1f} clip/s", f"{e['speedup']:.2f}x",
                 f"vs librosa loop: max |dB diff| {e['max_abs_db_diff']:.2g} over "
                 f"{e['clips_compared']} clips (trim off, {f['duration']:.3g} s)")]
    for name, t in report["train"].items():
        fast = f"{t['fast_precision']}{' + channels_last' if t['fast_channels_last'] else ''}"
        lines.append(row(f"train {name}", f"{t['fast_samples_per_s']:.1f} smp/s",
                         f"{t['fp32_samples_per_s']:.1f} smp/s", f"{t['speedup']:.2f}x",
                         f"{fast} vs fp32: max |logit diff| {t['logits_max_abs_diff']:.2g}, "
                         f"loss after {t['warmup'] + t['steps']} steps {t['loss_fast']:.3f} "
                         f"vs {t['loss_fp32']:.3f}"))
    memory = ", ".join(f"{k} {v['peak_rss_mib']:.0f}" for k, v in report["memory"].items())
    lines.append(f"peak RSS (MiB): {memory}")
    d = report["dvc"]
    if d.get("skipped") or d.get("error"):
        lines.append(f"dvc: {d.get('error', 'skipped')}")
    else:
        lines.append(f"dvc: repro {d['repro_s']:.1f} s, no-op {d['noop_s']:.1f} s, exp run -S "
                     f"{d['exp_set']} {d['exp_run_s']:.1f} s (upstream stages skipped: "
                     f"{d['exp_skipped_upstream']})")
    return "\n".join(lines)


def inference_report(args: argparse.Namespace, params: Params) -> dict[str, Any]:
    """``--inference``: the clips of ``--data`` (or a generated demo set) through the trained
    models in ``--models``, by ``sonic predict`` and ``sonic serve``."""
    from sonic.audio.layouts import discover
    from sonic.bench.inference import bench_inference
    from sonic.config import DataConfig

    with tempfile.TemporaryDirectory(prefix="sonic-bench-") as tmp:
        data, layout, generated = resolve_data(args, Path(tmp))
        clips, _ = discover(DataConfig(layout=layout, root=str(data)))
        files = [c.path for c in clips][:args.limit] if args.limit else [c.path for c in clips]
        figures = bench_inference(args.models, files, args.model, args.requests, args.clients,
                                  args.seconds)
    return {"machine": machine_info(params),
            "data": {"root": None if generated else str(data), "layout": layout,
                     "generated_demo": generated, "clips": len(files)}, **figures}


def format_inference(report: dict[str, Any]) -> str:
    m, p, s = report["machine"], report["predict"], report["serve"]
    c = s["concurrent"]
    return "\n".join([
        f"Sonic inference benchmark, {m['date']}: {m['device_name']} ({m['device']}), "
        f"{m['cores_usable']}/{m['cores']} cores, torch {m['torch']}",
        f"sonic predict ({p['model']}): {p['clips']} clips, {p['windows']} windows in "
        f"{p['cli_s']:.1f} s = {p['cli_clips_per_s']:.1f} clips/s; per-file loop "
        f"{p['per_file_loop_clips_per_s']:.1f} clips/s ({p['speedup']:.2f}x), naive fp32 loop "
        f"{p['naive_fp32_clips_per_s']:.1f} clips/s ({p['speedup_vs_naive']:.2f}x)",
        f"POST /api/predict, {s['clip_s']:.1f} s clip: p50 {s['predict_p50_ms']:.0f} ms, "
        f"p95 {s['predict_p95_ms']:.0f} ms; /api/inspect p50 {s['inspect_p50_ms']:.0f} ms",
        f"{c['clients']} clients: {c['requests']} requests in {c['seconds']:.1f} s = "
        f"{c['requests_per_s']:.2f} req/s, {c['errors']} errors, p95 {c['latency_p95_ms']:.0f} ms; "
        f"server RSS before and after each of {len(s['rounds'])} rounds: "
        + " -> ".join(f"{v:.0f}" for v in s["rss_mib_after_each_round"]) + " MiB"])


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.part:
        run_part(args)
        return
    if args.threads:  # before torch is imported; every part and DVC stage inherits it
        os.environ.update({var: str(args.threads) for var in THREAD_VARS})
    params = load_params(args.params)
    if args.scale:
        from sonic.bench.scale import bench_scale, format_scale

        demo, split, augment = params.demo, params.split, params.augment
        clips = args.scale_clips or round(len(demo.classes) * demo.train_per_class
                                          * (1 - split.val_size) * (1 + augment.copies))
        with tempfile.TemporaryDirectory(prefix="sonic-bench-") as tmp:
            report = {"machine": machine_info(params),
                      "scale": bench_scale(params, Path(tmp), clips, args.scale_model,
                                           args.scale_epochs)}
        write_json(args.out, report)
        print(format_scale(report))
        print(f"written {args.out}")
        return
    if args.live:
        from sonic.bench.live import bench_live, format_live

        report = {"machine": machine_info(params),
                  "live": bench_live(args.models, args.live_clips, args.live_onsets)}
        write_json(args.out, report)
        print(format_live(report))
        print(f"written {args.out}")
        return
    if args.inference:
        report = inference_report(args, params)
        write_json(args.out, report)
        print(format_inference(report))
        print(f"written {args.out}")
        return
    report = {"machine": machine_info(params), **measure(args)}
    if args.skip_dvc:
        report["dvc"] = {"skipped": True}
    else:
        try:
            report["dvc"] = time_pipeline(REPO, dvc_params(args))
        except RuntimeError as err:  # keep the other figures; say what failed
            print(err, file=sys.stderr)
            report["dvc"] = {"error": str(err).splitlines()[0]}
    write_json(args.out, report)
    print(format_table(report))
    print(f"written {args.out}")
    if "error" in report["dvc"]:
        sys.exit("sonic.bench: the DVC part failed (see above); the rest is in the report")
