"""UnetConvLSTM (Martinez et al., 2021) and its variable-sequence variant VUnetConvLSTM (paper, section 3).

Per date, a small U-Net encoder turns the image into features at full, 1/2, 1/4 and 1/8 resolution. The
1/8 features of all dates go through a ConvLSTM (N-to-1), whose last hidden state is decoded by transposed
convolutions with skip connections from the encoder features of the *last* date, the date being classified.
VUnetConvLSTM also feeds the day of year, as (sin, cos), to the ConvLSTM (paper, Figure 3), so one network
serves every target month of the year.

The model is split into :meth:`UnetConvLSTM.encode` (per frame, independent of the sequence) and
:meth:`UnetConvLSTM.decode` (per sequence), so full-scene inference can encode each date once and reuse the
features for the 12 target months whose window contains it; ``forward`` is ``encode`` followed by
``decode``.

Padded dates (months before the first acquisition) are handled in one of two ways, chosen by ``padding``:

* ``"mask"`` (default): padded frames are never encoded (so zero images never enter BatchNorm statistics)
  and the ConvLSTM skips them; a window with padded leading months gives the same output as the shorter
  sequence of its real months.
* ``"zeros"``: the paper's behaviour: padded dates are zero images that the network sees as data.
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

from tropicrop.models.convlstm import ConvLSTM

PADDING_MODES = ("mask", "zeros")


def day_of_year_encoding(doy: Tensor) -> Tensor:
    """Encode day of year on the unit circle, so that 31 December and 1 January are neighbours.

    Args:
        doy: ``(...)`` day of year (1-366), any numeric dtype.

    Returns:
        ``(..., 2)`` float32 ``(sin, cos)`` of ``2 * pi * doy / 365.25``.
    """
    angle = doy.to(torch.float32) * (2.0 * math.pi / 365.25)
    return torch.stack((torch.sin(angle), torch.cos(angle)), dim=-1)


@dataclass(frozen=True)
class SequenceFeatures:
    """Encoder features arranged as sequences, ready for :meth:`UnetConvLSTM.decode`.

    Attributes:
        gates: the ConvLSTM input gates of every date: ``(B, T, 4 * hidden, H_p / 2**L, W_p / 2**L)``, or
            with ``index`` a table of frames ``(N, 4 * hidden, ...)`` that ``index (B, T)`` picks from
            (``-1``: a padded date, zeros); see :meth:`ConvLSTM.recur`.
        skips: per level ``l = 0 .. L-1``, ``(B, C_l, H_p / 2**l, W_p / 2**l)`` features of the last date.
        size: ``(H, W)`` of the input tiles before padding to a multiple of ``2**L`` (``H_p, W_p``).
        index: ``(B, T)`` int64 rows of ``gates``, or ``None``.
        doy: ``(B, T)`` the day of year each date's gates were encoded with (-1: a padded date), or ``None``
            if the gates do not include the day of year (see :meth:`UnetConvLSTM.encode`).
    """

    gates: Tensor
    skips: tuple[Tensor, ...]
    size: tuple[int, int]
    index: Tensor | None = None
    doy: Tensor | None = None


@dataclass(frozen=True)
class EncoderFeatures:
    """Encoder features of ``N`` independent frames (the output of :meth:`UnetConvLSTM.encode`).

    Attributes:
        skips: per level ``l = 0 .. L-1``, ``(N, C_l, H_p / 2**l, W_p / 2**l)`` skip features.
        gates: ``(N, 4 * hidden, H_p / 2**L, W_p / 2**L)`` the ConvLSTM's input gate pre-activations of
            the coarsest features (:meth:`ConvLSTM.input_gates`): computed once per frame, however many
            sequences share it.
        size: ``(H, W)`` of the frames before padding to a multiple of ``2**L`` (``H_p, W_p``).
        doy: ``(N,)`` the day of year of each frame, included in ``gates`` (VUnetConvLSTM), or ``None``.
    """

    skips: tuple[Tensor, ...]
    gates: Tensor
    size: tuple[int, int]
    doy: Tensor | None = None

    def sequence(self, index: Tensor) -> SequenceFeatures:
        """Arrange frames into sequences: ``index`` ``(B, T)`` int64 picks frame ``index[b, t]`` for date
        ``t`` of sequence ``b``, ``-1`` marks a padded date (zero features). The last date must be a frame.

        Inference encodes every date of a scene once and calls this once per target month.
        """
        if index.dim() != 2:
            raise ValueError(f"index must have shape (B, T), got {tuple(index.shape)}")
        b, t = index.shape
        flat = index.reshape(-1)
        last = index[:, -1]
        if bool((last < 0).any()):
            raise ValueError("the last date of every sequence is the date being classified and must be a frame, not -1")
        if b == 1:  # one sequence (inference on the CPU): views, not copies
            row = int(last[0])
            skips = tuple(s[row : row + 1] for s in self.skips)
        else:
            skips = tuple(s[last] for s in self.skips)
        doy = None if self.doy is None else torch.where(index >= 0, self.doy[index.clamp_min(0)], -1)
        if len(flat) == len(self.gates) and torch.equal(flat, torch.arange(len(flat), device=flat.device)):
            # the frames are the sequences, in order (``forward`` with no padded date): a view
            return SequenceFeatures(self.gates.view(b, t, *self.gates.shape[1:]), skips, self.size, doy=doy)
        return SequenceFeatures(self.gates, skips, self.size, index, doy)


class ConvBNReLU(nn.Sequential):
    """3x3 convolution, BatchNorm and ReLU: ``(N, C_in, H, W) -> (N, C_out, H, W)``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class UpBNReLU(nn.Sequential):
    """Transposed 3x3 convolution with stride 2, BatchNorm and ReLU: ``(N, C_in, H, W) -> (N, C_out, 2H,
    2W)``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.ConvTranspose2d(in_channels, out_channels, 3, stride=2, padding=1, output_padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class UnetConvLSTM(nn.Module):
    """U-Net encoder per date, ConvLSTM over dates, U-Net decoder for the last date (paper, Figure 2).

    ``forward(images (B, T, C, H, W) float, doy (B, T) int, valid (B, T) bool) -> logits (B, K, H, W)`` for
    the last date, which must be valid. Any ``H, W`` work: tiles are replicate-padded to a multiple of
    ``2**L`` inside and the logits cropped back. This class ignores ``doy``; :class:`VUnetConvLSTM` uses it.

    Defaults are the paper's Table 3: encoder 16 at H, 16 at H/2, 32 at H/4, 64 at H/8 (average pooling
    down), ConvLSTM with 256 filters at H/8, transposed convolutions to 64, 32, 16 filters, each followed by
    the concatenated skip features of the last date, then a 3x3 conv with 16 filters and a 1x1 conv to ``K``
    class logits. 3.16 M parameters (``K = 7``), 93 % of them in the ConvLSTM.

    Args:
        in_channels: bands per image ``C`` (2 for VV, VH).
        num_classes: ``K`` logit channels, class 0 ("no reference") included.
        encoder_channels: filters at H, H/2, ..., H/2**L (``L + 1`` numbers).
        lstm_channels: ConvLSTM hidden channels.
        decoder_channels: filters of the ``L`` transposed convolutions, coarse to fine.
        head_channels: filters of the last 3x3 convolution.
        lstm_kernel_size: spatial size of the ConvLSTM gate convolution.
        padding: ``"mask"`` (padded dates are skipped) or ``"zeros"`` (the paper: seen as zero images).
        looks: side of a fixed mean filter (a spatial multilook, as the booster's ``looks``) whose output is
            given to the encoder beside the raw bands (``2 C`` input channels); 1 (default): raw bands only.
    """

    use_doy: ClassVar[bool] = False

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        encoder_channels: Sequence[int] = (16, 16, 32, 64),
        lstm_channels: int = 256,
        decoder_channels: Sequence[int] = (64, 32, 16),
        head_channels: int = 16,
        lstm_kernel_size: int = 3,
        padding: str = "mask",
        looks: int = 1,
    ) -> None:
        super().__init__()
        if looks < 1 or looks % 2 == 0:
            raise ValueError(f"looks must be an odd number >= 1, got {looks}")
        enc, dec = tuple(encoder_channels), tuple(decoder_channels)
        if len(enc) < 2:
            raise ValueError(f"encoder_channels needs at least 2 numbers, got {enc}")
        if len(dec) != len(enc) - 1:
            raise ValueError(f"decoder_channels needs one number per downsampling ({len(enc) - 1}), got {dec}")
        if padding not in PADDING_MODES:
            raise ValueError(f"padding must be one of {PADDING_MODES}, got {padding!r}")
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.padding = padding
        self.levels = len(enc) - 1
        self.looks = looks

        self.encoder = nn.ModuleList([ConvBNReLU(in_channels * (2 if looks > 1 else 1), enc[0])])
        for c_in, c_out in itertools.pairwise(enc):
            self.encoder.append(nn.Sequential(nn.AvgPool2d(2), ConvBNReLU(c_in, c_out)))

        self.lstm = ConvLSTM(enc[-1], lstm_channels, lstm_kernel_size, constant_channels=2 if self.use_doy else 0)

        skip_channels = enc[-2::-1]  # skips met coarse to fine: H/2**(L-1), ..., H
        self.decoder = nn.ModuleList()
        c_in = lstm_channels
        for c_out, c_skip in zip(dec, skip_channels, strict=True):
            self.decoder.append(UpBNReLU(c_in, c_out))
            c_in = c_out + c_skip
        self.head = nn.Sequential(ConvBNReLU(c_in, head_channels), nn.Conv2d(head_channels, num_classes, 1))

    def encode(self, frames: Tensor, doy: Tensor | None = None) -> EncoderFeatures:
        """Encode independent frames ``(N, C, H, W)`` into skip features and ConvLSTM input gates (see
        :class:`EncoderFeatures`); frames are replicate-padded to a multiple of ``2**L`` first.

        With ``doy (N,)``, the day of year of each frame, a model that uses it adds its share of the gates
        here, once per frame, instead of at every step of every sequence (:meth:`decode` then checks that
        the sequences' days of year are the frames'). Other models ignore it.
        """
        if frames.dim() != 4 or frames.shape[1] != self.in_channels:
            raise ValueError(f"encode expects frames of shape (N, {self.in_channels}, H, W), got {tuple(frames.shape)}")
        if doy is not None and tuple(doy.shape) != (len(frames),):
            raise ValueError(f"doy must have shape (N,) = ({len(frames)},), got {tuple(doy.shape)}")
        doy = doy if self.use_doy else None
        height, width = frames.shape[-2:]
        mult = 2**self.levels
        pad_h, pad_w = -height % mult, -width % mult
        x = F.pad(frames, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else frames
        if self.looks > 1:
            x = torch.cat((x, multilook(x, self.looks)), dim=1)
        feats = []
        for stage in self.encoder:
            x = stage(x)
            feats.append(x)
        constants = None if doy is None else day_of_year_encoding(doy)
        gates = self.lstm.input_gates(feats[-1].contiguous(), constants)  # the ConvLSTM keeps the default layout
        return EncoderFeatures(tuple(feats[:-1]), gates, (height, width), doy)

    def decode(self, features: SequenceFeatures, doy: Tensor, valid: Tensor) -> Tensor:
        """Classify the last date of each sequence.

        Args:
            features: sequences of encoder features (:meth:`EncoderFeatures.sequence`).
            doy: ``(B, T)`` day of year (used by :class:`VUnetConvLSTM` only).
            valid: ``(B, T)`` bool, ``False`` at padded dates (ignored with ``padding="zeros"``).

        Returns:
            ``(B, K, H, W)`` logits, cropped to ``features.size``.
        """
        self.check_doy(features, doy, valid)
        return self._decode(features, doy, valid)

    def check_doy(self, features: SequenceFeatures, doy: Tensor, valid: Tensor) -> None:
        """Raise ValueError if the gates were encoded with another day of year than ``doy`` (B, T)."""
        if features.doy is None:
            return
        computed = valid if self.padding == "mask" else torch.ones_like(valid)
        wrong = computed & (features.doy != doy)
        if bool(wrong.any()):
            b, t = (int(v) for v in torch.nonzero(wrong)[0])
            raise ValueError(f"sequence {b}, date {t}: the gates were encoded with day of year "
                             f"{int(features.doy[b, t])} but decode got {int(doy[b, t])}")

    def _decode(self, features: SequenceFeatures, doy: Tensor, valid: Tensor) -> Tensor:
        """:meth:`decode` without checking ``features.doy`` against ``doy``."""
        in_gates = features.doy is not None
        constants = day_of_year_encoding(doy) if self.use_doy and not in_gates else None
        y = self.lstm.recur(features.gates, valid if self.padding == "mask" else None, constants, features.index,
                            constants_in_gates=in_gates)
        return self.decode_state(y, features.skips, features.size)

    def decode_state(self, state: Tensor, skips: Sequence[Tensor], size: tuple[int, int]) -> Tensor:
        """The U-Net decoder: ConvLSTM states ``(N, hidden, H_p / 2**L, W_p / 2**L)`` and per level the
        skip features of the date each state classifies -> ``(N, K, H, W)`` logits cropped to ``size``."""
        y = state
        for up, skip in zip(self.decoder, reversed(skips), strict=True):
            y = torch.cat((up(y), skip), dim=1)
        logits: Tensor = self.head(y)
        height, width = size
        return logits[..., :height, :width].contiguous()

    def frames_of(self, images: Tensor, doy: Tensor, valid: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The frames to encode ``(N, C, H, W)``, their day of year ``(N,)`` and the ``(B, T)`` index of
        each date's frame (-1: a padded date): with ``padding="mask"`` the valid dates only, else all."""
        b, t = valid.shape
        flat, flat_doy = images.flatten(0, 1), doy.reshape(-1)
        if self.padding == "mask":
            keep = valid.reshape(-1)
            return flat[keep], flat_doy[keep], torch.where(keep, keep.cumsum(0) - 1, -1).view(b, t)
        return flat, flat_doy, torch.arange(b * t, device=images.device).view(b, t)

    def forward(self, images: Tensor, doy: Tensor, valid: Tensor) -> Tensor:
        """``images (B, T, C, H, W)``, ``doy (B, T)``, ``valid (B, T)`` bool -> ``(B, K, H, W)`` logits of
        the last date. With ``padding="mask"`` only valid frames are encoded."""
        self.check_inputs(images, doy, valid)
        frames, frame_doy, index = self.frames_of(images, doy, valid)
        return self._decode(self.encode(frames, frame_doy).sequence(index), doy, valid)

    def check_inputs(self, images: Tensor, doy: Tensor, valid: Tensor) -> None:
        """Raise ValueError with the offending shape if the inputs do not follow the model interface."""
        check_model_inputs(images, doy, valid, self.in_channels)


def multilook(frames: Tensor, looks: int) -> Tensor:
    """The ``looks`` x ``looks`` mean of each band of ``(N, C, H, W)`` frames, edges replicated (the same
    filter as the booster's features, ``scipy.ndimage.uniform_filter`` with ``mode="nearest"``)."""
    r = looks // 2
    return F.avg_pool2d(F.pad(frames, (r, r, r, r), mode="replicate"), looks, stride=1)


def check_model_inputs(images: Tensor, doy: Tensor, valid: Tensor, in_channels: int) -> None:
    """Raise ValueError with the offending shape unless ``images (B, T, in_channels, H, W)``, ``doy (B, T)``
    and ``valid (B, T)`` bool follow the model interface, with the last date (the one classified) valid."""
    if images.dim() != 5 or images.shape[2] != in_channels:
        raise ValueError(f"images must have shape (B, T, {in_channels}, H, W), got {tuple(images.shape)}")
    bt = tuple(images.shape[:2])
    if tuple(doy.shape) != bt:
        raise ValueError(f"doy must have shape (B, T) = {bt}, got {tuple(doy.shape)}")
    if tuple(valid.shape) != bt or valid.dtype != torch.bool:
        raise ValueError(f"valid must be a bool tensor of shape (B, T) = {bt}, got {valid.dtype} {tuple(valid.shape)}")
    if not bool(valid[:, -1].all()):
        bad = torch.nonzero(~valid[:, -1]).flatten().tolist()
        raise ValueError(
            f"the last date of every sequence is the date being classified and must be valid; "
            f"valid[:, -1] is False for batch items {bad}"
        )


class VUnetConvLSTM(UnetConvLSTM):
    """UnetConvLSTM with day of year as (sin, cos) concatenated to the ConvLSTM input (paper, Figure 3).

    Same interface and options as :class:`UnetConvLSTM`; ``doy (B, T)`` is encoded by
    :func:`day_of_year_encoding` into 2 values per date that the ConvLSTM takes as constant input channels
    (:class:`ConvLSTM` ``constant_channels=2``). The paper broadcasts them to ``H/2**L x W/2**L`` maps
    concatenated to each date's encoder output; their share of the gates is computed without building the
    maps, with the same result (``models/reference.py`` builds them and the tests compare), so one network
    classifies any target month.
    """

    use_doy: ClassVar[bool] = True
