"""The agreement estimate: a run's year-B maps scored against another run's maps of the same year, no label read."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from tiny import quick_config
from tropicrop.agreement import agreement_estimates
from tropicrop.check import check_run
from tropicrop.classes import ClassTable
from tropicrop.cli import main
from tropicrop.errors import ConfigError
from tropicrop.experiments import agreement_references
from tropicrop.layout import PredictionLayout
from tropicrop.scene import Scene
from tropicrop.training import train

DATE = dt.date(2020, 3, 1)
NAMES = ("no reference", "Soybean", "Maize", "Cotton")


def write_maps(out: Path, codes: np.ndarray, names: tuple[str, ...] = NAMES) -> Path:
    """A prediction folder with one map of ``codes`` (uint8, 0 = no data) and its class table."""
    layout = PredictionLayout(out)
    layout.map(DATE).parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(layout.map(DATE), "w", driver="GTiff", width=codes.shape[1], height=codes.shape[0], count=1,
                       dtype="uint8", crs="EPSG:32722", transform=from_origin(500000, 8000000, 10, 10)) as dst:
        dst.write(codes.astype(np.uint8), 1)
    layout.classes.write_text(json.dumps(ClassTable(names=names).to_dict()))
    return out


def test_a_map_agrees_fully_with_itself(tmp_path: Path) -> None:
    codes = np.random.default_rng(0).integers(0, 4, (20, 30))
    run = write_maps(tmp_path / "run", codes)
    row = agreement_estimates(run, [run], [DATE])[0]
    assert row["estimated_oa"] == 1.0 and row["estimated_f1"] == 1.0


def test_agreement_is_the_run_scored_against_the_reference_map(tmp_path: Path) -> None:
    # reference 1 1 2 2 (and a pixel neither maps, and one only the run maps), run 1 2 2 2:
    # Soybean F1 2/3, Maize 4/5 (Cotton is not in the reference: not averaged), OA 3/4
    run = write_maps(tmp_path / "run", np.array([[1, 2, 2, 2, 0, 3]]))
    ref = write_maps(tmp_path / "ref", np.array([[1, 1, 2, 2, 0, 0]]))
    row = agreement_estimates(run, [ref], [DATE])[0]
    assert row["estimated_oa"] == pytest.approx(0.75)
    assert row["estimated_f1"] == pytest.approx((2 / 3 + 4 / 5) / 2)
    both = agreement_estimates(run, [ref, run], [DATE])[0]  # averaged over the references
    assert both["estimated_oa"] == pytest.approx((0.75 + 1.0) / 2) and both["references"] == 2


def test_maps_of_other_class_tables_are_compared_by_class_name(tmp_path: Path) -> None:
    # the reference's codes mean other classes (1 = Maize, 2 = Soybean) and it has one the run lacks (Rice)
    run = write_maps(tmp_path / "run", np.array([[1, 1, 2, 2]]))                      # Soybean Soybean Maize Maize
    ref = write_maps(tmp_path / "ref", np.array([[2, 2, 1, 3]]), ("no reference", "Maize", "Soybean", "Rice"))
    row = agreement_estimates(run, [ref], [DATE])[0]
    assert row["estimated_oa"] == pytest.approx(0.75)             # the Rice pixel is a disagreement
    assert row["estimated_f1"] == pytest.approx((1.0 + 2 / 3 + 0.0) / 3)   # Soybean, Maize, Rice (in the reference)
    other = write_maps(tmp_path / "other", np.ones((1, 4)), ("no reference", "Rice", "Beans"))
    with pytest.raises(ConfigError, match="none in common"):
        agreement_estimates(run, [other], [DATE])


def test_the_references_are_the_other_models_of_the_same_year() -> None:
    records = [{"name": "booster B", "train_on": "b"}, {"name": "net B", "train_on": "b"},
               {"name": "net A", "train_on": "a"}, {"name": "booster A", "train_on": "a"},
               {"name": "net A adapted", "train_on": "a", "adapt": {"base": "net A"}},
               {"name": "ensemble A", "train_on": "a", "mode": "ensemble"},
               {"name": "net A fine-tuned on B", "train_on": "a", "adapt": {"base": "net A", "parcels": 10}}]
    names = {r["name"]: [x["name"] for x in agreement_references(r, records)] for r in records}
    assert names["net B"] == ["booster B"]
    assert names["net A fine-tuned on B"] == ["booster B", "net B"]   # it learnt from year B's labels
    assert names["net A"] == ["booster A"]       # not the adapted run nor the ensemble: not models of their own
    assert names["net A adapted"] == ["booster A"]   # not its own base: the same model


@pytest.fixture(scope="module")
def two_year_a_runs(tiny_pair: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("agreement")
    runs = []
    for seed in (0, 1):
        cfg = quick_config(tiny_pair / "lem1718", **{"trainer.max_epochs": 1, "trainer.steps_per_epoch": 4,
                                                      "optim.lr": 0.01, "data.use": "all", "seed": seed})
        train(cfg, root / f"run{seed}")
        runs.append(root / f"run{seed}")
    return runs[0], runs[1]


def test_check_against_another_run_reads_no_label(two_year_a_runs: tuple[Path, Path], tiny_pair: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    run, other = two_year_a_runs
    year_b = tiny_pair / "lem1920"

    def refuse(self: Scene, *args: object, **kwargs: object) -> np.ndarray:
        raise AssertionError("check read a label or split")

    monkeypatch.setattr(Scene, "read_labels", refuse)
    monkeypatch.setattr(Scene, "read_split", refuse)
    assert main(["check", str(run), str(year_b), "--against", str(other), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["estimator"] == "midpoint" and result["against"] == [str(other)]
    assert 0 <= result["estimated_f1"] <= 1 and 0 <= result["estimated_oa"] <= 1
    for d in result["dates"]:  # the midpoint of the two estimates, both kept beside it
        for key in ("f1", "oa"):
            assert d[f"estimated_{key}"] == pytest.approx((d[f"confidence_{key}"] + d[f"agreement_{key}"]) / 2)
    assert result["estimated_f1"] == pytest.approx((result["confidence_f1"] + result["agreement_f1"]) / 2)
    assert "shift" in result["dates"][0]
    itself = check_run(run, year_b, against=[run], tile=16, estimator="agreement").to_dict()  # full agreement
    assert itself["estimated_oa"] == 1.0 and itself["estimated_f1"] == 1.0
    assert itself["agreement_f1"] == 1.0
    for estimator in ("agreement", "midpoint"):
        with pytest.raises(ConfigError, match="--against"):
            check_run(run, year_b, estimator=estimator)
    with pytest.raises(ConfigError, match="--against"):
        check_run(run, year_b, estimator="atc", against=[other])


def test_auto_scores_a_candidate_halfway_between_its_estimate_and_its_agreement_with_the_others(tmp_path: Path) -> None:
    from tropicrop.adaptation.report import auto_score, candidate_agreement

    rng = np.random.default_rng(1)
    truth = rng.integers(1, 4, (20, 30))
    odd = truth.copy()
    odd[:, :15] = rng.integers(1, 4, (20, 15))  # half of its pixels drawn at random: the one off alone
    maps = {"a": write_maps(tmp_path / "a", truth), "b": write_maps(tmp_path / "b", truth),
            "odd": write_maps(tmp_path / "odd", odd)}
    agreement = candidate_agreement(maps, [DATE])
    assert agreement["a"] == agreement["b"] == pytest.approx((1.0 + agreement_estimates(maps["a"], [maps["odd"]],
                                                                                        [DATE])[0]["estimated_f1"]) / 2)
    assert agreement["odd"] < 0.8 < agreement["a"]
    assert auto_score(0.70, 0.40) == pytest.approx(0.55)
    assert auto_score(0.70, None) == 0.70 and auto_score(0.70, float("nan")) == 0.70  # no other candidate
