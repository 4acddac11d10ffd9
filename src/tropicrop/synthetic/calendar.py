"""Weather and crop calendars: when it rains, what each parcel grows when, and its state on each date.

A season is the agricultural year that starts in September of ``Season.year``. The rain onset (mid-October
to mid-November in western Bahia) sets the soybean sowing window; soybean is harvested after ~115 days and
followed by a second crop (maize, millet, sorghum, beans, cotton...) only if it can still be sown well before
the rains end, except under irrigated pivots. So a year with a late onset has later crops and more fallow:
calendars and crop proportions shift for the same physical reason as in real years.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from tropicrop.synthetic.crops import CODE, CROPS, PERENNIALS, SYSTEMS, Crop, System

CANOPIES: tuple[str, ...] = (*CROPS, *PERENNIALS)
"""Canopy types with radar parameters; ``States.canopy`` indexes this tuple."""

ONSET_CLIMATOLOGY = (10, 20)
"""Month and day of the mean rain onset; the rains end around ``RAIN_END_CLIMATOLOGY`` of the next year."""
RAIN_END_CLIMATOLOGY = (4, 25)
STRAW_DECAY_DAYS = 120.0
EMERGENCE_DAYS = 10
"""Days from sowing to emergence; before it the field is bare and the reference says Soil."""


@dataclass(frozen=True)
class Season:
    """Rainy season of the agricultural year starting in September of ``year``."""

    year: int
    onset: dt.date
    rain_end: dt.date
    dry_spell: tuple[dt.date, dt.date] | None = None   # a "veranico": weeks without rain mid-season


@dataclass(frozen=True)
class Weather:
    """Per-date weather of one scene; arrays are (T,) over the scene's dates."""

    seasons: tuple[Season, ...]
    wetness: np.ndarray      # 0..1: rainy-season indicator (dips during dry spells)
    moisture: np.ndarray     # 0..1: topsoil moisture on the acquisition day (rain events included)
    greenness: np.ndarray    # 0..1: greenness of perennial covers, lagging the rains by weeks
    stress: np.ndarray       # 0..1: water stress of crops during a dry spell (wilting lowers their vigour)

    def season(self, year: int) -> Season:
        """The season that starts in September of ``year``."""
        return next(s for s in self.seasons if s.year == year)


@dataclass(frozen=True)
class Stage:
    """One crop on one parcel from sowing to harvest, with its field-specific vigour."""

    crop: str
    sow: dt.date
    end: dt.date
    cmax: float              # maximum canopy cover reached (0..1)
    offset_db: float         # field-specific canopy brightness (variety, density, row direction)
    cycle_days: int          # nominal sow-to-harvest days (``end`` may come earlier: desiccation)


@dataclass(frozen=True)
class States:
    """Per-parcel state on every date; arrays are (n_ids, T)."""

    code: np.ndarray         # int16 class code (0 = no reference)
    canopy: np.ndarray       # int16 index into CANOPIES
    cover: np.ndarray        # float32 canopy cover 0..1
    vigor: np.ndarray        # float32 green vigour 0..1
    straw: np.ndarray        # float32 straw mulch on the ground 0..1
    offset_db: np.ndarray    # float32 canopy brightness offset of the field (dB)


def season_years(dates: Sequence[dt.date]) -> range:
    """Years of the seasons that can leave a trace on ``dates`` (one before the first date on)."""
    return range(dates[0].year - 1, dates[-1].year + 1)


def generate_weather(rng: np.random.Generator, dates: Sequence[dt.date], onset_shift_days: float = 0.0,
                     moisture_offset: float = 0.0,
                     season_rng: Callable[[int], np.random.Generator] | None = None) -> Weather:
    """Draw seasons (onset shifted by ``onset_shift_days`` +- 5 days) and per-date moisture and greenness.

    ``season_rng(year)`` gives the generator of one season's anomalies (onset, end, dry spell); two years
    that pass the same one relative to their labelled season get the same anomalies (no calendar shift).
    Without it the seasons draw from ``rng``.
    """
    seasons = []
    for y in season_years(dates):
        srng = season_rng(y) if season_rng is not None else rng
        seasons.append(_draw_season(srng, y, onset_shift_days))
    start = dates[0] - dt.timedelta(days=150)
    days = [start + dt.timedelta(days=i) for i in range((dates[-1] - start).days + 1)]
    wet_daily, dry_daily = _wetness(days, seasons)
    green_daily = np.empty_like(wet_daily)
    g = wet_daily[0]
    for i, w in enumerate(wet_daily):
        g += (w - g) / 25.0
        green_daily[i] = g
    idx = [(d - start).days for d in dates]
    wet = wet_daily[idx]
    showers = (rng.random(len(dates)) < 0.15) * rng.uniform(0.0, 0.25, len(dates))
    moisture = 0.12 + 0.5 * wet + wet * rng.normal(0.05, 0.15, len(dates)) + (1 - wet) * showers
    return Weather(tuple(seasons), wet, np.clip(moisture + moisture_offset, 0.0, 1.0), green_daily[idx],
                   dry_daily[idx])


