"""Peak memory of stacking a datacube: it should not grow with the cube's size (blocks are read one at a time).

Writes two netCDF cubes as openEO writes them (dims t, y, x; a CF grid-mapping variable ``crs`` with
``crs_wkt``/``spatial_ref``; ``S1-SIGMA0-VV``/``VH`` packed as int16 with ``scale_factor``/``add_offset``,
chunked (1, 256, 256), zlib): ``size`` x ``size`` and ``small`` x ``small`` pixels of 20 m in UTM 31N, each
with ``acquisitions`` time steps, 4 a month. Each is written plane by plane with netCDF4 (bounded memory),
then stacked onto its own grid in a fresh subprocess, which reports its RSS after the imports and its peak
RSS (VmHWM). The goal (issue 27): peak for the large cube within 1.2 x of the small one's. Work per block
is the same (4 acquisitions x 2 bands x block^2 floats); only the number of blocks grows.

Run:   python benchmarks/cube_memory.py                          (2048^2 vs 512^2, 40 acquisitions: ~670 MB of int16)
       python benchmarks/cube_memory.py --size 1024 --acquisitions 16   (the small settings, under a minute)
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

import netCDF4
import numpy as np
from rasterio.crs import CRS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_file import Figure, write_results

CUBE_CRS = CRS.from_epsg(32631)
RES = 20.0
ORIGIN = (600000.0, 5700000.0)
EPOCH = dt.datetime(1990, 1, 1)


def write_cube(path: Path, size: int, acquisitions: int) -> None:
    """A packed openEO-style cube, one (y, x) plane at a time; 4 acquisitions a month from January 2020."""
    rng = np.random.default_rng(0)
    wkt = CUBE_CRS.to_wkt()
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("t", acquisitions)
        nc.createDimension("y", size)
        nc.createDimension("x", size)
        t = nc.createVariable("t", "i4", ("t",))
        t.units, t.standard_name = "days since 1990-01-01", "time"
        t[:] = [(dt.datetime(2020 + (k // 4) // 12, (k // 4) % 12 + 1, 2 + 7 * (k % 4)) - EPOCH).days
                for k in range(acquisitions)]
        for name, values in (("x", ORIGIN[0] + RES * (np.arange(size) + 0.5)), ("y", ORIGIN[1] - RES * (np.arange(size) + 0.5))):
            var = nc.createVariable(name, "f8", (name,))
            var.units, var.standard_name = "m", f"projection_{name}_coordinate"
            var[:] = values
        crs = nc.createVariable("crs", "S1")
        crs.crs_wkt, crs.spatial_ref = wkt, wkt
        for name, level in (("S1-SIGMA0-VV", -10.0), ("S1-SIGMA0-VH", -17.0)):
            var = nc.createVariable(name, "i2", ("t", "y", "x"), zlib=True, complevel=1, chunksizes=(1, 256, 256),
                                    fill_value=-32768)
            var.scale_factor, var.add_offset, var.grid_mapping = 0.001, -15.0, "crs"
            for k in range(acquisitions):
                var[k] = rng.normal(level, 1.5, (size, size)).astype(np.float32)


def memory_mb(field: str) -> float:
    """A field of /proc/self/status in MiB: VmRSS (now) or VmHWM (peak since the process started)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def child(cube: str, out: str) -> None:
    """Stack ``cube`` onto its own grid and print RSS figures as JSON (run in a fresh process)."""
    from tropicrop.io.stack import stack

    before = memory_mb("VmRSS")
    clock = time.perf_counter()
    stack([cube], Path(out), progress=False)
    print(json.dumps({"before_mb": before, "peak_mb": memory_mb("VmHWM"), "seconds": time.perf_counter() - clock}))


def run_child(cube: Path, out: Path) -> dict[str, float]:
    """Run :func:`child` in a fresh interpreter; its JSON line."""
    result = subprocess.run([sys.executable, __file__, "--child", str(cube), str(out)], capture_output=True, text=True,
                            check=True)
    figures: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    """Write both cubes, stack each in a subprocess, print and write the peaks and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048, help="side of the large cube in pixels")
    parser.add_argument("--small", type=int, default=512, help="side of the small cube in pixels")
    parser.add_argument("--acquisitions", type=int, default=40, help="time steps of each cube (4 a month)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    results: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="cube-bench-") as tmp:
        for size in (args.small, args.size):
            cube = Path(tmp) / f"cube{size}.nc"
            clock = time.perf_counter()
            write_cube(cube, size, args.acquisitions)
            print(f"cube {size}^2 x {args.acquisitions} acquisitions: {cube.stat().st_size / 2**20:.0f} MiB on disk, "
                  f"written in {time.perf_counter() - clock:.0f} s")
            results[size] = r = run_child(cube, Path(tmp) / f"scene{size}")
            print(f"  stacked: RSS after imports {r['before_mb']:.0f} MiB, peak {r['peak_mb']:.0f} MiB, {r['seconds']:.0f} s")
            cube.unlink()
    small, large = results[args.small], results[args.size]
    ratio = large["peak_mb"] / small["peak_mb"]
    growth = (large["peak_mb"] - large["before_mb"]) / (small["peak_mb"] - small["before_mb"])
    print(f"peak RSS ratio {args.size}^2 / {args.small}^2: {ratio:.3f} (goal <= 1.2); increment over imports: {growth:.2f} x")
    write_results("cube_memory", [
        Figure(f"peak RSS {args.small}^2", round(small["peak_mb"], 1), "MiB"),
        Figure(f"peak RSS {args.size}^2", round(large["peak_mb"], 1), "MiB"),
        Figure("peak RSS ratio", round(ratio, 3), "ratio", "goal <= 1.2"),
        Figure("increment over imports ratio", round(growth, 2), "ratio"),
        Figure(f"stacking time {args.size}^2", round(large["seconds"], 1), "s"),
    ], settings={"size": args.size, "small": args.small, "acquisitions": args.acquisitions})


if __name__ == "__main__":
    main()
