"""Raster sources (GeoTIFF through rasterio/GDAL, the authors' ``.npy`` arrays) and atomic GeoTIFF writing.

Describing a source costs nothing: its file is opened when a window is read, and then kept open in a small
per-thread, per-process cache (:class:`_OpenFiles`), so that neighbouring windows of one file (overlapping
prediction tiles, training patches) reuse GDAL's decompressed blocks instead of opening the file and inflating
its blocks again for every window. The cache never crosses a fork or a thread (GDAL handles are safe in
neither), and a file rewritten on disk is opened anew.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.windows import Window

from tropicrop.errors import SceneError
from tropicrop.io.files import atomic_path
from tropicrop.io.gdal import damage, gdal_messages


@dataclass(frozen=True)
class Grid:
    """The pixel grid shared by every raster of a scene: size, CRS and affine transform."""

    width: int
    height: int
    crs: CRS | None
    transform: Affine

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width)."""
        return self.height, self.width

    @property
    def res(self) -> tuple[float, float]:
        """Pixel size (x, y) in CRS units (metres for UTM)."""
        return abs(self.transform.a), abs(self.transform.e)

    @property
    def georeferenced(self) -> bool:
        """Whether the grid has a CRS (the authors' files have none)."""
        return self.crs is not None

    def full_window(self) -> Window:
        """The window covering the whole grid."""
        return Window(0, 0, self.width, self.height)

    def window_transform(self, window: Window) -> Affine:
        """Affine transform of a window's top-left pixel."""
        return rasterio.windows.transform(window, self.transform)

    def difference(self, other: Grid) -> str | None:
        """Describe how ``other`` differs from this grid, or None if it matches (CRS compared only when both have one)."""
        if (self.width, self.height) != (other.width, other.height):
            return f"size {other.width}x{other.height} differs from {self.width}x{self.height}"
        if self.crs is not None and other.crs is not None and self.crs != other.crs:
            return f"CRS {other.crs} differs from {self.crs}"
        if self.crs is not None and other.crs is not None and not self.transform.almost_equals(other.transform):
            return f"transform {tuple(other.transform)[:6]} differs from {tuple(self.transform)[:6]}"
        return None


def check_window(grid: Grid, window: Window | None) -> Window:
    """Return ``window`` (or the full grid) after checking that it lies inside the grid."""
    if window is None:
        return grid.full_window()
    w = Window(int(window.col_off), int(window.row_off), int(window.width), int(window.height))
    if w.col_off < 0 or w.row_off < 0 or w.col_off + w.width > grid.width or w.row_off + w.height > grid.height:
        raise ValueError(f"window {w} is outside the {grid.width}x{grid.height} grid")
    return w


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        yield


def _cause(exc: BaseException) -> str:
    """What went wrong, in GDAL's words: the deepest error of rasterio's chain (its own text is often "Read
    failed. See previous exception for details"; libtiff's first complaint names the missing bytes)."""
    deepest = exc
    while (deepest.__cause__ or deepest.__context__) is not None:
        deepest = deepest.__cause__ or deepest.__context__  # type: ignore[assignment]
    text = str(deepest).replace("\n", " ")
    return text if deepest is exc else f"GDAL: {text}"


READ_CACHE_BYTES = 128 * 2**20
"""GDAL's block cache while a source reads. With files kept open GDAL keeps their inflated blocks up to its
cache limit, by default 5 % of the machine's memory (1.2 GB here, 6 GB on a 128 GB server), so a prediction's
memory would grow with the scene and the machine. ``python benchmarks/reading.py``, 23 dates: a 1024² scene
read in 0.75 s (2.97 s with a file opened per window), a 2048² one in 4.81 s (11.10 s), both adding about
148 MiB; without the bound the 1024² scene took 0.67 s and kept every block (about 185 MB more)."""


class _OpenFiles(threading.local):
    """Open rasterio datasets of this thread in this process, the most recently read last, at most
    :attr:`limit` (the oldest is closed first).

    Keyed by path, inode, size and modification time: a file replaced (written elsewhere and renamed over,
    as every writer here does) or rewritten since it was opened is opened again (a truncated file then fails
    to read, as it should). After a fork the child starts with an empty cache. Figures: :data:`READ_CACHE_BYTES`.
    """

    limit = 64

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.datasets: OrderedDict[tuple[str, int, int, int], Any] = OrderedDict()

    def get(self, path: Path) -> Any:
        """The open dataset of ``path`` (opened now if needed); raises what ``rasterio.open`` raises."""
        if self.pid != os.getpid():  # forked: the parent's handles share its file offsets; never use them
            self.pid, self.datasets = os.getpid(), OrderedDict()
        stat = path.stat()
        key = (str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns)
        ds = self.datasets.get(key)
        if ds is not None:
            self.datasets.move_to_end(key)
            return ds
        self.drop(path)  # an earlier version of the file, if any
        ds = rasterio.open(path)  # warnings: RasterSource.read reads under _quiet
        self.datasets[key] = ds
        while len(self.datasets) > self.limit:
            self.datasets.popitem(last=False)[1].close()
        return ds

    def drop(self, path: Path) -> None:
        """Close and forget ``path``'s dataset (after a failed read: the next read opens it again)."""
        for key in [k for k in self.datasets if k[0] == str(path)]:
            self.datasets.pop(key).close()


