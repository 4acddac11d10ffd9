"""U-TAE (Garnot & Landrieu, "Panoptic segmentation of satellite image time series with convolutional
temporal attention networks", ICCV 2021): a U-Net whose time axis is collapsed by temporal attention.

1. A U-Net encoder, shared over dates, turns every (valid) frame into features at full, 1/2, ..., 1/2**L
   resolution (strided convolutions down, as in U-TAE).
2. At 1/2**L, a lightweight temporal attention encoder (L-TAE, Garnot & Landrieu 2020) runs per pixel over
   the dates: ``heads`` attention heads, each with one learned *master query*, score every date's key;
   the softmax over the valid dates weights the date features (channel group ``g`` by head ``g``).
3. The attention maps, bilinearly upsampled, collapse the time axis of the skip features of every level
   in the same way (U-TAE's "group" aggregation), and a U-Net decoder combines them.

Dates: U-TAE encodes days since the first acquisition. Here a window may start in any month and one network
serves every target month, so a date enters as harmonics of its day of year (season) and the target date
(the last valid date, the one classified) is marked twice: a learned vector is added to its token, and the
master queries are shifted by a projection of its day-of-year encoding, so which dates a head attends to can
depend on the target month. Padded dates (``valid == False``) are never encoded, get an attention weight of
exactly 0 (``-inf`` score) and add nothing to any sum, so a padded window gives the output of the shorter one.

The model is split into :meth:`UTAE.encode` (per frame) and :meth:`UTAE.decode` (per window), so prediction
encodes each date of a tile once for every target month (``tropicrop.inference.net_probabilities``; U-TAE
satisfies ``tropicrop.models.interface.SharedEncoding``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tropicrop.models.unet_convlstm import ConvBNReLU, check_model_inputs


def seasonal_encoding(doy: Tensor, dims: int) -> Tensor:
    """``(...)`` day of year -> ``(..., dims)`` float32: ``sin, cos`` of ``2 pi k doy / 365.25`` for
    ``k = 1 .. dims / 2``: periodic over the year (31 December next to 1 January), periods from a year
    down to ``730 / dims`` days."""
    k = torch.arange(1, dims // 2 + 1, device=doy.device, dtype=torch.float32)
    angle = doy.to(torch.float32)[..., None] * k * (2.0 * math.pi / 365.25)
    return torch.cat((torch.sin(angle), torch.cos(angle)), dim=-1)


@dataclass(frozen=True)
class FrameFeatures:
    """U-Net encoder features of ``N`` frames, one tensor per level ``(N, C_l, H_p / 2**l, W_p / 2**l)``,
    ``size`` the frames' ``(H, W)`` before padding to a multiple of ``2**L``."""

    levels: tuple[Tensor, ...]
    size: tuple[int, int]

    def sequence(self, index: Tensor) -> FrameFeatures:
        """Arrange frames into windows: ``index (B, T)`` picks frame ``index[b, t]`` (-1: padded, zeros);
        every level becomes ``(B, T, C_l, ...)``."""
        b, t = index.shape
        flat = index.reshape(-1)
        absent = (flat < 0).view(-1, 1, 1, 1)
        out = []
        for level in self.levels:
            picked = level.index_select(0, flat.clamp_min(0))
            out.append(picked.masked_fill(absent, 0.0).view(b, t, *level.shape[1:]))
        return FrameFeatures(tuple(out), self.size)


class DownBlock(nn.Sequential):
    """Strided 4x4 convolution (halves H, W), BatchNorm, ReLU, then a 3x3 :class:`ConvBNReLU`."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(nn.Conv2d(in_channels, out_channels, 4, stride=2, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True), ConvBNReLU(out_channels, out_channels))


class UpBlock(nn.Module):
    """U-TAE decoder block: transposed 4x4 convolution (doubles H, W), the skip features through a 1x1
    convolution, then two 3x3 convolutions over their concatenation."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__()
        self.up = nn.Sequential(nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1, bias=False),
                                nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))
        self.skip = nn.Sequential(nn.Conv2d(skip_channels, skip_channels, 1, bias=False),
                                  nn.BatchNorm2d(skip_channels), nn.ReLU(inplace=True))
        self.conv = nn.Sequential(ConvBNReLU(out_channels + skip_channels, out_channels),
                                  ConvBNReLU(out_channels, out_channels))

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        out: Tensor = self.conv(torch.cat((self.up(x), self.skip(skip)), dim=1))
        return out


