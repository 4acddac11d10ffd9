"""Single-polarisation scenes (VV-only archives, GAMMA/SNAP single-pol products): stacked with ``--bands VV``,
trained, predicted and adapted by the networks, trained and predicted by the booster, refused by a run trained on
another band count."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from s1_files import Spec, write_acquisition
from test_classical import lgb_config, separable_scene
from tiny import quick_config
from tropicrop.adaptation import AdaptOptions, SelfTrainingOptions, adapt_run
from tropicrop.cli import main
from tropicrop.errors import SceneError
from tropicrop.inference import predict_run
from tropicrop.scene import load_scene
from tropicrop.training import train

MakeScene = Callable[..., Path]


def vv_only_files(folder: Path) -> Path:
    for seed, day in enumerate((5, 17, 29)):  # HyP3-style _VV/_VH pairs whose VH files were never downloaded
        for path in write_acquisition(folder, Spec(dt.datetime(2019, 1, day, 8, 30), "EPSG:32722", "pair"), 24, seed):
            if path.name.endswith("_VH.tif"):
                path.unlink()
    return folder


def test_vv_only_files_need_bands_vv_and_then_give_a_one_band_scene(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    folder = vv_only_files(tmp_path / "raw")
    assert main(["stack", str(folder), "--out", str(tmp_path / "scene")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no VH partner" in err and "--bands VV" in err
    assert main(["stack", str(folder), "--out", str(tmp_path / "scene"), "--bands", "VV"]) == 0
    scene = load_scene(tmp_path / "scene", check_pixels=True)
    assert list(scene.bands) == ["VV"]
    images = scene.read_images()
    assert images.shape == (1, 1, scene.grid.height, scene.grid.width) and -12 < np.nanmedian(images) < -6


def _one_band(make_scene: MakeScene) -> tuple[Path, Path]:
    """The booster tests' separable scene, and its VH band alone as a one-band scene."""
    dual = separable_scene(make_scene)
    dual_scene = load_scene(dual)
    labels = {d: dual_scene.read_labels()[i] for i, d in enumerate(dual_scene.labelled_dates)}
    single = make_scene(images=dual_scene.read_images()[:, 1:], bands=("VH",), labels=labels, split=dual_scene.read_split())
    return dual, single


def test_network_trains_and_predicts_on_a_one_band_scene(make_scene: MakeScene, tmp_path: Path) -> None:
    dual, single = _one_band(make_scene)
    summary = train(quick_config(single, **{"data.patch_size": 8, "data.stride": 4}), tmp_path / "run")
    assert summary.nets
    maps = predict_run(tmp_path / "run", single, tmp_path / "pred", progress=False)
    assert maps and all(p.is_file() for p in maps)
    with pytest.raises(SceneError, match=r"has 2 band\(s\).*trained on 1"):
        predict_run(tmp_path / "run", dual, tmp_path / "pred2", progress=False)
    fast = AdaptOptions(adabn_batches=2, adabn_batch_size=4, adabn_patch_size=16, shift_min=-30, shift_max=30,
                        shift_step=30, shift_patches=2, shift_patch_size=16,
                        self_training=SelfTrainingOptions(steps=2, batch_size=4, patch_size=16))
    record = adapt_run(tmp_path / "run", single, tmp_path / "adapted", fast, progress=False)
    assert record and (tmp_path / "adapted" / "adaptation.json").is_file()


def test_booster_trains_predicts_and_checks_the_band_count_on_a_one_band_scene(make_scene: MakeScene,
                                                                                tmp_path: Path) -> None:
    dual, single = _one_band(make_scene)
    train(lgb_config(single, "all-months"), tmp_path / "run")
    maps = predict_run(tmp_path / "run", single, tmp_path / "pred", progress=False)
    assert maps and all(p.is_file() for p in maps)
    with pytest.raises(SceneError, match=r"has 2 band\(s\).*trained on 1"):
        predict_run(tmp_path / "run", dual, tmp_path / "pred2", progress=False)
