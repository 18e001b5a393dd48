"""Typed, frozen views of ``params.yaml``: one module per params section, and the parser.

- ``parse``: :class:`ConfigError`, :func:`bounded`, :func:`load_sections` (the sections one
  stage reads), :func:`parse_section`, :func:`to_dict`.
- one module per section, named after it: ``data``, ``demo``, ``features``, ``split``,
  ``augment``, ``train``, ``cnn``, ``resnet``, ``evaluate``, ``submit``, ``cgan``, ``invert``,
  ``synthesize``, ``cv``, ``distill``.
- ``params``: :class:`Params` (every section), :func:`load_params`, :func:`parse_params`.

``from sonic.config import FeatureConfig`` still works: a name is looked up in its module on
first use, so this package imports nothing itself and code that uses one section runs (and, as
a stage, depends on) that section's module alone.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

# name → the module of this package that defines it
HOMES = {
    "ConfigError": "parse", "bounded": "parse", "load_sections": "parse",
    "parse_section": "parse", "to_dict": "parse", "PROBABILITY": "parse",
    "Params": "params", "parse_params": "params", "load_params": "params",
    "DataConfig": "data", "DemoConfig": "demo", "FeatureConfig": "features",
    "SplitConfig": "split", "AugmentConfig": "augment", "RangeAug": "augment",
    "TrainConfig": "train", "CNNConfig": "cnn", "ResNetConfig": "resnet",
    "EvaluateConfig": "evaluate", "SubmitConfig": "submit", "CGANConfig": "cgan",
    "InvertConfig": "invert", "CASConfig": "synthesize", "SynthesizeConfig": "synthesize",
    "CVConfig": "cv", "DistillConfig": "distill",
}


def __getattr__(name: str) -> Any:
    if name not in HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{HOMES[name]}"), name)


def __dir__() -> list[str]:
    return sorted(HOMES)
