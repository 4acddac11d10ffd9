"""What should the temperature minimise? Validation NLL, Brier or ECE, judged by the test split's ECE.

For each run of ``--runs`` (trained network runs: per-month or all-months; run them from the folder their
saved config's relative paths start in), every net's best weights are run on its own validation pixels
(the patches training drew, as after training), and ``T`` is fitted three ways
(:data:`tropicrop.calibration.OBJECTIVES`), besides ``T = 1``. The run then maps ``--scene`` uncalibrated
with probabilities (``predict --calibration none --probabilities``), and each net's ``T`` is applied to its
dates' probabilities (their log: the same as dividing the logits, up to the 1/255 rounding of the file) to
score the ECE (15 bins) and the mean confidence on the scene's test split. The objective of the smallest
test ECE on the ``--tuning`` run names ``check``'s default (``DEFAULT_OBJECTIVE``); the others are
reported.

``python benchmarks/temperature_objective.py --runs demo0=runs/demo/experiment/runs/baseline-1 --scene runs/demo/data/lem1920``
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_file import Figure, write_results


def validation_temperatures(run_dir: Path) -> dict[dt.date | None, dict[str, float]]:
    """Per net (its target date; None for an all-months net): T fitted by each objective, and the
    validation ECE at each."""
    from tropicrop.calibration import OBJECTIVES, expected_calibration_error, fit_temperature
    from tropicrop.config import load_config
    from tropicrop.config.training import TrainConfig
    from tropicrop.layout import RunLayout
    from tropicrop.models.loading import network_from_checkpoint
    from tropicrop.runfiles import RETRAIN, load_checkpoint, read_class_table, read_normalizer
    from tropicrop.trainingdata import prepare_data, scenes_eval_batches
    from tropicrop.valprofile import validation_logits

    run = RunLayout(run_dir)
    cfg = load_config(TrainConfig, run.config)
    classes = read_class_table(run.classes, RETRAIN)
    data = prepare_data(cfg, classes, read_normalizer(run.normalization), run.config)
    found: dict[dt.date | None, dict[str, float]] = {}
    for ckpt in run.best_checkpoints():
        checkpoint = load_checkpoint(ckpt)
        target = checkpoint["hyper_parameters"].get("target")
        date = dt.date.fromisoformat(target) if target else None
        model = network_from_checkpoint(ckpt, checkpoint, classes, cfg.model.name, cfg.model.options).eval()
        targets = [[date]] if date else [list(s.targets) for s in data.scenes]
        ds = scenes_eval_batches(data, targets, 32, cfg.data.patch_size, cfg.seed, cfg.data.val_limit)
        z, y, _ = validation_logits(model, ds)
        zt = torch.as_tensor(z, dtype=torch.float64)
        row = {"pixels": float(len(y))}
        for objective in (*OBJECTIVES, "none"):
            t = 1.0 if objective == "none" else fit_temperature(zt, y, objective=objective)
            p = torch.softmax(zt / t, dim=1).numpy()
            row[f"T_{objective}"] = t
            row[f"val_ece_{objective}"] = expected_calibration_error(p.max(axis=1), p.argmax(axis=1) == y)
        found[date] = row
        print(f"{date or 'all-months'}: " + "  ".join(f"{o} T {row[f'T_{o}']:.2f} val ECE {row[f'val_ece_{o}']:.3f}"
                                                      for o in (*OBJECTIVES, "none")), flush=True)
    return found


def test_scores(run_dir: Path, scene_dir: Path, temps: dict[dt.date | None, dict[str, float]], work: Path
                ) -> dict[str, tuple[float, float, float]]:
    """Per objective: (test ECE, mean confidence, accuracy) on the scene's test split, each date's
    probabilities tempered by the temperature of the net that maps it."""
    import rasterio

    from tropicrop.calibration import OBJECTIVES, expected_calibration_error
    from tropicrop.classes import ClassTable
    from tropicrop.evaluation import read_class_names
    from tropicrop.inference import predict_run
    from tropicrop.layout import PredictionLayout
    from tropicrop.scene import TEST, load_scene

    scene = load_scene(scene_dir)
    by_month = {d.month: d for d in temps if d is not None}  # a per-month net maps its month of another year
    serving = {d: None if None in temps else by_month.get(d.month) for d in scene.labelled_dates}
    dates = [d for d in scene.labelled_dates if None in temps or d.month in by_month]
    predict_run(run_dir, scene, work, dates, progress=False, calibration="none", probabilities=True)
    lookup = ClassTable(names=read_class_names(work)).lookup(scene.classes)
    split = scene.read_split()
    logp, labels, nets = [], [], []
    for d in dates:
        with rasterio.open(PredictionLayout(work).probabilities(d)) as src:
            p = src.read().astype(np.float64)
        ref = lookup[scene.read_labels(dates=[d])[0]]
        keep = (split == TEST) & (ref > 0)
        q = p[:, keep].T + 0.5  # uint8 levels of 1/255: half a level keeps the log finite
        logp.append(np.log(q / q.sum(axis=1, keepdims=True)))
        labels.append(ref[keep] - 1)
        nets.append(serving[d])
    out = {}
    for objective in (*OBJECTIVES, "none"):
        conf, right = [], []
        for z, y, net in zip(logp, labels, nets, strict=True):
            p = torch.softmax(torch.as_tensor(z / temps[net][f"T_{objective}"]), dim=1).numpy()
            conf.append(p.max(axis=1))
            right.append(p.argmax(axis=1) == y)
        c, r = np.concatenate(conf), np.concatenate(right)
        out[objective] = (expected_calibration_error(c, r), float(c.mean()), float(r.mean()))
        print(f"test split, T by {objective}: ECE {out[objective][0]:.3f}, mean confidence {out[objective][1]:.3f}, "
              f"accuracy {out[objective][2]:.3f}", flush=True)
    return out


def main() -> None:
    from tropicrop.calibration import OBJECTIVES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", required=True, help="NAME=RUN_DIR,... (network runs)")
    parser.add_argument("--scene", required=True, help="scene whose test split scores the temperatures, or NAME=SCENE,...")
    parser.add_argument("--tuning", help="NAME of the run the objective is chosen on (default: the first)")
    parser.add_argument("--results", default="temperature_objective")
    args = parser.parse_args()
    torch.set_num_threads(1)
    runs = dict(entry.split("=", 1) for entry in args.runs.split(","))
    scenes = (dict(entry.split("=", 1) for entry in args.scene.split(",")) if "=" in args.scene
              else dict.fromkeys(runs, args.scene))
    tuning = args.tuning or next(iter(runs))
    figures, tuned = [], {}
    for name, run in runs.items():
        print(f"== {name}: {run}", flush=True)
        temps = validation_temperatures(Path(run))
        with tempfile.TemporaryDirectory() as tmp:
            scores = test_scores(Path(run), Path(scenes[name]), temps, Path(tmp))
        note = "tuning run" if name == tuning else "reported run"
        for objective, (ece, conf, acc) in scores.items():
            worse = sum(t[f"val_ece_{objective}"] > t["val_ece_none"] + 1e-9 for t in temps.values())
            figures.append(Figure(f"{name} test ECE, T by {objective}", round(ece, 3), "fraction",
                                  f"{note}; mean confidence {conf:.3f}, accuracy {acc:.3f}; validation ECE above "
                                  f"T = 1's on {worse} of {len(temps)} nets"))
            if name == tuning and objective in OBJECTIVES:
                tuned[objective] = ece
    best = min(tuned, key=lambda o: tuned[o])
    print(f"objective chosen on {tuning}: {best}")
    figures.append(Figure("objective chosen on the tuning run", best, "name", f"of {list(OBJECTIVES)}"))
    print(f"results: {write_results(args.results, figures, settings=vars(args))}")


if __name__ == "__main__":
    main()
