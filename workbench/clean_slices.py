"""Bounded-memory helpers of the clean stage: read a channel in slices, and the whole-channel
bookkeeping that has to see every slice (exact duplicates, distinct counts, top invalid values,
placeholder companions, the mapping's dedupe rule).

Every helper gives exactly what the whole-channel pandas code gives — it either runs that same
pandas code on a small reduction of the channel (the dedupe keys, the distinct companions, the
rows whose 64-bit hash repeats), or merges per-slice results in an order that reproduces it.

Example:
    >>> import pandas as pd
    >>> d = DistinctValues()
    >>> d.add(pd.Series(["a", "b", None])); d.add(pd.Series(["b", "c"]))
    >>> d.count()
    3
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

#: rows a compaction waits for before merging the per-slice reductions it holds
_COMPACT_ROWS = 4_000_000


def slice_rows_setting(cfg: dict) -> int | None:
    """The cleaning setting ``slice_rows``: rows per slice, or None (the whole channel at once).

    >>> slice_rows_setting({"slice_rows": 1_000_000})
    1000000
    >>> slice_rows_setting({})  # settings recorded before the setting existed
    """
    value = cfg.get("slice_rows")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError("The 'slice_rows' cleaning setting must be a positive integer (rows the clean "
                         f"stage reads at a time) or null. Got {value!r} instead.")
    return int(value)


def parquet_rows(parts: list[Path]) -> int:
    """Rows in the Parquet files ``parts`` (from their footers, nothing is read).

    >>> parquet_rows([])
    0
    """
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(p).metadata.num_rows for p in parts)


def iter_slices(parts: list[Path], *, rows: int, columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
    """Frames of at most ``rows`` rows of the Parquet files ``parts``, in file then row order.

    Each frame's index is the rows' position in the whole (a slice starting at row 3 000 000 is
    indexed from 3 000 000), and its dtypes are those ``pd.concat`` of the whole files gives, so
    a slice is exactly a part of the frame the files read at once make.

    >>> list(iter_slices([], rows=10))
    []
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not parts:
        return
    schemas = [pq.read_schema(p) for p in parts]
    dtypes = None
    if any(not s.equals(schemas[0], check_metadata=False) for s in schemas[1:]):
        # files of different types: the types their concatenation has
        dtypes = pd.concat([s.empty_table().to_pandas() for s in schemas], ignore_index=True).dtypes
    start = 0
    for p in parts:
        f = pq.ParquetFile(p)
        for batch in f.iter_batches(batch_size=rows, columns=columns, use_pandas_metadata=False):
            if not batch.num_rows:
                continue
            df = pa.Table.from_batches([batch]).to_pandas()
            if dtypes is not None:
                df = df.astype(dtypes[df.columns].to_dict())
            df.index = pd.RangeIndex(start, start + len(df))
            start += len(df)
            yield df


def row_hashes(df: pd.DataFrame) -> np.ndarray:
    """A 64-bit hash per row of ``df``, equal for rows ``DataFrame.duplicated`` calls equal.

    >>> h = row_hashes(pd.DataFrame({"a": [1.0, -0.0, 0.0, None], "b": ["x", "y", "y", None]}))
    >>> bool(h[1] == h[2]), bool(h[0] == h[1])
    (True, False)
    """
    cols = {}
    for c in df.columns:
        s = df[c]
        if pd.api.types.is_float_dtype(s.dtype):  # -0.0 == 0.0 and every NaN is one NaN to duplicated()
            s = s.where(s.notna()) + 0.0
        cols[c] = s
    return pd.util.hash_pandas_object(pd.DataFrame(cols, index=df.index), index=False).to_numpy(np.uint64)


def exact_repeats(parts: list[Path], columns: list[str], *, rows: int) -> np.ndarray:
    """Per row of ``parts``: True where an earlier row has the same values in every one of ``columns``.

    The same as ``load_all()[columns].duplicated(keep="first")``, in the memory of one slice
    plus 8 bytes a row: a first pass hashes every row (64 bits); only rows whose hash occurs more
    than once are read again and compared exactly by ``duplicated`` itself, so a hash collision
    never merges two different rows.

    >>> exact_repeats([], ["a"], rows=10)
    array([], dtype=bool)
    """
    n = parquet_rows(parts)
    hashes = np.empty(n, dtype=np.uint64)
    for sl in iter_slices(parts, rows=rows, columns=columns):
        hashes[sl.index.start:sl.index.stop] = row_hashes(sl)
    repeats = np.zeros(n, dtype=bool)
    if n < 2:
        return repeats
    order = np.argsort(hashes, kind="stable")
    sorted_h = hashes[order]
    del hashes
    same = sorted_h[1:] == sorted_h[:-1]
    del sorted_h
    shared = np.zeros(n, dtype=bool)
    shared[:-1] |= same
    shared[1:] |= same
    candidates = np.sort(order[shared])
    del order, shared, same
    if not len(candidates):
        return repeats
    frames = []
    for sl in iter_slices(parts, rows=rows, columns=columns):
        lo, hi = np.searchsorted(candidates, [sl.index.start, sl.index.stop])
        if hi > lo:
            frames.append(sl.loc[candidates[lo:hi]])
    both = pd.concat(frames)
    dup = both.duplicated(keep="first").to_numpy(bool)
    repeats[both.index.to_numpy()[dup]] = True
    return repeats


