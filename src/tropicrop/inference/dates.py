"""Which target dates to predict: defaults, the ``--dates`` option, and checks against the scene."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from tropicrop.errors import ConfigError, SceneError
from tropicrop.scene import Scene
from tropicrop.windows.dates import target_window


def default_dates(scene: Scene, length: int = 12) -> list[dt.date]:
    """Every labelled date of ``scene``; for a scene without labels, every date whose window holds
    ``length`` real acquisitions (12 months of history for a monthly series)."""
    if scene.labelled_dates:
        return list(scene.labelled_dates)
    full = [d for i, d in enumerate(scene.dates) if i >= length - 1 and not scene.missing[i]]
    if not full:
        raise SceneError(scene.manifest.path, f"no date has {length} acquisitions of history ({len(scene.dates)} dates)",
                         "choose dates explicitly (--dates YYYY-MM-DD,... or --dates all)")
    return full


def parse_dates(text: str | None, scene: Scene) -> list[dt.date] | None:
    """The ``--dates`` option: None (default dates), ``all`` (every date with an image) or ``YYYY-MM-DD,...``."""
    if text is None:
        return None
    if text.strip().lower() == "all":
        return [d for d, gap in zip(scene.dates, scene.missing, strict=True) if not gap]
    try:
        return [dt.date.fromisoformat(s.strip()) for s in text.split(",") if s.strip()]
    except ValueError as exc:
        raise ConfigError(None, f"--dates {text!r}: {exc}", "write dates as YYYY-MM-DD,YYYY-MM-DD or 'all'") from None


def check_dates(scene: Scene, dates: Sequence[dt.date], length: int) -> list[dt.date]:
    """Sorted unique ``dates``; SceneError naming the scene for a date that is not an acquisition date or
    is a month without image (``image: null``)."""
    if not dates:
        raise SceneError(scene.manifest.path, "no target date to predict", "pass --dates YYYY-MM-DD,... or --dates all")
    for d in dates:
        if d not in scene.dates:
            raise SceneError(scene.manifest.path, f"{d} is not an acquisition date of the scene",
                             f"dates run from {scene.dates[0]} to {scene.dates[-1]} (tropicrop inspect lists them)")
        if scene.missing[scene.dates.index(d)]:
            raise SceneError(scene.manifest.path, f"{d} has no image (no acquisition that month)", "pick a date with an image")
        if int(target_window(scene.dates, d, length, scene.missing).valid.sum()) < 1:
            raise SceneError(scene.manifest.path, f"the window of {d} holds no real image", "pick a later date")
    return sorted(set(dates))

