"""An ensemble of a network and a per-pixel booster: the mean of their calibrated class probabilities.

Both members are finished runs of the same year; nothing trains again. Each member's calibrated
probabilities (``predict --probabilities``, the temperature of each net applied) are those its own
prediction kept (experiment ``predict.probabilities: true``), or else it predicts again into
``OUT/members/SLUG/``; the ensemble's probability of each class is the mean of the members' (as
written, at 1/255 resolution), renormalised over the real classes, and its map the most probable class.
Beside the map it writes the probabilities and the confidence layer, so it is evaluated (F1, OA, ECE) as
any prediction folder is. Both are calibrated by the ensemble's own temperature, fitted on the validation
pixels both members share and stored as ``OUT/calibration.json`` (:mod:`tropicrop.ensemblecal`); the map
is the argmax of the uncalibrated mean, so calibration never moves it.

It is an approach of its own (Table 4 says ``ensemble (network + booster)``), never a network approach.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path

import rasterio
from rasterio.windows import Window

from tropicrop import ensemblecal
from tropicrop.classes import ClassTable
from tropicrop.ensemblecal import mean_probabilities, scale
from tropicrop.errors import RunError
from tropicrop.inference.mapfiles import Outputs, ScratchMaps, finalise_maps, write_classes
from tropicrop.inference.stream import class_map, confidence_layer, scaled_probabilities
from tropicrop.layout import PredictionLayout, slug
from tropicrop.runfiles import read_class_table
from tropicrop.scene import Scene

UNCALIBRATED = "uncalibrated"
"""Subfolder of an ensemble's predictions holding its uncalibrated twin (``compare=True``)."""
ROWS = 512
"""Rows of the scene combined at once (memory: members x classes x ROWS x width bytes, plus float copies)."""


def predict_ensemble(members: Sequence[tuple[str, Path, Path]], scene: Scene, out: Path, classes: ClassTable, *,
                     tile: int = 256, overlap: int = 0, margin: int | None = None,
                     progress: bool = True, calibration: str = "temperature", compare: bool = False) -> list[Path]:
    """Maps of ``scene`` from the mean calibrated probabilities of the runs ``members``.

    Args:
        members: (name, run dir, prediction folder) of each member approach. A prediction folder that holds
            the probabilities of every labelled date it mapped is used as it is; otherwise the member
            predicts again, with probabilities, into ``out/members/SLUG`` (a date done there is kept).
        scene: the scene to map (year B in an experiment): every labelled date both members predict.
        out: the ensemble's prediction folder (maps, probabilities, confidence, classes.json).
        classes: the class table both members were trained with.
        tile, overlap, margin, progress: prediction settings of the members (:func:`predict_run`).
        calibration: ``"temperature"`` fits (or reads, when ``out/calibration.json`` exists) the ensemble's
            temperature and applies it; ``"none"`` writes the uncalibrated mean (T = 1).
        compare: with calibration, also write the uncalibrated ensemble into ``out/uncalibrated`` (same
            maps; its probabilities and confidence at T = 1), to measure what the temperature does.

    Returns:
        The paths of the ensemble's maps ``out/maps/YYYYMMDD.tif``.
    """
    from tropicrop.inference import predict_run

    out = Path(out)

    def member_folders(target: Scene, sub: str) -> list[Path]:
        folders = []
        for name, run_dir, predicted in members:
            if has_probabilities(predicted, target):
                folders.append(predicted)
                continue
            folder = out / sub / slug(name)
            predict_run(run_dir, target, folder, tile=tile, overlap=overlap, probabilities=True, progress=progress,
                        margin=margin)
            folders.append(folder)
        return folders

    folders = member_folders(scene, "members")
    temperature = 1.0
    if calibration != "none":
        temperature = _ensemble_temperature(members, scene, out, folders, member_folders)
        if compare:
            combine_predictions(folders, scene, out / UNCALIBRATED, classes)
    return combine_predictions(folders, scene, out, classes, temperature)


