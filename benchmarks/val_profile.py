"""Calibration fitted on tiles against calibration fitted on patches: the same trained nets, two temperatures.

For each trained network run (``RUN``: per-month or all-months) and the scene its test split is scored on
(``SCENE``), two copies of the run (checkpoints hard-linked) have every net's ``calibration.json`` fitted
again, with ``data.val_profile: patches`` and with ``tiles``
(:func:`tropicrop.training.network.calibrate_net`, the product's code, with today's temperature objective
whatever the run was trained with); both then predict ``SCENE`` and are evaluated on its test split, as an
experiment does (``predict_run`` with 256 px tiles overlapping by 32, ``evaluate_predictions``). Printed and
written: average F1 (must not move: the temperature changes no class), ECE and Brier of each, the F1
``tropicrop check`` estimates from the maps without labels (its confidence estimate, which reads the
validation profile), the mean temperature, and the validation pixels each profile counted.

The run's ``config.yaml`` names its training scenes relative to the directory it was trained from: run
this from there (``--cwd``).

``python benchmarks/val_profile.py --cwd runs/demo3 --runs demo:3=experiment/runs/baseline-1=data/lem1920``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_file import Figure, write_results


def recalibrated_copy(run: Path, out: Path, profile: str) -> Path:
    """``run`` copied to ``out`` (checkpoints hard-linked), every net calibrated again with ``data.val_profile``
    = ``profile``."""
    from tropicrop.config import load_config
    from tropicrop.training import TrainConfig, prepare_data
    from tropicrop.training.network import calibrate_net
    from tropicrop.training.run import net_names

    shutil.copytree(run, out, copy_function=os.link)
    for cal in out.glob("nets/*/calibration.json"):  # a new file, not a write through the link into the source
        cal.unlink()
    cfg = load_config(TrainConfig, run / "config.yaml", [f"data.val_profile={profile}"])
    data = prepare_data(cfg)
    for name, targets in net_names(cfg, data):
        calibrate_net(cfg, data, name, targets, out / "nets" / name)
    return out


def scores(run: Path, scene: Path, out: Path) -> dict[str, float]:
    """F1, OA, ECE and Brier of ``run`` on ``scene``'s test split; mean temperature and validation pixels."""
    from tropicrop.check import estimate_predictions
    from tropicrop.evaluation import evaluate_predictions
    from tropicrop.inference.predict import predict_run

    predict_run(run, scene, out, tile=256, overlap=32, progress=False)
    result = evaluate_predictions(out, scene)
    estimate = estimate_predictions(run, out, [d.date for d in result.dates])  # check's confidence estimate
    cal = [json.loads(p.read_text()) for p in sorted(run.glob("nets/*/calibration.json"))]
    return {"f1": result.mean_f1, "oa": result.mean_oa, **result.calibration(),
            "estimated_f1": float(np.mean([d["estimated_f1"] for d in estimate.dates])),
            "temperature": float(np.mean([c["temperature"] for c in cal])),
            "val_pixels": float(sum(c["val_pixels"] for c in cal)),
            "val_ece_after": float(np.mean([c["ece_after"] for c in cal]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", required=True, help="NAME=RUN=SCENE,... (paths relative to --cwd)")
    parser.add_argument("--cwd", type=Path, default=Path("."), help="where the runs were trained from")
    parser.add_argument("--results", default="val_profile", help="name of the results file")
    args = parser.parse_args()
    os.chdir(args.cwd)
    figures: list[Figure] = []
    print("| run | fitted on | F1 | OA | ECE | Brier | estimated F1 | mean T | validation pixels | validation ECE after |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for entry in args.runs.split(","):
            name, run, scene = entry.split("=")
            both = {p: recalibrated_copy(Path(run), Path(tmp) / f"{name}-{p}", p) for p in ("patches", "tiles")}
            for fitted, path in both.items():
                row = scores(path, Path(scene), Path(tmp) / f"{name}-{fitted}-maps")
                print(f"| {name} | {fitted} | {100 * row['f1']:.1f} | {100 * row['oa']:.1f} | {row['ece']:.3f} | "
                      f"{row['brier']:.3f} | {100 * row['estimated_f1']:.1f} | {row['temperature']:.2f} | "
                      f"{row['val_pixels']:.0f} | {row['val_ece_after']:.3f} |", flush=True)
                figures += [Figure(f"{name}, {fitted}, {k}", round(row[k], 4), "fraction")
                            for k in ("f1", "oa", "ece", "brier", "estimated_f1", "val_ece_after")]
                figures += [Figure(f"{name}, {fitted}, mean temperature", round(row["temperature"], 3), "T"),
                            Figure(f"{name}, {fitted}, validation pixels", row["val_pixels"], "pixels")]
    print(f"results: {write_results(args.results, figures, settings={'runs': args.runs, 'cwd': str(args.cwd)})}")


if __name__ == "__main__":
    main()
