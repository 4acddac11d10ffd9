"""A compact on-disk copy of a training scene region, so training memory does not grow with the scene.

The region training may draw patches from is read in strips of rows: once to fit the normalisation (float64
running moments of the float32 dB values: the figures of a fit on the whole region in memory, up to
rounding), once to write ``RUN/cache/``: normalised images as float16 (half of float32; a step of at most
0.004 standard deviations within 2 of the mean, about 0.015 dB, far below the speckle), no data as 0 as
:class:`Normalizer` makes it, model class indices as uint8 and the usable-pixel mask. A patch read is then
a slice and a conversion to float32, through a memory map whose pages are released every
:data:`READS_PER_MAP` reads, so the pages a long training run has touched do not accumulate in its
resident memory. The folder is built under a temporary name and renamed when
complete; a resumed run whose cache matches the scene, region and class table reuses it. A run of several
scenes has one such folder per scene and fits one normalisation over all of them (:func:`fit_normalizer`).
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.windows import Window
from tqdm import tqdm

from tropicrop.classes import ClassTable
from tropicrop.scene import TEST, TRAIN, Scene
from tropicrop.windows.normalize import Normalizer
from tropicrop.windows.tensors import TEST_INPUTS, SceneTensors

log = logging.getLogger(__name__)

CACHE_VERSION = 2  # 2: test_inputs in the key
STRIP_BYTES = 64 * 1024**2  # float32 bytes of one strip of rows read from the scene while building
READS_PER_MAP = 4096  # patch reads between two releases of the memory map's pages (bounds the resident pages)


class CachedImages:
    """Normalised images (T, C, h, w) stored as float16 in a ``.npy``; indexing reads through a memory map
    and returns float32, like the in-memory ``SceneTensors.images``.

    Every :data:`READS_PER_MAP` reads the map's pages are released (``madvise(MADV_DONTNEED)``: they leave
    this process's resident memory; the OS page cache keeps them), so a long run's RSS does not grow with
    the pages it has touched.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._map: mmap.mmap | None = None
        self._array: np.ndarray | None = None
        self._reads = 0
        self.shape: tuple[int, ...] = tuple(self._images().shape)

    def _images(self) -> np.ndarray:
        if self._array is None:
            header = np.load(self.path, mmap_mode="r")  # a np.memmap: shape, dtype and data offset of the .npy
            shape, dtype, offset = header.shape, header.dtype, int(header.offset)
            del header
            with open(self.path, "rb") as f:
                self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            self._array = np.frombuffer(self._map, dtype=dtype, count=int(np.prod(shape)), offset=offset).reshape(shape)
        self._reads += 1
        if self._reads >= READS_PER_MAP and self._map is not None and hasattr(mmap, "MADV_DONTNEED"):
            self._map.madvise(mmap.MADV_DONTNEED)
            self._reads = 0
        return self._array

    def __getitem__(self, key: Any) -> np.ndarray:
        """Normalised float32 (..., C, h, w)."""
        out: np.ndarray = self._images()[key].astype(np.float32)
        return out

    def __getstate__(self) -> dict[str, Any]:  # DataLoader workers open their own map
        return {**self.__dict__, "_map": None, "_array": None, "_reads": 0}


@dataclass
class _Stats:
    """Running count, mean and sum of squared deviations per band (Chan et al.'s parallel update)."""

    count: np.ndarray
    mean: np.ndarray
    m2: np.ndarray

    @classmethod
    def zeros(cls, bands: int) -> _Stats:
        return cls(np.zeros(bands), np.zeros(bands), np.zeros(bands))

    def add(self, values: np.ndarray) -> None:
        """Add values (C, N) float32; NaN = no data, skipped."""
        for b, row in enumerate(values):
            v = row[np.isfinite(row)].astype(np.float64)
            if v.size == 0:
                continue
            n, mean = float(v.size), float(v.mean())
            m2 = float(((v - mean) ** 2).sum())
            total = self.count[b] + n
            delta = mean - self.mean[b]
            self.mean[b] += delta * n / total
            self.m2[b] += m2 + delta**2 * self.count[b] * n / total
            self.count[b] = total

    def normalizer(self) -> Normalizer:
        if not np.all(self.count > 0):
            raise ValueError("no valid training pixels to fit the normalisation on")
        std = np.sqrt(self.m2 / self.count)
        return Normalizer(mean=tuple(float(v) for v in self.mean), std=tuple(float(max(v, 1e-6)) for v in std))


def _key(scene: Scene, window: Window, classes: ClassTable, use: str, test_inputs: str) -> dict[str, Any]:
    """What the cache depends on: the scene's files (size, time), the region, the class table, the use and
    whether test-area images may be input."""
    files = sorted(p for p in Path(scene.root).rglob("*") if p.is_file())
    return {"version": CACHE_VERSION, "scene": str(Path(scene.root).resolve()),
            "files": [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in files],
            "window": [int(window.col_off), int(window.row_off), int(window.width), int(window.height)],
            "classes": list(classes.names), "use": use, "test_inputs": test_inputs}


