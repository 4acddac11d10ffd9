"""An adapted run's day-of-year offset (RUN/adaptation.json) as load_run reads it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tropicrop.errors import RunError
from tropicrop.inference.run import read_doy_offset
from tropicrop.layout import RunLayout


def test_a_run_without_adaptation_has_no_offset(tmp_path: Path) -> None:
    assert read_doy_offset(RunLayout(tmp_path)) == 0


def test_the_offset_is_read_from_the_adaptation_record(tmp_path: Path) -> None:
    run = RunLayout(tmp_path)
    run.adaptation.write_text(json.dumps({"methods": ["doy_shift"], "doy_offset": -30}))
    assert read_doy_offset(run) == -30


@pytest.mark.parametrize("text", ['{"doy_offset": "thirty"}', '{"doy_offset": 400}', '{"doy_offset": 1.5}',
                                  "[1, 2]", '{"doy_offset": 3'])
def test_a_bad_adaptation_record_is_refused_naming_the_file(tmp_path: Path, text: str) -> None:
    run = RunLayout(tmp_path)
    run.adaptation.write_text(text)
    with pytest.raises(RunError, match="adaptation.json"):
        read_doy_offset(run)
