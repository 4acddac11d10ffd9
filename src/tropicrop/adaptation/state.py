"""What the adaptation methods work on: the run being adapted (:class:`Adaptation`, one per ``adapt_run``)
and each of its models (:class:`AdaptedNet`), loaded and saved by the run's kind.

A network run's models are Lightning checkpoints (their weights change and are written back with the new
normalisation); a per-pixel run's are LightGBM text files (copied unchanged: what adapts a booster is the
normalisation and the day-of-year offset, both run-wide).
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from tropicrop.adaptation.data import PatchSampler, adaptation_dates, target_images
from tropicrop.classes import ClassTable
from tropicrop.config import load_config
from tropicrop.config.adaptation import AdaptOptions
from tropicrop.config.training import TrainConfig
from tropicrop.errors import RunError, SceneError
from tropicrop.io.files import atomic_path
from tropicrop.layout import RunLayout
from tropicrop.runfiles import load_checkpoint, read_class_table, read_normalizer, read_run_result
from tropicrop.scene import Scene
from tropicrop.valprofile import ValProfile
from tropicrop.windows.normalize import Normalizer
from tropicrop.windows.tensors import SceneTensors

NETWORK, PIXEL = "network", "pixel"
"""The kinds of run (``training.trainer_for(model.name).kind``; a sequence network is a ``network``)."""


@dataclass
class AdaptedNet:
    """One model of the run: the network (its CropModule, for fine-tuning) or the per-pixel model, the
    file it came from, its target date (a per-month model) and what the methods record about it."""

    name: str
    source: Path
    model: Any
    module: Any = None
    target: dt.date | None = None
    record: dict[str, Any] = field(default_factory=dict)
    sampler: PatchSampler | None = None  # a network's year-B patches (AdaBN, shift), made on first use
    calibration: ValProfile | None = None  # refitted (year-B labels, or year A after self-training); None: the source's
    calibration_source: str | None = None  # where a refitted calibration comes from (None: year-B labels)

    def load_source_model(self) -> Any:
        """The model as the source run holds it (before any method changed it)."""
        if self.module is None:
            return self.model
        from tropicrop.training import CropModule

        return CropModule.load_from_checkpoint(self.source, map_location="cpu").model.eval()


@dataclass
class Adaptation:
    """The run-wide state the methods share: source run, new year, options and what they have set so far
    (the normalisation, with ``year_stats`` the new year's; the day-of-year offset)."""

    run_dir: Path
    scene: Scene
    options: AdaptOptions
    kind: str
    methods: list[str]
    cfg: TrainConfig
    classes: ClassTable
    source_normalizer: Normalizer
    source_result: dict[str, Any]
    doy_offset: int
    progress: bool = True
    nets: list[AdaptedNet] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.normalizer = self.source_normalizer

    @property
    def length(self) -> int:
        return self.cfg.data.sequence_length

    @cached_property
    def data(self) -> SceneTensors:
        """The new year's images under the current normalisation (read once, after ``year_stats``)."""
        return target_images(self.scene, self.normalizer, self.length)

    @cached_property
    def targets(self) -> list[dt.date]:
        """The new year's dates whose windows adapt the run."""
        return adaptation_dates(self.scene, self.length)

    def net_targets(self, net: AdaptedNet) -> list[dt.date]:
        """A per-month model adapts on its own calendar month of the new year, an all-months one on all."""
        if net.target is None:
            return self.targets
        return [d for d in self.targets if d.month == net.target.month] or self.targets

    def sampler(self, net: AdaptedNet) -> PatchSampler:
        """The network's year-B patch sampler (AdaBN's patch size), carrying the current offset."""
        if net.sampler is None:
            net.sampler = PatchSampler(self.data, self.net_targets(net), self.options.adabn_patch_size, self.doy_offset)
        return net.sampler


def _require(run: RunLayout) -> None:
    for path in (run.config, run.classes, run.normalization, run.result):
        if not path.is_file():
            raise RunError(run.root, f"is not a finished run directory (no {path.name})",
                           "pass a run written by tropicrop train (or tropicrop adapt)")


def load_nets(run: RunLayout, kind: str, scene: Scene) -> list[AdaptedNet]:
    """Every model of the run (RunError for a run without any; SceneError when the scene's bands differ)."""
    if kind == PIXEL:
        from tropicrop.classical import load_pixel_models
        from tropicrop.runfiles import read_yaml_mapping

        config = read_yaml_mapping(run.config)
        pixel = load_pixel_models(run, dict(config.get("model") or {}), dict(config.get("data") or {}))
        bands = len(read_normalizer(run.normalization).mean)
        if scene.num_bands != bands:
            raise RunError(run.root, f"was trained on {bands} band(s), the scene has {scene.num_bands}",
                           "adapt to a scene with the training scene's bands")
        return [AdaptedNet(name, run.net(name) / "model.txt", model, target=target) for name, target, model in pixel]
    from tropicrop.training import CropModule

    checkpoints = run.best_checkpoints()
    if not checkpoints:
        raise RunError(run.root, "holds no trained network (no nets/*/checkpoints/best.ckpt)", "train it again with --force")
    hp0 = load_checkpoint(checkpoints[0])["hyper_parameters"]
    if scene.num_bands != int(hp0["in_channels"]):
        raise SceneError(scene.manifest.path, f"has {scene.num_bands} band(s) but the run was trained on "
                         f"{hp0['in_channels']}", "adapt to a scene with the training scene's bands")
    nets = []
    for ckpt in checkpoints:
        module = CropModule.load_from_checkpoint(ckpt, map_location="cpu")
        target = module.hparams.get("target")
        nets.append(AdaptedNet(ckpt.parents[1].name, ckpt, module.model.eval(), module,
                               dt.date.fromisoformat(target) if target else None))
    return nets


def load_adaptation(run_dir: Path, scene: Scene, options: AdaptOptions, kind: str, methods: list[str],
                    doy_offset: int, progress: bool) -> Adaptation:
    """The source run's configuration, classes, normalisation, result and models, read with the checks of
    :mod:`tropicrop.runfiles`."""
    run = RunLayout(run_dir)
    _require(run)
    result = read_run_result(run)
    adaptation = Adaptation(run_dir, scene, options, kind, methods, load_config(TrainConfig, run.config),
                            read_class_table(run.classes), read_normalizer(run.normalization), result, doy_offset,
                            progress)
    adaptation.nets = load_nets(run, kind, scene)
    return adaptation


def save_net(net: AdaptedNet, out: RunLayout, normalizer: Normalizer) -> None:
    """The adapted model into ``out``: a network's checkpoint with its adapted weights and the new
    normalisation (atomically), a per-pixel model's file unchanged."""
    if net.module is None:
        out.net(net.name).mkdir(parents=True, exist_ok=True)
        shutil.copy2(net.source, out.net(net.name) / net.source.name)
        return
    ckpt = load_checkpoint(net.source)
    ckpt["state_dict"] = {k: v.detach().cpu() for k, v in net.module.state_dict().items()}
    ckpt["hyper_parameters"]["normalization"] = normalizer.to_dict()
    for key in ("optimizer_states", "lr_schedulers", "callbacks", "loops"):
        ckpt.pop(key, None)
    dst = out.checkpoint(net.name)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dst) as tmp:
        torch.save(ckpt, tmp)
