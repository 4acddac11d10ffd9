"""Backscatter units as products deliver them, to linear power: dB, linear power, amplitude, and the uint16
packing of openEO's GFMap/WorldCereal pipelines.

The unit of a file or cube is detected from a decimated sample (dB is mostly negative, linear power mostly
in [0, 1]) unless given. Amplitude cannot be told from power by value, and GFMap's packing (dB = 20 log10(DN)
- 83, DN 0 and 65535 no data) is stated by no attribute, so both must be given (``--units``).
"""

from __future__ import annotations

import numpy as np

from tropicrop.errors import StackError

GFMAP = "gfmap-uint16"
UNITS = ("dB", "linear", "amplitude", GFMAP)
GFMAP_NODATA = (0, 65535)
UNITS_FIX = f"calibrate the product to sigma0/gamma0, or pass --units {'|'.join(UNITS)}"


def gfmap_to_db(values: np.ndarray) -> np.ndarray:
    """GFMap/WorldCereal uint16 digital numbers to sigma0 in dB (``20 log10(DN) - 83``); DN 0 and 65535
    (and NaN, left by resampling) become NaN."""
    dn = values.astype(np.float32, copy=False)
    with np.errstate(divide="ignore", invalid="ignore"):
        db = np.float32(20.0) * np.log10(dn) - np.float32(83.0)
    db[np.isin(values, GFMAP_NODATA) | ~np.isfinite(dn)] = np.nan
    return db.astype(np.float32, copy=False)


def to_linear_power(values: np.ndarray, units: str) -> np.ndarray:
    """Backscatter in ``units`` (see :data:`UNITS`) to float32 linear power; NaN stays NaN and non-positive
    power (border fill, 0 in linear products) becomes NaN."""
    if units == GFMAP:
        values, units = gfmap_to_db(values), "dB"
    data = values.astype(np.float32, copy=False)
    with np.errstate(over="ignore", invalid="ignore"):
        if units == "dB":
            power = np.power(np.float32(10.0), data / np.float32(10.0))
        elif units == "amplitude":
            power = data * data
        else:
            power = data.copy()
    power[~(power > 0)] = np.nan
    return power


def units_from_values(values: np.ndarray, where: str, integers: bool = False) -> str:
    """``dB`` or ``linear`` from a sample of valid values; StackError naming ``where`` if it cannot tell.
    ``integers`` (an integer-typed variable that no scale factor turns into backscatter) is refused: such
    digital numbers are a packing only the user can name."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise StackError(where, "holds no valid pixel", "check the file (all no data?)")
    if integers:
        raise StackError(where, f"holds packed integers ({values.min():g}..{values.max():g}), not backscatter",
                         f"pass --units {GFMAP} for openEO GFMap/WorldCereal uint16, or the unit they are in")
    negative = float(np.mean(values < 0))
    median = float(np.median(values))
    if negative > 0.5:
        return "dB"
    if values.min() >= 0 and median < 2.0:
        return "linear"
    raise StackError(where, f"values look like neither dB nor linear power (median {median:.3g}, {negative:.0%} "
                     "negative)", UNITS_FIX)


def check_units(units: str | None) -> None:
    """StackError for a ``--units`` value that is not one of :data:`UNITS`."""
    if units is not None and units not in UNITS:
        raise StackError(None, f"--units {units!r}", f"use one of {', '.join(UNITS)}")
