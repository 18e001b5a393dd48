"""Stage ``train_inverter``: the mel → linear-magnitude network on the real training clips, and
how much closer it brings inverted audio to the real clips than the old inversion does."""
import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from sonic.config.features import FeatureConfig
from sonic.config.invert import InvertConfig
from sonic.config.parse import load_sections
from sonic.features.store import load_features
from sonic.generation.inverter import compare_methods, save_inverter, train_inverter
from sonic.generation.quality import bootstrap
from sonic.runtime import pick_device, seed_everything
from sonic.training.report import open_live, rounded, write_details

N_BOOT = 200  # resamples for the intervals of the comparison (a report, not a tunable)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--features", type=Path, required=True)
    parser.add_argument("--split", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="inverter checkpoint")
    parser.add_argument("--live", type=Path, required=True, help="DVCLive folder")
    args = parser.parse_args()
    params = load_sections(args.params, features=FeatureConfig, invert=InvertConfig)
    cfg, features = params.invert, params.features
    seed_everything(cfg.seed)
    device = pick_device(cfg.device)

    feats = load_features(args.features, waves=True)
    roles = pd.read_csv(args.split, dtype=str, keep_default_na=False)
    train = np.sort(feats.rows(roles.loc[roles["role"] == "train", "clip_id"]))
    held = np.sort(feats.rows(roles.loc[roles["role"].isin(["val", "test"]), "clip_id"]))
    held = held[np.random.default_rng(cfg.seed).permutation(len(held))[:cfg.eval_clips]]
    held.sort()  # forward reads of the memory maps

    t0 = time.perf_counter()
    model, losses = train_inverter(feats.waves[train], features, cfg, device)
    save_inverter(args.out, model, cfg, features)
    sc = compare_methods(feats.waves[held], feats.mels[held], features, cfg, model, device)
    intervals = {k: bootstrap(np.mean, (v,), N_BOOT, cfg.seed) for k, v in sc.items()}
    live = open_live(args.live)
    # two columns in `dvc exp show`: the old inversion and the new; the rest in report.json
    live.summary = rounded({"spectral_convergence": {k: intervals[k][0]
                                                     for k in ("lstsq_gl", "network_fgl")}})
    live.end()
    write_details(args.live / "report.json", {
        "spectral_convergence": {k: {"value": v[0], "ci": [v[1], v[2]]}
                                 for k, v in intervals.items()},
        "loss": float(np.mean(losses[-20:])), "eval_clips": len(held),
        "train_clips": len(train), "wall_time_s": time.perf_counter() - t0})
    print(f"train_inverter: {cfg.steps} steps on {len(train)} clips in "
          f"{time.perf_counter() - t0:.0f} s; spectral convergence on {len(held)} held-out "
          "clips: " + ", ".join(f"{k} {v[0]:.3f}" for k, v in intervals.items()))


if __name__ == "__main__":
    main()
