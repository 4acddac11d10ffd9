"""Field options of the synthetic scenes: parcel size, interleaved split, speckle (issue 32's few-fields setting)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import uniform_filter

from tropicrop.cli import main
from tropicrop.synthetic import FieldOptions, generate_pair, get_preset, write_pair
from tropicrop.synthetic.backscatter import correlated_speckle

SIZE = 96


def _pair(**options: object):  # type: ignore[no-untyped-def]
    return generate_pair("tiny", SIZE, seed=0, fields=FieldOptions(**options))  # type: ignore[arg-type]


def test_default_options_draw_the_scene_the_preset_always_drew() -> None:
    default = generate_pair("tiny", SIZE, seed=0)
    explicit = _pair()
    np.testing.assert_array_equal(default[1].images, explicit[1].images)
    np.testing.assert_array_equal(default[1].split, explicit[1].split)


def test_a_smaller_parcel_scale_gives_more_and_smaller_parcels() -> None:
    normal, small = _pair()[1], _pair(parcel_scale=0.5)[1]
    assert len(small.parcels) > 2 * len(normal.parcels)
    assert small.parcels.area_ha.median() < 0.5 * normal.parcels.area_ha.median()


def test_the_block_split_keeps_train_parcels_west_and_interleaving_puts_them_everywhere() -> None:
    block, mixed = _pair()[1], _pair(split="interleaved", train_fraction=0.4)[1]
    east = slice(SIZE // 2, None)
    assert not (block.split[:, east] == 1).any()
    assert (mixed.split[:, east] == 1).any() and (mixed.split[:, east] == 2).any()
    share = (mixed.parcels.split == "train").mean()
    assert 0.2 < share < 0.6
    labelled = mixed.labels[0] > 0             # every labelled pixel is train or test
    assert set(np.unique(mixed.split[labelled])) == {1, 2}


def test_white_speckle_is_what_a_3x3_mean_removes_and_correlated_speckle_is_not() -> None:
    rng = np.random.default_rng(0)
    white = np.log(correlated_speckle(rng, (128, 128), 4.4, 0.0)[0])
    correlated = np.log(correlated_speckle(rng, (128, 128), 4.4, 0.7)[0])
    gain_white = white.var() / uniform_filter(white, 3).var()
    gain_correlated = correlated.var() / uniform_filter(correlated, 3).var()
    assert gain_white > 6.0 and gain_correlated < 0.5 * gain_white


def test_more_looks_give_quieter_images() -> None:
    quiet, noisy = _pair(speckle_looks=16.0)[1], _pair(speckle_looks=2.0)[1]
    roads = quiet.parcel_ids == 0              # smooth, same for both: speckle is most of their spread
    assert quiet.images[:, 0][:, roads].std() < noisy.images[:, 0][:, roads].std()


@pytest.mark.parametrize("bad", [{"parcel_scale": 0.01}, {"split": "checkerboard"}, {"train_fraction": 1.0},
                                 {"speckle_looks": 0.5}, {"speckle_correlation_px": -1.0}])
def test_impossible_options_are_refused_before_anything_is_written(bad: dict, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_pair(tmp_path / "pair", preset="tiny", size=64, fields=FieldOptions(**bad))  # type: ignore[arg-type]
    assert not (tmp_path / "pair").exists()


def test_the_few_fields_preset_has_its_own_field_options() -> None:
    preset = get_preset("few-fields")
    assert preset.fields.split == "interleaved" and preset.fields.parcel_scale < 1.0
    assert preset.fields != FieldOptions()


def test_synth_takes_field_options_and_names_a_bad_one_in_one_line(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "pair"
    assert main(["synth", str(out), "--preset", "tiny", "--size", "64", "--split", "interleaved",
                 "--parcel-scale", "0.6", "--speckle-correlation-px", "0"]) == 0
    assert (out / "lem1920" / "scene.yaml").is_file()
    code = main(["synth", str(tmp_path / "bad"), "--preset", "tiny", "--size", "64", "--parcel-scale", "9"])
    err = capsys.readouterr().err
    assert code != 0 and "parcel scale" in err and "Traceback" not in err
    assert not (tmp_path / "bad").exists()
