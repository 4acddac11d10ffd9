"""Run every benchmark (``make bench``) and write their printed figures to ``benchmarks/results.md``.

Each benchmark runs in its own process, one after the other, so none disturbs another's timing. Absolute
figures on a shared machine are noise: read the ratios each benchmark prints (measured in one process).
``--quick`` uses smaller settings (a few minutes in all); the default settings (the figures the
performance goals name: a 2048^2 scene, peak memory at 1024^2 and 4096^2) take about 40 minutes on 2
CPU cores.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

BENCHMARKS: dict[str, tuple[list[str], list[str]]] = {
    # name: (default arguments, --quick arguments)
    "model_throughput.py": (["--steps", "10"], ["--steps", "4"]),
    "training.py": (["--size", "256", "--steps", "30", "--epochs", "2"], ["--size", "128", "--steps", "10", "--epochs", "1"]),
    "inference.py": ([], ["--size", "256", "--rss-sizes", "256", "512", "--flops-tiles", "128"]),
    "synthetic_difficulty.py": (["--size", "512"], ["--size", "256"]),
    "stack_memory.py": ([], ["--size", "512", "--months", "3"]),
    "cube_memory.py": ([], ["--size", "1024", "--acquisitions", "16"]),
    "precision_accuracy.py": (["--seeds", "0", "1", "2"], ["--seeds", "0", "1", "--epochs", "4"]),
    "training_memory.py": (["--in-memory"], ["--sizes", "256", "512"]),
    "dask_predict.py": (["--block", "2"], ["--size", "512", "--block", "1"]),
    "cache_accuracy.py": (["--seeds", "0", "1", "2"], ["--seeds", "0", "1"]),
    "backbones.py": ([], ["--size", "256", "--train-steps", "2", "--repeat", "1"]),
    "reading.py": ([], ["--size", "512", "--rounds", "1"]),
    "quicklook.py": ([], ["--size", "512", "--rounds", "1"]),
    "view.py": ([], ["--size", "512", "--rounds", "1"]),  # needs Debian's chromium (apt-get install chromium chromium-driver)
}
# with a GPU, model_throughput.py measures it as well; inference.py runs a second time on it
GPU_BENCHMARKS: dict[str, tuple[list[str], list[str]]] = {
    "inference.py": (["--device", "cuda", "--skip-rss"],
                     ["--device", "cuda", "--skip-rss", "--size", "256", "--flops-tiles", "128"]),
}


def machine() -> str:
    """One line describing the machine and the library versions."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{platform.platform()}, {os.cpu_count()} CPU cores, {gpu}; Python {platform.python_version()}, "
            f"torch {torch.__version__}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller settings")
    parser.add_argument("--only", nargs="*", default=None, help="benchmark file names to run")
    parser.add_argument("--out", type=Path, default=HERE / "results.md")
    args = parser.parse_args()
    sections = [f"# Benchmark results\n\n{dt.datetime.now():%Y-%m-%d %H:%M}, {machine()}\n"]
    import torch

    runs = list(BENCHMARKS.items()) + (list(GPU_BENCHMARKS.items()) if torch.cuda.is_available() else [])
    for name, (default, quick) in runs:
        if args.only and name not in args.only:
            continue
        cmd = [sys.executable, str(HERE / name), *(quick if args.quick else default)]
        print(f"running {' '.join(cmd[1:])}", flush=True)
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        printed = proc.stdout.strip() or proc.stderr.strip()[-3000:]
        print(printed, flush=True)
        status = "" if proc.returncode == 0 else f" (FAILED, exit {proc.returncode})"
        sections.append(f"## {name}{status}\n\n`python benchmarks/{name} {' '.join(cmd[2:])}` ({seconds:.0f} s)\n\n"
                        f"```\n{printed}\n```\n")
    args.out.write_text("\n".join(sections))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
