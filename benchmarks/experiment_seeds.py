"""Table 4 over several experiment folders (seeds, pairs): networks against the booster, and the label-free
estimates against the truth (issues 30 and 32).

Each ``--folders`` entry is ``SETTING:SEED=EXPERIMENT_DIR``: a finished experiment of
``configs/networks_vs_booster.yaml`` (or any config), e.g. the demo pair retrained with ``--set train.seed=1``
or the ``few-fields`` pair of synthetic seed 1. For every folder the agreement estimate is (re)computed from
its year-B maps (:func:`tropicrop.experiments.add_agreement`; folders run before it existed get it now, and
``table4.csv`` is rewritten with its columns), then per setting and approach it prints and writes the mean
and spread over seeds of F1, OA and ECE; per seed, the best same-year network approach against the
same-year booster and the best cross-year network approach against the cross-year booster; and the mean
absolute error of each label-free estimate of F1 (``check``'s confidence estimate, DoC; the agreement with
the other approaches of the same year; their midpoint, ``check --against``'s default).

Roles come from the records: ``lightgbm`` is a booster, an ensemble is reported beside, a run that read
year-B labels (trained on B, or adapted with B's parcels) is same-year, the rest cross-year. The best
network approach of a role is the one of the highest mean F1 over the seeds, and so is the booster it is
set against (chosen on the figures they are judged on: say so when reading them). ``--tuning SETTING:SEED,...``
names the folders the estimators were chosen on: their rows are kept out of the reported errors.

``python benchmarks/experiment_seeds.py --folders demo:1=runs/i32/demo1/experiment,few-fields:1=... --results NAME``
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_file import Figure, write_results


def role_of(record: dict[str, Any]) -> str:
    """``ensemble``, ``same-year`` (learnt from year-B labels) or ``cross-year``."""
    from tropicrop.experiments import learnt_year

    if record.get("mode") == "ensemble":
        return "ensemble"
    return "same-year" if learnt_year(record) == "b" else "cross-year"


def load_folder(path: Path) -> list[dict[str, Any]]:
    """The folder's records, with the agreement estimate computed and Table 4 rewritten."""
    from tropicrop.experiments import add_agreement, write_tables
    from tropicrop.report import read_records

    records = read_records(path)
    add_agreement(path, records)
    write_tables(path, records)
    return records


def mean_sd(values: list[float]) -> tuple[float, float]:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return float("nan"), float("nan")
    return float(np.mean(finite)), float(np.std(finite, ddof=1)) if len(finite) > 1 else 0.0


def pct(values: list[float]) -> str:
    return ", ".join("-" if v is None or not math.isfinite(v) else f"{100 * v:.1f}" for v in values)


def approach_figures(setting: str, seeds: list[str], runs: list[list[dict[str, Any]]]) -> list[Figure]:
    """Mean and spread of F1, OA and ECE per approach of one setting, per-seed values in the note."""
    figures = []
    names = [r["name"] for r in runs[0]]
    for name in names:
        rows = [next((r for r in records if r["name"] == name), None) for records in runs]
        if any(r is None for r in rows):
            continue
        for key in ("f1", "oa", "ece"):
            values = [r.get(key) for r in rows]  # type: ignore[union-attr]
            mean, sd = mean_sd(values)
            figures.append(Figure(f"{setting} {name} {key}", round(100 * mean, 1), "%",
                                  f"sd {100 * sd:.1f}; seeds {','.join(seeds)}: {pct(values)}; {role_of(rows[0])}"))
        print(f"{setting:<11}{name:<44}F1 {pct([r['f1'] for r in rows])}")  # type: ignore[index]
    return figures


def versus_booster(setting: str, seeds: list[str], runs: list[list[dict[str, Any]]]) -> list[Figure]:
    """Per role: the network approach of the best mean F1 against the booster of that role, per seed."""
    figures = []
    for role in ("same-year", "cross-year"):
        f1: dict[str, list[float]] = defaultdict(list)
        kind: dict[str, str] = {}
        for records in runs:
            for r in records:
                if role_of(r) == role:
                    f1[r["name"]].append(r["f1"])
                    kind[r["name"]] = r.get("model", "")
        full = {n: v for n, v in f1.items() if len(v) == len(runs)}
        boosters = [n for n in full if kind[n] == "lightgbm"]
        networks = [n for n in full if kind[n] != "lightgbm"]
        if not boosters or not networks:
            continue
        best = max(networks, key=lambda n: float(np.mean(full[n])))
        booster = max(boosters, key=lambda n: float(np.mean(full[n])))  # e.g. the booster adapted to year B too
        lead = [a - b for a, b in zip(full[best], full[booster], strict=True)]
        mean, sd = mean_sd(lead)
        print(f"{setting}: best {role} network {best} - best booster {booster}: {100 * mean:+.1f} "
              f"(sd {100 * sd:.1f}; per seed {pct(lead)})")
        figures.append(Figure(f"{setting} {role}: best network ({best}) minus {booster}", round(100 * mean, 1),
                              "F1 points", f"sd {100 * sd:.1f}; seeds {','.join(seeds)}: {pct(lead)}"))
    return figures


def estimate_errors(rows: list[tuple[str, dict[str, Any]]]) -> list[Figure]:
    """Mean |estimated - true| F1 of each estimator, per role, over the (setting, record) rows given."""
    figures = []
    for role in ("same-year", "cross-year"):
        for label, get in (("confidence (DoC)", lambda r: r.get("estimated_f1")),
                           ("agreement", lambda r: (r.get("agreement") or {}).get("estimated_f1")),
                           ("midpoint", lambda r: (r.get("agreement") or {}).get("midpoint_f1"))):
            errors = [abs(get(r) - r["f1"]) for _, r in rows
                      if role_of(r) == role and get(r) is not None and math.isfinite(get(r))]
            if not errors:
                continue
            mean = float(np.mean(errors))
            print(f"{label:<18} {role:<10}: mean |estimated - true| F1 {100 * mean:.1f} points over "
                  f"{len(errors)} rows (max {100 * max(errors):.1f}; within 5 points: {sum(e <= 0.05 for e in errors)})")
            figures.append(Figure(f"{label} estimate, {role} approaches: mean abs F1 error", round(100 * mean, 1),
                                  "F1 points", f"{len(errors)} rows, max {100 * max(errors):.1f}, "
                                  f"{sum(e <= 0.05 for e in errors)} within 5 points"))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folders", required=True, help="SETTING:SEED=EXPERIMENT_DIR,...")
    parser.add_argument("--tuning", default="", help="SETTING:SEED of folders the estimators were chosen on")
    parser.add_argument("--results", default="experiment_seeds", help="name of the results file")
    args = parser.parse_args()
    by_setting: dict[str, list[tuple[str, list[dict[str, Any]]]]] = defaultdict(list)
    estimated: list[tuple[str, dict[str, Any]]] = []
    tuning = set(filter(None, args.tuning.split(",")))
    for entry in args.folders.split(","):
        key, path = entry.split("=", 1)
        setting, seed = key.split(":")
        records = load_folder(Path(path))
        by_setting[setting].append((seed, records))
        if key not in tuning:
            estimated += [(key, r) for r in records]
    figures: list[Figure] = []
    for setting, runs in by_setting.items():
        seeds = [s for s, _ in runs]
        figures += approach_figures(setting, seeds, [r for _, r in runs])
        figures += versus_booster(setting, seeds, [r for _, r in runs])
    figures += estimate_errors(estimated)
    print(f"results: {write_results(args.results, figures, settings=vars(args))}")


if __name__ == "__main__":
    main()
