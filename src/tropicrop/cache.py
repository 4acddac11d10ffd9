"""A compact on-disk copy of a training scene region, so training memory does not grow with the scene.

The region training may draw patches from is read once, in strips of rows, and written to ``RUN/cache/``:
dB images as float16 (half of float32; the quantisation step is below 0.01 dB at the backscatter values of
Sentinel-1, far below the speckle), model class indices as uint8 and the usable-pixel mask. The
normalisation is fitted in the same pass, from float64 running sums of the float32 dB values (the same
figures as fitting on the whole region in memory, up to rounding). Patches are then read through a memory
map that is dropped every :data:`READS_PER_MAP` reads, so the pages a long training run has touched do
not accumulate in its resident memory. The folder is built under a temporary name and renamed when
complete; a resumed run whose cache matches the scene, region and class table reuses it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.windows import Window
from tqdm import tqdm

from tropicrop.classes import ClassTable
from tropicrop.scene import Scene
from tropicrop.windows import TEST, TRAIN, Normalizer, SceneTensors

log = logging.getLogger(__name__)

CACHE_VERSION = 1
STRIP_BYTES = 64 * 1024**2  # float32 bytes of one strip of rows read from the scene while building
READS_PER_MAP = 256  # patch reads through one memory map before it is dropped (bounds the resident pages)


class CachedImages:
    """Images (T, C, h, w) stored as float16 dB in a ``.npy``; indexing reads through a memory map and
    returns normalised float32, like the in-memory ``SceneTensors.images``."""

    def __init__(self, path: Path, normalizer: Normalizer) -> None:
        self.path = path
        self.normalizer = normalizer
        self._map: np.ndarray | None = None
        self._reads = 0
        self.shape: tuple[int, ...] = tuple(self._array().shape)

    def _array(self) -> np.ndarray:
        if self._map is None or self._reads >= READS_PER_MAP:
            self._map = None  # unmapped: its resident pages leave this process (the OS page cache keeps them)
            self._map = np.load(self.path, mmap_mode="r")
            self._reads = 0
        self._reads += 1
        return self._map

    def __getitem__(self, key: Any) -> np.ndarray:
        return self.normalizer(np.asarray(self._array()[key], dtype=np.float32))

    def __getstate__(self) -> dict[str, Any]:  # DataLoader workers open their own map
        return {**self.__dict__, "_map": None, "_reads": 0}


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


def _key(scene: Scene, window: Window, classes: ClassTable, use: str) -> dict[str, Any]:
    """What the cache depends on: the scene's files (size, time), the region, the class table, the use."""
    files = sorted(p for p in Path(scene.root).rglob("*") if p.is_file())
    return {"version": CACHE_VERSION, "scene": str(Path(scene.root).resolve()),
            "files": [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in files],
            "window": [int(window.col_off), int(window.row_off), int(window.width), int(window.height)],
            "classes": list(classes.names), "use": use}


def cached_scene_tensors(scene: Scene, classes: ClassTable, normalizer: Normalizer | None, use: str, length: int,
                         window: Window, mask: np.ndarray, folder: Path,
                         progress: bool = False) -> tuple[SceneTensors, Normalizer]:
    """``SceneTensors`` of ``window`` backed by the cache in ``folder`` (built if missing or stale), and the
    normalisation: ``normalizer`` if given, else fitted on the pixels where ``mask`` (h, w) is true.

    ``use`` as in :func:`tropicrop.windows.load_scene_tensors`: ``train`` keeps labels of split == 1 only
    and never lets test pixels into a patch; ``all`` uses every labelled pixel.
    """
    if use not in ("train", "all"):
        raise ValueError(f"use must be 'train' or 'all', got {use!r}")
    key = _key(scene, window, classes, use)
    meta_path = folder / "cache.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else None
    if meta is None or meta.get("key") != key:
        if folder.exists():
            log.info("rebuilding the stale training cache %s", folder)
            shutil.rmtree(folder)
        _build(scene, classes, use, window, mask, folder, key, progress)
        meta = json.loads(meta_path.read_text())
    fitted = Normalizer.from_dict(meta["normalizer"])
    normalizer = normalizer or fitted
    tensors = SceneTensors(images=CachedImages(folder / "images.npy", normalizer),
                           labels=np.load(folder / "labels.npy", mmap_mode="r"),
                           usable=np.load(folder / "usable.npy"), dates=list(scene.dates),
                           label_dates=list(scene.labelled_dates), length=length)
    return tensors, normalizer


def _build(scene: Scene, classes: ClassTable, use: str, window: Window, mask: np.ndarray, folder: Path,
           key: dict[str, Any], progress: bool) -> None:
    """Write the cache into a temporary folder beside ``folder``, strip by strip, and rename it."""
    h, w = int(window.height), int(window.width)
    t, c = len(scene.dates), scene.num_bands
    lookup = classes.lookup(scene.classes)
    rows = max(1, STRIP_BYTES // (t * c * w * 4))
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.partial-"))
    try:
        images = np.lib.format.open_memmap(tmp / "images.npy", mode="w+", dtype=np.float16, shape=(t, c, h, w))
        labels = np.lib.format.open_memmap(tmp / "labels.npy", mode="w+", dtype=np.uint8,
                                           shape=(len(scene.labelled_dates), h, w))
        usable = np.ones((h, w), dtype=bool)
        stats = _Stats.zeros(c)
        r0, c0 = int(window.row_off), int(window.col_off)
        for top in tqdm(range(0, h, rows), desc=f"caching {scene.name}", unit="strip", disable=not progress):
            n = min(rows, h - top)
            strip = Window(c0, r0 + top, w, n)
            raw = scene.read_images(strip)  # (T, C, n, w) float32 dB, NaN = no data
            stats.add(np.moveaxis(raw[:, :, mask[top : top + n]], 1, 0).reshape(c, -1))
            images[:, :, top : top + n] = raw.astype(np.float16)
            strip_labels = lookup[scene.read_labels(strip)]
            if use == "train":
                split = scene.read_split(strip)
                strip_labels[:, split != TRAIN] = 0
                usable[top : top + n] = split != TEST
            labels[:, top : top + n] = strip_labels
            del raw
        images.flush()
        labels.flush()
        del images, labels
        np.save(tmp / "usable.npy", usable)
        (tmp / "cache.json").write_text(json.dumps({"key": key, "normalizer": stats.normalizer().to_dict()}))
        try:
            os.replace(tmp, folder)
        except OSError:  # another process (a DDP rank) renamed its complete copy first
            if not (folder / "cache.json").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
