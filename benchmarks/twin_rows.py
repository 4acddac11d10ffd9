"""An approach against its variant in the same experiment folders: what a lever does, seed by seed (issues 30
and 32).

Each ``--folders`` entry is ``SETTING:SEED=EXPERIMENT_DIR``, a finished experiment holding an approach and its
variant, the same approach with one change (``set:``), named ``"<approach>, <suffix>"``: ``whole-field
validation`` (``data.val_split=fields``), ``pretrained`` (``pretrain.steps``). For every pair it prints and
writes, from the records and each net's ``calibration.json``: test F1, OA and ECE (year B's test split), the
validation accuracy the temperature was fitted on (mean over nets; whole-field runs trained before
2026-12-04 12:20 UTC scored a pixel under two validation patches twice) and the mean temperature; then per
setting the mean and spread over seeds of the variant's change in F1 and ECE. The gap between validation
accuracy and test OA is what temperature scaling cannot see.

Run: ``python benchmarks/twin_rows.py --folders demo:2=EXP,few-fields:3=EXP --approaches "Baseline 1" --suffix pretrained``
(approaches are separated by ``;``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_file import Figure, write_results


def approach_figures(folder: Path, name: str) -> dict[str, Any] | None:
    """Test figures of approach ``name`` in ``folder`` and its nets' calibration fits (None if not run)."""
    from tropicrop.layout import slug

    record_path = folder / "approaches" / f"{slug(name)}.json"
    if not record_path.is_file():
        return None
    record = json.loads(record_path.read_text())
    fits = [json.loads(p.read_text()) for p in sorted((folder / "runs" / slug(name) / "nets").glob("*/calibration.json"))]
    return {"f1": record["f1"], "oa": record["oa"], "ece": record.get("ece"),
            "val_accuracy": float(np.mean([f["val_accuracy"] for f in fits])) if fits else float("nan"),
            "temperature": float(np.mean([f["temperature"] for f in fits])) if fits else float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folders", required=True, help="SETTING:SEED=EXPERIMENT_DIR,...")
    parser.add_argument("--approaches", default="Baseline 1", help="approaches with a variant, separated by ';'")
    parser.add_argument("--suffix", required=True, help="the variants' name after '<approach>, '")
    parser.add_argument("--results", required=True, help="name of the results file")
    args = parser.parse_args()
    figures = []
    changes: dict[tuple[str, str], list[tuple[str, float, float]]] = defaultdict(list)
    for entry in args.folders.split(","):
        run, path = entry.split("=", 1)
        setting, seed = run.split(":")
        for approach in [a.strip() for a in args.approaches.split(";")]:
            pair = {}
            for name in (approach, f"{approach}, {args.suffix}"):
                found = approach_figures(Path(path), name)
                if found is None:
                    print(f"{run}: {name}: not run")
                    continue
                pair[name] = found
                print(f"{run:<13} {name:<45} F1 {100 * found['f1']:5.1f}  OA {100 * found['oa']:5.1f}  ECE "
                      f"{found['ece']:.3f}  validation accuracy {100 * found['val_accuracy']:5.1f}  mean T "
                      f"{found['temperature']:.2f}")
                figures += [Figure(f"{run} {name}: F1", round(100 * found["f1"], 1), "%"),
                            Figure(f"{run} {name}: ECE", round(found["ece"], 3), "",
                                   "test split of year B, 15 bins, calibrated probabilities"),
                            Figure(f"{run} {name}: validation accuracy", round(100 * found["val_accuracy"], 1), "%",
                                   f"mean over nets (test OA {100 * found['oa']:.1f} %)"),
                            Figure(f"{run} {name}: mean temperature", round(found["temperature"], 2), "")]
            if len(pair) == 2:
                base, variant = pair[approach], pair[f"{approach}, {args.suffix}"]
                changes[(setting, approach)].append((seed, variant["f1"] - base["f1"], variant["ece"] - base["ece"]))
    for (setting, approach), rows in sorted(changes.items()):
        seeds = ", ".join(s for s, _, _ in rows)
        for k, what, scale, unit in ((1, "F1", 100, "points"), (2, "ECE", 1, "")):
            values = [float(r[k]) * scale for r in rows]
            mean, sd = float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
            per_seed = ", ".join(f"{v:+.1f}" if scale == 100 else f"{v:+.3f}" for v in values)
            digits = 1 if scale == 100 else 3
            print(f"{setting}: {approach}, {args.suffix} minus {approach}: {what} {mean:+.{digits}f} (sd {sd:.{digits}f}; "
                  f"seeds {seeds}: {per_seed})")
            figures.append(Figure(f"{setting} {approach}, {args.suffix} minus {approach}: {what}",
                                  round(mean, digits), unit, f"sd {sd:.{digits}f}; seeds {seeds}: {per_seed}"))
    write_results(args.results, figures, settings=vars(args))


if __name__ == "__main__":
    main()
