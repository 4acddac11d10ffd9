"""The one interface prediction asks of every kind of run: a network, a sequence network, a per-pixel model.

A run is loaded into :class:`Net` objects, each holding a :class:`Predictor` chosen once, at loading, for
the kind of model it is (:mod:`.kinds`). Everything else, the tiles, their context margins and blending,
the AOI, probabilities, per-parcel answers, precision, the prediction log and Dask, works on the
predictor only, so it serves every kind the same way. A predictor answers two questions: how much scene
context a tile needs around it (:meth:`Predictor.margin`, :attr:`Predictor.alignment`), and the class
probabilities of the target windows of one tile (:meth:`Predictor.tile_probabilities`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from tropicrop.windows.dates import WindowIndex
from tropicrop.windows.normalize import Normalizer


@dataclass(frozen=True)
class TileInput:
    """One tile as every predictor receives it.

    ``raw`` (N, C, h, w) float32 dB (NaN = no data) holds the dates the tile's windows need, read over
    the tile and its context margin; ``position`` maps a scene date index to its row of ``raw``; ``crop``
    (rows, cols) cuts the tile out of the read window. ``normalizer``, ``device`` and ``autocast`` (the
    reduced precision, or None) are the run's.
    """

    raw: np.ndarray
    position: dict[int, int]
    crop: tuple[slice, slice]
    normalizer: Normalizer
    device: torch.device
    autocast: torch.dtype | None = None


@runtime_checkable
class Predictor(Protocol):
    """What prediction needs of one trained model, whatever its kind."""

    kind: str
    """``network`` (one window -> one map), ``sequence`` (every month of a tile in one pass) or ``pixel``."""

    @property
    def alignment(self) -> int:
        """Context windows start on multiples of this (a network's downsampling factor; 1 per pixel)."""
        ...

    def margin(self, in_channels: int, length: int) -> int:
        """Pixels of scene context a tile must be read with so that its map does not depend on the tiling."""
        ...

    def tile_probabilities(self, tile: TileInput, plans: Sequence[Plan]) -> Iterator[tuple[Plan, np.ndarray]]:
        """Class probabilities (K, th, tw) float32 of each plan over the tile (``tile.crop``), class 0 (no
        reference) included, in any order."""
        ...


@dataclass(frozen=True)
class Net:
    """One trained model of a run: ``target`` is its month's date (per-month mode) or None (all months)."""

    name: str
    target: dt.date | None
    predictor: Predictor


@dataclass(frozen=True, eq=False)
class Plan:
    """One target date: its window, the model that classifies it and its slot in the output buffers."""

    date: dt.date
    slot: int
    net: Net
    window: WindowIndex
