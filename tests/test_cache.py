"""The on-disk training cache: same patches and normalisation as in memory, reused, rebuilt when stale."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tiny import drop_image, quick_config
from tropicrop.training import prepare_data

MakeScene = Callable[..., Path]


def test_cached_patches_and_normalisation_match_the_in_memory_ones(make_scene: MakeScene, tmp_path: Path) -> None:
    cfg = quick_config(make_scene(), **{"data.patch_size": 8})
    memory = prepare_data(cfg)
    cached = prepare_data(cfg, cache_dir=tmp_path / "cache")
    np.testing.assert_allclose(cached.normalizer.mean, memory.normalizer.mean, rtol=1e-5)
    np.testing.assert_allclose(cached.normalizer.std, memory.normalizer.std, rtol=1e-5)
    np.testing.assert_array_equal(cached.train_origins, memory.train_origins)
    np.testing.assert_array_equal(np.asarray(cached.tensors.labels), memory.tensors.labels)
    np.testing.assert_array_equal(cached.tensors.usable, memory.tensors.usable)
    target = memory.targets[0]
    a = memory.tensors.gather(memory.train_origins[:4], target, 8)
    b = cached.tensors.gather(cached.train_origins[:4], target, 8)
    np.testing.assert_array_equal(a["labels"].numpy(), b["labels"].numpy())
    # float16 dB: a quantisation step below 0.01 dB, i.e. well under 0.01 standard deviations
    assert 0 < float((a["images"] - b["images"]).abs().max()) < 0.01
    assert b["images"].dtype == a["images"].dtype


def test_the_cache_is_reused_and_rebuilt_when_the_scene_changes(make_scene: MakeScene, tmp_path: Path) -> None:
    scene = make_scene()
    cfg = quick_config(scene, **{"data.patch_size": 8})
    prepare_data(cfg, cache_dir=tmp_path / "cache")
    images = tmp_path / "cache" / "images.npy"
    first = images.stat().st_mtime_ns
    prepare_data(cfg, cache_dir=tmp_path / "cache")
    assert images.stat().st_mtime_ns == first  # reused
    image = next(p for p in scene.rglob("*.tif") if p.is_file())
    os.utime(image, ns=(first + 10**9, first + 10**9))  # the scene changed since the cache was made
    prepare_data(cfg, cache_dir=tmp_path / "cache")
    assert images.stat().st_mtime_ns != first  # rebuilt
    assert not list(tmp_path.glob(".cache.partial-*"))
    assert json.loads((tmp_path / "cache" / "cache.json").read_text())["key"]["use"] == cfg.data.use


def test_cache_keeps_test_area_context_and_months_without_acquisition(make_scene: MakeScene, tmp_path: Path) -> None:
    scene = make_scene()
    drop_image(scene, 1)  # a month with no pass: NaN in, padding in every window
    cfg = quick_config(scene, **{"data.patch_size": 8, "data.test_inputs": "context"})
    memory = prepare_data(cfg)
    cached = prepare_data(cfg, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(cached.tensors.usable, memory.tensors.usable)
    np.testing.assert_array_equal(cached.tensors.missing, memory.tensors.missing)
    assert cached.tensors.missing is not None and cached.tensors.missing.tolist()[1]
    np.testing.assert_array_equal(cached.train_origins, memory.train_origins)
    np.testing.assert_array_equal(cached.val_origins, memory.val_origins)
    target = memory.targets[0]
    a = memory.tensors.gather(memory.train_origins[:4], target, 8)
    b = cached.tensors.gather(cached.train_origins[:4], target, 8)
    for key in a:
        if key != "images":
            np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(b[key]), err_msg=key)
    assert float((a["images"] - b["images"]).abs().max()) < 0.01
    excluded = quick_config(scene, **{"data.patch_size": 8})
    strict = prepare_data(excluded, cache_dir=tmp_path / "cache")  # test_inputs is part of the key: rebuilt
    np.testing.assert_array_equal(strict.tensors.usable, prepare_data(excluded).tensors.usable)
    # with context the region reaches into the test area: its images are input, its labels stay 0
    extra = slice(int(strict.window.width), int(cached.window.width))
    assert extra.stop > extra.start and cached.tensors.usable[:, extra].all()
    assert not np.asarray(cached.tensors.labels)[:, :, extra].any()
    assert json.loads((tmp_path / "cache" / "cache.json").read_text())["key"]["test_inputs"] == "exclude"
