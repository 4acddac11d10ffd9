"""The base of every configuration section: unknown keys refused, values checked as they are set.

Each section of a config file is a pydantic model (:class:`Section`), so a file is validated as one nested
document with one error type, choices are ``Literal`` types, bounds are ``Field`` constraints and a key no
section declares is refused (``extra="forbid"``). Validation is strict about types (a YAML ``"5"`` is not
the number 5, ``yes`` is not ``true`` unless YAML reads it so), because a config read loosely trains
something other than what its author meant. A rule that a type cannot say (``min_epochs <= max_epochs``)
raises :func:`problem` (:mod:`tropicrop.config.problems`), which carries the key, what is wrong and the fix.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError
from pydantic_core import PydanticCustomError

from tropicrop.config.messages import config_error
from tropicrop.config.problems import problem

__all__ = ["ConfigDate", "Section", "Text", "problem"]


class Section(BaseModel):
    """A config section: strict types, no unknown keys, every assignment validated (``cfg.trainer.max_epochs = 0``
    fails where it is written, with :class:`tropicrop.errors.ConfigError`).

    Read configs through :func:`tropicrop.config.from_dict` / ``load_config``, which turn a validation error
    into one ``ConfigError`` line naming the file and the key's full path. (``__init__`` is not wrapped the
    same way: pydantic calls a custom ``__init__`` for nested sections too, which would lose the path.)
    """

    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=True)

    def __setattr__(self, name: str, value: Any) -> None:
        try:
            super().__setattr__(name, value)
        except ValidationError as exc:
            raise config_error(exc, type(self), {name: value}) from None


def _as_text(value: Any) -> Any:
    """A text option takes YAML's reading of ``2019-10-12`` (a date) or ``32`` (a number) as its text."""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def _as_date(value: Any) -> Any:
    """A date option takes a YAML date or the same text quoted, never a date and time."""
    if isinstance(value, dt.datetime):
        raise PydanticCustomError("date_and_time", "is the date and time {value} (write the date alone, as YYYY-MM-DD)",
                                  {"value": value.isoformat()})
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            raise PydanticCustomError("not_a_date", "is {value}, not a date (write dates as YYYY-MM-DD)",
                                      {"value": repr(value)}) from None
    return value


Text = Annotated[str, BeforeValidator(_as_text)]
"""A string option (dates and numbers written unquoted are taken as their text)."""
ConfigDate = Annotated[dt.date, BeforeValidator(_as_date)]
"""A date option: ``2019-10-12`` unquoted or quoted."""
