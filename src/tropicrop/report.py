"""The experiment report: Table 4, Figures 8 and 9, the cross-year drop, timing and a map figure.

Every number in ``report.md`` is read from the metric files the experiment wrote (``approaches/*.json``,
``per_date.csv``, ``table4.csv``); only the paper's own Table 4 is quoted, for comparison, and labelled so.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import rasterio
import yaml

from tropicrop.classes import ClassTable
from tropicrop.io.files import atomic_path
from tropicrop.scene import TEST, load_scene

# The paper's Table 4 (LEM 17/18 -> LEM 19/20, real Sentinel-1 data), quoted for comparison only.
PAPER_TABLE4 = (("Baseline 1", 61.7, 77.3, 14.6), ("Baseline 2", 44.7, 63.3, 14.6), ("VUnetConvLSTM", 42.0, 62.8, 3.8))
REFERENCE = "Baseline 1"
SINGLE_NET = "VUnetConvLSTM"
PER_MONTH_CROSS = "Baseline 2"


def read_records(out: Path) -> list[dict[str, Any]]:
    """The finished approaches in config order (``approaches/SLUG.json``)."""
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    from tropicrop.experiments import slug

    records = []
    for approach in cfg["approaches"]:
        path = out / "approaches" / f"{slug(approach['name'])}.json"
        if path.is_file():
            records.append(json.loads(path.read_text()))
    return records


def read_per_date(out: Path) -> dict[str, dict[str, tuple[float, float]]]:
    """``per_date.csv`` as approach -> date -> (oa, f1)."""
    table: dict[str, dict[str, tuple[float, float]]] = {}
    with open(out / "per_date.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            table.setdefault(row["approach"], {})[row["date"]] = (float(row["oa"]), float(row["f1"]))
    return table


def read_table4(out: Path) -> list[dict[str, str]]:
    """``table4.csv`` rows."""
    with open(out / "table4.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def plot_per_date(per_date: dict[str, dict[str, tuple[float, float]]], metric: int, title: str, path: Path) -> Path:
    """Line plot of per-date OA (``metric`` 0) or average F1 (1) for every approach (paper Figures 8, 9)."""
    fig, ax = plt.subplots(figsize=(8, 4))
    dates = sorted({d for rows in per_date.values() for d in rows})
    labels = [dt.date.fromisoformat(d).strftime("%b %Y") for d in dates]
    for name, rows in per_date.items():
        ax.plot(labels, [100 * rows[d][metric] if d in rows else np.nan for d in dates], marker="o", label=name)
    ax.set_ylabel("OA (%)" if metric == 0 else "average F1 (%)")
    ax.set_title(title)
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend()
    plt.setp(ax.get_xticklabels(), rotation=45, ha="right")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path


def _colors(table: ClassTable) -> np.ndarray:
    cmap = plt.get_cmap("tab20")
    colors = np.array([cmap(i % 20) for i in range(table.num_classes)])
    colors[0] = (1, 1, 1, 1)
    return colors


def plot_maps(out: Path, scene_path: str, records: Sequence[dict[str, Any]], date: str, path: Path) -> Path | None:
    """Reference labels of year B's test split next to each approach's map for one date."""
    table = ClassTable.from_dict(json.loads((out / "classes.json").read_text()))
    scene = load_scene(scene_path)
    day = dt.date.fromisoformat(date)
    if day not in scene.labelled_dates:
        return None
    reference = table.lookup(scene.classes)[scene.read_labels(dates=[day])[0]]
    reference[scene.read_split() != TEST] = 0
    panels: list[tuple[str, np.ndarray]] = [("reference (test split)", reference)]
    for r in records:
        tif = out / "predictions" / r["slug"] / "maps" / f"{day:%Y%m%d}.tif"
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


def _drop(per_date: dict[str, dict[str, tuple[float, float]]], name: str) -> tuple[float, str] | None:
    """Largest per-date F1 drop of approach ``name`` against Baseline 1, in points, and its date."""
    if REFERENCE not in per_date or name not in per_date:
        return None
    drops = [(100 * (per_date[REFERENCE][d][1] - f1), d) for d, (_, f1) in per_date[name].items() if d in per_date[REFERENCE]]
    return max(drops) if drops else None


def _machine() -> str:
    import lightning
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return (f"{platform.platform()}, {os.cpu_count()} CPU cores, GPU {gpu}; Python {platform.python_version()}, "
            f"torch {torch.__version__}, lightning {lightning.__version__}, rasterio {rasterio.__version__}")


def write_report(out: Path) -> Path:
    """Write ``out/report.md`` and ``out/figures/*.png`` from the experiment's metric files."""
    out = Path(out)
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    records = read_records(out)
    per_date = read_per_date(out)
    table4 = read_table4(out)
    figures = out / "figures"
    fig8 = plot_per_date(per_date, 0, "Per-date overall accuracy on year B (test split)", figures / "oa_per_date.png")
    fig9 = plot_per_date(per_date, 1, "Per-date average F1 on year B (test split)", figures / "f1_per_date.png")
    lines = [
        f"# Experiment report: {cfg['name']}",
        "",
        f"- year A (earlier, training): `{cfg['scenes']['a']}`",
        f"- year B (tested, on its test split): `{cfg['scenes']['b']}`",
        f"- classes: {', '.join(json.loads((out / 'classes.json').read_text())['names'][1:])}",
        f"- machine: {_machine()}",
        "- configuration: `config.yaml` in this folder",
        "",
        "## Table 4: averages over year B's labelled dates",
        "",
        "| approach | trained on | nets | average F1 (%) | average OA (%) | training (s) | training (h) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    by_name = {r["name"]: r for r in records}
    for row in table4:
        r = by_name[row["approach"]]
        where = f"year {r['train_on'].upper()} ({'train split' if r['use'] == 'train' else 'all labels'})"
        lines.append(f"| {row['approach']} | {where} | {row['nets']} | {100 * float(row['f1']):.1f} | "
                     f"{100 * float(row['oa']):.1f} | {float(row['train_seconds']):.0f} | {float(row['train_hours']):.3f} |")
    lines += ["", "The paper's Table 4 (real LEM 17/18 → LEM 19/20 data, GTX 1080Ti), for comparison:", "",
              "| approach | F1 (%) | OA (%) | training (h) |", "|---|---:|---:|---:|"]
    lines += [f"| {n} | {f1} | {oa} | {h} |" for n, f1, oa, h in PAPER_TABLE4]
    lines += ["", "## Cross-year findings", ""]
    for name in (PER_MONTH_CROSS, SINGLE_NET):
        drop = _drop(per_date, name)
        if drop is not None and drop[0] >= 0:
            lines.append(f"- {name}: largest per-date F1 drop against {REFERENCE}: {drop[0]:.1f} points, on {drop[1]} "
                         "(paper: up to 24.6 for VUnetConvLSTM).")
        elif drop is not None:
            lines.append(f"- {name}: above {REFERENCE} on every date (smallest margin {-drop[0]:.1f} F1 points, on "
                         f"{drop[1]}); paper: up to 24.6 points below for VUnetConvLSTM.")
    if SINGLE_NET in by_name and PER_MONTH_CROSS in by_name and by_name[PER_MONTH_CROSS]["train_seconds"] > 0:
        frac = by_name[SINGLE_NET]["train_seconds"] / by_name[PER_MONTH_CROSS]["train_seconds"]
        lines.append(f"- {SINGLE_NET} training time is {frac:.3f} of {PER_MONTH_CROSS}'s ({100 * (frac - 1):+.1f} %; "
                     "paper: 0.257, -74.3 %).")
        gap = 100 * (by_name[PER_MONTH_CROSS]["f1"] - by_name[SINGLE_NET]["f1"])
        side = "below" if gap >= 0 else "above"
        lines.append(f"- {SINGLE_NET} average F1 is {abs(gap):.1f} points {side} {PER_MONTH_CROSS}'s (paper: 2.7 below).")
    lines += ["", "## Figures 8 and 9: per-date OA and average F1", "",
              f"![per-date OA]({fig8.relative_to(out)})", "", f"![per-date F1]({fig9.relative_to(out)})", ""]
    drop = _drop(per_date, SINGLE_NET)
    dates = sorted({d for rows in per_date.values() for d in rows})
    map_date = drop[1] if drop is not None else (dates[len(dates) // 2] if dates else None)
    if map_date is not None:
        fig = plot_maps(out, cfg["scenes"]["b"], records, map_date, figures / f"maps_{map_date}.png")
        if fig is not None:
            lines += [f"## Maps of {map_date}", "", f"![maps]({fig.relative_to(out)})", ""]
    from tropicrop.adaptation.report import adaptation_lines

    lines += adaptation_lines(out, records, per_date, plot_per_date)
    lines += ["## Per-date figures", "", "| approach | " + " | ".join(dates) + " |", "|---|" + "---:|" * len(dates)]
    for name, rows in per_date.items():
        lines.append(f"| {name} F1 | " + " | ".join(f"{100 * rows[d][1]:.1f}" if d in rows else "" for d in dates) + " |")
        lines.append(f"| {name} OA | " + " | ".join(f"{100 * rows[d][0]:.1f}" if d in rows else "" for d in dates) + " |")
    report = out / "report.md"
    with atomic_path(report) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return report
