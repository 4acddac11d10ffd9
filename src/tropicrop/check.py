"""``tropicrop check RUN SCENE``: the F1 and OA a run is expected to reach on a scene, from its images only.

The run maps the scene (or a random sample of its tiles) with calibrated probabilities into a scratch
folder; the maps and confidence layers are counted per mapped class and confidence level, and
:mod:`tropicrop.estimate` turns the counts into estimated OA and macro F1 with each net's validation
profile, and a shift statistic per date. No label of the scene is read (the scene's manifest may list
labelled dates: they only pick the default dates, as for ``predict``).

With ``against`` (other runs trained on the same year), the run's agreement with their maps of the same
pixels is measured too (:mod:`tropicrop.agreement`): it sees a year shift that confidence misses. The
estimate is then, by default, the midpoint of the two (``midpoint``; ``agreement`` reports agreement alone);
both stay in the result (``confidence_*``, ``agreement_*``), and the shift statistic stays the confidence one.

Sampling (``sample`` < 1): whole prediction tiles are drawn at random, so the cost falls in proportion;
the estimate is then one of the sampled pixels (its error from sampling is measured in the docs).
"""

from __future__ import annotations

import datetime as dt
import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.windows import Window

from tropicrop.agreement import AGREEMENT, MIDPOINT, midpoint
from tropicrop.errors import ConfigError, RunError
from tropicrop.estimate import (
    DEFAULT_ESTIMATOR,
    ESTIMATORS,
    SHIFT_THRESHOLD,
    Estimate,
    counts_of,
    estimate_date,
    validation_scores,
)
from tropicrop.inference.tiling import tile_layout
from tropicrop.io.rasters import Grid
from tropicrop.layout import PredictionLayout, RunLayout, parse_stamp
from tropicrop.runfiles import read_json
from tropicrop.scene import Scene, load_scene
from tropicrop.valprofile import ValProfile, read_profile

CHECK_TILE = 128  # tiles predicted (and sampled) by check
LABELLED_ADAPTATION = "few_labels"
"""The one adaptation method that reads labels of the new year; every other one adapts from images only."""
ADAPTED_CAUTION = ("adapted to the new year without labels ({methods}): the estimate erred more on such runs than "
                   "on the runs it was chosen on (the adapted network no longer behaves as on the validation set "
                   "its profile comes from, and agreement references are the models it was adapted away from; "
                   "docs/guide/confidence.md): read it as a rough guide")


def adapted_without_labels(methods: Sequence[str] | None) -> list[str]:
    """The methods of an adapted run (``result.json``'s ``adaptation``, an experiment record's ``adapt.methods``)
    that adapt from images only: where ``check``'s estimates are least trustworthy."""
    return [m for m in methods or [] if m != LABELLED_ADAPTATION]
WITH_REFERENCES = (MIDPOINT, AGREEMENT)
"""Estimators that need ``against`` (other runs of the same training year)."""


@dataclass
class CheckResult:
    """Per date: the serving net, its estimate and its own validation figures; averages over dates."""

    run: Path
    scene: Path
    estimator: str
    sample: float
    dates: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    against: list[Path] = field(default_factory=list)
    adapted: list[str] = field(default_factory=list)  # adaptation methods of the run that read no label

    def _mean(self, key: str) -> float:
        values = [d[key] for d in self.dates if d[key] is not None and math.isfinite(d[key])]
        return float(np.mean(values)) if values else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {"run": str(self.run), "scene": str(self.scene), "estimator": self.estimator, "sample": self.sample,
                "estimated_f1": self._mean("estimated_f1"), "estimated_oa": self._mean("estimated_oa"),
                "validation_f1": self._mean("validation_f1"), "validation_oa": self._mean("validation_oa"),
                "shift_threshold": SHIFT_THRESHOLD,
                "shifted_months": sorted({d["date"][:7] for d in self.dates if d["shifted"]}),
                "against": [str(p) for p in self.against], "dates": self.dates, "seconds": round(self.seconds, 2),
                "adapted_without_labels": self.adapted,
                **({f"{kind}_{key}": self._mean(f"{kind}_{key}") for kind in ("confidence", "agreement")
                    for key in ("f1", "oa")} if self.against else {})}


def read_profiles(run: RunLayout) -> dict[str, ValProfile]:
    """Every net's validation profile; RunError for a run trained before calibration (nothing to fit on)."""
    profiles = {}
    for net in sorted(p for p in run.nets.iterdir() if p.is_dir()) if run.nets.is_dir() else []:
        profile = read_profile(net)
        if profile is None:
            raise RunError(net, "has no calibration.json (trained before calibration), so no validation profile "
                           "to estimate from", "train the run again with this tropicrop")
        profiles[net.name] = profile
    if not profiles:
        raise RunError(run.root, "holds no trained net", "train one first: tropicrop train -c CONFIG --run-dir RUN")
    return profiles


