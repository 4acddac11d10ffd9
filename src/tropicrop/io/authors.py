"""Describe the paper authors' public data layout with a ``scene.yaml``, so their LEM files load as they are.

Their layout: per-date ``YYYYMMDD_S1.npy`` arrays (H, W, 2) of VV, VH linear intensity (float16, NaN
stored as -1), per-date uint8 label GeoTIFFs ``labels/YYYYMMDD_S1.tif`` (or numbered ``labels/1.tif`` ...
``N.tif`` in date order, for the last N dates) and ``TrainTestMask.tif`` (0 unused, 1 train, 2 test), all
without CRS.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from tropicrop.errors import SceneError
from tropicrop.io.manifest import MANIFEST_NAME, DateEntry, Manifest, write_manifest

# The LEM class table of the authors' code (their 'Pasture/Grass' is named Pasture so it matches other scenes).
LEM_CLASSES: dict[int, str] = {
    1: "Soybean", 2: "Maize", 3: "Cotton", 4: "Coffee", 5: "Beans", 6: "Sorghum", 7: "Millet", 8: "Eucalyptus",
    9: "Pasture", 10: "Hay", 11: "Cerrado", 12: "Conversion area", 13: "Soil", 14: "Not identified",
}  # fmt: skip
AUTHORS_NODATA = -1.0
_DATE_FILE = re.compile(r"^(\d{8})_S1\.npy$")


def _find_file(folder: Path, names: tuple[str, ...]) -> Path | None:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    return None


def authors_manifest(data_dir: Path, out_dir: Path, classes: dict[int, str] | None = None, name: str | None = None) -> Manifest:
    """Build the manifest describing an authors' data folder; paths are resolved from ``out_dir``."""
    data_dir = Path(data_dir).absolute()
    if not data_dir.is_dir():
        raise SceneError(data_dir, "folder not found", "point to the folder holding the YYYYMMDD_S1.npy files")
    stamps = sorted(m.group(1) for p in data_dir.iterdir() if (m := _DATE_FILE.match(p.name)))
    if not stamps:
        raise SceneError(data_dir, "holds no YYYYMMDD_S1.npy images", "this is not the authors' layout")
    dates = [dt.datetime.strptime(s, "%Y%m%d").date() for s in stamps]
    label_dir = data_dir / "labels"
    labels: dict[str, Path] = {}
    if label_dir.is_dir():
        named = {s: label_dir / f"{s}_S1.tif" for s in stamps if (label_dir / f"{s}_S1.tif").is_file()}
        numbered = sorted(
            (p for p in label_dir.glob("*.tif") if p.stem.isdigit()), key=lambda p: int(p.stem)
        )
        if named:
            labels = named
        elif numbered:
            if len(numbered) > len(stamps):
                raise SceneError(label_dir, f"{len(numbered)} numbered labels for {len(stamps)} images",
                                 "keep one label per image date")
            labels = dict(zip(stamps[len(stamps) - len(numbered):], numbered, strict=True))
    split = _find_file(data_dir, ("TrainTestMask.tif", "lem_TrainTestMask.tif"))
    entries = tuple(
        DateEntry(date=d, image=data_dir / f"{s}_S1.npy", label=labels.get(s)) for d, s in zip(dates, stamps, strict=True)
    )
    return Manifest(
        path=Path(out_dir).absolute() / MANIFEST_NAME,
        name=name or data_dir.name,
        bands=("VV", "VH"),
        units="linear",
        classes=dict(classes or LEM_CLASSES),
        dates=entries,
        split=split,
        nodata=AUTHORS_NODATA,
    )


def import_authors(data_dir: Path, out_dir: Path, classes: dict[int, str] | None = None, name: str | None = None) -> Path:
    """Write ``out_dir/scene.yaml`` describing the authors' folder ``data_dir`` (files are not copied)."""
    return write_manifest(authors_manifest(data_dir, out_dir, classes, name))
