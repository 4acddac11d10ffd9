"""The config schemas: every shipped config loads, problems are one line naming file, key and fix, ``--set``
meets the same rules, a saved config reads back equal, and the docs list every key."""

from __future__ import annotations

import datetime as dt
import typing
from pathlib import Path

import pytest
import yaml

from tropicrop.cli import main
from tropicrop.config import (
    AdaptOptions,
    ExperimentConfig,
    TrainConfig,
    dump_config,
    from_dict,
    load_config,
)
from tropicrop.config.training import Precision, TestInputs
from tropicrop.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


def schema_of(path: Path) -> type[TrainConfig] | type[ExperimentConfig]:
    """An experiment config has approaches or scenes; anything else is a training config."""
    data = yaml.safe_load(path.read_text())
    return ExperimentConfig if {"approaches", "scenes"} & set(data) else TrainConfig


def write(tmp_path: Path, data: dict[str, typing.Any], name: str = "x.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def error_of(call: typing.Callable[[], object]) -> str:
    with pytest.raises(ConfigError) as exc:
        call()
    text = str(exc.value)
    assert "\n" not in text
    return text


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_loads_and_reads_back_equal_after_saving(path: Path, tmp_path: Path) -> None:
    cfg = load_config(schema_of(path), path)
    saved = dump_config(cfg, tmp_path / "config.yaml")
    assert load_config(schema_of(path), saved) == cfg


def test_shipped_configs_cover_both_kinds() -> None:
    kinds = {schema_of(p) for p in CONFIGS}
    assert kinds == {TrainConfig, ExperimentConfig} and len(CONFIGS) >= 5


def test_a_run_config_with_dates_lists_and_options_reads_back_equal(tmp_path: Path) -> None:
    cfg = load_config(TrainConfig, ROOT / "configs" / "quick.yaml", [
        "data.scene=[a/one, b/two]", "data.targets=[2020-02-21, '2020-03-16']", "model.name=unet_convlstm",
        "model.options={lstm_channels: 8, encoder_channels: [4, 4, 8, 8]}", "trainer.devices=auto", "mode=per-month"])
    assert cfg.data.targets == [dt.date(2020, 2, 21), dt.date(2020, 3, 16)] and cfg.trainer.devices == "auto"
    saved = dump_config(cfg, tmp_path / "config.yaml")
    assert load_config(TrainConfig, saved) == cfg
    assert "2020-02-21" in saved.read_text()  # written as a YAML date, read back as one


def test_a_misspelt_nested_key_names_file_path_and_close_match(tmp_path: Path) -> None:
    data = yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text())
    data["train"]["optim"]["learnig_rate"] = data["train"]["optim"].pop("lr")
    path = write(tmp_path, data)
    text = error_of(lambda: load_config(ExperimentConfig, path))
    assert text.startswith(f"{path}: unknown key 'learnig_rate' in train.optim")
    assert "did you mean 'lr'" in text
    data["train"]["optim"]["lr"] = data["train"]["optim"].pop("learnig_rate")
    data["train"]["trainer"]["max_epoch"] = 3
    text = error_of(lambda: load_config(ExperimentConfig, write(tmp_path, data)))
    assert "unknown key 'max_epoch' in train.trainer" in text and "did you mean 'max_epochs'" in text


def test_a_misspelt_approach_key_names_the_approach(tmp_path: Path) -> None:
    data = yaml.safe_load((ROOT / "configs" / "adaptation.yaml").read_text())
    data["approaches"][5]["adapt"]["methds"] = data["approaches"][5]["adapt"].pop("methods")
    text = error_of(lambda: load_config(ExperimentConfig, write(tmp_path, data)))
    assert "unknown key 'methds' in approaches[5].adapt (approach 'VUnetConvLSTM + AdaBN')" in text
    assert "did you mean 'methods'" in text


@pytest.mark.parametrize(("override", "expected"), [
    ("trainer.max_epochs=0", r"'trainer.max_epochs' is 0 .*greater than or equal to 1"),
    ("optim.lr=-0.1", r"'optim.lr' is -0.1 .*greater than 0"),
    ("data.val_fraction=1.0", r"'data.val_fraction' is 1.0 .*less than 1"),
    ("data.doy_shift=400", r"'data.doy_shift' is 400 .*less than or equal to 182"),
    ("data.scene=[]", r"'data.scene' is \[\] .*at least 1 item"),
    ("mode=per-mont", r"'mode' is 'per-mont' .*use one of per-month, all-months; did you mean 'per-month'"),
    ("data.use=everything", r"'data.use' is 'everything' .*use one of train, all"),
    ("trainer.accelerator=gpus", r"'trainer.accelerator' is 'gpus' .*did you mean 'gpu'"),
    ("trainer.max_epochs=many", r"'trainer.max_epochs' is 'many' .*should be a valid integer"),
    ("trainer.max_epochs='5'", r"'trainer.max_epochs' is '5' .*should be a valid integer"),  # quoted text is not a number
    ("data.augment=maybe", r"'data.augment' is 'maybe' .*should be a valid boolean"),
    ("trainer.max_epochs=3", None),
])
def test_a_value_out_of_bounds_or_not_a_choice_is_one_line(override: str, expected: str | None) -> None:
    quick = ROOT / "configs" / "quick.yaml"
    if expected is None:
        assert load_config(TrainConfig, quick, [override]).trainer.max_epochs == 3
        return
    text = error_of(lambda: load_config(TrainConfig, quick, ["trainer.min_epochs=0", override]))
    assert text.startswith(f"{quick}: ")
    assert f"(from --set {override})" in text
    import re

    assert re.search(expected, text), text


