"""Tiles read with a context margin: the window on the pooling grid, the whole-scene map when the margin covers
the network's reach, and the --margin option."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from rasterio.windows import Window
from torch import nn

from tiny import DATES, SMALL_NET, tiny_arrays
from tropicrop.classes import ClassTable
from tropicrop.inference import (
    Net,
    RunModels,
    context_window,
    predict_scene,
    predictor_for,
    prepare_for_inference,
    run_margin_alignment,
)
from tropicrop.io.rasters import Grid
from tropicrop.models import build
from tropicrop.models.context import influence
from tropicrop.scene import load_scene
from tropicrop.windows.normalize import Normalizer

MakeScene = Callable[..., Path]


def test_context_window_adds_the_margin_on_the_pooling_grid_and_stops_at_the_border() -> None:
    grid = Grid(100, 90, None, rasterio.Affine.identity())
    assert context_window(Window(30, 20, 32, 32), grid, 16, 8) == Window(8, 0, 72, 72)
    # starts on multiples of 8 (14 -> 8), sizes are multiples of 8 inside the scene, clipped at its edges
    inner = context_window(Window(46, 38, 20, 20), grid, 8, 8)
    assert inner.col_off % 8 == 0 and inner.row_off % 8 == 0 and inner.width % 8 == 0 and inner.height % 8 == 0
    assert inner.col_off <= 38 and inner.col_off + inner.width >= 74 and inner.row_off <= 30
    edge = context_window(Window(70, 60, 30, 30), grid, 24, 8)
    assert (edge.col_off + edge.width, edge.row_off + edge.height) == (100, 90)
    assert context_window(Window(0, 0, 100, 90), grid, 24, 8) == Window(0, 0, 100, 90)


def _models(model: nn.Module) -> RunModels:
    classes = ClassTable.from_names(["Soybean", "Maize", "Soil"])
    return RunModels(classes=classes, normalizer=Normalizer((-14.0, -14.0), (3.0, 3.0)), sequence_length=12,
                     in_channels=2, nets=[Net("all-months", None, predictor_for(model))])


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        out: np.ndarray = ds.read()
    return out


def test_tiles_read_with_the_whole_reach_give_the_whole_scene_map(make_scene: MakeScene, tmp_path: Path) -> None:
    """With a margin covering the receptive field, tiles of 24 and 40 px (uneven offsets, not on the pooling
    grid) give the map and probabilities of one tile over the scene; without a margin they do not."""
    torch.manual_seed(0)
    net = build("vunet_convlstm", 2, num_classes=4, lstm_kernel_size=1, **SMALL_NET).eval()
    models = _models(prepare_for_inference(net, torch.device("cpu")))
    reach = influence(net, 2, 12, 128).receptive
    assert 8 < reach < 48  # a 1x1 recurrent kernel: the U-Net's reach only, so a 100 px scene shows it
    arrays = tiny_arrays(h=100, w=100)
    scene_dir = make_scene(images=arrays["images"], labels=None, split=None)
    scene = load_scene(scene_dir)
    date = [DATES[-1]]
    whole = predict_scene(models, scene, tmp_path / "whole", date, tile=100, overlap=0, margin=0, probabilities=True,
                          progress=False)[0]
    reference, reference_p = _read(whole), _read(tmp_path / "whole" / "probabilities" / whole.name)
    assert len(np.unique(reference)) >= 2
    margin = -(-reach // 8) * 8
    for tile, overlap in ((24, 8), (40, 0)):  # tiles start at 0, 15, 30, 46, 61, 76 and 0, 30, 60
        out = tmp_path / f"t{tile}"
        path = predict_scene(models, scene, out, date, tile=tile, overlap=overlap, margin=margin, probabilities=True,
                             progress=False)[0]
        assert np.array_equal(_read(path), reference), tile
        assert np.abs(_read(out / "probabilities" / path.name).astype(int) - reference_p).max() <= 1
        bare = predict_scene(models, scene, tmp_path / f"bare{tile}", date, tile=tile, overlap=overlap, margin=0,
                             progress=False)[0]
        assert not np.array_equal(_read(bare), reference)  # the test can tell: tiles read alone differ
    assert run_margin_alignment(models) == 8


def test_margin_option_is_auto_or_pixels(capsys: pytest.CaptureFixture[str]) -> None:
    from tropicrop.cli import build_parser

    def parse(value: str) -> int | None:
        margin: int | None = build_parser().parse_args(["predict", "RUN", "SCENE", "--out", "O", "--margin", value]).margin
        return margin

    assert parse("auto") is None and parse("48") == 48 and parse("0") == 0
    assert build_parser().parse_args(["predict", "RUN", "SCENE", "--out", "O"]).margin is None
    with pytest.raises(SystemExit):
        parse("-8")
    assert "is negative" in capsys.readouterr().err
