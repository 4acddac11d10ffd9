"""Temporal shift estimation (after TimeMatch, Nyborg et al., ISPRS J. 2022), with no label of the new year.

A network fed the day of year (VUnetConvLSTM) has learnt *when* each crop looks like what. If the new
year's season runs three weeks early, its images carry the right appearance at the wrong dates and the
network hesitates. Offsetting the new year's days of year by ``o`` and predicting a sample of it, the
offset that moves its calendar onto the training year's gives the most confident predictions (lowest
mean entropy, TimeMatch's criterion) and class shares closest to the training year's at the matching time
of year (it guards against an offset that makes the network confidently predict one class everywhere).
The score of an offset is the sum of both, each on a 0..1 scale: mean entropy / log(classes) and the
Jensen-Shannon divergence in bits.

The training year's shares are the same network's mean predicted probabilities on the training year's
images (:func:`predicted_shares`, :mod:`tropicrop.adaptation.shiftref`), not its labels' shares: predicted
shares carry the network's bias (classes it over-predicts, pixels without reference it still classifies)
and labels' shares do not, so against the labels the offset whose labels happened to fit that bias won
(+10 for a +30-day shift on the synthetic pair). Shares are interpolated between the reference's dates.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from tropicrop.adaptation.data import PatchSampler
from tropicrop.classical import PixelModel, pixel_features
from tropicrop.windows.dates import WindowIndex, day_of_year, shift_doy

MAX_GAP = 45
"""Days between two dates of the reference across which its class shares are interpolated."""


@dataclass(frozen=True)
class ClassShares:
    """The training year's class shares (classes 1..K-1, summing to 1) at each of its reference days of year."""

    doy: tuple[int, ...]
    shares: tuple[tuple[float, ...], ...]

    def at(self, doy: int) -> np.ndarray:
        """Shares at ``doy``: linear between the two dates around it when they are at most
        :data:`MAX_GAP` days apart (so the score moves smoothly with the offset, not in steps of a date
        interval), else those of the date nearest on the circle of the year."""
        days = np.asarray(self.doy)
        d = np.abs(days - doy)
        nearest = int(np.argmin(np.minimum(d, 365 - d)))
        before = [i for i in range(len(days)) if days[i] <= doy]
        after = [i for i in range(len(days)) if days[i] > doy]
        if before and after:
            i = max(before, key=lambda k: days[k])
            j = min(after, key=lambda k: days[k])
            gap = int(days[j] - days[i])
            if 0 < gap <= MAX_GAP:
                w = (doy - int(days[i])) / gap
                return (1 - w) * np.asarray(self.shares[i]) + w * np.asarray(self.shares[j])
        return np.asarray(self.shares[nearest])


def predicted_shares(model: nn.Module | PixelModel, sampler: PatchSampler, origins: np.ndarray) -> ClassShares:
    """The network's own mean class probabilities (classes 1..K-1) on the training year's patches ``origins``
    at each target date of ``sampler`` (no offset): the reference the new year's predicted shares are
    compared with. ``model`` must be in eval mode."""
    doys, shares = [], []
    with torch.no_grad():
        sums: list[np.ndarray] = []
        for origin in origins:
            for k, probs in enumerate(_window_probabilities(model, sampler, origin, sampler.targets, 0)):
                part = probs.sum(dim=(1, 2)).double().numpy()
                if k < len(sums):
                    sums[k] = sums[k] + part
                else:
                    sums.append(part)
    for target, total in zip(sampler.targets, sums, strict=True):
        doys.append(day_of_year(target))
        shares.append(tuple(float(v) for v in total / total.sum()))
    return ClassShares(tuple(doys), tuple(shares))


