"""Dates and times shared by every stage: the one as-of parser.

Example:
    >>> to_utc("2026-06-01")
    Timestamp('2026-06-01 00:00:00+0000', tz='UTC')
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["to_utc", "day_after"]


def to_utc(value: Any, name: str = "as_of") -> pd.Timestamp | None:
    """A date or timestamp as a UTC ``Timestamp`` (a date means its midnight, UTC); None stays None.

    >>> to_utc(None) is None
    True
    >>> to_utc("2026-06-01T08:00:00+08:00")
    Timestamp('2026-06-01 00:00:00+0000', tz='UTC')
    >>> to_utc("the day before yesterday")
    Traceback (most recent call last):
    ...
    ValueError: The 'as_of' parameter must be a date or timestamp such as '2026-06-01'. Got 'the day before yesterday' instead.
    """
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise ValueError(f"The '{name}' parameter must be a date or timestamp such as '2026-06-01'. "
                         f"Got {value!r} instead.") from None
    if ts is pd.NaT:
        return None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def day_after(ts: Any) -> pd.Timestamp | None:
    """Midnight (UTC) after ``ts``: the end of the last day with data, the default as-of date.

    >>> day_after("2026-10-31T23:54:43Z")
    Timestamp('2026-11-01 00:00:00+0000', tz='UTC')
    """
    t = to_utc(ts, "ts")
    return None if t is None else (t + pd.Timedelta(days=1)).normalize()
