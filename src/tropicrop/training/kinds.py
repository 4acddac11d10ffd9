"""Which trainer trains which kind of model: the protocol every trainer follows and the lookup by model name
(a per-pixel model's own trainer, else Lightning's :class:`~tropicrop.training.network.NetworkTrainer`)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from tropicrop.classical import PIXEL_TRAINERS
from tropicrop.config.training import TrainConfig
from tropicrop.results import NetResult
from tropicrop.training.network import NetworkTrainer
from tropicrop.trainingdata import NetTargets, PreparedData


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
