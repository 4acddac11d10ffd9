"""Accuracy on a new scene estimated from its images only: "will last year's model work this year?".

Average thresholded confidence (ATC; Garg et al. 2022), fitted on the net's own validation set
(:mod:`tropicrop.valprofile`):

* **OA**: a confidence threshold is fitted so that the share of validation pixels above it equals the
  validation accuracy; the estimated OA of a scene is the share of its mapped pixels above it.
* **Macro F1** (per class): the same, per mapped class ``j``, gives its precision (threshold fitted so that
  the share of validation pixels mapped ``j`` above it equals their precision). True positives follow; the
  errors of each mapped class are shared among the true classes as the validation confusion matrix shares
  them, which gives each class's true count, so its recall and F1. The average F1 is the mean over
  classes whose estimated true count is at least :data:`PRESENT_SHARE` of the pixels (the paper averages
  over the classes present in the reference).

``estimator="confidence"`` replaces each thresholded share with the mean calibrated confidence (average
confidence, AC; it presumes calibration carries over to the new year). ``estimator="doc"`` (difference of
confidences, DoC; Guillory et al. 2021) moves each validation figure by the change of mean confidence: OA is
the validation accuracy plus the scene's mean confidence minus the validation pixels', and the precision of
mapped class ``j`` its validation precision plus the same difference over the pixels mapped ``j``. Confidence is counted in whole
percent (the confidence layer's levels); a threshold inside a level takes that level's pixels in proportion.

**Shift**: per date, the Kolmogorov-Smirnov distance between the scene's confidence distribution and the
validation pixels' of the same month (all months when the net has none of it); a date above
:data:`SHIFT_THRESHOLD` is named as looking unlike the training year.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tropicrop.reliability import LEVELS
from tropicrop.valprofile import ValProfile

ESTIMATORS = ("atc", "confidence", "doc")
DEFAULT_ESTIMATOR = "doc"
"""``check``'s estimator: chosen on the tuning pair of ``benchmarks/calibration.py`` (seed 1, shift all), where
its mean error of the cross-year approaches' estimated F1 was the smallest of the three (docs/guide/confidence.md)."""
PRESENT_SHARE = 0.005
"""A class counts in the estimated macro F1 when its estimated true pixels are at least this share."""
SHIFT_THRESHOLD = 0.1
"""KS distance of confidence distributions above which a date is flagged. Chosen on the tuning pair of
``benchmarks/calibration.py`` (seed 1, shift all): the same-year net's largest distance there was 0.04, the
cross-year nets' 0.17 and 0.56 (docs/guide/confidence.md)."""


def _threshold(count: np.ndarray, right: np.ndarray) -> tuple[int, float]:
    """(level L, fraction f): the share of ``count`` above L plus f of those at L equals the share right."""
    total = count.sum()
    if total == 0:
        return LEVELS + 1, 0.0
    target = float(right.sum())  # pixels that should lie above the threshold
    above = 0.0
    for level in range(LEVELS, -1, -1):
        n = float(count[level])
        if above + n >= target:
            return level, (target - above) / n if n else 0.0
        above += n
    return 0, 1.0


def _share_above(count: np.ndarray, cut: tuple[int, float]) -> float:
    """Share of pixels of ``count`` above ``cut`` (see :func:`_threshold`); NaN for no pixel."""
    total = count.sum()
    if total == 0:
        return float("nan")
    level, frac = cut
    if level > LEVELS:
        return 0.0
    return float((count[level + 1:].sum() + frac * count[level]) / total)


def _mean_confidence(count: np.ndarray) -> float:
    total = count.sum()
    return float((count * np.arange(LEVELS + 1)).sum() / LEVELS / total) if total else float("nan")


