"""Errors a user can act on.

Every problem caused by input (a scene folder, a config file, a run directory) is raised as a
:class:`TropicropError` subclass whose message names the file and says what to fix. The CLI prints that
one line and exits with status 2; no traceback reaches a user.
"""

from __future__ import annotations

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


class SceneError(TropicropError):
    """A scene folder, its manifest or one of its rasters/vectors is missing, malformed or inconsistent."""


class ConfigError(TropicropError):
    """An experiment/training configuration is invalid (unknown key, wrong type, impossible value)."""


class RunError(TropicropError):
    """A run directory is missing, incomplete, or would be overwritten."""


class StackError(TropicropError):
    """An acquisition file or STAC item given to ``tropicrop stack`` cannot be used (no date, unknown
    polarisation, no overlap with the target grid, ...)."""