_OPEN_FILES = _OpenFiles()


class RasterSource:
    """A multi-band raster file read window by window: ``.tif`` (any GDAL format) or ``.npy`` (H, W, C).

    ``nodata`` is the value that marks missing pixels (from the file, or from the manifest for ``.npy``).
    """

    def __init__(self, path: Path, nodata: float | None = None) -> None:
        self.path = path
        if not path.is_file():
            raise SceneError(path, "file not found", "check the path in scene.yaml (relative to the scene folder)")
        self.is_npy = path.suffix.lower() == ".npy"
        if self.is_npy:
            arr = self._npy()
            if arr.ndim == 2:
                h, w, c = arr.shape[0], arr.shape[1], 1
            elif arr.ndim == 3:
                h, w, c = arr.shape
            else:
                raise SceneError(path, f"array has shape {arr.shape}", "an .npy image must be (H, W) or (H, W, bands)")
            self.count = c
            self.dtype = str(arr.dtype)
            self.nodata = nodata
            self.grid = Grid(width=w, height=h, crs=None, transform=Affine.identity())
        else:
            with gdal_messages() as messages:
                try:
                    with _quiet(), rasterio.open(path) as ds:
                        self.count = ds.count
                        self.dtype = ds.dtypes[0]
                        file_nodata = ds.nodata
                        self.grid = Grid(width=ds.width, height=ds.height, crs=ds.crs, transform=ds.transform)
                except RasterioIOError as exc:
                    raise SceneError(path, f"not a readable raster ({_cause(exc)})",
                                     "re-export it as a GeoTIFF") from None
            damaged = damage(messages)  # a truncated TIFF may open, minus the tags it lost (its CRS, its transform)
            if damaged is not None:
                raise SceneError(path, f"damaged or truncated raster (GDAL: {damaged.removeprefix(path.name + ': ')})",
                                 "re-export it as a GeoTIFF")
            self.nodata = nodata if nodata is not None else file_nodata

    def _npy(self) -> np.ndarray:
        try:
            return np.load(self.path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise SceneError(self.path, f"not a readable .npy array ({exc})", "re-save it with numpy.save") from None

    def read(self, window: Window | None = None, bands: list[int] | None = None) -> np.ndarray:
        """Read ``window`` as an array (C, h, w) in the file's dtype; ``bands`` are 0-based band indices."""
        w = check_window(self.grid, window)
        r0, c0, h, wd = int(w.row_off), int(w.col_off), int(w.height), int(w.width)
        if self.is_npy:
            arr = self._npy()
            block = arr[r0 : r0 + h, c0 : c0 + wd]
            block = block[None] if block.ndim == 2 else np.moveaxis(block, -1, 0)
            if bands is not None:
                block = block[bands]
            return np.array(block)
        indexes = [b + 1 for b in bands] if bands is not None else None
        with gdal_messages() as messages:
            try:
                with _quiet(), rasterio.Env(GDAL_CACHEMAX=READ_CACHE_BYTES):
                    out: np.ndarray = _OPEN_FILES.get(self.path).read(indexes=indexes, window=w)
            except OSError as exc:  # rasterio's read errors, or the file removed since it was described
                _OPEN_FILES.drop(self.path)
                raise SceneError(self.path, f"could not read pixels ({_cause(exc)})",
                                 "the file may be truncated; re-export it") from None
        damaged = damage(messages)  # GDAL warned of missing bytes yet returned pixels: they cannot be trusted
        if damaged is not None:
            _OPEN_FILES.drop(self.path)
            raise SceneError(self.path, f"could not read pixels (GDAL: {damaged})", "the file may be truncated; re-export it")
        return out

    def nodata_mask(self, block: np.ndarray) -> np.ndarray:
        """Bool mask (h, w) of pixels that hold ``nodata`` in any band of ``block`` (C, h, w)."""
        if self.nodata is None:
            return np.zeros(block.shape[1:], dtype=bool)
        if np.isnan(self.nodata):
            return np.isnan(block).any(axis=0)
        return (block == self.nodata).any(axis=0)


def write_geotiff(
    path: Path,
    array: np.ndarray,
    crs: CRS | str | None,
    transform: Affine,
    *,
    nodata: float | None = None,
    band_names: list[str] | None = None,
    colormap: dict[int, tuple[int, int, int, int]] | None = None,
    **profile: Any,
) -> Path:
    """Write ``array`` (C, H, W) or (H, W) as a tiled, compressed GeoTIFF, atomically.

    Extra keyword arguments override the creation profile (e.g. ``compress="zstd"``).
    """
    data = array[None] if array.ndim == 2 else array
    count, height, width = data.shape
    prof: dict[str, Any] = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": count,
        "dtype": data.dtype.name,
        "crs": crs,
        "transform": transform,
        "nodata": nodata,
        "compress": "deflate",
    }
    if width >= 256 and height >= 256:
        prof.update(tiled=True, blockxsize=256, blockysize=256)
    prof.update(profile)
    with atomic_path(path) as tmp, _quiet(), rasterio.open(tmp, "w", **prof) as ds:
        ds.write(data)
        if band_names:
            for i, name in enumerate(band_names, start=1):
                ds.set_band_description(i, name)
        if colormap:
            ds.write_colormap(1, colormap)
    return path
