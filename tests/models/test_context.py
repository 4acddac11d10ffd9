"""The context margin measured on the network: the reach of its layers, widened by the recurrence over dates."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from tiny import SMALL_NET
from tropicrop.models import build
from tropicrop.models.context import context_margin, downsampling, influence


class LastFrameConv(nn.Module):
    """A k x k convolution of the last date: its reach is exactly k // 2 pixels."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 3, k, padding=k // 2)

    def forward(self, images: Tensor, doy: Tensor, valid: Tensor) -> Tensor:
        out: Tensor = self.conv(images[:, -1])
        return out


@pytest.mark.parametrize("k", [3, 7, 15])
def test_margin_is_the_reach_of_the_layers(k: int) -> None:
    torch.manual_seed(0)
    model = LastFrameConv(k).eval()
    assert influence(model, 2, 3, 64).receptive == k // 2
    assert context_margin(model, 2, 3, tolerance=0.0) == k // 2
    assert context_margin(model, 2, 3) <= k // 2


def test_recurrence_over_dates_widens_the_reach_of_a_unet_convlstm() -> None:
    """The ConvLSTM's 3x3 recurrent convolution at 1/8 resolution reaches one cell (8 px) further per date."""
    torch.manual_seed(0)
    model = build("vunet_convlstm", 2, num_classes=4, **SMALL_NET).eval()
    one, twelve = influence(model, 2, 1, 256), influence(model, 2, 12, 256)
    assert downsampling(model) == 8
    assert twelve.receptive >= one.receptive + 8 * 10
    margin = context_margin(model, 2, 12)
    assert margin % 8 == 0 and 0 < margin <= twelve.receptive + 8
