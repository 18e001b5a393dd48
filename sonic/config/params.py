"""Every params section at once: :class:`Params`, the whole of ``params.yaml``.

For the commands and checks that need the whole file (``sonic``'s CLI, the docs, the tests). A
stage reads only its own sections (:func:`sonic.config.parse.load_sections`), so it does not
import this module and an edit to a section it does not read leaves it cached.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sonic.config.augment import AugmentConfig
from sonic.config.cgan import CGANConfig
from sonic.config.cnn import CNNConfig
from sonic.config.cv import CVConfig
from sonic.config.data import DataConfig
from sonic.config.distill import DistillConfig
from sonic.config.demo import DemoConfig
from sonic.config.evaluate import EvaluateConfig
from sonic.config.features import FeatureConfig
from sonic.config.invert import InvertConfig
from sonic.config.parse import ConfigError, build, read_params_file
from sonic.config.resnet import ResNetConfig
from sonic.config.split import SplitConfig
from sonic.config.submit import SubmitConfig
from sonic.config.synthesize import SynthesizeConfig
from sonic.config.train import TrainConfig


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
    distill: DistillConfig = DistillConfig()


def parse_params(raw: dict | None) -> Params:
    """Build :class:`Params` from an already-loaded mapping; missing keys keep their defaults."""
    return build(Params, raw or {}, "")


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate a params file."""
    raw = read_params_file(path)
    try:
        return parse_params(raw)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
