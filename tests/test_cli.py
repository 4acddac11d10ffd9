"""The command line: help, every command registered, inspect (text and JSON), and one-line errors with exit status 2."""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import tropicrop.cli
from tropicrop.cli import COMMANDS, build_parser, main

MakeScene = Callable[..., Path]


def test_help_of_the_installed_console_script_works() -> None:
    for module in ("tropicrop.cli", "tropicrop"):
        for args in (["--help"], ["inspect", "--help"]):
            out = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, check=True)
            assert "usage: tropicrop" in out.stdout


def test_every_command_of_the_cli_modules_is_registered_once() -> None:
    """Each ``add_*`` function of a command module builds one subcommand; one left out of ``COMMANDS`` would
    be a command nobody can run."""
    adders = {
        f"{info.name}.{name}"
        for info in pkgutil.iter_modules(tropicrop.cli.__path__) if info.name != "__main__"
        for name in vars(importlib.import_module(f"tropicrop.cli.{info.name}"))
        if name.startswith("add_") and name != "add_set_option"
    }
    registered = [f"{add.__module__.rsplit('.', 1)[1]}.{add.__name__}" for add in COMMANDS]
    assert sorted(registered) == sorted(adders)
    subparsers = next(a for a in build_parser()._actions if a.dest == "command")
    assert len(subparsers.choices) == len(COMMANDS)  # type: ignore[arg-type]


def test_inspect_prints_size_crs_dates_classes_and_split(make_scene: MakeScene, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(make_scene())]) == 0
    out = capsys.readouterr().out
    assert "20 x 16 pixels" in out
    assert "EPSG:32723" in out
    assert "* 2019-12-23" in out and "  2019-09-18" in out
    assert "train 160 px, test 160 px" in out
    assert "Soybean" in out and "Maize" in out


def test_inspect_json_is_machine_readable(make_scene: MakeScene, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "--json", str(make_scene())]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["width"] == 20 and info["height"] == 16
    assert info["split_pixels"] == {"unused": 0, "train": 160, "test": 160}
    assert [d["labelled"] for d in info["dates"]] == [False, False, True, True]
    assert set(info["class_pixels"]) == {"2019-11-17", "2019-12-23"}
    assert sum(info["class_pixels"]["2019-11-17"].values()) <= 320


def test_a_reader_that_closes_the_pipe_early_gets_no_traceback(make_scene: MakeScene) -> None:
    """``tropicrop inspect SCENE | true``: the reader exits before reading, as ``| head`` does after its lines."""
    command = f"{sys.executable} -m tropicrop.cli inspect {make_scene()} | true; echo ${{PIPESTATUS[0]}} >&2"
    out = subprocess.run(["bash", "-c", command], capture_output=True, text=True)
    assert "Traceback" not in out.stderr and "BrokenPipeError" not in out.stderr, out.stderr
    assert out.stderr.strip().splitlines()[-1] == "141", out.stderr


def test_bad_scene_prints_one_line_naming_the_file_and_exits_2(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "tropicrop.cli", "inspect", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr
    assert str(tmp_path / "scene.yaml") in lines[0]


def test_synth_shift_none_writes_a_pair_and_an_unknown_shift_is_one_line_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["synth", str(tmp_path / "pair"), "--preset", "tiny", "--size", "48", "--shift", "none"]) == 0
    assert (tmp_path / "pair" / "lem1920" / "scene.yaml").is_file()
    capsys.readouterr()
    assert main(["synth", str(tmp_path / "other"), "--preset", "tiny", "--size", "48", "--shift", "drought"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "drought" in err[0] and "calendar" in err[0]
    assert not (tmp_path / "other").exists()


@pytest.mark.parametrize("verbose", [0, 1])
def test_libraries_deprecation_notices_show_only_with_verbose(verbose: int) -> None:
    """A library's DeprecationWarning (numpy 2.5 under rasterio 1.4 gives one per window read) is its
    developers' business: hidden from a user's log unless -v; a UserWarning is shown either way."""
    code = (
        "import warnings; from tropicrop.logsetup import configure_logging\n"
        f"configure_logging({verbose})\n"
        "warnings.warn_explicit('old api', DeprecationWarning, 'somelib.py', 1, module='somelib')\n"
        "warnings.warn_explicit('odd input', UserWarning, 'somelib.py', 2, module='somelib')\n"
    )
    err = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stderr
    assert "odd input" in err
    assert ("old api" in err) == bool(verbose)


def test_demo_refuses_a_folder_holding_another_pair_before_any_work(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """``tropicrop demo --seed 1`` into a folder of a seed-0 demo would resume the seed-0 experiment on the
    seed-0 scenes: a silent wrong answer. It is refused in one line, naming the folder."""
    from tropicrop.cli.experiment import DEMO_PAIR
    from tropicrop.synthetic import write_pair

    data = tmp_path / "demo" / "data"
    write_pair(data, preset="tiny", size=32, seed=0)
    (data / DEMO_PAIR).write_text(json.dumps({"size": 32, "seed": 0}))
    assert main(["demo", "--out", str(tmp_path / "demo"), "--size", "32", "--seed", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(data) in err and "seed 0" in err and "seed 1" in err
    (data / DEMO_PAIR).unlink()  # a folder of an older demo: no record, the size read off the scene
    assert main(["demo", "--out", str(tmp_path / "demo"), "--size", "64"]) == 2
    assert "size 32" in capsys.readouterr().err
    assert not (tmp_path / "demo" / "experiment").exists()
