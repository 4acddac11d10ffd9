"""The experiment configuration (``tropicrop experiment -c``): the two years, the approaches, shared training.

Each approach either trains (``mode``, ``model``, ``options``, ``train_on``, ``use``, ``set``) or adapts an
earlier approach's run (``adapt``). Its training configuration is the shared ``train`` section with the
approach's settings on top (:meth:`ExperimentConfig.train_config`); it is built and validated when the
experiment is read, so a bad option or ``set`` entry of the tenth approach fails before the first trains.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, get_args

from pydantic import Field, ValidationError, model_validator

from tropicrop.config.adaptation import AdaptOptions
from tropicrop.config.files import apply_overrides, to_dict
from tropicrop.config.messages import first_problem
from tropicrop.config.models import check_model_name, is_network
from tropicrop.config.schema import Section, Text, problem
from tropicrop.config.training import Mode, TrainConfig, Use
from tropicrop.errors import ConfigError
from tropicrop.layout import slug

# An approach's part in the protocol (``role:``): the report's findings compare approaches by role, so
# renaming an approach never drops one.
Role = Literal["", "same-year baseline", "cross-year baseline", "proposed", "classical baseline"]
SAME_YEAR: Role = "same-year baseline"
CROSS_YEAR: Role = "cross-year baseline"
PROPOSED: Role = "proposed"
CLASSICAL: Role = "classical baseline"  # the per-pixel floor every deep approach is measured against
ROLES: tuple[str, ...] = get_args(Role)[1:]


class AdaptSection(AdaptOptions):
    """An approach's ``adapt`` section: which earlier approach's run to adapt, and how (the adapt options)."""

    base: Text = Field("VUnetConvLSTM", description="name of an earlier approach whose run is adapted")


ENSEMBLE_MODEL = "ensemble (network + booster)"
"""The ``model`` an ensemble's record and Table 4 row carry: never counted as a network approach."""


class EnsembleSection(Section):
    """An approach's ``ensemble`` section: average the calibrated probabilities of two finished approaches."""

    members: list[Text] = Field(min_length=2, max_length=2, description="names of two earlier trained approaches "
                                "of the same year: a network and a per-pixel model (e.g. Baseline 1 and LightGBM)")


class ApproachConfig(Section):
    """One approach of the protocol: which model, trained how and on which year (or adapted from another)."""

    name: Text = Field(description="the approach's name in the report (its folder: the name as a slug)")
    mode: Mode = Field("per-month", description="per-month (one net per labelled date) or all-months (one net)")
    model: Text = Field("unet_convlstm", description="a registered network or lightgbm")
    options: dict[str, Any] = Field(default_factory=dict, description="model options, on top of train.model.options")
    train_on: Literal["a", "b"] = Field("a", description="a: year A, b: year B")
    use: Use = Field("all", description="train: split == 1 pixels only; all: every labelled pixel")
    set: list[Text] = Field(default_factory=list, description="extra training overrides, key=value")
    role: Role = Field("", description="its part in the protocol, for the report's findings (or none)")
    adapt: AdaptSection | None = Field(None, description="adapt an earlier approach's run to year B instead of training")
    ensemble: EnsembleSection | None = Field(None, description="average two earlier approaches' calibrated "
                                             "probabilities instead of training (their runs are reused)")

    @model_validator(mode="after")
    def _trainable(self) -> ApproachConfig:
        check_model_name(self.model, "model")
        if self.ensemble is not None and self.adapt is not None:
            raise problem("ensemble", "is given with adapt", "an approach either adapts a run or ensembles two")
        if self.ensemble is not None and self.role:
            raise problem("role", f"is {self.role!r} on an ensemble", "leave an ensemble without a role: the report "
                          "never counts it as one of the protocol's (network) approaches")
        if self.adapt is None and self.ensemble is None and self.train_on == "b" and self.use == "all":
            raise problem("use", "is 'all' with train_on 'b': it would train on year B's test split",
                          "use 'train' when training on year B")
        return self


PAPER_APPROACHES: tuple[ApproachConfig, ...] = (
    ApproachConfig(name="Baseline 1", mode="per-month", model="unet_convlstm", train_on="b", use="train", role=SAME_YEAR),
    ApproachConfig(name="Baseline 2", mode="per-month", model="unet_convlstm", train_on="a", use="all", role=CROSS_YEAR),
    ApproachConfig(name="VUnetConvLSTM", mode="all-months", model="vunet_convlstm", train_on="a", use="all", role=PROPOSED),
)


class ScenesConfig(Section):
    """The two agricultural years."""

    a: Text = Field("data/demo/lem1718", description="scene folder of year A (trained on)")
    b: Text = Field("data/demo/lem1920", description="scene folder of year B (tested on)")


class PredictConfig(Section):
    """Full-scene prediction settings."""

    tile: int = Field(256, ge=1, description="tile side, pixels")
    overlap: int = Field(0, ge=0, description="pixels blended between neighbouring tiles")
    margin: int | None = Field(None, ge=0, description="scene context read around each tile; default: measured "
                               "from the network")
    probabilities: bool = Field(False, description="write each approach's class probabilities beside its maps (an "
                                "ensemble then reuses its members' instead of predicting them again)")


