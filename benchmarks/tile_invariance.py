"""Maps that do not depend on the tile size: agreement between tile sizes, throughput, and accuracy.

A trained run (e.g. ``configs/quick.yaml``) predicts one scene with several ways of cutting it into tiles,
in one process, with the same loaded networks:

* ``mosaic``: the paper authors' non-overlapping 32 x 32 patches (``--tile 32 --overlap 0 --margin 0``);
* ``blend T``: tiles of T px overlapping by ``--overlap``, blended, each tile read alone (``--margin 0``:
  the behaviour before the context margin);
* ``margin T``: the same tiles read with the context margin measured on the networks
  (:func:`tropicrop.inference.run_margin`) and cropped before blending (the default of ``tropicrop predict``).

It prints the measured margin, each method's time and throughput in pixel-months/s (pixels x target dates
/ seconds; every method writes the same COGs and PNGs), the pairwise share of pixels with the same class
between tile sizes of one method, and, when the scene has reference labels and a split, the average macro
F1 and OA over the labelled dates on the test split (``tropicrop evaluate``'s numbers).

Run (the figures in the README; a scene the run has not seen):
    tropicrop synth data/tiny --preset tiny --seed 0
    tropicrop train -c configs/quick.yaml --run-dir runs/quick
    tropicrop synth data/lem512 --preset lem --size 512 --seed 7
    python benchmarks/tile_invariance.py runs/quick data/lem512/lem1920 --tiles 128 256 512
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio

from results_file import Figure, write_results
from tropicrop.evaluation import evaluate_predictions
from tropicrop.inference import default_dates, load_run, predict_scene, run_margin
from tropicrop.scene import load_scene


def read_maps(paths: list[Path]) -> np.ndarray:
    """Class maps (dates, H, W) uint8."""
    out = []
    for p in paths:
        with rasterio.open(p) as ds:
            out.append(ds.read(1))
    return np.stack(out)


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Share of pixels predicted in both maps (code > 0) that get the same class."""
    both = (a > 0) & (b > 0)
    return float((a[both] == b[both]).mean()) if both.any() else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="run directory written by tropicrop train")
    parser.add_argument("scene", type=Path, help="scene to predict (held out from training)")
    parser.add_argument("--tiles", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--dates", help="YYYY-MM-DD,... (default: the scene's labelled dates)")
    parser.add_argument("--methods", nargs="+", default=["mosaic", "blend", "margin"], choices=["mosaic", "blend", "margin"])
    parser.add_argument("--margin", type=int, default=None, help="margin method: this many px instead of the measured one")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    models = load_run(args.run)
    scene = load_scene(args.scene)
    dates = ([dt.date.fromisoformat(d) for d in args.dates.split(",")] if args.dates
             else default_dates(scene, models.sequence_length))
    clock = time.perf_counter()
    margin, align = run_margin(models)
    measured = time.perf_counter() - clock
    print(f"run {args.run}, scene {args.scene} ({scene.grid.width} x {scene.grid.height} px), {len(dates)} date(s)")
    print(f"context margin measured on the network: {margin} px (alignment {align}), in {measured:.1f} s")
    figures = [Figure("context margin measured on the network", margin, "px")]
    if args.margin is not None:
        margin = args.margin
        print(f"margin method run with --margin {margin} px instead")

    runs: list[tuple[str, int, int, int]] = []  # (method, tile, overlap, margin)
    if "mosaic" in args.methods:
        runs.append(("mosaic", 32, 0, 0))
    for method in ("blend", "margin"):
        if method in args.methods:
            runs += [(method, t, min(args.overlap, t - 1), margin if method == "margin" else 0) for t in args.tiles]
    pixel_months = scene.grid.width * scene.grid.height * len(dates)
    maps: dict[tuple[str, int], np.ndarray] = {}
    labelled = scene.has_split and any(d in scene.labelled_dates for d in dates)
    print()
    print("| method | tile (px) | overlap | margin | seconds | pixel-months/s | average F1 (%) | average OA (%) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for method, tile, overlap, m in runs:
            out = Path(tmp) / f"{method}{tile}"
            clock = time.perf_counter()
            paths = predict_scene(models, scene, out, dates, tile=tile, overlap=overlap, margin=m, progress=False)
            seconds = time.perf_counter() - clock
            maps[(method, tile)] = read_maps(paths)
            f1 = oa = ""
            if labelled:
                result = evaluate_predictions(out, scene, split="test")
                f1, oa = f"{100 * result.mean_f1:.1f}", f"{100 * result.mean_oa:.1f}"
            print(f"| {method} | {tile} | {overlap} | {m} | {seconds:.1f} | {pixel_months / seconds:,.0f} | {f1} | {oa} |",
                  flush=True)
            figures.append(Figure(f"{method} {tile} px, pixel-months/s", round(pixel_months / seconds), "pixel-months/s"))
            if labelled:
                figures += [Figure(f"{method} {tile} px, average F1", float(f1), "%"),
                            Figure(f"{method} {tile} px, average OA", float(oa), "%")]
    print()
    print("| method | tiles compared | pixels with the same class (%) | worst date (%) |")
    print("|---|---|---:|---:|")
    for method in ("blend", "margin"):
        tiles = [t for (name, t) in maps if name == method]
        for a, b in itertools.combinations(tiles, 2):
            per_date = [agreement(x, y) for x, y in zip(maps[(method, a)], maps[(method, b)], strict=True)]
            both = agreement(maps[(method, a)], maps[(method, b)])
            print(f"| {method} | {a} vs {b} | {100 * both:.2f} | {100 * min(per_date):.2f} |")
            figures.append(Figure(f"{method}, tiles {a} vs {b}, pixels with the same class", round(100 * both, 3), "%"))
    write_results("tile_invariance", figures, settings={"run": str(args.run), "scene": str(args.scene),
                                                        "tiles": args.tiles, "overlap": args.overlap,
                                                        "dates": [d.isoformat() for d in dates], "methods": args.methods,
                                                        "margin": margin})


if __name__ == "__main__":
    main()
