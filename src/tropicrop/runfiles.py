"""Reading the files of runs, prediction folders and experiments, each checked, with one clear error.

Runs are shared (a colleague's folder, a download cut short, a disk that filled up while saving), so every
file of one is read through here: a missing, truncated, foreign or malformed file raises
:class:`~tropicrop.errors.RunError` naming the file and what to do, never a parser's traceback.

Checkpoints are only ever loaded with ``torch.load(weights_only=True)``: tensors and plain data, never
arbitrary pickled objects. A checkpoint that carries anything else (a pickled callable that would run a
command, say) is refused with a line that says so, and nothing from it runs.
"""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path
from typing import Any

import torch
import yaml

from tropicrop.classes import ClassTable
from tropicrop.errors import RunError
from tropicrop.layout import RUN_FORMAT_VERSION, RunLayout
from tropicrop.windows.normalize import Normalizer

EARLY_STOPPING, CAP = "early stopping", "cap"
"""Values of ``stopped_by`` in a net's result.json: its validation F1 stopped improving, or it reached the
step (boosting round) cap of the config, so its length was set by the config rather than found."""

RETRAIN = "train it again (tropicrop train --force) or copy the run again from its source"


def read_json(path: Path, fix: str = RETRAIN) -> Any:
    """The JSON document in ``path``; RunError if it is missing or not JSON."""
    path = Path(path)
    if not path.is_file():
        raise RunError(path, "not found", fix)
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunError(path, f"is not readable JSON ({one_line(exc)})", fix) from None


def read_yaml_mapping(path: Path, fix: str = RETRAIN) -> dict[str, Any]:
    """The YAML mapping in ``path``; RunError if it is missing, not YAML or not a mapping."""
    path = Path(path)
    if not path.is_file():
        raise RunError(path, "not found", fix)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise RunError(path, f"is not readable YAML ({one_line(exc)})", fix) from None
    if not isinstance(data, dict):
        raise RunError(path, "is not a YAML mapping", fix)
    return data


def read_class_table(path: Path, fix: str = RETRAIN) -> ClassTable:
    """The class table in ``path`` (``{"names": [...]}``, index 0 = no reference)."""
    data = read_json(path, fix)
    try:
        table = ClassTable.from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RunError(path, f"is not a class table ({one_line(exc)})", fix) from None
    if len(table.names) < 2 or not all(isinstance(n, str) for n in table.names):
        raise RunError(path, "is not a class table (a list 'names' of at least two class names)", fix)
    return table


def read_normalizer(path: Path, bands: int | None = None, fix: str = RETRAIN) -> Normalizer:
    """Per-band normalisation in ``path``; with ``bands``, it must have that many bands."""
    data = read_json(path, fix)
    try:
        normalizer = Normalizer.from_dict(data)
        mean, std = [float(v) for v in normalizer.mean], [float(v) for v in normalizer.std]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RunError(path, f"is not a normalisation file ({one_line(exc)})", fix) from None
    if len(mean) != len(std) or not mean or any(s <= 0 for s in std) or (bands is not None and len(mean) != bands):
        raise RunError(path, f"holds {len(mean)} mean(s) and {len(std)} standard deviation(s)"
                       + (f" for a network of {bands} band(s)" if bands is not None else ""), fix)
    return normalizer


def check_format_version(data: dict[str, Any], path: Path) -> int:
    """The ``format_version`` of a run's result.json (1 for runs written before it was recorded); RunError
    for a version newer than this tropicrop reads."""
    version = data.get("format_version", 1)
    if not isinstance(version, int) or version < 1:
        raise RunError(path, f"has format_version {version!r}", RETRAIN)
    if version > RUN_FORMAT_VERSION:
        raise RunError(path, f"was written by a newer tropicrop (run format {version}, this one reads up to "
                       f"{RUN_FORMAT_VERSION})", "upgrade tropicrop to use this run")
    return version


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint's contents, loaded weights-only (tensors and plain data, never pickled code).

    Raises RunError for a missing, truncated or foreign file, and for a checkpoint that carries pickled
    objects other than weights (refused before anything in it runs).
    """
    path = Path(path)
    if not path.is_file():
        raise RunError(path, "checkpoint not found", RETRAIN)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL (\S+)", str(exc))
        what = f" ({found.group(1)})" if found else ""
        raise RunError(path, f"carries pickled Python objects other than weights{what}, which could run code; "
                       "refused, nothing in it was run", "use only checkpoints written by tropicrop train") from None
    except Exception as exc:  # torch raises RuntimeError, EOFError, KeyError, ... for files it cannot parse
        raise RunError(path, f"is not a readable PyTorch checkpoint, truncated or of another format "
                       f"({type(exc).__name__}: {one_line(exc)[:120]})", RETRAIN) from None
    if not isinstance(data, dict) or not isinstance(data.get("state_dict"), dict) \
            or not isinstance(data.get("hyper_parameters"), dict):
        raise RunError(path, "is not a tropicrop checkpoint (no state_dict and hyper_parameters)", RETRAIN)
    return data


def read_run_result(run: RunLayout) -> dict[str, Any]:
    """A finished run's result.json, with its format version checked."""
    data = read_json(run.result)
    if not isinstance(data, dict):
        raise RunError(run.result, "is not a run summary (a JSON object)", RETRAIN)
    check_format_version(data, run.result)
    return data


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (parsers' messages span several), for a RunError's problem."""
    return " ".join(str(exc).split()) or type(exc).__name__
