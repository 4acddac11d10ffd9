"""Prediction on a dask.distributed cluster: scenes split into blocks of tiles, blocks written as they finish.

The client plans each scene's blocks (:mod:`tropicrop.inference.blocks`) and submits three kinds of task:
a tile shared by several blocks (its weighted probabilities, handed by Dask to every block it touches), a
block (reads its tiles from the scene on the worker, blends them, writes its class codes, confidence layer
and the rest under ``OUT/.blocks-KEY/`` atomically), and a date's map (assembles the block files into the
same COGs and PNG as the single-process path: the map, the confidence layer, and the probabilities and
uncertainty layer when asked for). Dask does the scheduling, the data movement and the retries: a task that
raises is retried, and the tasks of a worker that dies are run again elsewhere (the scheduler's
``allowed-failures``). A block whose file exists is not recomputed when the command runs again; the block
folder is removed once every map of the scene is written. Workers need the run directory, the scenes and
``OUT`` at the same paths (a shared filesystem), and load the run and each scene once per process.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from distributed import WorkerPlugin

from tropicrop.allocator import keep_freed_memory
from tropicrop.errors import ConfigError, RunError
from tropicrop.inference.blocks import Block, Rect, block_maps, plan_blocks, shared_tiles, tile_sums
from tropicrop.inference.mapfiles import NODATA, Outputs, ScratchMaps, finalise_maps
from tropicrop.inference.predict import run_context
from tropicrop.inference.run import RunModels, load_run
from tropicrop.inference.session import (
    Dates,
    SceneWork,
    make_plans,
    no_map_error,
    prepare_scene,
    resolve_dates,
    scene_folders,
    write_log,
)
from tropicrop.inference.stream import BlendSums, layer_names
from tropicrop.inference.tiling import AoiReader, aoi_reader, check_tiling
from tropicrop.io.files import atomic_path
from tropicrop.layout import RunLayout
from tropicrop.scene import Scene, load_scene

log = logging.getLogger(__name__)

BLOCK_BYTES = 512 * 1024**2  # most bytes of blending sums one block task holds; larger blocks are cut down
RETRIES = 2  # extra tries of a task that raises (a lost worker is handled by the scheduler's allowed-failures)


@dataclass(frozen=True)
class Job:
    """What a worker needs to predict blocks of one scene: plain paths and numbers, cheap to send."""

    run_dir: str
    scene_dir: str
    out: str
    scratch: str
    dates: tuple[dt.date, ...]
    tile: int
    overlap: int
    probabilities: bool
    aoi: str | None
    precision: str | None = None  # as predict --precision (None: the run's trainer.precision)
    context: tuple[int, int] = (0, 1)  # (margin, alignment) every tile is read with, fixed by the client
    calibration: str = "temperature"  # as predict --calibration
    uncertainty: str | None = None  # as predict --uncertainty (entropy, margin)


@functools.lru_cache(maxsize=2)
def _run(run_dir: str, precision: str | None, calibration: str) -> RunModels:
    """The run's networks, loaded once per worker process (and precision and calibration)."""
    return load_run(Path(run_dir), precision, calibration)


@functools.lru_cache(maxsize=8)
def _scene(scene_dir: str) -> Scene:
    """A scene, opened once per worker process."""
    return load_scene(scene_dir)


def _context(job: Job) -> tuple[RunModels, Scene, list[Any], AoiReader | None]:
    models, scene = _run(job.run_dir, job.precision, job.calibration), _scene(job.scene_dir)
    return models, scene, make_plans(models, scene, job.dates), aoi_reader(job.aoi, scene.grid)


def _block_file(job: Job, block: Block, kind: str) -> Path:
    return Path(job.scratch) / f"{block.name}.{kind}.npy"


def _save(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array)


def predict_shared_tile(job: Job, rect: Rect) -> BlendSums | None:
    """Task: the weighted probabilities of one tile that several blocks need."""
    models, scene, plans, aoi = _context(job)
    with torch.inference_mode():
        return tile_sums(models, scene, plans, rect, job.overlap, aoi, job.context)


def predict_block(job: Job, block: Block, shared: dict[Rect, BlendSums | None]) -> bool:
    """Task: class codes, layers (and probabilities) of one block into the scratch folder; the codes file
    is renamed last and marks the block done. Returns False if the block was already done."""
    codes_path = _block_file(job, block, "codes")
    if codes_path.is_file():
        return False
    models, scene, plans, aoi = _context(job)
    with torch.inference_mode():
        result = block_maps(models, scene, plans, block, job.overlap, aoi, shared, job.probabilities,
                            context=job.context, uncertainty=job.uncertainty)
    if result.probs is not None:
        _save(_block_file(job, block, "probs"), result.probs)
    for name, layer in result.layers.items():
        _save(_block_file(job, block, name), layer)
    _save(codes_path, result.codes)
    return True


