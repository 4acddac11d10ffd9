"""One month's overlays for the page: its class map, confidence and radar composite, warped to Web Mercator
at a common scale and encoded as data URIs, with the footprint they cover in EPSG:4326."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning

from tropicrop.io.rasters import Grid
from tropicrop.scene import Scene
from tropicrop.view.composite import composite
from tropicrop.view.images import classes_png, composite_jpeg, confidence_png
from tropicrop.view.inputs import Month
from tropicrop.view.mercator import MercatorGrid, decimated_shape, decimated_transform, mercator_grid, warp


@dataclass(frozen=True)
class MonthLayers:
    """The encoded overlays of one month; ``bounds`` is ``((south, west), (north, east))`` in degrees."""

    date: str  # ISO date
    bounds: tuple[tuple[float, float], tuple[float, float]]
    size: tuple[int, int]  # (width, height) of the overlays in pixels
    classes: str
    confidence: str | None
    composite: str | None

    def encoded_bytes(self) -> int:
        """Characters the month's images add to the page."""
        return sum(len(uri) for uri in (self.classes, self.confidence, self.composite) if uri is not None)

    def to_json(self) -> dict[str, object]:
        """The month as the page's script reads it."""
        return {"date": self.date, "bounds": self.bounds, "size": self.size, "classes": self.classes,
                "confidence": self.confidence, "composite": self.composite}


def map_grid(month: Month) -> Grid:
    """The pixel grid of a month's class map."""
    with rasterio.open(month.map) as ds:
        return Grid(width=ds.width, height=ds.height, crs=ds.crs, transform=ds.transform)


def month_layers(month: Month, colors: Mapping[int, tuple[int, int, int, int]], scale: float,
                 scene: Scene | None = None) -> MonthLayers:
    """The overlays of ``month`` at ``1 / scale`` of the map's resolution (scale >= 1).

    The class map is read decimated with the mode of its classes (GDAL's ``mode``, through the COG's
    overviews made the same way) and warped with nearest neighbour, so no colour is invented at class
    edges; confidence is averaged; the composite is read from ``scene`` when given.
    """
    with rasterio.open(month.map) as ds:
        grid = mercator_grid(ds.crs, tuple(ds.bounds), ds.width, ds.height, scale)
        codes = _read_warped(ds, grid, scale, Resampling.mode, Resampling.nearest)
    confidence = None
    if month.confidence is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(month.confidence) as ds:
                percent = _read_warped(ds, grid, scale, Resampling.average, Resampling.bilinear)
                off = ds.nodata if ds.nodata is not None else None
        valid = codes > 0
        if off is not None:
            valid &= percent != off
        confidence = confidence_png(percent, valid)
    background = None
    if scene is not None:
        rgb = composite(scene, month.date, grid, scale)
        background = None if rgb is None else composite_jpeg(rgb)
    return MonthLayers(month.date.isoformat(), grid.latlon_bounds, (grid.width, grid.height), classes_png(codes, colors),
                       confidence, background)


def _read_warped(ds: rasterio.io.DatasetReader, grid: MercatorGrid, scale: float, read_with: Resampling,
                 warp_with: Resampling) -> np.ndarray:
    """Band 1 of ``ds`` read at ``1 / scale`` of its resolution and warped onto ``grid``."""
    shape = decimated_shape(ds.height, ds.width, scale)
    data = ds.read(1, out_shape=shape, resampling=read_with)
    nodata = ds.nodata if ds.nodata is not None else 0
    return warp(data, decimated_transform(ds.transform, ds.height, ds.width, shape), ds.crs, grid, warp_with, nodata)
