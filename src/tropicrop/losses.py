"""Focal loss (Lin et al., 2017) for dense classification with an ignored "no reference" class.

The paper trains with focal loss, which down-weights pixels the network already classifies well, so rare
crops and field borders get more of the gradient than the abundant easy pixels.

Class convention: label 0 means "no reference" (pixel outside any labelled parcel). Models still output
``K`` logit channels, channel 0 included, so that logit channel ``k`` is class code ``k``; channel 0 is
never a target while ``ignore_index=0``, it only takes part in the softmax normalisation (and its logit is
driven down by the gradient of the other classes).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class FocalLoss(nn.Module):
    """Mean focal loss ``-alpha_y (1 - p_y)**gamma log p_y`` over the pixels whose target is not ignored.

    With ``gamma=0`` and no ``alpha`` it equals :func:`torch.nn.functional.cross_entropy` with the same
    ``ignore_index``. ``alpha`` multiplies each pixel's loss by the weight of its target class; unlike
    cross-entropy's ``weight``, the mean stays a plain mean over the non-ignored pixels. A batch whose
    pixels are all ignored gives 0 (still attached to the graph, so ``backward`` works).

    Args:
        gamma: focusing exponent, ``>= 0``; 0 is cross-entropy.
        alpha: optional ``(K,)`` per-class weights.
        ignore_index: target value that contributes nothing (``None`` to use every pixel).
    """

    alpha: Tensor | None

    def __init__(self, gamma: float = 2.0, alpha: Tensor | Sequence[float] | None = None, ignore_index: int | None = 0) -> None:
        super().__init__()
        if gamma < 0:
            raise ValueError(f"focal loss gamma must be >= 0, got {gamma}")
        self.gamma = float(gamma)
        self.ignore_index = ignore_index
        weights = None if alpha is None else torch.as_tensor(alpha, dtype=torch.float32).flatten()
        self.register_buffer("alpha", weights)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """``logits (B, K, H, W)`` float and ``target (B, H, W)`` int64 class codes -> scalar loss.

        Any trailing spatial shape works (``(B, K)`` with ``(B,)`` too).
        """
        if logits.dim() != target.dim() + 1 or logits.shape[0] != target.shape[0]:
            raise ValueError(f"logits (B, K, ...) and target (B, ...) disagree: {tuple(logits.shape)} vs {tuple(target.shape)}")
        if self.alpha is not None and self.alpha.numel() != logits.shape[1]:
            raise ValueError(f"alpha has {self.alpha.numel()} weights but logits have {logits.shape[1]} classes")
        if self.ignore_index is None:
            keep = torch.ones_like(target, dtype=torch.bool)
            safe_target = target
        else:
            keep = target != self.ignore_index
            safe_target = torch.where(keep, target, 0)  # ignored values may be out of range (e.g. 255)
        log_p = F.log_softmax(logits.float(), dim=1).gather(1, safe_target.unsqueeze(1)).squeeze(1)
        loss = -log_p
        if self.gamma > 0:
            loss = loss * (1.0 - log_p.exp()).clamp_min(0.0).pow(self.gamma)
        if self.alpha is not None:
            loss = loss * self.alpha.to(loss.device)[safe_target]
        loss = torch.where(keep, loss, 0.0)
        return loss.sum() / keep.sum().clamp_min(1)
