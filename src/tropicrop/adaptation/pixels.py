"""Adapting a per-pixel (LightGBM) run: the models are kept as trained, the new year enters through its own
per-band statistics (``year_stats``), the one method that does not need a network's weights."""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

from tropicrop.adaptation.data import fit_year_statistics
from tropicrop.errors import RunError
from tropicrop.inference.run import read_doy_offset
from tropicrop.io.files import atomic_folder, write_json
from tropicrop.layout import RunLayout
from tropicrop.runfiles import read_class_table, read_json, read_normalizer, read_run_result
from tropicrop.scene import Scene

log = logging.getLogger(__name__)


def adapt_pixel_run(run_dir: Path, scene: Scene, out: Path, methods: list[str], record: dict[str, Any]) -> dict[str, Any]:
    """Adapt the per-pixel run ``run_dir`` to ``scene`` into ``out`` with ``methods`` (those a per-pixel
    run accepts: ``year_stats``); ``record`` is the adaptation record so far. Every model file is copied
    unchanged; the normalisation is the new year's with ``year_stats``, the source's otherwise. Returns the
    record (also ``out/adaptation.json``)."""
    start = time.perf_counter()
    source = RunLayout(run_dir)
    source_result = read_run_result(source)
    classes = read_class_table(source.classes)
    normalizer = fit_year_statistics(scene) if "year_stats" in methods else read_normalizer(source.normalization)
    models = sorted(source.nets.glob("*/model.txt"))
    if not models:
        raise RunError(run_dir, "holds no per-pixel model (no nets/*/model.txt)", "train it again with --force")
    if scene.num_bands != len(normalizer.mean):
        raise RunError(run_dir, f"was trained on {len(normalizer.mean)} band(s), the scene has {scene.num_bands}",
                       "adapt to a scene with the training scene's bands")
    record = {**record, "normalization": normalizer.to_dict(), "nets": {p.parent.name: {} for p in models},
              "doy_offset": read_doy_offset(source)}
    with atomic_folder(out) as tmp_out:
        adapted = RunLayout(tmp_out)
        for path in models:
            name = path.parent.name
            adapted.net(name).mkdir(parents=True)
            shutil.copy2(path, adapted.net(name) / path.name)
            net_result = read_json(source.net_result(name)) if source.net_result(name).is_file() else {"name": name}
            write_json(adapted.net_result(name), {**net_result, "adapted": True})
        record["seconds"] = time.perf_counter() - start
        shutil.copy2(source.config, adapted.config)
        write_json(adapted.classes, classes.to_dict())
        write_json(adapted.normalization, normalizer.to_dict())
        write_json(adapted.adaptation, record)
        write_json(adapted.result, {**source_result, "adapted_from": str(run_dir), "adaptation": methods,
                                    "parcels": 0, "scene_adapted_to": str(scene.root)})
    log.info("adapted per-pixel run %s to %s with %s in %s", run_dir, scene.root, methods, out)
    return record
