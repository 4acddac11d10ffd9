"""Errors a user can act on.

Every problem caused by input (a scene folder, a config file, a run directory) is raised as a
:class:`TropicropError` subclass whose message names the file and says what to fix. The CLI prints that
one line and exits with status 2; no traceback reaches a user.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path


class TropicropError(Exception):
    """Base class of all user-facing errors: ``path`` is the offending file, ``problem`` what is wrong,
    ``fix`` what to do about it."""

    def __init__(self, path: str | Path | None, problem: str, fix: str = "") -> None:
        self.path = Path(path) if path is not None else None
        self.problem = problem
        self.fix = fix
        where = f"{self.path}: " if self.path is not None else ""
        hint = f" ({fix})" if fix else ""
        super().__init__(f"{where}{problem}{hint}")

    def __reduce__(self) -> tuple[type, tuple[Path | None, str, str]]:
        """Pickled as its three parts, so that it crosses a process boundary (a training process, a Dask
        worker) as itself, one line and all."""
        return type(self), (self.path, self.problem, self.fix)


class SceneError(TropicropError):
    """A scene folder, its manifest or one of its rasters/vectors is missing, malformed or inconsistent."""


class ConfigError(TropicropError):
    """An experiment/training configuration is invalid (unknown key, wrong type, impossible value)."""


class RunError(TropicropError):
    """A run directory is missing, incomplete, or would be overwritten."""


class StackError(TropicropError):
    """An acquisition file or STAC item given to ``tropicrop stack`` cannot be used (no date, unknown
    polarisation, no overlap with the target grid, ...)."""


def close_match(word: object, choices: Iterable[str]) -> str | None:
    """The choice closest to ``word`` (a misspelt key, model or method name), or None when none is close.

    The one place the project guesses what a user meant, so every "did you mean" reads alike.
    """
    found = difflib.get_close_matches(str(word), list(choices), n=1)
    return found[0] if found else None


def did_you_mean(word: object, choices: Iterable[str], known: str = "known") -> str:
    """``"did you mean 'lr'?"`` for a close choice, else ``"known: a, b, c"`` (``known`` names the list)."""
    options = list(choices)
    close = close_match(word, options)
    return f"did you mean '{close}'?" if close else f"{known}: {', '.join(options)}"
