"""Segment snapshots kept from run to run, so the next run can show who moved.

Each run writes ``data/processed/segments/<kind>_<as_of>.parquet`` (one row per OneID);
a run finds the newest snapshot of an *earlier* as-of date to compare with. Rerunning
the same as-of date replaces its snapshot and never compares a run with itself.

Example:
    >>> import pandas as pd, tempfile
    >>> from workbench.config import get_paths
    >>> paths = get_paths(tempfile.mkdtemp(), tempfile.mkdtemp())
    >>> s = pd.DataFrame({"segment": ["Champions", "Lost"]}, index=pd.Index(["a", "b"], name="oneid"))
    >>> _ = save_snapshot(s, paths, kind="rfm", as_of="2026-10-01")
    >>> _ = save_snapshot(s, paths, kind="rfm", as_of="2026-11-01")
    >>> previous_snapshot(paths, kind="rfm", as_of="2026-11-01")[0]
    '2026-10-01'
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd

from ..config import Paths, get_paths
from ..timeutil import to_utc


def _folder(paths: Paths) -> Path:
    return paths.processed / "segments"


def _key(as_of: Any) -> str:
    ts = to_utc(as_of)
    if ts is None:
        raise ValueError("The 'as_of' parameter must be a date for a snapshot. Got None instead.")
    return ts.strftime("%Y-%m-%d")


def save_snapshot(segments: pd.DataFrame, paths: Paths | None = None, *, kind: str, as_of: Any) -> Path:
    """Write ``segments`` (indexed by OneID) as the ``kind`` snapshot of ``as_of``."""
    if not re.fullmatch(r"[a-z0-9_]+", kind):
        raise ValueError(f"The 'kind' parameter must be lower-case letters, digits or '_'. Got {kind!r} instead.")
    folder = _folder(paths or get_paths())
    folder.mkdir(parents=True, exist_ok=True)
    f = folder / f"{kind}_{_key(as_of)}.parquet"
    segments = segments.copy()
    segments.attrs = {"kind": kind, "as_of": _key(as_of)}  # JSON-safe metadata only
    segments.to_parquet(f)
    return f


def previous_snapshot(paths: Paths | None = None, *, kind: str, as_of: Any) -> tuple[str, pd.DataFrame] | None:
    """``(as_of date, snapshot)`` of the newest ``kind`` snapshot before ``as_of``, or None."""
    folder = _folder(paths or get_paths())
    current = _key(as_of)
    found = sorted(d for f in folder.glob(f"{kind}_*.parquet")
                   if (d := f.stem[len(kind) + 1:]) < current and re.fullmatch(r"\d{4}-\d{2}-\d{2}", d))
    if not found:
        return None
    return found[-1], pd.read_parquet(folder / f"{kind}_{found[-1]}.parquet")
