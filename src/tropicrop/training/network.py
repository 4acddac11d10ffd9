"""Training one registered network with Lightning into its folder of the run (``RUN/nets/NAME``): fit or
resume, then its calibration (temperature and validation profile) and its result.json."""

from __future__ import annotations

import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Timer

from tropicrop.config.training import ALL_MONTHS, TrainConfig
from tropicrop.io.files import write_json
from tropicrop.models import build
from tropicrop.results import EPOCHS, NetResult
from tropicrop.runfiles import CAP, EARLY_STOPPING, load_checkpoint, read_json
from tropicrop.training.datamodule import TargetDataModule
from tropicrop.training.module import CropModule
from tropicrop.training.pretrain import load_pretrained, pretrained_weights
from tropicrop.training.trainer import make_trainer
from tropicrop.trainingdata import NetTargets, PreparedData, net_scenes, scenes_eval_batches, validation_pixels
from tropicrop.valprofile import ValProfile, build_profile, module_logits, profile_network, write_profile
from tropicrop.windows.context import context_batches


def train_net(cfg: TrainConfig, data: PreparedData, name: str, targets: NetTargets, net_dir: Path,
              init: dict[str, torch.Tensor] | None = None) -> NetResult:
    """Train (or resume) one network into ``net_dir``, starting from the weights ``init`` where given (all but
    the class layer: :func:`~tropicrop.training.pretrain.load_pretrained`); returns and writes its result.json."""
    result_path = net_dir / "result.json"
    if result_path.is_file():
        return NetResult.from_dict(read_json(result_path), result_path)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    module = _new_module(cfg, data, name)
    if init is not None:
        load_pretrained(module.model, init)
    dm = TargetDataModule(data, targets, cfg)
    scenes = net_scenes(data, targets, cfg.data.patch_size)
    has_val = any(len(part.val_origins) for part, dates in zip(data.scenes, targets, strict=True) if dates)
    trainer = make_trainer(cfg, net_dir, has_val=has_val)
    last = net_dir / "checkpoints" / "last.ckpt"
    if last.is_file():
        load_checkpoint(last)  # a damaged or tampered checkpoint: one line naming it, before Lightning reads it
    start = time.perf_counter()
    trainer.fit(module, datamodule=dm, ckpt_path=last if last.is_file() else None)
    timer = next(c for c in trainer.callbacks if isinstance(c, Timer))  # type: ignore[attr-defined]
    ckpt = trainer.checkpoint_callback
    if has_val and trainer.is_global_zero:  # calibration: the best weights' temperature and validation profile
        _write_val_profile(module, Path(getattr(ckpt, "best_model_path", "") or last), dm, cfg, net_dir)
    best_score = getattr(ckpt, "best_model_score", None)
    result = NetResult(
        name=name, targets=sorted({t.isoformat() for dates in targets for t in dates}),
        best_val_f1=float(best_score) if best_score is not None else None,
        length=trainer.current_epoch, unit=EPOCHS,
        stopped_by=EARLY_STOPPING if getattr(trainer.early_stopping_callback, "stopped_epoch", 0) > 0 else CAP,
        train_patches=sum(s["train_patches"] for s in scenes), val_patches=sum(s["val_patches"] for s in scenes),
        train_seconds=float(timer.time_elapsed("train")),
        scenes=scenes,  # the target dates of each scene it learned from, and their patches
        details={"best_checkpoint": "checkpoints/best.ckpt",
                 "precision": str(trainer.precision),  # what ``trainer.precision`` (e.g. auto) resolved to here
                 "global_step": trainer.global_step, "session_seconds": time.perf_counter() - start})
    if trainer.is_global_zero:
        write_json(result_path, result.to_dict())
    return result


def _new_module(cfg: TrainConfig, data: PreparedData, name: str) -> CropModule:
    """The Lightning module of net ``name`` of a run of ``cfg``, freshly initialised."""
    return CropModule(
        model_name=cfg.model.name, model_options=dict(cfg.model.options), in_channels=data.num_bands,
        class_names=list(data.classes.names), normalization=data.normalizer.to_dict(),
        sequence_length=cfg.data.sequence_length, target=None if name == ALL_MONTHS else name,
        lr=cfg.optim.lr, focal_gamma=cfg.optim.focal_gamma, weight_decay=cfg.optim.weight_decay,
    )


def calibrate_net(cfg: TrainConfig, data: PreparedData, name: str, targets: NetTargets, net_dir: Path) -> None:
    """Fit a trained net's temperature and validation profile again (``NET/calibration.json``), from its best
    checkpoint, as ``cfg.data.val_profile`` says: for a run trained before that choice, or to compare them."""
    best = net_dir / "checkpoints" / "best.ckpt"
    if not best.is_file():
        best = net_dir / "checkpoints" / "last.ckpt"
    _write_val_profile(_new_module(cfg, data, name), best, TargetDataModule(data, targets, cfg), cfg, net_dir)


def _write_val_profile(module: CropModule, best: Path, dm: TargetDataModule, cfg: TrainConfig, net_dir: Path) -> None:
    """Fit the temperature of the best weights on the validation set into ``NET/calibration.json``."""
    if best.is_file():
        module.load_state_dict(load_checkpoint(best)["state_dict"])
    write_profile(net_dir, fit_val_profile(module, dm.data, dm.targets, cfg))


def fit_val_profile(module: torch.nn.Module, data: PreparedData, targets: NetTargets, cfg: TrainConfig) -> ValProfile:
    """The temperature and validation profile of ``module`` (its forward: images, doy, valid -> logits) on the
    validation set of ``data`` at ``targets`` (see :mod:`tropicrop.valprofile`): on the validation patches,
    or (``data.val_profile: tiles``) on every validation pixel inside tiles of its scene, as the map sees it
    (:mod:`tropicrop.windows.context`)."""
    if cfg.data.val_profile == "tiles":
        batches = (pair for part, dates in zip(data.scenes, targets, strict=True) if dates
                   for pair in context_batches(part.tensors, validation_pixels(part, cfg.data.patch_size), dates))
        logits, labels, months = module_logits(module, batches)
        if len(labels):  # else no validation pixel is labelled at the net's dates: the patches' profile
            return build_profile(logits, labels, months, cfg.seed)
    ds = scenes_eval_batches(data, targets, max(cfg.optim.batch_size, 32), cfg.data.patch_size, cfg.seed,
                             cfg.data.val_limit)
    return profile_network(module, ds, cfg.seed)


class NetworkTrainer:
    """The trainer of a registered network: PyTorch Lightning, one network per net of the run."""

    kind = "network"

    def __init__(self) -> None:
        self._pretrained: dict[str, torch.Tensor] | None = None  # the run's pretrained weights, read once

    def parameters(self, cfg: TrainConfig, in_channels: int, num_classes: int) -> int | None:
        """Parameters of one network of ``cfg`` (its model with its options)."""
        model = build(cfg.model.name, in_channels, num_classes=num_classes, **cfg.model.options)
        return sum(p.numel() for p in model.parameters())

    def prepare(self, cfg: TrainConfig, data: PreparedData, config_path: Path | None = None) -> None:
        """Nothing to read beyond ``data``: batches are cut from it as training goes."""

    def train(self, cfg: TrainConfig, data: PreparedData, name: str, targets: NetTargets, net_dir: Path,
              config_path: Path | None = None) -> NetResult:
        if cfg.pretrain.steps and self._pretrained is None and not (net_dir / "result.json").is_file():
            self._pretrained = pretrained_weights(cfg, data.normalizer, data.num_bands, net_dir.parent.parent)
        return train_net(cfg, data, name, targets, net_dir, self._pretrained)
