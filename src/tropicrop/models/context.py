"""How much spatial context a network uses: the margin a tile needs so that its prediction equals the whole scene's.

A pixel's logits depend on every input pixel in the network's receptive field. For UnetConvLSTM that field
is wide (three poolings, then a 3x3 recurrent convolution at 1/8 resolution applied once per date: 12 dates
reach about 140 px), but the influence of far pixels is tiny. :func:`influence` measures it on the network
itself, by automatic differentiation: the gradient of a block of output logits with respect to every input
pixel, summed over dates and bands, gathered by distance from the block. :func:`context_margin` is the
distance within which all but a ``tolerance`` share of that influence lies, rounded up to the network's
downsampling factor. (Reading the whole receptive field instead would cost 3 to 10 times the work per tile
for differences far below what changes a class.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

TOLERANCE = 1e-3  # share of the influence allowed to lie beyond the margin (see benchmarks/tile_invariance.py)
MAX_SIDE = 1024  # the largest input side the measurement grows to


def downsampling(model: nn.Module) -> int:
    """The factor by which the network downsamples (``2**levels`` for the U-Nets, else 1): tiles must start
    on multiples of it for their pooling cells to be the whole scene's."""
    levels = getattr(model, "levels", 0)
    return 2 ** int(levels) if isinstance(levels, int) else 1


@dataclass(frozen=True)
class Influence:
    """Influence of input pixels on a block of output pixels, by Chebyshev distance from the block.

    Attributes:
        per_distance: ``(D,)`` summed absolute gradient of the input pixels at distance ``d`` (0 = inside
            the block's rows and columns).
        side: the side of the square input it was measured on.
    """

    per_distance: np.ndarray
    side: int

    def radius(self, tolerance: float) -> int:
        """The smallest distance within which all but ``tolerance`` of the influence lies."""
        cumulative = np.cumsum(self.per_distance)
        total = float(cumulative[-1])
        if total <= 0:
            return 0
        return int(np.searchsorted(cumulative, (1.0 - tolerance) * total))

    def share_beyond(self, distance: int) -> float:
        """The share of the influence at ``distance`` or farther."""
        total = float(self.per_distance.sum())
        return float(self.per_distance[distance:].sum()) / total if total > 0 else 0.0

    @property
    def receptive(self) -> int:
        """The largest distance with any influence at all (the receptive field seen on this input)."""
        nonzero = np.flatnonzero(self.per_distance > 0)
        return int(nonzero[-1]) if len(nonzero) else 0


def influence(model: nn.Module, in_channels: int, length: int, side: int, seed: int = 0) -> Influence:
    """Measure :class:`Influence` of ``model`` (in eval mode, on its device) on one random sequence.

    The input is ``length`` dates of ``side x side`` standard-normal pixels (what normalised images look
    like), every date valid, a month apart. The output block is the ``f x f`` cell (``f``: the
    :func:`downsampling` factor) at the centre, so every position within a pooling cell counts; its logits
    are weighted by random signs so that no class is favoured.
    """
    param = next(model.parameters())
    device = param.device
    gen = torch.Generator().manual_seed(seed)
    images = torch.randn((1, length, in_channels, side, side), generator=gen).to(device).requires_grad_(True)
    doy = torch.tensor([[1 + (15 + 30 * t) % 365 for t in range(length)]], device=device)
    valid = torch.ones((1, length), dtype=torch.bool, device=device)
    f = downsampling(model)
    top = (side // 2) // f * f
    with torch.enable_grad():
        logits: Tensor = model(images, doy, valid)
        block = logits[0, :, top : top + f, top : top + f]
        signs = torch.randint(0, 2, block.shape, generator=gen).to(device, block.dtype) * 2 - 1
        (grad,) = torch.autograd.grad((block * signs).sum(), images)
    magnitude = grad.abs().sum(dim=(0, 1, 2)).double().cpu().numpy()  # (side, side)
    rows = np.arange(side)
    to_block = np.maximum(np.maximum(top - rows, rows - (top + f - 1)), 0)  # distance of a row (or column)
    distance = np.maximum(to_block[:, None], to_block[None, :])
    per_distance = np.bincount(distance.ravel(), weights=magnitude.ravel())
    return Influence(per_distance, side)


def context_margin(model: nn.Module, in_channels: int, length: int, tolerance: float = TOLERANCE,
                   seed: int = 0) -> int:
    """Pixels of real scene context a tile needs on each side so that cutting it off changes at most a
    ``tolerance`` share of the network's influence on any pixel; a multiple of :func:`downsampling`.

    Measured on inputs that grow (from 16 downsampling cells a side, doubling, up to :data:`MAX_SIDE`) until
    the influence in the three cells next to the input's own border is under a quarter of ``tolerance``: the
    border cuts the influence short, so it must lie where little is left (the influence decays outwards,
    so what lies beyond is less still). A trained quick.yaml network: 34 px at 1e-3 on a 128 px input,
    36 px on 256 px; both round to 40.
    """
    f = downsampling(model)
    side = 16 * f
    while True:
        found = influence(model, in_channels, length, side, seed)
        if found.share_beyond(side // 2 - 3 * f) <= tolerance / 4 or 2 * side > MAX_SIDE:
            return int(math.ceil(found.radius(tolerance) / f) * f)
        side *= 2
