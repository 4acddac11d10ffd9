"""How far year B's test area is from its train area in class mix, against Baseline 1's test ECE (issue 30).

A temperature fitted on validation patches of the train area can only be right on the test area when the two
hold the classes in similar shares: per-class accuracies differ, so a test area richer in the hard classes is
less accurate at the same confidence. For each experiment folder this reads its year-B scene (labels and split
of the scene folder the experiment names; the experiment's own training and predictions are not touched) and
prints, per labelled date and on average, the total variation distance between the class shares of the
train (split 1) and test (split 2) pixels, beside the test ECE of the approach named by ``--approach``.

Run: ``python benchmarks/split_class_shift.py --folders demo:0=EXP,few-fields:1=EXP,... [--approach "Baseline 1"]``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_file import Figure, write_results


def class_shift(scene_dir: Path) -> list[float]:
    """Per labelled date: total variation distance between the train and test class shares (0 to 1)."""
    from tropicrop.scene import TEST, TRAIN, load_scene

    scene = load_scene(scene_dir)
    split = scene.read_split()
    out = []
    for layer in scene.read_labels():
        counts = [np.bincount(layer[(split == part) & (layer > 0)], minlength=256).astype(float) for part in (TRAIN, TEST)]
        if min(c.sum() for c in counts) == 0:
            continue
        out.append(0.5 * float(np.abs(counts[0] / counts[0].sum() - counts[1] / counts[1].sum()).sum()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folders", required=True, help="SETTING:SEED=EXPERIMENT_DIR,...")
    parser.add_argument("--approach", default="Baseline 1", help="whose test ECE is printed beside")
    parser.add_argument("--results", default="split_class_shift", help="name of the results file")
    args = parser.parse_args()
    from tropicrop.layout import slug

    figures = []
    for entry in args.folders.split(","):
        run, path = entry.split("=", 1)
        folder = Path(path)
        config = yaml.safe_load((folder / "config.yaml").read_text())
        scene = Path(config["scenes"]["b"])
        if not scene.is_dir():  # relative to where the experiment ran: here, or one of the folder's parents
            scene = next((p / scene for p in folder.resolve().parents if (p / scene).is_dir()), scene)
        shifts = class_shift(scene)
        ece = json.loads((folder / "approaches" / f"{slug(args.approach)}.json").read_text()).get("ece")
        mean = float(np.mean(shifts))
        print(f"{run:<13} class-mix distance train vs test area {mean:.3f} (dates {min(shifts):.3f}-{max(shifts):.3f}); "
              f"{args.approach} test ECE {ece:.3f}")
        figures += [Figure(f"{run}: class-mix distance, train vs test area of year B", round(mean, 3), "",
                           f"total variation, mean over {len(shifts)} labelled dates ({min(shifts):.3f}-{max(shifts):.3f})"),
                    Figure(f"{run}: {args.approach} test ECE", round(ece, 3), "")]
    write_results(args.results, figures, settings=vars(args))


if __name__ == "__main__":
    main()
