"""Training samples from one scene or several (regions, years): class table, normalisation, patch origins.

``data.scene`` is one scene folder or a list of them. With several, the classes are matched by NAME across
the scenes' own code tables (a class missing from one scene is fine) and one class table is fitted on the
labelled pixels of all of them; the normalisation is fitted over the training pixels of all of them,
streamed strip by strip; patches, validation blocks and the ``test_inputs`` rule are worked out in each
scene on its own (patches never cross scenes, so grids, sizes and CRSs may differ) and each scene has its
own on-disk cache under ``RUN/cache/``. All scenes must have the same bands, in the same order.

A network's targets are per scene (``NetTargets``: one list of dates for each scene, aligned with
``PreparedData.scenes``), since scenes of different years have different dates; a batch is cut from one
scene at one of its dates.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from rasterio.windows import Window
from torch.utils.data import ConcatDataset, Dataset

from tropicrop.cache import cached_scene_tensors, fit_normalizer
from tropicrop.classes import ClassTable, count_by_name, fit_class_table
from tropicrop.config.training import DataConfig
from tropicrop.errors import ConfigError, SceneError
from tropicrop.layout import slug
from tropicrop.scene import TRAIN, Scene, load_scene
from tropicrop.windows.datasets import EvalBatches, TrainBatches
from tropicrop.windows.fields import choose_fields, cover, label_fields, patch_sums
from tropicrop.windows.normalize import Normalizer
from tropicrop.windows.patches import label_centred_origins, patch_origins, split_validation
from tropicrop.windows.tensors import SceneTensors, load_scene_tensors

NetTargets = list[list[dt.date]]
"""The target dates of one network in each scene of a run (aligned with ``PreparedData.scenes``)."""


class HasData(Protocol):
    """What data preparation reads of a training configuration (``tropicrop.config.TrainConfig``)."""

    data: DataConfig
    seed: int


def scene_paths(scene: str | Sequence[str]) -> list[str]:
    """``data.scene`` as a list of scene folders."""
    return [scene] if isinstance(scene, str) else list(scene)


@dataclass
class SceneData:
    """One training scene: its region's tensors (``window`` of the scene), patch origins and labelled targets."""

    scene: Scene
    tensors: SceneTensors
    train_origins: np.ndarray
    val_origins: np.ndarray
    targets: list[dt.date]
    window: Window
    held_out: np.ndarray | None = None  # (H, W) bool: the validation fields (data.val_split: fields), never trained on


@dataclass
class PreparedData:
    """The training scenes with the run's class table and normalisation.

    The single-scene accessors (``scene``, ``tensors``, ``train_origins``, ...) serve a run of one scene.
    """

    scenes: list[SceneData]
    classes: ClassTable
    normalizer: Normalizer

    @property
    def _single(self) -> SceneData:
        if len(self.scenes) != 1:
            raise ValueError(f"the data holds {len(self.scenes)} scenes; use .scenes")
        return self.scenes[0]

    @property
    def scene(self) -> Scene:
        return self._single.scene

    @property
    def tensors(self) -> SceneTensors:
        return self._single.tensors

    @property
    def train_origins(self) -> np.ndarray:
        return self._single.train_origins

    @property
    def val_origins(self) -> np.ndarray:
        return self._single.val_origins

    @property
    def window(self) -> Window:
        return self._single.window

    @property
    def targets(self) -> list[dt.date]:
        """Every target date of every scene, in order, once."""
        return sorted({t for s in self.scenes for t in s.targets})

    @property
    def scene_targets(self) -> NetTargets:
        """Every scene's target dates (the targets of an all-months network)."""
        return [list(s.targets) for s in self.scenes]

    @property
    def num_bands(self) -> int:
        return self.scenes[0].scene.num_bands

    @property
    def train_patches(self) -> int:
        return sum(len(s.train_origins) for s in self.scenes)

    @property
    def val_patches(self) -> int:
        return sum(len(s.val_origins) for s in self.scenes)


def net_targets(data: PreparedData, per_month: bool, all_name: str) -> list[tuple[str, NetTargets]]:
    """The networks of a run: ``[(name, targets in each scene)]``.

    One scene: one network per target date, named by it (per-month mode), or one network ``all_name`` on
    every date. Several scenes, per-month mode: one network per calendar month, trained on that month's
    target dates of every scene, named by the first of them in the first scene (of ``data.scene``'s order)
    that has the month; prediction matches a network by its name's month.
    """
    if not per_month:
        return [(all_name, data.scene_targets)]
    if len(data.scenes) == 1:
        return [(t.isoformat(), [[t]]) for t in data.scenes[0].targets]
    names: dict[int, dt.date] = {}
    for part in data.scenes:
        for t in part.targets:
            names.setdefault(t.month, t)
    nets = [(names[m].isoformat(), [[t for t in s.targets if t.month == m] for s in data.scenes]) for m in names]
    return sorted(nets)


