"""Calibration and accuracy estimated without labels, measured on synthetic pairs.

For every pair (``--pairs SEED:SHIFT,...``; ``tropicrop synth --seed SEED --shift SHIFT``), trains small
networks and a booster, maps year B's target dates with temperature scaling and without, scores the maps
against B's test split (``evaluate``: OA, macro F1, ECE, Brier, accuracy at coverage) and runs ``check``
(B's images only, the whole scene) for its estimated F1 and OA. Approaches:

* ``Baseline 1``: per-month UnetConvLSTM on B's train split (the same-year baseline),
* ``VUnetConvLSTM``: all-months VUnetConvLSTM on all of A (cross-year),
* ``LightGBM``: per-month booster on all of A (cross-year classical floor),
* ``VUnetConvLSTM + self-training``: the VUnetConvLSTM run adapted to B by mean-teacher self-training
  (``adapt --methods self_training``, ``--adapt-steps`` steps; no label of B), keeping year A's temperature.
  Self-training raises confidence by construction: its row shows whether ``check`` is fooled by it.

``check``'s estimators (:data:`tropicrop.estimate.ESTIMATORS`) are all computed; the one with the smallest
mean error on the tuning pair's cross-year rows is named, and its error on the reported pairs printed.
Calibration diagnostics per row: ECE per date, the validation ECE after scaling (in-sample: the pixels the
temperature was fitted on, from ``calibration.json``) and the ECE floor: the mean ECE of a perfectly calibrated
predictor with the map's confidences at the same pixel count (``ece_floor``; an ECE at or below it cannot be
told from a perfect one).

The first pair of ``--pairs`` is the TUNING pair: the estimator and the shift threshold of ``check`` are
chosen on it (its rows are printed but marked ``tuning``); figures are reported on the others.

``check``'s estimates come from the calibrated maps already written (:func:`tropicrop.check.estimate_predictions`,
what ``check`` computes after its own prediction); ``check --sample 0.25`` is run once per approach for its cost
and the error sampling adds.

Quick run (this machine, 2 cores shared with other jobs; about 30 minutes):
``python benchmarks/calibration.py --size 64 --months 2 --steps 8 --epochs 3 --adapt-steps 30 --pairs 1:all,0:all,2:radiometric``
Full settings: ``--size 128 --months 12 --steps 40 --epochs 12 --batch 16 --pairs 1:all,0:all,2:radiometric,3:calendar``.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_file import Figure, write_results

NET = {"lstm_channels": 16, "encoder_channels": [8, 8, 16, 16], "decoder_channels": [16, 8, 8], "head_channels": 8}
APPROACHES = [  # name, role, mode, model, train on, use
    ("Baseline 1", "same-year", "per-month", "unet_convlstm", "b", "train"),
    ("VUnetConvLSTM", "cross-year", "all-months", "vunet_convlstm", "a", "all"),
    ("LightGBM", "cross-year", "per-month", "lightgbm", "a", "all"),
    ("VUnetConvLSTM + self-training", "adapted", "all-months", "vunet_convlstm", "a", "all"),
]
ADAPTED_FROM = {"VUnetConvLSTM + self-training": ("VUnetConvLSTM", ["self_training"])}
FLOOR_DRAWS = 200  # draws of a perfectly calibrated predictor for the ECE floor


def train_approach(scene: Path, run: Path, mode: str, model: str, use: str, targets: list[Any],
                   args: argparse.Namespace) -> None:
    from tropicrop.config import load_config
    from tropicrop.training import TrainConfig, train

    sets = [f"data.scene={scene}", f"mode={mode}", f"model.name={model}", f"data.use={use}", "data.patch_size=16",
            "data.stride=8", "data.val_fraction=0.15", "data.val_limit=256", f"trainer.max_epochs={args.epochs}",
            f"optim.batch_size={args.batch}",
            f"trainer.steps_per_epoch={args.steps}", "trainer.patience=2", "trainer.progress=false",
            "trainer.precision=32-true", f"seed={args.seed}"]
    if model == "lightgbm":
        sets.append("model.options={looks: 3, n_estimators: 150, threads: 1}")
    cfg = load_config(TrainConfig, Path(__file__).resolve().parents[1] / "configs" / "quick.yaml", sets)
    if model != "lightgbm":
        cfg.model.options = dict(NET)
    if mode == "per-month":
        cfg.data.targets = targets
    train(cfg, run, force=True)


def adapt_approach(base: Path, scene: Path, run: Path, methods: list[str], args: argparse.Namespace) -> None:
    """Adapt the finished run ``base`` to year B (no label of B) into ``run``."""
    from tropicrop.adaptation import AdaptOptions, adapt_run

    options = AdaptOptions.model_validate({"methods": methods, "seed": args.seed, "self_training": {
        "steps": args.adapt_steps, "batch_size": args.batch, "patch_size": 32}})
    adapt_run(base, scene, run, options, force=True, progress=False)


def calibration_diagnostics(run: Path, result: Any, seed: int) -> dict[str, float]:
    """ECE per date, the validation ECE after scaling (mean over nets) and the ECE floor of a perfectly
    calibrated predictor with the same confidences and pixel count (mean over dates, as the ECE)."""
    import numpy as np

    from tropicrop.layout import RunLayout
    from tropicrop.reliability import LEVELS, Reliability
    from tropicrop.valprofile import read_profile

    rng = np.random.default_rng(seed)
    row: dict[str, float] = {}
    floors = []
    for k, d in enumerate(result.dates):
        rel = d.reliability
        row[f"ece_date{k + 1}"] = rel.ece()
        row[f"pixels_date{k + 1}"] = rel.pixels
        p = np.arange(LEVELS + 1) / LEVELS
        floors.append(float(np.mean([Reliability(rel.count, rng.binomial(rel.count, p)).ece()
                                     for _ in range(FLOOR_DRAWS)])))
    row["ece_floor"] = float(np.mean(floors))
    levels = np.arange(LEVELS + 1) / LEVELS  # mean confidence of the scored pixels (self-training raises it)
    row["mean_confidence"] = float(np.mean([(d.reliability.count * levels).sum() / d.reliability.pixels
                                            for d in result.dates]))
    profiles = [read_profile(n) for n in sorted(RunLayout(run).root.glob("nets/*")) if n.is_dir()]
    profiles = [q for q in profiles if q is not None]
    row["ece_val_after"] = float(np.mean([q.ece_after for q in profiles]))
    row["ece_val_before"] = float(np.mean([q.ece_before for q in profiles]))
    row["val_pixels"] = float(np.mean([q.pixels for q in profiles]))
    row["temperature_min"] = min(q.temperature for q in profiles)
    row["temperature_max"] = max(q.temperature for q in profiles)
    return row


def scored_pixels(year_b: Path) -> Any:
    """(H, W) bool: B's test split where some date has a label: the pixels the true scores count, given to
    the estimate as a field mask (their label values are not used)."""
    from tropicrop.scene import TEST, load_scene

    scene = load_scene(year_b)
    return (scene.read_split() == TEST) & (scene.read_labels() > 0).any(axis=0)


def measure(run: Path, year_b: Path, dates: list[Any], work: Path) -> dict[str, Any]:
    """True scores and calibration with and without temperature, and check's estimates (both estimators)."""
    from tropicrop.check import check_run, estimate_predictions
    from tropicrop.estimate import ESTIMATORS
    from tropicrop.evaluation import evaluate_predictions
    from tropicrop.inference import predict_run

    row: dict[str, Any] = {}
    for calibration in ("temperature", "none"):
        out = work / calibration
        predict_run(run, year_b, out, dates, progress=False, calibration=calibration)
        result = evaluate_predictions(out, year_b, split="test")
        cal = result.calibration()
        suffix = "" if calibration == "temperature" else "_uncalibrated"
        row.update({f"f1{suffix}": result.mean_f1, f"oa{suffix}": result.mean_oa, f"ece{suffix}": cal["ece"],
                    f"brier{suffix}": cal["brier"], f"acc_at_50{suffix}": cal["acc_at_50"],
                    f"acc_at_80{suffix}": cal["acc_at_80"]})
        if calibration == "temperature":
            row.update(calibration_diagnostics(run, result, seed=0))
    for estimator in ESTIMATORS:  # check's estimate, from the calibrated maps of the whole scene
        est = estimate_predictions(run, work / "temperature", dates, estimator).to_dict()
        row[f"est_f1_{estimator}"], row[f"est_oa_{estimator}"] = est["estimated_f1"], est["estimated_oa"]
        row["validation_f1"], row["max_shift"] = est["validation_f1"], max(d["shift"] for d in est["dates"])
        fields = estimate_predictions(run, work / "temperature", dates, estimator, scored_pixels(year_b)).to_dict()
        row[f"est_f1_{estimator}_fields"], row[f"est_oa_{estimator}_fields"] = (fields["estimated_f1"],
                                                                                fields["estimated_oa"])
    clock = time.perf_counter()
    sample = check_run(run, year_b, dates, sample=0.25, estimator="atc", tile=32).to_dict()
    row["check_seconds_sample25"] = time.perf_counter() - clock
    row["est_f1_atc_sample25"] = sample["estimated_f1"]
    return row


