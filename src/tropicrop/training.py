"""Training on PyTorch Lightning: the LightningModule, the DataModule and a run directory (the configuration
is :class:`tropicrop.config.TrainConfig`).

Two modes (paper, section 4.2): ``per-month`` trains one network per labelled target date (the Baselines),
``all-months`` trains one network with a different target date per mini-batch (VUnetConvLSTM). The data
may come from several scenes (``data.scene`` a list; :mod:`tropicrop.trainingdata`): per-month mode then
trains one network per calendar month on that month's dates of every scene. A run directory holds
everything needed to predict and to resume::

    RUN/config.yaml          the exact resolved configuration
    RUN/classes.json         the model's class table (index 0 = no reference)
    RUN/normalization.json   per-band mean/std of dB values on the training pixels
    RUN/nets/NAME/           NAME = all-months, or the target date YYYY-MM-DD in per-month mode (several
                             scenes: the month's date in the first scene that has it)
        checkpoints/best.ckpt, last.ckpt    (written atomically)
        logs/csv/version_N/metrics.csv, logs/tensorboard/version_N/   (one version per session)
        calibration.json     its temperature and validation profile (tropicrop.valprofile), before result.json
        result.json          written when the net has finished (its presence marks it done)
    RUN/result.json          written when every net has finished
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any, Protocol

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint, Timer
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from torch.utils.data import DataLoader, Subset

from tropicrop.classical import PIXEL_TRAINERS
from tropicrop.config import dump_config, load_config
from tropicrop.config.training import ALL_MONTHS, MODES, ModelConfig, OptimConfig, TrainConfig, TrainerConfig
from tropicrop.errors import ConfigError, RunError
from tropicrop.io.files import atomic_path, write_json
from tropicrop.layout import RUN_FORMAT_VERSION, RunLayout
from tropicrop.losses import FocalLoss
from tropicrop.metrics import confusion_metric, scores_from_confusion
from tropicrop.models import MODELS, build, is_sequence_model
from tropicrop.precision import resolve_precision
from tropicrop.results import EPOCHS, NetResult, RunResult
from tropicrop.runfiles import CAP, EARLY_STOPPING, load_checkpoint, read_class_table, read_json, read_normalizer
from tropicrop.trainingdata import (
    DataConfig,
    NetTargets,
    PreparedData,
    ScenesTrainBatches,
    net_scenes,
    net_targets,
    prepare_data,
    scenes_eval_batches,
)
from tropicrop.valprofile import profile_network, write_profile
from tropicrop.windows.datasets import TrainBatches
from tropicrop.windows.sampler import StepSampler

# re-exported: their home before the split (the configuration schemas live in tropicrop.config)
__all__ = ["MODES", "DataConfig", "ModelConfig", "OptimConfig", "PreparedData", "TrainBatches", "TrainConfig",
           "TrainerConfig", "prepare_data", "train", "train_from_files"]

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------ model
class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints written to a temporary file and renamed, so a kill never leaves a truncated one, and read
    back (on resume) weights-only: never unpickling arbitrary objects."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        target = Path(path)
        with atomic_path(target) as tmp:
            super().save_checkpoint(checkpoint, tmp, storage_options)

    def load_checkpoint(self, path: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        kwargs["weights_only"] = True
        return super().load_checkpoint(path, *args, **kwargs)


class CropModule(L.LightningModule):
    """A registered network trained with the focal loss and Adam; validation macro F1 from a confusion matrix.

    A sequence model (``sequence_output``, e.g. vunet_convlstm_seq) gets batches with the labels of every
    date of the window and is trained with the loss over every labelled date it decodes; it is validated,
    like every model, on the window's last date.

    Everything needed to predict with it (class names, normalisation, sequence length, target date of a
    per-month net) is stored in its hyperparameters, so a checkpoint is self-contained.
    """

    def __init__(self, model_name: str, model_options: dict[str, Any], in_channels: int, class_names: list[str],
                 normalization: dict[str, list[float]], sequence_length: int = 12, target: str | None = None,
                 lr: float = 1e-3, focal_gamma: float = 2.0, weight_decay: float = 0.0) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = build(model_name, in_channels, num_classes=len(class_names), **model_options)
        self.loss = FocalLoss(gamma=focal_gamma, ignore_index=0)
        self.val_confusion = confusion_metric(len(class_names))

    def forward(self, images: torch.Tensor, doy: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Logits (B, K, H, W) for the last date of images (B, T, C, H, W)."""
        out: torch.Tensor = self.model(images, doy, valid)
        return out

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        if "step_labels" in batch:  # a sequence model: the loss at every labelled date of the window
            step_labels = batch["step_labels"]
            steps = batch["valid"] & (step_labels > 0).flatten(2).any(2)
            forward_steps: Any = self.model.forward_steps  # the sequence models' method, not nn.Module's
            logits = forward_steps(batch["images"], batch["doy"], batch["valid"], steps)
            labels = step_labels[steps]
        else:
            logits, labels = self(batch["images"], batch["doy"], batch["valid"]), batch["labels"]
        loss: torch.Tensor = self.loss(logits.float(), labels)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["images"].shape[0])
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        logits = self(batch["images"], batch["doy"], batch["valid"]).float()
        self.log("val/loss", self.loss(logits, batch["labels"]), batch_size=batch["images"].shape[0], sync_dist=True)
        self.val_confusion.update(predict_classes(logits), batch["labels"])

    def on_validation_epoch_end(self) -> None:
        scores = scores_from_confusion(self.val_confusion.compute())
        self.val_confusion.reset()
        f1 = 0.0 if np.isnan(scores.macro_f1) else scores.macro_f1
        self.log("val/f1", f1, prog_bar=True)
        self.log("val/oa", 0.0 if np.isnan(scores.oa) else scores.oa)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        hp = self.hparams
        return torch.optim.Adam(self.parameters(), lr=hp["lr"], weight_decay=hp["weight_decay"])


