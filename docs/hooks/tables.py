"""MkDocs hook: tables of figures generated from the files that commands wrote, never typed by hand.

A page asks for a table with a marker on a line of its own, a path relative to the repository root::

    <!-- table: benchmarks/results/reading.json -->
    <!-- table: benchmarks/results/backbones.json match=parameters optional -->
    <!-- table: docs/demo/table4.csv columns=approach,f1%,oa%,train_seconds -->
    <!-- table: docs/demo/per_date.csv pivot=f1% -->

* a ``benchmarks/results/*.json`` file (written by ``benchmarks/results_file.write_results``) becomes a table of
  its figures (name, value, unit, note) followed by the command, commit, date, machine and settings that
  produced them; ``match=TEXT`` keeps the figures whose name contains TEXT (``|`` separates alternatives);
* a CSV (an experiment's ``table4.csv`` / ``per_date.csv``) becomes a table of the named ``columns`` (all by
  default); a column named with a trailing ``%`` is a fraction shown in percent with one decimal;
  ``pivot=COLUMN`` turns a long ``approach, date, ...`` file into one row per date and one column per approach;
* ``optional``: a file that does not exist yet gives a line saying the figures are not measured in this
  checkout and the command that writes them, instead of failing the build.

A marker whose file is missing (and not ``optional``) or unreadable raises :class:`TableError`, which fails
``mkdocs build``. ``tests/test_docs.py`` renders every marker of every page and checks that the figure pages
hold no hand-typed numeric table outside the markers.
"""

from __future__ import annotations

import csv
import json
import re
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

ROOT = Path(__file__).resolve().parents[2]
MARKER = re.compile(r"^<!-- table: (?P<spec>.+?) -->[ \t]*$", re.MULTILINE)
LABELS = {
    "approach": "approach", "model": "model", "f1": "average F1 (%)", "oa": "average OA (%)",
    "val_f1": "validation F1 (%)", "train_seconds": "training (s)", "train_hours": "training (h)",
    "predict_seconds": "prediction (s)", "parameters": "parameters per net", "nets": "nets",
    "train_patches": "training patches per net", "date": "date",
}


class TableError(PluginError):
    """A marker names a missing or unreadable file, or an unknown option (mkdocs stops with its message)."""


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """``PATH key=value ... flag`` -> the path and the options (a flag maps to ``""``)."""
    words = shlex.split(spec)
    if not words:
        raise TableError("empty table marker")
    options: dict[str, str] = {}
    for word in words[1:]:
        key, _, value = word.partition("=")
        if key not in {"columns", "pivot", "match", "optional"}:
            raise TableError(f"table marker {spec!r}: unknown option {key!r}")
        options[key] = value
    return words[0], options


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[bool]) -> str:
    """A Markdown table; numeric columns right-aligned."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def format_value(value: Any) -> str:
    """A figure as printed: integers with thousands separators, floats as stored, None as a dash."""
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int) or (float(value).is_integer() and abs(value) >= 1000):
        return f"{int(value):,}"
    return f"{value:g}" if abs(value) < 1e6 else f"{value:,.0f}"


def results_table(path: Path, name: str, options: dict[str, str]) -> str:
    """The figures of one ``benchmarks/results`` JSON file and where they come from."""
    record = json.loads(path.read_text())
    try:
        figures, machine = record["figures"], record["machine"]
        command, commit, date = record["command"], record["commit"], record["date"]
    except KeyError as err:
        raise TableError(f"{path}: not a result file of benchmarks/results_file.py (no {err})") from err
    wanted = [w for w in options.get("match", "").split("|") if w]
    rows = [[f["name"], format_value(f["value"]), f["unit"], f.get("note", "")] for f in figures
            if not wanted or any(w in f["name"] for w in wanted)]
    if not rows:
        raise TableError(f"{path}: no figure matches {options.get('match')!r}")
    table = markdown_table(["figure", "value", "unit", "note"], rows, [False, True, False, False])
    where = (f"{machine.get('cpu')}, {machine.get('cores')} cores" + (f", {machine['gpu']}" if machine.get("gpu") else "")
             + f"; torch {machine.get('torch')}, numpy {machine.get('numpy')}"
             + (f"; precision {machine['precision']}" if machine.get("precision") else ""))
    settings = ", ".join(f"{k} {v}" for k, v in record.get("settings", {}).items())
    return (f"{table}\n\n*`{command}` at commit `{commit}`, {date}; {where}."
            + (f" Settings: {settings}." if settings else "") + f" File: `{name}`.*")


def csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def cell(row: dict[str, str], column: str, path: Path) -> str:
    """One CSV cell; ``name%`` shows a fraction in percent."""
    name = column.rstrip("%")
    if name not in row:
        raise TableError(f"{path}: no column {name!r} (columns: {', '.join(row)})")
    value = row[name]
    if column.endswith("%") and value:
        return f"{100 * float(value):.1f}"
    try:
        number = float(value)
    except ValueError:
        return value
    return f"{int(number):,}" if number.is_integer() else f"{number:.3g}" if abs(number) < 100 else f"{number:,.0f}"


def header_of(column: str) -> str:
    name = column.rstrip("%")
    return LABELS.get(name, name.replace("_", " "))


def csv_table(path: Path, name: str, options: dict[str, str]) -> str:
    """A CSV file, or its ``pivot`` of dates by approaches."""
    rows = csv_rows(path)
    if not rows:
        raise TableError(f"{path}: no rows")
    if "pivot" in options:
        value = options["pivot"]
        approaches = list(dict.fromkeys(r["approach"] for r in rows))
        dates = list(dict.fromkeys(r["date"] for r in rows))
        by_key = {(r["approach"], r["date"]): r for r in rows}
        body = [[d, *(cell(by_key[a, d], value, path) if (a, d) in by_key else "" for a in approaches)] for d in dates]
        table = markdown_table([f"date \\ {header_of(value)}", *approaches], body, [False, *[True] * len(approaches)])
    else:
        columns = options.get("columns", "").split(",") if options.get("columns") else list(rows[0])
        body = [[cell(r, c, path) for c in columns] for r in rows]
        numeric = [c.rstrip("%") not in {"approach", "model", "date"} for c in columns]
        table = markdown_table([header_of(c) for c in columns], body, numeric)
    return f"{table}\n\n*File: `{name}`.*"


def render(spec: str, root: Path = ROOT) -> str:
    """The Markdown that replaces one marker."""
    name, options = parse_spec(spec)
    path = (root / name).resolve()
    if not path.is_file():
        if "optional" in options:
            script = f"python benchmarks/{path.stem}.py" if path.suffix == ".json" else "the command above"
            return f"*Not measured in this checkout: `{name}` is written by {script} (`make bench`).*"
        raise TableError(f"table marker: {name} does not exist (write it with the command that produces it)")
    try:
        return results_table(path, name, options) if path.suffix == ".json" else csv_table(path, name, options)
    except (OSError, json.JSONDecodeError, csv.Error) as err:
        raise TableError(f"table marker: {name}: {err}") from err


def replace_markers(markdown: str, root: Path = ROOT) -> str:
    """Every marker of a page replaced by its table."""
    return MARKER.sub(lambda m: render(m.group("spec"), root), markdown)


def on_page_markdown(markdown: str, **_: Any) -> str:
    """MkDocs hook entry point."""
    return replace_markers(markdown)
