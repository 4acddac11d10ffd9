"""The experiment report: Table 4, Figures 8 and 9, the cross-year drop, timing and a map figure.

Every number in ``report.md`` is read from the metric files the experiment wrote (``approaches/*.json``,
``per_date.csv``, ``table4.csv``); only the paper's own Table 4 is quoted, for comparison, and labelled so.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import rasterio
from matplotlib.figure import Figure

from tropicrop.classes import ClassTable
from tropicrop.config.experiment import CLASSICAL, CROSS_YEAR, PROPOSED, SAME_YEAR  # roles an approach declares
from tropicrop.errors import RunError
from tropicrop.io.files import atomic_path
from tropicrop.layout import ExperimentLayout, slug
from tropicrop.palette import class_colors
from tropicrop.runfiles import CAP, EARLY_STOPPING, read_class_table, read_json, read_yaml_mapping
from tropicrop.scene import TEST, load_scene

REWRITE = "run the same tropicrop experiment command again to rewrite it"

# The paper's Table 4 (LEM 17/18 -> LEM 19/20, real Sentinel-1 data), quoted for comparison only:
# (approach, role, F1 %, OA %, training hours). Every paper figure the findings quote is derived from it.
PAPER_TABLE4 = (("Baseline 1", SAME_YEAR, 61.7, 77.3, 14.6), ("Baseline 2", CROSS_YEAR, 44.7, 63.3, 14.6),
                ("VUnetConvLSTM", PROPOSED, 42.0, 62.8, 3.8))
# Not in Table 4: the largest per-date F1 drop of the proposed network against the same-year baseline (text, Figure 9).
PAPER_LARGEST_DROP = 24.6


def paper_row(role: str) -> tuple[str, float, float, float]:
    """(name, F1 %, OA %, training hours) of the paper's approach with ``role``."""
    name, _, f1, oa, hours = next(row for row in PAPER_TABLE4 if row[1] == role)
    return name, f1, oa, hours