def assemble_date(job: Job, slot: int, blocks: Sequence[Block], *done: object) -> bool:
    """Task: one date's map (its layers, and probabilities) from the block files, as COGs + PNG. ``done``
    are the block tasks, so that this runs after them. Returns False, writing nothing, if no pixel has a
    class."""
    models, scene = _run(job.run_dir, job.precision, job.calibration), _scene(job.scene_dir)
    date, out = job.dates[slot], Path(job.out)
    names, layers = models.classes.names, layer_names(job.uncertainty)
    any_class = False
    with tempfile.TemporaryDirectory(dir=out, prefix=".partial-") as folder, ExitStack() as stack:
        scratch = ScratchMaps(Path(folder), scene.grid, [date], names, job.probabilities, stack, layers)
        for block in blocks:
            codes = np.load(_block_file(job, block, "codes"), mmap_mode="r")[slot]
            probs = np.load(_block_file(job, block, "probs"), mmap_mode="r")[slot] if job.probabilities else None
            scratch.write(0, block.window, np.asarray(codes), None if probs is None else np.asarray(probs))
            for name in layers:
                scratch.write_layer(name, 0, block.window, np.load(_block_file(job, block, name))[slot])
            any_class |= bool((codes != NODATA).any())
        stack.close()
        if any_class:
            finalise_maps(scratch.maps[0], scratch.probs[0], Outputs.of(out, date, job.probabilities, True,
                                                                        job.uncertainty),
                          names, date.isoformat(), scratch.layer_paths(0))
    return any_class


