"""Why Baseline 1's ECE after temperature scaling stays above 0.03 at the quick sizes: a diagnosis.

Reads the pairs, runs and maps that ``benchmarks/calibration.py --out DIR`` kept (run it first). For each
pair and each Baseline 1 net (one per target month), the run is applied to the whole year-B scene in one
tile (float probabilities at T = 1, so every temperature can be tried) and, on the labelled pixels of each
area, reports: accuracy, ECE at T = 1, at the validation temperature (``Tval``, what ``predict`` applies)
and at the temperature refitted on that area itself (``Tself``: the best one scalar can do there, an
oracle), and the ECE floor (:func:`ece_floor`: a perfectly calibrated predictor with the same confidences and
pixel count). Areas (labelled pixels; the patches' restricted to the train split, since with ``test_inputs:
context`` a patch may hold test pixels as input, whose labels the run never read): the validation patches (the
pixels ``Tval`` was fitted on, here seen through the full map rather than 16 px patches), the training
patches, and the test split (what the benchmark scores). The class shares of the validation and test labels
tell whether the prior differs; on the test split, the ECE after re-weighting the probabilities to its true
class shares (an oracle of label-shift correction, the map kept) and to the shares EM estimates without labels
says whether that difference is what miscalibrates; ``Tmap`` is the temperature refitted on the validation
patches' pixels of the map (whole-scene context), and ``ece_Tmap`` the test ECE it gives.

``python benchmarks/calibration_ece.py --out DIR --pairs 1:all,0:all,2:radiometric`` (a few seconds a pair).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_file import Figure, write_results

DRAWS = 200


def ece_floor(confidence: np.ndarray, rng: np.random.Generator) -> float:
    """Mean ECE of a perfectly calibrated predictor (right with probability = its confidence) at these
    confidences: what bin noise alone gives at this pixel count."""
    from tropicrop.calibration import expected_calibration_error

    return float(np.mean([expected_calibration_error(confidence, rng.random(confidence.size) < confidence)
                          for _ in range(DRAWS)]))


def scene_probabilities(run: Path, scene: Any, dates: list[Any]) -> tuple[Any, np.ndarray, np.ndarray]:
    """The run (uncalibrated), and its float probabilities (dates, K, H, W) over the whole scene with the
    context ``predict`` uses, and where they are valid."""
    import torch
    from rasterio.windows import Window

    from tropicrop.inference.predict import run_context
    from tropicrop.inference.run import load_run
    from tropicrop.inference.session import make_plans
    from tropicrop.inference.stream import BlendSums, predict_tile
    from tropicrop.inference.tiling import tile_weights

    models = load_run(run, "32", "none")
    plans = make_plans(models, scene, dates)
    grid = scene.grid
    sums = BlendSums(len(plans), models.classes.num_classes, grid.height, grid.width)
    window = Window(0, 0, grid.width, grid.height)
    context = run_context(models, None)
    with torch.inference_mode():
        predict_tile(models, scene, window, plans, tile_weights(window, grid, 0), sums, context)
    probs, valid = sums.probabilities(slice(0, grid.height), slice(0, grid.width))
    return models, probs, valid


def patch_areas(run: Path, shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """(H, W) masks of the run's validation and training patches (cut again from its config and seed)."""
    from tropicrop.config import load_config
    from tropicrop.training import TrainConfig
    from tropicrop.trainingdata import prepare_data

    cfg = load_config(TrainConfig, run / "config.yaml", [])
    part = prepare_data(cfg).scenes[0]
    size, r0, c0 = cfg.data.patch_size, int(part.window.row_off), int(part.window.col_off)
    areas = {}
    for name, origins in (("validation patches", part.val_origins), ("training patches", part.train_origins)):
        mask = np.zeros(shape, bool)
        for r, c in origins:
            mask[r0 + r : r0 + r + size, c0 + c : c0 + c + size] = True
        areas[name] = mask
    return areas


