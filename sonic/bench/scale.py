"""``python -m sonic.bench --scale``: training as data and processes grow.

Each figure comes from the real ``train`` stage (``python -m stages.train``) run as a child
process on a generated feature set of the params' shape (random dB spectrograms, 10 classes):

- peak RSS of the stage's whole process tree on the 1× set and on a 10× set (streaming keeps it
  flat: batches come from the memory map);
- samples/s of the streaming loop against the same loop over the set loaded into RAM first (what
  training did before streaming), measured in one process so the two are comparable;
- samples/s with ``train.nproc`` 1 and 2 (torchrun, gloo on CPU / NCCL on CUDA).
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from sonic.config import Params, to_dict

N_CLASSES = 10


def write_feature_set(folder: Path, clips: int, n_mels: int, n_frames: int, seed: int = 0) -> None:
    """``mels.npy`` (written in chunks, never whole in RAM), ``index.csv`` and ``split.csv``
    (every seventh clip validates)."""
    folder.mkdir(parents=True, exist_ok=True)
    mels = np.lib.format.open_memmap(folder / "mels.npy", mode="w+", dtype=np.float32,
                                     shape=(clips, n_mels, n_frames))
    rng = np.random.default_rng(seed)
    labels = np.arange(clips) % N_CLASSES
    for start in range(0, clips, 512):
        stop = min(start + 512, clips)
        chunk = rng.normal(-50, 12, (stop - start, n_mels, n_frames)).astype(np.float32)
        chunk[:, :, :] += (labels[start:stop, None, None] * 2).astype(np.float32)
        mels[start:stop] = np.clip(chunk, -80, 0)
    mels.flush()
    del mels
    ids = [f"c{i:06d}.wav" for i in range(clips)]
    index = pd.DataFrame({"clip_id": ids, "source": ids, "label": [f"k{c}" for c in labels],
                          "group": ids, "role": "train", "fold": 0})
    index.to_csv(folder / "index.csv", index=False)
    roles = np.where(np.arange(clips) % 7 == 0, "val", "train")  # 7 and 10 coprime: all classes
    index.assign(role=roles)[["clip_id", "label", "group", "role"]].to_csv(
        folder / "split.csv", index=False)


def tree_peak_rss_mib(proc: subprocess.Popen, interval: float = 0.05) -> tuple[float, float]:
    """Poll ``proc`` and its descendants until it exits: the largest summed RSS, and the largest
    summed anonymous RSS (RSS less file-backed pages, such as a memory map's page cache, which
    the kernel reclaims at will), both MiB."""
    import psutil  # a dependency of DVC

    peak = peak_anon = 0.0
    root = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            members = [root, *root.children(recursive=True)]
        except psutil.Error:
            break
        total = anon = 0
        for member in members:
            try:
                info = member.memory_info()
            except psutil.Error:
                continue
            total, anon = total + info.rss, anon + info.rss - info.shared
        peak, peak_anon = max(peak, total / 2**20), max(peak_anon, anon / 2**20)
        time.sleep(interval)
    proc.wait()
    return peak, peak_anon


def run_train(work: Path, features: Path, params: Params, model: str, nproc: int,
              epochs: int) -> dict[str, Any]:
    """The train stage on ``features`` with ``nproc`` processes; its run.json plus peak RSS."""
    out = work / f"{features.name}-{model}-{nproc}"
    train = {**to_dict(params.train), "epochs": epochs, "use_augmented": False, "nproc": nproc,
             "patience": epochs}
    doc = {"features": to_dict(params.features), "train": train,
           model: to_dict(getattr(params, model))}
    (out.parent / f"{out.name}.yaml").write_text(yaml.safe_dump(doc))
    cmd = [sys.executable, "-m", "stages.train", "--params", str(out.parent / f"{out.name}.yaml"),
           "--model", model, "--features", str(features), "--split", str(features / "split.csv"),
           "--augmented", str(work / "none"), "--checkpoint", str(out / "model.pt"),
           "--live", str(out / "live")]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=Path(__file__).resolve().parents[2],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak, peak_anon = tree_peak_rss_mib(proc)
    log = proc.stdout.read()
    if proc.returncode:
        raise RuntimeError(f"train stage failed ({' '.join(cmd)}):\n{log[-3000:]}")
    details = json.loads((out / "live/run.json").read_text())
    return {"samples_per_s": details["samples_per_s"], "train_samples": details["train_samples"],
            "processes": details["processes"], "precision": details["precision"],
            "device": details["device"], "peak_rss_mib": peak,
            "peak_anon_rss_mib": peak_anon,
            "wall_s": time.perf_counter() - t0}


def stream_vs_ram(features: Path, params: Params, model: str, epochs: int) -> dict[str, Any]:
    """Samples/s of ``fit`` reading batches from the memory map, then from a copy in RAM (the
    loop before streaming), alternating and keeping the better of two runs each."""
    import torch

    from sonic.models import build_model
    from sonic.runtime import pick_device
    from sonic.training.data import load_classifier_data, MelSet
    from sonic.training.loop import fit

    data = load_classifier_data(features, features / "split.csv", None)
    (array, rows), = data.train.parts
    in_ram = MelSet([(np.asarray(array[rows]), np.arange(len(rows)))], data.train.labels.numpy(),
                    data.mean, data.std)
    cfg = params.train.__class__(**{**to_dict(params.train), "epochs": epochs,
                                    "patience": epochs})
    device = pick_device(cfg.device)
    best = {"stream": 0.0, "ram": 0.0}
    for _ in range(2):
        for name, train in (("stream", data.train), ("ram", in_ram)):
            torch.manual_seed(0)
            net = build_model(model, getattr(params, model), len(data.classes))
            result = fit(net, train, data.val, cfg, device, select=False, desc=name)
            best[name] = max(best[name], result.samples_per_s)
    return {"stream_samples_per_s": best["stream"], "ram_samples_per_s": best["ram"],
            "stream_over_ram": best["stream"] / best["ram"]}


def bench_scale(params: Params, work: Path, clips: int, model: str = "resnet",
                epochs: int = 1) -> dict[str, Any]:
    """Every figure of the module docstring; ``clips`` is the 1× set's size."""
    f = params.features
    small, large = work / "x1", work / "x10"
    write_feature_set(small, clips, f.n_mels, f.n_frames)
    write_feature_set(large, 10 * clips, f.n_mels, f.n_frames, seed=1)
    out: dict[str, Any] = {"model": model, "epochs": epochs, "clips_1x": clips,
                           "clips_10x": 10 * clips, "input": [f.n_mels, f.n_frames]}
    one = run_train(work, small, params, model, 1, epochs)
    ten = run_train(work, large, params, model, 1, epochs)
    two = run_train(work, small, params, model, 2, epochs)
    out["rss"] = {"peak_mib_1x": one["peak_rss_mib"], "peak_mib_10x": ten["peak_rss_mib"],
                  "growth": ten["peak_rss_mib"] / one["peak_rss_mib"] - 1,
                  "peak_anon_mib_1x": one["peak_anon_rss_mib"],
                  "peak_anon_mib_10x": ten["peak_anon_rss_mib"],
                  "mels_npy_mib_10x": (large / "mels.npy").stat().st_size / 2**20}
    out["processes"] = {"samples_per_s_1": one["samples_per_s"],
                        "samples_per_s_2": two["samples_per_s"],
                        "speedup_2_over_1": two["samples_per_s"] / one["samples_per_s"],
                        "precision": one["precision"], "device": one["device"]}
    out["streaming"] = stream_vs_ram(small, params, model, epochs)
    out["runs"] = {"1x_1proc": one, "10x_1proc": ten, "1x_2proc": two}
    return out