def _draw_season(rng: np.random.Generator, y: int, onset_shift_days: float) -> Season:
    """One rainy season: onset anomaly within +-5 days around the shift, end, and maybe a dry spell."""
    anomaly = onset_shift_days + float(np.clip(rng.normal(0.0, 4.0), -5.0, 5.0))
    onset = dt.date(y, *ONSET_CLIMATOLOGY) + dt.timedelta(days=round(anomaly))
    end = dt.date(y + 1, *RAIN_END_CLIMATOLOGY) + dt.timedelta(days=round(rng.normal(0.0, 8.0) + 0.3 * anomaly))
    spell = None
    if rng.random() < 0.6:
        first = dt.date(y + 1, 1, 1) + dt.timedelta(days=round(rng.uniform(-15, 50)))
        spell = (first, first + dt.timedelta(days=round(rng.uniform(12, 28))))
    return Season(y, onset, end, spell)


def _wetness(days: Sequence[dt.date], seasons: Sequence[Season]) -> tuple[np.ndarray, np.ndarray]:
    """Daily 0..1 rainy-season indicator (smooth steps at onset and end, a dip in dry spells) and dry spells."""
    ordinal = np.array([d.toordinal() for d in days], dtype=float)
    wet, dry = np.zeros(len(days)), np.zeros(len(days))
    for s in seasons:
        wet = np.maximum(wet, _window(ordinal, s.onset, s.rain_end, 6.0, 8.0))
        if s.dry_spell is not None:
            # stress builds up a few days into the spell and lasts a week after the rains return
            spell = s.dry_spell[0] + dt.timedelta(days=5), s.dry_spell[1] + dt.timedelta(days=7)
            dry = np.maximum(dry, _window(ordinal, *spell, 3.0, 3.0))
    return wet * (1.0 - 0.7 * dry), dry


def _window(ordinal: np.ndarray, start: dt.date, end: dt.date, rise: float, fall: float) -> np.ndarray:
    """Smooth 0..1 indicator of ``start <= day <= end`` with logistic edges of ``rise``/``fall`` days."""
    up = 1.0 / (1.0 + np.exp(-(ordinal - start.toordinal()) / rise))
    down = 1.0 / (1.0 + np.exp(-(end.toordinal() - ordinal) / fall))
    return up * down


@dataclass(frozen=True)
class Practice:
    """What farmers do in one season, region-wide: crop-system frequencies, cultivar cycles, crop vigour."""

    mix: Mapping[str, float]          # multiplier of each system's base frequency
    cycle: Mapping[str, float]        # multiplier of each crop's cycle length (early or late cultivars)
    vigour_db: Mapping[str, float]    # canopy brightness of each crop this season (biomass, density)


@dataclass(frozen=True)
class Habits:
    """How the farmers of one year decide per parcel: sowing spread, cultivar choice and crop rotation.

    ``sowing_spread`` widens the sowing window after the onset; each parcel's cultivar cycle factor is drawn
    from N(``cultivar_mean``, ``cultivar_std``); a parcel repeats last season's system with probability
    ``repeat``, otherwise it follows ``rotation`` (with probability ``follow``) or draws from the mix.
    """

    sowing_spread: float = 1.0
    cultivar_mean: float = 1.0
    cultivar_std: float = 0.05
    repeat: float = 0.6
    rotation: Mapping[str, str] | None = None
    follow: float = 0.0


def season_practice(rng: np.random.Generator, factors: Mapping[str, float]) -> Practice:
    """Draw one season's practice; ``factors`` multiply the system frequencies (a year's crop mix)."""
    mix = {s.name: factors.get(s.name, 1.0) * float(np.exp(rng.normal(0.0, 0.2))) for s in SYSTEMS}
    cycle = {c: float(rng.uniform(0.9, 1.06)) for c in CROPS}
    vigour = {c: float(rng.normal(0.0, 0.5)) for c in CROPS}
    return Practice(mix, cycle, vigour)