def by_role(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The records of approaches that declare a role (experiment config ``role:``), keyed by role."""
    return {r["role"]: r for r in records if r.get("role")}


def read_records(out: Path) -> list[dict[str, Any]]:
    """The finished approaches in config order (``approaches/SLUG.json``)."""
    exp = ExperimentLayout(Path(out))
    cfg = read_yaml_mapping(exp.config, REWRITE)
    records = []
    for approach in cfg.get("approaches") or []:
        path = exp.record(slug(approach["name"]))
        if path.is_file():
            record = read_json(path, f"delete {path} to run that approach again")
            record.setdefault("role", approach.get("role") or "")  # records written before roles were recorded
            records.append(record)
    return records


def read_per_date(out: Path) -> dict[str, dict[str, tuple[float, float]]]:
    """``per_date.csv`` as approach -> date -> (oa, f1)."""
    table: dict[str, dict[str, tuple[float, float]]] = {}
    path = ExperimentLayout(out).per_date
    try:
        with open(path, newline="") as fh:
            for row in csv.DictReader(fh):
                table.setdefault(row["approach"], {})[row["date"]] = (float(row["oa"]), float(row["f1"]))
    except (OSError, KeyError, TypeError, ValueError, csv.Error) as exc:
        raise RunError(path, f"is not a readable per-date table ({type(exc).__name__}: {exc})", REWRITE) from None
    return table


def read_table4(out: Path) -> list[dict[str, str]]:
    """``table4.csv`` rows."""
    path = ExperimentLayout(out).table4
    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
        for row in rows:
            float(row["f1"]), float(row["oa"]), float(row["train_seconds"]), float(row["train_hours"])
            if row.get("parameters"):  # columns of issue 17, absent from older tables
                int(row["parameters"])
            if row.get("predict_seconds"):
                float(row["predict_seconds"])
    except (OSError, KeyError, TypeError, ValueError, csv.Error) as exc:
        raise RunError(path, f"is not a readable Table 4 ({type(exc).__name__}: {exc})", REWRITE) from None
    return rows


def per_date_figure(per_date: dict[str, dict[str, tuple[float, float]]], metric: int, title: str) -> Figure:
    """Per-date OA (``metric`` 0) or average F1 (1) of every approach on a date axis (paper Figures 8, 9).

    Each point sits at its acquisition date, so an irregular calendar (several dates in a month, a gap of two
    months) reads as it was acquired; month labels alone would stack a month's dates on one position.
    """
    fig, ax = plt.subplots(figsize=(8, 4))
    dates = sorted({d for rows in per_date.values() for d in rows})
    days = [dt.date.fromisoformat(d) for d in dates]
    x = mdates.date2num(days)  # matplotlib's day numbers: the axis is a time axis, not a row of labels
    for name, rows in per_date.items():
        ax.plot(x, [100 * rows[d][metric] if d in rows else np.nan for d in dates], marker="o", label=name)
    locator = mdates.AutoDateLocator(minticks=3, maxticks=12)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.xaxis_date()
    ax.set_xticks(x, minor=True)  # a small tick at every acquisition
    if len(days) == 1:  # one date: give the axis a month of room either side
        ax.set_xlim(float(x[0]) - 30, float(x[0]) + 30)
    ax.set_ylabel("OA (%)" if metric == 0 else "average F1 (%)")
    ax.set_title(title)
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def plot_per_date(per_date: dict[str, dict[str, tuple[float, float]]], metric: int, title: str, path: Path) -> Path:
    """Write :func:`per_date_figure` as a PNG (atomically)."""
    fig = per_date_figure(per_date, metric, title)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path


def per_date_table(per_date: dict[str, dict[str, tuple[float, float]]]) -> list[str]:
    """Markdown rows of per-date F1 and OA: one column per acquisition date (never merged by month)."""
    dates = sorted({d for rows in per_date.values() for d in rows})
    lines = ["| approach | " + " | ".join(dates) + " |", "|---|" + "---:|" * len(dates)]
    for name, rows in per_date.items():
        lines.append(f"| {name} F1 | " + " | ".join(f"{100 * rows[d][1]:.1f}" if d in rows else "" for d in dates) + " |")
        lines.append(f"| {name} OA | " + " | ".join(f"{100 * rows[d][0]:.1f}" if d in rows else "" for d in dates) + " |")
    return lines


def _colors(table: ClassTable) -> np.ndarray:
    """(K, 4) RGBA in [0, 1] of the map classes, the maps' own palette; 0 (no reference) white."""
    palette = class_colors(table.names)
    colors = np.array([palette[i] for i in range(table.num_classes)], dtype=float) / 255
    colors[0] = (1, 1, 1, 1)
    return colors


def plot_maps(out: Path, scene_path: str, records: Sequence[dict[str, Any]], date: str, path: Path) -> Path | None:
    """Reference labels of year B's test split next to each approach's map for one date."""
    exp = ExperimentLayout(out)
    table = read_class_table(exp.classes, REWRITE)
    scene = load_scene(scene_path)
    day = dt.date.fromisoformat(date)
    if day not in scene.labelled_dates:
        return None
    reference = table.lookup(scene.classes)[scene.read_labels(dates=[day])[0]]
    reference[scene.read_split() != TEST] = 0
    panels: list[tuple[str, np.ndarray]] = [("reference (test split)", reference)]
    for r in records:
        tif = exp.predictions(r["slug"]).map(day)
        if tif.is_file():
            with rasterio.open(tif) as ds:
                panels.append((r["name"], ds.read(1)))
    colors = _colors(table)
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.6))
    for ax, (title, arr) in zip(np.atleast_1d(axes), panels, strict=True):
        ax.imshow(colors[np.clip(arr, 0, table.num_classes - 1)], interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[i]) for i in range(1, table.num_classes)]
    fig.legend(handles, list(table.names[1:]), loc="lower center", ncol=min(6, table.num_classes - 1), fontsize=8)
    fig.suptitle(f"{day:%B %Y}: year B maps", fontsize=10)
    fig.tight_layout(rect=(0, 0.1, 1, 0.95))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return path


def _drop(per_date: dict[str, dict[str, tuple[float, float]]], name: str, reference: str) -> tuple[float, str] | None:
    """Largest per-date F1 drop of approach ``name`` against approach ``reference``, in points, and its date."""
    if reference not in per_date or name not in per_date:
        return None
    drops = [(100 * (per_date[reference][d][1] - f1), d) for d, (_, f1) in per_date[name].items() if d in per_date[reference]]
    return max(drops) if drops else None


def _span(values: Sequence[Any]) -> str:
    """``min-max`` of sorted ``values`` (one value when they agree; n/a when empty)."""
    return "n/a" if not values else str(values[0]) if values[0] == values[-1] else f"{values[0]}-{values[-1]}"


def _capped(record: dict[str, Any]) -> bool:
    """Whether a net of the approach reached the config's step (round) cap before early stopping fired."""
    return any(n.get("stopped_by") == CAP for n in record.get("net_training", {}).values())


