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
from tropicrop.trainingdata import scenes_eval_batches
from tropicrop.windows.fields import choose_fields, cover, label_fields, patch_sums

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


def fields_under(fields: np.ndarray, origins: np.ndarray, size: int) -> np.ndarray:
    """Every pixel of every field with a pixel under one of the ``size`` patches at ``origins``."""
    touched = {int(f) for r, c in origins for f in np.unique(fields[r:r + size, c:c + size])} - {0}
    return np.isin(fields, list(touched))


def test_whole_fields_are_chosen_until_they_hold_the_fraction() -> None:
    fields = np.repeat(np.arange(1, 11, dtype=np.int32), 10).reshape(10, 10)  # ten rows, one field each
    labels = np.ones((1, 10, 10), dtype=np.uint8)
    held = choose_fields(fields, labels, 0.25, seed=3)
    assert held.sum() == 30  # whole fields (rows) until at least a quarter: three of them
    assert all(held[r].all() or not held[r].any() for r in range(10))
    np.testing.assert_array_equal(held, choose_fields(fields, labels, 0.25, seed=3))  # from the seed


@pytest.mark.parametrize("seed", range(12))
def test_no_class_loses_more_than_its_cap_to_validation(seed: int) -> None:
    fields = np.repeat(np.arange(1, 21, dtype=np.int32), 10).reshape(20, 10)  # twenty fields of 10 px
    labels = np.ones((2, 20, 10), dtype=np.uint8)
    labels[0, :2] = 2  # class 2 at the first date: two fields, 10 % of the pixels
    labels[1, 4:10] = 3  # class 3 at the second date: six fields
    held = choose_fields(fields, labels, 0.15, seed=seed, class_cap=2.0)
    assert held.sum() == 30  # 15 % of 200 px
    assert not held[:2].any()  # one of class 2's fields is half of it: over the 30 % cap, never held out
    assert held[4:10].sum() <= 0.3 * 60  # class 3: one of its six fields at most


def test_cover_puts_every_coverable_pixel_under_a_patch() -> None:
    mask = np.zeros((22, 22), dtype=bool)
    mask[2:5, 3:15] = True
    mask[21, 21] = True  # under no candidate patch (origins stop at 12: patches at column 19)
    origins = np.array([(r, c) for r in range(0, 13, 2) for c in range(0, 13, 2)])
    chosen = cover(mask, origins, 8)
    covered = np.zeros_like(mask)
    for r, c in chosen:
        covered[r:r + 8, c:c + 8] = True
    assert covered[2:5, 3:15].all() and not covered[21, 21]
    assert 2 <= len(chosen) <= 3  # 12 columns need two 8 px patches; greedy may take a third, never more
    np.testing.assert_array_equal(patch_sums(mask, np.array([[2, 3], [0, 0]]), 8), [3 * 8, 3 * 5])


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
    sets = {"data.patch_size": 8, "data.stride": 4, "data.val_fraction": 0.3, "data.val_block": 8,
            "data.val_split": split}
    cfg = quick_config(field_scene(make_scene), **sets, **{"data.augment": "false"})
    data = prepare_data(cfg)
    part = data.scenes[0]
    labels = np.asarray(part.tensors.labels)
    labelled = (labels > 0).any(axis=0)
    fields = label_fields(labels)
    scored_times = {d: np.zeros(labelled.shape, dtype=int) for d in part.targets}  # per date: times a pixel is scored
    batches = scenes_eval_batches(data, data.scene_targets, 32, 8, cfg.seed, 1000).datasets[0]
    for n, (date, origins) in enumerate(batches.batches):
        scored = batches[n]["labels"].numpy() > 0
        for k, (r, c) in enumerate(origins):
            scored_times[date][r:r + 8, c:c + 8] += scored[k]
    validated = np.any([t > 0 for t in scored_times.values()], axis=0)
    validation_fields = fields_under(fields, part.val_origins, 8) if split == "blocks" else part.held_out
    assert validated.any() and len(part.train_origins)
    hits = training_labels_in(TargetDataModule(data, data.scene_targets, cfg), validation_fields, batches=30)
    booster = prepare_pixels(quick_config(cfg.data.scene, **sets, **{"model.name": "lightgbm"}), data)
    booster_hits = int((booster.areas[0]["train"] & validation_fields).sum())
    if split == "blocks":  # the leak this option closes: fields under validation are trained on
        assert part.held_out is None and hits > 0 and booster_hits > 0
    else:
        # whole fields, about 30 % of the labelled pixels; validation scores them (all under a patch) and no other
        assert validation_fields is not None
        np.testing.assert_array_equal(validation_fields, fields_under(fields, np.argwhere(validation_fields), 1))
        assert 0.3 <= validation_fields[labelled].mean() < 0.45
        np.testing.assert_array_equal(validated, validation_fields & labelled)
        assert max(int(t.max()) for t in scored_times.values()) == 1  # once per date, though the patches overlap
        assert not (booster.areas[0]["val"] & ~validation_fields).any()
        assert hits == 0 and booster_hits == 0


def test_a_scene_of_one_field_is_refused(make_scene: MakeScene) -> None:
    h, w = 48, 64
    labels = {d: np.ones((h, w), dtype=np.uint8) for d in DATES[2:]}  # one field over the whole scene
    split = np.ones((h, w), dtype=np.uint8)
    images = np.random.default_rng(0).uniform(-20.0, -8.0, size=(len(DATES), 2, h, w)).astype(np.float32)
    scene = make_scene(images=images, labels=labels, split=split)
    cfg = quick_config(scene, **{"data.patch_size": 8, "data.val_split": "fields"})
    with pytest.raises(ConfigError, match="val_split 'fields' leaves no validation patch"):
        prepare_data(cfg)


def test_overlapping_validation_patches_score_each_pixel_once() -> None:
    import datetime as dt

    from tropicrop.windows.datasets import EvalBatches
    from tropicrop.windows.tensors import SceneTensors

    day = dt.date(2020, 1, 1)
    tensors = SceneTensors(images=np.zeros((1, 2, 8, 16), dtype=np.float32), labels=np.ones((1, 8, 16), dtype=np.uint8),
                           usable=np.ones((8, 16), dtype=bool), dates=[day], label_dates=[day], length=1)
    origins = np.array([[0, 0], [0, 4]])  # two 8 px patches over columns 0-7 and 4-11
    only = np.ones((8, 16), dtype=bool)
    only[:, 10:] = False
    batch = EvalBatches(tensors, origins, [day], 4, 8, only=only)[0]
    assert int((batch["labels"] > 0).sum()) == 8 * 10  # columns 0-9 once, not 4-7 twice
    assert int((batch["labels"][1] > 0).sum()) == 8 * 2  # the second patch keeps what the first left: 8-9
    plain = EvalBatches(tensors, origins, [day], 4, 8)[0]
    assert int((plain["labels"] > 0).sum()) == 2 * 64  # without ``only`` every patch scores all it covers
