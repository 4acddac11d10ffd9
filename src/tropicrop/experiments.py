"""The paper's cross-year protocol (section 4.2) in one call: train, predict and evaluate each approach.

Year A (LEM 17/18 in the paper) is the earlier agricultural year, year B (LEM 19/20) the one every approach
is tested on, always on B's test split:

* Baseline 1: per-month UnetConvLSTM nets trained on B's train split (the upper bound);
* Baseline 2: per-month UnetConvLSTM nets trained on all labelled pixels of A;
* VUnetConvLSTM: one network trained on A for all months;
* any other registered model in either mode, by config;
* an approach with an ``adapt`` section trains nothing: it adapts an earlier approach's run to year B
  (``tropicrop.adaptation``: year statistics, AdaBN, day-of-year shift, self-training from B's images
  only; or, with ``parcels: k``, fine-tuning on k labelled parcels per class of B's train split).

Layout of an experiment directory::

    OUT/config.yaml                the resolved experiment configuration
    OUT/classes.json               the class table shared by every approach
    OUT/runs/SLUG/                 one training run per approach (tropicrop.training layout)
    OUT/predictions/SLUG/          maps of year B and their metrics (tropicrop.inference / evaluation)
    OUT/approaches/SLUG.json       timing and averages of a finished approach
    OUT/per_date.csv, table4.csv   approach, date, oa, f1 / averages and training time
    OUT/report.md, figures/        written by tropicrop.report

A finished approach (its ``approaches/SLUG.json`` exists) is not retrained: re-running the same command
resumes a partly finished experiment.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from tropicrop.classes import ClassTable, count_by_name, fit_class_table
from tropicrop.config import dump_config, load_config, to_dict
from tropicrop.config.experiment import ENSEMBLE_MODEL, AdaptSection, ApproachConfig, ExperimentConfig
from tropicrop.errors import ConfigError, RunError
from tropicrop.io.files import atomic_path, write_json
from tropicrop.layout import ExperimentLayout, RunLayout, slug
from tropicrop.report import write_report
from tropicrop.results import RunResult
from tropicrop.runfiles import read_class_table, read_json
from tropicrop.scene import TRAIN, Scene, load_scene
from tropicrop.training import TrainConfig, train, trainer_for

log = logging.getLogger(__name__)
RESTART_APPROACH = "delete {path} to run that approach again"
__all__ = ["AdaptSection", "ApproachConfig", "ExperimentConfig", "run_experiment"]  # the schemas live in tropicrop.config


def shared_class_table(cfg: ExperimentConfig, scene_a: Scene, scene_b: Scene) -> ClassTable:
    """One class table for every approach, so their maps compare class by class.

    Fitted on the pixels the approaches train on (all of A, B's train split), summed by class name; classes
    below ``other_threshold`` of those samples are merged into Other (paper: 5.3 %).
    """
    if cfg.classes:
        return ClassTable.from_names(cfg.classes)
    counts: dict[str, int] = {}
    for scene, use in ((scene_a, "all"), (scene_b, "train")):
        mask = scene.read_split() == TRAIN if use == "train" else None
        for labels in scene.read_labels():
            count_by_name(labels[mask] if mask is not None else labels, scene.classes, counts)
    return fit_class_table(counts, cfg.other_threshold)


def approach_train_config(cfg: ExperimentConfig, approach: ApproachConfig, classes: ClassTable) -> TrainConfig:
    """The training configuration of one approach: the shared settings plus its mode, model and data
    (:meth:`tropicrop.config.ExperimentConfig.train_config`, checked when the experiment was read)."""
    return cfg.train_config(approach, list(classes.names[1:]))


def run_approach(cfg: ExperimentConfig, approach: ApproachConfig, classes: ClassTable, scene_b: Scene,
                 out: Path, progress: bool = True) -> dict[str, Any]:
    """Train (or resume), predict year B and evaluate one approach; returns its summary."""
    from tropicrop.evaluation import evaluate_predictions
    from tropicrop.inference import predict_run

    name = slug(approach.name)
    exp = ExperimentLayout(out)
    done = exp.record(name)
    if done.is_file():
        finished: dict[str, Any] = read_json(done, RESTART_APPROACH.format(path=done))
        return finished
    if approach.ensemble is not None:  # trains nothing: two finished runs' probabilities averaged
        return ensemble_record(cfg, approach, classes, scene_b, out, progress)
    run_dir = exp.run(name).root
    adapted: dict[str, Any] | None = None
    tcfg: TrainConfig | None = None
    start = time.perf_counter()
    if approach.adapt is not None:
        summary, adapted = _adapt_approach(approach.adapt, scene_b, out, run_dir, progress)
    else:
        tcfg = approach_train_config(cfg, approach, classes)
        tcfg.trainer.progress = progress and tcfg.trainer.progress
        summary = train(tcfg, run_dir, resume=run_dir.exists())
    train_wall = time.perf_counter() - start
    pred_dir = exp.predictions(name).root
    start = time.perf_counter()
    # default dates = year B's labelled dates; a per-month run predicts those of the months it has a net for
    predict_run(run_dir, scene_b, pred_dir, tile=cfg.predict.tile, overlap=cfg.predict.overlap, progress=progress,
                margin=cfg.predict.margin, probabilities=cfg.predict.probabilities)
    predict_wall = time.perf_counter() - start
    result = evaluate_predictions(pred_dir, scene_b, split="test", class_names=list(classes.names))
    per_date = [{"date": d.date.isoformat(), "oa": d.oa, "f1": d.macro_f1} for d in result.dates]
    calibration = approach_calibration(run_dir, pred_dir, result)  # ECE, Brier, check's estimates (no labels)
    record = {
        "name": approach.name,
        "slug": name,
        "mode": approach.mode,
        "model": approach.model,
        "train_on": approach.train_on,
        "use": approach.use,
        "role": approach.role,
        "nets": len(summary.nets),
        "parameters": (parameter_count(tcfg, scene_b.num_bands, classes.num_classes)  # per network
                       if tcfg is not None else None),
        "train_seconds": summary.train_seconds,  # summed over nets, across resumed sessions
        "train_wall_seconds_this_session": train_wall,
        "predict_seconds": predict_wall,
        "f1": float(np.mean([d["f1"] for d in per_date])),
        "oa": float(np.mean([d["oa"] for d in per_date])),
        "per_date": per_date,
        **calibration,
        **training_record(summary),
    }
    if adapted is not None:
        record.update(mode=adapted["mode"], model=adapted["model"], train_on=adapted["train_on"], use=adapted["use"],
                      adapt=adapted["adapt"], train_seconds=adapted["train_seconds"], parameters=adapted["parameters"])
    write_json(done, record)
    return record


def ensemble_record(cfg: ExperimentConfig, approach: ApproachConfig, classes: ClassTable, scene_b: Scene,
                    out: Path, progress: bool) -> dict[str, Any]:
    """Predict and evaluate an ensemble approach from its members' finished runs (nothing trains) and write its
    record: ``ensemble (network + booster)`` as model, the members' nets and training time summed, the
    network member's parameters per net."""
    from tropicrop.ensemble import UNCALIBRATED, predict_ensemble
    from tropicrop.ensemblecal import CALIBRATION_FILE
    from tropicrop.evaluation import evaluate_predictions

    assert approach.ensemble is not None
    exp = ExperimentLayout(out)
    members = []
    for member in approach.ensemble.members:
        path = exp.record(slug(member))
        if not path.is_file():
            raise RunError(out, f"approach {member!r} has not finished", "list it before the ensemble")
        members.append(read_json(path, RESTART_APPROACH.format(path=path)))
    pred_dir = exp.predictions(slug(approach.name)).root
    start = time.perf_counter()
    predict_ensemble([(m["name"], exp.run(m["slug"]).root, exp.predictions(m["slug"]).root) for m in members],
                     scene_b, pred_dir, classes,
                     tile=cfg.predict.tile, overlap=cfg.predict.overlap, margin=cfg.predict.margin, progress=progress,
                     compare=True)
    predict_wall = time.perf_counter() - start
    result = evaluate_predictions(pred_dir, scene_b, split="test", class_names=list(classes.names))
    uncalibrated = evaluate_predictions(pred_dir / UNCALIBRATED, scene_b, split="test",
                                        class_names=list(classes.names)).calibration()
    per_date = [{"date": d.date.isoformat(), "oa": d.oa, "f1": d.macro_f1} for d in result.dates]
    network = next((m for m in members if m.get("parameters") is not None), members[0])
    record = {
        "name": approach.name, "slug": slug(approach.name), "mode": "ensemble", "model": ENSEMBLE_MODEL,
        "train_on": members[0]["train_on"], "use": members[0]["use"], "role": approach.role,
        "ensemble": {"members": [m["name"] for m in members]},
        "nets": sum(m["nets"] for m in members), "parameters": network.get("parameters"),
        "train_seconds": sum(m["train_seconds"] for m in members), "train_wall_seconds_this_session": 0.0,
        "predict_seconds": predict_wall,  # members predicted again with probabilities (unless kept), and combined
        "f1": float(np.mean([d["f1"] for d in per_date])), "oa": float(np.mean([d["oa"] for d in per_date])),
        "per_date": per_date, **dict(result.calibration()), "net_training": {}, "val_f1": None,
        # the ensemble's own temperature (validation pixels both members share) and the test ECE without it
        "calibration": {**read_json(pred_dir / CALIBRATION_FILE, RESTART_APPROACH.format(path=pred_dir)),
                        "ece_uncalibrated": uncalibrated.get("ece")},
    }
    write_json(exp.record(slug(approach.name)), record)
    return record


def parameter_count(cfg: TrainConfig, in_channels: int, num_classes: int) -> int | None:
    """Parameters of one network of a training configuration (its model with its options); None for a
    per-pixel model, whose size (trees grown until early stopping) is not a network's parameter count."""
    return trainer_for(cfg.model.name).parameters(cfg, in_channels, num_classes)


def training_record(summary: RunResult) -> dict[str, Any]:
    """What each net of a run learnt from and how it stopped: training/validation patches, best validation
    macro F1 and its length (epochs, or boosting rounds, with its unit), keyed by net name; plus the mean
    validation F1."""
    nets = {name: net.summary() for name, net in summary.nets.items()}
    val = [n.best_val_f1 for n in summary.nets.values() if n.best_val_f1 is not None]
    return {"net_training": nets, "val_f1": float(np.mean(val)) if val else None}


def _adapt_approach(section: AdaptSection, scene_b: Scene, out: Path, run_dir: Path,
                    progress: bool) -> tuple[RunResult, dict[str, Any]]:
    """Adapt the finished run of approach ``section.base`` to year B into ``run_dir`` (kept if complete).

    Returns the run summary and what the approach record takes from the base and the adaptation: the
    base's mode, model and training year, and its training time plus the adaptation's.
    """
    from tropicrop.adaptation import adapt_run

    exp = ExperimentLayout(out)
    base_done = exp.record(slug(section.base))
    if not base_done.is_file():
        raise RunError(out, f"approach {section.base!r} has not finished", "list it before the adapted approaches")
    base = read_json(base_done, RESTART_APPROACH.format(path=base_done))
    run = RunLayout(run_dir)
    if run.adaptation.is_file() and run.result.is_file():
        adaptation = read_json(run.adaptation, RESTART_APPROACH.format(path=run_dir))
    else:
        adaptation = adapt_run(exp.run(base["slug"]).root, scene_b, run_dir, section, force=True, progress=progress)
    summary = RunResult.from_dict(read_json(run.result, RESTART_APPROACH.format(path=run_dir)), run.result)
    info = {
        "mode": base["mode"], "model": base["model"], "train_on": base["train_on"], "use": base["use"],
        "parameters": base.get("parameters"),
        "train_seconds": base["train_seconds"] + adaptation["seconds"],
        "adapt": {"base": section.base, "methods": adaptation["methods"], "parcels": adaptation["parcels"],
                  "doy_offset": adaptation["doy_offset"], "seconds": adaptation["seconds"],
                  "year_b_labels_read": adaptation["year_b_labels_read"],
                  "temperature": adaptation.get("temperature")},
    }
    return summary, info


def approach_calibration(run_dir: Path, pred_dir: Path, result: Any) -> dict[str, Any]:
    """Calibration of an approach's year-B maps (ECE, Brier, accuracy at coverage; from the confidence layers)
    and ``check``'s label-free estimates of its F1 and OA from the same maps (None for a run without profile)."""
    from tropicrop.check import estimate_predictions
    from tropicrop.errors import RunError

    record: dict[str, Any] = dict(result.calibration())
    try:
        est = estimate_predictions(run_dir, pred_dir, [d.date for d in result.dates]).to_dict()
    except RunError:  # trained before calibration: nothing to estimate from
        return record
    record.update(estimated_f1=est["estimated_f1"], estimated_oa=est["estimated_oa"],
                  estimated_per_date=est["dates"], shifted_months=est["shifted_months"])
    return record


def learnt_year(record: dict[str, Any]) -> str:
    """The year whose labels a record's model learnt from: ``b`` for a run fine-tuned on year-B parcels
    (its base was trained on A), else the year it was trained on."""
    return "b" if (record.get("adapt") or {}).get("parcels") else str(record["train_on"])


def agreement_references(record: dict[str, Any], records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The approaches a record's maps are scored against for the agreement estimate: every other approach
    that learnt from the same year's labels and trains a model of its own (no ensemble, no adapted run), less
    the base of an adapted record (the same model); none for an ensemble (it is no model of its own)."""
    if record.get("mode") == "ensemble":
        return []
    base = (record.get("adapt") or {}).get("base")
    return [r for r in records if r is not record and learnt_year(r) == learnt_year(record) and r["name"] != base
            and r.get("mode") != "ensemble" and "adapt" not in r]


def add_agreement(out: Path, records: list[dict[str, Any]]) -> None:
    """``agreement`` of every record that has references: ``check``'s agreement estimate of its F1 and OA on
    year B (:mod:`tropicrop.agreement`, every mapped pixel, no label read) and its midpoint with the
    record's confidence estimate (``check --against``'s default), written into its record file."""
    from tropicrop.agreement import agreement_estimates, midpoint

    exp = ExperimentLayout(out)
    for record in records:
        refs = agreement_references(record, records)
        agreement = None
        if refs:
            dates = [dt.date.fromisoformat(d["date"]) for d in record["per_date"]]
            rows = agreement_estimates(exp.predictions(record["slug"]).root,
                                       [exp.predictions(r["slug"]).root for r in refs], dates)
            means = {k: float(np.nanmean([row[f"estimated_{k}"] for row in rows])) for k in ("f1", "oa")}
            agreement = {"references": [r["name"] for r in refs], "per_date": rows,
                         **{f"estimated_{k}": v for k, v in means.items()},
                         **{f"midpoint_{k}": midpoint(record.get(f"estimated_{k}"), v) for k, v in means.items()}}
        if record.get("agreement") != agreement:  # a finished record is rewritten only when its references changed
            record["agreement"] = agreement
            write_json(exp.record(record["slug"]), record)


def write_tables(out: Path, records: list[dict[str, Any]]) -> tuple[Path, Path]:
    """``per_date.csv`` (approach, date, oa, f1) and ``table4.csv`` (approach, f1, oa, training hours, nets,
    model, parameters per network, prediction seconds)."""
    per_date = ExperimentLayout(out).per_date
    with atomic_path(per_date) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["approach", "date", "oa", "f1"])
        for r in records:
            for d in r["per_date"]:
                w.writerow([r["name"], d["date"], f"{d['oa']:.6f}", f"{d['f1']:.6f}"])
    table4 = ExperimentLayout(out).table4
    with atomic_path(table4) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["approach", "f1", "oa", "train_hours", "train_seconds", "nets", "model", "parameters",
                    "predict_seconds", "val_f1", "train_patches", "ece", "brier", "estimated_f1", "estimated_oa",
                    "agreement_f1", "agreement_oa", "midpoint_f1", "midpoint_oa"])
        for r in records:
            patches = [n.get("train_patches") for n in r.get("net_training", {}).values() if n.get("train_patches") is not None]
            w.writerow([r["name"], f"{r['f1']:.6f}", f"{r['oa']:.6f}", f"{r['train_seconds'] / 3600:.6f}",
                        f"{r['train_seconds']:.3f}", r["nets"], r.get("model", ""),
                        "" if r.get("parameters") is None else r["parameters"],
                        f"{r['predict_seconds']:.3f}" if "predict_seconds" in r else "",
                        "" if r.get("val_f1") is None else f"{r['val_f1']:.6f}",
                        "" if not patches else f"{min(patches)}-{max(patches)}" if min(patches) != max(patches)
                        else str(patches[0]),
                        *(_fraction(r.get(k)) for k in ("ece", "brier", "estimated_f1", "estimated_oa")),
                        *(_fraction((r.get("agreement") or {}).get(k))
                          for k in ("estimated_f1", "estimated_oa", "midpoint_f1", "midpoint_oa"))])
    return per_date, table4


def _fraction(value: Any) -> str:
    """A table cell of a fraction (empty when not measured)."""
    return "" if value is None or not np.isfinite(value) else f"{value:.6f}"


def extends(previous: ExperimentConfig, cfg: ExperimentConfig) -> bool:
    """Whether ``cfg`` is ``previous`` with approaches added: same shared settings and every earlier approach
    unchanged, so their finished results stay valid and only the new approaches run (e.g. adaptation rows
    added to a finished demo)."""
    old, new = to_dict(previous), to_dict(cfg)
    old_approaches, new_approaches = old.pop("approaches"), new.pop("approaches")
    old.pop("name"), new.pop("name")  # the title of the report
    return old == new and all(a in new_approaches for a in old_approaches)


def run_experiment(config: Path | None, out: Path, overrides: list[str] = (), progress: bool = True,  # type: ignore[assignment]
                   cfg: ExperimentConfig | None = None) -> Path:
    """``tropicrop experiment``: run every approach of the config into ``out`` and write the report.

    Returns the path of ``report.md``. Re-running with the same ``out`` resumes where it stopped.
    """
    out = Path(out)
    exp = ExperimentLayout(out)
    saved = exp.config
    if cfg is None:
        if config is None and saved.is_file():
            config = saved
        if config is None:
            raise ConfigError(None, "no config given", "pass -c CONFIG.yaml (see configs/demo.yaml)")
        cfg = load_config(ExperimentConfig, config, list(overrides))
    if saved.is_file() and not extends(load_config(ExperimentConfig, saved), cfg):
        raise RunError(out, "holds an experiment with another configuration",
                       "choose another --out, or delete it to start again (approaches may only be added)")
    out.mkdir(parents=True, exist_ok=True)
    dump_config(cfg, saved)
    scene_a, scene_b = load_scene(cfg.scenes.a), load_scene(cfg.scenes.b)
    for scene in (scene_a, scene_b):
        if not scene.labelled_dates:
            raise ConfigError(config, f"scene {scene.root} has no labelled dates", "both years need reference labels")
    if not scene_b.has_split:
        raise ConfigError(config, f"scene {scene_b.root} (year B) has no train/test split", "add a split to its scene.yaml")
    classes_path = exp.classes
    if classes_path.is_file():
        classes = read_class_table(classes_path, "delete it to fit the class table again (it is shared by every approach)")
    else:
        classes = shared_class_table(cfg, scene_a, scene_b)
        write_json(classes_path, classes.to_dict())
    log.info("experiment %s: classes %s", cfg.name, list(classes.names[1:]))
    records = []
    for approach in cfg.approaches:
        if approach.ensemble is not None:
            print(f"[{approach.name}] averaging the calibrated probabilities of {' and '.join(approach.ensemble.members)}",
                  flush=True)
        elif approach.adapt is not None:
            what = ", ".join(approach.adapt.methods) + (f" + {approach.adapt.parcels} parcel(s)/class"
                                                        if approach.adapt.parcels else "")
            print(f"[{approach.name}] adapting {approach.adapt.base} to year B ({what})", flush=True)
        else:
            print(f"[{approach.name}] training ({approach.mode}, {approach.model}, on year {approach.train_on.upper()})",
                  flush=True)
        record = run_approach(cfg, approach, classes, scene_b, out, progress)
        print(f"[{approach.name}] average F1 {100 * record['f1']:.1f}, OA {100 * record['oa']:.1f}, "
              f"training {record['train_seconds']:.0f} s", flush=True)
        records.append(record)
    add_agreement(out, records)
    write_tables(out, records)
    return write_report(out)
