"""From a scene to training samples: target-month windows, normalisation, patch sampling, batch datasets.

A *window* for target date ``d`` holds the ``length`` (12 in the paper) acquisitions ending at ``d``;
acquisitions before the first one are zero images flagged ``valid = False`` (paper, section 4.3). Training
patches (32 x 32 by default) take their labels from train pixels only (pixels outside the training split are
label 0, ignored by the loss). With ``test_inputs="exclude"`` a patch never covers a test pixel, not even as
input (the strict rule); with ``"context"`` the images of test-area pixels may be input around train labels.

Batches are built whole by a map-style dataset keyed by a global batch number, so their content depends on
(seed, epoch, batch) only: a resumed run sees the same batches as an uninterrupted one, and DataLoader
workers or DDP ranks need no shared state.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from rasterio.windows import Window
from torch.utils.data import Dataset, Sampler

from tropicrop.classes import ClassTable
from tropicrop.scene import TEST, TRAIN, Scene

TEST_INPUTS = ("exclude", "context")
"""May test-area images be training input? exclude: no (strict rule); context: yes, labels masked."""


class ImageStack(Protocol):
    """What batching needs of a region's images (T, C, H, W): their shape and normalised float32 slices (an
    array in memory, or :class:`tropicrop.cache.CachedImages` read from disk)."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    def __getitem__(self, key: Any) -> np.ndarray: ...


# ------------------------------------------------------------------------------------------ windows
@dataclass(frozen=True)
class WindowIndex:
    """The dates of one window: ``indices`` (T,) into the scene's dates (-1 = padding), ``valid`` (T,)
    bool, ``doy`` (T,) day of year (padded steps get the day of year one month apart, going back)."""

    indices: np.ndarray
    valid: np.ndarray
    doy: np.ndarray


def day_of_year(date: dt.date) -> int:
    """Day of year, 1..366."""
    return date.timetuple().tm_yday


def shift_doy(doy: int | np.ndarray | torch.Tensor, offset: int | np.ndarray | torch.Tensor) -> Any:
    """Day of year (1..365) ``offset`` days later, wrapping around the year: ``doy`` array or tensor of any
    shape, ``offset`` a scalar or broadcastable. Used to move a year's calendar onto another's (adaptation)
    and to augment training dates."""
    return (doy - 1 + offset) % 365 + 1


def months_before(date: dt.date, months: int) -> dt.date:
    """The same day of the month ``months`` calendar months earlier (clamped to the month's length)."""
    total = date.year * 12 + date.month - 1 - months
    year, month = divmod(total, 12)
    return dt.date(year, month + 1, min(date.day, calendar.monthrange(year, month + 1)[1]))


def target_window(dates: Sequence[dt.date], target: dt.date, length: int = 12,
                  missing: np.ndarray | None = None) -> WindowIndex:
    """The window of ``length`` dates ending at ``target`` (which must be one of ``dates``).

    ``missing`` (len(dates),) bool marks dates without any acquisition (a month with no pass): they keep
    their place and day of year in the window but are padding (``valid`` False, index -1), like the dates
    before the first one. The target itself must have an image.
    """
    if target not in dates:
        raise ValueError(f"{target} is not an acquisition date")
    end = list(dates).index(target)
    if missing is not None and missing[end]:
        raise ValueError(f"{target} has no image (no acquisition that month)")
    start = end - length + 1
    indices = np.arange(start, end + 1)
    valid = indices >= 0
    if missing is not None:
        valid[valid] = ~np.asarray(missing, dtype=bool)[indices[valid]]
    first = dates[max(start, 0)]
    doy = np.empty(length, dtype=np.int64)
    for k, i in enumerate(indices):
        if i >= 0:
            doy[k] = day_of_year(dates[int(i)])
        else:  # calendar months before the first acquisition
            doy[k] = day_of_year(months_before(first, int(-i)))
    return WindowIndex(indices=np.where(valid, indices, -1), valid=valid, doy=doy)