def net_scenes(data: PreparedData, targets: NetTargets, size: int) -> list[dict[str, Any]]:
    """For each scene a network learns from: its folder, the network's target dates in it, and how many of
    its training and validation patches hold a label at one of them."""
    out = []
    for part, dates in zip(data.scenes, targets, strict=True):
        if not dates:
            continue
        idx = [part.tensors.label_dates.index(t) for t in dates]
        labelled = np.asarray((part.tensors.labels[idx] > 0).any(axis=0))

        def count(origins: np.ndarray, labelled: np.ndarray = labelled) -> int:
            return sum(bool(labelled[r:r + size, c:c + size].any()) for r, c in origins)

        out.append({"scene": str(part.scene.root), "targets": [t.isoformat() for t in dates],
                    "train_patches": count(part.train_origins), "val_patches": count(part.val_origins)})
    return out


# ------------------------------------------------------------------------------------------ batches
class ScenesTrainBatches(Dataset[dict[str, torch.Tensor]]):
    """Training batches of several scenes' :class:`TrainBatches`: batch ``n`` is cut at one (scene, date).

    Pairs are taken in turn when each scene has as many training patches per date as the others (with one
    scene: exactly that scene's ``TrainBatches``), else drawn with probability proportional to their
    scene's training patches per date, so a small scene is not seen as often as a large one.
    """

    def __init__(self, parts: Sequence[TrainBatches], seed: int) -> None:
        self.parts, self.seed = list(parts), seed
        self.pairs = [(k, t) for k, part in enumerate(self.parts) for t in part.targets]
        if not self.pairs:
            raise ValueError("no (scene, target date) to draw batches from")
        weights = np.array([len(self.parts[k].origins) / len(self.parts[k].targets) for k, _ in self.pairs])
        self.p = None if np.all(weights == weights[0]) else weights / weights.sum()

    def __len__(self) -> int:
        return 2**31 - 1

    def __getitem__(self, n: int) -> dict[str, torch.Tensor]:
        if self.p is None:
            k, target = self.pairs[n % len(self.pairs)]
        else:
            k, target = self.pairs[int(np.random.default_rng([self.seed, n, 1]).choice(len(self.pairs), p=self.p))]
        return self.parts[k].batch(n, target)


