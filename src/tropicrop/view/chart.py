"""The per-date accuracy chart of the page: OA and macro F1 from ``OUT/metrics/per_date.csv`` as inline SVG.

A chart library (and its JavaScript) would be a second dependency for two lines on a time axis; plain SVG
needs none, scales with the page and stays readable in the file. Each point carries ``data-date`` so the
page can mark the month on show.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

from tropicrop.errors import RunError

WIDTH, HEIGHT = 300, 150
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 34, 10, 22, 26
SERIES = (("oa", "OA", "#1f77b4"), ("f1", "macro F1", "#d62728"))
EVALUATE = "evaluate again: tropicrop evaluate OUT SCENE"


@dataclass(frozen=True)
class DateMetrics:
    """One row of per_date.csv."""

    date: dt.date
    oa: float
    f1: float


def read_per_date(path: Path) -> list[DateMetrics]:
    """The rows of a per_date.csv, oldest first; RunError naming the file if it is malformed."""
    try:
        with open(path, newline="") as f:
            rows = [DateMetrics(dt.date.fromisoformat(r["date"]), float(r["oa"]), float(r["f1"])) for r in csv.DictReader(f)]
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise RunError(path, f"is not a per-date metrics table (date, oa, f1: {' '.join(str(exc).split())})", EVALUATE) from None
    return sorted(rows, key=lambda r: r.date)


def per_date_svg(rows: list[DateMetrics]) -> str:
    """An SVG line chart of OA and macro F1 (0..1) per date; empty string when there is no row."""
    if not rows:
        return ""
    first, last = rows[0].date, rows[-1].date
    span = max(1, (last - first).days)
    plot_w, plot_h = WIDTH - PAD_LEFT - PAD_RIGHT, HEIGHT - PAD_TOP - PAD_BOTTOM

    def x(date: dt.date) -> float:
        return PAD_LEFT + plot_w * ((date - first).days / span if len(rows) > 1 else 0.5)

    def y(value: float) -> float:
        return PAD_TOP + plot_h * (1.0 - min(1.0, max(0.0, value)))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="tc-chart" viewBox="0 0 {WIDTH} {HEIGHT}" '
             f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="OA and macro F1 per date">']
    for tick in (0.0, 0.5, 1.0):
        parts.append(f'<line x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" class="grid"/>'
                     f'<text x="{PAD_LEFT - 4}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:.1f}</text>')
    for date, anchor in ((first, "start"), (last, "end")) if len(rows) > 1 else ((first, "middle"),):
        parts.append(f'<text x="{x(date):.1f}" y="{HEIGHT - 8}" text-anchor="{anchor}">{date:%b %Y}</text>')
    for i, (key, label, colour) in enumerate(SERIES):
        points = [(x(r.date), y(getattr(r, key)), r) for r in rows if math.isfinite(getattr(r, key))]
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="'
                     + " ".join(f"{px:.1f},{py:.1f}" for px, py, _ in points) + '"/>')
        for px, py, r in points:
            parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{colour}" data-date={quoteattr(r.date.isoformat())}>'
                         f"<title>{r.date}: {label} {getattr(r, key):.3f}</title></circle>")
        parts.append(f'<rect x="{PAD_LEFT + 90 * i}" y="6" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{PAD_LEFT + 14 + 90 * i}" y="15">{label}</text>')
    parts.append("</svg>")
    return "".join(parts)
