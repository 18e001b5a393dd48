"""Generated samples for stage ``synthesize``: sample the trained generator per class, turn the
spectrograms into WAVs, and score them as WaveGAN/SpecGAN and CAS do — each figure beside its
real-data value, each with a bootstrap 95 % interval."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sonic.config.features import FeatureConfig
from sonic.config.invert import InvertConfig
from sonic.config.synthesize import SynthesizeConfig
from sonic.features.mel import prepare_waveform, waves_to_mels
from sonic.generation.cas import train_and_test
from sonic.generation.gan import Generator
from sonic.generation.mel_to_wave import mel_db_to_wave
from sonic.generation.quality import (bootstrap, bootstrap_runs, conditional_accuracy, copy_rate,
                                     frechet_interval, inception_score)
from sonic.generation.state import fixed_grid, generate
from sonic.models.checkpoint import Classifier
from sonic.progress import progress


@dataclass
class Samples:
    db: np.ndarray  # (N, n_mels, T) generated log-mels in dB, peak-relative like the features
    labels: np.ndarray  # (N,) intended class indices


def on_feature_scale(x: np.ndarray, mean: float, std: float, top_db: float) -> np.ndarray:
    """Normalised generator output (N, M, T) → dB on the features' reference: each clip's peak
    at 0 dB, floored ``top_db`` below it, exactly as ``extract_mels`` leaves a real clip."""
    db = x * std + mean
    db = db - db.max(axis=(1, 2), keepdims=True)
    return np.clip(db, -top_db, 0.0).astype(np.float32)


def sample_per_class(G: Generator, n_classes: int, per_class: int, z_dim: int, seed: int,
                     mean: float, std: float, top_db: float) -> Samples:
    """``per_class`` spectrograms of every class (class by class), in peak-relative dB."""
    z, labels = fixed_grid(n_classes, per_class, z_dim, seed)
    x = generate(G, z, labels)[:, 0].numpy()  # (N, n_mels, T) normalised
    return Samples(on_feature_scale(x, mean, std, top_db), labels.numpy())


def sample_like(G: Generator, labels: np.ndarray, seed: int, mean: float, std: float,
                top_db: float) -> Samples:
    """One generated spectrogram per entry of ``labels`` (N,): a generated twin of a labelled
    set, with its size and class balance (the CAS training set)."""
    z = torch.randn(len(labels), G.z_dim, generator=torch.Generator().manual_seed(seed))
    # a copy: labels may be a read-only memory map, which torch will not wrap
    x = generate(G, z, torch.from_numpy(np.array(labels, dtype=np.int64)))[:, 0].numpy()
    return Samples(on_feature_scale(x, mean, std, top_db), np.asarray(labels))


def invert_all(db: np.ndarray, features: FeatureConfig, cfg: InvertConfig, seed: int,
               device: torch.device, inverter: torch.nn.Module | None = None,
               batch_size: int = 16) -> np.ndarray:
    """(N, n_mels, T) dB → (N, samples) peak-normalised waveforms at the feature sample rate,
    through ``inverter`` when given (else the least-squares inverse filterbank), then
    ``cfg.griffin_lim_iters`` of Griffin-Lim with ``cfg.momentum``."""
    waves = [mel_db_to_wave(torch.from_numpy(db[i:i + batch_size]), features,
                            cfg.griffin_lim_iters, seed + i, device, cfg.momentum,
                            inverter).cpu().numpy()
             for i in progress(range(0, len(db), batch_size), desc="invert", leave=False)]
    return np.concatenate(waves).astype(np.float32)


def roundtrip_mels(waves: np.ndarray, features: FeatureConfig) -> np.ndarray:
    """Generated WAVs through exactly the ``extract_mels`` processing (trim, pad/crop, log-mel)."""
    prepared = np.stack([prepare_waveform(w[None], features.sample_rate, features) for w in waves])
    return waves_to_mels(prepared, features)


@dataclass
class RealSets:
    """The real clips the figures are read against, in dB (N, M, T) with class indices (N,)."""

    train_db: np.ndarray  # the clips the judge and the GAN trained on
    train_y: np.ndarray
    held_db: np.ndarray  # labelled clips neither trained on (val and test roles)
    held_y: np.ndarray


def _figure(stat, arrays: tuple[np.ndarray, ...], n_boot: int, seed: int) -> dict:
    value, low, high = bootstrap(stat, arrays, n_boot, seed)
    return {"value": value, "ci": [low, high]}


def _acc(pred: np.ndarray, y: np.ndarray, n_boot: int, seed: int) -> dict:
    """Accuracy of predictions (N,) against labels (N,) with its 95 % interval."""
    hit = (np.asarray(pred) == np.asarray(y)).astype(np.float64)
    return _figure(np.mean, (hit,), n_boot, seed)


def _runs_acc(preds: list[np.ndarray], y: np.ndarray, n_boot: int, seed: int) -> dict:
    """Mean accuracy of several runs' predictions (each (N,)) against labels (N,), its 95 %
    interval over runs and clips (:func:`bootstrap_runs`), and each run's accuracy."""
    hits = np.stack([np.asarray(p) == np.asarray(y) for p in preds])  # (R, N)
    value, low, high = bootstrap_runs(hits, n_boot, seed)
    return {"value": value, "ci": [low, high], "runs": [float(h.mean()) for h in hits]}


