"""Full-scene inference: throughput and memory of seamless blended monthly maps, against the authors' mosaic.

A randomly initialised Table-3 VUnetConvLSTM (speed and memory do not depend on training) maps the 12
labelled months of a synthetic LEM-like scene (``write_pair(preset="lem", size=N)``, 23 dates). In one
process, with the same weights:

* **ours**: :func:`tropicrop.inference.predict_scene`: images streamed from disk tile by tile (at most 256 px,
  overlap at least 32), every date encoded once per tile for all 12 windows, probabilities blended; 12 class
  COGs and 12 PNG quick-looks written;
* **authors**: the whole scene in memory, each month on its own, non-overlapping 32 x 32 patches each run
  through ``forward`` (every date re-encoded for every month) and mosaicked; nothing written.

Throughput is in pixel-months/s (pixels x target months / seconds). Seams are measured against a
whole-scene pass (one tile covering the scene, so no tile edge at all; scenes up to ``--reference-max``): the
share of pixels whose class each method gets the same as that pass. Random weights use little spatial
context, so this understates the difference a trained network shows.

Precision: ``ours`` runs in float32 and under bf16 autocast (``predict --precision bf16``), alternated; the
bf16 / float32 throughput ratio and the share of pixels whose class both give are printed.

Achieved FLOP/s: the network work of one tile (every date encoded once, the 12 windows decoded), its FLOPs
counted by FlopCounterMode, in float32 and in bf16, each against the 2048^2 matmul of its precision timed in
the same process.

Peak memory: each of two scene sizes is predicted by ``ours`` (class maps only) in a fresh subprocess that
reports its RSS before predicting (imports, model, scene header) and its peak RSS while predicting (VmHWM,
reset first); the increment is what the prediction holds, and it should grow with the scene width (a band
of ``overlap`` rows of blending sums), not with its area.

Run:   python benchmarks/inference.py       (2048 px; memory at 1024 and 4096; about 35 min on 2 CPU cores)
       python benchmarks/inference.py --size 256 --rss-sizes 256 512 --flops-tiles 128   (a few minutes)
Profile:  python benchmarks/inference.py --size 256 --skip-rss --flops-tiles 256 --profile
          (torch.profiler table of one tile's network work, by operator and input shape)
Layout:   add ``--layout default`` to measure without the channels-last U-Net that load_run sets on the CPU
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from rasterio.windows import Window
from torch.utils.flop_counter import FlopCounterMode

from model_throughput import matmul_flops_per_second, synchronize
from results_file import Figure, write_results
from tropicrop.classes import ClassTable
from tropicrop.inference import Net, Plan, RunModels, net_probabilities, predict_scene, predictor_for, prepare_for_inference
from tropicrop.models import build
from tropicrop.precision import cpu_has_fast_bf16
from tropicrop.scene import Scene, load_scene
from tropicrop.synthetic import CLASSES, write_pair
from tropicrop.training import predict_classes
from tropicrop.windows.dates import target_window
from tropicrop.windows.normalize import Normalizer

PATCH = 32  # the authors' patch size


def make_scene(folder: Path, size: int) -> Path:
    """The synthetic LEM 19/20 scene of side ``size`` (written once, reused)."""
    scene = folder / f"lem{size}" / "lem1920"
    if not (scene / "scene.yaml").is_file():
        write_pair(folder / f"lem{size}", preset="lem", size=size, seed=0)
    return scene


def make_models(scene: Scene, seed: int = 0, layout: str = "channels_last", autocast: torch.dtype | None = None,
                device: str = "cpu") -> RunModels:
    """A randomly initialised Table-3 VUnetConvLSTM for the synthetic classes, normalised on the scene centre,
    prepared by :func:`tropicrop.inference.prepare_for_inference`, as ``load_run`` does on the CPU
    (``layout="default"``: U-Net not channels-last)."""
    torch.manual_seed(seed)
    classes = ClassTable.from_names(list(CLASSES.values()))
    model = prepare_for_inference(build("vunet_convlstm", scene.num_bands, num_classes=classes.num_classes),
                                  torch.device(device), channels_last=layout == "channels_last")
    side = min(256, scene.grid.width, scene.grid.height)
    sample = scene.read_images(Window((scene.grid.width - side) // 2, (scene.grid.height - side) // 2, side, side))
    normalizer = Normalizer.fit(sample, np.ones(sample.shape[-2:], bool))
    return RunModels(classes=classes, normalizer=normalizer, sequence_length=12, in_channels=scene.num_bands,
                     nets=[Net("all-months", None, predictor_for(model))], device=torch.device(device), autocast=autocast)


def authors_mosaic(models: RunModels, scene: Scene, dates: list[dt.date], batch: int = 64) -> np.ndarray:
    """The authors' way: whole scene in memory, per month, non-overlapping 32 x 32 patches through forward.

    Returns class maps (months, H, W) uint8. Patches of the last row/column are shifted inward when the
    scene side is not a multiple of 32.
    """
    model = models.nets[0].predictor.model  # type: ignore[attr-defined]  # a network run
    images = torch.from_numpy(models.normalizer(scene.read_images())).to(models.device)
    h, w = scene.grid.height, scene.grid.width
    origins = [(min(r, h - PATCH), min(c, w - PATCH)) for r in range(0, h, PATCH) for c in range(0, w, PATCH)]
    out = np.zeros((len(dates), h, w), np.uint8)
    with torch.inference_mode():
        for k, date in enumerate(dates):
            win = target_window(scene.dates, date, models.sequence_length)
            idx = torch.from_numpy(win.indices).to(models.device)
            sequence = torch.where((idx >= 0).view(-1, 1, 1, 1), images[idx.clamp_min(0)], 0.0)  # (T, C, H, W)
            for s in range(0, len(origins), batch):
                chunk = origins[s : s + batch]
                x = torch.stack([sequence[:, :, r : r + PATCH, c : c + PATCH] for r, c in chunk])
                doy = torch.from_numpy(win.doy).expand(len(chunk), -1).to(models.device)
                valid = torch.from_numpy(win.valid).expand(len(chunk), -1).to(models.device)
                pred = predict_classes(model(x, doy, valid)).cpu().numpy().astype(np.uint8)
                for (r, c), cls in zip(chunk, pred, strict=True):
                    out[k, r : r + PATCH, c : c + PATCH] = cls
    return out


def tile_compute(models: RunModels, scene: Scene, dates: list[dt.date], side: int, repeat: int = 3,
                 profile: bool = False) -> tuple[float, dict[str, list[float]], dict[str, list[float]]]:
    """FLOPs of the network work on one ``side`` x ``side`` tile for ``dates`` (every date the windows
    need encoded once, each window decoded: what :func:`predict_scene` runs per tile, minus reading,
    blending and writing), counted by FlopCounterMode; and ``repeat`` timings of it in float32 and under bf16
    autocast (keys ``"32"``, ``"bf16"``), each alternated with a timing of the ``2048^2`` matmul of the same
    precision (FLOP/s), so that a change of clock speed or load affects all alike."""
    net = models.nets[0]
    model = net.predictor.model  # type: ignore[attr-defined]  # a network run
    plans = [Plan(d, k, net, target_window(scene.dates, d, models.sequence_length)) for k, d in enumerate(dates)]
    needed = sorted({int(i) for p in plans for i in p.window.indices if i >= 0})
    window = Window(0, 0, min(side, scene.grid.width), min(side, scene.grid.height))
    raw = scene.read_images(window, [scene.dates[i] for i in needed])
    frames = torch.from_numpy(models.normalizer(raw)).to(models.device)
    position = {i: k for k, i in enumerate(needed)}
    device = models.device.type

    def run(dtype: torch.dtype | None) -> None:
        with torch.autocast(device, dtype=dtype) if dtype is not None else contextlib.nullcontext():
            for _plan, probs in net_probabilities(model, frames, position, plans):
                probs.sum()
        synchronize(models.device)

    dtypes = {"32": None, "bf16": torch.bfloat16}
    seconds: dict[str, list[float]] = {k: [] for k in dtypes}
    matmul: dict[str, list[float]] = {k: [] for k in dtypes}
    with torch.inference_mode():
        for dtype in dtypes.values():
            run(dtype)  # warm-up
        if profile:
            with torch.profiler.profile(record_shapes=True) as prof:
                run(torch.bfloat16)
            print(prof.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total", row_limit=20))
        counter = FlopCounterMode(display=False)
        with counter:
            run(None)
        for _ in range(repeat):
            for key, dtype in dtypes.items():
                matmul[key].append(matmul_flops_per_second(steps=5, dtype=dtype or torch.float32, device=device))
                start = time.perf_counter()
                run(dtype)
                seconds[key].append(time.perf_counter() - start)
    return float(counter.get_total_flops()), seconds, matmul


def read_maps(paths: list[Path]) -> np.ndarray:
    """Class maps (months, H, W) from GeoTIFFs."""
    import rasterio

    maps = []
    for p in paths:
        with rasterio.open(p) as ds:
            maps.append(ds.read(1))
    return np.stack(maps)


def memory_mb(field: str) -> float:
    """A field of /proc/self/status in MiB: VmRSS (now) or VmHWM (peak since start or the last reset)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak() -> None:
    """Reset VmHWM to the current RSS (Linux >= 4.0), so the next peak is the prediction's own."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def child(scene_dir: Path, tile: int, overlap: int, months: int, layout: str) -> None:
    """Subprocess body: predict ``months`` maps of the scene and print RSS figures as JSON."""
    scene = load_scene(scene_dir)
    models = make_models(scene, layout=layout)
    dates = scene.labelled_dates[:months]
    before = memory_mb("VmRSS")
    reset_peak()
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        predict_scene(models, scene, Path(out), dates, tile=tile, overlap=overlap, progress=False)
        seconds = time.perf_counter() - start
    print(json.dumps({"size": scene.grid.width, "before_mb": before, "peak_mb": memory_mb("VmHWM"), "seconds": seconds}))


def measure_rss(folder: Path, size: int, tile: int, overlap: int, months: int, threads: int,
                layout: str) -> dict[str, float]:
    """Run :func:`child` on a scene of side ``size`` in a fresh interpreter."""
    scene = make_scene(folder, size)
    cmd = [sys.executable, __file__, "--child", str(scene), "--tile", str(tile), "--overlap", str(overlap),
           "--months", str(months), "--threads", str(threads), "--layout", layout]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> None:
    """Measure throughput (one process) and peak memory (subprocesses), then print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size", type=int, default=2048, help="scene side for the throughput comparison")
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--months", type=int, default=12, help="target months (the scene's labelled dates)")
    parser.add_argument("--rss-sizes", type=int, nargs=2, default=None, metavar=("SMALL", "LARGE"),
                        help="scene sides for the memory figures (default 1024 4096)")
    parser.add_argument("--repeat", type=int, default=1, help="time each method this many times, alternated; best kept")
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--flops-tiles", type=int, nargs="*", default=[256, 512],
                        help="tile sides for the achieved FLOP/s figures (none: skip)")
    parser.add_argument("--reference-max", type=int, default=1024,
                        help="largest scene side for the whole-scene reference pass (it holds the scene in memory)")
    parser.add_argument("--profile", action="store_true", help="print a torch.profiler table of each --flops-tiles tile")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--layout", choices=["channels_last", "default"], default="channels_last",
                        help="U-Net memory layout (load_run uses channels_last on the CPU; default: to compare)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where the networks run (throughput and "
                        "FLOP/s; the memory figures are the CPU's)")
    parser.add_argument("--data", type=Path, default=None, help="folder for the synthetic scenes (default: a temp dir)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.child is not None:
        child(args.child, args.tile, args.overlap, args.months, args.layout)
        return
    rss_sizes = args.rss_sizes or [1024, 4096]
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.data or Path(tmp)
        scene = load_scene(make_scene(folder, args.size))
        models = make_models(scene, layout=args.layout, device=args.device)
        dates = scene.labelled_dates[: args.months]
        pixel_months = scene.grid.width * scene.grid.height * len(dates)

        bf16_models = make_models(scene, layout=args.layout, autocast=torch.bfloat16, device=args.device)  # same weights
        ours_s = bf16_s = theirs_s = float("inf")
        for r in range(args.repeat):  # alternated, best of each: a shared machine's load affects all alike
            start = time.perf_counter()
            paths = predict_scene(models, scene, Path(tmp) / f"ours{r}", dates, tile=args.tile, overlap=args.overlap,
                                  progress=False)
            ours_s = min(ours_s, time.perf_counter() - start)
            start = time.perf_counter()
            bf16_paths = predict_scene(bf16_models, scene, Path(tmp) / f"bf16-{r}", dates, tile=args.tile,
                                       overlap=args.overlap, progress=False)
            bf16_s = min(bf16_s, time.perf_counter() - start)
            start = time.perf_counter()
            theirs = authors_mosaic(models, scene, dates)
            theirs_s = min(theirs_s, time.perf_counter() - start)
        ours, ours_bf16 = read_maps(paths), read_maps(bf16_paths)
        reference = None
        if args.size <= args.reference_max:  # one tile covering the scene: the network with all the context
            whole = max(scene.grid.width, scene.grid.height)
            reference = read_maps(predict_scene(models, scene, Path(tmp) / "whole", dates, tile=whole, overlap=0,
                                                progress=False))

        where = (f"CPU, {args.threads} threads, bf16 units: {cpu_has_fast_bf16()}" if args.device == "cpu"
                 else torch.cuda.get_device_name())
        print(f"\n{where}, torch {torch.__version__}; Table-3 "
              f"VUnetConvLSTM (random weights), synthetic LEM 19/20 scene {args.size} x {args.size}, {len(scene.dates)} "
              f"dates, {len(dates)} monthly maps; best of {args.repeat}\n")
        def agree(maps: np.ndarray) -> str:
            return "n/a" if reference is None else f"{(maps == reference).mean():.2%}"

        print("| method | seconds | pixel-months/s | same class as a whole-scene pass |")
        print("|---|---:|---:|---:|")
        print(f"| ours, float32: tiles <= {args.tile} px, overlap >= {args.overlap}, blended, streamed; COGs + PNGs "
              f"written | {ours_s:.1f} | {pixel_months / ours_s:,.0f} | {agree(ours)} |")
        print(f"| ours, bf16 autocast (`predict --precision bf16`) | {bf16_s:.1f} | {pixel_months / bf16_s:,.0f} | "
              f"{agree(ours_bf16)} |")
        print(f"| authors, float32: 32 x 32 patches, no overlap, scene in memory, nothing written | {theirs_s:.1f} | "
              f"{pixel_months / theirs_s:,.0f} | {agree(theirs)} |")
        print(f"\nthroughput ours / authors (float32): {theirs_s / ours_s:.2f}; maps agree on {(ours == theirs).mean():.1%} "
              f"of pixels")
        print(f"**bf16 / float32 pixel-months/s: {ours_s / bf16_s:.2f}** (goal >= 1.7); bf16 and float32 maps agree on "
              f"{(ours == ours_bf16).mean():.2%} of pixels (random weights)")
        figures = [Figure("scene, ours float32, pixel-months/s", round(pixel_months / ours_s), "pixel-months/s"),
                   Figure("scene, ours bf16, pixel-months/s", round(pixel_months / bf16_s), "pixel-months/s"),
                   Figure("scene, authors' mosaic float32, pixel-months/s", round(pixel_months / theirs_s), "pixel-months/s"),
                   Figure("scene, ours / authors' mosaic (float32)", round(theirs_s / ours_s, 3), "ratio"),
                   Figure("scene, bf16 / float32", round(ours_s / bf16_s, 3), "ratio"),
                   Figure("scene, bf16 and float32 maps agree", round(100 * float((ours == ours_bf16).mean()), 3), "%")]

        if args.flops_tiles:
            print("\nnetwork work on one tile, 12 windows (every date encoded once, 12 decodes), FLOPs counted by "
                  "FlopCounterMode, against the 2048^2 matmul of the same precision timed alternately in the same "
                  "process; medians of 3 rounds (float32 and bf16 alternated)\n")
            print("| tile | precision | GFLOP | seconds | GFLOP/s | matmul GFLOP/s | / matmul | pixel-months/s | bf16 speed-up |")
            print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
            for side in args.flops_tiles:
                flops, seconds, matmul = tile_compute(models, scene, dates, side, profile=args.profile)
                side = min(side, scene.grid.width, scene.grid.height)
                for key, goal in (("32", ""), ("bf16", " (goal >= 0.6)")):
                    ratio = float(np.median([flops / s / m for s, m in zip(seconds[key], matmul[key], strict=True)]))
                    sec = float(np.median(seconds[key]))
                    speed = "" if key == "32" else f"{float(np.median(seconds['32'])) / sec:.2f}"
                    print(f"| {side} | {key} | {flops / 1e9:.0f} | {sec:.2f} | {flops / sec / 1e9:.0f} | "
                          f"{float(np.median(matmul[key])) / 1e9:.0f} | {ratio:.2f}{goal} | "
                          f"{side * side * len(dates) / sec:,.0f} | {speed} |")
                    figures += [Figure(f"tile {side}, {key}, network FLOP/s / matmul", round(ratio, 3), "ratio"),
                                Figure(f"tile {side}, {key}, seconds", round(sec, 3), "s")]

        if not args.skip_rss:
            small, large = (measure_rss(folder, s, args.tile, args.overlap, args.months, args.threads, args.layout)
                            for s in rss_sizes)
            print(f"\npeak RSS of `ours` in a fresh process, {args.months} maps (before = imports, model, scene header)\n")
            print("| scene | pixels | before MiB | peak MiB | peak - before MiB | seconds |")
            print("|---|---:|---:|---:|---:|---:|")
            for r in (small, large):
                print(f"| {r['size']:.0f} x {r['size']:.0f} | {r['size'] ** 2:,.0f} | {r['before_mb']:.0f} | "
                      f"{r['peak_mb']:.0f} | {r['peak_mb'] - r['before_mb']:.0f} | {r['seconds']:.1f} |")
            area = (large["size"] / small["size"]) ** 2
            grow = [r["peak_mb"] - r["before_mb"] for r in (small, large)]
            print(f"\nlarge / small: {area:.0f}x the pixels, {large['size'] / small['size']:.0f}x the width; peak RSS "
                  f"{large['peak_mb'] / small['peak_mb']:.2f}x, peak - before {grow[1] / max(grow[0], 1.0):.2f}x")
            figures += [Figure(f"peak RSS, {r['size']:.0f}² scene", round(r["peak_mb"]), "MiB") for r in (small, large)]
            figures.append(Figure(f"peak RSS {large['size']:.0f}² / {small['size']:.0f}²",
                                  round(large["peak_mb"] / small["peak_mb"], 3), "ratio"))
        write_results("inference" if args.device == "cpu" else f"inference_{args.device}", figures,
                      settings={"size": args.size, "tile": args.tile, "overlap": args.overlap, "months": args.months,
                                "repeat": args.repeat, "rss_sizes": None if args.skip_rss else rss_sizes,
                                "flops_tiles": args.flops_tiles, "threads": args.threads, "layout": args.layout})


if __name__ == "__main__":
    main()
