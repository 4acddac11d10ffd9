"""Prediction on a local Dask cluster against one process: pixel-months per second per core used.

A run is trained briefly on a synthetic LEM scene; the scene's labelled dates are then predicted once by
the single-process path (torch using ``--cores`` threads) and once by ``--workers`` Dask worker processes
(``cores / workers`` torch threads each). The maps are compared pixel for pixel. Per-core throughput is
pixel-months/s divided by the cores each used; the goal (issue 18) is a ratio of at least 0.8 with 2
workers. Two figures for Dask: the prediction alone (from ``predict.json``) and the whole call including
starting the cluster. The cores of this machine are shared with other work: absolute figures are noise,
the ratio is the finding.

Run: ``python benchmarks/dask_predict.py [--size 1024] [--workers 2] [--cores 2] [--block 2]``. The scene must give
several blocks per worker: with fewer blocks than workers some workers idle and the ratio says nothing.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import rasterio
import torch

from results_file import Figure, write_results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="scene side: enough tiles for several blocks per worker")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--block", type=int, default=4)
    args = parser.parse_args()
    from tropicrop.config import load_config
    from tropicrop.inference import predict_run
    from tropicrop.inference.distributed import predict_distributed
    from tropicrop.synthetic import write_pair
    from tropicrop.training import TrainConfig, train

    torch.set_num_threads(args.cores)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_pair(root / "pair", preset="lem", size=args.size, seed=1)
        scene = root / "pair" / "lem1920"
        cfg = load_config(TrainConfig, Path("configs/quick.yaml"), [f"data.scene={scene}", "trainer.max_epochs=1",
                                                                    "trainer.steps_per_epoch=3", "trainer.progress=false"])
        train(cfg, root / "run")
        predict_run(root / "run", scene, root / "single", progress=False)
        single = json.loads((root / "single" / "predict.json").read_text())[-1]
        start = time.perf_counter()
        predict_distributed(root / "run", [scene], root / "dask", workers=args.workers, block=args.block,
                            torch_threads=max(1, args.cores // args.workers), progress=False)
        whole = time.perf_counter() - start
        dask_log = json.loads((root / "dask" / "predict.json").read_text())[-1]
        pixel_months = single["pixel_months_per_s"] * single["seconds"]
        same = total = 0
        for p in sorted((root / "single" / "maps").glob("*.tif")):
            with rasterio.open(p) as a, rasterio.open(root / "dask" / "maps" / p.name) as b:
                same += int((a.read() == b.read()).sum())
                total += a.width * a.height
        identical = same == total
    cores_dask = args.workers * max(1, args.cores // args.workers)
    per_core_single = single["pixel_months_per_s"] / args.cores
    per_core_dask = dask_log["pixel_months_per_s"] / cores_dask
    per_core_whole = pixel_months / whole / cores_dask
    print(f"lem {args.size}^2 scene, {len(single['nets'])} dates, tile {single['tile']}, {args.workers} workers x "
          f"{cores_dask // args.workers} torch threads, blocks of {dask_log['block_tiles']} x {dask_log['block_tiles']} "
          f"tiles ({dask_log['blocks']} blocks); "
          "shared CPU cores: absolute figures are contended")
    print("| path | pixel-months/s | per core | vs single process (goal >= 0.8) |")
    print("|---|---:|---:|---:|")
    print(f"| single process, {args.cores} threads | {single['pixel_months_per_s']:.0f} | {per_core_single:.0f} | 1.00 |")
    print(f"| Dask, prediction | {dask_log['pixel_months_per_s']:.0f} | {per_core_dask:.0f} | "
          f"{per_core_dask / per_core_single:.2f} |")
    print(f"| Dask, including cluster start | {pixel_months / whole:.0f} | {per_core_whole:.0f} | "
          f"{per_core_whole / per_core_single:.2f} |")
    print(f"maps identical pixel for pixel: {identical} ({100 * same / total:.4f} % of map pixels agree; the single "
          f"process ran {args.cores} torch threads, each worker {cores_dask // args.workers}: other thread counts "
          "sum in another order, and a pixel whose two best classes are within rounding may flip)")
    if dask_log["blocks"] < 2 * args.workers:
        print(f"note: {dask_log['blocks']} block(s) for {args.workers} workers: a larger --size or a smaller --block "
              "is needed for a per-core figure")
    few_blocks = "fewer than 2 blocks per worker: says nothing" if dask_log["blocks"] < 2 * args.workers else ""
    write_results("dask_predict", [
        Figure("single process, pixel-months/s per core", round(per_core_single), "pixel-months/s"),
        Figure("Dask prediction / single process, per core", round(per_core_dask / per_core_single, 3), "ratio", few_blocks),
        Figure("Dask with cluster start / single process, per core", round(per_core_whole / per_core_single, 3), "ratio",
               few_blocks),
        Figure("map pixels that agree", round(100 * same / total, 4), "%"),
    ], settings={"size": args.size, "workers": args.workers, "cores": args.cores, "block": args.block,
                 "blocks": dask_log["blocks"]})


if __name__ == "__main__":
    main()