def sample_mask(grid: Grid, fraction: float, seed: int, tile: int = CHECK_TILE) -> np.ndarray | None:
    """(H, W) bool: the cores of a random ``fraction`` of the prediction tiles (None: the whole scene)."""
    if not 0 < fraction <= 1:
        raise ConfigError(None, f"--sample {fraction}", "give a share of the scene in (0, 1]")
    if fraction >= 1:
        return None
    th, rows = tile_layout(grid.height, tile, 0)
    tw, cols = tile_layout(grid.width, tile, 0)
    cores = [(r, c) for r in range(len(rows)) for c in range(len(cols))]
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(cores), max(1, round(fraction * len(cores))), replace=False)
    mask = np.zeros((grid.height, grid.width), bool)
    for k in pick:
        i, j = cores[k]
        r0 = max(rows[i], rows[i - 1] + th if i else 0)
        c0 = max(cols[j], cols[j - 1] + tw if j else 0)
        r1 = rows[i + 1] if i + 1 < len(rows) else grid.height
        c1 = cols[j + 1] if j + 1 < len(cols) else grid.width
        mask[r0:r1, c0:c1] = True
    return mask


def serving_nets(out: Path, dates: list[dt.date], profiles: dict[str, ValProfile]) -> dict[dt.date, str]:
    """The net that mapped each date: from the prediction log, or (classical runs) by month."""
    log = read_json(PredictionLayout(out).log)
    logged: dict[str, str] = {}
    for session in log if isinstance(log, list) else []:
        logged.update(session.get("nets") or {})
    names = {}
    for d in dates:
        name = logged.get(d.isoformat())
        if name is None:
            same = [n for n in profiles if n != "all-months" and dt.date.fromisoformat(n).month == d.month]
            name = "all-months" if "all-months" in profiles else (same[0] if same else next(iter(profiles)))
        names[d] = name
    return names


def count_maps(out: Path, date: dt.date, classes: int, mask: np.ndarray | None = None) -> np.ndarray:
    """(classes, 101) counts of one date's map and confidence layer, read window by window; with ``mask``
    (H, W) bool, of its pixels only."""
    layout = PredictionLayout(out)
    counts = np.zeros((classes, 101), np.int64)
    with rasterio.open(layout.map(date)) as maps, rasterio.open(layout.confidence(date)) as conf:
        for _, window in maps.block_windows(1):
            codes = maps.read(1, window=window)
            if mask is not None:
                codes = np.where(mask[window.toslices()], codes, 0)
            counts += counts_of(codes, conf.read(1, window=window), classes)
    return counts


def check_run(run_dir: Path, scene: Scene | Path, dates: list[dt.date] | None = None, sample: float = 1.0,
              seed: int = 0, estimator: str | None = None, progress: bool = False, tile: int = CHECK_TILE,
              aoi: Path | None = None, against: Sequence[Path] = (), keep_maps: Path | None = None) -> CheckResult:
    """Estimate the OA and macro F1 ``run_dir`` reaches on ``scene`` at ``dates`` (default: as ``predict``),
    from the scene's images only; ``sample`` is the share of the scene's ``tile``-pixel tiles mapped
    ; ``aoi`` (vector or raster) limits the estimate to the fields in it. ``against``: runs of the same
    training year whose maps the run's are scored against (estimator ``midpoint``, the default with them, or
    ``agreement``; otherwise :data:`DEFAULT_ESTIMATOR`). ``keep_maps``: a folder to keep the run's maps in (by
    default they go with the scratch folder)."""
    from tropicrop.inference import predict_run

    estimator = estimator or (MIDPOINT if against else DEFAULT_ESTIMATOR)
    if estimator not in (*ESTIMATORS, *WITH_REFERENCES):
        raise ConfigError(None, f"--estimator {estimator!r}", f"use one of {', '.join((*ESTIMATORS, *WITH_REFERENCES))}")
    if estimator in WITH_REFERENCES and not against:
        raise ConfigError(None, f"--estimator {estimator} without --against", "name a run of the same training year")
    if against and estimator not in WITH_REFERENCES:
        raise ConfigError(None, f"--estimator {estimator} with --against", f"use {' or '.join(WITH_REFERENCES)}")
    run = RunLayout(Path(run_dir))
    read_profiles(run)  # a run without profiles fails here, before the prediction
    for other in against:
        read_profiles(RunLayout(Path(other)))
    scene = scene if isinstance(scene, Scene) else load_scene(scene)
    mask = sample_mask(scene.grid, sample, seed, tile)  # every kind of run predicts through the same path
    if aoi is not None:
        from tropicrop.inference.tiling import aoi_reader

        read = aoi_reader(aoi, scene.grid)
        assert read is not None
        inside = read(Window(0, 0, scene.grid.width, scene.grid.height))
        mask = inside if mask is None else mask & inside
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tropicrop-check-") as tmp:
        own = Path(keep_maps) if keep_maps is not None else Path(tmp) / "run"
        maps = predict_run(run.root, scene, own, dates, tile=tile, progress=progress, aoi=mask)
        mapped = [d for d in (parse_stamp(p.stem) for p in maps) if d is not None]
        result = estimate_predictions(run.root, own, mapped, DEFAULT_ESTIMATOR if against else estimator)
        if against:
            refs = [Path(tmp) / f"against{i}" for i in range(len(against))]
            for other, ref in zip(against, refs, strict=True):
                predict_run(Path(other), scene, ref, mapped, tile=tile, progress=progress, aoi=mask)
            agreement_into(result, own, refs, mapped, estimator)
            result.against = [Path(p) for p in against]
    result.scene, result.sample = scene.root, sample
    result.seconds = time.perf_counter() - start
    result.adapted = adapted_without_labels(read_json(run.result).get("adaptation") if run.result.is_file() else None)
    return result


