"""Accuracy guards of bfloat16: the same trained network predicting in bf16 and float32, and bf16-mixed training.

1. Prediction: ``configs/quick.yaml`` trained in float32 (seed 0) on the tiny synthetic LEM 19/20 scene maps
   both scenes of the synthetic pair (19/20, the training year, and 17/18, the other year) with
   ``predict --precision 32`` and ``--precision bf16``; reported are the share of map pixels of the same
   class (goal >= 99.5 %) and the average F1 on the test split of each (goal: within 0.5 points).
2. Training: the same config trained with ``trainer.precision`` ``32-true`` and ``bf16-mixed`` for several
   seeds; reported are the best validation macro F1 of each (goal: bf16 within the seed-to-seed noise of
   float32) and the training seconds (contended on a shared machine: read the ratio only).

bf16 on a CPU without bf16 units is emulated and slow, but the numbers it gives are the same.

Run:  python benchmarks/precision_accuracy.py --seeds 0 1 2      (about 5 minutes on 2 idle CPU cores)
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import rasterio

from results_file import Figure, write_results
from tropicrop.evaluation import evaluate_predictions
from tropicrop.inference import predict_run
from tropicrop.layout import PredictionLayout
from tropicrop.precision import cpu_has_fast_bf16
from tropicrop.synthetic import write_pair
from tropicrop.training import train_from_files

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "quick.yaml"


def train_run(data: Path, run_dir: Path, seed: int, precision: str, threads: int, epochs: int | None) -> dict[str, Any]:
    """Train configs/quick.yaml on the synthetic LEM 19/20 scene; best validation F1 and seconds."""
    sets = [f"data.scene={data / 'lem1920'}", f"seed={seed}", f"trainer.precision={precision}", "trainer.progress=false",
            f"trainer.threads={threads}"] + ([f"trainer.max_epochs={epochs}"] if epochs else [])
    result = train_from_files(CONFIG, run_dir, sets, force=True)
    net = result.nets["all-months"]
    return {"f1": float(net.best_val_f1 or 0.0), "seconds": net.train_seconds, "precision": net.precision}


def read_maps(folder: Path) -> np.ndarray:
    """Every class map of a prediction folder, stacked (dates, H, W)."""
    maps = []
    for path in sorted(PredictionLayout(folder).maps.glob("*.tif")):
        with rasterio.open(path) as ds:
            maps.append(ds.read(1))
    return np.stack(maps)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=None, help="trainer.max_epochs (default: the config's 16)")
    parser.add_argument("--work", type=Path, default=None, help="folder for data and runs (default: a temp dir)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        data = work / "tiny"
        if not (data / "lem1920" / "scene.yaml").is_file():
            write_pair(data, preset="tiny", seed=0)
        runs: dict[tuple[str, int], dict[str, Any]] = {}
        for seed in args.seeds:  # alternated, so that a change of machine load affects both alike
            for precision in ("32-true", "bf16-mixed"):
                runs[precision, seed] = train_run(data, work / "runs" / f"{precision}-{seed}", seed, precision, args.threads,
                                                   args.epochs)
                print(f"trained seed {seed} {precision}: {runs[precision, seed]}", flush=True)

        print(f"\nCPU bf16 units: {cpu_has_fast_bf16()}; configs/quick.yaml on the tiny synthetic pair, "
              f"max_epochs {args.epochs or 'as configured'}, {args.threads} thread(s)\n")
        print("prediction with the float32-trained run (seed "
              f"{args.seeds[0]}), --precision 32 against --precision bf16, test split\n")
        print("| scene | maps | pixels same class | average F1 float32 | average F1 bf16 | difference (points) |")
        print("|---|---:|---:|---:|---:|---:|")
        run_dir = work / "runs" / f"32-true-{args.seeds[0]}"
        figures: list[Figure] = []
        for name in ("lem1920", "lem1718"):
            scores, maps = {}, {}
            for precision in ("32", "bf16"):
                out = work / "pred" / f"{name}-{precision}"
                predict_run(run_dir, data / name, out, progress=False, precision=precision)
                scores[precision] = evaluate_predictions(out, data / name, split="test").mean_f1
                maps[precision] = read_maps(out)
            same = float((maps["32"] == maps["bf16"]).mean())
            print(f"| {name} | {len(maps['32'])} | {same:.2%} | {scores['32']:.4f} | {scores['bf16']:.4f} | "
                  f"{100 * (scores['bf16'] - scores['32']):+.2f} |")
            figures += [Figure(f"{name}, map pixels of the same class, bf16 / float32 prediction", round(100 * same, 3), "%"),
                        Figure(f"{name}, average F1 float32", round(100 * scores["32"], 2), "%"),
                        Figure(f"{name}, average F1 bf16", round(100 * scores["bf16"], 2), "%")]

        print("\ntraining: best validation macro F1 per seed (seconds: contended, read the ratio)\n")
        print("| precision | " + " | ".join(f"seed {s}" for s in args.seeds) + " | mean | sd | mean seconds |")
        print("|---|" + "---:|" * (len(args.seeds) + 3))
        for precision in ("32-true", "bf16-mixed"):
            f1 = [runs[precision, s]["f1"] for s in args.seeds]
            sd = statistics.stdev(f1) if len(f1) > 1 else float("nan")
            sec = statistics.mean(runs[precision, s]["seconds"] for s in args.seeds)
            cells = " | ".join(f"{v:.3f}" for v in f1)
            print(f"| {precision} | {cells} | {statistics.mean(f1):.3f} | {sd:.3f} | {sec:.0f} |")
            figures += [Figure(f"{precision}, validation macro F1, seed {seed}", round(v, 4), "F1")
                        for seed, v in zip(args.seeds, f1, strict=True)]
            figures.append(Figure(f"{precision}, validation macro F1, mean", round(statistics.mean(f1), 4), "F1"))
        fp, bf = ([runs[p, s] for s in args.seeds] for p in ("32-true", "bf16-mixed"))
        diffs = [b["f1"] - f["f1"] for f, b in zip(fp, bf, strict=True)]
        ratio = statistics.mean(f["seconds"] for f in fp) / statistics.mean(b["seconds"] for b in bf)
        print(f"\nbf16 - float32 validation F1, same seed: {', '.join(f'{d:+.3f}' for d in diffs)}; "
              f"training time float32 / bf16: {ratio:.2f}")
        figures.append(Figure("training time float32 / bf16", round(ratio, 3), "ratio", "not alternated: contended"))
        write_results("precision_accuracy", figures, settings={"seeds": args.seeds, "threads": args.threads,
                                                               "epochs": args.epochs, "config": "configs/quick.yaml"})


if __name__ == "__main__":
    main()
