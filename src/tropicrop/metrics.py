"""Accuracy figures of the paper: overall accuracy, F1 per class and their average, from confusion matrices.

Confusion matrices are accumulated with torchmetrics (so they are synchronised across DDP ranks); the scores
are derived from them here. Index 0 (no reference) is never a reference class: those pixels are excluded.
The average F1 is the macro average over classes PRESENT in the reference, as in the paper.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torchmetrics.classification import MulticlassConfusionMatrix


@dataclass(frozen=True)
class Scores:
    """OA, per-class F1 (NaN for classes absent from the reference) and the macro F1 over present classes."""

    oa: float
    f1: np.ndarray
    macro_f1: float
    support: np.ndarray


def confusion_metric(num_classes: int) -> MulticlassConfusionMatrix:
    """A torchmetrics confusion matrix (rows = reference, columns = prediction) that ignores index 0."""
    return MulticlassConfusionMatrix(num_classes=num_classes, ignore_index=0)


def scores_from_confusion(cm: np.ndarray | torch.Tensor) -> Scores:
    """Scores from a (K, K) confusion matrix whose row/column 0 is *no reference* (ignored)."""
    m = np.asarray(cm.cpu() if isinstance(cm, torch.Tensor) else cm, dtype=np.float64)[1:, 1:]
    tp = np.diag(m)
    support = m.sum(axis=1)
    predicted = m.sum(axis=0)
    total = m.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(support > 0, 2 * tp / (support + predicted), np.nan)
    present = support > 0
    return Scores(
        oa=float(tp.sum() / total) if total > 0 else float("nan"),
        f1=f1,
        macro_f1=float(np.nanmean(f1[present])) if present.any() else float("nan"),
        support=support.astype(np.int64),
    )
