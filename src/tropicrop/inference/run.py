"""Loading a trained run for prediction: its class table, normalisation and models, on a device.

The kind of the run (networks or a per-pixel model) is decided here, once: each model becomes a
:class:`~tropicrop.inference.predictor.Net` holding its :class:`~tropicrop.inference.predictor.Predictor`."""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from tropicrop.classes import ClassTable
from tropicrop.classical import is_classical, load_pixel_models
from tropicrop.errors import RunError
from tropicrop.inference.kinds import predictor_for
from tropicrop.inference.predictor import Net
from tropicrop.inference.prepare import prepare_for_inference
from tropicrop.layout import RunLayout
from tropicrop.models.loading import network_from_checkpoint
from tropicrop.precision import FLOAT32, autocast_dtype, device_type, resolve_precision
from tropicrop.runfiles import (
    RETRAIN,
    load_checkpoint,
    read_class_table,
    read_json,
    read_normalizer,
    read_run_result,
    read_yaml_mapping,
)
from tropicrop.valprofile import read_temperature
from tropicrop.windows.dates import day_of_year
from tropicrop.windows.normalize import Normalizer

ADAPT_AGAIN = "adapt the run again with: tropicrop adapt ... --force"


@dataclass
class RunModels:
    """Everything prediction needs from a run directory, its models loaded onto ``device``.

    ``autocast`` is the reduced precision (e.g. torch.bfloat16) to run the networks in, or None for float32.
    ``doy_offset`` (days) is added to the scene's days of year before they reach the networks: an adapted
    run (``tropicrop adapt``, ``RUN/adaptation.json``) moves the new year's calendar onto the training year's.
    """

    classes: ClassTable
    normalizer: Normalizer
    sequence_length: int
    in_channels: int
    nets: list[Net]
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    autocast: torch.dtype | None = None
    root: Path | None = None
    doy_offset: int = 0

    @property
    def per_month(self) -> bool:
        """Whether the run has one model per target month (the paper's Baselines)."""
        return any(n.target is not None for n in self.nets)

    def net_for(self, date: dt.date) -> Net:
        """The model that classifies ``date``: the all-months one, or the per-month one of the same calendar
        month (the scene may be another year than the training scene), nearest day of year as tie-break.
        One rule for every kind of model."""
        if not self.per_month:
            return self.nets[0]
        same = [n for n in self.nets if n.target is not None and n.target.month == date.month]
        if not same:
            have = ", ".join(n.name for n in self.nets)
            raise RunError(self.root, f"has no per-month model for {date:%B} (target {date})",
                           f"its models are {have}; predict dates of those months (--dates)")
        return min(same, key=lambda n: _doy_distance(date, n.target))  # type: ignore[arg-type]


def _doy_distance(a: dt.date, b: dt.date) -> int:
    d = abs(day_of_year(a) - day_of_year(b))
    return min(d, 365 - d)


def select_device(accelerator: str, precision: str) -> tuple[torch.device, torch.dtype | None]:
    """Device and autocast dtype from a run's ``trainer.accelerator`` and ``trainer.precision`` (or
    ``predict --precision``).

    "gpu"/"cuda" (or "auto" with a GPU present) run on CUDA, anything else on the CPU. The precision is
    resolved by :func:`tropicrop.precision.resolve_precision` (``auto``: bf16 where this machine's device
    has fast bf16 units, float32 elsewhere); bf16 runs as autocast on the CPU and the GPU, fp16 on the GPU
    only. A GPU run on a machine without one falls back to the CPU with a warning.
    """
    acc = accelerator.lower()
    if acc in ("gpu", "cuda") and not torch.cuda.is_available():
        warnings.warn(f"the run was trained with accelerator={accelerator!r} but no CUDA device is available; "
                      "predicting on the CPU", stacklevel=2)
    device = device_type(accelerator)
    if device == "cuda":
        torch.backends.cudnn.benchmark = True  # every tile has the same size: autotune the convolutions once
    return torch.device(device), autocast_dtype(resolve_precision(precision, accelerator), device)


