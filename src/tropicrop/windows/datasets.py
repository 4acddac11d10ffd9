"""Training and validation batch datasets: map-style, keyed by a global batch number.

A training batch's content depends on (seed, batch number) only, so a resumed run, DataLoader workers and DDP
ranks need no shared state (:class:`tropicrop.windows.sampler.StepSampler` hands out the numbers).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from tropicrop.windows.augment import augment
from tropicrop.windows.dates import shift_doy
from tropicrop.windows.tensors import SceneTensors


class TrainBatches(Dataset[dict[str, torch.Tensor]]):
    """Training batches: item ``n`` is the whole batch number ``n``, at one target date.

    Target dates cycle through ``targets`` (all-months mode: a different labelled date per mini-batch;
    per-month mode: one date). Patches are drawn from ``origins`` uniformly, or, with ``balance``, with
    probability inversely proportional to the frequency of the rarest class they hold at that date. With
    ``every_step`` batches also hold the labels of every date of the window (``step_labels``).
    ``held_out`` (H, W) bool marks pixels whose labels are never trained on (validation fields): they are
    cleared from every batch, the images stay. ``doy_shift`` > 0 moves each sample's days of year by one
    random offset in [-doy_shift, doy_shift] (the shift-augmentation baseline of TimeMatch, Nyborg et al.
    2022: a network that has seen its seasons a few weeks early or late depends less on the calendar of its training year).
    """

    def __init__(self, data: SceneTensors, origins: np.ndarray, targets: Sequence[dt.date], batch_size: int,
                 patch_size: int, seed: int, balance: bool = False, augment: bool = True, every_step: bool = False,
                 doy_shift: int = 0, held_out: np.ndarray | None = None) -> None:
        self.data, self.origins, self.targets = data, origins, list(targets)
        self.held_out = held_out
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
        if self.held_out is not None:
            self._clear_held_out(batch, self.origins[pick])
        if self.augment:
            batch = augment(batch, rng)
        if self.doy_shift > 0:
            offsets = rng.integers(-self.doy_shift, self.doy_shift + 1, size=(self.batch_size, 1))
            batch["doy"] = shift_doy(batch["doy"], torch.from_numpy(offsets))
        return batch


    def _clear_held_out(self, batch: dict[str, torch.Tensor], origins: np.ndarray) -> None:
        """Set the labels of held-out pixels to 0 (no reference) in ``batch``, in place."""
        assert self.held_out is not None
        p = self.patch_size
        hide = torch.from_numpy(np.stack([self.held_out[r:r + p, c:c + p] for r, c in origins]))
        batch["labels"][hide] = 0
        if "step_labels" in batch:
            batch["step_labels"][hide[:, None].expand_as(batch["step_labels"])] = 0


class EvalBatches(Dataset[dict[str, torch.Tensor]]):
    """Fixed validation batches: every (patch, target date) pair, at most ``limit`` of them, one date per batch.

    With ``only`` (H, W) bool (validation by fields), a patch scores only the pixels of ``only`` that no
    earlier patch of ``origins`` covers: every validation pixel once per date, however the patches overlap.
    """

    def __init__(self, data: SceneTensors, origins: np.ndarray, targets: Sequence[dt.date], batch_size: int,
                 patch_size: int, seed: int = 0, limit: int | None = None, only: np.ndarray | None = None) -> None:
        self.data, self.patch_size = data, patch_size
        self.owned = None if only is None else _owned_pixels(only, origins, patch_size)
        pairs = [(d, o) for d in targets for o in range(len(origins))]
        if limit is not None and len(pairs) > limit:
            keep = np.sort(np.random.default_rng(seed).choice(len(pairs), size=limit, replace=False))
            pairs = [pairs[i] for i in keep]
        self.batches: list[tuple[dt.date, np.ndarray]] = []
        self.indices: list[np.ndarray] = []  # the batches' patches, as indices into ``origins``
        for d in targets:
            idx = np.array([o for dd, o in pairs if dd == d], dtype=np.int64)
            for s in range(0, len(idx), batch_size):
                self.batches.append((d, origins[idx[s : s + batch_size]]))
                self.indices.append(idx[s : s + batch_size])

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, n: int) -> dict[str, torch.Tensor]:
        target, origins = self.batches[n]
        batch = self.data.gather(origins, target, self.patch_size)
        if self.owned is not None:
            batch["labels"][~torch.from_numpy(self.owned[self.indices[n]])] = 0
        return batch


def _owned_pixels(only: np.ndarray, origins: np.ndarray, size: int) -> np.ndarray:
    """(N, size, size) bool: for each patch of ``origins`` in order, the pixels of ``only`` under it that no
    earlier patch covers."""
    claimed = np.zeros(only.shape, dtype=bool)
    owned = np.zeros((len(origins), size, size), dtype=bool)
    for k, (r, c) in enumerate(origins):
        owned[k] = only[r:r + size, c:c + size] & ~claimed[r:r + size, c:c + size]
        claimed[r:r + size, c:c + size] |= owned[k]
    return owned
