"""Sentinel-1 datacubes for the tests, written with xarray as openEO, odc-stac or the GFMap pipeline write them.

One synthetic backscatter field (dB) per acquisition on a UTM 31N grid of 20 m pixels; helpers write it
as a netCDF with a CF grid-mapping variable ``crs`` (``crs_wkt`` and ``spatial_ref``), optionally packed,
with a ``bands`` dimension, as Zarr, or as per-acquisition GeoTIFFs holding the same values.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import rasterio
import xarray as xr
from affine import Affine
from rasterio.crs import CRS

CUBE_CRS = CRS.from_epsg(32631)
RES = 20.0
ORIGIN = (664000.0, 5612000.0)


def cube_transform() -> Affine:
    return Affine(RES, 0, ORIGIN[0], 0, -RES, ORIGIN[1])


def backscatter_db(times: list[dt.datetime], size: int, seed: int = 0) -> np.ndarray:
    """(T, 2, size, size) float32 dB: VV around -10, VH around -17, a seasonal swing and speckle."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0, 1.5, size=(len(times), 2, size, size)).astype(np.float32)
    season = np.array([np.sin(t.timetuple().tm_yday / 58.0) for t in times], dtype=np.float32)[:, None, None, None]
    return base + season + np.array([-10.0, -17.0], dtype=np.float32)[None, :, None, None]


def grid_mapping() -> xr.DataArray:
    wkt = CUBE_CRS.to_wkt()
    return xr.DataArray(np.array(b"", dtype="S1"), attrs={"crs_wkt": wkt, "spatial_ref": wkt})


def cube_dataset(db: np.ndarray, times: list[dt.datetime], names: tuple[str, str] = ("S1-SIGMA0-VV", "S1-SIGMA0-VH"),
                 bands_dim: bool = False) -> xr.Dataset:
    """An openEO-style cube of ``db`` (T, 2, H, W): dims t, y, x, a grid-mapping variable ``crs``, one
    variable per band (or one variable on a ``bands`` dimension)."""
    size = db.shape[-1]
    coords = {"t": np.array(times, dtype="datetime64[ns]"),
              "y": ORIGIN[1] - RES * (np.arange(size) + 0.5), "x": ORIGIN[0] + RES * (np.arange(size) + 0.5)}
    attrs = {"grid_mapping": "crs"}
    if bands_dim:
        variables = {"backscatter": xr.DataArray(db, dims=("t", "bands", "y", "x"), attrs=attrs)}
        coords["bands"] = np.array(list(names))
    else:
        variables = {name: xr.DataArray(db[:, b], dims=("t", "y", "x"), attrs=attrs) for b, name in enumerate(names)}
    return xr.Dataset({**variables, "crs": grid_mapping()}, coords=coords)


def pack_int16(dataset: xr.Dataset, names: tuple[str, ...], fill: int = -32768) -> dict[str, dict[str, object]]:
    """netCDF encoding that packs ``names`` as int16 with CF scale_factor/add_offset and a _FillValue."""
    return {n: {"dtype": "int16", "scale_factor": 0.001, "add_offset": -15.0, "_FillValue": fill} for n in names}


def gfmap_dn(db: np.ndarray) -> np.ndarray:
    """dB to the GFMap/WorldCereal uint16 digital numbers: DN = 10^((dB + 83) / 20)."""
    return np.clip(np.round(np.power(10.0, (db + 83.0) / 20.0)), 1, 65534).astype(np.uint16)


def write_geotiffs(folder: Path, db: np.ndarray, times: list[dt.datetime], nodata: float | None = None) -> list[Path]:
    """The same acquisitions as per-date two-band dB GeoTIFFs named as openEO names them."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, time in enumerate(times):
        path = folder / f"openEO_{time:%Y-%m-%dT%H:%M:%S}Z.tif"
        with rasterio.open(path, "w", driver="GTiff", width=db.shape[-1], height=db.shape[-2], count=2,
                           dtype="float32", crs=CUBE_CRS, transform=cube_transform(), nodata=nodata) as ds:
            ds.write(db[k])
            ds.set_band_description(1, "VV")
            ds.set_band_description(2, "VH")
        paths.append(path)
    return paths