class DistinctValues:
    """Distinct non-missing values over slices: ``count()`` is ``Series.nunique()`` of the whole.

    >>> d = DistinctValues(); d.add(pd.Series([1, 1, None])); d.count()
    1
    """

    def __init__(self) -> None:
        self._parts: list[pd.Series] = []
        self._held = 0

    def add(self, values: pd.Series) -> None:
        """Take one slice's values."""
        u = pd.Series(values.dropna().unique())
        self._parts.append(u)
        self._held += len(u)
        if self._held > _COMPACT_ROWS and len(self._parts) > 1:
            self._parts = [self._merged()]
            self._held = len(self._parts[0])

    def _merged(self) -> pd.Series:
        return pd.Series(pd.concat(self._parts, ignore_index=True).unique())

    def count(self) -> int:
        """Distinct values seen."""
        return int(self._merged().nunique(dropna=True)) if self._parts else 0


class InvalidValues:
    """Counts of invalid values over slices, in the order they first occur, so ``top(k)`` is
    ``whole.value_counts().head(k)`` (ties broken by first occurrence, as pandas does).

    >>> v = InvalidValues(); v.add(pd.Series(["x", "y"])); v.add(pd.Series(["y"])); v.top(1)
    [('y', 2)]
    """

    def __init__(self) -> None:
        self._counts: pd.Series | None = None

    def add(self, values: pd.Series) -> None:
        """Take one slice's invalid values (as text)."""
        codes, uniques = pd.factorize(values)
        codes = codes[codes >= 0]
        if not len(codes):
            return
        counts = pd.Series(np.bincount(codes, minlength=len(uniques)), index=pd.Index(uniques, dtype=object))
        self._counts = counts if self._counts is None else \
            pd.concat([self._counts, counts]).groupby(level=0, sort=False).sum()

    def top(self, k: int) -> list[tuple[str, int]]:
        """The ``k`` most frequent values with their counts."""
        if self._counts is None:
            return []
        top = self._counts.sort_values(ascending=False, kind="stable").head(k)
        return [(v, int(n)) for v, n in top.items()]


class Companions:
    """Distinct (value, other identifiers) combinations of one identity field over slices.

    ``crowded(limit)`` are the values next to more than ``limit`` distinct combinations — what
    ``sub.drop_duplicates().groupby(field).size() > limit`` gives on the whole channel.

    >>> c = Companions("phone"); c.add(pd.DataFrame({"phone": ["1", "1"], "name": ["a", "b"]}))
    >>> list(c.crowded(1))
    ['1']
    """

    def __init__(self, field: str) -> None:
        self.field = field
        self._parts: list[pd.DataFrame] = []
        self._held = 0

    def add(self, combos: pd.DataFrame) -> None:
        """Take one slice's (field, others...) rows with the field present."""
        d = combos.drop_duplicates()
        self._parts.append(d)
        self._held += len(d)
        if self._held > _COMPACT_ROWS and len(self._parts) > 1:
            self._parts = [pd.concat(self._parts, ignore_index=True).drop_duplicates()]
            self._held = len(self._parts[0])

    def crowded(self, limit: int) -> pd.Index:
        """Values of the field with more than ``limit`` distinct companions."""
        if not self._parts:
            return pd.Index([])
        sizes = pd.concat(self._parts, ignore_index=True).drop_duplicates().groupby(self.field, observed=True).size()
        return sizes[sizes > limit].index


def dedupe_drops(keys: pd.DataFrame, *, key: list[str], order_by: str | None, keep: str) -> np.ndarray:
    """Row positions a dedupe rule drops, from the rule's columns of the rows that have a key.

    ``keys`` holds the key (and ``order_by``) columns of every row whose key is complete,
    indexed by position in the channel, in channel order. The rule is the whole-channel one:
    sort by key and ``order_by`` (stable, missing first), keep the ``"latest"`` (last) or the
    ``"first"`` row of each key.

    >>> k = pd.DataFrame({"id": ["a", "a", "b"], "t": [2, 1, 1]}, index=[0, 5, 9])
    >>> dedupe_drops(k, key=["id"], order_by="t", keep="latest").tolist()
    [5]
    """
    if order_by:
        keys = keys.sort_values([*key, order_by], kind="stable", na_position="first")
    drop = keys.duplicated(subset=key, keep="last" if keep == "latest" else "first").to_numpy(bool)
    return np.sort(keys.index.to_numpy()[drop])
