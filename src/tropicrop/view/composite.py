"""The radar background of a month: a VV / VH false-colour composite of the scene's image of that date.

Red = VV, green = VH, blue = VV - VH (the usual Sentinel-1 dual-polarisation composite: bare soil and
water dark, dense canopy green, sparse crops magenta), each stretched over a FIXED range of dB so that one
colour means the same backscatter in every month (a per-image stretch would make months incomparable).
A scene of another band order is found by band name; a scene without both VV and VH shows its first band
in grey. Images are read decimated by GDAL (averaged over the pixels each output pixel covers, through
overviews where the files have them), never at full resolution.
"""

from __future__ import annotations

import datetime as dt
import warnings

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning

from tropicrop.errors import SceneError
from tropicrop.io.rasters import Grid
from tropicrop.scene import Scene, to_db
from tropicrop.view.mercator import MercatorGrid, decimated_shape, decimated_transform, warp

VV_DB = (-25.0, 0.0)
VH_DB = (-30.0, -5.0)
RATIO_DB = (0.0, 15.0)


def check_same_grid(scene: Scene, grid: Grid, path: object) -> None:
    """SceneError unless ``scene`` lies on the maps' ``grid`` (the composite is drawn under them pixel for pixel)."""
    difference = scene.grid.difference(grid)
    if difference is not None:
        raise SceneError(scene.manifest.path, f"is not on the grid of the maps in {path} ({difference})",
                         "give the scene the maps were predicted from")


def scene_db(scene: Scene, date: dt.date, shape: tuple[int, int]) -> np.ndarray | None:
    """The scene's image of ``date`` in dB (C, h, w) float32 read into ``shape`` pixels, NaN where no data; None
    when the scene has no acquisition that date."""
    if date not in scene.dates or scene.images[scene.date_index(date)] is None:
        return None
    source = scene.images[scene.date_index(date)]
    assert source is not None
    if source.is_npy:  # the authors' layout: small arrays, read whole and strided
        full = scene.read_images(dates=[date])[0]
        rows = np.linspace(0, full.shape[1] - 1, shape[0]).round().astype(int)
        cols = np.linspace(0, full.shape[2] - 1, shape[1]).round().astype(int)
        return np.ascontiguousarray(full[:, rows][:, :, cols])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(source.path) as ds:
            data = ds.read(out_shape=(ds.count, *shape), resampling=Resampling.average, masked=True)
    values = data.filled(np.nan).astype(np.float32)
    if source.nodata is not None and not np.isnan(source.nodata):
        values[values == source.nodata] = np.nan
    values[~np.isfinite(values)] = np.nan
    return to_db(values) if scene.units == "linear" else values


def false_colour(db: np.ndarray, bands: tuple[str, ...]) -> np.ndarray:
    """(3, h, w) uint8 from dB bands (C, h, w): VV, VH, VV - VH stretched over fixed ranges; grey from the
    first band when the scene lacks VV or VH. No-data pixels are black."""
    upper = [b.upper() for b in bands]
    if "VV" in upper and "VH" in upper:
        vv, vh = db[upper.index("VV")], db[upper.index("VH")]
        channels = [_stretch(vv, VV_DB), _stretch(vh, VH_DB), _stretch(vv - vh, RATIO_DB)]
    else:
        channels = [_stretch(db[0], VV_DB)] * 3
    return np.stack(channels)


def _stretch(values: np.ndarray, limits: tuple[float, float]) -> np.ndarray:
    low, high = limits
    scaled = np.clip((values - low) / (high - low), 0.0, 1.0) * 255.0
    return np.where(np.isfinite(scaled), scaled, 0.0).round().astype(np.uint8)


def composite(scene: Scene, date: dt.date, grid: MercatorGrid, scale: float) -> np.ndarray | None:
    """The false-colour composite (3, h, w) uint8 of ``date`` warped onto ``grid``, read at ``1 / scale`` of the
    scene's resolution; None when the scene has no image that date."""
    g = scene.grid
    shape = decimated_shape(g.height, g.width, scale)
    db = scene_db(scene, date, shape)
    if db is None or g.crs is None:
        return None
    src_transform = decimated_transform(g.transform, g.height, g.width, shape)
    warped = warp(db, src_transform, g.crs, grid, Resampling.bilinear, np.nan)
    return false_colour(warped, tuple(scene.bands))
