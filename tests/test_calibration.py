"""Temperature scaling and calibration measures on synthetic logits whose true calibration is known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torchmetrics.functional.classification import binary_calibration_error

from tropicrop.calibration import (
    accuracy_at_coverage,
    brier_score,
    calibrated_probabilities,
    expected_calibration_error,
    fit_temperature,
    top_label,
    top_label_brier,
)
from tropicrop.reliability import Reliability, confidence_levels, write_reliability_png


def sampled(logits: np.ndarray, seed: int = 0) -> np.ndarray:
    """Labels drawn from softmax(logits): a predictor whose probabilities are exactly right."""
    rng = np.random.default_rng(seed)
    p = calibrated_probabilities(logits, 1.0)
    u = rng.random((len(p), 1))
    return np.minimum((p.cumsum(axis=1) < u).sum(axis=1), p.shape[1] - 1)


def true_logits(n: int = 20000, k: int = 5, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 2.0, (n, k))


@pytest.mark.parametrize("objective", ["ece", "brier", "nll"])
def test_fit_temperature_recovers_a_known_temperature(objective: str) -> None:
    z = true_logits()
    labels = sampled(z)
    for known in (0.5, 2.5):  # the network's logits are the calibrated ones times ``known``
        assert fit_temperature(z * known, labels, objective=objective) == pytest.approx(known, rel=0.06)


def test_the_ece_objective_lowers_validation_ece_where_nll_raises_it() -> None:
    # a calibrated predictor plus a few pixels confidently wrong (mixed pixels, label noise): the
    # likelihood softens every pixel to pay for them, the ECE objective keeps the rest calibrated
    z = true_logits()
    labels = sampled(z)
    noisy = labels.copy()
    wrong = np.random.default_rng(1).random(len(z)) < 0.03
    noisy[wrong] = np.argsort(z[wrong], axis=1)[:, 0]  # the least likely class
    def ece(t: float) -> float:
        conf, pred = top_label(calibrated_probabilities(z, t))
        return expected_calibration_error(conf, pred == noisy)
    t_nll, t_ece = fit_temperature(z, noisy, objective="nll"), fit_temperature(z, noisy, objective="ece")
    assert t_nll > t_ece and ece(t_ece) < ece(1.0) < ece(t_nll)
    with pytest.raises(ValueError, match="objective"):
        fit_temperature(z, noisy, objective="kl")


def test_fit_temperature_of_no_sample_is_one() -> None:
    assert fit_temperature(np.zeros((0, 3)), np.zeros(0, np.int64)) == 1.0


def test_fit_temperature_refuses_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="logits"):
        fit_temperature(np.zeros((4, 3)), np.zeros(5, np.int64))


def test_temperature_never_changes_the_class() -> None:
    z = true_logits(2000)
    pred = z.argmax(axis=1)
    for t in (0.1, 0.7, 3.0, 20.0):
        assert (calibrated_probabilities(z, t).argmax(axis=1) == pred).all()


def test_ece_of_a_calibrated_predictor_is_near_zero_and_of_an_overconfident_one_is_not() -> None:
    z = true_logits()
    labels = sampled(z)
    conf, pred = top_label(calibrated_probabilities(z, 1.0))
    assert expected_calibration_error(conf, pred == labels) < 0.015
    over_conf, over_pred = top_label(calibrated_probabilities(z * 3.0, 1.0))
    assert expected_calibration_error(over_conf, over_pred == labels) > 0.1
    scaled_conf, _ = top_label(calibrated_probabilities(z * 3.0, fit_temperature(z * 3.0, labels)))
    assert expected_calibration_error(scaled_conf, over_pred == labels) < 0.015


def test_ece_matches_torchmetrics() -> None:
    rng = np.random.default_rng(1)
    conf, right = rng.uniform(0.2, 1.0, 5000), rng.random(5000) < 0.7
    ours = expected_calibration_error(conf, right, 15)
    theirs = binary_calibration_error(torch.from_numpy(conf), torch.from_numpy(right.astype(np.int64)), n_bins=15)
    assert ours == pytest.approx(float(theirs), abs=1e-6)


def test_brier_scores_of_perfect_and_wrong_predictions() -> None:
    probs = np.eye(3)[[0, 1, 2]]
    assert brier_score(probs, np.array([0, 1, 2])) == 0.0
    assert brier_score(probs, np.array([1, 2, 0])) == 2.0
    assert top_label_brier(np.array([1.0, 0.5]), np.array([True, False])) == pytest.approx(0.125)


def test_accuracy_at_coverage_keeps_the_most_confident() -> None:
    conf = np.array([0.9, 0.8, 0.7, 0.6])
    right = np.array([True, True, False, False])
    assert accuracy_at_coverage(conf, right, 0.5) == 1.0
    assert accuracy_at_coverage(conf, right, 1.0) == 0.5
    with pytest.raises(ValueError):
        accuracy_at_coverage(conf, right, 0.0)


def test_streaming_reliability_agrees_with_the_arrays() -> None:
    z = true_logits(6000, seed=3)
    labels = sampled(z * 2, seed=3)
    conf, pred = top_label(calibrated_probabilities(z, 1.0))
    right = pred == labels
    rel = Reliability()
    for part in np.array_split(np.arange(len(conf)), 3):  # counts of windows add
        rel = rel.merge(_counted(conf[part], right[part]))
    assert rel.pixels == len(conf)
    assert rel.ece() == pytest.approx(expected_calibration_error(conf, right), abs=0.006)
    assert rel.brier() == pytest.approx(top_label_brier(conf, right), abs=0.005)
    assert rel.accuracy_at(0.5) == pytest.approx(accuracy_at_coverage(conf, right, 0.5), abs=0.01)
    assert rel.accuracy_at(1.0) == pytest.approx(right.mean())
    assert Reliability.from_dict(rel.to_dict()).ece() == rel.ece()
    assert sum(rel.diagram()["pixels"]) == len(conf)


def _counted(conf: np.ndarray, right: np.ndarray) -> Reliability:
    rel = Reliability()
    rel.add(confidence_levels(conf), right)
    return rel


def test_reliability_refuses_levels_above_100() -> None:
    with pytest.raises(ValueError, match="levels"):
        Reliability().add(np.array([101], np.uint8), np.array([True]))


def test_reliability_png_is_written(tmp_path: Path) -> None:
    z = true_logits(500)
    conf, pred = top_label(calibrated_probabilities(z, 1.0))
    path = write_reliability_png({"a": _counted(conf, pred == sampled(z))}, tmp_path / "fig" / "rel.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
