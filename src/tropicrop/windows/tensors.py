"""A scene region ready for batching: normalised images, labels at the labelled dates, the usable-pixel mask."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from rasterio.windows import Window

from tropicrop.classes import ClassTable
from tropicrop.scene import TEST, TRAIN, Scene
from tropicrop.windows.dates import WindowIndex, target_window
from tropicrop.windows.normalize import Normalizer

TEST_INPUTS = ("exclude", "context")
"""May test-area images be training input? exclude: no (strict rule); context: yes, labels masked."""


class ImageStack(Protocol):
    """What batching needs of a region's images (T, C, H, W): their shape and normalised float32 slices (an
    array in memory, or :class:`tropicrop.cache.CachedImages` read from disk)."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    def __getitem__(self, key: Any) -> np.ndarray: ...


@dataclass
class SceneTensors:
    """A scene region in memory, ready for batching.

    ``images`` (T, C, H, W) float32 normalised (in memory, or an :class:`ImageStack` on disk);
    ``labels`` (L, H, W) uint8 model class indices at the labelled dates, already 0 outside the pixels that
    may be used; ``usable`` (H, W) bool, pixels whose inputs may enter a batch; ``dates`` all acquisition
    dates; ``label_dates`` the L labelled dates.
    """

    images: np.ndarray | ImageStack
    labels: np.ndarray
    usable: np.ndarray
    dates: list[dt.date]
    label_dates: list[dt.date]
    length: int = 12
    missing: np.ndarray | None = None  # (T,) bool, dates without acquisition (padding in every window)

    def window(self, target: dt.date) -> WindowIndex:
        """The window ending at ``target``."""
        return target_window(self.dates, target, self.length, self.missing)

    def gather(self, origins: np.ndarray, target: dt.date, size: int, every_step: bool = False) -> dict[str, torch.Tensor]:
        """Batch of patches (B,) ``origins`` (row, col) at ``target``: images (B,T,C,P,P), doy (B,T),
        valid (B,T), labels (B,P,P) int64; with ``every_step`` also step_labels (B,T,P,P) int64, the labels
        of every date of the window (0 where a date has none), for networks that classify every date."""
        win = self.window(target)
        b = len(origins)
        t, c = self.length, self.images.shape[1]
        images = np.zeros((b, t, c, size, size), dtype=np.float32)
        labels = np.zeros((b, size, size), dtype=np.int64)
        li = self.label_dates.index(target) if target in self.label_dates else None
        for k, (r, col) in enumerate(origins):
            for step, i in enumerate(win.indices):
                if i >= 0:
                    images[k, step] = self.images[i, :, r : r + size, col : col + size]
            if li is not None:
                labels[k] = self.labels[li, r : r + size, col : col + size]
        batch = {
            "images": torch.from_numpy(images),
            "doy": torch.from_numpy(np.broadcast_to(win.doy, (b, t)).copy()),
            "valid": torch.from_numpy(np.broadcast_to(win.valid, (b, t)).copy()),
            "labels": torch.from_numpy(labels),
        }
        if every_step:
            batch["step_labels"] = torch.from_numpy(self._step_labels(origins, win, size))
        return batch

    def _step_labels(self, origins: np.ndarray, win: WindowIndex, size: int) -> np.ndarray:
        """Labels (B, T, P, P) int64 of every date of window ``win`` at ``origins``; 0 at unlabelled dates."""
        out = np.zeros((len(origins), len(win.indices), size, size), dtype=np.int64)
        for step, i in enumerate(win.indices):
            date = self.dates[int(i)] if i >= 0 else None
            if date is None or date not in self.label_dates:
                continue
            li = self.label_dates.index(date)
            for k, (r, col) in enumerate(origins):
                out[k, step] = self.labels[li, r : r + size, col : col + size]
        return out


def load_scene_tensors(
    scene: Scene,
    classes: ClassTable,
    normalizer: Normalizer,
    use: str = "train",
    length: int = 12,
    window: Window | None = None,
    test_inputs: str = "exclude",
) -> SceneTensors:
    """Read ``scene`` (or ``window`` of it) into memory for training.

    ``use`` = ``train``: labels from split == 1 only; with ``test_inputs`` = ``exclude`` test pixels are
    never in a patch, with ``context`` their images may be input (their labels stay 0).
    ``use`` = ``all``: every labelled pixel (the paper's Baseline 2 / VUnet train on all LEM 17/18 polygons).
    """
    if use not in ("train", "all"):
        raise ValueError(f"use must be 'train' or 'all', got {use!r}")
    if test_inputs not in TEST_INPUTS:
        raise ValueError(f"test_inputs must be one of {', '.join(TEST_INPUTS)}, got {test_inputs!r}")
    images = normalizer(scene.read_images(window))
    lookup = classes.lookup(scene.classes)
    labels = lookup[scene.read_labels(window)]
    if use == "train":
        split = scene.read_split(window)
        labels[:, split != TRAIN] = 0
        usable = split != TEST if test_inputs == "exclude" else np.ones(split.shape, dtype=bool)
    else:
        usable = np.ones(images.shape[-2:], dtype=bool)
    return SceneTensors(images=images, labels=labels, usable=usable, dates=list(scene.dates),
                        label_dates=list(scene.labelled_dates), length=length, missing=scene.missing)