# ------------------------------------------------------------------------------------------ normalisation
BRIGHT_DB = 20.0  # backscatter above this (dB) is clipped before the normaliser's statistics
@dataclass(frozen=True)
class Normalizer:
    """Per-band standardisation of dB values: ``(x - mean) / std``; no-data (NaN) becomes 0 (the mean)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Normalise images (..., C, H, W) float32 in dB."""
        mean = np.asarray(self.mean, dtype=np.float32)[:, None, None]
        std = np.asarray(self.std, dtype=np.float32)[:, None, None]
        out = (images - mean) / std
        return np.nan_to_num(out, nan=0.0).astype(np.float32, copy=False)

    def to_dict(self) -> dict[str, list[float]]:
        """JSON-ready form."""
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: dict[str, list[float]]) -> Normalizer:
        """Inverse of :meth:`to_dict`."""
        return cls(mean=tuple(data["mean"]), std=tuple(data["std"]))

    @classmethod
    def fit(cls, images: np.ndarray, mask: np.ndarray) -> Normalizer:
        """Fit on images (T, C, H, W) in dB at pixels where ``mask`` (H, W) is true, over all dates.

        Values above :data:`BRIGHT_DB` (buildings, corner reflectors in real scenes) count as that value, so a
        few of them do not stretch the statistics; scenes without any (the synthetic ones) are unchanged.
        """
        values = np.minimum(images[:, :, mask], np.float32(BRIGHT_DB))  # (T, C, N); NaN stays NaN
        values = np.moveaxis(values, 1, 0).reshape(images.shape[1], -1)
        mean = np.nanmean(values, axis=1)
        std = np.nanstd(values, axis=1)
        if not np.all(np.isfinite(mean)):
            raise ValueError("no valid training pixels to fit the normalisation on")
        return cls(mean=tuple(float(v) for v in mean), std=tuple(float(max(v, 1e-6)) for v in std))


# ------------------------------------------------------------------------------------------ scene in memory
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


