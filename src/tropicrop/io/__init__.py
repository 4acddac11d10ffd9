"""Reading and writing scenes: the manifest (``scene.yaml``), rasters, vector parcels, the authors' layout."""

from tropicrop.io.manifest import Manifest, read_manifest, write_manifest
from tropicrop.io.rasters import Grid, RasterSource, atomic_path, write_geotiff
from tropicrop.io.writing import write_scene

__all__ = [
    "Grid",
    "Manifest",
    "RasterSource",
    "atomic_path",
    "read_manifest",
    "write_geotiff",
    "write_manifest",
    "write_scene",
]
