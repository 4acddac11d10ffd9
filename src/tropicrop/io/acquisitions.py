"""Per-acquisition Sentinel-1 files as users hold them: which file is which date, polarisation and unit.

Sentinel-1 products (GRD or RTC, from SNAP, ASF HyP3, openEO, Earth Engine, a STAC catalogue...) come one file
per acquisition with VV and VH as two bands, or as two files whose names carry ``_VV`` / ``_VH``. The
acquisition time comes from the name: ESA and HyP3 product names (``_YYYYMMDDTHHMMSS_``, start time first)
give their start time; any other name may hold one date as ``YYYYMMDD``, ``YYYY-MM-DD`` or ``YYYY_MM_DD``,
optionally with a time and ``Z`` (``openEO_2023-04-03Z.tif``, ``S1_20230403.tif``). A name with two different
dates (an interval composite ``S1_20230401_20230430``) is refused: ``date_pattern`` (a regular expression
with one group) says which to take, and reads any other naming. Without a date in the name, a TIFF tag
(``ACQUISITION_START_TIME``, ``ACQUISITION_DATETIME``, then ``TIFFTAG_DATETIME``, which some tools set to
the processing time: the name is the safer source). Units: :mod:`tropicrop.io.units`.

Every problem raises :class:`~tropicrop.errors.StackError` naming the file.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import rasterio
from rasterio.errors import RasterioIOError
from rasterio.windows import Window

from tropicrop.errors import StackError
from tropicrop.io.rasters import Grid
from tropicrop.io.units import UNITS, check_units, to_linear_power, units_from_values

__all__ = ["UNITS", "Acquisition", "BandRef", "find_acquisitions", "time_from_name", "to_linear_power"]

POLARISATIONS = ("VV", "VH")
RASTER_SUFFIXES = (".tif", ".tiff")
NAME_TIME = re.compile(r"(?<![0-9])(\d{8}T\d{6})(?![0-9])")
# one date in a name: YYYYMMDD, YYYY-MM-DD or YYYY_MM_DD (one separator), optionally a time, optionally Z
NAME_DATE = re.compile(r"(?<![0-9])((?:19|20)\d{2})([-_]?)(\d{2})\2(\d{2})"
                       r"(?:[T_ ]?(\d{2})[:-]?(\d{2})(?:[:-]?(\d{2}))?(?:\.\d+)?)?Z?(?![0-9])")
DATE_PATTERN_FIX = "pass --date-pattern REGEX whose one group is the acquisition date, e.g. '_(\\d{8})_'"
POL_TOKEN = re.compile(r"(?<![A-Za-z0-9])(VV|VH|HH|HV)(?![A-Za-z0-9])", re.IGNORECASE)
TIME_TAGS = ("ACQUISITION_START_TIME", "ACQUISITION_DATETIME", "TIFFTAG_DATETIME")
UNITS_SAMPLE = 256  # side of the decimated read used to tell dB from linear power


@dataclass(frozen=True)
class BandRef:
    """One polarisation of one acquisition: a raster file (path or URL) and its 1-based band index."""

    href: str
    band: int


@dataclass(frozen=True)
class Acquisition:
    """One Sentinel-1 acquisition: a name (for messages), its time, its VV and/or VH band (None: not stacked,
    a single-polarisation scene) and their unit; ``item`` is the STAC item it came from, if any."""

    name: str
    time: dt.datetime
    vv: BandRef | None
    vh: BandRef | None
    units: str
    item: Any = field(default=None, compare=False, repr=False)

    @property
    def bands(self) -> tuple[str, ...]:
        """The polarisations stacked, in scene order (VV before VH)."""
        return tuple(p for p, r in zip(POLARISATIONS, (self.vv, self.vh), strict=True) if r is not None)

    @property
    def refs(self) -> tuple[BandRef, ...]:
        """The band of each of :attr:`bands`, in that order."""
        return tuple(r for r in (self.vv, self.vh) if r is not None)

    @property
    def month(self) -> tuple[int, int]:
        """(year, month) of the acquisition."""
        return self.time.year, self.time.month


class MonthReader(Protocol):
    """Reads the acquisitions of one month on a window of the target grid (files: io.stack; STAC: io.stac)."""

    def read(self, window: Window) -> np.ndarray:
        """Linear power (k, C, h, w) float32 of the month's k acquisitions (C = their bands), NaN = no data."""
        ...


