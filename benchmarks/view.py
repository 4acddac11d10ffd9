"""``tropicrop view`` on a large scene: the time from navigation to the first overlay drawn in Debian's
headless chromium (the page's ``first-overlay`` performance mark), the page's size and the time to build it.

The prediction folder is synthetic but shaped like a real one: a ``--size``² scene of the synthetic region's
fields (EPSG:32723, 10 m), ``--months`` monthly class maps (each field's class changes now and then, 3 %
of pixels flipped like a real map's noise), confidence rasters, and the scene's VV/VH images with speckle
for the composite (``--scene``), so all three layers count against the 30 MB budget. Each round opens the
page in a fresh browser profile with the network blocked. Goal: first overlay under 5 s for 2048² x 12.

Run:   python benchmarks/view.py                      (2048² scene, 12 months, 3 rounds)
       python benchmarks/view.py --size 1024 --rounds 1
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
import yaml

from browser import chromium, wait_first_overlay
from results_file import Figure, write_results
from tropicrop.classes import ClassTable
from tropicrop.palette import class_colors
from tropicrop.synthetic.region import CRS, generate_region
from tropicrop.view import PAGE_LIMIT, build_view

NAMES = ("Soybean", "Maize", "Cotton", "Millet", "Pasture", "Cerrado", "Soil", "Other")


def write_prediction(root: Path, size: int, months: int, seed: int = 0) -> tuple[Path, Path]:
    """A prediction folder and its scene (see the module docstring); returns (OUT, SCENE)."""
    rng = np.random.default_rng(seed)
    region = generate_region(rng, size)
    out, scene = root / "pred", root / "scene"
    for folder in (out / "maps", out / "confidence", scene / "images"):
        folder.mkdir(parents=True)
    (out / "classes.json").write_text(ClassTable.from_names(NAMES).to_dict().__repr__().replace("'", '"'))
    profile = {"driver": "GTiff", "width": size, "height": size, "crs": CRS, "transform": region.transform,
               "tiled": True, "compress": "deflate"}
    parcel_class = rng.integers(1, len(NAMES) + 1, size=region.n_ids)
    parcel_class[0] = NAMES.index("Soil") + 1  # roads
    parcel_confidence = rng.integers(40, 100, size=region.n_ids)
    dates = [dt.date(2019, 9, 15) + dt.timedelta(days=30 * m) for m in range(months)]
    for date in dates:
        change = rng.random(region.n_ids) < 0.3
        parcel_class[change] = rng.integers(1, len(NAMES) + 1, size=int(change.sum()))
        codes = parcel_class[region.pid].astype(np.uint8)
        flip = rng.random(codes.shape) < 0.03
        codes[flip] = rng.integers(1, len(NAMES) + 1, size=int(flip.sum()))
        with rasterio.open(out / "maps" / f"{date:%Y%m%d}.tif", "w", count=1, dtype="uint8", nodata=0, **profile) as ds:
            ds.write(codes, 1)
            ds.write_colormap(1, class_colors(("no reference", *NAMES)))
        confidence = np.clip(parcel_confidence[region.pid] + rng.normal(0, 5, codes.shape), 0, 100).astype(np.uint8)
        with rasterio.open(out / "confidence" / f"{date:%Y%m%d}.tif", "w", count=1, dtype="uint8", nodata=255, **profile) as ds:
            ds.write(confidence, 1)
        speckle = rng.gamma(4.0, 0.25, size=(2, size, size)).astype(np.float32)
        db = np.stack([-12.0 - codes * 1.0, -19.0 - codes * 0.8]).astype(np.float32) + 10 * np.log10(speckle)
        with rasterio.open(scene / "images" / f"{date:%Y%m%d}.tif", "w", count=2, dtype="float32", **profile) as ds:
            ds.write(db)
    manifest = {"name": "view-benchmark", "bands": ["VV", "VH"], "units": "dB", "classes": dict(enumerate(NAMES, 1)),
                "dates": [{"date": d.isoformat(), "image": f"images/{d:%Y%m%d}.tif"} for d in dates]}
    (scene / "scene.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return out, scene


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        out, scene = write_prediction(root, args.size, args.months)
        start = time.perf_counter()
        result = build_view(out, scene=scene)
        build_s = time.perf_counter() - start
        first_ms = []
        for r in range(args.rounds):
            driver = chromium(root / f"profile{r}")
            try:
                driver.get(result.path.as_uri())
                first_ms.append(wait_first_overlay(driver))
            finally:
                driver.quit()
    first_s = statistics.median(first_ms) / 1000
    print(f"{args.size}² x {args.months} months: page {result.size / 1e6:.1f} MB (limit {PAGE_LIMIT / 1e6:.0f} MB), "
          f"overlays at 1/{result.scale:.2f} of the maps' resolution, built in {build_s:.1f} s")
    print(f"navigation -> first overlay drawn: {first_s:.2f} s (median of {args.rounds}: "
          f"{', '.join(f'{m / 1000:.2f}' for m in first_ms)} s; goal < 5 s)")
    write_results("view", [
        Figure("first overlay drawn after navigation", round(first_s, 3), "s", f"median of {args.rounds}, goal < 5 s"),
        Figure("page size", round(result.size / 1e6, 2), "MB", f"limit {PAGE_LIMIT / 1e6:.0f} MB"),
        Figure("overlay scale", round(result.scale, 3), "ratio", "1 = the maps' resolution"),
        Figure("page build", round(build_s, 2), "s", "tropicrop view with --scene"),
    ], settings={"size": args.size, "months": args.months, "rounds": args.rounds})


if __name__ == "__main__":
    main()
