"""A network built from a checkpoint of a run, checked against the run's files (no Lightning).

Reading the checkpoint file is :func:`tropicrop.runfiles.load_checkpoint`'s job (weights-only, one clear
error); this module turns what it read into the network it describes, through :func:`build`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn

from tropicrop.classes import ClassTable
from tropicrop.errors import RunError
from tropicrop.models.registry import build
from tropicrop.runfiles import RETRAIN, one_line


def network_from_checkpoint(path: Path, checkpoint: dict[str, Any], classes: ClassTable, model_name: str | None = None,
                            model_options: dict[str, Any] | None = None) -> nn.Module:
    """The network a checkpoint describes, with its weights, through :func:`tropicrop.models.build` (no
    Lightning). Its hyperparameters must match the run's class table (and, when given, the model name and
    options of the run's config), and the weights must fit the network exactly; RunError naming the file
    otherwise.

    Args:
        path: the checkpoint file, named in errors.
        checkpoint: its contents, as :func:`tropicrop.runfiles.load_checkpoint` read them.
        classes: the run's class table (``classes.json``).
        model_name: the model the run's config names, when known.
        model_options: that model's options in the config, when known.

    Returns:
        The network, weights loaded, in training mode on the CPU.
    """
    hp = checkpoint["hyper_parameters"]
    try:
        name, options = str(hp["model_name"]), dict(hp.get("model_options") or {})
        in_channels, class_names = int(hp["in_channels"]), list(hp["class_names"])
    except (KeyError, TypeError, ValueError) as exc:
        raise RunError(path, f"is not a tropicrop checkpoint (hyper_parameters: {one_line(exc)})", RETRAIN) from None
    if tuple(class_names) != classes.names:
        raise RunError(path, f"predicts classes {class_names} but classes.json says {list(classes.names)}",
                       "the run directory is inconsistent; train it again with --force")
    other_options = model_options is not None and _plain(options) != _plain(model_options)
    if model_name is not None and (name != model_name or other_options):
        raise RunError(path, f"holds a {name} network with options {options} but config.yaml describes "
                       f"{model_name} with {model_options}", "the run directory is inconsistent; train it again with --force")
    try:
        model = build(name, in_channels, num_classes=len(class_names), **options)
    except (TypeError, ValueError) as exc:
        raise RunError(path, f"describes a network this tropicrop cannot build ({one_line(exc)})", RETRAIN) from None
    prefix = "model."
    state = {k[len(prefix):]: v for k, v in checkpoint["state_dict"].items() if k.startswith(prefix)}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = next((line.strip() for line in str(exc).splitlines()[1:] if line.strip()), one_line(exc))
        raise RunError(path, f"holds weights that do not fit the network described by config.yaml and classes.json "
                       f"({first[:160]})", RETRAIN) from None
    return model


def _plain(value: Any) -> Any:
    """``value`` as JSON would hold it (tuples as lists), to compare options read from YAML and a checkpoint."""
    return json.loads(json.dumps(value, default=str))
