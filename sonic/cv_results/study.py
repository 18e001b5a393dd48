"""The development-fold study: one row per experiment (its change as written and every training
param that differs from its baseline), its table, and each row's verdict against the spread of
the training seeds."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import yaml

from sonic.cv_results.collect import (DELAY_S, MODEL_SECTIONS, delayed_accuracy, mean_sd,
                                      model_compute, resumed)
from sonic.cv_results.fetch import STUDENT, live_folder
from sonic.cv_results.text import pct, wall_time
from sonic.docs.provenance import cpu_model


TRAINING_SECTIONS = ("features", "split", "augment", "train", "distill", *MODEL_SECTIONS)


def training_params(params_file: Path) -> dict:
    """The values of ``params_file`` that shape a fold's training, flat (``train.lr``)."""
    params = yaml.safe_load(params_file.read_text())
    return {f"{section}.{key}": value for section in TRAINING_SECTIONS
            for key, value in (params.get(section) or {}).items()}


def params_changed(row: dict, baseline: dict) -> list[str]:
    """``key old → new`` for every training param in which ``row`` differs from ``baseline``,
    the sections of models the row did not train left out (empty where either has none
    recorded)."""
    mine, theirs = row.get("params"), baseline.get("params")
    if not mine or not theirs:
        return []
    trained = {m.removeprefix(STUDENT) for m in row["accuracy"]}
    unused = {s for s in MODEL_SECTIONS if s not in trained}
    if not any(m.startswith(STUDENT) for m in row["accuracy"]):
        unused.add("distill")
    return [f"`{k}` {theirs.get(k, '–')} → {mine.get(k, '–')}"
            for k in sorted(set(mine) | set(theirs))
            if k.split(".")[0] not in unused and mine.get(k) != theirs.get(k)]


def workspace_params(cv: Path) -> Path | None:
    """The ``params.yaml`` of the workspace whose ``cv`` outputs these are, where there is one."""
    path = cv.parent.parent / "params.yaml"
    return path if path.exists() else None


def study_row(cv: Path, fold: int, name: str, change: str, repeat_of: str | None = None,
              against: str | None = None, params_file: Path | None = None) -> dict:
    """One development-fold experiment: its test accuracy per model, their compute and their
    training time. ``repeat_of`` names the experiment this one repeats with only the training
    seed changed; ``against`` the one it changes (its baseline in the study's verdicts).
    ``params_file`` (the experiment's ``params.yaml``) records its training params."""
    scores = json.loads((cv / str(fold) / "evaluate/metrics.json").read_text())["test"]
    row = {"name": name, "fold": fold, "change": change,
           "accuracy": {m: s["accuracy"] for m, s in scores.items()},
           "compute": {m: model_compute(cv / str(fold) / "models" / f"{m}.pt")
                       for m in scores if m != "ensemble"}, "time": {},
           "machine": cpu_model(), "date": dt.date.today().isoformat()}
    if (cv / str(fold) / "split.csv").exists():
        row["delayed"] = {"seconds": DELAY_S, "accuracy": {
            m: delayed_accuracy(cv, fold, m) for m in row["compute"]}}
    if repeat_of:
        row["repeat_of"] = repeat_of
    if against:
        row["against"] = against
    if params_file is not None:
        row["params"] = training_params(params_file)
    for model in row["compute"]:
        run = cv / str(fold) / live_folder(model) / "run.json"
        if not run.exists():
            continue
        r = json.loads(run.read_text())
        summary = json.loads((run.parent / "metrics.json").read_text())
        row["time"][model] = {
            "wall_time_s": r["wall_time_s"], "samples_per_s": r["samples_per_s"],
            "epochs": summary["epochs"], "parameters": r["parameters"], **resumed(r)}
    return row


def seed_rows(study: list[dict], name: str, model: str) -> list[dict]:
    """The study rows of experiment ``name`` and of its seed repeats that scored ``model``."""
    return [r for r in study
            if (r["name"] == name or r.get("repeat_of") == name) and model in r["accuracy"]]


