"""The on-disk layout of run, prediction and experiment directories, in one place.

Every module that writes or reads these folders takes its paths from here, so a file is named once::

    RUN/config.yaml                the exact resolved training configuration
    RUN/classes.json               the model's class table (index 0 = no reference)
    RUN/normalization.json         per-band mean/std of dB values on the training pixels
    RUN/nets/NAME/checkpoints/{best,last}.ckpt, RUN/nets/NAME/logs/, RUN/nets/NAME/result.json
    RUN/nets/NAME/calibration.json the net's temperature and validation profile (tropicrop.valprofile)
    RUN/result.json                written when every net has finished; holds the run's ``format_version``
    RUN/adaptation.json            an adapted run only: how it was adapted and the day-of-year offset to predict with
    RUN/cache/                     the training region as float16 dB + uint8 labels (while the run is unfinished;
                                   several scenes: RUN/cache/NAME-HASH/ for each)

    OUT/classes.json               map code i = model class index i (0 = no data)
    OUT/maps/YYYYMMDD.tif, .png    class map (COG) and its quick-look
    OUT/probabilities/YYYYMMDD.tif optional per-class probabilities
    OUT/confidence/YYYYMMDD.tif    calibrated probability of the mapped class x 100 (uint8, 255 = no data)
    OUT/uncertainty/YYYYMMDD.tif   optional: entropy or margin x 100 (predict --uncertainty)
    OUT/predict.json               one entry per prediction pass
    OUT/metrics/per_date.csv, per_class.csv, confusion/YYYYMMDD.csv
    OUT/parcels.gpkg               per-parcel answers (predict --parcels)
    OUT/metrics/parcel/            the same metrics counted in parcels (evaluate --by parcel)

    EXP/config.yaml, EXP/classes.json, EXP/runs/SLUG/ (a run), EXP/predictions/SLUG/ (a prediction folder),
    EXP/approaches/SLUG.json, EXP/per_date.csv, EXP/table4.csv, EXP/report.md, EXP/figures/

This module only names paths; reading them with checks is :mod:`tropicrop.runfiles`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

RUN_FORMAT_VERSION = 1  # written into RUN/result.json; a run of a newer version is refused when loaded


def stamp(date: dt.date) -> str:
    """``YYYYMMDD``: the file name stem of a date's outputs."""
    return f"{date:%Y%m%d}"


def parse_stamp(text: str) -> dt.date | None:
    """The date of a ``YYYYMMDD`` file name stem (see :func:`stamp`); None for any other name."""
    try:
        return dt.datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        return None


def slug(name: str) -> str:
    """File-system name of an approach: ``Baseline 1`` -> ``baseline-1``."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "approach"


@dataclass(frozen=True)
class RunLayout:
    """Paths of a training run directory."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def classes(self) -> Path:
        return self.root / "classes.json"

    @property
    def normalization(self) -> Path:
        return self.root / "normalization.json"

    @property
    def result(self) -> Path:
        return self.root / "result.json"

    @property
    def adaptation(self) -> Path:
        """``RUN/adaptation.json``: written by ``tropicrop adapt`` (methods, day-of-year offset for prediction)."""
        return self.root / "adaptation.json"

    @property
    def nets(self) -> Path:
        return self.root / "nets"

    @property
    def cache(self) -> Path:
        """``RUN/cache/``: the training region on disk (float16 dB, labels), removed when the run finishes."""
        return self.root / "cache"

    def net(self, name: str) -> Path:
        """``RUN/nets/NAME``: one network's folder (checkpoints, logs, result.json)."""
        return self.nets / name

    def checkpoint(self, name: str, which: str = "best") -> Path:
        """``RUN/nets/NAME/checkpoints/{best,last}.ckpt``."""
        return self.net(name) / "checkpoints" / f"{which}.ckpt"

    def net_result(self, name: str) -> Path:
        return self.net(name) / "result.json"

    def best_checkpoints(self) -> list[Path]:
        """Every ``nets/*/checkpoints/best.ckpt``, sorted by net name."""
        return sorted(self.nets.glob("*/checkpoints/best.ckpt"))

    def model_files(self) -> list[Path]:
        """The files prediction reads each model from: best checkpoints, or per-pixel ``nets/*/model.txt``."""
        return [*self.best_checkpoints(), *sorted(self.nets.glob("*/model.txt"))]


@dataclass(frozen=True)
class PredictionLayout:
    """Paths of a prediction directory (written by predict, read by evaluate and the report)."""

    root: Path

    @property
    def classes(self) -> Path:
        return self.root / "classes.json"

    @property
    def log(self) -> Path:
        return self.root / "predict.json"

    @property
    def maps(self) -> Path:
        return self.root / "maps"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics"

    @property
    def parcel_metrics(self) -> Path:
        """``OUT/metrics/parcel``: metrics of ``evaluate --by parcel``."""
        return self.metrics / "parcel"

    @property
    def parcels(self) -> Path:
        """``OUT/parcels.gpkg``: per-parcel answers of ``predict --parcels``."""
        return self.root / "parcels.gpkg"

    def dates(self) -> list[dt.date]:
        """The dates with a map (``maps/YYYYMMDD.tif``), in order."""
        return sorted(d for d in (parse_stamp(p.stem) for p in self.maps.glob("*.tif")) if d is not None)

    def map(self, date: dt.date) -> Path:
        """``OUT/maps/YYYYMMDD.tif``."""
        return self.maps / f"{stamp(date)}.tif"

    def quicklook(self, date: dt.date) -> Path:
        """``OUT/maps/YYYYMMDD.png``."""
        return self.maps / f"{stamp(date)}.png"

    def probabilities(self, date: dt.date) -> Path:
        """``OUT/probabilities/YYYYMMDD.tif``."""
        return self.root / "probabilities" / f"{stamp(date)}.tif"

    def confidence(self, date: dt.date) -> Path:
        """``OUT/confidence/YYYYMMDD.tif``: calibrated probability of the mapped class, percent (uint8)."""
        return self.root / "confidence" / f"{stamp(date)}.tif"

    def uncertainty(self, date: dt.date) -> Path:
        """``OUT/uncertainty/YYYYMMDD.tif``: entropy or margin of the probabilities, percent (uint8)."""
        return self.root / "uncertainty" / f"{stamp(date)}.tif"


@dataclass(frozen=True)
class ExperimentLayout:
    """Paths of an experiment directory."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def classes(self) -> Path:
        return self.root / "classes.json"

    @property
    def per_date(self) -> Path:
        return self.root / "per_date.csv"

    @property
    def table4(self) -> Path:
        return self.root / "table4.csv"

    @property
    def report(self) -> Path:
        return self.root / "report.md"

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    def run(self, approach: str) -> RunLayout:
        """The training run of approach ``slug``."""
        return RunLayout(self.root / "runs" / approach)

    def predictions(self, approach: str) -> PredictionLayout:
        """Year B's maps of approach ``slug``."""
        return PredictionLayout(self.root / "predictions" / approach)

    def record(self, approach: str) -> Path:
        """``EXP/approaches/SLUG.json``: written when the approach has finished."""
        return self.root / "approaches" / f"{approach}.json"
