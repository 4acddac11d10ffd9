"""Validation pixels seen as the map sees them: square tiles of the region, with context around each pixel.

Early stopping scores validation patches alone (32 x 32 by default), with the patch edge a few pixels from
most of its pixels. ``predict`` maps the same pixels inside 256 px tiles, where the U-Net and the ConvLSTM
see far more of the fields around them, and the network may be differently right and confident there,
so a temperature fitted on the patches may be the wrong one for the map (``data.val_profile: tiles``;
measured in docs/guide/confidence.md: no gain in ECE on average over nine runs, a nearer ``check`` estimate).
:func:`context_batches` cuts the region into tiles like ``predict`` does and gives each validation pixel to
one tile that holds at least ``margin`` pixels of context on every side the region allows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from tropicrop.windows.tensors import SceneTensors

MULTIPLE = 16
"""Tile sides are a multiple of this (the networks halve the image three or four times)."""


def tile_starts(length: int, side: int, margin: int) -> list[int]:
    """Starts of ``side``-pixel tiles covering ``[0, length)`` whose cores (the tile less ``margin`` on every
    inner side) cover it too: a step of ``side - 2 * margin``, the last tile flush with the end."""
    if side >= length:
        return [0]
    step = max(side - 2 * margin, 1)
    return [*range(0, length - side, step), length - side]


def core(start: int, side: int, length: int, margin: int) -> slice:
    """The rows (or columns) a tile at ``start`` owns: all but ``margin`` on each side that is not the region's edge."""
    return slice(start + margin if start > 0 else 0, start + side - margin if start + side < length else length)


def context_batches(tensors: SceneTensors, pixels: np.ndarray, targets: Sequence[dt.date], tile: int = 256,
                    margin: int = 32, batch_size: int = 4) -> Iterator[tuple[dt.date, dict[str, torch.Tensor]]]:
    """(target date, batch) pairs of square tiles that cover the scored ``pixels`` (H, W) bool of the region.

    Every pixel of ``pixels`` labelled at a target date is scored once for that date: ``batch["labels"]``
    keeps only the pixels each tile owns (the rest are 0, unscored). Tiles are ``tile`` pixels (less where
    the region is smaller, a multiple of :data:`MULTIPLE`); images of pixels that may not be input
    (``tensors.usable`` False: test pixels under ``test_inputs: exclude``) are zeros. ``margin`` is at most
    a quarter of the tile.
    """
    h, w = pixels.shape
    side = max(MULTIPLE, min(tile, h, w) // MULTIPLE * MULTIPLE)
    side = min(side, h, w)  # a region smaller than MULTIPLE: one tile of the region's side
    margin = min(margin, side // 4)  # small tiles: cores of at least half the tile
    rows, cols = tile_starts(h, side, margin), tile_starts(w, side, margin)
    hidden = torch.from_numpy(~tensors.usable) if not tensors.usable.all() else None
    for target in targets:
        if target not in tensors.label_dates:
            continue
        labelled = tensors.labels[tensors.label_dates.index(target)] > 0
        claimed = np.zeros((h, w), dtype=bool)
        origins, owned = [], []
        for r in rows:
            for c in cols:
                rs, cs = core(r, side, h, margin), core(c, side, w, margin)
                new = pixels[rs, cs] & labelled[rs, cs] & ~claimed[rs, cs]
                if new.any():
                    claimed[rs, cs] |= new
                    mine = np.zeros((side, side), dtype=bool)  # the tile's own pixels, in tile coordinates
                    mine[rs.start - r : rs.stop - r, cs.start - c : cs.stop - c] = new
                    origins.append((r, c))
                    owned.append(mine)
        for s in range(0, len(origins), batch_size):
            batch = tensors.gather(np.asarray(origins[s : s + batch_size]), target, side)
            keep = torch.from_numpy(np.stack(owned[s : s + batch_size]))
            batch["labels"][~keep] = 0
            if hidden is not None:
                for k, (r, c) in enumerate(origins[s : s + batch_size]):
                    batch["images"][k][..., hidden[r : r + side, c : c + side]] = 0.0
            yield target, batch
