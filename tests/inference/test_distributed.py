"""Prediction on a dask.distributed cluster: same maps as one process, a killed worker, no recomputation."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pytest
import rasterio
from distributed import Client, LocalCluster, WorkerPlugin

from tropicrop.errors import RunError
from tropicrop.inference import predict_run
from tropicrop.inference.blocks import plan_blocks, shared_tiles
from tropicrop.inference.distributed import predict_distributed
from tropicrop.inference.tiling import tile_layout
from tropicrop.io.rasters import Grid

MAR, MAY = dt.date(2020, 3, 16), dt.date(2020, 5, 15)
TILING = {"tile": 24, "overlap": 8}  # 64 px scene: 4 x 4 tiles, blocks of 2 x 2 tiles: 4 blocks, 7 shared tiles


@pytest.fixture(scope="module")
def pair(trained_runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The session's all-months run on the tiny pair and its single-process maps (context margin measured on
    the network, as by default), in float32 and in bfloat16 (with the entropy layer), and uncalibrated
    (with the margin layer)."""
    root = tmp_path_factory.mktemp("distributed")
    for precision in ("32", "bf16"):
        predict_run(trained_runs["all"], trained_runs["scene"], root / f"single-{precision}", dates=[MAR, MAY],
                    progress=False, probabilities=True, precision=precision, uncertainty="entropy", **TILING)
    predict_run(trained_runs["all"], trained_runs["scene"], root / "single-raw", dates=[MAR, MAY], progress=False,
                precision="32", calibration="none", uncertainty="margin", **TILING)
    return {"run": trained_runs["all"], "scene": trained_runs["scene"], "other": trained_runs["other_year"],
            **{f"single-{p}": root / f"single-{p}" for p in ("32", "bf16", "raw")}}


@pytest.fixture(scope="module")
def client() -> Any:
    with dask.config.set({"distributed.scheduler.allowed-failures": 3}), \
         LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
         Client(cluster) as c:
        yield c


