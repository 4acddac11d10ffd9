"""A training run from start to end: prepare the data once, write the run's shared files, train every net
of the run with the trainer of its kind, then the run's result.json (the layout is in
:mod:`tropicrop.training`)."""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

import torch

from tropicrop.config import dump_config, load_config
from tropicrop.config.training import ALL_MONTHS, TrainConfig
from tropicrop.errors import ConfigError, RunError
from tropicrop.io.files import write_json
from tropicrop.layout import RUN_FORMAT_VERSION, RunLayout
from tropicrop.results import NetResult, RunResult
from tropicrop.runfiles import read_class_table, read_json, read_normalizer
from tropicrop.training.kinds import trainer_for
from tropicrop.training.parallel import side_by_side, train_side_by_side
from tropicrop.training.pretrain import pretrain_seconds
from tropicrop.trainingdata import NetTargets, PreparedData, net_targets, prepare_data

log = logging.getLogger(__name__)


def net_names(cfg: TrainConfig, data: PreparedData) -> list[tuple[str, NetTargets]]:
    """The networks of a run: ``[(name, target dates in each scene)]`` (see :func:`trainingdata.net_targets`)."""
    return net_targets(data, cfg.mode != ALL_MONTHS, ALL_MONTHS)


def train(cfg: TrainConfig, run_dir: Path, *, resume: bool = False, force: bool = False,
          config_path: Path | None = None) -> RunResult:
    """Train every network of ``cfg`` into ``run_dir`` (see :mod:`tropicrop.training` for the layout).

    A finished run is not overwritten without ``force``; an unfinished one is continued with ``resume``.
    """
    run_dir = Path(run_dir)
    run = RunLayout(run_dir)
    if run_dir.exists() and any(run_dir.iterdir()) and not resume:
        if not force:
            finished = run.result.is_file()
            raise RunError(run_dir, "already holds a finished run" if finished else "already holds an unfinished run",
                           "use --force to replace it" + ("" if finished else ", or --resume to continue it"))
        shutil.rmtree(run_dir)
    if cfg.trainer.threads:
        torch.set_num_threads(cfg.trainer.threads)
    run_dir.mkdir(parents=True, exist_ok=True)
    classes = normalizer = None
    if resume and run.classes.is_file():
        classes = read_class_table(run.classes)
        normalizer = read_normalizer(run.normalization)
    data = prepare_data(cfg, classes, normalizer, config_path, cache_dir=run.cache if cfg.data.cache else None)
    dump_config(cfg, run.config)
    write_json(run.classes, data.classes.to_dict())
    write_json(run.normalization, data.normalizer.to_dict())
    log.info("training %s on %s: %d train / %d val patches, classes %s", cfg.mode,
             ", ".join(str(s.scene.root) for s in data.scenes), data.train_patches, data.val_patches,
             list(data.classes.names[1:]))
    trainer = trainer_for(cfg.model.name)
    trainer.prepare(cfg, data, config_path)
    names = net_names(cfg, data)
    workers = side_by_side(cfg, names)
    wall = None
    if workers > 1:  # trainer.parallel_nets: each net in a process of its own (tropicrop.training.parallel)
        done_before = [NetResult.from_dict(read_json(p), p) for name, _ in names
                       if (p := run.net(name) / "result.json").is_file()]
        start = time.perf_counter()
        nets = train_side_by_side(cfg, run_dir, config_path, names, workers)
        wall = time.perf_counter() - start + sum(n.train_seconds for n in done_before)
    else:
        nets = {name: trainer.train(cfg, data, name, targets, run.net(name), config_path) for name, targets in names}
    summary = RunResult(
        format_version=RUN_FORMAT_VERSION, mode=cfg.mode, model=cfg.model.name,
        scene=str(data.scenes[0].scene.root) if isinstance(cfg.data.scene, str) else [str(s.scene.root) for s in data.scenes],
        scenes=[{"scene": str(s.scene.root), "targets": [t.isoformat() for t in s.targets],
                 "train_patches": len(s.train_origins), "val_patches": len(s.val_origins)} for s in data.scenes],
        classes=list(data.classes.names), nets=nets, train_patches=data.train_patches, val_patches=data.val_patches,
        pretrain_seconds=pretrain_seconds(run_dir), nets_wall_seconds=wall)
    if int(os.environ.get("LOCAL_RANK", "0")) == 0:
        write_json(run.result, summary.to_dict())
        shutil.rmtree(run.cache, ignore_errors=True)  # only a finished run's resume would have reused it
    return summary


def train_from_files(config: Path | None, run_dir: Path, overrides: list[str], *, resume: bool = False,
                     force: bool = False) -> RunResult:
    """``tropicrop train``: read the config (or the run's saved one when resuming) and train."""
    saved = RunLayout(Path(run_dir)).config
    if resume:
        if not saved.is_file():
            raise RunError(run_dir, "holds no config.yaml to resume from", "start it with tropicrop train -c CONFIG")
        cfg = load_config(TrainConfig, saved, overrides)
        return train(cfg, run_dir, resume=True, config_path=saved)
    if config is None:
        raise ConfigError(None, "no config given", "pass -c CONFIG.yaml (see configs/quick.yaml)")
    cfg = load_config(TrainConfig, config, overrides)
    return train(cfg, run_dir, force=force, config_path=Path(config))
