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
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from scipy.ndimage import uniform_filter

from tropicrop.config.models import PixelOptions  # model.options of lightgbm, a config schema
from tropicrop.errors import ConfigError, RunError
from tropicrop.io.files import atomic_path, write_json
from tropicrop.layout import RunLayout
from tropicrop.metrics import scores_from_confusion
from tropicrop.results import ROUNDS, NetResult
from tropicrop.runfiles import (
    CAP,
    EARLY_STOPPING,
    RETRAIN,
    read_json,
)
from tropicrop.valprofile import build_profile, write_profile
from tropicrop.windows.dates import day_of_year, target_window
from tropicrop.windows.normalize import Normalizer

ALL_MONTHS = "all-months"  # the net name of an all-months run (as in tropicrop.training)
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
                    with_doy: bool, missing: np.ndarray | None = None) -> np.ndarray:
    """(H*W, length*C [+ 2]) features at ``target``: the window's normalised images (``images`` (T, C, H, W)
    over ``dates``; padded steps and months without acquisition (``missing``) are missing) and, ``with_doy``,
    the target's day of year as (sin, cos)."""
    win = target_window(dates, target, length, missing)
    return pixel_features(images, win.indices, day_of_year(target) if with_doy else None)


def pixel_features(images: np.ndarray, rows: Sequence[int] | np.ndarray, doy: int | None) -> np.ndarray:
    """(h*w, len(rows)*C [+ 2]) float32 features of one window: step t is image ``rows[t]`` of ``images``
    (N, C, h, w) normalised (-1: a padded step, all missing); with ``doy`` the target's day of year as
    (sin, cos) of a 365.25-day year."""
    t, c, h, w = len(rows), images.shape[1], images.shape[2], images.shape[3]
    x = np.full((t, c, h * w), MISSING, np.float32)
    for step, i in enumerate(rows):
        if i >= 0:
            x[step] = images[int(i)].reshape(c, -1)
    parts = [x.reshape(t * c, -1)]
    if doy is not None:
        angle = 2 * np.pi * doy / 365.25
        parts.append(np.repeat(np.array([[np.sin(angle)], [np.cos(angle)]], np.float32), h * w, axis=1))
    return np.concatenate(parts).T


# ------------------------------------------------------------------------------------------ models
@runtime_checkable
class PixelModel(Protocol):
    """A trained per-pixel classifier, as prediction serves it (``inference.kinds.PixelPredictor``): a new
    per-pixel model is one class with these members (features: :func:`pixel_features`)."""

    @property
    def looks(self) -> int:
        """Side of the mean filter its features were made with: its context radius is ``looks // 2``."""
        ...

    @property
    def with_doy(self) -> bool:
        """Whether its features end with the target's day of year (an all-months model)."""
        ...

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Probabilities (n, K - 1) of classes 1..K-1 for features (n, F)."""
        ...


@dataclass(frozen=True)
class LightGBMPixels:
    """One LightGBM booster of a run (``nets/NAME/model.txt``) as a :class:`PixelModel`."""

    booster: Any
    looks: int
    with_doy: bool
    threads: int = 0

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        scores = np.asarray(self.booster.predict(features, num_threads=self.threads))
        return scores if scores.ndim == 2 else scores.reshape(-1, len(features)).T

    @classmethod
    def load(cls, path: Path, options: PixelOptions, with_doy: bool) -> LightGBMPixels:
        """The booster in LightGBM's text file ``path``; RunError naming it if it is not one."""
        import lightgbm as lgb

        try:
            booster = lgb.Booster(model_file=str(path))
        except lgb.basic.LightGBMError as exc:
            raise RunError(path, f"is not a LightGBM model file ({str(exc).splitlines()[0]})", RETRAIN) from None
        return cls(booster, options.looks, with_doy, options.threads)


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


def _as_matrix(scores: np.ndarray, n: int) -> np.ndarray:
    """(n, K) LightGBM multiclass probabilities from (n, K) or flat class-major (K * n)."""
    return scores if scores.ndim == 2 else scores.reshape(-1, n).T


def _argmax(scores: np.ndarray, n: int) -> np.ndarray:
    """Class index per sample from LightGBM multiclass scores: (n, K), or flat class-major (K * n)."""
    return _as_matrix(scores, n).argmax(axis=1)


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
        train = _patch_pixels(part.train_origins, size, shape) & usable
        val = _patch_pixels(part.val_origins, size, shape) & usable
        if part.held_out is not None:  # data.val_split: fields: validation is the validation fields' pixels
            train &= ~part.held_out
            val &= part.held_out
        areas.append({"train": train, "val": val})
    return PixelData(opts, images, areas, data.classes.num_classes, np.random.default_rng(cfg.seed))


def _pixel_sets(cfg: Any, data: Any, pixels: PixelData, targets: list[list[dt.date]],
                with_doy: bool) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], np.ndarray]:
    """Features and class indices (0-based) of the training and validation pixels at ``targets``, and each
    validation pixel's target month (for the calibration profile)."""
    opts = pixels.options
    sets = {}
    val_months: list[np.ndarray] = []  # each validation pixel's target month (calibration profile)
    for part in ("train", "val"):
        xs, ys = [], []
        for scene_data, images, areas, dates in zip(data.scenes, pixels.images, pixels.areas, targets, strict=True):
            tensors, area = scene_data.tensors, areas[part]
            for target in dates:
                labels = tensors.labels[tensors.label_dates.index(target)]
                idx = np.flatnonzero(area & (labels > 0))
                if part == "train" and idx.size > opts.max_pixels:
                    idx = pixels.rng.choice(idx, opts.max_pixels, replace=False)
                feats = window_features(images, tensors.dates, target, cfg.data.sequence_length, with_doy,
                                        tensors.missing)
                xs.append(feats[idx])
                ys.append(labels.ravel()[idx].astype(np.int64) - 1)
                if part == "val":
                    val_months.append(np.full(idx.size, target.month, np.int64))
        sets[part] = (np.concatenate(xs), np.concatenate(ys))
    return sets, np.concatenate(val_months) if val_months else np.zeros(0, np.int64)


