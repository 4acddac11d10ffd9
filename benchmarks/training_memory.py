"""Peak resident memory of training: against the scene size, and at the paper's full LEM size.

Size case (issue 18): each measurement is a fresh process that trains one per-month network for a few
steps (``tropicrop train`` with ``mode=per-month``, one target date) on ``tropicrop synth --preset lem``
scenes of two sides and reports its own peak RSS (``ru_maxrss``). With the cache (the default), the
training region is read strip by strip into ``RUN/cache`` and patches come from a memory map;
``--in-memory`` measures the previous path (the region read into memory as float32). Goal: peak RSS at
2048^2 at most 1.25 x that at 1024^2.

Full-LEM case (issue 28, ``--lem``): a fake authors' layout of the paper's LEM scene (8484 x 8658 px, 4
dates of random VV/VH ``YYYYMMDD_S1.npy``, random labels everywhere, and the real ``TrainTestMask`` given
by ``--mask``), imported with ``tropicrop import-authors``, trained for ``--steps`` steps with
``tropicrop train -c configs/quick.yaml`` in a fresh process; reports that process's peak RSS (``VmHWM``)
and its training / validation patch counts. Goal: peak RSS at most 2.5 GB. Measured on 2 CPU cores, 24 GB:
before (commit b2a2732) at least 17,193 MiB (killed with 3 GB left on the machine, in the second of the
quadratic train x validation passes of the overlap test); after, 1,631 MiB, 48,404 training + 13,540
validation patches, the same as the old implementation's (90,265 patch origins; 572 s for the whole
command, most of it building the cache, on a shared machine). The
parent watches the machine's available memory and kills the child when it falls under ``--min-free-gb``
(the figure is then a lower bound, marked so). ``--lem-shape ROWS COLS`` crops the mask's centre for a
smaller scene.

Run: ``python benchmarks/training_memory.py [--sizes 1024 2048] [--data DIR] [--in-memory]`` or
``python benchmarks/training_memory.py --lem [--mask /work/shared/data/lem_TrainTestMask.tif]``.
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

from results_file import Figure, write_results  # benchmarks/ is on sys.path when a script there runs

REPO = Path(__file__).resolve().parents[1]
LEM_SHAPE = (8484, 8658)
LEM_DATES = [dt.date(2019, 9, 14), dt.date(2019, 10, 8), dt.date(2019, 11, 13), dt.date(2019, 12, 7)]
DEFAULT_MASK = Path("/work/shared/data/lem_TrainTestMask.tif")

CHILD = r"""
import functools, json, resource, sys, time
from pathlib import Path
from tropicrop import training
from tropicrop.config import load_config
from tropicrop.training import run as training_run
scene, run, in_memory, steps = sys.argv[1], sys.argv[2], sys.argv[3] == "1", int(sys.argv[4])
if in_memory:  # the module that calls prepare_data: train() finds it there
    original = training_run.prepare_data
    training_run.prepare_data = lambda *a, cache_dir=None, **k: original(*a, **k)
labelled = __import__("tropicrop.scene", fromlist=["load_scene"]).load_scene(scene).labelled_dates
cfg = load_config(training.TrainConfig, None, [f"data.scene={scene}", "mode=per-month", "model.name=unet_convlstm",
    f"data.targets=['{labelled[-1]}']", f"trainer.steps_per_epoch={steps}", "trainer.max_epochs=1",
    "trainer.progress=false", "data.val_limit=64"])
start = time.perf_counter()
training.train(cfg, Path(run))
print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "seconds": time.perf_counter() - start}))
"""

LEM_CHILD = r"""
import json, sys, time
from pathlib import Path
from tropicrop.cli import main
scene, run, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
start = time.perf_counter()
main(["train", "-c", "configs/quick.yaml", "--run-dir", run, "--set", f"data.scene={scene}",
      "--set", f"trainer.steps_per_epoch={steps}", "--set", "trainer.max_epochs=1", "--set", "trainer.progress=false"])
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
result = json.loads((Path(run) / "result.json").read_text())
print(json.dumps({"peak_rss_mb": int(hwm.split()[1]) / 1024, "seconds": time.perf_counter() - start,
                  "train_patches": result.get("train_patches"), "val_patches": result.get("val_patches")}))
