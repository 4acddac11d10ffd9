"""Prediction of a scene with a loaded run (:func:`predict_scene`) or a run directory (:func:`predict_run`)."""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from tropicrop.errors import RunError, SceneError
from tropicrop.inference.dates import check_dates, default_dates
from tropicrop.inference.mapfiles import Outputs, write_classes
from tropicrop.inference.run import RunModels, load_run
from tropicrop.inference.stream import buffer_bytes, stream_plans
from tropicrop.inference.tile import Plan
from tropicrop.inference.tiling import aoi_reader, check_tiling, run_margin, run_margin_alignment
from tropicrop.io.files import write_json
from tropicrop.layout import PredictionLayout
from tropicrop.precision import precision_label
from tropicrop.runfiles import read_json
from tropicrop.scene import Scene, load_scene
from tropicrop.windows.dates import shift_doy, target_window

log = logging.getLogger(__name__)


BUFFER_BYTES = 2 * 1024**3  # above this, target dates are predicted in groups, one pass over the scene each


def make_plans(models: RunModels, scene: Scene, dates: Sequence[dt.date]) -> list[Plan]:
    """One plan per date: its network and window; an adapted run's windows carry its shifted days of year."""
    plans = []
    for k, d in enumerate(dates):
        window = target_window(scene.dates, d, models.sequence_length, scene.missing)
        if models.doy_offset:
            window = replace(window, doy=shift_doy(window.doy, models.doy_offset))
        plans.append(Plan(d, k, models.net_for(d), window))
    return plans


def predict_scene(models: RunModels, scene: Scene, out: Path, dates: Sequence[dt.date], *, tile: int = 256,
                  overlap: int = 0, probabilities: bool = False, progress: bool = True,
                  aoi: np.ndarray | str | Path | None = None, margin: int | None = None) -> list[Path]:
    """Predict ``dates`` of ``scene`` with in-memory ``models`` into ``out`` (see the package docstring).

    Each tile is read with ``margin`` pixels of scene context around it, cropped off before blending;
    ``None`` measures the margin the networks need (:func:`~tropicrop.inference.tiling.run_margin`), 0 reads
    the tile alone.

    Dates whose outputs all exist are skipped. Returns the map paths of ``dates``, in date order. Raises
    :class:`SceneError` if the scene's band count differs from the networks' or a date is not in the scene.
    """
    out = Path(out)
    check_tiling(tile, overlap)
    if scene.num_bands != models.in_channels:
        raise SceneError(scene.manifest.path, f"has {scene.num_bands} band(s) {list(scene.bands)} but the run was trained "
                         f"on {models.in_channels}", "predict a scene with the training scene's bands")
    dates = check_dates(scene, dates, models.sequence_length)
    for d in dates:
        models.net_for(d)  # RunError now, before anything is written, for a month without a network
    outputs = {d: Outputs.of(out, d, probabilities) for d in dates}
    write_classes(out, models.classes)
    todo = [d for d in dates if not outputs[d].done()]
    if len(todo) < len(dates):
        log.info("skipping %d date(s) whose maps exist in %s", len(dates) - len(todo), out)
    reader = aoi_reader(aoi, scene.grid)
    context = run_margin(models) if margin is None else (margin, run_margin_alignment(models))
    empty: list[dt.date] = []
    per_date = buffer_bytes(scene.grid, 1, models.classes.num_classes, tile, overlap, probabilities)
    group = max(1, BUFFER_BYTES // per_date)
    group = math.ceil(len(todo) / math.ceil(len(todo) / group)) if todo else 1  # passes of even size
    for start in range(0, len(todo), group):  # one pass over the scene per group of dates
        clock = time.perf_counter()
        plans = make_plans(models, scene, todo[start : start + group])
        empty += stream_plans(models, scene, out, plans, outputs, tile, overlap, probabilities, progress, reader,
                              context)
        write_log(out, models, scene, plans, tile, overlap, time.perf_counter() - clock, context[0])
    if empty:
        raise SceneError(scene.manifest.path, "no pixel (inside the AOI) has a real image in the window of "
                         f"{', '.join(map(str, empty))}; no map written",
                         "check those images and the AOI, or predict other dates")
    return [outputs[d].map for d in dates]


def write_log(out: Path, models: RunModels, scene: Scene, plans: Sequence[Plan], tile: int, overlap: int,
              seconds: float, margin: int = 0, **extra: object) -> None:
    """Append this session to OUT/predict.json (run, scene, tiling, margin, device, precision, the net per date,
    throughput; ``extra``: what a distributed session adds)."""
    path = PredictionLayout(out).log
    sessions = read_json(path, "delete it (it only logs earlier predictions) and predict again") if path.is_file() else []
    if not isinstance(sessions, list):
        raise RunError(path, "is not a prediction log (a JSON list)", "delete it and predict again")
    pixels = scene.grid.width * scene.grid.height * len(plans)
    sessions.append({
        "run": str(models.root) if models.root else None,
        "scene": str(scene.root),
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


def predict_run(run_dir: Path, scene: Scene | Path, out: Path, dates: Sequence[dt.date] | None = None, tile: int = 256,
                overlap: int = 0, probabilities: bool = False, progress: bool = True,
                aoi: np.ndarray | str | Path | None = None, precision: str | None = None,
                margin: int | None = None) -> list[Path]:
    """Crop maps of ``scene`` for ``dates`` with the networks of run directory ``run_dir``, into ``out``.

    ``dates`` defaults to every labelled date of the scene (per-month runs: those of a month the run has a
    network for), or, for a scene without labels, every date with a full window of history. Tiles of
    ``tile`` pixels overlapping by ``overlap`` are blended smoothly; ``aoi`` (bool mask (H, W), raster or
    vector file) limits the work to its tiles, and map pixels outside it are 0 (nodata). ``margin``: pixels
    of scene context read around each tile (None: measured from the networks). The device follows the run's
    ``trainer`` config, and so does the precision unless ``precision`` (``auto``, ``32``, ``bf16``) is given.
    Returns the paths of the maps ``OUT/maps/YYYYMMDD.tif``.
    """
    from tropicrop.classical import is_classical_run, predict_classical

    if is_classical_run(Path(run_dir)):  # a per-pixel LightGBM run: its own streaming predictor
        if probabilities or aoi is not None:
            raise RunError(run_dir, "is a classical (LightGBM) run, which writes class maps only",
                           "predict it without --probabilities, --parcels and --aoi")
        return predict_classical(Path(run_dir), scene, Path(out), dates, progress=progress)
    models = load_run(Path(run_dir), precision)
    scene = scene if isinstance(scene, Scene) else load_scene(scene)
    dates = resolve_dates(models, scene, dates)
    return predict_scene(models, scene, Path(out), dates, tile=tile, overlap=overlap, probabilities=probabilities,
                         progress=progress, aoi=aoi, margin=margin)


def resolve_dates(models: RunModels, scene: Scene, dates: Sequence[dt.date] | None) -> list[dt.date]:
    """``dates``, or by default every labelled date (per-month runs: those of a month the run has a network
    for; a warning names the others), or for a scene without labels every date with a full window."""
    if dates is not None:
        return list(dates)
    dates = default_dates(scene, models.sequence_length)
    if models.per_month:
        served = [d for d in dates if any(n.target is not None and n.target.month == d.month for n in models.nets)]
        if len(served) < len(dates):
            skipped = ", ".join(str(d) for d in dates if d not in served)
            warnings.warn(f"{models.root}: no per-month network for {skipped}; not predicted", stacklevel=3)
        if not served:
            models.net_for(dates[0])  # raises RunError naming the networks
        dates = served
    return dates
