"""One contract every kind of model passes, in the spirit of segmentation_models_pytorch's shared model
tester: every registered network (the paper's UnetConvLSTM and VUnetConvLSTM included), the LightGBM
booster, and a per-pixel model written here as one class, go through the same checks of
:class:`~tropicrop.inference.predictor.Predictor`: any tile size, a tile cut out of its padded (context)
read equal to the padded prediction cut, plans independent of the plans beside them, and the maps of the
Dask path's blocks equal to the single-process maps."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import torch

from tiny import DATES, SMALL, SMALL_NET, like_trained, tiny_arrays
from tropicrop.classes import ClassTable
from tropicrop.classical import LightGBMPixels, PixelModel
from tropicrop.inference import Net, Plan, RunModels, TileInput, predict_scene, predictor_for
from tropicrop.inference.blocks import block_maps, plan_blocks, shared_tiles, tile_sums
from tropicrop.inference.predictor import Predictor
from tropicrop.inference.tiling import run_margin_alignment
from tropicrop.models import available_models, build
from tropicrop.scene import load_scene
from tropicrop.windows.dates import target_window
from tropicrop.windows.normalize import Normalizer

NUM_CLASSES = 4  # class 0 (no reference) and the three of tiny.CLASSES
NORMALIZER = Normalizer((-14.0, -14.0), (3.0, 3.0))
OPTIONS: dict[str, dict[str, Any]] = {"unet_convlstm": SMALL_NET, "vunet_convlstm": SMALL_NET, **SMALL}


@dataclass(frozen=True)
class NearestMean:
    """A per-pixel model in one class: softmax of minus the distance of the window's mean to class means.
    What a new per-pixel model has to write to be served like the booster (:class:`PixelModel`)."""

    looks: int = 1
    with_doy: bool = False

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        level = np.nanmean(features, axis=1, keepdims=True)
        level = np.where(np.isnan(level), 0.0, level)
        scores = -np.abs(level - np.array([[-1.0, 0.0, 1.0]]))
        e = np.exp(scores - scores.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


def lightgbm_pixels() -> PixelModel:
    """A booster on random features of an all-months run's shape (12 dates x 2 bands + day of year)."""
    import lightgbm as lgb

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 26)).astype(np.float32)
    y = (x[:, -3] > 0.5).astype(int) + (x[:, -4] > 0).astype(int)
    booster = lgb.train({"objective": "multiclass", "num_class": 3, "verbose": -1, "num_threads": 1,
                         "min_child_samples": 5}, lgb.Dataset(x, y), num_boost_round=5)
    return LightGBMPixels(booster, looks=3, with_doy=True, threads=1)


def network(name: str) -> Callable[[], Any]:
    def make() -> Any:
        torch.manual_seed(0)
        return like_trained(build(name, num_classes=NUM_CLASSES, **OPTIONS[name]))

    return make


KINDS: dict[str, Callable[[], Any]] = {**{name: network(name) for name in available_models()},
                                       "lightgbm": lightgbm_pixels, "nearest-mean": NearestMean}


@pytest.fixture(params=sorted(KINDS), scope="module")
def predictor(request: pytest.FixtureRequest) -> Predictor:
    return predictor_for(KINDS[request.param]())


def plans_of(predictor: Predictor, dates: list[int]) -> list[Plan]:
    net = Net("all-months", None, predictor)
    return [Plan(DATES[i], k, net, target_window(DATES, DATES[i], 12)) for k, i in enumerate(dates)]


def tile(h: int, w: int, crop: tuple[slice, slice] | None = None, seed: int = 0) -> TileInput:
    """Every date of tiny.DATES over an h x w read, a few pixels without data."""
    rng = np.random.default_rng(seed)
    raw = rng.uniform(-20.0, -8.0, (len(DATES), 2, h, w)).astype(np.float32)
    raw[1, :, 0, 0] = np.nan
    crop = crop or (slice(0, h), slice(0, w))
    return TileInput(raw, {i: i for i in range(len(DATES))}, crop, NORMALIZER, torch.device("cpu"))


def probabilities(predictor: Predictor, inputs: TileInput, plans: list[Plan]) -> dict[int, np.ndarray]:
    with torch.inference_mode():
        return {plan.slot: probs for plan, probs in predictor.tile_probabilities(inputs, plans)}


@pytest.mark.parametrize(("h", "w"), [(16, 16), (13, 21), (9, 24)])
def test_any_tile_size_gives_class_probabilities_of_that_size(predictor: Predictor, h: int, w: int) -> None:
    got = probabilities(predictor, tile(h, w), plans_of(predictor, [2, 3]))
    assert sorted(got) == [0, 1]
    for probs in got.values():
        assert probs.shape == (NUM_CLASSES, h, w) and probs.dtype == np.float32
        np.testing.assert_allclose(probs.sum(axis=0), 1.0, atol=1e-5)
        assert (probs >= 0).all()


def test_a_tile_cut_from_its_padded_read_equals_the_padded_prediction_cut(predictor: Predictor) -> None:
    inner = (slice(5, 21), slice(3, 19))
    plans = plans_of(predictor, [3])
    cut = probabilities(predictor, tile(26, 24, inner), plans)[0]
    whole = probabilities(predictor, tile(26, 24), plans)[0]
    np.testing.assert_array_equal(cut, whole[:, inner[0], inner[1]])


def test_a_plan_does_not_depend_on_the_plans_beside_it(predictor: Predictor) -> None:
    inputs = tile(16, 16)
    together = probabilities(predictor, inputs, plans_of(predictor, [2, 3]))
    alone = probabilities(predictor, inputs, plans_of(predictor, [3]))
    torch.testing.assert_close(torch.from_numpy(alone[0]), torch.from_numpy(together[1]), atol=1e-6, rtol=1e-5)


@pytest.mark.slow  # tens of seconds for the five networks on a shared CPU
def test_the_dask_path_blocks_give_the_single_process_maps(predictor: Predictor, make_scene: Callable[..., Path],
                                                           tmp_path: Path) -> None:
    """The blocks the Dask tasks compute (:mod:`tropicrop.inference.blocks`, run here in-process; a real
    cluster: tests/inference/test_distributed.py, test_pixel_runs.py) against :func:`predict_scene`."""
    scene = load_scene(make_scene(**tiny_arrays(40, 44)))
    models = RunModels(classes=ClassTable.from_names(["Soybean", "Maize", "Soil"]), normalizer=NORMALIZER,
                       sequence_length=12, in_channels=2, nets=[Net("all-months", None, predictor)])
    dates = list(scene.labelled_dates)
    tiling = {"tile": 16, "overlap": 4}
    maps = predict_scene(models, scene, tmp_path / "one", dates, margin=4, progress=False, **tiling)
    context = (4, run_margin_alignment(models))
    plans = plans_of(predictor, [DATES.index(d) for d in dates])
    blocks = plan_blocks(scene.grid, per_block=2, **tiling)
    with torch.inference_mode():
        shared = {t: tile_sums(models, scene, plans, t, 4, None, context) for t in shared_tiles(blocks)}
        for block in blocks:
            codes = block_maps(models, scene, plans, block, 4, None, shared, False, context=context).codes
            r, c, h, w = block.rect
            for slot, path in enumerate(maps):
                with rasterio.open(path) as ds:
                    np.testing.assert_array_equal(codes[slot], ds.read(1)[r : r + h, c : c + w], err_msg=block.name)
