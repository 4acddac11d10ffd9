"""Full-scene prediction: georeferenced COG maps, seamless blending, exactness, crash safety, per-month runs."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import torch

from tiny import SMALL_NET, drop_image
from tropicrop import inference
from tropicrop.classes import ClassTable
from tropicrop.cli import main
from tropicrop.errors import RunError, SceneError
from tropicrop.inference import (
    BlendSums,
    Net,
    RunModels,
    check_dates,
    class_map,
    default_dates,
    load_run,
    net_probabilities,
    parse_dates,
    predict_run,
    predictor_for,
    ramp,
    tile_layout,
    tile_weights,
)
from tropicrop.io.rasters import Grid
from tropicrop.models import build
from tropicrop.scene import load_scene
from tropicrop.training import CropModule, predict_classes
from tropicrop.windows.dates import target_window
from tropicrop.windows.normalize import Normalizer

MakeScene = Callable[..., Path]
FEB, MAR, MAY = dt.date(2020, 2, 21), dt.date(2020, 3, 16), dt.date(2020, 5, 15)


@pytest.fixture
def runs(trained_runs: dict[str, Path]) -> dict[str, Path]:
    """The session's tiny pair and trained runs (conftest.trained_runs)."""
    return trained_runs


def read_map(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        out: np.ndarray = ds.read(1)
    return out


# ------------------------------------------------------------------------------------------ tiling and weights
def test_tiles_cover_the_scene_evenly_with_at_least_the_overlap() -> None:
    assert tile_layout(64, 32, 16) == (32, [0, 16, 32])
    assert tile_layout(64, 48, 16) == (40, [0, 24])
    assert tile_layout(1024, 256, 32) == (232, [0, 198, 396, 594, 792])
    assert tile_layout(100, 256, 32) == (100, [0])  # a scene smaller than a tile is one tile
    for size, tile, overlap in ((1000, 256, 32), (257, 256, 32), (90, 40, 0), (4096, 256, 32), (333, 64, 16)):
        length, starts = tile_layout(size, tile, overlap)
        covered = np.zeros(size, bool)
        for s in starts:
            covered[s : s + length] = True
        assert covered.all() and starts[0] == 0 and starts[-1] + length == size and length <= tile
        assert all(b - a <= length - overlap for a, b in itertools.pairwise(starts))


def test_ramps_are_positive_sum_to_one_over_the_overlap_and_spare_the_scene_border() -> None:
    w = ramp(32, 8, rise=True, fall=True)
    assert (w > 0).all() and w[8:24].tolist() == [1.0] * 16 and w[0] < 0.01 and w[-1] < 0.01
    assert (np.diff(w[:8]) >= 0).all() and (np.diff(w[24:]) <= 0).all()
    left, right = ramp(32, 8, rise=False, fall=True), ramp(32, 8, rise=True, fall=False)
    assert left[0] == 1.0 and right[-1] == 1.0
    np.testing.assert_allclose(left[24:] + right[:8], 1.0, atol=2e-3)  # two tiles 24 px apart
    grid = Grid(64, 64, None, rasterio.Affine.identity())
    assert (tile_weights(rasterio.windows.Window(0, 0, 64, 64), grid, 16) == 1).all()


def test_blending_one_tile_that_covers_the_scene_returns_its_probabilities_exactly() -> None:
    rng = np.random.default_rng(0)
    probs = torch.softmax(torch.from_numpy(rng.normal(size=(2, 5, 24, 40)).astype(np.float32)), dim=1).numpy()
    grid = Grid(40, 24, None, rasterio.Affine.identity())
    sums = BlendSums(2, 5, 24, 40)
    weight = tile_weights(rasterio.windows.Window(0, 0, 40, 24), grid, 8)
    sums.weight += weight
    for slot in range(2):
        sums.add(slot, probs[slot], weight, np.ones((24, 40), bool))
    blended, valid = sums.probabilities(slice(None), slice(None))
    assert valid.all() and np.array_equal(blended, probs)
    sums.shift_left(30)
    assert np.array_equal(sums.acc[..., :10], (probs * weight)[..., 30:]) and not sums.acc[..., 10:].any()
    assert not sums.weight[:, 10:].any() and not sums.seen[..., 10:].any()
    small = BlendSums(1, 2, 3, 10)  # a shift smaller than half the block: copied in several blocks
    small.acc[:] = np.arange(10, dtype=np.float32)
    small.shift_left(3)
    assert small.acc[0, 1, 2].tolist() == [3, 4, 5, 6, 7, 8, 9, 0, 0, 0]


def whole_scene_blend(models: RunModels, scene_dir: Path, dates: list[dt.date], tile: int, overlap: int,
                      margin: int | None = None) -> np.ndarray:
    """Reference for the streaming blender: every tile added into sums over the whole scene (row-major, the
    same order of additions), then divided once. Class codes (dates, H, W)."""
    scene = load_scene(scene_dir)
    grid = scene.grid
    plans = inference.make_plans(models, scene, dates)
    th, rows = tile_layout(grid.height, tile, overlap)
    tw, cols = tile_layout(grid.width, tile, overlap)
    total = BlendSums(len(plans), models.classes.num_classes, grid.height, grid.width)
    # what predict_run uses on the same networks: the measured margin, or the one given
    context = inference.run_margin(models) if margin is None else (margin, inference.run_margin_alignment(models))
    with torch.inference_mode():
        for r, c in itertools.product(rows, cols):
            window = rasterio.windows.Window(c, r, tw, th)
            sums = BlendSums(len(plans), models.classes.num_classes, th, tw)
            inference.predict_tile(models, scene, window, plans, tile_weights(window, grid, overlap), sums, context)
            total.add_block(sums, slice(r, r + th), slice(c, c + tw), slice(None))
    probs, valid = total.probabilities(slice(None), slice(None))
    return class_map(probs, valid)


@pytest.mark.parametrize(("tile", "overlap", "margin"), [(24, 8, None), (32, 16, None), (40, 0, None), (32, 16, 0)])
def test_streaming_blend_equals_blending_over_the_whole_scene_exactly(runs: dict[str, Path], tmp_path: Path,
                                                                      tile: int, overlap: int, margin: int | None) -> None:
    """Only a band of rows and one tile's block are held, finished column by column; the maps are
    identical to summing every tile over the whole scene (uneven overlaps: 64 px in tiles of 24 start at
    0, 13, 27, 40), with the measured context margin (None) and with tiles read alone (0)."""
    dates = [FEB, MAY]
    paths = predict_run(runs["all"], runs["scene"], tmp_path / f"t{tile}", dates=dates, tile=tile, overlap=overlap,
                        progress=False, margin=margin)
    expected = whole_scene_blend(load_run(runs["all"]), runs["scene"], dates, tile, overlap, margin)
    for path, codes in zip(paths, expected, strict=True):
        assert np.array_equal(read_map(path), codes)
    assert len(np.unique(expected)) > 2  # the maps hold several classes, so the comparison means something


@pytest.mark.parametrize("padding", ["mask", "zeros"])
def test_shared_encoding_gives_the_forward_pass_of_every_window(padding: str) -> None:
    """Encoding each date once and decoding many windows equals model(images) window by window."""
    torch.manual_seed(0)
    model = build("vunet_convlstm", 2, num_classes=4, padding=padding, **SMALL_NET).eval()
    dates = [dt.date(2019, m, 10) for m in range(1, 13)] + [dt.date(2020, m, 10) for m in range(1, 5)]
    frames = torch.randn(len(dates), 2, 24, 24)
    net = Net("all-months", None, predictor_for(model))
    plans = [inference.Plan(d, k, net, target_window(dates, d, 12)) for k, d in enumerate(dates[3:])]
    with torch.inference_mode():
        shared = dict(net_probabilities(model, frames, {i: i for i in range(len(dates))}, plans, batch=3))
        for plan in plans:
            idx = torch.from_numpy(plan.window.indices)
            images = torch.where((idx >= 0).view(-1, 1, 1, 1), frames[idx.clamp_min(0)], 0.0)[None]
            doy = torch.from_numpy(plan.window.doy)[None]
            valid = torch.from_numpy(plan.window.valid)[None]
            expected = torch.softmax(model(images, doy, valid), dim=1)[0]
            torch.testing.assert_close(shared[plan], expected, atol=1e-5, rtol=1e-4)


# ------------------------------------------------------------------------------------------ maps
def test_maps_are_georeferenced_uint8_cogs_with_a_colour_table_and_a_quicklook(runs: dict[str, Path], tmp_path: Path) -> None:
    from rio_cogeo.cogeo import cog_validate

    out = tmp_path / "out"
    paths = predict_run(runs["all"], runs["scene"], out, tile=32, overlap=16, progress=False, probabilities=True)
    scene = load_scene(runs["scene"])
    assert [p.name for p in paths] == [f"{d:%Y%m%d}.tif" for d in scene.labelled_dates]
    names = json.loads((runs["all"] / "classes.json").read_text())["names"]
    assert json.loads((out / "classes.json").read_text())["names"] == names
    for path in paths:
        with rasterio.open(path) as ds:
            assert (ds.width, ds.height) == (scene.grid.width, scene.grid.height)
            assert ds.crs == scene.grid.crs and ds.transform.almost_equals(scene.grid.transform)
            assert ds.dtypes == ("uint8",) and ds.nodata == 0 and ds.profile["tiled"]
            assert ds.colormap(1)[0][3] == 0 and len({ds.colormap(1)[i] for i in range(1, len(names))}) == len(names) - 1
            codes = ds.read(1)
        assert codes.min() >= 1 and codes.max() < len(names)
        valid, errors, _ = cog_validate(str(path))
        assert valid, errors
        assert path.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        prob = out / "probabilities" / path.name
        with rasterio.open(prob) as ds:
            assert ds.count == len(names) - 1 and list(ds.descriptions) == names[1:]
            p = ds.read().astype(int)
        assert np.abs(p.sum(axis=0) - 255).max() <= len(names)  # rounded shares of 255
        mapped = np.take_along_axis(p, codes[None].astype(int) - 1, axis=0)[0]
        assert (mapped >= p.max(axis=0) - 1).all()  # the map's class is the most probable one (up to rounding)
        assert cog_validate(str(prob))[0]
    if shutil.which("gdalinfo"):
        info = json.loads(subprocess.run(["gdalinfo", "-json", str(paths[0])], capture_output=True, text=True, check=True).stdout)
        assert info["metadata"]["IMAGE_STRUCTURE"]["LAYOUT"] == "COG"


def test_two_tile_sizes_give_the_same_map(runs: dict[str, Path], tmp_path: Path) -> None:
    # 32 px tiles are 4 x 4 cells at the ConvLSTM's 1/8 resolution, all near a tile edge: they need a wide overlap
    small = predict_run(runs["all"], runs["scene"], tmp_path / "t32", tile=32, overlap=24, progress=False)
    large = predict_run(runs["all"], runs["scene"], tmp_path / "t48", tile=48, overlap=24, progress=False)
    for a, b in zip(small, large, strict=True):
        ma, mb = read_map(a), read_map(b)
        assert len(np.unique(ma)) >= 2, "the map is one class: the agreement would mean nothing"
        assert (ma == mb).mean() >= 0.995, a.name


def test_a_tile_covering_the_scene_equals_one_whole_scene_forward_pass(runs: dict[str, Path], tmp_path: Path) -> None:
    paths = predict_run(runs["all"], runs["scene"], tmp_path / "one", tile=64, overlap=16, progress=False)
    scene = load_scene(runs["scene"])
    module = CropModule.load_from_checkpoint(runs["all"] / "nets" / "all-months" / "checkpoints" / "best.ckpt",
                                             map_location="cpu").eval()
    norm = Normalizer.from_dict(module.hparams["normalization"])
    images = torch.from_numpy(norm(scene.read_images()))
    for date, path in zip(scene.labelled_dates, paths, strict=True):
        win = target_window(scene.dates, date, 12)
        idx = torch.from_numpy(win.indices)
        x = torch.where((idx >= 0).view(-1, 1, 1, 1), images[idx.clamp_min(0)], 0.0)[None]
        with torch.inference_mode():
            logits = module(x, torch.from_numpy(win.doy)[None], torch.from_numpy(win.valid)[None])
        assert np.array_equal(read_map(path), predict_classes(logits)[0].numpy().astype(np.uint8)), date


# ------------------------------------------------------------------------------------------ crash safety
def test_interrupted_predict_leaves_no_partial_map_and_a_rerun_finishes_the_missing_dates(
    runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    scene = load_scene(runs["scene"])
    dates = scene.labelled_dates[:3]

    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("killed while streaming")

    monkeypatch.setattr(inference.mapfiles.ScratchMaps, "write", crash)  # dies mid-way through the scene
    with pytest.raises(RuntimeError):
        predict_run(runs["all"], scene, out, dates=dates, tile=32, overlap=16, progress=False)
    monkeypatch.undo()
    assert not list(out.glob("maps/*")) and not list(out.glob(".partial-*"))

    real_quicklook = inference.mapfiles.write_quicklook
    calls = []

    def crash_on_second(*args: Any, **kwargs: Any) -> Path:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("killed while writing the second map")
        return real_quicklook(*args, **kwargs)

    monkeypatch.setattr(inference.mapfiles, "write_quicklook", crash_on_second)
    with pytest.raises(RuntimeError):
        predict_run(runs["all"], scene, out, dates=dates, tile=32, overlap=16, progress=False)
    monkeypatch.undo()
    first = out / "maps" / f"{dates[0]:%Y%m%d}.tif"
    assert sorted(p.name for p in (out / "maps").iterdir()) == [first.with_suffix(".png").name, first.name]
    assert not list(out.glob(".partial-*"))
    stamp = first.stat().st_mtime_ns

    predicted: list[dt.date] = []
    real_stream = inference.stream.stream_plans

    def spy(models: Any, scene: Any, out: Path, plans: list[Any], *args: Any) -> list[dt.date]:
        predicted.extend(p.date for p in plans)
        return real_stream(models, scene, out, plans, *args)

    monkeypatch.setattr(inference.predict, "stream_plans", spy)
    paths = predict_run(runs["all"], scene, out, dates=dates, tile=32, overlap=16, progress=False)
    assert predicted == dates[1:]
    assert all(p.is_file() for p in paths) and first.stat().st_mtime_ns == stamp
    assert not [p for p in (out / "maps").iterdir() if p.name.startswith(".")]


def test_dates_beyond_the_memory_budget_are_predicted_in_groups_with_the_same_result(
    runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    together = predict_run(runs["all"], runs["scene"], tmp_path / "one", dates=[MAR, MAY], tile=48, overlap=16,
                           progress=False)
    monkeypatch.setattr(inference.predict, "BUFFER_BYTES", 1)  # one date per pass
    apart = predict_run(runs["all"], runs["scene"], tmp_path / "two", dates=[MAR, MAY], tile=48, overlap=16,
                        progress=False)
    assert len(json.loads((tmp_path / "two" / "predict.json").read_text())) == 2
    for a, b in zip(together, apart, strict=True):
        assert np.array_equal(read_map(a), read_map(b))


# ------------------------------------------------------------------------------------------ runs and options
def test_per_month_run_predicts_another_year_with_the_net_of_the_same_month(runs: dict[str, Path], tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="no per-month model for 2018-01-14"):
        paths = predict_run(runs["pm"], runs["other_year"], tmp_path / "pm", tile=48, overlap=16, progress=False)
    assert [p.name for p in paths] == ["20180219.tif", "20180315.tif"]
    log = json.loads((tmp_path / "pm" / "predict.json").read_text())[-1]
    assert log["nets"] == {"2018-02-19": FEB.isoformat(), "2018-03-15": MAR.isoformat()}
    with pytest.raises(RunError, match="no per-month model for May"):
        predict_run(runs["pm"], runs["scene"], tmp_path / "pm2", dates=[MAY], progress=False)


def test_nearest_day_of_year_breaks_ties_between_nets_of_one_month() -> None:
    model = torch.nn.Identity()
    nets = [Net(d.isoformat(), d, predictor_for(model)) for d in (dt.date(2020, 3, 2), dt.date(2020, 3, 28))]
    models = RunModels(classes=ClassTable.from_names(["A"]), normalizer=Normalizer((0.0,), (1.0,)),
                       sequence_length=12, in_channels=2, nets=nets)
    assert models.net_for(dt.date(2017, 3, 20)).name == "2020-03-28"
    assert models.net_for(dt.date(2017, 3, 10)).name == "2020-03-02"


def test_aoi_skips_tiles_outside_it_and_leaves_nodata_there(runs: dict[str, Path], tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    aoi = np.zeros((64, 64), bool)
    aoi[:, :20] = True
    full = read_map(predict_run(runs["all"], runs["scene"], tmp_path / "full", dates=[MAY], tile=32, overlap=16,
                                progress=False)[0])
    tiles = []
    real = inference.stream.predict_tile
    monkeypatch.setattr(inference.stream, "predict_tile", lambda *a: tiles.append(a[2]) or real(*a))
    part = read_map(predict_run(runs["all"], runs["scene"], tmp_path / "aoi", dates=[MAY], tile=32, overlap=16,
                                progress=False, aoi=aoi)[0])
    assert len(tiles) == 6 and all(t.col_off < 20 for t in tiles)  # 3 tile rows x the 2 tile columns touching it
    assert (part[~aoi] == 0).all() and np.array_equal(part[aoi], full[aoi])


def test_bad_inputs_raise_errors_that_name_the_file(runs: dict[str, Path], tmp_path: Path, make_scene: MakeScene) -> None:
    with pytest.raises(RunError, match="run directory not found"):
        predict_run(tmp_path / "nope", runs["scene"], tmp_path / "o")
    unfinished = tmp_path / "unfinished"
    shutil.copytree(runs["all"], unfinished)
    (unfinished / "result.json").unlink()
    with pytest.raises(RunError, match="unfinished run"):
        predict_run(unfinished, runs["scene"], tmp_path / "o")
    with pytest.raises(SceneError, match="2020-05-16 is not an acquisition date"):
        predict_run(runs["all"], runs["scene"], tmp_path / "o", dates=[dt.date(2020, 5, 16)], progress=False)
    from tiny import tiny_arrays

    images = np.concatenate([tiny_arrays()["images"]] * 2, axis=1)[:, :3]
    three = make_scene(bands=("VV", "VH", "HH"), images=images)
    with pytest.raises(SceneError, match=r"has 3 band\(s\).*trained on 2") as exc:
        predict_run(runs["all"], three, tmp_path / "o", progress=False)
    assert str(three / "scene.yaml") in str(exc.value)


def test_default_dates_without_labels_are_those_with_a_full_window(make_scene: MakeScene) -> None:
    scene = load_scene(make_scene(labels={}))
    assert default_dates(scene, length=3) == scene.dates[2:]
    with pytest.raises(SceneError, match="no date has 12 acquisitions"):
        default_dates(scene)


def test_a_month_without_image_is_never_a_target(make_scene: MakeScene) -> None:
    path = make_scene(labels={})
    drop_image(path, 1)
    drop_image(path, 3)
    scene = load_scene(path)
    assert default_dates(scene, length=3) == [scene.dates[2]]  # date 3 is late enough but has no image
    assert parse_dates("all", scene) == [scene.dates[i] for i in (0, 2)]
    with pytest.raises(SceneError, match="has no image"):
        check_dates(scene, [scene.dates[1]], 12)
    assert check_dates(scene, [scene.dates[2]], 12) == [scene.dates[2]]


def test_cli_predict_writes_the_requested_dates(runs: dict[str, Path], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    args = ["predict", str(runs["all"]), str(runs["scene"]), "--out", str(out), "--dates", f"{MAR},{MAY}", "--tile", "48",
            "--overlap", "8"]
    assert main(args) == 0
    assert sorted(p.name for p in (out / "maps").glob("*.tif")) == ["20200316.tif", "20200515.tif"]
    assert "2 map(s)" in capsys.readouterr().out
    assert main(["predict", str(runs["all"]), str(runs["scene"]), "--out", str(out), "--tile", "16", "--overlap", "16"]) == 2
    assert "overlap 16 must be in [0, tile)" in capsys.readouterr().err


def test_bf16_prediction_agrees_with_float32_and_the_log_records_the_precision(runs: dict[str, Path],
                                                                               tmp_path: Path) -> None:
    """``--precision bf16`` runs the networks under bf16 autocast (even where bf16 is emulated): the maps are
    nearly those of float32, and predict.json says which precision made them."""
    maps = {}
    for prec in ("32", "bf16"):
        assert main(["predict", str(runs["all"]), str(runs["scene"]), "--out", str(tmp_path / prec), "--dates",
                     f"{FEB},{MAY}", "--precision", prec]) == 0
        maps[prec] = np.stack([read_map(p) for p in sorted((tmp_path / prec / "maps").glob("*.tif"))])
        assert json.loads((tmp_path / prec / "predict.json").read_text())[-1]["precision"] == prec
    assert len(np.unique(maps["32"])) > 2
    agreement = (maps["32"] == maps["bf16"]).mean()
    assert agreement >= 0.995, f"bf16 maps agree with float32 on {100 * agreement:.2f} % of pixels (goal 99.5 %)"
