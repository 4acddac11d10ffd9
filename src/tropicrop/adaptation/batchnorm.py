"""AdaBN (Li et al. 2018): BatchNorm statistics re-estimated on the new year's images.

A network's BatchNorm layers normalise with the mean and variance of the training year's features; when
the new year's backscatter is brighter, darker or of other contrast, every layer after the first sees
features off their learned range. Re-estimating the running statistics on year-B patches (no label, no
gradient) re-centres them. The statistics are a cumulative average over every streamed batch
(``momentum=None``), so the result does not depend on the order of the batches and memory stays one batch.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from tropicrop.adaptation.data import PatchSampler


def batchnorm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """Every BatchNorm layer of ``model``."""
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def freeze_batchnorm(model: nn.Module) -> None:
    """Put every BatchNorm layer of ``model`` in eval mode (use, do not update, its running statistics)."""
    for layer in batchnorm_layers(model):
        layer.eval()


def adapt_batchnorm(model: nn.Module, sampler: PatchSampler, batches: int, batch_size: int, seed: int,
                    progress: bool = False) -> int:
    """Replace the running mean/variance of every BatchNorm layer of ``model`` by their average over
    ``batches`` random year-B batches of ``batch_size`` patches (in place). Returns the number of layers
    updated (0: the model has no BatchNorm, nothing to do). The model is left in eval mode."""
    layers = batchnorm_layers(model)
    if not layers:
        return 0
    momenta = [layer.momentum for layer in layers]
    model.eval()
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # cumulative moving average over all batches
        layer.train()
    rng = np.random.default_rng([seed, 7])
    try:
        with torch.no_grad():
            for _ in tqdm(range(batches), desc="AdaBN", unit="batch", disable=not progress):
                batch = sampler.batch(batch_size, rng)
                model(batch["images"], batch["doy"], batch["valid"])
    finally:
        for layer, momentum in zip(layers, momenta, strict=True):
            layer.momentum = momentum
        model.eval()
    return len(layers)
