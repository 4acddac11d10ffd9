"""``tropicrop check``: accuracy estimated from a scene's images only, never its labels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tiny import quick_config
from tropicrop.check import check_run, sample_mask
from tropicrop.cli import main
from tropicrop.errors import ConfigError
from tropicrop.estimate import _macro_f1, _share_above, _threshold, estimate_date, ks_distance
from tropicrop.io.rasters import Grid
from tropicrop.reliability import LEVELS, Reliability
from tropicrop.scene import Scene, load_scene
from tropicrop.training import train
from tropicrop.valprofile import ValProfile


@pytest.fixture(scope="module")
def year_a_run(tiny_pair: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("check") / "run"
    cfg = quick_config(tiny_pair / "lem1718", **{"trainer.max_epochs": 1, "trainer.steps_per_epoch": 6,
                                                  "optim.lr": 0.01, "data.use": "all"})
    train(cfg, run)
    return run


def test_check_reads_no_label_of_the_scene(year_a_run: Path, tiny_pair: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    year_b = (tiny_pair / "lem1920").resolve()

    def refuse(self: Scene, *args: object, **kwargs: object) -> np.ndarray:
        if Path(self.root).resolve() == year_b:
            raise AssertionError("check read a year-B label or split")
        raise AssertionError("check read a label")

    monkeypatch.setattr(Scene, "read_labels", refuse)
    monkeypatch.setattr(Scene, "read_split", refuse)
    assert main(["check", str(year_a_run), str(year_b), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert 0 <= result["estimated_f1"] <= 1 and 0 <= result["estimated_oa"] <= 1
    assert result["dates"] and {"date", "estimated_f1", "estimated_oa", "shift"} <= set(result["dates"][0])
    assert main(["check", str(year_a_run), str(year_b)]) == 0
    assert "average" in capsys.readouterr().out


def test_check_of_a_sample_maps_only_the_sampled_tiles(year_a_run: Path, tiny_pair: Path) -> None:
    full = check_run(year_a_run, tiny_pair / "lem1920", tile=16).to_dict()
    part = check_run(year_a_run, tiny_pair / "lem1920", sample=0.3, tile=16).to_dict()
    assert part["dates"][0]["pixels"] == pytest.approx(0.3 * full["dates"][0]["pixels"], rel=0.1)
    with pytest.raises(ConfigError, match="sample"):
        check_run(year_a_run, tiny_pair / "lem1920", sample=0.0)


def test_sample_mask_covers_about_the_share_asked() -> None:
    grid = Grid(crs=None, transform=None, width=512, height=512)  # type: ignore[arg-type]
    mask = sample_mask(grid, 0.25, seed=0, tile=128)
    assert mask is not None and mask.mean() == pytest.approx(0.25, abs=0.01)
    assert sample_mask(grid, 1.0, seed=0) is None


def test_atc_threshold_reproduces_the_validation_accuracy() -> None:
    rng = np.random.default_rng(0)
    count = rng.integers(0, 50, LEVELS + 1)
    right = (count * np.linspace(0.3, 1.0, LEVELS + 1)).astype(np.int64)
    cut = _threshold(count, right)
    assert _share_above(count, cut) == pytest.approx(right.sum() / count.sum(), abs=1e-9)


def profile_of(confusion: np.ndarray, by_class: np.ndarray, right: np.ndarray) -> ValProfile:
    return ValProfile(1.0, 0.0, 0.0, by_class, right, confusion, {1: Reliability(by_class.sum(0), right.sum(0))})


@pytest.mark.parametrize("estimator", ["atc", "doc"])
def test_estimate_equals_validation_figures_on_a_scene_like_the_validation_set(estimator: str) -> None:
    levels = np.zeros((2, LEVELS + 1), np.int64)
    levels[0, 90], levels[1, 60] = 100, 100  # class 1 sure and 90 % right, class 2 unsure and 60 % right
    right = np.zeros_like(levels)
    right[0, 90], right[1, 60] = 90, 60
    confusion = np.array([[90, 40], [10, 60]])  # rows reference, columns mapped
    est = estimate_date(profile_of(confusion, levels, right), levels * 3, month=1, estimator=estimator)
    assert est.oa == pytest.approx(0.75)
    truth = 2 * np.array([90, 60]) / (np.array([100, 100]) + confusion.sum(axis=1))
    assert est.f1 == pytest.approx(truth.mean())
    assert est.shift == pytest.approx(0.0) and not est.shifted


@pytest.mark.parametrize("estimator", ["atc", "confidence", "doc"])
def test_estimated_f1_falls_when_the_scene_is_less_confident(estimator: str) -> None:
    levels = np.zeros((2, LEVELS + 1), np.int64)
    levels[:, 50:] = 10
    right = (levels * np.linspace(0, 1, LEVELS + 1)).astype(np.int64)
    profile = profile_of(np.array([[300, 50], [40, 280]]), levels, right)
    shifted = np.zeros_like(levels)
    shifted[:, 40:70] = 10  # the same pixels, less sure
    same, less = estimate_date(profile, levels, 1, estimator), estimate_date(profile, shifted, 1, estimator)
    assert less.oa < same.oa and less.f1 < same.f1 and less.shift > same.shift
    assert ks_distance(levels.sum(0), levels.sum(0)) == 0.0
    assert np.isnan(_macro_f1(np.zeros((2, 2)), np.zeros(2), np.zeros(2)))


def test_doc_moves_the_validation_accuracy_by_the_change_of_mean_confidence() -> None:
    levels = np.zeros((2, LEVELS + 1), np.int64)
    levels[0, 90], levels[1, 60] = 100, 100
    right = np.zeros_like(levels)
    right[0, 90], right[1, 60] = 80, 50  # validation: 65 % right at a mean confidence of 75 %
    scene = np.zeros_like(levels)
    scene[0, 80], scene[1, 50] = 100, 100  # ten points less sure
    est = estimate_date(profile_of(np.array([[80, 50], [20, 50]]), levels, right), scene, 1, "doc")
    assert est.oa == pytest.approx(0.55)


@pytest.mark.slow  # five adaptations and five checks
def test_adapt_auto_keeps_the_candidate_check_estimates_best_without_reading_labels(
        year_a_run: Path, tiny_pair: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tropicrop.adaptation import AdaptOptions, SelfTrainingOptions
    from tropicrop.adaptation.auto import CANDIDATES, adapt_auto

    year_b = Path(load_scene(tiny_pair / "lem1920").root).resolve()
    read_labels = Scene.read_labels

    def refuse(self: Scene, *args: object, **kwargs: object) -> np.ndarray:
        if Path(self.root).resolve() == year_b:  # year A's labels are the run's own (the self-trained refit)
            raise AssertionError("adapt --methods auto read a year-B label")
        return read_labels(self, *args, **kwargs)

    monkeypatch.setattr(Scene, "read_labels", refuse)
    fast = AdaptOptions(adabn_batches=2, adabn_batch_size=4, adabn_patch_size=16, shift_min=-30, shift_max=30,
                        shift_step=30, shift_patches=2, shift_patch_size=16,
                        self_training=SelfTrainingOptions(steps=2, batch_size=4, patch_size=16))
    record = adapt_auto(year_a_run, tiny_pair / "lem1920", tmp_path / "auto", fast)
    candidates = record["auto"]["candidates"]
    assert [tuple(c["methods"]) for c in candidates] == list(CANDIDATES)
    for c in candidates:  # scored halfway between the estimate and the agreement with the other candidates
        assert 0 <= c["agreement_f1"] <= 1 and c["score"] == pytest.approx((c["estimated_f1"] + c["agreement_f1"]) / 2)
    best = max(candidates, key=lambda c: c["score"])
    assert record["auto"]["chosen"] == best["methods"] == record["methods"]
    assert (tmp_path / "auto" / "adaptation.json").is_file() and (tmp_path / "auto" / "result.json").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no candidate left behind


def test_check_cautions_on_a_run_adapted_without_labels(tmp_path: Path) -> None:
    from tropicrop.check import CheckResult, adapted_without_labels, format_check

    assert adapted_without_labels(["year_stats", "few_labels", "self_training"]) == ["year_stats", "self_training"]
    assert adapted_without_labels(["few_labels"]) == [] and adapted_without_labels(None) == []
    result = CheckResult(tmp_path / "run", tmp_path / "scene", "atc", 1.0)
    assert "caution" not in format_check(result.to_dict())
    result.adapted = ["adabn"]
    assert result.to_dict()["adapted_without_labels"] == ["adabn"]
    assert "caution: adapted to the new year without labels (adabn)" in format_check(result.to_dict())
