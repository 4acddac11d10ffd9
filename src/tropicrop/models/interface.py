"""What inference may ask of a network beyond ``forward``, declared rather than looked up with hasattr."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import Tensor

from tropicrop.models.unet_convlstm import EncoderFeatures, SequenceFeatures


@runtime_checkable
class SharedEncoding(Protocol):
    """A network whose per-date encoding does not depend on the sequence, so full-scene inference can
    encode each date of a tile once and decode every window that contains it (the UnetConvLSTM family).

    ``forward(images, doy, valid)`` must equal ``decode(encode(frames).sequence(index), doy, valid)``;
    ``padding`` says how padded dates enter: ``"mask"`` (not encoded) or ``"zeros"`` (zero images).
    """

    padding: str

    def encode(self, frames: Tensor, doy: Tensor | None = None) -> EncoderFeatures:
        """Per-frame features of ``frames (N, C, H, W)``; with ``doy (N,)`` the day of year enters once."""
        ...

    def decode(self, features: SequenceFeatures, doy: Tensor, valid: Tensor) -> Tensor:
        """Logits ``(B, K, H, W)`` of the last date of each sequence of ``features``."""
        ...
