"""Damaged, foreign or tampered runs, prediction folders and experiments: one line naming the file, exit
status 2, never a traceback, and no code carried by a checkpoint ever runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from tropicrop.layout import RUN_FORMAT_VERSION, RunLayout

pytestmark = pytest.mark.slow  # a trained run and one CLI process per case

MAY = "2020-05-15"


class RunsCommand:
    """Pickles as a call of os.system: what a tampered checkpoint would carry."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.system, (self.command,)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tropicrop.cli", *args], capture_output=True, text=True, timeout=300)


def assert_one_line_error(proc: subprocess.CompletedProcess[str], names: Path, says: str) -> None:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert lines[0].startswith("tropicrop: error: ") and str(names) in lines[0] and says in lines[0], lines[0]


def checkpoint(run: Path) -> Path:
    return RunLayout(run).checkpoint("all-months")


def truncate(run: Path) -> Path:
    path = checkpoint(run)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    return path


def carry_code(run: Path) -> Path:
    path = checkpoint(run)
    ckpt = torch.load(path, weights_only=True)
    ckpt["hyper_parameters"]["note"] = RunsCommand(f"touch {run / 'PWNED'}")
    torch.save(ckpt, path)
    return path


def text_file(run: Path) -> Path:
    path = checkpoint(run)
    path.write_text("these are not the weights you are looking for\n")
    return path


def one_more_class_weights(run: Path) -> Path:
    """Weights of a network with one more class, under the run's own hyperparameters."""
    path = checkpoint(run)
    ckpt = torch.load(path, weights_only=True)
    for key in ("model.head.1.weight", "model.head.1.bias"):
        tensor = ckpt["state_dict"][key]
        ckpt["state_dict"][key] = torch.cat((tensor, tensor[:1]))
    torch.save(ckpt, path)
    return path


def other_class_table(run: Path) -> Path:
    path = checkpoint(run)
    ckpt = torch.load(path, weights_only=True)
    ckpt["hyper_parameters"]["class_names"] = [*ckpt["hyper_parameters"]["class_names"], "Rice"]
    torch.save(ckpt, path)
    return path


def broken_json(name: str) -> Callable[[Path], Path]:
    def damage(run: Path) -> Path:
        (run / name).write_text('{"names": ["no reference", "Soy')
        return run / name
    return damage


def broken_config(run: Path) -> Path:
    (run / "config.yaml").write_text("mode: all-months\ntrainer: {accelerator: cpu\n  - what\n")
    return run / "config.yaml"


def newer_format(run: Path) -> Path:
    result = json.loads((run / "result.json").read_text())
    result["format_version"] = RUN_FORMAT_VERSION + 1
    (run / "result.json").write_text(json.dumps(result))
    return run / "result.json"


