"""Shared fixtures: tiny scenes written in the real on-disk format into pytest's tmp dirs, the tiny
synthetic pair and briefly trained runs, each made once per test session."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from tiny import CLASSES, DATES, TRANSFORM, quick_config, tiny_arrays
from tropicrop.io import write_scene

# One intra-op thread for torch here and (through the environment) in every process a test starts (CLI runs,
# Dask workers): the tests' tensors are tiny, so a second thread buys nothing, and on a shared or busy machine
# its spin-waiting made each training step ~10x slower in wall time and ~14x in CPU time (measured on the
# tiny VUnetConvLSTM step). A test that means threads sets them itself (trainer.threads, Dask's threads=).
os.environ["OMP_NUM_THREADS"] = "1"
torch.set_num_threads(1)

FEB, MAR = dt.date(2020, 2, 21), dt.date(2020, 3, 16)


@pytest.fixture
def make_scene(tmp_path: Path) -> Callable[..., Path]:
    """Factory writing a tiny valid scene folder; keyword arguments override write_scene's."""
    counter = iter(range(1000))

    def make(**overrides: Any) -> Path:
        kwargs: dict[str, Any] = dict(
            name="tiny",
            bands=("VV", "VH"),
            units="dB",
            classes=CLASSES,
            dates=DATES,
            crs="EPSG:32723",
            transform=TRANSFORM,
            **tiny_arrays(),
        )
        kwargs.update(overrides)
        return write_scene(tmp_path / f"scene{next(counter)}", **kwargs)

    return make


@pytest.fixture(scope="session")
def tiny_pair(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny synthetic pair (``lem1718/``, ``lem1920/``, 64 x 64 px), written once; tests only read it."""
    from tropicrop.synthetic import write_pair

    out = tmp_path_factory.mktemp("tiny-pair")
    write_pair(out, preset="tiny", size=64, seed=0)
    return out


@pytest.fixture(scope="session")
def trained_runs(tiny_pair: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An all-months run and a per-month run (February and March) on the tiny pair's 2019/20 scene, trained
    briefly once per session; tests copy them before changing anything."""
    from tropicrop.training import train

    root = tmp_path_factory.mktemp("runs")
    scene = tiny_pair / "lem1920"
    # 12 steps at a high learning rate: cheap, yet the maps hold several classes, so agreement tests mean something
    cfg = quick_config(scene, **{"trainer.max_epochs": 1, "trainer.steps_per_epoch": 12, "optim.lr": 0.01})
    train(cfg, root / "all")
    pm = quick_config(scene, mode="per-month", **{"model.name": "unet_convlstm", "trainer.max_epochs": 1,
                                                 "trainer.steps_per_epoch": 2})
    pm.data.targets = [FEB, MAR]
    train(pm, root / "pm")
    return {"scene": scene, "other_year": tiny_pair / "lem1718", "all": root / "all", "pm": root / "pm"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "torch_threads(n): run the test with n torch intra-op threads instead of 1")


@pytest.fixture(autouse=True)
def torch_threads(request: pytest.FixtureRequest) -> Any:
    """The thread count a ``torch_threads(n)`` marker asks for, for that test only (1 again afterwards)."""
    marker = request.node.get_closest_marker("torch_threads")
    if marker is None:
        yield
        return
    torch.set_num_threads(marker.args[0])
    try:
        yield
    finally:
        torch.set_num_threads(1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that needs a trained run is slow (``make test-fast`` / ``pytest -m "not slow"`` leaves it out)."""
    for item in items:
        if "trained_runs" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
