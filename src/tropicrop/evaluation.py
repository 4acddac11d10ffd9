"""Per-date accuracy of predicted maps against a scene's reference: OA, F1 per class, their average, confusion.

For every labelled date of the scene that has a map ``OUT/maps/YYYYMMDD.tif``, reference labels and the
map are read window by window (memory does not grow with the scene) and a torchmetrics confusion matrix is
accumulated over the pixels of the chosen split. Reference codes of the scene are mapped to the map's class
indices by NAME (:meth:`ClassTable.lookup`: a class the model does not know counts as ``Other`` when the
table has one), so a model trained on one year is evaluated on another year's scene with other codes.

Scores follow the paper: pixels without reference (0) are excluded, and the average F1 is the macro
average over classes PRESENT in the reference at that date. Map pixels without a prediction (0: outside
the AOI, or no image) are left out and counted as ``unpredicted``. Files written (atomically)::

    OUT/metrics/per_date.csv             date, oa, f1, pixels
    OUT/metrics/per_class.csv            date, class, f1, support    (f1 is nan for a class absent that date)
    OUT/metrics/confusion/YYYYMMDD.csv   rows reference, columns prediction, class names as headers
    OUT/metrics/calibration.csv          date, ece, brier, accuracy, acc_at_50/80/100, pixels (maps with a
                                         confidence layer, OUT/confidence/; tropicrop.reliability), and the mean
    OUT/metrics/reliability.json, .png   confidence counts per date and the reliability diagram
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import warnings
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.windows import Window

from tropicrop.classes import ClassTable
from tropicrop.errors import ConfigError, RunError, SceneError
from tropicrop.io.files import atomic_path, write_json
from tropicrop.layout import PredictionLayout
from tropicrop.metrics import confusion_metric, scores_from_confusion
from tropicrop.reliability import Reliability, write_reliability_png
from tropicrop.runfiles import read_class_table
from tropicrop.scene import TEST, TRAIN, Scene, load_scene

SPLITS = {"test": TEST, "train": TRAIN, "all": None}
BLOCK = 1024  # side of the windows read at a time
REPREDICT = "delete it and predict again: tropicrop predict RUN SCENE --out OUT"
__all__ = ["SPLITS", "DateScores", "EvaluationResult", "evaluate_predictions", "format_evaluation", "write_metrics"]


@dataclass(frozen=True)
class DateScores:
    """Scores of one date. ``confusion`` is (K, K) int64 (rows reference, columns prediction, index 0 =
    no reference / no prediction); ``f1`` and ``support`` are keyed by class name (classes 1..K-1)."""

    date: dt.date
    oa: float
    macro_f1: float
    f1: dict[str, float]
    support: dict[str, int]
    confusion: np.ndarray
    pixels: int
    unpredicted: int
    reliability: Reliability | None = None  # confidence counts of the scored pixels (maps with a confidence layer)


@dataclass(frozen=True)
class EvaluationResult:
    """Scores of every evaluated date, the class names of the maps and the files written."""

    split: str
    class_names: tuple[str, ...]
    dates: list[DateScores]
    files: list[Path]

    @property
    def mean_oa(self) -> float:
        """OA averaged over dates (NaN without dates)."""
        return _mean([d.oa for d in self.dates])

    @property
    def mean_f1(self) -> float:
        """Average F1 averaged over dates (NaN without dates)."""
        return _mean([d.macro_f1 for d in self.dates])

    def calibration(self) -> dict[str, float]:
        """ECE, Brier and accuracy at coverage averaged over dates with a confidence layer (empty without)."""
        rows = [d.reliability.summary() for d in self.dates if d.reliability is not None and d.reliability.pixels]
        return {k: _mean([r[k] for r in rows]) for k in rows[0]} if rows else {}


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if not np.isnan(v)]
    return float(np.mean(finite)) if finite else float("nan")


def map_path(out: Path, date: dt.date) -> Path:
    """``OUT/maps/YYYYMMDD.tif``."""
    return PredictionLayout(Path(out)).map(date)


def read_class_names(out: Path) -> tuple[str, ...]:
    """Class names of the maps in ``out`` (``OUT/classes.json``, written by predict)."""
    path = PredictionLayout(Path(out)).classes
    if not path.is_file():
        raise RunError(out, "holds no classes.json", "write maps with tropicrop predict, or pass class_names")
    return read_class_table(path, REPREDICT).names


def date_confusion(scene: Scene, prediction: Path, date: dt.date, lookup: np.ndarray, num_classes: int,
                   split: int | None, block: int = BLOCK, reliability: Reliability | None = None) -> np.ndarray:
    """Confusion matrix (K, K) int64 of map ``prediction`` against the labels of ``date``, streamed.

    ``lookup`` (256,) maps scene codes to map indices; ``split`` keeps pixels of that split value only
    (None: every labelled pixel). With ``reliability``, the map's confidence layer (``OUT/confidence/``) is
    counted into it at the same pixels (right = map equals reference).
    """
    metric = confusion_metric(num_classes)
    try:
        with _quiet_gdal():
            _accumulate(metric, scene, prediction, date, lookup, num_classes, split, block, reliability)
    except RasterioIOError as exc:
        raise RunError(prediction, f"is not a readable map ({' '.join(str(exc).split())[:160]})", REPREDICT) from None
    cm: np.ndarray = metric.compute().numpy().astype(np.int64)
    return cm


@contextmanager
def _quiet_gdal() -> Iterator[None]:
    """GDAL's warnings about a damaged file off while reading a map: the RunError that follows names it once."""
    logger = logging.getLogger("rasterio._env")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            yield
    finally:
        logger.setLevel(level)


