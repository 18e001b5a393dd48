"""Typed, frozen views of ``params.yaml``.

``params.yaml`` is parsed here and nowhere else. Each top-level section maps onto one frozen
dataclass; an unknown key or a value of the wrong type is a :class:`ConfigError` that names the
key's full dotted path (``augment.noise.snr_min``), so a typo never silently falls back to a
default. So is a value out of its range (fields declared with :func:`bounded`: ``train.patience:
must be ≥ 1, got 0``) or values that do not fit together (a dataclass's ``problems()``).

The dataclass defaults are ``params.yaml``'s values (``tests/test_config.py`` checks that they
agree), so a section or key left out of a params file means what the committed file says.
"""
from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml


_EXPONENT_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


class ConfigError(ValueError):
    """A params file that does not match the schema below."""


def bounded(default: Any, low: float | None = None, high: float | None = None, *,
            open_low: bool = False, open_high: bool = False) -> Any:
    """A field whose value (each element, for a tuple) must lie in [low, high]; ``open_low`` /
    ``open_high`` exclude the bound. Checked by the parser, which names the key."""
    return dataclasses.field(default=default, metadata={"range": (low, high, open_low, open_high)})


def _out_of_range(value: Any, bounds: tuple) -> str | None:
    """Why ``value`` (or an element of it) breaks ``bounds``, or None."""
    low, high, open_low, open_high = bounds
    for v in value if isinstance(value, tuple) else (value,):
        if low is not None and (v < low or (open_low and v == low)):
            return f"must be {'>' if open_low else '≥'} {low}, got {value!r}"
        if high is not None and (v > high or (open_high and v == high)):
            return f"must be {'<' if open_high else '≤'} {high}, got {value!r}"
    return None


PROBABILITY = dict(low=0.0, high=1.0)


# --------------------------------------------------------------------------------------- data
@dataclass(frozen=True)
class DataConfig:
    layout: Literal["demo", "folder", "esc50", "urbansound8k"] = "demo"
    root: str = "data/demo"
    on_bad_file: Literal["skip", "fail"] = "skip"
    group_regex: str | None = None  # first capture group of the file stem names the clip's group
    answers: str | None = None  # answers CSV for folder layouts; default <root>/test_labels.csv
    subset: Literal["all", "esc10"] = "all"  # esc50 layout: esc10 keeps the ESC-10 clips only
    classes: tuple[str, ...] | None = None  # keep only clips of these labels (None: every class)

    def problems(self) -> list[tuple[str, str]]:
        """(field, why) for values that are each fine but do not fit together."""
        if self.subset != "all" and self.layout != "esc50":
            return [("subset", f"{self.subset} is a subset of the esc50 layout, but "
                               f"data.layout is {self.layout}")]
        if self.classes is not None and not self.classes:
            return [("classes", "must name at least one class, or be null for all")]
        return []


@dataclass(frozen=True)
class DemoConfig:
    seed: int = 7
    classes: tuple[str, ...] = ("dog_bark", "drilling", "siren", "engine_idling", "rain",
                                "car_horn", "jackhammer", "street_music")
    train_per_class: int = bounded(75, 1)
    test_per_class: int = bounded(20, 0)
    snr_db: tuple[float, float] = (-5.0, 20.0)  # event over background, drawn per clip
    overlap_p: float = bounded(0.5, **PROBABILITY)  # chance a clip has a second, quieter event
    # its level re the labelled event; below 0 dB, so the label's event stays the loudest
    overlap_db: tuple[float, float] = bounded((-15.0, -5.0), None, 0.0, open_high=True)
    workers: int = bounded(2, 1)  # rendering processes

    def problems(self) -> list[tuple[str, str]]:
        """(field, why) for values that are each fine but do not fit together."""
        return [(k, f"must be [low, high] with low ≤ high, got {list(v)}")
                for k, v in (("snr_db", self.snr_db), ("overlap_db", self.overlap_db))
                if v[0] > v[1]]


