"""The day-of-year shift of one model of a run: its year-B patches, the training year's reference and the
estimate (:func:`tropicrop.adaptation.timeshift.estimate_shift`), for a network fed the day of year and
for an all-months per-pixel model (whose features end with the target's day of year).

The class-share reference is the source model's own mean class probabilities on the training year's
images at each of its dates (with the source run's normalisation, before any method changed the model):
the new year's predicted shares at the right offset are compared with the same model's predictions on
the training year, so the model's own bias (a class it over-predicts, the pixels without reference it
still classifies) cancels. Comparing them with the training labels' shares did not: on the synthetic pair
moved 30 days early, the labels' shares fitted the predictions best at +10 and pulled the estimate there.
"""

from __future__ import annotations

import logging
from typing import Any

from torch import nn

from tropicrop.adaptation.data import PatchSampler, grid_origins, pixel_images, target_images
from tropicrop.adaptation.state import Adaptation, AdaptedNet
from tropicrop.adaptation.timeshift import ClassShares, ShiftEstimate, estimate_shift, merge_shares, predicted_shares
from tropicrop.classical import PixelModel
from tropicrop.errors import TropicropError
from tropicrop.scene import Scene, load_scene
from tropicrop.trainingdata import scene_paths
from tropicrop.windows.normalize import Normalizer
from tropicrop.windows.tensors import SceneTensors

log = logging.getLogger(__name__)


def _images(model: Any, scene: Scene, normalizer: Normalizer, length: int) -> SceneTensors:
    """A scene's images as ``model`` takes them."""
    if isinstance(model, PixelModel):
        return pixel_images(scene, normalizer, length, model.looks)
    return target_images(scene, normalizer, length)


def takes_doy(model: Any) -> bool:
    """Whether the model is fed the day of year: a network with ``use_doy``, an all-months booster."""
    if isinstance(model, nn.Module):
        return bool(getattr(model, "use_doy", False))
    return isinstance(model, PixelModel) and bool(model.with_doy)


def reference_shares(run: Adaptation, net: AdaptedNet) -> ClassShares | None:
    """The source model's mean class probabilities on each training scene at every one of its dates; None
    (a warning: entropy alone then scores the offsets) when no training scene can be read."""
    o = run.options
    model = net.load_source_model()
    try:
        found = []
        for path in scene_paths(run.cfg.data.scene):
            data = _images(model, load_scene(path), run.source_normalizer, run.length)
            sampler = PatchSampler(data, list(data.dates), o.shift_patch_size)
            found.append(predicted_shares(model, sampler, grid_origins(data, o.shift_patch_size, o.shift_patches,
                                                                       o.seed)))
        return merge_shares(found)
    except (TropicropError, OSError) as exc:  # the training scene moved or is unreadable: entropy alone decides
        log.warning("training scene %s not readable (%s): shift scored by entropy only", run.cfg.data.scene, exc)
        return None


def estimate_net_shift(run: Adaptation, net: AdaptedNet) -> ShiftEstimate | None:
    """The new year's day-of-year offset for ``net`` (the run's current offset plus each of the options'
    offsets tried); None for a model not fed the day of year or a run of several models (one offset per run)."""
    if not takes_doy(net.model) or len(run.nets) > 1:
        return None
    o = run.options
    data = run.data if isinstance(net.model, nn.Module) else _images(net.model, run.scene, run.normalizer, run.length)
    origins = grid_origins(data, o.shift_patch_size, o.shift_patches, o.seed)
    patches = PatchSampler(data, run.net_targets(net), o.shift_patch_size)
    offsets = [run.doy_offset + k for k in range(o.shift_min, o.shift_max + 1, o.shift_step)]
    shares = reference_shares(run, net)
    return estimate_shift(net.model, patches, origins, offsets, shares, progress=run.progress)

