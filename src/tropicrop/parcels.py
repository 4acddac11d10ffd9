"""Per-field answers from a prediction directory: what is planted on each parcel each month, and how sure.

Zonal statistics are computed with exactextract (pixels weighted by the fraction of them the parcel covers)
on the files that ``tropicrop predict`` wrote (``OUT/maps/YYYYMMDD.tif`` and ``OUT/probabilities/``):

* ``class``: the majority class of the parcel's predicted pixels (map code 0, no prediction, left out);
* ``share``: the fraction of those pixels in that class;
* ``probability``: the mean probability of that class over the parcel (NaN when the date has no
  probability file: predict with ``--probabilities``, which ``--parcels`` turns on);
* ``pixels``: the parcel's predicted pixels (coverage-weighted), 0 for a parcel off the map;
* ``low_confidence``: the share of the parcel's pixels whose confidence (``OUT/confidence/``, the calibrated
  probability of the mapped class) is below the threshold (``--low-confidence``, 0.5 by default); NaN
  without a confidence layer. (``probability`` is calibrated too: it comes from the calibrated probabilities.)

``OUT/parcels.gpkg`` holds one feature per parcel and predicted date (the parcel's attributes, ``parcel``
= its row in the input file, ``date``), in the parcels' own CRS; an attribute of the input that bears the
name of one of these columns (a field id called ``parcel``, a sowing ``date``) is kept as ``NAME_input``.
Statistics are computed on a copy reprojected to the maps' CRS. :func:`parcel_scores` scores parcels
against a scene's reference (the majority of the reference labels in the parcel, on the chosen split) for
``evaluate --by parcel``.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
from exactextract import exact_extract

from tropicrop.errors import RunError, SceneError
from tropicrop.evaluation import EvaluationResult, read_class_names, scores_of
from tropicrop.io.files import atomic_path
from tropicrop.layout import PredictionLayout
from tropicrop.scene import Scene

LAYER = "parcels"
ANSWER_COLUMNS = ("parcel", "date", "class", "code", "share", "probability", "pixels", "low_confidence")
"""The columns that ``OUT/parcels.gpkg`` adds to the parcels' own attributes."""
LOW_CONFIDENCE = 0.5
"""Default confidence below which a pixel counts towards a parcel's ``low_confidence`` share."""
__all__ = ["ANSWER_COLUMNS", "LAYER", "LOW_CONFIDENCE", "evaluate_parcels", "parcel_answers", "parcel_scores",
           "predicted_dates", "read_parcels"]


def _renamed_clashes(columns: Sequence[str]) -> dict[str, str]:
    """``{name: name_input}`` for the input attributes named like an answer column (``_input`` repeated
    until the name is free), so that the answers never overwrite or collide with a user's attribute."""
    taken = set(columns) | set(ANSWER_COLUMNS)
    renamed = {}
    for name in columns:
        if name in ANSWER_COLUMNS:
            new = f"{name}_input"
            while new in taken:
                new += "_input"
            taken.add(new)
            renamed[name] = new
    return renamed


