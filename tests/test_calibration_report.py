"""The experiment report's calibration section: estimated against true accuracy for every approach."""

from __future__ import annotations

from pathlib import Path

from tropicrop.calibration_report import calibration_lines


def record(name: str, role: str, f1: float, estimated: float) -> dict[str, object]:
    return {"name": name, "slug": name.lower().replace(" ", "-"), "role": role, "ece": 0.1, "brier": 0.2,
            "f1": f1, "oa": 0.5, "estimated_f1": estimated, "estimated_oa": 0.4, "shifted_months": ["2020-04"]}


def test_adapted_rows_self_training_included_show_estimated_next_to_true_f1(tmp_path: Path) -> None:
    records = [record("VUnetConvLSTM", "cross-year", 0.30, 0.25),
               record("VUnetConvLSTM + self-training", "adapted", 0.31, 0.221),
               {"name": "trained before calibration", "slug": "old", "ece": None, "f1": 0.2, "oa": 0.3}]
    lines = calibration_lines(tmp_path, records)
    rows = {line.split(" | ")[0].lstrip("| "): line for line in lines if line.startswith("| VUnet")}
    assert set(rows) == {"VUnetConvLSTM", "VUnetConvLSTM + self-training"}
    assert "| 31.0 | 22.1 |" in rows["VUnetConvLSTM + self-training"]  # true F1, then check's estimate
    assert "self-training raises confidence" in "\n".join(lines)


def test_rows_adapted_without_labels_carry_the_caution(tmp_path: Path) -> None:
    unlabelled = {**record("VUnetConvLSTM + adaptation", "", 0.6, 0.7), "adapt": {"methods": ["year_stats", "self_training"]}}
    fine_tuned = {**record("VUnetConvLSTM, fine-tuned on B", "", 0.6, 0.6), "adapt": {"methods": [], "parcels": 100}}
    text = "\n".join(calibration_lines(tmp_path, [record("Baseline 2", "cross-year", 0.4, 0.5), unlabelled, fine_tuned]))
    assert "| VUnetConvLSTM + adaptation † |" in text
    assert "| VUnetConvLSTM, fine-tuned on B |" in text and "| Baseline 2 |" in text
    assert "VUnetConvLSTM + adaptation (year_stats, self_training)" in text and "rough guide" in text
