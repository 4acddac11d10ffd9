"""The size rule: one page stays under :data:`PAGE_LIMIT` whatever the scene, by drawing every month's overlays
at one common, coarser scale when needed.

The rule: overlays keep the maps' resolution up to :data:`MAX_SIDE` pixels on their longest side (a screen
shows no more, and browsers decode larger images slowly); beyond that, or when the encoded images of all
months would not fit in what the page leaves for them, every overlay is shrunk by the same factor. That
factor is measured, not guessed from a worst case: the first month is encoded, the total extrapolated to
all months, and the scale grows with the square root of the excess (encoded size follows the pixel
count) until the encoded months fit. The GeoTIFFs stay the full-resolution product.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol, TypeVar

from tqdm import tqdm

PAGE_LIMIT = 30_000_000  # bytes (characters: the page is ASCII) of the whole HTML file
MAX_SIDE = 2048  # longest side of an overlay in pixels
PARCEL_SHARE = 0.25  # at most this share of the page for the parcels' GeoJSON
MARGIN = 1.1  # shrink 10 % beyond the measured excess, so one retry usually fits


class Encoded(Protocol):
    """Anything that knows how many characters it adds to the page (a month's layers)."""

    def encoded_bytes(self) -> int: ...


T = TypeVar("T", bound=Encoded)


def start_scale(width: int, height: int) -> float:
    """The scale (>= 1, a divisor of the resolution) that brings the longest side to :data:`MAX_SIDE`."""
    return max(1.0, max(width, height) / MAX_SIDE)


def shrink(scale: float, used: float, allowed: float) -> float:
    """The next, coarser scale when images of ``used`` characters must fit in ``allowed``."""
    return scale * max(MARGIN, math.sqrt(used / max(allowed, 1.0)) * MARGIN)


def fit_layers(render: Callable[[int, float], T], count: int, allowed: int, start: float, longest: int,
                           progress: bool = False) -> tuple[float, list[T]]:
    """``count`` months rendered by ``render(i, scale)`` at the finest scale >= ``start`` at which their encoded
    sizes sum to at most ``allowed``; returns the scale and the months.

    Raises:
        ValueError: not even one-pixel overlays fit (``allowed`` is smaller than ``count`` tiny images).
    """
    scale = start
    probe: T | None = render(0, scale)
    assert probe is not None
    if probe.encoded_bytes() * count > allowed:
        scale, probe = shrink(scale, probe.encoded_bytes() * count, allowed), None
    while True:
        if scale > 2 * longest:
            raise ValueError(f"{count} months of overlays cannot fit in {allowed} bytes")
        layers: list[T] = []
        used = 0
        for i in tqdm(range(count), desc=f"overlays at 1/{scale:.2f}", unit="month", disable=not progress):
            month = probe if i == 0 and probe is not None else render(i, scale)
            layers.append(month)
            used += month.encoded_bytes()
            if used > allowed:
                break
        if used <= allowed:
            return scale, layers
        scale, probe = shrink(scale, used * count / len(layers), allowed), None
