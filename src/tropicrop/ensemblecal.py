"""The ensemble's own temperature: averaging two members that disagree makes the mean under-confident, so
the ensemble fits one temperature of its own on a labelled validation set, as every net does.

The members' validation profiles (``RUN/nets/NAME/calibration.json``) keep counts, not their validation
logits, and the two members do not validate on the same pixels: a network on its validation patches
(overlapping, at most ``data.val_limit`` batches), the booster on the labelled pixels those patches cover,
once each (less those its ``looks`` filter could reach from a test pixel). So the ensemble's validation set is
the labelled pixels, at each target date, covered by BOTH members' validation patches of their training
scene (recomputed from each run's saved configuration: the same seeds give the same patches), and its
log-probabilities there are the log of the mean of the members' calibrated probabilities as written, the
very numbers the ensemble map is made of. No test pixel's label is read.

The temperature scales the log of the mean (floored at :data:`FLOOR`, half the resolution of the mean of
two 1/255 probabilities) and is stored as ``OUT/calibration.json`` beside the ensemble's maps; every
probability the ensemble writes is ``softmax(log(max(p, FLOOR)) / T)``; the map, the argmax of the mean, is
unchanged.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
from rasterio.windows import Window

from tropicrop.calibration import DEFAULT_OBJECTIVE, expected_calibration_error, fit_temperature
from tropicrop.inference.mapfiles import NODATA, PROB_SCALE
from tropicrop.io.files import write_json
from tropicrop.layout import PredictionLayout, RunLayout
from tropicrop.runfiles import RETRAIN, read_class_table, read_json, read_normalizer
from tropicrop.scene import Scene

CALIBRATION_FILE = "calibration.json"
"""The ensemble's temperature and validation figures, in its prediction folder."""
FLOOR = 0.25 / PROB_SCALE
"""Probabilities below this are raised to it before the log (the mean of two 1/255 values has steps of 1/510)."""


def training_scene(run_dir: Path) -> Path:
    """The one scene a member run was trained on (its saved ``data.scene``), resolved."""
    from tropicrop.config import load_config
    from tropicrop.config.training import TrainConfig

    cfg = load_config(TrainConfig, RunLayout(run_dir).config)
    scene = cfg.data.scene if isinstance(cfg.data.scene, str) else cfg.data.scene[0]
    return Path(scene).resolve()


def validation_labels(run_dir: Path) -> dict[dt.date, tuple[Window, np.ndarray]]:
    """Per target date of the run's (first) training scene: the window of its training region and the class
    indices (1..K-1, 0 elsewhere) of the labelled pixels covered by the run's validation patches."""
    from tropicrop.config import load_config
    from tropicrop.config.training import TrainConfig
    from tropicrop.trainingdata import prepare_data

    run = RunLayout(run_dir)
    cfg = load_config(TrainConfig, run.config)
    data = prepare_data(cfg, read_class_table(run.classes, RETRAIN), read_normalizer(run.normalization),
                        run.config)
    part = data.scenes[0]
    covered = np.zeros(part.tensors.labels.shape[-2:], bool)
    size = cfg.data.patch_size
    for r, c in part.val_origins:
        covered[r:r + size, c:c + size] = True
    if part.held_out is not None:  # data.val_split: fields: the validation fields' pixels only
        covered &= part.held_out
    return {d: (part.window, np.where(covered, np.asarray(part.tensors.labels[part.tensors.label_dates.index(d)]), 0))
            for d in part.targets}


def shared_validation(run_dirs: Sequence[Path]) -> dict[dt.date, tuple[Window, np.ndarray]]:
    """The validation pixels every member run has (same date, same scene pixel, same label)."""
    sets = [validation_labels(r) for r in run_dirs]
    shared = {}
    for date in sorted(set.intersection(*(set(s) for s in sets))):
        window, labels = sets[0][date]
        labels = labels.copy()
        for other in sets[1:]:
            labels[~same_pixels(window, labels, *other[date])] = 0
        shared[date] = (window, labels)
    return shared


def same_pixels(window: Window, labels: np.ndarray, other_window: Window, other: np.ndarray) -> np.ndarray:
    """Bool mask over ``labels``: the other member labels the same scene pixel with the same class."""
    same = np.zeros(labels.shape, bool)
    r0, c0 = int(other_window.row_off - window.row_off), int(other_window.col_off - window.col_off)
    rows = slice(max(r0, 0), min(r0 + other.shape[0], labels.shape[0]))
    cols = slice(max(c0, 0), min(c0 + other.shape[1], labels.shape[1]))
    theirs = other[rows.start - r0:rows.stop - r0, cols.start - c0:cols.stop - c0]
    same[rows, cols] = (theirs == labels[rows, cols]) & (theirs > 0)
    return same