def cached_scene_tensors(scene: Scene, classes: ClassTable, normalizer: Normalizer | None, use: str, length: int,
                         window: Window, mask: np.ndarray, folder: Path,
                         progress: bool = False, test_inputs: str = "exclude") -> tuple[SceneTensors, Normalizer]:
    """``SceneTensors`` of ``window`` backed by the cache in ``folder`` (built if missing or stale), and the
    normalisation: ``normalizer`` if given, else fitted on the pixels where ``mask`` (h, w) is true.

    ``use`` and ``test_inputs`` as in :func:`tropicrop.windows.tensors.load_scene_tensors`: ``train`` keeps labels
    of split == 1 only, and with ``test_inputs`` = ``exclude`` never lets test pixels into a patch (with
    ``context`` their images may be input, labels 0); ``all`` uses every labelled pixel. Dates without an
    acquisition (``scene.missing``) are stored as no data (0 once normalised) and marked as in memory.
    """
    if use not in ("train", "all"):
        raise ValueError(f"use must be 'train' or 'all', got {use!r}")
    if test_inputs not in TEST_INPUTS:
        raise ValueError(f"test_inputs must be one of {', '.join(TEST_INPUTS)}, got {test_inputs!r}")
    key = _key(scene, window, classes, use, test_inputs)
    meta_path = folder / "cache.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else None
    if meta is None or meta.get("key") != key or (normalizer is not None and meta["normalizer"] != normalizer.to_dict()):
        if folder.exists():
            log.info("rebuilding the stale training cache %s", folder)
            shutil.rmtree(folder)
        normalizer = normalizer or fit_normalizer([(scene, window, mask)], progress)
        _build(scene, classes, normalizer, use, test_inputs, window, folder, key, progress)
        meta = json.loads(meta_path.read_text())
    tensors = SceneTensors(images=CachedImages(folder / "images.npy"),
                           labels=np.load(folder / "labels.npy", mmap_mode="r"),
                           usable=np.load(folder / "usable.npy"), dates=list(scene.dates),
                           label_dates=list(scene.labelled_dates), length=length, missing=scene.missing)
    return tensors, Normalizer.from_dict(meta["normalizer"])


def _strips(scene: Scene, window: Window, what: str, progress: bool) -> Iterator[tuple[int, Window]]:
    """(first row within ``window``, window) of strips of rows whose float32 images fit :data:`STRIP_BYTES`."""
    h, w = int(window.height), int(window.width)
    rows = max(1, STRIP_BYTES // (len(scene.dates) * scene.num_bands * w * 4))
    r0, c0 = int(window.row_off), int(window.col_off)
    for top in tqdm(range(0, h, rows), desc=f"{what} {scene.name}", unit="strip", disable=not progress):
        yield top, Window(c0, r0 + top, w, min(rows, h - top))


def fit_normalizer(regions: Sequence[tuple[Scene, Window, np.ndarray]], progress: bool = False) -> Normalizer:
    """The normalisation of the pixels where ``mask`` (h, w) is true in ``window`` of each scene of
    ``regions`` ``[(scene, window, mask)]``, over all their dates together, strip by strip (the scenes
    must have the same bands)."""
    stats = _Stats.zeros(regions[0][0].num_bands)
    for scene, window, mask in regions:
        for top, strip in _strips(scene, window, "normalising", progress):
            raw = scene.read_images(strip)  # (T, C, n, w) float32 dB, NaN = no data
            stats.add(np.moveaxis(raw[:, :, mask[top : top + int(strip.height)]], 1, 0).reshape(scene.num_bands, -1))
    return stats.normalizer()


class _NpyWriter:
    """A ``.npy`` of shape (..., H, W) written by strips of rows with plain writes (``os.pwrite``), not
    through a memory map whose dirty pages would count in this process's resident memory."""

    def __init__(self, path: Path, dtype: type, shape: tuple[int, ...]) -> None:
        np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape).flush()  # header + sparse file
        self.offset = int(np.load(path, mmap_mode="r").offset)
        self.shape, self.itemsize = shape, np.dtype(dtype).itemsize
        self.fd = os.open(path, os.O_WRONLY)

    def write_rows(self, top: int, rows: np.ndarray) -> None:
        """Write ``rows`` (..., n, W) at rows ``[top, top + n)`` of every leading index."""
        h, w = self.shape[-2:]
        flat = np.ascontiguousarray(rows).reshape(-1, rows.shape[-2] * w)  # one contiguous run per leading index
        for k, run in enumerate(flat):
            os.pwrite(self.fd, run.tobytes(), self.offset + (k * h + top) * w * self.itemsize)

    def close(self) -> None:
        os.fsync(self.fd)
        os.close(self.fd)


def _build(scene: Scene, classes: ClassTable, normalizer: Normalizer, use: str, test_inputs: str, window: Window, folder: Path,
           key: dict[str, Any], progress: bool) -> None:
    """Write the cache into a temporary folder beside ``folder``, strip by strip, and rename it."""
    h, w = int(window.height), int(window.width)
    lookup = classes.lookup(scene.classes)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.partial-"))
    try:
        images = _NpyWriter(tmp / "images.npy", np.float16, (len(scene.dates), scene.num_bands, h, w))
        labels = _NpyWriter(tmp / "labels.npy", np.uint8, (len(scene.labelled_dates), h, w))
        usable = np.ones((h, w), dtype=bool)
        for top, strip in _strips(scene, window, "caching", progress):
            rows = slice(top, top + int(strip.height))
            images.write_rows(top, normalizer(scene.read_images(strip)).astype(np.float16))
            strip_labels = lookup[scene.read_labels(strip)]
            if use == "train":
                split = scene.read_split(strip)
                strip_labels[:, split != TRAIN] = 0
                if test_inputs == "exclude":
                    usable[rows] = split != TEST
            labels.write_rows(top, strip_labels)
        images.close()
        labels.close()
        np.save(tmp / "usable.npy", usable)
        (tmp / "cache.json").write_text(json.dumps({"key": key, "normalizer": normalizer.to_dict()}))
        try:
            os.replace(tmp, folder)
        except OSError:  # another process (a DDP rank) renamed its complete copy first
            if not (folder / "cache.json").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
