"""The parser behind every params section: types, ranges and the errors that name the key.

``params.yaml`` is parsed by this module and nowhere else. Each top-level section maps onto one
frozen dataclass, defined in the module of the same name (``sonic/config/train.py`` for
``train``); an unknown key or a value of the wrong type is a :class:`ConfigError` that names the
key's full dotted path (``augment.noise.snr_min``), so a typo never silently falls back to a
default. So is a value out of its range (fields declared with :func:`bounded`: ``train.patience:
must be ≥ 1, got 0``) or values that do not fit together (a dataclass's ``problems()``).

The dataclass defaults are ``params.yaml``'s values (``tests/test_config.py`` checks that they
agree), so a section or key left out of a params file means what the committed file says.

A stage reads its own sections with :func:`load_sections` and imports only their modules, so an
edit to one section's code re-runs only the stages that read it (``dvc.yaml`` lists exactly the
modules each stage imports); :mod:`sonic.config.params` holds all of them at once.
"""
from __future__ import annotations

import dataclasses
import re
import types
import typing
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

import yaml


_EXPONENT_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


class ConfigError(ValueError):
    """A params file that does not match its sections' dataclasses."""


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


# ------------------------------------------------------------------------------------ parsing
def _convert(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it in the dataclass's own types."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return build(tp, value, key)
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


def build(cls: type, raw: dict, prefix: str) -> Any:
    """The dataclass ``cls`` from the mapping ``raw``, every key checked; errors name
    ``prefix.key``."""
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


def parse_section(cls: type, raw: Any, name: str) -> Any:
    """One section ``name`` of a params file, as the frozen dataclass ``cls``; keys left out
    keep their defaults (``raw`` None: all of them)."""
    return _convert({} if raw is None else raw, cls, name)


def read_params_file(path: str | Path) -> dict:
    """The mapping of sections in a params file, or a :class:`ConfigError` naming the file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: params file not found") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    return raw or {}


def load_sections(path: str | Path, **sections: type) -> SimpleNamespace:
    """The named sections of a params file, each checked as its dataclass:
    ``load_sections("params.yaml", train=TrainConfig, cnn=CNNConfig).train``."""
    raw = read_params_file(path)
    try:
        return SimpleNamespace(**{name: parse_section(cls, raw.get(name), name)
                                  for name, cls in sections.items()})
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
