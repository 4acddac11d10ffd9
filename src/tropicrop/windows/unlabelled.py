"""Unlabelled patches of a scene: its images and dates only, never a label.

Adaptation to a new year (:mod:`tropicrop.adaptation`) and self-supervised pretraining
(:mod:`tropicrop.training.pretrain`) read scenes through :func:`target_images`, which builds its
:class:`~tropicrop.windows.tensors.SceneTensors` from ``Scene.read_images`` alone (empty label stack, no split):
no code path here touches a label raster, a vector label column or the split. Target months are the dates
whose window holds a full year of acquisitions, decided from the acquisition dates, not from which dates
carry labels.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from rasterio.windows import Window

from tropicrop.scene import Scene
from tropicrop.windows.dates import shift_doy
from tropicrop.windows.normalize import Normalizer
from tropicrop.windows.tensors import SceneTensors

MAX_SIDE = 1024
"""Adaptation and pretraining read at most a central MAX_SIDE x MAX_SIDE window of a scene (statistics, BatchNorm,
shift scores, pseudo-labels and reconstruction need a sample of the year, not every pixel of a large scene)."""


def central_window(scene: Scene, max_side: int = MAX_SIDE) -> Window:
    """The central window of at most ``max_side`` pixels a side."""
    h, w = scene.grid.height, scene.grid.width
    hh, ww = min(h, max_side), min(w, max_side)
    return Window((w - ww) // 2, (h - hh) // 2, ww, hh)


def adaptation_dates(scene: Scene, length: int) -> list[dt.date]:
    """Target dates used for adaptation: those whose ``length``-date window is all real acquisitions; if the
    scene is shorter, the later half of its dates (each window then holds at least half a year)."""
    full = [d for i, d in enumerate(scene.dates) if i >= length - 1]
    return full or list(scene.dates[len(scene.dates) // 2 :])


def target_images(scene: Scene, normalizer: Normalizer, length: int, max_side: int = MAX_SIDE) -> SceneTensors:
    """The new year's normalised images in memory with an empty label stack (adaptation never reads labels)."""
    window = central_window(scene, max_side)
    images = normalizer(scene.read_images(window))
    h, w = images.shape[-2:]
    return SceneTensors(images=images, labels=np.zeros((0, h, w), dtype=np.uint8), usable=np.ones((h, w), dtype=bool),
                        dates=list(scene.dates), label_dates=[], length=length)


@dataclass
class PatchSampler:
    """Random patches of the new year at random target dates, with a day-of-year offset applied.

    ``batch(n, rng)`` returns a dict like :meth:`SceneTensors.gather` (images (B,T,C,P,P), doy (B,T), valid
    (B,T); labels all 0) for ``n`` patches at one target date drawn from ``targets``.
    """

    data: SceneTensors
    targets: Sequence[dt.date]
    patch_size: int
    doy_offset: int = 0

    def __post_init__(self) -> None:
        h, w = self.data.images.shape[-2:]
        self.patch_size = min(self.patch_size, h, w)

    def origins(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, 2) random top-left corners."""
        h, w = self.data.images.shape[-2:]
        p = self.patch_size
        return np.stack([rng.integers(0, h - p + 1, n), rng.integers(0, w - p + 1, n)], axis=1)

    def gather(self, origins: np.ndarray, target: dt.date, doy_offset: int | None = None) -> dict[str, torch.Tensor]:
        """Patches at ``origins`` for ``target``, days of year moved by ``doy_offset`` (default: the sampler's)."""
        batch = self.data.gather(origins, target, self.patch_size)
        offset = self.doy_offset if doy_offset is None else doy_offset
        if offset:
            batch["doy"] = shift_doy(batch["doy"], offset)
        return batch

    def batch(self, n: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """``n`` random patches at one random target date."""
        target = self.targets[int(rng.integers(len(self.targets)))]
        return self.gather(self.origins(n, rng), target)


def grid_origins(data: SceneTensors, patch_size: int, count: int, seed: int) -> np.ndarray:
    """Up to ``count`` non-overlapping patch corners spread over the sampled window (fixed by ``seed``)."""
    h, w = data.images.shape[-2:]
    p = min(patch_size, h, w)
    rows, cols = np.arange(0, h - p + 1, p), np.arange(0, w - p + 1, p)
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    corners = np.stack([rr.ravel(), cc.ravel()], axis=1)
    if len(corners) > count:
        corners = corners[np.sort(np.random.default_rng(seed).choice(len(corners), count, replace=False))]
    return corners

