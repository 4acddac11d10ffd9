"""The paper's networks written plainly, as a reader would from Table 3 and Figures 2-3: the yardstick.

:mod:`tropicrop.models.unet_convlstm` computes the same function faster (split gate convolution, shared
encoding, a hand-written backward pass through time). These classes have the same parameter names, so one
state dict loads into both, and the tests hold the fast networks to these in outputs and gradients
(float64, both padding modes). ``benchmarks/model_throughput.py`` uses them as its plain baseline.

Nothing here is tuned: every date is encoded, the cell concatenates ``[x_t, h]`` and convolves at every
step, autograd does the rest.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tropicrop.models.unet_convlstm import ConvBNReLU, UpBNReLU, day_of_year_encoding


class ConvLSTMCell(nn.Module):
    """Textbook ConvLSTM cell (Shi et al., 2015): one convolution of ``[x, h]`` gives the input, forget and
    output gates and the candidate, in that order; ``c' = f c + i g``, ``h' = o tanh(c')``."""

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.hidden_channels = hidden_channels
        self.conv = nn.Conv2d(in_channels + hidden_channels, 4 * hidden_channels, kernel_size, padding=kernel_size // 2)

    def forward(self, x: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        """One step: ``x (B, C, H, W)``, state ``h, c (B, hidden, H, W)`` -> the new ``h, c``."""
        i, f, o, g = torch.split(self.conv(torch.cat([x, h], dim=1)), self.hidden_channels, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class UnetConvLSTM(nn.Module):
    """Figure 2: a U-Net encoder per date, a ConvLSTM over the dates' coarsest features (N-to-1), and a
    decoder from its last state with skip connections from the last date's encoder features.

    ``forward(images (B, T, C, H, W), doy (B, T), valid (B, T)) -> logits (B, K, H, W)`` of the last date.
    ``padding="mask"``: padded dates (``valid`` false) are not encoded and the cell keeps its state over
    them; ``"zeros"``: they are zero images seen as data (the paper). Options as the fast network's.
    """

    use_doy = False

    def __init__(self, in_channels: int, num_classes: int, *, encoder_channels: Sequence[int] = (16, 16, 32, 64),
                 lstm_channels: int = 256, decoder_channels: Sequence[int] = (64, 32, 16), head_channels: int = 16,
                 lstm_kernel_size: int = 3, padding: str = "mask") -> None:
        super().__init__()
        enc, dec = tuple(encoder_channels), tuple(decoder_channels)
        self.padding = padding
        self.encoder = nn.ModuleList([ConvBNReLU(in_channels, enc[0])])
        for c_in, c_out in itertools.pairwise(enc):  # average pooling halves the size before each level
            self.encoder.append(nn.Sequential(nn.AvgPool2d(2), ConvBNReLU(c_in, c_out)))
        self.lstm = ConvLSTMCell(enc[-1] + (2 if self.use_doy else 0), lstm_channels, lstm_kernel_size)
        self.decoder = nn.ModuleList()
        c_in = lstm_channels
        for c_out, c_skip in zip(dec, enc[-2::-1], strict=True):
            self.decoder.append(UpBNReLU(c_in, c_out))
            c_in = c_out + c_skip  # the upsampled features, then the last date's skip features
        self.head = nn.Sequential(ConvBNReLU(c_in, head_channels), nn.Conv2d(head_channels, num_classes, 1))

    def forward(self, images: Tensor, doy: Tensor, valid: Tensor) -> Tensor:
        b, t, _, height, width = images.shape
        mult = 2 ** (len(self.encoder) - 1)  # pad the tile to a multiple of the downsampling factor
        x = F.pad(images.flatten(0, 1), (0, -width % mult, 0, -height % mult), mode="replicate")
        keep = valid.flatten() if self.padding == "mask" else torch.ones(b * t, dtype=torch.bool, device=x.device)
        features = []  # per level: (B * T, C_l, H_l, W_l), zero at dates that were not encoded
        y = x[keep]
        for stage in self.encoder:
            y = stage(y)
            level = y.new_zeros(b * t, *y.shape[1:])
            level[keep] = y
            features.append(level.view(b, t, *y.shape[1:]))
        coarse = features[-1]
        h = coarse.new_zeros(b, self.lstm.hidden_channels, *coarse.shape[-2:])
        c = torch.zeros_like(h)
        for step in range(t):
            x_t = coarse[:, step]
            if self.use_doy:  # Figure 3: (sin, cos) of the day of year as two constant maps
                code = day_of_year_encoding(doy[:, step]).to(x_t.dtype)
                x_t = torch.cat([x_t, code[:, :, None, None].expand(-1, -1, *x_t.shape[-2:])], dim=1)
            h_new, c_new = self.lstm(x_t, h, c)
            if self.padding == "mask":  # a padded date leaves the state as it was
                real = valid[:, step].view(b, 1, 1, 1)
                h_new, c_new = torch.where(real, h_new, h), torch.where(real, c_new, c)
            h, c = h_new, c_new
        y = h
        for up, skip in zip(self.decoder, reversed(features[:-1]), strict=True):
            y = torch.cat([up(y), skip[:, -1]], dim=1)
        logits: Tensor = self.head(y)
        return logits[..., :height, :width]


class VUnetConvLSTM(UnetConvLSTM):
    """Figure 3: UnetConvLSTM whose ConvLSTM also sees the day of year of each date, as (sin, cos) maps
    concatenated to the encoder's coarsest features, so one network serves every target month."""

    use_doy = True


REFERENCES: dict[str, type[UnetConvLSTM]] = {"unet_convlstm": UnetConvLSTM, "vunet_convlstm": VUnetConvLSTM}
