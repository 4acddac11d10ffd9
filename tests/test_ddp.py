"""Scale-out: DDP through Lightning on 2 CPU processes (gloo) splits the batches between the ranks and keeps
their weights identical."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent / "scripts" / "ddp_train.py"


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_splits_the_batches_and_ends_with_the_same_weights(tiny_pair: Path,
                                                                                     tmp_path: Path) -> None:
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "PL_DISABLE_FORK": "1", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, str(SCRIPT), str(tiny_pair / "lem1920"), str(tmp_path)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["world"] == ranks[1]["world"] == 2, "two processes took part"
    assert ranks[0]["steps"] == ranks[1]["steps"] == 8, "both ranks made every optimiser step"
    seen = [ranks[r]["batches"] for r in (0, 1)]
    assert len(seen[0]) == len(seen[1]) == 8 and len(set(seen[0])) == len(set(seen[1])) == 8
    assert not set(seen[0]) & set(seen[1]), "each rank trains on batches of its own, not copies of the other's"
    assert ranks[0]["weights"] == ranks[1]["weights"], "DDP keeps the weights in sync"
