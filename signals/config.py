"""YAML -> validated, frozen dataclasses. Shared by every ssbwatch config.

Rules (one place for all configs):
- ``yaml.safe_load`` only; the top level is a mapping with ``schema_version``.
- Unknown keys are errors that name the key, its path and the allowed keys.
- Types are checked from the dataclass annotations (``int``, ``float``, ``bool``,
  ``str``, ``Literal[...]``, ``tuple[T, ...]``, ``tuple[T, T]``, ``Optional``,
  nested dataclasses); values are range-checked by each class's
  ``__post_init__`` through :func:`check_range` / :func:`check_interval`.
"""
from __future__ import annotations

import dataclasses
import types

from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value or key is invalid; the message names it."""


def check_range(name: str, value: float, lo: float | None = None, hi: float | None = None) -> None:
    """Raise ConfigError unless lo <= value <= hi (bounds optional)."""
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        lo_s = "-inf" if lo is None else f"{lo:g}"
        hi_s = "inf" if hi is None else f"{hi:g}"
        raise ConfigError(f"{name}={value!r} out of range [{lo_s}, {hi_s}]")


def check_interval(name: str, pair: tuple[float, float], lo: float | None = None, hi: float | None = None) -> None:
    """A [min, max] pair: min <= max, both inside [lo, hi]."""
    a, b = pair
    if a > b:
        raise ConfigError(f"{name}={list(pair)!r}: first value must be <= second")
    check_range(f"{name}[0]", a, lo, hi)
    check_range(f"{name}[1]", b, lo, hi)


def _convert(value: Any, tp: Any, where: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(value, a, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{where}: {value!r} matches none of {args}")
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            raise ConfigError(f"{where}={value!r} not allowed; choose one of {list(allowed)}")
        return value
    if origin is tuple:
        args = get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {type(value).__name__}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{where} must have {len(args)} values, got {len(value)}")
        return tuple(_convert(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping, got {type(value).__name__}")
        kt, vt = get_args(tp)
        return {_convert(k, kt, where): _convert(v, vt, f"{where}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            # YAML 1.1 reads "30.72e6" as a string: accept numeric strings explicitly
            if isinstance(value, str):
                try:
                    return float(value)
                except ValueError:
                    pass
            raise ConfigError(f"{where} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {tp!r} at {where}")


def from_dict(cls: type[T], data: Any, where: str = "") -> T:
    """Build dataclass ``cls`` from a mapping; unknown keys are errors."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where or cls.__name__} must be a mapping, got {type(data).__name__}")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown key {'.'.join(filter(None, [where, unknown[0]]))!r}"
            f"{' (and ' + str(len(unknown) - 1) + ' more)' if len(unknown) > 1 else ''}; "
            f"allowed keys{' in ' + where if where else ''}: {sorted(fields)}"
        )
    kwargs = {k: _convert(v, hints[k], ".".join(filter(None, [where, k]))) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{where + ': ' if where else ''}{exc}") from None


def to_dict(obj: Any) -> Any:
    """Dataclass -> plain YAML/JSON-able structures (tuples become lists)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def load_yaml(path: str | Path, cls: type[T], expected_schema: int = 1) -> T:
    """Read a YAML file into ``cls``; errors name the file."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read config: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: invalid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: top level must be a mapping")
    data = dict(data)
    version = data.pop("schema_version", expected_schema)
    if version != expected_schema:
        raise ConfigError(f"{p}: schema_version={version!r} not supported (expected {expected_schema})")
    try:
        return from_dict(cls, data)
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None


