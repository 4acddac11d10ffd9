"""What a trained net does on its own validation set: its temperature, and the confidence profile that lets
``tropicrop check`` estimate accuracy on a new scene without labels.

Right after training, every network (and every LightGBM booster) is run on its validation pixels; a
temperature is fitted on their logits (:func:`tropicrop.calibration.fit_temperature`, minimising the
validation ECE by default; the booster's
log-probabilities serve as logits) and, with the calibrated probabilities, the net's profile is counted:
per predicted class and confidence level (whole percent, as in the confidence layer) how many validation
pixels there are and how many are right, the validation confusion matrix, and per target month the
confidence counts (the reference a new year's confidence is compared with). All of it is written as
``RUN/nets/NAME/calibration.json`` before the net's ``result.json``; a run without it (trained before this
file existed) predicts with T = 1.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tropicrop.calibration import DEFAULT_OBJECTIVE, expected_calibration_error, fit_temperature
from tropicrop.errors import RunError
from tropicrop.io.files import write_json
from tropicrop.reliability import LEVELS, Reliability, confidence_levels
from tropicrop.runfiles import RETRAIN, read_json

log = logging.getLogger(__name__)
CALIBRATION_FILE = "calibration.json"
MAX_PIXELS = 300_000
"""Validation pixels a temperature is fitted on at most (drawn at random; the fit converges long before)."""


@dataclass
class ValProfile:
    """One net's calibration and validation profile (classes are 0-based over the real classes 1..K-1).

    ``by_class`` / ``right_by_class`` are (K-1, LEVELS+1) counts of validation pixels per predicted class and
    calibrated confidence level, and of those that are right; ``confusion`` (K-1, K-1) counts rows reference,
    columns prediction; ``months`` maps a month number to its pixels' confidence counts.
    """

    temperature: float
    ece_before: float
    ece_after: float
    by_class: np.ndarray
    right_by_class: np.ndarray
    confusion: np.ndarray
    months: dict[int, Reliability]
    objective: str = "nll"  # what the temperature minimised (files written before the choice: nll)

    @property
    def reliability(self) -> Reliability:
        """Confidence counts of every validation pixel."""
        return Reliability(self.by_class.sum(axis=0), self.right_by_class.sum(axis=0))

    @property
    def pixels(self) -> int:
        return int(self.by_class.sum())

    def to_dict(self) -> dict[str, Any]:
        rel = self.reliability
        return {"temperature": self.temperature, "objective": self.objective, "val_pixels": self.pixels,
                "ece_before": self.ece_before, "ece_after": self.ece_after, "val_accuracy": rel.accuracy,
                "by_class": self.by_class.tolist(), "right_by_class": self.right_by_class.tolist(),
                "confusion": self.confusion.tolist(),
                "months": {str(m): r.to_dict() for m, r in sorted(self.months.items())}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ValProfile:
        by_class = np.asarray(data["by_class"], np.int64)
        right = np.asarray(data["right_by_class"], np.int64)
        confusion = np.asarray(data["confusion"], np.int64)
        k = by_class.shape[0]
        if by_class.shape != (k, LEVELS + 1) or right.shape != by_class.shape or confusion.shape != (k, k):
            raise ValueError("by_class, right_by_class and confusion do not have matching shapes")
        temperature = float(data["temperature"])
        if not temperature > 0:
            raise ValueError(f"temperature {temperature} is not positive")
        months = {int(m): Reliability.from_dict(r) for m, r in dict(data.get("months", {})).items()}
        return cls(temperature, float(data["ece_before"]), float(data["ece_after"]), by_class, right, confusion, months,
                   str(data.get("objective", "nll")))


def build_profile(logits: np.ndarray, labels: np.ndarray, months: np.ndarray, seed: int = 0) -> ValProfile:
    """Fit the temperature on validation ``logits`` (N, K-1) of the real classes and ``labels`` (N,) 0-based,
    and count the calibrated profile; ``months`` (N,) is each pixel's target month."""
    k = logits.shape[1]
    if len(labels) > MAX_PIXELS:
        keep = np.random.default_rng(seed).choice(len(labels), MAX_PIXELS, replace=False)
        logits, labels, months = logits[keep], labels[keep], months[keep]
    z = torch.as_tensor(logits, dtype=torch.float64)
    t = fit_temperature(z, labels)
    raw = torch.softmax(z, dim=1).numpy()
    probs = torch.softmax(z / t, dim=1).numpy()
    pred = probs.argmax(axis=1)
    right = pred == labels
    conf = probs[np.arange(len(pred)), pred]
    levels = confidence_levels(conf).astype(np.int64)
    by_class = np.zeros((k, LEVELS + 1), np.int64)
    right_by_class = np.zeros((k, LEVELS + 1), np.int64)
    np.add.at(by_class, (pred, levels), 1)
    np.add.at(right_by_class, (pred[right], levels[right]), 1)
    confusion = np.bincount(labels * k + pred, minlength=k * k).reshape(k, k)
    per_month = {}
    for m in np.unique(months):
        rel = Reliability()
        rel.add(levels[months == m], right[months == m])
        per_month[int(m)] = rel
    before = expected_calibration_error(raw.max(axis=1), right) if len(labels) else float("nan")
    after = expected_calibration_error(conf, right) if len(labels) else float("nan")
    return ValProfile(t, before, after, by_class, right_by_class, confusion, per_month, DEFAULT_OBJECTIVE)


