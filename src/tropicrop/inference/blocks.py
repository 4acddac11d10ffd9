"""Blocks of tiles for distributed prediction: which tiles each block needs, and the block's class codes.

A block is a rectangle of the scene made of whole rows and columns of the single-process tile layout
(:func:`tile_layout`): it starts where one of its tiles starts and ends where the next block's first tile
starts. Every pixel of a block gets exactly the tiles that cover it in the single-process path, summed in
the same (raster) order and with the same weights, so the map does not depend on the split: it is the
single-process map, pixel for pixel. Tiles that reach into more than one block (the last row and column of
tiles of a block, which overlap the next block) are predicted once, as tasks of their own, and their sums
are handed to every block they touch; the other tiles are predicted inside their block's task.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from rasterio.windows import Window

from tropicrop.inference.mapfiles import LAYER_NODATA, NODATA
from tropicrop.inference.run import RunModels
from tropicrop.inference.stream import (
    BlendSums,
    class_map,
    confidence_layer,
    layer_names,
    predict_tile,
    scaled_probabilities,
)
from tropicrop.inference.tile import Plan
from tropicrop.inference.tiling import AoiReader, tile_layout, tile_weights
from tropicrop.io.rasters import Grid
from tropicrop.scene import Scene

TileKey = tuple[int, int]  # (row_off, col_off) of a tile in the scene
Rect = tuple[int, int, int, int]  # (row_off, col_off, height, width)


@dataclass(frozen=True)
class Block:
    """One block: its index in the block grid, the rectangle of the scene it finishes, and the tiles that
    cover any of its pixels (raster order, the order the single-process path adds them in)."""

    row: int
    col: int
    rect: Rect
    tiles: tuple[Rect, ...]

    @property
    def name(self) -> str:
        return f"r{self.row:04d}-c{self.col:04d}"

    @property
    def window(self) -> Window:
        r, c, h, w = self.rect
        return Window(c, r, w, h)


def _groups(size: int, tile: int, overlap: int, per_block: int) -> tuple[int, list[int], list[tuple[int, int]]]:
    """Tile length, tile offsets along one axis, and the (start, stop) pixel ranges of the blocks of
    ``per_block`` tiles each."""
    length, offs = tile_layout(size, tile, overlap)
    starts = offs[::per_block]
    return length, offs, list(zip(starts, [*starts[1:], size], strict=True))


def plan_blocks(grid: Grid, tile: int, overlap: int, per_block: int) -> list[Block]:
    """Blocks of ``per_block`` x ``per_block`` tiles covering ``grid``, in raster order."""
    th, row_offs, row_ranges = _groups(grid.height, tile, overlap, per_block)
    tw, col_offs, col_ranges = _groups(grid.width, tile, overlap, per_block)
    blocks = []
    for (i, (r0, r1)), (j, (c0, c1)) in itertools.product(enumerate(row_ranges), enumerate(col_ranges)):
        rows = [r for r in row_offs if r < r1 and r + th > r0]
        cols = [c for c in col_offs if c < c1 and c + tw > c0]
        tiles = tuple((r, c, th, tw) for r in rows for c in cols)
        blocks.append(Block(i, j, (r0, c0, r1 - r0, c1 - c0), tiles))
    return blocks


def shared_tiles(blocks: Sequence[Block]) -> set[Rect]:
    """Tiles that cover pixels of more than one block (predicted once, as tasks of their own)."""
    count: dict[Rect, int] = {}
    for b in blocks:
        for t in b.tiles:
            count[t] = count.get(t, 0) + 1
    return {t for t, n in count.items() if n > 1}


def _window(rect: Rect) -> Window:
    r, c, h, w = rect
    return Window(c, r, w, h)


def tile_sums(models: RunModels, scene: Scene, plans: Sequence[Plan], rect: Rect, overlap: int,
              aoi: AoiReader | None, context: tuple[int, int] = (0, 1)) -> BlendSums | None:
    """The weighted probabilities of one tile over the tile (weights as in the single-process path), or None
    for a tile outside the AOI (the single-process path skips it too). ``context`` (margin, alignment) as in
    :func:`~tropicrop.inference.stream.predict_tile`: the tile is read with the scene around it, wherever its
    block lies, so its probabilities are those of the single-process path."""
    window = _window(rect)
    if aoi is not None and not aoi(window).any():
        return None
    sums = BlendSums(len(plans), models.classes.num_classes, rect[2], rect[3])
    predict_tile(models, scene, window, plans, tile_weights(window, scene.grid, overlap), sums, context)
    return sums


@dataclass(frozen=True)
class BlockMaps:
    """What one block writes: class codes uint8 (targets, h, w), uint8 probabilities (targets, K-1, h, w)
    when kept, and the layers written beside the maps (``"confidence"``, and ``"uncertainty"`` when asked
    for), uint8 percent (targets, h, w), as :class:`~tropicrop.inference.stream.FinishedRows` holds them."""

    codes: np.ndarray
    probs: np.ndarray | None
    layers: dict[str, np.ndarray]


def block_maps(models: RunModels, scene: Scene, plans: Sequence[Plan], block: Block, overlap: int,
               aoi: AoiReader | None, shared: Mapping[Rect, BlendSums | None], probabilities: bool,
               predict: Callable[[Rect], BlendSums | None] | None = None,
               context: tuple[int, int] = (0, 1), uncertainty: str | None = None) -> BlockMaps:
    """Class codes of ``block``, its probabilities with ``probabilities``, its confidence layer and, with
    ``uncertainty`` (``entropy``, ``margin``), that layer (:class:`BlockMaps`).

    Tiles found in ``shared`` are taken from there, the others predicted here; each tile's sums are added
    to the block's in raster order, so every sum equals the single-process one bit for bit.
    """
    predict = predict or (lambda rect: tile_sums(models, scene, plans, rect, overlap, aoi, context))
    r0, c0, h, w = block.rect
    sums = BlendSums(len(plans), models.classes.num_classes, h, w)
    for rect in block.tiles:
        tile = shared[rect] if rect in shared else predict(rect)
        if tile is None:
            continue
        tr, tc, th, tw = rect
        rows = slice(max(tr, r0), min(tr + th, r0 + h))
        cols = slice(max(tc, c0), min(tc + tw, c0 + w))
        into = (slice(rows.start - r0, rows.stop - r0), slice(cols.start - c0, cols.stop - c0))
        src = (slice(rows.start - tr, rows.stop - tr), slice(cols.start - tc, cols.stop - tc))
        sums.acc[:, :, into[0], into[1]] += tile.acc[:, :, src[0], src[1]]
        sums.weight[into] += tile.weight[src]
        sums.seen[:, into[0], into[1]] |= tile.seen[:, src[0], src[1]]
    return finish(sums, block, aoi, probabilities, uncertainty)


def finish(sums: BlendSums, block: Block, aoi: AoiReader | None, probabilities: bool,
           uncertainty: str | None = None) -> BlockMaps:
    """A block's outputs from its sums, one target at a time and with the same functions as the
    single-process path (so every value is the same); pixels outside the AOI are no data."""
    targets, classes, h, w = sums.acc.shape
    codes = np.full((targets, h, w), NODATA, dtype=np.uint8)
    probs = np.zeros((targets, classes - 1, h, w), dtype=np.uint8) if probabilities else None
    layers = {name: np.full((targets, h, w), LAYER_NODATA, dtype=np.uint8) for name in layer_names(uncertainty)}
    everything = (slice(0, h), slice(0, w))
    for slot in range(targets):
        p, valid = sums.probabilities(*everything, slot)
        codes[slot] = class_map(p, valid)
        if probs is not None:
            probs[slot] = scaled_probabilities(p, valid)
        for name, layer in layers.items():
            layer[slot] = confidence_layer(p, valid, uncertainty if name == "uncertainty" else None)
    if aoi is not None:
        outside = ~aoi(block.window)
        codes[:, outside] = NODATA
        if probs is not None:
            probs[:, :, outside] = 0
        for layer in layers.values():
            layer[:, outside] = LAYER_NODATA
    return BlockMaps(codes, probs, layers)
