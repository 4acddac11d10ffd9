"""How much of a run's validation split lies in fields it also trained on (a cause of optimistic validation).

``data.val_block`` keeps validation patches pixel-disjoint from training patches, but a field larger than a
block can lie under both: its validation pixels then come from a field the network has seen, validation
accuracy reads high, and the temperature fitted there sharpens test maps that are less accurate (the
confidence guide: Baseline 1's ECE on the demo pair). For each run given, this rebuilds the run's training
and validation patches from its ``config.yaml`` (the same split, from the same seed) and, with the scene's
``parcels.gpkg`` burnt onto its grid, prints the share of validation field pixels that lie in a field some
training patch also covers, with the fields' median size in pixels.

Run: ``python benchmarks/validation_parcels.py --runs demo:2=EXP/runs/baseline-1,few-fields:3=...``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import rasterio.features

from results_file import Figure, write_results  # benchmarks/ is on sys.path when a script there runs


def covered(origins: np.ndarray, size: int, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: the pixels under any ``size`` patch of ``origins`` (N, 2)."""
    mask = np.zeros(shape, dtype=bool)
    for row, col in np.asarray(origins).reshape(-1, 2):
        mask[row:row + size, col:col + size] = True
    return mask


def shared_field_share(run: Path) -> dict[str, float]:
    """Validation field pixels in fields under a training patch too, as a share, and the fields' sizes."""
    from tropicrop.config import load_config
    from tropicrop.config.training import TrainConfig
    from tropicrop.trainingdata import prepare_data

    cfg = load_config(TrainConfig, run / "config.yaml", ["data.cache=false"])
    data = prepare_data(cfg, None, None, run / "config.yaml")
    part = data.scenes[0]
    root = Path(str(part.scene.root))
    fields = gpd.read_file(root / "parcels.gpkg")
    grid = part.scene.grid
    ids = rasterio.features.rasterize(((geom, i + 1) for i, geom in enumerate(fields.geometry)),
                                      out_shape=(grid.height, grid.width), transform=grid.transform, fill=0,
                                      dtype="int32")
    size = cfg.data.patch_size
    train = covered(part.train_origins, size, ids.shape)
    val = covered(part.val_origins, size, ids.shape) & (ids > 0)
    if part.held_out is not None:  # data.val_split: fields: validation scores the held-out fields, never trained on
        train &= ~part.held_out
        val &= part.held_out
    seen = np.unique(ids[train & (ids > 0)])
    sizes = np.bincount(ids.ravel())[1:]
    return {"share": float(np.isin(ids[val], seen).mean()) if val.any() else float("nan"),
            "val_pixels": int(val.sum()), "median_field_px": float(np.median(sizes[sizes > 0])),
            "train_patches": len(part.train_origins), "val_patches": len(part.val_origins)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", required=True, help="NAME=RUN_DIR,... (runs of a synthetic scene with parcels.gpkg)")
    parser.add_argument("--results", default="validation_parcels", help="name of the results file")
    args = parser.parse_args()
    figures = []
    for entry in args.runs.split(","):
        name, path = entry.split("=", 1)
        found = shared_field_share(Path(path))
        print(f"{name}: {100 * found['share']:.1f} % of {found['val_pixels']} validation field pixels lie in fields "
              f"under a training patch too (median field {found['median_field_px']:.0f} px, "
              f"{found['train_patches']} training / {found['val_patches']} validation patches)")
        figures += [Figure(f"{name}: validation field pixels in fields also trained on", round(100 * found["share"], 1), "%",
                           f"{found['val_pixels']} pixels"),
                    Figure(f"{name}: median field size", found["median_field_px"], "px")]
    write_results(args.results, figures, settings=vars(args))


if __name__ == "__main__":
    main()
