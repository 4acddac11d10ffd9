"""The calibration of a self-trained network, fitted again on the training year's validation set.

Self-training fits the network to its own confident labels on the new year, so its probabilities come out
sharper than the source network's, and year A's temperature and validation profile, fitted on the source's
weights, no longer describe them: ``check`` read the self-trained candidates of ``adapt --methods auto``
13.4 F1 points high on average (docs/guide/confidence.md). No label of the new year is needed to mend
that: the self-trained weights are run on year A's validation pixels (labels the run was trained with),
each year given to the network as it is given to it: year A with year A's normalisation and BatchNorm
statistics (the source's) and no day-of-year offset, as the source was trained. The temperature and the
profile are then fitted there as after training (:func:`tropicrop.training.network.fit_val_profile`).

A run adapted from an adapted run, or whose training scene cannot be read any more (its ``config.yaml``
names it relative to the folder it was trained from), keeps the source's temperature, and the record says why.
"""

from __future__ import annotations

import copy
import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from tropicrop.errors import TropicropError

if TYPE_CHECKING:
    from tropicrop.adaptation.state import Adaptation, AdaptedNet

log = logging.getLogger(__name__)
TRAINING_YEAR = "refitted on year A's validation pixels with the self-trained weights (no year-B label)"
"""What an adapted record's ``temperature.source`` says for a net calibrated here."""


def with_source_batchnorm(model: torch.nn.Module, source: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``model`` whose BatchNorm statistics are ``source``'s (year A's): AdaBN set the new year's."""
    out = copy.deepcopy(model).eval()
    stats = {k: v for k, v in source.state_dict().items() if k.rsplit(".", 1)[-1] in
             ("running_mean", "running_var", "num_batches_tracked")}
    out.load_state_dict({**out.state_dict(), **stats})
    return out


def refit_on_training_year(run: Adaptation, nets: list[AdaptedNet]) -> str | None:
    """Fit each of ``nets``' temperature and validation profile on year A's validation set (``net.calibration``);
    returns None, or why they keep the source's (nothing is refitted then)."""
    from tropicrop.training.network import fit_val_profile
    from tropicrop.training.run import net_names
    from tropicrop.trainingdata import prepare_data

    if not nets:
        return None
    if run.source_result.get("adapted_from"):
        return "year A's (the source run's): the source is itself an adapted run, fed other statistics than in training"
    cfg = run.cfg
    with tempfile.TemporaryDirectory(prefix="tropicrop-year-a-") as tmp:
        try:
            data = prepare_data(cfg, run.classes, run.source_normalizer,
                                cache_dir=Path(tmp) if cfg.data.cache else None)
        except TropicropError as exc:
            log.warning("the self-trained nets keep year A's temperature: %s", exc)
            return f"year A's (the source run's): its training scene could not be read ({exc})"
        targets = dict(net_names(cfg, data))
        for net in nets:
            if net.name not in targets:
                return f"year A's (the source run's): net {net.name} is not one of its training configuration's"
        for net in nets:
            model = with_source_batchnorm(net.model, net.load_source_model())
            net.calibration = fit_val_profile(model, data, targets[net.name], cfg)
            net.calibration_source = TRAINING_YEAR
            log.info("%s: temperature refitted on year A's validation pixels: %.3f", net.name,
                     net.calibration.temperature)
    return None
