"""Evaluation of maps: hand-computed confusion, OA, F1 per class, macro F1 over present classes, name mapping."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tiny import DATES, TRANSFORM, tiny_arrays
from tropicrop.cli import main
from tropicrop.errors import RunError, SceneError
from tropicrop.evaluation import date_confusion, evaluate_predictions
from tropicrop.io import write_geotiff
from tropicrop.scene import TEST, load_scene

MakeScene = Callable[..., Path]
# The map's class table: other codes than the scene's {1: Soybean, 2: Maize, 3: Soil}, Cotton absent from the
# reference, and no Soil (the scene's Soil must count as Other).
MAP_CLASSES = ["no reference", "Maize", "Soybean", "Cotton", "Other"]
MAIZE, SOYBEAN, COTTON, OTHER = 1, 2, 3, 4
DATE = DATES[-1]

# (row, col, scene code, predicted map code); the split puts columns >= 10 in test
TEST_PIXELS = [
    (0, 10, 1, SOYBEAN), (0, 11, 1, SOYBEAN), (0, 12, 1, SOYBEAN), (0, 13, 1, MAIZE),  # Soybean: 3 right, 1 as Maize
    (1, 10, 2, MAIZE), (1, 11, 2, MAIZE), (1, 12, 2, COTTON),                          # Maize: 2 right, 1 as Cotton
    (2, 10, 3, OTHER), (2, 11, 3, SOYBEAN),                                             # Soil -> Other: 1 right, 1 wrong
    (3, 10, 1, 0),                                                                      # no prediction: left out
]
TRAIN_PIXELS = [(5, 2, 2, MAIZE)]


@pytest.fixture
def case(make_scene: MakeScene, tmp_path: Path) -> tuple[Path, Path]:
    """A scene with the pixels above labelled at DATE (and arbitrary labels at DATES[2]), and a map of DATE only."""
    h, w = 16, 20
    labels = np.zeros((h, w), np.uint8)
    pred = np.zeros((h, w), np.uint8)
    for r, c, code, p in TEST_PIXELS + TRAIN_PIXELS:
        labels[r, c], pred[r, c] = code, p
    other = np.random.default_rng(0).integers(0, 4, (h, w)).astype(np.uint8)
    scene = make_scene(labels={DATES[2]: other, DATE: labels}, split=tiny_arrays()["split"])
    out = tmp_path / "out"
    write_geotiff(out / "maps" / f"{DATE:%Y%m%d}.tif", pred, "EPSG:32723", TRANSFORM, nodata=0)
    (out / "classes.json").write_text(json.dumps({"names": MAP_CLASSES, "merged": []}))
    return scene, out


def test_scores_match_the_hand_computed_confusion_matrix(case: tuple[Path, Path]) -> None:
    scene, out = case
    with pytest.warns(UserWarning, match="without a prediction"):
        result = evaluate_predictions(out, scene)
    assert [d.date for d in result.dates] == [DATE]  # the other labelled date has no map
    r = result.dates[0]
    expected = np.zeros((5, 5), np.int64)
    expected[MAIZE, [MAIZE, COTTON]] = [2, 1]
    expected[SOYBEAN, [MAIZE, SOYBEAN]] = [1, 3]
    expected[OTHER, [SOYBEAN, OTHER]] = [1, 1]
    expected[SOYBEAN, 0] = 1  # the unpredicted pixel
    assert np.array_equal(r.confusion, expected)
    assert r.pixels == 9 and r.unpredicted == 1
    assert r.oa == pytest.approx(6 / 9)
    assert r.f1["Maize"] == pytest.approx(2 * 2 / (3 + 3))
    assert r.f1["Soybean"] == pytest.approx(2 * 3 / (4 + 4))
    assert r.f1["Other"] == pytest.approx(2 * 1 / (2 + 1))
    assert np.isnan(r.f1["Cotton"]) and r.support == {"Maize": 3, "Soybean": 4, "Cotton": 0, "Other": 2}
    assert r.macro_f1 == pytest.approx((2 / 3 + 3 / 4 + 2 / 3) / 3)  # Cotton (absent from the reference) excluded


def test_metric_files_hold_the_scores(case: tuple[Path, Path]) -> None:
    scene, out = case
    with pytest.warns(UserWarning):
        evaluate_predictions(out, scene)
    with open(out / "metrics" / "per_date.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert rows == [{"date": DATE.isoformat(), "oa": f"{6 / 9:.6f}", "f1": f"{(2 / 3 + 3 / 4 + 2 / 3) / 3:.6f}", "pixels": "9"}]
    with open(out / "metrics" / "per_class.csv") as fh:
        per_class = {row["class"]: row for row in csv.DictReader(fh)}
    assert per_class["Cotton"] == {"date": DATE.isoformat(), "class": "Cotton", "f1": "nan", "support": "0"}
    assert per_class["Soybean"]["f1"] == "0.750000" and per_class["Soybean"]["support"] == "4"
    with open(out / "metrics" / "confusion" / f"{DATE:%Y%m%d}.csv") as fh:
        matrix = list(csv.reader(fh))
    assert matrix[0] == ["reference \\ prediction", "Maize", "Soybean", "Cotton", "Other"]
    assert matrix[1] == ["Maize", "2", "0", "1", "0"] and matrix[2] == ["Soybean", "1", "3", "0", "0"]
    assert matrix[4] == ["Other", "0", "1", "0", "1"]


def test_split_all_adds_the_train_pixels(case: tuple[Path, Path]) -> None:
    scene, out = case
    with pytest.warns(UserWarning):
        r = evaluate_predictions(out, scene, split="all").dates[0]
    assert r.pixels == 10 and r.support["Maize"] == 4 and r.oa == pytest.approx(7 / 10)
    assert evaluate_predictions(out, scene, split="train").dates[0].pixels == 1


def test_confusion_is_the_same_whatever_the_read_window(case: tuple[Path, Path]) -> None:
    scene_path, out = case
    scene = load_scene(scene_path)
    lookup = np.zeros(256, np.uint8)
    lookup[[1, 2, 3]] = [SOYBEAN, MAIZE, OTHER]
    path = out / "maps" / f"{DATE:%Y%m%d}.tif"
    whole = date_confusion(scene, path, DATE, lookup, 5, TEST)
    assert np.array_equal(date_confusion(scene, path, DATE, lookup, 5, TEST, block=3), whole)


def test_missing_maps_classes_and_split_are_reported(case: tuple[Path, Path], tmp_path: Path,
                                                     make_scene: MakeScene) -> None:
    scene, out = case
    with pytest.raises(RunError, match="holds no classes.json"):
        evaluate_predictions(tmp_path / "empty", scene)
    with pytest.raises(RunError, match="holds no map of a labelled date"):
        evaluate_predictions(tmp_path / "empty", scene, class_names=MAP_CLASSES)
    no_split = make_scene(split=None)
    with pytest.raises(SceneError, match="no split") as exc:
        evaluate_predictions(out, no_split)
    assert "--split all" in str(exc.value)


def test_cli_evaluate_prints_a_table(case: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    scene, out = case
    assert main(["evaluate", str(out), str(scene), "--split", "test"]) == 0  # the warning goes to logging
    text = capsys.readouterr().out
    line = next(ln for ln in text.splitlines() if ln.startswith(DATE.isoformat()))
    assert line.split()[:3] == [DATE.isoformat(), "66.7", "69.4"]
    assert "Cotton" in text and (out / "metrics" / "per_date.csv").is_file()
