"""Config files: YAML, dotted overrides, nested dict <-> dataclass (with type checks).

``load_config(stage, path, overrides)`` reads a YAML file, applies ``key.path=value``
overrides (YAML values) and builds the stage's dataclass (:func:`stages`); ``save_config``
writes the resolved values back. Unknown keys and wrongly typed values raise
:class:`~vvhand_core.train.config.ConfigError` naming the key.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from vvhand_core.train.config import STAGES, ConfigError

# ---------------------------------------------------------------- dict <-> dataclass


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check/convert a YAML value for a field annotated tp (raises ConfigError)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{key}: bad value {value!r}")
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key)
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{key}: expected a list of {len(args)} values, got {value!r}")
        return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported field type {_type_name(tp)}")


def from_dict(cls: type, d: Any, where: str = "") -> Any:
    """Build dataclass ``cls`` from a nested dict; unknown keys / bad values -> ConfigError."""
    if d is None:
        d = {}
    if not isinstance(d, dict):
        raise ConfigError(f"{where or cls.__name__}: expected a mapping, got {d!r}")
    if hasattr(cls, "from_dict"):  # a model config: its own parser
        try:
            return cls.from_dict(d)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: {exc}") from None
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = sorted(set(d) - set(names))
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(f"unknown config key(s) {[prefix + k for k in unknown]}; known: "
                          f"{', '.join(prefix + n for n in names)}")
    kwargs = {}
    for name in names:
        if name in d:
            kwargs[name] = _coerce(d[name], hints[name], f"{where}.{name}" if where else name)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where or cls.__name__}: {exc}") from None


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain nested dict (tuples as lists) of a config dataclass, for YAML/JSON."""

    def plain(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: plain(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [plain(v) for v in x]
        return x

    return plain(dataclasses.asdict(cfg))


# ---------------------------------------------------------------- YAML + overrides


def parse_override(text: str) -> tuple[list[str], Any]:
    """"a.b.c=value" -> (["a", "b", "c"], YAML-parsed value)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key.path=value")
    key, raw = text.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"override {text!r}: empty key component")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {text!r}: bad value ({exc})") from None
    return parts, value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set dotted keys in a nested dict (a copy); intermediate mappings are created."""
    out = yaml.safe_load(yaml.safe_dump(raw)) if raw else {}
    for text in overrides:
        parts, value = parse_override(text)
        node = out
        for i, p in enumerate(parts[:-1]):
            nxt = node.get(p)
            if nxt is None:
                nxt = node[p] = {}
            if not isinstance(nxt, dict):
                raise ConfigError(f"override {text!r}: {'.'.join(parts[:i + 1])} is not a "
                                  "mapping")
            node = nxt
        node[parts[-1]] = value
    return out


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from a file (ConfigError naming the file if missing or malformed)."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: malformed YAML ({exc})") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the config must be a YAML mapping")
    return raw


def stages() -> dict[str, type]:
    """Stage name -> its config dataclass: stage1, stage2 and the phased CPU recipe."""
    from vvhand_core.train.phased_config import PhasedConfig

    return {**STAGES, "phased": PhasedConfig}


def load_config(stage: str, path: str | Path | None = None,
                overrides: list[str] | None = None) -> Any:
    """The config of ``stage`` (see :func:`stages`) from a YAML file plus overrides."""
    known = stages()
    if stage not in known:
        raise ConfigError(f"stage must be one of {sorted(known)}, got {stage!r}")
    raw = read_yaml(path) if path else {}
    raw = apply_overrides(raw, list(overrides or []))
    try:
        return from_dict(known[stage], raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}" if path else str(exc)) from None


def save_config(cfg: Any, path: str | Path) -> Path:
    """Write a config as YAML (the resolved values, overrides included)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False), encoding="utf-8")
    return path