def training_section(records: Sequence[dict[str, Any]]) -> list[str]:
    """Report lines: what each approach learnt from (training patches per net), how long its nets trained,
    and how well its validation F1 predicted its test F1 (the gap, validation minus test), and where each
    deep approach stands against the classical per-pixel floor (the approach of role ``classical baseline``)."""
    lines = ["", "## Training data, stopping and validation against test", "",
             "Every net stops early on its validation macro F1 (patience in the config; the step or round cap is "
             "only a safety). Validation F1 is on held-out blocks of the training year and area; test F1 on year "
             "B's test split. For cross-year approaches the gap includes the year shift, which no validation drawn "
             "from year A can see.", "",
             "| approach | nets | training patches per net | length per net | stopped early | validation F1 (%) "
             "| test F1 (%) | gap (points) |",
             "|---|---:|---|---|---:|---:|---:|---:|"]
    for r in records:
        nets = list(r.get("net_training", {}).values())
        patches = sorted(n["train_patches"] for n in nets if n.get("train_patches") is not None)
        lengths = sorted(int(n.get("length", 0)) for n in nets)
        unit = str(nets[0].get("unit", "epochs")) if nets else "epochs"
        val = r.get("val_f1")
        gap = "n/a" if val is None else f"{100 * (val - r['f1']):+.1f}"
        stopped = [n["stopped_by"] for n in nets if "stopped_by" in n]
        early = f"{stopped.count(EARLY_STOPPING)} of {len(stopped)}" if stopped else "n/a"
        lines.append(f"| {r['name']} | {r['nets']} | {_span(patches)} | {_span(lengths)} {unit} | {early} | "
                     f"{'n/a' if val is None else f'{100 * val:.1f}'} | {100 * r['f1']:.1f} | {gap} |")
    capped = [r["name"] for r in records if _capped(r)]
    if capped:
        lines += ["", f"Some nets of {', '.join(capped)} reached the config's cap before the early-stopping rule "
                  "fired: their training time was set by the cap, not found, so the time ratios that involve them "
                  "are bounds, not findings."]
    base = by_role(records).get(CLASSICAL)
    if base is not None:
        lines.append("")
        for r in records:
            if r is not base:
                diff = 100 * (r["f1"] - base["f1"])
                lines.append(f"- {r['name']} average F1 is {abs(diff):.1f} points {'above' if diff >= 0 else 'below'} "
                             f"the classical floor ({base['name']}, {100 * base['f1']:.1f}).")
    return lines


def _machine() -> str:
    import lightning
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return (f"{platform.platform()}, {os.cpu_count()} CPU cores, GPU {gpu}; Python {platform.python_version()}, "
            f"torch {torch.__version__}, lightning {lightning.__version__}, rasterio {rasterio.__version__}")


def findings(records: Sequence[dict[str, Any]], per_date: dict[str, dict[str, tuple[float, float]]]) -> list[str]:
    """The cross-year findings, keyed on the approaches' roles (not their names), each beside the paper's
    figure derived from :data:`PAPER_TABLE4`. Roles an experiment does not declare give no finding."""
    roles = by_role(records)
    lines = []
    paper_drop = f"paper: up to {PAPER_LARGEST_DROP:g} for {paper_row(PROPOSED)[0]}"
    reference = roles.get(SAME_YEAR)
    for role in (CROSS_YEAR, PROPOSED):
        if reference is None or role not in roles:
            continue
        name, ref = roles[role]["name"], reference["name"]
        drop = _drop(per_date, name, ref)
        if drop is not None and drop[0] >= 0:
            lines.append(f"- {name}: largest per-date F1 drop against {ref}: {drop[0]:.1f} points, on {drop[1]} "
                         f"({paper_drop}).")
        elif drop is not None:
            lines.append(f"- {name}: above {ref} on every date (smallest margin {-drop[0]:.1f} F1 points, on "
                         f"{drop[1]}); {paper_drop} points below.")
    single, cross = roles.get(PROPOSED), roles.get(CROSS_YEAR)
    if single is not None and cross is not None and cross["train_seconds"] > 0:
        p_single, p_cross = paper_row(PROPOSED), paper_row(CROSS_YEAR)
        frac, paper_frac = single["train_seconds"] / cross["train_seconds"], p_single[3] / p_cross[3]
        capped = [r["name"] for r in (single, cross) if _capped(r)]
        bound = f"; a bound, not a finding: nets of {' and '.join(capped)} reached the step cap" if capped else ""
        lines.append(f"- {single['name']} training time is {frac:.3f} of {cross['name']}'s ({100 * (frac - 1):+.1f} %; "
                     f"paper Table 4: {paper_frac:.3f}, {100 * (paper_frac - 1):+.1f} %{bound}).")
        gap, paper_gap = 100 * (cross["f1"] - single["f1"]), p_cross[1] - p_single[1]
        side, paper_side = ("below" if gap >= 0 else "above"), ("below" if paper_gap >= 0 else "above")
        lines.append(f"- {single['name']} average F1 is {abs(gap):.1f} points {side} {cross['name']}'s "
                     f"(paper: {abs(paper_gap):.1f} {paper_side}).")
    return lines


