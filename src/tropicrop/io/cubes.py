"""Datacubes as openEO, odc-stac, stackstac or xarray users hold them: many acquisitions in one netCDF file,
Zarr store or in-memory :class:`xarray.Dataset`, stacked like per-acquisition files.

A cube is read with xarray (CF decoding: ``scale_factor``/``add_offset``, ``_FillValue``, ``_Unsigned``) and
rioxarray (the grid from the grid-mapping variable's ``crs_wkt``/``spatial_ref``, or a ``spatial_ref``
coordinate). Its time axis is the acquisitions (each composited into its month as a file would be); VV and
VH are variables named for them in any case with any prefix or suffix (``VV``, ``S1-SIGMA0-VV``,
``sigma0_vv``) or labels of a ``bands`` dimension. Units are detected as for files; integers that no scale
factor turns into backscatter are refused unless ``units`` names their packing (``gfmap-uint16``).

Blocks are read one at a time (``isel`` on the lazily opened arrays): on the cube's own grid directly, on
any other grid through :func:`rasterio.warp.reproject` of the source window around the block, so memory is
bounded by a block as with files (``benchmarks/cube_memory.py``).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask
import netCDF4
import numpy as np
import pandas as pd
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.warp import reproject, transform_bounds
from rasterio.windows import Window
from rioxarray.exceptions import MissingSpatialDimensionError

from tropicrop.errors import StackError
from tropicrop.io.acquisitions import POLARISATIONS, Acquisition, BandRef, OpenMonth, check_bands
from tropicrop.io.grids import Bounds, choose_grid
from tropicrop.io.rasters import Grid
from tropicrop.io.units import GFMAP, check_units, gfmap_to_db, to_linear_power, units_from_values

CUBE_SUFFIXES = (".nc", ".nc4", ".netcdf", ".cdf", ".h5", ".zarr")
BAND_DIMS = ("bands", "band")
POL_NAME = re.compile(r"(?<![A-Za-z0-9])(VV|VH)(?![A-Za-z0-9])", re.IGNORECASE)
UNITS_SAMPLE = 256  # side of the decimated read used to tell dB from linear power
SPATIAL_DIMS = (("lat", "lon"), ("latitude", "longitude"), ("northing", "easting"), ("Y", "X"))  # besides rioxarray's
NETCDF_CHUNK_CACHE_MB = 4  # per variable while a cube is open (benchmarks/cube_memory.py)
HALO = 2  # source pixels read around a block's footprint for resampling kernels


def is_cube(path: Path) -> bool:
    """Whether ``path`` is a netCDF file or a Zarr store (by suffix, or a folder with Zarr metadata)."""
    if path.suffix.lower() in CUBE_SUFFIXES:
        return True
    return path.is_dir() and any((path / f).exists() for f in (".zgroup", ".zmetadata", "zarr.json"))


@contextmanager
def open_cube(path: Path) -> Iterator[xr.Dataset]:
    """``path`` opened lazily (nothing read but metadata) and closed afterwards; StackError if unreadable.

    While it is open, netCDF's per-variable chunk cache is :data:`NETCDF_CHUNK_CACHE_MB` (the library's
    default, 64 MiB a variable, filled with decompressed chunks as a large cube is read: +56 MiB on a 2048^2
    cube), then the previous default is restored.
    """
    if not path.exists():
        raise StackError(path, "not found", "give a netCDF file or a Zarr store that exists")
    previous = netCDF4.get_chunk_cache()
    netCDF4.set_chunk_cache(NETCDF_CHUNK_CACHE_MB * 2**20, *previous[1:])
    try:
        try:
            if path.suffix.lower() == ".zarr" or path.is_dir():
                dataset = xr.open_zarr(path, decode_coords="all")
            else:
                dataset = xr.open_dataset(path, decode_coords="all", cache=False)
        except Exception as exc:  # netCDF4, h5netcdf and zarr raise many error types for unreadable files
            raise StackError(path, f"not a readable netCDF/Zarr cube ({type(exc).__name__}: {exc})",
                             "re-download it, or export it as netCDF (CF) or Zarr") from None
        try:
            yield dataset
        finally:
            dataset.close()
    finally:
        netCDF4.set_chunk_cache(*previous)


@dataclass(frozen=True)
class CubeBand:
    """Where one polarisation lives in a cube: a variable, and its index on the bands dimension if any."""

    variable: str
    index: int | None = None


@dataclass
class Cube:
    """A cube's layout: dimensions, the variable of each polarisation, its grid and declared no-data."""

    data: xr.Dataset
    where: str
    time_dim: str
    y_dim: str
    x_dim: str
    band_dim: str | None
    bands: dict[str, CubeBand]
    crs: CRS
    transform: Affine
    width: int
    height: int

    @property
    def bounds(self) -> Bounds:
        """(left, bottom, right, top) in :attr:`crs`."""
        xs = [self.transform.c, self.transform.c + self.transform.a * self.width]
        ys = [self.transform.f, self.transform.f + self.transform.e * self.height]
        return min(xs), min(ys), max(xs), max(ys)

    def read(self, pol: str, time: int, rows: slice, cols: slice, units: str) -> np.ndarray:
        """Values (h, w) float32 of ``pol`` at time index ``time`` on native ``rows``/``cols``, in ``units``
        decoded (GFMap digital numbers become dB), declared no-data as NaN."""
        band = self.bands[pol]
        index: dict[str, Any] = {self.time_dim: time, self.y_dim: rows, self.x_dim: cols}
        if band.index is not None and self.band_dim is not None:
            index[self.band_dim] = band.index
        array = self.data[band.variable].isel(index)
        with dask.config.set(scheduler="synchronous"):
            raw = np.asarray(array.transpose(self.y_dim, self.x_dim).values)
        if units == GFMAP:
            return gfmap_to_db(raw)
        values = raw.astype(np.float32)
        nodata = array.rio.nodata
        if nodata is not None and np.isfinite(nodata):
            values[raw == nodata] = np.nan
        return values


