"""The ``tropicrop`` command line: thin subcommands over the library modules.

Every user-facing error (:class:`~tropicrop.errors.TropicropError`) is printed as one line naming the file
and the fix, with exit status 2; no traceback reaches a user.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tropicrop import __version__
from tropicrop.errors import ConfigError, TropicropError

Handler = Callable[[argparse.Namespace], int]


def _cmd_inspect(args: argparse.Namespace) -> int:
    from tropicrop.scene import load_scene

    scene = load_scene(args.scene)
    report = scene.validate_pixels(progress=not args.json and sys.stderr.isatty())
    info = scene.summary(report)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(format_inspect(info))
    return 0


def _bounds_decimals(crs: str | None) -> int:
    """Decimals that show bounds to about a metre: 6 for degrees (0.1 m), 1 for metres and pixels."""
    if not crs:
        return 1
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    try:
        return 6 if CRS.from_user_input(crs).is_geographic else 1
    except CRSError:
        return 1


def format_inspect(info: dict[str, Any]) -> str:
    """Human-readable report of :meth:`Scene.summary` output."""
    decimals = _bounds_decimals(info.get("crs"))
    lines = [
        f"scene      {info['name']}  ({info['path']})",
        f"size       {info['width']} x {info['height']} pixels, {len(info['bands'])} bands {info['bands']} ({info['units']})",
        f"crs        {info['crs'] or 'none (pixel coordinates)'}",
        f"pixel size {info['pixel_size'][0]:g} x {info['pixel_size'][1]:g}",
        f"bounds     {', '.join(f'{v:.{decimals}f}' for v in info['bounds'])}",
    ]
    split = info.get("split_pixels")
    if split:
        lines.append(f"split      train {split['train']:,} px, test {split['test']:,} px, unused {split['unused']:,} px")
    else:
        lines.append("split      none")
    n_lab = sum(d["labelled"] for d in info["dates"])
    lines.append(f"dates      {len(info['dates'])} ({n_lab} labelled, marked *)")
    class_pixels = info.get("class_pixels", {})
    names = list(info["classes"].values())
    width = max([8, *(len(n) for n in names)])
    header = "  " + "date".ljust(12) + "".join(n[:width].rjust(width + 1) for n in names)
    lines.append("")
    lines.append("class frequency per labelled date (% of labelled pixels)")
    lines.append(header)
    for d in info["dates"]:
        mark = "*" if d["labelled"] else " "
        row = f"{mark} {d['date']:<12}" + ("   no acquisition (padding)" if d.get("missing") else "")
        counts = class_pixels.get(d["date"])
        if counts:
            total = sum(counts.values()) or 1
            row += "".join(f"{100 * counts.get(n, 0) / total:{width + 1}.1f}" for n in names)
        lines.append(row)
    nodata = info.get("nodata_pixels")
    if nodata:
        lines.append("")
        lines.append("no-data pixels: " + ", ".join(f"{d} {n:,}" for d, n in nodata.items()))
    return "\n".join(lines)


def _cmd_import_authors(args: argparse.Namespace) -> int:
    from tropicrop.io.authors import import_authors
    from tropicrop.scene import load_scene

    out = Path(args.out) if args.out else Path(args.data_dir)
    path = import_authors(Path(args.data_dir), out, name=args.name)
    scene = load_scene(path)
    print(f"wrote {path}: {scene!r}")
    return 0


def _pairs(text: str | None, option: str) -> dict[str, str]:
    """``KEY=VALUE,KEY=VALUE`` of an option; ConfigError naming the option otherwise."""
    if not text:
        return {}
    out = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(None, f"{option} {text!r}: {part!r} is not KEY=VALUE", f"write {option} A=B,C=D")
        out[key.strip()] = value.strip()
    return out


def _cmd_stack(args: argparse.Namespace) -> int:
    from tropicrop.io.stack import stack
    from tropicrop.scene import load_scene

    bounds = None
    if args.bounds:
        try:
            bounds = [float(v) for v in args.bounds.split(",")]
        except ValueError:
            bounds = []
        if len(bounds) != 4:
            raise ConfigError(None, f"--bounds {args.bounds!r}", "give four numbers: left,bottom,right,top")
    try:
        classes = {int(k): v for k, v in _pairs(args.classes, "--classes").items()}
    except ValueError:
        raise ConfigError(None, f"--classes {args.classes!r}", "write integer codes: --classes 1=Soybean,2=Maize") from None
    path = stack(args.sources, Path(args.out), start=args.start, end=args.end, composite=args.composite, units=args.units,
                 like=args.like, crs=args.crs, resolution=args.resolution, bounds=bounds, resampling=args.resampling,
                 parcels=args.parcels, label_columns=_pairs(args.label_columns, "--label-columns"),
                 split_column=args.split_column, classes=classes or None, name=args.name, overwrite=args.overwrite,
                 block=args.block, progress=sys.stderr.isatty(), date_pattern=args.date_pattern,
                 bands=args.bands.split(","))
    scene = load_scene(path)
    gaps = [str(d) for d, gap in zip(scene.dates, scene.missing, strict=True) if gap]
    print(f"wrote {path}: {scene!r}" + (f"; no acquisition (padding): {', '.join(gaps)}" if gaps else ""))
    return 0


def _cmd_synth(args: argparse.Namespace) -> int:
    from tropicrop.synthetic import preset_fields, write_pair

    try:
        fields = preset_fields(args.preset, **{k: getattr(args, k) for k in (
            "parcel_scale", "split", "train_fraction", "speckle_looks", "speckle_correlation_px")})
        paths = write_pair(Path(args.out), preset=args.preset, size=args.size, seed=args.seed, overwrite=args.overwrite,
                           shift=args.shift, fields=fields)
    except ValueError as exc:  # unknown preset, shift or impossible size
        raise ConfigError(None, str(exc), "see tropicrop synth --help") from None
    for p in paths:
        print(f"wrote {p}")
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from tropicrop.models import describe_models

    rows = describe_models(in_channels=args.in_channels, num_classes=args.num_classes)
    print(f"{'name':<18} {'parameters':>12}  description")
    for name, params, desc in rows:
        print(f"{name:<18} {params:>12,}  {desc}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from tropicrop.training import train_from_files

    config = Path(args.config) if args.config else None
    summary = train_from_files(config, Path(args.run_dir), args.set, resume=args.resume, force=args.force)
    for name, net in summary.nets.items():
        f1 = "n/a" if net.best_val_f1 is None else f"{net.best_val_f1:.3f}"
        print(f"{name}: best validation macro F1 {f1}, {net.length} {net.unit}, {net.train_patches} training patches, "
              f"{net.train_seconds:.0f} s")
    print(f"run directory: {args.run_dir}")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from tropicrop.check import check_command

    return check_command(args)


def _cmd_experiment(args: argparse.Namespace) -> int:
    from tropicrop.experiments import run_experiment

    report = run_experiment(Path(args.config) if args.config else None, Path(args.out), args.set)
    print(f"report: {report}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from tropicrop.experiments import run_experiment
    from tropicrop.synthetic import write_pair

    out = Path(args.out)
    data = out / "data"
    if not (data / "lem1718" / "scene.yaml").is_file() or not (data / "lem1920" / "scene.yaml").is_file():
        print(f"writing the synthetic LEM pair ({args.size} x {args.size} px) into {data}", flush=True)
        write_pair(data, preset="lem", size=args.size, seed=args.seed, overwrite=True)
    sets = [f"scenes.a={data / 'lem1718'}", f"scenes.b={data / 'lem1920'}", *args.set]
    report = run_experiment(Path(args.config), out / "experiment", sets)
    print(f"report: {report}")
    print("(synthetic data: the figures show the protocol working, not the accuracy on real Sentinel-1 scenes)")
    return 0


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
                                      precision=args.precision, margin=args.margin,
                                      calibration=args.calibration, uncertainty=args.uncertainty)
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


def _cmd_adapt(args: argparse.Namespace) -> int:
    from tropicrop.adaptation import METHODS, AdaptOptions, adapt_run
    from tropicrop.config import apply_overrides, from_dict

    auto = args.methods == "auto"  # five candidates, the one check estimates best (tropicrop.adaptation.auto)
    methods = (list(METHODS) if args.methods in (None, "all") or auto
               else [m.strip() for m in args.methods.split(",") if m.strip()])
    raw = apply_overrides({"methods": methods, "parcels": args.parcels, "seed": args.seed}, args.set)
    options = from_dict(AdaptOptions, raw, overrides=args.set)  # the flags and --set meet one schema
    if auto:
        from tropicrop.adaptation.auto import adapt_auto_command

        record = adapt_auto_command(args, options)
    else:
        record = adapt_run(Path(args.run), Path(args.scene), Path(args.run_dir), options, force=args.force,
                           progress=sys.stderr.isatty())
    print(f"adapted with {', '.join(record['methods']) or 'no method'}"
          + (f" and {record['parcels']} labelled parcel(s) per class" if record["parcels"] else "")
          + f"; day-of-year offset {record['doy_offset']:+d} days; {record['seconds']:.0f} s")
    print(f"adapted run: {args.run_dir} (use it with tropicrop predict)")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from tropicrop.evaluation import evaluate_predictions, format_evaluation

    result = evaluate_predictions(Path(args.out), Path(args.scene), split=args.split)
    print(format_evaluation(result))
    if args.by == "parcel":
        from tropicrop.parcels import evaluate_parcels

        print()
        print(evaluate_parcels(Path(args.out), Path(args.scene), args.split, Path(args.parcels) if args.parcels else None))
    print(f"metrics in {Path(args.out) / 'metrics'}")
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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="tropicrop",
        description="Month-by-month crop maps from Sentinel-1 time series (UnetConvLSTM, VUnetConvLSTM).",
    )
    parser.add_argument("--version", action="version", version=f"tropicrop {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv: debug, with GDAL's messages)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("inspect", help="check a scene and print its size, CRS, dates, classes and split")
    p.add_argument("scene", help="scene folder (holding scene.yaml) or the scene.yaml file")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=_cmd_inspect)

    p = sub.add_parser("import-authors", help="write a scene.yaml for the paper authors' .npy/.tif layout")
    p.add_argument("data_dir", help="folder with YYYYMMDD_S1.npy, labels/ and TrainTestMask.tif")
    p.add_argument("out", nargs="?", help="folder to write scene.yaml into (default: DATA_DIR)")
    p.add_argument("--name", help="scene name (default: folder name)")
    p.set_defaults(func=_cmd_import_authors)

    p = sub.add_parser("stack", help="build a scene from Sentinel-1 GeoTIFFs, STAC JSON or a datacube (netCDF, Zarr): "
                       "one composite per month on a target grid")
    p.add_argument("sources", nargs="+", help="acquisition GeoTIFFs or folders of them (VV+VH in one file, or _VV/_VH "
                   "files), one STAC ItemCollection JSON with vv/vh assets, or one netCDF/Zarr cube (time, y, x)")
    p.add_argument("--bands", default="VV,VH", help="polarisations to stack: VV,VH (default), or VV or VH alone for a "
                   "single-polarisation scene")
    p.add_argument("--out", required=True, help="scene folder to write (scene.yaml, images/, stack.json)")
    p.add_argument("--start", help="first month YYYY-MM (default: month of the first acquisition)")
    p.add_argument("--end", help="last month YYYY-MM (default: month of the last acquisition)")
    p.add_argument("--composite", choices=("median", "mean", "first"), default="median",
                   help="per-month reduction of linear power (default median)")
    p.add_argument("--units", choices=("dB", "linear", "amplitude", "gfmap-uint16"),
                   help="units of the input values (default: detected); gfmap-uint16: openEO GFMap/WorldCereal packing, "
                   "dB = 20 log10(DN) - 83")
    p.add_argument("--date-pattern", help="regular expression whose one group is the date in each file name (for "
                   "names with two dates or none in the usual forms)")
    p.add_argument("--like", help="raster whose grid (CRS, transform, size) to stack onto")
    p.add_argument("--crs", help="target CRS, e.g. EPSG:32722 (default: the inputs'; for inputs in degrees, the UTM "
                   "zone of their centre)")
    p.add_argument("--resolution", type=float, help="target pixel size in CRS units (default: the inputs', in metres "
                   "for inputs in degrees)")
    p.add_argument("--bounds", help="left,bottom,right,top in the target CRS (default: union of the acquisitions)")
    p.add_argument("--resampling", default="bilinear", choices=("nearest", "bilinear", "cubic", "average"))
    p.add_argument("--parcels", help="field polygons (GeoPackage, Shapefile...) with class and split columns")
    p.add_argument("--label-columns", help="YYYY-MM=COLUMN,... : the parcels' class column of each month")
    p.add_argument("--split-column", help="the parcels' column holding train / test")
    p.add_argument("--classes", help="CODE=NAME,... when the label columns hold integer codes")
    p.add_argument("--name", help="scene name (default: the --out folder name)")
    p.add_argument("--block", type=int, default=512, help="side of the blocks processed at a time (default 512)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    p.set_defaults(func=_cmd_stack)

    p = sub.add_parser("synth", help="write a pair of synthetic scenes (two agricultural years)")
    p.add_argument("out", help="output folder (gets lem1718/ and lem1920/)")
    p.add_argument("--preset", default="lem", help="lem (the paper's dates), tiny (tests) or few-fields")
    p.add_argument("--size", type=int, default=None, help="scene side in pixels (default: the preset's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shift", default="all",
                   help="causes of the second year's shift: none, calendar, rotation, canopy, radiometric or all (default)")
    p.add_argument("--overwrite", action="store_true", help="replace existing scenes")
    g = p.add_argument_group("fields (default: the preset's; docs/guide/networks-vs-booster.md)")
    g.add_argument("--parcel-scale", type=float, help="multiply every length of the field layout (0.5: smaller parcels)")
    g.add_argument("--split", choices=("block", "interleaved"),
                   help="train parcels in a western block, or drawn parcel by parcel among the test parcels")
    g.add_argument("--train-fraction", type=float, help="share of parcels drawn train with --split interleaved")
    g.add_argument("--speckle-looks", type=float, help="equivalent number of looks of the speckle (S1 GRDH: 4.4)")
    g.add_argument("--speckle-correlation-px", type=float, help="spatial correlation of the speckle (0: white)")
    p.set_defaults(func=_cmd_synth)

    p = sub.add_parser("train", help="train a network (or one per month) from a YAML config into a run directory")
    p.add_argument("-c", "--config", help="YAML config (see configs/quick.yaml)")
    p.add_argument("--run-dir", required=True, help="run directory for config, checkpoints, logs")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    p.add_argument("--resume", action="store_true", help="continue the unfinished run in --run-dir")
    p.add_argument("--force", action="store_true", help="replace a run already in --run-dir")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("experiment", help="the paper's cross-year protocol: Baseline 1, Baseline 2, VUnetConvLSTM, report")
    p.add_argument("-c", "--config", help="experiment YAML (see configs/demo.yaml, configs/lem.yaml)")
    p.add_argument("--out", required=True, help="experiment directory (re-run to resume)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    p.set_defaults(func=_cmd_experiment)

    p = sub.add_parser("demo", help="synthetic LEM pair + the paper's protocol + report, in about 10 minutes on a CPU")
    p.add_argument("--out", default="runs/demo", help="demo directory (data/ and experiment/ inside)")
    p.add_argument("-c", "--config", default="configs/demo.yaml", help="experiment config (default configs/demo.yaml)")
    p.add_argument("--size", type=int, default=256, help="side of the synthetic scenes in pixels")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("models", help="list the registered networks with their parameter counts")
    p.add_argument("--in-channels", type=int, default=2)
    p.add_argument("--num-classes", type=int, default=7)
    p.set_defaults(func=_cmd_models)

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

    p = sub.add_parser("adapt", help="adapt a trained run to a new year's scene from its images (no labels)")
    p.add_argument("run", help="run directory written by tropicrop train")
    p.add_argument("scene", help="scene folder of the new year (its labels are not read)")
    p.add_argument("--run-dir", required=True, help="where to write the adapted run")
    p.add_argument("--methods", help="comma-separated: year_stats, adabn, doy_shift, self_training (default: all); "
                   "auto: each alone and all four, keeping the one tropicrop check estimates best")
    p.add_argument("--parcels", type=int, default=0,
                   help="also fine-tune on this many labelled parcels per class of the scene's train split (reads labels)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="adaptation option, e.g. self_training.steps=100 or shift_step=3")
    p.add_argument("--force", action="store_true", help="replace a run already in --run-dir")
    p.set_defaults(func=_cmd_adapt)

    p = sub.add_parser("check", help="the F1 and OA a run is expected to reach on a scene, from its images only")
    p.add_argument("run", help="run directory written by tropicrop train (or adapt)")
    p.add_argument("scene", help="scene folder to check (its labels are not read)")
    p.add_argument("--dates", help="'all' or YYYY-MM-DD,... (default: as predict)")
    p.add_argument("--sample", type=float, default=1.0, help="share of the scene's tiles to map (default 1: all)")
    p.add_argument("--estimator", choices=("atc", "confidence", "doc"), default="doc", help="default doc (see the docs)")
    p.add_argument("--aoi", help="estimate on the fields in this vector file or raster mask only")
    p.add_argument("--seed", type=int, default=0, help="seed of the tile sample")
    p.add_argument("--json", action="store_true", help="print JSON (estimated_f1, estimated_oa, dates)")
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("evaluate", help="per-date OA, F1 per class and confusion matrices of predicted maps")
    p.add_argument("out", help="folder written by tropicrop predict")
    p.add_argument("scene", help="scene folder with reference labels (classes are matched by name)")
    p.add_argument("--split", choices=("test", "train", "all"), default="test", help="pixels to score (default test)")
    p.add_argument("--by", choices=("pixel", "parcel"), default="pixel",
                   help="parcel: also score parcels (majority class of reference and map per parcel)")
    p.add_argument("--parcels", help="parcels for --by parcel (default: the scene's vector labels file)")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("view", help="one offline HTML page to flip through the months of a prediction folder")
    p.add_argument("out", help="folder written by tropicrop predict")
    p.add_argument("--scene", help="the scene the maps were predicted from: adds a VV/VH composite background")
    p.add_argument("--parcels", help="parcels answer or field polygons to draw (default: OUT/parcels.gpkg if present)")
    p.add_argument("--out", dest="html", help="HTML file to write (default: OUT/view.html)")
    p.set_defaults(func=_cmd_view)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tropicrop`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.verbose > 1 else logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s")
    for root_handler in logging.getLogger().handlers:
        root_handler.setLevel(level)  # records re-levelled by a logger filter (GDAL's) are judged again here
    from tropicrop.io.gdal import send_gdal_messages_to_debug  # after parsing: --help stays quick

    send_gdal_messages_to_debug()  # GDAL's messages go to the log at -vv; the errors they cause are raised as ours
    logging.captureWarnings(True)
    warnings.simplefilter("default")
    warnings.filterwarnings("ignore", message=".*treespec, LeafSpec.*")  # lightning's own deprecation notice
    for name in ("lightning.pytorch", "lightning.pytorch.utilities.rank_zero", "lightning.fabric"):
        lightning_log = logging.getLogger(name)
        lightning_log.setLevel(logging.INFO if args.verbose else logging.WARNING)
        lightning_log.propagate = False  # lightning prints through its own handler; avoid printing twice
    handler: Handler = args.func
    try:
        return handler(args)
    except TropicropError as exc:
        print(f"tropicrop: error: {' '.join(str(exc).splitlines())}", file=sys.stderr)  # always one line
        return 2
    except KeyboardInterrupt:
        print("tropicrop: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
