"""Assemble synthetic years from region, weather, calendars and backscatter; write them as scene folders.

Both years of a pair share the region (parcels, soils, split). The second year differs for physical
reasons: its rains start weeks earlier (so every calendar moves), its crop mix differs (more millet,
less fallow), some pastures were converted to crops, and its images carry a small calibration offset.
Every random draw comes from ``np.random.default_rng([seed, stream, ...])``, so one seed fixes everything
and changing one part does not reshuffle the others.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import geopandas as gpd
import numpy as np
from affine import Affine

from tropicrop.synthetic.backscatter import Acquisition, simulate_images
from tropicrop.synthetic.calendar import Weather, generate_weather, parcel_states, plan_parcel, season_practice
from tropicrop.synthetic.crops import CLASSES
from tropicrop.synthetic.presets import YearSpec, get_preset
from tropicrop.synthetic.region import Region, generate_region, scale_for

BANDS = ("VV", "VH")
SECOND_YEAR_MIX: Mapping[str, float] = MappingProxyType(
    {"soy_millet": 2.3, "soy_fallow": 0.6, "cotton": 1.2, "soy_maize": 0.85})
"""Crop-system frequency multipliers of the second year (the paper's Figure 5: millet 4.9 % -> 14.7 % in August)."""


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


def generate_pair(preset: str = "lem", size: int | None = None, seed: int = 0) -> tuple[SyntheticYear, SyntheticYear]:
    """Generate the preset's two years (training year first) over one region of ``size`` x ``size`` pixels.

    Deterministic in ``seed``. Retries the layout (deterministically) in the rare case that a labelled date
    would lack train pixels, test pixels or three classes.
    """
    spec = get_preset(preset)
    size = spec.size if size is None else int(size)
    for attempt in range(20):
        region = generate_region(np.random.default_rng([seed, 0, attempt]), size, spec.train_block)
        pair = _generate_years(region, spec.years, seed)
        if all(_usable(y) for y in pair):
            return pair
    raise RuntimeError(f"could not lay out a usable {preset} scene of {size} px with seed {seed}")


def _generate_years(region: Region, years: tuple[YearSpec, YearSpec], seed: int) -> tuple[SyntheticYear, SyntheticYear]:
    """Year A as drawn; year B with shifted rains, another crop mix, converted pastures and an offset."""
    roughness = _roughness(np.random.default_rng([seed, 2]), region)
    shift_rng = np.random.default_rng([seed, 1])
    # The second year's rains come 3-4 weeks before the first year's: early soybean fills its first
    # labelled months, where a model that learnt the late year sees soil (a late second year would leave
    # those months bare in both years and the shift would hardly show).
    half_shift = -0.5 * shift_rng.uniform(21.0, 30.0)
    calibration = tuple(float(v) for v in shift_rng.choice([-1.0, 1.0]) * shift_rng.uniform(0.3, 0.6, 2))
    first = generate_year(region, years[0], np.random.default_rng([seed, 3]), roughness_db=roughness,
                          onset_shift_days=-half_shift)
    second = generate_year(
        region, years[1], np.random.default_rng([seed, 4]), roughness_db=roughness,
        onset_shift_days=half_shift, mix_factors=SECOND_YEAR_MIX,
        land_use=_convert_pastures(np.random.default_rng([seed, 5]), region.land_use),
        acquisition=Acquisition(calibration_db=(calibration[0], calibration[1])),
        moisture_offset=float(shift_rng.uniform(-0.05, 0.05)),
    )
    return first, second


def generate_year(region: Region, spec: YearSpec, rng: np.random.Generator, *, roughness_db: np.ndarray,
                  onset_shift_days: float = 0.0, mix_factors: Mapping[str, float] | None = None,
                  land_use: Sequence[str] | None = None, acquisition: Acquisition | None = None,
                  moisture_offset: float = 0.0) -> SyntheticYear:
    """Generate one year over ``region``: weather, a crop plan per parcel, states, images, labels, parcels.

    ``roughness_db`` (n_ids, 2) is the soil roughness of each parcel (shared by the years of a pair);
    ``onset_shift_days`` moves the rain onset, ``mix_factors`` multiplies crop-system frequencies,
    ``land_use`` overrides the region's land use per id.
    """
    uses = tuple(region.land_use if land_use is None else land_use)
    weather = generate_weather(rng, spec.dates, onset_shift_days, moisture_offset)
    practices = [season_practice(rng, mix_factors or {}) for _ in weather.seasons]
    plans = [plan_parcel(rng, weather.seasons, practices, bool(region.pivot[i])) if use == "crop" else []
             for i, use in enumerate(uses)]
    states = parcel_states(uses, plans, spec.dates, weather)
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


def _roughness(rng: np.random.Generator, region: Region) -> np.ndarray:
    """(n_ids, 2) soil roughness in dB: a common term plus a small per-band one; roads are smooth."""
    common = rng.normal(0.0, 0.8, (region.n_ids, 1))
    rough = (common + rng.normal(0.0, 0.3, (region.n_ids, 2))).astype(np.float32)
    rough[0] = -1.5
    return rough


def _convert_pastures(rng: np.random.Generator, land_use: Sequence[str]) -> tuple[str, ...]:
    """Turn about 20 % of the pastures into cropland (the usual conversion in the region), keeping one."""
    uses = list(land_use)
    pastures = [i for i, u in enumerate(uses) if u == "Pasture"]
    for i in rng.permutation(pastures)[:min(len(pastures) - 1, round(0.2 * len(pastures)))]:
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
               overwrite: bool = False) -> list[Path]:
    """Write the preset's two years as scene folders ``OUT/<name>`` (e.g. lem1718, lem1920); return them.

    Refuses (tropicrop.errors.SceneError) before writing anything if a folder exists and not ``overwrite``.
    """
    from tropicrop.errors import SceneError
    from tropicrop.io import write_scene

    spec = get_preset(preset)
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
        for target, year in zip(targets, generate_pair(preset, size, seed), strict=True)
    ]
