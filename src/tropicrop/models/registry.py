"""Models by name, so configs and the CLI can say ``model: vunet_convlstm``.

The registry is a read-only table built when this module is imported: registering a model is one line in
:data:`MODELS`. (A decorator filling a mutable dict would also be one line, but makes the set of models
depend on which modules happen to be imported; an explicit table does not.) A model class takes
``(in_channels, num_classes, **options)`` and follows the interface
``forward(images (B, T, C, H, W), doy (B, T), valid (B, T)) -> logits (B, K, H, W)``.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from torch import nn

from tropicrop.errors import close_match
from tropicrop.models.unet3d import UNet3D
from tropicrop.models.unet_convlstm import UnetConvLSTM, VUnetConvLSTM
from tropicrop.models.utae import UTAE
from tropicrop.models.vunet_convlstm_seq import VUnetConvLSTMSeq

MODELS: Mapping[str, type[nn.Module]] = MappingProxyType(
    {
        "unet_convlstm": UnetConvLSTM,
        "vunet_convlstm": VUnetConvLSTM,
        "vunet_convlstm_seq": VUnetConvLSTMSeq,
        "utae": UTAE,
        "unet3d": UNet3D,
    }
)


def is_sequence_model(model: nn.Module | type[nn.Module]) -> bool:
    """Whether ``model`` (or its class) returns logits for every date of a window
    (``sequence_output = True`` and ``forward_steps``), so training puts the loss on every labelled date
    and prediction maps every target month of a tile in one pass."""
    return bool(getattr(model, "sequence_output", False))


def available_models() -> list[str]:
    """Names accepted by :func:`build`, sorted."""
    return sorted(MODELS)


def _model_class(name: str) -> type[nn.Module]:
    """Look a name up, raising ValueError that suggests the closest name and lists all of them."""
    try:
        return MODELS[name]
    except KeyError:
        close = close_match(name, MODELS)
        hint = f"; did you mean {close!r}?" if close else ""
        raise ValueError(f"unknown model {name!r}{hint} (available: {', '.join(available_models())})") from None


def model_options(name: str) -> list[str]:
    """Keyword options that model ``name`` accepts besides ``in_channels`` and ``num_classes``."""
    params = inspect.signature(_model_class(name).__init__).parameters
    return [p for p in params if p not in ("self", "in_channels", "num_classes")]


def build(name: str, in_channels: int = 2, *, num_classes: int, **options: Any) -> nn.Module:
    """Build model ``name`` for ``in_channels`` bands and ``num_classes`` logit channels (class 0, "no
    reference", included).

    Raises:
        ValueError: unknown model name (the message names the closest and all available ones).
        TypeError: an option the model does not take (the message names it and the valid options).
    """
    cls = _model_class(name)
    valid = model_options(name)
    for key in options:
        if key not in valid:
            close = close_match(key, valid)
            hint = f"; did you mean {close!r}?" if close else ""
            raise TypeError(f"model {name!r} has no option {key!r}{hint} (options: {', '.join(valid)})")
    return cls(in_channels, num_classes, **options)


def describe_models(in_channels: int = 2, num_classes: int = 7) -> list[tuple[str, int, str]]:
    """``(name, parameter count, one-line description)`` of every model with default options, for the
    ``tropicrop models`` command."""
    rows = []
    for name in available_models():
        model = build(name, in_channels, num_classes=num_classes)
        count = sum(p.numel() for p in model.parameters())
        doc = inspect.getdoc(MODELS[name]) or ""
        rows.append((name, count, doc.splitlines()[0] if doc else ""))
    return rows
