"""Adapting a finished run to a new year's scene: ``tropicrop adapt RUN SCENE --run-dir OUT``.

The adapted run is a run directory like any other (``tropicrop predict`` uses it unchanged) holding the
adapted networks, the normalisation to apply to the new year (its own statistics with ``year_stats``) and
``adaptation.json``: the source run, the scene, the methods, the day-of-year offset that prediction adds
to the new year's dates, the shift scores, the self-training statistics and the temperature each model's
probabilities use (year A's for the unsupervised methods; for a self-trained network refitted on year A's
validation pixels with its new weights, :mod:`tropicrop.adaptation.trainingyear`; refitted on the labelled
parcels with ``parcels``). Methods run in this order,
each seeing the previous ones' result:

1. ``year_stats``: the new year's own per-band mean/std replace the training year's;
2. ``adabn``: BatchNorm statistics re-estimated on the new year's patches;
3. ``doy_shift``: the day-of-year offset estimated (networks fed the day of year only; AdaBN is re-run
   with the offset when both are on, since the decoder's statistics depend on it);
4. ``self_training``: mean-teacher pseudo-labelling on the new year's images.

None of these reads a label of the new year. ``parcels=k`` (few labels, optional) then fine-tunes on k
labelled parcels per class of the new year's train split, and is recorded as label use. Each method is a
class of :mod:`tropicrop.adaptation.methods` that declares the kinds of run it accepts; those the run's
kind does not accept are recorded as ``skipped``. The directory is built under a hidden temporary name and
renamed when complete.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from tropicrop.adaptation.methods import Method, applicable_methods
from tropicrop.adaptation.state import NETWORK, PIXEL, Adaptation, AdaptedNet, load_adaptation, save_net
from tropicrop.adaptation.trainingyear import refit_on_training_year
from tropicrop.config.adaptation import METHODS, AdaptOptions
from tropicrop.errors import RunError
from tropicrop.inference.run import read_doy_offset
from tropicrop.io.files import atomic_folder, write_json
from tropicrop.layout import RunLayout
from tropicrop.runfiles import read_json, read_yaml_mapping
from tropicrop.scene import Scene, load_scene
from tropicrop.valprofile import CALIBRATION_FILE, read_profile, write_profile

log = logging.getLogger(__name__)

__all__ = ["METHODS", "NETWORK", "PIXEL", "AdaptOptions", "adapt_run", "applicable_methods", "run_kind"]


def adapt_run(run_dir: Path, scene: Scene | Path, out: Path, options: AdaptOptions | None = None, *,
              force: bool = False, progress: bool = True) -> dict[str, Any]:
    """Adapt the finished run ``run_dir`` to ``scene`` (the new year) into the run directory ``out``.

    Returns the adaptation record (also ``out/adaptation.json``). Raises RunError for a missing or
    unfinished source run or an existing ``out`` without ``force`` (``options`` were checked when built), and
    ConfigError when no chosen method applies to the run's kind.
    """
    options = options or AdaptOptions()
    run_dir, out = Path(run_dir), Path(out)
    if out.exists() and any(out.iterdir()) and not force:
        raise RunError(out, "already holds a run", "choose another --run-dir or pass --force to replace it")
    kind = run_kind(run_dir)
    methods, skipped = applicable_methods(options, kind)
    scene = scene if isinstance(scene, Scene) else load_scene(scene)
    start = time.perf_counter()
    # an adapted run's offset is the start: adapting twice adds up
    run = load_adaptation(run_dir, scene, options, kind, [m.name for m in methods],
                          read_doy_offset(RunLayout(run_dir)), progress)
    for method in methods:
        method.prepare(run)
    for net in run.nets:
        for method in methods:
            method.apply(run, net)
    kept = refit_on_training_year(run, [n for n in run.nets if "self_training" in n.record and n.calibration is None])
    record = _record(run, methods, skipped, kept)
    record["seconds"] = time.perf_counter() - start
    _write(run, out, record)
    log.info("adapted %s to %s with %s (doy offset %+d) in %s", run_dir, scene.root, record["methods"],
             run.doy_offset, out)
    return record


def _write(run: Adaptation, out: Path, record: dict[str, Any]) -> None:
    """The adapted run directory, built under a temporary name: models, their results and calibration,
    the source's configuration, classes, the new normalisation, the record and the run result."""
    source = RunLayout(run.run_dir)
    with atomic_folder(out) as tmp_out:
        adapted = RunLayout(tmp_out)
        for net in run.nets:
            save_net(net, adapted, run.normalizer)
            source_net = source.net_result(net.name)
            net_result = read_json(source_net) if source_net.is_file() else {"name": net.name}
            write_json(adapted.net_result(net.name), {**net_result, "adapted": True})
            source_cal = source.net(net.name) / CALIBRATION_FILE
            if net.calibration is not None:  # refitted: year-B labelled parcels, or year A for self-training
                write_profile(adapted.net(net.name), net.calibration)
            elif source_cal.is_file():  # year A's temperature, kept: no label of year B to refit it on
                shutil.copy2(source_cal, adapted.net(net.name) / CALIBRATION_FILE)
        shutil.copy2(source.config, adapted.config)
        write_json(adapted.classes, run.classes.to_dict())
        write_json(adapted.normalization, run.normalizer.to_dict())
        write_json(adapted.adaptation, record)
        write_json(adapted.result, {**run.source_result, "adapted_from": str(run.run_dir), "adaptation": run.methods,
                                    "parcels": run.options.parcels, "scene_adapted_to": str(run.scene.root)})


