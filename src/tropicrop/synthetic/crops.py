"""The class table and the per-class parameters: crop phenology, perennial seasonality and radar response.

Values are plausible for Sentinel-1 C-band over the western Bahia Cerrado (sigma0, IW GRD, ~30-45 deg):
bare soil VV about -13..-8 dB and VH -21..-16 dB depending on moisture; full broadleaf canopy VH about
-13..-12 dB with the VV/VH ratio falling from ~8 dB (soil) to ~5 dB (canopy); stalky maize and sorghum
attenuate VV. Crops that look alike get close values on purpose, because that is what makes some months hard.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

CLASS_NAMES: tuple[str, ...] = (
    "Soybean", "Maize", "Cotton", "Millet", "Pasture", "Cerrado", "Soil",
    "Beans", "Sorghum", "Eucalyptus", "Coffee", "Crotalaria",
)
"""Class names; the code of a class is its position + 1 (0 = no reference)."""

CLASSES: MappingProxyType[int, str] = MappingProxyType({i + 1: n for i, n in enumerate(CLASS_NAMES)})
CODE: MappingProxyType[str, int] = MappingProxyType({n: i + 1 for i, n in enumerate(CLASS_NAMES)})

SOIL_DB = (-12.8, -20.8)
"""Dry, smooth bare soil sigma0 (VV, VH) in dB."""
SOIL_MOISTURE_DB = (5.0, 4.5)
"""Gain (VV, VH) in dB from dry (m=0) to saturated (m=1) topsoil."""
STRAW_DB = (0.6, 2.0)
"""Gain (VV, VH) in dB of a full straw mulch (no-till residue) on the ground."""


@dataclass(frozen=True)
class Crop:
    """An annual crop: cycle shape (fractions of the sow-to-harvest days) and canopy radar response."""

    name: str
    cycle: int            # mean days from sowing to harvest (or desiccation)
    peak: float           # fraction of the cycle where cover reaches its maximum
    senescence: float     # fraction of the cycle where senescence starts
    residual: float       # cover of the dry standing crop at harvest (0..1)
    vv: float             # canopy sigma0 at full, vigorous cover (dB)
    vh: float
    tau2: float           # two-way transmissivity of the soil signal through a full canopy
    straw: float          # straw left on the ground after harvest (0..1)


@dataclass(frozen=True)
class Perennial:
    """A perennial cover whose canopy follows the rains: cover and vigour go from dry to wet values."""

    name: str
    cover_dry: float
    cover_wet: float
    vigor_dry: float
    vigor_wet: float
    vv: float
    vh: float
    tau2: float
    texture: float        # shape of a static gamma texture (tree crowns); 0 = none


CROPS: MappingProxyType[str, Crop] = MappingProxyType({c.name: c for c in (
    Crop("Soybean", 115, 0.50, 0.78, 0.15, -7.6, -13.0, 0.12, 0.35),
    Crop("Maize", 140, 0.42, 0.62, 0.50, -10.6, -13.8, 0.30, 0.80),
    Crop("Cotton", 200, 0.45, 0.80, 0.30, -6.8, -12.2, 0.10, 0.20),
    Crop("Millet", 190, 0.25, 0.38, 0.45, -8.0, -14.2, 0.20, 0.90),
    Crop("Sorghum", 125, 0.45, 0.68, 0.45, -9.6, -13.8, 0.25, 0.80),
    Crop("Beans", 90, 0.50, 0.78, 0.10, -8.6, -14.4, 0.35, 0.20),
    Crop("Crotalaria", 120, 0.45, 0.75, 0.30, -8.0, -13.3, 0.15, 0.70),
)})

PERENNIALS: MappingProxyType[str, Perennial] = MappingProxyType({p.name: p for p in (
    Perennial("Pasture", 0.50, 0.85, 0.35, 1.00, -9.6, -15.0, 0.35, 0.0),
    Perennial("Cerrado", 0.75, 0.92, 0.45, 1.00, -7.6, -13.0, 0.10, 7.0),
    Perennial("Eucalyptus", 0.95, 0.97, 0.80, 1.00, -6.8, -11.6, 0.03, 10.0),
    Perennial("Coffee", 0.80, 0.85, 0.75, 1.00, -7.6, -12.9, 0.12, 0.0),
    Perennial("Corner", 0.30, 0.70, 0.20, 0.90, -9.8, -15.4, 0.40, 0.0),   # unlabelled pivot corners
)})


@dataclass(frozen=True)
class System:
    """A season's crop sequence on one parcel: a first crop, then an optional second crop."""

    name: str
    first: str
    second: str | None
    rainfed: float        # relative frequency on rainfed fields
    pivot: float          # relative frequency under centre pivots (irrigated)


SYSTEMS: tuple[System, ...] = (
    System("soy_fallow", "Soybean", None, 0.17, 0.02),
    System("soy_maize", "Soybean", "Maize", 0.24, 0.24),
    System("soy_millet", "Soybean", "Millet", 0.14, 0.04),
    System("soy_sorghum", "Soybean", "Sorghum", 0.04, 0.02),
    System("soy_crotalaria", "Soybean", "Crotalaria", 0.03, 0.02),
    System("soy_beans", "Soybean", "Beans", 0.01, 0.16),
    System("soy_cotton", "Soybean", "Cotton", 0.02, 0.10),
    System("cotton", "Cotton", None, 0.20, 0.20),
    System("maize_fallow", "Maize", None, 0.08, 0.06),
    System("maize_beans", "Maize", "Beans", 0.00, 0.08),
)
