"""Labels and split of a stacked scene from field polygons: which column holds the class of which month.

``tropicrop stack --parcels parcels.gpkg --label-columns 2019-10=crop_oct,... --split-column split`` copies
the parcels into the scene folder and references them in scene.yaml as vector labels and split (the
manifest's own format, rasterised onto the grid when read). Class names are taken from the label columns
when they hold names; columns of integer codes need their names (``--classes 1=Soybean,2=Maize``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from tropicrop.errors import StackError
from tropicrop.io.acquisitions import Acquisition, parse_month
from tropicrop.io.manifest import VectorSource

PARCELS_NAME = "parcels.gpkg"


@dataclass
class LabelPlan:
    """Parcels read once, the label column of each month, the split column and the class table."""

    path: Path
    frame: gpd.GeoDataFrame
    columns: dict[tuple[int, int], str]
    split_column: str | None
    classes: dict[int, str]

    def check_dates(self, dates: Mapping[tuple[int, int], dt.date],
                    monthly: Mapping[tuple[int, int], Sequence[Acquisition]]) -> None:
        """StackError naming the parcels file for a label month outside the stack or without acquisition."""
        for month, column in self.columns.items():
            label = f"{month[0]}-{month[1]:02d}"
            if month not in dates:
                raise StackError(self.path, f"label column '{column}' is for {label}, outside the stacked months",
                                 "widen --start / --end, or drop that label column")
            if not monthly[month]:
                raise StackError(self.path, f"label column '{column}' is for {label}, which has no acquisition",
                                 "a month without image cannot be labelled; drop that label column")

    def write(self, folder: Path, dates: Mapping[tuple[int, int], dt.date]
              ) -> tuple[VectorSource | None, VectorSource | None, dict[int, str]]:
        """Copy the parcels into ``folder``; return the manifest's vector labels, vector split and classes."""
        path = folder / PARCELS_NAME
        self.frame.to_file(path, driver="GPKG")
        labels = VectorSource(path=path, columns={dates[m]: c for m, c in sorted(self.columns.items())}) if self.columns else None
        split = VectorSource(path=path, column=self.split_column) if self.split_column else None
        return labels, split, dict(self.classes)


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value == ""


def _classes_from_columns(path: Path, frame: gpd.GeoDataFrame, columns: Sequence[str],
                          given: Mapping[int, str] | None) -> dict[int, str]:
    values = [v for c in columns for v in frame[c] if not _is_missing(v)]
    numeric = [v for v in values if isinstance(v, int | float | np.integer | np.floating)]
    if given:
        return dict(sorted(given.items()))
    if numeric:
        codes = sorted({int(v) for v in numeric if int(v) != 0})
        raise StackError(path, f"label columns hold class codes {codes[:10]} without names",
                         "name them: --classes 1=Soybean,2=Maize,...")
    names = sorted({str(v).strip() for v in values})
    if not names:
        raise StackError(path, f"label columns {list(columns)} hold no class", "check the column names")
    return {code: name for code, name in enumerate(names, start=1)}


def plan_labels(path: Path, label_columns: Mapping[str, str], split_column: str | None,
                classes: Mapping[int, str] | None = None) -> LabelPlan:
    """Read the parcels ``path`` and check the label columns (``YYYY-MM`` -> column) and split column."""
    if not path.is_file():
        raise StackError(path, "parcels file not found", "give a vector file (GeoPackage, Shapefile, GeoJSON)")
    try:
        frame = gpd.read_file(path)
    except Exception as exc:  # pyogrio raises several error types for unreadable files
        raise StackError(path, f"not a readable vector file ({exc})", "export it as GeoPackage") from None
    if frame.crs is None:
        raise StackError(path, "has no CRS", "set the parcels' CRS (e.g. in QGIS) so they can be placed on the grid")
    wanted = [*label_columns.values(), *([split_column] if split_column else [])]
    for column in wanted:
        if column not in frame.columns:
            cols = [c for c in frame.columns if c != "geometry"]
            raise StackError(path, f"has no column '{column}'", f"columns are: {', '.join(map(str, cols))}")
    columns = {parse_month(d, "--label-columns date"): c for d, c in label_columns.items()}
    table = _classes_from_columns(path, frame, list(columns.values()), classes) if columns else dict(classes or {})
    if columns:
        by_name = {n.lower() for n in table.values()}
        for column in columns.values():
            for value in frame[column]:
                if _is_missing(value):
                    continue
                known = (int(value) in table or int(value) == 0) if isinstance(value, int | float | np.integer | np.floating) \
                    else str(value).strip().lower() in by_name
                if not known:
                    raise StackError(path, f"column '{column}' holds class {value!r}, not in {sorted(table.values())}",
                                     "add it to --classes")
    keep = [*dict.fromkeys(wanted), "geometry"]
    return LabelPlan(path=path, frame=gpd.GeoDataFrame(pd.DataFrame(frame[keep]), geometry="geometry", crs=frame.crs),
                     columns=columns, split_column=split_column, classes=table)
