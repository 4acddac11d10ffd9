"""``tropicrop stack``: a scene from the user's own Sentinel-1 files, one composite per month on a target grid.

Sources are per-acquisition GeoTIFFs (a folder or a list: see :mod:`tropicrop.io.acquisitions`) or a STAC
ItemCollection JSON (:mod:`tropicrop.io.stac`, loaded with odc-stac). Each month from ``start`` to ``end``
gets one composite of its acquisitions (median of linear power by default; ``mean``; ``first`` = earliest
valid acquisition per pixel), written in dB. A month without any acquisition is written to scene.yaml as
``image: null`` (no invented image), which windows treat as padding. A composite is dated the 15th of its
month.

Streaming: the target grid is processed in blocks of ``block`` pixels; for each block every acquisition of
the month is read through a GDAL WarpedVRT (reprojected to the block only) and reduced at once, so memory
is bounded by ``block^2 x acquisitions-in-a-month x 2 bands``, never by the scene, and GDAL's block cache
is capped (:data:`GDAL_CACHE_MB`). Resampling interpolates the files' stored values (dB files: in dB).

The scene folder is assembled under a hidden temporary name and renamed when complete; parcels given with
``parcels`` are copied into it and referenced as vector labels and split (the manifest's own format).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import CRSError, RasterioIOError
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
from tropicrop.io.files import atomic_folder, write_json
from tropicrop.io.manifest import MANIFEST_NAME, DateEntry, Manifest, write_manifest
from tropicrop.io.rasters import Grid
from tropicrop.io.stack_labels import LabelPlan, plan_labels

COMPOSITES = ("median", "mean", "first")
RESAMPLING = ("nearest", "bilinear", "cubic", "average")
BLOCK = 512  # side of the target-grid blocks processed at a time (a multiple of the 256-px GeoTIFF tiles)
GDAL_CACHE_MB = 64  # GDAL's raster block cache while stacking: bounded whatever the number of files
COMPOSITE_DAY = 15


# ------------------------------------------------------------------------------------------ target grid
def grid_bounds(grid: Grid) -> tuple[float, float, float, float]:
    """(left, bottom, right, top) of ``grid`` in its CRS."""
    xs = [grid.transform.c, grid.transform.c + grid.transform.a * grid.width]
    ys = [grid.transform.f, grid.transform.f + grid.transform.e * grid.height]
    return min(xs), min(ys), max(xs), max(ys)


def _footprint(ref: BandRef, crs: CRS) -> tuple[float, float, float, float]:
    try:
        with rasterio.open(ref.href) as ds:
            return transform_bounds(ds.crs, crs, *ds.bounds, densify_pts=21)
    except RasterioIOError as exc:
        raise StackError(ref.href, f"not a readable raster ({exc})", "re-download it") from None


def target_grid(acquisitions: Sequence[Acquisition], like: str | Path | None = None, crs: str | None = None,
                resolution: float | None = None, bounds: Sequence[float] | None = None) -> Grid:
    """The grid to stack onto: that of ``like`` (a raster), else ``crs`` (default: the first acquisition's),
    ``resolution`` (default: the first acquisition's pixel size, when in that CRS) and ``bounds`` (left,
    bottom, right, top in ``crs``; default: the union of the acquisitions' footprints)."""
    if like is not None:
        try:
            with rasterio.open(like) as ds:
                if ds.crs is None:
                    raise StackError(like, "has no CRS", "--like needs a georeferenced raster")
                return Grid(width=ds.width, height=ds.height, crs=ds.crs, transform=ds.transform)
        except RasterioIOError as exc:
            raise StackError(like, f"not a readable raster ({exc})", "--like takes a GeoTIFF on the target grid") from None
    with rasterio.open(acquisitions[0].vv.href) as first:
        first_crs, first_res = first.crs, first.res
    try:
        target_crs = CRS.from_user_input(crs) if crs else first_crs
    except CRSError:
        raise StackError(None, f"--crs {crs!r} is not a known CRS", "use e.g. EPSG:32722") from None
    if resolution is None:
        if target_crs != first_crs:
            raise StackError(None, f"--crs {crs} differs from the acquisitions' CRS {first_crs}", "give --resolution too")
        resolution = float(first_res[0])
    if resolution <= 0:
        raise StackError(None, f"--resolution {resolution} must be positive", "give the pixel size in CRS units")
    if bounds is None:
        boxes = [_footprint(a.vv, target_crs) for a in acquisitions]
        bounds = (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
    left, bottom, right, top = bounds
    if right <= left or top <= bottom:
        raise StackError(None, f"--bounds {tuple(bounds)} are empty",
                         "give left,bottom,right,top with left < right, bottom < top")
    width, height = math.ceil((right - left) / resolution - 1e-9), math.ceil((top - bottom) / resolution - 1e-9)
    return Grid(width=width, height=height, crs=target_crs, transform=Affine(resolution, 0, left, 0, -resolution, top))


def check_overlap(acquisitions: Sequence[Acquisition], grid: Grid) -> None:
    """StackError naming the first file whose footprint does not overlap ``grid``."""
    assert grid.crs is not None
    left, bottom, right, top = grid_bounds(grid)
    for acq in acquisitions:
        for ref in (acq.vv, acq.vh):
            fl, fb, fr, ft = _footprint(ref, grid.crs)
            if fr <= left or fl >= right or ft <= bottom or fb >= top:
                raise StackError(ref.href, f"does not overlap the target grid (its bounds in {grid.crs}: "
                                 f"{fl:.1f}, {fb:.1f}, {fr:.1f}, {ft:.1f}; target: {left:.1f}, {bottom:.1f}, "
                                 f"{right:.1f}, {top:.1f})", "leave it out, or widen --bounds / choose another --like")


# ------------------------------------------------------------------------------------------ reading
class WarpedMonth:
    """A month's acquisition files, each opened once through a WarpedVRT onto the target grid."""

    def __init__(self, acquisitions: Sequence[Acquisition], grid: Grid, resampling: str = "bilinear") -> None:
        self.acquisitions, self.grid, self.resampling = list(acquisitions), grid, Resampling[resampling]
        self._stack = contextlib.ExitStack()
        self._vrts: dict[str, WarpedVRT] = {}

    def __enter__(self) -> WarpedMonth:
        for acq in self.acquisitions:
            for ref in (acq.vv, acq.vh):
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
        """Linear power (k, 2, h, w) float32 of every acquisition on ``window``; NaN = no data."""
        out = np.empty((len(self.acquisitions), 2, int(window.height), int(window.width)), dtype=np.float32)
        for k, acq in enumerate(self.acquisitions):
            for b, ref in enumerate((acq.vv, acq.vh)):
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


def _profile(grid: Grid) -> dict[str, Any]:
    prof: dict[str, Any] = dict(driver="GTiff", width=grid.width, height=grid.height, count=2, dtype="float32",
                                crs=grid.crs, transform=grid.transform, nodata=np.nan, compress="deflate", predictor=3)
    if grid.width >= 256 and grid.height >= 256:
        prof.update(tiled=True, blockxsize=256, blockysize=256)
    return prof


def write_composite(path: Path, grid: Grid, reader: MonthReader, method: str, block: int, bar: tqdm) -> int:
    """Write the month's composite (2, H, W) dB to ``path`` block by block; returns its pixels with data."""
    valid = 0
    with rasterio.open(path, "w", **_profile(grid)) as ds:
        ds.set_band_description(1, "VV")
        ds.set_band_description(2, "VH")
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
    check_overlap(acquisitions, grid)
    monthly = by_month(acquisitions, months)
    if not any(monthly.values()):
        raise StackError(None, f"no acquisition between {months[0][0]}-{months[0][1]:02d} and {months[-1][0]}-"
                         f"{months[-1][1]:02d} (they run from {acquisitions[0].time:%Y-%m} to {acquisitions[-1].time:%Y-%m})",
                         "widen --start / --end")
    dates = {m: composite_date(m) for m in months}
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
                        valid = write_composite(image, grid, reader, method, block, bar)
                entries.append(DateEntry(date=date, image=image))
                record.append({"month": f"{month[0]}-{month[1]:02d}", "date": date.isoformat(), "image": image is not None,
                               "valid_pixels": valid, "acquisitions": [
                                   {"name": a.name, "time": a.time.isoformat(), "vv": a.vv.href, "vh": a.vh.href,
                                    "units": a.units} for a in acqs]})
        vector_labels, split, classes = (None, None, {}) if labels is None else labels.write(tmp, dates)
        manifest = Manifest(path=tmp / MANIFEST_NAME, name=name or out.name, bands=("VV", "VH"), units="dB",
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


def stack(sources: Sequence[str | Path], out: Path, *, start: str | None = None, end: str | None = None,
          composite: str = "median", units: str | None = None, like: str | Path | None = None, crs: str | None = None,
          resolution: float | None = None, bounds: Sequence[float] | None = None, resampling: str = "bilinear",
          parcels: str | Path | None = None, label_columns: Mapping[str, str] | None = None,
          split_column: str | None = None, classes: Mapping[int, str] | None = None, name: str | None = None,
          overwrite: bool = False, block: int = BLOCK, progress: bool = True, date_pattern: str | None = None) -> Path:
    """Build the scene ``out`` from ``sources``: acquisition files/folders, or one STAC ItemCollection JSON.

    See the module docstring; ``start``/``end`` are ``YYYY-MM`` (default: the first and last acquisition's
    month), the grid options are those of :func:`target_grid`, and ``parcels`` with ``label_columns``
    (date -> column) and ``split_column`` become the scene's vector labels and split; ``date_pattern`` reads
    the files' dates (see :func:`~tropicrop.io.acquisitions.time_from_name`).
    """
    if resampling not in RESAMPLING:
        raise StackError(None, f"--resampling {resampling!r}", f"use one of {', '.join(RESAMPLING)}")
    if block < 16 or block % 16:
        raise StackError(None, f"--block {block}", "use a multiple of 16 (e.g. 512)")
    open_month: OpenMonth
    if _is_stac(sources):
        from tropicrop.io.stac import open_stac, stac_acquisitions

        acquisitions = stac_acquisitions(Path(sources[0]), units)
        open_month = open_stac(resampling, block)
        source = f"stac:{sources[0]}"
    else:
        acquisitions = find_acquisitions(sources, units, date_pattern)
        open_month = open_warped(resampling)
        source = "files"
    if not acquisitions:
        raise StackError(None, "no acquisition found", "point to acquisition files, a folder of them, or STAC JSON")
    grid = target_grid(acquisitions, like, crs, resolution, bounds)
    labels = plan_labels(Path(parcels), label_columns or {}, split_column, classes) if parcels is not None else None
    if parcels is None and (label_columns or split_column):
        raise StackError(None, "--label-columns / --split-column need --parcels", "give the parcels file with --parcels")
    return stack_scene(acquisitions, out, grid, open_month, start=parse_month(start, "--start") if start else None,
                       end=parse_month(end, "--end") if end else None, method=composite, labels=labels, name=name,
                       overwrite=overwrite, block=block, progress=progress, source=source)

