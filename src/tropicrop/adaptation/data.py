"""Year-B inputs for adaptation: images and dates only, never a label.

The unlabelled patches themselves (:func:`target_images`, :class:`PatchSampler`, ...) live in
:mod:`tropicrop.windows.unlabelled`, shared with self-supervised pretraining; here is what only adaptation
needs: the new year's statistics and the per-pixel model's view of its images.
"""

from __future__ import annotations

import numpy as np

from tropicrop.scene import Scene
from tropicrop.windows.normalize import Normalizer
from tropicrop.windows.tensors import SceneTensors
from tropicrop.windows.unlabelled import (
    MAX_SIDE,
    PatchSampler,
    adaptation_dates,
    central_window,
    grid_origins,
    target_images,
)

__all__ = ["MAX_SIDE", "PatchSampler", "adaptation_dates", "central_window", "fit_year_statistics", "grid_origins",
           "pixel_images", "target_images"]


def fit_year_statistics(scene: Scene, max_side: int = MAX_SIDE) -> Normalizer:
    """Per-band mean/std of the new year's dB values over every date and pixel of the sampled window."""
    window = central_window(scene, max_side)
    images = scene.read_images(window)
    return Normalizer.fit(images, np.ones(images.shape[-2:], dtype=bool))


def pixel_images(scene: Scene, normalizer: Normalizer, length: int, looks: int,
                 max_side: int = MAX_SIDE) -> SceneTensors:
    """The new year's images as a per-pixel model's features take them (:func:`tropicrop.classical.normalise`:
    no data stays missing, ``looks`` x ``looks`` mean filter), with an empty label stack."""
    from tropicrop.classical import normalise

    window = central_window(scene, max_side)
    images = normalise(scene.read_images(window), normalizer, looks)
    h, w = images.shape[-2:]
    return SceneTensors(images=images, labels=np.zeros((0, h, w), dtype=np.uint8), usable=np.ones((h, w), dtype=bool),
                        dates=list(scene.dates), label_dates=[], length=length)
