"""RFM: recency, frequency and monetary value per customer, scores, named segments, migration.

The steps, each usable on its own:

1. :func:`rfm_summary` — one row per customer from a transactions table: days since the last
   purchase, number of purchases, net amount spent, first and last purchase.
2. :func:`rfm_scores` — 1..``bins`` scores (``bins`` = best) and the ``rfm_cell`` ("545").
3. :func:`assign_segments` — segment names (Champions, At Risk, ...) from a map on the R and F
   scores kept in ``workbench/conf/rfm_segments.yaml`` (:func:`load_segment_map`).
4. :func:`segment_summary`, the figures, and :func:`segment_migration` between two runs.

:func:`rfm_segments` runs steps 1–3 at once.

Definitions (they matter when numbers are compared with another tool):

- Only transactions strictly before ``as_of`` count. The default ``as_of`` is the latest
  transaction time + 1 day, so every transaction counts and the most recent buyer has a
  recency of 1 day.
- A *purchase* is a row (or, with ``order_id_col``, an order: all rows of one order id of one
  customer) whose net amount is positive. Returns (negative rows) reduce ``monetary`` but are
  not purchases; an order that nets to zero or less is not a purchase. ``frequency`` counts
  purchases and ``recency_days``, ``first_purchase`` and ``last_purchase`` come from purchases
  only (an order's time is its earliest row). ``monetary`` is the net sum of all the
  customer's amounts, so it can be 0 or negative for a customer whose goods came back.
- Customers with no purchase before ``as_of`` (only returns, or added through ``customers``)
  have ``frequency`` 0, no recency and no scores; their segment is the map's ``no_purchase``
  label ("Prospect (no purchase)").
- Scores are order-independent: equal values always get equal scores (see :func:`rfm_scores`).

Example:
    >>> import pandas as pd
    >>> tx = pd.DataFrame({"customer_id": ["a", "a", "a", "b", "c", "c", "d", "e", "e"],
    ...                    "date": pd.to_datetime(["2024-01-02", "2024-02-01", "2024-03-01", "2024-02-15",
    ...                                            "2024-01-10", "2024-03-08", "2023-11-20", "2024-03-05",
    ...                                            "2024-03-07"]),
    ...                    "amount": [30.0, 20.0, 45.0, 15.0, 50.0, 40.0, 12.0, 60.0, -60.0]})
    >>> rfm = rfm_segments(tx, as_of="2024-03-10", customers=["a", "b", "c", "d", "e", "f"])
    >>> rfm[["recency_days", "frequency", "monetary", "rfm_cell", "segment"]]  # doctest: +NORMALIZE_WHITESPACE
                 recency_days  frequency  monetary rfm_cell                 segment
    customer_id
    a                     9.0          3      95.0      355                   Loyal
    b                    24.0          1      15.0      213             Hibernating
    c                     2.0          2      90.0      544               Champions
    d                   111.0          1      12.0      112                    Lost
    e                     5.0          1       0.0      411               Promising
    f                     NaN          0       0.0      NaN  Prospect (no purchase)

    Customer ``e`` returned everything: one purchase, monetary 0; ``f`` never bought.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from ..config import PACKAGE_DIR

DEFAULT_SEGMENT_MAP_PATH = PACKAGE_DIR / "conf" / "rfm_segments.yaml"
SUMMARY_COLUMNS = ("recency_days", "frequency", "monetary", "first_purchase", "last_purchase")
SCORE_COLUMNS = ("r_score", "f_score", "m_score")
NEW = "(new)"
GONE = "(gone)"
DIRECTIONS = ("up", "down", "same", "new", "gone")
# net sums are rounded to this many decimals: 10.10 + 20.20 - 30.30 is 3.6e-15 in floating point,
# which would make a fully returned order a purchase and a fully refunded customer rank above 0
NET_DECIMALS = 9


class MissingColumnsError(KeyError, ValueError):
    """Columns a function needs are not in the table; the message lists missing and present columns."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0]) if self.args else ""


class SegmentMapError(ValueError):
    """A segment map that cannot work (a hole, an overlap, an unknown key), saying what and where."""


def _require_columns(df: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"The '{what}' parameter must be a pandas DataFrame. Got {type(df).__name__} instead.")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise MissingColumnsError(f"The '{what}' table is missing column(s) {missing}. "
                                  f"Columns present: {list(map(str, df.columns))}.")


def _sort_positions(index: pd.Index) -> np.ndarray:
    """Positions that sort ``index``; ids of mixed types are ordered by their text (still deterministic)."""
    try:
        return index.argsort(kind="stable")
    except TypeError:
        return np.argsort(index.astype(str).to_numpy(), kind="stable")


# ----------------------------------------------------------------------------- summary

def _as_datetime(s: pd.Series, name: str) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return s
    error: Exception | None = None
    # fast path first; then per-element formats; then different UTC offsets compared in UTC
    for kwargs in ({}, {"format": "mixed"}, {"format": "mixed", "utc": True}):
        try:
            return pd.to_datetime(s, **kwargs)
        except (ValueError, TypeError) as exc:
            error = exc
    raise ValueError(f"The '{name}' column must hold dates or datetimes. It could not be parsed ({error}).")


def _align_as_of(as_of: Any, tz) -> pd.Timestamp:
    """``as_of`` as a Timestamp comparable with datetimes in time zone ``tz`` (None = naive).

    A naive ``as_of`` against aware data is read in the data's time zone; an aware ``as_of``
    against aware data is converted to it; an aware ``as_of`` against naive data is taken at
    its own wall-clock time.
    """
    try:
        ts = pd.Timestamp(as_of)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"The 'as_of' parameter must be a date, a datetime or a string pandas can parse. "
                         f"Got {as_of!r} instead ({exc}).") from None
    if ts is pd.NaT:
        raise ValueError(f"The 'as_of' parameter must be a date or datetime. Got {as_of!r} instead.")
    if tz is not None:
        return ts.tz_localize(tz) if ts.tz is None else ts.tz_convert(tz)
    return ts.tz_localize(None) if ts.tz is not None else ts