def plan_parcel(rng: np.random.Generator, seasons: Sequence[Season], practices: Sequence[Practice],
                pivot: bool, habits: Habits | None = None) -> list[Stage]:
    """Crop stages of one cropland parcel over all ``seasons`` (one practice per season)."""
    habits = habits or Habits()
    by_name = {s.name: s for s in SYSTEMS}
    stages: list[Stage] = []
    previous: System | None = None
    for season, practice in zip(seasons, practices, strict=True):
        system = _draw_system(rng, practice.mix, pivot)
        if previous is not None:
            u = rng.random()
            if u < habits.repeat:
                system = previous
            elif habits.rotation is not None and u < habits.repeat + (1 - habits.repeat) * habits.follow:
                system = by_name[habits.rotation[previous.name]]
            if previous.first == "Cotton" and system.first == "Cotton":
                system = _draw_system(rng, practice.mix, pivot)  # cotton after cotton is avoided
        cultivar = float(np.clip(rng.normal(habits.cultivar_mean, habits.cultivar_std), 0.75, 1.25))
        stages += _season_stages(rng, season, practice, system, pivot, habits.sowing_spread, cultivar)
        previous = system
    return _resolve_overlaps(stages)


def _draw_system(rng: np.random.Generator, mix: Mapping[str, float], pivot: bool) -> System:
    w = np.array([(s.pivot if pivot else s.rainfed) * mix[s.name] for s in SYSTEMS])
    return SYSTEMS[int(rng.choice(len(SYSTEMS), p=w / w.sum()))]


def _season_stages(rng: np.random.Generator, season: Season, practice: Practice, system: System,
                   pivot: bool, spread: float = 1.0, cultivar: float = 1.0) -> list[Stage]:
    """First crop sown after the rain onset (earlier under pivots), second crop right after its harvest.

    ``spread`` widens the sowing window (days after its start); ``cultivar`` scales the first crop's cycle.

    Cotton follows Bahia's sowing calendar (from about 20 November; 10 November under pivots) as well as
    the rains, so its dates move less from year to year than soybean's.
    """
    window = {"Soybean": (-25, 15) if pivot else (3, 45), "Cotton": (0, 35), "Maize": (-20, 20) if pivot else (0, 25)}
    lo, hi = (0, 10) if system.second == "Cotton" else window[system.first]
    start = season.onset
    if system.first == "Cotton":
        start = max(season.onset + dt.timedelta(days=15), dt.date(season.year, 11, 10 if pivot else 20))
    sow = start + dt.timedelta(days=round(rng.uniform(lo, lo + spread * (hi - lo))))
    first = _stage(rng, CROPS[system.first], sow, practice, cultivar * (0.9 if system.second == "Cotton" else 1.0))
    if system.first == "Cotton":
        first = _cap_cotton(first, season)
    if system.second is None:
        return [first]
    sow2 = first.end + dt.timedelta(days=round(rng.uniform(2, 12)))
    margin = {"Millet": 20, "Cotton": 60}.get(system.second, 40)
    if not pivot and sow2 > season.rain_end - dt.timedelta(days=margin):
        return [first]                                       # too late for a rainfed second crop: fallow
    second = _stage(rng, CROPS[system.second], sow2, practice, 0.9 if system.second == "Maize" else 1.0)
    return [first, _cap_cotton(second, season) if system.second == "Cotton" else second]


def _stage(rng: np.random.Generator, crop: Crop, sow: dt.date, practice: Practice, cycle_factor: float) -> Stage:
    """A crop stage with a field-specific cycle length, maximum cover and brightness around the season's."""
    days = round(crop.cycle * cycle_factor * practice.cycle[crop.name] * rng.uniform(0.94, 1.06))
    return Stage(crop.name, sow, sow + dt.timedelta(days=days), float(rng.uniform(0.85, 1.0)),
                 practice.vigour_db[crop.name] + float(rng.normal(0.0, 0.5)), days)


def _cap_cotton(stage: Stage, season: Season) -> Stage:
    """Cotton stalks must be destroyed by late September (the sanitary break), whatever the sowing."""
    limit = dt.date(season.year + 1, 9, 20)
    return stage if stage.end <= limit else replace(stage, end=limit)


def _resolve_overlaps(stages: list[Stage]) -> list[Stage]:
    """Desiccate a crop a few days before the next one is sown; drop crops cut to under a month."""
    out: list[Stage] = []
    for st, nxt in zip(stages, [*stages[1:], None], strict=True):
        end = st.end if nxt is None else min(st.end, nxt.sow - dt.timedelta(days=5))
        if (end - st.sow).days >= 30:
            out.append(replace(st, end=end))
    return out


