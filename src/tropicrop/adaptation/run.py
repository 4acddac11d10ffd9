"""Adapting a finished run to a new year's scene: ``tropicrop adapt RUN SCENE --run-dir OUT``.

The adapted run is a run directory like any other (``tropicrop predict`` uses it unchanged) holding the
adapted networks, the normalisation to apply to the new year (its own statistics with ``year_stats``) and
``adaptation.json``: the source run, the scene, the methods, the day-of-year offset that prediction adds
to the new year's dates, the shift scores and the self-training statistics. Methods run in this order,
each seeing the previous ones' result:

1. ``year_stats``: the new year's own per-band mean/std replace the training year's;
2. ``adabn``: BatchNorm statistics re-estimated on the new year's patches;
3. ``doy_shift``: the day-of-year offset estimated (networks fed the day of year only; AdaBN is re-run
   with the offset when both are on, since the decoder's statistics depend on it);
4. ``self_training``: mean-teacher pseudo-labelling on the new year's images.

None of these reads a label of the new year. ``parcels=k`` (few labels, optional) then fine-tunes on k
labelled parcels per class of the new year's train split, and is recorded as label use. The directory is
built under a hidden temporary name and renamed when complete.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from tropicrop.adaptation.batchnorm import adapt_batchnorm
from tropicrop.adaptation.data import PatchSampler, adaptation_dates, fit_year_statistics, grid_origins, target_images
from tropicrop.adaptation.fewlabels import finetune_on_parcels
from tropicrop.adaptation.pixels import adapt_pixel_run
from tropicrop.adaptation.selftrain import self_train
from tropicrop.adaptation.timeshift import ShiftEstimate, estimate_shift, merge_shares, source_shares
from tropicrop.classes import ClassTable
from tropicrop.config import load_config
from tropicrop.config.adaptation import METHODS, AdaptOptions
from tropicrop.config.training import TrainConfig
from tropicrop.errors import ConfigError, RunError, SceneError
from tropicrop.inference.run import read_doy_offset
from tropicrop.io.files import atomic_folder, atomic_path, write_json
from tropicrop.layout import RunLayout
from tropicrop.runfiles import (
    load_checkpoint,
    read_class_table,
    read_json,
    read_normalizer,
    read_run_result,
    read_yaml_mapping,
)
from tropicrop.scene import Scene, load_scene
from tropicrop.trainingdata import scene_paths
from tropicrop.valprofile import CALIBRATION_FILE
from tropicrop.windows.normalize import Normalizer

log = logging.getLogger(__name__)

NETWORK, PIXEL = "network", "pixel"
METHOD_KINDS: dict[str, frozenset[str]] = {
    "year_stats": frozenset({NETWORK, PIXEL}),  # new normalisation statistics: any model fed normalised dB
    "adabn": frozenset({NETWORK}),              # BatchNorm statistics: networks only
    "doy_shift": frozenset({NETWORK}),          # estimated through a network's decoder (a booster's: not yet)
    "self_training": frozenset({NETWORK}),      # gradient steps on a network's weights
}
"""The kinds of run (``training.trainer_for(model.name).kind``) each method accepts; the others skip it."""


def applicable_methods(options: AdaptOptions, kind: str, path: Path | None = None) -> tuple[list[str], list[str]]:
    """The chosen methods a run of ``kind`` accepts, in order, and the chosen ones it does not; ConfigError
    when none applies and no labelled parcels are used either."""
    chosen: list[str] = [m for m in METHODS if m in options.methods]
    methods = [m for m in chosen if kind in METHOD_KINDS[m]]
    if not methods and options.parcels == 0:
        accepted = [m for m in METHODS if kind in METHOD_KINDS[m]]
        raise ConfigError(path, f"no chosen adaptation method ({', '.join(chosen) or 'none'}) applies to a {kind} run",
                          f"use {', '.join(accepted)}")
    return methods, [m for m in chosen if m not in methods]


def _load_source(run_dir: Path) -> tuple[Any, ClassTable, Normalizer, list[Path], dict[str, Any]]:
    """A finished run's configuration, class table, normalisation, best checkpoints and result, read with
    the checks of :mod:`tropicrop.runfiles`."""
    run = RunLayout(run_dir)
    for path in (run.config, run.classes, run.normalization, run.result):
        if not path.is_file():
            raise RunError(run_dir, f"is not a finished run directory (no {path.name})",
                           "pass a run written by tropicrop train (or tropicrop adapt)")
    checkpoints = run.best_checkpoints()
    if not checkpoints:
        raise RunError(run_dir, "holds no trained network (no nets/*/checkpoints/best.ckpt)", "train it again with --force")
    result = read_run_result(run)
    cfg = load_config(TrainConfig, run.config)
    return cfg, read_class_table(run.classes), read_normalizer(run.normalization), checkpoints, result


def _save_checkpoint(src: Path, dst: Path, module: Any, normalizer: Normalizer) -> None:
    """The source checkpoint with the adapted weights and the new normalisation, written atomically."""
    ckpt = load_checkpoint(src)
    ckpt["state_dict"] = {k: v.detach().cpu() for k, v in module.state_dict().items()}
    ckpt["hyper_parameters"]["normalization"] = normalizer.to_dict()
    for key in ("optimizer_states", "lr_schedulers", "callbacks", "loops"):
        ckpt.pop(key, None)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dst) as tmp:
        torch.save(ckpt, tmp)


def adapt_run(run_dir: Path, scene: Scene | Path, out: Path, options: AdaptOptions | None = None, *,
              force: bool = False, progress: bool = True) -> dict[str, Any]:
    """Adapt the finished run ``run_dir`` to ``scene`` (the new year) into the run directory ``out``.

    Returns the adaptation record (also ``out/adaptation.json``). Raises RunError for a missing or
    unfinished source run or an existing ``out`` without ``force`` (``options`` were checked when built), and
    ConfigError when no chosen method applies to the run's kind.
    """
    from tropicrop.training import CropModule

    options = options or AdaptOptions()
    run_dir, out = Path(run_dir), Path(out)
    if out.exists() and any(out.iterdir()) and not force:
        raise RunError(out, "already holds a run", "choose another --run-dir or pass --force to replace it")
    kind = run_kind(run_dir)
    methods, skipped = applicable_methods(options, kind)
    scene = scene if isinstance(scene, Scene) else load_scene(scene)
    if kind == PIXEL:
        if options.parcels > 0:
            raise ConfigError(None, "few-label fine-tuning (parcels) needs a network", "adapt with parcels: 0")
        return adapt_pixel_run(run_dir, scene, out, methods, _record(run_dir, scene, methods, skipped, options, []))
    cfg, classes, normalizer, checkpoints, source_result = _load_source(run_dir)
    length = cfg.data.sequence_length
    hp0 = load_checkpoint(checkpoints[0])["hyper_parameters"]
    if scene.num_bands != int(hp0["in_channels"]):
        raise SceneError(scene.manifest.path, f"has {scene.num_bands} band(s) but the run was trained on "
                         f"{hp0['in_channels']}", "adapt to a scene with the training scene's bands")
    start = time.perf_counter()
    if "year_stats" in methods:
        normalizer = fit_year_statistics(scene)
    data = target_images(scene, normalizer, length)
    targets = adaptation_dates(scene, length)
    doy_offset = read_doy_offset(RunLayout(run_dir))  # an adapted run's offset: adapting twice adds up
    record = {**_record(run_dir, scene, methods, skipped, options, targets), "normalization": normalizer.to_dict(), "nets": {}}
    with atomic_folder(out) as tmp_out:
        for ckpt in checkpoints:
            name = ckpt.parents[1].name
            module = CropModule.load_from_checkpoint(ckpt, map_location="cpu")
            model = module.model.eval()
            target = module.hparams.get("target")
            net_targets = targets
            if target:  # a per-month net adapts on its own calendar month of the new year
                month = dt.date.fromisoformat(target).month
                net_targets = [d for d in targets if d.month == month] or targets
            sampler = PatchSampler(data, net_targets, options.adabn_patch_size, doy_offset)
            net_record: dict[str, Any] = {}
            if "adabn" in methods:
                net_record["batchnorm_layers"] = adapt_batchnorm(model, sampler, options.adabn_batches,
                                                                 options.adabn_batch_size, options.seed, progress)
            if "doy_shift" in methods:
                estimate = _estimate(model, sampler, scene, cfg, classes, options, doy_offset, len(checkpoints), progress)
                if estimate is not None:
                    net_record["shift"] = estimate.to_dict()
                    doy_offset = estimate.offset
                    sampler.doy_offset = doy_offset
                    if "adabn" in methods and estimate.offset:
                        adapt_batchnorm(model, sampler, options.adabn_batches, options.adabn_batch_size,
                                        options.seed, progress)
                else:
                    net_record["shift"] = "skipped: the network does not take the day of year, or the run has several nets"
            if "self_training" in methods:
                st = options.self_training
                st_sampler = PatchSampler(data, net_targets, st.patch_size, doy_offset)
                model, net_record["self_training"] = self_train(model, st_sampler, st, classes.num_classes,
                                                                options.seed, progress=progress)
                module.model = model
            if options.parcels > 0:
                model, net_record["few_labels"] = finetune_on_parcels(
                    module, scene, classes, normalizer, options.parcels, options.few_labels, length, options.seed,
                    progress=progress)
            _save_checkpoint(ckpt, RunLayout(tmp_out).checkpoint(name), module, normalizer)
            source_net = RunLayout(run_dir).net_result(name)
            net_result = read_json(source_net) if source_net.is_file() else {"name": name}
            write_json(RunLayout(tmp_out).net_result(name), {**net_result, "adapted": True})
            source_cal = RunLayout(run_dir).net(name) / CALIBRATION_FILE  # year A's temperature, not refitted
            if source_cal.is_file():
                shutil.copy2(source_cal, RunLayout(tmp_out).net(name) / CALIBRATION_FILE)
            record["nets"][name] = net_record
        record["doy_offset"] = int(doy_offset)
        record["seconds"] = time.perf_counter() - start
        source, adapted = RunLayout(run_dir), RunLayout(tmp_out)
        shutil.copy2(source.config, adapted.config)
        write_json(adapted.classes, classes.to_dict())
        write_json(adapted.normalization, normalizer.to_dict())
        write_json(adapted.adaptation, record)
        write_json(adapted.result, {**source_result, "adapted_from": str(run_dir), "adaptation": methods,
                                             "parcels": options.parcels, "scene_adapted_to": str(scene.root)})
    log.info("adapted %s to %s with %s (doy offset %+d) in %s", run_dir, scene.root, methods, doy_offset, out)
    return record


def run_kind(run_dir: Path) -> str:
    """``network`` or ``pixel``: the kind of trainer of the run's ``model.name`` (RunError for a folder
    that is not a run)."""
    from tropicrop.training import trainer_for

    config = RunLayout(run_dir).config
    if not config.is_file():
        raise RunError(run_dir, "is not a finished run directory (no config.yaml)",
                       "pass a run written by tropicrop train (or tropicrop adapt)")
    model = read_yaml_mapping(config).get("model") or {}
    return trainer_for(str(model.get("name", "")) if isinstance(model, dict) else "").kind


def _record(run_dir: Path, scene: Scene, methods: list[str], skipped: list[str], options: AdaptOptions,
            targets: list[dt.date]) -> dict[str, Any]:
    """The adaptation record's common part: source, scene, methods (and those the run's kind skipped), the
    target dates whose windows adapted it (none for year statistics alone: they use every date)."""
    return {"source_run": str(run_dir), "scene": str(scene.root), "methods": methods, "skipped": skipped,
            "parcels": options.parcels, "year_b_labels_read": options.parcels > 0, "options": options.model_dump(),
            "adaptation_dates": [d.isoformat() for d in targets]}


def _estimate(model: Any, sampler: PatchSampler, scene: Scene, cfg: Any, classes: ClassTable, options: AdaptOptions,
              base_offset: int, n_nets: int, progress: bool) -> ShiftEstimate | None:
    """The day-of-year offset of the new year for a network fed the day of year; None for other networks
    (the offset is one per run, so a run of several per-month networks is not shifted)."""
    if not getattr(model, "use_doy", False) or n_nets > 1:
        return None
    shares = None
    try:
        found = [source_shares(load_scene(path), classes, cfg.data.use) for path in scene_paths(cfg.data.scene)]
        shares = merge_shares([f for f in found if f is not None])  # several training scenes: every labelled date
    except Exception as exc:  # the training scene may have moved: entropy alone then decides
        log.warning("training scene %s not readable (%s): shift scored by entropy only", cfg.data.scene, exc)
    origins = grid_origins(sampler.data, options.shift_patch_size, options.shift_patches, options.seed)
    patch = PatchSampler(sampler.data, sampler.targets, options.shift_patch_size)
    offsets = [base_offset + o for o in range(options.shift_min, options.shift_max + 1, options.shift_step)]
    return estimate_shift(model, patch, origins, offsets, shares, progress=progress)
