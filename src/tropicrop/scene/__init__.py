"""The one in-memory type for a multi-date image stack with its labels and train/test split.

A :class:`Scene` is a description plus lazy readers: loading checks the manifest and every file's header
(size, CRS, transform, band count) without reading pixels, so a 10 000 x 10 000 x 23-date scene loads in
milliseconds. Pixels are read per window; every read checks what it reads (non-finite values, unknown class
codes) and :meth:`Scene.validate_pixels` streams the whole scene once for a full check.

Conventions: images (T, C, H, W) float32 in dB with NaN where there is no data; labels (T, H, W) uint8 class
codes with 0 = no reference; split (H, W) uint8 with 0 unused, 1 train, 2 test.

The rooms: :mod:`~tropicrop.scene.scene` the :class:`Scene` and :func:`load_scene`;
:mod:`~tropicrop.scene.sources` opening and checking the files ``scene.yaml`` names;
:mod:`~tropicrop.scene.codes` the split and label codes and dB.
"""

from __future__ import annotations

from tropicrop.scene.codes import NO_REFERENCE, TEST, TRAIN, UNUSED, to_db
from tropicrop.scene.scene import PixelReport, Scene, load_scene
from tropicrop.scene.sources import SceneWarning

__all__ = ["NO_REFERENCE", "TEST", "TRAIN", "UNUSED", "PixelReport", "Scene", "SceneWarning", "load_scene", "to_db"]
