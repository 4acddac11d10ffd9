"""Parse and write ``scene.yaml``, the manifest that describes a scene folder.

The manifest is plain YAML (see README, "Scene format"). Parsing checks its structure only (keys, types,
dates, class table); whether the files it names exist and agree is checked by :mod:`tropicrop.scene`.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tropicrop.errors import SceneError, did_you_mean
from tropicrop.io.files import atomic_path

MANIFEST_NAME = "scene.yaml"
TOP_LEVEL_KEYS = ("name", "bands", "units", "classes", "dates", "split", "labels", "nodata", "crs", "transform")
REQUIRED_KEYS = ("bands", "units", "classes", "dates")
DATE_KEYS = ("date", "image", "label")
UNITS = ("dB", "linear")


@dataclass(frozen=True)
class DateEntry:
    """One date: its image file (None for a month without any acquisition, which windows treat as
    padding) and, when labelled by raster, its label file."""

    date: dt.date
    image: Path | None
    label: Path | None = None

    @property
    def missing(self) -> bool:
        """Whether the date has no image (written ``image: null`` in scene.yaml)."""
        return self.image is None


@dataclass(frozen=True)
class VectorSource:
    """A vector file (GeoPackage, Shapefile, GeoJSON...) and the attribute columns to read from it."""

    path: Path
    columns: dict[dt.date, str] = field(default_factory=dict)  # vector labels: date -> class column
    column: str = "split"  # vector split: column holding train / test (or 1 / 2)


@dataclass(frozen=True)
class Manifest:
    """The validated content of ``scene.yaml``; all paths absolute."""

    path: Path
    name: str
    bands: tuple[str, ...]
    units: str
    classes: dict[int, str]
    dates: tuple[DateEntry, ...]
    split: Path | VectorSource | None = None
    vector_labels: VectorSource | None = None
    nodata: float | None = None
    crs: str | None = None
    transform: tuple[float, ...] | None = None

    @property
    def root(self) -> Path:
        """The scene folder (paths in the manifest are relative to it)."""
        return self.path.parent


def manifest_path(scene: str | Path) -> Path:
    """Return the manifest path for a scene folder or a path to ``scene.yaml`` itself."""
    p = Path(scene)
    return p if p.suffix in (".yaml", ".yml") else p / MANIFEST_NAME


def _fail(path: Path, problem: str, fix: str) -> SceneError:
    return SceneError(path, problem, fix)


def _parse_date(value: Any, path: Path, where: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        for fmt in ("%Y-%m-%d", "%Y%m%d"):
            try:
                return dt.datetime.strptime(value.strip(), fmt).date()
            except ValueError:
                pass
    raise _fail(path, f"{where}: {value!r} is not a date", "write dates as YYYY-MM-DD")


def _relpath(root: Path, value: Any, path: Path, where: str) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise _fail(path, f"{where} must be a file path, got {value!r}", "give a path relative to the scene folder")
    p = Path(value)
    return p if p.is_absolute() else (root / p)


def _check_keys(data: Mapping[str, Any], allowed: tuple[str, ...], path: Path, where: str) -> None:
    for key in data:
        if key not in allowed:
            raise _fail(path, f"unknown key '{key}' in {where}", did_you_mean(key, allowed, "allowed keys"))


def _parse_classes(raw: Any, path: Path) -> dict[int, str]:
    if isinstance(raw, Mapping) and not raw:
        return {}  # a scene without labels (e.g. built by tropicrop stack without parcels); checked below
    if not isinstance(raw, Mapping):
        raise _fail(path, "'classes' must be a mapping code -> name", "e.g. classes: {1: Soybean, 2: Maize}")
    classes: dict[int, str] = {}
    for code, name in raw.items():
        try:
            icode = int(code)
        except (TypeError, ValueError):
            raise _fail(path, f"class code {code!r} is not an integer", "use integer codes 1..255") from None
        if not 1 <= icode <= 255:
            raise _fail(path, f"class code {icode} is out of range", "codes run from 1 to 255; 0 means no reference")
        if not isinstance(name, str) or not name.strip():
            raise _fail(path, f"class {icode} has no name", "give every code a class name")
        classes[icode] = name.strip()
    names = list(classes.values())
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise _fail(path, f"class name(s) {dupes} used for more than one code", "classes are matched by name")
    return dict(sorted(classes.items()))


def _parse_dates(raw: Any, root: Path, path: Path) -> tuple[DateEntry, ...]:
    if not isinstance(raw, list) or not raw:
        raise _fail(path, "'dates' must be a non-empty list", "one entry per acquisition: {date, image, label?}")
    # image: null marks a date without any acquisition (a month with no pass); it is padding in every window
    entries: list[DateEntry] = []
    for i, item in enumerate(raw):
        where = f"dates[{i}]"
        if not isinstance(item, Mapping):
            raise _fail(path, f"{where} must be a mapping", "write {date: YYYY-MM-DD, image: images/x.tif}")
        _check_keys(item, DATE_KEYS, path, where)
        for key in ("date", "image"):
            if key not in item:
                raise _fail(path, f"{where} has no '{key}'", f"add '{key}' to every date entry")
        label = item.get("label")
        image = item["image"]
        entries.append(
            DateEntry(
                date=_parse_date(item["date"], path, where),
                image=None if image is None else _relpath(root, image, path, f"{where}.image"),
                label=None if label is None else _relpath(root, label, path, f"{where}.label"),
            )
        )
    dates = [e.date for e in entries]
    for a, b in itertools.pairwise(dates):
        if b == a:
            raise _fail(path, f"date {a} appears twice", "keep one entry per acquisition date")
        if b < a:
            raise _fail(path, f"dates are not in order ({b} after {a})", "list dates oldest first")
    if all(e.missing for e in entries):
        raise _fail(path, "every date has 'image: null'", "a scene needs at least one image")
    for e in entries:
        if e.missing and e.label is not None:
            raise _fail(path, f"date {e.date} has a label but no image", "label only dates that have an image")
    return tuple(entries)


def _parse_vector(raw: Mapping[str, Any], root: Path, path: Path, where: str, kind: str) -> VectorSource:
    allowed = ("path", "columns") if kind == "labels" else ("path", "column")
    _check_keys(raw, allowed, path, where)
    if "path" not in raw:
        raise _fail(path, f"'{where}' has no 'path'", "name the vector file, e.g. path: parcels.gpkg")
    vpath = _relpath(root, raw["path"], path, f"{where}.path")
    if kind == "split":
        column = raw.get("column", "split")
        return VectorSource(path=vpath, column=str(column))
    cols = raw.get("columns")
    if not isinstance(cols, Mapping) or not cols:
        raise _fail(path, f"'{where}.columns' must map dates to column names", "e.g. columns: {2019-10-12: crop_1}")
    columns = {_parse_date(d, path, f"{where}.columns"): str(c) for d, c in cols.items()}
    return VectorSource(path=vpath, columns=dict(sorted(columns.items())))


def parse_manifest(data: Any, path: Path) -> Manifest:
    """Validate the structure of an already-loaded manifest mapping; raise :class:`SceneError` naming ``path``."""
    root = path.parent
    if not isinstance(data, Mapping):
        raise _fail(path, "the manifest is not a YAML mapping", "see README 'Scene format' for an example")
    _check_keys(data, TOP_LEVEL_KEYS, path, "scene.yaml")
    for key in REQUIRED_KEYS:
        if key not in data:
            raise _fail(path, f"missing key '{key}'", "see README 'Scene format' for the required keys")
    bands = data["bands"]
    if not isinstance(bands, list) or not bands or not all(isinstance(b, str) for b in bands):
        raise _fail(path, "'bands' must be a non-empty list of band names", "e.g. bands: [VV, VH]")
    units = data["units"]
    if units not in UNITS:
        raise _fail(path, f"'units' is {units!r}", "use 'dB' or 'linear'")
    split = _parse_split(data.get("split"), root, path)
    vector_labels = _parse_vector_labels(data.get("labels"), root, path)
    nodata = data.get("nodata")
    if nodata is not None and not isinstance(nodata, int | float):
        raise _fail(path, f"'nodata' is {nodata!r}", "give a number, e.g. nodata: -1, or .nan")
    transform = _parse_transform(data.get("transform"), path)
    dates = _parse_dates(data["dates"], root, path)
    manifest = Manifest(
        path=path,
        name=str(data.get("name") or root.name),
        bands=tuple(bands),
        units=units,
        classes=_parse_classes(data["classes"], path),
        dates=dates,
        split=split,
        vector_labels=vector_labels,
        nodata=None if nodata is None else float(nodata),
        crs=None if data.get("crs") is None else str(data["crs"]),
        transform=transform,
    )
    _check_labels(manifest)
    return manifest


def _parse_split(split_raw: Any, root: Path, path: Path) -> Path | VectorSource | None:
    """The train/test split: none, a raster (a path) or polygons (a mapping, as ``labels``)."""
    if split_raw is None:
        return None
    if isinstance(split_raw, Mapping):
        return _parse_vector(split_raw, root, path, "split", "split")
    return _relpath(root, split_raw, path, "split")


def _parse_vector_labels(labels_raw: Any, root: Path, path: Path) -> VectorSource | None:
    """Labels given as polygons (``labels: {path, columns}``), or None when the dates carry label rasters."""
    if labels_raw is None:
        return None
    if not isinstance(labels_raw, Mapping):
        raise _fail(path, "'labels' must be a mapping {path, columns}", "or put label rasters in 'dates'")
    return _parse_vector(labels_raw, root, path, "labels", "labels")


def _parse_transform(transform: Any, path: Path) -> tuple[float, ...] | None:
    """The georeference of images that carry none (6 numbers, rasterio's ``Affine`` order), or None."""
    if transform is None:
        return None
    if not (isinstance(transform, list) and len(transform) == 6 and all(isinstance(v, int | float) for v in transform)):
        raise _fail(path, "'transform' must be 6 numbers [a, b, c, d, e, f]", "as in rasterio's Affine")
    return tuple(float(v) for v in transform)


def _check_labels(manifest: Manifest) -> None:
    """Labels need classes, vector label columns must name image dates, and no date is labelled twice."""
    path, dates, vector_labels = manifest.path, manifest.dates, manifest.vector_labels
    if not manifest.classes and (vector_labels is not None or any(e.label is not None for e in dates)):
        raise _fail(path, "'classes' is empty but the scene has labels", "e.g. classes: {1: Soybean, 2: Maize}")
    if vector_labels is None:
        return
    image_dates = {e.date for e in dates if not e.missing}
    for d in vector_labels.columns:
        if d not in image_dates:
            raise _fail(path, f"label date {d} in 'labels.columns' is not an image date",
                        "label only listed dates that have an image")
    both = [e.date for e in dates if e.label is not None and e.date in vector_labels.columns]
    if both:
        raise _fail(path, f"date {both[0]} has both a label raster and a vector label column", "keep one")


def read_manifest(scene: str | Path) -> Manifest:
    """Read and validate ``scene.yaml`` of a scene folder (or the manifest path itself)."""
    path = manifest_path(scene).absolute()
    if not path.is_file():
        raise _fail(path, "scene manifest not found", "point to a scene folder holding scene.yaml (README 'Scene format')")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        raise _fail(path, f"not valid YAML{line}", "fix the syntax (indentation, colons, brackets)") from None
    except UnicodeDecodeError:
        raise _fail(path, "not a text file", "scene.yaml must be UTF-8 YAML") from None
    return parse_manifest(data, path)


def manifest_to_dict(m: Manifest) -> dict[str, Any]:
    """Turn a manifest back into the YAML mapping, with paths relative to the scene folder where possible."""

    def rel(p: Path) -> str:
        try:
            return os.path.relpath(p, m.root)
        except ValueError:  # other drive on Windows
            return str(p)

    out: dict[str, Any] = {"name": m.name, "bands": list(m.bands), "units": m.units, "classes": dict(m.classes)}
    if m.nodata is not None:
        out["nodata"] = m.nodata
    if m.crs is not None:
        out["crs"] = m.crs
    if m.transform is not None:
        out["transform"] = list(m.transform)
    dates = []
    for e in m.dates:
        item: dict[str, Any] = {"date": e.date.isoformat(), "image": None if e.image is None else rel(e.image)}
        if e.label is not None:
            item["label"] = rel(e.label)
        dates.append(item)
    out["dates"] = dates
    if isinstance(m.split, Path):
        out["split"] = rel(m.split)
    elif isinstance(m.split, VectorSource):
        out["split"] = {"path": rel(m.split.path), "column": m.split.column}
    if m.vector_labels is not None:
        out["labels"] = {
            "path": rel(m.vector_labels.path),
            "columns": {d.isoformat(): c for d, c in m.vector_labels.columns.items()},
        }
    return out


def write_manifest(m: Manifest) -> Path:
    """Write ``m`` to ``m.path`` atomically (temp file + rename)."""
    text = yaml.safe_dump(manifest_to_dict(m), sort_keys=False, default_flow_style=None, width=120)
    with atomic_path(m.path) as tmp:
        tmp.write_text(text)
    return m.path
