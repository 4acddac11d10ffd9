"""Per-field answers (OUT/parcels.gpkg) and parcel-level scores, against a direct computation."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from shapely.geometry import Polygon, box

from tiny import DATES, TRANSFORM, tiny_arrays
from tropicrop.errors import SceneError
from tropicrop.io import write_geotiff
from tropicrop.parcels import LAYER, evaluate_parcels, parcel_answers, parcel_scores
from tropicrop.scene import TEST, load_scene

MakeScene = Callable[..., Path]
NAMES = ["no reference", "Maize", "Soybean", "Soil"]
H, W = 16, 20
CRS = "EPSG:32723"
# parcels as pixel boxes (row0, row1, col0, col1): on pixel edges, so every covered pixel counts whole
BOXES = [(0, 6, 0, 8), (6, 16, 2, 9), (1, 9, 10, 20), (10, 16, 11, 19)]


def pixel_box(r0: int, r1: int, c0: int, c1: int) -> object:
    x0, y0 = TRANSFORM * (c0, r0)
    x1, y1 = TRANSFORM * (c1, r1)
    return box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def prediction_dir(tmp_path: Path, dates: list[dt.date], probabilities: bool = True) -> tuple[Path, dict[dt.date, np.ndarray],
                                                                                                dict[dt.date, np.ndarray]]:
    """A prediction folder as written by predict: maps (0 = no prediction) and uint8 probabilities."""
    rng = np.random.default_rng(1)
    out = tmp_path / "out"
    maps, probs = {}, {}
    for d in dates:
        codes = rng.choice([1, 2, 3], size=(H, W), p=[0.5, 0.3, 0.2]).astype(np.uint8)
        codes[0:2, 0:4] = 0  # no prediction in a corner of the first parcel
        p = rng.dirichlet(np.ones(3), size=(H, W)).transpose(2, 0, 1)
        scaled = np.round(p * 255).astype(np.uint8)
        scaled[:, codes == 0] = 0
        write_geotiff(out / "maps" / f"{d:%Y%m%d}.tif", codes, CRS, TRANSFORM, nodata=0)
        if probabilities:
            write_geotiff(out / "probabilities" / f"{d:%Y%m%d}.tif", scaled, CRS, TRANSFORM)
            with rasterio.open(out / "probabilities" / f"{d:%Y%m%d}.tif", "r+") as ds:
                ds.scales = (1 / 255,) * 3
        maps[d], probs[d] = codes, scaled.astype(np.float64) / 255
    (out / "classes.json").write_text(json.dumps({"names": NAMES, "merged": []}))
    return out, maps, probs


def write_parcels(path: Path, crs: str = CRS) -> Path:
    frame = gpd.GeoDataFrame({"field_id": [101, 102, 103, 104], "farm": ["a", "a", "b", "b"]},
                             geometry=[pixel_box(*b) for b in BOXES], crs=CRS)
    frame.to_crs(crs).to_file(path)
    return path


def direct_answer(codes: np.ndarray, probs: np.ndarray, b: tuple[int, int, int, int]) -> tuple[int, float, float, int]:
    r0, r1, c0, c1 = b
    zone = codes[r0:r1, c0:c1]
    counts = np.bincount(zone[zone > 0], minlength=4)
    major = int(np.argmax(counts))
    return major, counts[major] / counts.sum(), float(probs[major - 1, r0:r1, c0:c1].mean()), int(counts.sum())


def test_parcel_answers_equal_a_direct_computation(tmp_path: Path) -> None:
    dates = DATES[2:]
    out, maps, probs = prediction_dir(tmp_path, dates)
    path = parcel_answers(out, write_parcels(tmp_path / "parcels.gpkg"))
    result = gpd.read_file(path, layer=LAYER)
    assert len(result) == len(BOXES) * len(dates)
    assert list(result.columns[:3]) == ["parcel", "field_id", "farm"]
    for d in dates:
        rows = result[result["date"] == d.isoformat()].sort_values("parcel")
        for (_, row), b in zip(rows.iterrows(), BOXES, strict=True):
            major, share, probability, pixels = direct_answer(maps[d], probs[d], b)
            assert row["code"] == major and row["class"] == NAMES[major]
            assert row["share"] == pytest.approx(share, abs=1e-6)
            assert row["probability"] == pytest.approx(probability, abs=1e-6)
            assert row["pixels"] == pytest.approx(pixels)


def test_attributes_named_like_answer_columns_are_kept_under_another_name(tmp_path: Path) -> None:
    dates = DATES[3:]
    out, maps, _ = prediction_dir(tmp_path, dates)
    frame = gpd.GeoDataFrame({"parcel": [7, 8, 9, 10], "date": ["2019-11-02"] * 4, "class": ["x"] * 4,
                              "class_input": ["y"] * 4}, geometry=[pixel_box(*b) for b in BOXES], crs=CRS)
    frame.to_file(tmp_path / "own.gpkg")
    result = gpd.read_file(parcel_answers(out, tmp_path / "own.gpkg"), layer=LAYER)
    assert result["parcel_input"].tolist() == [7, 8, 9, 10] * len(dates)
    assert result["date_input"].tolist() == ["2019-11-02"] * 4 * len(dates)
    assert result["class_input"].tolist() == ["y"] * 4 * len(dates)  # the user's own column, untouched
    assert result["class_input_input"].tolist() == ["x"] * 4 * len(dates)
    assert result["parcel"].tolist() == [0, 1, 2, 3] * len(dates)
    assert sorted(set(result["date"])) == [d.isoformat() for d in dates]
    first = result[result["date"] == dates[0].isoformat()]
    assert first["code"].tolist() == [direct_answer(maps[dates[0]], np.zeros((3, H, W)), b)[0] for b in BOXES]


def test_parcels_in_another_crs_are_reprojected(tmp_path: Path) -> None:
    dates = DATES[3:]
    out, _, _ = prediction_dir(tmp_path, dates)
    same = gpd.read_file(parcel_answers(out, write_parcels(tmp_path / "a.gpkg")), layer=LAYER)
    other_path = parcel_answers(out, write_parcels(tmp_path / "b.gpkg", crs="EPSG:4326"))
    other = gpd.read_file(other_path, layer=LAYER)
    assert other.crs == gpd.read_file(tmp_path / "b.gpkg").crs  # answers keep the parcels' own CRS
    # the round trip through degrees moves outlines by far less than a pixel: same classes, near-equal shares
    assert other["code"].tolist() == same["code"].tolist()
    np.testing.assert_allclose(other["share"], same["share"], atol=0.02)
    np.testing.assert_allclose(other["probability"], same["probability"], atol=0.02)


def test_without_probability_files_the_probability_is_nan(tmp_path: Path) -> None:
    out, _, _ = prediction_dir(tmp_path, DATES[3:], probabilities=False)
    result = gpd.read_file(parcel_answers(out, write_parcels(tmp_path / "p.gpkg")), layer=LAYER)
    assert result["probability"].isna().all() and (result["code"] > 0).all()


def test_parcel_scores_count_parcels_by_majority_of_reference_and_map(make_scene: MakeScene, tmp_path: Path) -> None:
    date = DATES[-1]
    # reference: parcel k mostly class ref[k] with a few pixels of another class; the split puts columns >= 10 in test
    ref_classes, map_classes = [1, 2, 3, 1], [1, 2, 2, 3]  # scene codes {1: Soybean, 2: Maize, 3: Soil}
    labels = np.zeros((H, W), np.uint8)
    pred = np.zeros((H, W), np.uint8)
    to_map = {1: 2, 2: 1, 3: 3}  # scene code -> map index (Soybean 2, Maize 1, Soil 3)
    for (r0, r1, c0, c1), ref, got in zip(BOXES, ref_classes, map_classes, strict=True):
        labels[r0:r1, c0:c1] = ref
        labels[r0, c0] = 3 if ref != 3 else 1  # a minority pixel
        pred[r0:r1, c0:c1] = to_map[got]
    scene_path = make_scene(labels={DATES[2]: labels, date: labels}, split=tiny_arrays()["split"])
    out = tmp_path / "out"
    write_geotiff(out / "maps" / f"{date:%Y%m%d}.tif", pred, CRS, TRANSFORM, nodata=0)
    (out / "classes.json").write_text(json.dumps({"names": NAMES, "merged": []}))
    parcels = write_parcels(tmp_path / "parcels.gpkg")
    result = parcel_scores(out, load_scene(scene_path), parcels, TEST, "test")
    [r] = result.dates
    # test split = columns >= 10: parcels 3 (Soil predicted Maize) and 4 (Soybean predicted Soil)
    expected = np.zeros((4, 4), np.int64)
    expected[3, 1] = 1
    expected[2, 3] = 1
    np.testing.assert_array_equal(r.confusion, expected)
    assert r.oa == 0 and r.pixels == 2
    all_parcels = parcel_scores(out, load_scene(scene_path), parcels, None, "all").dates[0]
    assert all_parcels.pixels == 4 and all_parcels.oa == pytest.approx(2 / 4)
    with pytest.raises(SceneError, match="no vector labels"):
        evaluate_parcels(out, scene_path, "test")
    text = evaluate_parcels(out, scene_path, "all", parcels)
    assert "parcel level" in text and (out / "metrics" / "parcel" / "per_date.csv").is_file()


def test_predict_with_a_missing_parcels_file_fails_before_predicting(make_scene: MakeScene, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from tropicrop.cli import main

    code = main(["predict", str(tmp_path / "no-run"), str(make_scene()), "--out", str(tmp_path / "out"),
                 "--parcels", str(tmp_path / "fields.gpkg")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "fields.gpkg: parcels file not found" in err
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------ partial pixels
def _polygon(corners: list[tuple[float, float]]) -> Polygon:
    """A polygon from (row, col) pixel coordinates (fractions allowed)."""
    return Polygon([TRANSFORM * (c, r) for r, c in corners])


def _weighted_answer(codes: np.ndarray, probs: np.ndarray, cover: np.ndarray) -> tuple[int, float, float, float]:
    """Majority class, share, mean probability and pixels with every pixel weighted by ``cover``, the
    fraction of it inside the parcel (computed by hand); no-prediction pixels (0) left out of all but the
    probability mean, as exactextract leaves out no data."""
    weights = np.bincount(codes.ravel(), weights=cover.ravel(), minlength=4)
    weights[0] = 0
    major = int(np.argmax(weights))
    mean = float((probs[major - 1] * cover).sum() / cover.sum())
    return major, weights[major] / weights.sum(), mean, float(weights.sum())


def test_parcel_answers_weight_pixels_cut_by_the_outline_by_their_covered_fraction(tmp_path: Path) -> None:
    """Outlines that cut pixels: a box with slivers of its edge pixels (0.1 of them inside) and a triangle
    whose diagonal halves pixels. In the box the many edge pixels hold one class and the two whole pixels
    another: unweighted, the edge class wins; weighted by coverage (as exactextract does), the centre's."""
    rng = np.random.default_rng(5)
    date = DATES[-1]
    codes = rng.choice([1, 2, 3], size=(H, W)).astype(np.uint8)
    box_cover = np.zeros((H, W))
    rows, cols = np.array([0.1, 1, 1, 0.1]), np.array([0.1, 1, 0.1])
    box_cover[0:4, 0:3] = np.outer(rows, cols)  # box rows 0.9..3.1, cols 0.9..2.1
    codes[0:4, 0:3] = 2
    codes[1:3, 1] = 1  # the two whole pixels
    tri_cover = np.zeros((H, W))
    for i in range(4):
        for j in range(4):  # triangle (4, 4), (4, 8), (8, 4): pixels below its diagonal whole, on it half
            tri_cover[4 + i, 4 + j] = 1.0 if i + j < 3 else 0.5 if i + j == 3 else 0.0
    codes[4, 5] = 0  # a pixel without prediction inside the triangle
    p = rng.dirichlet(np.ones(3), size=(H, W)).transpose(2, 0, 1)
    scaled = np.round(p * 255).astype(np.uint8)
    out = tmp_path / "out"
    write_geotiff(out / "maps" / f"{date:%Y%m%d}.tif", codes, CRS, TRANSFORM, nodata=0)
    write_geotiff(out / "probabilities" / f"{date:%Y%m%d}.tif", scaled, CRS, TRANSFORM)
    with rasterio.open(out / "probabilities" / f"{date:%Y%m%d}.tif", "r+") as ds:
        ds.scales = (1 / 255,) * 3
    (out / "classes.json").write_text(json.dumps({"names": NAMES, "merged": []}))
    outlines = [_polygon([(0.9, 0.9), (0.9, 2.1), (3.1, 2.1), (3.1, 0.9)]), _polygon([(4, 4), (4, 8), (8, 4)])]
    gpd.GeoDataFrame({"field_id": [1, 2]}, geometry=outlines, crs=CRS).to_file(tmp_path / "cut.gpkg")
    result = gpd.read_file(parcel_answers(out, tmp_path / "cut.gpkg"), layer=LAYER).sort_values("parcel")
    unweighted = np.bincount(codes[0:4, 0:3].ravel(), minlength=4)
    assert np.argmax(unweighted) == 2  # counting pixels whole would answer the edge class
    for (_, row), cover in zip(result.iterrows(), (box_cover, tri_cover), strict=True):
        major, share, probability, pixels = _weighted_answer(codes, scaled / 255, cover)
        assert row["code"] == major, (row["code"], major)
        assert row["share"] == pytest.approx(share, rel=1e-6)
        assert row["probability"] == pytest.approx(probability, rel=1e-6)
        assert row["pixels"] == pytest.approx(pixels, rel=1e-6)
    assert result["code"].iloc[0] == 1 and result["pixels"].iloc[0] == pytest.approx(2.64)