class ExperimentConfig(Section):
    """The whole experiment: scenes, class grouping, approaches, and the shared training settings."""

    name: Text = Field("experiment", description="the report's title")
    scenes: ScenesConfig = Field(default_factory=ScenesConfig, description="the two agricultural years")
    classes: list[Text] | None = Field(None, description="explicit class names; default: fitted on the training "
                                       "labels of both years")
    other_threshold: float = Field(0.053, ge=0, lt=1, description="classes below this fraction of the training "
                                   "samples are merged into Other")
    approaches: list[ApproachConfig] = Field(default_factory=lambda: list(PAPER_APPROACHES), min_length=1,
                                             description="the approaches, in the order they run (default: the "
                                             "paper's Baseline 1, Baseline 2 and VUnetConvLSTM)")
    train: TrainConfig = Field(default_factory=TrainConfig, description="the training settings every approach shares")
    predict: PredictConfig = Field(default_factory=PredictConfig, description="full-scene prediction of year B")

    @model_validator(mode="after")
    def _approaches_fit_together(self) -> ExperimentConfig:
        seen: dict[str, str] = {}
        roles: dict[str, str] = {}
        for i, a in enumerate(self.approaches):
            key = f"approaches[{i}]"
            if slug(a.name) in seen:
                raise problem(f"{key}.name", f"is {a.name!r}, the name of '{seen[slug(a.name)]}' as a folder",
                              "give approaches distinct names")
            if a.role and a.role in roles:
                raise problem(f"{key}.role", f"is {a.role!r}, already the role of '{roles[a.role]}'",
                              "give each role to one approach")
            if a.adapt is not None and slug(a.adapt.base) not in seen:
                raise problem(f"{key}.adapt.base", f"is {a.adapt.base!r}, not an earlier approach",
                              "name an approach listed before it")
            if a.ensemble is not None:
                self._check_ensemble(i, a.ensemble)
            elif a.adapt is None:
                self._check_train_config(i, a)
            seen[slug(a.name)] = a.name
            if a.role:
                roles[a.role] = a.name
        return self

    def _check_ensemble(self, index: int, section: EnsembleSection) -> None:
        """The members are two distinct earlier approaches that train (neither adapts nor ensembles), one a
        network and one a per-pixel model, trained on the same year."""
        key = f"approaches[{index}].ensemble.members"
        earlier = {slug(a.name): a for a in self.approaches[:index]}
        members = [earlier.get(slug(name)) for name in section.members]
        for name, member in zip(section.members, members, strict=True):
            if member is None or member.adapt is not None or member.ensemble is not None:
                raise problem(key, f"names {name!r}, not an earlier approach that trains",
                              "name two approaches listed before it, a network and a per-pixel model")
        a, b = (m for m in members if m is not None)
        if is_network(a.model) == is_network(b.model):
            raise problem(key, f"are {a.model!r} and {b.model!r}", "ensemble one network with one per-pixel model")
        if a.train_on != b.train_on:
            raise problem(key, f"are trained on years {a.train_on.upper()} and {b.train_on.upper()}",
                          "ensemble two approaches of the same year")

    def _check_train_config(self, index: int, approach: ApproachConfig) -> None:
        """The approach's training configuration validates; its problem re-keyed to the approach's own keys."""
        key = f"approaches[{index}]"
        try:
            self.train_config(approach)
        except ValidationError as exc:
            found = first_problem(exc, TrainConfig)
            if found.path.startswith("model.options"):  # the approach's options merged with the shared ones
                raise problem(f"{key}.options" + found.path.removeprefix("model.options"), found.text,
                              found.fix) from None
            raise problem(f"{key}.set", f"gives {found.line()}", found.fix) from None
        except ConfigError as exc:  # an override that is not key=value
            raise problem(f"{key}.set", f"holds {exc.problem}", exc.fix) from None

    def train_config(self, approach: ApproachConfig, class_names: Sequence[str] | None = None) -> TrainConfig:
        """The training configuration of ``approach``: the shared ``train`` section plus its mode, model (the shared
        options apply to networks only), year, pixels and ``set`` overrides; ``class_names`` fixes the classes.

        Raises:
            pydantic.ValidationError: the result is not a valid training configuration.
        """
        base = to_dict(self.train)
        base["mode"] = approach.mode
        shared = base["model"]["options"] if is_network(approach.model) else {}
        base["model"] = {"name": approach.model, "options": {**shared, **approach.options}}
        base["data"]["scene"] = self.scenes.a if approach.train_on == "a" else self.scenes.b
        base["data"]["use"] = approach.use
        base["data"]["classes"] = list(class_names) if class_names is not None else None
        base["data"]["targets"] = None
        apply_overrides(base, approach.set)
        if base.get("pretrain", {}).get("steps") and not base["pretrain"].get("scenes"):
            base["pretrain"]["scenes"] = [self.scenes.a, self.scenes.b]  # every image of both years, no label
        return TrainConfig.model_validate(base)
