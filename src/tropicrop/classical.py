"""The classical floor: a per-pixel LightGBM classifier on the same 12-date windows, classes and splits.

Every deep network of the protocol is measured against it. It follows the networks' run layout and
options so that ``tropicrop train`` / ``predict`` / ``experiment`` use it like any model
(``model.name: lightgbm``): per-month mode trains one booster per labelled date, all-months mode one
booster on every labelled date with the target's day of year as (sin, cos). Features of a pixel are the
normalised VV/VH dB values of the window's ``sequence_length`` dates (missing for padding, which LightGBM
handles natively), after an optional ``looks`` x ``looks`` mean of the normalised dB images (a cheap
stand-in for the spatial context of the convolutional networks). Training and validation pixels are the
labelled pixels of the networks' own training and validation patches (``trainingdata.prepare_data``, of
one scene or several), and the boosting stops early on validation macro F1, the networks' stopping rule.
Models are saved in LightGBM's text format (never pickle)::

    RUN/config.yaml, classes.json, normalization.json, result.json     as for the networks
    RUN/nets/NAME/model.txt, result.json                               one booster per network
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.windows import Window
from scipy.ndimage import uniform_filter
from tqdm import tqdm

from tropicrop.classes import ClassTable
from tropicrop.config.models import PixelOptions  # model.options of lightgbm, a config schema
from tropicrop.errors import ConfigError, RunError, SceneError
from tropicrop.inference.dates import default_dates
from tropicrop.inference.mapfiles import NODATA, Outputs, write_classes, write_cog, write_quicklook
from tropicrop.io.files import atomic_path, write_json
from tropicrop.layout import PredictionLayout, RunLayout, stamp
from tropicrop.metrics import scores_from_confusion
from tropicrop.palette import class_colors
from tropicrop.runfiles import (
    CAP,
    EARLY_STOPPING,
    RETRAIN,
    read_class_table,
    read_json,
    read_normalizer,
    read_run_result,
    read_yaml_mapping,
)
from tropicrop.scene import Scene, load_scene
from tropicrop.windows.dates import day_of_year, target_window
from tropicrop.windows.normalize import Normalizer

CLASSICAL_MODELS = ("lightgbm",)
"""Model names served by this module rather than the network registry."""
MISSING = np.nan


def is_classical(name: str) -> bool:
    """Whether ``model.name`` is a classical (non-network) model."""
    return name in CLASSICAL_MODELS


# ------------------------------------------------------------------------------------------ features
def normalise(images_db: np.ndarray, normalizer: Normalizer, looks: int) -> np.ndarray:
    """(T, C, H, W) dB -> standardised values, ``looks`` x ``looks`` mean filtered; no-data stays NaN."""
    mean = np.asarray(normalizer.mean, np.float32)[:, None, None]
    std = np.asarray(normalizer.std, np.float32)[:, None, None]
    x = ((images_db - mean) / std).astype(np.float32)
    if looks > 1:
        nan = ~np.isfinite(x)
        x = uniform_filter(np.where(nan, 0.0, x), size=(1, 1, looks, looks), mode="nearest").astype(np.float32)
        x[nan] = MISSING
    return x


def window_features(images: np.ndarray, dates: Sequence[dt.date], target: dt.date, length: int,
                    with_doy: bool) -> np.ndarray:
    """(H*W, length*C [+ 2]) features at ``target``: the window's normalised images (``images`` (T, C, H, W)
    over ``dates``; padded steps are missing) and, ``with_doy``, the target's day of year as (sin, cos)."""
    win = target_window(dates, target, length)
    t, c, h, w = len(win.indices), images.shape[1], images.shape[2], images.shape[3]
    x = np.full((t, c, h * w), MISSING, np.float32)
    for step, i in enumerate(win.indices):
        if i >= 0:
            x[step] = images[int(i)].reshape(c, -1)
    parts = [x.reshape(t * c, -1)]
    if with_doy:
        angle = 2 * np.pi * day_of_year(target) / 365.25
        parts.append(np.repeat(np.array([[np.sin(angle)], [np.cos(angle)]], np.float32), h * w, axis=1))
    return np.concatenate(parts).T


