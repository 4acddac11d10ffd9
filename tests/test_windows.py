"""Target-month windows, normalisation, patch sampling and batch datasets."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from tropicrop.classes import ClassTable, fit_class_table
from tropicrop.windows.datasets import EvalBatches, TrainBatches
from tropicrop.windows.dates import target_window
from tropicrop.windows.normalize import Normalizer
from tropicrop.windows.patches import label_centred_origins, patch_origins, split_validation
from tropicrop.windows.sampler import StepSampler
from tropicrop.windows.tensors import SceneTensors

MONTHLY = [dt.date(2019, m, 15) for m in range(1, 13)] + [dt.date(2020, m, 15) for m in range(1, 4)]


def test_window_before_first_date_is_zero_padded() -> None:
    win = target_window(MONTHLY, MONTHLY[2], length=12)
    assert win.valid.tolist() == [False] * 9 + [True] * 3
    assert win.indices.tolist() == [-1] * 9 + [0, 1, 2]
    # padded steps get the day of year of the months before the first acquisition
    assert win.doy[-3:].tolist() == [15, 46, 74]
    assert win.doy[8] == dt.date(2018, 12, 15).timetuple().tm_yday


def test_window_with_full_history_holds_the_last_twelve_dates() -> None:
    win = target_window(MONTHLY, MONTHLY[14], length=12)
    assert win.valid.all() and win.indices.tolist() == list(range(3, 15))
    with pytest.raises(ValueError, match="not an acquisition date"):
        target_window(MONTHLY, dt.date(2030, 1, 1))


def test_gathered_batch_has_zero_images_at_padded_steps() -> None:
    images = np.random.default_rng(0).normal(size=(15, 2, 20, 20)).astype(np.float32) + 5
    labels = np.ones((1, 20, 20), dtype=np.uint8)
    data = SceneTensors(images, labels, np.ones((20, 20), bool), MONTHLY, [MONTHLY[1]], length=12)
    batch = data.gather(np.array([[0, 0], [4, 4]]), MONTHLY[1], size=8)
    assert batch["images"].shape == (2, 12, 2, 8, 8)
    assert (batch["images"][:, :10] == 0).all()
    np.testing.assert_array_equal(batch["images"][1, -1].numpy(), images[1, :, 4:12, 4:12])
    assert batch["valid"][0].tolist() == [False] * 10 + [True] * 2
    assert (batch["labels"] == 1).all()


def test_normalizer_standardises_per_band_and_fills_no_data_with_zero() -> None:
    rng = np.random.default_rng(0)
    images = np.stack([rng.normal(-10, 2, (3, 30, 30)), rng.normal(-17, 3, (3, 30, 30))], axis=1).astype(np.float32)
    mask = np.zeros((30, 30), bool)
    mask[:, :15] = True
    norm = Normalizer.fit(images, mask)
    assert norm.mean[0] == pytest.approx(-10, abs=0.2) and norm.std[1] == pytest.approx(3, abs=0.2)
    images[0, 0, 0, 0] = np.nan
    out = norm(images)
    assert out[0, 0, 0, 0] == 0 and np.isfinite(out).all()
    assert Normalizer.from_dict(norm.to_dict()) == norm


def test_patches_lie_on_usable_pixels_and_hold_labels() -> None:
    labelled = np.zeros((40, 40), bool)
    labelled[5:15, 5:15] = True
    usable = np.ones((40, 40), bool)
    usable[:, 30:] = False
    origins = patch_origins(labelled, usable, size=8, stride=2, min_labelled=0.25)
    assert len(origins)
    for r, c in origins:
        assert usable[r : r + 8, c : c + 8].all()
        assert labelled[r : r + 8, c : c + 8].sum() >= 16
    with pytest.raises(ValueError, match="larger than the scene"):
        patch_origins(labelled, usable, size=64, stride=2, min_labelled=0)


def test_validation_patches_are_spatially_disjoint_from_training_patches() -> None:
    rr, cc = np.meshgrid(np.arange(0, 200, 4), np.arange(0, 200, 4), indexing="ij")
    origins = np.stack([rr.ravel(), cc.ravel()], 1)
    train, val = split_validation(origins, size=16, fraction=0.15, seed=3)
    assert 0.08 * len(origins) < len(val) < 0.25 * len(origins)
    overlap = (np.abs(train[:, None, 0] - val[None, :, 0]) < 16) & (np.abs(train[:, None, 1] - val[None, :, 1]) < 16)
    assert not overlap.any()
    again = split_validation(origins, size=16, fraction=0.15, seed=3)
    np.testing.assert_array_equal(again[1], val)


def test_step_sampler_continues_from_the_global_step_and_splits_batches_across_ranks() -> None:
    step = {"now": 12}
    s = StepSampler(steps=6, first_step=lambda: step["now"])
    assert list(s) == [12, 13, 14, 15, 16, 17] and len(s) == 6
    step["now"] = 18
    assert next(iter(s)) == 18
    ranks = [StepSampler(steps=3, first_step=lambda: 2, rank=r, world=2) for r in (0, 1)]
    assert sorted(list(ranks[0]) + list(ranks[1])) == list(range(4, 10))


def test_train_batches_are_a_function_of_seed_and_batch_number() -> None:
    images = np.random.default_rng(0).normal(size=(15, 2, 24, 24)).astype(np.float32)
    labels = np.random.default_rng(1).integers(0, 3, (2, 24, 24)).astype(np.uint8)
    data = SceneTensors(images, labels, np.ones((24, 24), bool), MONTHLY, MONTHLY[-2:])
    origins = patch_origins(labels.any(0), data.usable, 8, 4, 0.0)
    ds = TrainBatches(data, origins, MONTHLY[-2:], batch_size=4, patch_size=8, seed=5, balance=True)
    a, b = ds[7], ds[7]
    for key in a:
        assert (a[key] == b[key]).all()
    assert not (ds[8]["images"] == a["images"]).all()
    assert ds[0]["doy"][0, -1] != ds[1]["doy"][0, -1], "consecutive batches cycle through target dates"
    val = EvalBatches(data, origins, MONTHLY[-2:], batch_size=5, patch_size=8, limit=12)
    assert sum(len(val[i]["images"]) for i in range(len(val))) == 12


def test_rare_classes_are_merged_into_other() -> None:
    table = fit_class_table({"Soybean": 600, "Maize": 300, "Beans": 40, "Sorghum": 60}, min_fraction=0.053)
    assert table.names == ("no reference", "Soybean", "Maize", "Sorghum", "Other")
    assert table.merged == ("Beans",)
    lookup = table.lookup({1: "Maize", 2: "Beans", 3: "Rice"})
    assert lookup[1] == 2 and lookup[2] == 4 and lookup[3] == 4
    assert ClassTable.from_dict(table.to_dict()) == table


def test_missing_month_is_padding_inside_the_window() -> None:
    year = MONTHLY[:12]
    missing = np.zeros(len(year), dtype=bool)
    missing[5] = True
    win = target_window(year, year[8], length=12, missing=missing)
    assert win.valid.tolist() == [False] * 3 + [True] * 5 + [False] + [True] * 3
    assert win.indices.tolist() == [-1] * 3 + [0, 1, 2, 3, 4, -1, 6, 7, 8]
    # the missing month keeps its own day of year: the recurrence still sees the gap in time
    assert win.doy[8] == year[5].timetuple().tm_yday
    with pytest.raises(ValueError, match="no image"):
        target_window(year, year[5], length=12, missing=missing)


def test_gathered_batch_has_zero_image_and_invalid_flag_at_the_missing_month() -> None:
    year = MONTHLY[:12]
    images = np.random.default_rng(0).normal(size=(12, 2, 10, 10)).astype(np.float32) + 5
    missing = np.zeros(12, dtype=bool)
    missing[10] = True
    data = SceneTensors(images, np.ones((1, 10, 10), np.uint8), np.ones((10, 10), bool), year, [year[11]],
                        length=12, missing=missing)
    batch = data.gather(np.array([[0, 0]]), year[11], size=8)
    assert batch["valid"][0].tolist() == [True] * 10 + [False, True]
    assert (batch["images"][0, 10] == 0).all() and (batch["images"][0, 9] != 0).all()


def test_every_step_batches_hold_the_labels_of_every_labelled_date_of_the_window() -> None:
    images = np.random.default_rng(0).normal(size=(15, 2, 24, 24)).astype(np.float32)
    labels = np.random.default_rng(1).integers(0, 3, (3, 24, 24)).astype(np.uint8)
    labelled = [MONTHLY[1], MONTHLY[9], MONTHLY[14]]  # MONTHLY[1] lies before the window of MONTHLY[14]
    data = SceneTensors(images, labels, np.ones((24, 24), bool), MONTHLY, labelled)
    batch = data.gather(np.array([[0, 0], [8, 4]]), MONTHLY[14], size=8, every_step=True)
    steps = batch["step_labels"]
    assert steps.shape == (2, 12, 8, 8)
    window = target_window(MONTHLY, MONTHLY[14]).indices.tolist()
    for t, i in enumerate(window):
        expected = labels[labelled.index(MONTHLY[i])] if MONTHLY[i] in labelled[1:] else np.zeros((24, 24))
        np.testing.assert_array_equal(steps[1, t].numpy(), expected[8:16, 4:12])
    assert (steps[:, -1] == batch["labels"]).all()
    assert "step_labels" not in data.gather(np.array([[0, 0]]), MONTHLY[14], size=8)


def test_augmentation_turns_step_labels_with_their_images() -> None:
    images = np.zeros((15, 2, 16, 16), dtype=np.float32)
    images[:, 0] = np.arange(16 * 16).reshape(16, 16)
    labels = (np.arange(16 * 16).reshape(1, 16, 16) % 251).astype(np.uint8)
    data = SceneTensors(images, labels, np.ones((16, 16), bool), MONTHLY, [MONTHLY[14]])
    ds = TrainBatches(data, np.array([[0, 0]]), [MONTHLY[14]], batch_size=8, patch_size=16, seed=0, every_step=True)
    batch = ds[3]
    for k in range(8):  # labels were built from the same pixel numbering as band 0: they must still agree
        pixel = batch["images"][k, -1, 0].long() % 251
        assert (batch["step_labels"][k, -1] == pixel).all() and (batch["labels"][k] == pixel).all()


def test_every_step_batches_have_no_labels_at_a_missing_month() -> None:
    images = np.random.default_rng(0).normal(size=(15, 2, 16, 16)).astype(np.float32)
    labels = np.ones((2, 16, 16), dtype=np.uint8)
    missing = np.zeros(15, dtype=bool)
    missing[9] = True
    data = SceneTensors(images, labels, np.ones((16, 16), bool), MONTHLY, [MONTHLY[12], MONTHLY[14]],
                        missing=missing)
    batch = data.gather(np.array([[0, 0]]), MONTHLY[14], size=8, every_step=True)
    window = target_window(MONTHLY, MONTHLY[14], missing=missing)
    step = int(np.flatnonzero(window.indices == -1)[-1])  # the missing month's step
    assert not batch["valid"][0, step] and (batch["step_labels"][0, step] == 0).all()
    assert (batch["step_labels"][0, -3] == 1).all() and (batch["step_labels"][0, -1] == 1).all()


def test_label_centred_patches_cover_every_labelled_pixel_of_small_scattered_parcels() -> None:
    rng = np.random.default_rng(0)
    labelled = np.zeros((96, 80), dtype=bool)
    for r, c in rng.integers(0, [92, 76], size=(12, 2)):
        labelled[r : r + 4, c : c + 4] = True          # 4 x 4 parcels, scattered
    usable = np.ones_like(labelled)
    size, stride = 32, 16
    origins = label_centred_origins(labelled, usable, size, stride, min_labelled=0.0)
    covered = np.zeros_like(labelled)
    for r, c in origins:
        assert 0 <= r <= 96 - size and 0 <= c <= 80 - size
        covered[r : r + size, c : c + size] = True
    assert covered[labelled].all()
    centres = origins + size // 2
    inside = (centres[:, 0] < 96 - size // 2) & (centres[:, 1] < 80 - size // 2) & (origins > 0).all(axis=1)
    assert labelled[centres[inside, 0], centres[inside, 1]].all()   # away from the edges: centred on a label
    assert len(origins) <= int(np.ceil(96 / stride) * np.ceil(80 / stride))  # one per cell at most


def test_label_centred_patches_keep_the_usable_and_min_labelled_rules() -> None:
    labelled = np.zeros((64, 64), dtype=bool)
    labelled[32:36, 32:36] = True                      # 16 labelled pixels, in one 8 px cell
    usable = np.ones_like(labelled)
    assert len(label_centred_origins(labelled, usable, 16, 8, min_labelled=16 / 256)) == 1
    assert len(label_centred_origins(labelled, usable, 16, 8, min_labelled=17 / 256)) == 0
    usable[40, 40] = False                             # inside the only patch (origin 25, 25)
    assert len(label_centred_origins(labelled, usable, 16, 8, min_labelled=0.0)) == 0
    with pytest.raises(ValueError, match="larger than the scene"):
        label_centred_origins(labelled, usable, 65, 8, 0.0)
