"""Commands that make and list networks: ``train`` and ``models``."""

from __future__ import annotations

import argparse
from pathlib import Path

from tropicrop.cli.common import SubParsers, add_set_option


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


def _cmd_models(args: argparse.Namespace) -> int:
    from tropicrop.models import describe_models

    rows = describe_models(in_channels=args.in_channels, num_classes=args.num_classes)
    print(f"{'name':<18} {'parameters':>12}  description")
    for name, params, desc in rows:
        print(f"{name:<18} {params:>12,}  {desc}")
    return 0


def add_train(sub: SubParsers) -> None:
    """``tropicrop train -c CONFIG --run-dir RUN``."""
    p = sub.add_parser("train", help="train a network (or one per month) from a YAML config into a run directory")
    p.add_argument("-c", "--config", help="YAML config (see configs/quick.yaml)")
    p.add_argument("--run-dir", required=True, help="run directory for config, checkpoints, logs")
    add_set_option(p)
    p.add_argument("--resume", action="store_true", help="continue the unfinished run in --run-dir")
    p.add_argument("--force", action="store_true", help="replace a run already in --run-dir")
    p.set_defaults(func=_cmd_train)


def add_models(sub: SubParsers) -> None:
    """``tropicrop models``: the registry with parameter counts."""
    p = sub.add_parser("models", help="list the registered networks with their parameter counts")
    p.add_argument("--in-channels", type=int, default=2)
    p.add_argument("--num-classes", type=int, default=7)
    p.set_defaults(func=_cmd_models)
