"""Sentinel-1 acquisitions from a STAC ItemCollection (e.g. a search of the sentinel-1-rtc collections),
read with pystac and loaded onto the target grid with odc-stac.

Each item is one acquisition: its ``datetime`` and two assets ``vv`` and ``vh`` (keys matched without
regard to case), local paths (relative to the JSON file) or URLs that GDAL can open. odc-stac builds a lazy
dask array on the exact target grid (``geobox``), chunked like the stacking blocks, and each block is
computed on its own with the synchronous scheduler, so memory stays bounded by a block as with files.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from urllib.parse import urlparse

import dask
import numpy as np
import pystac
from odc.geo.geobox import GeoBox
from odc.stac import load
from rasterio.windows import Window

from tropicrop.errors import StackError
from tropicrop.io.acquisitions import Acquisition, BandRef, OpenMonth, check_bands, detect_units, to_linear_power
from tropicrop.io.rasters import Grid

ASSET_KEYS = ("vv", "vh")  # matched without regard to case


def _absolute(href: str, folder: Path) -> str:
    """Relative local hrefs are taken relative to the ItemCollection's folder; URLs are left alone."""
    scheme = urlparse(href).scheme
    if scheme and len(scheme) > 1:  # http, https, s3, file... (a one-letter scheme is a Windows drive)
        return href[len("file://"):] if scheme == "file" else href
    path = Path(href)
    return str(path if path.is_absolute() else (folder / path).resolve())


def read_items(path: Path) -> list[pystac.Item]:
    """The items of the ItemCollection ``path``, asset hrefs made absolute; StackError if unreadable."""
    if not path.is_file():
        raise StackError(path, "STAC file not found", "give the path of an ItemCollection JSON")
    try:
        collection = pystac.ItemCollection.from_file(str(path))
    except Exception as exc:  # pystac raises JSON, key and STAC validation errors alike
        raise StackError(path, f"not a STAC ItemCollection ({type(exc).__name__}: {exc})",
                         "save the search result as an ItemCollection (FeatureCollection of items)") from None
    items = [item.clone() for item in collection]
    for item in items:
        for asset in item.assets.values():
            asset.href = _absolute(asset.href, path.parent)
    return items


def _asset_key(item: pystac.Item, pol: str, path: Path) -> str:
    keys = [k for k in item.assets if k.lower() == pol]
    if not keys:
        raise StackError(path, f"item '{item.id}' has no {pol.upper()} asset (assets: {', '.join(item.assets) or 'none'})",
                         f"every item needs a '{pol}' asset; leave single-polarisation items out, or pass "
                         f"--bands {'VH' if pol == 'vv' else 'VV'} for a single-polarisation scene")
    return keys[0]


def stac_acquisitions(path: Path, units: str | None = None, bands: Sequence[str] = ("VV", "VH")) -> list[Acquisition]:
    """One :class:`Acquisition` per item of ``path`` (name = item id) with its ``bands``, sorted by time."""
    wanted = [b.lower() for b in check_bands(bands)]
    acquisitions = []
    for item in read_items(path):
        time = item.datetime or (item.common_metadata.start_datetime if item.common_metadata else None)
        if time is None:
            raise StackError(path, f"item '{item.id}' has no datetime", "give every item a datetime")
        refs = {pol: BandRef(item.assets[_asset_key(item, pol, path)].href, 1) for pol in wanted}
        found = {units or detect_units(r.href, 1, f"{r.href} (item '{item.id}')") for r in refs.values()}
        if len(found) > 1:
            raise StackError(path, f"item '{item.id}': VV and VH look {' and '.join(sorted(found))}", "pass --units")
        naive = time.replace(tzinfo=None) if time.tzinfo is None else time.astimezone(dt.UTC).replace(tzinfo=None)
        acquisitions.append(Acquisition(name=item.id, time=naive, vv=refs.get("vv"), vh=refs.get("vh"), units=found.pop(),
                                        item=item))
    return sorted(acquisitions, key=lambda a: (a.time, a.name))


class StacMonth:
    """A month's items loaded lazily by odc-stac on the target grid; blocks are computed one at a time."""

    def __init__(self, acquisitions: Sequence[Acquisition], grid: Grid, resampling: str, block: int) -> None:
        self.acquisitions = list(acquisitions)
        self.grid, self.resampling, self.block = grid, resampling, block

    def __enter__(self) -> StacMonth:
        items = [self._item(a) for a in self.acquisitions]
        g = self.grid
        geobox = GeoBox((g.height, g.width), g.transform, g.crs)
        pols = [b.lower() for b in self.acquisitions[0].bands]
        bands = [_asset_key(items[0], pol, Path(items[0].id)) for pol in pols]
        for item in items:  # odc-stac loads bands by asset key: every item must spell them alike
            if [_asset_key(item, pol, Path(item.id)) for pol in pols] != bands:
                raise StackError(None, f"item '{item.id}' spells its assets differently from '{items[0].id}'",
                                 f"use the asset keys {bands} in every item")
        self.bands = bands
        self.data = load(items, bands=bands, geobox=geobox, groupby="id", resampling=self.resampling,
                         chunks={"x": self.block, "y": self.block}, dtype="float32", nodata=np.nan,
                         preserve_original_order=True)
        return self

    def _item(self, acq: Acquisition) -> pystac.Item:
        if not isinstance(acq.item, pystac.Item):
            raise StackError(acq.refs[0].href, "is a file, not a STAC item", "stack files and STAC JSON separately")
        return acq.item

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        del self.data

    def read(self, window: Window) -> np.ndarray:
        """Linear power (k, C, h, w) float32 of every item's C bands on ``window``; NaN = no data."""
        rows = slice(int(window.row_off), int(window.row_off + window.height))
        cols = slice(int(window.col_off), int(window.col_off + window.width))
        out = np.empty((len(self.acquisitions), len(self.bands), rows.stop - rows.start, cols.stop - cols.start),
                       dtype=np.float32)
        with dask.config.set(scheduler="synchronous"):
            for b, band in enumerate(self.bands):
                values = self.data[band].isel(y=rows, x=cols).values  # (k, h, w), items in the given order
                for k, acq in enumerate(self.acquisitions):
                    out[k, b] = to_linear_power(values[k], acq.units)
        return out


def open_stac(resampling: str, block: int) -> OpenMonth:
    """An :data:`~tropicrop.io.acquisitions.OpenMonth` loading a month's items with odc-stac."""
    return lambda acquisitions, grid: StacMonth(acquisitions, grid, resampling, block)
