"""The command that scores predicted maps against a scene's reference: ``evaluate``."""

from __future__ import annotations

import argparse
from pathlib import Path

from tropicrop.cli.common import SubParsers


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


def add_evaluate(sub: SubParsers) -> None:
    """``tropicrop evaluate OUT SCENE``."""
    p = sub.add_parser("evaluate", help="per-date OA, F1 per class and confusion matrices of predicted maps")
    p.add_argument("out", help="folder written by tropicrop predict")
    p.add_argument("scene", help="scene folder with reference labels (classes are matched by name)")
    p.add_argument("--split", choices=("test", "train", "all"), default="test", help="pixels to score (default test)")
    p.add_argument("--by", choices=("pixel", "parcel"), default="pixel",
                   help="parcel: also score parcels (majority class of reference and map per parcel)")
    p.add_argument("--parcels", help="parcels for --by parcel (default: the scene's vector labels file)")
    p.set_defaults(func=_cmd_evaluate)