def predict_classes(logits: torch.Tensor) -> torch.Tensor:
    """Class indices (B, H, W) from logits (B, K, H, W), never index 0 (no reference)."""
    return logits[:, 1:].argmax(dim=1) + 1


# ------------------------------------------------------------------------------------------ data
class TargetDataModule(L.LightningDataModule):
    """Training and validation batches of the training scenes for one network's target dates."""

    def __init__(self, data: PreparedData, targets: NetTargets, cfg: TrainConfig) -> None:
        super().__init__()
        self.data, self.targets, self.cfg = data, targets, cfg

    def _rank_world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def train_dataloader(self) -> DataLoader[dict[str, torch.Tensor]]:
        c = self.cfg
        rank, world = self._rank_world()
        parts = [TrainBatches(s.tensors, s.train_origins, t, c.optim.batch_size, c.data.patch_size, seed=c.seed,
                              balance=c.data.balance, augment=c.data.augment,
                              every_step=is_sequence_model(MODELS[c.model.name]), doy_shift=c.data.doy_shift)
                 for s, t in zip(self.data.scenes, self.targets, strict=True) if t]
        sampler = StepSampler(c.trainer.steps_per_epoch, lambda: self.trainer.global_step if self.trainer else 0, rank, world)
        return DataLoader(ScenesTrainBatches(parts, c.seed), batch_size=None, sampler=sampler,
                          num_workers=c.trainer.num_workers, persistent_workers=False)

    def val_dataloader(self) -> DataLoader[dict[str, torch.Tensor]]:
        c = self.cfg
        rank, world = self._rank_world()
        ds = scenes_eval_batches(self.data, self.targets, max(c.optim.batch_size, 32), c.data.patch_size, c.seed,
                                 c.data.val_limit)
        return DataLoader(Subset(ds, range(rank, len(ds), world)), batch_size=None, num_workers=c.trainer.num_workers)


# ------------------------------------------------------------------------------------------ run directory
def net_names(cfg: TrainConfig, data: PreparedData) -> list[tuple[str, NetTargets]]:
    """The networks of a run: ``[(name, target dates in each scene)]`` (see :func:`trainingdata.net_targets`)."""
    return net_targets(data, cfg.mode != ALL_MONTHS, ALL_MONTHS)


def _make_trainer(cfg: TrainConfig, net_dir: Path, has_val: bool) -> L.Trainer:
    t = cfg.trainer
    monitor = "val/f1" if has_val else "train/loss"
    mode = "max" if has_val else "min"
    callbacks: list[L.Callback] = [
        ModelCheckpoint(dirpath=net_dir / "checkpoints", filename="best", monitor=monitor, mode=mode, save_last=True,
                        save_top_k=1, enable_version_counter=False, auto_insert_metric_name=False),
        Timer(),
    ]
    if has_val and t.patience > 0:
        callbacks.append(EarlyStopping(monitor=monitor, mode=mode, patience=t.patience))
    # one log version per session: a resumed run appends version_1, version_2, ... instead of overwriting
    loggers = [CSVLogger(net_dir / "logs", name="csv"),
               TensorBoardLogger(net_dir / "logs", name="tensorboard", default_hp_metric=False)]
    return L.Trainer(
        accelerator=t.accelerator, devices=t.devices, strategy=t.strategy,
        precision=resolve_precision(t.precision, t.accelerator),  # type: ignore[arg-type]
        max_epochs=t.max_epochs, min_epochs=t.min_epochs or None, limit_train_batches=t.steps_per_epoch,
        limit_val_batches=None if has_val else 0,
        callbacks=callbacks, logger=loggers,
        plugins=[AtomicCheckpointIO()], deterministic=t.deterministic, use_distributed_sampler=False,
        benchmark=not t.deterministic,  # cuDNN autotuning (GPU): patches have one size, so it pays off
        log_every_n_steps=min(t.log_every_n_steps, t.steps_per_epoch), enable_progress_bar=t.progress,
        enable_model_summary=False, num_sanity_val_steps=0, default_root_dir=net_dir,
    )