def _accumulate(metric: Any, scene: Scene, prediction: Path, date: dt.date, lookup: np.ndarray, num_classes: int,
                split: int | None, block: int, reliability: Reliability | None = None) -> None:
    """Add the pixels of map ``prediction`` to ``metric``, window by window (see :func:`date_confusion`)."""
    with rasterio.open(prediction) as ds, ExitStack() as stack:
        conf = stack.enter_context(rasterio.open(prediction.parents[1] / "confidence" / prediction.name)) \
            if reliability is not None else None
        if ds.count != 1 or ds.dtypes[0] != "uint8":
            raise RunError(prediction, f"is not a class map (holds {ds.count} band(s) of {ds.dtypes[0]}, not one of uint8)",
                           REPREDICT)
        if (ds.width, ds.height) != (scene.grid.width, scene.grid.height):
            raise RunError(prediction, f"is {ds.width}x{ds.height} but the scene is {scene.grid.width}x{scene.grid.height}",
                           "evaluate maps against the scene they were predicted for")
        for window in scene.blocks(block):
            reference = lookup[scene.read_labels(window, [date])[0]]
            if split is not None:
                reference[scene.read_split(window) != split] = 0
            predicted = ds.read(1, window=Window(window.col_off, window.row_off, window.width, window.height))
            if predicted.max(initial=0) >= num_classes:
                raise RunError(prediction, f"holds class code {int(predicted.max())} but the map has {num_classes} classes",
                               "evaluate with the classes.json written beside the maps")
            keep = reference > 0
            if conf is not None and reliability is not None:  # calibration: where the map has a class
                rwin = Window(window.col_off, window.row_off, window.width, window.height)
                scored = keep & (predicted > 0)
                reliability.add(conf.read(1, window=rwin)[scored], predicted[scored] == reference[scored])
            if keep.any():
                metric.update(torch.from_numpy(predicted[keep].astype(np.int64)),
                              torch.from_numpy(reference[keep].astype(np.int64)))


def scores_of(date: dt.date, cm: np.ndarray, names: Sequence[str]) -> DateScores:
    """DateScores from a (K, K) confusion matrix; predictions of 0 (no prediction) count as unpredicted."""
    s = scores_from_confusion(cm)
    return DateScores(
        date=date, oa=s.oa, macro_f1=s.macro_f1,
        f1={n: float(v) for n, v in zip(names[1:], s.f1, strict=True)},
        support={n: int(v) for n, v in zip(names[1:], s.support, strict=True)},
        confusion=cm, pixels=int(cm[1:, 1:].sum()), unpredicted=int(cm[1:, 0].sum()),
    )


def evaluate_predictions(out: Path, scene: Scene | Path, split: str = "test",
                         class_names: Sequence[str] | None = None) -> EvaluationResult:
    """Score every map in ``out`` that has reference labels in ``scene`` and write the metric files.

    ``split`` is ``test`` (split == 2, the default), ``train`` (split == 1) or ``all`` (every labelled
    pixel). ``class_names`` are the map's classes by code (index 0 = no reference); default
    ``OUT/classes.json``. Returns the per-date scores (see :class:`EvaluationResult`).
    """
    out = Path(out)
    if split not in SPLITS:
        raise ConfigError(None, f"split is {split!r}", f"use one of {', '.join(SPLITS)}")
    scene = scene if isinstance(scene, Scene) else load_scene(scene)
    if SPLITS[split] is not None and not scene.has_split:
        raise SceneError(scene.manifest.path, f"the scene has no split to take the {split} pixels from",
                         "evaluate every labelled pixel with --split all, or add a split to scene.yaml")
    names = tuple(class_names) if class_names is not None else read_class_names(out)
    table = ClassTable(names=names)
    lookup = table.lookup(scene.classes)
    dates = [d for d in scene.labelled_dates if map_path(out, d).is_file()]
    if not dates:
        raise RunError(out / "maps", f"holds no map of a labelled date of {scene.root} "
                       f"({', '.join(map(str, scene.labelled_dates)) or 'the scene has no labels'})",
                       "predict the scene first: tropicrop predict RUN SCENE --out OUT")
    results = []
    for d in dates:
        has_conf = PredictionLayout(out).confidence(d).is_file()
        rel = Reliability() if has_conf else None
        cm = date_confusion(scene, map_path(out, d), d, lookup, len(names), SPLITS[split], reliability=rel)
        results.append(replace(scores_of(d, cm, names), reliability=rel))
    unpredicted = {str(r.date): r.unpredicted for r in results if r.unpredicted}
    if unpredicted:
        warnings.warn(f"{out}: reference pixels without a prediction (outside the AOI or no data), left out: {unpredicted}",
                      stacklevel=2)
    files = write_metrics(PredictionLayout(out).metrics, results, names)
    return EvaluationResult(split=split, class_names=names, dates=results, files=files)


