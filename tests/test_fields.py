"""Validation by whole fields (data.val_split: fields): fields read off the labels, and no label of a field
that validation reaches ever enters a training batch or the booster's training pixels."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tiny import DATES, quick_config
from tropicrop.classical import prepare_pixels
from tropicrop.errors import ConfigError
from tropicrop.training import prepare_data
from tropicrop.training.datamodule import TargetDataModule
from tropicrop.windows.fields import fields_under, label_fields

MakeScene = Callable[..., Path]


def test_fields_are_connected_regions_with_one_label_history() -> None:
    labels = np.zeros((2, 4, 6), dtype=np.uint8)
    labels[:, :2, :3] = [[[1]], [[2]]]  # field A: 1 then 2
    labels[:, :2, 3:] = [[[1]], [[3]]]  # field B touches A, same first label, another second one
    labels[:, 3, :2] = [[1], [2]]  # A's history again, but not connected to A: a field of its own
    labels[0, 3, 4] = 2  # labelled at one date only
    fields = label_fields(labels)
    assert fields.dtype == np.int32
    assert len(np.unique(fields[:2, :3])) == 1 and len(np.unique(fields[:2, 3:])) == 1
    ids = {int(fields[0, 0]), int(fields[0, 3]), int(fields[3, 0]), int(fields[3, 4])}
    assert len(ids) == 4 and 0 not in ids
    assert fields[2].max() == 0 and fields[3, 2] == 0  # unlabelled pixels belong to no field


def test_fields_under_patches_are_held_out_whole() -> None:
    fields = np.zeros((10, 10), dtype=np.int32)
    fields[:, :5], fields[:, 5:] = 1, 2
    fields[8:, 8:] = 0
    held = fields_under(fields, np.array([[0, 3]]), 2)  # a 2x2 patch over columns 3-4: field 1 only
    np.testing.assert_array_equal(held, fields == 1)
    assert not fields_under(fields, np.array([[8, 8]]), 2).any()  # over unlabelled pixels: nothing held out


def field_scene(make_scene: MakeScene, seed: int = 0) -> Path:
    """A 48 x 64 scene of 8 x 8 fields, each with its own random class at the two labelled dates, trained on
    its left 40 columns."""
    rng = np.random.default_rng(seed)
    h, w = 48, 64
    per_field = rng.integers(1, 4, size=(2, h // 8, w // 8)).astype(np.uint8)
    labels = {d: np.kron(per_field[k], np.ones((8, 8), dtype=np.uint8)) for k, d in enumerate(DATES[2:])}
    split = np.full((h, w), 2, dtype=np.uint8)
    split[:, :40] = 1
    images = rng.uniform(-20.0, -8.0, size=(len(DATES), 2, h, w)).astype(np.float32)
    return make_scene(images=images, labels=labels, split=split)


def training_labels_in(data_module: TargetDataModule, held_out: np.ndarray, batches: int) -> int:
    """Labelled pixels of held-out fields in the first ``batches`` training batches (no augmentation)."""
    loader = data_module.train_dataloader()
    dataset = loader.dataset
    part = data_module.data.scenes[0]
    hits = 0
    for n in range(batches):
        batch = dataset[n]
        rng = np.random.default_rng([data_module.cfg.seed, n])
        pick = rng.choice(len(part.train_origins), size=len(batch["labels"]),
                          replace=len(part.train_origins) < len(batch["labels"]))
        for k, (r, c) in enumerate(part.train_origins[pick]):
            p = batch["labels"].shape[-1]
            hits += int(((batch["labels"][k].numpy() > 0) & held_out[r:r + p, c:c + p]).sum())
    return hits


@pytest.mark.parametrize("split", ["blocks", "fields"])
def test_no_label_of_a_validation_field_is_trained_on(make_scene: MakeScene, split: str) -> None:
    cfg = quick_config(field_scene(make_scene), **{"data.patch_size": 8, "data.stride": 4, "data.val_fraction": 0.3,
                                                   "data.val_block": 8, "data.val_split": split,
                                                   "data.augment": "false"})
    data = prepare_data(cfg)
    part = data.scenes[0]
    fields = label_fields(np.asarray(part.tensors.labels))
    validation_fields = fields_under(fields, part.val_origins, 8)
    assert validation_fields.any() and len(part.train_origins)
    module = TargetDataModule(data, data.scene_targets, cfg)
    hits = training_labels_in(module, validation_fields, batches=30)
    booster = prepare_pixels(quick_config(cfg.data.scene, **{"model.name": "lightgbm", "data.patch_size": 8,
                                                             "data.stride": 4, "data.val_fraction": 0.3,
                                                             "data.val_block": 8, "data.val_split": split}), data)
    booster_hits = int((booster.areas[0]["train"] & validation_fields).sum())
    if split == "blocks":  # the leak this option closes: fields under validation are trained on
        assert part.held_out is None and hits > 0 and booster_hits > 0
    else:
        np.testing.assert_array_equal(part.held_out, validation_fields)
        assert hits == 0 and booster_hits == 0


def test_fields_that_cover_every_training_patch_are_refused(make_scene: MakeScene) -> None:
    h, w = 48, 64
    labels = {d: np.ones((h, w), dtype=np.uint8) for d in DATES[2:]}  # one field over the whole scene
    split = np.ones((h, w), dtype=np.uint8)
    images = np.random.default_rng(0).uniform(-20.0, -8.0, size=(len(DATES), 2, h, w)).astype(np.float32)
    scene = make_scene(images=images, labels=labels, split=split)
    cfg = quick_config(scene, **{"data.patch_size": 8, "data.val_split": "fields"})
    with pytest.raises(ConfigError, match="val_split 'fields'.*every training patch"):
        prepare_data(cfg)
