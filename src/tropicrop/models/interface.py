"""What inference may ask of a network beyond ``forward``, declared rather than looked up with hasattr."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from torch import Tensor


class EncodedFrames(Protocol):
    """Per-frame features of ``N`` frames (e.g. :class:`~tropicrop.models.unet_convlstm.EncoderFeatures`,
    :class:`~tropicrop.models.utae.FrameFeatures`)."""

    def sequence(self, index: Tensor) -> Any:
        """The features arranged into windows: ``index (B, T)`` picks frame ``index[b, t]`` (-1: padded)."""
        ...


@runtime_checkable
class SharedEncoding(Protocol):
    """A network whose per-date encoding does not depend on the sequence, so full-scene inference can
    encode each date of a tile once and decode every window that contains it (the UnetConvLSTM family,
    U-TAE).

    ``forward(images, doy, valid)`` must equal ``decode(encode(frames).sequence(index), doy, valid)``;
    ``padding`` says how padded dates enter: ``"mask"`` (not encoded) or ``"zeros"`` (zero images).
    A network without ``encode``/``decode``/``padding`` (e.g. unet3d, whose convolutions mix dates) is run
    with ``forward`` per window.
    """

    padding: str

    def encode(self, frames: Tensor, doy: Tensor | None = None) -> EncodedFrames:
        """Per-frame features of ``frames (N, C, H, W)``; with ``doy (N,)`` the day of year enters once."""
        ...

    def decode(self, features: Any, doy: Tensor, valid: Tensor) -> Tensor:
        """Logits ``(B, K, H, W)`` of the last date of each sequence of ``features.sequence(index)``."""
        ...


@runtime_checkable
class SequenceDecoding(SharedEncoding, Protocol):
    """A shared-encoding network that decodes any step of one recurrent pass (vunet_convlstm_seq), so
    inference maps every target month of a tile from one pass (``inference.tile.sequence_probabilities``)."""

    def decode_steps(self, features: Any, index: Tensor, doy: Tensor, valid: Tensor, steps: Tensor) -> Tensor:
        """Logits ``(M, K, H, W)`` of the ``M = steps.sum()`` chosen steps of sequences ``index (B, T)`` of
        encoded frames ``features``."""
        ...