def run_kind(run_dir: Path) -> str:
    """``network`` or ``pixel``: the kind of trainer of the run's ``model.name`` (RunError for a folder
    that is not a run)."""
    from tropicrop.training import trainer_for

    config = RunLayout(run_dir).config
    if not config.is_file():
        raise RunError(run_dir, "is not a finished run directory (no config.yaml)",
                       "pass a run written by tropicrop train (or tropicrop adapt)")
    model = read_yaml_mapping(config).get("model") or {}
    return trainer_for(str(model.get("name", "")) if isinstance(model, dict) else "").kind


def _record(run: Adaptation, methods: list[Method], skipped: list[str], kept: str | None = None) -> dict[str, Any]:
    """The adaptation record: source, scene, methods (and those the run's kind skipped), the target dates
    whose windows adapted it (none where only year statistics ran on a per-pixel run: they use every
    date), the normalisation, each model's record and the day-of-year offset; ``kept``: why the self-trained
    nets keep the source's temperature (None: they do not)."""
    names = [m.name for m in methods if m.name in METHODS]
    for net in run.nets:
        net.record["temperature"] = _temperature(run, net, kept)
    per_date = run.kind == NETWORK or any(m.name != "year_stats" for m in methods)
    targets: list[dt.date] = run.targets if per_date else []
    sources = list(dict.fromkeys(n.record["temperature"]["source"] for n in run.nets))
    return {"source_run": str(run.run_dir), "scene": str(run.scene.root), "methods": names, "skipped": skipped,
            "parcels": run.options.parcels, "year_b_labels_read": run.options.parcels > 0,
            "options": run.options.model_dump(), "adaptation_dates": [d.isoformat() for d in targets],
            "normalization": run.normalizer.to_dict(), "nets": {n.name: n.record for n in run.nets},
            "doy_offset": int(run.doy_offset),
            "temperature": sources[0] if len(sources) == 1 else "per net (see nets)"}


REFITTED = "refitted on the year-B labelled parcels it was fine-tuned on"
SOURCE_TEMPERATURE = "year A's (the source run's), not refitted: no year-B label"
"""What the record's ``temperature`` says: which temperature the adapted run's probabilities use (and
:data:`~tropicrop.adaptation.trainingyear.TRAINING_YEAR` for a self-trained network)."""


def _temperature(run: Adaptation, net: AdaptedNet, kept: str | None = None) -> dict[str, Any]:
    """The temperature the adapted model uses and where it comes from (None: the source has none, T = 1)."""
    if net.calibration is not None:
        return {"value": net.calibration.temperature, "source": net.calibration_source or REFITTED}
    profile = read_profile(RunLayout(run.run_dir).net(net.name))
    source = kept if kept and "self_training" in net.record else SOURCE_TEMPERATURE
    return {"value": None if profile is None else profile.temperature, "source": source}