def read(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        out: np.ndarray = ds.read()
    return out


def same_maps(a: Path, b: Path, folders: tuple[str, ...] = ("maps", "probabilities", "confidence")) -> None:
    for folder in folders:
        for name in ("20200316.tif", "20200515.tif"):
            np.testing.assert_array_equal(read(a / folder / name), read(b / folder / name), err_msg=f"{folder}/{name}")


def test_blocks_cover_every_pixel_once_and_hold_every_tile_that_covers_them() -> None:
    grid = Grid(width=70, height=53, crs=None, transform=None)  # type: ignore[arg-type]
    blocks = plan_blocks(grid, 24, 8, 2)
    cover = np.zeros((53, 70), dtype=int)
    for b in blocks:
        r, c, h, w = b.rect
        cover[r : r + h, c : c + w] += 1
    assert (cover == 1).all()
    th, rows = tile_layout(53, 24, 8)
    tw, cols = tile_layout(70, 24, 8)
    for b in blocks:
        r, c, h, w = b.rect
        touching = [(tr, tc, th, tw) for tr in rows for tc in cols
                    if tr < r + h and tr + th > r and tc < c + w and tc + tw > c]
        assert list(b.tiles) == touching  # all of them, in raster order
    assert shared_tiles(blocks) and len(shared_tiles(blocks)) < len(rows) * len(cols)


@pytest.mark.parametrize("precision", ["32", "bf16"])
def test_two_workers_give_the_single_process_maps_pixel_for_pixel(pair: dict[str, Path], client: Any,
                                                                   tmp_path: Path, precision: str) -> None:
    out = tmp_path / "dask"
    result = predict_distributed(pair["run"], [pair["scene"]], out, dates=[MAR, MAY], probabilities=True, block=2,
                                 progress=False, client=client, precision=precision, uncertainty="entropy", **TILING)
    same_maps(out, pair[f"single-{precision}"], ("maps", "probabilities", "confidence", "uncertainty"))
    log = json.loads((out / "predict.json").read_text())[-1]
    assert log["margin"] > 0 and log["precision"] == json.loads(
        (pair[f"single-{precision}"] / "predict.json").read_text())[-1]["precision"]
    assert result["lem1920"].blocks_computed == 4
    assert not list(out.glob(".blocks-*")) and not list(out.glob(".partial-*"))  # scratch removed


def test_two_workers_write_the_single_process_layers_without_calibration_too(pair: dict[str, Path], client: Any,
                                                                          tmp_path: Path) -> None:
    out = tmp_path / "dask-raw"
    predict_distributed(pair["run"], [pair["scene"]], out, dates=[MAR, MAY], block=2, progress=False, client=client,
                        precision="32", calibration="none", uncertainty="margin", **TILING)
    same_maps(out, pair["single-raw"], ("maps", "confidence", "uncertainty"))
    with rasterio.open(out / "confidence" / "20200316.tif") as ds, rasterio.open(out / "maps" / "20200316.tif") as m:
        assert ds.dtypes == ("uint8",) and ds.nodata == 255
        assert (ds.transform, ds.crs, ds.shape, ds.block_shapes) == (m.transform, m.crs, m.shape, m.block_shapes)
    confidence = read(out / "confidence" / "20200316.tif")
    assert confidence.max() <= 100 and (confidence != read(pair["single-32"] / "confidence" / "20200316.tif")).any()


class DieOnce(WorkerPlugin):
    """Kills the worker process (os._exit) when it starts a task whose key holds ``pattern``; once, or on every
    try with ``always``."""

    def __init__(self, marker: Path, pattern: str, always: bool = False) -> None:
        self.marker, self.pattern, self.always = str(marker), pattern, always

    def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
        if finish == "executing" and self.pattern in str(key) and (self.always or not os.path.exists(self.marker)):
            Path(self.marker).touch()
            os._exit(1)


@pytest.mark.slow
def test_a_worker_killed_mid_run_has_its_blocks_retried_and_the_maps_complete(pair: dict[str, Path],
                                                                              tmp_path: Path) -> None:
    marker = tmp_path / "killed"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
         Client(cluster) as client:
        client.register_plugin(DieOnce(marker, "-block-r0001-c0000"))
        out = tmp_path / "dask"
        predict_distributed(pair["run"], [pair["scene"]], out, dates=[MAR, MAY], probabilities=True, block=2,
                            progress=False, client=client, precision="32", **TILING)
    assert marker.exists()  # a worker did die
    same_maps(out, pair["single-32"])


@pytest.mark.slow
def test_a_rerun_computes_only_the_blocks_that_are_missing(pair: dict[str, Path], client: Any, tmp_path: Path) -> None:
    out = tmp_path / "dask"
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
         LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
         Client(cluster) as dying:
        dying.register_plugin(DieOnce(tmp_path / "killed", "-block-r0001-c0001", always=True))
        with pytest.raises(RunError, match="workers died"):  # the block (and others on that worker) never finish
            predict_distributed(pair["run"], [pair["scene"]], out, dates=[MAR, MAY], probabilities=True, block=2,
                                progress=False, client=dying, precision="32", **TILING)
    left = sorted(p.name for p in out.glob(".blocks-*/*.codes.npy"))
    assert "r0001-c0001.codes.npy" not in left and not list(out.glob("maps/*.tif"))
    # the rerun on a healthy cluster: the module's (a third cluster start would cost two more worker processes)
    result = predict_distributed(pair["run"], [pair["scene"]], out, dates=[MAR, MAY], probabilities=True, block=2,
                                 progress=False, client=client, precision="32", **TILING)
    assert result["lem1920"].blocks_computed == 4 - len(left)
    assert result["lem1920"].blocks_reused == len(left)
    same_maps(out, pair["single-32"])


def test_several_scenes_write_one_folder_each(pair: dict[str, Path], client: Any, tmp_path: Path) -> None:
    out = tmp_path / "both"
    result = predict_distributed(pair["run"], [pair["scene"], pair["other"]], out, dates="all", block=2,
                                 progress=False, client=client, **TILING)
    assert set(result) == {"lem1920", "lem1718"}
    for name in result:
        assert len(list((out / name / "maps").glob("*.tif"))) == len(result[name].maps) > 0


def test_cli_predict_with_workers_passes_precision_and_margin(pair: dict[str, Path], tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from tropicrop.cli import main

    out = tmp_path / "cli"
    args = ["predict", str(pair["run"]), str(pair["scene"]), "--out", str(out), "--dates", "2020-03-16,2020-05-15",
            "--tile", "24", "--overlap", "8", "--probabilities", "--precision", "32", "--workers", "1", "--block", "2"]
    assert main(args) == 0
    assert "4 block(s) computed" in capsys.readouterr().out
    same_maps(out, pair["single-32"])
    assert json.loads((out / "predict.json").read_text())[-1]["margin"] == json.loads(
        (pair["single-32"] / "predict.json").read_text())[-1]["margin"]


def test_workers_get_allocator_thresholds_for_tensors(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dask's nanny freezes glibc's mmap threshold at 128 KiB (MALLOC_TRIM_THRESHOLD_); the worker plugin
    sets thresholds for tile-sized tensors again (1.5x slower blocks without, benchmarks/dask_predict.py)."""
    import ctypes.util
    import platform

    from tropicrop.allocator import keep_freed_memory

    if platform.system() != "Linux" or "glibc" not in (platform.libc_ver()[0] or "") or not ctypes.util.find_library("c"):
        pytest.skip("glibc only")
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")  # what the nanny starts a worker with
    assert keep_freed_memory() is False                     # a user's own setting is kept by the command
    assert keep_freed_memory(respect_environment=False) is True  # the worker plugin sets them anyway
