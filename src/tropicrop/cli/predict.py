"""Commands that make and show maps: ``predict`` (maps of scenes from a run, on one process or Dask) and
``view`` (one offline HTML page of a prediction folder)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tropicrop.cli.common import SubParsers


def _cmd_predict(args: argparse.Namespace) -> int:
    from tropicrop.inference import parse_dates, predict_run
    from tropicrop.inference.session import scene_folders
    from tropicrop.scene import load_scene

    scenes = [load_scene(s) for s in args.scene]
    if args.parcels:  # a bad parcels file fails now, not after the maps
        from tropicrop.parcels import read_parcels

        for scene in scenes:
            read_parcels(Path(args.parcels), scene.grid.crs)
    every = args.dates is not None and args.dates.strip().lower() == "all"
    dates = None if every else parse_dates(args.dates, scenes[0])
    aoi = Path(args.aoi) if args.aoi else None
    progress = sys.stderr.isatty()
    probabilities = args.probabilities or bool(args.parcels)  # per-parcel answers need the class probabilities
    outs = scene_folders(Path(args.out), scenes)
    maps: dict[str, list[Path]] = {}
    if args.workers is not None or args.scheduler is not None:
        from tropicrop.inference.distributed import predict_distributed

        results = predict_distributed(Path(args.run_dir), [Path(s) for s in args.scene], Path(args.out),
                                      dates="all" if every else dates, tile=args.tile,
                                      overlap=args.overlap, probabilities=probabilities, aoi=aoi,
                                      workers=args.workers, scheduler=args.scheduler, block=args.block,
                                      torch_threads=args.torch_threads, progress=progress,
                                      precision=args.precision, margin=args.margin)
        for name, result in results.items():
            print(f"{name}: {len(result.maps)} map(s), {result.blocks_computed} block(s) computed, "
                  f"{result.blocks_reused} reused")
            maps[name] = result.maps
    else:
        for scene in scenes:
            out = outs[scene.name]
            maps[scene.name] = predict_run(Path(args.run_dir), scene, out, dates="all" if every else dates, tile=args.tile,
                                           overlap=args.overlap, probabilities=probabilities, progress=progress,
                                           aoi=aoi, precision=args.precision, margin=args.margin,
                                           calibration=args.calibration, uncertainty=args.uncertainty)
            print(f"{len(maps[scene.name])} map(s) in {out / 'maps'}")
    if args.parcels:
        from tropicrop.layout import parse_stamp
        from tropicrop.parcels import parcel_answers

        for name, paths in maps.items():
            stamps = [d for d in (parse_stamp(p.stem) for p in paths) if d is not None]
            print(f"per-parcel classes: {parcel_answers(outs[name], Path(args.parcels), stamps, args.low_confidence)}")
    return 0


def _cmd_view(args: argparse.Namespace) -> int:
    from tropicrop.view import build_view

    result = build_view(Path(args.out), Path(args.html) if args.html else None, Path(args.scene) if args.scene else None,
                        Path(args.parcels) if args.parcels else None, progress=sys.stderr.isatty())
    print(f"wrote {result.path} ({result.months} month(s), {result.size / 1e6:.1f} MB"
          + (f", overlays at 1/{result.scale:.1f} of the maps' resolution" if result.scale > 1 else "") + ")")
    return 0


def _margin(text: str) -> int | None:
    """``--margin``: ``auto`` (None: measured from the network) or a number of pixels >= 0."""
    if text.strip().lower() == "auto":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither 'auto' nor a number of pixels") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


def add_predict(sub: SubParsers) -> None:
    """``tropicrop predict RUN SCENE... --out OUT``: what to map and how, then the Dask options."""
    p = sub.add_parser("predict", help="crop maps (COG + PNG) of a scene for every requested month, from a run directory")
    p.add_argument("run_dir", help="run directory written by tropicrop train")
    p.add_argument("scene", nargs="+", help="scene folder(s) (holding scene.yaml) to map")
    p.add_argument("--out", required=True, help="output folder (maps/, probabilities/, classes.json); with several "
                   "scenes, OUT/<scene name>/")
    p.add_argument("--dates", help="'all' or YYYY-MM-DD,... (default: the labelled dates, or every date with a full "
                   "12-date window when the scene has no labels)")
    p.add_argument("--tile", type=int, default=256, help="tile side in pixels (default 256)")
    p.add_argument("--overlap", type=int, default=0, help="overlap of neighbouring tiles, blended smoothly (default 0: "
                   "the margin makes tiles agree; use 32 with --margin 0)")
    p.add_argument("--margin", type=_margin, default=None, metavar="PX|auto",
                   help="scene context read around each tile and cropped off (default auto: measured on the network)")
    p.add_argument("--probabilities", action="store_true", help="also write one probability band per class")
    p.add_argument("--aoi", help="area of interest: vector file of polygons, or a raster mask on the scene grid")
    p.add_argument("--parcels", help="field polygons: also write OUT/parcels.gpkg (majority class, its share and mean "
                   "probability per parcel and date; turns on --probabilities)")
    p.add_argument("--precision", choices=("auto", "32", "bf16"), default=None,
                   help="auto: bfloat16 where the CPU/GPU has fast bf16 units, else float32; 32 or bf16 to force one "
                   "(default: the run's trainer.precision)")
    p.add_argument("--calibration", choices=("temperature", "none"), default="temperature",
                   help="probabilities scaled by each net's validation temperature (default), or as the net gives them")
    p.add_argument("--uncertainty", choices=("entropy", "margin"), help="also write OUT/uncertainty/YYYYMMDD.tif")
    p.add_argument("--low-confidence", type=float, default=0.5, metavar="P",
                   help="per-parcel answers count the share of pixels whose confidence is below P (default 0.5)")
    p.add_argument("--workers", type=int, help="predict on a local Dask cluster of this many worker processes")
    p.add_argument("--scheduler", help="predict on the dask.distributed cluster at this address (tcp://host:8786)")
    p.add_argument("--block", type=int, default=4, help="with Dask: block side in tiles (default 4)")
    p.add_argument("--torch-threads", type=int, help="with Dask: torch threads per worker (default: cores / workers "
                   "locally, cores / worker threads on a cluster)")
    p.set_defaults(func=_cmd_predict)


def add_view(sub: SubParsers) -> None:
    """``tropicrop view OUT``."""
    p = sub.add_parser("view", help="one offline HTML page to flip through the months of a prediction folder")
    p.add_argument("out", help="folder written by tropicrop predict")
    p.add_argument("--scene", help="the scene the maps were predicted from: adds a VV/VH composite background")
    p.add_argument("--parcels", help="parcels answer or field polygons to draw (default: OUT/parcels.gpkg if present)")
    p.add_argument("--out", dest="html", help="HTML file to write (default: OUT/view.html)")
    p.set_defaults(func=_cmd_view)
