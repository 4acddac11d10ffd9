"""Every malformed scene gives exactly one line on the terminal (stdout and stderr together) and status 2.

The cases are those the scene tests build (tests/test_scene.py), plus truncated GeoTIFFs whose header
survives (a COG cut short), which GDAL used to report with a dozen warnings before the error. The cases
run ``tropicrop inspect`` in a separate interpreter whose terminal (file descriptors 1 and 2) is a file, so
whatever GDAL or Python would print reaches the check.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import yaml
from affine import Affine
from rasterio.shutil import copy as gdal_copy
from shapely.geometry import box

from tiny import DATES, TRANSFORM, tiny_arrays
from tropicrop.io import write_geotiff

MakeScene = Callable[..., Path]
SRC = Path(__file__).parents[2] / "src"
# One interpreter runs `tropicrop inspect SCENE` for every scene, with its file descriptors 1 and 2 sent to a
# file per run: whatever would reach the terminal (Python, GDAL's C code) is counted; prints JSON [status, text].
DRIVER = """
import json, os, sys, tempfile
from tropicrop.cli import main
results = []
for scene in sys.argv[1:]:
    with tempfile.TemporaryFile("w+") as terminal:
        saved = os.dup(1), os.dup(2)
        sys.stdout.flush(); sys.stderr.flush()
        os.dup2(terminal.fileno(), 1); os.dup2(terminal.fileno(), 2)
        try:
            status = main(["inspect", scene])
        except SystemExit as exc:
            status = exc.code
        finally:
            sys.stdout.flush(); sys.stderr.flush()
            os.dup2(saved[0], 1); os.dup2(saved[1], 2)
        terminal.seek(0)
        results.append([status, terminal.read()])
for result in results:
    print(json.dumps(result))
