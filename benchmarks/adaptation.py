"""Adaptation to a new year, measured: the ablation of each method alone, combined, and with few labels.

For each ``--shifts`` kind, writes the synthetic pair (``tropicrop synth --shift KIND``) and runs the
experiment protocol with these approaches (a small network, sized for a shared CPU):

* ``Baseline 1`` (per-month UnetConvLSTM on B's train split; with ``--baseline1`` only, it is 12 nets),
* ``Same-year VUnetConvLSTM`` (VUnetConvLSTM on B's train split: the same network's upper bound, the
  reference when Baseline 1 is not run; ``--same-year``),
* ``VUnetConvLSTM`` (trained on year A) and ``VUnetConvLSTM + doy augmentation`` (data.doy_shift=30,
  ``--doy-aug``),
* the year-A VUnetConvLSTM adapted with each unsupervised method alone, then all together, and the
  doy-augmented one adapted with all of them,
* with ``--few``, the year-A VUnetConvLSTM fine-tuned on k labelled parcels per class of B (k = 1, 3, 10).

Prints average F1/OA per approach, the F1 change against the unadapted VUnetConvLSTM and the share of the
gap to the reference (Baseline 1 if run, else the same-year VUnetConvLSTM) that adaptation recovers;
``OUT/KIND/report.md`` holds the full report with the per-date curves.

Run: ``python benchmarks/adaptation.py --size 128 --shifts all,calendar,radiometric,rotation --out
runs/bench2`` (20-40 minutes per shift kind on 2 busy CPU cores; several kinds can run in parallel).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from results_file import Figure, write_results

MODEL = {"lstm_channels": 32, "encoder_channels": [8, 8, 16, 32], "decoder_channels": [32, 16, 8], "head_channels": 8}
ADAPT = {"self_training": {"steps": 100, "batch_size": 8, "patch_size": 32},
         "few_labels": {"steps": 60, "batch_size": 8, "patch_size": 32}}
UNSUPERVISED = ["year_stats", "adabn", "doy_shift", "self_training"]
LABELS = {"year_stats": "year statistics", "adabn": "AdaBN", "doy_shift": "doy shift estimation",
          "self_training": "self-training"}


def experiment_config(data: Path, baseline1: bool, same_year: bool, doy_aug: bool, few: bool) -> dict[str, Any]:
    """The experiment of one shift kind, as a plain mapping."""
    approaches: list[dict[str, Any]] = []
    if baseline1:
        approaches.append({"name": "Baseline 1", "mode": "per-month", "model": "unet_convlstm", "train_on": "b",
                           "use": "train"})
    if same_year:
        approaches.append({"name": "Same-year VUnetConvLSTM", "mode": "all-months", "model": "vunet_convlstm",
                           "train_on": "b", "use": "train"})
    approaches.append({"name": "VUnetConvLSTM", "mode": "all-months", "model": "vunet_convlstm", "train_on": "a",
                       "use": "all"})
    for method in UNSUPERVISED:
        approaches.append({"name": f"VUnetConvLSTM + {LABELS[method]}",
                           "adapt": {"base": "VUnetConvLSTM", "methods": [method], **ADAPT}})
    approaches.append({"name": "VUnetConvLSTM + adaptation",
                       "adapt": {"base": "VUnetConvLSTM", "methods": UNSUPERVISED, **ADAPT}})
    if few:
        for k in (1, 3, 10):
            approaches.append({"name": f"VUnetConvLSTM + {k} parcels per class",
                               "adapt": {"base": "VUnetConvLSTM", "methods": [], "parcels": k, **ADAPT}})
    # the doy-augmented network last: its training is the longest step not needed by the rows above
    if doy_aug:
        approaches.append({"name": "VUnetConvLSTM + doy augmentation", "mode": "all-months", "model": "vunet_convlstm",
                           "train_on": "a", "use": "all", "set": ["data.doy_shift=30"]})
    if doy_aug:
        approaches.append({"name": "VUnetConvLSTM + doy augmentation + adaptation",
                           "adapt": {"base": "VUnetConvLSTM + doy augmentation", "methods": UNSUPERVISED, **ADAPT}})
    return {
        "name": f"adaptation benchmark ({data.name})",
        "scenes": {"a": str(data / "lem1718"), "b": str(data / "lem1920")},
        "approaches": approaches,
        "train": {
            "seed": 0,
            "data": {"sequence_length": 12, "patch_size": 32, "stride": 16, "val_fraction": 0.15, "val_limit": 128},
            "model": {"name": "vunet_convlstm", "options": MODEL},
            "optim": {"lr": 0.002, "batch_size": 8, "focal_gamma": 2.0},
            "trainer": {"max_epochs": 20, "steps_per_epoch": 20, "patience": 5, "progress": False, "threads": 1},
        },
        "predict": {"tile": 128, "overlap": 16},
    }


def summarise(out: Path) -> list[str]:
    """Lines of figures from the finished approach records of one experiment."""
    from tropicrop.adaptation.report import reference_record
    from tropicrop.report import read_records

    records = read_records(out)
    by_name = {r["name"]: r for r in records}
    ref = reference_record(records)
    lines = [f"{'approach':<48} {'F1':>6} {'OA':>6} {'dF1':>6} {'gap rec.':>8} {'doy off':>7} {'time s':>7}"]
    for r in records:
        base = by_name.get(r["adapt"]["base"]) if r.get("adapt") else (
            by_name.get("VUnetConvLSTM") if r["name"] == "VUnetConvLSTM + doy augmentation" else None)
        delta = 100 * (r["f1"] - base["f1"]) if base else None
        gap = 100 * (ref["f1"] - base["f1"]) if base and ref else None
        rec = f"{100 * delta / gap:7.0f}%" if delta is not None and gap and gap > 0 else ""
        off = f"{r['adapt']['doy_offset']:+d}" if r.get("adapt") else ""
        seconds = r["adapt"]["seconds"] if r.get("adapt") else r["train_seconds"]
        lines.append(f"{r['name']:<48} {100 * r['f1']:6.1f} {100 * r['oa']:6.1f} "
                     f"{'' if delta is None else f'{delta:+6.1f}':>6} {rec:>8} {off:>7} {seconds:7.0f}")
    if ref:
        lines.append(f"reference: {ref['name']}")
    return lines


def record_figures(kind: str, out: Path) -> list[Figure]:
    """Average F1 and OA of every finished approach of one shift kind, as the result file's figures."""
    from tropicrop.report import read_records

    figures = []
    for r in read_records(out):
        figures += [Figure(f"--shift {kind}, {r['name']}, average F1", round(100 * r["f1"], 2), "%"),
                    Figure(f"--shift {kind}, {r['name']}, average OA", round(100 * r["oa"], 2), "%")]
        if r.get("adapt"):
            figures.append(Figure(f"--shift {kind}, {r['name']}, doy offset", r["adapt"]["doy_offset"], "days"))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shifts", default="all,calendar,radiometric,rotation")
    parser.add_argument("--data", default="data/bench")
    parser.add_argument("--out", default="runs/bench")
    parser.add_argument("--few", default="all", help="shift kinds that also get the few-label runs ('' for none)")
    parser.add_argument("--baseline1", default="", help="shift kinds that also train Baseline 1 (12 nets)")
    parser.add_argument("--same-year", default="all", help="shift kinds that also train the same-year VUnetConvLSTM")
    parser.add_argument("--doy-aug", default="all,calendar", help="shift kinds that also train with doy augmentation")
    parser.add_argument("--summary-only", action="store_true", help="print the figures of finished experiments")
    args = parser.parse_args()

    import torch

    from tropicrop.config import from_dict
    from tropicrop.experiments import ExperimentConfig, run_experiment
    from tropicrop.synthetic import write_pair

    torch.set_num_threads(1)
    few, b1 = set(filter(None, args.few.split(","))), set(filter(None, args.baseline1.split(",")))
    same, aug = set(filter(None, args.same_year.split(","))), set(filter(None, args.doy_aug.split(",")))
    figures: list[Figure] = []
    for kind in filter(None, args.shifts.split(",")):
        data, out = Path(args.data) / kind, Path(args.out) / kind
        if not args.summary_only:
            if not (data / "lem1920" / "scene.yaml").is_file():
                write_pair(data, preset="lem", size=args.size, seed=args.seed, shift=kind, overwrite=True)
            cfg = from_dict(ExperimentConfig, experiment_config(data, kind in b1, kind in same, kind in aug, kind in few))
            run_experiment(None, out, cfg=cfg, progress=False)
        print(f"\n== shift {kind} ({args.size} px, seed {args.seed}) ==")
        print("\n".join(summarise(out)))
        offsets = {}
        for path in sorted((out / "runs").glob("*/adaptation.json")):
            offsets[path.parent.name] = json.loads(path.read_text())["doy_offset"]
        print("estimated doy offsets:", offsets)
        figures += record_figures(kind, out)
    write_results("adaptation", figures, settings={"size": args.size, "seed": args.seed, "shifts": args.shifts,
                                                   "few": args.few, "baseline1": args.baseline1,
                                                   "same_year": args.same_year, "doy_aug": args.doy_aug, "model": MODEL})


if __name__ == "__main__":
    main()
