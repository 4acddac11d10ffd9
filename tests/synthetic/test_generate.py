"""The synthetic generator: determinism, paper dates, realistic signal, year-to-year shift, on-disk format."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest

from tropicrop.errors import SceneError
from tropicrop.scene import load_scene
from tropicrop.synthetic import CLASSES, PRESETS, SyntheticYear, generate_pair, get_preset, write_pair

Pair = tuple[SyntheticYear, SyntheticYear]
CLASSES_CODE = {name: code for code, name in CLASSES.items()}

PAPER_TABLE_1 = [
    "2016-09-27", "2016-10-15", "2016-11-20", "2016-12-14", "2017-01-19", "2017-02-12", "2017-03-08",
    "2017-04-13", "2017-05-19", "2017-06-12", "2017-07-06", "2017-08-11", "2017-09-16", "2017-10-10",
    "2017-11-15", "2017-12-09", "2018-01-14", "2018-02-19", "2018-03-15", "2018-04-20", "2018-05-14",
]
PAPER_TABLE_2 = [
    "2018-11-10", "2018-12-16", "2019-01-21", "2019-02-14", "2019-03-22", "2019-04-15", "2019-05-21",
    "2019-06-14", "2019-07-20", "2019-08-13", "2019-09-18", "2019-10-12", "2019-11-17", "2019-12-23",
    "2020-01-16", "2020-02-21", "2020-03-16", "2020-04-21", "2020-05-15", "2020-06-20", "2020-07-14",
    "2020-08-19", "2020-09-12",
]


@pytest.fixture(scope="module")
def tiny() -> Pair:
    return generate_pair("tiny", seed=0)


@pytest.fixture(scope="module")
def lem() -> Pair:
    """The full paper calendars on a small region (256 px keeps the test fast)."""
    return generate_pair("lem", 256, seed=0)


def _iso(dates: tuple[dt.date, ...]) -> list[str]:
    return [d.isoformat() for d in dates]


def test_same_seed_gives_identical_arrays_and_another_seed_differs(tiny: Pair) -> None:
    again = generate_pair("tiny", seed=0)
    other = generate_pair("tiny", seed=1)
    for a, b in zip(tiny, again, strict=True):
        np.testing.assert_array_equal(a.images, b.images)
        np.testing.assert_array_equal(a.labels, b.labels)
        np.testing.assert_array_equal(a.split, b.split)
    assert not np.array_equal(tiny[1].images, other[1].images)
    assert not np.array_equal(tiny[0].parcel_ids, other[0].parcel_ids)


def test_lem_dates_are_the_papers_tables_with_the_last_12_labelled(lem: Pair) -> None:
    first, second = lem
    assert (first.name, second.name) == ("lem1718", "lem1920")
    assert _iso(first.dates) == PAPER_TABLE_1
    assert _iso(second.dates) == PAPER_TABLE_2
    assert _iso(first.labelled_dates) == PAPER_TABLE_1[-12:]
    assert _iso(second.labelled_dates) == PAPER_TABLE_2[-12:]
    assert first.images.shape == (21, 2, 256, 256) and second.labels.shape == (12, 256, 256)


def test_tiny_labels_the_same_months_in_both_years(tiny: Pair) -> None:
    first, second = tiny
    assert len(first.dates) == len(second.dates) == 9
    assert [d.month for d in first.labelled_dates] == [d.month for d in second.labelled_dates] == [1, 2, 3, 4, 5]
    assert set(_iso(first.dates)) <= set(PAPER_TABLE_1) and set(_iso(second.dates)) <= set(PAPER_TABLE_2)


def test_class_table_holds_the_papers_classes_and_rarer_crops() -> None:
    assert [CLASSES[c] for c in range(1, 8)] == ["Soybean", "Maize", "Cotton", "Millet", "Pasture", "Cerrado", "Soil"]
    assert {"Beans", "Sorghum", "Eucalyptus"} <= set(CLASSES.values())
    assert sorted(CLASSES) == list(range(1, len(CLASSES) + 1))


def test_class_frequencies_change_month_by_month(lem: Pair) -> None:
    for year in lem:
        shares = np.array([np.bincount(lab.ravel(), minlength=len(CLASSES) + 1)[1:] / (lab > 0).sum()
                           for lab in year.labels])
        soy, soil = shares[:, 0], shares[:, 6]
        assert soy.max() > 0.3 and soy.min() < 0.02            # soybean fills the rainy months only
        assert soil.max() > 0.4 and soil.min() < 0.1           # bare soil dominates the dry season
        assert np.abs(np.diff(shares, axis=0)).sum(axis=1).max() > 0.3


def test_every_labelled_date_has_train_and_test_pixels_and_three_classes(tiny: Pair, lem: Pair) -> None:
    for year in (*tiny, *lem):
        for lab in year.labels:
            ref = lab > 0
            assert (ref & (year.split == 1)).any() and (ref & (year.split == 2)).any()
            assert len(np.unique(lab[ref])) >= 3
        assert not year.split[year.parcel_ids == 0].any()       # roads and gaps are unused


def test_split_is_the_same_train_area_in_both_years(lem: Pair) -> None:
    first, second = lem
    np.testing.assert_array_equal(first.split, second.split)
    train = first.split == 1
    assert 0.2 < train.sum() / (first.split > 0).sum() < 0.7
    assert train[:, :64].sum() > 10 * train[:, -64:].sum()     # a contiguous block on the west side


def test_backscatter_is_float32_db_in_plausible_ranges(lem: Pair) -> None:
    year = lem[1]
    assert year.images.dtype == np.float32 and np.isfinite(year.images).all()
    lo, hi = np.percentile(year.images, [1, 99])
    assert lo > -32 and hi < 0
    labelled = year.images[-len(year.labelled_dates):]
    dry_soil = labelled[-2][:, year.labels[-2] == CLASSES_CODE["Soil"]]     # August 2020
    assert -14.5 < np.median(dry_soil[0]) < -8 and -22 < np.median(dry_soil[1]) < -16
    soy = labelled[3][:, year.labels[3] == CLASSES_CODE["Soybean"]]         # January 2020, full canopy
    assert -15.5 < np.median(soy[1]) < -11.5
    ratio_soil = np.median(dry_soil[0] - dry_soil[1])
    ratio_soy = np.median(soy[0] - soy[1])
    assert ratio_soy < ratio_soil - 1.0                                     # VV/VH falls as biomass rises


def test_speckle_of_homogeneous_parcels_has_about_four_to_five_looks(lem: Pair) -> None:
    year = lem[1]
    t = len(year.dates) - 2                                                # August: bare, dry fields
    power = 10 ** (year.images[t, 0] / 10)
    soil = year.labels[-2] == CLASSES_CODE["Soil"]
    enl = []
    for pid in np.unique(year.parcel_ids[soil]):
        values = power[(year.parcel_ids == pid) & soil]
        if values.size >= 300:
            enl.append(values.mean() ** 2 / values.var())
    assert len(enl) >= 5
    assert 3.0 < np.median(enl) < 6.0


def test_second_year_has_other_rains_and_another_crop_mix(lem: Pair) -> None:
    first, second = lem
    a, b = first.labelled_onset(), second.labelled_onset()
    shift = (b.replace(year=2000) - a.replace(year=2000)).days
    assert abs(shift) >= 14                                                 # calendars move by weeks
    share_a, share_b = (np.bincount(y.labels.ravel(), minlength=len(CLASSES) + 1)[1:] / (y.labels > 0).sum()
                        for y in lem)
    assert np.abs(share_a - share_b).sum() > 0.05                           # another crop mix
    same_month = [(da, db) for da in first.labelled_dates for db in second.labelled_dates if da.month == db.month]
    changed = [(first.parcels[f"crop_{da:%Y%m%d}"] != second.parcels[f"crop_{db:%Y%m%d}"]).mean()
               for da, db in same_month]
    assert len(same_month) == 12 and max(changed) > 0.2                     # parcels change crop


def test_size_scales_the_square_grid_and_the_number_of_parcels() -> None:
    small, _ = generate_pair("tiny", size=48, seed=0)
    large, _ = generate_pair("tiny", size=160, seed=0)
    assert small.images.shape[-2:] == (48, 48) and large.images.shape[-2:] == (160, 160)
    assert len(large.parcels) > len(small.parcels)
    area_ha = large.parcels["area_ha"].median()
    assert 0.5 < area_ha < 20                                               # scaled down from 20-300 ha fields


def test_unknown_preset_is_a_value_error_naming_the_presets() -> None:
    with pytest.raises(ValueError, match="lem.*tiny"):
        generate_pair("nope")
    with pytest.raises(ValueError, match="lem"):
        get_preset("Lem")
    assert set(PRESETS) >= {"lem", "tiny"}


def test_a_scene_smaller_than_32_pixels_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="at least 32"):
        generate_pair("tiny", size=16)


def test_written_pair_loads_on_the_utm_grid_with_the_same_arrays(tmp_path: Path, tiny: Pair) -> None:
    paths = write_pair(tmp_path / "data", "tiny", seed=0)
    assert [p.name for p in paths] == ["lem1718", "lem1920"]
    for path, year in zip(paths, tiny, strict=True):
        scene = load_scene(path)
        assert scene.grid.crs is not None and scene.grid.crs.to_epsg() == 32723
        assert scene.grid.transform.a == 10.0 and scene.grid.transform.c == 400000.0
        assert scene.dates == list(year.dates) and scene.labelled_dates == list(year.labelled_dates)
        assert scene.classes == dict(CLASSES) and scene.units == "dB"
        np.testing.assert_allclose(scene.read_images(), year.images, atol=1e-5)
        np.testing.assert_array_equal(scene.read_labels(), year.labels)
        np.testing.assert_array_equal(scene.read_split(), year.split)


def test_parcels_gpkg_has_a_crop_column_per_labelled_date(tmp_path: Path) -> None:
    first, _ = write_pair(tmp_path, "tiny", seed=0)
    parcels = gpd.read_file(first / "parcels.gpkg")
    assert parcels.crs.to_epsg() == 32723
    scene = load_scene(first)
    columns = [f"crop_{d:%Y%m%d}" for d in scene.labelled_dates]
    assert set(columns) <= set(parcels.columns)
    assert set(parcels[columns].to_numpy().ravel()) <= set(CLASSES.values())
    assert set(parcels["split"]) == {"train", "test"}


def test_write_pair_refuses_an_existing_folder_unless_overwrite(tmp_path: Path) -> None:
    write_pair(tmp_path, "tiny", seed=0)
    with pytest.raises(SceneError, match="already exists"):
        write_pair(tmp_path, "tiny", seed=1)
    write_pair(tmp_path, "tiny", seed=1, overwrite=True)


# ------------------------------------------------------------------------------------------ shift knobs
@pytest.fixture(scope="module")
def knobs() -> dict[str, Pair]:
    """The tiny pair under every single knob (and none)."""
    return {s: generate_pair("tiny", seed=3, shift=s) for s in ("none", "calendar", "rotation", "canopy", "radiometric")}


def test_unknown_shift_is_a_value_error_naming_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="calendar"):
        generate_pair("tiny", seed=0, shift="weather")
    with pytest.raises(ValueError, match="radiometric"):
        write_pair(tmp_path / "x", "tiny", seed=0, shift="weather")
    assert not (tmp_path / "x").exists()


def test_shift_none_gives_the_second_year_the_first_years_seasons(knobs: dict[str, Pair]) -> None:
    first, second = knobs["none"]
    a, b = first.labelled_onset(), second.labelled_onset()
    assert (a.month, a.day) == (b.month, b.day)
    share_a, share_b = (np.bincount(y.labels.ravel(), minlength=len(CLASSES) + 1)[1:] / (y.labels > 0).sum()
                        for y in knobs["none"])
    assert np.abs(share_a - share_b).sum() < 0.35                           # same distribution, other draws


def test_calendar_knob_moves_the_onset_and_rotation_changes_the_crop_mix(knobs: dict[str, Pair]) -> None:
    a, b = (y.labelled_onset() for y in knobs["calendar"])
    assert abs((b.replace(year=2000) - a.replace(year=2000)).days) >= 14
    mix = {s: np.bincount(knobs[s][1].labels.ravel(), minlength=len(CLASSES) + 1)[1:] for s in ("none", "rotation")}
    assert not np.array_equal(mix["none"], mix["rotation"])


def test_canopy_and_radiometric_knobs_change_the_images_but_not_the_labels(knobs: dict[str, Pair]) -> None:
    base = knobs["none"][1]
    for s in ("canopy", "radiometric"):
        year = knobs[s][1]
        np.testing.assert_array_equal(year.labels, base.labels)
        assert not np.allclose(year.images, base.images)
    # another orbit, further in incidence, darkens bare soil more than canopies (cos^3 against cos^1)
    soil = base.labels[-1] == CLASSES_CODE["Soil"]
    t = len(base.dates) - 1
    darker = np.median(base.images[t, 0][soil]) - np.median(knobs["radiometric"][1].images[t, 0][soil])
    assert darker > 0.3


def test_speckle_is_gamma_with_enl_looks_correlated_over_neighbours_and_bands() -> None:
    from tropicrop.synthetic.backscatter import ENL, correlated_speckle

    s = correlated_speckle(np.random.default_rng(0), (256, 256))
    assert s.shape == (2, 256, 256) and abs(s.mean() - 1.0) < 0.02
    assert ENL * 0.85 < 1.0 / s[0].var() < ENL * 1.15                       # single-pixel looks kept
    log = np.log(s)
    lag1 = np.corrcoef(log[0, :, :-1].ravel(), log[0, :, 1:].ravel())[0, 1]
    lag3 = np.corrcoef(log[0, :, :-3].ravel(), log[0, :, 3:].ravel())[0, 1]
    bands = np.corrcoef(log[0].ravel(), log[1].ravel())[0, 1]
    assert 0.35 < lag1 < 0.8 and lag3 < 0.1 and 0.15 < bands < 0.45


def test_perennial_parcels_of_one_class_differ_by_about_a_decibel(lem: Pair) -> None:
    year = lem[0]
    t = len(year.dates) - 1
    medians = []
    for pid in np.unique(year.parcel_ids[year.labels[-1] == CLASSES_CODE["Pasture"]]):
        mask = (year.parcel_ids == pid) & (year.labels[-1] == CLASSES_CODE["Pasture"])
        if mask.sum() >= 50:
            medians.append(np.median(year.images[t, 1][mask]))
    assert len(medians) >= 4
    assert 0.6 < np.std(medians) < 2.5
