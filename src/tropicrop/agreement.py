"""Accuracy on a new scene estimated by agreement with other models of the same training year.

Confidence-based estimates (:mod:`tropicrop.estimate`) carry the training year's confidence into the new
year: a network that is confidently wrong after a year shift is estimated as right. Two models trained on
the same year but different in kind (a network and a booster, two architectures, two seeds) make different
errors, and where the new year moves away from the training year they drift apart. So the run's map is
scored against each reference model's map of the same scene as if that map were the reference labels: the
share of pixels where they agree estimates OA, the macro F1 against it estimates macro F1 (over the classes
the reference maps), averaged over the references. This is the disagreement estimate of generalisation
error (Jiang et al. 2022, "Assessing generalization of SGD via disagreement"; Baek et al. 2022,
"Agreement-on-the-line"). It reads no label; it needs a second run trained on the same year.

The two label-free estimates err in opposite directions across a year shift: the confidence estimate reads
high (year A's confidence carried into year B), agreement reads low (the reference models are wrong too,
and every pixel where they are counts against the run). :func:`midpoint` is their mean, the estimate
``check --against`` reports by default: chosen on four experiment folders (the demo pair at seeds 0 and 1,
the few-fields pair at seeds 1 and 2) before the two it is reported on were run (docs: confidence guide).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio

from tropicrop.errors import ConfigError, RunError
from tropicrop.evaluation import read_class_names
from tropicrop.layout import PredictionLayout
from tropicrop.metrics import scores_from_confusion

AGREEMENT = "agreement"
"""The estimator scoring a run's maps against other runs' (:func:`agreement_estimates`)."""
MIDPOINT = "midpoint"
"""The estimator reporting the mean of the confidence and the agreement estimates (:func:`midpoint`)."""


def midpoint(confidence: float | None, agreement: float | None) -> float:
    """The mean of a confidence estimate and an agreement estimate of the same figure (F1 or OA); NaN
    where either is missing."""
    if confidence is None or agreement is None:
        return float("nan")
    return (confidence + agreement) / 2


def agreement_confusion(run_map: Path, reference_map: Path, run_codes: np.ndarray, reference_codes: np.ndarray,
                        classes: int, mask: np.ndarray | None = None) -> np.ndarray:
    """(classes, classes) int64 counts, rows the reference map's class, columns the run map's, over the pixels
    both map (code > 0) and ``mask`` (H, W) bool keeps; each map's codes are translated to the shared class
    index by ``run_codes`` / ``reference_codes`` (256,); read window by window. Index 0 stays row/column 0."""
    cm = np.zeros((classes, classes), np.int64)
    with rasterio.open(run_map) as run, rasterio.open(reference_map) as ref:
        if (run.width, run.height) != (ref.width, ref.height):
            raise RunError(reference_map, f"is {ref.width} x {ref.height} px, the run's map {run_map} "
                           f"{run.width} x {run.height}", "map the same scene with both runs")
        for _, window in run.block_windows(1):
            a, b = run.read(1, window=window), ref.read(1, window=window)
            both = (a > 0) & (b > 0)
            if mask is not None:
                both &= mask[window.toslices()]
            index = reference_codes[b[both]].astype(np.int64) * classes + run_codes[a[both]]
            cm += np.bincount(index, minlength=classes * classes).reshape(classes, classes)
    return cm


def shared_classes(run_out: Path, reference_out: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The classes of both prediction folders by name (the run's first, then the reference's others) and, per
    folder, a (256,) lookup from its map codes to that list; a class only one of them maps counts as a
    disagreement wherever it is mapped. ConfigError naming the reference when they share no class."""
    names, theirs = read_class_names(run_out), read_class_names(reference_out)
    if not set(names[1:]) & set(theirs[1:]):
        raise ConfigError(None, f"reference {reference_out} maps classes {list(theirs[1:])}, the run "
                          f"{list(names[1:])}: none in common", "give a reference run of the same classes")
    union = [*names, *(n for n in theirs[1:] if n not in names)]
    lookups = []
    for table in (names, theirs):
        lookup = np.zeros(256, np.int64)
        lookup[1:len(table)] = [union.index(n) for n in table[1:]]
        lookups.append(lookup)
    return union, lookups[0], lookups[1]


def agreement_estimates(run_out: Path, reference_outs: Sequence[Path], dates: Sequence[dt.date],
                        mask: np.ndarray | None = None) -> list[dict[str, Any]]:
    """Per date: ``estimated_oa`` and ``estimated_f1`` of the maps in ``run_out``, scored against the maps of
    each folder of ``reference_outs`` and averaged over them (NaN for a date no reference maps)."""
    if not reference_outs:
        raise ConfigError(None, "no reference run", "the agreement estimate needs another run of the same year")
    tables = [shared_classes(run_out, ref) for ref in reference_outs]  # every reference checked first
    rows = []
    for d in dates:
        oa, f1 = [], []
        for ref, (names, run_codes, ref_codes) in zip(reference_outs, tables, strict=True):
            ref_map = PredictionLayout(ref).map(d)
            if not ref_map.is_file():
                continue
            cm = agreement_confusion(PredictionLayout(run_out).map(d), ref_map, run_codes, ref_codes, len(names), mask)
            scores = scores_from_confusion(cm)
            oa.append(scores.oa)
            f1.append(scores.macro_f1)
        rows.append({"date": d.isoformat(), "estimated_oa": float(np.mean(oa)) if oa else float("nan"),
                     "estimated_f1": float(np.mean(f1)) if f1 else float("nan"), "references": len(oa)})
    return rows
