"""Rasters onto Web Mercator, the projection Leaflet draws in, so an image overlay lines up with its footprint.

Leaflet stretches an image overlay linearly between the Web Mercator positions of its south-west and
north-east corners. A raster in any other CRS (UTM for Sentinel-1 scenes) is therefore warped
(:func:`rasterio.warp.reproject`) onto a Web Mercator grid whose extent is exactly the bounding box of the
raster's footprint; the overlay's bounds are that box in EPSG:4326. Rasters are read decimated first (through
the COGs' overviews where they exist), so a large scene is never read at full resolution for a page.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.warp import calculate_default_transform, reproject, transform, transform_bounds

WEB_MERCATOR = CRS.from_epsg(3857)
WGS84 = CRS.from_epsg(4326)
DENSIFY = 21  # points per edge when projecting a footprint (its edges bend in Web Mercator)


@dataclass(frozen=True)
class MercatorGrid:
    """A Web Mercator pixel grid: ``height`` x ``width`` pixels placed by ``transform`` (metres)."""

    width: int
    height: int
    transform: Affine

    @property
    def latlon_bounds(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """``((south, west), (north, east))`` in degrees: Leaflet's ``LatLngBounds`` of the grid."""
        left, top = self.transform @ (0, 0)
        right, bottom = self.transform @ (self.width, self.height)
        lons, lats = transform(WEB_MERCATOR, WGS84, [left, right], [bottom, top])
        return (lats[0], lons[0]), (lats[1], lons[1])


def mercator_grid(crs: CRS, bounds: tuple[float, float, float, float], width: int, height: int,
                  scale: float) -> MercatorGrid:
    """The Web Mercator grid covering the footprint of a ``width`` x ``height`` raster with ``bounds`` in
    ``crs``, at ``1 / scale`` of its resolution (scale >= 1 shrinks it).

    The grid's extent is exactly the footprint's bounding box; its size is GDAL's estimate of the
    resolution-preserving size (:func:`calculate_default_transform`) divided by ``scale``.
    """
    left, bottom, right, top = transform_bounds(crs, WEB_MERCATOR, *bounds, densify_pts=DENSIFY)
    with warnings.catch_warnings():  # rasterio's own use of affine's deprecated ``*`` (rasterio 1.4)
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        _, full_width, full_height = calculate_default_transform(crs, WEB_MERCATOR, width, height, *bounds)
    w = max(1, round((full_width or width) / scale))
    h = max(1, round((full_height or height) / scale))
    return MercatorGrid(w, h, Affine((right - left) / w, 0.0, left, 0.0, -(top - bottom) / h, top))


def decimated_shape(height: int, width: int, scale: float) -> tuple[int, int]:
    """``(h, w)`` of a raster read at ``1 / scale`` of its resolution (at least one pixel)."""
    return max(1, round(height / scale)), max(1, round(width / scale))


def decimated_transform(transform_: Affine, height: int, width: int, shape: tuple[int, int]) -> Affine:
    """The transform of a ``height`` x ``width`` raster read into ``shape`` pixels."""
    return transform_ @ Affine.scale(width / shape[1], height / shape[0])


def warp(data: np.ndarray, src_transform: Affine, src_crs: CRS, grid: MercatorGrid, resampling: Resampling,
         nodata: float | None) -> np.ndarray:
    """``data`` (h, w) or (C, h, w) in ``src_crs`` warped onto ``grid``; pixels off the footprint get ``nodata``
    (0 when None)."""
    fill = 0 if nodata is None else nodata
    shape = (grid.height, grid.width) if data.ndim == 2 else (data.shape[0], grid.height, grid.width)
    out = np.full(shape, fill, dtype=data.dtype)
    reproject(data, out, src_transform=src_transform, src_crs=src_crs, src_nodata=nodata, dst_transform=grid.transform,
              dst_crs=WEB_MERCATOR, dst_nodata=fill, resampling=resampling)
    return out