# ------------------------------------------------------------------------------------------ files and table
def _fmt(value: float) -> str:
    return "nan" if np.isnan(value) else f"{value:.6f}"


def _write_csv(path: Path, rows: Sequence[Sequence[object]]) -> Path:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue())
    return path


def write_metrics(folder: Path, results: Sequence[DateScores], names: Sequence[str]) -> list[Path]:
    """Write per_date.csv, per_class.csv and confusion/YYYYMMDD.csv into ``folder``; returns the paths."""
    per_date = [["date", "oa", "f1", "pixels"]]
    per_class = [["date", "class", "f1", "support"]]
    files = []
    for r in results:
        per_date.append([r.date.isoformat(), _fmt(r.oa), _fmt(r.macro_f1), str(r.pixels)])
        per_class += [[r.date.isoformat(), n, _fmt(r.f1[n]), str(r.support[n])] for n in names[1:]]
        matrix = [["reference \\ prediction", *names[1:]]]
        matrix += [[n, *(str(int(v)) for v in r.confusion[i, 1:])] for i, n in enumerate(names) if i]
        files.append(_write_csv(folder / "confusion" / f"{r.date:%Y%m%d}.csv", matrix))
    files += write_calibration(folder, results)
    return [_write_csv(folder / "per_date.csv", per_date), _write_csv(folder / "per_class.csv", per_class), *files]


def write_calibration(folder: Path, results: Sequence[DateScores]) -> list[Path]:
    """``calibration.csv`` (date, ece, brier, acc_at_50/80/100, pixels; then the mean), ``reliability.json``
    (confidence counts per date) and ``reliability.png`` for the dates with a confidence layer."""
    rated = [r for r in results if r.reliability is not None and r.reliability.pixels]
    if not rated:
        return []
    keys = list(rated[0].reliability.summary())  # type: ignore[union-attr]
    rows: list[list[str]] = [["date", *keys, "pixels"]]
    total = Reliability()
    for r in rated:
        rel = r.reliability
        assert rel is not None
        total = total.merge(rel)
        rows.append([r.date.isoformat(), *(_fmt(v) for v in rel.summary().values()), str(rel.pixels)])
    means = [_mean([float(row[1 + i]) for row in rows[1:]]) for i in range(len(keys))]
    rows.append(["mean", *(_fmt(v) for v in means), str(total.pixels)])
    counts = folder / "reliability.json"
    write_json(counts, {r.date.isoformat(): r.reliability.to_dict() for r in rated})  # type: ignore[union-attr]
    return [_write_csv(folder / "calibration.csv", rows), counts,
            write_reliability_png({"all dates": total}, folder / "reliability.png")]


def format_evaluation(result: EvaluationResult, width: int = 8) -> str:
    """A text table: one row per date with OA, average F1, pixels and the F1 of each class (in %)."""
    names = result.class_names[1:]
    head = f"{'date':<12}{'OA':>7}{'F1':>7}{'pixels':>10}" + "".join(n[:width].rjust(width + 1) for n in names)
    lines = [f"split: {result.split}  (F1 = average over the classes present in the reference)", head]

    def pct(v: float, w: int) -> str:
        return "-".rjust(w) if np.isnan(v) else f"{100 * v:{w}.1f}"

    for r in result.dates:
        lines.append(f"{r.date.isoformat():<12}{pct(r.oa, 7)}{pct(r.macro_f1, 7)}{r.pixels:>10,}"
                     + "".join(pct(r.f1[n], width + 1) for n in names))
    lines.append(f"{'mean':<12}{pct(result.mean_oa, 7)}{pct(result.mean_f1, 7)}")
    cal = result.calibration()
    if cal:
        lines.append(f"calibration (mean over dates): ECE {cal['ece']:.3f}, Brier {cal['brier']:.3f}, accuracy at "
                     f"50/80/100 % coverage {pct(cal['acc_at_50'], 0)}/{pct(cal['acc_at_80'], 0)}/{pct(cal['acc_at_100'], 0)}")
    return "\n".join(lines)
