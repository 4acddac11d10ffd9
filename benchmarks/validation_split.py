"""Validation by blocks against validation by whole fields (``data.val_split``): what each does to the
temperature, the test ECE and F1 (issue 30).

Each ``--folders`` entry is ``NAME=EXPERIMENT_DIR``, a finished experiment holding an approach and its
whole-field twin (the same approach with ``set: [data.val_split=fields]``), named ``"<approach>, <suffix>"``
(``--suffix``, default ``whole-field validation``). For every pair it prints and writes, from the records and
each net's ``calibration.json``: test F1, OA and ECE (year B's test split), the validation accuracy and
pixels the temperature was fitted on, and the mean temperature over the nets; the gap between validation
accuracy and test OA is what temperature scaling cannot see.

Run: ``python benchmarks/validation_split.py --folders demo:2=EXP,few-fields:3=EXP [--approaches A,B]``
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_file import Figure, write_results


def slug(name: str) -> str:
    """The experiment's folder name of an approach (as :func:`tropicrop.layout.slug`)."""
    from tropicrop.layout import slug as layout_slug

    return layout_slug(name)


def approach_figures(folder: Path, name: str) -> dict[str, Any] | None:
    """Test figures of approach ``name`` in ``folder`` and its nets' calibration fits (None if not run)."""
    record_path = folder / "approaches" / f"{slug(name)}.json"
    if not record_path.is_file():
        return None
    record = json.loads(record_path.read_text())
    fits = [json.loads(p.read_text()) for p in sorted((folder / "runs" / slug(name) / "nets").glob("*/calibration.json"))]
    return {"f1": record["f1"], "oa": record["oa"], "ece": record.get("ece"),
            "val_accuracy": float(np.mean([f["val_accuracy"] for f in fits])) if fits else float("nan"),
            "val_pixels": int(np.mean([f["val_pixels"] for f in fits])) if fits else 0,
            "temperature": float(np.mean([f["temperature"] for f in fits])) if fits else float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folders", required=True, help="NAME=EXPERIMENT_DIR,...")
    parser.add_argument("--approaches", default="Baseline 1,LightGBM (per-pixel)", help="approaches with a twin")
    parser.add_argument("--suffix", default="whole-field validation", help="the twins' name after '<approach>, '")
    parser.add_argument("--results", default="validation_split", help="name of the results file")
    args = parser.parse_args()
    figures = []
    for entry in args.folders.split(","):
        setting, path = entry.split("=", 1)
        for approach in [a.strip() for a in re.split(r",(?![^(]*\))", args.approaches)]:
            for split, name in (("blocks", approach), ("fields", f"{approach}, {args.suffix}")):
                found = approach_figures(Path(path), name)
                if found is None:
                    print(f"{setting}: {name}: not run")
                    continue
                print(f"{setting} {approach:<22} {split:<7} F1 {100 * found['f1']:5.1f}  OA {100 * found['oa']:5.1f}  "
                      f"ECE {found['ece']:.3f}  validation accuracy {100 * found['val_accuracy']:5.1f} on "
                      f"{found['val_pixels']} px  mean T {found['temperature']:.2f}")
                label = f"{setting} {approach}, validation by {split}"
                figures += [Figure(f"{label}: F1", round(100 * found["f1"], 1), "%"),
                            Figure(f"{label}: test OA", round(100 * found["oa"], 1), "%"),
                            Figure(f"{label}: ECE", round(found["ece"], 3), "",
                                   "test split of year B, 15 bins, calibrated probabilities"),
                            Figure(f"{label}: validation accuracy", round(100 * found["val_accuracy"], 1), "%",
                                   f"mean over nets, {found['val_pixels']} validation pixels per net"),
                            Figure(f"{label}: mean temperature", round(found["temperature"], 2), "")]
    write_results(args.results, figures, settings=vars(args))


if __name__ == "__main__":
    main()