def _as_coords(dataset: xr.Dataset) -> xr.Dataset:
    """Grid-mapping variables (a ``crs`` data variable) as coordinates, so every band carries its CRS."""
    names = {v.attrs.get("grid_mapping") or v.encoding.get("grid_mapping") for v in dataset.data_vars.values()}
    return dataset.set_coords([n for n in names if n and n in dataset.data_vars])


def _find_bands(data: xr.Dataset, where: str, wanted: Sequence[str]) -> tuple[dict[str, CubeBand], str | None]:
    """The variable (and bands-dimension index) of each wanted polarisation."""
    found: dict[str, list[CubeBand]] = {p: [] for p in POLARISATIONS}
    band_dim = next((d for d in BAND_DIMS if d in data.dims), None)
    for name, variable in data.data_vars.items():
        if band_dim is not None and band_dim in variable.dims:
            labels = [str(v) for v in data[band_dim].values] if band_dim in data.coords else []
            for i, label in enumerate(labels):
                for match in POL_NAME.findall(label):
                    found[match.upper()].append(CubeBand(str(name), i))
        else:
            for match in POL_NAME.findall(str(name)):
                found[match.upper()].append(CubeBand(str(name), None))
    bands = {}
    for pol in wanted:
        if len(found[pol]) > 1:
            raise StackError(where, f"holds several {pol} variables ({', '.join(b.variable for b in found[pol])})",
                             "keep one per polarisation (drop the others from the dataset)")
        if not found[pol]:
            others = [p for p in POLARISATIONS if found[p]]
            hint = f", or pass --bands {others[0]} for a single-polarisation scene" if others else ""
            raise StackError(where, f"has no {pol} variable (variables: {', '.join(map(str, data.data_vars))})",
                             f"name them VV/VH (any case, e.g. S1-SIGMA0-VV) or label a 'bands' dimension{hint}")
        bands[pol] = found[pol][0]
    return bands, band_dim


