"""Training through the on-disk cache against training from memory: same seed, same batches, same metrics?

The cache (``data.cache: true``, the default) stores the normalised training region as float16 and reads
patches through a memory map; ``data.cache: false`` holds it in memory as float32. ``configs/quick.yaml``
is trained both ways on the tiny synthetic LEM 19/20 scene for each seed; printed are the best validation
macro F1 of each, their difference per seed, and the seed-to-seed spread that "within noise" is judged by.
Both run in ``--precision`` (default float32, so that the only difference is the cache's float16 storage).

Run:  python benchmarks/cache_accuracy.py --seeds 0 1 2      (about 4 minutes on 2 idle CPU cores)
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from results_file import Figure, write_results
from tropicrop.synthetic import write_pair
from tropicrop.training import train_from_files

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "quick.yaml"


def best_f1(data: Path, run_dir: Path, seed: int, cache: bool, precision: str) -> tuple[float, float]:
    """Best validation macro F1 and training seconds of configs/quick.yaml."""
    sets = [f"data.scene={data / 'lem1920'}", f"seed={seed}", f"data.cache={str(cache).lower()}",
            f"trainer.precision={precision}", "trainer.progress=false"]
    net = train_from_files(CONFIG, run_dir, sets, force=True).nets["all-months"]
    return float(net.best_val_f1 or 0.0), net.train_seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--precision", default="32-true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        write_pair(data, preset="tiny", seed=0)
        rows = []
        for seed in args.seeds:
            on = best_f1(data, Path(tmp) / f"cache{seed}", seed, True, args.precision)
            off = best_f1(data, Path(tmp) / f"memory{seed}", seed, False, args.precision)
            rows.append((seed, on, off))
            print(f"  seed {seed}: cache {on[0]:.3f} ({on[1]:.0f} s), memory {off[0]:.3f} ({off[1]:.0f} s)", flush=True)
    print(f"\nconfigs/quick.yaml, tiny synthetic LEM 19/20, {args.precision}; best validation macro F1\n")
    print("| seed | on-disk cache (float16) | in memory (float32) | difference |")
    print("|---:|---:|---:|---:|")
    for seed, on, off in rows:
        print(f"| {seed} | {on[0]:.3f} | {off[0]:.3f} | {on[0] - off[0]:+.3f} |")
    memory = [off[0] for _, _, off in rows]
    diffs = [abs(on[0] - off[0]) for _, on, off in rows]
    spread = statistics.stdev(memory) if len(memory) > 1 else float("nan")
    print(f"\nlargest |difference| {max(diffs):.3f}; seed-to-seed sd in memory {spread:.3f} "
          f"(within noise when the difference is well below the spread)")
    figures = []
    for seed, on, off in rows:
        figures += [Figure(f"validation macro F1, on-disk cache, seed {seed}", round(on[0], 4), "F1"),
                    Figure(f"validation macro F1, in memory, seed {seed}", round(off[0], 4), "F1")]
    figures += [Figure("largest |cache - in memory|", round(max(diffs), 4), "F1"),
                Figure("seed-to-seed sd, in memory", round(spread, 4), "F1")]
    write_results("cache_accuracy", figures, precision=args.precision,
                  settings={"seeds": args.seeds, "config": "configs/quick.yaml", "data": "synth tiny, seed 0, lem1920"})


if __name__ == "__main__":
    main()
