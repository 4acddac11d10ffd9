"""Scale-out: DDP through Lightning on 2 CPU processes (gloo) keeps the ranks' weights identical."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent / "scripts" / "ddp_train.py"


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_ends_with_the_same_weights_on_both_ranks(tmp_path: Path) -> None:
    from tropicrop.synthetic import write_pair

    write_pair(tmp_path / "pair", preset="tiny", size=64, seed=0)
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "PL_DISABLE_FORK": "1", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "pair" / "lem1920"), str(tmp_path)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    ranks = [(tmp_path / f"rank{r}.txt").read_text().split() for r in (0, 1)]
    assert ranks[0][2] == ranks[1][2] == "2", "two processes took part"
    assert ranks[0][1] == ranks[1][1] == "8", "both ranks made every optimiser step"
    assert ranks[0][0] == ranks[1][0], "DDP keeps the weights in sync"