def describe_cube(dataset: xr.Dataset, where: str, bands: Sequence[str] = POLARISATIONS) -> Cube:
    """The layout of ``dataset`` for the polarisations ``bands``; StackError naming ``where`` if it has no
    VV/VH variable, no time dimension, no x/y dimensions or no CRS."""
    data = _as_coords(dataset)
    found, band_dim = _find_bands(data, where, check_bands(bands))
    first = data[found[next(iter(found))].variable]
    try:
        y_dim, x_dim = first.rio.y_dim, first.rio.x_dim
    except MissingSpatialDimensionError:
        named = [(y, x) for y, x in SPATIAL_DIMS if y in first.dims and x in first.dims]
        if not named:
            raise StackError(where, f"variable {first.name} has no x/y dimensions (dims {first.dims})",
                             "name the spatial dimensions x/y (or lon/lat)") from None
        y_dim, x_dim = named[0]
        first = first.rio.set_spatial_dims(x_dim=x_dim, y_dim=y_dim)
    others = [str(d) for d in first.dims if d not in (y_dim, x_dim, band_dim)]
    if len(others) != 1 or not np.issubdtype(data[others[0]].dtype, np.datetime64):
        raise StackError(where, f"variable {first.name} has no time dimension of dates (dims {first.dims})",
                         "give the cube one time dimension with CF dates (units 'days since ...')")
    crs = first.rio.crs
    if crs is None:
        raise StackError(where, "has no CRS (no grid-mapping variable with crs_wkt/spatial_ref, no spatial_ref)",
                         "write it, e.g. dataset.rio.write_crs('EPSG:32631') or a CF grid mapping")
    with warnings.catch_warnings():  # rioxarray composes affines with `*`, which affine 3 marks as pending removal
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        transform = first.rio.transform(recalc=True)
    if transform.b or transform.d:
        raise StackError(where, "has a rotated grid", "resample it onto a north-up grid first")
    return Cube(data=data, where=where, time_dim=others[0], y_dim=y_dim, x_dim=x_dim, band_dim=band_dim, bands=found,
                crs=CRS.from_user_input(crs), transform=transform, width=data.sizes[x_dim], height=data.sizes[y_dim])


