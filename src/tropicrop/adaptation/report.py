"""The experiment report's adaptation section: the ablation table, the per-date curve and the few-label curve.

Rows come from the finished approaches' records (``approaches/SLUG.json``): the adapted ones (an ``adapt``
entry), their bases, approaches trained with day-of-year augmentation (``data.doy_shift`` > 0 in their run
config) and the reference trained on year B (Baseline 1 if present, else the first approach trained on B).
The *gap recovered* is (F1 - base F1) / (reference F1 - base F1): 100 % means the adapted network scores
what a network trained on year B's own labels scores.

*Choosing without labels*: where the experiment holds the candidates of ``adapt --methods auto`` for one base
(each unsupervised method alone and all four together, no labelled parcel), the section says which one
``auto`` keeps (the highest score: the midpoint of the estimated F1, ``check``'s default estimator over the
whole year-B scene, the figure Table 4 holds, and the agreement with the other candidates' year-B maps;
:func:`auto_score`) and whether that is the best candidate by true F1, and shows each candidate's estimate
against its truth (the self-training candidate's among them: self-training raises confidence by construction).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import yaml

from tropicrop.config.adaptation import METHODS
from tropicrop.io.files import atomic_path

PerDate = dict[str, dict[str, tuple[float, float]]]


def _doy_shift(out: Path, record: dict[str, Any]) -> int:
    cfg = out / "runs" / record["slug"] / "config.yaml"
    if not cfg.is_file():
        return 0
    data = (yaml.safe_load(cfg.read_text()) or {}).get("data", {})
    return int(data.get("doy_shift", 0) or 0)


def reference_record(records: list[dict[str, Any]], preferred: str = "Baseline 1") -> dict[str, Any] | None:
    """The same-year reference: ``preferred`` if present, else the first approach trained on year B."""
    own = [r for r in records if r.get("train_on") == "b" and not r.get("adapt")]
    return next((r for r in own if r["name"] == preferred), own[0] if own else None)


def _describe(out: Path, r: dict[str, Any]) -> tuple[str, str]:
    """(base, methods) cells of an ablation row."""
    if r.get("adapt"):
        a = r["adapt"]
        methods = ", ".join(a["methods"]) or "-"
        if a.get("parcels"):
            methods = f"{methods} + {a['parcels']} labelled parcel(s)/class" if a["methods"] else \
                f"{a['parcels']} labelled parcel(s)/class"
        return a["base"], methods
    shift = _doy_shift(out, r)
    return "-", (f"doy augmentation ±{shift} d (training)" if shift else "none (trained on year A)")


def _temperature(r: dict[str, Any]) -> str:
    """The temperature cell of an ablation row: where an adapted run's temperature comes from."""
    said = str(r.get("adapt", {}).get("temperature") or "")
    if not said:
        return "" if r.get("adapt") else "own"
    from tropicrop.adaptation.run import REFITTED
    from tropicrop.adaptation.trainingyear import TRAINING_YEAR

    return {REFITTED: "refitted on B's parcels", TRAINING_YEAR: "refitted on A's validation"}.get(said, "year A's")


AUTO_CANDIDATES: tuple[frozenset[str], ...] = (*(frozenset({m}) for m in METHODS), frozenset(METHODS))
"""The method sets ``adapt --methods auto`` tries (tropicrop.adaptation.auto.CANDIDATES), as sets."""


@dataclass(frozen=True)
class Choice:
    """The label-free choice among the ``auto`` candidates of one base that an experiment holds.

    ``rows``: (approach, methods, estimated F1, true F1, score) per candidate held, in the order of
    :data:`AUTO_CANDIDATES`; the score is what ``auto`` ranks by (:func:`auto_score`); ``chosen``: the highest
    score (what ``auto`` keeps); ``best``: the highest true F1. F1 values are fractions."""

    base: str
    rows: tuple[tuple[str, str, float, float, float], ...]
    chosen: str
    best: str

    def true_f1(self, name: str) -> float:
        return next(r[3] for r in self.rows if r[0] == name)

    @property
    def matched(self) -> bool:
        return self.chosen == self.best

    @property
    def regret(self) -> float:
        """True F1 lost by the choice (0 when it matched)."""
        return self.true_f1(self.best) - self.true_f1(self.chosen)


def auto_score(estimated_f1: float, agreement_f1: float | None) -> float:
    """What ``adapt --methods auto`` ranks a candidate by: the midpoint of ``check``'s estimate of its F1 and
    its agreement with the other candidates' maps (:func:`candidate_agreement`), or the estimate alone where
    there is no agreement. Chosen on the four pairs of ``benchmarks/adaptation_choice.py`` the refit of
    self-trained networks was chosen on (docs/guide/confidence.md)."""
    if agreement_f1 is None or not math.isfinite(agreement_f1):
        return estimated_f1
    return (estimated_f1 + agreement_f1) / 2