def test_min_epochs_above_max_epochs_is_refused() -> None:
    text = error_of(lambda: from_dict(TrainConfig, {"trainer": {"max_epochs": 3, "min_epochs": 9}}))
    assert "'trainer.min_epochs' is 9 (it must be between 0 and trainer.max_epochs (3))" in text


def test_an_assignment_is_validated_where_it_is_written() -> None:
    cfg = TrainConfig()
    with pytest.raises(ConfigError, match="'max_epochs' is 0"):
        cfg.trainer.max_epochs = 0
    assert cfg.trainer.max_epochs == 30


def test_model_options_are_checked_against_the_model_constructor(tmp_path: Path) -> None:
    text = error_of(lambda: from_dict(TrainConfig, {"model": {"name": "unet_convlstm",
                                                              "options": {"lstm_channel": 8}}}, "r.yaml"))
    assert "'model.options.lstm_channel' is not an option of unet_convlstm (did you mean 'lstm_channels'?)" in text
    text = error_of(lambda: from_dict(TrainConfig, {"model": {"name": "utae", "options": {"heads": "many"}}}))
    assert "'model.options.heads' is 'many' (it should be a valid integer)" in text
    text = error_of(lambda: from_dict(TrainConfig, {"model": {"name": "unet_convlst"}}))
    assert "'model.name' is 'unet_convlst', not a registered model (did you mean 'unet_convlstm'?" in text
    text = error_of(lambda: from_dict(TrainConfig, {"model": {"name": "lightgbm", "options": {"looks": 0}}}))
    assert "'model.options.looks' is 0" in text
    ok = from_dict(TrainConfig, {"model": {"name": "utae", "options": {"encoder_channels": [8, 8, 16, 16]}}})
    assert ok.model.options == {"encoder_channels": [8, 8, 16, 16]}


def test_approach_options_and_set_entries_are_checked_when_the_experiment_is_read(tmp_path: Path) -> None:
    data = yaml.safe_load((ROOT / "configs" / "backbones.yaml").read_text())
    data["approaches"][1]["options"] = {"lstm_channel": 64}
    text = error_of(lambda: load_config(ExperimentConfig, write(tmp_path, data)))
    assert "'approaches[1].options.lstm_channel' is not an option of unet_convlstm (approach 'Baseline 1')" in text
    data = yaml.safe_load((ROOT / "configs" / "backbones.yaml").read_text())
    data["train"]["model"] = {"options": {"lstm_channels": 32}}  # shared: fine for the ConvLSTM nets, not for U-TAE
    text = error_of(lambda: load_config(ExperimentConfig, write(tmp_path, data)))
    assert "'approaches[5].options.lstm_channels' is not an option of utae (approach 'U-TAE')" in text
    data = yaml.safe_load((ROOT / "configs" / "lem.yaml").read_text())
    data["approaches"][2]["set"] = ["trainer.max_epoch=100"]
    text = error_of(lambda: load_config(ExperimentConfig, write(tmp_path, data)))
    assert "'approaches[2].set' gives unknown key 'max_epoch' in trainer" in text and "'max_epochs'" in text


def test_the_shared_network_options_do_not_reach_the_classical_model() -> None:
    cfg = from_dict(ExperimentConfig, {"train": {"model": {"options": {"lstm_channels": 8}}}, "approaches": [
        {"name": "LightGBM", "model": "lightgbm", "options": {"looks": 1}, "train_on": "b", "use": "train"}]})
    assert cfg.train_config(cfg.approaches[0]).model.options == {"looks": 1}