def seed_runs(study: list[dict], name: str, model: str) -> list[float]:
    """Development-fold accuracies of experiment ``name`` and of its seed repeats."""
    return [r["accuracy"][model] for r in seed_rows(study, name, model)]


def seed_groups(study: list[dict]) -> list[tuple[dict, str, list[float]]]:
    """(experiment, model, accuracies) for every experiment the study repeats with other
    training seeds: its own run first, then its repeats'."""
    return [(row, model, accs) for row in study if not row.get("repeat_of")
            for model in row["accuracy"]
            if len(accs := seed_runs(study, row["name"], model)) > 1]


def pooled_seed_sd(study: list[dict]) -> tuple[float | None, int]:
    """One run's seed sd pooled over every repeated experiment (each group's mean removed: one
    degree of freedom per group), and its degrees of freedom; (None, 0) without repeats."""
    groups = [np.asarray(accs) - np.mean(accs) for _, _, accs in seed_groups(study)]
    dof = sum(len(g) - 1 for g in groups)
    if not dof:
        return None, 0
    return float(np.sqrt(sum(float((g ** 2).sum()) for g in groups) / dof)), dof


def comparison(study: list[dict], row: dict, model: str) -> dict | None:
    """What one study row did against its baseline (``against``): the difference of the two
    experiments' means over their seed runs, and whether it clears twice the sd that seed
    noise gives such a difference (the pooled one-run sd × √(1/n + 1/m)): ``said`` is
    ``helped``, ``hurt``, ``within noise``, or None without repeats to tell the noise. None
    for a seed repeat, or without a baseline that scored a comparable model."""
    against = next((r for r in study if r["name"] == row.get("against")), None)
    if row.get("repeat_of") or against is None:
        return None
    # a baseline of one other model (a CNN row against a ResNet recipe) is compared as such, a
    # student (student_cnn) with the baseline's model of its kind
    base_model = model
    if model not in against["accuracy"]:
        kind = model.removeprefix(STUDENT)
        if kind in against["accuracy"]:
            base_model = kind
        elif len(against["accuracy"]) == 1:
            base_model = next(iter(against["accuracy"]))
    base = seed_runs(study, against["name"], base_model)
    if not base:
        return None
    own = seed_runs(study, row["name"], model)
    diff, (sd, _) = float(np.mean(own) - np.mean(base)), pooled_seed_sd(study)
    noise = None if sd is None else float(2 * sd * np.sqrt(1 / len(own) + 1 / len(base)))
    said = (None if noise is None else "helped" if diff > noise else "hurt" if diff < -noise
            else "within noise")
    return {"diff": diff, "against": against["name"], "base_model": base_model,
            "own_runs": len(own), "base_runs": len(base), "noise": noise, "said": said}


def baseline(c: dict, model: str) -> str:
    """The baseline of :func:`comparison` ``c`` as the page names it: its experiment, and its
    model where that is not ``model``."""
    return f"`{c['against']}`" + (f" {c['base_model']}" if c["base_model"] != model else "")


def verdict(study: list[dict], row: dict, model: str) -> str:
    """:func:`comparison` in a few words, for the study table."""
    if row.get("repeat_of"):
        return f"seed repeat of `{row['repeat_of']}`"
    c = comparison(study, row, model)
    if c is None:
        return "–"
    text = f"{100 * c['diff']:+.1f}" + (
        f" (its {c['own_runs']} seeds)" if c["own_runs"] > 1 else "") + (
        f" vs {baseline(c, model)}") + (f" ({c['base_runs']} seeds)" if c["base_runs"] > 1 else "")
    if c["said"] is None:
        return text
    return f"{text}: **{c['said']}** (noise ±{100 * c['noise']:.1f})"


