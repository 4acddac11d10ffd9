"""The kinds of model a run may hold, each behind the one :class:`~tropicrop.inference.predictor.Predictor`.

* :class:`NetworkPredictor`: a registered network that maps one window to the map of its last date
  (UnetConvLSTM, VUnetConvLSTM, U-TAE, 3-D U-Net); its dates are encoded once per tile
  (:func:`~tropicrop.inference.tile.net_probabilities`).
* :class:`SequencePredictor`: a network that decodes every step of one recurrent pass
  (vunet_convlstm_seq): every target month of a tile from one pass
  (:func:`~tropicrop.inference.tile.sequence_probabilities`).
* :class:`PixelPredictor`: a per-pixel model (:class:`~tropicrop.classical.PixelModel`, e.g. the LightGBM
  baseline) on the window's normalised, multilooked values; its context margin is its multilook radius.

:func:`predictor_for` decides the kind of a loaded model, once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import nullcontext

import numpy as np
import torch
from torch import Tensor, nn

from tropicrop.classical import PixelModel, normalise, pixel_features, scaled
from tropicrop.inference.predictor import Plan, Predictor, TileInput
from tropicrop.inference.tile import net_probabilities, sequence_probabilities
from tropicrop.models.context import context_margin, downsampling
from tropicrop.models.registry import is_sequence_model


class NetworkPredictor:
    """A network that maps each window to the class probabilities of its last date."""

    kind = "network"

    def __init__(self, model: nn.Module, temperature: float = 1.0) -> None:
        self.model = model
        self.temperature = temperature  # logits divided by it before the softmax (tropicrop.valprofile)

    @property
    def alignment(self) -> int:
        return downsampling(self.model)

    def margin(self, in_channels: int, length: int) -> int:
        """Measured on the network (:func:`~tropicrop.models.context.context_margin`)."""
        return context_margin(self.model, in_channels, length)

    def _probabilities(self, frames: Tensor, position: dict[int, int],
                       plans: Sequence[Plan]) -> Iterator[tuple[Plan, Tensor]]:
        return net_probabilities(self.model, frames, position, plans, temperature=self.temperature)

    def tile_probabilities(self, tile: TileInput, plans: Sequence[Plan]) -> Iterator[tuple[Plan, np.ndarray]]:
        """The dates of ``plans`` normalised (no data -> the mean), on the run's device and precision."""
        own = sorted({int(i) for p in plans for i in p.window.indices if i >= 0})
        frames = torch.from_numpy(tile.normalizer(tile.raw[[tile.position[i] for i in own]])).to(tile.device)
        position = {i: k for k, i in enumerate(own)}
        autocast = (torch.autocast(device_type=tile.device.type, dtype=tile.autocast)
                    if tile.autocast is not None else nullcontext())
        rows, cols = tile.crop
        with autocast:
            for plan, probs in self._probabilities(frames, position, plans):
                yield plan, probs[:, rows, cols].cpu().numpy()


class SequencePredictor(NetworkPredictor):
    """A network that decodes every target month of a tile from one recurrent pass."""

    kind = "sequence"

    def _probabilities(self, frames: Tensor, position: dict[int, int],
                       plans: Sequence[Plan]) -> Iterator[tuple[Plan, Tensor]]:
        return sequence_probabilities(self.model, frames, position, plans, temperature=self.temperature)


class PixelPredictor:
    """A per-pixel model: features of each pixel from its own window only (after the multilook filter)."""

    kind = "pixel"
    alignment = 1

    def __init__(self, model: PixelModel, temperature: float = 1.0) -> None:
        self.model = model
        self.temperature = temperature  # on the log-probabilities (tropicrop.valprofile)

    def margin(self, in_channels: int, length: int) -> int:
        """The multilook radius: the filter then sees around each tile pixel what it sees in the whole scene."""
        return self.model.looks // 2

    def tile_probabilities(self, tile: TileInput, plans: Sequence[Plan]) -> Iterator[tuple[Plan, np.ndarray]]:
        """Features of the normalised (no data stays missing), multilooked dates; the window's last day of
        year (an adapted run's, shifted) for a model that takes it. Class 0 gets probability 0."""
        rows, cols = tile.crop
        images = normalise(tile.raw, tile.normalizer, self.model.looks)[..., rows, cols]
        h, w = images.shape[-2:]
        for plan in plans:
            steps = [tile.position[int(i)] if i >= 0 else -1 for i in plan.window.indices]
            doy = int(plan.window.doy[-1]) if self.model.with_doy else None
            scores = self.model.predict_proba(pixel_features(images, steps, doy))
            probs = np.zeros((scores.shape[1] + 1, h * w), dtype=np.float32)
            probs[1:] = _float32_keeping_argmax(scaled(scores, self.temperature), scores.argmax(axis=1)).T
            yield plan, probs.reshape(-1, h, w)


def _float32_keeping_argmax(scores: np.ndarray, best: np.ndarray | None = None) -> np.ndarray:
    """``scores`` (n, k) in float32 (the blending buffers' type) with each row's most probable class kept
    ahead: where two classes within float64 rounding of each other (1 pixel-date in 1.3 million on a 512 px
    scene) would tie in float32, the more probable one is raised by one float32 step, so the map is the
    one a float64 argmax gives (``best``: the class to keep ahead, default the argmax of ``scores``)."""
    out = scores.astype(np.float32)
    best = scores.argmax(axis=1) if best is None else best
    rows = np.flatnonzero(out.argmax(axis=1) != best)
    out[rows, best[rows]] = np.nextafter(out[rows, best[rows]], np.float32(np.inf))
    return out


def predictor_for(model: nn.Module | PixelModel, temperature: float = 1.0) -> Predictor:
    """The predictor of a loaded model, calibrated by ``temperature``: its kind is decided here, once."""
    if isinstance(model, nn.Module):
        kind = SequencePredictor if is_sequence_model(model) else NetworkPredictor
        return kind(model, temperature)
    if isinstance(model, PixelModel):
        return PixelPredictor(model, temperature)
    raise TypeError(f"{type(model).__name__} is neither a network nor a per-pixel model")
