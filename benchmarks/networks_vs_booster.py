"""Where does the per-pixel booster beat the same-year network? One property of the scenes at a time (issue 32).

For each ``--settings`` entry (a named set of ``tropicrop synth`` field options, one property changed from the
LEM-like default), writes the synthetic pair for each seed and runs the experiment protocol with three
approaches, all tested on year B's test split:

* ``LightGBM (per-pixel)``: one booster per labelled date on B's train split, 3 x 3 looks (the demo's row);
* ``Baseline 1``: per-month UnetConvLSTM on B's train split (a small network, sized for a shared CPU);
* ``LightGBM, year A``: the cross-year booster, one per month on every labelled pixel of year A (as Baseline 2).

``--approaches`` picks others: the network levers, measured one by one on the same scenes. Prints mean
F1 per approach and the booster's lead over Baseline 1 per setting (mean and spread over the seeds), and
writes them with ``results_file.write_results`` (``benchmarks/results/networks_vs_booster.json``).

Small run (what docs/guide/networks-vs-booster.md reports; ~5-10 min per setting and seed on 2 busy cores):
``python benchmarks/networks_vs_booster.py --size 256 --seeds 0 --out runs/nvb``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_file import Figure, write_results

SETTINGS: dict[str, dict[str, Any]] = {
    "default": {},
    "interleaved": {"split": "interleaved"},
    "small-parcels": {"parcel_scale": 0.5},
    "white-speckle": {"speckle_correlation_px": 0.0},
    "few-fields": {"split": "interleaved", "parcel_scale": 0.5, "speckle_correlation_px": 0.0},
}
"""Field options of each setting (``tropicrop.synthetic.FieldOptions``), one property changed at a time."""

MODEL = {"lstm_channels": 32, "encoder_channels": [8, 8, 16, 32], "decoder_channels": [32, 16, 8], "head_channels": 8}
BOOSTER = {"looks": 3, "threads": 1}
SAME_YEAR = {"train_on": "b", "use": "train"}
APPROACHES: dict[str, dict[str, Any]] = {
    "booster": {"name": "LightGBM (per-pixel)", "mode": "per-month", "model": "lightgbm", "options": BOOSTER,
                **SAME_YEAR},
    "baseline1": {"name": "Baseline 1", "mode": "per-month", "model": "unet_convlstm", **SAME_YEAR},
    "booster-a": {"name": "LightGBM, year A", "mode": "per-month", "model": "lightgbm", "options": BOOSTER,
                  "train_on": "a", "use": "all"},
    # levers, one at a time against Baseline 1
    "dense": {"name": "Baseline 1 + stride 8", "mode": "per-month", "model": "unet_convlstm", **SAME_YEAR,
              "set": ["data.stride=8"]},
    "despeckle": {"name": "Baseline 1 + 3x3 multilook input", "mode": "per-month", "model": "unet_convlstm",
                  **SAME_YEAR, "options": {"looks": 3}},
    "centred": {"name": "Baseline 1 + label-centred patches", "mode": "per-month", "model": "unet_convlstm",
                **SAME_YEAR, "set": ["data.sampling=labels"]},
    "m2m": {"name": "VUnetConvLSTM many-to-many, year B", "mode": "all-months", "model": "vunet_convlstm_seq",
            **SAME_YEAR},
    "vunet-b": {"name": "VUnetConvLSTM, year B", "mode": "all-months", "model": "vunet_convlstm", **SAME_YEAR},
    # year A's network, then fine-tuned on every parcel of B's train split (parcels per class beyond any count)
    "vunet-a": {"name": "VUnetConvLSTM", "mode": "all-months", "model": "vunet_convlstm", "train_on": "a",
                "use": "all"},
    "finetune": {"name": "VUnetConvLSTM fine-tuned on B's train split",
                 "adapt": {"base": "VUnetConvLSTM", "methods": [], "parcels": 100000}},
    # the mean of Baseline 1's and the booster's calibrated probabilities (list both before it); trains nothing
    "ensemble": {"name": "Ensemble (Baseline 1 + LightGBM)",
                 "ensemble": {"members": ["Baseline 1", "LightGBM (per-pixel)"]}},
    "ensemble-a": {"name": "Ensemble (VUnetConvLSTM + LightGBM), year A",
                   "ensemble": {"members": ["VUnetConvLSTM", "LightGBM, year A"]}},
}
"""Approaches by key: the two same-year baselines, the cross-year booster, and the network levers."""
BASE = "booster,baseline1,booster-a"


def experiment_config(data: Path, keys: list[str]) -> dict[str, Any]:
    """The experiment with approaches ``keys`` on one pair, as a plain mapping."""
    return {
        "name": f"networks vs booster ({data.name})",
        "scenes": {"a": str(data / "lem1718"), "b": str(data / "lem1920")},
        "approaches": [APPROACHES[k] for k in keys],
        "train": {
            "seed": 0,
            "data": {"sequence_length": 12, "patch_size": 32, "stride": 16, "test_inputs": "context",
                     "val_fraction": 0.15, "val_block": 32, "val_limit": 128},
            "model": {"name": "unet_convlstm", "options": MODEL},
            "optim": {"lr": 0.002, "batch_size": 8, "focal_gamma": 2.0},
            "trainer": {"min_epochs": 3, "max_epochs": 12, "steps_per_epoch": 20, "patience": 2, "progress": False,
                        "threads": 1},
        },
        "predict": {"tile": 128, "overlap": 16, "probabilities": True},  # kept: the ensemble reuses them
    }


SCORES = (("oa", "OA", "OA %"), ("ece", "ECE", "ECE %"), ("ece_uncalibrated", "ECE uncalibrated", "ECE %"))
"""Figures beside F1 with ``--all-scores`` (key in the scores of an approach, name, unit)."""


def run_one(out: Path, preset: str, size: int, seed: int, fields: dict[str, Any], keys: list[str],
            folder: str | None = None) -> dict[str, dict[str, float]]:
    """Write one pair (unless written) and run approaches ``keys`` on it; returns by approach name its mean
    F1 and OA (%) and, for runs with calibrated probabilities, its expected calibration error (ECE, %); for an
    ensemble also its ECE without its own temperature (``ece_uncalibrated``).

    The experiment folder is ``OUT/FOLDER`` when given (a later run with more keys adds only those: levers
    measured one after another against the same Baseline 1), else ``OUT/experiment`` for the base
    approaches and ``OUT/<keys>`` for another set, so sets can run at once on one pair.
    """
    import dataclasses

    from tropicrop.config import from_dict
    from tropicrop.experiments import ExperimentConfig, run_experiment
    from tropicrop.runfiles import read_json
    from tropicrop.synthetic import get_preset, write_pair

    data = out / "data"
    if not (data / "lem1920").exists():
        options = dataclasses.replace(get_preset(preset).fields, **fields)
        write_pair(data, preset=preset, size=size, seed=seed, overwrite=True, fields=options)
    exp = out / (folder or ("experiment" if ",".join(keys) == BASE else "+".join(keys)))
    cfg = from_dict(ExperimentConfig, experiment_config(data, keys))
    run_experiment(None, exp, cfg=cfg, progress=False)
    scores = {}
    for record in sorted((exp / "approaches").glob("*.json")):
        r = read_json(record, "")
        scores[r["name"]] = {k: 100.0 * r[k] for k in ("f1", "oa", "ece") if r.get(k) is not None}
        before = (r.get("calibration") or {}).get("ece_uncalibrated")  # an ensemble: ECE without its temperature
        if before is not None:
            scores[r["name"]]["ece_uncalibrated"] = 100.0 * before
    return scores


def main(argv: list[str] | None = None) -> int:
    """Run the settings and seeds asked for, print the table, write the figures."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--settings", default="default,few-fields", help=f"comma-separated, of: {', '.join(SETTINGS)}")
    p.add_argument("--preset", default="tiny", help="synthetic preset whose dates the pairs have")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--seeds", default="0", help="comma-separated synthetic (and nothing else) seeds")
    p.add_argument("--approaches", default=BASE, help=f"comma-separated, of: {', '.join(APPROACHES)}")
    p.add_argument("--out", type=Path, default=Path("runs/networks_vs_booster"))
    p.add_argument("--folder", help="experiment folder under each pair's (approaches accumulate there)")
    p.add_argument("--all-scores", action="store_true", help="write OA and ECE figures beside F1")
    p.add_argument("--results", help="name of the results file (default: from the approaches)")
    p.add_argument("--report", help="comma-separated keys whose figures are written (default: every approach of "
                   "the folder); an experiment folder only takes more approaches, so a later --approaches lists all")
    args = p.parse_args(argv)
    names = [s for s in args.settings.split(",") if s]
    unknown = [s for s in names if s not in SETTINGS]
    if unknown:
        p.error(f"unknown setting {unknown[0]!r}; choose from {', '.join(SETTINGS)}")
    keys = [k for k in args.approaches.split(",") if k]
    if any(k not in APPROACHES for k in keys):
        p.error(f"unknown approach in {args.approaches!r}; choose from {', '.join(APPROACHES)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.report and any(k not in APPROACHES for k in args.report.split(",") if k):
        p.error(f"unknown approach in --report {args.report!r}; choose from {', '.join(APPROACHES)}")
    reported = None if not args.report else {APPROACHES[k]["name"] for k in args.report.split(",") if k}
    figures: list[Figure] = []
    for name in names:
        runs = [run_one(args.out / f"{name}-{args.size}-s{seed}", args.preset, args.size, seed, SETTINGS[name],
                        keys, args.folder) for seed in seeds]
        for approach in [a for a in runs[0] if reported is None or a in reported]:
            values = [r[approach]["f1"] for r in runs]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            print(f"{name:14s} {approach:32s} F1 {statistics.mean(values):5.1f} +- {spread:4.1f}  "
                  f"({', '.join(f'{v:.1f}' for v in values)})", flush=True)
            figures.append(Figure(f"{name} / {approach}", round(statistics.mean(values), 2), "F1 %",
                                  f"seeds {seeds}: {[round(v, 2) for v in values]}"))
            for key, label, unit in SCORES if args.all_scores else ():
                got = [r[approach][key] for r in runs if key in r[approach]]
                if got:
                    figures.append(Figure(f"{name} / {approach} / {label}", round(statistics.mean(got), 2),
                                          unit, f"seeds {seeds}: {[round(v, 2) for v in got]}"))
        if {"booster", "baseline1"} <= set(keys):
            lead = [r["LightGBM (per-pixel)"]["f1"] - r["Baseline 1"]["f1"] for r in runs]
            print(f"{name:14s} booster - Baseline 1: {statistics.mean(lead):+.1f}", flush=True)
            figures.append(Figure(f"{name} / booster minus Baseline 1", round(statistics.mean(lead), 2), "F1 points",
                                  f"seeds {seeds}: {[round(v, 2) for v in lead]}"))
    stem = args.results or "networks_vs_booster" + ("" if args.approaches == BASE else "_" + "+".join(keys))
    write_results(stem, figures, settings={**vars(args), "out": str(args.out),
                                                          "fields": {n: SETTINGS[n] for n in names}})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
