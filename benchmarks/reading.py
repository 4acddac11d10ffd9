"""Reading a scene tile by tile: every file opened for each window, against the files kept open.

Prediction reads each date of a scene once per tile; tiles overlap and are not aligned with the files'
internal blocks, so with a file opened per window every window inflates its blocks anew, while an open
dataset keeps them in GDAL's block cache (``tropicrop.io.rasters._OpenFiles``). This reads the windows that
``predict_scene`` reads (every date of a synthetic LEM scene, ``--tile`` px tiles with ``--overlap``) both
ways, alternately, and prints seconds and the ratio.

Run:   python benchmarks/reading.py --size 1024
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import rasterio
from rasterio.windows import Window

from inference import make_scene
from tropicrop.inference.tiling import tile_layout
from tropicrop.io.rasters import _OPEN_FILES
from tropicrop.scene import load_scene


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "tropicrop-bench")
    args = parser.parse_args(argv)
    scene = load_scene(make_scene(args.data, args.size))
    tw, cols = tile_layout(scene.grid.width, args.tile, args.overlap)
    th, rows = tile_layout(scene.grid.height, args.tile, args.overlap)
    windows = [Window(c, r, tw, th) for r in rows for c in cols]  # as predict_scene cuts the scene
    sources = [src for src in scene.images if src is not None]

    def per_window() -> None:
        for w in windows:
            for src in sources:
                with rasterio.open(src.path) as ds:
                    ds.read(window=w)

    def kept_open() -> None:
        _OPEN_FILES.datasets.clear()
        for w in windows:
            for src in sources:
                src.read(w)

    seconds: dict[str, list[float]] = {"a file opened per window": [], "files kept open (RasterSource.read)": []}
    for _ in range(args.rounds):
        for name, run in zip(seconds, (per_window, kept_open), strict=True):
            start = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - start)
    median = {name: sorted(v)[len(v) // 2] for name, v in seconds.items()}
    print(f"{len(windows)} windows x {len(sources)} dates of a {args.size}² scene (tile {args.tile}, overlap "
          f"{args.overlap}), median of {args.rounds}:")
    for name, sec in median.items():
        print(f"  {name}: {sec:.2f} s")
    first, second = median.values()
    print(f"  ratio {first / second:.2f}")


if __name__ == "__main__":
    main()
