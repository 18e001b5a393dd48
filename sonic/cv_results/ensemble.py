"""The average of finished cross-validation experiments' class probabilities on every held-out
clip, their checkpoints read through DVC at each experiment's revision (no retraining)."""
from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from sonic.cv_results.collect import figures, model_compute
from sonic.cv_results.fetch import member_checkpoint, member_features, member_spec
from sonic.cv_results.plots import count_confusion
from sonic.docs.provenance import cpu_model


def ensemble(repo: Path, exps: Sequence[str], folds: Sequence[int], dev_fold: int | None,
             model: str, features: Path, command: str) -> dict:
    """The average of the class probabilities of finished cross-validations on every held-out
    clip of every fold: per fold, mean ± sd, the mean of the folds no choice saw, per class,
    one confusion over every fold (rows the actual class), each member's own figures, and
    compute (the members' sum).

    A member is an experiment ``REV`` (its ``model``) or ``REV:MODEL`` (a CNN beside ResNets,
    say). Every member must have split the folds alike and know the same classes; members may
    differ in features (64 and 128 mel bands, say): when they all share one set, the clips
    come from ``features`` (the workspace's), otherwise each member is scored on its own
    experiment's ``data/features``, read through DVC."""
    import tempfile

    import dvc.api

    from sonic.features.store import load_features
    from sonic.models.checkpoint import load_classifier

    specs = [member_spec(x, model) for x in exps]
    out: dict = {"members": list(exps), "model": " + ".join(dict.fromkeys(m for _, m in specs)),
                 "machine": cpu_model(), "date": dt.date.today().isoformat(),
                 "command": command, "folds": list(folds), "dev_fold": dev_fold}
    per_fold, member_acc, preds = {}, {e: {} for e in exps}, []
    feature_sets: dict[int, object] = {}  # member index → the FeatureSet it is scored on
    with tempfile.TemporaryDirectory() as tmp:
        for k in folds:
            splits = {e: dvc.api.read(f"data/cv/{k}/split.csv", repo=str(repo), rev=rev)
                      for e, (rev, _) in zip(exps, specs)}
            if len(set(splits.values())) > 1:
                raise SystemExit(f"cv_results ensemble: the experiments split fold {k} "
                                 "differently; an ensemble needs the same folds")
            roles = pd.read_csv(io.StringIO(splits[exps[0]]), dtype=str, keep_default_na=False)
            test = roles[roles["role"] == "test"]
            paths = [member_checkpoint(repo, rev, k, m, Path(tmp)) for rev, m in specs]
            members = [load_classifier(path) for path in paths]
            if any(m.classes != members[0].classes for m in members):
                raise SystemExit(f"cv_results ensemble: fold {k}'s members know different "
                                 "classes; their probabilities cannot be averaged")
            if not feature_sets:
                shared = all(m.features == members[0].features for m in members)
                by_config: dict[str, object] = {}
                for i, ((rev, _), m) in enumerate(zip(specs, members)):
                    key = repr(m.features)
                    if key not in by_config:
                        by_config[key] = (load_features(features) if shared
                                          else member_features(repo, rev, Path(tmp)))
                    feature_sets[i] = by_config[key]
            probs = []
            for i, m in enumerate(members):
                feats = feature_sets[i]
                db = np.asarray(feats.mels[feats.rows(test["clip_id"])])
                if db.shape[1:] != (m.features.n_mels, m.features.n_frames):
                    where = features if shared else f"data/features at {specs[i][0]}"
                    raise SystemExit(f"cv_results ensemble: {where} holds {db.shape[1:]} "
                                     f"spectrograms, not those {exps[i]} was trained on; "
                                     "`dvc exp apply` one of the experiments first")
                probs.append(m.predict(db)["probs"])
            if k == folds[0]:
                compute = [model_compute(path, m.features.n_frames)
                           for path, m in zip(paths, members)]
            classes = members[0].classes
            truth = test["label"].map({c: i for i, c in enumerate(classes)}).to_numpy()
            for e, p in zip(exps, probs):
                member_acc[e][str(k)] = float((p.argmax(1) == truth).mean())
            mean = np.mean(probs, axis=0).argmax(1)
            per_fold[str(k)] = float((mean == truth).mean())
            preds.append(pd.DataFrame({"actual": test["label"].to_numpy(),
                                       "predicted": [classes[i] for i in mean]}))
    pooled = pd.concat(preds)
    per_class = (pooled["actual"] == pooled["predicted"]).groupby(pooled["actual"]).mean()
    matrix = count_confusion(pooled, classes)
    out["accuracy"] = figures(per_fold, dev_fold)
    out["member_accuracy"] = {e: figures(a, dev_fold) for e, a in member_acc.items()}
    out["per_class"] = {c: float(a) for c, a in per_class.sort_index().items()}
    out["member_compute"] = dict(zip(exps, compute))
    out["compute"] = {key: sum(c[key] for c in compute) for key in ("params_m", "mflops")}
    out["clips"] = len(pooled)
    out["confusion"] = {a: {p: int(n) for p, n in zip(classes, row) if n}  # actual → predicted
                        for a, row in zip(classes, matrix)}
    return out
