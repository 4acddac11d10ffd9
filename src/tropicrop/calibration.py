"""Calibrated probabilities: temperature scaling and the measures that say whether probabilities can be trusted.

A network trained with the focal loss (or a booster stopped on F1) outputs probabilities whose size does
not match how often it is right. Temperature scaling (Guo et al. 2017) divides every logit by one scalar
``T`` fitted on the validation set; the class with the largest probability never changes, only how sure
the map says it is. ``T`` is the value of :data:`T_GRID` (log-spaced over :data:`T_RANGE`) that minimises
the objective on the validation pixels: by default the expected calibration error itself
(:data:`DEFAULT_OBJECTIVE`; why: there). ``objective="nll"`` is Guo et al.'s negative log-likelihood,
minimised by L-BFGS on ``log T``; ``"brier"`` the multi-class Brier score.

Logits here are those of the REAL classes (index 0, *no reference*, dropped), as everything written to disk
is renormalised without class 0: ``softmax(z[1:] / T)`` equals the written, renormalised probabilities.

Measures (all on the confidence of the mapped class, the top-label view a map user has):

* expected calibration error (ECE, 15 equal-width bins): the pixel-weighted mean gap between confidence
  and accuracy in each bin;
* Brier score: mean squared error of the probability vector against the one-hot truth (multi-class), and
  the top-label version (confidence against "the mapped class is right"), which needs the confidence only;
* accuracy at coverage: keep the given share of pixels with the highest confidence, the accuracy on them.

Streaming versions over whole scenes are :class:`tropicrop.reliability.Reliability`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

ECE_BINS = 15
"""Equal-width confidence bins of the expected calibration error (Guo et al. 2017 use 15)."""
COVERAGES = (0.5, 0.8, 1.0)
"""Shares of pixels kept (the most confident first) for accuracy at coverage."""
T_RANGE = (0.05, 20.0)
"""Temperatures a fit may return: outside it the validation set is degenerate (e.g. every pixel right)."""


OBJECTIVES = ("ece", "brier", "nll")
DEFAULT_OBJECTIVE = "ece"
"""What the temperature minimises on the validation pixels. Chosen on the demo pair (seed 0, Baseline 1's
twelve nets, ``benchmarks/temperature_objective.py``): the negative log-likelihood fitted ``T`` above the
ECE-minimising one on every net (pixels confidently wrong dominate it) and raised the validation ECE of 10
of 12 nets over ``T = 1``; on the test split the three gave ECE 0.186 (NLL), 0.057 (Brier), 0.036 (ECE),
against 0.130 at ``T = 1`` (docs/guide/confidence.md)."""
T_GRID = np.geomspace(T_RANGE[0], T_RANGE[1], 241)
"""Temperatures the ECE and Brier objectives are evaluated at (2.5 % apart)."""


def fit_temperature(logits: Tensor | np.ndarray, labels: Tensor | np.ndarray, max_iter: int = 100,
                    objective: str = DEFAULT_OBJECTIVE) -> float:
    """The temperature that minimises ``objective`` (:data:`OBJECTIVES`) of ``labels`` under
    ``softmax(logits / T)``.

    Args:
        logits: (N, K) float logits of N samples (pixels) over K classes.
        labels: (N,) int class indices in ``0..K-1``.
        max_iter: L-BFGS iterations at most (``nll``).
        objective: ``ece`` (15 bins, the confidence of the largest class), ``brier`` (multi-class) or ``nll``.

    Returns:
        ``T`` > 0, clipped to :data:`T_RANGE`; 1.0 when there is no sample. On the grid, the smallest value
        of the objective wins, and of equal values the temperature nearest 1.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown calibration objective {objective!r}; use one of {', '.join(OBJECTIVES)}")
    z = torch.as_tensor(logits, dtype=torch.float64)
    y = torch.as_tensor(labels, dtype=torch.int64)
    if z.ndim != 2 or y.shape != z.shape[:1]:
        raise ValueError(f"logits (N, K) and labels (N,) expected, got {tuple(z.shape)} and {tuple(y.shape)}")
    if len(y) == 0:
        return 1.0
    if objective != "nll":
        return _grid_temperature(z, y, objective)
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.5, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(z / log_t.exp(), y)
        loss.backward()
        return loss

    optimizer.step(closure)
    t = float(log_t.detach().exp())
    if not math.isfinite(t):
        return 1.0
    return min(max(t, T_RANGE[0]), T_RANGE[1])