def cas_predictions(cas_samples: list[Samples], real: RealSets, n_classes: int,
                    cfg: SynthesizeConfig, mean: float, std: float,
                    device: torch.device | str = "cpu") -> dict[str, list[np.ndarray]]:
    """The held-out predictions behind CAS (``"cas"``) and its real-trained reference
    (``"cas_real"``): ``cfg.cas.runs`` runs each, every run's predictions (N,).

    Run r trains on ``cas_samples[r % len(cas_samples)]`` with seed ``cfg.seed + r``, and its
    twin trains on the real training clips with the same seed: the two figures differ only in
    where the training spectrograms came from.
    """
    preds: dict[str, list[np.ndarray]] = {"cas": [], "cas_real": []}
    for r in range(cfg.cas.runs):
        twins = cas_samples[r % len(cas_samples)]
        for name, (x, y) in (("cas", (twins.db, twins.labels)),
                             ("cas_real", (real.train_db, real.train_y))):
            preds[name].append(train_and_test(x, y, real.held_db, n_classes, cfg.cas, mean, std,
                                              cfg.seed + r, device, f"{name} {r + 1}"))
    return preds


def quality_report(judge: Classifier, samples: Samples, roundtrip_db: np.ndarray,
                   real: RealSets, cfg: SynthesizeConfig, device: torch.device | str = "cpu",
                   baseline_roundtrip: tuple[np.ndarray, np.ndarray] | None = None,
                   cas_samples: list[Samples] | None = None) -> dict:
    """All synthesis figures, each beside the real-data value it is read against, each with a
    bootstrap 95 % interval (``{"value", "ci"}``).

    ``judge`` is the trained CNN; its classes define the label indices. ``roundtrip_db``
    (N, M, T) are the generated spectrograms after WAV and back; ``baseline_roundtrip``, if
    measured, is (K, M, T) of them after the old inversion (least squares + plain Griffin-Lim)
    with their intended labels (K,). ``cas_samples`` train the CAS classifiers, one set per
    run (default ``[samples]``); give each the real training set's size and class balance
    (:func:`sample_like`) so that ``cas`` and ``cas_real`` differ only in where the training
    spectrograms came from (see :func:`cas_predictions`).
    """
    classes, n_boot, seed = judge.classes, cfg.n_boot, cfg.seed
    gen, held = judge.predict(samples.db), judge.predict(real.held_db)
    train_emb = judge.predict(real.train_db)["embedding"]
    trip_pred = judge.predict(roundtrip_db)["probs"].argmax(1)
    report = {
        "inception_score": _figure(inception_score, (gen["probs"],), n_boot, seed),
        "inception_score_real": _figure(inception_score, (held["probs"],), n_boot, seed),
        "judge_accuracy": _acc(gen["probs"].argmax(1), samples.labels, n_boot, seed),
        "judge_accuracy_real": _acc(held["probs"].argmax(1), real.held_y, n_boot, seed),
        "roundtrip_accuracy": _acc(trip_pred, samples.labels, n_boot, seed),
    }
    if baseline_roundtrip is not None:
        base_db, base_y = baseline_roundtrip
        base = judge.predict(base_db)["probs"].argmax(1)
        report["roundtrip_accuracy_baseline"] = _acc(base, base_y, n_boot, seed) | {
            "n": int(len(base_y))}
    n_classes = len(classes)
    mean, std = judge.mean, judge.std
    cas_samples = cas_samples if cas_samples is not None else [samples]
    cas = cas_predictions(cas_samples, real, n_classes, cfg, mean, std, device)
    for name, preds in cas.items():
        report[name] = _runs_acc(preds, real.held_y, n_boot, seed)
    fd = frechet_interval(gen["embedding"], held["embedding"], cfg.fd_dims, n_boot, seed)
    report["frechet"] = {"value": fd["fd"], "ci": fd["fd_ci"], "n": fd["n"]}
    report["frechet_floor"] = {"value": fd["floor"], "ci": fd["floor_ci"], "n": fd["n"]}
    copies = copy_rate(gen["embedding"], train_emb, held["embedding"], cfg.copy_quantile)
    below = (copies["gen_to_train"] < copies["threshold"]).astype(np.float64)
    report["copy_rate"] = _figure(np.mean, (below,), n_boot, seed) | {
        "expected": copies["expected"], "nn_ratio": copies["ratio"]}
    report["n_generated"] = int(len(samples.labels))
    report["n_cas_generated"] = int(len(cas_samples[0].labels))
    report["cas_runs"] = cfg.cas.runs
    report["n_held_out"] = int(len(real.held_y))
    report["per_class"] = per_class_accuracy(classes, {
        "judge_accuracy": (gen["probs"].argmax(1), samples.labels),
        "roundtrip_accuracy": (trip_pred, samples.labels),
        "judge_accuracy_real": (held["probs"].argmax(1), real.held_y),
        **{name: (np.concatenate(preds), np.tile(real.held_y, len(preds)))
           for name, preds in cas.items()}})
    return report


def per_class_accuracy(classes: list[str], figures: dict[str, tuple[np.ndarray, np.ndarray]]
                       ) -> dict[str, dict[str, float | None]]:
    """class → figure → accuracy over the samples of that class (None when it has none), from
    figure → (predictions (N,), labels (N,))."""
    per_figure = {key: conditional_accuracy(pred, y, classes)["per_class"]
                  for key, (pred, y) in figures.items()}
    return {name: {key: acc[name] for key, acc in per_figure.items()} for name in classes}


def headline(report: dict) -> dict:
    """The few figures ``dvc exp show`` lists (values only; intervals stay in report.json)."""
    keys = ("inception_score", "inception_score_real", "judge_accuracy", "roundtrip_accuracy",
            "cas", "cas_real", "frechet", "frechet_floor", "copy_rate")
    return {k: report[k]["value"] for k in keys}