def train_net(cfg: TrainConfig, data: PreparedData, name: str, targets: NetTargets, net_dir: Path) -> NetResult:
    """Train (or resume) one network into ``net_dir``; returns and writes its result.json."""
    result_path = net_dir / "result.json"
    if result_path.is_file():
        return NetResult.from_dict(read_json(result_path), result_path)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    module = CropModule(
        model_name=cfg.model.name, model_options=dict(cfg.model.options), in_channels=data.num_bands,
        class_names=list(data.classes.names), normalization=data.normalizer.to_dict(),
        sequence_length=cfg.data.sequence_length, target=None if name == ALL_MONTHS else name,
        lr=cfg.optim.lr, focal_gamma=cfg.optim.focal_gamma, weight_decay=cfg.optim.weight_decay,
    )
    dm = TargetDataModule(data, targets, cfg)
    scenes = net_scenes(data, targets, cfg.data.patch_size)
    has_val = any(len(part.val_origins) for part, dates in zip(data.scenes, targets, strict=True) if dates)
    trainer = _make_trainer(cfg, net_dir, has_val=has_val)
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


def _write_val_profile(module: CropModule, best: Path, dm: TargetDataModule, cfg: TrainConfig, net_dir: Path) -> None:
    """Fit the temperature of the best weights on the validation set (``NET/calibration.json``, see
    :mod:`tropicrop.valprofile`)."""
    if best.is_file():
        module.load_state_dict(load_checkpoint(best)["state_dict"])
    ds = scenes_eval_batches(dm.data, dm.targets, max(cfg.optim.batch_size, 32), cfg.data.patch_size, cfg.seed,
                             cfg.data.val_limit)
    write_profile(net_dir, profile_network(module, ds, cfg.seed))


class NetworkTrainer:
    """The trainer of a registered network: PyTorch Lightning, one network per net of the run."""

    kind = "network"

    def parameters(self, cfg: TrainConfig, in_channels: int, num_classes: int) -> int | None:
        """Parameters of one network of ``cfg`` (its model with its options)."""
        model = build(cfg.model.name, in_channels, num_classes=num_classes, **cfg.model.options)
        return sum(p.numel() for p in model.parameters())

    def prepare(self, cfg: TrainConfig, data: PreparedData, config_path: Path | None = None) -> None:
        """Nothing to read beyond ``data``: batches are cut from it as training goes."""

    def train(self, cfg: TrainConfig, data: PreparedData, name: str, targets: NetTargets, net_dir: Path,
              config_path: Path | None = None) -> NetResult:
        return train_net(cfg, data, name, targets, net_dir)


class ModelTrainer(Protocol):
    """What training asks of every kind of model (:class:`NetworkTrainer`, ``classical.BoosterTrainer``)."""

    kind: str

    def parameters(self, cfg: TrainConfig, in_channels: int, num_classes: int) -> int | None: ...

    def prepare(self, cfg: TrainConfig, data: PreparedData, config_path: Path | None = None) -> None: ...

    def train(self, cfg: TrainConfig, data: PreparedData, name: str, targets: NetTargets, net_dir: Path,
              config_path: Path | None = None) -> NetResult: ...


def trainer_for(model_name: str) -> ModelTrainer:
    """The trainer of ``model.name``: a per-pixel model's own (:data:`classical.PIXEL_TRAINERS`), else Lightning."""
    return PIXEL_TRAINERS.get(model_name, NetworkTrainer)()


def train(cfg: TrainConfig, run_dir: Path, *, resume: bool = False, force: bool = False,
          config_path: Path | None = None) -> RunResult:
    """Train every network of ``cfg`` into ``run_dir`` (see the module docstring for the layout).

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
    nets = {name: trainer.train(cfg, data, name, targets, run.net(name), config_path)
            for name, targets in net_names(cfg, data)}
    summary = RunResult(
        format_version=RUN_FORMAT_VERSION, mode=cfg.mode, model=cfg.model.name,
        scene=str(data.scenes[0].scene.root) if isinstance(cfg.data.scene, str) else [str(s.scene.root) for s in data.scenes],
        scenes=[{"scene": str(s.scene.root), "targets": [t.isoformat() for t in s.targets],
                 "train_patches": len(s.train_origins), "val_patches": len(s.val_origins)} for s in data.scenes],
        classes=list(data.classes.names), nets=nets, train_patches=data.train_patches, val_patches=data.val_patches)
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
