"""Warped arrays -> image data URIs that the page inlines: class maps and confidence as paletted PNGs (one byte
a pixel before compression, crisp edges, transparent no-data), the radar composite as JPEG (a photo-like
background where PNG would be several times larger)."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping

import numpy as np
from PIL import Image

CONFIDENCE_STEPS = 101  # confidence rasters hold round(100 * probability): 0..100
TRANSPARENT = 255  # palette index drawn transparent in the confidence PNG
JPEG_QUALITY = 80


def data_uri(image: Image.Image, fmt: str, **options: object) -> str:
    """``image`` encoded as ``fmt`` (PNG, JPEG) in a base64 ``data:`` URI."""
    buf = io.BytesIO()
    image.save(buf, format=fmt, **options)
    return f"data:image/{fmt.lower()};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"


def classes_png(codes: np.ndarray, colors: Mapping[int, tuple[int, int, int, int]]) -> str:
    """Class map (h, w) of codes ``0..K-1`` as a paletted PNG data URI in the project's ``colors``
    (:func:`tropicrop.palette.class_colors`); code 0 (no prediction) and unknown codes are transparent."""
    k = max(colors) + 1
    codes = np.where(codes < k, codes, 0).astype(np.uint8)
    palette = [channel for code in range(k) for channel in colors.get(code, (0, 0, 0, 0))[:3]]
    image = Image.fromarray(codes, mode="P")
    image.putpalette(palette)
    return data_uri(image, "PNG", transparency=0, optimize=False, compress_level=9)


def confidence_ramp() -> list[tuple[int, int, int]]:
    """RGB of confidence 0..100 % (matplotlib's viridis: perceptually even, readable by colour-blind users)."""
    from matplotlib import colormaps

    ramp = colormaps["viridis"]
    return [tuple(round(255 * c) for c in ramp(i / (CONFIDENCE_STEPS - 1))[:3]) for i in range(CONFIDENCE_STEPS)]  # type: ignore[misc]


def confidence_png(percent: np.ndarray, valid: np.ndarray) -> str:
    """Confidence (h, w) in percent (0..100) as a paletted PNG data URI; pixels not ``valid`` are transparent."""
    index = np.where(valid, np.clip(percent, 0, CONFIDENCE_STEPS - 1), TRANSPARENT).astype(np.uint8)
    palette = [channel for rgb in confidence_ramp() for channel in rgb]
    palette += [0] * (3 * 256 - len(palette))
    image = Image.fromarray(index, mode="P")
    image.putpalette(palette)
    return data_uri(image, "PNG", transparency=TRANSPARENT, compress_level=9)


def composite_jpeg(rgb: np.ndarray) -> str:
    """False-colour composite (3, h, w) uint8 as a JPEG data URI."""
    return data_uri(Image.fromarray(np.ascontiguousarray(np.moveaxis(rgb, 0, -1)), mode="RGB"), "JPEG", quality=JPEG_QUALITY)