def write_report(out: Path) -> Path:
    """Write ``out/report.md`` and ``out/figures/*.png`` from the experiment's metric files."""
    out = Path(out)
    exp = ExperimentLayout(out)
    cfg = read_yaml_mapping(exp.config, REWRITE)
    classes = read_class_table(exp.classes, REWRITE)
    records = read_records(out)
    per_date = read_per_date(out)
    table4 = read_table4(out)
    figures = exp.figures
    fig8 = plot_per_date(per_date, 0, "Per-date overall accuracy on year B (test split)", figures / "oa_per_date.png")
    fig9 = plot_per_date(per_date, 1, "Per-date average F1 on year B (test split)", figures / "f1_per_date.png")
    lines = _header_lines(cfg, classes)
    lines += _table4_lines(records, table4)
    lines += ["", "## Cross-year findings", ""]
    lines += findings(records, per_date)
    lines += training_section(records)
    lines += ["", "## Figures 8 and 9: per-date OA and average F1", "",
              f"![per-date OA]({fig8.relative_to(out)})", "", f"![per-date F1]({fig9.relative_to(out)})", ""]
    lines += _maps_lines(out, cfg, records, per_date, figures)
    from tropicrop.adaptation.report import adaptation_lines

    lines += adaptation_lines(out, records, per_date, plot_per_date)
    from tropicrop.calibration_report import calibration_lines

    lines += calibration_lines(out, records)  # ECE, reliability diagrams, check's estimates against the truth
    lines += ["## Per-date figures", "", *per_date_table(per_date)]
    report = exp.report
    with atomic_path(report) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return report


def _header_lines(cfg: dict[str, Any], classes: ClassTable) -> list[str]:
    """The report's title and what the experiment compared: its years, classes, machine and config."""
    return [
        f"# Experiment report: {cfg['name']}",
        "",
        f"- year A (earlier, training): `{cfg['scenes']['a']}`",
        f"- year B (tested, on its test split): `{cfg['scenes']['b']}`",
        f"- classes: {', '.join(classes.names[1:])}",
        f"- machine: {_machine()}",
        "- configuration: `config.yaml` in this folder",
        "",
    ]


def _table4_lines(records: list[dict[str, Any]], table4: list[dict[str, str]]) -> list[str]:
    """Table 4 of this experiment (one row per approach, from ``table4.csv``), then the paper's for comparison."""
    lines = [
        "## Table 4: averages over year B's labelled dates",
        "",
        "| approach | model | parameters | trained on | nets | average F1 (%) | average OA (%) | training (s) "
        "| training (h) | prediction (s) |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    by_name = {r["name"]: r for r in records}
    for row in table4:
        r = by_name[row["approach"]]
        where = f"year {r['train_on'].upper()} ({'train split' if r['use'] == 'train' else 'all labels'})"
        params = f"{int(row['parameters']):,}" if row.get("parameters") else ""
        predict = f"{float(row['predict_seconds']):.0f}" if row.get("predict_seconds") else ""
        lines.append(f"| {row['approach']} | {row.get('model') or r.get('model', '')} | {params} | {where} | {row['nets']} | "
                     f"{100 * float(row['f1']):.1f} | {100 * float(row['oa']):.1f} | {float(row['train_seconds']):.0f} | "
                     f"{float(row['train_hours']):.3f} | {predict} |")
    lines += ["", "The paper's Table 4 (real LEM 17/18 → LEM 19/20 data, GTX 1080Ti), for comparison:", "",
              "| approach | F1 (%) | OA (%) | training (h) |", "|---|---:|---:|---:|"]
    lines += [f"| {n} | {f1} | {oa} | {h} |" for n, _, f1, oa, h in PAPER_TABLE4]
    return lines


def _maps_lines(out: Path, cfg: dict[str, Any], records: list[dict[str, Any]],
                per_date: dict[str, dict[str, tuple[float, float]]], figures: Path) -> list[str]:
    """The maps of one date side by side: the date the proposed approach drops most against the same-year
    one, else the middle labelled date; nothing when there is no date or no map."""
    roles = by_role(records)
    drop = (_drop(per_date, roles[PROPOSED]["name"], roles[SAME_YEAR]["name"])
            if PROPOSED in roles and SAME_YEAR in roles else None)
    dates = sorted({d for rows in per_date.values() for d in rows})
    map_date = drop[1] if drop is not None else (dates[len(dates) // 2] if dates else None)
    if map_date is None:
        return []
    fig = plot_maps(out, cfg["scenes"]["b"], records, map_date, figures / f"maps_{map_date}.png")
    return [] if fig is None else [f"## Maps of {map_date}", "", f"![maps]({fig.relative_to(out)})", ""]
