"""PNG quick-looks: seconds per map and file size, this version of ``write_quicklook`` against the one of an
earlier commit (read with ``git show``), on the same maps.

The maps are 12 monthly maps of a synthetic LEM scene predicted by a randomly initialised many-to-many
network (ConvLSTM 64: the maps only need realistic fields, not a trained network); both functions render
each map ``--rounds`` times, alternately, and the median is printed.

Run:   python benchmarks/quicklook.py --against df168b3     (the commit before the fixed layout and zlib level 1)
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

from backbones import make_run_models
from inference import make_scene
from results_file import Figure, write_results
from tropicrop.inference import mapfiles, predict_scene
from tropicrop.scene import load_scene

ROOT = Path(__file__).resolve().parents[1]


def module_at(revision: str, folder: Path) -> ModuleType:
    """``tropicrop.inference.mapfiles`` as it was at ``revision``, loaded under another name."""
    source = subprocess.run(["git", "show", f"{revision}:src/tropicrop/inference/mapfiles.py"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout
    path = folder / "mapfiles_then.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("mapfiles_then", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["mapfiles_then"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--against", default="df168b3", help="git revision of the version to compare with")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--maps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "tropicrop-bench")
    args = parser.parse_args(argv)
    scene = load_scene(make_scene(args.data, args.size))
    models = make_run_models(scene, "vunet_convlstm_seq", lstm_channels=64)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        maps = predict_scene(models, scene, out / "pred", list(scene.labelled_dates)[: args.maps], tile=256,
                             overlap=32, progress=False)
        versions = {"this version": mapfiles, args.against: module_at(args.against, out)}
        seconds: dict[str, list[float]] = {name: [] for name in versions}
        sizes: dict[str, int] = {}
        for _ in range(args.rounds):
            for name, module in versions.items():
                start = time.perf_counter()
                for k, path in enumerate(maps):
                    module.write_quicklook(path, out / f"{k}-{name}.png", models.classes.names, "2020-01-01")
                seconds[name].append((time.perf_counter() - start) / len(maps))
                sizes[name] = sum((out / f"{k}-{name}.png").stat().st_size for k in range(len(maps))) // len(maps)
    print(f"{len(maps)} maps of a {args.size}² scene, median of {args.rounds} rounds:")
    figures = []
    for name, values in seconds.items():
        median = sorted(values)[len(values) // 2]
        print(f"  {name}: {median:.3f} s per quick-look, {sizes[name] / 1000:.0f} KB")
        figures += [Figure(f"quick-look time, {name}", round(median, 4), "s"),
                    Figure(f"quick-look size, {name}", round(sizes[name] / 1000), "KB")]
    write_results("quicklook", figures, settings={"size": args.size, "maps": len(maps), "rounds": args.rounds,
                                                  "against": args.against})


if __name__ == "__main__":
    main()
