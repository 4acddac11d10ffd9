"""Full-scene prediction: a crop map for every requested month, blended across overlapping tiles, streamed.

The scene is cut into tiles of at most ``tile`` pixels overlapping by at least ``overlap``, spread evenly so
that the outer tiles end on the scene border (every pixel is covered without padding; a scene smaller than
a tile is one tile). Each tile's softmax probabilities are accumulated with a smooth weight
(:func:`tile_weights`: a sin^2 ramp inside the overlap on every side that has a neighbouring tile, 1
elsewhere; > 0 everywhere) and divided by the summed weight, so there are no seams and the map hardly
depends on the tile size. (The authors mosaic non-overlapping 32 x 32 patches; every patch border there is
a seam.)

Tiles are processed in rows, left to right. Unnormalised sums are held only where a later tile can still
add: the current tile's block and the band of rows that the next tile row overlaps (``(targets, K,
overlap, width)``). After each tile its columns up to the next tile are final for the rows up to the next
tile row: they become uint8 class codes, and a tile row's finished rows are written to scratch GeoTIFFs
with windowed writes, which become cloud-optimised GeoTIFFs when the whole scene is done. Memory therefore
grows with the scene width only, by about ``targets x K x overlap x 4`` bytes per column, and never with
its height. When the buffers of all requested dates would pass :data:`BUFFER_BYTES` (a scene over 100 000
px wide), the dates are predicted in groups, one pass over the scene each.

Every date of a tile is read and encoded once per network (``model.encode``), and the encoder features are
shared by the 12-date windows of all target months served by that network (``model.decode``): an
all-months run encodes each date of a tile once for all 12 maps. A per-month run has one network per month,
each with its own encoder, so sharing happens within a network only.

Outputs in ``OUT`` (each written under a temporary name and renamed when complete; a date counts as done
when its map exists, so a re-run after a crash finishes only the missing dates)::

    OUT/classes.json                 the class table: map code i = model class index i (0 = no data)
    OUT/maps/YYYYMMDD.tif            uint8 class codes, colour table, input CRS/transform, COG with overviews
    OUT/maps/YYYYMMDD.png            quick-look with a legend
    OUT/probabilities/YYYYMMDD.tif   optional: one uint8 band per class (probability x 255, scale 1/255)
    OUT/predict.json                 run, scene, tiling, the net used per date, timing (one entry per pass)

A ``kill -9`` leaves at most a hidden ``OUT/.partial-*`` scratch folder (removed on any Python exception)
and hidden ``.*.tmp.tif`` files, never a file under a final name.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
import torch
from rasterio.enums import Resampling
from rasterio.windows import Window
from torch import Tensor, nn
from tqdm import tqdm

from tropicrop.classes import ClassTable
from tropicrop.errors import ConfigError, RunError, SceneError
from tropicrop.io.files import atomic_path, write_json
from tropicrop.io.rasters import Grid, RasterSource
from tropicrop.models import UnetConvLSTM
from tropicrop.scene import Scene, load_scene
from tropicrop.windows import Normalizer, WindowIndex, day_of_year, shift_doy, target_window

log = logging.getLogger(__name__)

NODATA = 0  # map code of pixels without a prediction (outside the AOI, or no real image in the window)
PROB_SCALE = 255  # probabilities are stored as round(p * 255) in uint8
COG_BLOCK = 256
EDGE_WEIGHT = 1e-3  # blending weight of the pixels nearest an inner tile edge
BUFFER_BYTES = 2 * 1024**3  # above this, target dates are predicted in groups, one pass over the scene each
DECODE_BATCH = {"cpu": 1, "cuda": 4}  # windows decoded at a time: on the CPU batching is no faster, only bigger
QUICKLOOK_SIDE = 1024  # longest side of the PNG quick-look, in pixels

# Colours of the classes of the paper's LEM tables; other names get tab20 colours.
CLASS_COLORS: dict[str, tuple[int, int, int]] = {
    "soybean": (46, 139, 87), "maize": (255, 215, 0), "cotton": (176, 196, 222), "millet": (205, 133, 63),
    "pasture": (154, 205, 50), "cerrado": (0, 100, 0), "soil": (139, 69, 19), "other": (150, 150, 150),
    "beans": (218, 112, 214), "sorghum": (255, 140, 0), "eucalyptus": (72, 61, 139), "turfgrass": (152, 251, 152),
    "crotalaria": (255, 105, 180), "brachiaria": (189, 183, 107), "ncc": (70, 130, 180),
    "not identified": (90, 90, 90),
}


# ------------------------------------------------------------------------------------------ the run
@dataclass(frozen=True)
class Net:
    """One trained network of a run: ``target`` is its month's date (per-month mode) or None (all months)."""

    name: str
    target: dt.date | None
    model: nn.Module