# ------------------------------------------------------------------------------------------ training
def _patch_pixels(origins: np.ndarray, size: int, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: pixels covered by any patch of ``origins``."""
    covered = np.zeros(shape, bool)
    for r, c in origins:
        covered[r:r + size, c:c + size] = True
    return covered


def _macro_f1(truth: np.ndarray, pred: np.ndarray, k: int) -> float:
    """Macro F1 (classes present in truth or prediction) of class indices in 0..k-1."""
    cm = np.bincount(truth * k + pred, minlength=k * k).reshape(k, k)
    import torch

    f1 = scores_from_confusion(torch.from_numpy(cm)).macro_f1
    return 0.0 if np.isnan(f1) else float(f1)


def _argmax(scores: np.ndarray, n: int) -> np.ndarray:
    """Class index per sample from LightGBM multiclass scores: (n, K), or flat class-major (K * n)."""
    return (scores if scores.ndim == 2 else scores.reshape(-1, n).T).argmax(axis=1)


@dataclass
class PixelData:
    """What every booster of a run learns from: its options, and per training scene the normalised images
    of its training window and its training and validation pixel areas; the pixel sampler."""

    options: PixelOptions
    images: list[np.ndarray]
    areas: list[dict[str, np.ndarray]]
    num_classes: int
    rng: np.random.Generator


def prepare_pixels(cfg: Any, data: Any, config_path: Path | None = None) -> PixelData:
    """Pixels of ``data`` (``trainingdata.PreparedData`` of ``cfg``, a ``training.TrainConfig``): the
    labelled pixels of the networks' own training and validation patches, in each training scene."""
    opts = PixelOptions.from_options(dict(cfg.model.options), config_path)
    size = cfg.data.patch_size
    images, areas = [], []
    for part in data.scenes:
        images.append(normalise(part.scene.read_images(part.window), data.normalizer, opts.looks))
        shape = part.tensors.labels.shape[-2:]
        # a pixel whose mean filter could reach an unusable (test) pixel is left out, so no test input leaks
        usable = uniform_filter(part.tensors.usable.astype(np.float32), size=opts.looks, mode="nearest") > 0.999
        areas.append({"train": _patch_pixels(part.train_origins, size, shape) & usable,
                      "val": _patch_pixels(part.val_origins, size, shape) & usable})
    return PixelData(opts, images, areas, data.classes.num_classes, np.random.default_rng(cfg.seed))


def train_booster(cfg: Any, data: Any, pixels: PixelData, name: str, targets: list[list[dt.date]], with_doy: bool,
                  net_dir: Path, config_path: Path | None = None) -> dict[str, Any]:
    """Train net ``name`` (its ``targets`` in each scene of ``data``) into ``net_dir``: model.txt, then
    result.json, which marks it done (a finished net is read back, not trained again). Returns the net's result."""
    import lightgbm as lgb

    from tropicrop.trainingdata import net_scenes

    if (net_dir / "result.json").is_file():
        return dict(read_json(net_dir / "result.json"))
    opts, k = pixels.options, pixels.num_classes
    sets = {}
    for part in ("train", "val"):
        xs, ys = [], []
        for scene_data, images, areas, dates in zip(data.scenes, pixels.images, pixels.areas, targets, strict=True):
            tensors, area = scene_data.tensors, areas[part]
            for target in dates:
                labels = tensors.labels[tensors.label_dates.index(target)]
                idx = np.flatnonzero(area & (labels > 0))
                if part == "train" and idx.size > opts.max_pixels:
                    idx = pixels.rng.choice(idx, opts.max_pixels, replace=False)
                feats = window_features(images, tensors.dates, target, cfg.data.sequence_length, with_doy)
                xs.append(feats[idx])
                ys.append(labels.ravel()[idx].astype(np.int64) - 1)
        sets[part] = (np.concatenate(xs), np.concatenate(ys))
    x_train, y_train = sets["train"]
    x_val, y_val = sets["val"]
    if len(y_train) == 0:
        raise ConfigError(config_path, f"net {name}: no labelled training pixel", "check the split and labels")
    params = {
        "objective": "multiclass", "num_class": k - 1, "learning_rate": opts.learning_rate,
        "num_leaves": opts.num_leaves, "min_child_samples": opts.min_child_samples,
        "feature_fraction": opts.feature_fraction, "bagging_fraction": 0.8, "bagging_freq": 1, "seed": cfg.seed,
        "num_threads": opts.threads, "verbose": -1, "deterministic": True, "force_row_wise": True,
        "metric": "None" if len(y_val) else "multi_logloss",      # stop on macro F1 alone, as the networks do
    }
    start = time.perf_counter()
    train_set = lgb.Dataset(x_train, y_train, free_raw_data=False)
    extra: dict[str, Any] = {}
    if len(y_val):
        def f1_metric(scores: np.ndarray, dataset: Any) -> tuple[str, float, bool]:
            truth = dataset.get_label().astype(np.int64)
            return "macro_f1", _macro_f1(truth + 1, _argmax(scores, len(truth)) + 1, k), True

        extra = {"valid_sets": [lgb.Dataset(x_val, y_val, reference=train_set)], "valid_names": ["val"],
                 "feval": f1_metric,
                 "callbacks": [lgb.early_stopping(opts.early_stopping, first_metric_only=True, verbose=False)]}
    booster = lgb.train(params, train_set, num_boost_round=opts.n_estimators, **extra)
    seconds = time.perf_counter() - start
    best = booster.best_iteration or booster.current_iteration()
    val_f1 = None
    if len(y_val):
        val_pred = _argmax(np.asarray(booster.predict(x_val, num_iteration=best)), len(y_val))
        val_f1 = _macro_f1(y_val + 1, val_pred + 1, k)
    net_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(net_dir / "model.txt") as tmp:
        booster.save_model(str(tmp), num_iteration=best)
    result = {"name": name, "targets": sorted({t.isoformat() for dates in targets for t in dates}),
              "model_file": "model.txt", "best_val_f1": val_f1, "rounds": int(best), "train_pixels": len(y_train),
              "stopped_by": EARLY_STOPPING if booster.current_iteration() < opts.n_estimators else CAP,
              "val_pixels": len(y_val), "train_patches": data.train_patches, "val_patches": data.val_patches,
              "scenes": net_scenes(data, targets, cfg.data.patch_size), "train_seconds": seconds}
    write_json(net_dir / "result.json", result)
    return result


# ------------------------------------------------------------------------------------------ prediction
@dataclass
class PixelRun:
    """A trained classical run: boosters by net name, class table, normalisation, options."""

    root: Path
    mode: str
    boosters: dict[str, Any]
    classes: ClassTable
    normalizer: Normalizer
    sequence_length: int
    options: PixelOptions

    def booster_for(self, date: dt.date) -> tuple[Any, bool]:
        """(booster, with day of year) serving ``date``: the all-months one, or the per-month net of its month."""
        if "all-months" in self.boosters:
            return self.boosters["all-months"], True
        for name, booster in self.boosters.items():
            if dt.date.fromisoformat(name).month == date.month:
                return booster, False
        raise RunError(self.root, f"has no per-month model for {date:%B} ({date})",
                       f"its models: {', '.join(sorted(self.boosters))}")


def is_classical_run(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a classical run (its config.yaml names a classical model)."""
    path = RunLayout(Path(run_dir)).config
    if not path.is_file():
        return False
    model = read_yaml_mapping(path).get("model")
    return isinstance(model, dict) and is_classical(str(model.get("name", "")))


def load_pixel_run(run_dir: Path) -> PixelRun:
    """Load a finished classical run through ``runfiles`` (each file checked); no Lightning, no torch."""
    import lightgbm as lgb

    run = RunLayout(Path(run_dir))
    if not run.result.is_file():
        raise RunError(run.root, "holds no finished classical run", "train it first: tropicrop train -c CONFIG --run-dir RUN")
    read_run_result(run)  # a damaged or newer-format summary is refused here
    cfg = read_yaml_mapping(run.config)
    model, data = cfg.get("model") or {}, cfg.get("data") or {}
    boosters = {}
    for net in sorted(run.nets.glob("*/model.txt")):
        try:
            boosters[net.parent.name] = lgb.Booster(model_file=str(net))
        except lgb.basic.LightGBMError as exc:
            raise RunError(net, f"is not a LightGBM model file ({str(exc).splitlines()[0]})", RETRAIN) from None
    if not boosters:
        raise RunError(run.root, "holds no nets/*/model.txt", RETRAIN)
    return PixelRun(run.root, str(cfg.get("mode", "per-month")), boosters, read_class_table(run.classes),
                    read_normalizer(run.normalization), int(data.get("sequence_length", 12)),
                    PixelOptions.from_options(dict(model.get("options") or {}), run.config))


def check_scene_bands(run: PixelRun, scene: Scene) -> None:
    """SceneError when ``scene`` has another band count than the run was trained on (the networks' check)."""
    if scene.num_bands != len(run.normalizer.mean):
        raise SceneError(scene.manifest.path, f"has {scene.num_bands} band(s) {list(scene.bands)} but the run was "
                         f"trained on {len(run.normalizer.mean)}", "predict a scene with the training scene's bands")


def predict_classical(run_dir: Path, scene: Scene | Path, out: Path, dates: Sequence[dt.date] | None = None,
                      progress: bool = True, block_pixels: int = 262144) -> list[Path]:
    """Class maps ``OUT/maps/YYYYMMDD.tif`` (COG + PNG, as the networks') of ``scene`` with a classical run.

    Streams row blocks of about ``block_pixels`` pixels (with a halo for the mean filter), so memory does not
    grow with the scene. ``dates`` defaults as for the networks (labelled dates; per-month: served months).
    """
    run = load_pixel_run(Path(run_dir))
    scene = scene if isinstance(scene, Scene) else load_scene(scene)
    check_scene_bands(run, scene)
    if dates is None:
        dates = default_dates(scene, run.sequence_length)
        if run.mode != "all-months":
            served = [d for d in dates if any(dt.date.fromisoformat(n).month == d.month for n in run.boosters)]
            if len(served) < len(dates):
                warnings.warn(f"{run_dir}: no per-month model for {', '.join(str(d) for d in dates if d not in served)}; "
                              "not predicted", stacklevel=2)
            if not served:
                run.booster_for(dates[0])      # raises RunError naming the run's models
            dates = served
    out = Path(out)
    layout = PredictionLayout(out)
    layout.maps.mkdir(parents=True, exist_ok=True)
    write_classes(out, run.classes)
    grid = scene.grid
    names = list(run.classes.names)
    rows = max(1, block_pixels // max(grid.width, 1))
    halo = run.options.looks // 2
    start = time.perf_counter()
    paths = []
    with tempfile.TemporaryDirectory(dir=out) as scratch:
        scratch_paths = [Path(scratch) / f"{stamp(d)}.tif" for d in dates]
        profile = {"driver": "GTiff", "width": grid.width, "height": grid.height, "count": 1, "dtype": "uint8",
                   "crs": grid.crs, "transform": grid.transform, "nodata": NODATA}
        sinks = [rasterio.open(p, "w", **profile) for p in scratch_paths]
        try:
            for r0 in tqdm(range(0, grid.height, rows), desc="classical predict", disable=not progress):
                top, bottom = max(0, r0 - halo), min(grid.height, r0 + rows + halo)
                raw = scene.read_images(Window(0, top, grid.width, bottom - top))
                keep = slice(r0 - top, r0 - top + min(rows, grid.height - r0))
                images = normalise(raw, run.normalizer, run.options.looks)[..., keep, :]
                h = images.shape[-2]
                for sink, d in zip(sinks, dates, strict=True):
                    booster, with_doy = run.booster_for(d)
                    feats = window_features(images, scene.dates, d, run.sequence_length, with_doy)
                    scores = np.asarray(booster.predict(feats, num_threads=run.options.threads))
                    codes = (_argmax(scores, len(feats)) + 1).astype(np.uint8)
                    has_data = np.isfinite(feats[:, :-2] if with_doy else feats).any(axis=1)
                    codes[~has_data] = NODATA
                    sink.write(codes.reshape(h, grid.width), 1, window=Window(0, r0, grid.width, h))
        finally:
            for sink in sinks:
                sink.close()
        colors = class_colors(names)
        for src, d in zip(scratch_paths, dates, strict=True):
            with rasterio.open(src, "r+") as ds:
                ds.write_colormap(1, colors)
            outputs = Outputs.of(out, d, probabilities=False)
            with atomic_path(outputs.map) as tmp:
                write_cog(src, tmp, "MODE")
                write_quicklook(tmp, outputs.png, names, f"{run.root.name}: {d}")
            paths.append(outputs.map)
    seconds = time.perf_counter() - start
    log = layout.log
    sessions = read_json(log, "delete it (it only logs earlier predictions) and predict again") if log.is_file() else []
    if not isinstance(sessions, list):
        raise RunError(log, "is not a prediction log (a JSON list)", "delete it and predict again")
    sessions.append({"run": str(run.root), "scene": str(scene.root), "model": "lightgbm", "seconds": round(seconds, 3),
                     "dates": [d.isoformat() for d in dates]})
    write_json(log, sessions)
    return paths
