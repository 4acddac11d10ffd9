"""Sentinel-1 VV/VH backscatter of the parcels' states, with speckle, in dB.

A water-cloud-like mixture in linear power: the soil term (moisture, roughness, straw) is attenuated by the
canopy in proportion to its cover, and the canopy adds its own volume term scaled by its green vigour.
On top come a smooth within-parcel variation, a static crown texture for woody covers, patchy rain cells,
the incidence-angle gradient across the swath, a calibration offset, and multiplicative gamma speckle of
about 4.4 looks (S1 IW GRD), applied in linear power before conversion to dB.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tropicrop.synthetic.calendar import CANOPIES, States, Weather
from tropicrop.synthetic.crops import CROPS, PERENNIALS, SOIL_DB, SOIL_MOISTURE_DB, STRAW_DB, Perennial
from tropicrop.synthetic.noise import smooth_noise
from tropicrop.synthetic.region import PIXEL

ENL = 4.4
"""Equivalent number of looks of Sentinel-1 IW GRD high-resolution products."""
SWATH_KM, SWATH_DEG = 250.0, (29.0, 46.0)
"""IW swath width and incidence range: the angle grows by ~0.07 deg per km away from the satellite."""


@dataclass(frozen=True)
class Acquisition:
    """Scene-wide acquisition settings of one year."""

    near_incidence: float = 36.0            # incidence angle (deg) at the scene's west edge (ascending pass)
    calibration_db: tuple[float, float] = (0.0, 0.0)   # absolute offset (VV, VH), e.g. processing change


def _canopy_table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n_canopies, 2) canopy dB, (n_canopies,) transmissivity, (n_canopies,) crown texture shape."""
    params = [CROPS[n] if n in CROPS else PERENNIALS[n] for n in CANOPIES]
    db = np.array([(p.vv, p.vh) for p in params], dtype=np.float32)
    tau2 = np.array([p.tau2 for p in params], dtype=np.float32)
    texture = np.array([p.texture if isinstance(p, Perennial) else 0.0 for p in params], dtype=np.float32)
    return db, tau2, texture


def incidence_db(width: int, acq: Acquisition, exponent: float = 1.5) -> np.ndarray:
    """(W,) dB change with the incidence angle across the scene, relative to 37 deg (cos^n law)."""
    per_px = (SWATH_DEG[1] - SWATH_DEG[0]) / (SWATH_KM * 1000.0) * PIXEL
    theta = np.deg2rad(acq.near_incidence + per_px * np.arange(width))
    return (10.0 * exponent * np.log10(np.cos(theta) / np.cos(np.deg2rad(37.0)))).astype(np.float32)


def simulate_images(rng: np.random.Generator, pid: np.ndarray, states: States, weather: Weather,
                    roughness_db: np.ndarray, acq: Acquisition, scale: float) -> np.ndarray:
    """Images (T, 2, H, W) float32 in dB (bands VV, VH) of parcels ``pid`` (H, W) in ``states`` (n_ids, T).

    ``roughness_db`` (n_ids, 2) is the soil roughness term of each parcel; ``scale`` the region's length
    scale, which sets the size of within-field patterns and rain cells in pixels.
    """
    h, w = pid.shape
    n_dates = states.code.shape[1]
    can_db, tau2, texture = _canopy_table()
    fields = smooth_noise(rng, (h, w), max(2.0, 16.0 * scale))
    static_db = 0.35 * fields[None] + rng.normal(0.0, 0.15, (2, h, w)).astype(np.float32)
    static_db += incidence_db(w, acq)[None, None, :] + np.array(acq.calibration_db, np.float32)[:, None, None]
    crowns = _crown_texture(rng, texture[states.canopy[pid, 0]], (h, w))
    images = np.empty((n_dates, 2, h, w), np.float32)
    for t in range(n_dates):
        rain = smooth_noise(rng, (h, w), max(4.0, 300.0 * scale))
        moisture = np.clip(weather.moisture[t] + 0.12 * weather.wetness[t] * rain, 0.0, 1.0)
        canopy = states.canopy[:, t]
        cover, vigor = states.cover[:, t][pid], states.vigor[:, t][pid]
        attenuation = 1.0 - cover * (1.0 - tau2[canopy][pid])
        for b in range(2):
            soil_db = SOIL_DB[b] + SOIL_MOISTURE_DB[b] * moisture + (roughness_db[:, b] + STRAW_DB[b] *
                                                                   states.straw[:, t])[pid]
            veg_db = (can_db[canopy, b] + states.offset_db[:, t])[pid] + 0.8 * moisture
            sigma = _lin(soil_db) * attenuation + cover * _lin(veg_db) * (0.35 + 0.65 * vigor) * crowns
            speckle = rng.gamma(ENL, 1.0 / ENL, (h, w))
            images[t, b] = 10.0 * np.log10(sigma * speckle) + static_db[b]
    return images


def _crown_texture(rng: np.random.Generator, shape_per_pixel: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Static unit-mean gamma texture of tree crowns where the canopy has a texture shape (H, W)."""
    nu = np.where(shape_per_pixel > 0, shape_per_pixel, 1.0)
    crowns = rng.gamma(nu, 1.0 / nu, size).astype(np.float32)
    return np.where(shape_per_pixel > 0, crowns, np.float32(1.0))


def _lin(db: np.ndarray) -> np.ndarray:
    return np.power(np.float32(10.0), db / np.float32(10.0))
