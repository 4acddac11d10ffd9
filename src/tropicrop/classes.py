"""The class table of a model: which class names it predicts, and how scene codes map onto them.

A model predicts indices ``0..K-1`` where index 0 is *no reference* (never a target, ignored by the loss)
and ``1..K-1`` are class names. Scene codes are mapped by NAME, so scenes with different code tables share
one model. Classes rarer than a threshold (5.3 % of labelled samples in the paper) are merged into
``Other``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

OTHER = "Other"
NO_REFERENCE = "no reference"


@dataclass(frozen=True)
class ClassTable:
    """Class names of a model; ``names[0]`` is always :data:`NO_REFERENCE`."""

    names: tuple[str, ...]
    merged: tuple[str, ...] = ()  # scene class names folded into Other

    def __post_init__(self) -> None:
        if not self.names or self.names[0] != NO_REFERENCE:
            raise ValueError(f"names[0] must be {NO_REFERENCE!r}, got {self.names[:1]}")
        lowered = [n.lower() for n in self.names]
        if len(set(lowered)) != len(lowered):
            raise ValueError(f"duplicate class names in {self.names}")

    @property
    def num_classes(self) -> int:
        """K, the number of model outputs including index 0."""
        return len(self.names)

    @property
    def classes(self) -> dict[int, str]:
        """Index -> name for the real classes (1..K-1)."""
        return {i: n for i, n in enumerate(self.names) if i}

    def lookup(self, scene_classes: Mapping[int, str]) -> np.ndarray:
        """Table (256,) uint8 mapping a scene's codes to model indices by name.

        A scene class that the model does not know goes to ``Other`` when the table has one (it is by
        definition one of the rare classes), else to 0 (ignored) with a warning.
        """
        index = {n.lower(): i for i, n in enumerate(self.names)}
        other = index.get(OTHER.lower())
        table = np.zeros(256, dtype=np.uint8)
        unknown = []
        for code, name in scene_classes.items():
            i = index.get(name.lower())
            if i is None:
                if other is not None:
                    i = other
                else:
                    unknown.append(name)
                    i = 0
            table[code] = i
        if unknown:
            warnings.warn(f"classes {unknown} are not in the model's table {self.names[1:]}; ignored", stacklevel=2)
        return table

    def to_dict(self) -> dict[str, list[str]]:
        """JSON/YAML-ready form."""
        return {"names": list(self.names), "merged": list(self.merged)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Sequence[str]]) -> ClassTable:
        """Inverse of :meth:`to_dict`."""
        return cls(names=tuple(data["names"]), merged=tuple(data.get("merged", ())))

    @classmethod
    def from_names(cls, names: Sequence[str]) -> ClassTable:
        """A table predicting exactly ``names`` (in that order)."""
        return cls(names=(NO_REFERENCE, *names))


def count_by_name(codes: np.ndarray, classes: Mapping[int, str], counts: dict[str, int] | None = None) -> dict[str, int]:
    """Add the pixels of each class in ``codes`` (any shape, 0 = no reference) to ``counts``, keyed by NAME."""
    counts = {} if counts is None else counts
    for code, n in zip(*np.unique(codes, return_counts=True), strict=True):
        if code:
            name = classes[int(code)]
            counts[name] = counts.get(name, 0) + int(n)
    return counts


def fit_class_table(counts: Mapping[str, int], min_fraction: float = 0.053) -> ClassTable:
    """Keep classes holding at least ``min_fraction`` of all labelled samples; merge the rest into Other.

    ``counts`` maps class names to labelled pixel counts (summed over dates and scenes). Kept classes are
    ordered by decreasing frequency; Other (when anything is merged) comes last.
    """
    total = sum(counts.values())
    if total == 0:
        raise ValueError("no labelled samples to fit a class table on")
    ordered = sorted(((n, c) for n, c in counts.items() if c > 0), key=lambda nc: (-nc[1], nc[0]))
    keep = [n for n, c in ordered if c / total >= min_fraction and n != OTHER]
    merged = [n for n, c in ordered if n not in keep]
    names = (NO_REFERENCE, *keep, *([OTHER] if merged else []))
    return ClassTable(names=names, merged=tuple(merged))
