"""Synthetic Sentinel-1 scenes of a tropical double-cropping region, in the scene format of ``tropicrop.io``.

``write_pair(out, preset, size, seed)`` writes the same region for two agricultural years
(``lem1718``, ``lem1920``) with the paper's acquisition dates; ``generate_pair`` returns them as arrays.
Modules: presets (dates, sizes), region (parcels, split), calendar (weather, crop calendars), backscatter
(VV/VH, speckle), generate (assembly and writing).
"""

from tropicrop.synthetic.crops import CLASSES
from tropicrop.synthetic.generate import SyntheticYear, generate_pair, generate_year, write_pair
from tropicrop.synthetic.presets import PRESETS, FieldOptions, Preset, YearSpec, get_preset, preset_fields
from tropicrop.synthetic.region import Region, generate_region

__all__ = [
    "CLASSES",
    "PRESETS",
    "FieldOptions",
    "Preset",
    "Region",
    "SyntheticYear",
    "YearSpec",
    "generate_pair",
    "generate_region",
    "generate_year",
    "get_preset",
    "preset_fields",
    "write_pair",
]
