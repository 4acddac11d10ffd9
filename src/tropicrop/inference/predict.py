"""Prediction of a scene with a loaded run (:func:`predict_scene`) or a run directory (:func:`predict_run`),
in one process; the same for every kind of run (:mod:`.predictor`)."""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tropicrop.inference.run import RunModels, load_run
from tropicrop.inference.session import Dates, make_plans, no_map_error, prepare_scene, resolve_dates, write_log
from tropicrop.inference.stream import buffer_bytes, stream_plans
from tropicrop.inference.tiling import check_tiling, run_margin, run_margin_alignment
from tropicrop.scene import Scene, load_scene

BUFFER_BYTES = 2 * 1024**3  # above this, target dates are predicted in groups, one pass over the scene each


def run_context(models: RunModels, margin: int | None) -> tuple[int, int]:
    """(margin, alignment) every tile is read with: ``margin`` pixels, or with None the widest the run's
    models need (:func:`~tropicrop.inference.tiling.run_margin`)."""
    return run_margin(models) if margin is None else (margin, run_margin_alignment(models))


def predict_scene(models: RunModels, scene: Scene, out: Path, dates: Sequence[dt.date], *, tile: int = 256,
                  overlap: int = 0, probabilities: bool = False, progress: bool = True,
                  aoi: np.ndarray | str | Path | None = None, margin: int | None = None,
                  uncertainty: str | None = None) -> list[Path]:
    """Predict ``dates`` of ``scene`` with in-memory ``models`` into ``out`` (see the package docstring).

    Beside each map, the confidence layer ``OUT/confidence/YYYYMMDD.tif`` (the networks' calibrated
    probability of the mapped class, percent) and, with ``uncertainty`` (``entropy`` or ``margin``),
    ``OUT/uncertainty/YYYYMMDD.tif``.

    Each tile is read with ``margin`` pixels of scene context around it, cropped off before blending;
    ``None`` uses the margin the models need (:func:`~tropicrop.inference.tiling.run_margin`), 0 reads
    the tile alone.

    Dates whose outputs all exist are skipped. Returns the map paths of ``dates``, in date order. Raises
    :class:`SceneError` if the scene's band count differs from the models' or a date is not in the scene.
    """
    out = Path(out)
    check_tiling(tile, overlap)
    work = prepare_scene(models, scene, out, dates, probabilities, aoi, confidence=True, uncertainty=uncertainty)
    context = run_context(models, margin)
    empty: list[dt.date] = []
    todo = work.todo
    per_date = buffer_bytes(scene.grid, 1, models.classes.num_classes, tile, overlap, probabilities)
    group = max(1, BUFFER_BYTES // per_date)
    group = math.ceil(len(todo) / math.ceil(len(todo) / group)) if todo else 1  # passes of even size
    for start in range(0, len(todo), group):  # one pass over the scene per group of dates
        clock = time.perf_counter()
        plans = make_plans(models, scene, todo[start : start + group])
        empty += stream_plans(models, scene, out, plans, work.outputs, tile, overlap, probabilities, progress,
                              work.aoi, context, uncertainty)
        write_log(out, models, scene, plans, tile, overlap, time.perf_counter() - clock, context[0])
    if empty:
        raise no_map_error(scene, empty)
    return work.maps()


def predict_run(run_dir: Path, scene: Scene | Path, out: Path, dates: Dates = None, tile: int = 256,
                overlap: int = 0, probabilities: bool = False, progress: bool = True,
                aoi: np.ndarray | str | Path | None = None, precision: str | None = None,
                margin: int | None = None, calibration: str = "temperature", uncertainty: str | None = None) -> list[Path]:
    """Crop maps of ``scene`` for ``dates`` with the models of run directory ``run_dir``, into ``out``.

    ``dates`` defaults to every labelled date of the scene (per-month runs: those of a month the run has a
    model for), or, for a scene without labels, every date with a full window of history; ``"all"`` is
    every date with an image. Tiles of ``tile`` pixels overlapping by ``overlap`` are blended smoothly;
    ``aoi`` (bool mask (H, W), raster or vector file) limits the work to its tiles, and map pixels outside
    it are 0 (nodata). ``margin``: pixels of scene context read around each tile (None: what the models
    need). A network's device follows the run's ``trainer`` config, and so does the precision unless
    ``precision`` (``auto``, ``32``, ``bf16``) is given. ``calibration`` (``temperature`` or ``none``) and
    ``uncertainty``: see :func:`predict_scene` and :func:`~tropicrop.inference.run.load_run`. Returns the
    paths of the maps ``OUT/maps/YYYYMMDD.tif``.
    """
    models = load_run(Path(run_dir), precision, calibration)
    scene = scene if isinstance(scene, Scene) else load_scene(scene)
    return predict_scene(models, scene, Path(out), resolve_dates(models, scene, dates), tile=tile, overlap=overlap,
                         probabilities=probabilities, progress=progress, aoi=aoi, margin=margin,
                         uncertainty=uncertainty)
