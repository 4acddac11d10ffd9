"""Several scenes in one training run (``data.scene`` a list): classes by name, one normalisation, patches,
caches and per-month networks per scene, predictions from the run."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from tiny import DATES, quick_config, tiny_arrays
from tropicrop.cli import main
from tropicrop.errors import SceneError
from tropicrop.inference import predict_run
from tropicrop.layout import RunLayout
from tropicrop.scene import TRAIN, load_scene
from tropicrop.training import TargetDataModule, net_names, train
from tropicrop.trainingdata import prepare_data, scene_cache_folder

MakeScene = Callable[..., Path]
# year B: another year, other days of the month, other codes for the same names, another size and grid
DATES_B = [dt.date(2020, 9, 20), dt.date(2020, 10, 14), dt.date(2020, 11, 15), dt.date(2020, 12, 21)]
CLASSES_B = {5: "Maize", 7: "Soybean", 9: "Cotton"}
CODES_B = np.array([0, 5, 7, 9], dtype=np.uint8)  # tiny_arrays' codes 0..3 -> year B's codes


def scene_b(make_scene: MakeScene, **overrides: object) -> Path:
    """A 24 x 28 scene of another year, class table and CRS, labelled at its last two dates."""
    arrays = tiny_arrays(h=24, w=28, seed=3)
    labels = {d: CODES_B[lab] for d, lab in zip(DATES_B[2:], arrays["labels"].values(), strict=True)}
    kwargs: dict[str, object] = dict(images=arrays["images"] + 2.0, split=arrays["split"], labels=labels,
                                     dates=DATES_B, classes=CLASSES_B, crs="EPSG:32722",
                                     transform=Affine(20.0, 0.0, 500000.0, 0.0, -20.0, 9000000.0))
    kwargs.update(overrides)
    return make_scene(**kwargs)


def two_scene_config(a: Path, b: Path, **overrides: object):  # type: ignore[no-untyped-def]
    return quick_config(a, **{"data.scene": f"['{a}', '{b}']", "data.patch_size": 8, "data.stride": 4,
                              "data.other_threshold": 0.0, **overrides})


def test_classes_are_matched_by_name_and_one_normalisation_is_fitted_over_both(make_scene: MakeScene, tmp_path: Path) -> None:
    a, b = make_scene(), scene_b(make_scene)
    cfg = two_scene_config(a, b)
    data = prepare_data(cfg)
    names = list(data.classes.names)
    assert sorted(names[1:]) == ["Cotton", "Maize", "Soil", "Soybean"]  # the union by name
    # scene B's code 5 (Maize) and scene A's code 2 (Maize) are the same model class
    part_b = data.scenes[1]
    raw_b = load_scene(b).read_labels(part_b.window)
    split_b = load_scene(b).read_split(part_b.window)
    labels_b = np.asarray(part_b.tensors.labels)
    on_train = split_b == TRAIN
    assert set(np.unique(labels_b[raw_b == 5][np.broadcast_to(on_train, raw_b.shape)[raw_b == 5]])) == {names.index("Maize")}
    assert set(np.unique(labels_b[raw_b == 9][np.broadcast_to(on_train, raw_b.shape)[raw_b == 9]])) == {names.index("Cotton")}
    # the normalisation of the train pixels of both scenes together, all dates
    values = []
    for path in (a, b):
        scene = load_scene(path)
        images, split = scene.read_images(), scene.read_split()
        values.append(np.moveaxis(images[:, :, split == TRAIN], 1, 0).reshape(2, -1))
    both = np.concatenate(values, axis=1).astype(np.float64)
    np.testing.assert_allclose(data.normalizer.mean, both.mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(data.normalizer.std, both.std(axis=1), rtol=1e-6)
    assert abs(data.normalizer.mean[0] - float(values[0][0].mean())) > 0.3  # scene B is 2 dB higher: both count
    # patches from both scenes, each inside its own scene
    assert len(part_b.train_origins) and len(data.scenes[0].train_origins)
    assert part_b.tensors.labels.shape[-2:] != data.scenes[0].tensors.labels.shape[-2:]
    cached = prepare_data(cfg, cache_dir=tmp_path / "cache")
    np.testing.assert_allclose(cached.normalizer.mean, data.normalizer.mean, rtol=1e-6)
    np.testing.assert_allclose(cached.normalizer.std, data.normalizer.std, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(cached.scenes[1].tensors.labels), labels_b)


def test_the_data_module_draws_batches_from_both_scenes(make_scene: MakeScene) -> None:
    a, b = make_scene(), scene_b(make_scene)
    cfg = two_scene_config(a, b, **{"optim.batch_size": 2})
    data = prepare_data(cfg)
    [(name, targets)] = net_names(cfg, data)
    assert name == "all-months" and targets == [DATES[2:], DATES_B[2:]]
    batches = TargetDataModule(data, targets, cfg).train_dataloader().dataset
    last_doy = [int(batches[n]["doy"][0, -1]) for n in range(40)]
    doy_of = {d: d.timetuple().tm_yday for d in [*DATES[2:], *DATES_B[2:]]}
    assert set(last_doy) == set(doy_of.values())  # every date of both scenes (321, 357 of A; 320, 356 of B)
    # drawn in proportion to each scene's training patches per date
    share_b = sum(d in (doy_of[DATES_B[2]], doy_of[DATES_B[3]]) for d in last_doy) / len(last_doy)
    expected_b = len(data.scenes[1].train_origins) / (len(data.scenes[0].train_origins) + len(data.scenes[1].train_origins))
    assert abs(share_b - expected_b) < 0.25, (share_b, expected_b)
    val = TargetDataModule(data, targets, cfg).val_dataloader()
    assert len(val) > 0


def test_a_scene_with_other_bands_is_one_line_naming_it(make_scene: MakeScene, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    a = make_scene()
    arrays = tiny_arrays()
    b = make_scene(bands=("VV",), images=arrays["images"][:, :1])
    with pytest.raises(SceneError, match=r"has bands \['VV'\], but .* has \['VV', 'VH'\]"):
        prepare_data(two_scene_config(a, b))
    code = main(["train", "-c", str(Path(__file__).parents[1] / "configs" / "quick.yaml"), "--run-dir",
                 str(tmp_path / "run"), "--set", f"data.scene=['{a}', '{b}']"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and str(b / "scene.yaml") in err[0] and "bands" in err[0], err


def test_per_month_networks_of_two_years_take_each_scene_s_date_of_the_month(make_scene: MakeScene) -> None:
    a, b = make_scene(), scene_b(make_scene)
    cfg = two_scene_config(a, b, mode="per-month")
    nets = net_names(cfg, prepare_data(cfg))
    assert nets == [("2019-11-17", [[dt.date(2019, 11, 17)], [dt.date(2020, 11, 15)]]),
                    ("2019-12-23", [[dt.date(2019, 12, 23)], [dt.date(2020, 12, 21)]])]
    # data.targets picks dates of any scene; a scene left without one is named
    cfg.data.targets = [dt.date(2019, 12, 23), dt.date(2020, 12, 21)]
    assert net_names(cfg, prepare_data(cfg)) == [("2019-12-23", [[dt.date(2019, 12, 23)], [dt.date(2020, 12, 21)]])]
    cfg.data.targets = [dt.date(2019, 12, 23)]
    with pytest.raises(Exception, match=f"none of data.targets is labelled in {b}"):
        prepare_data(cfg)


def test_two_scenes_have_their_own_cache_reused_on_resume(make_scene: MakeScene, tmp_path: Path) -> None:
    a, b = make_scene(), make_scene()  # two scenes of one name ('tiny') in different folders
    assert load_scene(a).name == load_scene(b).name
    cache = tmp_path / "cache"
    assert scene_cache_folder(cache, load_scene(a)) != scene_cache_folder(cache, load_scene(b))
    cfg = two_scene_config(a, b)
    first = prepare_data(cfg, cache_dir=cache)
    folders = sorted(p for p in cache.iterdir())
    assert len(folders) == 2
    keys = [json.loads((f / "cache.json").read_text())["key"]["scene"] for f in folders]
    assert sorted(keys) == sorted(str(p.resolve()) for p in (a, b))
    stamps = [(f / "images.npy").stat().st_mtime_ns for f in folders]
    again = prepare_data(cfg, first.classes, first.normalizer, cache_dir=cache)  # what a resumed run does
    assert [(f / "images.npy").stat().st_mtime_ns for f in folders] == stamps
    assert again.normalizer == first.normalizer
    for one, other in zip(first.scenes, again.scenes, strict=True):
        np.testing.assert_array_equal(one.train_origins, other.train_origins)


def test_lightgbm_trains_on_two_scenes(make_scene: MakeScene, tmp_path: Path) -> None:
    a, b = make_scene(), scene_b(make_scene)
    cfg = two_scene_config(a, b, **{"model.name": "lightgbm"})
    cfg.model.options = {"looks": 1, "n_estimators": 5, "threads": 1}
    summary = train(cfg, tmp_path / "gbm")
    net = summary.nets["all-months"]
    assert [s["scene"] for s in net.scenes] == [str(a), str(b)] and net.details["train_pixels"] > 0
    assert summary.scene == [str(a), str(b)]


@pytest.mark.slow
def test_a_two_year_per_month_run_records_its_scenes_and_predicts(make_scene: MakeScene, tmp_path: Path) -> None:
    a, b = make_scene(), scene_b(make_scene)
    cfg = two_scene_config(a, b, mode="per-month", **{"model.name": "unet_convlstm", "trainer.max_epochs": 1,
                                                      "trainer.steps_per_epoch": 2})
    run = tmp_path / "run"
    summary = train(cfg, run)
    assert summary.scene == [str(a), str(b)]
    assert [s["scene"] for s in summary.scenes] == [str(a), str(b)]
    assert all(s["train_patches"] > 0 for s in summary.scenes)
    assert summary.train_patches == sum(s["train_patches"] for s in summary.scenes)
    assert sorted(json.loads(RunLayout(run).classes.read_text())["names"][1:]) == ["Cotton", "Maize", "Soil", "Soybean"]
    assert sorted(summary.nets) == ["2019-11-17", "2019-12-23"]
    december = json.loads(RunLayout(run).net_result("2019-12-23").read_text())
    assert [(s["scene"], s["targets"]) for s in december["scenes"]] == [(str(a), ["2019-12-23"]), (str(b), ["2020-12-21"])]
    assert not RunLayout(run).cache.exists()
    # the run predicts either year: its nets are found by month
    maps = predict_run(run, b, tmp_path / "out", progress=False)
    assert [p.stem for p in maps] == ["20201115", "20201221"]
    with rasterio.open(maps[-1]) as ds:
        assert (ds.height, ds.width) == (24, 28)


def test_adaptation_compares_with_the_class_shares_of_every_training_scene() -> None:
    from tropicrop.adaptation.timeshift import ClassShares, merge_shares

    a, b = ClassShares((50,), ((0.5, 0.5),)), ClassShares((200,), ((0.9, 0.1),))
    both = merge_shares([a, b])
    assert both is not None and both.at(55).tolist() == [0.5, 0.5] and both.at(190).tolist() == [0.9, 0.1]
    assert merge_shares([]) is None
