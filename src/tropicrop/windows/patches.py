"""Patch origins on a stride grid and the spatially disjoint validation split, in memory bounded by strips.

At the paper's size (LEM, 8484 x 8658 px, about 90,000 patch origins) whole-region int64 integral images
and a train x validation overlap matrix took 17 GB; here box sums are taken on the stride grid from one
strip's int32 integral image at a time, and the overlap test counts validation origins on a grid of cells,
so memory grows with the patch count and a strip, not with the region or the product of the counts.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

STRIP_CELLS = 1 << 22
"""Cells of one strip's integral image (int32: 16 MiB): bounds the memory of patch indexing at any scene size."""


def _integral(cells: np.ndarray) -> np.ndarray:
    """Integral image (h + 1, w + 1) of ``cells`` (h, w), zero first row and column; int32 when its total
    fits (the strips keep it so), else int64."""
    top = int(np.asarray(cells).max(initial=0))
    dtype = np.int32 if cells.size * max(top, 1) < 2**31 else np.int64
    ii = np.zeros((cells.shape[0] + 1, cells.shape[1] + 1), dtype=dtype)
    np.cumsum(cells, axis=0, dtype=dtype, out=ii[1:, 1:])
    np.cumsum(ii[1:, 1:], axis=1, out=ii[1:, 1:])
    return ii


