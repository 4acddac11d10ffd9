"""Sentinel-1 VV/VH backscatter of the parcels' states, with speckle, in dB.

A water-cloud-like mixture in linear power: the soil term (moisture, roughness, straw) is attenuated by the
canopy in proportion to its cover, and the canopy adds its own volume term scaled by its green vigour.
On top come a smooth within-parcel variation, a static crown texture for woody covers, patchy rain cells,
the incidence angle (its gradient across the swath and the pass's near angle; soil and canopy terms fall
at different rates), a calibration offset, and multiplicative gamma speckle of about 4.4 looks (S1 IW GRD),
correlated over about 2 pixels and between VV and VH, applied in linear power before conversion to dB.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tropicrop.synthetic.calendar import CANOPIES, States, Weather
from tropicrop.synthetic.crops import CROPS, PERENNIALS, SOIL_DB, SOIL_MOISTURE_DB, STRAW_DB, Perennial
from tropicrop.synthetic.noise import smooth_noise
from tropicrop.synthetic.region import PIXEL

ENL = 4.4
"""Equivalent number of looks of Sentinel-1 IW GRD high-resolution products (ESA, S1 Product Definition)."""
SPECKLE_CORRELATION_PX = 0.7
"""Gaussian sigma (pixels) of the speckle's spatial low-pass: GRDH has ~20 x 22 m resolution on a 10 m grid,
so neighbours share about half their signal (correlation ~0.6 at 1 px, ~0.15 at 2 px)."""
SPECKLE_BAND_CORRELATION = 0.3
"""Correlation of the VV and VH speckle (log domain). The complex co/cross-pol correlation of reflection-
symmetric natural targets is near zero, but GRD multilooking, resampling and sub-pixel structure shared by
both channels leave a weak intensity correlation; 0.3 is a judgment call, not a measured value."""
INCIDENCE_EXPONENT = (3.0, 1.0)
"""cos^n incidence law of the soil and the canopy term: bare soil ~ -0.2 dB/deg at 35-45 deg (Ulaby & Long
2014, ch. 11), a volume canopy ~ -0.06 dB/deg."""
SWATH_KM, SWATH_DEG = 250.0, (29.0, 46.0)
"""IW swath width and incidence range: the angle grows by ~0.07 deg per km away from the satellite."""


@dataclass(frozen=True)
class Acquisition:
    """Scene-wide acquisition settings of one year."""

    near_incidence: float = 36.0            # incidence angle (deg) at the scene's west edge (the relative orbit)
    calibration_db: tuple[float, float] = (0.0, 0.0)   # absolute offset (VV, VH), e.g. processing change
    speckle_looks: float = ENL              # equivalent number of looks of the speckle
    speckle_correlation_px: float = SPECKLE_CORRELATION_PX   # its spatial correlation (0: white)


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


def correlated_speckle(rng: np.random.Generator, size: tuple[int, int], looks: float = ENL,
                       sigma_px: float = SPECKLE_CORRELATION_PX,
                       band_rho: float = SPECKLE_BAND_CORRELATION) -> np.ndarray:
    """(2, H, W) unit-mean gamma speckle of ``looks`` looks, spatially and inter-band correlated.

    A Gaussian copula: two low-passed Gaussian fields (the second mixed with the first at ``band_rho``) are
    mapped through the normal CDF and the gamma quantile function, so each band keeps the exact gamma
    marginal (the ENL of single pixels) while a boxcar average gains fewer looks than with white speckle.
    """
    fields = smooth_noise(rng, (2, *size), sigma_px) if sigma_px > 0 else rng.standard_normal((2, *size))
    vv, other = fields[0], fields[1]
    vh = band_rho * vv + np.sqrt(1.0 - band_rho**2) * other
    grid, quantiles = _gamma_quantiles(looks)
    return np.stack([np.interp(vv, grid, quantiles), np.interp(vh, grid, quantiles)]).astype(np.float32)


def _gamma_quantiles(looks: float) -> tuple[np.ndarray, np.ndarray]:
    """Lookup table z -> gamma(looks, 1/looks) quantile at Phi(z), z in [-6, 6] (interpolated, fast)."""
    from scipy.special import gammaincinv, ndtr

    grid = np.linspace(-6.0, 6.0, 4097)
    return grid, gammaincinv(looks, np.clip(ndtr(grid), 1e-12, 1 - 1e-12)) / looks


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
    static_db += np.array(acq.calibration_db, np.float32)[:, None, None]
    soil_inc, veg_inc = (incidence_db(w, acq, n)[None, :] for n in INCIDENCE_EXPONENT)
    crowns = _crown_texture(rng, texture[states.canopy[pid, 0]], (h, w))
    images = np.empty((n_dates, 2, h, w), np.float32)
    for t in range(n_dates):
        rain = smooth_noise(rng, (h, w), max(4.0, 300.0 * scale))
        moisture = np.clip(weather.moisture[t] + 0.12 * weather.wetness[t] * rain, 0.0, 1.0)
        canopy = states.canopy[:, t]
        cover, vigor = states.cover[:, t][pid], states.vigor[:, t][pid]
        attenuation = 1.0 - cover * (1.0 - tau2[canopy][pid])
        speckle = correlated_speckle(rng, (h, w), acq.speckle_looks, acq.speckle_correlation_px)
        for b in range(2):
            soil_db = SOIL_DB[b] + SOIL_MOISTURE_DB[b] * moisture + (roughness_db[:, b] + STRAW_DB[b] *
                                                                   states.straw[:, t])[pid] + soil_inc
            veg_db = (can_db[canopy, b] + states.offset_db[:, t])[pid] + 0.8 * moisture + veg_inc
            sigma = _lin(soil_db) * attenuation + cover * _lin(veg_db) * (0.35 + 0.65 * vigor) * crowns
            images[t, b] = 10.0 * np.log10(sigma * speckle[b]) + static_db[b]
    return images


def _crown_texture(rng: np.random.Generator, shape_per_pixel: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Static unit-mean gamma texture of tree crowns where the canopy has a texture shape (H, W)."""
    nu = np.where(shape_per_pixel > 0, shape_per_pixel, 1.0)
    crowns = rng.gamma(nu, 1.0 / nu, size).astype(np.float32)
    return np.where(shape_per_pixel > 0, crowns, np.float32(1.0))


def _lin(db: np.ndarray) -> np.ndarray:
    return np.power(np.float32(10.0), db / np.float32(10.0))
