"""Commands that run the paper's cross-year protocol: ``experiment`` and ``demo`` (the protocol on a
synthetic pair it writes first)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tropicrop.cli.common import SubParsers, add_set_option


def _cmd_experiment(args: argparse.Namespace) -> int:
    from tropicrop.experiments import run_experiment

    report = run_experiment(Path(args.config) if args.config else None, Path(args.out), args.set)
    print(f"report: {report}")
    return 0


DEMO_PAIR = "demo.json"
"""The size and seed of the pair a demo folder's ``data/`` holds, so that a re-run asking for another is refused."""


def _cmd_demo(args: argparse.Namespace) -> int:
    from tropicrop.errors import SceneError
    from tropicrop.experiments import run_experiment
    from tropicrop.io.files import write_json
    from tropicrop.runfiles import read_json
    from tropicrop.scene import load_scene
    from tropicrop.synthetic import write_pair

    out = Path(args.out)
    data = out / "data"
    wanted = {"size": args.size, "seed": args.seed}
    if not (data / "lem1718" / "scene.yaml").is_file() or not (data / "lem1920" / "scene.yaml").is_file():
        print(f"writing the synthetic LEM pair ({args.size} x {args.size} px) into {data}", flush=True)
        write_pair(data, preset="lem", size=args.size, seed=args.seed, overwrite=True)
        write_json(data / DEMO_PAIR, wanted)
    else:  # a re-run resumes the experiment: it must be of the same pair (folders of older demos hold no record)
        record = data / DEMO_PAIR
        held = read_json(record, "delete the demo folder to start again") if record.is_file() else {}
        held = dict(held) if isinstance(held, dict) else {}
        held.setdefault("size", load_scene(data / "lem1920").grid.width)
        if any(held.get(k, v) != v for k, v in wanted.items()):
            raise SceneError(data, f"holds the demo pair of size {held['size']}, seed {held.get('seed', '?')}, "
                             f"not the size {args.size}, seed {args.seed} asked for",
                             "choose another --out, or delete that folder to start again")
    sets = [f"scenes.a={data / 'lem1718'}", f"scenes.b={data / 'lem1920'}", *args.set]
    report = run_experiment(Path(args.config), out / "experiment", sets)
    print(f"report: {report}")
    print("(synthetic data: the figures show the protocol working, not the accuracy on real Sentinel-1 scenes)")
    return 0


def add_experiment(sub: SubParsers) -> None:
    """``tropicrop experiment -c CONFIG --out DIR``."""
    p = sub.add_parser("experiment", help="the paper's cross-year protocol: Baseline 1, Baseline 2, VUnetConvLSTM, report")
    p.add_argument("-c", "--config", help="experiment YAML (see configs/demo.yaml, configs/lem.yaml)")
    p.add_argument("--out", required=True, help="experiment directory (re-run to resume)")
    add_set_option(p)
    p.set_defaults(func=_cmd_experiment)


def add_demo(sub: SubParsers) -> None:
    """``tropicrop demo``."""
    p = sub.add_parser("demo", help="synthetic LEM pair + the paper's protocol + report (the README says how long it takes)")
    p.add_argument("--out", default="runs/demo", help="demo directory (data/ and experiment/ inside)")
    p.add_argument("-c", "--config", default="configs/demo.yaml", help="experiment config (default configs/demo.yaml)")
    p.add_argument("--size", type=int, default=256, help="side of the synthetic scenes in pixels")
    p.add_argument("--seed", type=int, default=0)
    add_set_option(p)
    p.set_defaults(func=_cmd_demo)
