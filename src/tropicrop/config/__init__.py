"""Typed configuration: one pydantic schema per config section, read from YAML with ``--set`` overrides.

Why pydantic (v2) rather than jsonargparse: the configs are nested YAML documents (an experiment holds a
list of approaches, each with model options and an optional ``adapt`` section, and a whole training
configuration), and pydantic validates such a document in one call with one error type whose locations
(``approaches[3].adapt.methods[0]``) give the key's full path; ``Literal`` choices, ``Field`` bounds and
``extra="forbid"`` say the rules in the type itself; custom validators carry the rules between keys; and
the schemas are plain classes the rest of the code reads as attributes (``cfg.train.optim.lr``).
jsonargparse's strength is building a command line from signatures, which the CLI (argparse, a few flags
plus ``--set``) does not need.

Modules: ``schema`` (the section base, text and date types), ``messages`` (validation errors as one line
naming file, key and fix), ``files`` (read, ``--set``, write), ``models`` (model names and options),
``training``, ``adaptation`` and ``experiment`` (the schemas), ``reference`` (the docs' key tables).
"""

from tropicrop.config.adaptation import METHODS, AdaptOptions, FewLabelOptions, FineTuneOptions, SelfTrainingOptions
from tropicrop.config.experiment import (
    PAPER_APPROACHES,
    ROLES,
    AdaptSection,
    ApproachConfig,
    EnsembleSection,
    ExperimentConfig,
    PredictConfig,
    ScenesConfig,
)
from tropicrop.config.files import apply_overrides, dump_config, from_dict, load_config, read_yaml, to_dict
from tropicrop.config.models import PixelOptions
from tropicrop.config.training import (
    ALL_MONTHS,
    MODES,
    DataConfig,
    ModelConfig,
    OptimConfig,
    TrainConfig,
    TrainerConfig,
)

__all__ = [
    "ALL_MONTHS", "METHODS", "MODES", "PAPER_APPROACHES", "ROLES", "AdaptOptions", "AdaptSection", "ApproachConfig",
    "DataConfig", "EnsembleSection", "ExperimentConfig", "FewLabelOptions", "FineTuneOptions", "ModelConfig", "OptimConfig",
    "PixelOptions", "PredictConfig", "ScenesConfig", "SelfTrainingOptions", "TrainConfig", "TrainerConfig",
    "apply_overrides", "dump_config", "from_dict", "load_config", "read_yaml", "to_dict",
]
