"""Training augmentation: random rotations by multiples of 90 degrees and flips, the same for images and labels."""

from __future__ import annotations

import numpy as np
import torch


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
