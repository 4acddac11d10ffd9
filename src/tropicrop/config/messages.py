"""pydantic's validation errors as one line a user can act on: the file, the key's full path, what is wrong
with it and the fix (the close match of a misspelt key or choice)."""

from __future__ import annotations

import datetime as dt
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from tropicrop.config.problems import PROBLEM, Problem, join_path
from tropicrop.errors import ConfigError, close_match, did_you_mean


def _unwrap(tp: Any) -> list[Any]:
    """The types an annotation may hold: ``Annotated`` stripped, a union split into its members."""
    if typing.get_origin(tp) is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return [t for arg in typing.get_args(tp) for t in _unwrap(arg)]
    return [tp]


def _model_in(tp: Any) -> type[BaseModel] | None:
    return next((t for t in _unwrap(tp) if isinstance(t, type) and issubclass(t, BaseModel)), None)


def _item_of(tp: Any) -> Any:
    for t in _unwrap(tp):
        if typing.get_origin(t) in (list, tuple, Sequence) and typing.get_args(t):
            return typing.get_args(t)[0]
    return Any


def _walk(root: type[BaseModel], loc: Sequence[int | str]) -> tuple[str, type[BaseModel] | None]:
    """The dotted path of ``loc`` (pydantic's union-member tags dropped) and the section model it ends in."""
    path, node = "", typing.cast(Any, root)
    for part in loc:
        model = _model_in(node)
        if isinstance(part, int):
            path, node = f"{path}[{part}]", _item_of(node)
        elif model is not None and part in model.model_fields:
            path, node = join_path(path, part), model.model_fields[part].annotation
        elif model is None and any(typing.get_origin(t) in (dict, Mapping) for t in _unwrap(node)):
            path, node = join_path(path, part), Any  # a key of a free mapping (model options)
    return path, _model_in(node)


def _closest_key(key: str, model: type[BaseModel] | None) -> str:
    """"did you mean 'lr'?" for a misspelt key: the closest key name, else the key whose description holds
    the words closest to it (``learning_rate`` -> ``lr``, "Adam's learning rate"); else the known keys."""
    fields = model.model_fields if model is not None else {}
    if close_match(key, fields) is None:
        words = key.lower().replace("_", " ").replace("-", " ").split()
        for name, info in fields.items():
            text = (info.description or "").lower().replace("'s", "").split()
            spans = (" ".join(text[i:i + len(words)]) for i in range(len(text) - len(words) + 1))
            if words and close_match(" ".join(words), spans) is not None:
                return f"did you mean '{name}' ({info.description})?"
    return did_you_mean(key, fields, "known keys")


def _choices(err: ErrorDetails) -> list[str]:
    expected = str(err.get("ctx", {}).get("expected", ""))
    return [c.strip().strip("'") for c in expected.replace(" or ", ",").split(",") if c.strip()]


def _problem(err: ErrorDetails, root: type[BaseModel], similar: list[ErrorDetails]) -> Problem:
    """One pydantic error as a :class:`Problem` (``similar``: errors of the same key, e.g. each union member's)."""
    kind, loc, value = err["type"], err["loc"], err.get("input")
    if kind == "extra_forbidden":
        section, model = _walk(root, loc[:-1])
        return Problem(section, str(loc[-1]), "", _closest_key(str(loc[-1]), model))
    path, _ = _walk(root, loc)
    if kind == PROBLEM:
        ctx = err.get("ctx", {})
        return Problem(join_path(path, str(ctx["section"])), str(ctx["key"]), str(ctx["text"]), str(ctx["fix"]))
    if kind == "missing":
        return Problem("", path, "is missing", f"set it in the config or with --set {path}=...")
    if kind == "literal_error":
        choices = _choices(err)
        close = close_match(value, choices) if isinstance(value, str) else None
        shown = [c or "'' (none)" for c in choices]
        return Problem("", path, f"is {_shown(value)}", f"use one of {', '.join(shown)}"
                       + (f"; did you mean '{close}'?" if close else ""))
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return Problem("", path, f"is {_shown(value)}, not a mapping", "give its keys as a mapping (key: value)")
    if kind in ("date_and_time", "not_a_date"):
        return Problem("", path, err["msg"])
    reasons = " or ".join(dict.fromkeys(_reason(e["msg"]) for e in similar))
    return Problem("", path, f"is {_shown(value)}", f"it {reasons}")


def _reason(msg: str) -> str:
    """pydantic's "Input should be a valid integer" as "should be a valid integer"."""
    if msg.startswith("Input should "):
        return msg.removeprefix("Input ")
    return msg[:1].lower() + msg[1:]


def _shown(value: Any) -> str:
    """A value as the user wrote it: dates as YYYY-MM-DD, text quoted."""
    return value.isoformat() if isinstance(value, dt.date) else repr(value)


def first_problem(exc: ValidationError, root: type[BaseModel]) -> Problem:
    """The first problem pydantic found (it checks keys in the order the schema declares them); for a key that
    may take several types, what each would need."""
    errors = exc.errors()
    first = errors[0]
    path = _walk(root, first["loc"])[0]
    similar = [e for e in errors if _walk(root, e["loc"])[0] == path and e["type"] not in ("extra_forbidden", PROBLEM)]
    return _problem(first, root, similar or [first])


def _approach_name(data: Any, path: str) -> str:
    """`` (approach 'Baseline 2')`` when ``path`` is inside ``approaches[2]`` of an experiment mapping."""
    if not path.startswith("approaches[") or not isinstance(data, Mapping):
        return ""
    try:
        index = int(path[len("approaches["):path.index("]")])
        name = data["approaches"][index]["name"]
    except (KeyError, IndexError, TypeError, ValueError):
        return ""
    return f" (approach '{name}')"


def _from_override(problem: Problem, overrides: Sequence[str]) -> str:
    """`` (from --set key=value)`` when an override wrote the key (or a section holding it)."""
    path = problem.path
    for item in overrides:
        key = item.split("=", 1)[0].strip()
        if path == key or path.startswith((key + ".", key + "[")) or key.startswith(path + "."):
            return f" (from --set {item})"
    return ""


def config_error(exc: ValidationError, root: type[BaseModel], data: Any, path: str | Path | None = None,
                 prefix: str = "", overrides: Sequence[str] = ()) -> ConfigError:
    """The :class:`ConfigError` of a failed validation of ``data`` against ``root``: one line naming the file
    ``path``, the key (under ``prefix``) and the fix."""
    found = first_problem(exc, root)
    origin = _approach_name(data, found.path) + _from_override(found, overrides)
    found = found.within(prefix)
    return ConfigError(path, found.line() + origin, found.fix)
