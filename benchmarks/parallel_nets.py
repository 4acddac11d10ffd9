"""Per-month nets side by side (``trainer.parallel_nets``): wall time of a per-month run, one net at a time
against two at a time, on the same cores.

A net of the demo's size keeps two threads only partly busy (many small operations), so two nets at one
thread each may get through more steps than one net at two threads. This trains Baseline 1 of
``configs/demo.yaml`` as the experiment configures it, on ``--nets`` labelled dates of year B of the demo pair
(256 px), each net for exactly ``--epochs`` epochs (both runs do the same steps, so the ratio is of time for
the same work), once with ``parallel_nets: 1`` and once with ``parallel_nets: 2``, at the same total threads
(``--threads``, default torch's), each in a fresh process. Printed: wall seconds of each run, the ratio, and
the mean validation F1 (the two differ only in float rounding: one thread per net sums in another order).

Run: ``python benchmarks/parallel_nets.py [--nets 4] [--epochs 4] [--data DIR]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from allocator import demo_net_config, demo_pair
from results_file import Figure, write_results

CHILD = r"""
import json, sys, time
from pathlib import Path
from tropicrop.allocator import keep_freed_memory
keep_freed_memory()
from tropicrop.training.run import train_from_files
start = time.perf_counter()
result = train_from_files(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:], force=True)
wall = time.perf_counter() - start
f1 = [n.best_val_f1 for n in result.nets.values()]
print(json.dumps({"wall_s": wall, "val_f1": sum(f1) / len(f1), "nets": len(f1),
                  "net_train_s": sum(n.train_seconds for n in result.nets.values())}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", type=int, default=4, help="labelled dates of year B, one net each (default 4)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs of 40 steps each net trains (default 4)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads in all")
    parser.add_argument("--data", type=Path, help="an existing synth pair (default: written into a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = demo_pair(args.data, Path(tmp))
        config = Path(tmp) / "run.yaml"
        demo_net_config(data, args.epochs, range(args.nets), config)
        runs = {}
        for workers in (1, 2):
            out = subprocess.run([sys.executable, "-c", CHILD, str(config), str(Path(tmp) / f"p{workers}"),
                                  f"trainer.threads={args.threads}", f"trainer.parallel_nets={workers}"],
                                 check=True, capture_output=True, text=True).stdout
            runs[workers] = json.loads(out.strip().splitlines()[-1])
    ratio = runs[2]["wall_s"] / runs[1]["wall_s"]
    print(f"Baseline 1 of configs/demo.yaml, {args.nets} nets x {args.epochs} epochs, {args.threads} threads in all")
    print("| nets at a time | threads per net | wall (s) | mean validation F1 |\n|---:|---:|---:|---:|")
    for workers, run in runs.items():
        print(f"| {workers} | {max(1, args.threads // workers)} | {run['wall_s']:.1f} | {run['val_f1']:.4f} |")
    print(f"wall, two at a time / one at a time: {ratio:.2f}")
    figures = [Figure(f"wall, {w} net(s) at a time", round(runs[w]["wall_s"], 1), "s") for w in runs]
    figures += [Figure(f"mean validation F1, {w} net(s) at a time", round(runs[w]["val_f1"], 4), "F1") for w in runs]
    figures.append(Figure("wall ratio (two at a time / one at a time)", round(ratio, 3), "ratio"))
    write_results("parallel_nets", figures, settings={"nets": args.nets, "epochs": args.epochs,
                                                      "threads": args.threads})


if __name__ == "__main__":
    main()
