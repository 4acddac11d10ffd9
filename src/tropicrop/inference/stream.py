"""Streaming blend: weighted sums of tile probabilities held only where a later tile can still add, finished
rows turned into class codes and written as the tiles go."""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import torch
from rasterio.windows import Window
from tqdm import tqdm

from tropicrop.inference.mapfiles import (
    LAYER_NODATA,
    NODATA,
    PROB_SCALE,
    UNCERTAINTIES,
    Outputs,
    ScratchMaps,
    finalise_maps,
)
from tropicrop.inference.predictor import Plan, TileInput
from tropicrop.inference.run import RunModels
from tropicrop.inference.tiling import AoiReader, context_window, tile_layout, tile_weights
from tropicrop.io.rasters import Grid
from tropicrop.scene import Scene


class BlendSums:
    """Weighted sums of tile probabilities over a block of pixels, not yet divided by the summed weight.

    ``acc`` (targets, K, h, w) float32 sums weight x probabilities, ``weight`` (h, w) sums the tiles' weights
    and ``seen`` (targets, h, w) records whether a real image lies in the pixel's window. Blocks are the
    current tile (columns shift left from one tile to the next) and the band of rows that the next row of
    tiles overlaps; nothing wider than a tile is held for every row of a tile row.
    """

    def __init__(self, targets: int, classes: int, height: int, width: int) -> None:
        self.acc = np.zeros((targets, classes, height, width), dtype=np.float32)
        self.weight = np.zeros((height, width), dtype=np.float32)
        self.seen = np.zeros((targets, height, width), dtype=bool)

    def add(self, slot: int, probs: np.ndarray, weight: np.ndarray, seen: np.ndarray) -> None:
        """Add weight * probabilities (K, h, w) of target ``slot`` over the whole block (the tile)."""
        self.acc[slot] += probs * weight
        self.seen[slot] |= seen

    def add_block(self, other: BlendSums, rows: slice, cols: slice, other_cols: slice) -> None:
        """Add ``other``'s sums, its first ``rows.stop - rows.start`` rows and columns ``other_cols``, into
        rows ``rows`` and columns ``cols``."""
        n = rows.stop - rows.start
        self.acc[:, :, rows, cols] += other.acc[:, :, :n, other_cols]
        self.weight[rows, cols] += other.weight[:n, other_cols]
        self.seen[:, rows, cols] |= other.seen[:, :n, other_cols]

    def shift_left(self, n: int) -> None:
        """Move columns ``[n, w)`` to ``[0, w - n)`` and zero the rest (the next tile starts ``n`` px right).

        Copied in blocks of ``n`` columns, left to right, so that no block overlaps its source and numpy
        needs no temporary copy of the buffer (a long prediction would otherwise allocate one per tile).
        """
        for buf in (self.acc, self.weight, self.seen):
            width = buf.shape[-1]
            for start in range(0, width - n, n):
                stop = min(start + n, width - n)
                buf[..., start:stop] = buf[..., start + n : stop + n]
            buf[..., max(width - n, 0) :] = 0

    def clear(self) -> None:
        """Zero every sum (the buffer is reused from one tile row to the next)."""
        for buf in (self.acc, self.weight, self.seen):
            buf.fill(0)

    def probabilities(self, rows: slice, cols: slice, slot: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Blended probabilities (targets, K, r, c) float32 of a sub-block, and where they are valid
        (targets, r, c): a real image in the window and at least one tile's weight. With ``slot``: that
        target's only, (K, r, c) and (r, c)."""
        weight = self.weight[rows, cols]
        acc = self.acc[:, :, rows, cols] if slot is None else self.acc[slot, :, rows, cols]
        seen = self.seen[:, rows, cols] if slot is None else self.seen[slot, rows, cols]
        with np.errstate(invalid="ignore", divide="ignore"):
            probs = np.where(weight > 0, acc / np.maximum(weight, 1e-30), 0.0)
        return probs.astype(np.float32, copy=False), seen & (weight > 0)


class FinishedRows:
    """The finished rows of one tile row, full width, as uint8 class codes (targets, rows, W) and, when
    kept, uint8 probabilities (targets, K - 1, rows, W). Allocated once for the most rows a tile row
    finishes and reused (:meth:`start`), so a long prediction does not allocate a strip per tile row."""

    def __init__(self, targets: int, classes: int, rows: int, width: int, probabilities: bool,
                 uncertainty: str | None = None) -> None:
        self._codes = np.full((targets, rows, width), NODATA, dtype=np.uint8)
        self._probs = np.zeros((targets, classes - 1, rows, width), dtype=np.uint8) if probabilities else None
        # the confidence layer (and --uncertainty), uint8 percent (tropicrop.calibration)
        self.uncertainty = uncertainty
        self._layers = {name: np.full((targets, rows, width), LAYER_NODATA, dtype=np.uint8)
                        for name in layer_names(uncertainty)}
        self.start(0, rows)

    def start(self, top: int, rows: int) -> None:
        """Hold scene rows ``[top, top + rows)`` next (every column of them is then :meth:`put` once)."""
        self.window = Window(0, top, self._codes.shape[-1], rows)
        self.codes = self._codes[:, :rows]
        self.probs = None if self._probs is None else self._probs[:, :, :rows]
        self.layers = {name: buf[:, :rows] for name, buf in self._layers.items()}

    def put(self, sums: BlendSums, rows: int, cols: slice, col_off: int) -> None:
        """Finish the first ``rows`` rows and columns ``cols`` of ``sums``, scene columns from ``col_off``
        (one target at a time, so the temporaries stay the size of one tile's probabilities)."""
        for slot in range(len(self.codes)):
            probs, valid = sums.probabilities(slice(0, rows), cols, slot)
            out = slice(col_off, col_off + probs.shape[-1])
            self.codes[slot, :, out] = class_map(probs, valid)
            if self.probs is not None:
                self.probs[slot, :, :, out] = scaled_probabilities(probs, valid)
            for name, layer in self.layers.items():
                layer[slot, :, out] = confidence_layer(probs, valid, self.uncertainty if name == "uncertainty" else None)


def class_map(probs: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Class codes uint8 (..., h, w) from probabilities (..., K, h, w): the most probable class among 1..K-1
    (never 0, *no reference*, as in training), :data:`NODATA` where ``valid`` (..., h, w) is false."""
    codes = (probs[..., 1:, :, :].argmax(axis=-3) + 1).astype(np.uint8)
    codes[~valid] = NODATA
    return codes


def scaled_probabilities(probs: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """uint8 (K-1, h, w) probabilities of classes 1..K-1 from (K, h, w), renormalised without class 0 and
    scaled by 255; 0 where ``valid`` (h, w) is false."""
    real = probs[1:]
    total = real.sum(axis=0, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(total > 0, real / total, 0.0)
    out = np.rint(p * PROB_SCALE).astype(np.uint8)
    out[:, ~valid] = 0
    return out


def layer_names(uncertainty: str | None) -> tuple[str, ...]:
    """Layers written beside each map: the confidence layer, and the uncertainty one when asked for."""
    return ("confidence", "uncertainty") if uncertainty else ("confidence",)


def confidence_layer(probs: np.ndarray, valid: np.ndarray, measure: str | None = None) -> np.ndarray:
    """uint8 percent (h, w) from probabilities (K, h, w), renormalised without class 0: the probability of
    the mapped class (``measure`` None), the entropy over classes 1..K-1 divided by its maximum
    (``"entropy"``), or the gap between the two largest probabilities (``"margin"``);
    :data:`LAYER_NODATA` where ``valid`` (h, w) is false."""
    real = probs[1:].astype(np.float64)
    total = real.sum(axis=0, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(total > 0, real / total, 0.0)
    if measure is None:
        value = p.max(axis=0)
    elif measure == "entropy":
        value = -(p * np.log(np.where(p > 0, p, 1.0))).sum(axis=0) / np.log(max(len(p), 2))
    elif measure == "margin":
        top2 = np.sort(p, axis=0)[-2:] if len(p) > 1 else np.concatenate([np.zeros_like(p), p])
        value = top2[-1] - top2[-2]
    else:
        raise ValueError(f"unknown uncertainty {measure!r}; use one of {', '.join(UNCERTAINTIES)}")
    out = np.rint(np.clip(value, 0.0, 1.0) * 100).astype(np.uint8)
    out[~valid] = LAYER_NODATA
    return out


def predict_tile(models: RunModels, scene: Scene, window: Window, plans: Sequence[Plan], weight: np.ndarray,
                 sums: BlendSums, margin: tuple[int, int] = (0, 1)) -> None:
    """Read every date the tile's windows need once, run each model's predictor on its plans, add to ``sums``
    (the tile's block). With ``margin`` (pixels, alignment; :func:`~tropicrop.inference.tiling.run_margin`) the
    models see the tile with that much scene around it (:func:`~tropicrop.inference.tiling.context_window`),
    and the probabilities are cropped to the tile."""
    needed = sorted({int(i) for p in plans for i in p.window.indices if i >= 0})
    read = context_window(window, scene.grid, *margin) if margin[0] > 0 else window
    crop = (slice(int(window.row_off - read.row_off), int(window.row_off - read.row_off + window.height)),
            slice(int(window.col_off - read.col_off), int(window.col_off - read.col_off + window.width)))
    raw = scene.read_images(read, [scene.dates[i] for i in needed])  # (N, C, h, w) dB, NaN = no data
    real = np.isfinite(raw[..., crop[0], crop[1]]).any(axis=1)  # (N, h, w): the tile's pixel has data at that date
    position = {i: k for k, i in enumerate(needed)}
    tile = TileInput(raw, position, crop, models.normalizer, models.device, models.autocast)
    sums.weight += weight
    by_net: dict[str, list[Plan]] = {}
    for p in plans:
        by_net.setdefault(p.net.name, []).append(p)
    for net_plans in by_net.values():
        for plan, probs in net_plans[0].net.predictor.tile_probabilities(tile, net_plans):
            seen = real[[position[int(i)] for i in plan.window.indices if i >= 0]].any(axis=0)
            sums.add(plan.slot, probs, weight, seen)


def buffer_bytes(grid: Grid, dates: int, classes: int, tile: int, overlap: int, probabilities: bool) -> int:
    """Bytes of the blending buffers for ``dates`` target dates: float sums (:class:`BlendSums`, 4 bytes per
    class, 1 for ``seen``) over the current tile and over the band of rows shared with the next tile row,
    and the uint8 codes (and probabilities) of one tile row's finished rows. The band and the finished rows
    grow with the scene width, never with its height."""
    th, rows, stops = _tile_rows(grid.height, tile, overlap)
    tw, _ = tile_layout(grid.width, tile, overlap)
    band, done = _buffer_rows(th, rows, stops)
    sums = dates * (4 * classes + 1) + 4
    finished = dates * (2 + (classes - 1 if probabilities else 0))  # codes, confidence layer, probabilities
    return sums * (band * grid.width + th * tw) + finished * done * grid.width


def _tile_rows(height: int, tile: int, overlap: int) -> tuple[int, list[int], list[int]]:
    """Tile height, the first scene row of each tile row, and the end of the rows each tile row finishes
    (those no later tile row overlaps)."""
    th, rows = tile_layout(height, tile, overlap)
    return th, rows, [*rows[1:], height]


def _buffer_rows(th: int, rows: list[int], stops: list[int]) -> tuple[int, int]:
    """Rows of the band shared with the next tile row, and rows a tile row finishes, at most."""
    pairs = list(zip(rows, stops, strict=True))
    return max(r + th - stop for r, stop in pairs), max(stop - r for r, stop in pairs)


def stream_plans(models: RunModels, scene: Scene, out: Path, plans: Sequence[Plan], outputs: dict[dt.date, Outputs],
                 tile: int, overlap: int, probabilities: bool, progress: bool, aoi: AoiReader | None,
                 context: tuple[int, int] = (0, 1), uncertainty: str | None = None) -> list[dt.date]:
    """Tile, blend and write scratch rasters for ``plans``, then finalise each date. Returns dates whose
    window has no real image anywhere (no map is written for them).

    Tile rows go top to bottom, tiles left to right. After a tile, its columns up to the next tile's start
    are final for the rows up to the next tile row's start: they become class codes at once. The rows the
    next tile row overlaps are carried in a band (:class:`BlendSums`), the columns the next tile overlaps
    in the tile's own block, shifted left. Sums are added in the same order as with a whole-scene buffer.
    """
    grid = scene.grid
    th, row_offs, stops = _tile_rows(grid.height, tile, overlap)  # tile row k finishes [row_offs[k], stops[k])
    tw, col_offs = tile_layout(grid.width, tile, overlap)
    band_max, done_max = _buffer_rows(th, row_offs, stops)
    names = models.classes.names
    targets, classes = len(plans), len(names)
    # One band for the rows a tile row shares with the next: read for each tile's new columns, then
    # overwritten, left to right, with the next row's share (written columns are never read again).
    band = BlendSums(targets, classes, band_max, grid.width)
    band_rows = 0
    work = BlendSums(targets, classes, th, tw)  # the current tile's block
    finished = FinishedRows(targets, classes, done_max, grid.width, probabilities, uncertainty)
    any_seen = np.zeros(targets, dtype=bool)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".partial-") as scratch_dir, ExitStack() as stack:
        scratch = ScratchMaps(Path(scratch_dir), grid, [p.date for p in plans], names, probabilities, stack,
                              layer_names(uncertainty))
        bar = stack.enter_context(tqdm(total=len(row_offs) * len(col_offs), desc=f"predicting {len(plans)} date(s)",
                                       unit="tile", disable=not progress))
        with torch.inference_mode():
            for r, stop in zip(row_offs, stops, strict=True):
                finished.start(r, stop - r)
                work.clear()
                for j, c in enumerate(col_offs):
                    shift = c - col_offs[j - 1] if j else tw  # columns [tw - shift, tw) are new to this tile
                    if j:
                        work.shift_left(shift)
                    work.add_block(band, slice(0, band_rows), slice(tw - shift, tw), slice(c + tw - shift, c + tw))
                    window = Window(c, r, tw, th)
                    if aoi is None or aoi(window).any():
                        predict_tile(models, scene, window, plans, tile_weights(window, grid, overlap), work, context)
                    bar.update(1)
                    cstop = col_offs[j + 1] if j + 1 < len(col_offs) else grid.width  # columns [c, cstop) finish
                    finished.put(work, stop - r, slice(0, cstop - c), c)
                    _carry(band, work, stop - r, c, cstop)
                band_rows = r + th - stop
                any_seen |= _write_rows(finished, scratch, aoi)
        stack.close()  # scratch rasters complete on disk
        empty = [p.date for p, seen in zip(plans, any_seen, strict=True) if not seen]
        for p in plans:
            if p.date not in empty:
                finalise_maps(scratch.maps[p.slot], scratch.probs[p.slot], outputs[p.date], names, p.date.isoformat(),
                              scratch.layer_paths(p.slot))
    return empty


def _carry(band: BlendSums, work: BlendSums, first_row: int, c: int, cstop: int) -> None:
    """Copy the tile block's rows from ``first_row`` (those the next tile row overlaps), columns ``[c,
    cstop)`` of the scene, into the first rows of the band."""
    cols = slice(0, cstop - c)
    n = work.weight.shape[0] - first_row
    band.acc[:, :, :n, c:cstop] = work.acc[:, :, first_row:, cols]
    band.weight[:n, c:cstop] = work.weight[first_row:, cols]
    band.seen[:, :n, c:cstop] = work.seen[:, first_row:, cols]


def _write_rows(finished: FinishedRows, scratch: ScratchMaps, aoi: AoiReader | None) -> np.ndarray:
    """Write a tile row's finished rows of every target (pixels outside the AOI set to no data); returns
    (targets,) whether any pixel got a class."""
    if aoi is not None:
        outside = ~aoi(finished.window)
        finished.codes[:, outside] = NODATA
        if finished.probs is not None:
            finished.probs[:, :, outside] = 0
        for layer in finished.layers.values():
            layer[:, outside] = LAYER_NODATA
    for slot in range(len(finished.codes)):
        scratch.write(slot, finished.window, finished.codes[slot], None if finished.probs is None else finished.probs[slot])
        for name, layer in finished.layers.items():
            scratch.write_layer(name, slot, finished.window, layer[slot])
    result: np.ndarray = (finished.codes != NODATA).any(axis=(1, 2))
    return result

