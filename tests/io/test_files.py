"""Crash-safe writing of whole folders: the old folder stays whole until the new one is complete."""

from __future__ import annotations

from pathlib import Path

import pytest

from tropicrop.io.files import atomic_folder


def test_a_folder_is_replaced_only_when_its_block_completes(tmp_path: Path) -> None:
    out = tmp_path / "scene"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_folder(out) as tmp:
        (tmp / "new.txt").write_text("half")
        raise RuntimeError("killed mid-write")
    assert [p.name for p in tmp_path.iterdir()] == ["scene"]  # no temporary folder left behind
    assert [p.name for p in out.iterdir()] == ["old.txt"]
    with atomic_folder(out) as tmp:
        (tmp / "new.txt").write_text("new")
    assert [p.name for p in tmp_path.iterdir()] == ["scene"]
    assert [p.name for p in out.iterdir()] == ["new.txt"]