def wrong_band_count(run: Path) -> Path:
    (run / "normalization.json").write_text(json.dumps({"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}))
    return run / "normalization.json"


DAMAGES = {
    "truncated checkpoint": (truncate, "not a readable PyTorch checkpoint"),
    "checkpoint carrying code": (carry_code, "carries pickled Python objects other than weights (posix.system)"),
    "text file as checkpoint": (text_file, "not a readable PyTorch checkpoint"),
    "weights of one more class": (one_more_class_weights, "weights that do not fit the network"),
    "checkpoint of another class table": (other_class_table, "predicts classes"),
    "classes.json not JSON": (broken_json("classes.json"), "not readable JSON"),
    "config.yaml not YAML": (broken_config, "not readable YAML"),
    "run of a newer format": (newer_format, "newer tropicrop"),
    "normalisation of 3 bands": (wrong_band_count, "3 band(s)"),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_run_is_refused_with_one_line_naming_the_file(damage: str, trained_runs: dict[str, Path],
                                                                tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained_runs["all"], run)
    make, says = DAMAGES[damage]
    damaged = make(run)
    proc = cli("predict", str(run), str(trained_runs["scene"]), "--out", str(tmp_path / "out"), "--dates", MAY)
    assert_one_line_error(proc, damaged, says)
    assert not (run / "PWNED").exists()  # the pickled command never ran
    assert not (tmp_path / "out" / "maps").exists()


def test_a_good_run_loads_and_records_its_format_version(trained_runs: dict[str, Path], tmp_path: Path) -> None:
    assert json.loads((trained_runs["all"] / "result.json").read_text())["format_version"] == RUN_FORMAT_VERSION
    proc = cli("predict", str(trained_runs["all"]), str(trained_runs["scene"]), "--out", str(tmp_path / "out"),
               "--dates", MAY)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture(scope="module")
def predictions(trained_runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("predictions")
    proc = cli("predict", str(trained_runs["all"]), str(trained_runs["scene"]), "--out", str(out), "--dates", MAY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.mark.parametrize("damage", ["truncated map", "classes.json not JSON", "map of float32", "predict.json not JSON"])
def test_a_damaged_prediction_folder_is_refused_with_one_line(damage: str, predictions: Path, trained_runs: dict[str, Path],
                                                              tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(predictions, out)
    tif = out / "maps" / f"{MAY.replace('-', '')}.tif"
    if damage == "truncated map":
        tif.write_bytes(tif.read_bytes()[:2000])
        damaged, says = tif, "not a readable map"
    elif damage == "classes.json not JSON":
        (out / "classes.json").write_text("names: [")
        damaged, says = out / "classes.json", "not readable JSON"
    elif damage == "map of float32":
        import rasterio

        with rasterio.open(tif) as ds:
            profile, data = ds.profile, ds.read(1)
        profile.update(driver="GTiff", dtype="float32")
        tif.unlink()
        with rasterio.open(tif, "w", **profile) as ds:
            ds.write(data.astype("float32"), 1)
        damaged, says = tif, "not a class map"
    else:
        (out / "predict.json").write_text("[{")
        proc = cli("predict", str(trained_runs["all"]), str(trained_runs["scene"]), "--out", str(out), "--dates", "2020-04-21")
        assert_one_line_error(proc, out / "predict.json", "not readable JSON")
        return
    assert_one_line_error(cli("evaluate", str(out), str(trained_runs["scene"])), damaged, says)


def test_a_damaged_experiment_is_refused_when_resumed(tiny_pair: Path, tmp_path: Path) -> None:
    """A partly finished experiment whose shared class table or a finished approach's record was damaged."""
    from tropicrop.config import dump_config, from_dict
    from tropicrop.experiments import ExperimentConfig

    exp = tmp_path / "exp"
    exp.mkdir()
    cfg = from_dict(ExperimentConfig, {"scenes": {"a": str(tiny_pair / "lem1718"), "b": str(tiny_pair / "lem1920")}})
    dump_config(cfg, exp / "config.yaml")
    (exp / "classes.json").write_text("{")
    assert_one_line_error(cli("experiment", "--out", str(exp)), exp / "classes.json", "not readable JSON")
    (exp / "classes.json").write_text(json.dumps({"names": ["no reference", "Soybean", "Other"], "merged": []}))
    (exp / "approaches").mkdir()
    (exp / "approaches" / "baseline-1.json").write_text("")
    assert_one_line_error(cli("experiment", "--out", str(exp)), exp / "approaches" / "baseline-1.json", "not readable JSON")
    (exp / "config.yaml").write_text(yaml.safe_dump({"name": "x"}) + "approaches: [\n")
    assert_one_line_error(cli("experiment", "--out", str(exp)), exp / "config.yaml", "not valid YAML")


def test_resuming_a_run_with_a_damaged_last_checkpoint_names_it(trained_runs: dict[str, Path], tmp_path: Path) -> None:
    from tropicrop.errors import RunError
    from tropicrop.training import train_from_files

    run = tmp_path / "run"
    shutil.copytree(trained_runs["all"], run)
    (run / "result.json").unlink()
    (run / "nets" / "all-months" / "result.json").unlink()
    last = RunLayout(run).checkpoint("all-months", "last")
    last.write_bytes(last.read_bytes()[:100])
    with pytest.raises(RunError, match="last.ckpt: is not a readable PyTorch checkpoint"):
        train_from_files(None, run, [], resume=True)
