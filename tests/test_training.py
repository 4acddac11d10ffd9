"""Training: data preparation rules, config errors, seeds, run directories, kill -9 and resume."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tiny import DATES, SMALL_NET, quick_config, tiny_arrays
from tropicrop.config import dump_config, load_config, to_dict
from tropicrop.errors import ConfigError, RunError, SceneError
from tropicrop.layout import RunLayout
from tropicrop.training import TrainBatches, TrainConfig, prepare_data, train
from tropicrop.windows.datasets import EvalBatches

MakeScene = Callable[..., Path]


def test_quick_config_parses_and_unknown_keys_name_the_close_match(tmp_path: Path) -> None:
    cfg = quick_config(tmp_path)
    assert cfg.mode == "all-months" and cfg.model.name == "vunet_convlstm"
    with pytest.raises(ConfigError, match=r"unknown key 'max_epoch' in trainer .*did you mean 'max_epochs'"):
        quick_config(tmp_path, **{"trainer.max_epoch": 3})
    with pytest.raises(ConfigError, match="'trainer.max_epochs' is 'many'.*should be a valid integer"):
        quick_config(tmp_path, **{"trainer.max_epochs": "many"})
    with pytest.raises(ConfigError, match=r"'trainer.min_epochs' is 9.*between 0 and trainer.max_epochs \(3\)"):
        quick_config(tmp_path, **{"trainer.max_epochs": 3, "trainer.min_epochs": 9})


def test_no_test_pixel_ever_reaches_a_training_batch(make_scene: MakeScene) -> None:
    """Test pixels carry a class of their own and an image value of their own: neither may appear."""
    arrays = tiny_arrays(h=40, w=40)
    split = np.ones((40, 40), np.uint8)
    split[10:22, 12:30] = 2
    images = arrays["images"]
    images[:, :, split == 2] = -30.0  # marks test inputs
    labels = {d: np.where(split == 2, 4, np.random.default_rng(0).integers(1, 4, (40, 40))).astype(np.uint8) for d in DATES[2:]}
    scene = make_scene(images=images, labels=labels, split=split, classes={1: "Soybean", 2: "Maize", 3: "Soil", 4: "Secret"})
    cfg = quick_config(scene, **{"data.patch_size": 8, "data.stride": 2, "data.classes": "[Soybean, Maize, Soil, Secret]"})
    data = prepare_data(cfg)
    secret = data.classes.names.index("Secret")
    marker = float(data.normalizer(np.full((1, 2, 1, 1), -30.0, np.float32))[0, 0, 0, 0])
    batches = TrainBatches(data.tensors, data.train_origins, data.targets, 16, 8, seed=0)
    val = EvalBatches(data.tensors, data.val_origins, data.targets, 16, 8)
    for batch in [batches[n] for n in range(40)] + [val[n] for n in range(len(val))]:
        assert not (batch["labels"] == secret).any()
        assert not np.isclose(batch["images"].numpy(), marker).any()


def test_context_mode_takes_test_area_images_as_input_but_never_their_labels(make_scene: MakeScene) -> None:
    arrays = tiny_arrays(h=40, w=40)
    split = np.ones((40, 40), np.uint8)
    split[10:22, 12:30] = 2
    images = arrays["images"]
    images[:, :, split == 2] = -30.0  # marks test inputs
    labels = {d: np.where(split == 2, 4, np.random.default_rng(0).integers(1, 4, (40, 40))).astype(np.uint8) for d in DATES[2:]}
    scene = make_scene(images=images, labels=labels, split=split, classes={1: "Soybean", 2: "Maize", 3: "Soil", 4: "Secret"})
    sets = {"data.patch_size": 8, "data.stride": 2, "data.classes": "[Soybean, Maize, Soil, Secret]"}
    strict = prepare_data(quick_config(scene, **sets))
    data = prepare_data(quick_config(scene, **sets, **{"data.test_inputs": "context"}))
    assert len(data.train_origins) + len(data.val_origins) > len(strict.train_origins) + len(strict.val_origins)
    secret = data.classes.names.index("Secret")
    marker = float(data.normalizer(np.full((1, 2, 1, 1), -30.0, np.float32))[0, 0, 0, 0])
    batches = [TrainBatches(data.tensors, data.train_origins, data.targets, 16, 8, seed=0)[n] for n in range(20)]
    assert not any((b["labels"] == secret).any() for b in batches)
    assert any(np.isclose(b["images"].numpy(), marker).any() for b in batches)     # test images do enter
    with pytest.raises(ConfigError, match="'data.test_inputs' is 'maybe'.*use one of exclude, context"):
        quick_config(scene, **{"data.test_inputs": "maybe"})


def test_validation_blocks_of_val_block_pixels_keep_training_patches_off_them() -> None:
    from tropicrop.windows.patches import split_validation

    rows, cols = np.meshgrid(np.arange(0, 200, 8), np.arange(0, 200, 8), indexing="ij")
    origins = np.stack([rows.ravel(), cols.ravel()], axis=1)
    train_o, val_o = split_validation(origins, 16, 0.2, seed=0, block=64)
    assert len(val_o) > 0 and len(train_o) > 0
    blocks = {tuple(o) for o in val_o // 64}
    assert len(blocks) <= 0.35 * len(val_o)                                     # whole blocks, not scattered patches
    gaps = np.maximum(np.abs(train_o[:, None, 0] - val_o[None, :, 0]), np.abs(train_o[:, None, 1] - val_o[None, :, 1]))
    assert gaps.min() >= 16


def test_target_date_that_is_not_labelled_is_refused_before_training(make_scene: MakeScene) -> None:
    with pytest.raises(ConfigError, match="2019-10-12 is not labelled") as exc:
        prepare_data(quick_config(make_scene(), **{"data.targets": "['2019-10-12']"}))
    assert "2019-11-17" in str(exc.value)


@pytest.mark.parametrize("written", ["[2019-12-23]", "['2019-12-23']", "2019-12-23"])
def test_target_dates_accept_a_yaml_date_or_its_text(tmp_path: Path, written: str) -> None:
    """`--set data.targets=[2019-12-23]` is a YAML date: the option wants dates, so it is taken as one."""
    if written == "2019-12-23":  # a list option given one bare date is still refused, as a list
        with pytest.raises(ConfigError, match="'data.targets' is 2019-12-23 .*should be a valid list"):
            quick_config(tmp_path, **{"data.targets": written})
        return
    cfg = quick_config(tmp_path, **{"data.targets": written})
    assert cfg.data.targets == [dt.date(2019, 12, 23)]
    saved = tmp_path / "config.yaml"
    dump_config(cfg, saved)
    assert load_config(TrainConfig, saved) == cfg  # the saved config reads back as dates


def test_target_date_that_is_not_a_date_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'data.targets\[1\]' is '2019-13-01', not a date.*YYYY-MM-DD"):
        quick_config(tmp_path, **{"data.targets": "[2019-12-23, '2019-13-01']"})
    with pytest.raises(ConfigError, match=r"'data.targets\[0\]' is the date and time"):
        quick_config(tmp_path, **{"data.targets": "[2019-12-23 10:00:00]"})


def test_text_options_take_a_yaml_date_as_its_text(tmp_path: Path) -> None:
    cfg = quick_config(tmp_path, **{"data.scene": "2019-12-23"})
    assert cfg.data.scene == "2019-12-23"


def test_patch_larger_than_the_scene_is_refused(make_scene: MakeScene) -> None:
    with pytest.raises(ConfigError, match="patch_size 64 is larger than the scene"):
        prepare_data(quick_config(make_scene(), **{"data.patch_size": 64}))


def test_scene_without_labels_in_the_train_split_is_refused(make_scene: MakeScene) -> None:
    arrays = tiny_arrays()
    labels = {d: np.where(arrays["split"] == 2, 1, 0).astype(np.uint8) for d in DATES[2:]}
    scene = make_scene(labels=labels)
    with pytest.raises(SceneError, match="no labelled pixels in the train area") as exc:
        prepare_data(quick_config(scene, **{"data.patch_size": 8}))
    assert str(scene / "scene.yaml") in str(exc.value)


def val_metrics(run_dir: Path, net: str = "all-months") -> list[dict[str, str]]:
    """Validation rows of every logging session of a net, oldest first (a resumed run adds a version)."""
    import csv

    rows = []
    versions = sorted((run_dir / "nets" / net / "logs" / "csv").glob("version_*"), key=lambda p: int(p.name[8:]))
    for version in versions:
        if (version / "metrics.csv").is_file():
            with open(version / "metrics.csv") as fh:
                rows += [row for row in csv.DictReader(fh) if row.get("val/f1")]
    return rows


@pytest.mark.slow
def test_two_runs_with_one_seed_agree_and_write_the_run_directory(tiny_pair: Path, tmp_path: Path) -> None:
    cfg = quick_config(tiny_pair / "lem1920")
    first = train(cfg, tmp_path / "a")
    second = train(cfg, tmp_path / "b")
    assert val_metrics(tmp_path / "a") == val_metrics(tmp_path / "b")
    assert first.nets["all-months"].best_val_f1 == second.nets["all-months"].best_val_f1
    # the quick config's cap is far below its patience: the net reached the cap, and says so
    assert first.nets["all-months"].stopped_by == "cap"
    run = tmp_path / "a"
    for name in ("config.yaml", "classes.json", "normalization.json", "result.json",
                 "nets/all-months/checkpoints/best.ckpt", "nets/all-months/checkpoints/last.ckpt"):
        assert (run / name).is_file(), name
    assert load_config(TrainConfig, run / "config.yaml") == cfg
    assert json.loads((run / "classes.json").read_text())["names"][0] == "no reference"
    with pytest.raises(RunError, match="already holds a finished run"):
        train(cfg, run)
    train(cfg, run, force=True)


@pytest.mark.slow
def test_per_month_mode_trains_one_network_per_labelled_date(tiny_pair: Path, tmp_path: Path) -> None:
    cfg = quick_config(tiny_pair / "lem1920", mode="per-month", **{"model.name": "unet_convlstm",
                                                                    "trainer.max_epochs": 1, "trainer.steps_per_epoch": 2})
    cfg.data.targets = [dt.date(2020, 2, 21), dt.date(2020, 3, 16)]
    summary = train(cfg, tmp_path / "pm")
    assert sorted(summary.nets) == ["2020-02-21", "2020-03-16"]
    assert (tmp_path / "pm" / "nets" / "2020-03-16" / "checkpoints" / "best.ckpt").is_file()


@pytest.mark.slow
def test_resume_after_kill_reproduces_the_uninterrupted_run(tiny_pair: Path, tmp_path: Path) -> None:
    import yaml

    cfg = quick_config(tiny_pair / "lem1920", **{"trainer.max_epochs": 4, "trainer.patience": 0})
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump(to_dict(cfg)))
    train(cfg, tmp_path / "straight")

    run = tmp_path / "killed"
    cmd = [sys.executable, "-m", "tropicrop.cli", "train", "-c", str(config), "--run-dir", str(run)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:  # kill -9 once the second epoch has been validated
        try:
            if len(val_metrics(run)) >= 2:
                break
        except (FileNotFoundError, KeyError):
            pass
        time.sleep(0.05)
    assert proc.poll() is None, f"training ended before it could be killed: {proc.stderr.read()[-2000:] if proc.stderr else ''}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (run / "result.json").exists(), "the run was killed before finishing"
    out = subprocess.run([*cmd[:4], "--run-dir", str(run), "--resume"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    straight = json.loads((tmp_path / "straight" / "result.json").read_text())["nets"]["all-months"]
    resumed = json.loads((run / "result.json").read_text())["nets"]["all-months"]
    assert resumed["global_step"] == straight["global_step"] == 12
    assert resumed["best_val_f1"] == pytest.approx(straight["best_val_f1"], abs=1e-6)
    assert [r["val/f1"] for r in val_metrics(run)][-2:] == [r["val/f1"] for r in val_metrics(tmp_path / "straight")][-2:]


def test_cli_train_refuses_unfinished_run_without_resume(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("mode: all-months\n")
    with pytest.raises(RunError, match="unfinished run"):
        train(quick_config(tmp_path), run)


def test_dates_in_config_are_iso(make_scene: MakeScene) -> None:
    data = prepare_data(quick_config(make_scene(), **{"data.patch_size": 8, "data.targets": "['2019-12-23']"}))
    assert data.targets == [dt.date(2019, 12, 23)]


def test_a_sequence_model_is_trained_on_every_labelled_date_of_the_window() -> None:
    import torch

    from tropicrop.losses import FocalLoss
    from tropicrop.training import CropModule

    torch.manual_seed(0)
    module = CropModule("vunet_convlstm_seq", dict(SMALL_NET), 2, ["no reference", "a", "b", "c"],
                        {"mean": [0.0, 0.0], "std": [1.0, 1.0]})
    module.model.eval()  # BatchNorm with running statistics: the same network in both computations
    images, doy = torch.randn(2, 4, 2, 8, 8), torch.randint(1, 366, (2, 4))
    valid = torch.tensor([[False, True, True, True], [True, True, True, True]])
    step_labels = torch.zeros(2, 4, 8, 8, dtype=torch.int64)
    step_labels[:, 1] = torch.randint(1, 4, (2, 8, 8))
    step_labels[:, 3] = torch.randint(0, 4, (2, 8, 8))
    batch = {"images": images, "doy": doy, "valid": valid, "labels": step_labels[:, -1], "step_labels": step_labels}
    loss = module.training_step(batch, 0)
    with torch.no_grad():
        every = module.model.forward_sequence(images, doy, valid)
    expected = FocalLoss()(every[:, [1, 3]].flatten(0, 1), step_labels[:, [1, 3]].flatten(0, 1))
    torch.testing.assert_close(loss.detach(), expected)
    last_only = FocalLoss()(every[:, 3], step_labels[:, 3])
    assert abs(float(loss) - float(last_only)) > 1e-4


@pytest.mark.slow
def test_sequence_model_trains_from_a_config(tiny_pair: Path, tmp_path: Path) -> None:
    cfg = quick_config(tiny_pair / "lem1920", **{"model.name": "vunet_convlstm_seq", "trainer.max_epochs": 1,
                                                 "trainer.steps_per_epoch": 2})
    summary = train(cfg, tmp_path / "seq")
    assert summary.model == "vunet_convlstm_seq"
    assert RunLayout(tmp_path / "seq").checkpoint("all-months").is_file()
