"""Months without any acquisition: ``image: null`` in scene.yaml, read as no data, padding in every window."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml

from tropicrop.errors import SceneError
from tropicrop.inference import parse_dates
from tropicrop.io.manifest import read_manifest, write_manifest
from tropicrop.scene import load_scene
from tropicrop.windows import SceneTensors, target_window

MakeScene = Callable[..., Path]
MONTHLY = [dt.date(2019, m, 15) for m in range(1, 13)]


def drop_image(scene_dir: Path, index: int) -> None:
    """Turn date ``index`` of a written scene into a month without acquisition."""
    path = scene_dir / "scene.yaml"
    data = yaml.safe_load(path.read_text())
    data["dates"][index]["image"] = None
    data["dates"][index].pop("label", None)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_missing_month_is_padding_inside_the_window() -> None:
    missing = np.zeros(len(MONTHLY), dtype=bool)
    missing[5] = True
    win = target_window(MONTHLY, MONTHLY[8], length=12, missing=missing)
    assert win.valid.tolist() == [False] * 3 + [True] * 5 + [False] + [True] * 3
    assert win.indices.tolist() == [-1] * 3 + [0, 1, 2, 3, 4, -1, 6, 7, 8]
    # the missing month keeps its own day of year: the recurrence still sees the gap in time
    assert win.doy[8] == MONTHLY[5].timetuple().tm_yday
    with pytest.raises(ValueError, match="no image"):
        target_window(MONTHLY, MONTHLY[5], length=12, missing=missing)


def test_gathered_batch_has_zero_image_and_invalid_flag_at_the_missing_month() -> None:
    images = np.random.default_rng(0).normal(size=(12, 2, 10, 10)).astype(np.float32) + 5
    missing = np.zeros(12, dtype=bool)
    missing[10] = True
    data = SceneTensors(images, np.ones((1, 10, 10), np.uint8), np.ones((10, 10), bool), MONTHLY, [MONTHLY[11]],
                        length=12, missing=missing)
    batch = data.gather(np.array([[0, 0]]), MONTHLY[11], size=8)
    assert batch["valid"][0].tolist() == [True] * 10 + [False, True]
    assert (batch["images"][0, 10] == 0).all() and (batch["images"][0, 9] != 0).all()


def test_scene_with_a_null_image_loads_reads_nan_and_round_trips(make_scene: MakeScene) -> None:
    path = make_scene()
    drop_image(path, 1)
    scene = load_scene(path, check_pixels=True)
    assert scene.missing.tolist() == [False, True, False, False]
    images = scene.read_images()
    assert np.isnan(images[1]).all() and np.isfinite(images[[0, 2, 3]]).all()
    summary = scene.summary()
    assert [d["missing"] for d in summary["dates"]] == [False, True, False, False]
    manifest = read_manifest(path)
    write_manifest(manifest)
    assert yaml.safe_load((path / "scene.yaml").read_text())["dates"][1]["image"] is None
    # prediction targets skip it: 'all' lists the dates with an image only
    assert parse_dates("all", scene) == [scene.dates[i] for i in (0, 2, 3)]


def test_label_on_a_month_without_image_is_refused(make_scene: MakeScene) -> None:
    path = make_scene()
    data = yaml.safe_load((path / "scene.yaml").read_text())
    data["dates"][2]["image"] = None  # date 2 keeps its label raster
    (path / "scene.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(SceneError, match="has a label but no image"):
        load_scene(path)


def test_scene_where_every_image_is_null_is_refused(make_scene: MakeScene) -> None:
    path = make_scene()
    data = yaml.safe_load((path / "scene.yaml").read_text())
    for item in data["dates"]:
        item["image"] = None
        item.pop("label", None)
    (path / "scene.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(SceneError, match="every date has 'image: null'"):
        load_scene(path)


def test_predicting_a_month_without_image_is_refused(make_scene: MakeScene) -> None:
    from tropicrop.inference import _check_dates

    path = make_scene()
    drop_image(path, 1)
    scene = load_scene(path)
    with pytest.raises(SceneError, match="has no image"):
        _check_dates(scene, [scene.dates[1]], 12)
    assert _check_dates(scene, [scene.dates[2]], 12) == [scene.dates[2]]
