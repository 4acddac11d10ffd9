"""The experiment report's section on calibration and on accuracy estimated without labels.

Per approach: ECE and Brier of its year-B maps (calibrated by each net's validation temperature), accuracy
at 50 / 80 / 100 % coverage, ``check``'s estimated F1 and OA (from year B's images only) against the true
ones, and a reliability diagram (``EXP/figures/reliability_SLUG.png``) from the counts ``evaluate`` wrote
(``EXP/predictions/SLUG/metrics/reliability.json``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tropicrop.check import ADAPTED_CAUTION, adapted_without_labels
from tropicrop.layout import ExperimentLayout
from tropicrop.reliability import Reliability, write_reliability_png
from tropicrop.runfiles import read_json


def _pct(value: Any) -> str:
    return "" if value is None or not math.isfinite(value) else f"{100 * value:.1f}"


def _counts(out: Path, slug: str) -> Reliability | None:
    """Every date's confidence counts of an approach's year-B maps, merged (None without them)."""
    path = ExperimentLayout(out).predictions(slug).metrics / "reliability.json"
    if not path.is_file():
        return None
    data = read_json(path, "evaluate the approach's maps again")
    total = Reliability()
    for counts in dict(data).values():
        total = total.merge(Reliability.from_dict(counts))
    return total


def calibration_lines(out: Path, records: Sequence[dict[str, Any]]) -> list[str]:
    """Markdown lines of the section (empty when no approach has a confidence layer)."""
    rated = [r for r in records if r.get("ece") is not None]
    if not rated:
        return []
    lines = ["## Calibration and accuracy estimated without labels", "",
             "Probabilities are scaled by each net's temperature, fitted on its validation set after training "
             "(adapted runs without labels keep the base run's temperature). ECE: 15 equal-width bins of the "
             "confidence of the mapped class; Brier: of that confidence; accuracy at coverage: on the given share "
             "of test pixels with the highest confidence. Estimated F1 / OA: `tropicrop check` (its default "
             "estimator, calibrated on the validation set), from year B's images only, over every mapped pixel of "
             "the scene; adapted rows too (self-training raises confidence by construction: compare its estimate "
             "with its true F1). Agreement F1 / OA: `tropicrop check --against`, the approach's year-B map scored "
             "against the maps of the other approaches that learnt from the same year's labels (no ensemble or adapted "
             "run), averaged; it sees a year shift that confidence misses. Midpoint: the mean of the two, `check "
             "--against`'s default (across a year shift the confidence estimate reads high and agreement low).", "",
             "| approach | role | ECE | Brier | acc. 50 % (%) | acc. 80 % (%) | acc. 100 % (%) | F1 (%) | "
             "est. F1 (%) | agreement F1 (%) | midpoint F1 (%) | OA (%) | est. OA (%) | agreement OA (%) | "
             "midpoint OA (%) | months unlike training |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    figures = []
    cautioned = []
    for r in rated:
        agree = r.get("agreement") or {}
        unlabelled = adapted_without_labels((r.get("adapt") or {}).get("methods"))
        if unlabelled:
            cautioned.append(f"{r['name']} ({', '.join(unlabelled)})")
        lines.append(f"| {r['name']}{' †' if unlabelled else ''} | {r.get('role') or ''} | {r['ece']:.3f} | {r['brier']:.3f} | "
                     f"{_pct(r.get('acc_at_50'))} | {_pct(r.get('acc_at_80'))} | {_pct(r.get('acc_at_100'))} | "
                     f"{_pct(r['f1'])} | {_pct(r.get('estimated_f1'))} | {_pct(agree.get('estimated_f1'))} | "
                     f"{_pct(agree.get('midpoint_f1'))} | "
                     f"{_pct(r['oa'])} | {_pct(r.get('estimated_oa'))} | {_pct(agree.get('estimated_oa'))} | "
                     f"{_pct(agree.get('midpoint_oa'))} | "
                     f"{', '.join(r.get('shifted_months') or []) or '-'} |")
        counts = _counts(out, r["slug"])
        if counts is not None and counts.pixels:
            path = ExperimentLayout(out).figures / f"reliability_{r['slug']}.png"
            figures.append(write_reliability_png({r["name"]: counts}, path, f"{r['name']}: year B, test split"))
    lines.append("")
    if cautioned:
        caution = ADAPTED_CAUTION.format(methods="; ".join(cautioned))
        lines += [f"† {caution[0].upper()}{caution[1:]}.", ""]
    lines += [f"![reliability]({p.relative_to(out)})" for p in figures]
    return [*lines, ""]
