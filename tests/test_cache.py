"""The on-disk training cache: same patches and normalisation as in memory, reused, rebuilt when stale."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from test_training import quick_config
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
