"""The Lightning ``Trainer`` of one network: its callbacks (best and last checkpoints, early stopping, timer),
its loggers (CSV and TensorBoard, one version per session) and checkpoints written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint, Timer
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from tropicrop.config.training import TrainConfig
from tropicrop.io.files import atomic_path
from tropicrop.precision import resolve_precision


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


def make_trainer(cfg: TrainConfig, net_dir: Path, has_val: bool) -> L.Trainer:
    """The trainer of one network writing into ``net_dir``: it keeps the best checkpoint by validation macro
    F1 (by training loss when there is no validation set) and the last one.

    Args:
        cfg: the run's configuration (its ``trainer`` section).
        net_dir: the network's folder (``RUN/nets/NAME``).
        has_val: whether the network has validation patches.

    Returns:
        A configured ``lightning.Trainer``.
    """
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
