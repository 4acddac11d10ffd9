"""Report tables and figures: an irregular acquisition calendar (several dates a month, a gap), and a damaged
table named in one line."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pytest

from tropicrop.errors import RunError
from tropicrop.layout import ExperimentLayout
from tropicrop.report import per_date_figure, per_date_table, plot_per_date, read_table4

# three acquisitions in November, none in December
DATES = ["2019-10-30", "2019-11-05", "2019-11-17", "2019-11-29", "2020-01-16"]
PER_DATE = {
    "Baseline 1": {d: (0.5 + 0.05 * i, 0.4 + 0.05 * i) for i, d in enumerate(DATES)},
    "VUnetConvLSTM": {d: (0.6 - 0.05 * i, 0.3 + 0.02 * i) for i, d in enumerate(DATES) if d != "2019-11-17"},
}


def test_per_date_figure_places_each_date_at_its_day_not_its_month() -> None:
    fig = per_date_figure(PER_DATE, 1, "F1")
    ax = fig.axes[0]
    days = mdates.date2num([dt.date.fromisoformat(d) for d in DATES])
    for line, (name, rows) in zip(ax.get_lines(), PER_DATE.items(), strict=True):
        x = np.asarray(line.get_xdata(), dtype=float)
        np.testing.assert_allclose(x, days)  # the November points sit 6 and 12 days apart, not on one position
        y = np.asarray(line.get_ydata(), dtype=float)
        expected = [100 * rows[d][1] if d in rows else np.nan for d in DATES]
        np.testing.assert_allclose(y, expected)
        assert line.get_label() == name
    assert np.diff(days).tolist() == [6, 12, 12, 48]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert any("Nov" in t for t in labels) and any("Jan" in t or "2020" in t for t in labels), labels
    plt.close(fig)


def test_per_date_figure_of_a_single_date_has_a_readable_axis(tmp_path: Path) -> None:
    path = plot_per_date({"A": {"2019-11-05": (0.5, 0.4)}}, 0, "OA", tmp_path / "oa.png")
    assert path.stat().st_size > 1000


def test_per_date_table_keeps_one_column_per_date() -> None:
    lines = per_date_table(PER_DATE)
    assert lines[0] == "| approach | " + " | ".join(DATES) + " |"
    assert all(line.count("|") == len(DATES) + 2 for line in lines)
    vunet_f1 = next(line for line in lines if line.startswith("| VUnetConvLSTM F1"))
    assert vunet_f1.split("|")[1 + 1 + DATES.index("2019-11-17")].strip() == ""  # the missing date stays empty


HEADER = "approach,f1,oa,train_hours,train_seconds,nets,model,parameters,predict_seconds\n"


@pytest.mark.parametrize("row, ok", [
    ("U-TAE,0.5,0.6,0.001,3.6,1,utae,1234,2.5\n", True),
    ("old,0.5,0.6,0.001,3.6,1,,,\n", True),  # a table written before model/parameters/prediction seconds
    ("U-TAE,0.5,0.6,0.001,3.6,1,utae,many,2.5\n", False),
    ("U-TAE,0.5,0.6,0.001,3.6,1,utae,1234,soon\n", False),
])
def test_table4_with_model_columns_is_read_or_named_in_one_line(tmp_path: Path, row: str, ok: bool) -> None:
    ExperimentLayout(tmp_path).table4.write_text(HEADER + row)
    if ok:
        assert read_table4(tmp_path)[0]["approach"] == row.split(",")[0]
    else:
        with pytest.raises(RunError, match="table4.csv"):
            read_table4(tmp_path)


def _record(name: str, role: str, seconds: float, stopped: list[str]) -> dict[str, object]:
    nets = {f"net{i}": {"train_patches": 40, "length": 5, "unit": "epochs", "best_val_f1": 0.5, "stopped_by": s}
            for i, s in enumerate(stopped)}
    return {"name": name, "role": role, "f1": 0.4, "oa": 0.5, "nets": len(nets), "train_seconds": seconds,
            "val_f1": 0.5, "net_training": nets}


def test_a_time_ratio_of_nets_that_reached_the_cap_is_called_a_bound() -> None:
    from tropicrop.report import CROSS_YEAR, PROPOSED, findings, training_section

    early = [_record("B2", CROSS_YEAR, 100.0, ["early stopping"] * 3), _record("V", PROPOSED, 20.0, ["early stopping"])]
    capped = [early[0], _record("V", PROPOSED, 20.0, ["cap"])]
    ratio = next(line for line in findings(early, {}) if "training time" in line)
    assert "0.200" in ratio and "bound" not in ratio
    ratio = next(line for line in findings(capped, {}) if "training time" in line)
    assert "a bound, not a finding: nets of V reached the step cap" in ratio
    table = training_section(capped)
    assert any(line.startswith("| B2 | 3 |") and "| 3 of 3 |" in line for line in table)
    assert any(line.startswith("| V | 1 |") and "| 0 of 1 |" in line for line in table)
    assert any("Some nets of V reached the config's cap" in line for line in table)
    assert not any("reached the config's cap" in line for line in training_section(early))