@dataclass
class RunModels:
    """Everything prediction needs from a run directory, loaded onto ``device``.

    ``autocast`` is the reduced precision (e.g. torch.bfloat16) to run the networks in, or None for float32.
    ``doy_offset`` (days) is added to the scene's days of year before they reach the networks: an adapted
    run (``tropicrop adapt``, ``RUN/adaptation.json``) moves the new year's calendar onto the training year's.
    """

    classes: ClassTable
    normalizer: Normalizer
    sequence_length: int
    in_channels: int
    nets: list[Net]
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    autocast: torch.dtype | None = None
    root: Path | None = None
    doy_offset: int = 0

    @property
    def per_month(self) -> bool:
        """Whether the run has one network per target month (the paper's Baselines)."""
        return any(n.target is not None for n in self.nets)

    def net_for(self, date: dt.date) -> Net:
        """The network that classifies ``date``: the all-months net, or the per-month net of the same calendar
        month (the scene may be another year than the training scene), nearest day of year as tie-break."""
        if not self.per_month:
            return self.nets[0]
        same = [n for n in self.nets if n.target is not None and n.target.month == date.month]
        if not same:
            have = ", ".join(n.name for n in self.nets)
            raise RunError(self.root, f"has no per-month network for {date:%B} (target {date})",
                           f"its networks are {have}; predict dates of those months (--dates)")
        return min(same, key=lambda n: _doy_distance(date, n.target))  # type: ignore[arg-type]


def _doy_distance(a: dt.date, b: dt.date) -> int:
    d = abs(day_of_year(a) - day_of_year(b))
    return min(d, 365 - d)