# ----------------------------------------------------------------------------------- features
@dataclass(frozen=True)
class FeatureConfig:
    sample_rate: int = bounded(22050, 1)  # Hz
    duration: float = bounded(2.5, 0.0, open_low=True)  # seconds every clip is padded or cropped to
    n_fft: int = bounded(1024, 2)
    hop_length: int = bounded(512, 1)
    n_mels: int = bounded(64, 1)
    f_min: float = bounded(0.0, 0.0)  # Hz
    f_max: float | None = None  # Hz; None means sample_rate / 2
    # dB below each clip's peak that the log-mel is clamped to
    top_db: float = bounded(80.0, 0.0, open_low=True)
    trim: bool = True
    trim_db: float = bounded(60.0, 0.0, open_low=True)  # dB below peak counted as silence
    device: str = "cpu"
    workers: int = bounded(2, 1)  # decoding processes
    batch_size: int = bounded(64, 1)  # clips per mel batch

    def problems(self) -> list[tuple[str, str]]:
        """(field, why) for values that are each fine but do not fit together."""
        out = []
        if self.hop_length > self.n_fft:
            out.append(("hop_length", f"must be ≤ n_fft ({self.n_fft}), got {self.hop_length}"))
        nyquist = self.sample_rate / 2
        if self.f_max is not None and not self.f_min < self.f_max <= nyquist:
            out.append(("f_max", f"must be above f_min ({self.f_min}) and at most half the "
                                 f"sample rate ({nyquist:g}), got {self.f_max}"))
        if self.f_min >= nyquist:
            out.append(("f_min", f"must be below half the sample rate ({nyquist:g}), got "
                                 f"{self.f_min}"))
        return out

    @property
    def n_samples(self) -> int:
        return int(round(self.duration * self.sample_rate))

    @property
    def n_frames(self) -> int:
        return self.n_samples // self.hop_length + 1  # centred STFT


@dataclass(frozen=True)
class SplitConfig:
    val_size: float = bounded(0.2, 0.0, 1.0, open_low=True, open_high=True)
    val_fold: int = bounded(1, 1)  # fold layouts: the fold held out (role test), scored once
    # inner: early stopping and the best epoch from a validation slice of the training clips;
    # last: a fixed number of epochs, the last one kept (no validation slice in fold layouts)
    select: Literal["inner", "last"] = "inner"
    select_size: float = bounded(0.1, 0.0, 1.0, open_low=True, open_high=True)  # fold layouts
    seed: int = 42


# ------------------------------------------------------------------------------------ augment
@dataclass(frozen=True)
class RangeAug:
    """One augmentation: applied with probability ``p``, strength drawn uniformly in [low, high]."""

    p: float = bounded(0.5, **PROBABILITY)
    low: float = 0.0
    high: float = 0.0

    def problems(self) -> list[tuple[str, str]]:
        """(field, why) for values that are each fine but do not fit together."""
        if self.high < self.low:
            return [("high", f"must be ≥ low ({self.low}), got {self.high}")]
        return []


@dataclass(frozen=True)
class AugmentConfig:
    copies: int = bounded(1, 0)
    seed: int = 0
    p_unchanged: float = bounded(0.1, **PROBABILITY)  # chance a copy is left as it is
    time_stretch: RangeAug = RangeAug(0.5, 0.8, 1.25)  # rate; >1 is faster
    pitch_shift: RangeAug = RangeAug(0.5, -2.0, 2.0)  # semitones
    speed: RangeAug = RangeAug(0.3, 0.9, 1.1)  # resampling factor (pitch and tempo together)
    noise: RangeAug = RangeAug(0.5, 10.0, 30.0)  # SNR in dB
    time_shift: RangeAug = RangeAug(0.5, -0.2, 0.2)  # fraction of the clip, circular
    reverb: RangeAug = RangeAug(0.3, 0.2, 0.8)  # RT60 in seconds
    reverb_wet: float = bounded(0.3, **PROBABILITY)  # wet/dry mix of the reverb
    workers: int = bounded(2, 1)


# -------------------------------------------------------------------------------------- train
@dataclass(frozen=True)
class TrainConfig:
    seed: int = 42
    device: str = "auto"  # auto | cuda | mps | cpu
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    channels_last: bool = True
    epochs: int = bounded(15, 1)
    batch_size: int = bounded(32, 1)
    lr: float = bounded(1e-3, 0.0, open_low=True)
    weight_decay: float = bounded(0.01, 0.0)
    schedule: Literal["onecycle", "cosine"] = "onecycle"
    pct_start: float = bounded(0.2, 0.0, 1.0, open_low=True, open_high=True)
    label_smoothing: float = bounded(0.1, 0.0, 1.0, open_high=True)
    mixup_alpha: float = bounded(0.2, 0.0)
    mixup_prob: float = bounded(0.3, **PROBABILITY)  # fraction of batches mixed
    mixing: Literal["mixup", "bc"] = "mixup"  # bc: between-class mixing in the power domain
    ema: float = bounded(0.0, 0.0, 1.0, open_high=True)  # weight-average decay per step; 0 = off
    crop_frames: int = bounded(0, 0)  # random training crops of this many frames; 0 = whole clip
    test_crops: int = bounded(1, 1)  # crops averaged at inference when crop_frames > 0
    freq_masks: int = bounded(2, 0)
    freq_mask_width: int = bounded(16, 0)  # mel bins, max
    time_masks: int = bounded(2, 0)
    time_mask_width: int = bounded(20, 0)  # frames, max
    grad_clip: float = bounded(5.0, 0.0)
    monitor: Literal["val_accuracy", "val_loss"] = "val_accuracy"
    patience: int = bounded(5, 1)
    use_augmented: bool = True
    workers: int = bounded(0, 0)  # DataLoader processes; 0 reads batches in the training process
    nproc: int = bounded(1, 1)  # DDP processes on this machine (torchrun); batch_size is global

    def problems(self) -> list[tuple[str, str]]:
        if self.batch_size % self.nproc:
            return [("batch_size", f"must be a multiple of train.nproc ({self.nproc}): it is "
                                   f"the global batch, split evenly, got {self.batch_size}")]
        return []