def network_logits(forward: Callable[[dict[str, torch.Tensor]], torch.Tensor],
                   batches: Iterable[tuple[dt.date, dict[str, torch.Tensor]]]) -> tuple[np.ndarray, ...]:
    """Logits (N, K-1) of the real classes at the labelled pixels of validation ``batches`` ((target date,
    batch) pairs), their 0-based labels (N,) and target months (N,)."""
    zs, ys, ms = [], [], []
    with torch.inference_mode():
        for target, batch in batches:
            logits = forward(batch).float()  # (B, K, H, W)
            labels = batch["labels"]
            has = labels > 0
            zs.append(logits.permute(0, 2, 3, 1)[has][:, 1:].cpu().numpy())
            ys.append((labels[has] - 1).cpu().numpy())
            ms.append(np.full(int(has.sum()), target.month, np.int64))
    if not zs:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(zs), np.concatenate(ys).astype(np.int64), np.concatenate(ms)


def write_profile(net_dir: Path, profile: ValProfile) -> Path:
    """``NET/calibration.json``, atomically."""
    log.info("%s: temperature %.3f, validation ECE %.4f -> %.4f on %d pixels", net_dir.name, profile.temperature,
             profile.ece_before, profile.ece_after, profile.pixels)
    return write_json(Path(net_dir) / CALIBRATION_FILE, profile.to_dict())


def read_profile(net_dir: Path) -> ValProfile | None:
    """The net's profile, or None for a net trained before calibration existed; RunError for a damaged file."""
    path = Path(net_dir) / CALIBRATION_FILE
    if not path.is_file():
        return None
    data = read_json(path, RETRAIN)
    try:
        return ValProfile.from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RunError(path, f"is not a calibration file ({' '.join(str(exc).split())})", RETRAIN) from None


def read_temperature(net_dir: Path, calibration: str = "temperature") -> float:
    """The temperature prediction divides the net's logits by: 1 with ``calibration="none"`` and for a net
    without ``calibration.json`` (a note in the log)."""
    if calibration == "none":
        return 1.0
    profile = read_profile(net_dir)
    if profile is None:
        log.warning("%s has no %s (trained before calibration): its probabilities are not calibrated (T = 1)",
                    net_dir, CALIBRATION_FILE)
        return 1.0
    return profile.temperature


def module_logits(module: torch.nn.Module, batches: Iterable[tuple[dt.date, dict[str, torch.Tensor]]]
                  ) -> tuple[np.ndarray, ...]:
    """Run ``module`` (its forward: images, doy, valid -> logits) in eval mode on its device over (target
    date, batch) pairs: the logits, labels and months of :func:`network_logits`."""
    module.eval()
    device = next(module.parameters()).device
    on_device = ((d, {k: v.to(device) for k, v in b.items()}) for d, b in batches)
    return network_logits(lambda b: module(b["images"], b["doy"], b["valid"]), on_device)


def validation_logits(module: torch.nn.Module, dataset: Any) -> tuple[np.ndarray, ...]:
    """:func:`module_logits` on validation ``dataset`` (a ConcatDataset of :class:`~tropicrop.windows.EvalBatches`)."""
    return module_logits(module, ((part.batches[n][0], part[n]) for part in getattr(dataset, "datasets", [dataset])
                                  for n in range(len(part))))


def profile_network(module: torch.nn.Module, dataset: Any, seed: int = 0) -> ValProfile:
    """The profile of ``module`` on validation ``dataset`` (see :func:`validation_logits`)."""
    z, y, m = validation_logits(module, dataset)
    return build_profile(z, y, m, seed)
