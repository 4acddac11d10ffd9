"""The adaptation methods, one class each: the kinds of run it accepts, its options (a part of
:class:`~tropicrop.config.adaptation.AdaptOptions`) and its step.

``prepare`` runs once for the whole run before any model is touched (the new year's statistics);
``apply`` runs on each model in turn, seeing what the earlier methods made of it. A method whose kinds do
not include the run's is recorded as ``skipped``; a new method is one class here and one name in
:data:`~tropicrop.config.adaptation.METHODS`.
"""

from __future__ import annotations

import logging
from typing import ClassVar

from tropicrop.adaptation.batchnorm import adapt_batchnorm
from tropicrop.adaptation.data import PatchSampler, fit_year_statistics
from tropicrop.adaptation.fewlabels import finetune_on_parcels, parcel_logits
from tropicrop.adaptation.selftrain import self_train
from tropicrop.adaptation.shiftref import estimate_net_shift
from tropicrop.adaptation.state import NETWORK, PIXEL, Adaptation, AdaptedNet
from tropicrop.config.adaptation import METHODS, AdaptOptions
from tropicrop.errors import ConfigError
from tropicrop.valprofile import build_profile

log = logging.getLogger(__name__)


class Method:
    """One adaptation method: its name, the kinds of run it accepts and its steps (both default to nothing)."""

    name: ClassVar[str]
    kinds: ClassVar[frozenset[str]]
    reads_labels: ClassVar[bool] = False  # reads labels of the new year (its adapted run may refit a temperature)

    def prepare(self, run: Adaptation) -> None:
        """Run-wide step, before any model."""

    def apply(self, run: Adaptation, net: AdaptedNet) -> None:
        """Step on one model of the run."""


class YearStatistics(Method):
    """The new year's own per-band mean/std replace the training year's: any model fed normalised dB."""

    name = "year_stats"
    kinds = frozenset({NETWORK, PIXEL})

    def prepare(self, run: Adaptation) -> None:
        run.normalizer = fit_year_statistics(run.scene)


class AdaBN(Method):
    """BatchNorm statistics re-estimated on the new year's patches (options ``adabn_*``): networks only."""

    name = "adabn"
    kinds = frozenset({NETWORK})

    def apply(self, run: Adaptation, net: AdaptedNet) -> None:
        o = run.options
        net.record["batchnorm_layers"] = adapt_batchnorm(net.model, run.sampler(net), o.adabn_batches,
                                                         o.adabn_batch_size, o.seed, run.progress)


class DayOfYearShift(Method):
    """The new year's day-of-year offset (options ``shift_*``), for a model fed the day of year: a network
    with ``use_doy`` or an all-months booster; one offset per run, so a run of several models keeps its own."""

    name = "doy_shift"
    kinds = frozenset({NETWORK, PIXEL})

    def apply(self, run: Adaptation, net: AdaptedNet) -> None:
        estimate = estimate_net_shift(run, net)
        if estimate is None:
            net.record["shift"] = ("skipped: the model does not take the day of year, or the run has several "
                                   "models")
            return
        net.record["shift"] = estimate.to_dict()
        run.doy_offset = estimate.offset
        if net.sampler is not None:
            net.sampler.doy_offset = run.doy_offset
        if "adabn" in run.methods and estimate.offset:  # the decoder's statistics depend on the offset
            AdaBN().apply(run, net)


class SelfTraining(Method):
    """Mean-teacher pseudo-labelling on the new year's images (options ``self_training``): networks only."""

    name = "self_training"
    kinds = frozenset({NETWORK})

    def apply(self, run: Adaptation, net: AdaptedNet) -> None:
        st = run.options.self_training
        sampler = PatchSampler(run.data, run.net_targets(net), st.patch_size, run.doy_offset)
        net.model, net.record["self_training"] = self_train(net.model, sampler, st, run.classes.num_classes,
                                                            run.options.seed, progress=run.progress)
        net.module.model = net.model


class FewLabels(Method):
    """Fine-tuning on ``parcels`` labelled parcels per class of the new year (options ``few_labels``): the
    one method that reads the new year's labels; chosen by ``parcels`` > 0, not by ``methods``. The
    fine-tuned network's temperature is then refitted on those parcels (no parcel is held out of the
    fine-tuning, so it is fitted on the fine-tuning set itself)."""

    name = "few_labels"
    kinds = frozenset({NETWORK})
    reads_labels = True

    def apply(self, run: Adaptation, net: AdaptedNet) -> None:
        o = run.options
        net.model, net.record["few_labels"] = finetune_on_parcels(
            net.module, run.scene, run.classes, run.normalizer, o.parcels, o.few_labels, run.length, o.seed,
            progress=run.progress)
        z, y, months = parcel_logits(net.model, run.scene, run.classes, run.normalizer, o.parcels, o.few_labels,
                                     run.length, o.seed)
        if len(y):  # the temperature refitted on the labelled parcels (issue 30); none drawn: A's is kept
            net.calibration = build_profile(z, y, months, o.seed)


UNSUPERVISED: dict[str, type[Method]] = {m.name: m for m in (YearStatistics, AdaBN, DayOfYearShift, SelfTraining)}
"""The unsupervised methods by name, in the order of :data:`METHODS`."""
assert tuple(UNSUPERVISED) == METHODS


def applicable_methods(options: AdaptOptions, kind: str) -> tuple[list[Method], list[str]]:
    """The chosen methods a run of ``kind`` accepts, in order (few labels last when ``parcels`` > 0), and
    the names of the chosen ones it does not; ConfigError when none applies and no labelled parcels are
    used, or when parcels are asked of a run that cannot be fine-tuned."""
    chosen = [UNSUPERVISED[m]() for m in METHODS if m in options.methods]
    methods = [m for m in chosen if kind in m.kinds]
    if not methods and options.parcels == 0:
        accepted = [name for name, m in UNSUPERVISED.items() if kind in m.kinds]
        raise ConfigError(None, f"no chosen adaptation method ({', '.join(m.name for m in chosen) or 'none'}) "
                          f"applies to a {kind} run", f"use {', '.join(accepted)}")
    if options.parcels > 0:
        if kind not in FewLabels.kinds:
            raise ConfigError(None, "few-label fine-tuning (parcels) needs a network", "adapt with parcels: 0")
        methods.append(FewLabels())
    return methods, [m.name for m in chosen if m not in methods]