def candidate_agreement(maps: dict[str, Path], dates: list[Any]) -> dict[str, float]:
    """Each candidate's agreement with the others (name -> mean over dates of the macro F1 of its maps in
    ``maps[name]`` scored against each other candidate's maps, :func:`tropicrop.agreement.agreement_estimates`):
    the candidates make different errors, so one that agrees with the rest is less likely to be off alone."""
    from tropicrop.agreement import agreement_estimates

    out = {}
    for name, folder in maps.items():
        others = [f for n, f in maps.items() if n != name]
        rows = agreement_estimates(folder, others, dates) if others else []
        values = [r["estimated_f1"] for r in rows if math.isfinite(r["estimated_f1"])]
        out[name] = float(np.mean(values)) if values else float("nan")
    return out


def label_free_choices(records: list[dict[str, Any]], out: Path | None = None) -> list[Choice]:
    """Per base with at least two ``auto`` candidates that have an estimate: the choice ``auto`` makes. With
    ``out`` (the experiment folder) the candidates' year-B maps there give their agreement (:func:`auto_score`);
    without it they are ranked by the estimate alone."""
    by_base: dict[str, dict[frozenset[str], dict[str, Any]]] = {}
    for r in records:
        a = r.get("adapt") or {}
        methods = frozenset(a.get("methods") or [])
        est = r.get("estimated_f1")
        if a and not a.get("parcels") and methods in AUTO_CANDIDATES and est is not None and math.isfinite(est):
            by_base.setdefault(a["base"], {}).setdefault(methods, r)
    choices = []
    for base, held in sorted(by_base.items()):
        if len(held) < 2:
            continue
        agreement = _experiment_agreement(out, list(held.values())) if out is not None else {}
        rows = tuple((held[key]["name"], "+".join(m for m in METHODS if m in key), float(held[key]["estimated_f1"]),
                      float(held[key]["f1"]), auto_score(float(held[key]["estimated_f1"]),
                                                         agreement.get(held[key]["name"])))
                     for key in AUTO_CANDIDATES if key in held)
        chosen = max(rows, key=lambda row: row[4])[0]
        best = max(rows, key=lambda row: row[3])[0]
        choices.append(Choice(base, rows, chosen, best))
    return choices


def _experiment_agreement(out: Path, candidates: list[dict[str, Any]]) -> dict[str, float]:
    """:func:`candidate_agreement` of an experiment's candidates, from their year-B maps (empty when a map
    folder is missing)."""
    from tropicrop.layout import ExperimentLayout

    exp = ExperimentLayout(out)
    maps = {r["name"]: exp.predictions(r["slug"]) for r in candidates if r.get("slug")}
    if len(maps) != len(candidates) or not all(m.root.is_dir() for m in maps.values()):
        return {}
    return candidate_agreement({n: m.root for n, m in maps.items()}, next(iter(maps.values())).dates())


def choice_lines(records: list[dict[str, Any]], out: Path | None = None) -> list[str]:
    """Markdown lines of the label-free choice (empty without ``auto`` candidates in the experiment)."""
    choices = label_free_choices(records, out)
    if not choices:
        return []
    lines = ["### Choosing the method without labels (`adapt --methods auto`)", "",
             "`auto` adapts each unsupervised method alone and all four together and keeps the candidate with the "
             "highest score: the midpoint of its estimated F1 (`tropicrop check`, year B's images only, the "
             "estimate of Table 4) and its agreement with the other candidates' maps. Estimated against true F1 "
             "of every candidate the experiment holds:", "",
             "| base | candidate | methods | estimated F1 (%) | auto's score (%) | true F1 (%) | "
             "estimate - truth (points) |", "|---|---|---|---:|---:|---:|---:|"]
    for c in choices:
        for name, methods, est, true, score in c.rows:
            mark = " (kept by auto)" if name == c.chosen else ""
            lines.append(f"| {c.base} | {name}{mark} | {methods} | {100 * est:.1f} | {100 * score:.1f} | "
                         f"{100 * true:.1f} | {100 * (est - true):+.1f} |")
    lines.append("")
    for c in choices:
        verdict = ("the best candidate by true F1" if c.matched else
                   f"not the best by true F1 ({c.best}, {100 * c.true_f1(c.best):.1f}): "
                   f"{100 * c.regret:.1f} points lost")
        lines.append(f"- {c.base}: `auto` keeps {c.chosen} ({100 * c.true_f1(c.chosen):.1f} true F1), {verdict}.")
    return [*lines, ""]


