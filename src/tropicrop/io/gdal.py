"""GDAL's own messages: kept off the terminal, and turned into the error when they name its cause.

rasterio forwards every GDAL message to Python logging (loggers ``rasterio._env`` and ``rasterio._err``), a
warning per damaged tag and a line per failed block: a truncated GeoTIFF printed a dozen of them before the
one error that matters, or worse, opened "successfully" without its georeferencing. :func:`gdal_messages`
collects the warnings of one open or read (GDAL's errors reach the caller as rasterio's exception chain), so
the caller can raise the first one that says the file is damaged as a single
:class:`~tropicrop.errors.SceneError`; :func:`send_gdal_messages_to_debug` demotes them all to DEBUG, so the
command line shows them only at ``-vv``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator

GDAL_LOGGERS = ("rasterio._env", "rasterio._err")

# Phrases of GDAL/libtiff messages that mean the bytes of the file are missing or corrupt (not a mere oddity).
DAMAGE_SIGNS = ("io error", "read error", "cannot read", "failed to read", "ireadblock failed", "truncat", "corrupt")


class _Collector(logging.Handler):
    """Keeps the messages logged by the thread that created it (reads in other threads are not ours)."""

    def __init__(self) -> None:
        super().__init__(level=logging.NOTSET)
        self.thread = threading.get_ident()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.messages.append(_clean(record.getMessage()))


def _clean(message: str) -> str:
    """``GDAL signalled an error: err_no=1, msg='X'`` and ``CPLE_AppDefined in X`` -> ``X``."""
    if "msg='" in message:
        message = message.split("msg='", 1)[1].rstrip("'")
    elif message.startswith("CPLE_") and " in " in message:
        message = message.split(" in ", 1)[1]
    return message.strip()


@contextlib.contextmanager
def gdal_messages() -> Iterator[list[str]]:
    """Collect, in order, the GDAL messages logged in this thread inside the block (the list fills as it runs)."""
    collector = _Collector()
    loggers = [logging.getLogger(name) for name in GDAL_LOGGERS]
    for logger in loggers:
        logger.addHandler(collector)
    try:
        yield collector.messages
    finally:
        for logger in loggers:
            logger.removeHandler(collector)


def damage(messages: list[str]) -> str | None:
    """The first message that says the file's bytes are missing or corrupt, or None."""
    for message in messages:
        if any(sign in message.lower() for sign in DAMAGE_SIGNS):
            return message
    return None


class _ToDebug(logging.Filter):
    """Re-levels a record to DEBUG (a logger filter runs before any handler sees the record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


_TO_DEBUG = _ToDebug()


def send_gdal_messages_to_debug() -> None:
    """Log every GDAL message at DEBUG (idempotent): the errors they cause are raised as project errors."""
    for name in GDAL_LOGGERS:
        logger = logging.getLogger(name)
        if _TO_DEBUG not in logger.filters:
            logger.addFilter(_TO_DEBUG)
