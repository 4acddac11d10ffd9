"""The report's readers: a damaged table is named in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tropicrop.errors import RunError
from tropicrop.layout import ExperimentLayout
from tropicrop.report import read_table4

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