@dataclass(frozen=True)
class Estimate:
    """Estimated OA and macro F1 of one date, and its shift statistic."""

    oa: float
    f1: float
    shift: float
    pixels: int

    @property
    def shifted(self) -> bool:
        return self.shift > SHIFT_THRESHOLD


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Largest gap between the cumulative distributions of two count vectors over the same levels."""
    if a.sum() == 0 or b.sum() == 0:
        return float("nan")
    return float(np.abs(np.cumsum(a) / a.sum() - np.cumsum(b) / b.sum()).max())


def estimate_date(profile: ValProfile, counts: np.ndarray, month: int, estimator: str = DEFAULT_ESTIMATOR) -> Estimate:
    """Estimate OA and macro F1 from the scene's counts (K-1, LEVELS+1) of mapped pixels per mapped class and
    confidence level, with the serving net's validation ``profile``; ``month`` picks the shift reference."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; use one of {', '.join(ESTIMATORS)}")
    total = counts.sum()
    if estimator == "atc":
        overall = _threshold(profile.by_class.sum(axis=0), profile.right_by_class.sum(axis=0))
        oa = _share_above(counts.sum(axis=0), overall)
        cuts = [_threshold(c, r) if c.sum() else overall for c, r in zip(profile.by_class, profile.right_by_class,
                                                                           strict=True)]
        precision = np.array([_share_above(c, cut) for c, cut in zip(counts, cuts, strict=True)])
    elif estimator == "doc":
        oa, precision = _difference_of_confidence(profile, counts)
    else:
        oa = _mean_confidence(counts.sum(axis=0))
        precision = np.array([_mean_confidence(c) for c in counts])
    f1 = _macro_f1(profile.confusion, counts.sum(axis=1).astype(np.float64), np.nan_to_num(precision))
    reference = profile.months.get(month) or profile.reliability
    shift = ks_distance(counts.sum(axis=0), reference.count)
    return Estimate(oa, f1, shift, int(total))


def _difference_of_confidence(profile: ValProfile, counts: np.ndarray) -> tuple[float, np.ndarray]:
    """DoC: (OA, per mapped class precision) = the validation figure + the scene's mean confidence - the
    validation pixels' mean confidence, clipped to [0, 1]; a class the validation set never mapped takes the
    overall figures."""
    val_count, val_right = profile.by_class.sum(axis=0), profile.right_by_class.sum(axis=0)
    val_oa = val_right.sum() / max(val_count.sum(), 1)
    oa = val_oa + _mean_confidence(counts.sum(axis=0)) - _mean_confidence(val_count)
    precision = np.array([
        (r.sum() / c.sum() - _mean_confidence(c) if c.sum() else val_oa - _mean_confidence(val_count))
        + _mean_confidence(scene) for c, r, scene in zip(profile.by_class, profile.right_by_class, counts, strict=True)])
    return float(np.clip(oa, 0.0, 1.0)), np.clip(precision, 0.0, 1.0)


def _macro_f1(confusion: np.ndarray, predicted: np.ndarray, precision: np.ndarray) -> float:
    """Macro F1 from the mapped pixels per class, their estimated precision, and the validation confusion
    (rows reference, columns mapped) that shares each mapped class's errors among the true classes."""
    tp = predicted * precision
    errors = predicted - tp
    off = confusion.astype(np.float64).copy()
    np.fill_diagonal(off, 0.0)
    col = off.sum(axis=0, keepdims=True)
    share = np.divide(off, col, out=np.zeros_like(off), where=col > 0)  # share[i, j]: of j's errors, true i
    true = tp + share @ errors
    present = true >= PRESENT_SHARE * max(predicted.sum(), 1.0)
    if not present.any():
        return float("nan")
    f1 = 2 * tp[present] / np.maximum(predicted[present] + true[present], 1e-12)
    return float(f1.mean())


def validation_scores(profile: ValProfile) -> tuple[float, float]:
    """The net's own validation (OA, macro F1 over classes present), from its validation confusion."""
    from tropicrop.metrics import scores_from_confusion

    k = profile.confusion.shape[0]
    padded = np.zeros((k + 1, k + 1), np.int64)  # index 0 = no reference, as scores_from_confusion expects
    padded[1:, 1:] = profile.confusion
    scores = scores_from_confusion(padded)
    return scores.oa, scores.macro_f1


def counts_of(codes: np.ndarray, levels: np.ndarray, classes: int) -> np.ndarray:
    """(classes, LEVELS+1) counts of mapped pixels per class (codes 1..classes; 0 = no data, left out) and
    confidence level (uint8 percent)."""
    has = codes > 0
    index = (codes[has].astype(np.int64) - 1) * (LEVELS + 1) + np.minimum(levels[has].astype(np.int64), LEVELS)
    return np.bincount(index, minlength=classes * (LEVELS + 1)).reshape(classes, LEVELS + 1)

