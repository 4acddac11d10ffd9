"""Write a whole scene folder (``scene.yaml``, one GeoTIFF per date, label rasters, split, parcels).

Used by the synthetic generator and by users who build scenes from arrays. The folder is assembled under a
temporary name and renamed when complete, so a crash never leaves a half-written scene.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
from affine import Affine
from rasterio.crs import CRS

from tropicrop.errors import SceneError
from tropicrop.io.files import atomic_folder
from tropicrop.io.manifest import MANIFEST_NAME, DateEntry, Manifest, write_manifest
from tropicrop.io.rasters import write_geotiff


def write_scene(
    out_dir: Path,
    *,
    name: str,
    bands: Sequence[str],
    units: str,
    classes: Mapping[int, str],
    dates: Sequence[dt.date],
    images: np.ndarray,
    crs: str | CRS | None,
    transform: Affine,
    labels: Mapping[dt.date, np.ndarray] | None = None,
    split: np.ndarray | None = None,
    parcels: gpd.GeoDataFrame | None = None,
    overwrite: bool = False,
) -> Path:
    """Write images (T, C, H, W) float32, labels {date: (H, W) codes} and split (H, W) as a scene folder.

    Files: ``images/YYYYMMDD.tif``, ``labels/YYYYMMDD.tif``, ``split.tif``, ``parcels.gpkg`` (when given)
    and ``scene.yaml``. Returns the folder. Refuses to replace an existing folder unless ``overwrite``.
    """
    out_dir = Path(out_dir).absolute()
    if images.ndim != 4 or images.shape[0] != len(dates) or images.shape[1] != len(bands):
        raise ValueError(f"images must be (T={len(dates)}, C={len(bands)}, H, W), got {images.shape}")
    if out_dir.exists() and not overwrite:
        raise SceneError(out_dir, "already exists", "pass overwrite=True (CLI: --overwrite) or choose another folder")
    labels = dict(labels or {})
    for d in labels:
        if d not in dates:
            raise ValueError(f"label date {d} is not one of the image dates")
    with atomic_folder(out_dir) as tmp:
        entries = []
        for t, d in enumerate(dates):
            stamp = d.strftime("%Y%m%d")
            image = write_geotiff(tmp / "images" / f"{stamp}.tif", images[t].astype(np.float32), crs, transform,
                                  band_names=list(bands), predictor=3)
            label = None
            if d in labels:
                label = write_geotiff(tmp / "labels" / f"{stamp}.tif", labels[d].astype(np.uint8), crs, transform)
            entries.append(DateEntry(date=d, image=image, label=label))
        split_path = None
        if split is not None:
            split_path = write_geotiff(tmp / "split.tif", split.astype(np.uint8), crs, transform)
        if parcels is not None:
            parcels.to_file(tmp / "parcels.gpkg", driver="GPKG")
        manifest = Manifest(
            path=tmp / MANIFEST_NAME,
            name=name,
            bands=tuple(bands),
            units=units,
            classes=dict(classes),
            dates=tuple(entries),
            split=split_path,
        )
        write_manifest(manifest)
    return out_dir
