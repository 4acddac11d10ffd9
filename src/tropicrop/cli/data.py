"""Commands that make and check scenes: ``inspect``, ``import-authors``, ``stack`` and ``synth``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tropicrop.cli.common import SubParsers
from tropicrop.errors import ConfigError


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


def add_inspect(sub: SubParsers) -> None:
    """``tropicrop inspect SCENE``."""
    p = sub.add_parser("inspect", help="check a scene and print its size, CRS, dates, classes and split")
    p.add_argument("scene", help="scene folder (holding scene.yaml) or the scene.yaml file")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=_cmd_inspect)


def add_import_authors(sub: SubParsers) -> None:
    """``tropicrop import-authors DATA_DIR [OUT]``."""
    p = sub.add_parser("import-authors", help="write a scene.yaml for the paper authors' .npy/.tif layout")
    p.add_argument("data_dir", help="folder with YYYYMMDD_S1.npy, labels/ and TrainTestMask.tif")
    p.add_argument("out", nargs="?", help="folder to write scene.yaml into (default: DATA_DIR)")
    p.add_argument("--name", help="scene name (default: folder name)")
    p.set_defaults(func=_cmd_import_authors)


def add_stack(sub: SubParsers) -> None:
    """``tropicrop stack SOURCES... --out SCENE``: inputs, target grid, labels from parcels."""
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


def add_synth(sub: SubParsers) -> None:
    """``tropicrop synth OUT``: the preset, size, seed and shift, and the field options of the preset."""
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