@dataclass(frozen=True)
class PerennialVariety:
    """Per-parcel differences of perennial covers, (n_ids,) arrays: management, density, degradation.

    ``offset_db`` is the parcel's canopy brightness (a grazed pasture against a closed one, a dense against
    an open Cerrado: 1-2 dB between parcels of one class, cf. C-band studies of Cerrado physiognomies such
    as Bispo et al. 2014); ``gain`` scales its dry-to-wet amplitude; ``amplitude`` scales it for the whole
    year (a drier year greens up less).
    """

    offset_db: np.ndarray
    gain: np.ndarray
    amplitude: float = 1.0


def parcel_states(land_use: Sequence[str], plans: Sequence[Sequence[Stage]], dates: Sequence[dt.date],
                  weather: Weather, variety: PerennialVariety | None = None,
                  crop_vigour_db: Mapping[str, float] | None = None) -> States:
    """Evaluate every parcel on every date: class code, canopy type, cover, vigour and straw (n_ids, T).

    ``crop_vigour_db`` darkens (negative) or brightens each crop's canopy for the whole year.
    """
    greenness = weather.greenness
    n, t = len(land_use), len(dates)
    code = np.zeros((n, t), np.int16)
    canopy = np.zeros((n, t), np.int16)
    cover, vigor, straw, offset = (np.zeros((n, t), np.float32) for _ in range(4))
    year_db = np.array([(crop_vigour_db or {}).get(c, 0.0) for c in CANOPIES], np.float32)
    for i, use in enumerate(land_use):
        if use == "crop":
            for j, d in enumerate(dates):
                code[i, j], canopy[i, j], cover[i, j], vigor[i, j], straw[i, j], offset[i, j] = _crop_state(
                    plans[i], d)
            vigor[i] *= 1.0 - 0.4 * weather.stress
            offset[i] += np.where(cover[i] > 0, year_db[canopy[i]], 0.0)
        elif use in PERENNIALS:
            p = PERENNIALS[use]
            code[i] = CODE.get(use, 0)
            canopy[i] = CANOPIES.index(use)
            amp = 1.0 if variety is None else float(np.clip(variety.gain[i] * variety.amplitude, 0.2, 1.6))
            green = 1.0 - amp * (1.0 - greenness)      # the dry-season dip, deeper or shallower
            cover[i] = np.clip(p.cover_dry + (p.cover_wet - p.cover_dry) * green, 0.0, 1.0)
            vigor[i] = np.clip(p.vigor_dry + (p.vigor_wet - p.vigor_dry) * green, 0.0, 1.0)
            if variety is not None:
                offset[i] = variety.offset_db[i]
    return States(code, canopy, cover, vigor, straw, offset)


def _crop_state(plan: Sequence[Stage], d: dt.date) -> tuple[int, int, float, float, float, float]:
    """(code, canopy, cover, vigor, straw, offset) of a cropland parcel on date ``d``."""
    straw, last = 0.3, None
    for st in plan:
        if st.sow > d:
            break
        if d < st.end:
            code = CODE["Soil"] if (d - st.sow).days < EMERGENCE_DAYS else CODE[st.crop]
            return (code, CANOPIES.index(st.crop), *_phenology(CROPS[st.crop], st, d),
                    _straw_after(last, st.sow), st.offset_db)
        last = st
    if last is not None:
        straw = _straw_after(last, d)
    return CODE["Soil"], 0, 0.0, 0.0, straw, 0.0


def _straw_after(stage: Stage | None, d: dt.date) -> float:
    """Straw left by ``stage`` that is still on the ground on date ``d`` (no-till residue decays slowly)."""
    if stage is None:
        return 0.3
    return CROPS[stage.crop].straw * float(np.exp(-max((d - stage.end).days, 0) / STRAW_DECAY_DAYS))


def _phenology(crop: Crop, stage: Stage, d: dt.date) -> tuple[float, float]:
    """Canopy cover and green vigour on ``d``: bare until emergence, fast growth, plateau, senescence."""
    f = (d - stage.sow).days / max(stage.cycle_days, 1)
    emergence = EMERGENCE_DAYS / max(stage.cycle_days, 1)
    if f < emergence:
        return 0.0, 0.0
    if f < crop.peak:
        return stage.cmax * float(np.sin(0.5 * np.pi * (f - emergence) / (crop.peak - emergence))), 1.0
    if f < crop.senescence:
        return stage.cmax, 1.0
    s = _smoothstep((f - crop.senescence) / (1.0 - crop.senescence))
    return stage.cmax + (crop.residual - stage.cmax) * s, 1.0 - s


def _smoothstep(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)