def scenes_eval_batches(data: PreparedData, targets: NetTargets, batch_size: int, patch_size: int, seed: int,
                        limit: int) -> ConcatDataset[dict[str, torch.Tensor]]:
    """Validation batches of every scene at its ``targets``; ``limit`` (patch, date) samples shared among
    the scenes in proportion to their validation samples."""
    pairs = [len(s.val_origins) * len(t) for s, t in zip(data.scenes, targets, strict=True)]
    total = sum(pairs)
    parts = [EvalBatches(s.tensors, s.val_origins, t, batch_size, patch_size, seed=seed,
                         limit=limit if total <= limit or len(pairs) == 1 else max(1, limit * n // total),
                         only=s.held_out)
             for s, t, n in zip(data.scenes, targets, pairs, strict=True) if n]
    return ConcatDataset(parts or [EvalBatches(data.scenes[0].tensors, data.scenes[0].val_origins[:0], [], 1, patch_size)])


def validation_pixels(part: SceneData, patch_size: int) -> np.ndarray:
    """(H, W) bool of the region: the pixels validation scores (the held-out fields, or the validation patches)."""
    if part.held_out is not None:
        return part.held_out
    mask = np.zeros(part.tensors.usable.shape, dtype=bool)
    for r, c in part.val_origins:
        mask[r : r + patch_size, c : c + patch_size] = True
    return mask


# ------------------------------------------------------------------------------------------ preparation
def _region(scene: Scene, use: str, min_size: int, margin: int = 0) -> tuple[Window, np.ndarray]:
    """Bounding window (at least ``min_size`` on each side, grown by ``margin`` of context) of the pixels
    training may take labels from, and their mask."""
    if use == "train":
        mask = scene.read_split() == TRAIN
        what = "train pixels (split == 1)"
    else:
        mask = (scene.read_labels() > 0).any(axis=0)
        what = "labelled pixels"
    if not mask.any():
        raise SceneError(scene.manifest.path, f"the scene has no {what}", "check the split and labels (tropicrop inspect)")
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    h, w = mask.shape
    r0, r1 = _grow(max(0, int(rows[0]) - margin), min(h, int(rows[-1]) + 1 + margin), min_size, h)
    c0, c1 = _grow(max(0, int(cols[0]) - margin), min(w, int(cols[-1]) + 1 + margin), min_size, w)
    return Window(c0, r0, c1 - c0, r1 - r0), mask[r0:r1, c0:c1]


def _grow(start: int, stop: int, size: int, limit: int) -> tuple[int, int]:
    """Widen [start, stop) to at least ``size`` pixels, staying inside [0, limit) (``size <= limit``)."""
    if stop - start >= size:
        return start, stop
    start = max(0, min(start - (size - (stop - start)) // 2, limit - size))
    return start, start + size


def scene_cache_folder(cache_dir: Path, scene: Scene) -> Path:
    """``cache_dir/NAME-HASH``: one scene's cache in a run of several, keyed by its resolved folder (two
    scenes of one name in different folders never share it)."""
    root = str(Path(scene.root).resolve())
    return cache_dir / f"{slug(scene.name)}-{hashlib.sha256(root.encode()).hexdigest()[:12]}"


def _load_scenes(d: DataConfig, config_path: Path | None) -> list[Scene]:
    """The scenes of ``data.scene``, checked: each usable for ``d``, all with the first one's bands."""
    paths = scene_paths(d.scene)
    if not paths:
        raise ConfigError(config_path, "data.scene is an empty list", "give a scene folder or a list of them")
    scenes: list[Scene] = []
    for path in paths:
        scene = load_scene(path)
        if any(Path(s.root).resolve() == Path(scene.root).resolve() for s in scenes):
            raise ConfigError(config_path, f"data.scene lists {scene.root} twice", "list each scene once")
        first = scenes[0] if scenes else scene
        if list(scene.bands) != list(first.bands):
            raise SceneError(scene.manifest.path, f"has bands {list(scene.bands)}, but {first.root} has "
                             f"{list(first.bands)}", "every scene of data.scene needs the same bands, in the same order")
        if d.use == "train" and not scene.has_split:
            raise SceneError(scene.manifest.path, "data.use is 'train' but the scene has no split",
                             "add a split or set data.use=all")
        if not scene.labelled_dates:
            raise SceneError(scene.manifest.path, "the scene has no labelled dates", "add label rasters or vector labels")
        if d.patch_size > min(scene.grid.width, scene.grid.height):
            raise ConfigError(config_path, f"data.patch_size {d.patch_size} is larger than the scene {scene.root} "
                              f"({scene.grid.width}x{scene.grid.height})", "use a smaller data.patch_size")
        scenes.append(scene)
    return scenes


def _targets(scenes: list[Scene], wanted: list[dt.date] | None, config_path: Path | None) -> list[list[dt.date]]:
    """Each scene's target dates: its labelled dates, or those of them in ``wanted`` (each of which must be
    labelled in some scene, and each scene must have one)."""
    if not wanted:
        return [list(s.labelled_dates) for s in scenes]
    labelled = {t for s in scenes for t in s.labelled_dates}
    missing = [t for t in wanted if t not in labelled]
    if missing:
        where = scenes[0].root if len(scenes) == 1 else "any scene of data.scene"
        raise ConfigError(config_path, f"target date {missing[0]} is not labelled in {where}",
                          f"labelled dates: {', '.join(map(str, sorted(labelled)))}")
    out = [[t for t in wanted if t in s.labelled_dates] for s in scenes]  # in the order given, as with one scene
    for scene, chosen in zip(scenes, out, strict=True):
        if not chosen:
            raise ConfigError(config_path, f"none of data.targets is labelled in {scene.root}",
                              f"add one of its dates ({', '.join(map(str, scene.labelled_dates))}) or drop the scene")
    return out


def prepare_data(cfg: HasData, classes: ClassTable | None = None, normalizer: Normalizer | None = None,
                 config_path: Path | None = None, cache_dir: Path | None = None) -> PreparedData:
    """Load the training scene(s), fit (or take) the class table and normalisation, and cut patches.

    With ``cache_dir`` each scene's training region is read through an on-disk cache (:mod:`tropicrop.cache`)
    and memory does not grow with the scenes; without it the regions are read into memory.
    """
    d = cfg.data
    scenes = _load_scenes(d, config_path)
    targets = _targets(scenes, d.targets, config_path)
    margin = d.patch_size // 2 if d.test_inputs == "context" else 0
    regions = [_region(scene, d.use, d.patch_size, margin) for scene in scenes]
    if classes is None:
        if d.classes:
            classes = ClassTable.from_names(d.classes)
        else:
            counts: dict[str, int] = {}
            for scene, (window, mask), dates in zip(scenes, regions, targets, strict=True):
                count_by_name(scene.read_labels(window, dates)[:, mask], scene.classes, counts)
            if not counts:
                raise SceneError(scenes[0].manifest.path, f"no labelled pixels in the {d.use} area at the target dates",
                                 "check the split and labels (tropicrop inspect)")
            classes = fit_class_table(counts, d.other_threshold)
    single = len(scenes) == 1
    if normalizer is None and not single:
        normalizer = fit_normalizer([(s, w, m) for s, (w, m) in zip(scenes, regions, strict=True)])
    parts = []
    for k, (scene, (window, mask), dates) in enumerate(zip(scenes, regions, targets, strict=True)):
        if cache_dir is not None:
            folder = cache_dir if single else scene_cache_folder(cache_dir, scene)
            tensors, normalizer = cached_scene_tensors(scene, classes, normalizer, d.use, d.sequence_length, window,
                                                       mask, folder, test_inputs=d.test_inputs)
        else:
            if normalizer is None:
                normalizer = Normalizer.fit(scene.read_images(window), mask)
            tensors = load_scene_tensors(scene, classes, normalizer, d.use, d.sequence_length, window, d.test_inputs)
        train_o, val_o, held_out = _origins(cfg, scene, tensors, dates, config_path, seed=cfg.seed + k)
        parts.append(SceneData(scene, tensors, train_o, val_o, dates, window, held_out))
    assert normalizer is not None
    return PreparedData(parts, classes, normalizer)


def _origins(cfg: HasData, scene: Scene, tensors: SceneTensors, targets: list[dt.date], config_path: Path | None,
             seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Training and validation patch origins of one scene region, and the validation fields (or None).

    ``data.val_split: blocks``: validation patches in blocks, pixel-apart from the training patches.
    ``fields``: whole fields (:mod:`tropicrop.windows.fields`) hold ``val_fraction`` of the labelled pixels;
    validation patches cover them and score only their pixels, and no label of theirs is trained on.
    """
    d = cfg.data
    labelled = np.asarray((tensors.labels[[tensors.label_dates.index(t) for t in targets]] > 0).any(axis=0))
    if not labelled.any():
        raise SceneError(scene.manifest.path, f"no labelled pixels in the {d.use} area at the target dates",
                         "check the split and labels (tropicrop inspect)")
    try:
        sample = label_centred_origins if d.sampling == "labels" else patch_origins
        origins = sample(labelled, tensors.usable, d.patch_size, d.stride, d.min_labelled)
    except ValueError as exc:
        raise ConfigError(config_path, str(exc), "use a smaller data.patch_size") from None
    if len(origins) < 2:
        raise ConfigError(config_path, f"only {len(origins)} training patch(es) of {d.patch_size} px fit the {d.use} "
                          f"area of {scene.root}", "lower data.patch_size, data.stride or data.min_labelled")
    if d.val_split == "fields" and d.val_fraction > 0:
        return _field_origins(d, scene, tensors, targets, labelled, origins, config_path, seed)
    train_o, val_o = split_validation(origins, d.patch_size, d.val_fraction, seed, d.val_block or None)
    if len(train_o) == 0:
        train_o = origins
    return train_o, val_o, None


def _field_origins(d: DataConfig, scene: Scene, tensors: SceneTensors, targets: list[dt.date], labelled: np.ndarray,
                   origins: np.ndarray, config_path: Path | None, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``data.val_split: fields``: training origins (enough labels outside the validation fields), validation
    origins (covering the validation fields) and the validation fields' pixels."""
    at_targets = np.asarray(tensors.labels[[tensors.label_dates.index(t) for t in targets]])
    held_out = choose_fields(label_fields(tensors.labels), at_targets, d.val_fraction, seed)
    need = max(1, math.ceil(d.min_labelled * d.patch_size**2))
    train_o = origins[patch_sums(labelled & ~held_out, origins, d.patch_size) >= need]
    val_o = cover(held_out & labelled, origins, d.patch_size)
    if len(train_o) == 0 or len(val_o) == 0:
        raise ConfigError(config_path, f"data.val_split 'fields' leaves no {'training' if len(val_o) else 'validation'} "
                          f"patch in {scene.root} (its fields are few or large for data.val_fraction "
                          f"{d.val_fraction})", "change data.val_fraction or use data.val_split=blocks")
    return train_o, val_o, held_out
