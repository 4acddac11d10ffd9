"""3D U-Net: convolutions over (time, height, width), the time axis reduced before a 2-D decoder.

The paper names 3D convolutions as the other way to learn spatio-temporal features (section 5); the PASTIS
benchmark (Garnot & Landrieu, ICCV 2021, Table 1) runs the 3D U-Net of Rustowicz et al. ("Semantic
segmentation of crop type in Africa", CVPR Workshops 2019) as its baseline. This one follows that shape:
per level two 3x3x3 convolutions with BatchNorm and ReLU, spatial max pooling (time is never pooled); then
every level's features are reduced over time (``reduction``: masked mean, masked max, or a learned per-pixel
softmax over the dates) and decoded by the same 2-D U-Net decoder as UnetConvLSTM.

Each date enters as its bands plus (sin, cos) of its day of year and a channel that is 1 at the target date
(the last valid date), so that the network knows both the season and the date it classifies.

Padded dates (``valid == False``): their features are zero at the input of every convolution (so they act
exactly like the temporal zero padding at a sequence's start), BatchNorm statistics are taken over the valid
dates only, and the reductions skip them. A window whose padded dates come first (as ``tropicrop.windows`` builds
them) therefore gives exactly the output of the shorter window. (A gap in the middle would act as zero
frames, not be closed up: no window here has one.)
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tropicrop.models.unet_convlstm import ConvBNReLU, UpBNReLU, check_model_inputs, day_of_year_encoding

REDUCTIONS = ("mean", "max", "attention")


class MaskedConv3d(nn.Module):
    """3x3x3 convolution, BatchNorm over the valid dates only, ReLU; padded dates come out as zeros.

    ``forward(x (B, T, C_in, H, W), valid (B, T)) -> (B, T, C_out, H, W)``; ``x`` must be zero at padded
    dates (then the convolution's temporal zero padding and padded dates are the same thing).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_channels, out_channels, 3, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(out_channels)  # over (valid dates, H, W): the valid frames are its batch

    def forward(self, x: Tensor, valid: Tensor) -> Tensor:
        y = self.conv(x.transpose(1, 2)).transpose(1, 2)  # (B, T, C_out, H, W)
        if bool(valid.all()):
            return F.relu(self.norm(y.flatten(0, 1))).view(y.shape)
        out = y.new_zeros(y.shape)
        out[valid] = F.relu(self.norm(y[valid]))
        return out


class DoubleConv3d(nn.Module):
    """Two :class:`MaskedConv3d`, ``C_in -> C_out -> C_out``: one level of the encoder."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.first = MaskedConv3d(in_channels, out_channels)
        self.second = MaskedConv3d(out_channels, out_channels)

    def forward(self, x: Tensor, valid: Tensor) -> Tensor:
        out: Tensor = self.second(self.first(x, valid), valid)
        return out


class TemporalReduction(nn.Module):
    """``(B, T, C, H, W)`` features and ``valid (B, T)`` -> ``(B, C, H, W)``: the mean or max over the
    valid dates, or (``"attention"``) their sum weighted per pixel by a softmax over the valid dates of a
    learned 1x1 score."""

    def __init__(self, channels: int, mode: str) -> None:
        super().__init__()
        if mode not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {mode!r}")
        self.mode = mode
        self.score = nn.Conv2d(channels, 1, 1) if mode == "attention" else None

    def forward(self, x: Tensor, valid: Tensor) -> Tensor:
        mask = valid.view(*valid.shape, 1, 1, 1)
        if self.mode == "mean":
            return x.masked_fill(~mask, 0.0).sum(1) / valid.sum(1).view(-1, 1, 1, 1).to(x.dtype)
        if self.mode == "max":
            return x.masked_fill(~mask, float("-inf")).amax(1)
        assert self.score is not None
        scores = self.score(x.flatten(0, 1)).view(*x.shape[:2], 1, *x.shape[3:])
        weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1)
        return (weights * x).sum(1)


class UNet3D(nn.Module):
    """3D U-Net encoder over (time, H, W), time reduced per level, 2-D U-Net decoder (Rustowicz et al. 2019).

    ``forward(images (B, T, C, H, W), doy (B, T) int, valid (B, T) bool) -> logits (B, K, H, W)`` of the
    last date (which must be valid), any ``H, W`` (replicate-padded to a multiple of ``2**L`` inside and
    cropped). Defaults: encoder 16, 32, 64, 128 (two 3x3x3 convolutions each), decoder 64, 32, 16 coarse to
    fine as in UnetConvLSTM; 1.0 M parameters for ``K = 7``.

    Args:
        in_channels: bands per image ``C``; num_classes: ``K`` logit channels (class 0 included).
        encoder_channels: filters at H, H/2, ..., H/2**L (``L + 1`` numbers).
        decoder_channels: filters of the ``L`` transposed convolutions, coarse to fine.
        head_channels: filters of the last 3x3 convolution.
        reduction: ``"mean"``, ``"max"`` or ``"attention"`` over the valid dates.
    """

    def __init__(self, in_channels: int, num_classes: int, *, encoder_channels: Sequence[int] = (16, 32, 64, 128),
                 decoder_channels: Sequence[int] = (64, 32, 16), head_channels: int = 16,
                 reduction: str = "mean") -> None:
        super().__init__()
        enc, dec = tuple(encoder_channels), tuple(decoder_channels)
        if len(enc) < 2 or len(dec) != len(enc) - 1:
            raise ValueError(f"encoder_channels needs L + 1 >= 2 numbers and decoder_channels L, got {enc} and {dec}")
        self.in_channels, self.num_classes, self.levels = in_channels, num_classes, len(enc) - 1
        widths = (in_channels + 3, *enc)  # bands, (sin, cos) of day of year, target marker
        self.encoder = nn.ModuleList(DoubleConv3d(c_in, c_out) for c_in, c_out in itertools.pairwise(widths))
        self.reduce = nn.ModuleList(TemporalReduction(c, reduction) for c in enc)
        self.decoder = nn.ModuleList()
        c_in = enc[-1]
        for c_out, c_skip in zip(dec, enc[-2::-1], strict=True):
            self.decoder.append(UpBNReLU(c_in, c_out))
            c_in = c_out + c_skip
        self.head = nn.Sequential(ConvBNReLU(c_in, head_channels), nn.Conv2d(head_channels, num_classes, 1))

    def inputs(self, images: Tensor, doy: Tensor, valid: Tensor) -> Tensor:
        """``(B, T, C + 3, H, W)``: bands, (sin, cos) of day of year, 1 at the target date; zero at padded
        dates."""
        b, t, _, height, width = images.shape
        target = (t - 1) - valid.flip(1).to(torch.int64).argmax(1)  # last valid date
        extra = torch.cat((day_of_year_encoding(doy), F.one_hot(target, t).to(torch.float32)[..., None]), dim=-1)
        x = torch.cat((images, extra.to(images.dtype)[..., None, None].expand(b, t, 3, height, width)), dim=2)
        return x * valid.view(b, t, 1, 1, 1).to(x.dtype)

    def forward(self, images: Tensor, doy: Tensor, valid: Tensor) -> Tensor:
        """``images (B, T, C, H, W)``, ``doy (B, T)``, ``valid (B, T)`` bool -> ``(B, K, H, W)`` logits."""
        check_model_inputs(images, doy, valid, self.in_channels)
        height, width = images.shape[-2:]
        mult = 2**self.levels
        x = self.inputs(images, doy, valid)
        if height % mult or width % mult:
            x = F.pad(x.flatten(0, 1), (0, -width % mult, 0, -height % mult), mode="replicate").view(
                *x.shape[:3], height + (-height % mult), width + (-width % mult))
        reduced = []
        for level, (stage, reduce) in enumerate(zip(self.encoder, self.reduce, strict=True)):
            if level:
                x = F.max_pool2d(x.flatten(0, 1), 2).view(*x.shape[:3], x.shape[3] // 2, x.shape[4] // 2)
            x = stage(x, valid)
            reduced.append(reduce(x, valid))
        y = reduced[-1]
        for up, skip in zip(self.decoder, reversed(reduced[:-1]), strict=True):
            y = torch.cat((up(y), skip), dim=1)
        logits: Tensor = self.head(y)
        return logits[..., :height, :width].contiguous()