def estimate_predictions(run_dir: Path, out: Path, dates: list[dt.date], estimator: str = DEFAULT_ESTIMATOR,
                         mask: np.ndarray | None = None) -> CheckResult:
    """Estimates from maps and confidence layers already written by ``predict`` (calibrated) into ``out``;
    ``mask`` (H, W) bool limits them to its pixels (e.g. the fields of an AOI)."""
    profiles = read_profiles(RunLayout(Path(run_dir)))
    names = serving_nets(out, dates, profiles)
    result = CheckResult(Path(run_dir), out, estimator, 1.0)
    for d in dates:
        profile = profiles[names[d]]
        counts = count_maps(out, d, profile.confusion.shape[0], mask)
        est: Estimate = estimate_date(profile, counts, d.month, estimator)
        val_oa, val_f1 = validation_scores(profile)
        result.dates.append({"date": d.isoformat(), "net": names[d], "estimated_oa": est.oa,
                             "estimated_f1": est.f1, "validation_oa": val_oa, "validation_f1": val_f1,
                             "shift": est.shift, "shifted": est.shifted, "pixels": est.pixels})
    return result


def agreement_into(result: CheckResult, own: Path, references: Sequence[Path], dates: list[dt.date],
                   estimator: str = MIDPOINT) -> None:
    """Add the agreement with the reference maps to ``result``'s dates (``agreement_f1`` / ``agreement_oa``),
    keep the confidence-based estimates as ``confidence_f1`` / ``confidence_oa``, and make ``estimated_*``
    their midpoint (``estimator`` ``midpoint``) or the agreement alone (``agreement``); the shift statistic
    is kept."""
    from tropicrop.agreement import agreement_estimates

    by_date = {row["date"]: row for row in agreement_estimates(own, references, dates)}
    for d in result.dates:
        row = by_date[d["date"]]
        d.update(confidence_f1=d["estimated_f1"], confidence_oa=d["estimated_oa"], agreement_f1=row["estimated_f1"],
                 agreement_oa=row["estimated_oa"])
        for key in ("f1", "oa"):
            d[f"estimated_{key}"] = (midpoint(d[f"confidence_{key}"], d[f"agreement_{key}"]) if estimator == MIDPOINT
                                     else d[f"agreement_{key}"])
    result.estimator = estimator


def format_check(result: dict[str, Any]) -> str:
    """The table ``tropicrop check`` prints: per date, then the average and the months that look shifted."""
    lines = [f"{'date':<12}{'net':<14}{'est. F1':>9}{'est. OA':>9}{'val F1':>8}{'val OA':>8}{'shift':>7}",
             *(f"{d['date']:<12}{d['net'][:13]:<14}{100 * d['estimated_f1']:>9.1f}{100 * d['estimated_oa']:>9.1f}"
               f"{100 * d['validation_f1']:>8.1f}{100 * d['validation_oa']:>8.1f}{d['shift']:>7.2f}"
               + ("  *" if d["shifted"] else "") for d in result["dates"]),
             f"{'average':<26}{100 * result['estimated_f1']:>9.1f}{100 * result['estimated_oa']:>9.1f}"
             f"{100 * result['validation_f1']:>8.1f}{100 * result['validation_oa']:>8.1f}"]
    shifted = result["shifted_months"]
    if result.get("against"):
        how = "the midpoint of confidence and agreement" if result["estimator"] == MIDPOINT else "agreement"
        lines.append(f"estimated by {how} with {', '.join(result['against'])}")
    lines.append(f"estimator {result['estimator']} on {100 * result['sample']:.0f}% of the scene, "
                 f"{result['seconds']:.1f} s; shift = KS distance of confidence to the validation set's")
    lines.append(f"* unlike the training year (shift > {result['shift_threshold']}): {', '.join(shifted)}"
                 if shifted else f"no month looks unlike the training year (shift <= {result['shift_threshold']})")
    if result.get("adapted_without_labels"):
        lines.append("caution: " + ADAPTED_CAUTION.format(methods=", ".join(result["adapted_without_labels"])))
    return "\n".join(lines)


def check_command(args: Any) -> int:
    """``tropicrop check``: parse the scene and dates, check, print the table or JSON."""
    import json
    import sys

    from tropicrop.inference import parse_dates

    scene = load_scene(Path(args.scene))
    result = check_run(Path(args.run), scene, parse_dates(args.dates, scene), sample=args.sample, seed=args.seed,
                       estimator=args.estimator, progress=sys.stderr.isatty(),
                       aoi=Path(args.aoi) if args.aoi else None,
                       against=[Path(p) for p in args.against or []]).to_dict()
    print(json.dumps(result, indent=2) if args.json else format_check(result))
    return 0
