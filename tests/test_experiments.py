"""The paper's protocol end to end on a tiny synthetic pair: tables, figures and report from metric files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from tiny import SMALL_NET
from tropicrop.cli import main
from tropicrop.config import from_dict
from tropicrop.errors import ConfigError, RunError
from tropicrop.experiments import ExperimentConfig, run_experiment
from tropicrop.layout import ExperimentLayout


def tiny_experiment(pair: Path) -> dict:
    return {
        "name": "tiny",
        "scenes": {"a": str(pair / "lem1718"), "b": str(pair / "lem1920")},
        "approaches": [
            {"name": "Baseline 1", "mode": "per-month", "model": "unet_convlstm", "train_on": "b", "use": "train"},
            {"name": "Baseline 2", "mode": "per-month", "model": "unet_convlstm", "train_on": "a", "use": "all"},
            {"name": "VUnetConvLSTM", "mode": "all-months", "model": "vunet_convlstm", "train_on": "a", "use": "all"},
            {"name": "LightGBM", "mode": "per-month", "model": "lightgbm", "train_on": "b", "use": "train",
             "options": {"looks": 3, "n_estimators": 20}, "role": "classical baseline"},
        ],
        "train": {
            "model": {"options": SMALL_NET},
            "data": {"patch_size": 16, "stride": 8, "val_limit": 32},
            "trainer": {"max_epochs": 1, "steps_per_epoch": 2, "progress": False},
        },
        "predict": {"tile": 64, "overlap": 16},
    }


@pytest.mark.slow
def test_experiment_runs_the_three_approaches_and_writes_the_report(tiny_pair: Path, tmp_path: Path) -> None:
    config = tmp_path / "exp.yaml"
    config.write_text(yaml.safe_dump(tiny_experiment(tiny_pair)))
    out = tmp_path / "exp"
    assert main(["experiment", "-c", str(config), "--out", str(out)]) == 0
    with open(out / "table4.csv", newline="") as fh:
        table4 = list(csv.DictReader(fh))
    assert [r["approach"] for r in table4] == ["Baseline 1", "Baseline 2", "VUnetConvLSTM", "LightGBM"]
    assert all(int(r["train_patches"].split("-")[0]) > 0 for r in table4)
    with open(out / "per_date.csv", newline="") as fh:
        per_date = list(csv.DictReader(fh))
    assert set(per_date[0]) == {"approach", "date", "oa", "f1"}
    b_dates = {d["date"] for d in per_date if d["approach"] == "Baseline 1"}
    assert len(per_date) == 4 * len(b_dates)
    report = (out / "report.md").read_text()
    assert "validation against test" in report and "the classical floor (LightGBM" in report
    for row in table4:  # the report's numbers are the metric files' numbers
        assert f"{100 * float(row['f1']):.1f}" in report and f"{100 * float(row['oa']):.1f}" in report
    for fig in ("figures/oa_per_date.png", "figures/f1_per_date.png"):
        assert (out / fig).stat().st_size > 1000 and fig in report
    assert list((out / "figures").glob("maps_*.png"))
    # calibration: an ECE per approach in table4.csv (a fraction, like f1), reliability diagrams, check's estimates
    assert all(0 <= float(r["ece"]) <= 1 and 0 <= float(r["estimated_f1"]) <= 1 for r in table4)
    assert all(0 <= float(r["agreement_f1"]) <= 1 for r in table4)  # each has a partner of its year
    for r in table4:  # check --against's default: the midpoint of the confidence and agreement estimates
        assert float(r["midpoint_f1"]) == pytest.approx((float(r["estimated_f1"]) + float(r["agreement_f1"])) / 2, abs=2e-6)
    baseline_1 = json.loads((out / "approaches" / "baseline-1.json").read_text())
    assert baseline_1["agreement"]["references"] == ["LightGBM"]
    assert "Calibration and accuracy estimated without labels" in report
    assert len(list((out / "figures").glob("reliability_*.png"))) == len(table4)
    # the per-date F1 in per_date.csv is the mean of the approach's record
    record = json.loads((out / "approaches" / "vunetconvlstm.json").read_text())
    f1s = [float(d["f1"]) for d in per_date if d["approach"] == "VUnetConvLSTM"]
    assert record["f1"] == pytest.approx(sum(f1s) / len(f1s), abs=1e-5)
    # a second run resumes: nothing is retrained
    stamp = (out / "approaches" / "baseline-1.json").stat().st_mtime
    assert main(["experiment", "-c", str(config), "--out", str(out)]) == 0
    assert (out / "approaches" / "baseline-1.json").stat().st_mtime == stamp
    changed = tiny_experiment(tiny_pair)
    changed["train"]["seed"] = 1
    config.write_text(yaml.safe_dump(changed))
    with pytest.raises(RunError, match="another configuration"):
        run_experiment(config, out)


def test_training_on_year_b_with_all_labels_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"'approaches\[0\].use' is 'all' with train_on 'b'.*test split"):
        from_dict(ExperimentConfig, {"approaches": [{"name": "x", "train_on": "b", "use": "all"}]})
    with pytest.raises(ConfigError, match=r"unknown key 'trian_on' in approaches\[0\] \(approach 'x'\).*'train_on'"):
        from_dict(ExperimentConfig, {"approaches": [{"name": "x", "trian_on": "a"}]})


@pytest.mark.slow
def test_the_new_temporal_networks_run_as_approaches(tiny_pair: Path, tmp_path: Path) -> None:
    from tropicrop.models import build

    cfg = tiny_experiment(tiny_pair)
    utae = {"encoder_channels": [8, 8, 16, 16], "decoder_channels": [16, 8, 8], "head_channels": 8, "d_model": 32,
            "heads": 4}
    unet3d = {"encoder_channels": [4, 8, 8, 16], "decoder_channels": [8, 8, 4], "head_channels": 4}
    cfg["approaches"] = [
        {"name": "U-TAE", "mode": "all-months", "model": "utae", "options": utae, "train_on": "a", "use": "all"},
        {"name": "3D U-Net", "mode": "per-month", "model": "unet3d", "options": unet3d, "train_on": "b",
         "use": "train", "set": ["data.targets=['2020-02-21']"]},
        {"name": "VUnet seq", "mode": "all-months", "model": "vunet_convlstm_seq", "options": SMALL_NET, "train_on": "a",
         "use": "all"},
    ]
    cfg["train"]["model"]["options"] = {}
    config = tmp_path / "exp.yaml"
    config.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "exp"
    assert main(["experiment", "-c", str(config), "--out", str(out)]) == 0
    files = ExperimentLayout(out)
    with open(files.table4, newline="") as fh:
        table4 = {r["approach"]: r for r in csv.DictReader(fh)}
    assert table4["U-TAE"]["model"] == "utae"
    expected = sum(p.numel() for p in build("utae", 2, num_classes=len(json.loads(
        files.classes.read_text())["names"]), **utae).parameters())
    assert int(table4["U-TAE"]["parameters"]) == expected
    report = files.report.read_text()
    assert f"{expected:,}" in report and "vunet_convlstm_seq" in report


def test_an_experiment_may_gain_approaches_but_not_change_its_finished_ones(tmp_path: Path) -> None:
    from tropicrop.experiments import extends

    base = tiny_experiment(tmp_path)
    previous = from_dict(ExperimentConfig, base)
    added = {**base, "name": "tiny + adaptation",
             "approaches": [*base["approaches"], {"name": "VUnetConvLSTM + AdaBN",
                                                  "adapt": {"base": "VUnetConvLSTM", "methods": ["adabn"]}}]}
    assert extends(previous, from_dict(ExperimentConfig, added))
    assert extends(previous, previous)
    dropped = {**base, "approaches": base["approaches"][1:]}
    assert not extends(previous, from_dict(ExperimentConfig, dropped))
    changed = {**base, "approaches": [{**base["approaches"][0], "use": "all", "train_on": "a"}, *base["approaches"][1:]]}
    assert not extends(previous, from_dict(ExperimentConfig, changed))
    other_seed = {**base, "train": {**base["train"], "seed": 3}}
    assert not extends(previous, from_dict(ExperimentConfig, other_seed))


@pytest.mark.parametrize("name", ["adaptation.yaml"])
def test_configs_run_after_the_demo_extend_it(name: str) -> None:
    from tropicrop.config import load_config
    from tropicrop.experiments import extends

    root = Path(__file__).resolve().parents[1] / "configs"
    demo = load_config(ExperimentConfig, root / "demo.yaml")
    adaptation = load_config(ExperimentConfig, root / name)
    assert extends(demo, adaptation) and len(adaptation.approaches) > len(demo.approaches)