def _ensemble_temperature(members: Sequence[tuple[str, Path, Path]], scene: Scene, out: Path, folders: list[Path],
                          member_folders: Callable[[Scene, str], list[Path]]) -> float:
    """The temperature in ``out/calibration.json``, or fitted on the members' shared validation pixels of
    their training scene (predicted there into ``out/validation/SLUG`` unless it is ``scene``) and stored."""
    from tropicrop.scene import load_scene

    stored = ensemblecal.read_ensemble_temperature(out)
    if stored is not None:
        return stored
    runs = [run_dir for _, run_dir, _ in members]
    trained_on = ensemblecal.training_scene(runs[0])
    if not ensemblecal.same_scene(trained_on, scene):
        folders = member_folders(load_scene(trained_on), "validation")
    record = ensemblecal.fit_ensemble(folders, ensemblecal.shared_validation(runs))
    out.mkdir(parents=True, exist_ok=True)
    ensemblecal.write_calibration(out, {**record, "members": [name for name, _, _ in members],
                                        "scene": str(trained_on)})
    return float(record["temperature"])


def has_probabilities(folder: Path, scene: Scene) -> bool:
    """Whether prediction ``folder`` mapped a labelled date of ``scene`` and kept the probabilities of each."""
    layout = PredictionLayout(Path(folder))
    mapped = [d for d in scene.labelled_dates if layout.map(d).is_file()]
    return bool(mapped) and all(layout.probabilities(d).is_file() for d in mapped)


def combine_predictions(folders: Sequence[Path], scene: Scene, out: Path, classes: ClassTable,
                        temperature: float = 1.0) -> list[Path]:
    """The ensemble of prediction folders written with probabilities: for each date all of them mapped,
    the mean of their probabilities, its most probable class, and the probabilities and confidence layer
    calibrated by ``temperature`` (:func:`tropicrop.ensemblecal.scale`), with a quick-look, in ``out``.

    Raises:
        RunError: a folder was predicted with another class table, lacks a probability file, or the
            folders share no date.
    """
    names = list(classes.names)
    for folder in folders:
        found = read_class_table(PredictionLayout(folder).classes, "predict the member again into an empty folder")
        if list(found.names) != names:
            raise RunError(folder, f"holds maps of classes {list(found.names[1:])}, not {names[1:]}",
                           "ensemble approaches of one experiment (one class table)")
    dates = [d for d in scene.labelled_dates if all(PredictionLayout(f).map(d).is_file() for f in folders)]
    if not dates:
        raise RunError(folders[0], "shares no mapped labelled date with the other member", "predict both members")
    out.mkdir(parents=True, exist_ok=True)
    write_classes(out, classes)
    maps = []
    for date in dates:
        outputs = Outputs.of(out, date, probabilities=True, confidence=True)
        if not outputs.done():
            _combine_date(folders, scene, date, outputs, names, temperature)
        maps.append(outputs.map)
    return maps


def _combine_date(folders: Sequence[Path], scene: Scene, date: dt.date, outputs: Outputs, names: list[str],
                  temperature: float) -> None:
    """One date's ensemble map, probabilities and confidence, row band by row band, via scratch files."""

    grid = scene.grid
    for path in (outputs.map, outputs.probabilities, outputs.confidence):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=outputs.map.parent) as tmp, ExitStack() as stack:
        scratch = ScratchMaps(Path(tmp), grid, [date], names, True, stack, layers=("confidence",))
        sources = []
        for folder in folders:
            layout = PredictionLayout(folder)
            if not layout.probabilities(date).is_file():
                raise RunError(layout.probabilities(date), "is missing", "predict the member with --probabilities")
            sources.append((stack.enter_context(rasterio.open(layout.map(date))),
                            stack.enter_context(rasterio.open(layout.probabilities(date)))))
        for row in range(0, grid.height, ROWS):
            window = Window(0, row, grid.width, min(ROWS, grid.height - row))
            probs, valid = mean_probabilities([(m.read(1, window=window), p.read(window=window)) for m, p in sources])
            calibrated = scale(probs, valid, temperature)  # the map stays the argmax of the mean
            scratch.write(0, window, class_map(probs, valid), scaled_probabilities(calibrated, valid))
            scratch.write_layer("confidence", 0, window, confidence_layer(calibrated, valid))
        stack.close()  # scratch files complete before they are copied
        finalise_maps(scratch.maps[0], scratch.probs[0], outputs, names, f"{date} ensemble",
                      scratch.layer_paths(0))