def format_scale(report: dict[str, Any]) -> str:
    r, p, s = report["scale"]["rss"], report["scale"]["processes"], report["scale"]["streaming"]
    m, sc = report["machine"], report["scale"]
    return "\n".join([
        f"Sonic scale benchmark, {m['date']}: {m['device_name']} ({m['device']}), "
        f"{m['cores_usable']}/{m['cores']} cores, torch {m['torch']}; {sc['model']}, "
        f"input {sc['input'][0]}x{sc['input'][1]}, {sc['epochs']} epoch(s)",
        f"peak RSS of the train stage: {r['peak_mib_1x']:.0f} MiB on {sc['clips_1x']} clips, "
        f"{r['peak_mib_10x']:.0f} MiB on {sc['clips_10x']} ({r['growth']:+.1%}; mels.npy "
        f"{r['mels_npy_mib_10x']:.0f} MiB); anonymous (not page cache) {r['peak_anon_mib_1x']:.0f}"
        f" -> {r['peak_anon_mib_10x']:.0f} MiB",
        f"samples/s: 1 process {p['samples_per_s_1']:.1f}, 2 processes {p['samples_per_s_2']:.1f} "
        f"({p['speedup_2_over_1']:.2f}x), {p['precision']} on {p['device']}",
        f"streaming from the memory map {s['stream_samples_per_s']:.1f} samples/s vs in RAM "
        f"{s['ram_samples_per_s']:.1f} ({s['stream_over_ram']:.2f}x)"])
