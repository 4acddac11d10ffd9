"""The dates of a target-month window and day-of-year arithmetic (calendar helpers of training and prediction)."""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass(frozen=True)
class WindowIndex:
    """The dates of one window: ``indices`` (T,) into the scene's dates (-1 = padding), ``valid`` (T,)
    bool, ``doy`` (T,) day of year (padded steps get the day of year one month apart, going back)."""

    indices: np.ndarray
    valid: np.ndarray
    doy: np.ndarray


def day_of_year(date: dt.date) -> int:
    """Day of year, 1..366."""
    return date.timetuple().tm_yday


def shift_doy(doy: int | np.ndarray | torch.Tensor, offset: int | np.ndarray | torch.Tensor) -> Any:
    """Day of year (1..365) ``offset`` days later, wrapping around the year: ``doy`` array or tensor of any
    shape, ``offset`` a scalar or broadcastable. Used to move a year's calendar onto another's (adaptation)
    and to augment training dates."""
    return (doy - 1 + offset) % 365 + 1


def months_before(date: dt.date, months: int) -> dt.date:
    """The same day of the month ``months`` calendar months earlier (clamped to the month's length)."""
    total = date.year * 12 + date.month - 1 - months
    year, month = divmod(total, 12)
    return dt.date(year, month + 1, min(date.day, calendar.monthrange(year, month + 1)[1]))


def target_window(dates: Sequence[dt.date], target: dt.date, length: int = 12,
                  missing: np.ndarray | None = None) -> WindowIndex:
    """The window of ``length`` dates ending at ``target`` (which must be one of ``dates``).

    ``missing`` (len(dates),) bool marks dates without any acquisition (a month with no pass): they keep
    their place and day of year in the window but are padding (``valid`` False, index -1), like the dates
    before the first one. The target itself must have an image.
    """
    if target not in dates:
        raise ValueError(f"{target} is not an acquisition date")
    end = list(dates).index(target)
    if missing is not None and missing[end]:
        raise ValueError(f"{target} has no image (no acquisition that month)")
    start = end - length + 1
    indices = np.arange(start, end + 1)
    valid = indices >= 0
    if missing is not None:
        valid[valid] = ~np.asarray(missing, dtype=bool)[indices[valid]]
    first = dates[max(start, 0)]
    doy = np.empty(length, dtype=np.int64)
    for k, i in enumerate(indices):
        if i >= 0:
            doy[k] = day_of_year(dates[int(i)])
        else:  # calendar months before the first acquisition
            doy[k] = day_of_year(months_before(first, int(-i)))
    return WindowIndex(indices=np.where(valid, indices, -1), valid=valid, doy=doy)
