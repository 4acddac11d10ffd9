"""Reading and writing scenes: the manifest (``scene.yaml``), rasters, vector parcels, the authors' layout; stacking
Sentinel-1 files, STAC items and datacubes into scenes (``stack``, ``stack_cube``)."""

from tropicrop.io.files import atomic_path, write_json
from tropicrop.io.manifest import Manifest, read_manifest, write_manifest
from tropicrop.io.rasters import Grid, RasterSource, write_geotiff
from tropicrop.io.writing import write_scene


def __getattr__(name: str) -> object:
    """``stack`` and ``stack_cube`` imported on first use (they pull in xarray, rioxarray and odc-stac)."""
    if name == "stack":
        from tropicrop.io.stack import stack

        return stack
    if name == "stack_cube":
        from tropicrop.io.stack import stack_cube

        return stack_cube
    raise AttributeError(name)


__all__ = [
    "Grid",
    "Manifest",
    "RasterSource",
    "atomic_path",
    "read_manifest",
    "stack",
    "stack_cube",
    "write_geotiff",
    "write_json",
    "write_manifest",
    "write_scene",
]
