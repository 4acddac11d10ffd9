"""Patch indexing in bounded memory gives the same patches and split as the whole-scene implementation.

The reference functions below are the implementation before issue 28, kept verbatim: int64 integral
images of the whole region and a train x validation overlap matrix. The strip-wise versions must return
identical origins (same order) and an identical train / validation split on small random masks, regular
and irregular, with strips forced small so every mask spans many of them.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

import tropicrop.windows.patches as sampling
from tropicrop.windows.patches import patch_origins, split_validation


# ------------------------------------------------------------------------------------------ the reference
def reference_box_sum(mask: np.ndarray, size: int) -> np.ndarray:
    ii = np.pad(mask.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    return ii[size:, size:] - ii[:-size, size:] - ii[size:, :-size] + ii[:-size, :-size]


def reference_patch_origins(labelled: np.ndarray, usable: np.ndarray, size: int, stride: int,
                            min_labelled: float) -> np.ndarray:
    h, w = labelled.shape
    n_lab = reference_box_sum(labelled, size)
    n_use = reference_box_sum(usable, size)
    rows = np.arange(0, h - size + 1, stride)
    cols = np.arange(0, w - size + 1, stride)
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    ok = (n_use[rr, cc] == size * size) & (n_lab[rr, cc] >= max(1, math.ceil(min_labelled * size * size)))
    return np.stack([rr[ok], cc[ok]], axis=1)


def reference_split_validation(origins: np.ndarray, size: int, fraction: float, seed: int,
                               block: int | None = None) -> tuple[np.ndarray, np.ndarray]:
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
    if len(val) and len(train):
        dr = np.abs(train[:, None, 0] - val[None, :, 0]) < size
        dc = np.abs(train[:, None, 1] - val[None, :, 1]) < size
        train = train[~(dr & dc).any(axis=1)]
    return train, val


# ------------------------------------------------------------------------------------------ masks
def _blobs(rng: np.random.Generator, shape: tuple[int, int], fill: float) -> np.ndarray:
    """Irregular regions: smoothed noise thresholded, with holes and thin arms."""
    noise = ndimage.gaussian_filter(rng.random(shape), sigma=rng.uniform(1.5, 5))
    return noise > np.quantile(noise, 1 - fill)


def _masks(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(labelled, usable) of a random shape: blobs, stripes, or speckle, labelled inside usable mostly."""
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(40, 140)), int(rng.integers(40, 140)))
    kind = seed % 3
    if kind == 0:
        usable = _blobs(rng, shape, 0.8)
    elif kind == 1:
        usable = np.ones(shape, dtype=bool)
        usable[rng.integers(0, shape[0], 6), :] = False  # test-area stripes
        usable[:, rng.integers(0, shape[1], 4)] = False
    else:
        usable = rng.random(shape) > 0.002  # a few isolated test pixels
    labelled = _blobs(rng, shape, rng.uniform(0.2, 0.7)) | (rng.random(shape) < 0.05)
    return labelled, usable


@pytest.fixture
def small_strips(monkeypatch: pytest.MonkeyPatch) -> None:
    """Strips of a few hundred cells, so a 100 px mask spans many and their seams are tested."""
    monkeypatch.setattr(sampling, "STRIP_CELLS", 300)


@pytest.mark.parametrize("seed", range(12))
def test_patch_origins_equal_the_whole_scene_reference(seed: int, small_strips: None) -> None:
    labelled, usable = _masks(seed)
    rng = np.random.default_rng(100 + seed)
    size = int(rng.integers(3, 17))
    stride = int(rng.integers(1, size + 3))
    min_labelled = float(rng.choice([0.0, 0.05, 0.3]))
    got = patch_origins(labelled, usable, size, stride, min_labelled)
    want = reference_patch_origins(labelled, usable, size, stride, min_labelled)
    assert len(want) > 0
    np.testing.assert_array_equal(got, want)
    assert got.dtype == want.dtype


def test_patch_origins_of_a_mask_with_no_patch_are_empty(small_strips: None) -> None:
    labelled = np.zeros((30, 30), dtype=bool)
    got = patch_origins(labelled, np.ones((30, 30), dtype=bool), 8, 4, 0.05)
    assert got.shape == (0, 2)
    np.testing.assert_array_equal(got, reference_patch_origins(labelled, np.ones((30, 30), bool), 8, 4, 0.05))


def test_split_validation_equals_the_quadratic_reference(small_strips: None) -> None:
    dropped = 0
    for seed in range(12):
        labelled, usable = _masks(seed)
        rng = np.random.default_rng(200 + seed)
        size = int(rng.integers(4, 17))
        origins = patch_origins(labelled, usable, size, int(rng.integers(1, size // 2 + 1)), 0.05)  # overlapping
        block = [None, size * 2, 7][seed % 3]
        fraction = float(rng.choice([0.1, 0.15, 0.4]))
        train, val = split_validation(origins, size, fraction, seed, block)
        want_train, want_val = reference_split_validation(origins, size, fraction, seed, block)
        assert len(want_val) > 0, seed
        np.testing.assert_array_equal(val, want_val)
        np.testing.assert_array_equal(train, want_train)
        dropped += len(want_train) < len(origins) - len(want_val)
    assert dropped >= 8  # the overlap test dropped training patches in most cases: it was exercised


@pytest.mark.parametrize("seed", range(6))
def test_overlap_test_is_exact_for_scattered_origins(seed: int, small_strips: None) -> None:
    """Origins off any common grid (step 1), unsorted, with duplicates: the same drops as the reference."""
    rng = np.random.default_rng(seed)
    origins = rng.integers(0, 120, size=(300, 2))
    origins[::50] = origins[1::50]  # duplicates
    for size in (1, 5, 16):
        train, val = split_validation(origins, size, 0.2, seed, block=13)
        want_train, want_val = reference_split_validation(origins, size, 0.2, seed, block=13)
        np.testing.assert_array_equal(val, want_val)
        np.testing.assert_array_equal(train, want_train)