def run_pair(seed: int, shift: str, args: argparse.Namespace, root: Path) -> list[dict[str, Any]]:
    from tropicrop.scene import load_scene
    from tropicrop.synthetic import write_pair

    data = root / f"pair-{seed}-{shift}"
    if not (args.reuse and (data / "lem1920" / "scene.yaml").is_file()):
        write_pair(data, preset="lem", size=args.size, seed=seed, shift=shift, overwrite=True)
    scenes = {"a": data / "lem1718", "b": data / "lem1920"}
    labelled = {k: load_scene(p).labelled_dates for k, p in scenes.items()}
    step = max(1, len(labelled["b"]) // args.months)
    dates_b = labelled["b"][::step][: args.months]
    rows: list[dict[str, Any]] = []
    works: dict[str, Path] = {}
    for name, role, mode, model, on, use in APPROACHES:
        clock = time.perf_counter()
        run = root / "runs" / f"{seed}-{shift}-{name.replace(' ', '_').replace('+', 'plus')}"
        months = {d.month for d in dates_b}
        targets = [d for d in labelled[on] if d.month in months]
        if not (args.reuse and (run / "result.json").is_file()):
            if name in ADAPTED_FROM:
                base, methods = ADAPTED_FROM[name]
                adapt_approach(root / "runs" / f"{seed}-{shift}-{base.replace(' ', '_')}", scenes["b"], run, methods,
                               args)
            else:
                train_approach(scenes[on], run, mode, model, use, targets, args)
        work = root / "pred" / run.name
        if not args.reuse:  # maps of an earlier run in --out would otherwise count as done
            shutil.rmtree(work, ignore_errors=True)
        row = {"pair": f"{seed}:{shift}", "approach": name, "role": role, **measure(run, scenes["b"], dates_b, work)}
        row["seconds"] = time.perf_counter() - clock
        rows.append(row)
        works[name] = work
        print(format_row(row), flush=True)
    add_agreement(rows, works, dates_b)
    return rows


def add_agreement(rows: list[dict[str, Any]], works: dict[str, Path], dates: list[Any]) -> None:
    """``est_f1_agreement`` / ``est_oa_agreement`` of every row with a partner: its calibrated maps scored
    against those of the other approaches trained on the same year (not adapted ones, nor its own base), as
    ``check --against`` and the experiment do."""
    from tropicrop.agreement import agreement_estimates
    from tropicrop.experiments import agreement_references

    year = {name: on for name, _, _, _, on, _ in APPROACHES}
    records = [{"name": r["approach"], "train_on": year[r["approach"]],  # the experiment's record fields it reads
                **({"adapt": {"base": ADAPTED_FROM[r["approach"]][0]}} if r["approach"] in ADAPTED_FROM else {})}
               for r in rows]
    for row, record in zip(rows, records, strict=True):
        refs = [r["name"] for r in agreement_references(record, records)]
        if not refs:
            continue
        est = agreement_estimates(works[row["approach"]] / "temperature", [works[r] / "temperature" for r in refs],
                                  dates)
        row["est_f1_agreement"] = float(np.nanmean([e["estimated_f1"] for e in est]))
        row["est_oa_agreement"] = float(np.nanmean([e["estimated_oa"] for e in est]))
        print(f"{row['pair']:<14}{row['approach']:<31}agreement with {', '.join(refs)}: est F1 "
              f"{100 * row['est_f1_agreement']:.1f} (true {100 * row['f1']:.1f})", flush=True)


def format_row(row: dict[str, Any]) -> str:
    def pct(v: float) -> str:
        return "  nan" if v is None or not math.isfinite(v) else f"{100 * v:5.1f}"

    return (f"{row['pair']:<14}{row['approach']:<31}F1 {pct(row['f1'])}  ECE raw {row['ece_uncalibrated']:.3f} -> "
            f"{row['ece']:.3f} (floor {row['ece_floor']:.3f}, validation {row['ece_val_after']:.3f})  mean conf. "
            f"{pct(row['mean_confidence'])}  est F1 atc "
            f"{pct(row['est_f1_atc'])} conf {pct(row['est_f1_confidence'])} doc {pct(row['est_f1_doc'])}  "
            f"fields: atc {pct(row['est_f1_atc_fields'])} doc {pct(row['est_f1_doc_fields'])}  "
            f"shift {row['max_shift']:.2f}  ({row['seconds']:.0f} s)")


def unit_of(key: str) -> str:
    """The unit of a row's figure."""
    if "seconds" in key:
        return "s"
    if "pixels" in key:
        return "pixels"
    return "T" if key.startswith("temperature") else "fraction"


def estimator_errors(rows: list[dict[str, Any]], tuning: str) -> list[Figure]:
    """Mean |estimated - true| F1 per estimator, scope, role (cross-year; adapted) and kind of pair; names the
    estimator chosen on the tuning pair's cross-year rows (whole scene, as ``check`` runs)."""
    from tropicrop.estimate import ESTIMATORS

    figures, tuned = [], {}
    for estimator in (*ESTIMATORS, "agreement"):  # agreement: rows with a partner of the same year, whole scene
        for where in ("", "_fields"):
            for role in ("cross-year", "adapted"):
                for pair_kind, chosen in (("tuning", True), ("reported", False)):
                    errors = [abs(r[f"est_f1_{estimator}{where}"] - r["f1"]) for r in rows
                              if (r["pair"] == tuning) == chosen and r["role"] == role
                              and f"est_f1_{estimator}{where}" in r]
                    if not errors:
                        continue
                    mean = sum(errors) / len(errors)
                    scope = "scored pixels" if where else "whole scene"
                    print(f"{estimator} ({scope}): mean |estimated - true| F1 of the {role} approaches, "
                          f"{pair_kind} pairs: {100 * mean:.1f} points (max {100 * max(errors):.1f})")
                    figures.append(Figure(f"{estimator}{where} mean abs F1 error {role} {pair_kind}", mean, "fraction"))
                    if (where, role, pair_kind) == ("", "cross-year", "tuning"):
                        tuned[estimator] = mean
    if tuned:
        best = min(tuned, key=lambda e: tuned[e])
        print(f"estimator chosen on the tuning pair: {best} ({100 * tuned[best]:.1f} points)")
        figures.append(Figure("estimator chosen on the tuning pair", best, "name", f"of {sorted(tuned)}"))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--months", type=int, default=3, help="target months of year B mapped (per-month nets)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--adapt-steps", type=int, default=30, help="self-training steps of the adapted row")
    parser.add_argument("--pairs", default="1:all,0:all,2:radiometric", help="SEED:SHIFT,...; the first tunes")
    parser.add_argument("--out", help="keep the pairs, runs and maps here (default: a temporary folder)")
    parser.add_argument("--reuse", action="store_true", help="reuse pairs, runs and maps already in --out")
    args = parser.parse_args()
    pairs = [(int(p.split(":")[0]), p.split(":")[1]) for p in args.pairs.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.out) if args.out else Path(tmp)
        rows = [row for seed, shift in pairs for row in run_pair(seed, shift, args, root)]
    tuning = f"{pairs[0][0]}:{pairs[0][1]}"
    figures = []
    for row in rows:
        note = "tuning pair" if row["pair"] == tuning else "reported pair"
        for key, value in row.items():
            if key not in ("pair", "approach", "role"):
                figures.append(Figure(f"{row['pair']} {row['approach']} {key}", value, unit_of(key), note))
    figures += estimator_errors(rows, tuning)
    path = write_results("calibration", figures, precision="float32", settings=vars(args))
    print(f"results: {path}")


if __name__ == "__main__":
    main()