def train_booster(cfg: Any, data: Any, pixels: PixelData, name: str, targets: list[list[dt.date]], with_doy: bool,
                  net_dir: Path, config_path: Path | None = None) -> NetResult:
    """Train net ``name`` (its ``targets`` in each scene of ``data``) into ``net_dir``: model.txt, then
    result.json, which marks it done (a finished net is read back, not trained again). Returns the net's result."""
    import lightgbm as lgb

    from tropicrop.trainingdata import net_scenes

    if (net_dir / "result.json").is_file():
        return NetResult.from_dict(read_json(net_dir / "result.json"), net_dir / "result.json")
    opts, k = pixels.options, pixels.num_classes
    sets, val_months = _pixel_sets(cfg, data, pixels, targets, with_doy)
    (x_train, y_train), (x_val, y_val) = sets["train"], sets["val"]
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
        val_scores = _as_matrix(np.asarray(booster.predict(x_val, num_iteration=best)), len(y_val))
        val_f1 = _macro_f1(y_val + 1, val_scores.argmax(axis=1) + 1, k)
    net_dir.mkdir(parents=True, exist_ok=True)
    if len(y_val):  # calibration: a temperature on the booster's log-probabilities (tropicrop.valprofile)
        write_profile(net_dir, build_profile(np.log(np.maximum(val_scores, 1e-12)), y_val,
                                             val_months, cfg.seed))
    with atomic_path(net_dir / "model.txt") as tmp:
        booster.save_model(str(tmp), num_iteration=best)
    result = NetResult(
        name=name, targets=sorted({t.isoformat() for dates in targets for t in dates}), best_val_f1=val_f1,
        length=int(best), unit=ROUNDS,
        stopped_by=EARLY_STOPPING if booster.current_iteration() < opts.n_estimators else CAP,
        train_patches=data.train_patches, val_patches=data.val_patches, train_seconds=seconds,
        scenes=net_scenes(data, targets, cfg.data.patch_size),
        details={"model_file": "model.txt", "train_pixels": len(y_train), "val_pixels": len(y_val)})
    write_json(net_dir / "result.json", result.to_dict())
    return result


class BoosterTrainer:
    """The trainer of a per-pixel LightGBM run: the pixels of the networks' own patches, one booster per net."""

    kind = "pixel"

    def __init__(self) -> None:
        self._pixels: PixelData | None = None

    def parameters(self, cfg: Any, in_channels: int, num_classes: int) -> int | None:
        """None: a booster's size (trees grown until early stopping) is not a network's parameter count."""
        return None

    def prepare(self, cfg: Any, data: Any, config_path: Path | None = None) -> None:
        """Read the training pixels once for every net of the run."""
        self._pixels = prepare_pixels(cfg, data, config_path)

    def train(self, cfg: Any, data: Any, name: str, targets: list[list[dt.date]], net_dir: Path,
              config_path: Path | None = None) -> NetResult:
        if self._pixels is None:
            self.prepare(cfg, data, config_path)
        assert self._pixels is not None
        return train_booster(cfg, data, self._pixels, name, targets, name == ALL_MONTHS, net_dir, config_path)


# ------------------------------------------------------------------------------------------ loading
def load_pixel_models(run: RunLayout, model_cfg: dict[str, Any],
                      data_cfg: dict[str, Any]) -> list[tuple[str, dt.date | None, LightGBMPixels]]:
    """Every per-pixel model of a finished classical run, as (net name, target date or None, model), sorted
    by name; RunError naming the file for a damaged one or a run without any."""
    options = PixelOptions.from_options(dict(model_cfg.get("options") or {}), run.config)
    models = []
    for path in sorted(run.nets.glob("*/model.txt")):
        name = path.parent.name
        try:
            target = None if name == ALL_MONTHS else dt.date.fromisoformat(name)
        except ValueError:
            raise RunError(path.parent, f"is named {name!r}, neither {ALL_MONTHS} nor a target date", RETRAIN) from None
        models.append((name, target, LightGBMPixels.load(path, options, with_doy=target is None)))
    if not models:
        raise RunError(run.root, "holds no nets/*/model.txt", RETRAIN)
    if any(target is None for _, target, _ in models) and len(models) > 1:
        raise RunError(run.root, "mixes an all-months model with per-month ones", "train it again with --force")
    return models


PIXEL_TRAINERS: dict[str, type[BoosterTrainer]] = {"lightgbm": BoosterTrainer}
"""The trainer of each per-pixel model name (``model.name``); every other name is a registered network."""


def scaled(probs: np.ndarray, temperature: float) -> np.ndarray:
    """(n, K) probabilities ``softmax(log p / T)``: a booster's probabilities at temperature ``T``
    (``nets/NAME/calibration.json``, :mod:`tropicrop.valprofile`)."""
    if temperature == 1.0:
        return probs
    z = np.log(np.maximum(probs, 1e-12)) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out
