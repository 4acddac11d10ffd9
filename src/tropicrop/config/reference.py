"""The key tables of ``docs/guide/config.md``, generated from the schemas so the page cannot drift from them.

``python -m tropicrop.config.reference docs/guide/config.md`` rewrites the part of the page between the
markers; a test fails when the page differs from what the schemas give.
"""

from __future__ import annotations

import sys
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from tropicrop.config.adaptation import AdaptOptions, FewLabelOptions, SelfTrainingOptions
from tropicrop.config.experiment import AdaptSection, ApproachConfig, ExperimentConfig, PredictConfig, ScenesConfig
from tropicrop.config.models import PixelOptions
from tropicrop.config.training import (
    DataConfig,
    ModelConfig,
    OptimConfig,
    PretrainConfig,
    TrainConfig,
    TrainerConfig,
)

BEGIN, END = "<!-- config reference: begin (generated) -->", "<!-- config reference: end -->"
SECTIONS: tuple[tuple[str, type[BaseModel]], ...] = (
    ("training config (top level)", TrainConfig),
    ("data", DataConfig),
    ("model", ModelConfig),
    ("model.options of lightgbm", PixelOptions),
    ("optim", OptimConfig),
    ("trainer", TrainerConfig),
    ("pretrain", PretrainConfig),
    ("experiment config (top level)", ExperimentConfig),
    ("scenes", ScenesConfig),
    ("approaches[]", ApproachConfig),
    ("approaches[].adapt (the adapt options below, plus base)", AdaptSection),
    ("predict", PredictConfig),
    ("adapt options (tropicrop adapt --set, approaches[].adapt)", AdaptOptions),
    ("self_training", SelfTrainingOptions),
    ("few_labels", FewLabelOptions),
)


def _type_name(tp: Any) -> str:
    """An annotation in words: ``list of date or null``, ``one of per-month, all-months``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if origin is typing.Literal:
        return "one of " + ", ".join(str(a) if a else "'' (none)" for a in args)
    if origin in (list, tuple):
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return "mapping"
    if tp is type(None):
        return "null"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return "section"
    return getattr(tp, "__name__", str(tp))


def _shown(value: Any) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _default(info: FieldInfo) -> str:
    if info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
        if isinstance(value, BaseModel):
            return "(section)"
        return f"`{_shown(value)}`" if len(str(value)) < 60 else "(see meaning)"
    return "required" if info.default is PydanticUndefined else f"`{_shown(info.default)}`"


def _bounds(info: FieldInfo) -> str:
    signs = {"gt": ">", "ge": ">=", "lt": "<", "le": "<=", "min_length": "items >="}
    return ", ".join(f"{signs[k]} {getattr(m, k)}" for m in info.metadata for k in signs if hasattr(m, k))


def reference_markdown() -> str:
    """One table per section: key, type, default, bounds and what it does."""
    lines = [BEGIN]
    for title, model in SECTIONS:
        lines += ["", f"#### `{title}`", "", (model.__doc__ or "").strip().splitlines()[0], "",
                  "| key | type | default | bounds | meaning |", "|---|---|---|---|---|"]
        fields = model.model_fields
        if model is AdaptSection:
            fields = {"base": fields["base"]}
        for name, info in fields.items():
            meaning = (info.description or "").replace("|", "\\|")
            kind = _type_name(info.annotation).replace("|", "\\|")
            lines.append(f"| `{name}` | {kind} | {_default(info)} | {_bounds(info)} | {meaning} |")
    return "\n".join([*lines, "", END])


def rewrite(page: Path) -> bool:
    """Replace the generated part of ``page``; returns whether it changed."""
    text = page.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    new = text[:start] + reference_markdown() + text[end:]
    page.write_text(new)
    return new != text


if __name__ == "__main__":
    print("rewritten" if rewrite(Path(sys.argv[1])) else "up to date")