def _factorize(values: pd.Series, *, sort: bool = False) -> tuple[np.ndarray, pd.Index]:
    """``pd.factorize`` (missing → -1), with a hash-free path for integer ids in a compact range.

    Sequential integer ids (customer numbers, order numbers) are numbered by offset from the
    smallest id, which also sorts them; that avoids hashing millions of distinct values.
    """
    if getattr(values.dtype, "kind", "") == "i" and len(values) and not values.hasnans:  # signed integers
        v = values.to_numpy(dtype="int64")
        lo, hi = int(v.min()), int(v.max())
        if hi - lo <= 4 * len(v) + 1024:
            offset = v - lo
            present = np.bincount(offset, minlength=hi - lo + 1) > 0
            new_code = np.cumsum(present) - 1
            return new_code[offset], pd.Index(np.arange(lo, hi + 1)[present]).astype(values.dtype)
    return pd.factorize(values, sort=sort)


def _customer_orders(order_ids: pd.Series, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Number the (customer, order id) pairs: ``pair`` per row and the customer code of each pair.

    Rows without an order id are orders of their own. The usual case, each order id belonging to
    one customer, needs a single factorisation.
    """
    ocodes, _ = _factorize(order_ids)
    no_order = ocodes < 0
    if no_order.any():
        ocodes[no_order] = ocodes.max(initial=-1) + 1 + np.arange(no_order.sum())
    n_orders = int(ocodes.max(initial=-1)) + 1
    owner = np.full(n_orders, -1, dtype=codes.dtype)
    owner[ocodes] = codes
    if (owner[ocodes] == codes).all():
        return ocodes, owner
    pair, _ = pd.factorize(codes.astype("int64") * n_orders + ocodes)  # an order id shared by customers
    pair_code = np.empty(int(pair.max(initial=-1)) + 1, dtype=codes.dtype)
    pair_code[pair] = codes
    return pair, pair_code


def _stamps_to_datetimes(stamps: np.ndarray, missing: np.ndarray, unit: str, tz) -> pd.Series:
    """int64 stamps (UTC for aware data) back to datetimes in time zone ``tz``; ``missing`` → NaT."""
    values = stamps.view(f"datetime64[{unit}]").copy()
    values[missing] = np.datetime64("NaT")
    s = pd.Series(values)
    return s.dt.tz_localize("UTC").dt.tz_convert(tz) if tz is not None else s


def rfm_summary(
    transactions: pd.DataFrame,
    *,
    customer_id_col: str = "customer_id",
    datetime_col: str = "date",
    monetary_value_col: str = "amount",
    order_id_col: str | None = None,
    as_of: Any = None,
    customers: Iterable | None = None,
) -> pd.DataFrame:
    """Recency, frequency and monetary value per customer.

    Returns one row per customer (index named ``customer_id_col``, sorted) with columns
    ``recency_days`` (float days from the last purchase to ``as_of``), ``frequency`` (number
    of purchases), ``monetary`` (net sum of amounts, returns included), ``first_purchase``
    and ``last_purchase``; ``as_of`` is kept in ``attrs["as_of"]``.

    - Only rows strictly before ``as_of`` count; default: the latest datetime + 1 day.
      ``as_of`` may be a string or a Timestamp; a naive ``as_of`` is read in the time zone of
      aware data, an aware one is converted to it (and taken at its wall-clock time for naive
      data). Rows without a customer id or datetime are ignored.
    - A purchase is a row — or with ``order_id_col`` an order of the customer (rows without an
      order id are orders of their own) — with a positive net amount; returns lower
      ``monetary`` but are not purchases. A missing amount counts as 0.
    - ``customers``: ids that must appear (e.g. every customer of the profile). Those without
      a purchase before ``as_of`` get NaN recency, frequency 0 and monetary 0 (or their net
      returns). Customers of the transactions that are not listed are kept too.

    Sums are taken in a fixed order (ascending amount), so the result does not depend on the
    order of the input rows, not even in the last floating-point bit, and net sums (per
    customer, per order) are rounded to 9 decimals so that returns cancelling their purchase
    net to exactly 0 rather than to floating-point residue such as 3.6e-15.

    Example:
        >>> import pandas as pd
        >>> tx = pd.DataFrame({"customer_id": ["a", "a", "a", "b", "b"],
        ...                    "date": ["2024-01-01", "2024-01-20", "2024-01-25", "2024-01-05", "2024-02-01"],
        ...                    "amount": [10.0, 25.0, -5.0, 8.0, 99.0]})
        >>> rfm_summary(tx, as_of="2024-01-31")[["recency_days", "frequency", "monetary"]]  # doctest: +NORMALIZE_WHITESPACE
                     recency_days  frequency  monetary
        customer_id
        a                    11.0          2      30.0
        b                    26.0          1       8.0
    """
    needed = [customer_id_col, datetime_col, monetary_value_col] + ([order_id_col] if order_id_col else [])
    _require_columns(transactions, needed, "transactions")

    dt = _as_datetime(transactions[datetime_col], datetime_col)
    tz = getattr(dt.dtype, "tz", None)
    ids = transactions[customer_id_col]
    usable = (ids.notna() & dt.notna()).to_numpy()
    if as_of is None:
        latest = dt[usable].max()
        as_of_ts = latest + pd.Timedelta(days=1) if latest is not pd.NaT else pd.NaT
    else:
        as_of_ts = _align_as_of(as_of, tz)
    keep = usable & (dt < as_of_ts).to_numpy() if as_of_ts is not pd.NaT else np.zeros(len(dt), bool)
    kept = (lambda s: s) if keep.all() else (lambda s: s[keep])  # no copy of a table that is kept whole

    try:
        amount = pd.to_numeric(kept(transactions[monetary_value_col]))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"The '{monetary_value_col}' column must hold numbers. Got a value that is not "
                         f"one ({exc}).") from None
    amount = np.nan_to_num(amount.to_numpy(dtype="float64", na_value=np.nan), nan=0.0)
    try:
        codes, uniques = _factorize(kept(ids), sort=True)
    except TypeError:  # ids of mixed types: sorted below
        codes, uniques = pd.factorize(kept(ids))
    k = len(uniques)
    unit = dt.dt.unit
    # datetimes as int64 (UTC for aware data) so that per-group min/max are plain ufunc.at calls
    stamps = kept(dt).to_numpy(dtype=f"datetime64[{unit}]").view("int64")

    # net amounts summed in ascending-amount order: identical result for any input row order
    # (equal amounts are interchangeable, so the sort need not be stable)
    by_amount = np.argsort(amount)
    monetary = np.round(np.bincount(codes[by_amount], weights=amount[by_amount], minlength=k), NET_DECIMALS)

    if order_id_col is None:
        purchase = amount > 0
        unit_codes, unit_stamps = codes[purchase], stamps[purchase]
    else:
        pair, pair_code = _customer_orders(kept(transactions[order_id_col]), codes)
        n_pairs = len(pair_code)
        net = np.round(np.bincount(pair[by_amount], weights=amount[by_amount], minlength=n_pairs), NET_DECIMALS)
        pair_stamp = np.full(n_pairs, np.iinfo("int64").max)
        np.minimum.at(pair_stamp, pair, stamps)  # an order's time is its earliest row
        purchase = net > 0
        unit_codes, unit_stamps = pair_code[purchase], pair_stamp[purchase]

    frequency = np.bincount(unit_codes, minlength=k).astype("int64")
    first_i8 = np.full(k, np.iinfo("int64").max)
    last_i8 = np.full(k, np.iinfo("int64").min)
    np.minimum.at(first_i8, unit_codes, unit_stamps)
    np.maximum.at(last_i8, unit_codes, unit_stamps)
    first = _stamps_to_datetimes(first_i8, frequency == 0, unit, tz)
    last = _stamps_to_datetimes(last_i8, frequency == 0, unit, tz)
    recency = ((as_of_ts - last) / pd.Timedelta(days=1)).astype("float64")

    index = pd.Index(uniques, name=customer_id_col)
    out = pd.DataFrame({"recency_days": recency.to_numpy(), "frequency": frequency, "monetary": monetary,
                        "first_purchase": first.to_numpy(), "last_purchase": last.to_numpy()}, index=index)
    if customers is not None:
        extra = pd.Index(list(customers)).dropna().unique()
        full = index.append(extra.difference(index, sort=False)) if len(index) else extra
        out = out.reindex(full)
    out = out.astype({"recency_days": "float64", "monetary": "float64", "first_purchase": dt.dtype,
                      "last_purchase": dt.dtype})
    out["frequency"] = out["frequency"].fillna(0).astype("int64")
    out["monetary"] = out["monetary"].fillna(0.0)
    if not out.index.is_monotonic_increasing:
        out = out.iloc[_sort_positions(out.index)]
    out.index.name = customer_id_col
    out.attrs["as_of"] = as_of_ts
    return out


# ----------------------------------------------------------------------------- scores

def _check_bins(bins: Any) -> int:
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or not 2 <= bins <= 9:
        raise ValueError(f"The 'bins' parameter must be an integer from 2 to 9 (one digit per score in "
                         f"rfm_cell). Got {bins!r} instead.")
    return int(bins)


def _quantile_score(values: np.ndarray, bins: int) -> np.ndarray:
    """1 + floor(bins * (rank_min - 1) / n): higher values score higher, ties score the same."""
    n = len(values)
    order = np.argsort(values)  # tied values get the same rank whatever order the sort leaves them in
    ordered = values[order]
    starts = np.ones(n, dtype=bool)
    starts[1:] = ordered[1:] != ordered[:-1]
    rank_min = np.empty(n, dtype="int64")  # 1 + number of values strictly smaller
    rank_min[order] = np.maximum.accumulate(np.where(starts, np.arange(n), 0)) + 1
    return 1 + (bins * (rank_min - 1)) // n


def rfm_scores(summary: pd.DataFrame, *, bins: int = 5) -> pd.DataFrame:
    """Add ``r_score``, ``f_score``, ``m_score`` (1..``bins``, ``bins`` = best) and ``rfm_cell`` ("545").

    Best means most recent (smallest ``recency_days``), most frequent and highest spend.
    Only customers with a purchase (``frequency`` > 0, recency and monetary known) are
    ranked; the others get NA scores and an NA ``rfm_cell``.

    **Tie rule.** ``score = 1 + floor(bins * (rank_min - 1) / n)`` where ``rank_min`` is the
    rank with ties given the lowest rank of their group (``rank(method="min")``) and ``n``
    the number of ranked customers: the score depends only on how many customers have a
    strictly worse value, so equal values always get equal scores and the row order of the
    input never matters. Without ties this gives quintiles (for ``bins=5``). With ties the
    groups are unbalanced, honestly: when 60% of customers bought once, all of them get
    F = 1 and the next frequency starts at F = 4 (F = 2 and 3 stay empty). The common recipe
    ``pd.qcut(x.rank(method="first"), 5)`` balances the groups by breaking ties by row
    position instead, so reordering the rows moves customers between segments. The lowest
    value always scores 1; the top score needs at least ``(bins - 1) / bins`` of the customers
    strictly below, so with fewer than ``bins`` customers (or a large tie at the top) the top
    scores stay empty.

    Example:
        >>> import pandas as pd
        >>> s = pd.DataFrame({"recency_days": [3.0, 10.0, 10.0, 40.0, 60.0, None],
        ...                   "frequency": [4, 1, 1, 2, 1, 0],
        ...                   "monetary": [120.0, 15.0, 30.0, 15.0, 8.0, 0.0]}, index=list("abcdef"))
        >>> rfm_scores(s)[["r_score", "f_score", "m_score", "rfm_cell"]]
           r_score  f_score  m_score rfm_cell
        a        5        5        5      555
        b        3        1        2      312
        c        3        1        4      314
        d        2        4        2      242
        e        1        1        1      111
        f     <NA>     <NA>     <NA>      NaN
    """
    bins = _check_bins(bins)
    _require_columns(summary, ["recency_days", "frequency", "monetary"], "summary")
    out = summary.copy()
    recency = pd.to_numeric(out["recency_days"]).to_numpy(dtype="float64", na_value=np.nan)
    frequency = pd.to_numeric(out["frequency"]).to_numpy(dtype="float64", na_value=np.nan)
    monetary = pd.to_numeric(out["monetary"]).to_numpy(dtype="float64", na_value=np.nan)
    scored = (frequency > 0) & ~np.isnan(recency) & ~np.isnan(monetary)
    for col, goodness in (("r_score", -recency), ("f_score", frequency), ("m_score", monetary)):
        values = np.zeros(len(out), dtype="int64")
        if scored.any():
            values[scored] = _quantile_score(goodness[scored], bins)
        out[col] = pd.array(values, dtype="Int64")
        out.loc[~scored, col] = pd.NA
    cell = (out["r_score"].astype("string") + out["f_score"].astype("string")
            + out["m_score"].astype("string"))
    out["rfm_cell"] = cell.astype("str")
    out.attrs["rfm_bins"] = bins
    return out


# ----------------------------------------------------------------------------- segment map

@dataclass(frozen=True)
class Segment:
    """One named segment: the R scores and F scores it covers and a suggested action."""

    name: str
    r: tuple[int, ...]
    f: tuple[int, ...]
    action: str = ""


def _parse_scores(value: Any, bins: int, where: str) -> tuple[int, ...]:
    """An integer, a list of integers or a range "lo-hi" → sorted tuple of scores in 1..bins."""
    out: list[int] = []
    items = value if isinstance(value, (list, tuple)) else [value]
    for item in items:
        if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            out.append(int(item))
        elif isinstance(item, str) and re.fullmatch(r"\s*\d+\s*(-\s*\d+\s*)?", item):
            lo, _, hi = item.partition("-")
            lo_i, hi_i = int(lo), int(hi or lo)
            if lo_i > hi_i:
                raise SegmentMapError(f"{where}: the range {item!r} must go from low to high.")
            out.extend(range(lo_i, hi_i + 1))
        else:
            raise SegmentMapError(f"{where}: scores must be an integer, a list of integers or a range "
                                  f"like '1-2'. Got {item!r} instead.")
    bad = sorted(set(s for s in out if not 1 <= s <= bins))
    if bad or not out:
        raise SegmentMapError(f"{where}: scores must be between 1 and {bins} (bins). Got {value!r} instead.")
    return tuple(sorted(set(out)))


@dataclass(frozen=True)
class SegmentMap:
    """Named segments on the (R score, F score) grid, checked on construction.

    Every one of the ``bins`` × ``bins`` cells must belong to exactly one segment; otherwise
    :class:`SegmentMapError` names the uncovered and the doubly covered cells. ``order`` lists
    every segment and the ``no_purchase`` label from best to worst.
    Build it with :func:`load_segment_map` or :meth:`from_dict`.
    """

    bins: int
    segments: tuple[Segment, ...]
    no_purchase: str = "Prospect (no purchase)"
    no_purchase_action: str = ""
    order: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        names = [s.name for s in self.segments]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise SegmentMapError(f"Segment names must be unique. Got {dupes} more than once.")
        if self.no_purchase in names:
            raise SegmentMapError(f"The no_purchase label {self.no_purchase!r} must differ from the segment names.")
        cover: dict[tuple[int, int], list[str]] = {(r, f): [] for r in range(1, self.bins + 1)
                                                   for f in range(1, self.bins + 1)}
        for s in self.segments:
            for r in s.r:
                for f in s.f:
                    if (r, f) not in cover:
                        raise SegmentMapError(f"Segment {s.name!r}: cell (R={r}, F={f}) is outside the "
                                              f"{self.bins} x {self.bins} grid.")
                    cover[(r, f)].append(s.name)
        holes = [f"(R={r}, F={f})" for (r, f), who in cover.items() if not who]
        overlaps = [f"(R={r}, F={f}) by {who}" for (r, f), who in cover.items() if len(who) > 1]
        if holes or overlaps:
            parts = []
            if holes:
                parts.append(f"cells covered by no segment: {', '.join(holes)}")
            if overlaps:
                parts.append(f"cells covered by more than one segment: {', '.join(overlaps)}")
            raise SegmentMapError("Every (R, F) combination must map to exactly one segment; " + "; ".join(parts) + ".")
        order = tuple(self.order) if self.order else (*names, self.no_purchase)
        expected = set(names) | {self.no_purchase}
        missing = [n for n in names + [self.no_purchase] if n not in order]
        unknown = [n for n in order if n not in expected]
        repeated = sorted({n for n in order if order.count(n) > 1})
        if missing or unknown or repeated:
            raise SegmentMapError(f"The 'order' must list every segment and the no_purchase label exactly once. "
                                  f"Missing: {missing}; unknown: {unknown}; repeated: {repeated}.")
        object.__setattr__(self, "order", order)

    @classmethod
    def from_dict(cls, spec: Any, where: str = "segment map") -> "SegmentMap":
        """Build from the YAML structure (see ``workbench/conf/rfm_segments.yaml``).

        >>> m = SegmentMap.from_dict({"bins": 2, "segments": [
        ...     {"name": "Active", "r": 2, "f": "1-2"}, {"name": "Lapsed", "r": [1], "f": [1, 2]}]})
        >>> m.order
        ('Active', 'Lapsed', 'Prospect (no purchase)')
        """
        if not isinstance(spec, dict):
            raise SegmentMapError(f"{where}: expected a mapping. Got {spec!r} instead.")
        allowed = {"bins", "segments", "no_purchase", "order"}
        unknown = sorted(set(spec) - allowed)
        if unknown:
            raise SegmentMapError(f"{where}: unknown keys {unknown}. Allowed: {sorted(allowed)}.")
        bins = spec.get("bins", 5)
        if isinstance(bins, bool) or not isinstance(bins, int) or not 2 <= bins <= 9:
            raise SegmentMapError(f"{where}: 'bins' must be an integer from 2 to 9. Got {bins!r} instead.")
        raw = spec.get("segments")
        if not isinstance(raw, list) or not raw:
            raise SegmentMapError(f"{where}: 'segments' must be a non-empty list. Got {raw!r} instead.")
        segments = []
        for i, s in enumerate(raw):
            w = f"{where}: segment {i + 1}"
            if not isinstance(s, dict) or not {"name", "r", "f"} <= set(s) or set(s) - {"name", "r", "f", "action"}:
                raise SegmentMapError(f"{w}: expected a mapping with keys name, r, f and optionally action. "
                                      f"Got {s!r} instead.")
            w = f"{where}: segment {s['name']!r}"
            segments.append(Segment(str(s["name"]), _parse_scores(s["r"], bins, w + " r"),
                                    _parse_scores(s["f"], bins, w + " f"), str(s.get("action", "") or "")))
        np_spec = spec.get("no_purchase", "Prospect (no purchase)")
        if isinstance(np_spec, dict):
            if "name" not in np_spec or set(np_spec) - {"name", "action"}:
                raise SegmentMapError(f"{where}: 'no_purchase' must be a label or a mapping with keys name and "
                                      f"action. Got {np_spec!r} instead.")
            np_name, np_action = str(np_spec["name"]), str(np_spec.get("action", "") or "")
        else:
            np_name, np_action = str(np_spec), ""
        order = spec.get("order") or ()
        if not isinstance(order, (list, tuple)):
            raise SegmentMapError(f"{where}: 'order' must be a list of segment names. Got {order!r} instead.")
        try:
            return cls(bins, tuple(segments), np_name, np_action, tuple(str(o) for o in order))
        except SegmentMapError as exc:
            raise SegmentMapError(f"{where}: {exc}") from None

    def grid(self) -> pd.DataFrame:
        """The segment name of every cell: rows R score (best first), columns F score.

        >>> load_segment_map().grid().loc[5, 1]
        'New'
        """
        cells = {(r, f): s.name for s in self.segments for r in s.r for f in s.f}
        scores = list(range(1, self.bins + 1))
        g = pd.DataFrame([[cells[(r, f)] for f in scores] for r in scores[::-1]], index=scores[::-1], columns=scores)
        g.index.name, g.columns.name = "r_score", "f_score"
        return g

    @property
    def actions(self) -> dict[str, str]:
        """Suggested action per segment (and for the no_purchase label), in ``order``."""
        a = {s.name: s.action for s in self.segments}
        a[self.no_purchase] = self.no_purchase_action
        return {n: a[n] for n in self.order}


def load_segment_map(path: str | Path | None = None) -> SegmentMap:
    """Read and check a segment map; default ``workbench/conf/rfm_segments.yaml`` (the classic R×F map).

    Raises :class:`SegmentMapError` naming the file and every (R, F) cell that no segment or
    more than one segment covers.

    Example:
        >>> m = load_segment_map()
        >>> m.bins, m.order[0], m.order[-1]
        (5, 'Champions', 'Prospect (no purchase)')
    """
    p = Path(path) if path is not None else DEFAULT_SEGMENT_MAP_PATH
    return SegmentMap.from_dict(yaml.safe_load(p.read_text(encoding="utf-8")), where=str(p))


def _resolve_map(segment_map: SegmentMap | str | Path | None) -> SegmentMap:
    if segment_map is None or isinstance(segment_map, (str, Path)):
        return load_segment_map(segment_map)
    if not isinstance(segment_map, SegmentMap):
        raise TypeError(f"The 'segment_map' parameter must be a SegmentMap, a path or None. "
                        f"Got {type(segment_map).__name__} instead.")
    return segment_map


def assign_segments(scores: pd.DataFrame, segment_map: SegmentMap | str | Path | None = None) -> pd.Series:
    """Segment name per customer from ``r_score`` and ``f_score``.

    Returns a categorical Series named ``segment`` whose categories are the map's ``order``
    (ordered best → worst, so ``.min()`` is the best segment present). Customers without
    scores (no purchase) get the map's ``no_purchase`` label.

    Example:
        >>> import pandas as pd
        >>> s = pd.DataFrame({"r_score": pd.array([5, 1, None], dtype="Int64"),
        ...                   "f_score": pd.array([5, 5, None], dtype="Int64")}, index=["a", "b", "c"])
        >>> assign_segments(s).tolist()
        ['Champions', "Can't Lose", 'Prospect (no purchase)']
    """
    m = _resolve_map(segment_map)
    _require_columns(scores, ["r_score", "f_score"], "scores")
    r = pd.to_numeric(scores["r_score"]).astype("Float64").to_numpy(dtype="float64", na_value=np.nan)
    f = pd.to_numeric(scores["f_score"]).astype("Float64").to_numpy(dtype="float64", na_value=np.nan)
    has = ~np.isnan(r) & ~np.isnan(f)
    ok = np.isin(r[has], np.arange(1, m.bins + 1)) & np.isin(f[has], np.arange(1, m.bins + 1))
    if not ok.all():
        bad = sorted({(int(a), int(b)) if a == int(a) and b == int(b) else (a, b)
                      for a, b in zip(r[has][~ok], f[has][~ok])})[:5]
        raise ValueError(f"Scores must be integers from 1 to {m.bins} (the segment map's bins). "
                         f"Got (r_score, f_score) {bad} instead.")
    position = {name: i for i, name in enumerate(m.order)}
    lookup = np.full((m.bins + 1, m.bins + 1), -1, dtype="int64")
    for s in m.segments:
        for rr in s.r:
            for ff in s.f:
                lookup[rr, ff] = position[s.name]
    codes = np.full(len(scores), position[m.no_purchase], dtype="int64")
    codes[has] = lookup[r[has].astype("int64"), f[has].astype("int64")]
    cat = pd.Categorical.from_codes(codes, categories=list(m.order), ordered=True)
    return pd.Series(cat, index=scores.index, name="segment")


def rfm_segments(
    transactions: pd.DataFrame,
    *,
    customer_id_col: str = "customer_id",
    datetime_col: str = "date",
    monetary_value_col: str = "amount",
    order_id_col: str | None = None,
    as_of: Any = None,
    customers: Iterable | None = None,
    segment_map: SegmentMap | str | Path | None = None,
) -> pd.DataFrame:
    """:func:`rfm_summary` + :func:`rfm_scores` + ``segment`` (:func:`assign_segments`) in one table.

    The number of score levels is the segment map's ``bins`` (5 in the default map).

    Example:
        >>> import pandas as pd
        >>> tx = pd.DataFrame({"customer_id": [1, 1, 2, 3, 4, 5, 5, 5],
        ...                    "amount": [10.0, 5.0, 80.0, 20.0, 35.0, 12.0, 30.0, 18.0],
        ...                    "date": pd.to_datetime(["2024-05-01", "2024-06-01", "2024-02-01", "2024-06-20",
        ...                                            "2024-04-11", "2024-03-01", "2024-05-05", "2024-06-18"])})
        >>> rfm_segments(tx)["segment"].tolist()
        ['Loyal', 'Lost', 'New', 'Hibernating', 'Loyal']
    """
    m = _resolve_map(segment_map)
    summary = rfm_summary(transactions, customer_id_col=customer_id_col, datetime_col=datetime_col,
                          monetary_value_col=monetary_value_col, order_id_col=order_id_col, as_of=as_of,
                          customers=customers)
    out = rfm_scores(summary, bins=m.bins)
    out["segment"] = assign_segments(out, m)
    out.attrs.update(summary.attrs)
    return out


# ----------------------------------------------------------------------------- summaries and figures

def _segments_in_order(rfm: pd.DataFrame, segment_col: str, segment_map: SegmentMap | None) -> pd.Series:
    seg = rfm[segment_col]
    if isinstance(seg.dtype, pd.CategoricalDtype) and seg.dtype.ordered:
        return seg
    order = list(_resolve_map(segment_map).order)
    extra = sorted(set(seg.dropna().astype(str)) - set(order))
    return pd.Series(pd.Categorical(seg.astype(object), categories=order + extra, ordered=True),
                     index=seg.index, name=segment_col)


def segment_summary(rfm: pd.DataFrame, *, segment_col: str = "segment",
                    segment_map: SegmentMap | str | Path | None = None) -> pd.DataFrame:
    """Per segment, in segment order (best first, empty segments included).

    Columns: ``customers``, ``customer_share``, ``revenue`` (sum of ``monetary``),
    ``revenue_share`` (of the total; NaN when the total is not positive), ``mean_monetary``,
    ``mean_recency_days``, ``mean_frequency`` and the map's suggested ``action``. Sizes sum to
    the number of customers. ``segment_map`` gives the order when ``segment`` is not an ordered
    categorical, and the actions.

    Example:
        >>> import pandas as pd
        >>> tx = pd.DataFrame({"customer_id": [1, 1, 2, 3, 4, 5, 5, 5],
        ...                    "amount": [10.0, 5.0, 80.0, 20.0, 35.0, 12.0, 30.0, 18.0],
        ...                    "date": pd.to_datetime(["2024-05-01", "2024-06-01", "2024-02-01", "2024-06-20",
        ...                                            "2024-04-11", "2024-03-01", "2024-05-05", "2024-06-18"])})
        >>> s = segment_summary(rfm_segments(tx))
        >>> s.loc[s["customers"] > 0, ["customers", "revenue", "revenue_share"]]  # doctest: +NORMALIZE_WHITESPACE
                     customers  revenue  revenue_share
        segment
        Loyal                2     75.0       0.357143
        New                  1     20.0       0.095238
        Hibernating          1     35.0       0.166667
        Lost                 1     80.0       0.380952
    """
    _require_columns(rfm, [segment_col, "monetary", "recency_days", "frequency"], "rfm")
    m = _resolve_map(segment_map)
    seg = _segments_in_order(rfm, segment_col, m)
    g = rfm[["monetary", "recency_days", "frequency"]].astype("float64").groupby(seg, observed=False, sort=True)
    out = pd.DataFrame({"customers": g.size().astype("int64"), "revenue": g["monetary"].sum(),
                        "mean_monetary": g["monetary"].mean(), "mean_recency_days": g["recency_days"].mean(),
                        "mean_frequency": g["frequency"].mean()})
    n, total = int(out["customers"].sum()), float(out["revenue"].sum())
    out.insert(1, "customer_share", out["customers"] / n if n else np.nan)
    out.insert(3, "revenue_share", out["revenue"] / total if total > 0 else np.nan)
    out["action"] = [m.actions.get(str(s), "") for s in out.index]
    out.index = pd.CategoricalIndex(out.index, categories=seg.cat.categories, ordered=True, name="segment")
    return out


def plot_segment_sizes(rfm: pd.DataFrame, *, segment_col: str = "segment",
                       segment_map: SegmentMap | str | Path | None = None, language: str = "en"):
    """Share of customers and share of revenue per segment, side by side (segments best → worst);
    titles, axis labels and segment names in ``language`` (:mod:`workbench.i18n`).

    Example:
        >>> import pandas as pd
        >>> tx = pd.DataFrame({"customer_id": [1, 1, 2, 3, 4, 5, 5, 5],
        ...                    "amount": [10.0, 5.0, 80.0, 20.0, 35.0, 12.0, 30.0, 18.0],
        ...                    "date": pd.to_datetime(["2024-05-01", "2024-06-01", "2024-02-01", "2024-06-20",
        ...                                            "2024-04-11", "2024-03-01", "2024-05-05", "2024-06-18"])})
        >>> fig = plot_segment_sizes(rfm_segments(tx))
        >>> [ax.get_xlabel() for ax in fig.axes]
        ['customers (% of all customers)', 'revenue (% of total net revenue)']
    """
    import matplotlib.pyplot as plt

    from ..i18n import check_language, name, number, t

    lang = check_language(language)
    s = segment_summary(rfm, segment_col=segment_col, segment_map=segment_map)
    labels = [name(i, lang) for i in s.index]
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.42 * len(s) + 1.6), sharey=True)
    y = np.arange(len(s))
    for ax, col, colour, xlabel in ((axes[0], "customer_share", "#4C72B0", t("chart.rfm_customers_x", lang)),
                                    (axes[1], "revenue_share", "#55A868", t("chart.rfm_revenue_x", lang))):
        values = (s[col].fillna(0) * 100).to_numpy()
        ax.barh(y, values, color=colour)
        for yi, v, c in zip(y, values, s["customers"]):
            ax.annotate(f"{v:.1f}%" + (f"  (n={c:,})" if col == "customer_share" else ""), (max(v, 0), yi),
                        xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
        ax.set_xlabel(xlabel)
        ax.set_xlim(min(0, values.min() * 1.1), max(values.max(), 1) * 1.3)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, labels)
    axes[0].invert_yaxis()
    axes[0].set_ylabel(t("chart.rfm_segment_y", lang))
    axes[0].set_title(t("chart.rfm_customers_title", lang))
    axes[1].set_title(t("chart.rfm_revenue_title", lang))
    fig.suptitle(t("chart.rfm_suptitle", lang, n=number(int(s["customers"].sum()), lang, compact=False)))
    fig.tight_layout()
    return fig


def plot_rf_heatmap(rfm: pd.DataFrame, *, value: str = "customers", bins: int | None = None,
                    segment_map: SegmentMap | str | Path | None = None):
    """R score × F score grid, annotated with customers (or mean monetary) and the cell's segment.

    ``value``: ``"customers"`` (number of customers per cell) or ``"monetary"`` (mean net
    monetary value per customer of the cell). Customers without scores are not shown.
    ``bins`` defaults to the one :func:`rfm_scores` used (kept in ``attrs``), else the
    largest score present.

    Example:
        >>> import pandas as pd
        >>> tx = pd.DataFrame({"customer_id": [1, 1, 2, 3, 4, 5, 5, 5],
        ...                    "amount": [10.0, 5.0, 80.0, 20.0, 35.0, 12.0, 30.0, 18.0],
        ...                    "date": pd.to_datetime(["2024-05-01", "2024-06-01", "2024-02-01", "2024-06-20",
        ...                                            "2024-04-11", "2024-03-01", "2024-05-05", "2024-06-18"])})
        >>> fig = plot_rf_heatmap(rfm_segments(tx), value="monetary")
        >>> fig.axes[0].get_xlabel()
        'F score (5 = most frequent)'
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    if value not in ("customers", "monetary"):
        raise ValueError(f"The 'value' parameter must be 'customers' or 'monetary'. Got {value!r} instead.")
    _require_columns(rfm, ["r_score", "f_score"] + (["monetary"] if value == "monetary" else []), "rfm")
    scored = rfm.dropna(subset=["r_score", "f_score"])
    b = bins or rfm.attrs.get("rfm_bins") or int(max(scored["r_score"].max(), scored["f_score"].max(), 2)
                                                 if len(scored) else 5)
    scores = list(range(1, b + 1))
    r, f = scored["r_score"].astype("int64"), scored["f_score"].astype("int64")
    if value == "customers":
        grid = pd.crosstab(r, f).reindex(index=scores[::-1], columns=scores, fill_value=0)
        text = grid.map(lambda v: f"{v:,}")
        cbar = "customers"
    else:
        grid = scored["monetary"].astype("float64").groupby([r, f]).mean().unstack().reindex(
            index=scores[::-1], columns=scores)
        text = grid.map(lambda v: "" if pd.isna(v) else f"{v:,.0f}")
        cbar = "mean monetary value per customer (currency units)"
    try:
        names = _resolve_map(segment_map).grid()
        names = names if names.shape == grid.shape else None
    except (SegmentMapError, OSError):
        names = None
    if names is not None:
        text = text + "\n" + names.reindex(index=grid.index, columns=grid.columns).to_numpy()
    fig, ax = plt.subplots(figsize=(1.6 * b + 2.5, 1.1 * b + 1.5))
    sns.heatmap(grid.astype("float64"), annot=text.to_numpy(), fmt="", cmap="Blues", ax=ax, linewidths=0.5,
                annot_kws={"fontsize": 7}, cbar_kws={"label": cbar})
    ax.set_xlabel(f"F score ({b} = most frequent)")
    ax.set_ylabel(f"R score ({b} = most recent)")
    ax.set_title("Customers per R × F cell" if value == "customers" else "Mean monetary value per R × F cell")
    fig.tight_layout()
    return fig


def plot_segment_value(rfm: pd.DataFrame, *, segment_col: str = "segment",
                       segment_map: SegmentMap | str | Path | None = None):
    """Distribution of monetary value per segment (letter-value "boxen" plots on a log axis, best on top).

    Customers with a monetary value of 0 or less (prospects, full returns) cannot be shown on a
    log axis; the title says how many were left out.

    Example:
        >>> import pandas as pd
        >>> tx = pd.DataFrame({"customer_id": [1, 1, 2, 3, 4, 5, 5, 5],
        ...                    "amount": [10.0, 5.0, 80.0, 20.0, 35.0, 12.0, 30.0, 18.0],
        ...                    "date": pd.to_datetime(["2024-05-01", "2024-06-01", "2024-02-01", "2024-06-20",
        ...                                            "2024-04-11", "2024-03-01", "2024-05-05", "2024-06-18"])})
        >>> fig = plot_segment_value(rfm_segments(tx))
        >>> fig.axes[0].get_xscale()
        'log'
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    _require_columns(rfm, [segment_col, "monetary"], "rfm")
    seg = _segments_in_order(rfm, segment_col, _resolve_map(segment_map))
    positive = rfm["monetary"].astype("float64") > 0
    data = pd.DataFrame({"segment": seg[positive].cat.remove_unused_categories(),
                         "monetary": rfm.loc[positive, "monetary"].astype("float64")})
    fig, ax = plt.subplots(figsize=(9, 0.45 * max(data["segment"].cat.categories.size, 1) + 1.8))
    if len(data):
        sns.boxenplot(data=data, x="monetary", y="segment", ax=ax, log_scale=True, color="#8DA0CB",
                      linewidth=0.6, flier_kws={"s": 2})
    else:
        ax.set_xscale("log")
    ax.set_xlabel("net monetary value per customer (currency units, log scale)")
    ax.set_ylabel("segment (best at the top)")
    left_out = int((~positive).sum())
    ax.set_title("Monetary value per segment" + (f" ({left_out:,} customers with value ≤ 0 not shown)"
                                                  if left_out else ""))
    ax.grid(axis="x", alpha=0.3, which="both")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- migration

@dataclass
class Migration:
    """How customers moved between the segments of two runs (see :func:`segment_migration`).

    ``matrix``: counts, previous segment (rows, plus ``"(new)"`` for customers only in the
    current run) × current segment (columns, plus ``"(gone)"`` for customers only in the
    previous run). ``movers``: one row per customer with ``previous``, ``current`` and
    ``direction`` ("up" = towards the front of ``order``, "down", "same", "new", "gone").
    """

    matrix: pd.DataFrame
    movers: pd.DataFrame
    order: tuple[str, ...]

    def shares(self) -> pd.DataFrame:
        """``matrix`` divided by its row sums (share of each previous segment's customers); empty rows are NaN."""
        totals = self.matrix.sum(axis=1)
        return self.matrix.div(totals.where(totals > 0), axis=0)

    def plot(self, *, ax=None, language: str = "en"):
        """Heatmap of the row-normalised shares, annotated with share (%) and count; empty cells
        are not annotated and empty rows and columns are left out. Labels and segment names in
        ``language`` (:mod:`workbench.i18n`).

        Returns the Figure.
        """
        import matplotlib.pyplot as plt
        import seaborn as sns

        from ..i18n import check_language, name, t

        lang = check_language(language)

        m = self.matrix
        keep_rows, keep_cols = m.sum(axis=1) > 0, m.sum(axis=0) > 0
        shares = self.shares().loc[keep_rows, keep_cols] * 100
        counts = m.loc[keep_rows, keep_cols]
        if ax is None:
            _, ax = plt.subplots(figsize=(0.9 * shares.shape[1] + 4, 0.55 * shares.shape[0] + 2.5))
        text = (shares.map(lambda v: f"{v:.0f}%") + "\n" + counts.map(lambda v: f"n={v:,}")).where(counts > 0, "")
        special = {"(new)": t("chart.migration_new", lang), "(gone)": t("chart.migration_gone", lang)}
        shown = shares.astype("float64").rename(index=lambda v: special.get(str(v)) or name(v, lang),
                                                columns=lambda v: special.get(str(v)) or name(v, lang))
        sns.heatmap(shown, annot=text.to_numpy(), fmt="", cmap="Blues", vmin=0, vmax=100,
                    ax=ax, linewidths=0.5, annot_kws={"fontsize": 7},
                    cbar_kws={"label": t("chart.migration_cbar", lang)})
        ax.set_xlabel(t("chart.migration_x", lang))
        ax.set_ylabel(t("chart.migration_y", lang))
        d = self.movers["direction"].value_counts()
        ax.set_title(t("chart.migration_title", lang, **{k: f"{d.get(k, 0):,}" for k in
                                                          ("up", "down", "same", "new", "gone")}))
        ax.tick_params(axis="x", labelrotation=45)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
        ax.figure.tight_layout()
        return ax.figure


def _segment_series(x: pd.DataFrame | pd.Series, segment_col: str, what: str) -> pd.Series:
    if isinstance(x, pd.DataFrame):
        _require_columns(x, [segment_col], what)
        s = x[segment_col]
    elif isinstance(x, pd.Series):
        s = x
    else:
        raise TypeError(f"The '{what}' parameter must be a DataFrame or Series indexed by customer id. "
                        f"Got {type(x).__name__} instead.")
    dupes = s.index[s.index.duplicated()].unique()
    if len(dupes):
        raise ValueError(f"The '{what}' segments must have one row per customer id. Got duplicated ids "
                         f"{list(dupes[:5])} instead.")
    return s.dropna()


def segment_migration(
    previous: pd.DataFrame | pd.Series,
    current: pd.DataFrame | pd.Series,
    *,
    segment_col: str = "segment",
    order: Iterable[str] | None = None,
) -> Migration:
    """Transition matrix and per-customer direction between the segments of two runs.

    ``previous`` and ``current`` are indexed by customer id (DataFrames with ``segment_col``
    or Series). Customers with a missing segment count as absent from that run. ``order``
    (best → worst) defaults to the categories of an ordered categorical segment column
    (current, else previous), else the default segment map's order; a segment not in the
    order raises an error naming it.

    Example:
        >>> import pandas as pd
        >>> prev = pd.Series({"a": "Champions", "b": "At Risk", "c": "Lost"})
        >>> cur = pd.Series({"a": "Loyal", "b": "Champions", "d": "New"})
        >>> mig = segment_migration(prev, cur)
        >>> mig.movers
          customer_id   previous    current direction
        0           a  Champions      Loyal      down
        1           b    At Risk  Champions        up
        2           c       Lost        NaN      gone
        3           d        NaN        New       new
        >>> int(mig.matrix.loc["(new)", "New"]), int(mig.matrix.loc["Lost", "(gone)"])
        (1, 1)
    """
    prev = _segment_series(previous, segment_col, "previous")
    cur = _segment_series(current, segment_col, "current")
    if order is None:
        for s in (current if isinstance(current, pd.Series) else current[segment_col],
                  previous if isinstance(previous, pd.Series) else previous[segment_col]):
            if isinstance(s.dtype, pd.CategoricalDtype) and s.dtype.ordered:
                order = [str(c) for c in s.dtype.categories]
                break
        else:
            order = load_segment_map().order
    order = tuple(str(o) for o in order)
    if len(set(order)) != len(order):
        raise ValueError(f"The 'order' parameter must list each segment once. Got {list(order)} instead.")
    prev, cur = prev.astype(str), cur.astype(str)
    unknown = sorted((set(prev) | set(cur)) - set(order))
    if unknown:
        raise ValueError(f"Segments {unknown} are not in the 'order' {list(order)}. Pass order= listing "
                         f"every segment from best to worst.")
    ids = prev.index.union(cur.index, sort=False).unique()
    ids = ids[_sort_positions(ids)]
    p = prev.reindex(ids).to_numpy(dtype=object)
    c = cur.reindex(ids).to_numpy(dtype=object)
    rank = {name: i for i, name in enumerate(order)}
    p_missing, c_missing = pd.isna(p), pd.isna(c)
    pr = np.array([rank.get(v, -1) if isinstance(v, str) else -1 for v in p])
    cr = np.array([rank.get(v, -1) if isinstance(v, str) else -1 for v in c])
    direction = np.select([p_missing, c_missing, pr == cr, cr < pr], ["new", "gone", "same", "up"], "down")
    id_name = ids.name or prev.index.name or cur.index.name or "customer_id"
    cats = pd.CategoricalDtype(list(order), ordered=True)
    movers = pd.DataFrame({id_name: ids.to_numpy(), "previous": pd.Series(p, dtype=object).astype(cats),
                           "current": pd.Series(c, dtype=object).astype(cats), "direction": direction})
    rows = np.where(p_missing, NEW, p).astype(object)
    cols = np.where(c_missing, GONE, c).astype(object)
    matrix = pd.crosstab(pd.Series(rows, name="previous"), pd.Series(cols, name="current"))
    matrix = matrix.reindex(index=[*order, NEW], columns=[*order, GONE], fill_value=0).astype("int64")
    matrix.index.name, matrix.columns.name = "previous", "current"
    return Migration(matrix=matrix, movers=movers, order=order)
