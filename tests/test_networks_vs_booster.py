"""configs/networks_vs_booster.yaml: the demo plus the cross-year booster, which learns from year A (issue 32)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tropicrop.config import ExperimentConfig, load_config
from tropicrop.experiments import extends, run_experiment
from tropicrop.layout import ExperimentLayout, RunLayout, slug
from tropicrop.scene import load_scene

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
CROSS_YEAR_BOOSTER = "LightGBM (per-pixel), year A"


def test_the_config_is_the_demo_plus_a_cross_year_booster() -> None:
    demo = load_config(ExperimentConfig, CONFIGS / "demo.yaml")
    cfg = load_config(ExperimentConfig, CONFIGS / "networks_vs_booster.yaml")      # validated as it loads
    assert extends(demo, cfg)
    added = {a.name: a for a in cfg.approaches if a not in demo.approaches}
    booster = added[CROSS_YEAR_BOOSTER]
    assert (booster.model, booster.mode, booster.train_on, booster.use) == ("lightgbm", "per-month", "a", "all")
    same_year = next(a for a in demo.approaches if a.model == "lightgbm")
    assert booster.options == same_year.options          # the same booster, only the year differs


def test_the_cross_year_booster_learns_from_year_a_and_is_tested_on_b(tiny_pair: Path, tmp_path: Path) -> None:
    cfg = yaml.safe_load((CONFIGS / "networks_vs_booster.yaml").read_text())
    cfg["scenes"] = {"a": str(tiny_pair / "lem1718"), "b": str(tiny_pair / "lem1920")}
    cfg["approaches"] = [{**a, "options": {**a["options"], "n_estimators": 10, "max_pixels": 500, "threads": 1}}
                         for a in cfg["approaches"] if a["name"] == CROSS_YEAR_BOOSTER]
    cfg["train"]["data"].update(patch_size=16, stride=8, val_block=16, val_limit=16)
    config = tmp_path / "nvb.yaml"
    config.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "exp"
    run_experiment(config, out, progress=False)

    layout = ExperimentLayout(out)
    record = json.loads(layout.record(slug(CROSS_YEAR_BOOSTER)).read_text())
    assert (record["train_on"], record["model"]) == ("a", "lightgbm")
    run = RunLayout(layout.run(slug(CROSS_YEAR_BOOSTER)).root)
    trained = yaml.safe_load(run.config.read_text())
    assert Path(trained["data"]["scene"]) == tiny_pair / "lem1718"
    year_a = {d.isoformat() for d in load_scene(tiny_pair / "lem1718").labelled_dates}
    nets = {p.name for p in run.root.joinpath("nets").iterdir()}
    assert nets == year_a                                 # one booster per labelled date of year A
    year_b = {d.isoformat() for d in load_scene(tiny_pair / "lem1920").labelled_dates}
    assert {d["date"] for d in record["per_date"]} == year_b   # tested on year B's months
    assert 0.0 < record["f1"] <= 1.0
