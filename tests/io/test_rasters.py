"""RasterSource keeps files open between windows: the answers must be those of a file opened per read,
after the file is rewritten or truncated, in a forked child and in other threads."""

from __future__ import annotations

import multiprocessing
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from rasterio.windows import Window

from tropicrop.errors import SceneError
from tropicrop.io import RasterSource, write_geotiff
from tropicrop.io.rasters import _OPEN_FILES

TRANSFORM = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 9000000.0)


def image(path: Path, value: float, size: int = 64, **profile: object) -> Path:
    """A 2-band float32 GeoTIFF of ``size``² holding ``value + row`` (tiled 16 px, so windows span blocks)."""
    rows = np.arange(size, dtype=np.float32)[:, None] * np.ones((1, size), np.float32)
    data = np.stack([rows + value, rows - value])
    return write_geotiff(path, data, "EPSG:32723", TRANSFORM, blockxsize=16, blockysize=16, **profile)


def test_windows_read_through_the_open_file_equal_a_fresh_open(tmp_path: Path) -> None:
    src = RasterSource(image(tmp_path / "a.tif", 1.0))
    for c, r in [(0, 0), (5, 9), (40, 33), (5, 9)]:
        block = src.read(Window(c, r, 24, 24))
        assert block.shape == (2, 24, 24)
        np.testing.assert_array_equal(block[0], np.arange(r, r + 24, dtype=np.float32)[:, None] + 1.0 + np.zeros(24))
    assert sum(key[0] == str(src.path) for key in _OPEN_FILES.datasets) == 1


def test_a_rewritten_file_is_read_anew(tmp_path: Path) -> None:
    path = image(tmp_path / "a.tif", 1.0)
    src = RasterSource(path)
    assert src.read(Window(0, 0, 8, 8))[0, 0, 0] == 1.0
    image(path, 5.0)  # atomically replaced, as an export would
    assert src.read(Window(0, 0, 8, 8))[0, 0, 0] == 5.0
    assert sum(key[0] == str(path) for key in _OPEN_FILES.datasets) == 1  # the old handle was closed


def test_a_file_replaced_by_one_of_the_same_size_and_time_is_read_anew(tmp_path: Path) -> None:
    path = image(tmp_path / "a.tif", 1.0, compress="none")
    src = RasterSource(path)
    assert src.read(Window(0, 0, 8, 8))[0, 0, 0] == 1.0
    stat = path.stat()
    other = image(tmp_path / "b.tif", 2.0, compress="none")
    assert other.stat().st_size == stat.st_size
    os.utime(other, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # the same size and modification time
    other.replace(path)
    assert src.read(Window(0, 0, 8, 8))[0, 0, 0] == 2.0


def test_a_file_truncated_after_a_read_fails_with_the_file_named(tmp_path: Path) -> None:
    path = image(tmp_path / "a.tif", 1.0, size=256)
    src = RasterSource(path)
    src.read(Window(0, 0, 16, 16))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # same file, cut short in place
    with pytest.raises(SceneError, match="a.tif"):
        src.read(Window(200, 200, 48, 48))


def test_a_file_removed_after_description_fails_with_the_file_named(tmp_path: Path) -> None:
    path = image(tmp_path / "gone.tif", 1.0)
    src = RasterSource(path)
    path.unlink()
    with pytest.raises(SceneError, match="gone.tif"):
        src.read(Window(0, 0, 8, 8))


def _read_in_child(src: RasterSource, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    queue.put([float(src.read(Window(c, c, 8, 8))[0, 0, 0]) for c in (0, 30, 50)])


def test_a_forked_child_opens_its_own_files(tmp_path: Path) -> None:
    src = RasterSource(image(tmp_path / "a.tif", 1.0))
    src.read(Window(10, 10, 8, 8))  # the parent holds the file open
    parent_handle = next(ds for key, ds in _OPEN_FILES.datasets.items() if key[0] == str(src.path))
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_read_in_child, args=(src, queue))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    assert queue.get(timeout=5) == [1.0, 31.0, 51.0]
    assert not parent_handle.closed
    assert src.read(Window(20, 20, 8, 8))[0, 0, 0] == 21.0


def test_threads_read_through_their_own_handles(tmp_path: Path) -> None:
    src = RasterSource(image(tmp_path / "a.tif", 1.0))
    results: dict[int, list[float]] = {}

    def read(k: int) -> None:
        results[k] = [float(src.read(Window(c, r, 8, 8))[0, 0, 0]) for r in range(0, 56, 7) for c in (0, 20)]

    threads = [threading.Thread(target=read, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    expected = [float(r) + 1.0 for r in range(0, 56, 7) for _ in (0, 20)]
    assert all(results[k] == expected for k in range(4))


def test_at_most_limit_files_stay_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(type(_OPEN_FILES), "limit", 3)
    sources = [RasterSource(image(tmp_path / f"{k}.tif", float(k))) for k in range(6)]
    handles = []
    for src in sources:
        src.read(Window(0, 0, 8, 8))
        handles.append(next(ds for key, ds in _OPEN_FILES.datasets.items() if key[0] == str(src.path)))
    assert len(_OPEN_FILES.datasets) <= 3
    assert [h.closed for h in handles] == [True, True, True, False, False, False]
    assert sources[0].read(Window(8, 8, 8, 8))[0, 0, 0] == 8.0  # reopened on demand


def test_reads_bound_gdals_block_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Open files keep their inflated blocks in GDAL's cache, whose default limit grows with the machine's
    memory: while a source reads, the limit is READ_CACHE_BYTES, and afterwards it is what it was."""
    from rasterio._env import get_gdal_config

    from tropicrop.io import rasters

    src = RasterSource(image(tmp_path / "a.tif", 1.0))
    seen: list[object] = []
    real_get = rasters._OPEN_FILES.get

    class Spy:
        def __init__(self, ds: object) -> None:
            self.ds = ds

        def read(self, **kwargs: object) -> np.ndarray:
            seen.append(get_gdal_config("GDAL_CACHEMAX"))
            return self.ds.read(**kwargs)  # type: ignore[attr-defined, no-any-return]

    before = get_gdal_config("GDAL_CACHEMAX")
    monkeypatch.setattr(rasters._OPEN_FILES, "get", lambda path: Spy(real_get(path)))
    src.read(Window(0, 0, 8, 8))
    assert [int(str(v)) for v in seen] == [rasters.READ_CACHE_BYTES]
    assert get_gdal_config("GDAL_CACHEMAX") == before