class TorchThreads(WorkerPlugin):
    """Worker plugin: the number of threads torch uses in each worker process (one task runs at a time
    per worker; torch parallelises inside it), and glibc's allocator thresholds for tensors, which the nanny's
    environment had frozen (:mod:`tropicrop.allocator`); registered by the client, so workers started
    elsewhere get both too."""

    name = "tropicrop-torch-threads"

    def __init__(self, threads: int | None) -> None:
        self.threads = threads

    def setup(self, worker: Any) -> None:
        threads = self.threads or max(1, (os.cpu_count() or 1) // max(1, worker.state.nthreads))
        torch.set_num_threads(threads)
        keep_freed_memory(respect_environment=False)


@contextlib.contextmanager
def open_client(workers: int | None, scheduler: str | None, torch_threads: int | None) -> Iterator[Any]:
    """A dask.distributed Client: of the cluster at ``scheduler``, or of a local cluster of ``workers``
    processes with one task thread each and ``torch_threads`` (default: cores / workers) torch threads."""
    from distributed import Client, LocalCluster

    if scheduler is not None:
        client = Client(scheduler)
        cluster = None
    else:
        n = workers or 1
        if n < 1:
            raise ConfigError(None, f"--workers {n}", "use at least one worker")
        threads = torch_threads or max(1, (os.cpu_count() or 1) // n)
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0")
        client = Client(cluster)
        torch_threads = threads
    try:
        client.register_plugin(TorchThreads(torch_threads))
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _scratch_key(job: Job, per_block: int) -> str:
    """Hash of everything a block file depends on (so a re-run with other settings starts afresh)."""
    run = Path(job.run_dir)
    stamps = sorted((str(p), p.stat().st_mtime_ns) for p in RunLayout(run).model_files())
    text = json.dumps([job.run_dir, stamps, job.scene_dir, [d.isoformat() for d in job.dates], job.tile, job.overlap,
                       job.probabilities, job.aoi, per_block, job.precision, list(job.context), job.calibration,
                       job.uncertainty])
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def _block_tiles(models: RunModels, dates: int, tile: int, per_block: int) -> int:
    """``per_block`` cut down so that a block's sums stay within :data:`BLOCK_BYTES`."""
    per_pixel = dates * (4 * models.classes.num_classes + 3) + 4  # sums, seen, the confidence layer, codes
    while per_block > 1 and per_pixel * (per_block * tile) ** 2 > BLOCK_BYTES:
        per_block -= 1
    return per_block


@dataclass
class SceneResult:
    """What one scene's distributed prediction did."""

    maps: list[Path]
    blocks_computed: int
    blocks_reused: int


def predict_distributed(run_dir: Path, scenes: Sequence[Path], out: Path, *,
                        dates: Dates = None,
                        tile: int = 256, overlap: int = 0, probabilities: bool = False,
                        aoi: str | Path | None = None, workers: int | None = None, scheduler: str | None = None,
                        block: int = 4, torch_threads: int | None = None, progress: bool = True,
                        precision: str | None = None, margin: int | None = None,
                        calibration: str = "temperature", uncertainty: str | None = None,
                        client: Any = None) -> dict[str, SceneResult]:
    """Crop maps of ``scenes`` with the run ``run_dir`` (any kind of model) on a Dask cluster; one scene
    writes into ``out``, several into ``out/<scene name>``. Maps equal those of :func:`predict_run` pixel
    for pixel.

    ``dates``: as for :func:`predict_run` (``"all"``: every date with an image, of each scene).
    ``block`` is the block side in tiles (cut down to fit :data:`BLOCK_BYTES`). ``client`` (a Client) is
    used as is; otherwise one is opened on ``scheduler`` or on a local cluster of ``workers`` processes.
    ``precision`` and ``margin`` as for :func:`predict_run`: the margin is measured here, once, and every
    worker reads each tile with that much scene around it (a block's tiles at its edge read into the
    neighbouring blocks), so the maps are the single-process ones. ``calibration`` and ``uncertainty`` as
    for :func:`predict_run`: beside each map the same confidence layer (and uncertainty layer), value for
    value.
    """
    check_tiling(tile, overlap)
    if block < 1:
        raise ConfigError(None, f"--block {block}", "use a block of at least one tile")
    run_dir = Path(run_dir).resolve()
    models = load_run(run_dir, precision, calibration)
    context = run_context(models, margin)
    loaded = [load_scene(s) for s in scenes]
    folders = scene_folders(Path(out), loaded)
    if client is None:
        with open_client(workers, scheduler, torch_threads) as own:
            return predict_distributed(run_dir, scenes, out, dates=dates, tile=tile, overlap=overlap,
                                       probabilities=probabilities, aoi=aoi, block=block, progress=progress,
                                       precision=precision, margin=margin, calibration=calibration,
                                       uncertainty=uncertainty, client=own)
    results = {}
    for scene in loaded:
        work = prepare_scene(models, scene, folders[scene.name].resolve(), resolve_dates(models, scene, dates),
                             probabilities, aoi, confidence=True, uncertainty=uncertainty)
        job = Job(str(run_dir), str(scene.root.resolve()), str(folders[scene.name].resolve()), "", tuple(work.todo),
                  tile, overlap, probabilities, None if aoi is None else str(Path(aoi).resolve()), precision, context,
                  calibration, uncertainty)
        results[scene.name] = _predict_scene(client, models, scene, work, job, block, progress)
    return results


def _predict_scene(client: Any, models: RunModels, scene: Scene, work: SceneWork, job: Job, block: int,
                   progress: bool) -> SceneResult:
    from distributed import KilledWorker, as_completed
    from tqdm import tqdm

    out, todo = Path(job.out), job.dates
    if not todo:
        return SceneResult(work.maps(), 0, 0)
    per_block = _block_tiles(models, len(todo), job.tile, block)
    job = replace(job, scratch=str(out / f".blocks-{_scratch_key(job, per_block)}"))
    Path(job.scratch).mkdir(exist_ok=True)
    blocks = plan_blocks(scene.grid, job.tile, job.overlap, per_block)
    missing = [b for b in blocks if not _block_file(job, b, "codes").is_file()]
    shared = shared_tiles(blocks) & {t for b in missing for t in b.tiles}
    prefix = f"tropicrop-{Path(job.scratch).name[len('.blocks-'):]}"
    tile_futures = {t: client.submit(predict_shared_tile, job, t, key=f"{prefix}-tile-{t[0]}-{t[1]}", retries=RETRIES)
                    for t in sorted(shared)}
    block_futures = [client.submit(predict_block, job, b, {t: tile_futures[t] for t in b.tiles if t in tile_futures},
                                   key=f"{prefix}-block-{b.name}", retries=RETRIES) for b in missing]
    del tile_futures  # the scheduler keeps them while a block needs them (and recomputes them if a worker dies)
    date_futures = [client.submit(assemble_date, job, slot, blocks, *block_futures, key=f"{prefix}-map-{d:%Y%m%d}",
                                  retries=RETRIES) for slot, d in enumerate(todo)]
    clock = time.perf_counter()
    block_keys = {f.key for f in block_futures}
    computed = 0
    with tqdm(total=len(block_futures) + len(date_futures), unit="task", disable=not progress,
              desc=f"{scene.name}: {len(missing)} block(s), {len(todo)} map(s)") as bar:
        for future in as_completed([*block_futures, *date_futures]):
            try:
                result = future.result()  # re-raises a task's error here, once its retries are spent
            except KilledWorker as exc:
                raise RunError(out, f"Dask gave up: {exc}".split(". The last worker")[0],
                               "look at the worker logs (out of memory?), then run the same command again: "
                               "finished blocks are kept") from None
            if future.key in block_keys:
                computed += int(result)
            bar.update(1)
    seconds = time.perf_counter() - clock
    empty = [d for d, f in zip(todo, date_futures, strict=True) if not f.result()]
    write_log(out, models, scene, make_plans(models, scene, todo), job.tile, job.overlap, seconds, job.context[0],
              workers=len(client.scheduler_info().get("workers", {})), block_tiles=per_block,
              blocks=len(blocks), blocks_computed=computed, blocks_reused=len(blocks) - computed)
    shutil.rmtree(job.scratch, ignore_errors=True)
    if empty:
        raise no_map_error(scene, empty)
    return SceneResult(work.maps(), computed, len(blocks) - computed)