def read_parcels(path: Path, crs: rasterio.crs.CRS | None) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The parcels as read (with a ``parcel`` row number; attributes named like an answer column renamed,
    :func:`_renamed_clashes`) and a copy in ``crs`` for the statistics."""
    if not Path(path).is_file():
        raise SceneError(path, "parcels file not found", "give a vector file of field polygons (GeoPackage, Shapefile...)")
    try:
        frame = gpd.read_file(path)
    except Exception as exc:  # pyogrio raises several error types for unreadable files
        raise SceneError(path, f"not a readable vector file ({exc})", "export it as GeoPackage") from None
    frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty].reset_index(drop=True)
    if frame.empty:
        raise SceneError(path, "holds no polygon", "give the field polygons")
    if frame.crs is None and crs is not None:
        raise SceneError(path, "has no CRS", "set the parcels' CRS so they can be placed on the maps")
    frame = frame.rename(columns=_renamed_clashes([str(c) for c in frame.columns if c != frame.geometry.name]))
    frame.insert(0, "parcel", np.arange(len(frame), dtype=np.int64))
    on_grid = frame if crs is None or frame.crs == crs else frame.to_crs(crs)
    return frame, on_grid[["parcel", "geometry"]]


def _majority(raster: Path, zones: gpd.GeoDataFrame) -> pd.DataFrame:
    """Majority code, its coverage-weighted share and the predicted pixels per zone (nodata left out)."""
    stats = exact_extract(str(raster), zones, ["majority", "unique", "frac", "count"], include_cols=["parcel"],
                          output="pandas")
    share = []
    for major, unique, frac in zip(stats["majority"], stats["unique"], stats["frac"], strict=True):
        hit = np.asarray(unique) == major
        share.append(float(np.asarray(frac)[hit][0]) if hit.any() else np.nan)
    codes = pd.to_numeric(stats["majority"], errors="coerce").fillna(0).astype(np.int64)
    return pd.DataFrame({"parcel": stats["parcel"], "code": codes, "share": share, "pixels": stats["count"]})


def _mean_probabilities(raster: Path, zones: gpd.GeoDataFrame) -> np.ndarray:
    """(parcels, K-1) mean probability of every class band (the file's 1/255 scale applied)."""
    stats = exact_extract(str(raster), zones, ["mean"], output="pandas")
    return stats.to_numpy(dtype=np.float64)


def _low_share(raster: Path, zones: gpd.GeoDataFrame, threshold: float) -> np.ndarray:
    """(parcels,) coverage-weighted share of pixels of the confidence layer below ``threshold`` (NaN: none)."""
    stats = exact_extract(str(raster), zones, ["unique", "frac"], output="pandas")
    cut = round(threshold * 100)
    return np.array([float(np.asarray(frac)[np.asarray(unique) < cut].sum()) if len(unique) else np.nan
                     for unique, frac in zip(stats["unique"], stats["frac"], strict=True)])


def predicted_dates(out: Path) -> list[dt.date]:
    """The dates with a map in the prediction directory ``out``."""
    return PredictionLayout(Path(out)).dates()


def parcel_answers(out: Path, parcels: Path, dates: Sequence[dt.date] | None = None,
                   low_confidence: float = LOW_CONFIDENCE) -> Path:
    """Write ``OUT/parcels.gpkg``: per parcel and date the majority class, its share and mean probability.

    ``dates`` default to every map in ``out``. Returns the path written (atomically).
    """
    layout = PredictionLayout(Path(out))
    names = read_class_names(layout.root)
    dates = list(dates) if dates is not None else predicted_dates(layout.root)
    if not dates:
        raise RunError(layout.maps, "holds no map", "predict first: tropicrop predict RUN SCENE --out OUT")
    with rasterio.open(layout.map(dates[0])) as ds:
        crs = ds.crs
    frame, zones = read_parcels(parcels, crs)
    attributes = pd.DataFrame(frame.drop(columns="geometry"))
    rows = []
    for date in dates:
        table = _majority(layout.map(date), zones).set_index("parcel").reindex(frame["parcel"])
        codes = table["code"].to_numpy(dtype=np.int64)
        probability = np.full(len(frame), np.nan)
        prob_path = layout.probabilities(date)
        if prob_path.is_file():
            means = _mean_probabilities(prob_path, zones)
            has = codes > 0
            probability[has] = means[np.flatnonzero(has), codes[has] - 1]
        conf_path = layout.confidence(date)
        low = _low_share(conf_path, zones, low_confidence) if conf_path.is_file() else np.full(len(frame), np.nan)
        rows.append(attributes.assign(
            date=date.isoformat(),
            **{"class": pd.Series([names[c] if c > 0 else None for c in codes], dtype=object)},
            code=codes, share=np.where(codes > 0, table["share"].to_numpy(), np.nan),
            probability=probability, pixels=table["pixels"].to_numpy(dtype=np.float64), low_confidence=low))
    result = gpd.GeoDataFrame(pd.concat(rows, ignore_index=True),
                              geometry=pd.concat([frame.geometry] * len(dates), ignore_index=True), crs=frame.crs)
    target = layout.parcels
    with atomic_path(target) as tmp:
        result.to_file(tmp, driver="GPKG", layer=LAYER)
    return target


def _reference_raster(scene: Scene, date: dt.date, lookup: np.ndarray, split: int | None, path: Path) -> Path:
    """The scene's reference of ``date`` in map class indices, 0 outside ``split``, as a GeoTIFF (streamed)."""
    g = scene.grid
    profile = dict(driver="GTiff", width=g.width, height=g.height, count=1, dtype="uint8", crs=g.crs,
                   transform=g.transform, nodata=0, compress="deflate")
    with rasterio.open(path, "w", **profile) as ds:
        for window in scene.blocks():
            reference = lookup[scene.read_labels(window, [date])[0]]
            if split is not None:
                reference[scene.read_split(window) != split] = 0
            ds.write(reference, 1, window=window)
    return path


def parcel_scores(out: Path, scene: Scene, parcels: Path, split: int | None, split_name: str) -> EvaluationResult:
    """Parcel-level OA and F1 per date: the reference class of a parcel is the majority of the scene's
    reference labels inside it (on ``split``; parcels without reference are left out), the predicted one
    the majority of the map. Counts in the confusion matrices are parcels."""
    from tropicrop.classes import ClassTable

    layout = PredictionLayout(Path(out))
    names = read_class_names(layout.root)
    lookup = ClassTable(names=names).lookup(scene.classes)
    dates = [d for d in scene.labelled_dates if layout.map(d).is_file()]
    _, zones = read_parcels(parcels, scene.grid.crs)
    results = []
    with tempfile.TemporaryDirectory(prefix="tropicrop-parcels-") as tmp:
        for date in dates:
            reference = _majority(_reference_raster(scene, date, lookup, split, Path(tmp) / "ref.tif"), zones)
            predicted = _majority(layout.map(date), zones).set_index("parcel").reindex(reference["parcel"])
            ref_codes = reference["code"].to_numpy(dtype=np.int64)
            pred_codes = predicted["code"].to_numpy(dtype=np.int64)
            keep = ref_codes > 0
            cm = np.zeros((len(names), len(names)), dtype=np.int64)
            np.add.at(cm, (ref_codes[keep], pred_codes[keep]), 1)
            results.append(scores_of(date, cm, names))
    return EvaluationResult(split=split_name, class_names=names, dates=results, files=[])


def evaluate_parcels(out: Path, scene_path: Path, split: str = "test", parcels: Path | None = None) -> str:
    """``evaluate --by parcel``: parcel scores of every labelled date, written to ``OUT/metrics/parcel/``;
    returns the text table. ``parcels`` default to the scene's vector labels file."""
    from tropicrop.evaluation import SPLITS, format_evaluation, write_metrics
    from tropicrop.scene import load_scene

    scene = load_scene(scene_path)
    if parcels is None:
        if scene.manifest.vector_labels is None:
            raise SceneError(scene.manifest.path, "has no vector labels to take the parcels from",
                             "give the field polygons with --parcels")
        parcels = scene.manifest.vector_labels.path
    result = parcel_scores(Path(out), scene, parcels, SPLITS[split], split)
    write_metrics(PredictionLayout(Path(out)).parcel_metrics, result.dates, result.class_names)
    table = format_evaluation(result).replace("    pixels", "   parcels", 1)
    return "parcel level (majority class per parcel)\n" + table
