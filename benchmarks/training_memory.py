"""Peak resident memory of training against the scene size, with the on-disk cache and without it.

Each measurement is a fresh process that trains one per-month network for a few steps (``tropicrop
train`` with ``mode=per-month``, one target date) and reports its own peak RSS (``ru_maxrss``). With the
cache (the default), the training region is read strip by strip into ``RUN/cache`` and patches come from a
memory map; ``--in-memory`` measures the previous path (the region read into memory as float32).
Goal (issue 18): peak RSS at 2048^2 at most 1.25 x that at 1024^2.

Run: ``python benchmarks/training_memory.py [--sizes 1024 2048] [--data DIR] [--in-memory]``; the scenes are
``tropicrop synth --preset lem --size N --seed 1 DIR/sN`` (written there when missing; a temporary folder
without ``--data``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import functools, json, resource, sys, time
from pathlib import Path
from tropicrop import training
from tropicrop.config import load_config
scene, run, in_memory, steps = sys.argv[1], sys.argv[2], sys.argv[3] == "1", int(sys.argv[4])
if in_memory:
    original = training.prepare_data
    training.prepare_data = lambda *a, cache_dir=None, **k: original(*a, **k)
labelled = __import__("tropicrop.scene", fromlist=["load_scene"]).load_scene(scene).labelled_dates
cfg = load_config(training.TrainConfig, None, [f"data.scene={scene}", "mode=per-month", "model.name=unet_convlstm",
    f"data.targets=['{labelled[-1]}']", f"trainer.steps_per_epoch={steps}", "trainer.max_epochs=1",
    "trainer.progress=false", "data.val_limit=64"])
start = time.perf_counter()
training.train(cfg, Path(run))
print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "seconds": time.perf_counter() - start}))
"""


def measure(scene: Path, in_memory: bool, steps: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, "-c", CHILD, str(scene), str(Path(tmp) / "run"), "1" if in_memory else "0",
                              str(steps)], check=True, capture_output=True, text=True)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[1024, 2048], help="the two scene sides")
    parser.add_argument("--data", type=Path, default=None, help="folder of the synthetic scenes (kept)")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--in-memory", action="store_true", help="also measure the previous in-memory path")
    args = parser.parse_args()
    from tropicrop.synthetic import write_pair

    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or Path(tmp)
        scenes = []
        for size in args.sizes:
            if not (data / f"s{size}" / "lem1920" / "scene.yaml").is_file():
                write_pair(data / f"s{size}", preset="lem", size=size, seed=1, overwrite=True)
            scenes.append(data / f"s{size}" / "lem1920")
        table(scenes, args.sizes, args.steps, args.in_memory)


def table(scenes: list[Path], sizes: list[int], steps: int, also_in_memory: bool) -> None:
    print(f"| path | {sizes[0]}^2 peak RSS MB | {sizes[1]}^2 peak RSS MB | ratio (goal <= 1.25) |")
    print("|---|---:|---:|---:|")
    for in_memory in ([False, True] if also_in_memory else [False]):
        small, large = (measure(scene, in_memory, steps) for scene in scenes)
        ratio = large["peak_rss_mb"] / small["peak_rss_mb"]
        name = "in memory (before)" if in_memory else "on-disk cache"
        print(f"| {name} | {small['peak_rss_mb']:.0f} | {large['peak_rss_mb']:.0f} | {ratio:.2f} |", flush=True)


if __name__ == "__main__":
    main()