def adaptation_lines(out: Path, records: list[dict[str, Any]], per_date: PerDate,
                     plot: Callable[[PerDate, int, str, Path], Path]) -> list[str]:
    """Markdown lines of the adaptation section (empty if no approach is adapted or augmented)."""
    adapted = [r for r in records if r.get("adapt")]
    augmented = [r for r in records if not r.get("adapt") and r.get("train_on") == "a" and _doy_shift(out, r)]
    if not adapted and not augmented:
        return []
    by_name = {r["name"]: r for r in records}
    bases = {r["adapt"]["base"] for r in adapted}
    ref = reference_record(records)
    cross = [r for r in records if r.get("train_on") == "a" and not r.get("adapt") and not _doy_shift(out, r)]
    main_base = by_name.get(next(iter(sorted(bases)), "")) or (cross[0] if cross else None)
    rows = [r for r in records if r["name"] in bases or r in adapted or r in augmented]
    lines = ["## Adaptation to year B", "",
             "Unsupervised rows use year B's images only; rows with labelled parcels also read that many parcels "
             "per class of B's train split. Gap recovered = (F1 - base F1) / (reference F1 - base F1)"
             + (f", reference: {ref['name']} ({100 * ref['f1']:.1f} F1)." if ref else " (no reference trained on B)."),
             " Temperature: the one the adapted run's probabilities use; unsupervised rows keep year A's (their "
             "base's), except that self-trained networks refit it on year A's validation pixels with their new "
             "weights, and rows with labelled parcels refit it on those parcels.",
             "", "| approach | base | adaptation | year-B labels | doy offset (d) | average F1 (%) | average OA (%) "
             "| ΔF1 vs base | gap recovered | temperature |", "|---|---|---|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        base_name, methods = _describe(out, r)
        base = by_name.get(base_name) if r.get("adapt") else (main_base if r in augmented else None)
        delta = 100 * (r["f1"] - base["f1"]) if base else None
        gap = 100 * (ref["f1"] - base["f1"]) if (base and ref) else None
        recovered = f"{100 * delta / gap:.0f} %" if (delta is not None and gap and gap > 0) else ""
        labels = f"{r['adapt']['parcels']} parcels/class" if r.get("adapt", {}).get("parcels") else "none"
        offset = f"{r['adapt']['doy_offset']:+d}" if r.get("adapt") else ""
        lines.append(f"| {r['name']} | {base_name} | {methods} | {labels} | {offset} | {100 * r['f1']:.1f} | "
                     f"{100 * r['oa']:.1f} | {'' if delta is None else f'{delta:+.1f}'} | {recovered} | "
                     f"{_temperature(r)} |")
    single = [r for r in adapted if len(r["adapt"]["methods"]) == 1 and not r["adapt"]["parcels"]]
    candidates = [(r["f1"] - by_name[r["adapt"]["base"]]["f1"], r["adapt"]["methods"][0]) for r in single
                  if r["adapt"]["base"] in by_name]
    candidates += [(r["f1"] - main_base["f1"], "doy augmentation") for r in augmented if main_base]
    if candidates:
        gain, method = max(candidates)
        lines += ["", f"- Method alone with the largest gain: **{method}** ({100 * gain:+.1f} F1 points)."]
    names = [r["name"] for r in rows if not r.get("adapt", {}).get("parcels")] + ([ref["name"]] if ref else [])
    subset = {n: per_date[n] for n in names if n in per_date}
    if subset:
        fig = plot(subset, 1, "Per-date average F1 on year B: adaptation ablation",
                   out / "figures" / "adaptation_f1_per_date.png")
        lines += ["", f"![adaptation per-date F1]({fig.relative_to(out)})"]
    few = [r for r in adapted if r["adapt"]["parcels"]]
    if few and main_base is not None:
        fig = plot_few_labels(few, main_base, ref, [r for r in adapted if not r["adapt"]["parcels"]],
                              out / "figures" / "few_labels.png")
        lines += ["", "### Few labels: average F1 against labelled parcels per class", "",
                  "| parcels per class | " + " | ".join(str(r["adapt"]["parcels"]) for r in few) + " |",
                  "|---|" + "---:|" * len(few),
                  "| average F1 (%) | " + " | ".join(f"{100 * r['f1']:.1f}" for r in few) + " |",
                  "", f"![few labels]({fig.relative_to(out)})"]
    lines += ["", *choice_lines(records, out)]
    return [*lines, ""]


def plot_few_labels(few: list[dict[str, Any]], base: dict[str, Any], ref: dict[str, Any] | None,
                    unsupervised: list[dict[str, Any]], path: Path) -> Path:
    """Average F1 against k labelled parcels per class, with the base (k = 0), the best unsupervised
    adaptation and the same-year reference as horizontal lines."""
    fig, ax = plt.subplots(figsize=(6, 4))
    pts = sorted((r["adapt"]["parcels"], 100 * r["f1"]) for r in few)
    ax.plot([k for k, _ in pts], [f for _, f in pts], marker="o", label="fine-tuned on k parcels/class")
    ax.axhline(100 * base["f1"], color="gray", ls="--", label=f"{base['name']} (no adaptation)")
    if unsupervised:
        best = max(unsupervised, key=lambda r: r["f1"])
        ax.axhline(100 * best["f1"], color="tab:green", ls="-.", label=f"best unsupervised: {best['name']}")
    if ref is not None:
        ax.axhline(100 * ref["f1"], color="black", ls=":", label=f"{ref['name']} (year B labels)")
    ax.set_xscale("log")
    ax.set_xlabel("labelled parcels per class of year B")
    ax.set_ylabel("average F1 (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path
