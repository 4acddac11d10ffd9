"""Sentinel-1-like acquisition files for the stack tests, on several grids and CRSs, written by the tests.

Target grid: UTM 22S around 15.1 S, 48.0 W (the border of zones 22 and 23). Acquisitions cover it with a
margin, in UTM 22S (origin shifted off the target grid), UTM 23S or EPSG:4326, in dB as one two-band file
(ESA GRD name) or in linear power as two files ``..._VV.tif`` / ``..._VH.tif`` (ASF HyP3 RTC name).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.warp import reproject, transform, transform_bounds

TARGET_CRS = CRS.from_epsg(32722)
CENTRE_LONLAT = (-48.02, -15.1)
TARGET_RES = 20.0


def target_transform(size: int) -> Affine:
    """Transform of a ``size`` x ``size`` target grid centred on :data:`CENTRE_LONLAT` (20 m pixels)."""
    xs, ys = transform("EPSG:4326", TARGET_CRS, [CENTRE_LONLAT[0]], [CENTRE_LONLAT[1]])
    left = round(xs[0] - size * TARGET_RES / 2, -2)
    top = round(ys[0] + size * TARGET_RES / 2, -2)
    return Affine(TARGET_RES, 0, left, 0, -TARGET_RES, top)


@dataclass(frozen=True)
class Spec:
    """One acquisition to write: time, CRS, layout ('pair' of _VV/_VH linear files or 'dual' dB file)."""

    time: dt.datetime
    crs: str
    layout: str


def source_grid(crs: str, size: int, seed: int) -> tuple[Affine, int, int]:
    """A grid in ``crs`` covering the target (``size`` px) with a margin, origin offset by ``seed``."""
    left, bottom, right, top = transform_bounds(TARGET_CRS, crs, *_target_bounds(size), densify_pts=21)
    # 10, 13 or 16 m in UTM: never the target's 20 m
    res = 1.5e-4 if CRS.from_user_input(crs).is_geographic else 10.0 + 3.0 * (seed % 3)
    margin = 8 * res
    shift = (seed % 7) * res / 7
    t = Affine(res, 0, left - margin + shift, 0, -res, top + margin - shift)
    width = int(np.ceil((right - left + 2 * margin) / res))
    height = int(np.ceil((top - bottom + 2 * margin) / res))
    return t, width, height


def _target_bounds(size: int) -> tuple[float, float, float, float]:
    t = target_transform(size)
    return t.c, t.f - size * TARGET_RES, t.c + size * TARGET_RES, t.f


def write_acquisition(folder: Path, spec: Spec, size: int, seed: int, name_style: str = "esa") -> list[Path]:
    """Write one acquisition; returns its file(s). Power is log-normal around -9 dB (VV) / -16 dB (VH)."""
    rng = np.random.default_rng(seed)
    t, width, height = source_grid(spec.crs, size, seed)
    base = rng.normal(0, 1.5, size=(2, height, width)).astype(np.float32)
    db = base + np.array([-9.0, -16.0], dtype=np.float32)[:, None, None]
    stamp = spec.time.strftime("%Y%m%dT%H%M%S")
    profile = dict(driver="GTiff", width=width, height=height, dtype="float32", crs=spec.crs, transform=t)
    folder.mkdir(parents=True, exist_ok=True)
    if spec.layout == "dual":
        name = (f"S1A_IW_GRDH_1SDV_{stamp}_{stamp}_025{seed:03d}_02C{seed:03d}_AB{seed % 100:02d}.tif"
                if name_style == "esa" else f"S1B_{stamp}_orbit{seed}_db.tif")
        path = folder / name
        with rasterio.open(path, "w", count=2, nodata=-9999.0, **profile) as ds:
            ds.write(db)
            ds.set_band_description(1, "VV")
            ds.set_band_description(2, "VH")
        return [path]
    paths = []
    linear = np.power(10.0, db / 10.0).astype(np.float32)
    linear[:, :3, :] = 0.0  # border fill of HyP3 products (no nodata tag)
    for b, pol in enumerate(("VV", "VH")):
        path = folder / f"S1A_IW_{stamp}_DVP_RTC20_G_gpuned_{seed:04X}_{pol}.tif"
        with rasterio.open(path, "w", count=1, **profile) as ds:
            ds.write(linear[b], 1)
        paths.append(path)
    return paths


def reprojected_power(paths: list[Path], size: int, resampling: Resampling = Resampling.bilinear) -> np.ndarray:
    """Direct computation: an acquisition's (VV, VH) reprojected onto the target grid with rasterio.warp,
    in linear power (2, size, size), NaN outside; the reference the composites are checked against."""
    out = np.full((2, size, size), np.nan, dtype=np.float32)
    bands = [(p, 1 + b) for b, p in enumerate(paths * 2)][:2] if len(paths) == 1 else [(p, 1) for p in paths]
    for b, (path, index) in enumerate(bands):
        with rasterio.open(path) as ds:
            src = ds.read(index).astype(np.float32)
            dst = np.full((size, size), np.nan, dtype=np.float32)
            src_nodata = ds.nodata if ds.nodata is not None else 0.0
            reproject(src, dst, src_transform=ds.transform, src_crs=ds.crs, dst_transform=target_transform(size),
                      dst_crs=TARGET_CRS, resampling=resampling, src_nodata=src_nodata, dst_nodata=np.nan)
        is_db = len(paths) == 1
        out[b] = np.power(10.0, dst / 10.0) if is_db else dst
    out[~(out > 0)] = np.nan
    return out


def write_like(path: Path, size: int) -> Path:
    """A one-band raster on the target grid, for ``--like``."""
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=1, dtype="uint8", crs=TARGET_CRS,
                       transform=target_transform(size)) as ds:
        ds.write(np.zeros((1, size, size), dtype=np.uint8))
    return path


def write_item_collection(path: Path, acquisitions: list[tuple[dt.datetime, list[Path]]], relative: bool = True,
                          drop_vh: bool = False) -> Path:
    """A STAC ItemCollection with one item per acquisition and single-band ``vv`` / ``vh`` assets."""
    features = []
    for k, (time, files) in enumerate(acquisitions):
        assets = {}
        for pol, f in zip(("vv", "vh"), files, strict=True):
            href = str(f.relative_to(path.parent)) if relative else str(f)
            assets[pol] = {"href": href, "type": "image/tiff; application=geotiff", "roles": ["data"]}
        if drop_vh:
            assets.pop("vh")
        with rasterio.open(files[0]) as ds:
            w, s, e, n = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds)
        features.append({
            "type": "Feature", "stac_version": "1.0.0", "id": f"S1_{time:%Y%m%dT%H%M%S}_{k}",
            "geometry": {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]},
            "bbox": [w, s, e, n], "properties": {"datetime": time.strftime("%Y-%m-%dT%H:%M:%SZ")},
            "links": [], "assets": assets,
        })
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path
