"""Typed, frozen views of ``params.yaml``.

``params.yaml`` is parsed here and nowhere else. Each top-level section maps onto one frozen
dataclass; an unknown key or a value of the wrong type is a :class:`ConfigError` that names the
key's full dotted path (``augment.noise.snr_min``), so a typo never silently falls back to a
default.
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


# --------------------------------------------------------------------------------------- data
@dataclass(frozen=True)
class DataConfig:
    layout: Literal["demo", "folder", "esc50"] = "demo"
    root: str = "data/demo"
    on_bad_file: Literal["skip", "fail"] = "skip"
    group_regex: str | None = None  # first capture group of the file stem names the clip's group
    answers: str | None = None  # answers CSV for folder layouts; default <root>/test_labels.csv


@dataclass(frozen=True)
class DemoConfig:
    seed: int = 7
    classes: tuple[str, ...] = ("dog_bark", "drilling", "siren", "engine_idling", "rain")
    train_per_class: int = 40
    test_per_class: int = 10


# ----------------------------------------------------------------------------------- features
@dataclass(frozen=True)
class FeatureConfig:
    sample_rate: int = 22050  # Hz
    duration: float = 2.5  # seconds every clip is padded or cropped to
    n_fft: int = 1024
    hop_length: int = 512
    n_mels: int = 128
    f_min: float = 0.0  # Hz
    f_max: float | None = None  # Hz; None means sample_rate / 2
    top_db: float = 80.0  # dB below each clip's peak that the log-mel is clamped to
    trim: bool = True
    trim_db: float = 60.0  # dB below peak counted as silence by the trimmer
    device: str = "cpu"
    workers: int = 2  # decoding processes
    batch_size: int = 64  # clips per mel batch

    @property
    def n_samples(self) -> int:
        return int(round(self.duration * self.sample_rate))

    @property
    def n_frames(self) -> int:
        return self.n_samples // self.hop_length + 1  # centred STFT


@dataclass(frozen=True)
class SplitConfig:
    val_size: float = 0.2
    val_fold: int = 1  # ESC-50: the fold held out for validation
    seed: int = 42


# ------------------------------------------------------------------------------------ augment
@dataclass(frozen=True)
class RangeAug:
    """One augmentation: applied with probability ``p``, strength drawn uniformly in [low, high]."""

    p: float = 0.5
    low: float = 0.0
    high: float = 0.0


@dataclass(frozen=True)
class AugmentConfig:
    copies: int = 2
    seed: int = 0
    p_unchanged: float = 0.1  # chance a copy is left as it is
    time_stretch: RangeAug = RangeAug(0.5, 0.8, 1.25)  # rate; >1 is faster
    pitch_shift: RangeAug = RangeAug(0.5, -2.0, 2.0)  # semitones
    speed: RangeAug = RangeAug(0.3, 0.9, 1.1)  # resampling factor (pitch and tempo together)
    noise: RangeAug = RangeAug(0.5, 10.0, 30.0)  # SNR in dB
    time_shift: RangeAug = RangeAug(0.5, -0.2, 0.2)  # fraction of the clip, circular
    reverb: RangeAug = RangeAug(0.3, 0.2, 0.8)  # RT60 in seconds
    reverb_wet: float = 0.3  # wet/dry mix of the reverb
    workers: int = 2


# -------------------------------------------------------------------------------------- train
@dataclass(frozen=True)
class TrainConfig:
    seed: int = 42
    device: str = "auto"  # auto | cuda | mps | cpu
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    channels_last: bool = True
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.01
    schedule: Literal["onecycle", "cosine"] = "onecycle"
    pct_start: float = 0.1
    label_smoothing: float = 0.1
    mixup_alpha: float = 0.2
    mixup_prob: float = 0.3  # fraction of batches mixed
    freq_masks: int = 2
    freq_mask_width: int = 16  # mel bins, max
    time_masks: int = 2
    time_mask_width: int = 20  # frames, max
    grad_clip: float = 5.0
    monitor: Literal["val_accuracy", "val_loss"] = "val_accuracy"
    patience: int = 10
    use_augmented: bool = True


@dataclass(frozen=True)
class CNNConfig:
    widths: tuple[int, ...] = (64, 128, 256, 512)
    fc: tuple[int, ...] = (1024, 512, 256)
    pool: tuple[int, int] = (4, 6)  # adaptive-average-pool output before the FC head
    dropout: float = 0.2  # after each conv block
    fc_dropout: float = 0.5


@dataclass(frozen=True)
class ResNetConfig:
    blocks: tuple[int, ...] = (2, 2, 2, 2)  # (3, 4, 6, 3) is the ResNet-34 layout
    widths: tuple[int, ...] = (64, 128, 256, 512)
    dropout: float = 0.5
    pretrained: str | None = None  # local torchvision ResNet state dict


@dataclass(frozen=True)
class EvaluateConfig:
    calibration_bins: int = 15


@dataclass(frozen=True)
class SubmitConfig:
    model: Literal["cnn", "resnet", "ensemble"] = "ensemble"


# ---------------------------------------------------------------------------------------- gan
@dataclass(frozen=True)
class CGANConfig:
    seed: int = 0
    z_dim: int = 128
    embed_dim: int = 32
    g_width: int = 256  # channels of the first upsampling block; halved by each block
    d_width: int = 32  # channels of the first discriminator block; doubled by each block
    d_norm: Literal["spectral", "batch"] = "spectral"
    loss: Literal["bce", "hinge"] = "bce"
    mode_seeking: float = 1.0  # weight of the mode-seeking (MSGAN) term against class collapse
    epochs: int = 60
    batch_size: int = 32
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    sample_every: int = 10
    audio_samples: int = 1  # WAVs per class written at each sample_every
    device: str = "auto"


@dataclass(frozen=True)
class SynthesizeConfig:
    seed: int = 0
    per_class: int = 8
    griffin_lim_iters: int = 32
    device: str = "auto"


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
    synthesize: SynthesizeConfig = SynthesizeConfig()


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
    kwargs = {}
    for name, value in raw.items():
        key = f"{prefix}.{name}" if prefix else name
        kwargs[name] = _convert(value, hints[name], key)
    return cls(**kwargs)


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