def shift_priors(p: np.ndarray, target: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Posteriors (N, K) trained under class shares ``source`` re-weighted to the shares ``target`` (Bayes'
    rule; the label-shift correction of Saerens et al. 2002)."""
    q = p * (target / source)
    return q / q.sum(1, keepdims=True)


def em_priors(p: np.ndarray, source: np.ndarray, iterations: int = 200) -> np.ndarray:
    """Class shares of unlabelled pixels estimated from their posteriors ``p`` (N, K) by EM (Saerens et al.
    2002): re-weight, average, repeat until the shares stop moving."""
    shares = source.copy()
    for _ in range(iterations):
        new = shift_priors(p, shares, source).mean(0)
        if np.abs(new - shares).max() < 1e-6:
            return new
        shares = new
    return shares


def area_figures(z: np.ndarray, y: np.ndarray, t_val: float, rng: np.random.Generator,
                 source: np.ndarray | None = None, t_map: float | None = None) -> dict[str, float]:
    """Accuracy, ECE at T = 1, Tval and Tself, the floor at Tval, and Tself, of logits (N, K) and labels (N,).

    With ``source`` (the class shares the net's probabilities imply where it was trained), also the ECE of the mapped
    class's probability at Tval re-weighted to the area's true class shares (``ece_Tval_true_shares``: an
    oracle of label-shift correction; the mapped class is kept) and to the shares EM estimates from the
    area's own posteriors without labels (``ece_Tval_em_shares``). With ``t_map`` (the temperature fitted on
    the validation pixels as the map predicts them, with the scene's context, instead of as 32 px patches),
    also the ECE at that temperature (``ece_Tmap``) and ``Tmap`` itself."""
    import torch

    from tropicrop.calibration import expected_calibration_error, fit_temperature

    t_self = fit_temperature(z, y)
    out: dict[str, float] = {"pixels": float(len(y))}
    temperatures = [("T1", 1.0), ("Tval", t_val), ("Tself", t_self)] + ([("Tmap", t_map)] if t_map else [])
    for name, t in temperatures:
        p = torch.softmax(torch.as_tensor(z) / t, 1).numpy()
        mapped = p.argmax(1)
        right = mapped == y
        out["accuracy"] = float(right.mean())
        out[f"ece_{name}"] = expected_calibration_error(p.max(1), right)
        if name == "Tval":
            out["floor_Tval"] = ece_floor(p.max(1), rng)
            if source is not None:
                k = p.shape[1]
                true = np.bincount(y, minlength=k) / len(y)
                for key, shares in (("true_shares", true), ("em_shares", em_priors(p, source))):
                    q = shift_priors(p, shares, source)[np.arange(len(y)), mapped]
                    out[f"ece_Tval_{key}"] = expected_calibration_error(q, right)
    out["Tself"] = t_self
    if t_map:
        out["Tmap"] = t_map
    return out


def diagnose_pair(root: Path, pair: str, months: int, rng: np.random.Generator) -> list[Figure]:
    """Figures of every Baseline 1 net of one pair of ``benchmarks/calibration.py`` (see the module docstring)."""
    seed, shift = pair.split(":")
    return diagnose_run(root / "runs" / f"{seed}-{shift}-Baseline_1", root / f"pair-{seed}-{shift}" / "lem1920",
                        pair, months, rng)


def diagnose_run(run: Path, scene_dir: Path, pair: str, months: int, rng: np.random.Generator) -> list[Figure]:
    """Figures of ``months`` nets (spread over the labelled dates; 0: every one) of a per-month run on its
    year-B scene, keyed by ``pair``."""
    import torch

    from tropicrop.calibration import fit_temperature
    from tropicrop.scene import TEST, TRAIN, load_scene
    from tropicrop.valprofile import read_profile

    scene = load_scene(scene_dir)
    labelled = scene.labelled_dates
    dates = labelled[:: max(1, len(labelled) // months)][:months] if months else list(labelled)
    models, probs, valid = scene_probabilities(run, scene, dates)
    lookup = models.classes.lookup(scene.classes)
    labels_all = scene.read_labels()
    split = scene.read_split()
    # the patches' pixels whose labels the run could read (train split): a patch may hold test pixels as context
    areas = {**{k: v & (split == TRAIN) for k, v in patch_areas(run, probs.shape[-2:]).items()},
             "test split": split == TEST}
    figures = []
    for slot, d in enumerate(dates):
        net = models.net_for(d)
        profile = read_profile(run / "nets" / net.name)
        assert profile is not None
        labels = lookup[labels_all[labelled.index(d)]]
        z = np.log(np.maximum(probs[slot, 1:], 1e-30)).transpose(1, 2, 0).astype(np.float64)
        key = f"{pair} {d}"
        figures += [Figure(f"{key} temperature", profile.temperature, "T"),
                    Figure(f"{key} validation ece after (patches)", profile.ece_after, "fraction"),
                    Figure(f"{key} validation pixels (patches)", profile.pixels, "pixels")]
        print(f"{key}: T {profile.temperature:.3f} on {profile.pixels} validation pixels, validation ECE "
              f"{profile.ece_before:.3f} -> {profile.ece_after:.3f}")
        k = models.classes.num_classes - 1
        # the class shares the net's probabilities imply where it was trained and calibrated (its mean posterior
        # at Tval: label shares would divide by zero for a class absent at this date)
        trained = (areas["training patches"] | areas["validation patches"]) & (labels > 0)
        source = torch.softmax(torch.as_tensor(z[trained]) / profile.temperature, 1).numpy().mean(0)
        val = areas["validation patches"] & (labels > 0) & valid[slot]
        t_map = fit_temperature(z[val], (labels[val] - 1).astype(np.int64))
        for area, mask in areas.items():
            has = mask & (labels > 0) & valid[slot]
            test = area == "test split"
            row = area_figures(z[has], (labels[has] - 1).astype(np.int64), profile.temperature, rng,
                               source if test else None, t_map if test else None)
            print(f"  {area:<19} " + "  ".join(f"{n} {v:.3f}" if n != "pixels" else f"{n} {v:.0f}"
                                             for n, v in row.items()))
            figures += [Figure(f"{key} {area} {n}", v, "pixels" if n == "pixels" else "fraction") for n, v in row.items()]
            if area != "training patches":
                share = np.bincount(labels[has] - 1, minlength=k) / max(1, int(has.sum()))
                print(f"  {'':<19} label shares {np.round(share, 2).tolist()}")
                figures.append(Figure(f"{key} {area} label shares", str(np.round(share, 3).tolist()), "fraction"))
    for area in areas:  # the run at a glance: the mean over its nets
        for n in ("accuracy", "ece_T1", "ece_Tval", "ece_Tself", "ece_Tval_true_shares", "ece_Tval_em_shares",
                  "ece_Tmap"):
            values = [f.value for f in figures if isinstance(f.value, float) and f.name.startswith(pair)
                      and f.name.endswith(f" {area} {n}")]
            if values:
                figures.append(Figure(f"{pair} mean over {len(values)} nets: {area} {n}",
                                      round(float(np.mean(values)), 3), "fraction"))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="the --out folder of benchmarks/calibration.py")
    parser.add_argument("--pairs", default="1:all,0:all,2:radiometric")
    parser.add_argument("--months", type=int, default=2, help="as given to benchmarks/calibration.py (0: every date)")
    parser.add_argument("--runs", help="instead of --out: NAME=RUN_DIR=SCENE_B_DIR,... (e.g. an experiment's "
                        "runs/baseline-1 and its year-B scene)")
    parser.add_argument("--results", default="calibration_ece", help="name of the results file")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    if args.runs:
        figures = [f for entry in args.runs.split(",") for name, run, scene in [entry.split("=")]
                   for f in diagnose_run(Path(run), Path(scene), name, args.months, rng)]
    else:
        if not args.out:
            parser.error("give --out (benchmarks/calibration.py's folder) or --runs")
        figures = [f for pair in args.pairs.split(",") for f in diagnose_pair(Path(args.out), pair, args.months, rng)]
    print(f"results: {write_results(args.results, figures, precision='float32', settings=vars(args))}")


if __name__ == "__main__":
    main()