def study_digest(study: list[dict]) -> list[str]:
    """The study in a few sentences: which changes cleared the seed noise, helping or
    hurting, and how many did not."""
    judged = [(row, model, c) for row in study for model in row["accuracy"]
              if (c := comparison(study, row, model)) is not None and c["said"] is not None]
    if not judged:
        return []
    lines = []
    for said in ("helped", "hurt"):
        named = [f"`{row['name']}`" + (f" {model}" if c["base_model"] != model else "")
                 + f" ({100 * c['diff']:+.1f} vs {baseline(c, model)})"
                 for row, model, c in judged if c["said"] == said]
        if named:
            lines.append(f"**{said.capitalize()}** beyond the seed noise: {', '.join(named)}.")
    within = sum(c["said"] == "within noise" for _, _, c in judged)
    lines.append(f"Of the {len(judged)} changes measured against a baseline, {within} stayed "
                 "within the seed noise: on one fold of 400 clips they neither helped nor "
                 "hurt measurably.")
    return [" ".join(lines)]


def study_table(study: list[dict]) -> list[str]:
    """One row per experiment and model; where the study ran on more than one CPU, each wall
    time names its machine."""
    lines = ["| experiment | change | model | params (M) | MFLOPs / clip | epochs | "
             f"dev-fold accuracy | clips {DELAY_S:g} s late | against its baseline | wall time | "
             "samples/s |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    machines = len({row["machine"] for row in study if "machine" in row}) > 1
    by_name = {row["name"]: row for row in study}
    for row in study:
        base = by_name.get(row.get("repeat_of") or row.get("against") or "")
        changed = params_changed(row, base) if base else []
        change = row["change"] + (f" (params against `{base['name']}`: {'; '.join(changed)})"
                                  if changed else "")
        for model, acc in row["accuracy"].items():
            t, c = row["time"].get(model, {}), row.get("compute", {}).get(model)
            size = f"{c['params_m']:.2f} | {c['mflops']:.0f}" if c else "– | –"
            where = f" on {row['machine']}" if machines and "machine" in row else ""
            timing = f"{wall_time(t)}{where} | {t['samples_per_s']:.0f} |" if t else "– | – |"
            lines.append(f"| `{row['name']}` | {change} | {model} | {size} | "
                         f"{t.get('epochs', '–')} | {pct(acc)} | "
                         f"{pct(row.get('delayed', {}).get('accuracy', {}).get(model))} | "
                         f"{verdict(study, row, model)} | {timing}")
    return lines


def seed_spread(study: list[dict]) -> list[str]:
    """For each experiment that others repeat with another training seed (``repeat_of``), the
    spread of its development-fold accuracy over all its runs: the noise a one-run change has
    to clear before it means anything."""
    lines, groups = [], seed_groups(study)
    for row, model, accs in groups:
        runs = seed_rows(study, row["name"], model)
        names = ", ".join(f"`{r['name']}`" for r in runs)
        changed = ("training seed or the CPU" if len({r.get("machine") for r in runs}) > 1
                   else "training seed")
        spread = mean_sd(accs)
        lines.append(
            f"Seed noise: `{row['name']}` ({model}) trained {len(accs)} times with only the "
            f"{changed} changed ({names}) scores "
            f"{', '.join(pct(a) for a in accs)} on the development fold: "
            f"**{pct(spread['mean'])} ± {pct(spread['sd'])}** (mean ± sd), "
            f"{pct(min(accs))}–{pct(max(accs))}. A change measured by one run on this fold "
            f"differs from its recipe by chance by about {pct(np.sqrt(2) * spread['sd'])} "
            "points (sd of a difference of two runs), so only a larger gain, or the mean of "
            "several seeds, says that it helped.")
    if len(groups) > 1:  # each group's sd rests on few runs: pool them (ddof: one per group)
        pooled, dof = pooled_seed_sd(study)
        lines.append(f"Pooled over these {len(groups)} repeated recipes ({dof} degrees of "
                     f"freedom), one run's seed sd is **{pct(pooled)}** points and a one-run "
                     f"difference carries about {pct(np.sqrt(2) * pooled)}.")
    return lines
