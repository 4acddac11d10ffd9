"""What a prediction folder offers the viewer: which months have a map, their classes, and the optional
layers beside them (confidence, parcels answer, per-date metrics), each checked with one clear error."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import rasterio
from rasterio.errors import RasterioIOError

from tropicrop.errors import RunError
from tropicrop.layout import PredictionLayout, stamp
from tropicrop.runfiles import read_class_table

PREDICT = "write maps first: tropicrop predict RUN SCENE --out OUT"
CONFIDENCE_FOLDER = "confidence"  # OUT/confidence/YYYYMMDD.tif: uint8 probability x 100 of the mapped class


@dataclass(frozen=True)
class Month:
    """One mapped date: its class map and, where present, its confidence raster on the same grid."""

    date: dt.date
    map: Path
    confidence: Path | None


@dataclass(frozen=True)
class ViewInputs:
    """Everything the page shows, found in a prediction folder ``root``."""

    root: Path
    names: tuple[str, ...]  # class names, index 0 = no data
    months: tuple[Month, ...]  # oldest first
    parcels: Path | None  # a parcels answer (OUT/parcels.gpkg) or another vector file given with --parcels
    per_date: Path | None  # OUT/metrics/per_date.csv


def find_inputs(out: Path, parcels: Path | None = None) -> ViewInputs:
    """The months, classes and optional layers of prediction folder ``out``.

    Raises:
        RunError: ``out`` is not a folder, holds no map or no classes.json, a map is unreadable or without
            a CRS, or ``parcels`` was given but does not exist.
    """
    out = Path(out)
    layout = PredictionLayout(out)
    if not out.is_dir():
        raise RunError(out, "is not a folder", PREDICT)
    dates = layout.dates()
    if not dates:
        raise RunError(out, "holds no map (no maps/YYYYMMDD.tif)", PREDICT)
    names = read_class_table(layout.classes, PREDICT).names
    months = []
    for date in dates:
        _check_map(layout.map(date))
        confidence = out / CONFIDENCE_FOLDER / f"{stamp(date)}.tif"
        months.append(Month(date, layout.map(date), confidence if confidence.is_file() else None))
    if parcels is not None and not Path(parcels).is_file():
        raise RunError(parcels, "parcels file not found", "give OUT/parcels.gpkg (tropicrop predict --parcels) or field polygons")
    found_parcels = Path(parcels) if parcels is not None else layout.parcels if layout.parcels.is_file() else None
    per_date = layout.metrics / "per_date.csv"
    return ViewInputs(out, names, tuple(months), found_parcels, per_date if per_date.is_file() else None)


def _check_map(path: Path) -> None:
    """A single-band class map with a CRS (the page places it on the Earth); RunError otherwise."""
    try:
        with rasterio.open(path) as ds:
            crs, count = ds.crs, ds.count
    except RasterioIOError as exc:
        raise RunError(path, f"is not a readable GeoTIFF ({' '.join(str(exc).split())})", PREDICT) from None
    if count != 1:
        raise RunError(path, f"has {count} bands, a class map has one", PREDICT)
    if crs is None:
        raise RunError(path, "has no CRS, so it cannot be placed on a map",
                       "give the scene a 'crs' and 'transform' in scene.yaml and predict again")
