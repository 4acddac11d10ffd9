"""Figures of a benchmark written as JSON under ``benchmarks/results/``, so docs tables come from files.

Every benchmark calls :func:`write_results` once at its end with the figures it printed. The file holds each
figure (name, value, unit), the command that measured it, the git commit, the date and the machine (CPU
model, cores, torch and numpy versions, precision), and is replaced atomically, so a crashed run leaves the
previous file. ``--results-dir`` style overrides go through the ``TROPICROP_RESULTS_DIR`` environment
variable (tests write to a temp dir, never into the repo).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS_DIR = HERE / "results"


@dataclass(frozen=True)
class Figure:
    """One measured figure: ``value`` in ``unit`` (``"s"``, ``"MiB"``, ``"ratio"``, ``"F1"``...)."""

    name: str
    value: float | int | str | None
    unit: str
    note: str = ""


def cpu_model() -> str:
    """The CPU's model name as the kernel reports it (``platform.processor()`` is often empty on Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit() -> str:
    """The commit the benchmark ran at (``+dirty`` when the work tree had changes), or ``unknown``."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=HERE, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=HERE,
                               capture_output=True, text=True, check=True).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine(precision: str | None = None) -> dict[str, Any]:
    """CPU model, cores, GPU (if any), Python, torch and numpy versions, and the precision measured in."""
    import numpy
    import torch

    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "precision": precision,
    }


def results_dir() -> Path:
    """Where result files go: ``TROPICROP_RESULTS_DIR`` if set, else ``benchmarks/results``."""
    return Path(os.environ.get("TROPICROP_RESULTS_DIR", RESULTS_DIR))


def write_results(benchmark: str, figures: list[Figure], *, precision: str | None = None,
                  settings: dict[str, Any] | None = None, argv: list[str] | None = None) -> Path:
    """Write ``results/<benchmark>.json`` atomically and return its path.

    Args:
        benchmark: the file stem, e.g. ``"reading"`` for ``benchmarks/reading.py``.
        figures: what the benchmark measured, in the order it printed them.
        precision: ``"float32"``/``"bf16"`` where the figures depend on it.
        settings: the arguments that shaped the run (sizes, seeds), beside the command line.
        argv: the command line (default ``sys.argv``).
    """
    argv = sys.argv if argv is None else argv
    script = Path(argv[0]).name if argv else f"{benchmark}.py"
    record = {
        "benchmark": benchmark,
        "command": shlex.join(["python", f"benchmarks/{script}", *argv[1:]]),
        "commit": git_commit(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(precision),
        "settings": settings or {},
        "figures": [asdict(f) for f in figures],
    }
    out_dir = results_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{benchmark}.json"
    fd, tmp = tempfile.mkstemp(prefix=f".{benchmark}.", suffix=".tmp", dir=out_dir)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(record, fh, indent=1, default=str)
            fh.write("\n")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
