"""A problem with one key of a config, and how a validator raises it (a leaf of the config package)."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic_core import PydanticCustomError

PROBLEM = "tropicrop_problem"
"""pydantic error type of a rule written here (its context holds a :class:`Problem`)."""


@dataclass(frozen=True)
class Problem:
    """What is wrong with one key: ``section`` (dotted path of the mapping that holds it, "" at the top), the
    ``key`` as written, ``text`` (what is wrong with its value; "" for a key no section declares) and ``fix``."""

    section: str
    key: str
    text: str
    fix: str = ""

    @property
    def path(self) -> str:
        """The key's full path, e.g. ``train.optim.lr`` or ``approaches[2].use``."""
        return join_path(self.section, self.key)

    def within(self, prefix: str) -> Problem:
        """The same problem, seen from the mapping that holds ``prefix``."""
        return Problem(join_path(prefix, self.section), self.key, self.text, self.fix)

    def line(self) -> str:
        """The problem in words, without the file (the error adds it) and without the fix."""
        if not self.text:
            return f"unknown key '{self.key}'" + (f" in {self.section}" if self.section else "")
        return f"'{self.path}' {self.text}"


def join_path(prefix: str, key: str) -> str:
    """``train`` + ``optim.lr`` -> ``train.optim.lr``; list indices (``[2]``) attach without a dot."""
    if not prefix or not key:
        return prefix or key
    return f"{prefix}{key}" if key.startswith("[") else f"{prefix}.{key}"


def problem(key: str, text: str, fix: str = "", section: str = "") -> PydanticCustomError:
    """A rule's failure as a pydantic error (raise it from a validator); ``key`` is relative to the model."""
    return PydanticCustomError(PROBLEM, "{line}", {"line": Problem(section, key, text, fix).line(),
                                                   "section": section, "key": key, "text": text, "fix": fix})
