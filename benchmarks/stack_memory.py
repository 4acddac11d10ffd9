"""Peak memory of ``tropicrop stack``: it should not grow with the number of acquisitions in a month.

Writes a folder of Sentinel-1-like acquisitions (two-band dB GeoTIFFs in UTM 23S, pixel size 20 m with the
origin shifted off the target grid) covering a ``size`` x ``size`` target grid in UTM 22S (20 m), 4 per
month over ``months`` months. Then stacks, each in a fresh subprocess, the folder with 2 acquisitions a
month (the first and third of each month) and with all 4, and reports for each the RSS after the imports and
the peak RSS (VmHWM) of the whole process. The goal (issue 19): peak with 4 a month within 1.2 x of the peak
with 2. Work per block grows with the acquisitions (k x 2 bands x block^2 floats), the rest does not.

Run:   python benchmarks/stack_memory.py                   (2048 px, 12 months: ~1.5 GB of inputs, minutes)
       python benchmarks/stack_memory.py --size 512 --months 3    (seconds)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.warp import transform, transform_bounds

from results_file import Figure, write_results

TARGET_CRS = "EPSG:32722"
SOURCE_CRS = "EPSG:32723"
CENTRE_LONLAT = (-48.02, -15.1)
RES = 20.0


def target(size: int) -> tuple[Affine, tuple[float, float, float, float]]:
    """Transform and bounds of the target grid."""
    xs, ys = transform("EPSG:4326", TARGET_CRS, [CENTRE_LONLAT[0]], [CENTRE_LONLAT[1]])
    left, top = round(xs[0] - size * RES / 2, -2), round(ys[0] + size * RES / 2, -2)
    return Affine(RES, 0, left, 0, -RES, top), (left, top - size * RES, left + size * RES, top)


def write_inputs(folder: Path, size: int, months: int, per_month: int) -> list[list[Path]]:
    """``per_month`` acquisitions for each of ``months`` months from January 2019; files per month."""
    _, bounds = target(size)
    left, bottom, right, top = transform_bounds(TARGET_CRS, SOURCE_CRS, *bounds)
    margin = 4 * RES
    width, height = int(np.ceil((right - left + 2 * margin) / RES)), int(np.ceil((top - bottom + 2 * margin) / RES))
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    out = []
    for m in range(months):
        files = []
        for k in range(per_month):
            time_ = dt.datetime(2019 + m // 12, m % 12 + 1, 3 + 7 * k, 8, 30, 12)
            stamp = time_.strftime("%Y%m%dT%H%M%S")
            path = folder / f"S1A_IW_GRDH_1SDV_{stamp}_{stamp}_0250{m:02d}_02C0{k:02d}_ABCD.tif"
            shift = (k + 1) * RES / 5
            tr = Affine(RES, 0, left - margin + shift, 0, -RES, top + margin - shift)
            data = (rng.normal(0, 1.5, (2, height, width)) + np.array([-9.0, -16.0])[:, None, None]).astype(np.float32)
            with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=2, dtype="float32",
                               crs=SOURCE_CRS, transform=tr, tiled=True, blockxsize=256, blockysize=256) as ds:
                ds.write(data)
                ds.descriptions = ("VV", "VH")
            files.append(path)
        out.append(files)
    return out


def memory_mb(field: str) -> float:
    """A field of /proc/self/status in MiB: VmRSS (now) or VmHWM (peak since the process started)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def child(files: list[str], out: str, like: str) -> None:
    """Stack ``files`` onto the grid of ``like`` and print RSS figures as JSON (run in a fresh process)."""
    from tropicrop.io.stack import stack

    before = memory_mb("VmRSS")
    clock = time.perf_counter()
    stack(files, Path(out), like=like, progress=False)
    print(json.dumps({"files": len(files), "before_mb": before, "peak_mb": memory_mb("VmHWM"),
                      "seconds": time.perf_counter() - clock}))


def run_child(files: list[Path], out: Path, like: Path) -> dict[str, float]:
    """Run :func:`child` in a fresh interpreter; its JSON line."""
    cmd = [sys.executable, __file__, "--child", str(out), str(like), *map(str, files)]
    result = subprocess.run(cmd, capture_output=True, text=True, check=True)
    figures: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    """Write the inputs, stack 2 and 4 acquisitions a month in subprocesses, print the peaks and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048, help="side of the target grid in pixels")
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        out, like, *files = args.child
        child(files, out, like)
        return
    with tempfile.TemporaryDirectory(prefix="stack-bench-") as tmp:
        root = Path(tmp)
        clock = time.perf_counter()
        monthly = write_inputs(root / "in", args.size, args.months, 4)
        print(f"inputs: {args.months} months x 4 acquisitions, target {args.size}^2 px (20 m, UTM 22S), sources "
              f"in UTM 23S; written in {time.perf_counter() - clock:.0f} s")
        tr, _ = target(args.size)
        like = root / "like.tif"
        with rasterio.open(like, "w", driver="GTiff", width=args.size, height=args.size, count=1, dtype="uint8",
                           crs=TARGET_CRS, transform=tr) as ds:
            ds.write(np.zeros((1, args.size, args.size), dtype=np.uint8))
        results = {}
        for per_month in (2, 4):
            files = [f for month in monthly for f in (month[::2] if per_month == 2 else month)]
            results[per_month] = run_child(files, root / f"scene{per_month}", like)
            r = results[per_month]
            print(f"{per_month} a month ({r['files']:.0f} files): RSS after imports {r['before_mb']:.0f} MiB, "
                  f"peak {r['peak_mb']:.0f} MiB, {r['seconds']:.0f} s")
        ratio = results[4]["peak_mb"] / results[2]["peak_mb"]
        growth = (results[4]["peak_mb"] - results[4]["before_mb"]) / (results[2]["peak_mb"] - results[2]["before_mb"])
        print(f"peak RSS ratio 4 / 2 a month: {ratio:.3f} (goal <= 1.2); increment over imports: {growth:.2f} x")
    write_results("stack_memory", [
        *(Figure(f"peak RSS, {n} acquisitions a month", round(results[n]["peak_mb"]), "MiB") for n in (2, 4)),
        Figure("peak RSS 4 / 2 acquisitions a month", round(ratio, 3), "ratio"),
        Figure("increment over imports 4 / 2 a month", round(growth, 3), "ratio"),
    ], settings={"size": args.size, "months": args.months})


if __name__ == "__main__":
    main()
