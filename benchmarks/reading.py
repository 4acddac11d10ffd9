"""Reading a scene tile by tile: every file opened for each window, against the files kept open.

Prediction reads each date of a scene once per tile; tiles overlap and are not aligned with the files'
internal blocks, so with a file opened per window every window inflates its blocks anew, while an open
dataset keeps them in GDAL's block cache (``tropicrop.io.rasters._OpenFiles``, the cache bounded by
``READ_CACHE_BYTES`` while reading). This reads the windows that ``predict_scene`` reads (every date of a
synthetic LEM scene, ``--tile`` px tiles with ``--overlap``, row by row) both ways, each round in a fresh
process, and prints seconds, the memory the reading added (peak RSS minus RSS before) and the ratio.

Run:   python benchmarks/reading.py --size 1024     (a 2048² scene: --size 2048)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import rasterio
from rasterio.windows import Window

from inference import make_scene, memory_mb, reset_peak
from results_file import Figure, write_results
from tropicrop.inference.tiling import tile_layout
from tropicrop.scene import load_scene

METHODS = ("a file opened per window", "files kept open (RasterSource.read)")


def child(scene_dir: Path, method: str, tile: int, overlap: int) -> None:
    """Read every tile window of every date one way; print seconds and MiB as JSON."""
    scene = load_scene(scene_dir)
    tw, cols = tile_layout(scene.grid.width, tile, overlap)
    th, rows = tile_layout(scene.grid.height, tile, overlap)
    windows = [Window(c, r, tw, th) for r in rows for c in cols]  # as predict_scene cuts the scene
    sources = [src for src in scene.images if src is not None]
    before = memory_mb("VmRSS")
    reset_peak()
    start = time.perf_counter()
    for w in windows:
        for src in sources:
            if method == METHODS[0]:
                with rasterio.open(src.path) as ds:
                    ds.read(window=w)
            else:
                src.read(w)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "added_mb": memory_mb("VmHWM") - before, "windows": len(windows),
                      "dates": len(sources)}))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "tropicrop-bench")
    parser.add_argument("--child", nargs=2, metavar=("SCENE", "METHOD"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(Path(args.child[0]), args.child[1], args.tile, args.overlap)
        return
    scene = make_scene(args.data, args.size)
    results: dict[str, list[dict[str, float]]] = {m: [] for m in METHODS}
    for _ in range(args.rounds):
        for method in METHODS:
            cmd = [sys.executable, __file__, "--child", str(scene), method, "--tile", str(args.tile),
                   "--overlap", str(args.overlap)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            results[method].append(json.loads(out.stdout.strip().splitlines()[-1]))
    first = results[METHODS[0]][0]
    print(f"{int(first['windows'])} windows x {int(first['dates'])} dates of a {args.size}² scene (tile {args.tile}, "
          f"overlap {args.overlap}), each round in a fresh process, median of {args.rounds}:")
    median = {}
    figures = []
    for method, runs in results.items():
        seconds = sorted(r["seconds"] for r in runs)[len(runs) // 2]
        added = sorted(r["added_mb"] for r in runs)[len(runs) // 2]
        median[method] = seconds
        print(f"  {method}: {seconds:.2f} s, memory added {added:.0f} MiB")
        figures += [Figure(f"reading, {method}", round(seconds, 3), "s"),
                    Figure(f"memory added, {method}", round(added, 1), "MiB")]
    ratio = median[METHODS[0]] / median[METHODS[1]]
    print(f"  ratio {ratio:.2f}")
    figures.append(Figure("file per window / files kept open", round(ratio, 3), "ratio"))
    write_results("reading", figures, settings={"size": args.size, "tile": args.tile, "overlap": args.overlap,
                                                "rounds": args.rounds, "windows": int(first["windows"]),
                                                "dates": int(first["dates"])})


if __name__ == "__main__":
    main()
