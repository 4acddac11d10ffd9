"""Calibration on tiles (data.val_profile: tiles): every validation pixel scored once per date, inside a tile
that gives it context on every side the region allows, and a run fitted that way."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tiny import quick_config, tiny_arrays
from tropicrop.training import prepare_data, train
from tropicrop.trainingdata import validation_pixels
from tropicrop.valprofile import read_profile
from tropicrop.windows.context import context_batches, core, tile_starts
from tropicrop.windows.tensors import SceneTensors

MakeScene = Callable[..., Path]
MONTHLY = [dt.date(2019, m, 15) for m in range(1, 13)]


@pytest.mark.parametrize(("length", "side", "margin"), [(100, 32, 8), (256, 256, 32), (300, 256, 32), (40, 16, 4)])
def test_tile_cores_cover_the_region_and_keep_their_margin(length: int, side: int, margin: int) -> None:
    starts = tile_starts(length, side, margin)
    assert starts[0] == 0 and starts[-1] == max(0, length - side)
    covered = np.zeros(length, int)
    for s in starts:
        rows = core(s, side, length, margin)
        covered[rows] += 1
        inner = np.arange(length)[rows]
        if s > 0:  # an inner side: at least margin pixels of context before every owned pixel
            assert (inner - s >= margin).all()
        if s + side < length:
            assert (s + side - 1 - inner >= margin).all()
    assert (covered >= 1).all()


def region(h: int, w: int, usable: np.ndarray | None = None) -> SceneTensors:
    rng = np.random.default_rng(0)
    images = rng.normal(size=(12, 2, h, w)).astype(np.float32)
    labels = rng.integers(0, 3, (2, h, w)).astype(np.uint8)
    return SceneTensors(images, labels, np.ones((h, w), bool) if usable is None else usable, MONTHLY,
                        MONTHLY[-2:], length=12)


def test_every_labelled_validation_pixel_is_scored_once_per_date_with_its_label() -> None:
    tensors = region(70, 150)
    pixels = np.zeros((70, 150), bool)
    pixels[5:40, 10:140] = True
    pixels[60:, :20] = True
    seen = {d: np.zeros((70, 150), int) for d in MONTHLY[-2:]}
    for target, batch in context_batches(tensors, pixels, MONTHLY[-2:], tile=64, margin=8, batch_size=3):
        side = batch["labels"].shape[-1]
        assert side == 64 and batch["images"].shape[-2:] == (64, 64)
        # find each tile's origin from its images, then add up what it scores
        for k in range(len(batch["labels"])):
            img = batch["images"][k, -1, 0].numpy()  # the window ends at the target date
            now = MONTHLY.index(target)
            hits = [(r, c) for r in range(70 - side + 1) for c in range(150 - side + 1)
                    if np.array_equal(tensors.images[now, 0, r:r + side, c:c + side], img)]
            assert len(hits) == 1
            r, c = hits[0]
            scored = batch["labels"][k].numpy()
            li = tensors.label_dates.index(target)
            assert (scored[scored > 0] == tensors.labels[li, r:r + side, c:c + side][scored > 0]).all()
            seen[target][r:r + side, c:c + side] += scored > 0
    for li, d in enumerate(MONTHLY[-2:]):
        np.testing.assert_array_equal(seen[d], (pixels & (tensors.labels[li] > 0)).astype(int))


def test_images_of_pixels_that_may_not_be_input_are_zeros() -> None:
    usable = np.ones((32, 32), bool)
    usable[:, 20:] = False  # test pixels under test_inputs: exclude
    tensors = region(32, 32, usable)
    pixels = np.zeros((32, 32), bool)
    pixels[4:12, 4:12] = True
    (_, batch), = context_batches(tensors, pixels, [MONTHLY[-1]], tile=256)
    images = batch["images"][0].numpy()
    assert (images[..., 20:] == 0).all() and (images[..., :20] != 0).any()


def test_a_run_calibrated_on_tiles_scores_every_labelled_validation_pixel(make_scene: MakeScene,
                                                                          tmp_path: Path) -> None:
    scene = make_scene(**tiny_arrays(48, 48))
    sets = {"data.patch_size": 16, "data.stride": 8, "data.val_fraction": 0.3, "trainer.max_epochs": 1}
    cfg = quick_config(scene, **sets, **{"data.val_profile": "tiles"})
    train(cfg, tmp_path / "tiles")
    data = prepare_data(cfg)
    expected = 0
    for part in data.scenes:
        pixels = validation_pixels(part, cfg.data.patch_size)
        expected += sum(int((pixels & (part.tensors.labels[part.tensors.label_dates.index(d)] > 0)).sum())
                        for d in part.targets)
    nets = sorted((tmp_path / "tiles" / "nets").iterdir())
    profiles = [read_profile(n) for n in nets]
    assert all(p is not None and p.temperature > 0 for p in profiles)
    assert sum(p.pixels for p in profiles if p is not None) == expected > 0
    train(quick_config(scene, **sets), tmp_path / "patches")  # the default: validation patches, at most val_limit
    patches = [read_profile(n) for n in sorted((tmp_path / "patches" / "nets").iterdir())]
    assert [p.pixels for p in patches if p is not None] != [p.pixels for p in profiles if p is not None]
