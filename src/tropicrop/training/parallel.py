"""The nets of a per-month run trained side by side on the CPU (``trainer.parallel_nets``).

A net of the demo's size keeps two CPU threads only partly busy: many of its operations are too small to
split well, so two nets at one thread each get through about a fifth more steps than one net at two threads
(``benchmarks/parallel_nets.py``). Each net is trained by the standard library's process pool, in a process
of its own (spawned: a forked copy of a process that already ran torch's thread pools is unsafe), which
prepares the run's data as a resumed run does (the class table and normalisation the run wrote, the patch
cache it built), so every net sees exactly what it would see in the sequential loop and seeds itself the
same way. What a net writes is the same as in that loop; only the number of threads differs, so the weights
equal a sequential run's at the same threads per net (test), not at more.

A process that dies (killed, out of memory) ends the run with one line naming the run; the nets that
finished keep their result.json, and ``tropicrop train --resume`` trains the rest.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from tropicrop.classical import is_classical
from tropicrop.config.training import TrainConfig
from tropicrop.errors import RunError
from tropicrop.layout import RunLayout
from tropicrop.results import NetResult
from tropicrop.training.kinds import ModelTrainer, trainer_for
from tropicrop.trainingdata import NetTargets, PreparedData


@dataclass
class _Worker:
    """A worker process's share of the run (set once per process by :func:`_start_worker`)."""

    cfg: TrainConfig
    run: RunLayout
    data: PreparedData
    trainer: ModelTrainer
    config_path: Path | None


_worker: _Worker | None = None


def side_by_side(cfg: TrainConfig, nets: list[tuple[str, NetTargets]]) -> int:
    """How many nets to train at a time: ``trainer.parallel_nets``, where it applies (networks, not a booster
    with its own threads; the CPU; more than one net; no distributed launch; no pretraining still to be
    shared), else 1."""
    workers = min(cfg.trainer.parallel_nets, len(nets))
    if workers < 2 or is_classical(cfg.model.name) or cfg.trainer.accelerator != "cpu" or "LOCAL_RANK" in os.environ \
            or cfg.pretrain.steps:
        return 1
    return workers


def train_side_by_side(cfg: TrainConfig, run_dir: Path, config_path: Path | None,
                       nets: list[tuple[str, NetTargets]], workers: int) -> dict[str, NetResult]:
    """Train ``nets`` of the run in ``run_dir`` (its classes, normalisation and cache already written),
    ``workers`` at a time; results in the order of ``nets``."""
    threads = max(1, (cfg.trainer.threads or torch.get_num_threads()) // workers)
    quiet = cfg.model_copy(deep=True)
    quiet.trainer.progress = False  # one bar over the nets here instead of interleaved bars from each process
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                             initargs=(quiet, run_dir, config_path, threads, _verbosity())) as pool, \
            tqdm(total=len(nets), desc=f"nets, {workers} at a time", unit="net", disable=not cfg.trainer.progress) as bar:
        futures: dict[Future[NetResult], str] = {pool.submit(_train_one, name, targets): name for name, targets in nets}
        results: dict[str, NetResult] = {}
        for future in as_completed(futures):
            name = futures[future]
            try:
                results[name] = future.result()
            except BrokenProcessPool:
                for other in futures:
                    other.cancel()
                raise RunError(run_dir, "a process training its nets side by side died (killed, or out of memory)",
                               "the nets that finished are kept: tropicrop train --resume trains the rest") from None
            bar.update()
    return {name: results[name] for name, _ in nets}


def _verbosity() -> int:
    """The command's ``-v`` count, read off the root logger's level, for the worker processes."""
    level = logging.getLogger().level or logging.WARNING  # NOTSET: logging's default, WARNING
    return 2 if level <= logging.DEBUG else 1 if level <= logging.INFO else 0


def _start_worker(cfg: TrainConfig, run_dir: Path, config_path: Path | None, threads: int, verbose: int) -> None:
    """Once per worker process: threads, allocator and warnings as the command sets them, then the run's data
    prepared as a resumed run prepares it."""
    from tropicrop.allocator import keep_freed_memory
    from tropicrop.logsetup import configure_logging
    from tropicrop.runfiles import read_class_table, read_normalizer
    from tropicrop.trainingdata import prepare_data

    global _worker
    torch.set_num_threads(threads)
    configure_logging(verbose)
    keep_freed_memory()
    run = RunLayout(run_dir)
    data = prepare_data(cfg, read_class_table(run.classes), read_normalizer(run.normalization), config_path,
                        cache_dir=run.cache if cfg.data.cache else None)
    trainer = trainer_for(cfg.model.name)
    trainer.prepare(cfg, data, config_path)
    _worker = _Worker(cfg, run, data, trainer, config_path)


def _train_one(name: str, targets: NetTargets) -> NetResult:
    """In a worker: train one net of the run, as the sequential loop does."""
    assert _worker is not None, "a worker process without its run (_start_worker did not run)"
    w = _worker
    return w.trainer.train(w.cfg, w.data, name, targets, w.run.net(name), w.config_path)
