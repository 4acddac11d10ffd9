"""The LightningDataModule of one network: batches of the training scenes for its target dates, split across
ranks when training on several devices."""

from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import DataLoader, Subset

from tropicrop.config.training import TrainConfig
from tropicrop.models import MODELS, is_sequence_model
from tropicrop.trainingdata import NetTargets, PreparedData, ScenesTrainBatches, scenes_eval_batches
from tropicrop.windows.datasets import TrainBatches
from tropicrop.windows.sampler import StepSampler


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
                              every_step=is_sequence_model(MODELS[c.model.name]), doy_shift=c.data.doy_shift,
                              held_out=s.held_out)
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