def select_device(accelerator: str, precision: str) -> tuple[torch.device, torch.dtype | None]:
    """Device and autocast dtype from a run's ``trainer.accelerator`` and ``trainer.precision``.

    "gpu"/"cuda" (or "auto" with a GPU present) run on CUDA, in bf16 or fp16 autocast when the precision
    says so; anything else runs on the CPU in float32. A GPU run on a machine without one falls back to the
    CPU with a warning.
    """
    acc = accelerator.lower()
    if acc in ("gpu", "cuda") or (acc == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            warnings.warn(f"the run was trained with accelerator={accelerator!r} but no CUDA device is available; "
                          "predicting on the CPU", stacklevel=2)
            return torch.device("cpu"), None
        dtype = torch.bfloat16 if "bf16" in precision else torch.float16 if precision.startswith("16") else None
        torch.backends.cudnn.benchmark = True  # every tile has the same size: autotune the convolutions once
        return torch.device("cuda"), dtype
    return torch.device("cpu"), None


def prepare_for_inference(model: nn.Module, device: torch.device, channels_last: bool = True) -> nn.Module:
    """``model`` in eval mode on ``device``; a UnetConvLSTM also with BatchNorm folded into its convolutions
    (same outputs, one pass less per feature map) and, on the CPU, its U-Net channels-last (measured faster
    there only, ``benchmarks/inference.py``; ``channels_last=False`` to compare)."""
    model = model.eval()
    if isinstance(model, UnetConvLSTM):
        model.fold_batchnorm()
        if channels_last and device.type == "cpu":
            model.use_channels_last()
    return model.to(device)


def load_run(run_dir: Path) -> RunModels:
    """Load the class table, normalisation and every trained network of a finished run directory.

    Raises :class:`RunError` if the directory is missing, unfinished or holds no checkpoint, or if a
    network's class table differs from the run's.
    """
    from tropicrop.config import load_config
    from tropicrop.training import CropModule, TrainConfig

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunError(run_dir, "run directory not found", "train one with: tropicrop train -c CONFIG --run-dir RUN")
    for name in ("config.yaml", "classes.json", "normalization.json"):
        if not (run_dir / name).is_file():
            raise RunError(run_dir, f"is not a run directory (no {name})", "pass the --run-dir given to tropicrop train")
    if not (run_dir / "result.json").is_file():
        raise RunError(run_dir, "holds an unfinished run (no result.json)",
                       f"finish it with: tropicrop train --run-dir {run_dir} --resume")
    checkpoints = sorted((run_dir / "nets").glob("*/checkpoints/best.ckpt"))
    if not checkpoints:
        raise RunError(run_dir, "holds no trained network (no nets/*/checkpoints/best.ckpt)", "train it again with --force")
    cfg = load_config(TrainConfig, run_dir / "config.yaml")
    device, autocast = select_device(cfg.trainer.accelerator, cfg.trainer.precision)
    classes = ClassTable.from_dict(json.loads((run_dir / "classes.json").read_text()))
    normalizer = Normalizer.from_dict(json.loads((run_dir / "normalization.json").read_text()))
    nets = []
    hp: Any = {}
    for ckpt in checkpoints:
        module = CropModule.load_from_checkpoint(ckpt, map_location="cpu")
        hp = module.hparams
        if tuple(hp["class_names"]) != classes.names:
            raise RunError(ckpt, f"predicts classes {hp['class_names']} but classes.json says {list(classes.names)}",
                           "the run directory is inconsistent; train it again with --force")
        target = dt.date.fromisoformat(hp["target"]) if hp.get("target") else None
        nets.append(Net(ckpt.parents[1].name, target, prepare_for_inference(module.model, device)))
    if any(n.target is None for n in nets) and len(nets) > 1:
        raise RunError(run_dir, "mixes an all-months network with per-month ones", "train it again with --force")
    adaptation = run_dir / "adaptation.json"
    doy_offset = int(json.loads(adaptation.read_text()).get("doy_offset", 0)) if adaptation.is_file() else 0
    return RunModels(classes=classes, normalizer=normalizer, sequence_length=int(hp["sequence_length"]),
                     in_channels=int(hp["in_channels"]), nets=nets, device=device, autocast=autocast, root=run_dir,
                     doy_offset=doy_offset)


# ------------------------------------------------------------------------------------------ dates
def default_dates(scene: Scene, length: int = 12) -> list[dt.date]:
    """Every labelled date of ``scene``; for a scene without labels, every date whose window holds
    ``length`` real acquisitions (12 months of history for a monthly series)."""
    if scene.labelled_dates:
        return list(scene.labelled_dates)
    full = [d for i, d in enumerate(scene.dates) if i >= length - 1]
    if not full:
        raise SceneError(scene.manifest.path, f"no date has {length} acquisitions of history ({len(scene.dates)} dates)",
                         "choose dates explicitly (--dates YYYY-MM-DD,... or --dates all)")
    return full


def parse_dates(text: str | None, scene: Scene) -> list[dt.date] | None:
    """The ``--dates`` option: None (default dates), ``all`` (every date) or ``YYYY-MM-DD,...``."""
    if text is None:
        return None
    if text.strip().lower() == "all":
        return list(scene.dates)
    try:
        return [dt.date.fromisoformat(s.strip()) for s in text.split(",") if s.strip()]
    except ValueError as exc:
        raise ConfigError(None, f"--dates {text!r}: {exc}", "write dates as YYYY-MM-DD,YYYY-MM-DD or 'all'") from None


def _check_dates(scene: Scene, dates: Sequence[dt.date], length: int) -> list[dt.date]:
    """Sorted unique ``dates``; SceneError naming the scene for a date that is not an acquisition date."""
    if not dates:
        raise SceneError(scene.manifest.path, "no target date to predict", "pass --dates YYYY-MM-DD,... or --dates all")
    for d in dates:
        if d not in scene.dates:
            raise SceneError(scene.manifest.path, f"{d} is not an acquisition date of the scene",
                             f"dates run from {scene.dates[0]} to {scene.dates[-1]} (tropicrop inspect lists them)")
        if int(target_window(scene.dates, d, length).valid.sum()) < 1:
            raise SceneError(scene.manifest.path, f"the window of {d} holds no real image", "pick a later date")
    return sorted(set(dates))


# ------------------------------------------------------------------------------------------ tiling
def tile_layout(size: int, tile: int, overlap: int) -> tuple[int, list[int]]:
    """Tile length and offsets covering ``[0, size)`` with tiles of at most ``tile`` pixels overlapping by
    at least ``overlap``.

    The fewest tiles that can do it are spread evenly, and shrunk (to a multiple of 8, the networks'
    downsampling factor) to the length that just covers the axis: 1024 px in tiles of 256 with overlap 32
    gives 5 tiles of 232 px rather than 5 of 256 with the last one pushed back, 20 % less work. A scene
    smaller than a tile is one tile.
    """
    if tile >= size:
        return size, [0]
    n = math.ceil((size - overlap) / (tile - overlap))
    length = min(tile, 8 * math.ceil((size + (n - 1) * overlap) / n / 8))
    return length, [round(i * (size - length) / (n - 1)) for i in range(n)]


def ramp(length: int, overlap: int, rise: bool, fall: bool) -> np.ndarray:
    """1-D blending weight (length,) float32 of a tile: 1 inside, and over the ``overlap`` pixels next to an
    edge that has a neighbouring tile (``rise``: the first pixels, ``fall``: the last), a sin^2 transition
    across the middle half, with the quarter nearest the edge at :data:`EDGE_WEIGHT`.

    Predictions next to a tile edge see zero padding instead of the scene and are the least reliable, so
    they get almost no weight; the weight stays > 0 so that a pixel covered by one tile only is still
    predicted. Two tiles overlapping by exactly ``overlap`` get weights that sum to 1 (sin^2 + cos^2).
    (Measured on the tiny synthetic scene with a briefly trained network, against a sin^2 ramp over the
    whole overlap: maps made with 32 and 48 px tiles agree on 98.0 % instead of 97.5 % of pixels at overlap
    16, 99.5 % instead of 98.8 % at overlap 24.)
    """
    w = np.ones(length, dtype=np.float64)
    n = min(overlap, length)
    if n > 0:
        width = max(1, n // 2)
        x = np.clip((np.arange(n) + 0.5 - (n - width) / 2) / width, 0.0, 1.0)
        up = np.maximum(np.sin(0.5 * np.pi * x) ** 2, EDGE_WEIGHT)
        if rise:
            w[:n] *= up
        if fall:
            w[length - n :] *= up[::-1]
    return w.astype(np.float32)


def tile_weights(window: Window, grid: Grid, overlap: int) -> np.ndarray:
    """2-D blending weight (h, w) of a tile: the outer product of :func:`ramp` along rows and columns, with
    no ramp on the sides that lie on the scene border (no other tile covers those pixels)."""
    r0, c0, h, w = int(window.row_off), int(window.col_off), int(window.height), int(window.width)
    wy = ramp(h, overlap, rise=r0 > 0, fall=r0 + h < grid.height)
    wx = ramp(w, overlap, rise=c0 > 0, fall=c0 + w < grid.width)
    return np.outer(wy, wx)


def check_tiling(tile: int, overlap: int) -> None:
    """ConfigError for a tile size or overlap that cannot work."""
    if tile < 1:
        raise ConfigError(None, f"tile size is {tile}", "use a positive --tile (256 by default)")
    if overlap < 0 or overlap >= tile:
        raise ConfigError(None, f"overlap {overlap} must be in [0, tile) with tile {tile}", "lower --overlap")


# ------------------------------------------------------------------------------------------ area of interest
AoiReader = Callable[[Window], np.ndarray]


def aoi_reader(aoi: np.ndarray | str | Path | None, grid: Grid) -> AoiReader | None:
    """A reader of the area of interest as bool (h, w) per window, from a mask (H, W), a raster on the
    scene grid (non-zero = inside) or a vector file of polygons (reprojected to the scene CRS)."""
    if aoi is None:
        return None
    if isinstance(aoi, np.ndarray):
        if aoi.shape != grid.shape:
            raise ValueError(f"aoi mask has shape {aoi.shape}, the scene is {grid.shape}")
        mask = aoi.astype(bool)
        return lambda w: mask[_slices(w)]
    path = Path(aoi)
    if not path.is_file():
        raise SceneError(path, "AOI file not found", "pass a vector file of polygons or a raster mask on the scene grid")
    if path.suffix.lower() in (".tif", ".tiff", ".vrt", ".img", ".npy"):
        src = RasterSource(path)
        diff = grid.difference(src.grid)
        if diff is not None:
            raise SceneError(path, f"AOI raster: {diff}", "resample it onto the scene grid, or use a vector file")
        return lambda w: src.read(w)[0] != 0
    return _vector_aoi(path, grid)


def _vector_aoi(path: Path, grid: Grid) -> AoiReader:
    import geopandas as gpd
    from rasterio.features import rasterize

    try:
        gdf = gpd.read_file(path)
    except Exception as exc:  # pyogrio raises several error types for unreadable files
        raise SceneError(path, f"not a readable vector file ({exc})", "export the AOI as GeoPackage or GeoJSON") from None
    if gdf.crs is not None and grid.crs is not None and gdf.crs != grid.crs:
        gdf = gdf.to_crs(grid.crs)
    geoms = [g for g in gdf.geometry if g is not None and not g.is_empty]
    if not geoms:
        raise SceneError(path, "AOI file holds no geometry", "draw at least one polygon")

    def read(w: Window) -> np.ndarray:
        shape = (int(w.height), int(w.width))
        out: np.ndarray = rasterize(geoms, out_shape=shape, transform=grid.window_transform(w), fill=0, default_value=1,
                                    dtype="uint8")
        return out.astype(bool)

    return read


def _slices(w: Window) -> tuple[slice, slice]:
    r0, c0 = int(w.row_off), int(w.col_off)
    return slice(r0, r0 + int(w.height)), slice(c0, c0 + int(w.width))


# ------------------------------------------------------------------------------------------ one tile
@dataclass(frozen=True, eq=False)
class Plan:
    """One target date: its window, the network that classifies it and its slot in the output buffers."""

    date: dt.date
    slot: int
    net: Net
    window: WindowIndex


def _frames_index(plans: Sequence[Plan], position: dict[int, int], pad: int) -> Tensor:
    """(B, T) int64 positions of each window's dates among the encoded frames; padded dates -> ``pad``."""
    rows = [[position[int(i)] if i >= 0 else pad for i in p.window.indices] for p in plans]
    return torch.tensor(rows, dtype=torch.int64)


def _frames_doy(plans: Sequence[Plan], position: dict[int, int], frames: int, device: torch.device) -> Tensor:
    """(N,) int64 day of year of each encoded frame, read from the windows that contain it."""
    doy = torch.zeros(frames, dtype=torch.int64)
    for plan in plans:
        for i, d in zip(plan.window.indices, plan.window.doy, strict=True):
            if i >= 0:
                doy[position[int(i)]] = int(d)
    return doy.to(device)


def net_probabilities(net: Net, frames: Tensor, position: dict[int, int], plans: Sequence[Plan],
                      batch: int | None = None) -> Iterator[tuple[Plan, Tensor]]:
    """Softmax probabilities (K, h, w) float32 of each plan of ``net`` on one tile.

    ``frames`` (N, C, h, w) are the normalised images of the tile on the model's device; ``position`` maps
    a scene date index to its frame. Models with ``encode``/``decode`` encode each frame once and decode
    every window from the shared features (padded dates: skipped with ``padding="mask"``, an encoded zero
    image with ``padding="zeros"``, exactly as in ``forward``; with ``"mask"`` each frame's day of year
    enters its gates once); other models run ``forward`` per window.
    ``batch`` windows are decoded at a time (default :data:`DECODE_BATCH` of the device).
    """
    model: Any = net.model  # encode/decode are looked up, not part of nn.Module's type
    device = frames.device
    batch = batch or DECODE_BATCH.get(device.type, 1)
    shared = hasattr(model, "encode") and hasattr(model, "decode")
    zeros_mode = getattr(model, "padding", "mask") == "zeros"
    pad = len(frames) if (zeros_mode or not shared) else -1
    if pad >= 0:
        frames = torch.cat((frames, frames.new_zeros((1, *frames.shape[1:]))))
    features = None
    if shared:  # with "mask" padding, each frame's day of year enters its gates here, once
        features = model.encode(frames, _frames_doy(plans, position, len(frames), device) if pad < 0 else None)
    for start in range(0, len(plans), batch):
        chunk = plans[start : start + batch]
        index = _frames_index(chunk, position, pad).to(device)
        doy = torch.tensor(np.stack([p.window.doy for p in chunk]), dtype=torch.int64, device=device)
        valid = torch.tensor(np.stack([p.window.valid for p in chunk]), dtype=torch.bool, device=device)
        logits = model.decode(features.sequence(index), doy, valid) if features is not None else model(frames[index], doy, valid)
        probs = torch.softmax(logits.float(), dim=1)
        for k, plan in enumerate(chunk):
            yield plan, probs[k]


# ------------------------------------------------------------------------------------------ streaming
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

    def __init__(self, targets: int, classes: int, rows: int, width: int, probabilities: bool) -> None:
        self._codes = np.full((targets, rows, width), NODATA, dtype=np.uint8)
        self._probs = np.zeros((targets, classes - 1, rows, width), dtype=np.uint8) if probabilities else None
        self.start(0, rows)

    def start(self, top: int, rows: int) -> None:
        """Hold scene rows ``[top, top + rows)`` next (every column of them is then :meth:`put` once)."""
        self.window = Window(0, top, self._codes.shape[-1], rows)
        self.codes = self._codes[:, :rows]
        self.probs = None if self._probs is None else self._probs[:, :, :rows]

    def put(self, sums: BlendSums, rows: int, cols: slice, col_off: int) -> None:
        """Finish the first ``rows`` rows and columns ``cols`` of ``sums``, scene columns from ``col_off``
        (one target at a time, so the temporaries stay the size of one tile's probabilities)."""
        for slot in range(len(self.codes)):
            probs, valid = sums.probabilities(slice(0, rows), cols, slot)
            out = slice(col_off, col_off + probs.shape[-1])
            self.codes[slot, :, out] = class_map(probs, valid)
            if self.probs is not None:
                self.probs[slot, :, :, out] = scaled_probabilities(probs, valid)


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


# ------------------------------------------------------------------------------------------ map files
def class_colors(names: Sequence[str]) -> dict[int, tuple[int, int, int, int]]:
    """Colour table {code: RGBA} for class indices 0..K-1 of ``names``; 0 (no data) is transparent."""
    from matplotlib import colormaps

    tab = colormaps["tab20"]
    table: dict[int, tuple[int, int, int, int]] = {0: (0, 0, 0, 0)}
    spare = 0
    for i, name in enumerate(names):
        if i == 0:
            continue
        rgb = CLASS_COLORS.get(name.lower())
        if rgb is None:
            r, g, b, _ = tab(spare % 20)
            spare += 1
            rgb = (round(255 * r), round(255 * g), round(255 * b))
        table[i] = (*rgb, 255)
    return table


def _scratch_profile(grid: Grid, count: int) -> dict[str, Any]:
    """Uncompressed striped GeoTIFF: windowed writes of any rows go straight to disk."""
    return {"driver": "GTiff", "width": grid.width, "height": grid.height, "count": count, "dtype": "uint8",
            "crs": grid.crs, "transform": grid.transform, "tiled": False, "BIGTIFF": "IF_SAFER"}


def write_cog(src: Path, dst: Path, resampling: str) -> Path:
    """Copy GeoTIFF ``src`` to a cloud-optimised GeoTIFF ``dst`` (GDAL's COG driver: tiled, deflate,
    overviews made with ``resampling``), atomically. Colour table, nodata, band descriptions and scales
    are kept."""
    with atomic_path(dst) as tmp:
        rasterio.shutil.copy(src, tmp, driver="COG", COMPRESS="DEFLATE", BLOCKSIZE=COG_BLOCK, RESAMPLING=resampling,
                             OVERVIEW_RESAMPLING=resampling, BIGTIFF="IF_SAFER")
    return dst


def write_quicklook(map_path: Path, png: Path, names: Sequence[str], title: str) -> Path:
    """PNG quick-look of a class map with a legend of ``names`` (read decimated to at most
    :data:`QUICKLOOK_SIDE` pixels a side, through the COG's overviews), atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    with rasterio.open(map_path) as ds:
        scale = max(1.0, max(ds.width, ds.height) / QUICKLOOK_SIDE)
        shape = (max(1, round(ds.height / scale)), max(1, round(ds.width / scale)))
        codes = ds.read(1, out_shape=shape, resampling=Resampling.nearest)
    colors = class_colors(names)
    cmap = ListedColormap([_rgba(colors[i]) for i in range(len(names))])
    aspect = shape[1] / shape[0]
    fig = Figure(figsize=(min(12.0, 4.0 * aspect + 2.5), 4.5), dpi=150)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.imshow(codes, cmap=cmap, vmin=-0.5, vmax=len(names) - 0.5, interpolation="nearest")
    ax.set_title(title)
    ax.set_axis_off()
    handles = [Patch(facecolor=_rgba(colors[i]), edgecolor="black", linewidth=0.3, label=names[i])
               for i in range(1, len(names))]
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False, fontsize=8)
    fig.tight_layout()
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png")
    return png


def _rgba(color: tuple[int, int, int, int]) -> tuple[float, float, float, float]:
    r, g, b, a = color
    return r / 255, g / 255, b / 255, a / 255


@dataclass(frozen=True)
class Outputs:
    """The final paths of one date's outputs."""

    map: Path
    png: Path
    probabilities: Path | None

    @classmethod
    def of(cls, out: Path, date: dt.date, probabilities: bool) -> Outputs:
        """Paths under ``out`` for ``date``."""
        stamp = date.strftime("%Y%m%d")
        prob = out / "probabilities" / f"{stamp}.tif" if probabilities else None
        return cls(out / "maps" / f"{stamp}.tif", out / "maps" / f"{stamp}.png", prob)

    def done(self) -> bool:
        """Whether every output exists (they only appear complete)."""
        return all(p.is_file() for p in (self.map, self.png, self.probabilities) if p is not None)


class ScratchMaps:
    """Full-size scratch GeoTIFFs (class map, and probabilities) per target, written row band by row band."""

    def __init__(self, folder: Path, grid: Grid, dates: Sequence[dt.date], names: Sequence[str],
                 probabilities: bool, stack: ExitStack) -> None:
        self.maps: list[Path] = []
        self.probs: list[Path | None] = []
        self._map_ds: list[Any] = []
        self._prob_ds: list[Any] = []
        colors = class_colors(names)
        for d in dates:
            path = folder / f"{d:%Y%m%d}.map.tif"
            ds = stack.enter_context(rasterio.open(path, "w", nodata=NODATA, **_scratch_profile(grid, 1)))
            ds.write_colormap(1, colors)
            ds.set_band_description(1, "class")
            self.maps.append(path)
            self._map_ds.append(ds)
            if probabilities:
                ppath = folder / f"{d:%Y%m%d}.prob.tif"
                pds = stack.enter_context(rasterio.open(ppath, "w", **_scratch_profile(grid, len(names) - 1)))
                for b, name in enumerate(names[1:], start=1):
                    pds.set_band_description(b, name)
                pds.scales = (1.0 / PROB_SCALE,) * (len(names) - 1)
                self.probs.append(ppath)
                self._prob_ds.append(pds)
            else:
                self.probs.append(None)

    def write(self, slot: int, window: Window, codes: np.ndarray, probs: np.ndarray | None) -> None:
        """Write class codes (r, W) and, when kept, uint8 probabilities (K-1, r, W) of target ``slot``."""
        self._map_ds[slot].write(codes, 1, window=window)
        if probs is not None and self._prob_ds:
            self._prob_ds[slot].write(probs, window=window)


# ------------------------------------------------------------------------------------------ prediction
def _plans(models: RunModels, scene: Scene, dates: Sequence[dt.date]) -> list[Plan]:
    plans = []
    for k, d in enumerate(dates):
        window = target_window(scene.dates, d, models.sequence_length)
        if models.doy_offset:
            window = replace(window, doy=shift_doy(window.doy, models.doy_offset))
        plans.append(Plan(d, k, models.net_for(d), window))
    return plans


def _predict_tile(models: RunModels, scene: Scene, window: Window, plans: Sequence[Plan], weight: np.ndarray,
                  sums: BlendSums) -> None:
    """Read every date the tile's windows need once, run each network on its plans, add to ``sums`` (the
    tile's block)."""
    needed = sorted({int(i) for p in plans for i in p.window.indices if i >= 0})
    raw = scene.read_images(window, [scene.dates[i] for i in needed])  # (N, C, h, w) dB, NaN = no data
    real = np.isfinite(raw).any(axis=1)  # (N, h, w): the pixel has data at that date
    position = {i: k for k, i in enumerate(needed)}
    sums.weight += weight
    by_net: dict[str, list[Plan]] = {}
    for p in plans:
        by_net.setdefault(p.net.name, []).append(p)
    for net_plans in by_net.values():
        net = net_plans[0].net
        own = sorted({int(i) for p in net_plans for i in p.window.indices if i >= 0})
        frames = torch.from_numpy(models.normalizer(raw[[position[i] for i in own]])).to(models.device)
        own_pos = {i: k for k, i in enumerate(own)}
        autocast = (torch.autocast(device_type=models.device.type, dtype=models.autocast)
                    if models.autocast is not None else nullcontext())
        with autocast:
            for plan, probs in net_probabilities(net, frames, own_pos, net_plans):
                seen = real[[position[int(i)] for i in plan.window.indices if i >= 0]].any(axis=0)
                sums.add(plan.slot, probs.cpu().numpy(), weight, seen)


def predict_scene(models: RunModels, scene: Scene, out: Path, dates: Sequence[dt.date], *, tile: int = 256,
                  overlap: int = 32, probabilities: bool = False, progress: bool = True,
                  aoi: np.ndarray | str | Path | None = None) -> list[Path]:
    """Predict ``dates`` of ``scene`` with in-memory ``models`` into ``out`` (see the module docstring).

    Dates whose outputs all exist are skipped. Returns the map paths of ``dates``, in date order. Raises
    :class:`SceneError` if the scene's band count differs from the networks' or a date is not in the scene.
    """
    out = Path(out)
    check_tiling(tile, overlap)
    if scene.num_bands != models.in_channels:
        raise SceneError(scene.manifest.path, f"has {scene.num_bands} band(s) {list(scene.bands)} but the run was trained "
                         f"on {models.in_channels}", "predict a scene with the training scene's bands")
    dates = _check_dates(scene, dates, models.sequence_length)
    for d in dates:
        models.net_for(d)  # RunError now, before anything is written, for a month without a network
    outputs = {d: Outputs.of(out, d, probabilities) for d in dates}
    _write_classes(out, models.classes)
    todo = [d for d in dates if not outputs[d].done()]
    if len(todo) < len(dates):
        log.info("skipping %d date(s) whose maps exist in %s", len(dates) - len(todo), out)
    reader = aoi_reader(aoi, scene.grid)
    empty: list[dt.date] = []
    per_date = buffer_bytes(scene.grid, 1, models.classes.num_classes, tile, overlap, probabilities)
    group = max(1, BUFFER_BYTES // per_date)
    group = math.ceil(len(todo) / math.ceil(len(todo) / group)) if todo else 1  # passes of even size
    for start in range(0, len(todo), group):  # one pass over the scene per group of dates
        clock = time.perf_counter()
        plans = _plans(models, scene, todo[start : start + group])
        empty += _stream(models, scene, out, plans, outputs, tile, overlap, probabilities, progress, reader)
        _write_log(out, models, scene, plans, tile, overlap, time.perf_counter() - clock)
    if empty:
        raise SceneError(scene.manifest.path, "no pixel (inside the AOI) has a real image in the window of "
                         f"{', '.join(map(str, empty))}; no map written",
                         "check those images and the AOI, or predict other dates")
    return [outputs[d].map for d in dates]


def buffer_bytes(grid: Grid, dates: int, classes: int, tile: int, overlap: int, probabilities: bool) -> int:
    """Bytes of the blending buffers for ``dates`` target dates: float sums (:class:`BlendSums`, 4 bytes per
    class, 1 for ``seen``) over the current tile and over the band of rows shared with the next tile row,
    and the uint8 codes (and probabilities) of one tile row's finished rows. The band and the finished rows
    grow with the scene width, never with its height."""
    th, rows, stops = _tile_rows(grid.height, tile, overlap)
    tw, _ = tile_layout(grid.width, tile, overlap)
    band, done = _buffer_rows(th, rows, stops)
    sums = dates * (4 * classes + 1) + 4
    finished = dates * (1 + (classes - 1 if probabilities else 0))
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


def _stream(models: RunModels, scene: Scene, out: Path, plans: Sequence[Plan], outputs: dict[dt.date, Outputs],
            tile: int, overlap: int, probabilities: bool, progress: bool, aoi: AoiReader | None) -> list[dt.date]:
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
    finished = FinishedRows(targets, classes, done_max, grid.width, probabilities)
    any_seen = np.zeros(targets, dtype=bool)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".partial-") as scratch_dir, ExitStack() as stack:
        scratch = ScratchMaps(Path(scratch_dir), grid, [p.date for p in plans], names, probabilities, stack)
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
                        _predict_tile(models, scene, window, plans, tile_weights(window, grid, overlap), work)
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
                _finalise(scratch.maps[p.slot], scratch.probs[p.slot], outputs[p.date], names, p.date.isoformat())
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
    for slot in range(len(finished.codes)):
        scratch.write(slot, finished.window, finished.codes[slot], None if finished.probs is None else finished.probs[slot])
    result: np.ndarray = (finished.codes != NODATA).any(axis=(1, 2))
    return result


def _finalise(map_scratch: Path, prob_scratch: Path | None, outputs: Outputs, names: Sequence[str], title: str) -> None:
    """Scratch rasters -> COGs and the PNG; the map is renamed last, so its presence marks the date done."""
    if prob_scratch is not None and outputs.probabilities is not None:
        write_cog(prob_scratch, outputs.probabilities, "AVERAGE")
    with atomic_path(outputs.map) as tmp:
        write_cog(map_scratch, tmp, "MODE")
        write_quicklook(tmp, outputs.png, names, title)


def _write_classes(out: Path, classes: ClassTable) -> None:
    """OUT/classes.json; refuses an OUT that holds maps of another class table (their codes would differ)."""
    path = out / "classes.json"
    if path.is_file():
        existing = ClassTable.from_dict(json.loads(path.read_text()))
        if existing.names != classes.names:
            raise RunError(out, f"holds maps of classes {list(existing.names[1:])}, not {list(classes.names[1:])}",
                           "write the predictions of this run into another --out folder")
        return
    write_json(path, classes.to_dict())


def _write_log(out: Path, models: RunModels, scene: Scene, plans: Sequence[Plan], tile: int, overlap: int,
               seconds: float) -> None:
    """Append this session to OUT/predict.json (run, scene, tiling, the net per date, throughput)."""
    path = out / "predict.json"
    sessions = json.loads(path.read_text()) if path.is_file() else []
    pixels = scene.grid.width * scene.grid.height * len(plans)
    sessions.append({
        "run": str(models.root) if models.root else None,
        "scene": str(scene.root),
        "tile": tile,
        "overlap": overlap,
        "device": str(models.device),
        "doy_offset": models.doy_offset,
        "nets": {p.date.isoformat(): p.net.name for p in plans},
        "seconds": round(seconds, 3),
        "pixel_months_per_s": round(pixels / seconds, 1) if seconds > 0 else None,
    })
    write_json(path, sessions)


def predict_run(run_dir: Path, scene: Scene | Path, out: Path, dates: Sequence[dt.date] | None = None, tile: int = 256,
                overlap: int = 32, probabilities: bool = False, progress: bool = True,
                aoi: np.ndarray | str | Path | None = None) -> list[Path]:
    """Crop maps of ``scene`` for ``dates`` with the networks of run directory ``run_dir``, into ``out``.

    ``dates`` defaults to every labelled date of the scene (per-month runs: those of a month the run has a
    network for), or, for a scene without labels, every date with a full window of history. Tiles of
    ``tile`` pixels overlapping by ``overlap`` are blended smoothly; ``aoi`` (bool mask (H, W), raster or
    vector file) limits the work to its tiles, and map pixels outside it are 0 (nodata). Device and
    precision follow the run's ``trainer`` config. Returns the paths of the maps ``OUT/maps/YYYYMMDD.tif``.
    """
    models = load_run(Path(run_dir))
    scene = scene if isinstance(scene, Scene) else load_scene(scene)
    if dates is None:
        dates = default_dates(scene, models.sequence_length)
        if models.per_month:
            served = [d for d in dates if any(n.target is not None and n.target.month == d.month for n in models.nets)]
            if len(served) < len(dates):
                skipped = ", ".join(str(d) for d in dates if d not in served)
                warnings.warn(f"{run_dir}: no per-month network for {skipped}; not predicted", stacklevel=2)
            if not served:
                models.net_for(dates[0])  # raises RunError naming the networks
            dates = served
    return predict_scene(models, scene, Path(out), dates, tile=tile, overlap=overlap, probabilities=probabilities,
                         progress=progress, aoi=aoi)

