"""The target grid of ``tropicrop stack``: that of a raster given with ``--like``, else a CRS, a pixel size and
bounds, each defaulting to the inputs' own.

Inputs in degrees (EPSG:4326 downloads, geographic cubes) default to the UTM zone of their centre (as
odc-stac's ``crs="utm"``) at their pixel size converted to metres there, so that a scene's pixels are
square metres whatever the input; ``--crs`` and ``--resolution`` still win.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import CRSError, RasterioIOError
from rasterio.warp import transform

from tropicrop.errors import StackError
from tropicrop.io.rasters import Grid

Bounds = tuple[float, float, float, float]
Footprint = Callable[[CRS], Bounds]  # the inputs' union bounds in a given CRS


def grid_bounds(grid: Grid) -> Bounds:
    """(left, bottom, right, top) of ``grid`` in its CRS."""
    xs = [grid.transform.c, grid.transform.c + grid.transform.a * grid.width]
    ys = [grid.transform.f, grid.transform.f + grid.transform.e * grid.height]
    return min(xs), min(ys), max(xs), max(ys)


def utm_crs(lon: float, lat: float) -> CRS:
    """The WGS 84 UTM zone (EPSG:326zz north, 327zz south) holding the point ``lon``, ``lat`` (degrees)."""
    zone = min(60, max(1, math.floor((lon + 180.0) / 6.0) + 1))
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def utm_of_footprint(native: CRS, footprint: Bounds, resolution: float) -> tuple[CRS, float]:
    """The UTM CRS of the centre of ``footprint`` (in the geographic CRS ``native``) and ``resolution``
    (degrees) converted to metres along x there, rounded to 0.1 m."""
    left, bottom, right, top = footprint
    cx, cy = (left + right) / 2, (bottom + top) / 2
    lons, lats = transform(native, "EPSG:4326", [cx], [cy])
    utm = utm_crs(lons[0], lats[0])
    xs, ys = transform(native, utm, [cx, cx + resolution], [cy, cy])
    return utm, round(math.hypot(xs[1] - xs[0], ys[1] - ys[0]), 1)


def _like_grid(like: str | Path) -> Grid:
    try:
        with rasterio.open(like) as ds:
            if ds.crs is None:
                raise StackError(like, "has no CRS", "--like needs a georeferenced raster")
            return Grid(width=ds.width, height=ds.height, crs=ds.crs, transform=ds.transform)
    except RasterioIOError as exc:
        raise StackError(like, f"not a readable raster ({exc})", "--like takes a GeoTIFF on the target grid") from None


def choose_grid(native_crs: CRS, native_resolution: float, footprint: Footprint, like: str | Path | None = None,
                crs: str | None = None, resolution: float | None = None, bounds: Sequence[float] | None = None) -> Grid:
    """The grid to stack onto.

    Args:
        native_crs: the inputs' CRS (of the first file, or the cube's).
        native_resolution: their pixel size in ``native_crs`` units.
        footprint: the inputs' union bounds in a CRS (for the default bounds).
        like: a raster whose grid is taken whole (the other options are then ignored).
        crs: target CRS; default the native one, or its centre's UTM zone when it is geographic.
        resolution: pixel size in target CRS units; default the native one (in metres for degrees).
        bounds: left, bottom, right, top in the target CRS; default the inputs' footprint.

    Returns:
        A north-up :class:`Grid`.
    """
    if like is not None:
        return _like_grid(like)
    try:
        target_crs = CRS.from_user_input(crs) if crs else native_crs
    except CRSError:
        raise StackError(None, f"--crs {crs!r} is not a known CRS", "use e.g. EPSG:32722") from None
    if native_crs.is_geographic and (crs is None or (resolution is None and not target_crs.is_geographic)):
        utm, metres = utm_of_footprint(native_crs, footprint(native_crs), native_resolution)
        target_crs = target_crs if crs else utm
        resolution = metres if resolution is None else resolution
    if resolution is None:
        if target_crs != native_crs:
            raise StackError(None, f"--crs {crs} differs from the inputs' CRS {native_crs}", "give --resolution too")
        resolution = native_resolution
    if resolution <= 0:
        raise StackError(None, f"--resolution {resolution} must be positive", "give the pixel size in CRS units")
    left, bottom, right, top = bounds if bounds is not None else footprint(target_crs)
    if right <= left or top <= bottom:
        raise StackError(None, f"--bounds {tuple(bounds or ())} are empty",
                         "give left,bottom,right,top with left < right, bottom < top")
    width, height = math.ceil((right - left) / resolution - 1e-9), math.ceil((top - bottom) / resolution - 1e-9)
    return Grid(width=width, height=height, crs=target_crs, transform=Affine(resolution, 0, left, 0, -resolution, top))


def check_overlap(where: str, box: Bounds, grid: Grid) -> None:
    """StackError naming ``where`` when ``box`` (in the grid's CRS) does not overlap ``grid``."""
    left, bottom, right, top = grid_bounds(grid)
    fl, fb, fr, ft = box
    if fr <= left or fl >= right or ft <= bottom or fb >= top:
        raise StackError(where, f"does not overlap the target grid (its bounds in {grid.crs}: {fl:.6g}, {fb:.6g}, "
                         f"{fr:.6g}, {ft:.6g}; target: {left:.6g}, {bottom:.6g}, {right:.6g}, {top:.6g})",
                         "leave it out, or widen --bounds / choose another --like")
