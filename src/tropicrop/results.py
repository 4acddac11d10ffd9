"""What training returns, one typed result for every kind of trainer (the Lightning network trainer, the
per-pixel booster trainer), so callers read fields instead of telling dicts apart by their keys.

On disk the results keep their JSON form (``RUN/nets/NAME/result.json``, ``RUN/result.json``):
:meth:`NetResult.to_dict` writes the keys earlier versions wrote, :meth:`NetResult.from_dict` reads both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tropicrop.errors import RunError

EPOCHS, ROUNDS = "epochs", "rounds"
"""Units of a net's training length: a network's epochs, a booster's boosting rounds."""
RETRAIN = "train it again (tropicrop train --force) or copy the run again from its source"


@dataclass(frozen=True)
class NetResult:
    """One trained model of a run.

    ``length`` is how long it trained, in ``unit`` (:data:`EPOCHS` or :data:`ROUNDS`); ``stopped_by`` says
    whether early stopping or the config's cap ended it. ``details`` holds what only one kind of trainer
    records (a network's ``global_step``, ``best_checkpoint`` and ``precision``; a booster's ``model_file``
    and pixel counts), kept in the JSON file as they are.
    """

    name: str
    targets: list[str]
    best_val_f1: float | None
    length: int
    unit: str
    stopped_by: str
    train_patches: int
    val_patches: int
    train_seconds: float
    scenes: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def precision(self) -> str:
        """The precision it trained in (a booster: float32 features, ``32-true``)."""
        return str(self.details.get("precision", "32-true"))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of ``result.json``."""
        return {"name": self.name, "targets": self.targets, "best_val_f1": self.best_val_f1, self.unit: self.length,
                "stopped_by": self.stopped_by, "train_patches": self.train_patches, "val_patches": self.val_patches,
                "scenes": self.scenes, "train_seconds": self.train_seconds, **self.details}

    def summary(self) -> dict[str, Any]:
        """What an experiment's record keeps of it: data, length and stopping, validation F1."""
        return {"train_patches": self.train_patches, "val_patches": self.val_patches,
                "best_val_f1": self.best_val_f1, "length": self.length, "unit": self.unit,
                "stopped_by": self.stopped_by}

    @classmethod
    def from_dict(cls, data: Any, path: Path | None = None) -> NetResult:
        """Read :meth:`to_dict`'s form (a network's length under ``epochs``, a booster's under ``rounds``);
        RunError naming ``path`` for anything else."""
        if not isinstance(data, dict):
            raise RunError(path, "is not a net result (a JSON object)", RETRAIN)
        data = dict(data)
        unit = EPOCHS if EPOCHS in data else ROUNDS
        try:
            result = cls(name=str(data.pop("name")), targets=list(data.pop("targets", [])),
                         best_val_f1=data.pop("best_val_f1", None), length=int(data.pop(unit)), unit=unit,
                         stopped_by=str(data.pop("stopped_by", "")), train_patches=int(data.pop("train_patches", 0)),
                         val_patches=int(data.pop("val_patches", 0)),
                         train_seconds=float(data.pop("train_seconds")), scenes=list(data.pop("scenes", [])),
                         details=data)
        except (KeyError, TypeError, ValueError) as exc:
            raise RunError(path, f"is not a net result (missing or bad {exc})", RETRAIN) from None
        return result


@dataclass(frozen=True)
class RunResult:
    """A finished run: its mode, model, data and every net's :class:`NetResult` (``RUN/result.json``)."""

    format_version: int
    mode: str
    model: str
    scene: str | list[str]
    scenes: list[dict[str, Any]]
    classes: list[str]
    nets: dict[str, NetResult]
    train_patches: int
    val_patches: int
    pretrain_seconds: float = 0.0  # self-supervised pretraining before the nets (pretrain.steps), 0 without
    nets_wall_seconds: float | None = None
    """Wall time of training the nets where they trained side by side (``trainer.parallel_nets``): their own
    times overlap, so this, not their sum, is the run's training time (nets finished in an earlier session
    of a resumed run count with their own time)."""

    @property
    def train_seconds(self) -> float:
        """Summed over nets (or their wall time side by side), across resumed sessions, with the pretraining."""
        nets = self.nets_wall_seconds if self.nets_wall_seconds is not None else \
            sum(n.train_seconds for n in self.nets.values())
        return self.pretrain_seconds + nets

    @property
    def precision(self) -> list[str]:
        return sorted({n.precision for n in self.nets.values()})

    def to_dict(self) -> dict[str, Any]:
        return {"format_version": self.format_version, "mode": self.mode, "model": self.model, "scene": self.scene,
                "scenes": self.scenes, "classes": self.classes,
                "nets": {name: n.to_dict() for name, n in self.nets.items()}, "precision": self.precision,
                "train_seconds": self.train_seconds, "train_patches": self.train_patches,
                "val_patches": self.val_patches, **({"pretrain_seconds": self.pretrain_seconds}
                                                    if self.pretrain_seconds else {}),
                **({"nets_wall_seconds": self.nets_wall_seconds} if self.nets_wall_seconds is not None else {})}

    @classmethod
    def from_dict(cls, data: Any, path: Path | None = None) -> RunResult:
        """Read :meth:`to_dict`'s form (keys it does not know, such as an adapted run's, are left out)."""
        if not isinstance(data, dict) or not isinstance(data.get("nets"), dict):
            raise RunError(path, "is not a run summary (a JSON object with nets)", RETRAIN)
        try:
            return cls(format_version=int(data.get("format_version", 1)), mode=str(data["mode"]),
                       model=str(data["model"]), scene=data.get("scene", ""), scenes=list(data.get("scenes", [])),
                       classes=list(data.get("classes", [])),
                       nets={name: NetResult.from_dict(n, path) for name, n in data["nets"].items()},
                       train_patches=int(data.get("train_patches", 0)), val_patches=int(data.get("val_patches", 0)),
                       pretrain_seconds=float(data.get("pretrain_seconds", 0.0)),
                       nets_wall_seconds=float(data["nets_wall_seconds"]) if "nets_wall_seconds" in data else None)
        except (KeyError, TypeError, ValueError) as exc:
            raise RunError(path, f"is not a run summary (missing or bad {exc})", RETRAIN) from None