OpenMonth = Callable[[Sequence[Acquisition], Grid], AbstractContextManager[MonthReader]]


def _parse_name_date(match: re.Match[str]) -> dt.datetime | None:
    year, _, month, day, hour, minute, second = match.groups()
    try:
        return dt.datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0))
    except ValueError:  # 20231399: digits, not a date
        return None


def parse_date_text(text: str) -> dt.datetime | None:
    """A date (and time) written in one of the forms of :data:`NAME_DATE` or ``YYYYMMDDTHHMMSS``, or None."""
    match = NAME_TIME.fullmatch(text.strip())
    if match:
        return dt.datetime.strptime(match.group(1), "%Y%m%dT%H%M%S")
    match = NAME_DATE.fullmatch(text.strip())
    return _parse_name_date(match) if match else None


def time_from_name(name: str, date_pattern: str | None = None, where: str | Path | None = None) -> dt.datetime | None:
    """The acquisition time in a file name, or None when it holds no date.

    ``date_pattern`` (a regular expression with one group) wins when given; else a product name's start
    time (``..._20190115T083012_...``), else the one date of the name. StackError (naming ``where``) for a
    name with two different dates, or one the pattern does not match.
    """
    where = where if where is not None else name
    if date_pattern is not None:
        match = re.search(date_pattern, name)
        found = parse_date_text(match.group(1)) if match and match.groups() else None
        if found is None:
            what = f"gives {match.group(1)!r}, not a date" if match and match.groups() else "does not match"
            raise StackError(where, f"--date-pattern {date_pattern!r} {what}", "its one group must capture a date "
                             "such as 20230403, 2023-04-03 or 20230403T083012")
        return found
    for product in NAME_TIME.finditer(name):  # ESA / HyP3 product name: the first stamp is the start time
        time = parse_date_text(product.group(1))
        if time is not None:
            return time
    dates = [d for d in (_parse_name_date(m) for m in NAME_DATE.finditer(name)) if d is not None]
    if len({d.date() for d in dates}) > 1:
        shown = " and ".join(dict.fromkeys(f"{d:%Y-%m-%d}" for d in dates))
        raise StackError(where, f"name holds two dates ({shown}): which is the acquisition?", DATE_PATTERN_FIX)
    return dates[0] if dates else None


def time_from_tags(tags: dict[str, str]) -> dt.datetime | None:
    """The acquisition time in a raster's metadata tags (see :data:`TIME_TAGS`), or None."""
    for key in TIME_TAGS:
        text = tags.get(key)
        if not text:
            continue
        text = text.strip().replace("Z", "")
        for fmt in ("%Y:%m:%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
            try:
                return dt.datetime.strptime(text, fmt)
            except ValueError:
                pass
    return None


def detect_units(href: str, band: int, where: str | None = None) -> str:
    """``dB`` or ``linear`` from a decimated read of ``band`` of ``href``; StackError if it cannot tell."""
    where = where or href
    try:
        with rasterio.open(href) as ds:
            side = max(1, min(UNITS_SAMPLE, ds.width, ds.height))
            sample = ds.read(band, out_shape=(side, side), masked=True)
            scaled = ds.scales[band - 1] != 1 or ds.offsets[band - 1] != 0
    except RasterioIOError as exc:
        raise StackError(where, f"not a readable raster ({exc})", "re-download or re-export it as GeoTIFF") from None
    integers = bool(np.issubdtype(sample.dtype, np.integer)) and not scaled
    return units_from_values(sample.compressed().astype(np.float64), where, integers)


def check_bands(bands: Sequence[str]) -> tuple[str, ...]:
    """``--bands`` as polarisations in scene order (VV, VH); StackError for anything else."""
    names = {b.strip().upper() for b in bands}
    wanted = tuple(p for p in POLARISATIONS if p in names)
    if not wanted or names - set(POLARISATIONS):
        raise StackError(None, f"--bands {','.join(bands)!r}", "give VV, VH or VV,VH")
    return wanted


def check_date_pattern(date_pattern: str | None) -> None:
    """StackError for a ``--date-pattern`` that is not a regular expression with exactly one group."""
    if date_pattern is None:
        return
    try:
        groups = re.compile(date_pattern).groups
    except re.error as exc:
        raise StackError(None, f"--date-pattern {date_pattern!r} is not a regular expression ({exc})",
                         DATE_PATTERN_FIX) from None
    if groups != 1:
        raise StackError(None, f"--date-pattern {date_pattern!r} has {groups} groups", DATE_PATTERN_FIX)


def _raster_files(sources: Sequence[str | Path]) -> list[Path]:
    files: list[Path] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in RASTER_SUFFIXES and not p.name.startswith("."))
            if not found:
                raise StackError(path, "holds no GeoTIFF (.tif, .tiff)", "point to the folder of downloaded acquisitions")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise StackError(path, "not found", "give acquisition files or folders that exist")
    return files


