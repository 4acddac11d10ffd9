"""Config files: read YAML, apply ``--set key=value`` overrides, validate against a schema, write back.

Overrides are applied to the mapping read from the file *before* validation, so a ``--set`` value meets the
same schema as the file (a misspelt override key gets the same close match, and the error says which
``--set`` wrote it). Every run saves the exact resolved configuration it used (:func:`dump_config`), and
:func:`load_config` reads it back equal, so ``--resume`` and reports see the same values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from tropicrop.config.messages import config_error
from tropicrop.errors import ConfigError
from tropicrop.io.files import atomic_path

M = TypeVar("M", bound=BaseModel)


def from_dict(cls: type[M], data: Any, path: str | Path | None = None, *, prefix: str = "",
              overrides: Sequence[str] = ()) -> M:
    """Validate the mapping ``data`` (read from file ``path``; ``overrides`` already applied) as schema ``cls``.

    Raises:
        ConfigError: one line naming ``path``, the key's full path (under ``prefix``) and the fix.
    """
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise config_error(exc, cls, data, path, prefix, overrides) from None


def to_dict(obj: Any) -> Any:
    """A schema (nested) as plain dicts, lists and scalars (dates stay dates), ready for YAML."""
    if isinstance(obj, BaseModel):
        return obj.model_dump()
    if isinstance(obj, list | tuple):
        return [to_dict(v) for v in obj]
    if isinstance(obj, Mapping):
        return {k: to_dict(v) for k, v in obj.items()}
    return str(obj) if isinstance(obj, Path) else obj


def apply_overrides(data: dict[str, Any], overrides: Sequence[str], path: str | Path | None = None) -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides (value read as YAML) to the nested mapping ``data``, in place; returns it.

    Keys are not checked here: the schema checks the result, the overrides included.
    """
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
        for done, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                where = ".".join(parts[: done + 1])
                raise ConfigError(path, f"override '{item}': '{where}' is not a section", "set a key of a section")
            node = child
        node[parts[-1]] = value
    return data


def read_yaml(path: Path) -> dict[str, Any]:
    """The mapping of config file ``path`` (empty for an empty file); ConfigError naming it otherwise."""
    if not path.is_file():
        raise ConfigError(path, "config file not found", "check the path given with -c")
    try:
        loaded = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(path, f"not valid YAML ({' '.join(str(exc).split())})", "fix the syntax") from None
    if loaded is not None and not isinstance(loaded, dict):
        raise ConfigError(path, "a config must be a YAML mapping", "write key: value lines")
    return loaded or {}


def load_config(cls: type[M], path: str | Path | None, overrides: Sequence[str] = ()) -> M:
    """Read the YAML file ``path`` (or nothing: every default), apply ``overrides`` and validate as ``cls``."""
    p = Path(path) if path is not None else None
    data = read_yaml(p) if p is not None else {}
    apply_overrides(data, overrides, p)
    return from_dict(cls, data, p, overrides=overrides)


def dump_config(obj: BaseModel, path: Path) -> Path:
    """Write the schema ``obj`` as YAML to ``path`` atomically (:func:`load_config` reads it back equal)."""
    with atomic_path(path) as tmp:
        tmp.write_text(yaml.safe_dump(to_dict(obj), sort_keys=False))
    return path
