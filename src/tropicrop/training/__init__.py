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

One module per concept: :mod:`~tropicrop.training.module` (the LightningModule),
:mod:`~tropicrop.training.datamodule` (its batches), :mod:`~tropicrop.training.trainer` (the Lightning
trainer and atomic checkpoints), :mod:`~tropicrop.training.network` (one network trained into its folder),
:mod:`~tropicrop.training.kinds` (the trainer of each kind of model) and :mod:`~tropicrop.training.run`
(a whole run). Their public names are re-exported here.
"""

from tropicrop.config.training import MODES, ModelConfig, OptimConfig, TrainConfig, TrainerConfig
from tropicrop.training.datamodule import TargetDataModule
from tropicrop.training.kinds import ModelTrainer, trainer_for
from tropicrop.training.module import CropModule, predict_classes
from tropicrop.training.network import NetworkTrainer, train_net
from tropicrop.training.run import net_names, train, train_from_files
from tropicrop.training.trainer import AtomicCheckpointIO, make_trainer
from tropicrop.trainingdata import DataConfig, PreparedData, prepare_data
from tropicrop.windows.datasets import TrainBatches

# the configuration schemas live in tropicrop.config, the data in tropicrop.trainingdata: re-exported from
# their home before the split
__all__ = ["MODES", "AtomicCheckpointIO", "CropModule", "DataConfig", "ModelConfig", "ModelTrainer",
           "NetworkTrainer", "OptimConfig", "PreparedData", "TargetDataModule", "TrainBatches", "TrainConfig",
           "TrainerConfig", "make_trainer", "net_names", "predict_classes", "prepare_data", "train",
           "train_from_files", "train_net", "trainer_for"]