def cube_units(cube: Cube, units: str | None) -> str:
    """``units`` if given, else detected from a decimated read of VV (or the one band) at a few times."""
    check_units(units)
    if units is not None:
        return units
    pol = next(iter(cube.bands))
    variable = cube.data[cube.bands[pol].variable]
    step_y, step_x = max(1, cube.height // UNITS_SAMPLE), max(1, cube.width // UNITS_SAMPLE)
    times = sorted({0, cube.data.sizes[cube.time_dim] // 2, cube.data.sizes[cube.time_dim] - 1})
    sample = np.concatenate([cube.read(pol, t, slice(None, None, step_y), slice(None, None, step_x), "dB").ravel()
                             for t in times])
    stored = np.dtype(variable.encoding.get("dtype", variable.dtype))
    scaled = "scale_factor" in variable.encoding or "add_offset" in variable.encoding
    packed = bool(np.issubdtype(variable.dtype, np.integer) or (np.issubdtype(stored, np.integer) and not scaled))
    return units_from_values(sample.astype(np.float64), f"{cube.where} ({cube.bands[pol].variable})", packed)


def cube_acquisitions(cube: Cube, units: str) -> list[Acquisition]:
    """One :class:`Acquisition` per time step; its :class:`BandRef` ``href`` is ``where:variable`` and its
    ``band`` the time index (cubes are read by :class:`CubeMonth`, not by GDAL)."""
    times = pd.to_datetime(cube.data[cube.time_dim].values)
    acquisitions = []
    for k, time in enumerate(times):
        refs = {p: BandRef(f"{cube.where}:{b.variable}", k) for p, b in cube.bands.items()}
        acquisitions.append(Acquisition(name=f"{cube.where}[{time:%Y-%m-%dT%H:%M:%S}]", time=time.to_pydatetime(),
                                        vv=refs.get("VV"), vh=refs.get("VH"), units=units))
    return sorted(acquisitions, key=lambda a: (a.time, a.name))


class CubeMonth:
    """A month's time steps of a cube, read block by block onto the target grid."""

    def __init__(self, cube: Cube, acquisitions: Sequence[Acquisition], grid: Grid, resampling: str) -> None:
        self.cube, self.acquisitions, self.grid = cube, list(acquisitions), grid
        self.resampling = Resampling[resampling]
        self.offset = _native_offset(cube, grid)

    def __enter__(self) -> CubeMonth:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def read(self, window: Window) -> np.ndarray:
        """Linear power (k, C, h, w) float32 of every time step's C bands on ``window``; NaN = no data."""
        bands = self.acquisitions[0].bands
        height, width = int(window.height), int(window.width)
        out = np.full((len(self.acquisitions), len(bands), height, width), np.nan, dtype=np.float32)
        for k, acq in enumerate(self.acquisitions):
            for b, (pol, ref) in enumerate(zip(bands, acq.refs, strict=True)):
                values = self._values(pol, ref.band, window, acq.units)
                out[k, b] = to_linear_power(values, "dB" if acq.units == GFMAP else acq.units)
        return out

    def _values(self, pol: str, time: int, window: Window, units: str) -> np.ndarray:
        """The block's values in the cube's (decoded) unit on the target grid, NaN where none."""
        height, width = int(window.height), int(window.width)
        dst = np.full((height, width), np.nan, dtype=np.float32)
        if self.offset is not None:  # the target grid is the cube's own (or a pixel-aligned part of it)
            r0, c0 = int(window.row_off) + self.offset[0], int(window.col_off) + self.offset[1]
            rows = slice(max(r0, 0), min(r0 + height, self.cube.height))
            cols = slice(max(c0, 0), min(c0 + width, self.cube.width))
            if rows.stop > rows.start and cols.stop > cols.start:
                dst[rows.start - r0:rows.stop - r0, cols.start - c0:cols.stop - c0] = \
                    self.cube.read(pol, time, rows, cols, units)
            return dst
        block = self.grid.transform @ Affine.translation(int(window.col_off), int(window.row_off))
        source = _source_window(self.cube, self.grid.crs, block, height, width)
        if source is None:
            return dst
        rows, cols = source
        src = self.cube.read(pol, time, rows, cols, units)
        reproject(src, dst, src_transform=self.cube.transform @ Affine.translation(cols.start, rows.start),
                  src_crs=self.cube.crs, dst_transform=block, dst_crs=self.grid.crs, resampling=self.resampling,
                  src_nodata=np.nan, dst_nodata=np.nan)
        return dst


def _native_offset(cube: Cube, grid: Grid) -> tuple[int, int] | None:
    """(row, col) of the grid's origin on the cube's pixels when the grid is a pixel-aligned window of the
    cube's own grid (same CRS and pixel size), else None (the cube is resampled)."""
    t, g = cube.transform, grid.transform
    if grid.crs != cube.crs or not (np.isclose(t.a, g.a) and np.isclose(t.e, g.e) and t.e < 0):
        return None
    col, row = (g.c - t.c) / t.a, (g.f - t.f) / t.e
    if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
        return None
    return round(row), round(col)


def _source_window(cube: Cube, crs: CRS | None, block: Affine, height: int, width: int) -> tuple[slice, slice] | None:
    """The cube's rows and columns under a target block (with a halo for the resampling kernel), or None."""
    left, top = block.c, block.f
    right, bottom = left + block.a * width, top + block.e * height
    box = transform_bounds(crs, cube.crs, min(left, right), min(top, bottom), max(left, right), max(top, bottom),
                           densify_pts=21)
    inverse = ~cube.transform
    corners = [inverse @ (x, y) for x in (box[0], box[2]) for y in (box[1], box[3])]
    cols = [c for c, _ in corners]
    rows = [r for _, r in corners]
    c0, c1 = max(0, int(np.floor(min(cols))) - HALO), min(cube.width, int(np.ceil(max(cols))) + HALO)
    r0, r1 = max(0, int(np.floor(min(rows))) - HALO), min(cube.height, int(np.ceil(max(rows))) + HALO)
    if c1 <= c0 or r1 <= r0:
        return None
    return slice(r0, r1), slice(c0, c1)


def cube_grid(cube: Cube, like: str | Path | None = None, crs: str | None = None, resolution: float | None = None,
              bounds: Sequence[float] | None = None) -> Grid:
    """The target grid (:func:`~tropicrop.io.grids.choose_grid`); by default the cube's own grid, north up
    (or its UTM zone's for a cube in degrees)."""
    return choose_grid(cube.crs, abs(cube.transform.a),
                       lambda target: transform_bounds(cube.crs, target, *cube.bounds, densify_pts=21),
                       like, crs, resolution, bounds)


def cube_months(cube: Cube, resampling: str) -> OpenMonth:
    """An :data:`~tropicrop.io.acquisitions.OpenMonth` reading a month's time steps of ``cube``."""
    return lambda acquisitions, grid: CubeMonth(cube, acquisitions, grid, resampling)