"""


def measure(scene: Path, in_memory: bool, steps: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, "-c", CHILD, str(scene), str(Path(tmp) / "run"), "1" if in_memory else "0",
                              str(steps)], check=True, capture_output=True, text=True)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# ------------------------------------------------------------------------------------------ full LEM size
def write_fake_lem(folder: Path, mask_path: Path, shape: tuple[int, int] | None = None, seed: int = 0) -> Path:
    """Write a fake authors' layout of LEM into ``folder`` (random images and labels, the real split
    ``mask_path``, its centre cropped to ``shape``) and a ``scene.yaml`` for it; returns the scene folder."""
    import warnings

    import rasterio
    from rasterio.errors import NotGeoreferencedWarning
    from rasterio.windows import Window

    from tropicrop.io.authors import import_authors

    warnings.simplefilter("ignore", NotGeoreferencedWarning)  # the authors' files have no CRS
    data = folder / "authors"
    (data / "labels").mkdir(parents=True, exist_ok=True)
    with rasterio.open(mask_path) as src:
        h, w = shape or (src.height, src.width)
        window = Window((src.width - w) // 2, (src.height - h) // 2, w, h)
        profile = {**src.profile, "width": w, "height": h, "transform": src.window_transform(window)}
        with rasterio.open(data / "TrainTestMask.tif", "w", **profile) as dst:
            dst.write(src.read(1, window=window), 1)
    rng = np.random.default_rng(seed)
    rows = 512
    label_profile = {"driver": "GTiff", "dtype": "uint8", "count": 1, "width": w, "height": h, "tiled": True}
    for date in LEM_DATES:
        stamp = date.strftime("%Y%m%d")
        images = np.lib.format.open_memmap(data / f"{stamp}_S1.npy", mode="w+", dtype=np.float16, shape=(h, w, 2))
        with rasterio.open(data / "labels" / f"{stamp}_S1.tif", "w", **label_profile) as labels:
            for top in range(0, h, rows):
                n = min(rows, h - top)
                images[top:top + n] = rng.gamma(2.0, 0.05, size=(n, w, 2)).astype(np.float16)
                labels.write(rng.integers(1, 15, size=(n, w), dtype=np.uint8), 1, window=Window(0, top, w, n))
        images.flush()
        del images
    import_authors(data, folder / "scene")
    return folder / "scene"


def _available_gb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024**2
    return float("inf")


def measure_lem(scene: Path, steps: int, min_free_gb: float) -> dict[str, float | bool | None]:
    """Train ``steps`` steps of configs/quick.yaml on ``scene`` in a fresh process; its peak RSS and patches.

    The child is killed when the machine's available memory falls under ``min_free_gb`` (``aborted``)."""
    with tempfile.TemporaryDirectory() as tmp:
        child = subprocess.Popen([sys.executable, "-c", LEM_CHILD, str(scene), str(Path(tmp) / "run"), str(steps)],
                                 cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lowest, peak_status = float("inf"), 0.0
        while child.poll() is None:
            lowest = min(lowest, _available_gb())
            try:
                status = Path(f"/proc/{child.pid}/status").read_text()
                peak_status = max(peak_status, int(status.split("VmHWM:")[1].split()[0]) / 1024)
            except (OSError, IndexError, ValueError):
                pass
            if lowest < min_free_gb:
                child.kill()
                child.wait()
                return {"peak_rss_mb": peak_status, "aborted": True, "lowest_available_gb": lowest,
                        "train_patches": None, "val_patches": None, "seconds": None}
            time.sleep(0.2)
        out, err = child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"training failed ({child.returncode}):\n{err[-3000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    return {**result, "aborted": False, "lowest_available_gb": lowest}


def lem_case(args: argparse.Namespace) -> None:
    shape = tuple(args.lem_shape) if args.lem_shape else None
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        scene = write_fake_lem(Path(tmp), args.mask, shape)  # type: ignore[arg-type]
        print(f"fake authors' layout written in {time.perf_counter() - start:.0f} s", flush=True)
        r = measure_lem(scene, args.steps, args.min_free_gb)
    size = "x".join(map(str, shape or LEM_SHAPE))
    bound = " (aborted: a lower bound)" if r["aborted"] else ""
    print(f"full-LEM training ({size}, 4 dates, configs/quick.yaml, {args.steps} steps): peak RSS "
          f"{r['peak_rss_mb']:.0f} MB{bound}, {r['train_patches']} train + {r['val_patches']} val patches, "
          f"lowest available memory {r['lowest_available_gb']:.1f} GB")
    write_results("training_memory_lem", [
        Figure("peak_rss", round(float(r["peak_rss_mb"] or 0)), "MiB", "VmHWM of the training process" + bound),
        Figure("train_patches", r["train_patches"], "patches"),
        Figure("val_patches", r["val_patches"], "patches"),
        Figure("seconds", None if r["seconds"] is None else round(float(r["seconds"]), 1), "s", "whole train command"),
    ], settings={"shape": size, "dates": 4, "steps": args.steps, "config": "configs/quick.yaml",
                 "mask": str(args.mask)})


# ------------------------------------------------------------------------------------------ size case
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[1024, 2048], help="the two scene sides")
    parser.add_argument("--data", type=Path, default=None, help="folder of the synthetic scenes (kept)")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--in-memory", action="store_true", help="also measure the previous in-memory path")
    parser.add_argument("--lem", action="store_true", help="measure the full-LEM-size case instead")
    parser.add_argument("--mask", type=Path, default=DEFAULT_MASK, help="the real LEM TrainTestMask.tif")
    parser.add_argument("--lem-shape", type=int, nargs=2, default=None, metavar=("ROWS", "COLS"),
                        help="crop the mask's centre to this size (default: the whole 8484 x 8658)")
    parser.add_argument("--min-free-gb", type=float, default=3.0, help="kill the child under this available memory")
    args = parser.parse_args()
    if args.lem:
        if not args.mask.is_file():
            sys.exit(f"{args.mask}: not found; pass --mask PATH to the LEM TrainTestMask.tif")
        lem_case(args)
        return
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
    figures = []
    for in_memory in ([False, True] if also_in_memory else [False]):
        small, large = (measure(scene, in_memory, steps) for scene in scenes)
        ratio = large["peak_rss_mb"] / small["peak_rss_mb"]
        name = "in memory (before)" if in_memory else "on-disk cache"
        print(f"| {name} | {small['peak_rss_mb']:.0f} | {large['peak_rss_mb']:.0f} | {ratio:.2f} |", flush=True)
        tag = "in_memory" if in_memory else "cache"
        figures += [Figure(f"{tag}_peak_rss_{sizes[0]}", round(small["peak_rss_mb"]), "MiB"),
                    Figure(f"{tag}_peak_rss_{sizes[1]}", round(large["peak_rss_mb"]), "MiB"),
                    Figure(f"{tag}_ratio", round(ratio, 3), "ratio", "goal <= 1.25")]
    write_results("training_memory", figures, settings={"sizes": sizes, "steps": steps})


if __name__ == "__main__":
    main()