def merge_shares(found: list[ClassShares]) -> ClassShares | None:
    """The shares of several training scenes together (each of their labelled dates); None if none."""
    if not found:
        return None
    return ClassShares(tuple(d for f in found for d in f.doy), tuple(s for f in found for s in f.shares))


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence of two distributions, in bits (0 = equal, 1 = disjoint)."""
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    return 0.5 * kl(p) + 0.5 * kl(q)


@dataclass
class ShiftEstimate:
    """The offsets tried, their scores and the chosen one (days added to the new year's days of year)."""

    offset: int
    offsets: list[int]
    entropy: list[float]
    share_divergence: list[float | None]
    score: list[float]

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return asdict(self)


def _window_probabilities(model: Any, sampler: PatchSampler, origin: np.ndarray, targets: Sequence[dt.date],
                          offset: int) -> list[torch.Tensor]:
    """Softmax over classes 1..K-1 (K-1, P, P) of one patch at every target date, days moved by ``offset``.

    A model with ``encode``/``decode`` and masked padding (UnetConvLSTM, VUnetConvLSTM) encodes each date
    of the patch once for all target windows, as full-scene inference does; other models run ``forward``
    per window. Class 0, *no reference*, is never predicted.
    """
    data = sampler.data
    windows = [data.window(t) for t in targets]
    if isinstance(model, PixelModel):
        return _pixel_probabilities(model, sampler, origin, windows, offset)
    if not (hasattr(model, "encode") and hasattr(model, "decode") and getattr(model, "padding", "mask") == "mask"):
        out = []
        for t in targets:
            batch = sampler.gather(origin[None], t, offset)
            out.append(torch.softmax(model(batch["images"], batch["doy"], batch["valid"]).float()[0, 1:], dim=0))
        return out
    needed = sorted({int(i) for w in windows for i in w.indices if i >= 0})
    position = {i: k for k, i in enumerate(needed)}
    r, c, p = int(origin[0]), int(origin[1]), sampler.patch_size
    frames = torch.from_numpy(np.ascontiguousarray(data.images[needed, :, r : r + p, c : c + p]))
    frame_doy = torch.tensor([int(shift_doy(day_of_year(data.dates[i]), offset)) for i in needed])
    features = model.encode(frames, frame_doy)
    out = []
    for w in windows:
        index = torch.tensor([[position[int(i)] if i >= 0 else -1 for i in w.indices]])
        doy = torch.from_numpy(np.asarray(shift_doy(w.doy, offset)))[None]
        logits = model.decode(features.sequence(index), doy, torch.from_numpy(w.valid)[None])
        out.append(torch.softmax(logits.float()[0, 1:], dim=0))
    return out


def _pixel_probabilities(model: PixelModel, sampler: PatchSampler, origin: np.ndarray, windows: list[WindowIndex],
                         offset: int) -> list[torch.Tensor]:
    """A per-pixel model's probabilities (K-1, P, P) of one patch at every window, its day-of-year feature
    (the window's last day of year, as prediction gives it) moved by ``offset``."""
    r, c, p = int(origin[0]), int(origin[1]), sampler.patch_size
    patch = np.asarray(sampler.data.images[:, :, r : r + p, c : c + p])
    out = []
    for w in windows:
        doy = int(shift_doy(np.asarray(w.doy[-1:]), offset)[0])
        scores = np.asarray(model.predict_proba(pixel_features(patch, w.indices, doy)), np.float64)
        out.append(torch.from_numpy(scores.T.reshape(-1, p, p).copy()))
    return out


def estimate_shift(model: nn.Module | PixelModel, sampler: PatchSampler, origins: np.ndarray, offsets: Sequence[int],
                   shares: ClassShares | None, progress: bool = False) -> ShiftEstimate:
    """Score every offset in ``offsets`` on the patches ``origins`` (N, 2) at every target date of
    ``sampler`` and return the best (ties: the smallest absolute offset). ``model`` must be in eval mode."""
    entropies: list[float] = []
    divergences: list[float | None] = []
    targets: Sequence[dt.date] = sampler.targets
    with torch.no_grad():
        for offset in tqdm(list(offsets), desc="shift scores", unit="offset", disable=not progress):
            ent_sum, n_pix = 0.0, 0
            class_sums: list[np.ndarray | None] = [None] * len(targets)
            for origin in origins:
                for k, probs in enumerate(_window_probabilities(model, sampler, origin, targets, int(offset))):
                    ent = -(probs * torch.log(probs.clamp_min(1e-12))).sum(dim=0) / np.log(max(probs.shape[0], 2))
                    ent_sum += float(ent.sum())
                    n_pix += ent.numel()
                    part = probs.sum(dim=(1, 2)).double().numpy()
                    prev = class_sums[k]
                    class_sums[k] = part if prev is None else prev + part
            div = []
            if shares is not None:
                for target, sums in zip(targets, class_sums, strict=True):
                    if sums is not None:
                        when = int(shift_doy(day_of_year(target), int(offset)))
                        div.append(js_divergence(sums / sums.sum(), shares.at(when)))
            entropies.append(ent_sum / max(n_pix, 1))
            divergences.append(float(np.mean(div)) if div else None)
    scores = [e + (d or 0.0) for e, d in zip(entropies, divergences, strict=True)]
    best = min(range(len(scores)), key=lambda i: (round(scores[i], 9), abs(offsets[i])))
    return ShiftEstimate(int(offsets[best]), [int(o) for o in offsets], entropies, divergences, scores)
