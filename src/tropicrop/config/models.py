"""Which models a config may name, and their ``options`` checked against what each model takes.

A network's options are the keyword parameters of its constructor (``tropicrop.models.registry``): they
are validated against that signature's type hints, so a misspelt or mistyped option fails when the config
is read, not when the first network is built hours into an experiment. The classical per-pixel model's
options are the schema :class:`PixelOptions`.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from tropicrop.config.files import from_dict
from tropicrop.config.messages import first_problem
from tropicrop.config.schema import Section, problem
from tropicrop.errors import close_match
from tropicrop.models.registry import MODELS


class PixelOptions(Section):
    """``model.options`` of the per-pixel LightGBM baseline; the defaults suit tens of thousands of pixels per date."""

    model_config = ConfigDict(frozen=True)

    looks: int = Field(3, ge=1, description="side of the mean filter on normalised dB images (1 = none)")
    max_pixels: int = Field(20000, ge=1, description="training pixels drawn per target date")
    n_estimators: int = Field(400, ge=1, description="boosting rounds at most (early stopping on validation macro F1)")
    early_stopping: int = Field(30, ge=1, description="rounds without improvement before stopping")
    learning_rate: float = Field(0.08, gt=0, description="shrinkage of each boosting round")
    num_leaves: int = Field(31, ge=2, description="leaves of each tree at most")
    min_child_samples: int = Field(20, ge=1, description="training pixels a leaf holds at least")
    feature_fraction: float = Field(0.8, gt=0, le=1, description="share of the features each tree sees")
    threads: int = Field(0, ge=0, description="LightGBM threads (0: OpenMP's default, every core)")

    @classmethod
    def from_options(cls, options: Mapping[str, Any], path: str | Path | None = None) -> PixelOptions:
        """Validate a config's ``model.options`` (ConfigError naming ``model.options.KEY`` and ``path``)."""
        return from_dict(cls, dict(options), path, prefix="model.options")


CLASSICAL: Mapping[str, type[BaseModel]] = {"lightgbm": PixelOptions}
"""Models that are not networks, by name, with their options schema."""


def model_names() -> list[str]:
    """Every name ``model.name`` (or an approach's ``model``) accepts: the networks, then the classical ones."""
    return [*sorted(MODELS), *CLASSICAL]


def is_network(name: str) -> bool:
    """Whether model ``name`` is a registered network (shared network options apply to it)."""
    return name in MODELS


@functools.cache
def options_schema(name: str) -> type[BaseModel]:
    """The options schema of model ``name``: a network's built from its constructor's keyword parameters."""
    if name in CLASSICAL:
        return CLASSICAL[name]
    init = MODELS[name].__init__
    hints = typing.get_type_hints(init)
    fields: dict[str, Any] = {
        key: (hints.get(key, Any), param.default)
        for key, param in inspect.signature(init).parameters.items()
        if key not in ("self", "in_channels", "num_classes") and param.default is not inspect.Parameter.empty
    }
    config = ConfigDict(extra="forbid", strict=True, arbitrary_types_allowed=True)
    return create_model(f"{name} options", __config__=config, **fields)


def check_model_name(name: str, key: str = "name") -> None:
    """PydanticCustomError naming the closest model when ``name`` is neither a network nor classical."""
    if name not in MODELS and name not in CLASSICAL:
        close = close_match(name, model_names())
        raise problem(key, f"is {name!r}, not a registered model",
                      (f"did you mean '{close}'? " if close else "") + f"available: {', '.join(model_names())}")


def check_model_options(name: str, options: Mapping[str, Any], key: str = "options") -> None:
    """Validate ``options`` against model ``name``'s (a registered one); PydanticCustomError naming
    ``key.OPTION`` with the close match of a misspelt option or the type it should have."""
    schema = options_schema(name)
    try:
        schema.model_validate(dict(options))
    except ValidationError as exc:
        found = first_problem(exc, schema).within(key)
        if not found.text:
            raise problem(found.key, f"is not an option of {name}", found.fix.replace("known keys", "options"),
                          found.section) from None
        raise problem(found.key, found.text, found.fix, found.section) from None

