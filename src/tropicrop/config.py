"""Plain YAML configuration mapped onto dataclasses, with ``key=value`` overrides and close-match errors.

Every run saves the exact resolved configuration it used (:func:`dump_config`), so ``--resume`` and
reports read the same values back.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from tropicrop.errors import ConfigError
from tropicrop.io.files import atomic_path

T = TypeVar("T")


def _coerce(value: Any, tp: Any, where: str, path: Path | None) -> Any:
    """Check/convert ``value`` to the annotated type ``tp`` (dataclass, Optional, list, dict, scalars)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        options = [arg for arg in args if arg is not type(None)]
        if len(options) == 1:  # Optional[X]: X's own error says it best (it keeps its fix)
            return _coerce(value, options[0], where, path)
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where, path)
            except ConfigError as exc:
                errors.append(exc.problem)
        raise ConfigError(path, f"'{where}' = {value!r} has the wrong type", " or ".join(errors))
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, Mapping):
            raise ConfigError(path, f"'{where}' must be a mapping", f"give the keys of {tp.__name__}")
        return from_dict(tp, value, path, prefix=f"{where}.")
    if origin in (list, Sequence, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(path, f"'{where}' must be a list", f"e.g. {where}: [a, b]")
        (item_tp, *_) = typing.get_args(tp) or (Any,)
        return [_coerce(v, item_tp, f"{where}[{i}]", path) for i, v in enumerate(value)]
    if origin in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(path, f"'{where}' must be a mapping", "")
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(path, f"'{where}' must be true or false, got {value!r}", "")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(path, f"'{where}' must be an integer, got {value!r}", "")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(path, f"'{where}' must be a number, got {value!r}", "")
    if tp is dt.date:
        return _coerce_date(value, where, path)
    if tp is str:
        if isinstance(value, dt.date):  # YAML reads an unquoted 2019-10-12 as a date; a text option wants its text
            return value.isoformat()
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(path, f"'{where}' must be a string, got {value!r}", "")
    return value


def _coerce_date(value: Any, where: str, path: Path | None) -> dt.date:
    """A date option takes a YAML date (``2019-10-12`` unquoted) or the same text quoted; nothing else."""
    if isinstance(value, dt.datetime):
        raise ConfigError(path, f"'{where}' must be a date, got the date and time {value.isoformat()}",
                          "write the date alone, as YYYY-MM-DD")
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ConfigError(path, f"'{where}' must be a date, got {value!r}", "write dates as YYYY-MM-DD")


def from_dict(cls: type[T], data: Mapping[str, Any], path: Path | None = None, prefix: str = "") -> T:
    """Build dataclass ``cls`` from a mapping; unknown keys raise :class:`ConfigError` naming the close match."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f"did you mean '{prefix}{close[0]}'?" if close else f"known keys: {', '.join(prefix + k for k in fields)}"
            raise ConfigError(path, f"unknown config key '{prefix}{key}'", hint)
        kwargs[key] = _coerce(value, hints[key], prefix + key, path)
    missing = [
        name
        for name, f in fields.items()
        if name not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        key = prefix + missing[0]
        raise ConfigError(path, f"missing config key '{key}'", f"set it in the config or with --set {key}=...")
    return cls(**kwargs)


def to_dict(obj: Any) -> Any:
    """Dataclass (nested) -> plain dict/list/scalars, ready for YAML."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, list | tuple):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj


def apply_overrides(data: dict[str, Any], overrides: Sequence[str], path: Path | None = None) -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides (value parsed as YAML) to a nested mapping, in place; returns it."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(path, f"override '{item}' is not key=value", "e.g. --set trainer.max_epochs=5")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(path, f"override '{key}': '{part}' is not a section", "")
            node = child
        node[parts[-1]] = value
    return data


def load_config(cls: type[T], path: str | Path | None, overrides: Sequence[str] = ()) -> T:
    """Read YAML file ``path`` (or nothing), apply ``overrides`` and build dataclass ``cls``."""
    data: dict[str, Any] = {}
    p = Path(path) if path is not None else None
    if p is not None:
        if not p.is_file():
            raise ConfigError(p, "config file not found", "check the path given with -c")
        try:
            loaded = yaml.safe_load(p.read_text())
        except yaml.YAMLError as exc:
            raise ConfigError(p, f"not valid YAML ({' '.join(str(exc).split())})", "fix the syntax") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(p, "a config must be a YAML mapping", "")
        data = loaded or {}
    apply_overrides(data, overrides, p)
    return from_dict(cls, data, p)


def dump_config(obj: Any, path: Path) -> Path:
    """Write dataclass ``obj`` as YAML to ``path`` (atomically)."""
    with atomic_path(path) as tmp:
        tmp.write_text(yaml.safe_dump(to_dict(obj), sort_keys=False))
    return path
