"""The :class:`Scene`: a loaded scene's description, windowed reads of its images, labels and split, and the
one pass over every pixel that checks them all (:meth:`Scene.validate_pixels`).

Loading opens and checks every file's header (:mod:`tropicrop.scene.sources`) without reading pixels.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.windows import Window
from tqdm import tqdm

from tropicrop.errors import SceneError
from tropicrop.io.manifest import Manifest, VectorSource, read_manifest
from tropicrop.io.rasters import Grid, RasterSource, check_window
from tropicrop.scene.codes import NO_REFERENCE, TEST, TRAIN, UNUSED, to_db
from tropicrop.scene.sources import check_grid, check_units, resolve_grid, resolve_labels, resolve_split


@dataclass
class PixelReport:
    """What :meth:`Scene.validate_pixels` found: class pixel counts per labelled date, split counts, nodata."""

    class_counts: dict[dt.date, dict[int, int]] = field(default_factory=dict)
    split_counts: dict[int, int] = field(default_factory=dict)
    nodata_pixels: dict[dt.date, int] = field(default_factory=dict)


class Scene:
    """A multi-date SAR image stack on one grid, with optional labels per date and a train/test split."""

    def __init__(self, manifest: Manifest) -> None:
        self.manifest = manifest
        self.root = manifest.root
        self.name = manifest.name
        self.bands = manifest.bands
        self.units = manifest.units
        self.classes: dict[int, str] = dict(manifest.classes)
        self.dates: list[dt.date] = [e.date for e in manifest.dates]
        # None for a date without any acquisition (``image: null``): read as no data, padding in windows
        self.images: list[RasterSource | None] = [
            None if e.image is None else RasterSource(e.image, nodata=manifest.nodata) for e in manifest.dates
        ]
        self._first = next(src for src in self.images if src is not None)
        self.grid = resolve_grid(manifest, self._first)
        for entry, src in zip(manifest.dates, self.images, strict=True):
            if src is None:
                continue
            if src.count != len(self.bands):
                raise SceneError(
                    src.path,
                    f"has {src.count} band(s) but scene.yaml lists {len(self.bands)} ({', '.join(self.bands)})",
                    "make 'bands' match the image files",
                )
            check_grid(self.grid, self._first, src, f"image of {entry.date}")
        self._labels = resolve_labels(manifest, self.grid, self.classes, self._first)
        self._split = resolve_split(manifest, self.grid, self._first)
        check_units(self.grid, self._first, self.units)

    # ----------------------------------------------------------------- description
    @property
    def labelled_dates(self) -> list[dt.date]:
        """Dates that have reference labels, oldest first."""
        return list(self._labels)

    @property
    def missing(self) -> np.ndarray:
        """(T,) bool: dates without any acquisition (``image: null``); windows treat them as padding."""
        return np.array([src is None for src in self.images], dtype=bool)

    @property
    def has_split(self) -> bool:
        """Whether the scene defines a train/test split."""
        return self._split is not None

    @property
    def num_bands(self) -> int:
        """Number of bands (C)."""
        return len(self.bands)

    def date_index(self, date: dt.date) -> int:
        """Position of ``date`` in :attr:`dates`; SceneError if it is not an acquisition date."""
        try:
            return self.dates.index(date)
        except ValueError:
            raise SceneError(self.manifest.path, f"{date} is not an acquisition date", "pick one of 'dates'") from None

    def __repr__(self) -> str:
        return (
            f"Scene({self.name!r}, {self.grid.width}x{self.grid.height}, {len(self.dates)} dates, "
            f"{len(self.labelled_dates)} labelled, bands={list(self.bands)})"
        )

    # ----------------------------------------------------------------- reading
    def read_images(self, window: Window | None = None, dates: Sequence[dt.date] | None = None) -> np.ndarray:
        """Read images as float32 (T, C, h, w) in dB for ``dates`` (default all); NaN marks no data (all of a
        date without acquisition).

        Raises :class:`SceneError` naming the file if a pixel is NaN or infinite without being declared
        no-data.
        """
        w = check_window(self.grid, window)
        idx = range(len(self.dates)) if dates is None else [self.date_index(d) for d in dates]
        out = np.empty((len(idx), self.num_bands, int(w.height), int(w.width)), dtype=np.float32)
        for k, i in enumerate(idx):
            out[k] = self._read_image(i, w)
        return out

    def _read_image(self, i: int, window: Window) -> np.ndarray:
        src = self.images[i]
        if src is None:  # a date without acquisition: all no data
            return np.full((self.num_bands, int(window.height), int(window.width)), np.nan, dtype=np.float32)
        block = src.read(window)
        missing = src.nodata_mask(block)
        data = block.astype(np.float32)
        bad = ~np.isfinite(data) & ~missing[None]
        if bad.any():
            raise SceneError(
                src.path,
                f"{int(bad.any(axis=0).sum())} NaN or infinite pixel(s) on {self.dates[i]} (in window {window})",
                "declare them as no-data ('nodata' in scene.yaml or the GeoTIFF nodata tag) or fill them",
            )
        if self.units == "linear":
            data = to_db(data)
        data[:, missing] = np.nan
        return data

    def read_labels(self, window: Window | None = None, dates: Sequence[dt.date] | None = None) -> np.ndarray:
        """Read reference labels as uint8 (T, h, w) for ``dates`` (default: all labelled dates); 0 = none."""
        w = check_window(self.grid, window)
        wanted = self.labelled_dates if dates is None else list(dates)
        out = np.zeros((len(wanted), int(w.height), int(w.width)), dtype=np.uint8)
        for k, d in enumerate(wanted):
            if d not in self._labels:
                raise SceneError(self.manifest.path, f"{d} has no labels", f"labelled dates: {self.labelled_dates}")
            out[k] = self._labels[d].read(w)
        return out

    def read_split(self, window: Window | None = None) -> np.ndarray:
        """Read the train/test split as uint8 (h, w): 0 unused, 1 train, 2 test."""
        if self._split is None:
            raise SceneError(self.manifest.path, "the scene has no 'split'", "add a split raster or vector to scene.yaml")
        return self._split(check_window(self.grid, window))

    def blocks(self, size: int = 1024) -> Iterator[Window]:
        """Windows of at most ``size`` x ``size`` that tile the grid, row by row."""
        for r in range(0, self.grid.height, size):
            for c in range(0, self.grid.width, size):
                yield Window(c, r, min(size, self.grid.width - c), min(size, self.grid.height - r))

    def validate_pixels(self, progress: bool = False, block: int = 1024) -> PixelReport:
        """Read every pixel once, block by block, and raise :class:`SceneError` on the first problem.

        Checks non-finite image values (counted over the whole date), label codes, split values and that
        the split has both train and test pixels. Returns class counts per labelled date and split counts.
        """
        report = PixelReport(
            class_counts={d: {} for d in self.labelled_dates},
            nodata_pixels={d: 0 for d in self.dates},
        )
        split_counts = np.zeros(3, dtype=np.int64)
        windows = list(self.blocks(block))
        for w in tqdm(windows, desc=f"checking {self.name}", disable=not progress, unit="block"):
            for i, d in enumerate(self.dates):
                if self.images[i] is None:
                    continue  # a month without acquisition is no data by definition, not a finding
                report.nodata_pixels[d] += int(np.isnan(self._read_image_counting(i, w)).any(axis=0).sum())
            if self.labelled_dates:
                counts = np.stack([np.bincount(lab.ravel(), minlength=256) for lab in self.read_labels(w)])
                for k, d in enumerate(self.labelled_dates):
                    for code in np.flatnonzero(counts[k]):
                        if code != NO_REFERENCE:
                            report.class_counts[d][int(code)] = report.class_counts[d].get(int(code), 0) + int(counts[k, code])
            if self._split is not None:
                split_counts += np.bincount(self.read_split(w).ravel(), minlength=3)[:3]
        if self._split is not None:
            report.split_counts = {UNUSED: int(split_counts[0]), TRAIN: int(split_counts[1]), TEST: int(split_counts[2])}
            split_path = self.manifest.split.path if isinstance(self.manifest.split, VectorSource) else self.manifest.split
            for split_value, split_name in ((TRAIN, "train"), (TEST, "test")):
                if split_counts[split_value] == 0:
                    raise SceneError(split_path, f"split has no {split_name} pixels", f"mark pixels {split_value} ({split_name})")
        return report

    def _read_image_counting(self, i: int, window: Window) -> np.ndarray:
        """Like :meth:`_read_image`, but count non-finite values over the whole date before failing."""
        try:
            return self._read_image(i, window)
        except SceneError as first:
            src = self.images[i]
            if src is None:
                raise
            total = 0
            for w in self.blocks():
                block = src.read(w).astype(np.float32)
                total += int((~np.isfinite(block) & ~src.nodata_mask(block)[None]).any(axis=0).sum())
            raise SceneError(
                src.path,
                f"{total} NaN or infinite pixel(s) on {self.dates[i]}",
                first.fix,
            ) from None

    def summary(self, report: PixelReport | None = None) -> dict[str, Any]:
        """A JSON-ready description of the scene (and of ``report`` when given), for ``tropicrop inspect``."""
        g = self.grid
        out: dict[str, Any] = {
            "name": self.name,
            "path": str(self.root),
            "width": g.width,
            "height": g.height,
            "crs": g.crs.to_string() if g.crs is not None else None,
            "pixel_size": list(g.res),
            "bounds": list(_bounds(g)),
            "bands": list(self.bands),
            "units": self.units,
            "classes": {str(k): v for k, v in self.classes.items()},
            "dates": [{"date": d.isoformat(), "labelled": d in self._labels, "missing": src is None}
                      for d, src in zip(self.dates, self.images, strict=True)],
        }
        if report is not None:
            out["class_pixels"] = {
                d.isoformat(): {self.classes[c]: n for c, n in sorted(counts.items())}
                for d, counts in report.class_counts.items()
            }
            out["split_pixels"] = {"unused": report.split_counts.get(UNUSED), "train": report.split_counts.get(TRAIN),
                                   "test": report.split_counts.get(TEST)} if report.split_counts else None
            out["nodata_pixels"] = {d.isoformat(): n for d, n in report.nodata_pixels.items() if n}
        return out


def _bounds(g: Grid) -> tuple[float, float, float, float]:
    xs = [g.transform.c, g.transform.c + g.transform.a * g.width]
    ys = [g.transform.f, g.transform.f + g.transform.e * g.height]
    return min(xs), min(ys), max(xs), max(ys)


def load_scene(path: str | Path, *, check_pixels: bool = False, progress: bool = False) -> Scene:
    """Load the scene folder ``path`` (or its ``scene.yaml``), checking the manifest and every file header.

    With ``check_pixels`` every pixel is also read once (:meth:`Scene.validate_pixels`). Problems raise
    :class:`~tropicrop.errors.SceneError` naming the file and the fix.
    """
    scene = Scene(read_manifest(path))
    if check_pixels:
        scene.validate_pixels(progress=progress)
    return scene
