"""Presets: which dates each synthetic year has (the paper's Tables 1-2), the scene size and the split block."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any


def _dates(*iso: str) -> tuple[dt.date, ...]:
    return tuple(dt.date.fromisoformat(s) for s in iso)


LEM1718_DATES = _dates(
    "2016-09-27", "2016-10-15", "2016-11-20", "2016-12-14", "2017-01-19", "2017-02-12", "2017-03-08",
    "2017-04-13", "2017-05-19", "2017-06-12", "2017-07-06", "2017-08-11", "2017-09-16", "2017-10-10",
    "2017-11-15", "2017-12-09", "2018-01-14", "2018-02-19", "2018-03-15", "2018-04-20", "2018-05-14",
)
"""Table 1 of the paper: 21 acquisitions, reference on the last 12 (June 2017 - May 2018)."""

LEM1920_DATES = _dates(
    "2018-11-10", "2018-12-16", "2019-01-21", "2019-02-14", "2019-03-22", "2019-04-15", "2019-05-21",
    "2019-06-14", "2019-07-20", "2019-08-13", "2019-09-18", "2019-10-12", "2019-11-17", "2019-12-23",
    "2020-01-16", "2020-02-21", "2020-03-16", "2020-04-21", "2020-05-15", "2020-06-20", "2020-07-14",
    "2020-08-19", "2020-09-12",
)
"""Table 2 of the paper: 23 acquisitions, reference on the last 12 (October 2019 - September 2020)."""


@dataclass(frozen=True)
class YearSpec:
    """One synthetic agricultural year: scene name, acquisition dates and how many of the last are labelled."""

    name: str
    dates: tuple[dt.date, ...]
    n_labelled: int

    @property
    def labelled_dates(self) -> tuple[dt.date, ...]:
        """The dates that carry reference labels (the last ``n_labelled``)."""
        return self.dates[len(self.dates) - self.n_labelled:]


SPLITS = ("block", "interleaved")
"""How parcels are split: ``block`` (those touching the train block are train parcels, the paper's Figures 6-7)
or ``interleaved`` (each parcel drawn train or test on its own, as a field survey's reference often is)."""


@dataclass(frozen=True)
class FieldOptions:
    """What a scene's reference looks like to a learner: parcel size, how train and test parcels lie, speckle.

    The defaults are the LEM-like scenes. ``parcel_scale`` multiplies every length of the field layout (0.5:
    parcels of a quarter of the area, so about four times as many and far fewer pixels each); ``split`` and
    ``train_fraction`` (the share of parcels drawn train when interleaved); ``speckle_looks`` is the speckle's
    equivalent number of looks and ``speckle_correlation_px`` its spatial correlation (0: white speckle, which
    a 3 x 3 mean reduces nine-fold; the default's correlated speckle gains far fewer looks from it).
    """

    parcel_scale: float = 1.0
    split: str = "block"
    train_fraction: float = 0.4
    speckle_looks: float = 4.4
    speckle_correlation_px: float = 0.7

    def check(self) -> None:
        """Raise ValueError naming the first impossible option."""
        if not 0.2 <= self.parcel_scale <= 4.0:
            raise ValueError(f"parcel scale must be within 0.2-4, got {self.parcel_scale}")
        if self.split not in SPLITS:
            raise ValueError(f"unknown split {self.split!r}; choose one of: {', '.join(SPLITS)}")
        if not 0.05 <= self.train_fraction <= 0.95:
            raise ValueError(f"train fraction must be within 0.05-0.95, got {self.train_fraction}")
        if not 1.0 <= self.speckle_looks <= 100.0:
            raise ValueError(f"speckle looks must be within 1-100, got {self.speckle_looks}")
        if not 0.0 <= self.speckle_correlation_px <= 3.0:
            raise ValueError(f"speckle correlation must be within 0-3 px, got {self.speckle_correlation_px}")


@dataclass(frozen=True)
class Preset:
    """A named recipe: default size, the two years (training year first) and the train block.

    ``train_block`` is (x0, y0, x1, y1) as fractions of the scene side; parcels touching it are train
    parcels in both years, the others are test parcels (the paper's Figures 6-7).
    """

    name: str
    description: str
    size: int
    years: tuple[YearSpec, YearSpec]
    train_block: tuple[float, float, float, float] = (0.0, 0.0, 0.4, 1.0)
    fields: FieldOptions = FieldOptions()


_PRESETS: MappingProxyType[str, Preset] = MappingProxyType({p.name: p for p in (
    Preset(
        "lem",
        "LEM-like pair: lem1718 (21 dates, 12 labelled) and lem1920 (23 dates, 12 labelled), paper dates, 512 px",
        512,
        (YearSpec("lem1718", LEM1718_DATES, 12), YearSpec("lem1920", LEM1920_DATES, 12)),
    ),
    Preset(
        "tiny",
        "small pair for tests and configs/quick.yaml: 128 px, 9 paper dates per year ending in May, the last 5 "
        "(January-May) labelled",
        128,
        (YearSpec("lem1718", LEM1718_DATES[-9:], 5), YearSpec("lem1920", LEM1920_DATES[-13:-4], 5)),
    ),
    Preset(
        "few-fields",
        "the lem pair where labelled fields are few and small: 256 px, parcels at half the lem lengths, train and "
        "test parcels interleaved, white speckle (docs/guide/networks-vs-booster.md)",
        256,
        (YearSpec("lem1718", LEM1718_DATES, 12), YearSpec("lem1920", LEM1920_DATES, 12)),
        fields=FieldOptions(parcel_scale=0.5, split="interleaved", speckle_correlation_px=0.0),
    ),
)})

PRESETS: MappingProxyType[str, str] = MappingProxyType({k: p.description for k, p in _PRESETS.items()})
"""Preset names and what each writes."""


def get_preset(name: str) -> Preset:
    """Return the preset called ``name``; raise ValueError naming the known presets otherwise."""
    try:
        return _PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown synthetic preset {name!r}; choose one of: {', '.join(_PRESETS)}") from None


def preset_fields(name: str, **given: Any) -> FieldOptions:
    """The field options of preset ``name`` with those ``given`` (not None) replaced: what ``synth`` draws."""
    return replace(get_preset(name).fields, **{k: v for k, v in given.items() if v is not None})
