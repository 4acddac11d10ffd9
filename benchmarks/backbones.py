"""Every registered network: training samples/s and prediction pixel-months/s; and the many-to-many goal.

1. For each network of the registry with its default (recommended) options and random weights: parameters,
   training samples/s (forward + backward of the paper's batch: 16 windows of 12 dates, 32 x 32, 2 bands;
   a sequence model decodes and is scored at all 12 dates, as when every month is labelled), and prediction
   pixel-months/s of the network work on one tile (12 target months of a synthetic LEM scene, every date
   read once, the way ``predict_scene`` runs each network: shared encoding, or one sequence pass); in each
   of ``--precisions`` (float32, and bf16 autocast as ``trainer.precision: bf16-mixed`` and ``predict
   --precision bf16`` run), timed alternately.
2. The goal figures of issues 17 and 21: twelve monthly maps of a ``--size`` (1024) synthetic LEM scene by
   ``predict_scene`` (tiles <= 256 px, overlap >= 32, blended, COGs and PNGs written), with vunet_convlstm
   and vunet_convlstm_seq (Table-3 sizes, or a ConvLSTM of ``--lstm-channels``; random weights: speed does
   not depend on training), in float32 and in bf16 autocast, one after the other in this process;
   pixel-months/s and the ratios: many-to-many / N-to-1 (goal >= 5), bf16 / float32 (goal >= 1.7),
   many-to-many bf16 / N-to-1 float32 (goal >= 8).
3. With ``--experiment DIR`` (an experiment run with configs/backbones.yaml), the average F1 of the
   VUnetConvLSTM and many-to-many approaches read from its ``table4.csv`` (goal: at most 2 points below).

Run:   python benchmarks/backbones.py          (the goal's 1024 px scene; about 8 minutes on 2 idle cores)
       python benchmarks/backbones.py --size 1024 --skip-networks --lstm-channels 64   (the experiments' width)
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.profiler
from rasterio.windows import Window
from torch.utils.flop_counter import FlopCounterMode

from inference import make_scene
from model_throughput import interleaved_seconds, make_batch
from results_file import Figure, write_results
from tropicrop.classes import ClassTable
from tropicrop.config import load_config
from tropicrop.experiments import ExperimentConfig
from tropicrop.inference import (
    Net,
    Plan,
    RunModels,
    net_probabilities,
    predict_scene,
    predictor_for,
    prepare_for_inference,
    sequence_probabilities,
)
from tropicrop.layout import ExperimentLayout
from tropicrop.losses import FocalLoss
from tropicrop.models import available_models, build, is_sequence_model
from tropicrop.scene import Scene, load_scene
from tropicrop.synthetic import CLASSES
from tropicrop.windows.dates import target_window
from tropicrop.windows.normalize import Normalizer

PRECISIONS = {"32": None, "bf16": torch.bfloat16}
"""``--precisions`` -> the autocast dtype of ``RunModels`` (None: float32)."""


def training_step(model: Any, loss_fn: FocalLoss, batch: tuple[torch.Tensor, ...]) -> Callable[[], None]:
    """One forward + backward pass as training runs it (a sequence model: loss at every date)."""
    images, doy, valid, target = batch

    def step() -> None:
        model.zero_grad(set_to_none=True)
        if is_sequence_model(model):
            logits = model.forward_steps(images, doy, valid, valid)
            labels = target[:, None].expand(-1, valid.shape[1], -1, -1)[valid]
        else:
            logits, labels = model(images, doy, valid), target
        loss_fn(logits, labels).backward()

    return step


def make_run_models(scene: Scene, name: str, seed: int = 0, **options: Any) -> RunModels:
    """A randomly initialised network ``name`` (default options, or ``options``) prepared for inference as
    ``load_run`` does on the CPU, normalised on the scene centre."""
    torch.manual_seed(seed)
    classes = ClassTable.from_names(list(CLASSES.values()))
    model = prepare_for_inference(build(name, scene.num_bands, num_classes=classes.num_classes, **options),
                                  torch.device("cpu"))
    side = min(256, scene.grid.width, scene.grid.height)
    sample = scene.read_images(Window((scene.grid.width - side) // 2, (scene.grid.height - side) // 2, side, side))
    normalizer = Normalizer.fit(sample, sample[0, 0] == sample[0, 0])
    return RunModels(classes=classes, normalizer=normalizer, sequence_length=12, in_channels=scene.num_bands,
                     nets=[Net("all-months", None, predictor_for(model))])


def tile_work(models: RunModels, scene: Scene, side: int, autocast: torch.dtype | None = None) -> Callable[[], None]:
    """The network work on one ``side`` tile for the scene's labelled dates, as ``predict_scene`` runs it
    (every date read once; shared encoding, or one sequence pass; under bf16 autocast with ``autocast``),
    without reading or blending."""
    net = models.nets[0]
    dates = scene.labelled_dates
    plans = [Plan(d, k, net, target_window(scene.dates, d, 12, scene.missing)) for k, d in enumerate(dates)]
    needed = sorted({int(i) for p in plans for i in p.window.indices if i >= 0})
    raw = scene.read_images(Window(0, 0, side, side), [scene.dates[i] for i in needed])
    frames = torch.from_numpy(models.normalizer(raw))
    position = {i: k for k, i in enumerate(needed)}
    model = net.predictor.model  # type: ignore[attr-defined]  # a network run
    probabilities = sequence_probabilities if is_sequence_model(model) else net_probabilities

    def run() -> None:
        with torch.inference_mode(), torch.autocast("cpu", dtype=autocast or torch.float32, enabled=autocast is not None):
            for _plan, probs in probabilities(model, frames, position, plans):
                probs.sum()

    return run


def autocast_step(step: Callable[[], None], autocast: torch.dtype | None) -> Callable[[], None]:
    """``step`` under CPU autocast to ``autocast`` (as Lightning's ``bf16-mixed``), or as it is."""
    if autocast is None:
        return step

    def run() -> None:
        with torch.autocast("cpu", dtype=autocast):
            step()

    return run


def scene_pixel_months(models: RunModels, scene: Scene, tile: int, overlap: int) -> tuple[float, float]:
    """Seconds and pixel-months/s of ``predict_scene`` for the scene's labelled dates (maps written to a
    temporary folder), after an untimed warm-up on the first tile alone (an AOI of one pixel), so that the
    one-off costs of a process (oneDNN kernels made for each shape, GDAL drivers, matplotlib's fonts) are
    not charged to whichever configuration happens to run first."""
    dates = list(scene.labelled_dates)
    first_tile = np.zeros(scene.grid.shape, dtype=bool)
    first_tile[0, 0] = True
    with tempfile.TemporaryDirectory() as warm:
        predict_scene(models, scene, Path(warm), dates, tile=tile, overlap=overlap, progress=False, aoi=first_tile)
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        predict_scene(models, scene, Path(out), dates, tile=tile, overlap=overlap, progress=False)
        seconds = time.perf_counter() - start
    return seconds, scene.grid.width * scene.grid.height * len(dates) / seconds


def experiment_pairs(folder: Path) -> list[tuple[str, float, str, float]]:
    """``(N-to-1 approach, its F1, many-to-many approach, its F1)`` for every vunet_convlstm approach of an
    experiment and the vunet_convlstm_seq approach with the same options (the same width), from its config
    and ``table4.csv``."""
    layout = ExperimentLayout(folder)
    with open(layout.table4, newline="") as fh:
        f1 = {row["approach"]: float(row["f1"]) for row in csv.DictReader(fh)}
    approaches = [a for a in load_config(ExperimentConfig, layout.config).approaches if a.name in f1]
    pairs = []
    for a in approaches:
        for b in approaches:
            if (a.model, b.model) == ("vunet_convlstm", "vunet_convlstm_seq") and a.options == b.options:
                pairs.append((a.name, f1[a.name], b.name, f1[b.name]))
    return pairs


def print_network_table(rows: list[tuple[str, int, str, float, float, float]], threads: int, steps: int, tile: int,
                        months: int, repeat: int) -> None:
    """Section 1 as a markdown table."""
    print(f"\nCPU, {threads} threads, torch {torch.__version__}; default options, random weights. Training: 16 windows "
          f"x 12 dates x 32 x 32 x 2 bands, forward + backward, median of {steps}. Prediction: network work on one "
          f"{tile} px tile, {months} target months, median of {repeat}; the precisions of a network timed alternately\n")
    print("| model | parameters | precision | training samples/s | tile seconds | prediction pixel-months/s |")
    print("|---|---:|---|---:|---:|---:|")
    for name, params, precision, samples, seconds, pixel_months in rows:
        print(f"| {name} | {params:,} | {precision} | {samples:.1f} | {seconds:.2f} | {pixel_months:,.0f} |")


def network_section(scene: Scene, args: argparse.Namespace) -> list[Figure]:
    """Section 1: every registered network's training samples/s and tile pixel-months/s in each precision."""
    batch = make_batch(16, 12, 32, len(CLASSES) + 1)
    loss_fn = FocalLoss()
    rows = []
    side = min(args.predict_tile, args.size)
    for name in available_models():
        torch.manual_seed(0)
        model = build(name, 2, num_classes=len(CLASSES) + 1).train()
        params = sum(p.numel() for p in model.parameters())
        step = training_step(model, loss_fn, batch)
        steps = interleaved_seconds({p: autocast_step(step, PRECISIONS[p]) for p in args.precisions}, args.train_steps,
                                    warmup=1)
        models = make_run_models(scene, name)
        tiles = interleaved_seconds({p: tile_work(models, scene, side, PRECISIONS[p]) for p in args.precisions},
                                    args.repeat, warmup=1)
        for p in args.precisions:
            rows.append((name, params, p, 16 / steps[p], tiles[p], side**2 * len(scene.labelled_dates) / tiles[p]))
        print(f"  {name}: done", flush=True)
    print_network_table(rows, args.threads, args.train_steps, args.predict_tile, len(scene.labelled_dates), args.repeat)
    figures = [Figure(f"{name}, parameters (K = {len(CLASSES) + 1})", params, "parameters")
               for name, params, p, *_ in rows if p == args.precisions[0]]
    for name, _, p, samples, seconds, pixel_months in rows:
        figures += [Figure(f"{name}, {p}, training samples/s", round(samples, 2), "samples/s"),
                    Figure(f"{name}, {p}, tile seconds", round(seconds, 3), "s"),
                    Figure(f"{name}, {p}, prediction pixel-months/s", round(pixel_months), "pixel-months/s")]
    return figures


def scene_goal(scene: Scene, args: argparse.Namespace) -> list[Figure]:
    """Section 2: the goal figures of issues 17 and 21 on one scene, every (network, precision) pair by
    ``predict_scene`` one after the other, then the network work of one tile timed alternately."""
    options = {} if args.lstm_channels is None else {"lstm_channels": args.lstm_channels}
    results: dict[tuple[str, str], tuple[float, float]] = {}
    for precision in args.precisions:
        for name in ("vunet_convlstm", "vunet_convlstm_seq"):
            models = replace(make_run_models(scene, name, **options), autocast=PRECISIONS[precision])
            results[name, precision] = scene_pixel_months(models, scene, args.tile, args.overlap)
    width = f"ConvLSTM {args.lstm_channels}" if options else "Table-3 sizes (ConvLSTM 256)"
    print(f"\nGoal: {len(scene.labelled_dates)} monthly maps of a {args.size} x {args.size} scene by predict_scene "
          f"(tiles <= {args.tile}, overlap >= {args.overlap}, COGs and PNGs written), {width}, one process, "
          f"{args.threads} threads\n")
    print("| model | precision | seconds | pixel-months/s |")
    print("|---|---|---:|---:|")
    for (name, precision), (sec, pixel_months) in results.items():
        print(f"| {name} | {precision} | {sec:.1f} | {pixel_months:,.0f} |")
    rate = {key: value[1] for key, value in results.items()}
    figures = [Figure(f"scene, {name}, {precision}, seconds", round(sec, 2), "s")
               for (name, precision), (sec, _) in results.items()]
    figures += [Figure(f"scene, vunet_convlstm_seq / vunet_convlstm, {p}",
                       round(rate["vunet_convlstm_seq", p] / rate["vunet_convlstm", p], 3), "ratio") for p in args.precisions]
    for precision in args.precisions:
        print(f"vunet_convlstm_seq / vunet_convlstm pixel-months/s, {precision}: "
              f"{rate['vunet_convlstm_seq', precision] / rate['vunet_convlstm', precision]:.2f} (issue 17 goal >= 5)")
    if {"32", "bf16"} <= set(args.precisions):
        for name in ("vunet_convlstm", "vunet_convlstm_seq"):
            print(f"{name} bf16 / float32 pixel-months/s: {rate[name, 'bf16'] / rate[name, '32']:.2f} "
                  "(issue 21 goal >= 1.7)")
        print(f"vunet_convlstm_seq in bf16 / vunet_convlstm in float32: "
              f"{rate['vunet_convlstm_seq', 'bf16'] / rate['vunet_convlstm', '32']:.2f} (issue 21 goal >= 8)")
        figures += [Figure(f"scene, {name}, bf16 / float32", round(rate[name, "bf16"] / rate[name, "32"], 3), "ratio")
                    for name in ("vunet_convlstm", "vunet_convlstm_seq")]
        figures.append(Figure("scene, vunet_convlstm_seq bf16 / vunet_convlstm float32",
                              round(rate["vunet_convlstm_seq", "bf16"] / rate["vunet_convlstm", "32"], 3), "ratio"))
    side = min(args.tile, args.size)
    work: dict[str, Callable[[], object]] = {name: tile_work(make_run_models(scene, name, **options), scene, side)
                                             for name in ("vunet_convlstm", "vunet_convlstm_seq")}
    seconds = interleaved_seconds(work, args.repeat + 1, warmup=1)
    flops = {}
    for name in work:
        counter = FlopCounterMode(display=False)
        with counter:
            tile_work(make_run_models(scene, name, **options), scene, min(64, args.size))()
        flops[name] = counter.get_total_flops()
    print("FLOPs of the network work on a 64 px tile (FlopCounterMode, independent of the machine's load): "
          + ", ".join(f"{name} {f / 1e9:.1f} GFLOP" for name, f in flops.items())
          + f"; ratio {flops['vunet_convlstm'] / flops['vunet_convlstm_seq']:.2f}")
    print(f"network work on one {side} px tile in float32, the two timed alternately ({args.repeat + 1} rounds, "
          "median): " + ", ".join(f"{name} {sec:.2f} s" for name, sec in seconds.items())
          + f"; ratio {seconds['vunet_convlstm'] / seconds['vunet_convlstm_seq']:.2f}")
    flop_ratio = flops["vunet_convlstm"] / flops["vunet_convlstm_seq"]
    figures += [Figure("tile FLOPs vunet_convlstm / vunet_convlstm_seq", round(flop_ratio, 3), "ratio"),
                Figure(f"tile {side} float32 seconds vunet_convlstm / vunet_convlstm_seq",
                       round(seconds["vunet_convlstm"] / seconds["vunet_convlstm_seq"], 3), "ratio")]
    if args.profile:
        for precision in args.precisions:
            for name in ("vunet_convlstm", "vunet_convlstm_seq"):
                run = tile_work(make_run_models(scene, name, **options), scene, side, PRECISIONS[precision])
                run()
                with torch.profiler.profile() as prof:
                    run()
                print(f"\ntorch.profiler, network work on one {side} px tile, {name}, {precision}:")
                print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=14))
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size", type=int, default=1024, help="side of the scene of the goal figure")
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--predict-tile", type=int, default=256, help="tile side of the per-network figure")
    parser.add_argument("--train-steps", type=int, default=3, help="timed training steps per network (median)")
    parser.add_argument("--repeat", type=int, default=2, help="timed tiles per network (median)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "tropicrop-bench")
    parser.add_argument("--experiment", type=Path, default=None, help="experiment folder of configs/backbones.yaml")
    parser.add_argument("--skip-scene", action="store_true", help="skip the goal figure (section 2)")
    parser.add_argument("--skip-networks", action="store_true", help="skip the per-network table (section 1)")
    parser.add_argument("--precisions", nargs="+", choices=sorted(PRECISIONS), default=["32", "bf16"],
                        help="precisions of both sections (bf16: autocast, as predict --precision bf16)")
    parser.add_argument("--profile", action="store_true",
                        help="after the goal figure, a torch.profiler table of each network's tile work per precision")
    parser.add_argument("--lstm-channels", type=int, default=None,
                        help="ConvLSTM width of the goal figure's networks (default: Table 3, 256)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    figures: list[Figure] = []
    if not (args.skip_networks and args.skip_scene):
        scene = load_scene(make_scene(args.data, args.size))
        if not args.skip_networks:
            figures += network_section(scene, args)
        if not args.skip_scene:
            figures += scene_goal(scene, args)

    if args.experiment is not None:
        for a, fa, b, fb in experiment_pairs(args.experiment):
            print(f"\n{args.experiment}/table4.csv: average F1 {a} {100 * fa:.1f}, {b} {100 * fb:.1f}; "
                  f"many-to-many minus N-to-1 {100 * (fb - fa):+.1f} points (goal >= -2)")
            figures.append(Figure(f"experiment, {b} minus {a}, average F1", round(100 * (fb - fa), 2), "points"))
    write_results("backbones", figures, settings={"size": args.size, "tile": args.tile, "overlap": args.overlap,
                                                  "predict_tile": args.predict_tile, "train_steps": args.train_steps,
                                                  "repeat": args.repeat, "threads": args.threads,
                                                  "precisions": args.precisions, "lstm_channels": args.lstm_channels,
                                                  "experiment": None if args.experiment is None else str(args.experiment)})

if __name__ == "__main__":
    main()
