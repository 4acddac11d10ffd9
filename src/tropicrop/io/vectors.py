"""Vector parcels (GeoPackage, Shapefile, GeoJSON...) read with geopandas and rasterised onto a scene grid.

Parcels carry reference classes per date or the train/test split as attribute columns. They are read once,
reprojected to the scene's CRS, and burnt into any window of the grid with ``rasterio.features.rasterize``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
from rasterio.features import rasterize
from rasterio.windows import Window

from tropicrop.errors import SceneError
from tropicrop.io.rasters import Grid, check_window

SPLIT_VALUES: dict[str, int] = {"train": 1, "test": 2, "unused": 0, "1": 1, "2": 2, "0": 0}


class VectorLayer:
    """A vector file whose attribute columns can be rasterised onto a grid, window by window."""

    def __init__(self, path: Path, grid: Grid) -> None:
        self.path = path
        self.grid = grid
        if not path.is_file():
            raise SceneError(path, "vector file not found", "check the path in scene.yaml (relative to the scene folder)")

    @cached_property
    def frame(self) -> gpd.GeoDataFrame:
        """The parcels, reprojected to the grid's CRS; read on first use."""
        try:
            gdf = gpd.read_file(self.path)
        except Exception as exc:  # pyogrio raises several error types for unreadable files
            raise SceneError(self.path, f"not a readable vector file ({exc})", "export it as GeoPackage") from None
        if gdf.crs is not None and self.grid.crs is not None and gdf.crs != self.grid.crs:
            gdf = gdf.to_crs(self.grid.crs)
        return gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty]

    def require_column(self, column: str) -> None:
        """Raise :class:`SceneError` if ``column`` is not an attribute of the layer."""
        if column not in self.frame.columns:
            cols = [c for c in self.frame.columns if c != "geometry"]
            raise SceneError(self.path, f"has no column '{column}'", f"columns are: {', '.join(map(str, cols))}")

    def rasterize(self, column: str, to_code: Callable[[Any], int], window: Window | None = None) -> np.ndarray:
        """Burn ``to_code(value)`` of ``column`` into ``window`` as uint8 (h, w); 0 outside every polygon."""
        self.require_column(column)
        w = check_window(self.grid, window)
        shape = (int(w.height), int(w.width))
        gdf = self.frame
        codes = [to_code(v) for v in gdf[column]]
        shapes = [(g, c) for g, c in zip(gdf.geometry, codes, strict=True) if c != 0]
        if not shapes:
            return np.zeros(shape, dtype=np.uint8)
        return rasterize(
            shapes, out_shape=shape, transform=self.grid.window_transform(w), fill=0, dtype="uint8"
        )


def class_code_lookup(classes: Mapping[int, str], path: Path, column: str) -> Callable[[Any], int]:
    """Map a parcel's class value (a name from ``classes`` or a code) to its code; empty -> 0."""
    by_name = {name.lower(): code for code, name in classes.items()}

    def to_code(value: Any) -> int:
        if value is None or (isinstance(value, float) and np.isnan(value)) or value == "":
            return 0
        if isinstance(value, int | np.integer | float) and float(value).is_integer():
            code = int(value)
            if code == 0 or code in classes:
                return code
        elif str(value).strip().lower() in by_name:
            return by_name[str(value).strip().lower()]
        raise SceneError(
            path, f"column '{column}' holds class {value!r}, which is not in 'classes'", "add it to classes in scene.yaml"
        )

    return to_code


def split_code(path: Path, column: str) -> Callable[[Any], int]:
    """Map a parcel's split value (train/test/unused or 1/2/0) to the raster convention 1/2/0."""

    def to_code(value: Any) -> int:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return 0
        key = str(int(value)) if isinstance(value, int | np.integer | float) else str(value).strip().lower()
        if key not in SPLIT_VALUES:
            raise SceneError(path, f"column '{column}' holds {value!r}", "use train / test (or 1 / 2, 0 = unused)")
        return SPLIT_VALUES[key]

    return to_code
