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
