"""A self-trained network's temperature: year A's, or refitted on year A's validation pixels? (issue 30)

Self-training sharpens a network's probabilities; ``tropicrop adapt`` therefore refits a self-trained
network's temperature and validation profile on year A's validation pixels with its new weights
(:mod:`tropicrop.adaptation.trainingyear`). This benchmark measures what that changes, on experiment folders
that hold self-trained adapted approaches (``benchmarks/adaptation_choice.py`` writes such folders): each
self-trained run is mapped on year B twice, as adapted (the refitted calibration) and with its base run's
``calibration.json`` put back (year A's temperature, what ``adapt`` did before), and both are scored on B's
test split as an experiment does (256 px tiles overlapping by 32). The class maps are the same (a
temperature changes no class); what moves is the confidence layer (ECE, Brier) and ``check``'s estimate of
the F1 from it (its default estimator, no label read).

Printed and written to ``results/selftrain_calibration.json``: per run the true F1, both estimates and both
ECEs; over all runs the mean error of each estimate (estimate - truth; positive: reads high), its mean
absolute error and the mean ECE; and, for a folder holding ``auto``'s five candidates, the candidate
``auto`` keeps with either temperature (the other candidates' estimates are the experiment's) and the F1
each choice loses against the best.

Run:   python benchmarks/selftrain_calibration.py --folders lem-5-all=/tmp/choice/lem-5-all/experiment,...
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_file import Figure, write_results


def auto_choices(exp: Path, year_a_estimates: dict[str, float]) -> dict[str, tuple[str, float]]:
    """What ``auto`` keeps among the experiment's candidates and the F1 it loses, with the refitted temperatures
    (the experiment's estimates) and with year A's (``year_a_estimates`` for the self-trained approaches)."""
    from tropicrop.adaptation.report import label_free_choices
    from tropicrop.report import read_records

    records = read_records(exp)
    swapped = [{**r, "estimated_f1": year_a_estimates.get(r["name"], r.get("estimated_f1"))} for r in records]
    out = {}
    for kind, recs in (("refitted", records), ("year A", swapped)):
        for c in label_free_choices(recs, exp):  # the agreement does not move with the temperature
            out[kind] = (c.chosen, c.regret)
    return out


def self_trained_runs(exp: Path) -> Iterator[tuple[str, Path, Path]]:
    """(approach name, adapted run, base run) of each self-trained approach of the experiment folder ``exp``."""
    from tropicrop.layout import ExperimentLayout
    from tropicrop.report import read_records

    layout = ExperimentLayout(exp)
    slugs = {r["name"]: r["slug"] for r in read_records(exp)}
    for record in read_records(exp):
        adapt = record.get("adapt") or {}
        if "self_training" in adapt.get("methods", []) and not adapt.get("parcels"):
            yield record["name"], layout.run(record["slug"]).root, layout.run(slugs[adapt["base"]]).root


def year_a_copy(run: Path, base: Path, out: Path) -> Path:
    """``run`` copied to ``out`` (files hard-linked) with every net's ``calibration.json`` replaced by the base's."""
    shutil.copytree(run, out, copy_function=os.link)
    for cal in out.glob("nets/*/calibration.json"):
        cal.unlink()  # a new file, not a write through the link into the adapted run
        shutil.copy2(base / "nets" / cal.parent.name / "calibration.json", cal)
    return out


def scores(run: Path, scene: Path, out: Path) -> dict[str, float]:
    """True F1, ECE and Brier of ``run``'s maps of ``scene`` (test split) and ``check``'s estimated F1."""
    from tropicrop.check import estimate_predictions
    from tropicrop.evaluation import evaluate_predictions
    from tropicrop.inference.predict import predict_run

    predict_run(run, scene, out, tile=256, overlap=32, progress=False)
    result = evaluate_predictions(out, scene)
    estimate = estimate_predictions(run, out, [d.date for d in result.dates]).to_dict()
    return {"f1": result.mean_f1, **result.calibration(), "estimated_f1": estimate["estimated_f1"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folders", required=True, help="LABEL=EXPERIMENT,... experiment folders")
    parser.add_argument("--results", default="selftrain_calibration", help="results file stem")
    args = parser.parse_args()

    from tropicrop.config import load_config
    from tropicrop.config.experiment import ExperimentConfig
    from tropicrop.layout import ExperimentLayout

    figures: list[Figure] = []
    errors: dict[str, list[float]] = {"refitted": [], "year A": []}
    eces: dict[str, list[float]] = {"refitted": [], "year A": []}
    lost: dict[str, list[float]] = {"refitted": [], "year A": []}
    choices: list[str] = []
    print("| pair | approach | true F1 | estimated, year A's T | estimated, refitted | ECE, year A's T | ECE, refitted |")
    print("|---|---|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for label, exp in (f.split("=", 1) for f in args.folders.split(",")):
            exp = Path(exp)
            scene = Path(load_config(ExperimentConfig, ExperimentLayout(exp).config).scenes.b)
            year_a: dict[str, float] = {}
            for k, (name, run, base) in enumerate(self_trained_runs(exp)):
                work = Path(tmp) / f"{label}-{k}"
                both = {"refitted": scores(run, scene, work / "refitted"),
                        "year A": scores(year_a_copy(run, base, work / "run"), scene, work / "year-a")}
                assert both["refitted"]["f1"] == both["year A"]["f1"], "a temperature moved a class"
                truth = both["refitted"]["f1"]
                year_a[name] = both["year A"]["estimated_f1"]
                print(f"| {label} | {name} | {100 * truth:.1f} | {100 * both['year A']['estimated_f1']:.1f} | "
                      f"{100 * both['refitted']['estimated_f1']:.1f} | {both['year A']['ece']:.3f} | "
                      f"{both['refitted']['ece']:.3f} |", flush=True)
                figures.append(Figure(f"{label} {name}: true F1", round(100 * truth, 1), "F1 points"))
                for kind, row in both.items():
                    errors[kind].append(100 * (row["estimated_f1"] - truth))
                    eces[kind].append(row["ece"])
                    figures += [Figure(f"{label} {name}: estimate - truth, {kind}",
                                       round(100 * (row["estimated_f1"] - truth), 1), "F1 points",
                                       f"estimated {100 * row['estimated_f1']:.1f}"),
                                Figure(f"{label} {name}: ECE, {kind}", round(row["ece"], 3), "fraction")]
            for kind, (chosen, regret) in auto_choices(exp, year_a).items():
                lost[kind].append(100 * regret)
                choices.append(f"{label}, temperature {kind}: auto keeps {chosen}, loses {100 * regret:.1f} F1 points")
                figures.append(Figure(f"{label} auto's choice, {kind}", chosen, "", f"loses {100 * regret:.1f} F1 points"))
    for kind in errors:
        errs = np.array(errors[kind])
        print(f"{kind}: mean estimate - truth {errs.mean():+.1f}, mean |error| {np.abs(errs).mean():.1f} points, "
              f"mean ECE {np.mean(eces[kind]):.3f} over {len(errs)} runs")
        figures += [Figure(f"mean estimate - truth, {kind}", round(float(errs.mean()), 1), "F1 points",
                           f"{len(errs)} runs"),
                    Figure(f"mean absolute error of the estimate, {kind}", round(float(np.abs(errs).mean()), 1), "F1 points",
                           f"{len(errs)} runs"),
                    Figure(f"mean ECE, {kind}", round(float(np.mean(eces[kind])), 3), "fraction", f"{len(errs)} runs")]
    print("\n".join(choices))
    for kind, values in lost.items():
        if values:
            print(f"{kind}: auto loses {np.mean(values):.1f} F1 points on average over {len(values)} pairs")
            figures.append(Figure(f"mean F1 lost by auto's choice, {kind}", round(float(np.mean(values)), 1),
                                  "F1 points", f"{len(values)} pairs: " + ", ".join(f"{v:.1f}" for v in values)))
    write_results(args.results, figures, settings={"folders": args.folders})


if __name__ == "__main__":
    main()
