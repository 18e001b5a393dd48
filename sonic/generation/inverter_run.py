"""Stage ``train_inverter``'s work: the mel → linear-magnitude network on the real training
clips, and how much closer it brings inverted audio to held-out real clips than the old
inversion (least squares + plain Griffin-Lim) does."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from sonic.config.features import FeatureConfig
from sonic.config.invert import InvertConfig
from sonic.features.store import load_features
from sonic.generation.inverter_net import compare_methods, save_inverter, train_inverter
from sonic.generation.quality import bootstrap
from sonic.report import open_live, rounded, write_details
from sonic.runtime import pick_device, seed_everything

N_BOOT = 200  # resamples for the intervals of the comparison (a report, not a tunable)


def train_and_compare_inverter(cfg: InvertConfig, features: FeatureConfig, *,
                               features_dir: Path, split: Path, out: Path,
                               live_dir: Path) -> None:
    """Train on the split's training clips, save to ``out``, and compare the inversions on
    ``cfg.eval_clips`` held-out clips (val and test roles): ``live_dir`` gets the spectral
    convergence of the old and the new method, ``live_dir/report.json`` every figure."""
    seed_everything(cfg.seed)
    device = pick_device(cfg.device)

    feats = load_features(features_dir, waves=True)
    roles = pd.read_csv(split, dtype=str, keep_default_na=False)
    train = np.sort(feats.rows(roles.loc[roles["role"] == "train", "clip_id"]))
    held = np.sort(feats.rows(roles.loc[roles["role"].isin(["val", "test"]), "clip_id"]))
    held = held[np.random.default_rng(cfg.seed).permutation(len(held))[:cfg.eval_clips]]
    held.sort()  # forward reads of the memory maps

    t0 = time.perf_counter()
    model, losses = train_inverter(feats.waves[train], features, cfg, device)
    save_inverter(out, model, cfg, features)
    sc = compare_methods(feats.waves[held], feats.mels[held], features, cfg, model, device)
    intervals = {k: bootstrap(np.mean, (v,), N_BOOT, cfg.seed) for k, v in sc.items()}
    live = open_live(live_dir)
    # two columns in `dvc exp show`: the old inversion and the new; the rest in report.json
    live.summary = rounded({"spectral_convergence": {k: intervals[k][0]
                                                     for k in ("lstsq_gl", "network_fgl")}})
    live.end()
    write_details(live_dir / "report.json", {
        "spectral_convergence": {k: {"value": v[0], "ci": [v[1], v[2]]}
                                 for k, v in intervals.items()},
        "loss": float(np.mean(losses[-20:])), "eval_clips": len(held),
        "train_clips": len(train), "threads": torch.get_num_threads(),
        "wall_time_s": time.perf_counter() - t0})
    print(f"train_inverter: {cfg.steps} steps on {len(train)} clips in "
          f"{time.perf_counter() - t0:.0f} s; spectral convergence on {len(held)} held-out "
          "clips: " + ", ".join(f"{k} {v[0]:.3f}" for k, v in intervals.items()))

