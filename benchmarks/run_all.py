"""Run every benchmark (``make bench``); each writes its figures to ``benchmarks/results/<name>.json``.

Each benchmark runs in its own process, one after the other, so none disturbs another's timing. Absolute
figures on a shared machine are noise: read the ratios each benchmark prints (measured in one process).
The documentation's performance and results pages are built from the result files (``docs/hooks/tables.py``),
so running this and then ``make docs`` refreshes them; nothing is copied by hand.

``--quick`` uses smaller settings: the figures then describe those settings (every result file records the
command and the settings it ran with). Neither is short on 2 CPU cores shared with other work: on
2026-12-03 at a load average of 8-14, ``--quick`` took 1-6 minutes for ``stack_memory.py``, ``reading.py`` and
``quicklook.py`` each, 2.3 minutes for ``synthetic_difficulty.py`` (with the smaller pixel budget) and over 35
for ``model_throughput.py`` (stopped unfinished); ``adaptation.py`` trains several networks even in ``--quick``. The default
settings (the figures the performance goals name: a 2048^2 scene, peak memory at 1024^2 and 4096^2, the
adaptation ablation at 128 px) take hours; ``--only NAME...`` runs some of them.

Benchmarks that need a trained run or an earlier benchmark's output (``tile_invariance.py``,
``few_labels.py``) get it from their ``setup`` commands, written under ``benchmarks/out/`` (git-ignored) and
reused when present.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from results_file import results_dir

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
HELPERS = ("results_file.py", "run_all.py", "browser.py",  # modules, not benchmarks
           "validation_parcels.py", "twin_rows.py", "split_class_shift.py",  # read finished runs named on the command line
           "view_screenshot.py")  # writes the viewer guide's screenshot, measures nothing
CLI = [sys.executable, "-c", "from tropicrop.cli import main; main()"]


@dataclass(frozen=True)
class Benchmark:
    """How to run one script: its arguments (default and ``--quick``) and what must exist first."""

    default: list[str]
    quick: list[str]
    setup: list[tuple[Path, list[str]]] = field(default_factory=list)  # (made path, command): skipped when it exists
    quick_setup: list[tuple[Path, list[str]]] | None = None  # None: the same as setup


def synth(out: Path, *args: str) -> tuple[Path, list[str]]:
    """A ``tropicrop synth`` setup step that writes ``out`` (skipped when its second year exists)."""
    return out / "lem1920" / "scene.yaml", [*CLI, "synth", str(out), *args]


TINY, QUICK_RUN, HELD_OUT = OUT / "tiny", OUT / "quick", OUT / "lem512"
RUN_SETUP = [synth(TINY, "--preset", "tiny", "--seed", "0"),
             (QUICK_RUN / "result.json", [*CLI, "train", "-c", str(ROOT / "configs" / "quick.yaml"), "--run-dir",
                                          str(QUICK_RUN), "--set", f"data.scene={TINY / 'lem1920'}", "--force"])]
ADAPT_OUT, ADAPT_DATA = OUT / "adaptation", OUT / "adaptation-data"

BENCHMARKS: dict[str, Benchmark] = {
    "allocator.py": Benchmark([], ["--epochs", "2"]),
    "parallel_nets.py": Benchmark([], ["--nets", "2", "--epochs", "1"]),
    "model_throughput.py": Benchmark(["--steps", "10"], ["--steps", "3", "--warmup", "1", "--threads", "1"]),
    "training.py": Benchmark(["--size", "256", "--steps", "30", "--epochs", "2"],
                             ["--size", "128", "--steps", "10", "--epochs", "1"]),
    "inference.py": Benchmark([], ["--size", "256", "--rss-sizes", "256", "512", "--flops-tiles", "128"]),
    "synthetic_difficulty.py": Benchmark(["--size", "512"], ["--size", "256", "--train-pixels", "6000", "--test-pixels", "20000",
                                                             "--png", ""]),
    "stack_memory.py": Benchmark([], ["--size", "512", "--months", "3"]),
    "cube_memory.py": Benchmark([], ["--size", "1024", "--acquisitions", "16"]),
    "precision_accuracy.py": Benchmark(["--seeds", "0", "1", "2"], ["--seeds", "0", "1", "--epochs", "4"]),
    "training_memory.py": Benchmark(["--in-memory"], ["--sizes", "256", "512"]),
    "dask_predict.py": Benchmark(["--block", "2"], ["--size", "512", "--block", "1"]),
    "cache_accuracy.py": Benchmark(["--seeds", "0", "1", "2"], ["--seeds", "0", "1"]),
    "backbones.py": Benchmark([], ["--size", "256", "--train-steps", "2", "--repeat", "1"]),
    "reading.py": Benchmark([], ["--size", "512", "--rounds", "1"]),
    "quicklook.py": Benchmark([], ["--size", "512", "--rounds", "1"]),
    # view.py needs Debian's chromium (apt-get install chromium chromium-driver)
    "view.py": Benchmark([], ["--size", "512", "--rounds", "1"]),
    "networks_vs_booster.py": Benchmark(["--settings", "default,few-fields", "--seeds", "0,1,2"],
                                        ["--size", "256", "--seeds", "0"]),
    "calibration.py": Benchmark(
        ["--size", "128", "--months", "12", "--steps", "40", "--epochs", "12", "--batch", "16", "--adapt-steps", "200",
         "--pairs", "1:all,0:all,2:radiometric,3:calendar", "--out", str(OUT / "calibration")],
        ["--size", "64", "--months", "2", "--steps", "8", "--epochs", "3", "--adapt-steps", "30",
         "--pairs", "1:all,0:all,2:radiometric", "--out", str(OUT / "calibration")]),
    "calibration_ece.py": Benchmark(  # after calibration.py, whose runs it diagnoses
        ["--out", str(OUT / "calibration"), "--months", "12", "--pairs", "1:all,0:all,2:radiometric,3:calendar"],
        ["--out", str(OUT / "calibration"), "--months", "2", "--pairs", "1:all,0:all,2:radiometric"]),
    "tile_invariance.py": Benchmark(
        [str(QUICK_RUN), str(HELD_OUT / "lem1920"), "--tiles", "128", "256", "512"],
        [str(QUICK_RUN), str(HELD_OUT / "lem1920"), "--tiles", "128", "256", "--methods", "blend", "margin",
         "--dates", "2020-02-21"],
        setup=[*RUN_SETUP, synth(HELD_OUT, "--preset", "lem", "--size", "512", "--seed", "7")]),
    "adaptation.py": Benchmark(
        ["--size", "128", "--out", str(ADAPT_OUT), "--data", str(ADAPT_DATA)],
        ["--size", "128", "--shifts", "all", "--same-year", "", "--doy-aug", "", "--out", str(ADAPT_OUT),
         "--data", str(ADAPT_DATA)]),
    "few_labels.py": Benchmark(  # after adaptation.py, which trains the year-A network it fine-tunes
        ["--exp", str(ADAPT_OUT / "all"), "--scene", str(ADAPT_DATA / "all" / "lem1920"), "--k", "1,3,10"],
        ["--exp", str(ADAPT_OUT / "all"), "--scene", str(ADAPT_DATA / "all" / "lem1920"), "--k", "1"]),
    "temperature_objective.py": Benchmark(  # the objective of the temperature fit, on the quick run's own scene
        ["--runs", f"quick={QUICK_RUN}", "--scene", str(TINY / "lem1920")],
        ["--runs", f"quick={QUICK_RUN}", "--scene", str(TINY / "lem1920")], setup=RUN_SETUP),
    "val_profile.py": Benchmark(  # the quick run calibrated on patches and on tiles
        ["--runs", f"quick={QUICK_RUN}={TINY / 'lem1920'}", "--results", "val_profile_quick"],
        ["--runs", f"quick={QUICK_RUN}={TINY / 'lem1920'}", "--results", "val_profile_quick"], setup=RUN_SETUP),
    "adaptation_choice.py": Benchmark(  # after adaptation.py: auto's choice among its experiment's candidate rows
        ["--folders", f"adaptation={ADAPT_OUT / 'all'}", "--results", "adaptation_choice_quick"],
        ["--folders", f"adaptation={ADAPT_OUT / 'all'}", "--results", "adaptation_choice_quick"]),
    "selftrain_calibration.py": Benchmark(  # after adaptation.py: its self-trained rows, year A's T or refitted
        ["--folders", f"adaptation={ADAPT_OUT / 'all'}", "--results", "selftrain_calibration_quick"],
        ["--folders", f"adaptation={ADAPT_OUT / 'all'}", "--results", "selftrain_calibration_quick"]),
    "experiment_seeds.py": Benchmark(  # after adaptation.py: Table 4 of its experiment, agreement estimates added
        ["--folders", f"adaptation:0={ADAPT_OUT / 'all'}", "--results", "experiment_seeds_adaptation"],
        ["--folders", f"adaptation:0={ADAPT_OUT / 'all'}", "--results", "experiment_seeds_adaptation"]),
}
# with a GPU, model_throughput.py measures it as well; inference.py runs a second time on it
GPU_BENCHMARKS: dict[str, Benchmark] = {
    "inference.py": Benchmark(["--device", "cuda", "--skip-rss", "--size", "1024", "--flops-tiles", "256", "512"],
                              ["--device", "cuda", "--skip-rss", "--size", "256", "--flops-tiles", "128"]),
}


def benchmark_scripts() -> list[str]:
    """Every benchmark script in ``benchmarks/`` (the helpers left out): each must be in :data:`BENCHMARKS`."""
    return sorted(p.name for p in HERE.glob("*.py") if p.name not in HELPERS)


def run_setup(steps: list[tuple[Path, list[str]]]) -> bool:
    """Run the setup commands whose output is missing; False when one fails."""
    for made, cmd in steps:
        if made.exists():
            continue
        print(f"setup: {' '.join(cmd[3:] if cmd[:3] == CLI else cmd)}", flush=True)
        if subprocess.run(cmd, cwd=ROOT).returncode != 0:
            return False
    return True


def run_one(name: str, bench: Benchmark, quick: bool) -> int:
    """Run one benchmark in its own process, echoing what it prints; its exit status."""
    steps = bench.setup if (not quick or bench.quick_setup is None) else bench.quick_setup
    if not run_setup(steps):
        print(f"{name}: setup FAILED", flush=True)
        return 1
    cmd = [sys.executable, str(HERE / name), *(bench.quick if quick else bench.default)]
    print(f"running python benchmarks/{name} {' '.join(cmd[2:])}", flush=True)
    start = time.perf_counter()
    code = subprocess.run(cmd, cwd=ROOT).returncode
    print(f"{name}: {'ok' if code == 0 else f'FAILED (exit {code})'}, {time.perf_counter() - start:.0f} s", flush=True)
    return code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller settings")
    parser.add_argument("--only", nargs="*", default=None, help="benchmark file names to run")
    args = parser.parse_args()
    missing = set(benchmark_scripts()) - set(BENCHMARKS)
    if missing:
        sys.exit(f"benchmarks/run_all.py: add {', '.join(sorted(missing))} to BENCHMARKS")
    import torch

    runs = list(BENCHMARKS.items()) + (list(GPU_BENCHMARKS.items()) if torch.cuda.is_available() else [])
    failed = []
    for name, bench in runs:
        if args.only and name not in args.only:
            continue
        if run_one(name, bench, args.quick) != 0:
            failed.append(name)
    written = sorted(results_dir().glob("*.json"))
    print("result files: " + ", ".join(f"{p.name} ({json.loads(p.read_text())['date']})" for p in written))
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
