"""The benchmark sections of ``docs/results.md``, one per ``metrics/bench*.json`` report:
extraction and training steps, scale, inference."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from sonic.docs.markdown import load, plural, section, table
from sonic.docs.provenance import Provenance, Source


def bench_source(path: str, b: dict, command: str, prov: Provenance) -> Source:
    m = b["machine"]
    machine = f"{m['cpu']}, {m['cores_usable']} cores, torch {m['torch']}"
    if m.get("device") != "cpu":
        machine += f", {m['device_name']}"
    return Source((path,), machine, m["date"][:10], prov.command(path, command))


def data_flag(b: dict) -> str:
    d = b.get("data") or {}
    if d.get("generated_demo", True):
        return ""
    name = {"esc50": "ESC-50", "urbansound8k": "UrbanSound8K"}.get(d["layout"], "DATA")
    return f" --data /path/to/{name} --layout {d['layout']}"


def bench_pipeline(path: str, b: dict, prov: Provenance) -> str:
    e, d, f = b["extract"], b["data"], b["features"]
    rows = [["`extract_mels` (decode, resample, log-mel, write)",
             f"{e['sonic_s']:.2f} s, {e['sonic_clips_per_s']:.0f} clips/s",
             f"per-file librosa loop: {e['librosa_s']:.2f} s, "
             f"{e['librosa_clips_per_s']:.0f} clips/s", f"**{e['speedup']:.2f}×**",
             f"largest difference {e['max_abs_db_diff']:.3f} dB over {e['clips_compared']} clips"]]
    for model, t in (b.get("train") or {}).items():
        rows.append([f"{model} training step, {t['parameters'] / 1e6:.1f} M params, batch "
                     f"{t['input_shape'][0]} of {t['input_shape'][2]}×{t['input_shape'][3]}",
                     f"{t['fast_samples_per_s']:.1f} samples/s ({t['fast_precision']})",
                     f"{t['fp32_samples_per_s']:.1f} samples/s fp32", f"**{t['speedup']:.2f}×**",
                     f"max logit difference {t['logits_max_abs_diff']:.1e}, argmax agreement "
                     f"{t['argmax_agreement']:.0%}"])
    mem = b.get("memory") or {}
    if mem:
        rows.append(["peak memory (RSS)", ", ".join(f"{k.replace('_', ' ')} "
                     f"{v['peak_rss_mib']:.0f} MiB" for k, v in mem.items()), "", "", ""])
    dv = b.get("dvc")
    if dv:
        rows.append(["`dvc repro` from nothing (demo set)", f"{dv['repro_s']:.0f} s", "", "",
                     f"{len(dv['repro_ran'])} stages ran"])
        rows.append(["no-op `dvc repro`", f"{dv['noop_s']:.1f} s", "", "", ""])
        rows.append([f"`dvc exp run -S {dv['exp_set']}`", f"{dv['exp_run_s']:.0f} s", "", "",
                     "ran " + ", ".join(dv["exp_ran"])])
    body = table(["part", "Sonic", "baseline", "speedup", "check"], rows)
    note = (f"{d['clips']} clips ({d['layout']}), {f['sample_rate']} Hz, {f['duration']} s, "
            f"{f['n_mels']} mels; extraction median of {len(e['sonic_runs_s'])} alternating runs "
            "per path. The model sizes and features are the params of that date.")
    cmd = f"python -m sonic.bench{data_flag(b)} --repeats {len(e['sonic_runs_s'])} --out {path}"
    return section(f"Extraction and training steps: `{path}`", body,
                   bench_source(path, b, cmd, prov), note)


def bench_scale(path: str, b: dict, prov: Provenance) -> str:
    s = b["scale"]
    r, p, st = s["rss"], s["processes"], s["streaming"]
    rows = [["peak RSS of the stage's process tree, 1× → 10×",
             f"{r['peak_mib_1x']:,.0f} → {r['peak_mib_10x']:,.0f} MiB (**{r['growth']:+.1%}**)"],
            ["anonymous memory (RSS less the memory map's page cache)",
             f"{r['peak_anon_mib_1x']:,.0f} → {r['peak_anon_mib_10x']:,.0f} MiB "
             f"({r['peak_anon_mib_10x'] / r['peak_anon_mib_1x'] - 1:+.1%})"],
            ["streaming from the memory map vs the set loaded into RAM",
             f"{st['stream_samples_per_s']:.1f} vs {st['ram_samples_per_s']:.1f} samples/s "
             f"(**{st['stream_over_ram']:.2f}×**)"],
            ["`train.nproc` 1 vs 2", f"{p['samples_per_s_1']:.1f} vs {p['samples_per_s_2']:.1f} "
             f"samples/s ({p['speedup_2_over_1']:.2f}×)"]]
    body = table(["figure", f"`{s['model']}`, {p['precision']}"], rows)
    note = (f"The real `train` stage on generated feature sets of {s['input'][0]} × "
            f"{s['input'][1]}: {s['clips_1x']:,} and {s['clips_10x']:,} samples, "
            f"{plural(s['epochs'], 'epoch', 'epochs')}.")
    cmd = f"python -m sonic.bench --scale --scale-model {s['model']} --out {path}"
    return section(f"Scale: `{path}`", body, bench_source(path, b, cmd, prov), note)


def bench_inference(path: str, b: dict, prov: Provenance) -> str:
    p, s = b["predict"], b["serve"]
    c = s["concurrent"]
    rss = s["rss_mib_after_each_round"]
    rows = [[f"`sonic predict` over {p['clips']} clips ({p['windows']} windows), start-up "
             "included", f"**{p['cli_s']:.1f} s = {p['cli_clips_per_s']:.1f} clips/s**"],
            [f"the same Predictor one file at a time ({p['per_file_loop_clips']} clips)",
             f"{p['per_file_loop_clips_per_s']:.1f} clips/s (the CLI {p['speedup']:.2f}×)"],
            ["a naive fp32 loop over `Classifier.predict`",
             f"{p['naive_fp32_clips_per_s']:.1f} clips/s (the CLI {p['speedup_vs_naive']:.2f}×)"],
            [f"`POST /api/predict`, one {s['clip_s']:.0f} s clip, {s['requests']} requests",
             f"p50 {s['predict_p50_ms']:.0f} ms, p95 {s['predict_p95_ms']:.0f} ms"],
            ["`POST /api/inspect`",
             f"p50 {s['inspect_p50_ms']:.0f} ms, p95 {s['inspect_p95_ms']:.0f} ms"],
            [f"{c['clients']} concurrent clients, {c['requests']} requests",
             f"{c['requests_per_s']:.1f} requests/s, {c['errors']} errors, p50 "
             f"{c['latency_p50_ms']:.0f} ms, p95 {c['latency_p95_ms']:.0f} ms"],
            ["server RSS before the load, then after each round",
             " → ".join(f"{v:.0f}" for v in [s["rss_mib_before_load"], *rss[1:]]) + " MiB"]]
    body = table(["figure", f"`{p['model']}`, {p['precision']}, {p['window_s']} s windows"], rows)
    note = ("`data/models` of that date; the figures describe those checkpoints, not "
            "necessarily the ones the current params produce.")
    cmd = f"python -m sonic.bench --inference --models data/models{data_flag(b)} --out {path}"
    return section(f"Inference: `{path}`", body, bench_source(path, b, cmd, prov), note)


BENCH_KINDS: list[tuple[str, Callable]] = [("extract", bench_pipeline), ("scale", bench_scale),
                                           ("predict", bench_inference)]


def benchmarks(root: Path, prov: Provenance) -> list[str]:
    out = []
    for file in sorted(root.glob("metrics/bench*.json")):
        path, b = file.relative_to(root).as_posix(), load(file)
        kind = next((render for key, render in BENCH_KINDS if key in b), None)
        if kind is not None:
            out.append(kind(path, b, prov))
    return out