def load_run(run_dir: Path, precision: str | None = None, calibration: str = "temperature") -> RunModels:
    """Load the class table, normalisation and every trained model of a finished run directory.

    ``precision`` (``auto``, ``32``, ``bf16``, or a Lightning name) overrides the run's ``trainer.precision``
    for a network's prediction (see :func:`select_device`); a per-pixel model runs in float64 on the CPU.
    ``calibration`` ``"temperature"`` divides each model's logits (a booster's log-probabilities) by the
    temperature fitted on its validation set (``nets/NAME/calibration.json``), ``"none"`` not.

    Every file is read through :mod:`tropicrop.runfiles` (checkpoints weights-only) and each network is
    built from its checkpoint's saved hyperparameters by :func:`tropicrop.models.build`, without
    Lightning; a per-pixel run's models are read from their own files (:mod:`tropicrop.classical`). Raises
    :class:`RunError` naming the file for a missing, unfinished, damaged, foreign or inconsistent run, or
    one written by a newer tropicrop.
    """
    run = RunLayout(Path(run_dir))
    run_dir = run.root
    if not run_dir.is_dir():
        raise RunError(run_dir, "run directory not found", "train one with: tropicrop train -c CONFIG --run-dir RUN")
    for path in (run.config, run.classes, run.normalization):
        if not path.is_file():
            raise RunError(run_dir, f"is not a run directory (no {path.name})", "pass the --run-dir given to tropicrop train")
    if not run.result.is_file():
        raise RunError(run_dir, "holds an unfinished run (no result.json)",
                       f"finish it with: tropicrop train --run-dir {run_dir} --resume")
    read_run_result(run)
    config = read_yaml_mapping(run.config)
    trainer, model_cfg, data_cfg = (config.get(k) or {} for k in ("trainer", "model", "data"))
    if not all(isinstance(c, dict) for c in (trainer, model_cfg, data_cfg)):
        raise RunError(run.config, "is not a training configuration (trainer, model and data must be mappings)",
                       RETRAIN)
    classes = read_class_table(run.classes)
    normalizer = read_normalizer(run.normalization)
    if is_classical(str(model_cfg.get("name", ""))):
        pixel_nets = load_pixel_models(run, model_cfg, data_cfg)
        return RunModels(classes=classes, normalizer=normalizer, in_channels=len(normalizer.mean),
                         sequence_length=int(data_cfg.get("sequence_length", 12)), root=run_dir,
                         nets=[Net(name, target, predictor_for(model, read_temperature(run.net(name), calibration)))
                               for name, target, model in pixel_nets],
                         doy_offset=read_doy_offset(run))
    device, autocast = select_device(str(trainer.get("accelerator", "cpu")),
                                     precision or str(trainer.get("precision", FLOAT32)))
    nets, hp = _load_networks(run, classes, normalizer, model_cfg, device, calibration)
    return RunModels(classes=classes, normalizer=normalizer, sequence_length=int(hp.get("sequence_length", 12)),
                     in_channels=int(hp["in_channels"]), nets=nets, device=device, autocast=autocast, root=run_dir,
                     doy_offset=read_doy_offset(run))


def _load_networks(run: RunLayout, classes: ClassTable, normalizer: Normalizer, model_cfg: dict[str, Any],
                   device: torch.device, calibration: str) -> tuple[list[Net], dict[str, Any]]:
    """Every network of a run, ready for inference on ``device``, and the last one's hyperparameters."""
    checkpoints = run.best_checkpoints()
    if not checkpoints:
        raise RunError(run.root, "holds no trained network (no nets/*/checkpoints/best.ckpt)",
                       "train it again with --force")
    nets = []
    hp: dict[str, Any] = {}
    for ckpt in checkpoints:
        checkpoint = load_checkpoint(ckpt)
        hp = checkpoint["hyper_parameters"]
        model = network_from_checkpoint(ckpt, checkpoint, classes, model_cfg.get("name"), model_cfg.get("options") or {})
        if len(normalizer.mean) != int(hp["in_channels"]):
            raise RunError(run.normalization, f"holds {len(normalizer.mean)} band(s) but {ckpt} takes "
                           f"{hp['in_channels']}", RETRAIN)
        try:
            target = dt.date.fromisoformat(hp["target"]) if hp.get("target") else None
        except (TypeError, ValueError):
            raise RunError(ckpt, f"has target {hp['target']!r}, not a date", RETRAIN) from None
        nets.append(Net(ckpt.parents[1].name, target, predictor_for(prepare_for_inference(model, device),
                                                                    read_temperature(ckpt.parents[1], calibration))))
    if any(n.target is None for n in nets) and len(nets) > 1:
        raise RunError(run.root, "mixes an all-months network with per-month ones", "train it again with --force")
    return nets, hp


def read_doy_offset(run: RunLayout) -> int:
    """The day-of-year offset of an adapted run (``RUN/adaptation.json``), 0 for a run that was not adapted."""
    if not run.adaptation.is_file():
        return 0
    record = read_json(run.adaptation, ADAPT_AGAIN)
    offset = record.get("doy_offset", 0) if isinstance(record, dict) else None
    if isinstance(offset, bool) or not isinstance(offset, int) or not -182 <= offset <= 182:
        raise RunError(run.adaptation, f"has doy_offset {offset!r}, not a whole number of days in [-182, 182]",
                       ADAPT_AGAIN)
    return offset