# ------------------------------------------------------------------------------------------ patches
def _box_sum(mask: np.ndarray, size: int) -> np.ndarray:
    """Sum of ``mask`` over every size x size box: (H-size+1, W-size+1)."""
    ii = np.pad(mask.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    return ii[size:, size:] - ii[:-size, size:] - ii[size:, :-size] + ii[:-size, :-size]


def patch_origins(labelled: np.ndarray, usable: np.ndarray, size: int, stride: int, min_labelled: float) -> np.ndarray:
    """Top-left corners (N, 2) of ``size`` patches on a ``stride`` grid that lie wholly on ``usable`` pixels
    and hold at least ``min_labelled`` (fraction) labelled pixels."""
    h, w = labelled.shape
    if size > h or size > w:
        raise ValueError(f"patch size {size} is larger than the scene ({w}x{h})")
    n_lab = _box_sum(labelled, size)
    n_use = _box_sum(usable, size)
    rows = np.arange(0, h - size + 1, stride)
    cols = np.arange(0, w - size + 1, stride)
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    ok = (n_use[rr, cc] == size * size) & (n_lab[rr, cc] >= max(1, math.ceil(min_labelled * size * size)))
    return np.stack([rr[ok], cc[ok]], axis=1)


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
        dr = np.abs(train[:, None, 0] - val[None, :, 0]) < size
        dc = np.abs(train[:, None, 1] - val[None, :, 1]) < size
        train = train[~(dr & dc).any(axis=1)]
    return train, val


# ------------------------------------------------------------------------------------------ datasets
def augment(batch: dict[str, torch.Tensor], rng: np.random.Generator) -> dict[str, torch.Tensor]:
    """Random rotation by k * 90 degrees and horizontal flip, the same for a sample's images and labels
    (and its per-date ``step_labels``, when the batch has them)."""
    keys = [key for key in ("images", "labels", "step_labels") if key in batch]
    for k in range(batch["images"].shape[0]):
        rot = int(rng.integers(4))
        flip = bool(rng.integers(2))
        for key in keys:
            x = batch[key][k]
            if rot:
                x = torch.rot90(x, rot, dims=(-2, -1))
            if flip:
                x = torch.flip(x, dims=(-1,))
            batch[key][k] = x
    return batch


class TrainBatches(Dataset[dict[str, torch.Tensor]]):
    """Training batches: item ``n`` is the whole batch number ``n``, at one target date.

    Target dates cycle through ``targets`` (all-months mode: a different labelled date per mini-batch;
    per-month mode: one date). Patches are drawn from ``origins`` uniformly, or, with ``balance``, with
    probability inversely proportional to the frequency of the rarest class they hold at that date. With
    ``every_step`` batches also hold the labels of every date of the window (``step_labels``).
    ``doy_shift`` > 0 moves each sample's days of year by one random offset in [-doy_shift, doy_shift]
    (the shift-augmentation baseline of TimeMatch, Nyborg et al. 2022: a network that has seen its seasons
    a few weeks early or late depends less on the calendar of its training year).
    """

    def __init__(self, data: SceneTensors, origins: np.ndarray, targets: Sequence[dt.date], batch_size: int,
                 patch_size: int, seed: int, balance: bool = False, augment: bool = True, every_step: bool = False,
                 doy_shift: int = 0) -> None:
        self.data, self.origins, self.targets = data, origins, list(targets)
        self.batch_size, self.patch_size, self.seed = batch_size, patch_size, seed
        self.augment, self.every_step, self.doy_shift = augment, every_step, doy_shift
        self.weights = {d: self._weights(d) for d in self.targets} if balance else None

    def _weights(self, target: dt.date) -> np.ndarray | None:
        li = self.data.label_dates.index(target)
        labels = self.data.labels[li]
        freq = np.bincount(labels.ravel(), minlength=256).astype(np.float64)
        freq[0] = 0
        inv = np.where(freq > 0, 1.0 / np.maximum(freq, 1), 0.0)
        p = self.patch_size
        w = np.array([inv[labels[r : r + p, c : c + p]].max() for r, c in self.origins])
        return w / w.sum() if w.sum() > 0 else None

    def __len__(self) -> int:
        return 2**31 - 1  # indexed by global batch number; the sampler bounds an epoch

    def __getitem__(self, n: int) -> dict[str, torch.Tensor]:
        return self.batch(n, self.targets[n % len(self.targets)])

    def batch(self, n: int, target: dt.date) -> dict[str, torch.Tensor]:
        """Batch number ``n`` at ``target`` (one of ``targets``): its draws depend on (seed, n) only."""
        rng = np.random.default_rng([self.seed, n])
        p = self.weights.get(target) if self.weights else None
        pick = rng.choice(len(self.origins), size=self.batch_size, replace=len(self.origins) < self.batch_size, p=p)
        batch = self.data.gather(self.origins[pick], target, self.patch_size, self.every_step)
        if self.augment:
            batch = augment(batch, rng)
        if self.doy_shift > 0:
            offsets = rng.integers(-self.doy_shift, self.doy_shift + 1, size=(self.batch_size, 1))
            batch["doy"] = shift_doy(batch["doy"], torch.from_numpy(offsets))
        return batch


class EvalBatches(Dataset[dict[str, torch.Tensor]]):
    """Fixed validation batches: every (patch, target date) pair, at most ``limit`` of them, one date per batch."""

    def __init__(self, data: SceneTensors, origins: np.ndarray, targets: Sequence[dt.date], batch_size: int,
                 patch_size: int, seed: int = 0, limit: int | None = None) -> None:
        self.data, self.patch_size = data, patch_size
        pairs = [(d, o) for d in targets for o in range(len(origins))]
        if limit is not None and len(pairs) > limit:
            keep = np.sort(np.random.default_rng(seed).choice(len(pairs), size=limit, replace=False))
            pairs = [pairs[i] for i in keep]
        self.batches: list[tuple[dt.date, np.ndarray]] = []
        for d in targets:
            idx = np.array([o for dd, o in pairs if dd == d], dtype=np.int64)
            for s in range(0, len(idx), batch_size):
                self.batches.append((d, origins[idx[s : s + batch_size]]))

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, n: int) -> dict[str, torch.Tensor]:
        target, origins = self.batches[n]
        return self.data.gather(origins, target, self.patch_size)


class StepSampler(Sampler[int]):
    """Yields the global batch numbers of the next ``steps`` optimiser steps for this rank.

    Batch numbers derive from the trainer's global step when an epoch's iteration starts (``first_step``),
    not from an epoch counter: after a resume from any checkpoint the batches continue exactly where the
    interrupted run was. Under DDP, rank ``r`` of ``world`` takes batch ``step * world + r``.
    """

    def __init__(self, steps: int, first_step: Callable[[], int] = lambda: 0, rank: int = 0, world: int = 1) -> None:
        self.steps, self.first_step, self.rank, self.world = steps, first_step, rank, world

    def __iter__(self) -> Iterator[int]:
        start = self.first_step()
        return iter((start + k) * self.world + self.rank for k in range(self.steps))

    def __len__(self) -> int:
        return self.steps
