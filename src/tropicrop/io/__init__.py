"""Reading and writing scenes: the manifest (``scene.yaml``), rasters, vector parcels, the authors' layout."""

from tropicrop.io.files import atomic_path, write_json
from tropicrop.io.manifest import Manifest, read_manifest, write_manifest
from tropicrop.io.rasters import Grid, RasterSource, write_geotiff
from tropicrop.io.writing import write_scene

__all__ = [
    "Grid",
    "Manifest",
    "RasterSource",
    "atomic_path",
    "read_manifest",
    "write_geotiff",
    "write_json",
    "write_manifest",
    "write_scene",
]