def _strip_box_sums(mask: np.ndarray, size: int, rows: np.ndarray, cols: np.ndarray) -> Iterator[np.ndarray]:
    """Sums of ``mask`` (H, W) over the ``size`` box at each origin of the grid ``rows`` x ``cols`` (sorted),
    one strip of grid rows at a time ((n, len(cols)) each, in order): memory is one strip's integral
    image, never the scene's."""
    span = max(1, STRIP_CELLS // max(1, mask.shape[1]) - size)  # origin rows per strip
    c0, c1 = cols[None, :], cols[None, :] + size
    i = 0
    while i < len(rows):
        j = int(np.searchsorted(rows, rows[i] + span))
        ii = _integral(np.asarray(mask[rows[i] : rows[j - 1] + size]))
        r0 = (rows[i:j] - rows[i])[:, None]
        r1 = r0 + size
        yield ii[r1, c1] - ii[r0, c1] - ii[r1, c0] + ii[r0, c0]
        i = j


def _overlaps(train: np.ndarray, val: np.ndarray, size: int) -> np.ndarray:
    """Whether each ``train`` patch (N, 2) overlaps a ``val`` patch (M, 2), both ``size`` squares: (N,) bool.

    Linear in N + M: origins are counted on a grid of cells of their common step (the gcd of every
    coordinate and ``size``, so the test stays exact), and a training patch overlaps when the
    (2k - 1)^2 cells around its origin (k = size / step) hold a validation origin; the grid is built strip
    by strip of training rows."""
    step = int(np.gcd.reduce(np.concatenate([train.ravel(), val.ravel(), [size]]).astype(np.int64)))
    k = size // step
    low = np.minimum(train.min(axis=0), val.min(axis=0))
    t, v = (train - low) // step, (val - low) // step
    width = int(max(t[:, 1].max(), v[:, 1].max())) + 2 * k - 1  # grid columns, k - 1 of margin each side
    span = max(1, STRIP_CELLS // width - 2 * k)  # training rows (cells) per strip
    t_order, v_order = np.argsort(t[:, 0], kind="stable"), np.argsort(v[:, 0], kind="stable")
    t_rows, v_rows = t[t_order, 0], v[v_order, 0]
    hit = np.zeros(len(train), dtype=bool)
    i = 0
    while i < len(t_rows):
        top = int(t_rows[i])
        j = int(np.searchsorted(t_rows, top + span))
        a, b = np.searchsorted(v_rows, [top - k + 1, top + span + k - 1])
        grid = np.zeros((span + 2 * k - 2, width), dtype=np.uint8)
        near = v[v_order[a:b]]
        grid[near[:, 0] - top + k - 1, near[:, 1] + k - 1] = 1  # occupied cells
        ii = _integral(grid)
        r0, c0 = t[t_order[i:j], 0] - top, t[t_order[i:j], 1]
        r1, c1 = r0 + 2 * k - 1, c0 + 2 * k - 1
        hit[t_order[i:j]] = (ii[r1, c1] - ii[r0, c1] - ii[r1, c0] + ii[r0, c0]) > 0
        i = j
    return hit


def patch_origins(labelled: np.ndarray, usable: np.ndarray, size: int, stride: int, min_labelled: float) -> np.ndarray:
    """Top-left corners (N, 2) of ``size`` patches on a ``stride`` grid that lie wholly on ``usable`` pixels
    and hold at least ``min_labelled`` (fraction) labelled pixels."""
    h, w = labelled.shape
    if size > h or size > w:
        raise ValueError(f"patch size {size} is larger than the scene ({w}x{h})")
    rows = np.arange(0, h - size + 1, stride)
    cols = np.arange(0, w - size + 1, stride)
    need = max(1, math.ceil(min_labelled * size * size))
    found, first = [], 0
    for n_use, n_lab in zip(_strip_box_sums(usable, size, rows, cols), _strip_box_sums(labelled, size, rows, cols), strict=True):
        r, c = np.nonzero((n_use == size * size) & (n_lab >= need))
        found.append(np.stack([rows[first + r], cols[c]], axis=1))
        first += len(n_use)
    return np.concatenate(found) if found else np.zeros((0, 2), dtype=rows.dtype)


def label_centred_origins(labelled: np.ndarray, usable: np.ndarray, size: int, stride: int,
                          min_labelled: float) -> np.ndarray:
    """Top-left corners (N, 2) of ``size`` patches centred on labelled pixels: in each ``stride`` x ``stride``
    cell that holds a labelled pixel, one patch centred on the cell's labelled pixel nearest the mean of
    its labelled pixels (moved inside the scene at its edges); kept when it lies wholly on ``usable``
    pixels and holds at least ``min_labelled`` (fraction) labelled pixels.

    With ``size >= 2 * stride`` every labelled pixel lies in a patch of its own cell, however small or
    scattered the parcels, where a grid's patches may all miss a small parcel's few pixels or fall short
    of ``min_labelled``. Memory: one strip of ``stride + size`` rows at a time.
    """
    h, w = labelled.shape
    if size > h or size > w:
        raise ValueError(f"patch size {size} is larger than the scene ({w}x{h})")
    need = max(1, math.ceil(min_labelled * size * size))
    found = []
    for top in range(0, h, stride):
        r, c = np.nonzero(np.asarray(labelled[top : top + stride]))
        if not len(r):
            continue
        cell = c // stride
        order = np.argsort(cell, kind="stable")
        r, c, cell = r[order], c[order], cell[order]
        starts = np.flatnonzero(np.r_[True, cell[1:] != cell[:-1]])
        counts = np.diff(np.r_[starts, len(cell)])
        mean_r = np.add.reduceat(r, starts) / counts
        mean_c = np.add.reduceat(c, starts) / counts
        dist = (r - np.repeat(mean_r, counts)) ** 2 + (c - np.repeat(mean_c, counts)) ** 2
        nearest = np.array([s + int(np.argmin(dist[s : s + n])) for s, n in zip(starts, counts, strict=True)])
        rows = np.clip(top + r[nearest] - size // 2, 0, h - size)
        cols = np.clip(c[nearest] - size // 2, 0, w - size)
        lo = int(rows.min())
        hi = int(rows.max()) + size
        sums = [_box_sums(np.asarray(m[lo:hi]), rows - lo, cols, size) for m in (usable, labelled)]
        keep = (sums[0] == size * size) & (sums[1] >= need)
        found.append(np.stack([rows[keep], cols[keep]], axis=1))
    if not found:
        return np.zeros((0, 2), dtype=np.int64)
    return np.unique(np.concatenate(found).astype(np.int64), axis=0)


def _box_sums(mask: np.ndarray, rows: np.ndarray, cols: np.ndarray, size: int) -> np.ndarray:
    """Sums of ``mask`` over the ``size`` box at each origin (``rows``, ``cols``)."""
    ii = _integral(mask)
    return ii[rows + size, cols + size] - ii[rows, cols + size] - ii[rows + size, cols] + ii[rows, cols]


def split_validation(
    origins: np.ndarray, size: int, fraction: float, seed: int, block: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Hold out about ``fraction`` of patches for validation, spatially disjoint from the rest.

    The grid is cut in blocks of ``block`` pixels (default: the patch size); blocks in random order go to
    validation while they do not overshoot the target count, and training patches that overlap any
    validation patch are dropped. Returns (train, val) origins.
    """
    if len(origins) < 2 or fraction <= 0:
        return origins, origins[:0]
    keys = origins // (block or size)
    _, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    target = fraction * len(origins)
    chosen: list[int] = []
    taken = 0
    for b in np.random.default_rng(seed).permutation(len(counts)):
        if taken + counts[b] <= max(target, 1) * 1.25 and taken + counts[b] < len(origins):
            chosen.append(int(b))
            taken += int(counts[b])
        if taken >= target:
            break
    is_val = np.isin(inverse, chosen)
    val, train = origins[is_val], origins[~is_val]
    if len(val) and len(train):  # drop training patches that overlap a validation patch
        train = train[~_overlaps(train, val, size)]
    return train, val
