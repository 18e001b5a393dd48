"""``split``: give every clip its role in training, model selection or scoring.

Roles: ``train``; ``val``, the clips that select (early stopping and the best epoch, under
``split.select: inner``); ``test``, clips scored once by ``evaluate`` (when labelled) and
predicted by ``submit``; ``excluded``, clips that neither train nor select nor score.

Folder layouts hold out ``split.val_size`` of each class as ``val`` (stratified, by whole groups);
their ``test/`` clips keep the role ``test``. Fold layouts (ESC-50, UrbanSound8K) make the fold
``split.val_fold`` the ``test`` split, so the figure reported on it was never used for a choice;
under ``select: inner`` a ``val`` slice (``split.select_size``, stratified, by whole groups) is cut
from the other folds, under ``select: last`` there is none. A clip of another fold whose group
(recording) also has clips in the held-out fold is ``excluded``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from sonic.config import SplitConfig

FOLD_LAYOUTS = ("esc50", "urbansound8k")  # layouts whose index assigns every clip a fold
EXCLUDED = "excluded"  # neither trains nor validates (see split_roles)


def split_roles(index: pd.DataFrame, cfg: SplitConfig, layout: str) -> pd.DataFrame:
    """Return ``clip_id, label, group, role`` for every clip, role in {train, val, test,
    excluded}."""
    table = index[["clip_id", "label", "group"]].copy()
    table["role"] = np.where(index["role"] == "test", "test", "train")
    pool = index["role"] != "test"
    if layout in FOLD_LAYOUTS:
        folds = sorted(index.loc[pool, "fold"].unique())
        if cfg.val_fold not in folds:
            raise ValueError(f"split.val_fold={cfg.val_fold} is not one of the folds {folds}")
        held_out = pool & (index["fold"] == cfg.val_fold)
        # The official folds are kept (figures stay comparable), but a recording with clips in
        # the held-out fold never trains: ESC-50 puts 4 source files in two folds (hen/rooster
        # and clock_tick/clock_alarm takes of one recording), so 1-2 training clips per fold
        # are left out.
        shared = index["group"].isin(set(index.loc[held_out, "group"]))
        table.loc[held_out, "role"] = "test"
        table.loc[pool & ~held_out & shared, "role"] = EXCLUDED
        if cfg.select == "inner":
            train = table["role"] == "train"
            val_groups = stratified_group_holdout(index.loc[train], cfg.select_size, cfg.seed)
            table.loc[train & index["group"].isin(val_groups), "role"] = "val"
    else:
        val_groups = stratified_group_holdout(index.loc[pool], cfg.val_size, cfg.seed)
        table.loc[pool & index["group"].isin(val_groups), "role"] = "val"
    return table


def stratified_group_holdout(pool: pd.DataFrame, val_size: float, seed: int) -> set[str]:
    """Pick whole groups for validation so each class holds about ``val_size`` of its clips there.

    A group counts towards its most frequent label. Groups are taken in a seeded random order per
    class until the class's share reaches ``round(val_size * n_clips)`` (at least one group when a
    class has two or more groups, so every class is validated).
    """
    if not 0.0 < val_size < 1.0:
        raise ValueError(f"split.val_size must lie in (0, 1), got {val_size}")
    rng = np.random.default_rng(seed)
    sizes = pool.groupby("group").size()
    owner = pool.groupby("group")["label"].agg(lambda s: s.value_counts().index[0])
    chosen: set[str] = set()
    for label in sorted(owner.unique()):
        groups = sorted(owner.index[owner == label])
        target = round(val_size * sizes[groups].sum())
        if len(groups) >= 2:
            target = max(target, 1)
        taken = 0
        for group in rng.permutation(groups):
            if taken >= target:
                break
            if taken + sizes[group] > target and taken > 0 and len(groups) > 1:
                continue  # would overshoot; a smaller group may still fit
            chosen.add(group)
            taken += sizes[group]
    return chosen
