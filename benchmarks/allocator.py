"""What glibc's allocator settings cost a training run: one demo network trained twice in fresh processes.

``tropicrop`` raises glibc's mmap and trim thresholds at start (:mod:`tropicrop.allocator`), so activations
freed after a training step are reused instead of unmapped and mapped again, zero-filled, at the next one.
This trains the per-month Baseline 1 network of ``configs/demo.yaml`` as the experiment configures it (one
target date of a ``tropicrop synth`` pair at the demo's 256 px, a fixed number of epochs so both runs do the
same steps) once
with glibc's defaults and once with the thresholds set, each in a new process, and prints wall time, the
network's training time, kernel (system) time, minor page faults and peak RSS of each, and whether the two
trained to the same validation F1 (the settings move memory, never a number).

Run: ``python benchmarks/allocator.py [--epochs 6] [--target-index 5] [--data DIR]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from results_file import Figure, write_results  # benchmarks/ is on sys.path when a script there runs

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "configs" / "demo.yaml"

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
if sys.argv[1] == "keep":
    from tropicrop.allocator import keep_freed_memory
    assert keep_freed_memory(), "glibc's thresholds could not be set here"
from tropicrop.training.run import train_from_files
start = time.perf_counter()
result = train_from_files(Path(sys.argv[2]), Path(sys.argv[3]), [], force=True)
wall = time.perf_counter() - start
net = next(iter(result.nets.values()))
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"wall_s": wall, "train_s": net.train_seconds, "val_f1": net.best_val_f1, "epochs": net.length,
                  "sys_s": usage.ru_stime, "user_s": usage.ru_utime, "minor_faults": usage.ru_minflt,
                  "max_rss_mib": usage.ru_maxrss / 1024}))
"""


def demo_pair(given: Path | None, tmp: Path) -> Path:
    """The synth pair in ``given``, else one written into ``tmp/data`` (``tropicrop synth --seed 0``)."""
    if given is not None:
        return given
    data = tmp / "data"
    subprocess.run([sys.executable, "-c", "from tropicrop.cli import main; main()", "synth", str(data), "--seed", "0"],
                   check=True, stdout=subprocess.DEVNULL)
    return data


def demo_net_config(data: Path, epochs: int, target_indices: Sequence[int], path: Path) -> list[str]:
    """Write the training config of Baseline 1 in configs/demo.yaml on the pair in ``data`` (as the experiment
    builds it: shared settings, shared class table) for the labelled dates of year B at ``target_indices``,
    each net trained for exactly ``epochs``, to ``path``; returns the target dates."""
    from tropicrop.config import ExperimentConfig, dump_config, load_config
    from tropicrop.experiments import shared_class_table
    from tropicrop.scene import load_scene

    scene_a, scene_b = load_scene(data / "lem1718"), load_scene(data / "lem1920")
    cfg = load_config(ExperimentConfig, DEMO, [f"scenes.a={scene_a.root}", f"scenes.b={scene_b.root}"])
    baseline1 = next(a for a in cfg.approaches if a.name == "Baseline 1")
    classes = shared_class_table(cfg, scene_a, scene_b)
    net = cfg.train_config(baseline1, list(classes.names[1:]))
    net.data.targets = [scene_b.labelled_dates[k] for k in target_indices]
    net.trainer.min_epochs = net.trainer.max_epochs = epochs
    dump_config(net, path)
    return [t.isoformat() for t in net.data.targets]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6, help="epochs of 40 steps each run trains (default 6)")
    parser.add_argument("--target-index", type=int, default=5, help="which labelled date of year B (default 5)")
    parser.add_argument("--data", type=Path, help="an existing synth pair (default: written into a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = demo_pair(args.data, Path(tmp))
        config = Path(tmp) / "net.yaml"
        (target,) = demo_net_config(data, args.epochs, [args.target_index], config)
        runs = {}
        for mode in ("default", "keep"):
            out = subprocess.run([sys.executable, "-c", CHILD, mode, str(config), str(Path(tmp) / mode)],
                                 check=True, capture_output=True, text=True).stdout
            runs[mode] = json.loads(out.strip().splitlines()[-1])
    print(f"Baseline 1 of configs/demo.yaml, target {target}, {args.epochs} epochs, fresh process each")
    print(f"{'':32s} {'glibc defaults':>15s} {'tropicrop':>15s}")
    rows = [("wall (s)", "wall_s", "{:.1f}"), ("training (s)", "train_s", "{:.1f}"), ("kernel time (s)", "sys_s", "{:.1f}"),
            ("minor page faults", "minor_faults", "{:,}"), ("peak RSS (MiB)", "max_rss_mib", "{:.0f}"),
            ("validation F1", "val_f1", "{:.4f}"), ("epochs", "epochs", "{}")]
    for label, key, fmt in rows:
        print(f"{label:32s} {fmt.format(runs['default'][key]):>15s} {fmt.format(runs['keep'][key]):>15s}")
    ratio = runs["keep"]["train_s"] / runs["default"]["train_s"]
    same = runs["keep"]["val_f1"] == runs["default"]["val_f1"]
    print(f"training time with the thresholds / without: {ratio:.2f}; same validation F1: {same}")
    figures = [Figure(f"{key} ({mode})", runs[mode][key], unit) for mode in ("default", "keep")
               for key, unit in (("wall_s", "s"), ("train_s", "s"), ("sys_s", "s"), ("minor_faults", "count"),
                                 ("max_rss_mib", "MiB"), ("val_f1", "F1"))]
    figures += [Figure("training time ratio (thresholds / glibc defaults)", round(ratio, 3), "ratio"),
                Figure("same validation F1", same, "bool")]
    write_results("allocator", figures, settings={"epochs": args.epochs, "target": target})


if __name__ == "__main__":
    main()