@dataclass(frozen=True)
class CNNConfig:
    widths: tuple[int, ...] = bounded((32, 64, 128, 256), 1)
    fc: tuple[int, ...] = bounded((256,), 1)
    pool: tuple[int, int] = bounded((2, 3), 1)  # adaptive-average-pool output before the FC head
    dropout: float = bounded(0.2, 0.0, 1.0, open_high=True)  # after each conv block
    fc_dropout: float = bounded(0.5, 0.0, 1.0, open_high=True)


@dataclass(frozen=True)
class ResNetConfig:
    blocks: tuple[int, ...] = bounded((2, 2, 2, 2), 1)  # (3, 4, 6, 3) is the ResNet-34 layout
    widths: tuple[int, ...] = bounded((32, 64, 128, 256), 1)
    dropout: float = bounded(0.5, 0.0, 1.0, open_high=True)
    pool: Literal["avg", "avgmax"] = "avg"  # avgmax: mean over mels, then mean + max over time
    pretrained: str | None = None  # local torchvision ResNet state dict


@dataclass(frozen=True)
class EvaluateConfig:
    calibration_bins: int = bounded(15, 1)


@dataclass(frozen=True)
class SubmitConfig:
    model: Literal["cnn", "resnet", "ensemble"] = "ensemble"


# ---------------------------------------------------------------------------------------- gan
@dataclass(frozen=True)
class CGANConfig:
    seed: int = 0
    z_dim: int = bounded(128, 1)
    embed_dim: int = bounded(32, 1)
    g_width: int = bounded(128, 1)  # channels of the first upsampling block; halved by each block
    d_width: int = bounded(16, 1)  # channels of the first discriminator block; doubled by each
    d_norm: Literal["spectral", "batch"] = "spectral"
    loss: Literal["bce", "hinge"] = "bce"
    mode_seeking: float = bounded(1.0, 0.0)  # weight of the MSGAN term against class collapse
    epochs: int = bounded(30, 1)
    batch_size: int = bounded(16, 2)  # BatchNorm needs two samples
    lr_g: float = bounded(5e-4, 0.0, open_low=True)
    lr_d: float = bounded(5e-4, 0.0, open_low=True)
    sample_every: int = bounded(20, 1)
    audio_samples: int = bounded(1, 0, 4)  # WAVs per class written at each sample_every
    upsample: Literal["resize", "transpose"] = "resize"  # transpose: the old, checkerboarding one
    cond_bn: bool = True  # per-class batch-norm scale/shift in G (False: label at the input only)
    aux_weight: float = bounded(1.0, 0.0)  # AC-GAN class loss on D (real clips) and G (fakes)
    aux_twin: bool = False  # TAC-GAN: a twin class head on fakes whose loss G maximises
    d_coords: bool = True  # D also sees fixed time and mel-bin ramps (where a sound sits)
    d_mbstd: int = bounded(0, 0)  # minibatch-stddev group size before D's last block (4 on FSDD)
    d_augment: float = bounded(0.0, 0.0, 1.0)  # DiffAugment: chance of each op on each clip D sees
    d_augment_ops: tuple[Literal["shift", "time", "mel"], ...] = ("shift", "time", "mel")  # its ops
    ema: float = bounded(0.999, 0.0, 1.0, open_high=True)  # averaged G, sampled from; 0 = off
    standing_batches: int = bounded(100, 0)  # batches re-estimating the sampler's BN statistics
    device: str = "auto"