def _grid_temperature(z: Tensor, y: Tensor, objective: str) -> float:
    """The value of :data:`T_GRID` minimising the ECE or the Brier score (see :func:`fit_temperature`)."""
    shifted = z - z.max(dim=1, keepdim=True).values  # largest logit 0: exp never overflows
    right = (z.argmax(dim=1) == y).numpy()  # the same at every temperature
    scores = []
    for t in T_GRID:
        p = torch.softmax(shifted / t, dim=1)
        if objective == "ece":
            scores.append(expected_calibration_error(p.max(dim=1).values.numpy(), right))
        else:
            scores.append(float(((p ** 2).sum(dim=1) - 2 * p.gather(1, y[:, None])[:, 0] + 1).mean()))
    best = np.asarray(scores)
    ties = np.flatnonzero(best <= best.min() + 1e-12)
    return float(T_GRID[ties[np.argmin(np.abs(np.log(T_GRID[ties])))]])


def calibrated_probabilities(logits: Tensor | np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(logits / temperature)`` over axis 1, float64 (N, K) (or (B, K, H, W))."""
    z = torch.as_tensor(logits, dtype=torch.float64)
    return torch.softmax(z / temperature, dim=1).numpy()


def top_label(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(confidence, predicted class) of (N, K) probabilities: the largest probability and its index."""
    p = np.asarray(probs)
    pred = p.argmax(axis=1)
    return np.take_along_axis(p, pred[:, None], axis=1)[:, 0], pred


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE: over ``bins`` equal-width confidence bins, the share-weighted mean |accuracy - mean confidence|.

    Args:
        confidence: (N,) probability of the predicted class, in [0, 1].
        correct: (N,) bool, whether the prediction is right.
        bins: number of bins (a confidence of exactly 1 falls in the last).

    Returns:
        ECE in [0, 1]; NaN for no sample.
    """
    conf = np.asarray(confidence, np.float64).ravel()
    hit = np.asarray(correct, np.float64).ravel()
    if conf.size == 0:
        return float("nan")
    index = np.minimum((conf * bins).astype(np.int64), bins - 1)
    gap = np.bincount(index, weights=hit, minlength=bins) - np.bincount(index, weights=conf, minlength=bins)
    return float(np.abs(gap).sum() / conf.size)


def brier_score(probs: np.ndarray, labels: np.ndarray) -> float:
    """Multi-class Brier score: mean over samples of sum_k (p_k - [k = label])^2 (0 best, 2 worst).

    Args:
        probs: (N, K) probabilities.
        labels: (N,) class indices in ``0..K-1``.
    """
    p = np.asarray(probs, np.float64)
    if len(p) == 0:
        return float("nan")
    onehot = np.zeros_like(p)
    onehot[np.arange(len(p)), np.asarray(labels, np.int64)] = 1.0
    return float(((p - onehot) ** 2).sum(axis=1).mean())


def top_label_brier(confidence: np.ndarray, correct: np.ndarray) -> float:
    """Brier score of the confidence of the mapped class against whether it is right (0 best, 1 worst)."""
    conf = np.asarray(confidence, np.float64).ravel()
    if conf.size == 0:
        return float("nan")
    return float(((conf - np.asarray(correct, np.float64).ravel()) ** 2).mean())


def accuracy_at_coverage(confidence: np.ndarray, correct: np.ndarray, coverage: float) -> float:
    """Accuracy on the ``coverage`` share of samples with the highest confidence (ties broken by order).

    Args:
        confidence: (N,) confidence of each prediction.
        correct: (N,) bool, whether it is right.
        coverage: share of samples kept, in (0, 1].
    """
    if not 0 < coverage <= 1:
        raise ValueError(f"coverage must be in (0, 1], got {coverage}")
    conf = np.asarray(confidence, np.float64).ravel()
    if conf.size == 0:
        return float("nan")
    keep = max(1, round(coverage * conf.size))
    order = np.argsort(-conf, kind="stable")[:keep]
    return float(np.asarray(correct, bool).ravel()[order].mean())