class LTAE(nn.Module):
    """Lightweight temporal attention encoder over the dates of every pixel (Garnot & Landrieu, 2020).

    ``forward(x (B, T, C, h, w), doy (B, T), valid (B, T), target (B,)) -> (out (B, C_out, h, w),
    attention (heads, B, T, h, w))``. Tokens are ``C -> d_model`` projections of the group-normalised
    features plus the seasonal encoding of their date (``d_model / heads`` dimensions, repeated per head);
    the target date's token also gets a learned vector. Each head has a learned master query of ``key_dims``
    dimensions, shifted by a projection of the target's seasonal encoding; its softmax over the valid dates
    weights the head's ``d_model / heads`` channels of the tokens. An MLP maps the ``d_model`` result to
    ``C_out``. ``attention`` is exactly 0 at padded dates and sums to 1 over the dates.
    """

    def __init__(self, in_channels: int, out_channels: int, *, d_model: int = 256, heads: int = 16,
                 key_dims: int = 4) -> None:
        super().__init__()
        if d_model % heads or (d_model // heads) % 2 or in_channels % heads:
            raise ValueError(f"L-TAE: d_model ({d_model}) and the input channels ({in_channels}) must be multiples "
                             f"of heads ({heads}), with an even d_model / heads")
        self.heads, self.key_dims, self.d_model = heads, key_dims, d_model
        self.in_norm = nn.GroupNorm(heads, in_channels)
        self.in_proj = nn.Linear(in_channels, d_model)
        self.target_mark = nn.Parameter(torch.zeros(d_model))
        self.query = nn.Parameter(torch.randn(heads, key_dims) * key_dims**-0.5)
        self.query_shift = nn.Linear(d_model // heads, heads * key_dims)
        self.keys = nn.Linear(d_model, heads * key_dims)
        self.mlp = nn.Sequential(nn.Linear(d_model, out_channels), nn.BatchNorm1d(out_channels), nn.ReLU(inplace=True))
        self.out_norm = nn.GroupNorm(heads, out_channels) if out_channels % heads == 0 else nn.Identity()

    def forward(self, x: Tensor, doy: Tensor, valid: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        b, t, c, h, w = x.shape
        heads, dk = self.heads, self.key_dims
        tokens = x.permute(0, 3, 4, 1, 2).reshape(-1, c)  # (B h w T, C): one sequence per pixel
        tokens = self.in_proj(self.in_norm(tokens)).view(b, h * w, t, self.d_model)
        season = seasonal_encoding(doy, self.d_model // heads)  # (B, T, d_model / heads)
        marks = F.one_hot(target, t).to(tokens.dtype)[..., None] * self.target_mark  # (B, T, d_model)
        tokens = tokens + (season.repeat(1, 1, heads) + marks)[:, None]
        keys = self.keys(tokens).view(b, h * w, t, heads, dk)
        query = self.query + self.query_shift(season[torch.arange(b), target]).view(b, heads, dk)  # (B, heads, dk)
        scores = torch.einsum("bptgd,bgd->bpgt", keys, query) / math.sqrt(dk)  # (B, h w, heads, T)
        scores = scores.masked_fill(~valid[:, None, None, :], float("-inf"))
        attention = torch.softmax(scores, dim=-1)
        values = tokens.view(b, h * w, t, heads, self.d_model // heads)
        out = torch.einsum("bpgt,bptgc->bpgc", attention, values).reshape(-1, self.d_model)
        out = self.out_norm(self.mlp(out))
        out = out.view(b, h, w, -1).permute(0, 3, 1, 2)
        return out.contiguous(), attention.view(b, h, w, heads, t).permute(3, 0, 4, 1, 2)


def collapse_time(features: Tensor, attention: Tensor) -> Tensor:
    """U-TAE's group aggregation: ``features (B, T, C, H, W)`` weighted over ``T`` by ``attention (heads, B,
    T, h, w)`` upsampled bilinearly to ``H x W``, channel group ``g`` by head ``g`` -> ``(B, C, H, W)``."""
    heads, b, t, h, w = attention.shape
    _, _, c, height, width = features.shape
    if (height, width) != (h, w):
        attention = F.interpolate(attention.reshape(heads * b, t, h, w), size=(height, width), mode="bilinear",
                                  align_corners=False).view(heads, b, t, height, width)
    grouped = features.view(b, t, heads, c // heads, height, width)
    return torch.einsum("gbtyx,btgcyx->bgcyx", attention, grouped).reshape(b, c, height, width)


class UTAE(nn.Module):
    """U-TAE: U-Net encoder per date, L-TAE over dates, time of the skips collapsed by its attention.
    and a U-Net decoder (Garnot & Landrieu, ICCV 2021).

    ``forward(images (B, T, C, H, W), doy (B, T) int, valid (B, T) bool) -> logits (B, K, H, W)`` of the
    last date (which must be valid), any ``H, W`` (replicate-padded to a multiple of ``2**L`` inside and
    cropped). Defaults follow U-TAE's PASTIS configuration (encoder 64, 64, 64, 128; decoder 128, 64, 32,
    32 coarse to fine; L-TAE with 16 heads, keys of 4, d_model 256): 1.0 M parameters for ``K = 7``.

    Args:
        in_channels: bands per image ``C``; num_classes: ``K`` logit channels (class 0 included).
        encoder_channels: filters at H, H/2, ..., H/2**L (``L + 1`` numbers), each a multiple of ``heads``.
        decoder_channels: filters of the ``L`` decoder blocks, coarse to fine.
        head_channels: filters of the last 3x3 convolution before the 1x1 class convolution.
        d_model, heads, key_dims: the L-TAE's token width, attention heads and query/key width.
    """

    padding: ClassVar[str] = "mask"  # padded dates are never encoded (models.interface.SharedEncoding)

    def __init__(self, in_channels: int, num_classes: int, *, encoder_channels: Sequence[int] = (64, 64, 64, 128),
                 decoder_channels: Sequence[int] = (64, 32, 32), head_channels: int = 32, d_model: int = 256,
                 heads: int = 16, key_dims: int = 4) -> None:
        super().__init__()
        enc, dec = tuple(encoder_channels), tuple(decoder_channels)
        if len(enc) < 2 or len(dec) != len(enc) - 1:
            raise ValueError(f"encoder_channels needs L + 1 >= 2 numbers and decoder_channels L, got {enc} and {dec}")
        if any(c % heads for c in enc):
            raise ValueError(f"every encoder width must be a multiple of heads ({heads}), got {enc}")
        self.in_channels, self.num_classes, self.levels = in_channels, num_classes, len(enc) - 1
        self.encoder = nn.ModuleList([nn.Sequential(ConvBNReLU(in_channels, enc[0]), ConvBNReLU(enc[0], enc[0]))])
        self.encoder.extend(DownBlock(c_in, c_out) for c_in, c_out in itertools.pairwise(enc))
        self.ltae = LTAE(enc[-1], enc[-1], d_model=d_model, heads=heads, key_dims=key_dims)
        self.decoder = nn.ModuleList()
        c_in = enc[-1]
        for c_out, c_skip in zip(dec, enc[-2::-1], strict=True):
            self.decoder.append(UpBlock(c_in, c_skip, c_out))
            c_in = c_out
        self.head = nn.Sequential(ConvBNReLU(c_in, head_channels), nn.Conv2d(head_channels, num_classes, 1))

    def encode(self, frames: Tensor, doy: Tensor | None = None) -> FrameFeatures:
        """Encoder features of independent frames ``(N, C, H, W)`` (replicate-padded to a multiple of
        ``2**L``); ``doy`` is accepted for the common interface and unused (dates enter in :meth:`decode`)."""
        if frames.dim() != 4 or frames.shape[1] != self.in_channels:
            raise ValueError(f"encode expects frames of shape (N, {self.in_channels}, H, W), got {tuple(frames.shape)}")
        height, width = frames.shape[-2:]
        mult = 2**self.levels
        x = F.pad(frames, (0, -width % mult, 0, -height % mult), mode="replicate") if (height % mult or width % mult) else frames
        levels = []
        for stage in self.encoder:
            x = stage(x)
            levels.append(x)
        return FrameFeatures(tuple(levels), (height, width))

    def decode(self, features: FrameFeatures, doy: Tensor, valid: Tensor) -> Tensor:
        """Windows of encoder features (``FrameFeatures.sequence``, every level ``(B, T, C_l, ...)``, zeros at
        padded dates), ``doy``, ``valid`` ``(B, T)`` -> logits ``(B, K, H, W)`` of the last valid date."""
        target = (valid.shape[1] - 1) - valid.flip(1).to(torch.int64).argmax(1)  # last valid date (B,)
        bottom, attention = self.ltae(features.levels[-1], doy, valid, target)
        y = bottom
        for block, skip in zip(self.decoder, reversed(features.levels[:-1]), strict=True):
            y = block(y, collapse_time(skip, attention))
        logits: Tensor = self.head(y)
        height, width = features.size
        return logits[..., :height, :width].contiguous()

    def forward(self, images: Tensor, doy: Tensor, valid: Tensor) -> Tensor:
        """``images (B, T, C, H, W)``, ``doy (B, T)``, ``valid (B, T)`` bool -> ``(B, K, H, W)`` logits of
        the last date; only valid frames are encoded."""
        check_model_inputs(images, doy, valid, self.in_channels)
        b, t = valid.shape
        keep = valid.reshape(-1)
        index = torch.where(keep, keep.cumsum(0) - 1, -1).view(b, t)
        return self.decode(self.encode(images.flatten(0, 1)[keep]).sequence(index), doy, valid)
