"""``tropicrop stack``: a scene from the user's own Sentinel-1 files, one composite per month on a target grid.

Sources are per-acquisition GeoTIFFs (a folder or a list: see :mod:`tropicrop.io.acquisitions`), a STAC
ItemCollection JSON (:mod:`tropicrop.io.stac`, loaded with odc-stac) or a datacube (netCDF, Zarr, or an
in-memory xarray Dataset with :func:`stack_cube`: :mod:`tropicrop.io.cubes`); all go through one
compositing and writing path (:func:`write_stacked`). The target grid: :mod:`tropicrop.io.grids`.
Each month from ``start`` to ``end`` gets one composite of its acquisitions (median of linear power by
default; ``mean``; ``first`` = earliest valid acquisition per pixel), written in dB. A month without any
acquisition is written to scene.yaml as ``image: null`` (no invented image), which windows treat as
padding. A composite is dated the 15th of its month.

Streaming: the target grid is processed in blocks of ``block`` pixels; for each block every acquisition of
the month is read through a GDAL WarpedVRT (reprojected to the block only) and reduced at once, so memory
is bounded by ``block^2 x acquisitions-in-a-month x 2 bands``, never by the scene, and GDAL's block cache
is capped (:data:`GDAL_CACHE_MB`). Resampling interpolates the files' stored values (dB files: in dB).
Cubes are read block by block the same way (:class:`~tropicrop.io.cubes.CubeMonth`).

The scene folder is assembled under a hidden temporary name and renamed when complete; parcels given with
``parcels`` are copied into it and referenced as vector labels and split (the manifest's own format).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from rasterio.windows import Window
from tqdm import tqdm

from tropicrop.errors import StackError
from tropicrop.io.acquisitions import (
    Acquisition,
    BandRef,
    MonthReader,
    OpenMonth,
    by_month,
    find_acquisitions,
    months_between,
    parse_month,
    to_linear_power,
)
from tropicrop.io.cubes import is_cube, open_cube
from tropicrop.io.files import atomic_folder, write_json
from tropicrop.io.grids import Bounds, check_overlap, choose_grid
from tropicrop.io.manifest import MANIFEST_NAME, DateEntry, Manifest, write_manifest
from tropicrop.io.rasters import Grid
from tropicrop.io.stack_labels import LabelPlan, plan_labels

if TYPE_CHECKING:
    import xarray

COMPOSITES = ("median", "mean", "first")
RESAMPLING = ("nearest", "bilinear", "cubic", "average")
BLOCK = 512  # side of the target-grid blocks processed at a time (a multiple of the 256-px GeoTIFF tiles)
GDAL_CACHE_MB = 64  # GDAL's raster block cache while stacking: bounded whatever the number of files
COMPOSITE_DAY = 15


# ------------------------------------------------------------------------------------------ target grid
def _footprint(ref: BandRef, crs: CRS) -> Bounds:
    try:
        with rasterio.open(ref.href) as ds:
            return transform_bounds(ds.crs, crs, *ds.bounds, densify_pts=21)
    except RasterioIOError as exc:
        raise StackError(ref.href, f"not a readable raster ({exc})", "re-download it") from None


def target_grid(acquisitions: Sequence[Acquisition], like: str | Path | None = None, crs: str | None = None,
                resolution: float | None = None, bounds: Sequence[float] | None = None) -> Grid:
    """The grid to stack files onto (:func:`~tropicrop.io.grids.choose_grid`): native CRS and pixel size are
    the first acquisition's, the footprint the union of every acquisition's."""
    first = acquisitions[0].refs[0]
    try:
        with rasterio.open(first.href) as ds:
            first_crs, first_res = ds.crs, float(ds.res[0])
    except RasterioIOError as exc:
        raise StackError(first.href, f"not a readable raster ({exc})", "re-download it") from None

    def footprint(target: CRS) -> Bounds:
        boxes = [_footprint(a.refs[0], target) for a in acquisitions]
        return min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)

    return choose_grid(first_crs, first_res, footprint, like, crs, resolution, bounds)


def check_files_overlap(acquisitions: Sequence[Acquisition], grid: Grid) -> None:
    """StackError naming the first file whose footprint does not overlap ``grid``."""
    assert grid.crs is not None
    for acq in acquisitions:
        for ref in acq.refs:
            check_overlap(ref.href, _footprint(ref, grid.crs), grid)


# ------------------------------------------------------------------------------------------ reading
class WarpedMonth:
    """A month's acquisition files, each opened once through a WarpedVRT onto the target grid."""

    def __init__(self, acquisitions: Sequence[Acquisition], grid: Grid, resampling: str = "bilinear") -> None:
        self.acquisitions, self.grid, self.resampling = list(acquisitions), grid, Resampling[resampling]
        self._stack = contextlib.ExitStack()
        self._vrts: dict[str, WarpedVRT] = {}

    def __enter__(self) -> WarpedMonth:
        for acq in self.acquisitions:
            for ref in acq.refs:
                if ref.href not in self._vrts:
                    self._vrts[ref.href] = self._open(ref.href, acq.units)
        return self

    def _open(self, href: str, units: str) -> WarpedVRT:
        try:
            src = self._stack.enter_context(rasterio.open(href))
        except RasterioIOError as exc:
            raise StackError(href, f"not a readable raster ({exc})", "re-download it") from None
        # linear products without a nodata tag use 0 as border fill (HyP3, SNAP)
        src_nodata = src.nodata if src.nodata is not None else (0.0 if units != "dB" else None)
        g = self.grid
        # One pixel wider and taller than the grid, so that no block is ever the VRT's full extent: GDAL reads
        # a WarpedVRT's full extent by another path whose downsampling kernel differs (by up to 0.5 dB on
        # 10 m -> 20 m) from the windowed reads and from rasterio.warp.reproject.
        return self._stack.enter_context(WarpedVRT(
            src, crs=g.crs, transform=g.transform, width=g.width + 1, height=g.height + 1, resampling=self.resampling,
            src_nodata=src_nodata, nodata=np.nan, dtype="float32"))

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def read(self, window: Window) -> np.ndarray:
        """Linear power (k, C, h, w) float32 of every acquisition's C bands on ``window``; NaN = no data."""
        bands = len(self.acquisitions[0].refs)
        out = np.empty((len(self.acquisitions), bands, int(window.height), int(window.width)), dtype=np.float32)
        for k, acq in enumerate(self.acquisitions):
            for b, ref in enumerate(acq.refs):
                try:
                    values = self._vrts[ref.href].read(ref.band, window=window)
                except RasterioIOError as exc:
                    raise StackError(ref.href, f"could not read pixels ({exc})",
                                     "the file may be truncated; re-download it") from None
                out[k, b] = to_linear_power(values, acq.units)
        return out


