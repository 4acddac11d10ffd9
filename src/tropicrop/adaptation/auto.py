"""``tropicrop adapt --methods auto``: choose the adaptation method without labels.

Which method pays depends on the kind of shift, so five candidates are adapted (each unsupervised method
alone, and all four together) and each is checked on the new year's images (:func:`tropicrop.check.check_run`,
its estimated macro F1). The candidates' maps are then scored against each other: one that agrees with the
rest is less likely to be off alone. The kept candidate has the highest score, the midpoint of its estimate
and its agreement (:func:`tropicrop.adaptation.report.auto_score`). Its ``adaptation.json`` records every
candidate with its estimate, agreement and score under ``auto``. No label of the new year is read.

Self-training raises the network's confidence by construction: a self-trained candidate's temperature and
validation profile are therefore fitted again on year A's validation pixels with its new weights
(:mod:`tropicrop.adaptation.trainingyear`), the other candidates keep the base run's. The benchmark
(``benchmarks/adaptation_choice.py``) measures whether the choice matches the best candidate by true F1.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from tropicrop.adaptation.report import auto_score, candidate_agreement
from tropicrop.adaptation.run import METHODS, AdaptOptions, adapt_run
from tropicrop.errors import RunError
from tropicrop.estimate import DEFAULT_ESTIMATOR
from tropicrop.io.files import write_json
from tropicrop.layout import RunLayout
from tropicrop.runfiles import read_json

log = logging.getLogger(__name__)
AUTO = "auto"
CANDIDATES: tuple[tuple[str, ...], ...] = (*((m,) for m in METHODS), METHODS)
"""Each unsupervised method alone, then all four together."""


def adapt_auto(run_dir: Path, scene: Path, out: Path, options: AdaptOptions, *, force: bool = False,
               progress: bool = False, sample: float = 1.0) -> dict[str, Any]:
    """Adapt ``run_dir`` with every candidate of :data:`CANDIDATES`, keep the one with the highest score (its
    estimated macro F1 on ``sample`` of ``scene``'s tiles, met halfway by its agreement with the other
    candidates' maps of the same tiles) in ``out``; returns its adaptation record."""
    from tropicrop.check import check_run

    out = Path(out)
    if out.exists() and any(out.iterdir()) and not force:
        raise RunError(out, "already holds a run", "choose another --run-dir or pass --force to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tried: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.auto-") as tmp:
        maps: dict[str, Path] = {}
        dates: list[dt.date] = []
        for k, methods in enumerate(CANDIDATES):
            folder = Path(tmp) / f"candidate-{k}"
            adapt_run(run_dir, scene, folder, options.model_copy(update={"methods": list(methods)}), force=True,
                      progress=progress)
            maps[folder.name] = Path(tmp) / f"maps-{k}"
            checked = check_run(folder, scene, sample=sample, seed=options.seed,
                                keep_maps=maps[folder.name])
            est = checked.to_dict()
            dates = [dt.date.fromisoformat(d["date"]) for d in checked.dates]
            tried.append({"methods": list(methods), "estimated_f1": est["estimated_f1"],
                          "estimated_oa": est["estimated_oa"], "folder": folder.name})
            log.info("candidate %s: estimated F1 %.3f", "+".join(methods), est["estimated_f1"])
        agreement = candidate_agreement(maps, dates)
        for c in tried:
            c["agreement_f1"] = agreement[c["folder"]]
            c["score"] = auto_score(c["estimated_f1"], c["agreement_f1"])
        best = max(tried, key=lambda c: c["score"] if c["score"] == c["score"] else -1.0)
        chosen = RunLayout(Path(tmp) / best["folder"])
        record = dict(read_json(chosen.adaptation))
        record[AUTO] = {"candidates": [{k: v for k, v in c.items() if k != "folder"} for c in tried],
                        "chosen": best["methods"], "estimator": f"check ({DEFAULT_ESTIMATOR}), year-B images only",
                        "score": "midpoint of the estimated F1 and the agreement with the other candidates",
                        "sample": sample}
        write_json(chosen.adaptation, record)
        if out.exists():
            shutil.rmtree(out)
        chosen.root.rename(out)
    return record


def adapt_auto_command(args: Any, options: AdaptOptions) -> dict[str, Any]:
    """``tropicrop adapt --methods auto``: adapt, print every candidate's estimate; returns the record."""
    import sys

    record = adapt_auto(Path(args.run), Path(args.scene), Path(args.run_dir), options, force=args.force,
                        progress=sys.stderr.isatty())
    print("candidates (estimated F1 / agreement / score): " + ", ".join(
        f"{'+'.join(c['methods'])} {100 * c['estimated_f1']:.1f} / {100 * c['agreement_f1']:.1f} / "
        f"{100 * c['score']:.1f}" for c in record["auto"]["candidates"]))
    return record
