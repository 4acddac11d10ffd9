"""One tile through a network: each date encoded once, every target window decoded from the shared features."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from tropicrop.inference.predictor import Plan
from tropicrop.models.interface import SequenceDecoding, SharedEncoding

DECODE_BATCH = 1  # windows decoded at a time: on the CPU batching is no faster, only bigger (not measured on a GPU)


def _frames_index(plans: Sequence[Plan], position: dict[int, int], pad: int) -> Tensor:
    """(B, T) int64 positions of each window's dates among the encoded frames; padded dates -> ``pad``."""
    rows = [[position[int(i)] if i >= 0 else pad for i in p.window.indices] for p in plans]
    return torch.tensor(rows, dtype=torch.int64)


def _frames_doy(plans: Sequence[Plan], position: dict[int, int], frames: int, device: torch.device) -> Tensor:
    """(N,) int64 day of year of each encoded frame, read from the windows that contain it."""
    doy = torch.zeros(frames, dtype=torch.int64)
    for plan in plans:
        for i, d in zip(plan.window.indices, plan.window.doy, strict=True):
            if i >= 0:
                doy[position[int(i)]] = int(d)
    return doy.to(device)


def net_probabilities(model: nn.Module, frames: Tensor, position: dict[int, int], plans: Sequence[Plan],
                      batch: int | None = None, temperature: float = 1.0) -> Iterator[tuple[Plan, Tensor]]:
    """Softmax probabilities (K, h, w) float32 of each plan of network ``model`` on one tile.

    ``frames`` (N, C, h, w) are the normalised images of the tile on the model's device; ``position`` maps
    a scene date index to its frame. Models with shared encoding (:class:`SharedEncoding`) encode each frame once and decode
    every window from the shared features (padded dates: skipped with ``padding="mask"``, an encoded zero
    image with ``padding="zeros"``, exactly as in ``forward``; with ``"mask"`` each frame's day of year
    enters its gates once); other models run ``forward`` per window.
    ``batch`` windows are decoded at a time (default :data:`DECODE_BATCH`).
    """
    shared: SharedEncoding | None = model if isinstance(model, SharedEncoding) else None
    device = frames.device
    batch = batch or DECODE_BATCH
    zeros_mode = shared is not None and shared.padding == "zeros"
    pad = len(frames) if (zeros_mode or shared is None) else -1
    if pad >= 0:
        frames = torch.cat((frames, frames.new_zeros((1, *frames.shape[1:]))))
    features = None
    if shared is not None:  # with "mask" padding, each frame's day of year enters its gates here, once
        features = shared.encode(frames, _frames_doy(plans, position, len(frames), device) if pad < 0 else None)
    for start in range(0, len(plans), batch):
        chunk = plans[start : start + batch]
        index = _frames_index(chunk, position, pad).to(device)
        doy = torch.tensor(np.stack([p.window.doy for p in chunk]), dtype=torch.int64, device=device)
        valid = torch.tensor(np.stack([p.window.valid for p in chunk]), dtype=torch.bool, device=device)
        if shared is not None and features is not None:
            logits = shared.decode(features.sequence(index), doy, valid)
        else:
            logits = model(frames[index], doy, valid)
        probs = torch.softmax(logits.float() / temperature, dim=1)  # calibrated (the predictor's temperature)
        for k, plan in enumerate(chunk):
            yield plan, probs[k]



def _sequence_runs(plans: Sequence[Plan], position: dict[int, int]) -> list[list[int]]:
    """Runs of consecutive scene date indices for one ConvLSTM pass each: the encoded dates plus the months
    without acquisition that lie inside a plan's window (a step that carries the state over, as in
    training); a gap no window covers starts a new run."""
    gaps: set[int] = set()
    for plan in plans:
        end = int(plan.window.indices[-1])
        length = len(plan.window.indices)
        for t, i in enumerate(plan.window.indices):
            scene_index = end - (length - 1 - t)
            if i < 0 and scene_index >= 0:
                gaps.add(scene_index)
    dates = sorted(set(position) | gaps)
    runs = [[dates[0]]]
    for i in dates[1:]:
        if i == runs[-1][-1] + 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return [run for run in runs if any(i in position for i in run)]


def sequence_probabilities(model: nn.Module, frames: Tensor, position: dict[int, int],
                           plans: Sequence[Plan], temperature: float = 1.0) -> Iterator[tuple[Plan, Tensor]]:
    """Softmax probabilities (K, h, w) float32 of each plan of a sequence model (``sequence_output``, e.g.
    vunet_convlstm_seq) on one tile, from one ConvLSTM pass: arguments and output as
    :func:`net_probabilities`.

    Every frame is encoded once (its day of year in its gates), the ConvLSTM runs once over the tile's dates
    in order (one pass per run of consecutive scene dates, normally one; a month without acquisition inside
    a window is a padded step that carries the state over), and the states at the target dates are decoded
    with their own date's skips. A target's state has then seen every date since the start of the pass, not
    only its 12-date window as in training: it is the many-to-many reading of the network, and the F1 it
    gives is measured by ``configs/backbones.yaml``. A model with ``padding="zeros"`` (padded dates seen as
    zero images) or without shared encoding is run window by window instead (:func:`net_probabilities`).
    """
    if not isinstance(model, SequenceDecoding) or model.padding != "mask":
        yield from net_probabilities(model, frames, position, plans, temperature=temperature)
        return
    device = frames.device
    features: Any = model.encode(frames, _frames_doy(plans, position, len(frames), device))  # EncoderFeatures
    frame_doy: Tensor = features.doy
    by_target = {int(p.window.indices[-1]): p for p in plans}
    for run in _sequence_runs(plans, position):
        targets = [i for i in run if i in by_target]
        if not targets:
            continue
        index = torch.tensor([[position.get(i, -1) for i in run]], dtype=torch.int64, device=device)
        valid = index >= 0
        steps = torch.tensor([[i in by_target for i in run]], dtype=torch.bool, device=device)
        doy = torch.where(valid, frame_doy[index.clamp_min(0)], 0)
        logits = model.decode_steps(features, index, doy, valid, steps)
        probs = torch.softmax(logits.float() / temperature, dim=1)  # calibrated (the predictor's temperature)
        for k, i in enumerate(targets):
            yield by_target[i], probs[k]
