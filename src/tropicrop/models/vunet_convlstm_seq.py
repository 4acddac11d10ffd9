"""VUnetConvLSTM many-to-many: one ConvLSTM pass over a dated sequence, a map at every step.

The paper's VUnetConvLSTM (section 3, Figure 3) is N-to-1: to map 12 months it runs 12 windows of 12 dates,
144 ConvLSTM steps per tile. The ConvLSTM of Shi et al. (2015) is naturally many-to-many, and the hidden
state after step ``t`` has seen every date up to ``t``: decoding it with the skip features of date ``t``
classifies date ``t``. This network runs the same encoder, ConvLSTM (day of year as (sin, cos) in its
input) and decoder as :class:`~tropicrop.models.unet_convlstm.VUnetConvLSTM`; it only decodes more steps:

* ``forward`` (the common interface) decodes the last date only and equals VUnetConvLSTM's forward with
  the same weights;
* :meth:`forward_steps` / :meth:`forward_sequence` decode chosen steps / every valid step, each with the
  skip features of its own date. Training puts the loss on every labelled date of a window
  (``sequence_output`` tells the training step so; more supervision per sample);
* :meth:`decode_steps` decodes steps of sequences of already encoded frames, so prediction can run one
  ConvLSTM pass over a tile's whole sequence and decode every target month from it
  (:func:`tropicrop.inference.sequence_probabilities`).

Padded dates are skipped exactly as in VUnetConvLSTM (``padding="mask"``): their step carries the state
over, and they are never decoded.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from tropicrop.models.unet_convlstm import EncoderFeatures, SequenceFeatures, VUnetConvLSTM, day_of_year_encoding


class VUnetConvLSTMSeq(VUnetConvLSTM):
    """VUnetConvLSTM many-to-many: every step of one ConvLSTM pass decoded with its own date's skips.

    Same options and parameters as :class:`VUnetConvLSTM` (a trained VUnetConvLSTM's weights load into
    it). ``forward(images (B, T, C, H, W), doy (B, T), valid (B, T)) -> (B, K, H, W)`` logits of the last
    date; :meth:`forward_sequence` returns ``(B, T, K, H, W)`` logits of every date.
    """

    sequence_output: ClassVar[bool] = True

    def decode_steps(self, features: EncoderFeatures, index: Tensor, doy: Tensor, valid: Tensor,
                     steps: Tensor) -> Tensor:
        """Logits of chosen steps of sequences of encoded frames.

        Args:
            features: encoded frames (:meth:`encode`).
            index: ``(B, T)`` int64 frame of each date (-1: a padded date), as in
                :meth:`EncoderFeatures.sequence`.
            doy: ``(B, T)`` day of year; ``valid``: ``(B, T)`` bool.
            steps: ``(B, T)`` bool, the steps to decode; each must be a frame (``index >= 0``).

        Returns:
            ``(M, K, H, W)`` logits of the ``M = steps.sum()`` chosen steps in row-major (sequence, date)
            order; the ConvLSTM runs once over each sequence up to its last chosen step.
        """
        if tuple(steps.shape) != tuple(index.shape) or steps.dtype != torch.bool:
            raise ValueError(f"steps must be a bool tensor of shape {tuple(index.shape)}, got {steps.dtype} "
                             f"{tuple(steps.shape)}")
        rows = index[steps]
        if bool((rows < 0).any()):
            raise ValueError("a decoded step must be an encoded frame, not a padded date (index -1)")
        chosen = torch.nonzero(steps.any(0)).flatten()
        last = int(chosen[-1]) + 1 if len(chosen) else 0  # later steps feed no decoded step: not run
        index, doy, valid, steps = index[:, :last], doy[:, :last], valid[:, :last], steps[:, :last]
        if last == 0:
            return features.skips[0].new_empty(0, self.num_classes, *features.size)
        frame_doy = None if features.doy is None else torch.where(index >= 0, features.doy[index.clamp_min(0)], -1)
        seq = SequenceFeatures(features.gates, (), features.size, index, frame_doy)  # skips: per step below
        self.check_doy(seq, doy, valid)
        in_gates = seq.doy is not None
        constants = day_of_year_encoding(doy) if self.use_doy and not in_gates else None
        states = self.lstm.recur(seq.gates, valid if self.padding == "mask" else None, constants, seq.index,
                                 constants_in_gates=in_gates, return_sequence=True)  # (B, T, hidden, h, w)
        skips = tuple(s[rows] for s in features.skips)
        return self.decode_state(states[steps], skips, features.size)

    def forward_steps(self, images: Tensor, doy: Tensor, valid: Tensor, steps: Tensor) -> Tensor:
        """``(M, K, H, W)`` logits of the steps ``steps (B, T)`` bool (valid dates only), row-major; inputs
        as in ``forward``. Training decodes the labelled steps only."""
        self.check_inputs(images, doy, valid)
        if bool((steps & ~valid).any()):
            raise ValueError("steps to decode must be valid dates")
        frames, frame_doy, index = self.frames_of(images, doy, valid)
        return self.decode_steps(self.encode(frames, frame_doy), index, doy, valid, steps)

    def forward_sequence(self, images: Tensor, doy: Tensor, valid: Tensor) -> Tensor:
        """``(B, T, K, H, W)`` logits of every date (zeros at padded dates); inputs as in ``forward``."""
        logits = self.forward_steps(images, doy, valid, valid)
        out = logits.new_zeros(*valid.shape, *logits.shape[1:])
        out[valid] = logits
        return out