@dataclass(frozen=True)
class InvertConfig:
    """Log-mel → waveform: the mel → linear-magnitude network (stage ``train_inverter``) and
    the Griffin-Lim that turns its magnitudes into audio (used by every stage that inverts)."""

    method: Literal["network", "lstsq"] = "network"  # lstsq: the least-squares inverse mel
    griffin_lim_iters: int = bounded(32, 1)
    momentum: float = bounded(0.99, 0.0, 1.0, open_high=True)  # fast Griffin-Lim; 0 = plain
    seed: int = 0
    hidden: int = bounded(256, 1)  # channels of the network's hidden conv layers
    kernel: int = bounded(5, 1)  # frames each conv layer sees (odd)
    layers: int = bounded(3, 1)  # hidden conv layers
    steps: int = bounded(400, 1)  # optimizer steps
    batch_size: int = bounded(16, 1)  # random crops per step
    crop: int = bounded(32, 1)  # frames per crop
    lr: float = bounded(2e-3, 0.0, open_low=True)  # AdamW, cosine decay to 0
    eval_clips: int = bounded(48, 1)  # held-out real clips the methods are compared on
    device: str = "auto"

    def problems(self) -> list[tuple[str, str]]:
        if self.kernel % 2 == 0:
            return [("kernel", f"must be odd (frames stay aligned), got {self.kernel}")]
        return []


@dataclass(frozen=True)
class CASConfig:
    """The small classifier trained on generated clips (CAS) and, for reference, on real ones."""

    widths: tuple[int, ...] = bounded((16, 32, 64), 1)
    epochs: int = bounded(8, 1)
    batch_size: int = bounded(32, 1)
    lr: float = bounded(2e-3, 0.0, open_low=True)
    runs: int = bounded(3, 1)  # classifiers per source (seeds; fresh generated twins each)


@dataclass(frozen=True)
class SynthesizeConfig:
    seed: int = 0
    per_class: int = bounded(8, 1)  # WAVs written per class
    n_eval: int = bounded(512, 2)  # generated spectrograms the figures are computed on
    n_boot: int = bounded(200, 10)  # bootstrap resamples per 95 % interval
    fd_dims: int = bounded(64, 1)  # judge-embedding PCA dimensions for the Fréchet distance
    copy_quantile: float = bounded(0.05, 0.0, 1.0, open_low=True, open_high=True)
    cas: CASConfig = CASConfig()
    device: str = "auto"


@dataclass(frozen=True)
class CVConfig:
    folds: tuple[int, ...] = bounded((), 1)  # fold layouts: the folds `dvc repro` cross-validates
    models: tuple[Literal["cnn", "resnet"], ...] = ("cnn", "resnet")  # classifiers trained per fold


@dataclass(frozen=True)
class Params:
    data: DataConfig = DataConfig()
    demo: DemoConfig = DemoConfig()
    features: FeatureConfig = FeatureConfig()
    split: SplitConfig = SplitConfig()
    augment: AugmentConfig = AugmentConfig()
    train: TrainConfig = TrainConfig()
    cnn: CNNConfig = CNNConfig()
    resnet: ResNetConfig = ResNetConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    submit: SubmitConfig = SubmitConfig()
    cgan: CGANConfig = CGANConfig()
    invert: InvertConfig = InvertConfig()
    synthesize: SynthesizeConfig = SynthesizeConfig()
    cv: CVConfig = CVConfig()


# ------------------------------------------------------------------------------------ parsing
def _convert(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it in the dataclass's own types."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return _build(tp, value, key)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return _convert(value, option, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0])
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{key}: expected one of {list(typing.get_args(tp))}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{key}: expected {len(args)} values, got {len(value)}")
        return tuple(_convert(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str) and _EXPONENT_FLOAT.fullmatch(value):
        return float(value)  # YAML 1.2 reads 1e-3 as a float; PyYAML (YAML 1.1) as a string
    if tp in (int, float, str, bool):
        if type(value) is not tp:
            raise ConfigError(f"{key}: expected {tp.__name__}, got {type(value).__name__} {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported annotation {tp!r}")  # a bug in this module


def _build(cls: type, raw: dict, prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise ConfigError(f"unknown key {where}{unknown[0]} (allowed: {', '.join(sorted(names))})")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for name, value in raw.items():
        key = f"{prefix}.{name}" if prefix else name
        kwargs[name] = _convert(value, hints[name], key)
        bounds = fields[name].metadata.get("range")
        problem = _out_of_range(kwargs[name], bounds) if bounds else None
        if problem:
            raise ConfigError(f"{key}: {problem}")
    built = cls(**kwargs)
    for name, problem in getattr(built, "problems", lambda: [])():
        raise ConfigError(f"{prefix}.{name}: {problem}" if prefix else f"{name}: {problem}")
    return built


def parse_params(raw: dict | None) -> Params:
    """Build :class:`Params` from an already-loaded mapping; missing keys keep their defaults."""
    return _build(Params, raw or {}, "")


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate a params file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: params file not found") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    try:
        return parse_params(raw)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def to_dict(obj: Any) -> dict:
    """A config (or any dataclass) as plain YAML/JSON-friendly data, tuples as lists."""

    def plain(v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(dataclasses.asdict(obj))
