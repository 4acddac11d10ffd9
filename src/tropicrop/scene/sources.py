"""Opening the files a ``scene.yaml`` names, checked against the scene's grid at load without reading the
whole of any: the grid itself, one label reader per labelled date (raster or a vector layer's column), the
split reader, and a sample of the first image that must agree with the declared units.

Each reader checks what it reads (class codes, split values) on every window, so a bad pixel fails where it
is read, naming the file.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rasterio.crs import CRS
from rasterio.errors import CRSError
from rasterio.windows import Window

from tropicrop.errors import SceneError
from tropicrop.io.manifest import Manifest, VectorSource
from tropicrop.io.rasters import Grid, RasterSource
from tropicrop.io.vectors import VectorLayer, class_code_lookup, split_code
from tropicrop.scene.codes import NO_REFERENCE, TEST, TRAIN, UNUSED

UNITS_SAMPLE = 256  # side of the central window sampled at load to check dB vs linear
WindowReader = Callable[[Window | None], np.ndarray]


class SceneWarning(UserWarning):
    """Something a user should know about a scene that does not stop it from loading."""


@dataclass
class LabelSource:
    """Reads one date's labels from a raster or from a column of a vector layer."""

    read: WindowReader
    path: Path


def resolve_grid(manifest: Manifest, first: RasterSource) -> Grid:
    """The scene's grid: the first image's, with ``crs`` and ``transform`` of ``scene.yaml`` taking
    precedence; warns (:class:`SceneWarning`) when there is no CRS at all."""
    crs = first.grid.crs
    transform = first.grid.transform
    if manifest.crs is not None:
        try:
            crs = CRS.from_user_input(manifest.crs)
        except CRSError:
            raise SceneError(manifest.path, f"'crs' {manifest.crs!r} is not a known CRS", "use e.g. EPSG:32723") from None
    if manifest.transform is not None:
        from affine import Affine

        transform = Affine(*manifest.transform)
    if crs is None:
        warnings.warn(
            f"{first.path}: no CRS; maps will use pixel coordinates (add 'crs' and 'transform' "
            "to scene.yaml to georeference them)",
            SceneWarning,
            stacklevel=3,
        )
    return Grid(width=first.grid.width, height=first.grid.height, crs=crs, transform=transform)


def check_grid(grid: Grid, first: RasterSource, src: RasterSource | Grid, what: str, path: Path | None = None) -> None:
    """SceneError naming the file when ``src`` is not on ``grid``; a warning when it has no CRS of its own."""
    other = src.grid if isinstance(src, RasterSource) else src
    where = src.path if isinstance(src, RasterSource) else path
    diff = grid.difference(other)
    if diff is not None:
        raise SceneError(where, f"{what}: {diff} (first image {first.path.name})", "resample it onto the image grid")
    if other.crs is None and grid.crs is not None and isinstance(src, RasterSource) and not src.is_npy:
        warnings.warn(f"{where}: no CRS; taking the grid of the images (same size)", SceneWarning, stacklevel=4)


def resolve_labels(manifest: Manifest, grid: Grid, classes: dict[int, str], first: RasterSource) -> dict[dt.date, LabelSource]:
    """One reader per labelled date, oldest first: label rasters (one band, on the grid) and the columns of
    the vector labels layer, rasterised on the grid."""
    labels: dict[dt.date, LabelSource] = {}
    for entry in manifest.dates:
        if entry.label is None:
            continue
        src = RasterSource(entry.label)
        if src.count != 1:
            raise SceneError(src.path, f"label raster has {src.count} bands", "labels are single-band class codes")
        check_grid(grid, first, src, f"label of {entry.date}")
        labels[entry.date] = LabelSource(read=raster_label_reader(src, classes), path=src.path)
    vl = manifest.vector_labels
    if vl is not None:
        layer = VectorLayer(vl.path, grid)
        for date, column in vl.columns.items():
            to_code = class_code_lookup(classes, vl.path, column)
            labels[date] = LabelSource(
                read=lambda w, c=column, f=to_code: layer.rasterize(c, f, w), path=vl.path  # type: ignore[misc]
            )
    return dict(sorted(labels.items()))


def raster_label_reader(src: RasterSource, classes: dict[int, str]) -> WindowReader:
    """A reader of a label raster's window as uint8 codes; SceneError on non-integer values or codes that
    are not in ``classes`` (0 = no reference)."""

    def read(window: Window | None) -> np.ndarray:
        block = src.read(window)[0]
        integral = np.issubdtype(block.dtype, np.integer) or (
            np.all(np.isfinite(block)) and np.all(block == np.round(block))
        )
        if not integral:
            raise SceneError(src.path, "label raster holds non-integer values", "write class codes as integers")
        codes = np.unique(block)
        unknown = [int(c) for c in codes if int(c) != NO_REFERENCE and int(c) not in classes]
        if unknown:
            raise SceneError(
                src.path,
                f"holds class code(s) {unknown} that are not in 'classes' {sorted(classes)}",
                "add them to classes in scene.yaml (0 = no reference)",
            )
        return block.astype(np.uint8)

    return read


def resolve_split(manifest: Manifest, grid: Grid, first: RasterSource) -> WindowReader | None:
    """The reader of the train/test split (a raster of 0/1/2 or a vector layer's column), None without one."""
    split = manifest.split
    if split is None:
        return None
    if isinstance(split, VectorSource):
        layer = VectorLayer(split.path, grid)
        to_code = split_code(split.path, split.column)
        return lambda w: layer.rasterize(split.column, to_code, w)
    src = RasterSource(split)
    if src.count != 1:
        raise SceneError(src.path, f"split raster has {src.count} bands", "the split is one band: 0 unused, 1 train, 2 test")
    check_grid(grid, first, src, "split")

    def read(window: Window | None) -> np.ndarray:
        block = src.read(window)[0]
        bad = np.setdiff1d(np.unique(block), [UNUSED, TRAIN, TEST])
        if bad.size:
            raise SceneError(src.path, f"split holds value(s) {bad.tolist()}", "use 0 unused, 1 train, 2 test")
        return block.astype(np.uint8)

    return read


def check_units(grid: Grid, first: RasterSource, units: str) -> None:
    """Sample the centre of the first image and refuse values that contradict ``units``."""
    side_w, side_h = min(UNITS_SAMPLE, grid.width), min(UNITS_SAMPLE, grid.height)
    window = Window((grid.width - side_w) // 2, (grid.height - side_h) // 2, side_w, side_h)
    block = first.read(window).astype(np.float64)
    values = block[:, ~first.nodata_mask(block)]
    values = values[np.isfinite(values)]
    if values.size == 0:
        return
    if units == "dB" and values.min() >= 0 and np.median(values) < 2.0:
        raise SceneError(
            first.path,
            f"units is dB but values look linear (min {values.min():.3g}, median {np.median(values):.3g})",
            "set units: linear in scene.yaml, or convert the images to dB",
        )
    if units == "linear" and np.mean(values < 0) > 0.5:
        raise SceneError(
            first.path,
            f"units is linear but {np.mean(values < 0):.0%} of values are negative (looks like dB)",
            "set units: dB in scene.yaml",
        )