def _file_polarisation(path: Path) -> str | None:
    tokens = {m.upper() for m in POL_TOKEN.findall(path.stem)}
    if len(tokens) > 1:
        raise StackError(path, f"name holds several polarisations ({', '.join(sorted(tokens))})",
                         "name single-polarisation files with one of _VV / _VH")
    return tokens.pop() if tokens else None


def _band_polarisations(path: Path, descriptions: Sequence[str | None], count: int) -> dict[str, int]:
    """VV/VH band indices of a multi-band file from its band descriptions (else bands 1, 2 = VV, VH)."""
    found: dict[str, int] = {}
    for i, text in enumerate(descriptions, start=1):
        tokens = {m.upper() for m in POL_TOKEN.findall(text or "")}
        for pol in tokens:
            if pol not in POLARISATIONS:
                raise StackError(path, f"band {i} is {pol}: mixed polarisations",
                                 "tropicrop stacks VV and VH (Sentinel-1 IW dual-pol); leave HH/HV products out")
            if pol in found:
                raise StackError(path, f"bands {found[pol]} and {i} are both {pol}", "keep one band per polarisation")
            found[pol] = i
    if not found and count == 2:
        return {"VV": 1, "VH": 2}  # undescribed two-band file: the usual VV, VH order (scene convention)
    if not found:
        raise StackError(path, f"has {count} band(s) but no VV or VH band (descriptions {list(descriptions)})",
                         "give VV and VH as two bands described VV/VH, or two files _VV/_VH")
    return found


@dataclass
class _FileInfo:
    path: Path
    time: dt.datetime
    bands: dict[str, int]  # polarisation -> band index


def _inspect_file(path: Path, date_pattern: str | None = None) -> _FileInfo:
    try:
        with rasterio.open(path) as ds:
            count, descriptions, tags = ds.count, list(ds.descriptions), ds.tags()
            georeferenced = ds.crs is not None
    except RasterioIOError as exc:
        raise StackError(path, f"not a readable raster ({exc})", "re-download or re-export it as GeoTIFF") from None
    if not georeferenced:
        raise StackError(path, "has no CRS", "stack georeferenced products (GeoTIFF with a CRS)")
    time = time_from_name(path.name, date_pattern, path) or time_from_tags(tags)
    if time is None:
        raise StackError(path, "has no acquisition date: none in the name (YYYYMMDD, YYYY-MM-DD, ...) and no date "
                         f"tag ({', '.join(TIME_TAGS)})", f"keep the product name, set TIFFTAG_DATETIME, or {DATE_PATTERN_FIX}")
    pol = _file_polarisation(path)
    if pol is not None:
        if pol not in POLARISATIONS:
            raise StackError(path, f"is {pol}: mixed polarisations", "tropicrop stacks VV and VH; leave HH/HV products out")
        if count != 1:
            raise StackError(path, f"is named {pol} but has {count} bands", "name multi-band files without _VV/_VH")
        return _FileInfo(path, time, {pol: 1})
    if count == 1:
        raise StackError(path, "is a single band but its name says neither _VV nor _VH",
                         "rename it with its polarisation, e.g. ..._VV.tif")
    return _FileInfo(path, time, _band_polarisations(path, descriptions, count))


