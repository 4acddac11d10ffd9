"""Does ``adapt --methods auto`` keep the best adaptation, and does self-training fool its estimate? (issue 30)

``auto`` adapts five candidates (each unsupervised method alone, all four together) and keeps the one with the
highest score from year B's images (the midpoint of ``tropicrop check``'s estimate and the candidate's agreement
with the other candidates' maps, :func:`tropicrop.adaptation.report.auto_score`). An experiment that holds the same five rows (as
``configs/adaptation.yaml`` does) shows the choice against the truth: its report's "Choosing the method without
labels" section (:func:`tropicrop.adaptation.report.label_free_choices`). This benchmark gathers that over
several pairs, including shifts of different kinds (the method that pays should change with them):

* ``--pairs SETTING:SEED[:SHIFT],...``: for each, writes the pair (``tropicrop synth --preset SETTING --seed SEED
  --shift SHIFT``; ``lem`` at the demo's 256 px), then runs an experiment of the adaptation config reduced to
  its year-A VUnetConvLSTM and the five candidate rows (demo settings, ``train.seed=SEED``) into
  ``OUT/SETTING-SEED-SHIFT/experiment``; a finished folder is not run again;
* ``--folders LABEL=EXPERIMENT,...``: finished experiment folders holding the five rows (e.g. the demo folder
  after ``tropicrop demo --config configs/adaptation.yaml``).

Printed and written to ``results/adaptation_choice.json``: per pair the candidates' estimated F1, score and true
F1, the kept one, the best one and the F1 lost; over all pairs how often the choice matched, the mean loss, each
method's mean error of the estimate and of the score (minus the truth; positive: reads high), and the mean
absolute error over all candidates.

Run:   python benchmarks/adaptation_choice.py --out /tmp/choice --pairs lem:1:radiometric,lem:1:calendar,few-fields:1 \
           --folders demo:0=runs/demo/experiment
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import yaml

from results_file import Figure, write_results

ROOT = Path(__file__).resolve().parents[1]
BASE = "VUnetConvLSTM"


def reduced_config(path: Path) -> Path:
    """The adaptation config with only the year-A VUnetConvLSTM and the five ``auto`` candidate rows."""
    from tropicrop.adaptation.report import AUTO_CANDIDATES

    cfg = yaml.safe_load((ROOT / "configs" / "adaptation.yaml").read_text())
    keep = []
    for a in cfg["approaches"]:
        adapt = a.get("adapt") or {}
        candidate = adapt.get("base") == BASE and not adapt.get("parcels") and \
            frozenset(adapt.get("methods", [])) in AUTO_CANDIDATES
        if a["name"] == BASE or candidate:
            keep.append(a)
    assert len(keep) == 1 + len(AUTO_CANDIDATES), [a["name"] for a in keep]
    cfg["approaches"] = keep
    cfg["name"] = "adaptation choice: year-A VUnetConvLSTM and the five auto candidates"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def run_pair(out: Path, spec: str, threads: int) -> tuple[str, Path]:
    """Write the pair ``SETTING:SEED[:SHIFT]`` and run the reduced experiment on it; (label, experiment dir)."""
    setting, seed, *rest = spec.split(":")
    shift = rest[0] if rest else "all"
    label = f"{setting}-{seed}-{shift}"
    folder = out / label
    data = folder / "data"
    tropicrop = [sys.executable, "-m", "tropicrop"]
    if not (data / "lem1920" / "scene.yaml").is_file():
        size = ["--size", "256"] if setting == "lem" else []
        subprocess.run([*tropicrop, "synth", str(data), "--preset", setting, "--seed", seed, "--shift", shift,
                        *size, "--overwrite"], check=True)
    exp = folder / "experiment"
    subprocess.run([*tropicrop, "experiment", "-c", str(reduced_config(folder / "config.yaml")), "--out", str(exp),
                    "--set", f"scenes.a={data / 'lem1718'}", "--set", f"scenes.b={data / 'lem1920'}",
                    "--set", f"train.seed={seed}", *(["--set", f"train.trainer.threads={threads}"] if threads else [])],
                   check=True)
    return label, exp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/adaptation_choice"))
    parser.add_argument("--pairs", default="", help="SETTING:SEED[:SHIFT],... to write and run")
    parser.add_argument("--folders", default="", help="LABEL=EXPERIMENT,... finished experiment folders")
    parser.add_argument("--results", default="adaptation_choice", help="results file stem")
    parser.add_argument("--threads", type=int, default=0, help="torch threads of the experiments (0: default)")
    args = parser.parse_args()

    from tropicrop.adaptation.report import label_free_choices
    from tropicrop.report import read_records

    folders = [run_pair(args.out, spec, args.threads) for spec in filter(None, args.pairs.split(","))]
    folders += [(label, Path(path)) for label, path in (f.split("=", 1) for f in filter(None, args.folders.split(",")))]
    figures: list[Figure] = []
    regrets, errors = [], defaultdict(list)
    alone: list[float] = []  # F1 lost when ranking by the estimate alone (auto's rule before the score)
    matched = 0
    for label, exp in folders:
        records = read_records(exp)
        choices = [c for c in label_free_choices(records, exp) if c.base == BASE]
        if not choices:
            print(f"{label}: no auto candidates of {BASE} in {exp}")
            continue
        (c,) = choices
        print(f"\n{label} ({exp})\n| candidate | methods | estimated F1 | auto's score | true F1 | estimate - truth |"
              "\n|---|---|---:|---:|---:|---:|")
        for name, methods, est, true, score in c.rows:
            print(f"| {name}{' (kept)' if name == c.chosen else ''} | {methods} | {100 * est:.1f} | {100 * score:.1f} | "
                  f"{100 * true:.1f} | {100 * (est - true):+.1f} |")
            errors[f"{methods} (score)"].append(100 * (score - true))
            errors[methods].append(100 * (est - true))
            figures.append(Figure(f"{label} {methods} estimate - truth", round(100 * (est - true), 1), "F1 points",
                                  f"estimated {100 * est:.1f}, true {100 * true:.1f}"))
        regrets.append(100 * c.regret)
        matched += c.matched
        print(f"kept: {c.chosen} ({100 * c.true_f1(c.chosen):.1f}); best: {c.best} ({100 * c.true_f1(c.best):.1f}); "
              f"lost {100 * c.regret:.1f} points")
        figures.append(Figure(f"{label} kept by auto", c.chosen, "", f"true F1 {100 * c.true_f1(c.chosen):.1f}"))
        figures.append(Figure(f"{label} best by true F1", c.best, "", f"true F1 {100 * c.true_f1(c.best):.1f}"))
        figures.append(Figure(f"{label} F1 lost by the choice", round(100 * c.regret, 1), "F1 points"))
        (by_estimate,) = [e for e in label_free_choices(records) if e.base == BASE]
        alone.append(100 * by_estimate.regret)
        figures.append(Figure(f"{label} F1 lost ranking by the estimate alone", round(100 * by_estimate.regret, 1),
                              "F1 points", f"keeps {by_estimate.chosen}"))
    if regrets:
        print(f"\nauto kept the best candidate on {matched} of {len(regrets)} pairs; mean F1 lost "
              f"{np.mean(regrets):.1f} points (max {max(regrets):.1f})")
        figures.append(Figure("pairs where auto kept the best candidate", matched, "pairs", f"of {len(regrets)}"))
        figures.append(Figure("mean F1 lost by the choice", round(float(np.mean(regrets)), 1), "F1 points",
                              f"max {max(regrets):.1f}"))
        print(f"ranking by the estimate alone: mean F1 lost {np.mean(alone):.1f} points (max {max(alone):.1f})")
        figures.append(Figure("mean F1 lost ranking by the estimate alone", round(float(np.mean(alone)), 1),
                              "F1 points", f"max {max(alone):.1f}"))
        for kind in ("estimate", "score"):
            errs = np.abs([e for m, es in errors.items() if m.endswith("(score)") == (kind == "score") for e in es])
            print(f"{kind}: mean absolute error {errs.mean():.1f} points, within 5 points on {np.sum(errs <= 5)} of "
                  f"{len(errs)} candidates")
            figures += [Figure(f"mean absolute error over all candidates, {kind}", round(float(errs.mean()), 1),
                               "F1 points", f"{len(errs)} candidates"),
                        Figure(f"candidates within 5 points, {kind}", int(np.sum(errs <= 5)), "candidates",
                               f"of {len(errs)}")]
        for methods, errs in errors.items():
            print(f"{methods}: mean estimate - truth {np.mean(errs):+.1f} points over {len(errs)} pairs")
            figures.append(Figure(f"mean estimate - truth, {methods}", round(float(np.mean(errs)), 1), "F1 points",
                                  f"{len(errs)} pairs: " + ", ".join(f"{e:+.1f}" for e in errs)))
    write_results(args.results, figures, settings={"pairs": args.pairs, "folders": args.folders})


if __name__ == "__main__":
    main()
