"""Parcels for the page: GeoJSON in EPSG:4326 with, per parcel, the answer of every month (class, share,
probability) when the file is a parcels answer (``OUT/parcels.gpkg``), or its attributes for plain polygons.

Coordinates are kept to 1e-6 degree (about 0.1 m, far below a Sentinel-1 pixel); parcels that would still
take more than their share of the page are simplified, with the tolerance doubled until they fit.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely
from shapely.geometry import mapping

from tropicrop.errors import RunError

ANSWER_COLUMNS = ("parcel", "date", "class", "share", "probability")  # written by tropicrop.parcels.parcel_answers
PRECISION = 1e-6  # degrees
FIX = "give OUT/parcels.gpkg (tropicrop predict --parcels) or field polygons in a vector file with a CRS"


def read_parcel_frame(path: Path) -> gpd.GeoDataFrame:
    """The polygons of ``path`` in EPSG:4326 (empty geometries dropped); RunError naming the file otherwise."""
    try:
        frame = gpd.read_file(path)
    except Exception as exc:  # pyogrio raises several error types for unreadable files
        raise RunError(path, f"is not a readable vector file ({' '.join(str(exc).split())})", FIX) from None
    frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty]
    if frame.empty:
        raise RunError(path, "holds no polygon", FIX)
    if frame.crs is None:
        raise RunError(path, "has no CRS, so the parcels cannot be placed on the map", FIX)
    return frame.to_crs(4326)


def parcel_features(frame: gpd.GeoDataFrame) -> tuple[gpd.GeoSeries, list[dict[str, Any]]]:
    """One geometry and one properties dict per parcel: ``{"attrs": {...}, "months": {date: [class, share,
    probability]}}`` for a parcels answer (one row per parcel and date), ``{"attrs": {...}}`` otherwise."""
    geometry = frame.geometry.name
    if not all(c in frame.columns for c in ANSWER_COLUMNS):
        rows = frame.drop(columns=geometry)
        return frame.geometry.reset_index(drop=True), [{"attrs": _plain(r)} for r in rows.to_dict("records")]
    frame = frame.sort_values(["parcel", "date"], kind="stable")
    geoms, props = [], []
    extra = [c for c in frame.columns if c not in (*ANSWER_COLUMNS, "code", "pixels", geometry)]
    for _, rows in frame.groupby("parcel", sort=True):
        first = rows.iloc[0]
        months = {str(r["date"]): [_value(r["class"]), _value(r["share"]), _value(r["probability"])]
                  for _, r in rows.iterrows()}
        geoms.append(first[geometry])
        props.append({"attrs": {"parcel": int(first["parcel"]), **_plain({c: first[c] for c in extra})}, "months": months})
    return gpd.GeoSeries(geoms, crs=frame.crs), props


def parcels_geojson(path: Path, limit: int, tolerance: float) -> tuple[dict[str, Any], float]:
    """The parcels of ``path`` as a GeoJSON FeatureCollection of at most ``limit`` characters, and the
    simplification tolerance used (0: none; else starting at ``tolerance`` degrees, doubled until it fits)."""
    geoms, props = parcel_features(read_parcel_frame(path))
    geoms = gpd.GeoSeries(shapely.set_precision(geoms.values, PRECISION), crs=geoms.crs)
    used = 0.0
    while True:
        shown = geoms if used == 0 else geoms.simplify(used, preserve_topology=True)
        collection = {"type": "FeatureCollection", "features": [
            {"type": "Feature", "geometry": mapping(g), "properties": p}
            for g, p in zip(shown, props, strict=True) if g is not None and not g.is_empty]}
        if len(json.dumps(collection)) <= limit:
            return collection, used
        if used > 1.0:  # a degree: the parcels cannot be drawn within the page's budget at any useful detail
            raise RunError(path, f"holds too many parcels to show in one page ({len(props)})",
                           "give a subset of the parcels with --parcels")
        used = tolerance if used == 0 else used * 2


def _value(value: Any) -> Any:
    """A JSON-ready scalar: NaN and missing values become None, numpy scalars plain Python."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    if hasattr(value, "item"):
        value = value.item()
        return None if isinstance(value, float) and math.isnan(value) else value
    return value if isinstance(value, (int, float, str, bool)) else str(value)


def _plain(record: dict[Any, Any]) -> dict[str, Any]:
    return {str(k): _value(v) for k, v in record.items()}
