"""What single-process and Dask prediction share: the dates, the checks, the output folders and files, the
plans, the prediction log, and the error for dates that got no map. Written once, so both paths refuse and
write the same things."""

from __future__ import annotations

import datetime as dt
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np

from tropicrop.errors import ConfigError, RunError, SceneError
from tropicrop.inference.dates import check_dates, default_dates
from tropicrop.inference.mapfiles import UNCERTAINTIES, Outputs, write_classes
from tropicrop.inference.predictor import Plan
from tropicrop.inference.run import RunModels
from tropicrop.inference.tiling import AoiReader, aoi_reader
from tropicrop.io.files import write_json
from tropicrop.layout import PredictionLayout
from tropicrop.precision import precision_label
from tropicrop.runfiles import read_json
from tropicrop.scene import Scene
from tropicrop.windows.dates import shift_doy, target_window

log = logging.getLogger(__name__)

Dates = Sequence[dt.date] | Literal["all"] | None
"""Target dates as asked for: a list, ``"all"`` (every date with an image) or None (the defaults)."""


@dataclass(frozen=True)
class SceneWork:
    """One scene's prediction, checked and ready: its dates (sorted), their outputs, the dates whose
    outputs are not all written yet, and the AOI reader."""

    dates: list[dt.date]
    outputs: dict[dt.date, Outputs]
    todo: list[dt.date]
    aoi: AoiReader | None

    def maps(self) -> list[Path]:
        """The map paths of every date, in date order."""
        return [self.outputs[d].map for d in self.dates]


def scene_folders(out: Path, scenes: Sequence[Scene]) -> dict[str, Path]:
    """Where each scene's outputs go: ``out`` for one scene, ``out/<scene name>`` for several (SceneError if
    two share a name: their maps would overwrite each other)."""
    names = [s.name for s in scenes]
    if len(scenes) > 1 and len(set(names)) < len(names):
        raise SceneError(scenes[0].manifest.path, f"several scenes share a name ({names})",
                         "give every scene its own 'name' in scene.yaml (each writes into OUT/<name>)")
    return {s.name: Path(out) if len(scenes) == 1 else Path(out) / s.name for s in scenes}


def resolve_dates(models: RunModels, scene: Scene, dates: Dates) -> list[dt.date]:
    """``dates``; ``"all"``: every date with an image; None: every labelled date (per-month runs: those of a
    month the run has a model for; a warning names the others), or for a scene without labels every date
    with a full window."""
    if dates == "all":
        return [d for d, gap in zip(scene.dates, scene.missing, strict=True) if not gap]
    if dates is not None:
        return list(dates)
    chosen = default_dates(scene, models.sequence_length)
    if models.per_month:
        served = [d for d in chosen if any(n.target is not None and n.target.month == d.month for n in models.nets)]
        if len(served) < len(chosen):
            skipped = ", ".join(str(d) for d in chosen if d not in served)
            warnings.warn(f"{models.root}: no per-month model for {skipped}; not predicted", stacklevel=3)
        if not served:
            models.net_for(chosen[0])  # raises RunError naming the models
        chosen = served
    return chosen


def prepare_scene(models: RunModels, scene: Scene, out: Path, dates: Sequence[dt.date], probabilities: bool,
                  aoi: np.ndarray | str | Path | None, confidence: bool = False,
                  uncertainty: str | None = None) -> SceneWork:
    """Check that ``scene`` suits ``models`` (bands, dates, a model for every date, the AOI), write
    ``out/classes.json`` and find the dates left to do (``confidence``, ``uncertainty``: those layers are
    outputs too). Raises ConfigError, SceneError or RunError before any map is written."""
    if uncertainty is not None and uncertainty not in UNCERTAINTIES:
        raise ConfigError(None, f"uncertainty {uncertainty!r} is not known", f"use one of {', '.join(UNCERTAINTIES)}")
    if scene.num_bands != models.in_channels:
        raise SceneError(scene.manifest.path, f"has {scene.num_bands} band(s) {list(scene.bands)} but the run was "
                         f"trained on {models.in_channels}", "predict a scene with the training scene's bands")
    checked = check_dates(scene, dates, models.sequence_length)
    for d in checked:
        models.net_for(d)  # RunError now, before anything is written, for a month without a model
    reader = aoi_reader(aoi, scene.grid)  # a bad AOI fails here, once
    out.mkdir(parents=True, exist_ok=True)
    write_classes(out, models.classes)
    outputs = {d: Outputs.of(out, d, probabilities, confidence=confidence, uncertainty=uncertainty) for d in checked}
    todo = [d for d in checked if not outputs[d].done()]
    if len(todo) < len(checked):
        log.info("skipping %d date(s) whose maps exist in %s", len(checked) - len(todo), out)
    return SceneWork(checked, outputs, todo, reader)


def make_plans(models: RunModels, scene: Scene, dates: Sequence[dt.date]) -> list[Plan]:
    """One plan per date: its model and window; an adapted run's windows carry its shifted days of year."""
    plans = []
    for k, d in enumerate(dates):
        window = target_window(scene.dates, d, models.sequence_length, scene.missing)
        if models.doy_offset:
            window = replace(window, doy=shift_doy(window.doy, models.doy_offset))
        plans.append(Plan(d, k, models.net_for(d), window))
    return plans


def no_map_error(scene: Scene, empty: Sequence[dt.date]) -> SceneError:
    """The error for dates whose window has no real image at any pixel (inside the AOI)."""
    return SceneError(scene.manifest.path, "no pixel (inside the AOI) has a real image in the window of "
                      f"{', '.join(map(str, empty))}; no map written",
                      "check those images and the AOI, or predict other dates")


def write_log(out: Path, models: RunModels, scene: Scene, plans: Sequence[Plan], tile: int, overlap: int,
              seconds: float, margin: int = 0, **extra: object) -> None:
    """Append this session to OUT/predict.json (run, scene, tiling, margin, device, precision, the model and
    its kind per date, throughput; ``extra``: what a distributed session adds)."""
    path = PredictionLayout(out).log
    sessions = read_json(path, "delete it (it only logs earlier predictions) and predict again") if path.is_file() else []
    if not isinstance(sessions, list):
        raise RunError(path, "is not a prediction log (a JSON list)", "delete it and predict again")
    pixels = scene.grid.width * scene.grid.height * len(plans)
    sessions.append({
        "run": str(models.root) if models.root else None,
        "scene": str(scene.root),
        "kind": sorted({p.net.predictor.kind for p in plans}),
        "tile": tile,
        "overlap": overlap,
        "margin": margin,
        "device": str(models.device),
        "precision": precision_label(models.autocast),
        "doy_offset": models.doy_offset,
        "nets": {p.date.isoformat(): p.net.name for p in plans},
        "seconds": round(seconds, 3),
        "pixel_months_per_s": round(pixels / seconds, 1) if seconds > 0 else None,
        **extra,
    })
    write_json(path, sessions)