@pytest.mark.parametrize(("change", "expected"), [
    ({"role": "propose"}, r"'approaches\[1\].role' is 'propose' .*did you mean 'proposed'"),
    ({"role": "proposed"}, r"'approaches\[1\].role' is 'proposed', already the role of 'VUnetConvLSTM'"),
    ({"name": "VUnetConvLSTM!"}, r"'approaches\[1\].name' is 'VUnetConvLSTM!', the name of 'VUnetConvLSTM' as a"),
    ({"train_on": "b"}, r"'approaches\[1\].use' is 'all' with train_on 'b'"),
    ({"adapt": {"base": "Later"}}, r"'approaches\[1\].adapt.base' is 'Later', not an earlier approach"),
    ({"adapt": {"methods": ["doy_augment"]}}, r"'approaches\[1\].adapt.methods\[0\]' is 'doy_augment'.*data.doy_shift"),
    ({"adapt": {"shift_min": 30, "shift_max": 10}}, r"'approaches\[1\].adapt.shift_min' is 30, above shift_max"),
    ({"adapt": {"parcels": -1}}, r"'approaches\[1\].adapt.parcels' is -1 .*greater than or equal to 0"),
])
def test_approaches_that_do_not_fit_together_are_refused(change: dict[str, typing.Any], expected: str) -> None:
    import re

    first = {"name": "VUnetConvLSTM", "mode": "all-months", "model": "vunet_convlstm", "use": "all", "role": "proposed"}
    second = {"name": "Other", "mode": "per-month", "model": "unet_convlstm", "use": "all", **change}
    text = error_of(lambda: from_dict(ExperimentConfig, {"approaches": [first, second]}, "e.yaml"))
    assert re.search(expected, text), text


def test_set_overrides_go_through_the_same_validation_on_the_command_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    quick = str(ROOT / "configs" / "quick.yaml")
    assert main(["train", "-c", quick, "--run-dir", str(tmp_path / "run"), "--set", "trainer.max_epoch=3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown key 'max_epoch' in trainer (from --set trainer.max_epoch=3)" in err
    assert "did you mean 'max_epochs'" in err and quick in err
    assert not (tmp_path / "run").exists()  # refused before anything is written
    demo = str(ROOT / "configs" / "demo.yaml")
    assert main(["experiment", "-c", demo, "--out", str(tmp_path / "exp"), "--set", "predict.tile=0"]) == 2
    assert "'predict.tile' is 0 (from --set predict.tile=0)" in capsys.readouterr().err
    assert main(["adapt", str(tmp_path / "run"), str(tmp_path / "scene"), "--run-dir", str(tmp_path / "out"),
                 "--methods", "adabn,dropout"]) == 2
    assert "'methods[1]' is 'dropout' (use one of year_stats, adabn, doy_shift, self_training)" in capsys.readouterr().err
    assert main(["adapt", str(tmp_path / "run"), str(tmp_path / "scene"), "--run-dir", str(tmp_path / "out"),
                 "--set", "self_training.stepz=3"]) == 2
    assert "unknown key 'stepz' in self_training" in capsys.readouterr().err


def test_an_override_that_is_not_key_value_or_not_a_section_is_one_line() -> None:
    text = error_of(lambda: load_config(TrainConfig, None, ["trainer.max_epochs"]))
    assert "override 'trainer.max_epochs' is not key=value" in text
    text = error_of(lambda: load_config(TrainConfig, ROOT / "configs" / "quick.yaml", ["seed.value=3"]))
    assert "override 'seed.value=3': 'seed' is not a section" in text
    text = error_of(lambda: load_config(TrainConfig, None, ["seed.value=3"]))  # no file: the schema says it
    assert "'seed' is {'value': 3} (from --set seed.value=3) (it should be a valid integer)" in text


def test_adapt_options_from_python_and_from_a_mapping_agree() -> None:
    assert from_dict(AdaptOptions, {"methods": ["adabn"], "self_training": {"steps": 5}}) == AdaptOptions(
        methods=["adabn"], self_training={"steps": 5})  # type: ignore[arg-type]


def test_the_choices_match_the_code_that_acts_on_them() -> None:
    from lightning.fabric.plugins.precision.precision import _PRECISION_INPUT_STR

    from tropicrop.classical import CLASSICAL_MODELS
    from tropicrop.config.models import CLASSICAL
    from tropicrop.precision import AUTO, SHORT_NAMES
    from tropicrop.windows.tensors import TEST_INPUTS

    assert typing.get_args(TestInputs) == TEST_INPUTS
    assert set(typing.get_args(Precision)) == {AUTO, *SHORT_NAMES, *typing.get_args(_PRECISION_INPUT_STR)}
    assert set(CLASSICAL) == set(CLASSICAL_MODELS)


def test_the_docs_page_lists_every_key_of_every_section() -> None:
    from tropicrop.config.reference import BEGIN, END, SECTIONS, reference_markdown

    page = (ROOT / "docs" / "guide" / "config.md").read_text()
    generated = page[page.index(BEGIN):page.index(END) + len(END)]
    assert generated == reference_markdown(), "run: python -m tropicrop.config.reference docs/guide/config.md"
    for _, model in SECTIONS:
        for name in model.model_fields:
            assert f"| `{name}` |" in generated