def _group_key(info: _FileInfo) -> tuple[Path, str]:
    """Files of one acquisition share their folder and their name without the polarisation token."""
    return info.path.parent, POL_TOKEN.sub("*", info.path.stem)


def find_acquisitions(sources: Sequence[str | Path], units: str | None = None, date_pattern: str | None = None,
                      bands: Sequence[str] = POLARISATIONS) -> list[Acquisition]:
    """Every acquisition in ``sources`` (files and folders, searched recursively), sorted by time.

    VV and VH come from one two-band file or from two single-band files of the same name up to the
    polarisation token. ``units`` forces the unit of every file; None detects it per file. ``date_pattern``
    reads the date from the names (see :func:`time_from_name`); ``bands`` are the polarisations to stack
    (``("VV",)`` for a single-polarisation scene).
    """
    wanted = check_bands(bands)
    check_units(units)
    check_date_pattern(date_pattern)
    groups: dict[tuple[Path, str], list[_FileInfo]] = {}
    for path in _raster_files(sources):
        info = _inspect_file(path, date_pattern)
        groups.setdefault(_group_key(info), []).append(info)
    acquisitions = []
    for (folder, key), infos in groups.items():
        refs: dict[str, BandRef] = {}
        for info in infos:
            for pol, index in info.bands.items():
                if pol in refs:
                    raise StackError(info.path, f"{pol} of acquisition {key} is given twice (also {refs[pol].href})",
                                     "keep one file per polarisation")
                refs[pol] = BandRef(str(info.path), index)
        missing = [p for p in wanted if p not in refs]
        if missing:
            raise StackError(infos[0].path, f"has no {' / '.join(missing)} partner: mixed polarisations", (
                f"add the {'/'.join(missing)} file of this acquisition (same name, _{missing[0]}), leave it out, "
                f"or pass --bands {'/'.join(p for p in refs if p in POLARISATIONS)} for a single-polarisation scene"))
        found = {p: units or detect_units(refs[p].href, refs[p].band) for p in wanted}
        if len(set(found.values())) > 1:
            raise StackError(refs["VH"].href, f"VH looks {found['VH']} but VV ({refs['VV'].href}) looks {found['VV']}",
                             "pass --units, or re-export both in one unit")
        time = min(info.time for info in infos)
        acquisitions.append(Acquisition(name=str(folder / key), time=time, vv=refs.get("VV") if "VV" in wanted else None,
                                        vh=refs.get("VH") if "VH" in wanted else None, units=found[wanted[0]]))
    return sorted(acquisitions, key=lambda a: (a.time, a.name))


def months_between(start: tuple[int, int], end: tuple[int, int]) -> list[tuple[int, int]]:
    """Every (year, month) from ``start`` to ``end`` inclusive."""
    first, last = start[0] * 12 + start[1] - 1, end[0] * 12 + end[1] - 1
    return [(m // 12, m % 12 + 1) for m in range(first, last + 1)]


def parse_month(text: str, what: str) -> tuple[int, int]:
    """``YYYY-MM`` (or a full date) to (year, month); StackError naming the option otherwise."""
    try:
        value = dt.datetime.strptime(text.strip()[:7], "%Y-%m")
    except ValueError:
        raise StackError(None, f"{what} {text!r} is not a month", "write it as YYYY-MM") from None
    return value.year, value.month


def by_month(acquisitions: Iterable[Acquisition], months: Sequence[tuple[int, int]]) -> dict[tuple[int, int], list[Acquisition]]:
    """The acquisitions of each of ``months`` (empty list for a month without any), in time order."""
    out: dict[tuple[int, int], list[Acquisition]] = {m: [] for m in months}
    for acq in acquisitions:
        if acq.month in out:
            out[acq.month].append(acq)
    return out