def open_warped(resampling: str) -> OpenMonth:
    """An :data:`OpenMonth` reading files through WarpedVRTs with ``resampling``."""
    return lambda acquisitions, grid: WarpedMonth(acquisitions, grid, resampling)


# ------------------------------------------------------------------------------------------ compositing
def nanmedian_first_axis(values: np.ndarray) -> np.ndarray:
    """``np.nanmedian(values, axis=0)`` for a short first axis (a month's acquisitions), 4x faster: one sort
    (NaN sorts last) and the middle of each pixel's valid values; NaN where none is valid."""
    ordered = np.sort(values, axis=0)
    valid = np.isfinite(values).sum(axis=0)
    last = values.shape[0] - 1
    low = np.take_along_axis(ordered, np.clip((valid - 1) // 2, 0, last)[None], axis=0)[0]
    high = np.take_along_axis(ordered, np.clip(valid // 2, 0, last)[None], axis=0)[0]
    median: np.ndarray = (low + high) / 2
    median[valid == 0] = np.nan
    return median


def composite(power: np.ndarray, method: str) -> np.ndarray:
    """Composite of linear power (k, C, h, w) along k, in dB (C, h, w) float32; NaN where no acquisition
    has data. ``first`` takes, per pixel, the earliest acquisition with data (``power`` in time order)."""
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels (outside every footprint)
        if method == "median":
            linear = nanmedian_first_axis(power)
        elif method == "mean":
            linear = np.nanmean(power, axis=0)
        elif method == "first":
            has = np.isfinite(power)
            first = np.argmax(has, axis=0)
            linear = np.take_along_axis(power, first[None], axis=0)[0]
        else:
            raise StackError(None, f"--composite {method!r}", f"use one of {', '.join(COMPOSITES)}")
        db = (10.0 * np.log10(linear)).astype(np.float32)
    db[~np.isfinite(db)] = np.nan
    return db


def blocks(grid: Grid, size: int) -> Iterator[Window]:
    """Windows of at most ``size`` pixels tiling ``grid`` row by row."""
    for r in range(0, grid.height, size):
        for c in range(0, grid.width, size):
            yield Window(c, r, min(size, grid.width - c), min(size, grid.height - r))


def _profile(grid: Grid, count: int) -> dict[str, Any]:
    prof: dict[str, Any] = dict(driver="GTiff", width=grid.width, height=grid.height, count=count, dtype="float32",
                                crs=grid.crs, transform=grid.transform, nodata=np.nan, compress="deflate", predictor=3)
    if grid.width >= 256 and grid.height >= 256:
        prof.update(tiled=True, blockxsize=256, blockysize=256)
    return prof


def write_composite(path: Path, grid: Grid, reader: MonthReader, method: str, block: int, bar: tqdm,
                    bands: Sequence[str] = ("VV", "VH")) -> int:
    """Write the month's composite (C, H, W) dB of ``bands`` to ``path`` block by block; returns its pixels
    with data."""
    valid = 0
    with rasterio.open(path, "w", **_profile(grid, len(bands))) as ds:
        for index, band in enumerate(bands, start=1):
            ds.set_band_description(index, band)
        for window in blocks(grid, block):
            db = composite(reader.read(window), method)
            ds.write(db, window=window)
            valid += int(np.isfinite(db).all(axis=0).sum())
            bar.update(1)
    return valid


# ------------------------------------------------------------------------------------------ the scene
def composite_date(month: tuple[int, int]) -> dt.date:
    """The date a month's composite carries in the scene (the 15th)."""
    return dt.date(month[0], month[1], COMPOSITE_DAY)


def stack_scene(acquisitions: Sequence[Acquisition], out: Path, grid: Grid, open_month: OpenMonth, *,
                start: tuple[int, int] | None = None, end: tuple[int, int] | None = None, method: str = "median",
                labels: LabelPlan | None = None, name: str | None = None, overwrite: bool = False,
                block: int = BLOCK, progress: bool = True, source: str = "files") -> Path:
    """Composite ``acquisitions`` per month onto ``grid`` and write the scene folder ``out``; returns it."""
    out = Path(out).absolute()
    if method not in COMPOSITES:
        raise StackError(None, f"--composite {method!r}", f"use one of {', '.join(COMPOSITES)}")
    if not acquisitions:
        raise StackError(None, "no acquisition found", "point to acquisition files, a folder of them, or STAC JSON")
    if out.exists() and not overwrite:
        raise StackError(out, "already exists", "pass --overwrite or choose another --out folder")
    months = months_between(start or acquisitions[0].month, end or acquisitions[-1].month)
    if not months:
        raise StackError(None, f"--start {start} is after --end {end}", "give --start YYYY-MM before --end YYYY-MM")
    monthly = by_month(acquisitions, months)
    if not any(monthly.values()):
        raise StackError(None, f"no acquisition between {months[0][0]}-{months[0][1]:02d} and {months[-1][0]}-"
                         f"{months[-1][1]:02d} (they run from {acquisitions[0].time:%Y-%m} to {acquisitions[-1].time:%Y-%m})",
                         "widen --start / --end")
    dates = {m: composite_date(m) for m in months}
    bands = acquisitions[0].bands
    if labels is not None:
        labels.check_dates(dates, monthly)
    n_blocks = sum(1 for _ in blocks(grid, block))
    with atomic_folder(out) as tmp:
        entries, record = [], []
        bar = tqdm(total=n_blocks * sum(1 for a in monthly.values() if a), desc=f"stacking {len(months)} months",
                   unit="block", disable=not progress)
        with bar, rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB * 1024 * 1024):
            for month, acqs in monthly.items():
                date = dates[month]
                image = None
                valid = 0
                if acqs:
                    image = tmp / "images" / f"{date:%Y%m%d}.tif"
                    image.parent.mkdir(parents=True, exist_ok=True)
                    with open_month(acqs, grid) as reader:
                        valid = write_composite(image, grid, reader, method, block, bar, bands)
                entries.append(DateEntry(date=date, image=image))
                record.append({"month": f"{month[0]}-{month[1]:02d}", "date": date.isoformat(), "image": image is not None,
                               "valid_pixels": valid, "acquisitions": [
                                   {"name": a.name, "time": a.time.isoformat(), "units": a.units,
                                    **{b.lower(): r.href for b, r in zip(a.bands, a.refs, strict=True)}} for a in acqs]})
        vector_labels, split, classes = (None, None, {}) if labels is None else labels.write(tmp, dates)
        manifest = Manifest(path=tmp / MANIFEST_NAME, name=name or out.name, bands=bands, units="dB",
                            classes=classes, dates=tuple(entries), split=split, vector_labels=vector_labels)
        write_manifest(manifest)
        write_json(tmp / "stack.json", {"source": source, "composite": method, "grid": _grid_record(grid),
                                        "block": block, "months": record})
    return out


def _grid_record(grid: Grid) -> dict[str, Any]:
    return {"crs": grid.crs.to_string() if grid.crs else None, "width": grid.width, "height": grid.height,
            "transform": list(grid.transform)[:6]}


def _is_stac(sources: Sequence[str | Path]) -> bool:
    return len(sources) == 1 and Path(sources[0]).suffix.lower() in (".json", ".geojson")


def check_options(resampling: str, block: int) -> None:
    """StackError for a ``--resampling`` or ``--block`` the stacking cannot use."""
    if resampling not in RESAMPLING:
        raise StackError(None, f"--resampling {resampling!r}", f"use one of {', '.join(RESAMPLING)}")
    if block < 16 or block % 16:
        raise StackError(None, f"--block {block}", "use a multiple of 16 (e.g. 512)")


def write_stacked(acquisitions: Sequence[Acquisition], out: Path, grid: Grid, open_month: OpenMonth, source: str, *,
                  start: str | None = None, end: str | None = None, composite: str = "median",
                  parcels: str | Path | None = None, label_columns: Mapping[str, str] | None = None,
                  split_column: str | None = None, classes: Mapping[int, str] | None = None, name: str | None = None,
                  overwrite: bool = False, block: int = BLOCK, progress: bool = True) -> Path:
    """The part of :func:`stack` shared by every kind of source (files, STAC, cubes): the months, the
    parcels' labels and split, and :func:`stack_scene`."""
    if not acquisitions:
        raise StackError(None, "no acquisition found", "point to acquisition files, a folder of them, STAC JSON or a cube")
    if parcels is None and (label_columns or split_column):
        raise StackError(None, "--label-columns / --split-column need --parcels", "give the parcels file with --parcels")
    labels = plan_labels(Path(parcels), label_columns or {}, split_column, classes) if parcels is not None else None
    return stack_scene(acquisitions, out, grid, open_month, start=parse_month(start, "--start") if start else None,
                       end=parse_month(end, "--end") if end else None, method=composite, labels=labels, name=name,
                       overwrite=overwrite, block=block, progress=progress, source=source)


def stack(sources: Sequence[str | Path], out: Path, *, units: str | None = None, bands: Sequence[str] = ("VV", "VH"),
          like: str | Path | None = None, crs: str | None = None, resolution: float | None = None,
          bounds: Sequence[float] | None = None, resampling: str = "bilinear", date_pattern: str | None = None,
          **scene: Any) -> Path:
    """Build the scene ``out`` from ``sources``: acquisition files/folders, one STAC ItemCollection JSON, or
    one datacube (netCDF or Zarr: :mod:`tropicrop.io.cubes`).

    Args:
        sources: what to stack (see above).
        out: the scene folder to write.
        units: unit of the input values (:data:`~tropicrop.io.units.UNITS`); None detects it.
        bands: polarisations to stack: ``("VV", "VH")``, or one of them for a single-polarisation scene.
        like: a raster whose grid is the target grid (:func:`~tropicrop.io.grids.choose_grid`).
        crs: the target grid's CRS.
        resolution: the target grid's pixel size, in its CRS's units.
        bounds: the target grid's ``(left, bottom, right, top)`` in its CRS.
        resampling: onto the target grid (:data:`RESAMPLING`).
        date_pattern: reads the files' dates (:func:`~tropicrop.io.acquisitions.time_from_name`).
        **scene: ``start``/``end`` (``YYYY-MM``; default the first and last acquisition's month),
            ``composite``, ``parcels`` with ``label_columns`` (month -> column), ``split_column`` and
            ``classes``, ``name``, ``overwrite``, ``block``, ``progress``: see :func:`write_stacked`.

    Returns:
        The scene folder.
    """
    check_options(resampling, scene.get("block", BLOCK))
    open_month: OpenMonth
    if len(sources) == 1 and is_cube(Path(sources[0])):
        with open_cube(Path(sources[0])) as dataset:
            return stack_cube(dataset, out, units=units, bands=bands, like=like, crs=crs, resolution=resolution,
                              bounds=bounds, resampling=resampling, where=str(sources[0]), **scene)
    if _is_stac(sources):
        from tropicrop.io.stac import open_stac, stac_acquisitions

        acquisitions = stac_acquisitions(Path(sources[0]), units, bands)
        open_month = open_stac(resampling, scene.get("block", BLOCK))
        source = f"stac:{sources[0]}"
    else:
        acquisitions = find_acquisitions(sources, units, date_pattern, bands)
        open_month = open_warped(resampling)
        source = "files"
    if not acquisitions:
        raise StackError(None, "no acquisition found", "point to acquisition files, a folder of them, STAC JSON or a cube")
    grid = target_grid(acquisitions, like, crs, resolution, bounds)
    check_files_overlap(acquisitions, grid)
    return write_stacked(acquisitions, out, grid, open_month, source, **scene)


def stack_cube(dataset: xarray.Dataset, out: Path, *, units: str | None = None, bands: Sequence[str] = ("VV", "VH"),
               like: str | Path | None = None, crs: str | None = None, resolution: float | None = None,
               bounds: Sequence[float] | None = None, resampling: str = "bilinear", where: str = "dataset",
               **scene: Any) -> Path:
    """Write the scene ``out`` from a datacube (:mod:`tropicrop.io.cubes`): what :func:`stack` writes for files.

    Args:
        dataset: the cube, lazily opened or in memory (odc-stac, stackstac, the openEO client...): dims
            time, y, x (and optionally ``bands``), a CRS (grid mapping or ``spatial_ref``), VV/VH variables.
        out: the scene folder to write.
        units: unit of the values (:data:`~tropicrop.io.units.UNITS`); None detects dB or linear power.
        bands: polarisations to stack (one of them for a single-polarisation scene).
        like: a raster whose grid is the target grid (:func:`~tropicrop.io.cubes.cube_grid`).
        crs: the target grid's CRS.
        resolution: the target grid's pixel size, in its CRS's units.
        bounds: the target grid's ``(left, bottom, right, top)`` in its CRS.
        resampling: onto a target grid other than the cube's own.
        where: the cube's name in messages and in stack.json.
        **scene: as for :func:`write_stacked` (``start``, ``end``, ``composite``,
            ``parcels``, ``label_columns``, ``split_column``, ``classes``, ``name``, ``overwrite``, ``block``,
            ``progress``).

    Returns:
        The scene folder.
    """
    from tropicrop.io.cubes import cube_acquisitions, cube_grid, cube_months, cube_units, describe_cube

    check_options(resampling, scene.get("block", BLOCK))
    cube = describe_cube(dataset, where, bands)
    acquisitions = cube_acquisitions(cube, cube_units(cube, units))
    grid = cube_grid(cube, like, crs, resolution, bounds)
    assert grid.crs is not None
    check_overlap(where, transform_bounds(cube.crs, grid.crs, *cube.bounds, densify_pts=21), grid)
    return write_stacked(acquisitions, out, grid, cube_months(cube, resampling), f"cube:{where}", **scene)
