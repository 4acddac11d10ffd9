"""Shared fixtures: tiny scenes written in the real on-disk format into pytest's tmp dirs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from affine import Affine

from tropicrop.io import write_scene

CLASSES = {1: "Soybean", 2: "Maize", 3: "Soil"}
DATES = [dt.date(2019, 9, 18), dt.date(2019, 10, 12), dt.date(2019, 11, 17), dt.date(2019, 12, 23)]
TRANSFORM = Affine(10.0, 0.0, 400000.0, 0.0, -10.0, 8660000.0)


def tiny_arrays(h: int = 16, w: int = 20, seed: int = 0) -> dict[str, Any]:
    """Images (T, 2, h, w) in dB, labels for the last two dates and a left/right train/test split."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(-20.0, -8.0, size=(len(DATES), 2, h, w)).astype(np.float32)
    labels = {d: rng.integers(0, 4, size=(h, w)).astype(np.uint8) for d in DATES[2:]}
    split = np.zeros((h, w), dtype=np.uint8)
    split[:, : w // 2] = 1
    split[:, w // 2 :] = 2
    return {"images": images, "labels": labels, "split": split}


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