"""


def edit_manifest(scene_dir: Path, **changes: object) -> None:
    data = yaml.safe_load((scene_dir / "scene.yaml").read_text())
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    (scene_dir / "scene.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def regrid(path: Path, what: str) -> None:
    with rasterio.open(path) as ds:
        data, crs, transform = ds.read(), ds.crs, ds.transform
    if what == "size":
        data = data[:, :-1]
    elif what == "transform":
        transform = TRANSFORM @ Affine.translation(1, 0)
    else:
        crs = "EPSG:32724"
    write_geotiff(path, data, crs, transform)


def cut_cog(path: Path, keep: float) -> None:
    """Rewrite ``path`` as a COG (header first, as real Sentinel-1 products are) and keep a fraction of it."""
    cog = path.with_suffix(".cog.tif")
    gdal_copy(path, cog, driver="COG")
    data = cog.read_bytes()
    cog.unlink()
    path.write_bytes(data[: int(len(data) * keep)])


def parcels(scene_dir: Path, name: str, column_date: str) -> None:
    gpd.GeoDataFrame({"c": [name]}, geometry=[box(400000, 8659900, 400100, 8660000)], crs="EPSG:32723").to_file(
        scene_dir / "parcels.gpkg")
    edit_manifest(scene_dir, labels={"path": "parcels.gpkg", "columns": {column_date: "c"}})


def nan_images() -> np.ndarray:
    images = tiny_arrays()["images"]
    images[1, 0, 0, :3] = np.nan
    images[1, 1, 5, 5] = np.inf
    return np.asarray(images)


def bad_code_labels() -> dict:
    labels = {d: np.full((16, 20), 3, dtype=np.uint8) for d in DATES[2:]}
    labels[DATES[3]][4, 4] = 9
    return labels


def reorder(scene_dir: Path, duplicated: bool) -> None:
    data = yaml.safe_load((scene_dir / "scene.yaml").read_text())
    if duplicated:
        data["dates"][2]["date"] = data["dates"][1]["date"]
    else:
        data["dates"][1], data["dates"][2] = data["dates"][2], data["dates"][1]
    (scene_dir / "scene.yaml").write_text(yaml.safe_dump(data))


IMAGE = "images/20191117.tif"
# name -> (keyword arguments of make_scene, damage done to the written folder)
CASES: dict[str, tuple[dict, Callable[[Path], object]]] = {
    "missing manifest": ({}, lambda s: (s / "scene.yaml").unlink()),
    "manifest not yaml": ({}, lambda s: (s / "scene.yaml").write_text("name: x\nbands: [VV, VH\nunits: dB\n")),
    "missing key": ({}, lambda s: edit_manifest(s, bands=None)),
    "unknown key": ({}, lambda s: edit_manifest(s, clases={1: "A"})),
    "missing image": ({}, lambda s: (s / "images" / "20191012.tif").unlink()),
    "truncated image": ({}, lambda s: (s / IMAGE).write_bytes((s / IMAGE).read_bytes()[:200])),
    "text image": ({}, lambda s: (s / IMAGE).write_text("this is not a raster\n")),
    "COG cut in its header": ({}, lambda s: cut_cog(s / IMAGE, 0.1)),
    "COG cut in its pixels": ({}, lambda s: cut_cog(s / IMAGE, 0.6)),
    "COG labels cut": ({}, lambda s: cut_cog(s / "labels/20191223.tif", 0.5)),
    "COG split cut": ({}, lambda s: cut_cog(s / "split.tif", 0.5)),
    "band count": ({}, lambda s: edit_manifest(s, bands=["VV", "VH", "HH"])),
    **{f"{what} of {target}": ({}, lambda s, w=what, t=target: regrid(s / t, w))
       for what in ("size", "transform", "crs") for target in (IMAGE, "labels/20191223.tif", "split.tif")},
    "dates unsorted": ({}, lambda s: reorder(s, duplicated=False)),
    "dates duplicated": ({}, lambda s: reorder(s, duplicated=True)),
    "label code not in classes": ({"labels": bad_code_labels()}, lambda s: None),
    "NaN pixels": ({"images": nan_images()}, lambda s: None),
    "split without train": ({"split": np.full((16, 20), 2, np.uint8)}, lambda s: None),
    "split without test": ({"split": np.full((16, 20), 1, np.uint8)}, lambda s: None),
    "dB units with linear values": (
        {"images": np.random.default_rng(0).uniform(0.001, 0.3, (4, 2, 16, 20)).astype(np.float32)}, lambda s: None),
    "linear units with dB values": ({"units": "linear"}, lambda s: None),
    "label date not an image date": ({"labels": None}, lambda s: parcels(s, "Maize", "2019-12-24")),
    "unknown class in parcels": ({"labels": None}, lambda s: parcels(s, "Rice", "2019-12-23")),
}


def test_every_malformed_scene_gives_one_line_and_status_2(make_scene: MakeScene) -> None:
    scenes = {}
    for name, (kwargs, damage) in CASES.items():
        scenes[name] = make_scene(**kwargs)
        damage(scenes[name])
    out = subprocess.run([sys.executable, "-c", DRIVER, *map(str, scenes.values())], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(SRC)}, timeout=300)
    assert out.returncode == 0, out.stderr
    results = [json.loads(line) for line in out.stdout.splitlines()]
    failures = []
    for (name, scene), (status, terminal) in zip(scenes.items(), results, strict=True):
        lines = terminal.strip().splitlines()
        if status != 2 or len(lines) != 1 or not lines[0].startswith("tropicrop: error: ") or str(scene) not in lines[0]:
            failures.append(f"{name} (status {status}):\n{terminal}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("keep", [0.1, 0.6])
def test_truncated_cog_names_gdals_cause_not_a_generic_read_failure(make_scene: MakeScene, keep: float) -> None:
    """The one line carries GDAL's reason (an I/O error), never 'See previous exception for details'."""
    from tropicrop.errors import SceneError
    from tropicrop.scene import load_scene

    scene = make_scene()
    cut_cog(scene / IMAGE, keep)
    with pytest.raises(SceneError) as exc:
        load_scene(scene, check_pixels=True)
    message = str(exc.value)
    assert str(scene / IMAGE) in message and "GDAL:" in message and "previous exception" not in message
