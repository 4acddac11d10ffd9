"""Commands for a run meeting a new year's scene without its labels: ``adapt`` (adapt the run to it) and
``check`` (the accuracy the run is expected to reach on it)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tropicrop.cli.common import SubParsers, add_set_option


def _cmd_adapt(args: argparse.Namespace) -> int:
    from tropicrop.adaptation import METHODS, AdaptOptions, adapt_run
    from tropicrop.config import apply_overrides, from_dict

    auto = args.methods == "auto"  # five candidates, the best by estimate and agreement (tropicrop.adaptation.auto)
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


def _cmd_check(args: argparse.Namespace) -> int:
    from tropicrop.check import check_command

    return check_command(args)


def add_adapt(sub: SubParsers) -> None:
    """``tropicrop adapt RUN SCENE --run-dir NEW_RUN``."""
    p = sub.add_parser("adapt", help="adapt a trained run to a new year's scene from its images (no labels)")
    p.add_argument("run", help="run directory written by tropicrop train")
    p.add_argument("scene", help="scene folder of the new year (its labels are not read)")
    p.add_argument("--run-dir", required=True, help="where to write the adapted run")
    p.add_argument("--methods", help="comma-separated: year_stats, adabn, doy_shift, self_training (default: all); "
                   "auto: each alone and all four, keeping the one tropicrop check scores best (its estimate "
                   "met halfway by its agreement with the others)")
    p.add_argument("--parcels", type=int, default=0,
                   help="also fine-tune on this many labelled parcels per class of the scene's train split (reads labels)")
    p.add_argument("--seed", type=int, default=0)
    add_set_option(p, help="adaptation option, e.g. self_training.steps=100 or shift_step=3")
    p.add_argument("--force", action="store_true", help="replace a run already in --run-dir")
    p.set_defaults(func=_cmd_adapt)


def add_check(sub: SubParsers) -> None:
    """``tropicrop check RUN SCENE``."""
    p = sub.add_parser("check", help="the F1 and OA a run is expected to reach on a scene, from its images only")
    p.add_argument("run", help="run directory written by tropicrop train (or adapt)")
    p.add_argument("scene", help="scene folder to check (its labels are not read)")
    p.add_argument("--dates", help="'all' or YYYY-MM-DD,... (default: as predict)")
    p.add_argument("--sample", type=float, default=1.0, help="share of the scene's tiles to map (default 1: all)")
    p.add_argument("--estimator", choices=("atc", "confidence", "doc", "midpoint", "agreement"),
                   help="default: midpoint (of doc and agreement) with --against, else doc (see the docs)")
    p.add_argument("--against", action="append", metavar="RUN",
                   help="another run trained on the same year (repeatable): estimate with the agreement with its maps")
    p.add_argument("--aoi", help="estimate on the fields in this vector file or raster mask only")
    p.add_argument("--seed", type=int, default=0, help="seed of the tile sample")
    p.add_argument("--json", action="store_true", help="print JSON (estimated_f1, estimated_oa, dates)")
    p.set_defaults(func=_cmd_check)
