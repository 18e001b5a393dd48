"""The one inference object behind ``sonic predict``, ``sonic serve`` and the page.

:class:`Predictor` owns the loaded classifiers and does preprocess → forward → postprocess. The
CLI and the HTTP routes both call it, so the two can never disagree about a file.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch
from tqdm import tqdm

from sonic.audio.io import AudioLimits, probe, read_error
from sonic.config import FeatureConfig
from sonic.inference.prediction import Prediction
from sonic.inference.windows import ClipWindows, Windowing, load_windows, stream_windows
from sonic.models.checkpoint import Classifier, load_classifier
from sonic.precision import autocast, memory_format, use_bf16
from sonic.runtime import ordered_map

ENSEMBLE = "ensemble"
PIPELINE_MODELS = ("cnn", "resnet")  # data/models/<name>.pt, as dvc.yaml writes them
LONG_SECONDS = 60.0  # longer files are scored in batches of windows in this process
WORKER_DIED = ("the decoding process died while reading this file (killed by the system, e.g. "
               "out of memory); the other files were still read: check this one alone")


class UnknownModelError(LookupError):
    """A model name that is neither loaded nor ``ensemble``."""


def resolve_checkpoint(model: str, models_dir: str | Path) -> Path:
    """``cnn`` / ``resnet`` → ``models_dir/<name>.pt``; anything else is a checkpoint path.

    Raises ``FileNotFoundError`` naming the missing file and how to make it, or
    :class:`UnknownModelError` for a name that is neither.
    """
    if model in PIPELINE_MODELS:
        path = Path(models_dir) / f"{model}.pt"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no checkpoint; run `dvc repro` to train the "
                                    "models, or pass --model FILE.pt")
        return path
    path = Path(model)
    if path.suffix == ".pt" or path.is_file():
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such checkpoint file")
        return path
    raise UnknownModelError(f"unknown model {model!r}: use cnn, resnet or the path of a "
                            "checkpoint (.pt), or ensemble where both can serve")


@dataclass
class Predictor:
    """Loaded classifiers that share one class list and one feature config.

    Parameters
    ----------
    classifiers : name → :class:`Classifier`, e.g. ``{"cnn": ..., "resnet": ...}``.
    default : the model used when a call names none: a key of ``classifiers`` or ``"ensemble"``
        (the mean of every loaded classifier's probabilities).
    batch_size : windows per forward pass.
    limits : what a file may be before it is decoded (duration, rate, channels, amplitude).
    precision : ``auto`` runs the models under bf16 autocast where the hardware does bf16
        natively (CUDA; CPUs with avx512_bf16 or AMX) — the rule of ``train.precision: auto`` —
        and in fp32 elsewhere; ``bf16`` or ``fp32`` force one. Measured on the demo models
        (Intel Xeon with AMX, 64 windows of 128×108): CNN 23 → 50 windows/s, ResNet-18 171 → 340,
        probabilities within 0.005 of fp32, the same top class; with channels_last as well
        (chosen by training's rule) CNN 161 and ResNet 609 windows/s in batches of 16.
    """

    classifiers: dict[str, Classifier]
    default: str = ENSEMBLE
    batch_size: int = 16  # measured best for the CNN on CPU (16: 161 windows/s, 64: 116)
    precision: str = "auto"
    limits: AudioLimits = AudioLimits()
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if not self.classifiers:
            raise ValueError("no classifier given")
        # (not evaluation's check_same_classes: importing scikit-learn costs the CLI a second)
        first_name, first = next(iter(self.classifiers.items()))
        for name, clf in self.classifiers.items():
            if clf.classes != first.classes:
                raise ValueError(f"{first_name} and {name} were trained on different classes; "
                                 "they cannot be ensembled")
            if clf.features != first.features:
                raise ValueError(f"{first_name} and {name} were trained on different features; "
                                 "load them separately")
        self.default = self.resolve(self.default)
        self.device = next(first.model.parameters()).device
        self.bf16 = use_bf16(self.precision, self.device)  # training's rule (sonic.precision)
        self._formats = {name: memory_format(clf.model, self.device, self.bf16)
                         for name, clf in self.classifiers.items()}
        for name, clf in self.classifiers.items():
            clf.model.eval().to(memory_format=self._formats[name])

    # ------------------------------------------------------------------------------ loading
    @classmethod
    def load(cls, model: str = ENSEMBLE, models_dir: str | Path = "data/models",
             device: torch.device | str = "cpu", batch_size: int = 16,
             precision: str = "auto", limits: AudioLimits = AudioLimits()) -> Predictor:
        """Load ``cnn``, ``resnet`` or ``ensemble`` from ``models_dir`` (the pipeline's
        ``data/models``), or any checkpoint file by its path.

        Raises ``FileNotFoundError`` naming the missing checkpoint and how to make it.
        """
        if model == ENSEMBLE:
            paths = [resolve_checkpoint(name, models_dir) for name in PIPELINE_MODELS]
        else:
            paths = [resolve_checkpoint(model, models_dir)]
        return cls.from_checkpoints(paths, device, model if model == ENSEMBLE else paths[0].stem,
                                    batch_size, precision, limits)

    @classmethod
    def from_checkpoints(cls, paths: Iterable[str | Path], device: torch.device | str = "cpu",
                         default: str | None = None, batch_size: int = 16,
                         precision: str = "auto", limits: AudioLimits = AudioLimits()
                         ) -> Predictor:
        """Classifier checkpoint files, each named by its file stem (``sonic serve --models``);
        ``default`` is the ensemble when two or more are given, else the one."""
        classifiers = {Path(p).stem: load_classifier(p, device) for p in paths}
        if default is None:
            default = ENSEMBLE if len(classifiers) > 1 else next(iter(classifiers), ENSEMBLE)
        return cls(classifiers, default, batch_size, precision, limits)

    @property
    def classes(self) -> list[str]:
        return next(iter(self.classifiers.values())).classes

    @property
    def features(self) -> FeatureConfig:
        return next(iter(self.classifiers.values())).features

    @property
    def models(self) -> list[str]:
        """Every name a call may use: the loaded classifiers, then ``ensemble`` if two or more."""
        return [*self.classifiers, *([ENSEMBLE] if len(self.classifiers) > 1 else [])]

    def resolve(self, model: str | None) -> str:
        model = self.default if model is None else model
        if model not in self.models:
            raise UnknownModelError(f"unknown model {model!r}; loaded: {', '.join(self.models)}")
        return model

    # ------------------------------------------------------------------------------ scoring
    def window_probs(self, mels: np.ndarray, model: str | None = None) -> np.ndarray:
        """(W, n_mels, T) dB → (W, C) probabilities of ``model`` (the ensemble: their mean)."""
        model = self.resolve(model)
        names = list(self.classifiers) if model == ENSEMBLE else [model]
        with self._lock, torch.inference_mode(), autocast(self.device, self.bf16):
            # one forward at a time: each already uses every core
            probs = [self._probs(n, mels) for n in names]
        return np.mean(probs, axis=0)

    def _probs(self, name: str, mels: np.ndarray) -> np.ndarray:
        """(W, n_mels, T) dB → (W, C) softmax of one classifier."""
        return self._logits(name, mels).softmax(-1).numpy()

    def _logits(self, name: str, mels: np.ndarray) -> torch.Tensor:
        """(W, n_mels, T) dB → (W, C) float logits of one classifier, ``batch_size`` windows at
        a time, in the memory format :meth:`__post_init__` chose for it."""
        clf, fmt = self.classifiers[name], self._formats[name]
        out = [clf.model(clf.normalize(mels[i:i + self.batch_size]).to(self.device,
                                                                       memory_format=fmt))
               ["logits"].float().cpu() for i in range(0, len(mels), self.batch_size)]
        return torch.cat(out)

    def member_logits(self, mels: np.ndarray, model: str | None = None) -> list[torch.Tensor]:
        """(W, n_mels, T) dB → the (W, C) logits of each classifier ``model`` stands for (every
        loaded one for the ensemble), one forward pass each."""
        model = self.resolve(model)
        names = list(self.classifiers) if model == ENSEMBLE else [model]
        with self._lock, torch.inference_mode(), autocast(self.device, self.bf16):
            return [self._logits(n, mels) for n in names]

    def inspected_model(self, model: str | None) -> str:
        """The classifier :meth:`inspect` looks inside for ``model``: that one, or the first
        loaded for ``None`` and the ensemble. Raises :class:`UnknownModelError` otherwise."""
        name = next(iter(self.classifiers)) if model in (None, ENSEMBLE) else model
        if name not in self.classifiers:
            raise UnknownModelError(f"unknown model {name!r} for feature maps; loaded: "
                                    f"{', '.join(self.classifiers)}")
        return name

    def feature_maps(self, model: str, db: np.ndarray, channels: int = 8) -> list[dict]:
        """Feature maps of one window (n_mels, T) dB in the classifier ``model`` (not the
        ensemble): see :func:`sonic.inference.inspect.feature_maps`."""
        from sonic.inference.inspect import feature_maps

        with self._lock:
            return feature_maps(self.classifiers[self.inspected_model(model)], db, channels)

    def inspect(self, path: str | Path, model: str | None = None, window_index: int = 0,
                channels: int = 8, windowing: Windowing | None = None) -> dict:
        """What one classifier sees and does in one window of a file (the explorer's inspect).

        ``model`` names a loaded classifier; ``None`` or the ensemble mean the first loaded one.
        ``window_index`` is clamped to the last window; only that window's log-mel is computed.
        Returns ``model``, ``duration_s``, ``sample_rate``, ``n_windows``, ``window`` (``index``,
        ``start_s``, ``end_s``), ``waveform`` (the file's min/max envelope), ``mel`` (the window
        as an image) and ``layers`` (:meth:`feature_maps`). A file it cannot use raises what
        decoding raised (:func:`sonic.audio.io.read_error` names it).
        """
        from sonic.features.stream import decode_mono
        from sonic.inference.inspect import envelope, mel_image
        from sonic.inference.windows import one_window

        name = self.inspected_model(model)
        windowing = windowing or self.windowing()
        decoded = decode_mono(path, self.features, self.limits)
        mel, start, n_windows = one_window(decoded, self.features, windowing, window_index)
        duration = decoded.info.duration
        return {"model": name, "duration_s": round(duration, 3),
                "sample_rate": decoded.info.sample_rate, "n_windows": n_windows,
                "window": {"index": min(window_index, n_windows - 1), "start_s": round(start, 3),
                           "end_s": round(min(start + windowing.window, duration), 3)},
                "waveform": envelope(decoded.signal),
                "mel": mel_image(mel, self.features.top_db),
                "layers": self.feature_maps(name, mel, channels)}

    def _result(self, clip: ClipWindows, model: str, windowing: Windowing,
                probs: np.ndarray | None = None) -> Prediction:
        result = Prediction(clip.path, model, self.classes, error=clip.error)
        if clip.error is not None:
            return result
        probs = self.window_probs(clip.mels, model) if probs is None else probs
        result.window_probs, result.probs, result.starts = probs, probs.mean(axis=0), clip.starts
        result.window, result.duration = windowing.window, clip.duration
        result.precision = "bf16" if self.bf16 else "fp32"
        result.sample_rate, result.channels = clip.sample_rate, clip.channels
        return result

    def windowing(self, window: float | None = None, hop: float | None = None) -> Windowing:
        return Windowing.default(self.features, window, hop)

    def predict_file(self, path: str | Path, model: str | None = None,
                     windowing: Windowing | None = None) -> Prediction:
        """Score one file in batches of windows (memory: one batch, and for a clip its mono
        signal; a long file is streamed, see :func:`~sonic.inference.windows.stream_windows`);
        an unusable file gives a :class:`Prediction` with ``error`` set."""
        model, windowing = self.resolve(model), windowing or self.windowing()
        try:
            info, batches = stream_windows(path, self.features, windowing, self.limits,
                                           self.batch_size)
            parts = [(self.window_probs(b.mels, model), b) for b in batches]
        except Exception as err:  # noqa: BLE001 - one file's failure is that file's row
            return Prediction(str(path), model, self.classes, error=read_error(err))
        clip = ClipWindows(str(path), starts=np.concatenate([b.starts for _, b in parts]),
                           duration=info.duration, sample_rate=info.sample_rate,
                           channels=info.channels)
        result = self._result(clip, model, windowing, np.concatenate([p for p, _ in parts]))
        result.levels = np.concatenate([b.levels for _, b in parts])
        result.band_db = np.concatenate([b.band_db for _, b in parts])
        result.band_times = np.concatenate([b.band_times for _, b in parts])
        return result

    def decoding_workers(self) -> int:
        """Decoding processes worth having: none beside the models on the CPU, where their
        forward passes already keep every core busy (measured on 2 cores, ESC-50 clips with the
        demo models: 34.5 clips/s decoding in-process, 33 with one decoding process, 32 with
        two); every usable core when the models run on an accelerator and decoding is the
        CPU's only work (not measured here)."""
        return 1 if self.device.type == "cpu" else len(os.sched_getaffinity(0))

    def predict_files(self, paths: Iterable[str | Path], model: str | None = None,
                      windowing: Windowing | None = None, workers: int | None = None,
                      progress: bool = False) -> Iterator[Prediction]:
        """Score many files, in order; the windows of consecutive files share forward passes.

        ``workers`` decoding processes (``None``: :meth:`decoding_workers`), or decoding in
        this process with ``workers <= 1``.
        """
        model, windowing = self.resolve(model), windowing or self.windowing()
        paths = [str(p) for p in paths]
        pending: list[ClipWindows] = []

        def flush() -> Iterator[Prediction]:
            good = [c for c in pending if c.error is None]
            probs = self.window_probs(np.concatenate([c.mels for c in good]), model) if good else None
            bounds = np.cumsum([0] + [len(c.mels) for c in good])
            slices = {id(c): probs[a:b] for c, a, b in zip(good, bounds[:-1], bounds[1:])}
            for clip in pending:
                yield self._result(clip, model, windowing, slices.get(id(clip)))
            pending.clear()

        n_windows = 0
        bar = tqdm(total=len(paths), desc="predict", unit="file", disable=not progress)
        workers = self.decoding_workers() if workers is None else workers
        jobs = [(p, self.features, windowing, self.limits) for p in paths]
        with bar:
            for clip in _decode(jobs, workers):
                if clip.deferred:  # long: scored here in batches, never sent back whole
                    yield from flush()
                    n_windows = 0
                    yield self.predict_file(clip.path, model, windowing)
                    bar.update()
                    continue
                pending.append(clip)
                n_windows += 0 if clip.mels is None else len(clip.mels)
                if n_windows >= self.batch_size:
                    yield from flush()
                    n_windows = 0
                bar.update()
            yield from flush()


def _load(job: tuple[str, FeatureConfig, Windowing, AudioLimits]) -> ClipWindows:
    """One file's windows, or a deferred clip for a long file (only its header read)."""
    path, features, windowing, limits = job
    try:
        if probe(path, limits).duration > LONG_SECONDS:
            return ClipWindows(path, deferred=True)
    except Exception as err:  # noqa: BLE001 - one file's failure is that file's row
        return ClipWindows(path, error=read_error(err))
    return load_windows(path, features, windowing, limits)


def _died(job: tuple) -> ClipWindows:
    return ClipWindows(job[0], error=WORKER_DIED)


def _decode(jobs: list[tuple], workers: int) -> Iterator[ClipWindows]:
    """:func:`_load` of every job in order: in this process (one worker), or over worker
    processes where a killed one costs only its own file (:func:`sonic.runtime.ordered_map`)."""
    if workers <= 1:
        return map(_load, jobs)
    return ordered_map(_load, jobs, workers, _died)
