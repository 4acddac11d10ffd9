"""What changes between the two years of a synthetic pair: one knob per cause, each magnitude with its source.

``--shift`` picks the knobs: ``none`` draws year B from exactly the distribution of year A (same season
anomalies, practices, rotation habits and acquisition geometry; only the per-parcel and per-pixel draws
differ), so a model trained on A should score on B what it scores on B itself. The knobs:

* ``calendar``: the rains of B start 3-4 weeks earlier; B's seasons and practices are drawn anew; farmers
  sow over a wider window and choose earlier cultivars, per parcel. Inter-annual rain-onset anomalies of
  2-4 weeks are the norm in the Brazilian Cerrado (Liebmann et al. 2007, J. Climate 20; Arvor et al. 2014,
  Int. J. Climatol. 34); soybean maturity groups grown in western Bahia span about 95-130 days from sowing,
  and the trend is to early cultivars that leave room for a second crop (Embrapa Soja cultivar tables;
  Conab crop calendars give a 60-day sowing window for MATOPIBA soybean).
* ``rotation``: in A a parcel tends to repeat last season's system (``HABIT_REPEAT``); in B farmers rotate
  (cotton after soybean-maize, maize after cotton, ...) and the regional mix changes (more millet, less
  fallow, the paper's Figure 5: millet 4.9 % -> 14.7 % in August), and ~20 % of pastures become cropland
  (the usual conversion in MATOPIBA, e.g. Spera et al. 2016, Global Change Biology 22). A learner that
  used the previous season inside its 12-month window as a hint about the current crop is now misled.
* ``canopy``: B is a drier year: crop canopies are darker by a crop-specific amount (C-band VH of
  soybean and maize varies by 1-3 dB with biomass between fields and years, e.g. Veloso et al. 2017,
  Remote Sens. Environ. 199): 1.5-2.5 dB here; perennial covers green up less and the topsoil is drier.
* ``radiometric``: B has another relative orbit, 8 deg further in incidence, and a calibration offset.
  Sentinel-1 radiometric stability is specified at 0.5 dB (3 sigma) and measured at about 0.1-0.3 dB,
  with an absolute accuracy of about 1 dB (Schwerdt et al. 2017, Remote Sens. 9(11) 1137; the S1 Annual
  Performance Reports): offsets of 0.3-0.6 dB between years are within spec. The incidence dependence is
  term-specific: bare soil falls with about cos^3 (about -0.2 dB per degree at 35-45 deg, Ulaby & Long 2014,
  Microwave Radar and Radiometric Remote Sensing, ch. 11 and Baghdadi et al. 2017 for C band), a volume
  canopy with about cos^1 (-0.06 dB per degree), so another orbit changes the soil/canopy contrast, not
  only the level.

Always on (realism, not a shift): per-parcel variability of perennial covers and speckle correlated over
about 2 pixels and between bands (see ``backscatter``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

SHIFTS: tuple[str, ...] = ("none", "calendar", "rotation", "canopy", "radiometric", "all")
"""Accepted ``--shift`` values: no shift, one cause, or every cause together (the default)."""

ONSET_SHIFT_DAYS = (21.0, 30.0)
"""Range of B's rain onset advance over A, in days (calendar knob)."""
SOWING_SPREAD = (1.0, 1.6)
"""Width of the sowing window after the onset, as a factor of the base window: year A, year B (calendar)."""
CULTIVAR_CYCLE = ((1.0, 0.05), (0.92, 0.09))
"""Per-parcel cultivar cycle factor (mean, std) of year A and year B (calendar knob: earlier cultivars)."""
HABIT_REPEAT = (0.6, 0.1)
"""Probability that a parcel repeats last season's crop system: year A, year B (rotation knob)."""
ROTATION: Mapping[str, str] = MappingProxyType({
    "soy_fallow": "soy_millet", "soy_maize": "soy_cotton", "soy_millet": "soy_maize", "soy_sorghum": "soy_maize",
    "soy_crotalaria": "cotton", "soy_beans": "maize_beans", "soy_cotton": "soy_maize", "cotton": "soy_maize",
    "maize_fallow": "soy_millet", "maize_beans": "soy_beans",
})
"""The system a rotating farmer moves to after each system (rotation knob, year B)."""
ROTATION_FOLLOW = 0.6
"""Probability that a rotating parcel follows ``ROTATION`` rather than drawing from the regional mix."""
SECOND_YEAR_MIX: Mapping[str, float] = MappingProxyType(
    {"soy_millet": 2.3, "soy_fallow": 0.6, "cotton": 1.2, "soy_maize": 0.85})
"""Crop-system frequency multipliers of year B (rotation knob; the paper's Figure 5)."""
PASTURE_CONVERSION = 0.2
"""Share of pastures that become cropland in year B (rotation knob)."""
DRY_YEAR_CANOPY_DB = (1.5, 2.5)
"""Range of the crop-specific canopy darkening of the drier year B, in dB (canopy knob)."""
DRY_YEAR_GREENNESS = 0.6
"""Factor on the dry-to-wet amplitude of perennial covers in the drier year B (canopy knob)."""
DRY_YEAR_MOISTURE = -0.06
"""Topsoil moisture offset (0..1 scale) of the drier year B (canopy knob)."""
INCIDENCE_DEG = (35.0, 43.0)
"""Incidence angle at the scene's west edge: year A, year B (radiometric knob: another relative orbit)."""
CALIBRATION_DB = (0.3, 0.6)
"""Range of B's absolute calibration offset per band, with one sign for both bands (radiometric knob)."""


@dataclass(frozen=True)
class YearShift:
    """Which causes of a year-to-year shift are switched on for year B of a pair."""

    calendar: bool = True
    rotation: bool = True
    canopy: bool = True
    radiometric: bool = True

    @classmethod
    def parse(cls, name: str) -> YearShift:
        """``none``, one knob name or ``all``; raise ValueError naming the choices otherwise."""
        if name not in SHIFTS:
            raise ValueError(f"unknown shift {name!r}; choose one of: {', '.join(SHIFTS)}")
        if name == "all":
            return cls()
        return cls(**{knob: knob == name for knob in ("calendar", "rotation", "canopy", "radiometric")})

    @property
    def name(self) -> str:
        """The ``--shift`` value that gives this set of knobs (knobs joined by '+' for a custom mix)."""
        on = [k for k in ("calendar", "rotation", "canopy", "radiometric") if getattr(self, k)]
        return "all" if len(on) == 4 else "+".join(on) or "none"