def mean_probabilities(members: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """(K, h, w) float probabilities (class 0 zero) and the (h, w) valid mask from members' (codes (h, w),
    uint8 probabilities (K-1, h, w)): the mean of the members' probabilities where every member mapped a
    class, 0 elsewhere."""
    valid = np.logical_and.reduce([codes != NODATA for codes, _ in members])
    mean = np.mean([probs.astype(np.float64) / PROB_SCALE for _, probs in members], axis=0)
    full = np.concatenate([np.zeros((1, *mean.shape[1:])), mean])
    full[:, ~valid] = 0.0
    return full, valid


def validation_log_probabilities(folders: Sequence[Path], validation: dict[dt.date, tuple[Window, np.ndarray]]
                                 ) -> tuple[np.ndarray, np.ndarray]:
    """(N, K-1) log of the mean of the members' probabilities (prediction ``folders`` of the training scene)
    at the shared validation pixels where every member mapped a class, and their 0-based labels (N,)."""
    zs, ys = [], []
    for date, (window, labels) in validation.items():
        if not (labels > 0).any() or not all(PredictionLayout(f).probabilities(date).is_file() for f in folders):
            continue
        with ExitStack() as stack:
            members = []
            for folder in folders:
                layout = PredictionLayout(folder)
                codes = stack.enter_context(rasterio.open(layout.map(date))).read(1, window=window)
                probs = stack.enter_context(rasterio.open(layout.probabilities(date))).read(window=window)
                members.append((codes, probs))
        mean, valid = mean_probabilities(members)
        keep = valid & (labels > 0)
        zs.append(log_probabilities(mean[1:, keep].T))
        ys.append(labels[keep].astype(np.int64) - 1)
    if not zs:
        return np.zeros((0, 0)), np.zeros(0, np.int64)
    return np.concatenate(zs), np.concatenate(ys)


def log_probabilities(probs: np.ndarray) -> np.ndarray:
    """log(max(p, FLOOR)) of probabilities of the real classes (any shape)."""
    return np.log(np.maximum(probs, FLOOR))


def fit_ensemble(folders: Sequence[Path], validation: dict[dt.date, tuple[Window, np.ndarray]]) -> dict[str, Any]:
    """The ensemble's temperature on its validation pixels, with the validation ECE before and after."""
    z, y = validation_log_probabilities(folders, validation)
    t = fit_temperature(z, y) if len(y) else 1.0
    record: dict[str, Any] = {"temperature": t, "objective": DEFAULT_OBJECTIVE, "val_pixels": len(y),
                              "ece_before": None, "ece_after": None,
                              "val_dates": [d.isoformat() for d in validation]}
    if len(y):
        for key, temp in (("ece_before", 1.0), ("ece_after", t)):
            p = torch.softmax(torch.as_tensor(z / temp), dim=1).numpy()
            record[key] = expected_calibration_error(p.max(axis=1), p.argmax(axis=1) == y)
    return record


def write_calibration(out: Path, record: dict[str, Any]) -> Path:
    """``OUT/calibration.json``, atomically."""
    return write_json(Path(out) / CALIBRATION_FILE, record)


def read_ensemble_temperature(out: Path) -> float | None:
    """The temperature stored in an ensemble's prediction folder, or None when it has none."""
    path = Path(out) / CALIBRATION_FILE
    if not path.is_file():
        return None
    return float(read_json(path, "delete it to fit the ensemble's temperature again")["temperature"])


def scale(probs: np.ndarray, valid: np.ndarray, temperature: float) -> np.ndarray:
    """(K, h, w) probabilities (class 0 zero) with the real classes' ``softmax(log(max(p, FLOOR)) / T)``
    where ``valid``; unchanged with T = 1 (the uncalibrated ensemble)."""
    if temperature == 1.0:
        return probs
    z = torch.as_tensor(log_probabilities(probs[1:]) / temperature)
    scaled = np.zeros_like(probs)
    scaled[1:] = torch.softmax(z, dim=0).numpy()
    scaled[:, ~valid] = 0.0
    return scaled


def same_scene(a: Path | str, scene: Scene) -> bool:
    """Whether scene folder ``a`` is ``scene``."""
    return Path(a).resolve() == Path(scene.root).resolve()
