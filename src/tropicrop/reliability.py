"""Calibration measured over whole scenes: counts per confidence level, accumulated window by window.

A scene's confidence layer (``OUT/confidence/YYYYMMDD.tif``) holds the calibrated probability of the mapped
class in whole percent, so :class:`Reliability` keeps, for each of its 101 levels, how many pixels have it
and how many of them are right. That is enough for the expected calibration error (15 bins of the levels:
the rounding to whole percent moves a pixel's confidence by at most 0.005), the top-label Brier score,
accuracy at any coverage and the reliability diagram, in memory that does not grow with the scene, and
counts of several windows, dates or scenes simply add.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tropicrop.calibration import COVERAGES, ECE_BINS
from tropicrop.io.files import atomic_path

LEVELS = 100
"""Confidence is stored as round(p * LEVELS) in uint8 (the confidence layer's scale)."""


def confidence_levels(confidence: np.ndarray) -> np.ndarray:
    """uint8 levels ``round(p * 100)`` of confidences in [0, 1] (the confidence layer's values)."""
    return np.rint(np.clip(np.asarray(confidence, np.float64), 0.0, 1.0) * LEVELS).astype(np.uint8)


@dataclass
class Reliability:
    """Pixels and right pixels per confidence level ``0..LEVELS`` (level / LEVELS = confidence)."""

    count: np.ndarray = field(default_factory=lambda: np.zeros(LEVELS + 1, np.int64))
    correct: np.ndarray = field(default_factory=lambda: np.zeros(LEVELS + 1, np.int64))

    def add(self, levels: np.ndarray, correct: np.ndarray) -> None:
        """Count pixels of confidence ``levels`` (uint8, 0..100) and whether each is right (bool, same shape)."""
        lv = np.asarray(levels, np.int64).ravel()
        if lv.size and (lv.min() < 0 or lv.max() > LEVELS):
            raise ValueError(f"confidence levels must lie in 0..{LEVELS}")
        self.count += np.bincount(lv, minlength=LEVELS + 1)
        self.correct += np.bincount(lv, weights=np.asarray(correct, bool).ravel(), minlength=LEVELS + 1).astype(np.int64)

    def merge(self, other: Reliability) -> Reliability:
        """The counts of both (e.g. every date of a scene)."""
        return Reliability(self.count + other.count, self.correct + other.correct)

    @property
    def pixels(self) -> int:
        return int(self.count.sum())

    @property
    def accuracy(self) -> float:
        """Share of right pixels (NaN for none)."""
        return float(self.correct.sum() / self.pixels) if self.pixels else float("nan")

    def _bins(self, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pixels, right pixels and summed confidence in ``bins`` equal-width bins of confidence."""
        conf = np.arange(LEVELS + 1) / LEVELS
        index = np.minimum((conf * bins).astype(np.int64), bins - 1)
        pixels = np.bincount(index, weights=self.count, minlength=bins)
        right = np.bincount(index, weights=self.correct, minlength=bins)
        conf_sum = np.bincount(index, weights=self.count * conf, minlength=bins)
        return pixels, right, conf_sum

    def ece(self, bins: int = ECE_BINS) -> float:
        """Expected calibration error over ``bins`` equal-width bins (NaN for no pixel)."""
        if not self.pixels:
            return float("nan")
        _, right, conf_sum = self._bins(bins)
        return float(np.abs(right - conf_sum).sum() / self.pixels)

    def brier(self) -> float:
        """Top-label Brier score: mean (confidence - [mapped class is right])^2."""
        if not self.pixels:
            return float("nan")
        conf = np.arange(LEVELS + 1) / LEVELS
        wrong = self.count - self.correct
        return float((self.correct * (conf - 1) ** 2 + wrong * conf**2).sum() / self.pixels)

    def accuracy_at(self, coverage: float) -> float:
        """Accuracy on the ``coverage`` share of pixels with the highest confidence; pixels of the level at the
        cut are taken in proportion (their order within a level is unknown)."""
        if not 0 < coverage <= 1:
            raise ValueError(f"coverage must be in (0, 1], got {coverage}")
        if not self.pixels:
            return float("nan")
        keep = coverage * self.pixels
        taken = right = 0.0
        for level in range(LEVELS, -1, -1):
            n = self.count[level]
            if n == 0:
                continue
            share = min(1.0, (keep - taken) / n)
            taken += share * n
            right += share * self.correct[level]
            if taken >= keep - 1e-9:
                break
        return float(right / taken)

    def share_below(self, threshold: float) -> float:
        """Share of pixels whose confidence is below ``threshold`` (a low-confidence share)."""
        if not self.pixels:
            return float("nan")
        below = np.arange(LEVELS + 1) < round(threshold * LEVELS)
        return float(self.count[below].sum() / self.pixels)

    def summary(self) -> dict[str, float]:
        """``ece``, ``brier`` (top-label), ``accuracy`` and ``acc_at_50`` / ``acc_at_80`` / ``acc_at_100``."""
        out = {"ece": self.ece(), "brier": self.brier(), "accuracy": self.accuracy}
        out.update({f"acc_at_{round(c * 100)}": self.accuracy_at(c) for c in COVERAGES})
        return out

    def diagram(self, bins: int = ECE_BINS) -> dict[str, list[float]]:
        """Reliability-diagram data per bin: ``lower``/``upper`` edges, mean ``confidence``, ``accuracy``
        (NaN for an empty bin) and ``pixels``."""
        pixels, right, conf_sum = self._bins(bins)
        with np.errstate(invalid="ignore", divide="ignore"):
            acc, conf = right / pixels, conf_sum / pixels
        edges = np.linspace(0, 1, bins + 1)
        return {"lower": edges[:-1].tolist(), "upper": edges[1:].tolist(), "confidence": conf.tolist(),
                "accuracy": acc.tolist(), "pixels": pixels.astype(np.int64).tolist()}

    def to_dict(self) -> dict[str, list[int]]:
        return {"count": self.count.tolist(), "correct": self.correct.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reliability:
        count, correct = np.asarray(data["count"], np.int64), np.asarray(data["correct"], np.int64)
        if count.shape != (LEVELS + 1,) or correct.shape != count.shape:
            raise ValueError(f"count and correct must hold {LEVELS + 1} levels")
        return cls(count, correct)


def write_reliability_png(curves: dict[str, Reliability], path: Path, title: str = "Reliability") -> Path:
    """A reliability diagram (accuracy against mean confidence per bin, one line per approach, the diagonal
    of perfect calibration, ECE in the legend) as a PNG, written atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="perfect calibration")
    for name, rel in curves.items():
        d = rel.diagram()
        conf, acc = np.asarray(d["confidence"]), np.asarray(d["accuracy"])
        has = np.isfinite(acc)
        ax.plot(conf[has], acc[has], marker="o", markersize=3, label=f"{name} (ECE {rel.ece():.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence of the mapped class")
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=7, frameon=False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path
