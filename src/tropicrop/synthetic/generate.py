"""Assemble synthetic years from region, weather, calendars and backscatter; write them as scene folders.

Both years of a pair share the region (parcels, soils, split). The second year differs by the causes that
``shift`` switches on (see ``tropicrop.synthetic.shift``: calendar, rotation, canopy, radiometric); with
``shift="none"`` it is drawn from the first year's distribution. Every random draw comes from
``np.random.default_rng([seed, stream, ...])``, so one seed fixes everything and changing one part does not
reshuffle the others.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import geopandas as gpd
import numpy as np
from affine import Affine

from tropicrop.synthetic.backscatter import Acquisition, simulate_images
from tropicrop.synthetic.calendar import (
    Habits,
    PerennialVariety,
    Practice,
    Weather,
    generate_weather,
    parcel_states,
    plan_parcel,
    season_practice,
    season_years,
)
from tropicrop.synthetic.crops import CLASSES, CROPS
from tropicrop.synthetic.presets import FieldOptions, YearSpec, get_preset
from tropicrop.synthetic.region import Region, generate_region, scale_for
from tropicrop.synthetic.shift import (
    CALIBRATION_DB,
    CULTIVAR_CYCLE,
    DRY_YEAR_CANOPY_DB,
    DRY_YEAR_GREENNESS,
    DRY_YEAR_MOISTURE,
    HABIT_REPEAT,
    INCIDENCE_DEG,
    ONSET_SHIFT_DAYS,
    PASTURE_CONVERSION,
    ROTATION,
    ROTATION_FOLLOW,
    SECOND_YEAR_MIX,
    SOWING_SPREAD,
    YearShift,
)

BANDS = ("VV", "VH")


@dataclass(frozen=True)
class SyntheticYear:
    """One generated scene in memory, ready for ``tropicrop.io.write_scene``.

    images (T, 2, H, W) float32 dB (VV, VH); labels (T_labelled, H, W) uint8 codes of ``classes`` (0 = none);
    split (H, W) uint8 (0 unused, 1 train, 2 test); parcel_ids (H, W) int32 (0 roads, 1..n the ``parcel_id``
    of ``parcels``, above n unlabelled pivot corners); parcels: one row per labelled parcel with a
    ``crop_YYYYMMDD`` class-name column per labelled date.
    """

    name: str
    dates: tuple[dt.date, ...]
    labelled_dates: tuple[dt.date, ...]
    images: np.ndarray
    labels: np.ndarray
    split: np.ndarray
    parcel_ids: np.ndarray
    parcels: gpd.GeoDataFrame
    weather: Weather
    transform: Affine
    crs: str
    classes: Mapping[int, str]
    bands: tuple[str, ...] = BANDS

    def labelled_onset(self) -> dt.date:
        """Rain onset of the season that the labelled dates fall in (the season containing most of them)."""
        years = [d.year if d.month >= 9 else d.year - 1 for d in self.labelled_dates]
        return self.weather.season(max(set(years), key=years.count)).onset


def generate_pair(preset: str = "lem", size: int | None = None, seed: int = 0,
                  shift: str | YearShift = "all",
                  fields: FieldOptions | None = None) -> tuple[SyntheticYear, SyntheticYear]:
    """Generate the preset's two years (training year first) over one region of ``size`` x ``size`` pixels.

    ``shift`` names the causes of the year-to-year shift (``none``, ``calendar``, ``rotation``, ``canopy``,
    ``radiometric`` or ``all``); ``fields`` (default: the preset's) sets parcel size, split and speckle.
    Deterministic in ``seed``. Retries the layout (deterministically) in the rare case that a labelled date
    would lack train pixels, test pixels or three classes.
    """
    spec = get_preset(preset)
    knobs = shift if isinstance(shift, YearShift) else YearShift.parse(shift)
    fields = spec.fields if fields is None else fields
    fields.check()
    size = spec.size if size is None else int(size)
    interleaved = fields.train_fraction if fields.split == "interleaved" else None
    for attempt in range(20):
        region = generate_region(np.random.default_rng([seed, 0, attempt]), size, spec.train_block,
                                 fields.parcel_scale, interleaved)
        pair = _generate_years(region, spec.years, seed, knobs, fields)
        if all(_usable(y) for y in pair):
            return pair
    raise RuntimeError(f"could not lay out a usable {preset} scene of {size} px with seed {seed}")


def labelled_season(spec: YearSpec) -> int:
    """Year of the season (September to August) that holds most of ``spec``'s labelled dates."""
    years = [d.year if d.month >= 9 else d.year - 1 for d in spec.labelled_dates]
    return max(set(years), key=years.count)


def _generate_years(region: Region, years: tuple[YearSpec, YearSpec], seed: int,
                    shift: YearShift, fields: FieldOptions) -> tuple[SyntheticYear, SyntheticYear]:
    """Year A as drawn; year B from the same distribution except for the causes ``shift`` switches on."""
    roughness = _roughness(np.random.default_rng([seed, 2]), region)
    shift_rng = np.random.default_rng([seed, 1])
    # With the calendar knob, B's rains come 3-4 weeks before A's: early soybean fills its first labelled
    # months, where a model that learnt the late year sees soil.
    half_shift = -0.5 * shift_rng.uniform(*ONSET_SHIFT_DAYS) if shift.calendar else 0.0
    calibration = shift_rng.choice([-1.0, 1.0]) * shift_rng.uniform(*CALIBRATION_DB, 2)
    dry_canopy = {c: -float(shift_rng.uniform(*DRY_YEAR_CANOPY_DB)) for c in CROPS}
    variety = _perennial_variety(np.random.default_rng([seed, 6]), region.n_ids)
    out = []
    for k, spec in enumerate(years):
        shifted = k == 1
        season0 = labelled_season(spec)
        climate = 11 if shifted and shift.calendar else 10        # same stream = same season anomalies

        def season_rng(y: int, stream: int = climate, s0: int = season0) -> np.random.Generator:
            return np.random.default_rng([seed, stream, y - s0 + 100])

        practices = [season_practice(np.random.default_rng([seed, 20, y - season0 + 100]),
                                     SECOND_YEAR_MIX if shifted and shift.rotation else {})
                     for y in season_years(spec.dates)]
        if shifted and shift.calendar:       # other cultivar cycles across the region
            cyc = np.random.default_rng([seed, 21])
            practices = [replace(p, cycle={c: float(cyc.uniform(0.9, 1.06)) for c in p.cycle}) for p in practices]
        habits = Habits(
            sowing_spread=SOWING_SPREAD[int(shifted and shift.calendar)],
            cultivar_mean=CULTIVAR_CYCLE[int(shifted and shift.calendar)][0],
            cultivar_std=CULTIVAR_CYCLE[int(shifted and shift.calendar)][1],
            repeat=HABIT_REPEAT[int(shifted and shift.rotation)],
            rotation=ROTATION if shifted and shift.rotation else None, follow=ROTATION_FOLLOW,
        )
        dry = shifted and shift.canopy
        year_variety = PerennialVariety(
            variety.offset_db + np.random.default_rng([seed, 7, k]).normal(0.0, 0.3, region.n_ids),
            variety.gain, DRY_YEAR_GREENNESS if dry else 1.0)
        out.append(generate_year(
            region, spec, np.random.default_rng([seed, 3 + k]), roughness_db=roughness,
            onset_shift_days=half_shift if shifted else -half_shift, practices=practices, habits=habits,
            season_rng=season_rng, variety=year_variety, crop_vigour_db=dry_canopy if dry else None,
            land_use=_convert_pastures(np.random.default_rng([seed, 5]), region.land_use)
            if shifted and shift.rotation else None,
            acquisition=Acquisition(near_incidence=INCIDENCE_DEG[int(shifted and shift.radiometric)],
                                    calibration_db=(float(calibration[0]), float(calibration[1]))
                                    if shifted and shift.radiometric else (0.0, 0.0),
                                    speckle_looks=fields.speckle_looks,
                                    speckle_correlation_px=fields.speckle_correlation_px),
            moisture_offset=DRY_YEAR_MOISTURE if dry else 0.0,
        ))
    return out[0], out[1]


def generate_year(region: Region, spec: YearSpec, rng: np.random.Generator, *, roughness_db: np.ndarray,
                  onset_shift_days: float = 0.0, practices: Sequence[Practice] | None = None,
                  habits: Habits | None = None, season_rng: Callable[[int], np.random.Generator] | None = None,
                  variety: PerennialVariety | None = None, crop_vigour_db: Mapping[str, float] | None = None,
                  land_use: Sequence[str] | None = None, acquisition: Acquisition | None = None,
                  moisture_offset: float = 0.0) -> SyntheticYear:
    """Generate one year over ``region``: weather, a crop plan per parcel, states, images, labels, parcels.

    ``roughness_db`` (n_ids, 2) is the soil roughness of each parcel (shared by the years of a pair);
    ``onset_shift_days`` moves the rain onset, ``practices`` (one per season of ``season_years``) and
    ``habits`` say what farmers grow and how, ``season_rng`` draws each season's weather anomalies,
    ``variety`` and ``crop_vigour_db`` set canopy brightness, ``land_use`` overrides the region's per id.
    """
    uses = tuple(region.land_use if land_use is None else land_use)
    weather = generate_weather(rng, spec.dates, onset_shift_days, moisture_offset, season_rng)
    if practices is None:
        practices = [season_practice(rng, {}) for _ in weather.seasons]
    plans = [plan_parcel(rng, weather.seasons, practices, bool(region.pivot[i]), habits) if use == "crop" else []
             for i, use in enumerate(uses)]
    states = parcel_states(uses, plans, spec.dates, weather, variety, crop_vigour_db)
    images = simulate_images(rng, region.pid, states, weather, roughness_db,
                             acquisition or Acquisition(), scale_for(region.size))
    labelled = [spec.dates.index(d) for d in spec.labelled_dates]
    codes = states.code[:, labelled].T.astype(np.uint8)           # (T_labelled, n_ids)
    return SyntheticYear(
        name=spec.name, dates=spec.dates, labelled_dates=spec.labelled_dates, images=images,
        labels=codes[:, region.pid], split=region.split_raster(), parcel_ids=region.pid,
        parcels=_parcel_table(region, uses, codes, spec.labelled_dates), weather=weather,
        transform=region.transform, crs=region.crs, classes=dict(CLASSES),
    )


def _perennial_variety(rng: np.random.Generator, n_ids: int) -> PerennialVariety:
    """Per-parcel brightness (sigma 0.8 dB, within +-2 dB) and seasonal amplitude (x0.6..1.6) of perennials."""
    offset = np.clip(rng.normal(0.0, 0.8, n_ids), -2.0, 2.0)
    gain = np.clip(np.exp(rng.normal(0.0, 0.25, n_ids)), 0.6, 1.6)
    return PerennialVariety(offset, gain)


def _roughness(rng: np.random.Generator, region: Region) -> np.ndarray:
    """(n_ids, 2) soil roughness in dB: a common term plus a small per-band one; roads are smooth."""
    common = rng.normal(0.0, 0.8, (region.n_ids, 1))
    rough = (common + rng.normal(0.0, 0.3, (region.n_ids, 2))).astype(np.float32)
    rough[0] = -1.5
    return rough


def _convert_pastures(rng: np.random.Generator, land_use: Sequence[str]) -> tuple[str, ...]:
    """Turn ``PASTURE_CONVERSION`` of the pastures into cropland (the usual conversion), keeping one."""
    uses = list(land_use)
    pastures = [i for i, u in enumerate(uses) if u == "Pasture"]
    for i in rng.permutation(pastures)[:min(len(pastures) - 1, round(PASTURE_CONVERSION * len(pastures)))]:
        uses[int(i)] = "crop"
    return tuple(uses)


def _parcel_table(region: Region, uses: Sequence[str], codes: np.ndarray,
                  dates: Sequence[dt.date]) -> gpd.GeoDataFrame:
    """Labelled parcels with shape, land use, split and one ``crop_YYYYMMDD`` class-name column per date."""
    ids = range(1, region.n_parcels + 1)
    table: dict[str, object] = {
        "parcel_id": list(ids),
        "shape": list(region.shapes),
        "land_use": [uses[i] for i in ids],
        "irrigated": [bool(region.pivot[i]) for i in ids],
        "split": ["train" if region.split[i] == 1 else "test" for i in ids],
        "area_ha": [round(g.area / 10_000.0, 2) for g in region.geometries],
    }
    for j, d in enumerate(dates):
        table[f"crop_{d:%Y%m%d}"] = [CLASSES.get(int(codes[j, i]), "") for i in ids]
    return gpd.GeoDataFrame(table, geometry=list(region.geometries), crs=region.crs)


def _usable(year: SyntheticYear) -> bool:
    """Every labelled date has train pixels, test pixels and at least three classes."""
    for lab in year.labels:
        ref = lab > 0
        if not ((ref & (year.split == 1)).any() and (ref & (year.split == 2)).any()):
            return False
        if len(np.unique(lab[ref])) < 3:
            return False
    return True


def write_pair(out: Path, preset: str = "lem", size: int | None = None, seed: int = 0,
               overwrite: bool = False, shift: str = "all", fields: FieldOptions | None = None) -> list[Path]:
    """Write the preset's two years as scene folders ``OUT/<name>`` (e.g. lem1718, lem1920); return them.

    Refuses (tropicrop.errors.SceneError) before writing anything if a folder exists and not ``overwrite``.
    """
    from tropicrop.errors import SceneError
    from tropicrop.io import write_scene

    spec = get_preset(preset)
    YearShift.parse(shift)                     # refuse an unknown shift or option before touching the disk
    (spec.fields if fields is None else fields).check()
    out = Path(out)
    targets = [out / y.name for y in spec.years]
    for target in targets:
        if target.exists() and not overwrite:
            raise SceneError(target, "already exists", "pass overwrite=True (CLI: --overwrite) or choose another folder")
    return [
        write_scene(
            target, name=year.name, bands=year.bands, units="dB", classes=year.classes, dates=year.dates,
            images=year.images, crs=year.crs, transform=year.transform,
            labels=dict(zip(year.labelled_dates, year.labels, strict=True)), split=year.split,
            parcels=year.parcels, overwrite=overwrite,
        )
        for target, year in zip(targets, generate_pair(preset, size, seed, shift, fields), strict=True)
    ]
