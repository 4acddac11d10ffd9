"""The options of ``tropicrop adapt`` and of an experiment approach's ``adapt`` section.

Methods run in the order of :data:`METHODS`; ``parcels`` > 0 adds fine-tuning on k labelled parcels per class
of the new year (the one option that reads its labels). Self-training and few-label fine-tuning are both
fine-tuning of the adapted network, so their options share one base (:class:`FineTuneOptions`).
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import Field, field_validator, model_validator

from tropicrop.config.schema import Section, problem

Method = Literal["year_stats", "adabn", "doy_shift", "self_training"]
METHODS: tuple[Method, ...] = get_args(Method)
"""Unsupervised adaptation methods, in the order they are applied. (Day-of-year shift *augmentation* is a
training option, ``data.doy_shift``, not an adaptation of a finished run.)"""
MAX_SHIFT = 182  # days: half a year either way


class FineTuneOptions(Section):
    """Steps of fine-tuning an adapted network on patches of the new year."""

    steps: int = Field(100, ge=1, description="optimiser steps")
    batch_size: int = Field(16, ge=1, description="patches per step")
    patch_size: int = Field(32, ge=1, description="side of a patch, pixels")
    lr: float = Field(2e-4, gt=0, description="learning rate (Adam)")


class SelfTrainingOptions(FineTuneOptions):
    """Mean-teacher self-training on the new year's images (pseudo-labels, no label read)."""

    steps: int = Field(200, ge=1, description="optimiser steps")
    lr: float = Field(1e-4, gt=0, description="learning rate (Adam)")
    ema: float = Field(0.99, ge=0, lt=1, description="teacher = ema * teacher + (1 - ema) * student, after each step")
    keep: float = Field(0.3, gt=0, le=1, description="fraction of each predicted class's pixels (its most confident) "
                        "kept as pseudo-labels")
    min_confidence: float = Field(0.0, ge=0, le=1, description="absolute floor; 0 because focal-loss networks are "
                                  "under-confident")
    noise: float = Field(0.15, ge=0, description="std of the student view's additive noise, normalised units")
    level: float = Field(0.2, ge=0, description="max per-sample, per-band level change of the student view")
    doy_jitter: int = Field(7, ge=0, le=MAX_SHIFT, description="max days of date jitter of the student view")


class FewLabelOptions(FineTuneOptions):
    """Fine-tuning on k labelled parcels per class of the new year's train split (no validation)."""


class AdaptOptions(Section):
    """Every knob of ``adapt_run`` (defaults sized for a CPU; ``--set`` or an experiment's ``adapt`` section sets them)."""

    methods: list[Method] = Field(default_factory=lambda: list(METHODS), description="unsupervised methods, any of "
                                  + ", ".join(METHODS) + " (applied in that order)")
    parcels: int = Field(0, ge=0, description="few labels: fine-tune on this many labelled parcels per class of the "
                         "new year (0 = off)")
    seed: int = Field(0, ge=0, description="seed of every draw of patches")
    adabn_batches: int = Field(16, ge=1, description="batches AdaBN re-estimates BatchNorm statistics on")
    adabn_batch_size: int = Field(8, ge=1, description="patches per AdaBN batch")
    adabn_patch_size: int = Field(32, ge=1, description="side of an AdaBN patch, pixels")
    shift_min: int = Field(-60, ge=-MAX_SHIFT, le=MAX_SHIFT, description="smallest day-of-year offset tried")
    shift_max: int = Field(60, ge=-MAX_SHIFT, le=MAX_SHIFT, description="largest day-of-year offset tried")
    shift_step: int = Field(5, ge=1, description="days between offsets tried")
    shift_patches: int = Field(4, ge=1, description="patches the offset is scored on")
    shift_patch_size: int = Field(64, ge=1, description="side of a scoring patch, pixels")
    self_training: SelfTrainingOptions = Field(default_factory=SelfTrainingOptions, description="mean-teacher settings")
    few_labels: FewLabelOptions = Field(default_factory=FewLabelOptions, description="few-label fine-tuning settings")

    @field_validator("methods", mode="before")
    @classmethod
    def _augmentation_is_a_training_option(cls, methods: Any) -> Any:
        for i, m in enumerate(methods if isinstance(methods, list) else []):
            if m in ("doy_augment", "doy_augmentation"):
                raise problem(f"[{i}]", f"is {m!r}: day-of-year augmentation is a training option, not an adaptation",
                              "train with --set data.doy_shift=30")
        return methods

    @model_validator(mode="after")
    def _shift_range(self) -> AdaptOptions:
        if self.shift_min > self.shift_max:
            raise problem("shift_min", f"is {self.shift_min}, above shift_max ({self.shift_max})",
                          "use shift_min <= shift_max")
        return self
