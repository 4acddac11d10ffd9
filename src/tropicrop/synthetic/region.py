"""The synthetic region: parcels on a real UTM grid, roads between them, and the train/test split.

Fields are laid out by recursive splitting of the scene along farm roads (wider at the top levels, 10 m
tracks below), as in the large, regular farms of western Bahia. Each leaf becomes a jittered quadrilateral
field, a centre pivot (whose corners stay unlabelled) or, where a smooth "native vegetation" field is high,
an irregular Cerrado remnant; pasture, eucalyptus and coffee take a few leaves. At full scale (size >= 2048)
fields are about 20-300 ha; smaller scenes shrink every length so that they still hold tens to hundreds of
parcels (a 512 px scene, 5 km wide, would otherwise hold only a dozen real-size fields).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from affine import Affine
from rasterio.features import rasterize
from shapely import affinity
from shapely.geometry import Point, Polygon, box

from tropicrop.synthetic.noise import smooth_noise

CRS = "EPSG:32723"
"""WGS 84 / UTM zone 23S, the zone of Luis Eduardo Magalhaes (Bahia)."""
ORIGIN = (400_000.0, 8_660_000.0)
"""Upper-left corner (x, y) of every synthetic scene, near Luis Eduardo Magalhaes."""
PIXEL = 10.0
"""Pixel size in metres (Sentinel-1 GRD resampled to 10 m, as in the paper)."""

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Region:
    """Parcels of one scene, shared by both years.

    ``pid`` is the (H, W) int32 parcel-id raster: 0 = roads and gaps, 1..n_parcels = labelled parcels,
    above that = unlabelled pivot corners. The per-id tuples/arrays have length ``n_ids`` and are indexed
    by those ids; ``geometries`` (metres, EPSG:32723) and ``shapes`` cover the labelled parcels 1..n_parcels.
    """

    size: int
    transform: Affine
    pid: np.ndarray
    land_use: tuple[str, ...]          # "road", "crop", "Corner" or a perennial class name
    pivot: np.ndarray                  # (n_ids,) bool: irrigated centre pivot
    split: np.ndarray                  # (n_ids,) uint8: 0 unused, 1 train, 2 test
    geometries: tuple[Polygon, ...]
    shapes: tuple[str, ...]            # "field", "pivot" or "natural"
    n_parcels: int
    crs: str = CRS

    @property
    def n_ids(self) -> int:
        """Number of ids including road (0) and corners."""
        return len(self.land_use)

    def split_raster(self) -> np.ndarray:
        """(H, W) uint8 split: 1 train, 2 test, 0 on roads, gaps and pivot corners."""
        return self.split[self.pid]


def scale_for(size: int) -> float:
    """Linear scale of parcel sizes for a scene of ``size`` pixels: 1 (real size) at >= 2048 px, >= 0.085.

    It shrinks more slowly than the scene (power 0.75), so the parcel count grows with the side: about 45 at
    64 px, 120 at 256 px, 180 at 512 px, 250 at 1024 px and 360 at 2048 px.
    """
    return float(np.clip((size / 2048.0) ** 0.75, 0.085, 1.0))


def generate_region(rng: np.random.Generator, size: int,
                    train_block: tuple[float, float, float, float] = (0.0, 0.0, 0.4, 1.0),
                    parcel_scale: float = 1.0, interleaved_fraction: float | None = None) -> Region:
    """Lay out parcels on a ``size`` x ``size`` grid of 10 m pixels and split them into train and test.

    ``parcel_scale`` multiplies every length of the layout (parcels, roads). Parcels touching ``train_block``
    are train parcels, unless ``interleaved_fraction`` is given: then each parcel is a train parcel with that
    probability, wherever it lies (train and test parcels side by side).
    """
    if size < 32:
        raise ValueError(f"size must be at least 32 pixels, got {size}")
    scale = scale_for(size) * parcel_scale
    boxes = _partition(rng, size, scale)
    x0, y0, x1, y1 = (f * size for f in train_block)
    train_area = box(x0, y0, x1, y1)
    if interleaved_fraction is None:
        in_train = [box(*b).intersects(train_area) for b in boxes]
    else:
        in_train = list(rng.random(len(boxes)) < interleaved_fraction)
    uses = _assign_land_use(rng, boxes, size, in_train)
    parcels: list[tuple[Polygon, str, str, bool]] = []     # polygon (pixel coords), land use, shape, pivot
    corners: list[Polygon] = []
    for b, use in zip(boxes, uses, strict=True):
        poly, shape = _parcel_shape(rng, b, use, scale)
        parcels.append((poly, use, shape, shape == "pivot"))
        if shape == "pivot":
            corners.append(box(*b))
    n = len(parcels)
    transform = Affine(PIXEL, 0.0, ORIGIN[0], 0.0, -PIXEL, ORIGIN[1])
    world = tuple(_to_world(p[0], transform) for p in parcels)
    corner_world = [_to_world(c, transform) for c in corners]
    burn = [(g, n + 1 + i) for i, g in enumerate(corner_world)] + [(g, i + 1) for i, g in enumerate(world)]
    pid = rasterize(burn, out_shape=(size, size), transform=transform, fill=0, dtype="int32")
    split = np.zeros(n + 1 + len(corners), dtype=np.uint8)
    if interleaved_fraction is None:     # the parcel itself touches the block (its box may where it does not)
        in_train = [p[0].intersects(train_area) for p in parcels]
    split[1:n + 1] = [1 if t else 2 for t in in_train]
    land_use = ("road", *(p[1] for p in parcels), *("Corner",) * len(corners))
    pivot = np.array([False, *(p[3] for p in parcels), *(True,) * len(corners)])
    return Region(size, transform, pid, land_use, pivot, split, world, tuple(p[2] for p in parcels), n)


def _partition(rng: np.random.Generator, size: int, scale: float) -> list[Box]:
    """Split the scene recursively into field boxes (x0, y0, x1, y1) separated by roads of >= 1 pixel."""
    median_area = 16000.0 * scale**2           # 160 ha at full scale: leaves of ~70 ha median, up to ~300 ha
    min_side = max(5, round(60 * scale))
    road = max(1, round(4 * scale))
    leaves: list[Box] = []
    stack: list[tuple[Box, int]] = [((0, 0, size, size), 0)]
    while stack:
        (x0, y0, x1, y1), depth = stack.pop()
        w, h = x1 - x0, y1 - y0
        gap = road if depth < 2 else 1
        target = median_area * math.exp(0.6 * rng.standard_normal())
        long_side = max(w, h)
        elongated = long_side > 3 * min(w, h)
        if long_side < 2 * min_side + gap or (w * h <= target and not elongated):
            leaves.append((x0, y0, x1, y1))
            continue
        cut = int(np.clip(round(long_side * rng.uniform(0.3, 0.7)), min_side, long_side - min_side - gap))
        if w >= h:
            stack += [((x0, y0, x0 + cut, y1), depth + 1), ((x0 + cut + gap, y0, x1, y1), depth + 1)]
        else:
            stack += [((x0, y0, x1, y0 + cut), depth + 1), ((x0, y0 + cut + gap, x1, y1), depth + 1)]
    return sorted(leaves, key=lambda b: (b[1], b[0]))


def _assign_land_use(rng: np.random.Generator, boxes: list[Box], size: int, in_train: list[bool]) -> list[str]:
    """Land use per box: clustered Cerrado remnants and pastures, a few eucalyptus and coffee, else crops.

    Shares are drawn separately on the train and the test side, so both sides hold every land use (as the
    reference of a real campaign would), while remnants still cluster where a smooth field is high.
    """
    fields = smooth_noise(rng, (2, size, size), size / 10.0)
    cy = [min((b[1] + b[3]) // 2, size - 1) for b in boxes]
    cx = [min((b[0] + b[2]) // 2, size - 1) for b in boxes]
    natural, grazing = fields[0][cy, cx], fields[1][cy, cx]
    uses = ["crop"] * len(boxes)
    for side in (True, False):
        group = [i for i, t in enumerate(in_train) if t == side]
        n = len(group)
        for i in sorted(group, key=lambda i: -natural[i])[:max(1, round(0.14 * n))]:
            uses[i] = "Cerrado"
        free = [i for i in sorted(group, key=lambda i: -grazing[i]) if uses[i] == "crop"]
        for i in free[:max(1, round(0.11 * n))]:
            uses[i] = "Pasture"
        free = [i for i in group if uses[i] == "crop"]
        for k, i in enumerate(rng.permutation(free)[:round(0.05 * n)]):
            uses[int(i)] = "Eucalyptus" if k % 5 < 3 else "Coffee"
    return uses


def _parcel_shape(rng: np.random.Generator, b: Box, use: str, scale: float) -> tuple[Polygon, str]:
    """Polygon (pixel coordinates) and shape kind of the parcel drawn inside box ``b``."""
    x0, y0, x1, y1 = b
    w, h = x1 - x0, y1 - y0
    squarish = max(w, h) <= 1.5 * min(w, h) and min(w, h) >= 8
    if use == "Cerrado":
        return _irregular(rng, b), "natural"
    if squarish and (use == "Coffee" or (use == "crop" and rng.random() < 0.35)):
        r = 0.5 * min(w, h) - rng.uniform(0.0, 0.04) * min(w, h)
        return Point((x0 + x1) / 2, (y0 + y1) / 2).buffer(r, quad_segs=24), "pivot"
    return _quadrilateral(rng, b, 0.12 if use == "Pasture" else 0.08), "field"


def _quadrilateral(rng: np.random.Generator, b: Box, jitter: float) -> Polygon:
    """The box with corners pulled inward at random, sometimes with one corner cut off."""
    x0, y0, x1, y1 = b
    w, h = x1 - x0, y1 - y0
    dx, dy = rng.uniform(0, jitter * w, 4), rng.uniform(0, jitter * h, 4)
    pts = [(x0 + dx[0], y0 + dy[0]), (x1 - dx[1], y0 + dy[1]), (x1 - dx[2], y1 - dy[2]), (x0 + dx[3], y1 - dy[3])]
    if rng.random() < 0.25:
        k = int(rng.integers(4))
        prev_pt, corner, next_pt = pts[k - 1], pts[k], pts[(k + 1) % 4]
        f = rng.uniform(0.15, 0.35)
        a = (corner[0] + f * (prev_pt[0] - corner[0]), corner[1] + f * (prev_pt[1] - corner[1]))
        c = (corner[0] + f * (next_pt[0] - corner[0]), corner[1] + f * (next_pt[1] - corner[1]))
        pts = [*pts[:k], a, c, *pts[k + 1:]]
    return Polygon(pts)


def _irregular(rng: np.random.Generator, b: Box, n: int = 48) -> Polygon:
    """A star-shaped polygon filling most of the box with a wavy edge (a native vegetation remnant)."""
    x0, y0, x1, y1 = b
    cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    theta = np.linspace(0, 2 * np.pi, n, endpoint=False)
    k = np.arange(1, 5)[:, None]
    amp, phase = rng.uniform(0.3, 1.0, (4, 1)) / k, rng.uniform(0, 2 * np.pi, (4, 1))
    wave = (amp * np.cos(k * theta + phase)).sum(0)
    wave = (wave - wave.min()) / max(float(np.ptp(wave)), 1e-9)
    with np.errstate(divide="ignore"):
        reach = np.minimum(hw / np.abs(np.cos(theta)), hh / np.abs(np.sin(theta)))
    r = reach * (1.0 - 0.35 * wave)
    return Polygon(np.column_stack([cx + r * np.cos(theta), cy + r * np.sin(theta)]))


def _to_world(geom: Polygon, transform: Affine) -> Polygon:
    """Pixel (col, row) coordinates to map coordinates with the scene's affine transform."""
    t = transform
    result: Polygon = affinity.affine_transform(geom, [t.a, t.b, t.d, t.e, t.c, t.f])
    return result
