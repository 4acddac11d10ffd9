"""trainer.parallel_nets: a per-month run's nets trained side by side, each in a process of its own."""

from __future__ import annotations

import datetime as dt
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from tiny import quick_config
from tropicrop.config import to_dict
from tropicrop.errors import RunError
from tropicrop.training import TrainConfig, train
from tropicrop.training.parallel import side_by_side

TARGETS = [dt.date(2020, 2, 21), dt.date(2020, 3, 16), dt.date(2020, 4, 21)]


def _per_month(scene: Path, **overrides: object) -> TrainConfig:
    cfg = quick_config(scene, mode="per-month", **{"model.name": "unet_convlstm", "trainer.max_epochs": 2,
                                                    "trainer.steps_per_epoch": 3, **overrides})
    cfg.data.targets = list(TARGETS)
    return cfg


def _weights(run: Path, net: str) -> dict[str, torch.Tensor]:
    return torch.load(run / "nets" / net / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)["state_dict"]


def test_side_by_side_only_where_it_applies(tiny_pair: Path) -> None:
    nets = [(str(t), [[t]]) for t in TARGETS]
    cfg = _per_month(tiny_pair / "lem1920", **{"trainer.parallel_nets": 2})
    assert side_by_side(cfg, nets) == 2 and side_by_side(cfg, nets[:1]) == 1  # one net: nothing to share
    assert side_by_side(_per_month(tiny_pair / "lem1920", **{"trainer.parallel_nets": 8}), nets) == 3
    assert side_by_side(_per_month(tiny_pair / "lem1920"), nets) == 1  # the default: one after another
    gpu = _per_month(tiny_pair / "lem1920", **{"trainer.parallel_nets": 2, "trainer.accelerator": "gpu"})
    assert side_by_side(gpu, nets) == 1
    booster = _per_month(tiny_pair / "lem1920", **{"trainer.parallel_nets": 2, "model.name": "lightgbm"})
    assert side_by_side(booster, nets) == 1  # a booster has its own threads


def test_a_user_error_crosses_the_process_boundary_as_itself() -> None:
    err = pickle.loads(pickle.dumps(RunError("/runs/x", "holds no net", "train one first")))
    assert isinstance(err, RunError) and str(err) == "/runs/x: holds no net (train one first)"


@pytest.mark.slow
def test_nets_trained_side_by_side_equal_the_sequential_run_at_the_same_threads(tiny_pair: Path, tmp_path: Path) -> None:
    sequential = train(_per_month(tiny_pair / "lem1920", **{"trainer.threads": 1}), tmp_path / "seq")
    parallel = train(_per_month(tiny_pair / "lem1920", **{"trainer.threads": 2, "trainer.parallel_nets": 2}),
                     tmp_path / "par")
    assert list(parallel.nets) == list(sequential.nets) == [str(t) for t in TARGETS]
    for net in sequential.nets:
        assert parallel.nets[net].best_val_f1 == sequential.nets[net].best_val_f1
        assert parallel.nets[net].length == sequential.nets[net].length
        seq, par = _weights(tmp_path / "seq", net), _weights(tmp_path / "par", net)
        assert all(torch.equal(seq[k], par[k]) for k in seq), net
        assert (tmp_path / "par" / "nets" / net / "calibration.json").is_file()
    assert (tmp_path / "par" / "result.json").is_file() and not (tmp_path / "par" / "cache").exists()
    # the nets' own times overlap: the run's training time is the wall time of the pool, and is written
    assert sequential.nets_wall_seconds is None and parallel.nets_wall_seconds is not None
    assert parallel.train_seconds == parallel.nets_wall_seconds > 0
    saved = json.loads((tmp_path / "par" / "result.json").read_text())
    assert saved["train_seconds"] == saved["nets_wall_seconds"] == parallel.nets_wall_seconds


@pytest.mark.slow
def test_a_killed_training_process_ends_the_run_in_one_line_and_resume_finishes_it(tiny_pair: Path,
                                                                                    tmp_path: Path) -> None:
    import psutil

    cfg = _per_month(tiny_pair / "lem1920", **{"trainer.threads": 2, "trainer.parallel_nets": 2,
                                               "trainer.max_epochs": 6, "trainer.patience": 0})
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump(to_dict(cfg)))
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "tropicrop.cli", "train", "-c", str(config), "--run-dir", str(run)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 180
    victim = None
    while time.time() < deadline and proc.poll() is None and victim is None:  # a worker that has begun a net
        workers = psutil.Process(proc.pid).children(recursive=True)
        if any((run / "nets").glob("*/logs")) and workers:
            victim = max(workers, key=lambda p: p.create_time())
        time.sleep(0.05)
    assert victim is not None, f"no training process to kill: {proc.stderr.read()[-2000:] if proc.stderr else ''}"
    os.kill(victim.pid, signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err[-2000:]
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1].startswith("tropicrop: error: "), err[-2000:]
    assert "a process training its nets side by side died" in lines[-1]
    assert "Traceback" not in err
    assert not (run / "result.json").exists()
    out = subprocess.run([*cmd[:4], "--run-dir", str(run), "--resume"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert sorted(p.parent.name for p in (run / "nets").glob("*/result.json")) == [str(t) for t in TARGETS]
