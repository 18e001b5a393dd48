"""Cross-validation results: figures gathered from the cv_* stages' outputs, and the committed
ESC-50 page regenerated from the committed files."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from sonic.config import CNNConfig, FeatureConfig, ResNetConfig
from sonic.cv_results.cli import main
from sonic.cv_results.collect import (MODEL_SECTIONS, archive, collect, delayed_accuracy,
                                      experiment_runs, mean_sd, model_compute)
from sonic.cv_results.page import page_from_files
from sonic.cv_results.plots import confusion_matrix
from sonic.cv_results.study import study_digest, study_row, study_table
from sonic.features.store import save_features
from sonic.models import MODELS, build_model
from sonic.models.checkpoint import load_classifier, save_checkpoint
from sonic.runtime import write_json

REPO = Path(__file__).resolve().parents[1]
CLASSES = ["a", "b", "c"]


TINY = {"resnet": ResNetConfig(blocks=(1, 1), widths=(16, 16)),
        "cnn": CNNConfig(widths=(4, 8), fc=(8,), pool=(1, 1))}


def fake_cv(root: Path, correct: dict[int, int], name: str = "resnet") -> Path:
    """data/cv/<fold>/ as the cv_* stages leave it: 4 held-out clips per fold, ``correct[k]``
    of them right; one tiny checkpoint of model ``name`` per fold."""
    (root / "features").mkdir(parents=True)
    np.save(root / "features/mels.npy", np.zeros((2, 16, 40), np.float32))
    torch.manual_seed(0)
    model = build_model(name, TINY[name], 3)
    for k, right in correct.items():
        fold = root / "cv" / str(k)
        pairs = [{"actual": CLASSES[i % 3], "predicted": CLASSES[i % 3] if i < right else
                  CLASSES[(i + 1) % 3]} for i in range(4)]
        (fold / "evaluate/plots/sklearn/test").mkdir(parents=True)
        (fold / f"evaluate/plots/sklearn/test/{name}_confusion.json").write_text(
            json.dumps(pairs))
        (fold / "evaluate/metrics.json").write_text(json.dumps(
            {"test": {name: {"accuracy": right / 4, "macro_f1": 0.0}}}))
        (fold / f"train_{name}").mkdir(parents=True)
        (fold / f"train_{name}/run.json").write_text(json.dumps(
            {"wall_time_s": 60.0 * k, "samples_per_s": 100.0, "train_samples": 8,
             "parameters": 1}))
        (fold / f"train_{name}/metrics.json").write_text(json.dumps({"epochs": 3}))
        save_checkpoint(fold / f"models/{name}.pt", name, model, CLASSES,
                        FeatureConfig(n_mels=16), -40.0, 20.0, crop_frames=20, test_crops=3)
    return root / "cv"


def test_collect_gives_per_fold_mean_sd_unseen_folds_per_class_and_compute(tmp_path):
    cv = fake_cv(tmp_path, {1: 4, 2: 2, 3: 3})
    res = collect(cv, [1, 2, 3], dev_fold=1, command="dvc exp run ...")
    acc = res["models"]["resnet"]["accuracy"]
    assert acc["per_fold"] == {"1": 1.0, "2": 0.5, "3": 0.75}
    assert acc["mean"] == pytest.approx(0.75) and acc["sd"] == pytest.approx(0.25)
    assert acc["unseen_folds_mean"] == pytest.approx(0.625)  # folds 2 and 3 only
    # pooled over folds: clip i of each fold is class "abca"[i], the first `right` right
    assert res["models"]["resnet"]["per_class"] == {
        "a": pytest.approx(4 / 6), "b": pytest.approx(1.0), "c": pytest.approx(2 / 3)}
    assert res["models"]["resnet"]["clips"] == 12
    comp = res["models"]["resnet"]["compute"]
    single = build_model("resnet", ResNetConfig(blocks=(1, 1), widths=(16, 16)), 3)
    assert comp["params_m"] == pytest.approx(sum(p.numel() for p in single.parameters()) / 1e6)
    assert comp["mflops"] > 0
    assert res["models"]["resnet"]["time"]["2"]["wall_time_s"] == 120.0


def test_collect_per_class_is_pooled_over_folds(tmp_path):
    cv = fake_cv(tmp_path, {1: 4, 2: 1})
    per_class = collect(cv, [1, 2], None, "")["models"]["resnet"]["per_class"]
    # fold 1 all right; fold 2 only its clip 0 (class a): a 3 of 4, b 1 of 2, c 1 of 2
    assert per_class == {"a": pytest.approx(3 / 4), "b": pytest.approx(1 / 2),
                         "c": pytest.approx(1 / 2)}


def test_mean_sd_uses_ddof_1():
    assert mean_sd([0.8, 0.9]) == {"mean": pytest.approx(0.85), "sd": pytest.approx(0.0707107)}
    assert mean_sd([0.8])["sd"] is None


def test_study_rows_and_the_page_from_files(tmp_path):
    cv = fake_cv(tmp_path, {1: 3, 2: 4})
    row = study_row(cv, 1, "dev_x", "MixUp on 80 % of batches")
    assert row["accuracy"] == {"resnet": 0.75} and row["time"]["resnet"]["epochs"] == 3
    assert row["compute"] == {"resnet": model_compute(cv / "1/models/resnet.pt")}  # its own clips
    model = build_model("resnet", ResNetConfig(blocks=(1, 1), widths=(16, 16)), 3)
    assert row["compute"]["resnet"]["params_m"] == sum(p.numel() for p in model.parameters()) / 1e6
    size = f"{row['compute']['resnet']['params_m']:.2f} | {row['compute']['resnet']['mflops']:.0f}"
    out = tmp_path / "results"
    main(["collect", "--cv", str(cv), "--folds", "1", "2", "--dev-fold", "1", "--out", str(out),
          "--command", "dvc exp run -n x"])
    main(["study", "--cv", str(cv), "--fold", "1", "--name", "dev_x", "--change", "y", "--out",
          str(out)])
    doc, plot = tmp_path / "esc50.md", tmp_path / "plot.png"
    main(["page", "--results", str(out), "--doc", str(doc), "--plot", str(plot)])
    text = doc.read_text()
    assert "**87.5** ± 17.7" in text and f"| `dev_x` | y | resnet | {size} | 3 | 75.0 |" in text
    assert plot.stat().st_size > 0 and (out / "confusion_resnet.png").exists()
    assert " min on " not in text  # one machine: the wall times need not name it
    assert "## Learning curves" not in text  # runs that logged no training loss: no curves
    other = {**row, "name": "dev_z", "machine": "Another CPU"}
    table = "\n".join(study_table([row, other]))
    assert f"1.0 min on {row['machine']} |" in table and "1.0 min on Another CPU |" in table


def test_the_learning_curves_are_each_folds_training_loss_per_epoch(tmp_path):
    cv = fake_cv(tmp_path, {1: 3, 2: 4})
    losses = {1: [4.0, 3.0, 2.0, 1.8, 1.6, 1.5, 1.4, 1.3, 1.2, 1.0],
              2: [4.2, 3.2, 2.2, 2.0, 1.8, 1.7, 1.6, 1.5, 1.4, 1.2]}
    for k, values in losses.items():  # as DVCLive logs it in the fold's live folder
        tsv = cv / str(k) / "train_resnet/plots/metrics/train/loss.tsv"
        tsv.parent.mkdir(parents=True)
        tsv.write_text("step\tloss\n" + "".join(f"{i}\t{v}\n" for i, v in enumerate(values, 1)))
    out = tmp_path / "results"
    main(["collect", "--cv", str(cv), "--folds", "1", "2", "--dev-fold", "1", "--out", str(out)])
    kept = json.loads((out / "results.json").read_text())["models"]["resnet"]["train_loss"]
    assert kept == {"1": losses[1], "2": losses[2]}
    doc, curves = tmp_path / "esc50.md", tmp_path / "curves.png"
    main(["page", "--results", str(out), "--doc", str(doc), "--plot", str(tmp_path / "p.png"),
          "--curves", str(curves)])
    text = doc.read_text()
    assert f"## Learning curves\n\n![training loss per epoch]({curves})" in text
    assert curves.stat().st_size > 0
    # the folds' mean 4.1 3.1 2.1 | 1.9 1.7 1.6 | 1.5 1.4 | 1.3 1.1 by quarters; the ninth
    # tenth (1.3) against the last (1.1): still falling by 0.2
    assert "| resnet | 10 | 3.100 | 1.733 | 1.450 | 1.200 | +0.200 |" in text


def test_a_resumed_training_says_which_epochs_its_wall_time_counts(tmp_path):
    """run.json's wall time is the last process's; a run continued from a resume file carries
    the epoch it resumed after into the study row, the five-fold times and both tables."""
    cv = fake_cv(tmp_path, {1: 3, 2: 4})
    run = cv / "2/train_resnet/run.json"
    run.write_text(json.dumps({**json.loads(run.read_text()), "resumed_after_epoch": 2}))
    row = study_row(cv, 2, "dev_r", "resumed")
    assert row["time"]["resnet"]["resumed_after_epoch"] == 2
    assert "resumed_after_epoch" not in study_row(cv, 1, "dev_x", "x")["time"]["resnet"]
    out = tmp_path / "results"
    main(["collect", "--cv", str(cv), "--folds", "1", "2", "--dev-fold", "1", "--out", str(out)])
    main(["study", "--cv", str(cv), "--fold", "2", "--name", "dev_r", "--change", "r", "--out",
          str(out)])
    doc = tmp_path / "esc50.md"
    main(["page", "--results", str(out), "--doc", str(doc), "--plot", str(tmp_path / "p.png")])
    text = doc.read_text()
    assert "| resnet (wall time) | 1.0 min | 2.0 min (epochs after 2 only: resumed) | 100 |" in text
    assert "| 2.0 min (epochs after 2 only: resumed) | 100 |" in text.split("## The study")[1]


def test_each_study_row_says_whether_it_cleared_the_seed_noise_of_its_baseline(tmp_path):
    """`study --against` names the experiment a row changes; the table gives the difference of
    the two sides' seed means and calls it helped or hurt only beyond twice the sd seed noise
    gives it (pooled one-run sd × √(1/n + 1/m))."""
    cv = fake_cv(tmp_path, {1: 3})
    out = tmp_path / "results"
    main(["study", "--cv", str(cv), "--name", "big", "--change", "x", "--against", "recipe",
          "--out", str(out)])
    big = json.loads((out / "study.json").read_text())[0]
    assert big["against"] == "recipe"
    rows = [{"name": "recipe", "accuracy": {"resnet": 0.70}, "time": {}},
            {"name": "r1", "accuracy": {"resnet": 0.72}, "time": {}, "repeat_of": "recipe"},
            {"name": "r2", "accuracy": {"resnet": 0.68}, "time": {}, "repeat_of": "recipe"},
            {**big, "accuracy": {"resnet": 0.80}},
            {"name": "small", "accuracy": {"resnet": 0.71}, "time": {}, "against": "recipe"},
            {"name": "bad", "accuracy": {"resnet": 0.60}, "time": {}, "against": "big"},
            {"name": "bad_s2", "accuracy": {"resnet": 0.62}, "time": {}, "repeat_of": "bad"},
            {"name": "cnn", "accuracy": {"cnn": 0.75}, "time": {}, "against": "recipe"},
            {"name": "pair", "accuracy": {"cnn": 0.70, "resnet": 0.69}, "time": {}},
            {"name": "kd", "accuracy": {"student_cnn": 0.74}, "time": {}, "against": "pair"}]
    for row in rows:
        row.setdefault("change", "c")
    sd = np.sqrt((0.02 ** 2 * 2 + 0.01 ** 2 * 2) / 3)  # pooled over recipe (2 dof) and bad (1)
    table = "\n".join(study_table(rows))
    noise = 200 * sd * np.sqrt(1 + 1 / 3)
    assert f"| +10.0 vs `recipe` (3 seeds): **helped** (noise ±{noise:.1f}) |" in table
    assert f"| +1.0 vs `recipe` (3 seeds): **within noise** (noise ±{noise:.1f}) |" in table
    noise = 200 * sd * np.sqrt(1 / 2 + 1)
    assert f"| -19.0 (its 2 seeds) vs `big`: **hurt** (noise ±{noise:.1f}) |" in table
    assert "| 70.0 | – | – |" in table and "| 72.0 | – | seed repeat of `recipe` |" in table
    # another model against a one-model recipe: compared with that model's seed runs
    noise = 200 * sd * np.sqrt(1 + 1 / 3)
    assert f"| cnn | – | – | – | 75.0 | – | +5.0 vs `recipe` resnet (3 seeds): **helped** " \
           f"(noise ±{noise:.1f}) |" in table
    # a distilled student against a recipe of two models: compared with the model of its kind
    noise = 200 * sd * np.sqrt(2)
    assert (f"| student_cnn | – | – | – | 74.0 | – | +4.0 vs `pair` cnn: **within noise** "
            f"(noise ±{noise:.1f}) |") in table
    # the digest above the table: what cleared the noise either way, and how many did not
    assert study_digest(rows) == [
        "**Helped** beyond the seed noise: `big` (+10.0 vs `recipe`), `cnn` cnn (+5.0 vs "
        "`recipe` resnet). **Hurt** beyond the seed noise: `bad` (-19.0 vs `big`). Of the 5 "
        "changes measured against a baseline, 2 stayed within the seed noise: on one fold of "
        "400 clips they neither helped nor hurt measurably."]
    assert study_digest(rows[:1]) == []  # nothing compared, nothing said


def test_each_study_row_shows_every_training_param_that_differs_from_its_baseline(tmp_path):
    """A row records the training params of the workspace it was taken in; the table prints,
    beside the change as written, each value that differs from its baseline's (a value another
    experiment left in the workspace shows up even where the written change omits it)."""
    cv = fake_cv(tmp_path / "data", {1: 3})
    params = {"train": {"lr": 0.001, "mixup_alpha": 0.2, "seed": 42}, "cnn": {"widths": [4, 8]},
              "resnet": {"pool": "avg"}, "cv": {"folds": [1]}, "data": {"root": "/somewhere"}}
    out = tmp_path / "results"

    def study(name: str, *how: str, **changes) -> None:
        for key, value in changes.items():
            section, field = key.split("__")
            params[section][field] = value
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
        main(["study", "--cv", str(cv), "--name", name, "--change", "c", *how, "--out", str(out)])

    study("base")
    study("wide", "--against", "base", resnet__widths=[6, 12], train__mixup_alpha=1.0,
          cv__folds=[1, 2], data__root="/elsewhere", cnn__widths=[2, 4])
    study("wide_s1", "--repeat-of", "wide", train__seed=1)
    rows = json.loads((out / "study.json").read_text())
    assert rows[0]["params"]["train.lr"] == 0.001 and "cv.folds" not in rows[0]["params"]
    table = "\n".join(study_table(rows))
    # the rows scored a resnet: the cnn section's change is not theirs to show
    assert ("| `wide` | c (params against `base`: `resnet.widths` – → [6, 12]; "
            "`train.mixup_alpha` 0.2 → 1.0) | resnet |") in table
    assert "| `wide_s1` | c (params against `wide`: `train.seed` 42 → 1) | resnet |" in table
    assert "| `base` | c | resnet |" in table
    # a row from a directory without params.yaml records none and is shown as written
    del rows[1]["params"]
    assert "| `wide` | c | resnet |" in "\n".join(study_table(rows))
    assert set(MODEL_SECTIONS) == set(MODELS)  # the registry's models, written out torch-free


def test_study_rows_are_also_scored_on_clips_that_start_late(tmp_path):
    """`delayed_accuracy` scores the fold's test clips each moved 0.5 s later (the frames
    before at the clip's floor, its end dropped): at 0 s it is the plain accuracy, and it is
    what the checkpoint gives such clips; a study row records it and the table shows it."""
    features = FeatureConfig(n_mels=16)
    rng = np.random.default_rng(2)
    n, T = 24, features.n_frames
    mels = rng.normal(-40, 10, (n, 16, T)).astype(np.float32).clip(-80, 0)
    for i in range(n):  # each class loud in its own bands, in the clip's first half only
        mels[i, 5 * (i % 3):5 * (i % 3) + 5, :T // 2] += 30
    mels = mels.clip(-80, 0)
    ids, labels = [f"c{i}" for i in range(n)], [CLASSES[i % 3] for i in range(n)]
    root = tmp_path / "data"
    save_features(root / "features", mels, pd.DataFrame(
        {"clip_id": ids, "source": "", "label": labels, "group": "", "role": "", "fold": 1}))
    fold = root / "cv/1"
    (fold / "models").mkdir(parents=True)
    pd.DataFrame({"clip_id": ids, "label": labels, "role": "test"}).to_csv(
        fold / "split.csv", index=False)
    torch.manual_seed(0)
    model = build_model("resnet", ResNetConfig(blocks=(1, 1), widths=(8, 8)), 3)
    torch.nn.init.normal_(model.fc.weight, std=20.0)
    save_checkpoint(fold / "models/resnet.pt", "resnet", model, CLASSES, features, -40.0, 10.0)
    clf, y = load_classifier(fold / "models/resnet.pt"), np.arange(n) % 3
    plain = float((clf.predict(mels)["probs"].argmax(1) == y).mean())
    assert delayed_accuracy(root / "cv", 1, "resnet", seconds=0.0) == pytest.approx(plain)
    k = round(0.5 * features.sample_rate / features.hop_length)
    late = np.concatenate([np.broadcast_to(mels.min(axis=(1, 2), keepdims=True), (n, 16, k)),
                           mels[..., :T - k]], axis=-1)
    expected = float((clf.predict(late)["probs"].argmax(1) == y).mean())
    assert delayed_accuracy(root / "cv", 1, "resnet") == pytest.approx(expected)
    (fold / "evaluate").mkdir()
    (fold / "evaluate/metrics.json").write_text(
        json.dumps({"test": {"resnet": {"accuracy": plain}}}))
    (fold / "train_resnet").mkdir()
    (fold / "train_resnet/run.json").write_text(json.dumps(
        {"wall_time_s": 6.0, "samples_per_s": 1.0, "train_samples": 1, "parameters": 1}))
    (fold / "train_resnet/metrics.json").write_text(json.dumps({"epochs": 1}))
    row = study_row(root / "cv", 1, "dev_late", "x")
    assert row["delayed"] == {"seconds": 0.5, "accuracy": {"resnet": pytest.approx(expected)}}
    assert f"| {100 * plain:.1f} | {100 * expected:.1f} | – |" in "\n".join(study_table([row]))


def test_the_page_gives_the_seed_noise_of_a_repeated_recipe(tmp_path):
    """Runs marked --repeat-of are pooled with their recipe: mean ± sd (ddof 1) and range."""
    cv = fake_cv(tmp_path, {1: 3, 2: 4})
    out = tmp_path / "results"
    main(["collect", "--cv", str(cv), "--folds", "1", "2", "--dev-fold", "1", "--out", str(out),
          "--command", "dvc exp run -n recipe"])
    main(["study", "--cv", str(cv), "--name", "recipe", "--change", "the recipe", "--out",
          str(out)])
    study_path = out / "study.json"
    study = json.loads(study_path.read_text())
    for name, acc in (("seed1", 0.70), ("seed2", 0.65)):  # two more seeds of the recipe
        study.append({**study[0], "name": name, "accuracy": {"resnet": acc},
                      "repeat_of": "recipe"})
    study.append({**study[0], "name": "other", "accuracy": {"resnet": 0.5}})  # not a repeat
    study_path.write_text(json.dumps(study))
    doc = tmp_path / "esc50.md"
    main(["page", "--results", str(out), "--doc", str(doc), "--plot", str(tmp_path / "p.png")])
    text = doc.read_text()
    spread = mean_sd([0.75, 0.70, 0.65])
    assert (f"scores 75.0, 70.0, 65.0 on the development fold: **70.0 ± "
            f"{100 * spread['sd']:.1f}** (mean ± sd), 65.0–75.0") in text
    assert f"by about {100 * np.sqrt(2) * spread['sd']:.1f} points" in text
    assert text.count("Seed noise:") == 1  # `other` repeats nothing and has no repeats
    assert "Pooled" not in text  # one repeated recipe: its own sd is the estimate
    assert "with only the training seed changed (`recipe`, `seed1`, `seed2`)" in text
    study.append({**study[0], "name": "other_s2", "accuracy": {"resnet": 0.56},
                  "repeat_of": "other", "machine": "Another CPU"})  # a second recipe, repeated
    study_path.write_text(json.dumps(study))
    main(["page", "--results", str(out), "--doc", str(doc), "--plot", str(tmp_path / "p.png")])
    # pooled: deviations from each recipe's own mean, ddof one per recipe
    pooled = np.sqrt((0.05 ** 2 + 0 + 0.05 ** 2 + 0.03 ** 2 + 0.03 ** 2) / (2 + 1))
    assert (f"Pooled over these 2 repeated recipes (3 degrees of freedom), one run's seed sd is "
            f"**{100 * pooled:.1f}** points") in doc.read_text()
    assert "with only the training seed or the CPU changed (`other`, `other_s2`)" in \
        doc.read_text()
    main(["study", "--cv", str(cv), "--name", "again", "--change", "seed 3", "--repeat-of",
          "recipe", "--out", str(out)])
    assert json.loads(study_path.read_text())[-1]["repeat_of"] == "recipe"


def test_the_history_takes_each_replaced_experiment_with_its_own_models(tmp_path):
    """Results joined from two experiments (a CNN run and a ResNet run): replacing the CNN run
    archives that experiment alone, under its own name and with its model only."""
    def run(name: str, model: str) -> str:
        return (f"dvc exp run -n {name} -S 'cv.models=[{model}]' \\\n"
                "    -S 'cv.folds=[1]' cv_evaluate")

    def figures(acc: float) -> dict:
        return {"accuracy": {"per_fold": {"1": acc}, "mean": acc, "sd": None,
                             "unseen_folds_mean": None}, "compute": {"mflops": 1.0}}

    out = tmp_path / "results"
    out.mkdir()
    before = {"date": "2026-12-06", "machine": "cpu", "models": {
        "cnn": figures(0.7), "resnet": figures(0.6)},
        "command": run("cnn_v1", "cnn") + "\n" + run("resnet_v1", "resnet")}
    write_json(out / "results.json", before)
    after = {**before, "command": run("cnn_v2", "cnn") + "\n" + run("resnet_v1", "resnet")}
    history = archive(out, after)
    assert [(h["name"], list(h["models"])) for h in history] == [("cnn_v1", ["cnn"])]
    assert history[0]["command"] == run("cnn_v1", "cnn")
    assert history[0]["models"]["cnn"]["mean"] == 0.7
    assert archive(out, before) == history  # nothing replaced: nothing more archived


def test_a_students_experiment_is_told_apart_by_its_cv_students():
    """An experiment that trains students only (`cv.models=[]`, `cv.students=[cnn]`) holds its
    ``student_cnn``; one that names no cv.models trains both models beside its students."""
    results = {"models": dict.fromkeys(["cnn", "resnet", "student_cnn"], {}), "command": (
        "dvc exp run -n a -S 'cv.models=[cnn]' cv_evaluate\n"
        "python -m sonic.cv_results teachers --exp a:cnn --out data/teachers\n"
        "dvc exp run -n b -S 'cv.models=[]' -S 'cv.students=[cnn]' cv_evaluate\n"
        "dvc exp run -n c -S 'cv.students=[cnn]' cv_evaluate")}
    runs = experiment_runs(results)
    assert [r["models"] for r in runs] == [["cnn"], ["student_cnn"],
                                           ["cnn", "resnet", "student_cnn"]]
    assert runs[1]["command"].splitlines() == [  # its teachers' gathering goes with it
        "python -m sonic.cv_results teachers --exp a:cnn --out data/teachers",
        "dvc exp run -n b -S 'cv.models=[]' -S 'cv.students=[cnn]' cv_evaluate"]


def test_a_new_recipe_keeps_the_run_it_replaces_in_the_history(tmp_path):
    cv = fake_cv(tmp_path, {1: 3, 2: 4})
    out = tmp_path / "results"
    for command in ("dvc exp run -n old", "dvc exp run -n old", "dvc exp run -n new"):
        main(["collect", "--cv", str(cv), "--folds", "1", "2", "--dev-fold", "1", "--out",
              str(out), "--command", command])
    history = json.loads((out / "history.json").read_text())
    assert [h["name"] for h in history] == ["old"]  # re-collecting one run archives nothing
    assert history[0]["models"]["resnet"]["mean"] == pytest.approx(0.875)
    doc = tmp_path / "esc50.md"
    main(["page", "--results", str(out), "--doc", str(doc), "--plot", str(tmp_path / "p.png")])
    assert "## Earlier five-fold runs" in doc.read_text()
    assert "| `old` |" in doc.read_text()


@pytest.mark.skipif(not (REPO / "metrics/esc50_cv/results.json").exists(),
                    reason="no committed ESC-50 results")
def test_the_committed_esc50_page_is_what_the_command_writes():
    expected = page_from_files(Path("metrics/esc50_cv"),
                               Path("plots/esc50_accuracy_vs_compute.png"), root=REPO)
    assert (REPO / "docs/esc50.md").read_text() == expected, (
        "docs/esc50.md is stale: run `python -m sonic.cv_results page`")


def _git_dvc(repo: Path, *args: str) -> None:
    import subprocess
    import sys

    cmd = ["git", *args[1:]] if args[0] == "git" else [sys.executable, "-m", "dvc", *args]
    subprocess.run(cmd, cwd=repo, check=True, capture_output=True, timeout=120,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"})


def test_an_ensemble_of_experiments_scores_the_mean_of_their_probabilities(tmp_path):
    """Two cross-validation "experiments" (two commits of a DVC repository, each with its own
    fold-1 checkpoint): `ensemble` reads both checkpoints through DVC at their revisions and
    scores the average of their probabilities, each member's own accuracy beside it, the
    members' compute summed; the page then shows it."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _git_dvc(repo, "git", "init", "-q")
    _git_dvc(repo, "init", "-q")
    _git_dvc(repo, "config", "core.analytics", "false")
    features = FeatureConfig(n_mels=16)
    rng = np.random.default_rng(0)
    n = 12
    mels = rng.normal(-40, 10, (n, 16, features.n_frames)).astype(np.float32)
    for i in range(n):  # each class loud in its own bands
        mels[i, 5 * (i % 3):5 * (i % 3) + 5] += 30
    labels = [CLASSES[i % 3] for i in range(n)]
    index = pd.DataFrame({"clip_id": [f"c{i}" for i in range(n)], "source": "", "label": labels,
                          "group": "", "role": "", "fold": 1})
    save_features(repo / "data/features", mels, index)
    fold = repo / "data/cv/1"
    (fold / "models").mkdir(parents=True)
    pd.DataFrame({"clip_id": index["clip_id"], "label": labels, "role": "test"}).to_csv(
        fold / "split.csv", index=False)
    revs, probs = [], []
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = build_model("resnet", ResNetConfig(blocks=(1, 1), widths=(8, 8)), 3)
        torch.nn.init.normal_(model.fc.weight, std=20.0)  # sure, and sure of different things
        save_checkpoint(fold / "models/resnet.pt", "resnet", model, CLASSES, features, -40.0,
                        10.0)
        probs.append(load_classifier(fold / "models/resnet.pt").predict(mels)["probs"])
        _git_dvc(repo, "add", "data/cv/1/models/resnet.pt", "data/cv/1/split.csv")
        _git_dvc(repo, "git", "add", "-A")
        _git_dvc(repo, "git", "commit", "-qm", f"seed {seed}")
        revs.append(subprocess_out(repo, "git", "rev-parse", "HEAD"))
    out = tmp_path / "metrics"
    main(["ensemble", "--name", "two_seeds", "--exp", revs[0], "--exp", revs[1], "--folds", "1",
          "--features", str(repo / "data/features"), "--repo", str(repo), "--out", str(out),
          "--note", "two seeds of one recipe"])
    row = json.loads((out / "ensembles.json").read_text())[0]
    y = np.arange(n) % 3
    assert row["accuracy"]["per_fold"]["1"] == pytest.approx(
        float((np.mean(probs, axis=0).argmax(1) == y).mean()))
    for rev, p in zip(revs, probs):
        assert row["member_accuracy"][rev]["per_fold"]["1"] == pytest.approx(
            float((p.argmax(1) == y).mean()))
    assert np.abs(probs[0] - probs[1]).max() > 0.1  # two different members
    single = model_compute(fold / "models/resnet.pt", features.n_frames)
    assert row["compute"]["mflops"] == pytest.approx(2 * single["mflops"])
    assert row["member_compute"][revs[1]]["mflops"] == pytest.approx(single["mflops"])
    assert row["clips"] == n and set(row["per_class"]) == set(CLASSES)
    confusion, classes = confusion_matrix(row["confusion"])  # rows: the actual class
    assert classes == list(CLASSES) and confusion.sum() == n
    assert confusion.sum(axis=1).tolist() == [n // 3] * 3
    assert np.trace(confusion) / n == pytest.approx(row["accuracy"]["per_fold"]["1"])
    for i, c in enumerate(CLASSES):
        assert confusion[i, i] / confusion[i].sum() == pytest.approx(row["per_class"][c])

    results = collect(fake_cv(tmp_path / "five", {1: 4, 2: 2}), [1, 2], 1, "dvc exp run ...")
    (out / "results.json").write_text(json.dumps(results))
    text = page_from_files(out, Path("plots/p.png"), root=Path("/"))
    assert "## Ensembles" in text and "`two_seeds`" in text
    dev = json.loads((out / "ensembles.json").read_text())[0]

    def both_folds(a: dict) -> dict:  # the fold-1 figures as if scored on folds 1 and 2
        return {**a, "per_fold": {"1": a["per_fold"]["1"], "2": a["per_fold"]["1"]}}

    full = [{**dev, "name": name, "folds": [1, 2], "dev_fold": 1,
             "accuracy": both_folds(dev["accuracy"]),
             "member_accuracy": {m: both_folds(a) for m, a in dev["member_accuracy"].items()}}
            for name in ("earlier", "later")]
    (out / "ensembles.json").write_text(json.dumps([full[0], dev, full[1]]))
    text = page_from_files(out, Path("plots/p.png"), root=Path("/"))
    # over every fold first, the last scored first; then the development-fold ones
    assert text.index("| `later`") < text.index("| `earlier`") < text.index("| `two_seeds`")
    assert "average of the members' probabilities" in text and "two seeds of one recipe" in text
    # the README's ensemble (over every fold) per class, and its confusion
    assert "Per class, the README's ensemble" in text
    assert ("![the ensemble's confusion over all folds](../plots/esc50_confusion_ensemble.png)"
            in text)
    with pytest.raises(SystemExit, match="two or more"):
        main(["ensemble", "--name", "x", "--exp", revs[0], "--out", str(out)])


def subprocess_out(repo: Path, *cmd: str) -> str:
    import subprocess

    return subprocess.run(cmd, cwd=repo, check=True, capture_output=True, text=True,
                          timeout=60).stdout.strip()


def test_an_ensemble_of_members_on_different_features_and_models(tmp_path):
    """A ResNet on 16 mel bands and a CNN on 24 (`--exp REV:cnn`), each experiment with its own
    DVC-tracked data/features, the second's clips in another order: each member is scored on
    its own experiment's spectrograms, matched by clip id, and the ensemble is the mean of
    those probabilities; members that know other classes are refused."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _git_dvc(repo, "git", "init", "-q")
    _git_dvc(repo, "init", "-q")
    _git_dvc(repo, "config", "core.analytics", "false")
    rng = np.random.default_rng(1)
    n = 12
    labels = [CLASSES[i % 3] for i in range(n)]
    ids = [f"c{i}" for i in range(n)]
    fold = repo / "data/cv/1"
    (fold / "models").mkdir(parents=True)
    pd.DataFrame({"clip_id": ids, "label": labels, "role": "test"}).to_csv(
        fold / "split.csv", index=False)
    members = [("resnet", FeatureConfig(n_mels=16), ResNetConfig(blocks=(1, 1), widths=(8, 8))),
               ("cnn", FeatureConfig(n_mels=24), CNNConfig(widths=(4, 8), fc=(8,), pool=(1, 1)))]
    revs, probs = [], []
    for seed, (name, features, cfg) in enumerate(members):
        mels = rng.normal(-40, 10, (n, features.n_mels, features.n_frames)).astype(np.float32)
        for i in range(n):  # each class loud in its own bands
            mels[i, 5 * (i % 3):5 * (i % 3) + 5] += 30
        order = np.arange(n) if seed == 0 else np.arange(n)[::-1]  # the second stored reversed
        index = pd.DataFrame({"clip_id": [ids[i] for i in order], "source": "",
                              "label": [labels[i] for i in order], "group": "", "role": "",
                              "fold": 1})
        save_features(repo / "data/features", mels[order], index)
        torch.manual_seed(seed)
        model = build_model(name, cfg, 3)
        last = model.fc if name == "resnet" else model.classifier
        torch.nn.init.normal_(last.weight, std=20.0)
        path = fold / f"models/{name}.pt"
        save_checkpoint(path, name, model, CLASSES, features, -40.0, 10.0)
        probs.append(load_classifier(path).predict(mels)["probs"])  # clips in id order
        _git_dvc(repo, "add", f"data/cv/1/models/{name}.pt", "data/features")
        _git_dvc(repo, "git", "add", "-A")
        _git_dvc(repo, "git", "commit", "-qm", name)
        revs.append(subprocess_out(repo, "git", "rev-parse", "HEAD"))
    out = tmp_path / "metrics"
    main(["ensemble", "--name", "mixed", "--exp", revs[0], "--exp", f"{revs[1]}:cnn",
          "--folds", "1", "--features", str(tmp_path / "not_used"), "--repo", str(repo),
          "--out", str(out)])
    row = json.loads((out / "ensembles.json").read_text())[0]
    y = np.arange(n) % 3
    assert row["model"] == "resnet + cnn"
    assert row["accuracy"]["per_fold"]["1"] == pytest.approx(
        float((np.mean(probs, axis=0).argmax(1) == y).mean()))
    assert row["member_accuracy"][f"{revs[1]}:cnn"]["per_fold"]["1"] == pytest.approx(
        float((probs[1].argmax(1) == y).mean()))
    assert row["member_compute"][f"{revs[1]}:cnn"]["mflops"] == pytest.approx(
        model_compute(fold / "models/cnn.pt", members[1][1].n_frames)["mflops"])

    model = build_model("resnet", members[0][2], 2)  # a member of two classes only
    save_checkpoint(fold / "models/resnet.pt", "resnet", model, CLASSES[:2], members[0][1],
                    -40.0, 10.0)
    _git_dvc(repo, "add", "data/cv/1/models/resnet.pt")
    _git_dvc(repo, "git", "commit", "-qam", "two classes")
    with pytest.raises(SystemExit, match="different classes"):
        main(["ensemble", "--name", "x", "--exp", revs[0], "--exp", "HEAD", "--folds", "1",
              "--repo", str(repo), "--out", str(out)])


def test_collect_joins_experiments_read_through_dvc_a_resnet_run_and_a_cnn_run(tmp_path):
    """`collect --exp A --exp B:cnn`: each experiment's folds read through DVC at its revision
    (nothing of them in the workspace), one results.json with both models' figures, compute
    and confusion, the page's commands naming both; a model in two experiments is refused."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _git_dvc(repo, "git", "init", "-q")
    _git_dvc(repo, "init", "-q")
    _git_dvc(repo, "config", "core.analytics", "false")
    revs = []
    for name, correct in (("resnet", {1: 4, 2: 2}), ("cnn", {1: 3, 2: 1})):
        fake_cv(tmp_path / name, correct, name)
        shutil.rmtree(repo / "data/cv", ignore_errors=True)  # the next experiment's folds
        (repo / "data").mkdir(exist_ok=True)
        (tmp_path / name / "cv").rename(repo / "data/cv")
        _git_dvc(repo, "add", "data/cv")
        _git_dvc(repo, "git", "add", "-A")
        _git_dvc(repo, "git", "commit", "-qm", name)
        revs.append(subprocess_out(repo, "git", "rev-parse", "HEAD"))
    out = tmp_path / "metrics"
    main(["collect", "--exp", revs[0], "--exp", f"{revs[1]}:cnn", "--folds", "1", "2",
          "--dev-fold", "1", "--repo", str(repo), "--out", str(out),
          "--command", "dvc exp run -n esc50_resnet ...", "--command", "dvc exp run -n cnn ..."])
    res = json.loads((out / "results.json").read_text())
    assert res["models"]["resnet"]["accuracy"]["per_fold"] == {"1": 1.0, "2": 0.5}
    assert res["models"]["cnn"]["accuracy"]["per_fold"] == {"1": 0.75, "2": 0.25}
    assert res["models"]["cnn"]["time"]["2"]["wall_time_s"] == 120.0
    cnn = build_model("cnn", TINY["cnn"], 3)
    assert res["models"]["cnn"]["compute"]["params_m"] == pytest.approx(
        sum(p.numel() for p in cnn.parameters()) / 1e6)
    assert (out / "confusion_resnet.png").stat().st_size > 0
    assert (out / "confusion_cnn.png").stat().st_size > 0
    assert set(pd.read_csv(out / "per_class.csv")["model"]) == {"resnet", "cnn"}
    text = page_from_files(out, Path("plots/p.png"), root=Path("/"))
    assert "dvc exp run -n esc50_resnet ...\ndvc exp run -n cnn ..." in text
    assert f"collect --exp {revs[0]} --exp {revs[1]}:cnn --dev-fold 1" in text
    with pytest.raises(SystemExit, match="resnet is in two experiments"):
        main(["collect", "--exp", revs[0], "--exp", f"{revs[0]}:resnet", "--folds", "1",
              "--repo", str(repo), "--out", str(out)])


def test_teachers_copies_each_experiments_fold_checkpoints_and_nothing_stale(tmp_path):
    """`teachers` reads each experiment's fold checkpoints through DVC at its revision into
    data/teachers/<fold>/<rev>_<model>.pt, byte for byte, and removes what an earlier gathering
    left there."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _git_dvc(repo, "git", "init", "-q")
    _git_dvc(repo, "init", "-q")
    _git_dvc(repo, "config", "core.analytics", "false")
    revs, saved = [], []
    for seed in (0, 1):
        torch.manual_seed(seed)
        for k in (1, 2):
            path = repo / f"data/cv/{k}/models/cnn.pt"
            path.parent.mkdir(parents=True, exist_ok=True)
            save_checkpoint(path, "cnn", build_model("cnn", TINY["cnn"], 3), CLASSES,
                            FeatureConfig(n_mels=16), -40.0, 10.0 + k)
            _git_dvc(repo, "add", str(path.relative_to(repo)))
        saved.append({k: (repo / f"data/cv/{k}/models/cnn.pt").read_bytes() for k in (1, 2)})
        _git_dvc(repo, "git", "add", "-A")
        _git_dvc(repo, "git", "commit", "-qm", f"seed {seed}")
        revs.append(subprocess_out(repo, "git", "rev-parse", "HEAD"))
    out = tmp_path / "teachers"
    (out / "1").mkdir(parents=True)
    (out / "1/old_cnn.pt").write_bytes(b"a teacher of an earlier gathering")
    main(["teachers", "--exp", f"{revs[0]}:cnn", "--exp", revs[1], "--folds", "1", "2",
          "--repo", str(repo), "--out", str(out)])
    for k in (1, 2):
        assert sorted(p.name for p in (out / str(k)).iterdir()) == sorted(
            f"{rev}_cnn.pt" for rev in revs)
        for rev, files in zip(revs, saved):
            assert (out / str(k) / f"{rev}_cnn.pt").read_bytes() == files[k]
    assert saved[0][1] != saved[1][1]  # two different teachers
