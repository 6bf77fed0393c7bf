"""The customer 360 profile: one row per OneID, from whatever the canonical layer holds.

Built only from the canonical layer (:mod:`workbench.canonical`), so its columns follow the
brand's data: a brand with only orders gets an orders-only profile; a brand with a live-stream
channel gets live-stream columns. Blocks, each present when its input exists:

- **always**: ``n_records``, ``first_seen`` / ``last_seen``, ``channels``, ``n_channels``,
  ``n_identifiers``, ``is_known`` (a member, or a member / customer number — an identifier of
  kind ``unique`` — a phone or an e-mail anywhere);
- **profile** (a profile mapping): ``is_member``, ``member_id``, ``member_level`` (the latest
  profile record *updated* before as_of — a snapshot field), ``member_since``;
- **traits** (any mapping with person traits): ``name``, ``gender``, ``birth_date``, ``age``,
  ``city`` by a declared rule — ``"source_priority"`` (profile mappings first, then the others
  in mapping order; within a source the most recent record) or ``"most_recent"``; contacts
  ``phone`` / ``email``: a profile's value first, else the value on most records (ties: the
  latest); masked forms ``*_masked`` for display;
- **orders**: ``orders``, ``cancelled_orders``, ``refunded_orders``, ``gross_revenue``,
  ``refunds``, ``net_revenue``, ``avg_order_value``, ``first_order_at``, ``last_order_at``,
  ``days_since_last_order``, ``favourite_category``, ``top_categories``,
  ``revenue_<sales channel>`` and ``main_sales_channel`` — from
  :meth:`~workbench.canonical.CanonicalLayer.purchases`, the one definition of an order;
- **events**, per canonical event type present (``<type>`` is its slug, e.g.
  ``live_stream_watched``): ``<type>`` (count, quantity-weighted), ``<type>_minutes`` (when the
  type carries durations), ``<type>_value`` (when it carries money), ``last_<type>_at``; and
  ``sessions`` (digital events more than ``session_gap_minutes`` apart start a new one),
  ``email_open_rate`` / ``email_click_rate`` (campaigns opened / clicked per campaign sent),
  ``wechat_following`` (the latest follow is later than the latest unfollow),
  ``problem_tickets`` (service tickets in the analysis settings' problem categories),
  ``service_rating`` (mean rating), ``last_touch_at`` (latest event of any kind);
- **consents**: ``consent_<purpose>`` per purpose the data knows — the consent ledger's rule
  (:mod:`workbench.privacy.consent`; latest event wins; True / False / unknown).

``as_of`` drops every row dated at or after it (undated rows too), so the same builder gives
leakage-free model features; ages and "days since" are measured at it (default: the day after
the latest dated row). The data dictionary — meaning, source channels, unit, personal-data
class of every column — is generated with the profile (:func:`data_dictionary`).

Example:
    >>> from workbench.canonical import load_canonical
    >>> profile = build_customer_360(load_canonical(), as_of="2026-11-01")   # doctest: +SKIP
    >>> profile.loc[profile["orders"] > 0, "net_revenue"].sum()               # doctest: +SKIP
"""

from __future__ import annotations

import json
import time
from copy import deepcopy
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from .canonical import TIME_COLUMN, CanonicalLayer, load_canonical, totals_from_cleaned
from .config import Paths, get_paths
from .roles import EVENT_TYPES, SESSION_FAMILIES, TRAITS, event_slug
from .runconfig import resolve_engine
from .timeutil import to_utc

__all__ = ["Column", "ComputedBlocks", "DEMOGRAPHIC_RULES", "SCORE_DICTIONARY", "build_customer_360", "data_dictionary",
           "load_customer_360", "public_view", "reconcile", "run_customer_360"]

DEMOGRAPHIC_RULES = ("source_priority", "most_recent")
_DAY = pd.Timedelta(days=1)
MAX_SALES_CHANNEL_COLUMNS = 8


@dataclass(frozen=True)
class Column:
    """One column of the profile, as the data dictionary shows it."""

    name: str
    meaning: str
    sources: str
    unit: str = ""
    pii: str = "none"


#: Score columns the model stages write (``scores_<task>.parquet``), for dictionaries of joined views.
SCORE_DICTIONARY: tuple[Column, ...] = (
    Column("churn_risk", "Probability of no paid order in the churn horizon (active customers; notebook 07)",
           "churn model", "probability 0–1"),
    Column("churn_risk_decile", "Decile of churn_risk, 1 = highest risk", "churn model", "decile"),
    Column("purchase_propensity", "Probability of a paid order in the propensity horizon (known persons; "
           "notebook 08)", "propensity model", "probability 0–1"),
    Column("purchase_propensity_decile", "Decile of purchase_propensity, 1 = most likely to buy",
           "propensity model", "decile"),
)


@dataclass(frozen=True)
class ComputedBlocks:
    """Whole blocks of the profile computed by another engine (the Spark engine's
    :func:`workbench.engine.spark_360.spark_customer_aggregates`), with what their data dictionary
    needs. :func:`build_customer_360` takes these blocks' values from here, computes the others
    and describes every column itself, so the profile is the same whichever engine computed it.

    ``values``: column ``oneid`` (the profile's OneIDs, sorted, as :func:`build_customer_360`
    gives them) and every column of each block it covers (always-present, orders, events), and
    may have ``has_unique_identifier`` (a member / customer number dated before the as-of date: the
    part of ``is_known`` read from the identifiers). When it covers the always-present block, its
    OneIDs are the profile's population, so the build does not read the records or identifiers;
    ``sources``: the channels behind them at the as-of date — ``"records"``, ``"purchases"``,
    ``"events"`` (sorted lists) and ``"event_types"`` (``{event type: channels}`` over the whole
    layer); ``event_types``: the layer's event types as :func:`event_universe` gives them.

    Example:
        >>> blocks = ComputedBlocks(pd.DataFrame({"oneid": ["a"], "n_records": [3]}), {"records": ["shop"]})
        >>> blocks.columns
        ['n_records']
    """

    values: pd.DataFrame
    sources: dict[str, Any]
    event_types: pd.DataFrame | None = None

    @property
    def columns(self) -> list[str]:
        """The profile columns these blocks give."""
        return [c for c in self.values.columns if c != "oneid"]


def _column(name: str, meaning: str, sources: str | list[str], unit: str = "", pii: str = "none") -> Column:
    """A dictionary entry; a list of source channels is shown comma-separated."""
    return Column(name, meaning, ", ".join(sources) if isinstance(sources, list) else sources, unit, pii)


class _Profile:
    """Collects the profile's columns (aligned on the population index) and their dictionary.

    ``pos_of`` maps the layer's person codes (:class:`_Persons`) to rows of the profile (-1: a
    OneID without records before the as-of date, so not in the profile); without one it is made
    from ``layer`` when a block first needs it. ``computed``: blocks computed by another engine
    (:class:`ComputedBlocks`, its values indexed like the profile)."""

    def __init__(self, index: pd.Index, pos_of: np.ndarray | None = None, computed: ComputedBlocks | None = None,
                 layer: CanonicalLayer | None = None):
        self.index = index
        self.n = len(index)
        self._pos_of = pos_of
        self._layer = layer
        self.data: dict[str, Any] = {}
        self.dictionary: list[Column] = []
        self.computed = computed

    @property
    def pos_of(self) -> np.ndarray:
        if self._pos_of is None:
            at = self.index.get_indexer(_persons(self._layer).index)
            self._pos_of = np.append(at, -1).astype(np.int64)   # the last entry: person code -1
        return self._pos_of

    def add(self, name: str, values: Any, meaning: str, sources: str | list[str], unit: str = "",
            pii: str = "none") -> None:
        self.put([_column(name, meaning, sources, unit, pii)], {name: values})

    def put(self, columns: list[Column], values: dict[str, Any]) -> None:
        """Add ``columns`` (their dictionary entries, in order) with their ``values`` by name."""
        for col in columns:
            v = values[col.name]
            if isinstance(v, pd.Series) and v.index is not self.index:
                v = v.reindex(self.index)
            self.data[col.name] = v
            self.dictionary.append(col)

    def taken(self, names: list[str]) -> dict[str, pd.Series] | None:
        """The values of a block's columns ``names`` from the computed blocks; None when they do
        not cover this block (it is computed here)."""
        if self.computed is None:
            return None
        have = self.computed.values
        there = [c for c in names if c in have.columns]
        if not there:
            return None
        if len(there) < len(names):
            missing = [c for c in names if c not in have.columns]
            raise ValueError(f"The computed blocks give the columns {there} of a profile block but not {missing}: "
                             "give every column of a block or none.")
        return {c: pd.Series(have[c].array, index=self.index, name=c) for c in names}

    def sources(self, key: str) -> Any:
        """The channels the computed blocks name for ``key`` (see :class:`ComputedBlocks`)."""
        if key not in self.computed.sources:
            raise ValueError(f"The computed blocks' 'sources' lack {key!r}: they have "
                             f"{sorted(self.computed.sources)}.")
        return self.computed.sources[key]

    def series(self, values: Any, dtype: Any = None) -> pd.Series:
        """A column aligned on the profile's rows."""
        return pd.Series(values, index=self.index, dtype=dtype)

    def frame(self) -> pd.DataFrame:
        df = pd.DataFrame(self.data, index=self.index)
        for c in df.columns:  # counts of Arrow-backed booleans come back as Arrow integers: plain numpy
            if isinstance(df[c].dtype, pd.ArrowDtype) and pd.api.types.is_integer_dtype(df[c].dtype):
                df[c] = df[c].astype("int64")
        df.index.name = "oneid"
        return df.reset_index()


def _channels(df: pd.DataFrame) -> list[str]:
    return sorted(df["channel"].dropna().unique().tolist()) if len(df) else []


def _days(cutoff: pd.Timestamp, ts: pd.Series) -> pd.Series:
    return (cutoff - ts).dt.total_seconds() / 86400.0


# ----------------------------------------------------------------------------- tables as codes
# The profile is built from NumPy arrays of the canonical tables, made once per layer and kept
# with it (CanonicalLayer.memo): each row's person as a code into the layer's sorted OneIDs,
# times as datetime64, low-cardinality strings as codes. A view at an as-of date is then a
# boolean mask over these arrays, so profiles at many dates (model features at ~10 cutoffs)
# cost little more than one. Rows keep their table order, so sums (pandas' compensated sums
# per group, in row order) and ties come out exactly as grouping the tables themselves.
_NAT = np.iinfo(np.int64).min
_MAX = np.iinfo(np.int64).max


def _utc64(s: pd.Series) -> np.ndarray:
    """A UTC timestamp column as naive datetime64[us] values (UTC), NaT kept."""
    return s.dt.tz_convert("UTC").dt.tz_localize(None).dt.as_unit("us").to_numpy()


def _np_time(ts: pd.Timestamp) -> np.datetime64:
    """A UTC timestamp as a NumPy time comparable with :func:`_utc64` values (NaT compares False)."""
    return ts.tz_convert("UTC").tz_localize(None).to_datetime64()


def _as_utc(values: np.ndarray) -> pd.arrays.DatetimeArray:
    return pd.array(values.astype("datetime64[us]")).tz_localize("UTC")


def _codes(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, names)``: each value's code (-1 when missing) and the distinct values (object array)."""
    codes, names = pd.factorize(s)
    return codes.astype(np.int64), np.asarray(names, dtype=object)


def _sorted_codes(s: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Codes of a string column whose order is the names' order (Python's, as :func:`sorted`)."""
    codes, names = _codes(s)
    order = sorted(range(len(names)), key=lambda i: names[i])
    rank = np.empty(len(names) + 1, np.int64)
    rank[order] = np.arange(len(names))
    rank[-1] = -1
    return rank[codes], [names[i] for i in order]


class _Persons:
    """The layer's OneIDs (those of its records, sorted): a profile at any date is a subset."""

    def __init__(self, layer: CanonicalLayer):
        self.ids = np.sort(layer.table("records")["oneid"].unique().astype(str))
        self.index = pd.Index(self.ids, dtype="string")

    def codes(self, oneid: pd.Series) -> np.ndarray:
        """Each value's person code (-1: missing, or not a OneID of the records)."""
        codes, names = pd.factorize(oneid)
        at = self.index.get_indexer(pd.Index(names, dtype="string")) if len(names) else np.zeros(0, np.int64)
        return np.where(codes >= 0, np.append(at, -1)[codes], -1).astype(np.int64)


def _persons(layer: CanonicalLayer) -> _Persons:
    return layer.memo(("customer_360", "persons"), lambda: _Persons(layer))


class _Coded:
    """Arrays of one canonical table (see above); columns are coded when first asked for."""

    def __init__(self, layer: CanonicalLayer, name: str):
        self.layer, self.name = layer, name
        df = layer.table(name)
        self.rows = len(df)
        self.person = _persons(layer).codes(df["oneid"])
        self.t = _utc64(df[TIME_COLUMN[name]])
        self._cols: dict[str, Any] = {}

    def col(self, name: str, make: Any = None) -> Any:
        """A derived column, made once (default: the column's sorted codes and names)."""
        if name not in self._cols:
            df = self.layer.table(self.name)
            self._cols[name] = make(df) if make is not None else _sorted_codes(df[name])
        return self._cols[name]

    def floats(self, name: str) -> np.ndarray:
        return self.col(f"float:{name}", lambda df: df[name].to_numpy(np.float64, na_value=np.nan))

    def kept(self, cutoff: pd.Timestamp | None) -> np.ndarray | None:
        """Positions of the rows dated before ``cutoff`` (None: every row)."""
        if cutoff is None:
            return None
        return np.flatnonzero(self.t < _np_time(cutoff))


def _coded(layer: CanonicalLayer, name: str) -> _Coded:
    return layer.memo(("customer_360", "table", name), lambda: _Coded(layer, name))


def _take(a: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
    return a if rows is None else a[rows]


def _present(codes: np.ndarray, names: list[str]) -> list[str]:
    """The names whose code occurs (sorted)."""
    codes = codes[codes >= 0]
    return [names[i] for i in np.flatnonzero(np.bincount(codes, minlength=len(names)))]


def _tmax(pos: np.ndarray, t: np.ndarray, n: int) -> np.ndarray:
    """Latest time per profile row (NaT: none); rows with pos < 0 are ignored."""
    out = np.full(n, _NAT, np.int64)
    ok = pos >= 0
    np.maximum.at(out, pos[ok], t[ok].view(np.int64))   # NaT is the smallest int64: never the max
    return out.view("datetime64[us]")


def _tmin(pos: np.ndarray, t: np.ndarray, n: int) -> np.ndarray:
    """Earliest time per profile row (NaT: none dated)."""
    out = np.full(n, _MAX, np.int64)
    v = t.view(np.int64)
    ok = (pos >= 0) & (v != _NAT)
    np.minimum.at(out, pos[ok], v[ok])
    out[out == _MAX] = _NAT
    return out.view("datetime64[us]")


def _count(pos: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(pos[pos >= 0], minlength=n).astype(np.int64)


def _group_sums(key: np.ndarray, values: dict[str, np.ndarray], how: str = "sum") -> pd.DataFrame:
    """pandas' grouped sums (or means) of ``values`` by integer ``key`` — the same compensated
    summation, over each group's rows in order, as grouping the table by OneID does."""
    g = pd.DataFrame(values).groupby(key, sort=False)
    return g.sum() if how == "sum" else g.mean()


# ----------------------------------------------------------------------------- blocks
def _describe_core(records_channels: list[str]) -> list[Column]:
    """The always-present columns; ``records_channels``: the channels of the records before the as-of date."""
    return [_column("n_records", "Source records linked to this OneID", "identity (all channels)", "records"),
            _column("first_seen", "Earliest dated record of any channel", "all channels", "UTC timestamp"),
            _column("last_seen", "Latest dated record of any channel", "all channels", "UTC timestamp"),
            _column("channels", "Channels the person was seen in, comma-separated", records_channels),
            _column("n_channels", "Number of channels the person was seen in", records_channels, "channels"),
            _column("n_identifiers", "Distinct identifier values linked (the identity settings' identifiers)",
                    "identity (all channels)", "values")]


_CORE_COLUMNS = [c.name for c in _describe_core([])]


def _core(p: _Profile, layer: CanonicalLayer, rec: _Coded, rows: np.ndarray | None,
          cutoff: pd.Timestamp | None) -> None:
    """The always-present block (local engine; computed blocks covering it are taken in the build)."""
    chan, names = rec.col("channel")
    p.put(_describe_core(_present(_take(chan, rows), names)), _core_values(p, layer, rec, rows, cutoff))


def _core_values(p: _Profile, layer: CanonicalLayer, rec: _Coded, rows: np.ndarray | None,
                 cutoff: pd.Timestamp | None) -> dict[str, pd.Series]:
    """The always-present columns' values (local engine)."""
    pos = p.pos_of[_take(rec.person, rows)]
    t = _take(rec.t, rows)
    chan, names = rec.col("channel")
    chan = _take(chan, rows)
    out = {"n_records": p.series(_count(pos, p.n)), "first_seen": p.series(_as_utc(_tmin(pos, t, p.n))),
           "last_seen": p.series(_as_utc(_tmax(pos, t, p.n)))}
    if len(names) <= 62:  # each person's set of channels as bits: one string per distinct set
        bits = np.zeros(p.n, np.int64)
        np.bitwise_or.at(bits, pos, np.left_shift(1, chan))
        sets, which = np.unique(bits, return_inverse=True)
        joined = np.array([",".join(names[j] for j in range(len(names)) if b >> j & 1) for b in sets.tolist()],
                          dtype=object)
        out["channels"] = p.series(pd.array(joined[which.reshape(-1)], dtype="string"))
        out["n_channels"] = p.series(np.bitwise_count(bits).astype(np.int64))
    else:
        pairs = pd.DataFrame({"pos": pos, "channel": np.asarray(names, dtype=object)[chan]}).drop_duplicates()
        pairs = pairs.sort_values(["pos", "channel"])
        by = pairs.groupby("pos", sort=True)["channel"]
        out["channels"] = p.series(pd.array(by.agg(",".join).reindex(range(p.n)).to_numpy(), dtype="string"))
        out["n_channels"] = p.series(by.size().reindex(range(p.n), fill_value=0).to_numpy(np.int64))
    ids = _coded(layer, "identifiers")
    first = ids.col("first_seen_values", lambda df: _first_seen_values(ids, df))
    person = first["person"] if cutoff is None else first["person"][first["t"] < _np_time(cutoff)]
    out["n_identifiers"] = p.series(_count(p.pos_of[person], p.n))
    return out


def _first_seen_values(ids: _Coded, df: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each distinct (person, identifier, value) of the identifiers with its earliest dated time
    (NaT when never dated): it counts at an as-of date when that time is before it."""
    kind, kinds = ids.col("identifier")
    value, values = pd.factorize(df["value_hash"].to_numpy())
    nk, nv = len(kinds) + 1, max(len(values), 1)
    key = ((ids.person + 1) * nk + (kind + 1)) * nv + value      # one integer per distinct triple
    first = pd.Series(ids.t).groupby(key, sort=False).min()
    return {"person": first.index.to_numpy(np.int64) // (nk * nv) - 1, "t": first.to_numpy()}


def _covers_core(computed: ComputedBlocks) -> bool:
    return isinstance(computed, ComputedBlocks) and any(c in computed.values.columns for c in _CORE_COLUMNS)


def _population(computed: ComputedBlocks) -> pd.Index:
    """The profile's OneIDs as blocks covering the always-present columns list them (sorted, unique)."""
    if "oneid" not in computed.values.columns:
        raise ValueError("The computed blocks' values lack the column 'oneid'. Columns present: "
                         f"{list(computed.values.columns)}.")
    ids = pd.Index(computed.values["oneid"].astype("string"), name="oneid")
    if ids.hasnans or not ids.is_unique or not ids.is_monotonic_increasing:
        raise ValueError("The computed blocks' OneIDs must be the profile's: present, unique and sorted. Got "
                         f"{int(ids.isna().sum())} missing, {int(ids.duplicated().sum())} repeated"
                         f"{'' if ids.is_monotonic_increasing else ', not sorted'}.")
    return ids


_KNOWN_COLUMN = "has_unique_identifier"


def _has_unique_identifier(p: _Profile, layer: CanonicalLayer, cutoff: pd.Timestamp | None) -> np.ndarray:
    """Per profile row: an identifier value of a unique kind (member / customer number) dated
    before ``cutoff`` — from the computed blocks when they give it, else from the identifiers."""
    if p.computed is not None and _KNOWN_COLUMN in p.computed.values.columns:
        return p.computed.values[_KNOWN_COLUMN].to_numpy(bool)
    ids = _coded(layer, "identifiers")
    kind, kinds = ids.col("identifier")
    unique = set(layer.config.identity.names_of_kind("unique"))
    kept = ids.kept(cutoff)
    hit = np.isin(_take(kind, kept), [i for i, k in enumerate(kinds) if k in unique])
    who = p.pos_of[_take(ids.person, kept)[hit]]
    out = np.zeros(p.n, bool)
    out[who[who >= 0]] = True
    return out


def _profile_block(p: _Profile, layer: CanonicalLayer, cutoff: pd.Timestamp | None) -> pd.Series:
    """Profile columns; returns is_member."""
    prof = layer.table("profiles", as_of=cutoff)
    srcs = _channels(prof)
    is_member = pd.Series(p.index.isin(prof["oneid"]), index=p.index)
    p.add("is_member", is_member, "Has a record in a profile (member) table", srcs)
    # snapshot fields: the latest profile record updated before as_of (its own time when undated)
    upd = prof.assign(_u=prof["updated_at"].fillna(prof["at"]))
    if cutoff is not None:
        upd = upd[(upd["_u"] < cutoff).fillna(False).to_numpy(bool)]
    latest = (upd.sort_values(["oneid", "_u", "member_id"], ascending=[True, False, True], kind="stable")
              .drop_duplicates("oneid").set_index("oneid"))
    p.add("member_id", latest["member_id"], "Member id (latest profile record)", srcs, "", "direct")
    if prof["member_level"].notna().any():
        p.add("member_level", latest["member_level"], "Membership tier (latest profile record updated before "
              "the as-of date)", srcs)
    p.add("member_since", prof.groupby("oneid", sort=False)["registered_at"].min(), "Earliest registration",
          srcs, "UTC timestamp")
    return is_member


def _time_key(at: pd.Series, descending: bool) -> np.ndarray:
    """A sort key of a time column: ascending or descending, missing times last either way."""
    v = _utc64(at).view(np.int64)
    return np.where(v == _NAT, _MAX, -v if descending else v)


def _first_per(order: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Of rows sorted by ``order`` (whose first key is ``group``), the first of each group."""
    g = group[order]
    return order[np.flatnonzero(np.r_[True, g[1:] != g[:-1]])] if len(order) else order


def _pick(cand: pd.DataFrame, rule: str) -> pd.Series:
    """Per OneID, the value of the best candidate (source rank then latest, or latest then rank;
    ties: the smallest value, missing values last)."""
    person, _ = pd.factorize(cand["oneid"], sort=True)
    value, _ = pd.factorize(cand["value"], sort=True)
    value = np.where(value < 0, len(cand), value)          # missing values last
    rank, at = cand["rank"].to_numpy(np.int64), _time_key(cand["at"], descending=True)
    keys = (value, at, rank) if rule == "source_priority" else (value, rank, at)
    best = _first_per(np.lexsort((*keys, person)), person)   # lexsort is stable, its last key the first
    return pd.Series(cand["value"].array.take(best), index=pd.Index(cand["oneid"].array.take(best), name="oneid"),
                     name="value")


def _contact(cand: pd.DataFrame) -> pd.Series:
    """A profile's value first; else the value on most records, ties broken by the latest (then
    the smallest value)."""
    person, _ = pd.factorize(cand["oneid"], sort=True)
    value, names = pd.factorize(cand["value"], sort=True)
    ok = (person >= 0) & (value >= 0)
    pair, first, which = np.unique(person[ok].astype(np.int64) * max(len(names), 1) + value[ok], return_index=True,
                                   return_inverse=True)
    which = which.reshape(-1)
    n = np.bincount(which, minlength=len(pair))
    prof = np.zeros(len(pair), bool)
    np.logical_or.at(prof, which, (cand["role"] == "profile").fillna(False).to_numpy(bool)[ok])
    at = np.full(len(pair), _NAT, np.int64)
    np.maximum.at(at, which, _utc64(cand["at"]).view(np.int64)[ok])
    at = np.where(at == _NAT, _MAX, -at)                   # latest first, none last
    pp, pv = pair // max(len(names), 1), pair % max(len(names), 1)
    best = _first_per(np.lexsort((pv, at, -n, ~prof, pp)), pp)
    rows = np.flatnonzero(ok)[first[best]]
    return pd.Series(cand["value"].array.take(rows), index=pd.Index(cand["oneid"].array.take(rows), name="oneid"),
                     name="value")


def _traits_block(p: _Profile, layer: CanonicalLayer, rule: str, cutoff: pd.Timestamp | None,
                  ref: pd.Timestamp) -> None:
    from . import normalise as nz

    masks = {"name": nz.mask_name, "phone": nz.mask_phone, "email": nz.mask_email}
    per_trait = layer.memo(("customer_360", "traits"), lambda: _traits_by_name(layer))
    for trait in ("name", "gender", "birth_date", "city", "phone", "email"):
        cand = per_trait.get(trait)
        if cand is None:
            continue
        if cutoff is not None:
            cand = cand[(cand["at"] < cutoff).fillna(False).to_numpy(bool)]
        if not len(cand):
            continue
        srcs = _channels(cand)
        value = _contact(cand) if trait in ("phone", "email") else _pick(cand, rule)
        how = ("a profile's value, else the value on most records" if trait in ("phone", "email")
               else f"reconciled by {rule.replace('_', ' ')}")
        pii = {"name": "direct", "phone": "direct", "email": "direct"}.get(trait, "quasi")
        if trait == "birth_date":
            bd = pd.to_datetime(value, errors="coerce").reindex(p.index)
            p.add("birth_date", bd.dt.date, f"Birth date ({how})", srcs, "date", pii)
            r = ref.tz_convert(None)
            age = (r.year - bd.dt.year) - ((bd.dt.month > r.month)
                                           | ((bd.dt.month == r.month) & (bd.dt.day > r.day))).astype(int)
            p.add("age", age.astype("Int64"), "Age in whole years at the as-of date", srcs, "years", "quasi")
            continue
        p.add(trait, value.astype("string"), f"{TRAITS[trait].meaning.capitalize()} ({how}; raw values stay in "
              "data/)" if pii == "direct" else f"{TRAITS[trait].meaning.capitalize()} ({how})", srcs, "", pii)
        if trait in masks:
            masked = _masked(layer.memo(("customer_360", "masked", trait), dict), masks[trait], p.data[trait])
            p.add(f"{trait}_masked", masked, f"Display form of {trait}", "derived", "", "masked")


def _masked(known: dict, mask: Any, values: pd.Series) -> pd.Series:
    """``mask(values)``, masking each distinct value once per layer (``known`` keeps them): the
    masks of normalise work value by value, and profiles at other dates mostly repeat the values."""
    codes, uniques = pd.factorize(values)
    new = [u for u in uniques if u not in known]
    done = mask(pd.Series(pd.array(new, dtype=values.dtype)))
    known.update(zip(new, done.array))
    out = pd.array([known[u] for u in uniques] + [pd.NA], dtype=done.dtype)   # the last: missing values
    return pd.Series(out.take(np.where(codes < 0, len(uniques), codes)), index=values.index, name=values.name)


def _traits_by_name(layer: CanonicalLayer) -> dict[str, pd.DataFrame]:
    """The traits table split by trait (rows in table order), with the columns the profile uses."""
    traits = layer.table("traits", columns=["oneid", "channel", "role", "rank", "at", "trait", "value"],
                         cache=False)   # the split below is what the layer keeps (memo), not the table too
    kind, names = _codes(traits["trait"])
    return {str(t): traits[kind == i].drop(columns="trait") for i, t in enumerate(names)}


def _describe_orders(purchases_channels: list[str], currency: str, *, categories: bool = False,
                     sales_channels: dict[str, list[str]] | None = None) -> list[Column]:
    """The orders block's columns: counts, revenue and dates; favourite / top categories (when the
    purchases carry categories); revenue per sales channel and the main one (``sales_channels``:
    ``{sales channel: the channels of its purchases}``, when the layer has 2 to
    :data:`MAX_SALES_CHANNEL_COLUMNS` of them). ``purchases_channels``: the channels of the
    purchases before the as-of date."""
    srcs = purchases_channels
    out = [_column("orders", "Paid orders (refunded ones included, cancelled excluded)", srcs, "orders"),
           _column("cancelled_orders", "Orders cancelled before payment", srcs, "orders"),
           _column("refunded_orders", "Orders with a refund or return", srcs, "orders"),
           _column("gross_revenue", "Paid order amounts before refunds", srcs, currency),
           _column("refunds", "Refunds and returns (returns whose order is not in the data included)", srcs,
                   currency),
           _column("net_revenue", "Gross revenue minus refunds and returns", srcs, currency),
           _column("avg_order_value", "Net revenue per paid order (empty without orders)", srcs, currency),
           _column("first_order_at", "First paid order", srcs, "UTC timestamp"),
           _column("last_order_at", "Latest paid order", srcs, "UTC timestamp"),
           _column("days_since_last_order", "Days from the latest paid order to the as-of date", srcs, "days")]
    if categories:
        out += [_column("favourite_category", "Category with the highest net spend (ties: alphabetical)", srcs),
                _column("top_categories", "Up to three categories by net spend, comma-separated", srcs)]
    if sales_channels is not None:
        out += [_column(f"revenue_{event_slug(name)}", f"Net revenue sold through '{name}'", list(chans), currency)
                for name, chans in sales_channels.items()]
        out.append(_column("main_sales_channel", "Sales channel with the highest net revenue", srcs))
    return out


_ORDER_COLUMNS = [c.name for c in _describe_orders([], "")]


def _orders_values(p: _Profile, tx: pd.DataFrame, pos: np.ndarray, cutoff: pd.Timestamp) -> dict[str, pd.Series]:
    """The orders block's counts, revenue and dates (local engine); ``pos``: each purchase's profile row."""
    is_order = tx["is_order"].to_numpy(bool)
    refund = tx["refund"].to_numpy(np.float64)
    n = p.series(_count(pos[is_order], p.n))
    out = {"orders": n,
           "cancelled_orders": p.series(_count(pos[tx["status"].eq("cancelled").fillna(False).to_numpy(bool)], p.n)),
           "refunded_orders": p.series(_count(pos[is_order & (refund > 0)], p.n))}
    mine = pos >= 0
    sums = _group_sums(pos[mine], {c: tx[c].to_numpy(np.float64)[mine] for c in ("gross", "refund", "net")})
    for col, what in (("gross", "gross_revenue"), ("refund", "refunds"), ("net", "net_revenue")):
        total = np.zeros(p.n)
        total[sums.index.to_numpy(np.int64)] = sums[col].to_numpy()
        out[what] = p.series(total).round(6)
    out["avg_order_value"] = out["net_revenue"] / n.where(n > 0)
    at = _utc64(tx["ordered_at"])
    paid = np.where(is_order, pos, -1)
    out["first_order_at"] = p.series(_as_utc(_tmin(paid, at, p.n)))
    out["last_order_at"] = p.series(_as_utc(_tmax(paid, at, p.n)))
    out["days_since_last_order"] = _days(cutoff, out["last_order_at"])
    return out


def _sales_channel_columns(names: list[str]) -> bool:
    """Whether the profile has revenue per sales channel (2 to MAX_SALES_CHANNEL_COLUMNS of them)."""
    return 1 < len(names) <= MAX_SALES_CHANNEL_COLUMNS


def _orders_block(p: _Profile, layer: CanonicalLayer, cutoff: pd.Timestamp | None, ref: pd.Timestamp,
                  currency: str) -> None:
    """The orders block at ``cutoff`` (the as-of date; None: all data), days counted to ``ref``."""
    if p.computed is not None and any(c in p.computed.values.columns for c in _ORDER_COLUMNS):
        names = list(p.sources("sales_channels"))
        how = dict(categories=bool(p.sources("purchase_categories")),
                   sales_channels=p.sources("sales_channels") if _sales_channel_columns(names) else None)
        got = p.taken([c.name for c in _describe_orders([], currency, **how)])
        if got is not None:
            p.put(_describe_orders(p.sources("purchases"), currency, **how), got)
            return
    tx = layer.purchases(as_of=cutoff)
    names = layer.memo(("customer_360", "sales_channels"), lambda: _sales_channels(layer))
    pos = p.index.get_indexer(tx["oneid"]) if len(tx) else np.zeros(0, np.int64)
    values = _orders_values(p, tx, pos, ref)
    categories = bool(tx["category"].notna().any())
    if categories:
        values.update(_top_categories(p, tx, pos))
    by_channel = None
    if _sales_channel_columns(names):
        by_channel, more = _sales_channel_values(p, tx, pos, names)
        values.update(more)
    p.put(_describe_orders(_channels(tx), currency, categories=categories, sales_channels=by_channel), values)


def _sales_channel_values(p: _Profile, tx: pd.DataFrame, pos: np.ndarray,
                          sales_channels: list[str]) -> tuple[dict[str, list[str]], dict[str, pd.Series]]:
    """Net revenue per sales channel and the main one (local engine); with each sales channel's channels."""
    sales = tx["sales_channel"].fillna(tx["channel"])
    sc = pd.Index(sales_channels).get_indexer(sales)
    chan, chan_names = _sorted_codes(tx["channel"])
    ok = (pos >= 0) & (sc >= 0)
    k = len(sales_channels)
    s = _group_sums(pos[ok] * k + sc[ok], {"net": tx["net"].to_numpy(np.float64)[ok]})
    mat = np.zeros((p.n, k))
    key = s.index.to_numpy(np.int64)
    mat[key // k, key % k] = s["net"].to_numpy()
    by = pd.DataFrame(mat, index=p.index, columns=sales_channels)
    out = {f"revenue_{event_slug(name)}": by[name] for name in sales_channels}
    best = pd.Series(np.asarray(by.columns)[by.to_numpy().argmax(axis=1)], index=by.index)
    out["main_sales_channel"] = best.where(by.max(axis=1) > 0).astype("string")
    return {name: _present(chan[sc == i], chan_names) for i, name in enumerate(sales_channels)}, out


def _top_categories(p: _Profile, tx: pd.DataFrame, pos: np.ndarray) -> dict[str, pd.Series]:
    """favourite_category and top_categories: categories by net spend (> 0; ties alphabetical)."""
    cat, names = _sorted_codes(tx["category"])
    ok = (pos >= 0) & (cat >= 0)
    k = max(len(names), 1)
    s = _group_sums(pos[ok] * k + cat[ok], {"net": tx["net"].to_numpy(np.float64)[ok]})
    key, net = s.index.to_numpy(np.int64), s["net"].to_numpy()
    key, net = key[net > 0], net[net > 0]
    person, cat = key // k, key % k
    order = np.lexsort((cat, -net, person))
    person, cat = person[order], cat[order]
    start = np.r_[True, person[1:] != person[:-1]] if len(person) else np.zeros(0, bool)
    first = np.flatnonzero(start)
    nth = np.arange(len(person)) - np.repeat(first, np.diff(np.r_[first, len(person)]))
    names = np.asarray(names, dtype=object)
    favourite = np.full(p.n, None, dtype=object)
    favourite[person[nth == 0]] = names[cat[nth == 0]]
    top = favourite.copy()
    for i in (1, 2):
        at = nth == i
        top[person[at]] = top[person[at]] + "," + names[cat[at]]
    return {"favourite_category": p.series(pd.array(favourite, dtype="string")),
            "top_categories": p.series(pd.array(top, dtype="string"))}


def _session_starts(person: np.ndarray, t: np.ndarray, gap: np.timedelta64) -> np.ndarray:
    """Of events sorted by person then time, those that start a session (first of the person, or
    more than ``gap`` after the previous one)."""
    new = np.ones(len(person), bool)
    if len(person) > 1:
        new[1:] = (person[1:] != person[:-1]) | ((t[1:] - t[:-1]) > gap)
    return new


def _first_event_starts(oneid: pd.Series) -> bool:
    """Whether the very first event (of the first OneID in sort order) counts as a session start.

    The profile has always compared each event's OneID with the previous one's, and for the first
    event that comparison is with a missing value: True for Python or NaN-missing strings, but
    missing — so not counted — for the canonical tables' NA-missing strings, where that OneID gets
    one session less. Kept as it is so that profiles stay identical (see the commit message)."""
    s = pd.Series(["x"], dtype=oneid.dtype)
    return bool(s.ne(s.shift()).fillna(False).iloc[0])


def _sessions(ev: pd.DataFrame, gap: pd.Timedelta) -> pd.Series:
    """Sessions per OneID: events more than ``gap`` apart start a new one."""
    t = ev[["oneid", "event_time"]].dropna()
    person, names = pd.factorize(t["oneid"], sort=True)
    at = _utc64(t["event_time"])
    order = np.lexsort((at, person))
    new = _session_starts(person[order], at[order], gap.to_timedelta64())
    new[:1] = _first_event_starts(t["oneid"])
    counts = np.bincount(person[order][new], minlength=len(names))
    return pd.Series(counts.astype(np.int64), index=pd.Index(names, name="oneid"))


def event_universe(layer: CanonicalLayer) -> pd.DataFrame:
    """The event types of the whole layer (vocabulary order), with whether each carries durations,
    money, ratings or categories — so a profile at any as-of date has the same columns."""
    return layer.memo(("customer_360", "event_universe"), lambda: _event_universe(layer)).copy()


def _event_universe(layer: CanonicalLayer) -> pd.DataFrame:
    ev = layer.table("events")
    if not len(ev):
        return pd.DataFrame(columns=["duration", "value", "rating", "category"])
    g = ev.groupby("event_type", sort=False)
    u = pd.DataFrame({"duration": g["duration_seconds"].count() > 0, "value": g["value"].count() > 0,
                      "rating": g["rating"].count() > 0, "category": g["category"].count() > 0})
    order = sorted(u.index, key=lambda t: (list(EVENT_TYPES).index(t) if t in EVENT_TYPES else len(EVENT_TYPES), t))
    return u.loc[order]


class _Events:
    """What the events block needs of the whole events table, made once per layer."""

    def __init__(self, layer: CanonicalLayer):
        ev = layer.table("events")
        self.coded = c = _coded(layer, "events")
        self.type, self.types = c.col("event_type")
        self.family, families = c.col("family")
        self.channel, self.channels = c.col("channel")
        self.universe = event_universe(layer)
        k = max(len(self.channels), 1)
        ok = (self.type >= 0) & (self.channel >= 0)
        seen = np.bincount(self.type[ok] * k + self.channel[ok], minlength=len(self.types) * k).reshape(-1, k) > 0
        self.srcs_of = {t: [self.channels[x] for x in np.flatnonzero(seen[i])]
                        for i, t in enumerate(self.types) if seen[i].any()}
        fam = {f: i for i, f in enumerate(families)}
        self.is_family = {f: self.family == fam[f] if f in fam else np.zeros(c.rows, bool)
                          for f in ("email", "wechat")}
        digital = np.isin(self.family, [fam[f] for f in SESSION_FAMILIES if f in fam])
        digital &= (c.t.view(np.int64) != _NAT) & (c.person >= 0)
        self.first_starts = _first_event_starts(ev["oneid"])
        rows = np.flatnonzero(digital)
        self.digital = rows[np.lexsort((c.t[rows], c.person[rows]))]   # by person, then time; stable
        self.code = {t: i for i, t in enumerate(self.types)}
        email = np.flatnonzero(self.is_family["email"])
        campaign = ev["campaign"].take(email).fillna(ev["record_id"].take(email))
        self.email_rows = email
        self.email_campaign = pd.factorize(campaign)[0].astype(np.int64)
        self.email_flags = {k: np.isin(self.type[email], [self.code[t] for t in ts if t in self.code])
                            for k, ts in (("sent", ["Email Sent"]), ("opened", ["Email Opened", "Email Link Clicked"]),
                                          ("clicked", ["Email Link Clicked"]))}
        self.ticket = self.type == self.code.get("Service Ticket Opened", -2)
        self.problem = np.zeros(c.rows, bool)
        problems = layer.analysis.problem_ticket_categories
        if problems:
            rows = np.flatnonzero(self.ticket)
            self.problem[rows] = ev["category"].take(rows).isin(problems).fillna(False).to_numpy(bool)


def _describe_events(universe: pd.DataFrame, sources: dict[str, Any], *, currency: str, session_gap_minutes: int,
                     problem_categories: list[str]) -> list[Column]:
    """The events block's columns, in the profile's order: per event type of the layer
    (``universe``, see :func:`event_universe`) count, minutes, money and latest time; ``sessions``
    (when the layer has digital events); e-mail rates, WeChat following, problem tickets and
    service rating (when the layer has those event types); ``last_touch_at``.

    ``sources``: ``"event_types"`` (each type's channels, whole layer) and the channels of the
    events before the as-of date — ``"events"`` (all), ``"email"`` and ``"wechat"`` (those families)."""
    types_channels = sources.get("event_types", {})
    out = []
    for name, flags in universe.iterrows():
        slug, srcs = event_slug(name), list(types_channels.get(name, []))
        meaning = EVENT_TYPES[name].meaning if name in EVENT_TYPES else "a custom event type of the brand"
        out.append(_column(slug, f"'{name}' events ({meaning})", srcs, "events"))
        if flags["duration"]:
            out.append(_column(f"{slug}_minutes", f"Total duration of '{name}'", srcs, "minutes"))
        if flags["value"]:
            out.append(_column(f"{slug}_value", f"Money of '{name}'", srcs, currency))
        out.append(_column(f"last_{slug}_at", f"Latest '{name}'", srcs, "UTC timestamp"))
    if _has_sessions(universe):
        digital = sorted({ch for t in universe.index if t in EVENT_TYPES and EVENT_TYPES[t].family in SESSION_FAMILIES
                          for ch in types_channels.get(t, [])})
        out.append(_column("sessions", f"Digital sessions (site and app events; {session_gap_minutes} minutes "
                           "without an event start a new one)", digital, "sessions"))
    if "Email Sent" in universe.index:
        email = sources.get("email", [])
        out.append(_column("email_open_rate", "Campaigns opened or clicked / campaigns sent (empty when none sent)",
                           email, "share 0–1"))
        out.append(_column("email_click_rate", "Campaigns clicked / campaigns sent (empty when none sent)", email,
                           "share 0–1"))
    if "WeChat Followed" in universe.index:
        out.append(_column("wechat_following", "Follows the WeChat account at the as-of date (latest follow later "
                           "than any unfollow)", sources.get("wechat", [])))
    if "Service Ticket Opened" in universe.index:
        srcs = list(types_channels.get("Service Ticket Opened", []))
        if problem_categories and universe.loc["Service Ticket Opened", "category"]:
            out.append(_column("problem_tickets", f"Service tickets in the problem categories {problem_categories}",
                               srcs, "tickets"))
        if universe.loc["Service Ticket Opened", "rating"]:
            out.append(_column("service_rating", "Mean rating of rated service tickets", srcs, "rating"))
    out.append(_column("last_touch_at", "Latest event of any kind", sources.get("events", []), "UTC timestamp"))
    return out


def _has_sessions(universe: pd.DataFrame) -> bool:
    return any(EVENT_TYPES[t].family in SESSION_FAMILIES for t in universe.index if t in EVENT_TYPES)


class _EventRows:
    """The events before an as-of date, as the events block reads them (positions, profile rows, types, times)."""

    def __init__(self, p: _Profile, e: _Events, cutoff: pd.Timestamp | None):
        self.e, self.c, self.cutoff = e, e.coded, cutoff
        self.rows = self.c.kept(cutoff)
        self.pos = p.pos_of[_take(self.c.person, self.rows)]
        self.typ, self.t = _take(e.type, self.rows), _take(self.c.t, self.rows)
        self.mine = self.pos >= 0


def _events_block(p: _Profile, layer: CanonicalLayer, cutoff: pd.Timestamp | None) -> None:
    computed = p.computed.event_types if p.computed is not None else None
    universe = computed if computed is not None else event_universe(layer)
    how = dict(currency=layer.base_currency, session_gap_minutes=layer.analysis.session_gap_minutes,
               problem_categories=layer.analysis.problem_ticket_categories)
    got = p.taken([c.name for c in _describe_events(universe, {}, **how)])
    if got is not None:
        p.put(_describe_events(universe, p.computed.sources, **how), got)
        return
    r = _EventRows(p, layer.memo(("customer_360", "events"), lambda: _Events(layer)), cutoff)
    e = r.e
    keep = np.ones(len(e.email_rows), bool) if cutoff is None else r.c.t[e.email_rows] < _np_time(cutoff)
    sources = {"event_types": e.srcs_of, "events": _present(_take(e.channel, r.rows), e.channels),
               "email": _present(e.channel[e.email_rows[keep]], e.channels),
               "wechat": _present(_take(e.channel, r.rows)[_take(e.is_family["wechat"], r.rows)], e.channels)}
    values = _event_values(p, layer, r, universe)
    values.update(_engagement_values(p, layer, r, universe))
    p.put(_describe_events(universe, sources, **how), values)


def _event_values(p: _Profile, layer: CanonicalLayer, r: _EventRows, universe: pd.DataFrame) -> dict[str, pd.Series]:
    """Per event type count, minutes, money and latest time; sessions; latest event (local engine)."""
    e, c, rows, pos, typ, t, mine, cutoff = r.e, r.c, r.rows, r.pos, r.typ, r.t, r.mine, r.cutoff
    # one grouped pass per measure over (type, person)
    key = typ[mine] * p.n + pos[mine]
    sums = _group_sums(key, {f: _take(c.floats(f), rows)[mine] for f in ("quantity", "duration_seconds", "value")})
    k = sums.index.to_numpy(np.int64)
    ntypes = len(e.types)
    dense = {f: np.zeros((ntypes, p.n)) for f in sums.columns}
    for f in sums.columns:
        dense[f][k // max(p.n, 1), k % max(p.n, 1)] = sums[f].to_numpy()
    last = np.full(ntypes * p.n, _NAT, np.int64)
    np.maximum.at(last, key, t[mine].view(np.int64))
    last = last.reshape(ntypes, p.n)
    out = {}
    for name, flags in universe.iterrows():
        i, slug = e.code[name], event_slug(name)
        out[slug] = p.series(dense["quantity"][i])
        if flags["duration"]:
            out[f"{slug}_minutes"] = p.series(dense["duration_seconds"][i] / 60.0)
        if flags["value"]:
            out[f"{slug}_value"] = p.series(dense["value"][i])
        out[f"last_{slug}_at"] = p.series(_as_utc(last[i].view("datetime64[us]")))
    del sums, dense, last
    if _has_sessions(universe):
        gap = pd.Timedelta(minutes=layer.analysis.session_gap_minutes)
        d = e.digital if cutoff is None else e.digital[c.t[e.digital] < _np_time(cutoff)]
        new = _session_starts(c.person[d], c.t[d], gap.to_timedelta64())
        new[:1] = e.first_starts
        out["sessions"] = p.series(_count(p.pos_of[c.person[d][new]], p.n))
    out["last_touch_at"] = p.series(_as_utc(_tmax(pos, t, p.n)))
    return out


def _engagement_values(p: _Profile, layer: CanonicalLayer, r: _EventRows, universe: pd.DataFrame) -> dict[str, Any]:
    """E-mail open / click rates, WeChat following, problem tickets and service rating (local engine)."""
    e, c, rows, pos, typ, t, mine, cutoff = r.e, r.c, r.rows, r.pos, r.typ, r.t, r.mine, r.cutoff
    out: dict[str, Any] = {}
    if "Email Sent" in universe.index:
        er = e.email_rows
        keep = np.ones(len(er), bool) if cutoff is None else c.t[er] < _np_time(cutoff)
        epos = p.pos_of[c.person[er]]
        keep &= epos >= 0
        nc = int(e.email_campaign.max()) + 1 if len(er) else 1
        pair, which = np.unique(epos[keep] * nc + e.email_campaign[keep], return_inverse=True)
        which = which.reshape(-1)
        counts = {}
        for f, flag in e.email_flags.items():
            per_pair = np.zeros(len(pair), bool)
            np.logical_or.at(per_pair, which, flag[keep])
            counts[f] = np.bincount(pair[per_pair] // nc, minlength=p.n)
        sent = counts["sent"]
        with np.errstate(divide="ignore", invalid="ignore"):
            out["email_open_rate"] = p.series(np.where(sent > 0, counts["opened"] / sent, np.nan))
            out["email_click_rate"] = p.series(np.where(sent > 0, counts["clicked"] / sent, np.nan))
    if "WeChat Followed" in universe.index:
        w = _take(e.is_family["wechat"], rows)
        wpos = np.where(w, pos, -1)
        has = _count(wpos, p.n) > 0
        fol = _tmax(np.where(typ == e.code["WeChat Followed"], wpos, -1), t, p.n)
        unf = _tmax(np.where(typ == e.code.get("WeChat Unfollowed", -2), wpos, -1), t, p.n)
        out["wechat_following"] = p.series(has & ~(unf >= fol) & ~(~np.isnat(unf) & np.isnat(fol)))
    if "Service Ticket Opened" in universe.index:
        s = _take(e.ticket, rows)
        if layer.analysis.problem_ticket_categories and universe.loc["Service Ticket Opened", "category"]:
            out["problem_tickets"] = p.series(_count(pos[_take(e.problem, rows)], p.n))
        if universe.loc["Service Ticket Opened", "rating"]:
            ok = s & mine
            mean = _group_sums(pos[ok], {"rating": _take(c.floats("rating"), rows)[ok]}, how="mean")["rating"]
            rating = np.full(p.n, np.nan)
            rating[mean.index.to_numpy(np.int64)] = mean.to_numpy()
            out["service_rating"] = p.series(rating)
    return out


def _consents_block(p: _Profile, layer: CanonicalLayer, cutoff: pd.Timestamp | None) -> None:
    from .privacy.consent import reconcile_consents

    purposes = layer.manifest.get("consent_purposes") or []
    if not purposes:
        return
    ev = layer.table("consents", as_of=cutoff)
    decided = reconcile_consents(ev.rename(columns={"channel": "source", "record_id": "source_record_id"}))
    srcs = layer.memo(("customer_360", "consent_channels"), lambda: _consent_channels(layer.table("consents")))
    for purpose in purposes:
        d = decided[decided["purpose"] == purpose].set_index("oneid")["status"]
        value = d.map({"granted": True, "revoked": False}).astype("boolean").reindex(p.index)
        p.add(f"consent_{purpose}", value, f"Consent for {purpose} marketing (latest consent event wins; empty = "
              "unknown)", srcs.get(purpose, []))


def _consent_channels(consents: pd.DataFrame) -> dict[str, list[str]]:
    """The channels of the whole layer's consent events of each purpose."""
    return {str(k): sorted(v.dropna().unique().tolist()) for k, v in consents.groupby("purpose")["channel"]}


def _sales_channels(layer: CanonicalLayer) -> list[str]:
    every = layer.purchases()
    return sorted(every["sales_channel"].fillna(every["channel"]).unique().tolist())


def _aligned(computed: ComputedBlocks | None, index: pd.Index) -> ComputedBlocks | None:
    """``computed`` with its values indexed by the profile's OneIDs, which they must list in order."""
    if computed is None:
        return None
    if not isinstance(computed, ComputedBlocks):
        raise ValueError("The 'computed' parameter must be a ComputedBlocks (values and sources of whole profile "
                         f"blocks) or None. Got {type(computed).__name__} instead.")
    v = computed.values
    if "oneid" not in v.columns:
        raise ValueError(f"The computed blocks' values lack the column 'oneid'. Columns present: {list(v.columns)}.")
    ids = pd.Index(v["oneid"].astype("string"))
    if not ids.equals(index):
        extra, lacking = ids.difference(index), index.difference(ids)
        raise ValueError(f"The computed blocks' OneIDs must be the profile's ({len(index)}, sorted). Got {len(ids)}: "
                         f"{len(extra)} not in the profile (e.g. {list(extra[:3])}), {len(lacking)} of the profile "
                         f"missing (e.g. {list(lacking[:3])}){'' if len(extra) or len(lacking) else ', in another order'}.")
    return ComputedBlocks(v.drop(columns="oneid").set_axis(index, axis=0), computed.sources, computed.event_types)


class _Entries(list):
    """The data dictionary in ``profile.attrs``: a list of dicts of strings, as before, that copies
    itself cheaply. pandas deep-copies a frame's ``attrs`` into every frame or column derived from
    it (``profile[c]``, ``drop``, ``assign`` ...): a generic deep copy of ~90 entries costs ~0.6 ms
    each time; copying each entry's dict (its values are strings) gives the same copy ~40x faster."""

    def __deepcopy__(self, memo: dict) -> _Entries:
        return _Entries(dict(e) if type(e) is dict else deepcopy(e, memo) for e in self)

    def __reduce__(self):   # pickles as a plain list: a pickled profile needs no workbench to load
        return list, (list(self),)


# ----------------------------------------------------------------------------- build
def build_customer_360(layer: CanonicalLayer | Paths | None = None, *, as_of: Any = None,
                       demographics_rule: str = "source_priority",
                       computed: ComputedBlocks | None = None) -> pd.DataFrame:
    """One row per OneID (column ``oneid``, sorted) with the columns the data supports (see the
    module docstring). ``attrs`` holds ``as_of`` and the data dictionary.

    ``layer`` is a :class:`~workbench.canonical.CanonicalLayer` (or the paths of one; default:
    the data folder's). What the profile needs of the layer's tables is made once per layer, so
    profiles of one layer at several as-of dates cost little more than one.

    ``computed``: blocks computed by another engine at the same ``as_of`` (:class:`ComputedBlocks`;
    the customer 360 stage passes the Spark engine's when the run's engine is ``spark``): their
    values are taken as they are, every other block is computed here, and the profile's columns,
    order, types and dictionary are those of a profile computed here alone.
    """
    if demographics_rule not in DEMOGRAPHIC_RULES:
        raise ValueError(f"The 'demographics_rule' parameter must be one of {list(DEMOGRAPHIC_RULES)}. "
                         f"Got {demographics_rule!r} instead.")
    if not isinstance(layer, CanonicalLayer):
        layer = load_canonical(layer if isinstance(layer, Paths) else None)
    cutoff = to_utc(as_of)
    ref = cutoff if cutoff is not None else (layer.data_end or pd.Timestamp.now(tz="UTC").normalize())
    if computed is not None and _covers_core(computed):   # its OneIDs are those with records before the cutoff
        index = _population(computed)
        p = _Profile(index, computed=_aligned(computed, index), layer=layer)
        p.put(_describe_core(p.sources("records")), p.taken(_CORE_COLUMNS))
    else:
        persons = _persons(layer)
        rec = _coded(layer, "records")
        rows = rec.kept(cutoff)
        present = np.bincount(_take(rec.person, rows), minlength=len(persons.ids)) > 0
        index = pd.Index(persons.ids[present], name="oneid", dtype="string")
        pos_of = np.full(len(persons.ids) + 1, -1, np.int64)   # the last entry: person code -1
        pos_of[:-1][present] = np.arange(len(index))
        p = _Profile(index, pos_of, _aligned(computed, index))
        _core(p, layer, rec, rows, cutoff)
    is_member = _profile_block(p, layer, cutoff) if layer.has("profile") else pd.Series(False, index=index)
    _traits_block(p, layer, demographics_rule, cutoff, ref)
    if layer.has("orders"):
        _orders_block(p, layer, cutoff, ref, layer.base_currency)
    if layer.has("events"):  # columns from the whole layer's event types, values from before as_of
        _events_block(p, layer, cutoff)
    _consents_block(p, layer, cutoff)
    known = is_member.to_numpy(bool).copy()
    for c in ("phone", "email"):
        if c in p.data:
            known |= p.data[c].notna().to_numpy(bool)
    known |= _has_unique_identifier(p, layer, cutoff)   # member or customer numbers, on any record
    p.add("is_known", pd.Series(known, index=index), "A member, or has a member / customer number, a phone or an "
          "e-mail (not only cookies or devices)", "identity (all channels)")
    profile = p.frame()
    profile.attrs = {"as_of": ref.isoformat(), "as_of_given": cutoff is not None,
                     "currency": layer.base_currency, "demographics_rule": demographics_rule,
                     "dictionary": _Entries(asdict(c) for c in [Column("oneid", "The person's OneID (stable across "
                                                                      "runs unless merged or split)", "identity", "",
                                                                      "pseudonym"), *p.dictionary])}
    return profile


def data_dictionary(profile: pd.DataFrame) -> pd.DataFrame:
    """The profile's data dictionary (column, meaning, sources, unit, personal-data class, type),
    generated with it; score columns of a joined view are described too.

    >>> p = pd.DataFrame({"oneid": ["a"], "orders": [1]})
    >>> p.attrs["dictionary"] = [{"name": "oneid", "meaning": "id", "sources": "identity", "unit": "", "pii": "pseudonym"},
    ...                          {"name": "orders", "meaning": "Paid orders", "sources": "shop", "unit": "orders", "pii": "none"}]
    >>> data_dictionary(p).loc["orders", "unit"]
    'orders'
    """
    entries = list(profile.attrs.get("dictionary") or [])
    entries += [asdict(c) for c in SCORE_DICTIONARY if c.name in profile.columns]
    d = pd.DataFrame(entries, columns=["name", "meaning", "sources", "unit", "pii"]).drop_duplicates("name")
    d = d.set_index("name")
    d.index.name = "column"
    d = d.rename(columns={"pii": "personal data"})
    dtypes = profile.dtypes
    d["type"] = [str(dtypes[c]) if c in dtypes.index else "missing" for c in d.index]
    return d


def reconcile(profile: pd.DataFrame, layer: CanonicalLayer) -> pd.DataFrame:
    """The profile's revenue and order counts beside the same totals computed straight from the
    cleaned tables (:func:`workbench.canonical.totals_from_cleaned`); revenue must match to the
    cent, counts exactly, and every OneID must appear once. Without orders only the last check."""
    rows = []
    if "net_revenue" in profile.columns:
        as_of = profile.attrs.get("as_of") if profile.attrs.get("as_of_given") else None
        exp = totals_from_cleaned(layer.paths, layer.config.mappings, as_of=as_of)
        got = {"net_revenue": round(float(profile["net_revenue"].sum()), 2), "orders": int(profile["orders"].sum()),
               "cancelled_orders": int(profile["cancelled_orders"].sum())}
        for k, v in exp.items():
            diff = round(got[k] - v, 2)
            rows.append({"check": k, "profile": got[k], "cleaned": v, "difference": diff, "ok": abs(diff) < 0.005})
    rows.append({"check": "one row per OneID", "profile": len(profile), "cleaned": profile["oneid"].nunique(),
                 "difference": len(profile) - profile["oneid"].nunique(), "ok": bool(profile["oneid"].is_unique)})
    return pd.DataFrame(rows).set_index("check")


def run_customer_360(paths: Paths | None = None, *, as_of: Any = None, demographics_rule: str = "source_priority",
                     layer: CanonicalLayer | None = None, engine: Any = None) -> pd.DataFrame:
    """The stage: build the profile from the canonical layer and write it, its dictionary and
    its metrics (``customer_360.parquet``, ``customer_360_dictionary.csv``,
    ``metrics/customer_360.json``). Returns the profile.

    ``engine`` (settings, a mapping or a YAML path; default: the run's recorded engine, else
    local): with ``engine: spark`` the always-present, orders and events blocks are computed by
    Spark SQL (:mod:`workbench.engine.spark_360`), the other blocks here — the same profile,
    written to the same files.

    Example:
        >>> profile = run_customer_360(paths, engine={"engine": "spark"})   # doctest: +SKIP
    """
    t0 = time.perf_counter()
    paths = (paths or get_paths()).ensure()
    layer = layer or load_canonical(paths)
    eng = resolve_engine(paths, engine)
    computed = _spark_blocks(eng, layer, to_utc(as_of)) if eng.is_spark else None
    profile = build_customer_360(layer, as_of=as_of, demographics_rule=demographics_rule, computed=computed)
    profile.to_parquet(paths.customer_360, index=False)
    data_dictionary(profile).to_csv(paths.processed / "customer_360_dictionary.csv", encoding="utf-8")
    rec = reconcile(profile, layer)
    totals = {"oneids": int(len(profile)), "known": int(profile["is_known"].sum())}
    if "orders" in profile.columns:
        totals.update(customers=int((profile["orders"] > 0).sum()), orders=int(profile["orders"].sum()),
                      net_revenue=round(float(profile["net_revenue"].sum()), 2))
    metrics = {"stage": "customer_360", "seconds": round(time.perf_counter() - t0, 3), "engine": eng.engine,
               "as_of": profile.attrs["as_of"], "demographics_rule": demographics_rule, "columns": len(profile.columns),
               "totals": totals, "reconciles": bool(rec["ok"].all())}
    (paths.metrics / "customer_360.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    return profile


def _spark_blocks(settings: Any, layer: CanonicalLayer, cutoff: pd.Timestamp | None) -> ComputedBlocks:
    """The blocks the Spark engine computes (:mod:`workbench.engine.spark_360`), at ``cutoff``."""
    from .engine.session import spark_session
    from .engine.spark_360 import spark_column_sources, spark_customer_aggregates, spark_event_universe
    from .engine.spark_io import temporary_views

    spark = spark_session(settings)
    canonical = layer.paths.canonical
    with temporary_views(spark):
        values = spark_customer_aggregates(spark, canonical, as_of=cutoff,
                                           session_gap_minutes=layer.analysis.session_gap_minutes,
                                           problem_ticket_categories=layer.analysis.problem_ticket_categories,
                                           max_sales_channels=MAX_SALES_CHANNEL_COLUMNS,
                                           unique_identifiers=layer.config.identity.names_of_kind("unique"))
        universe = spark_event_universe(spark, canonical) if layer.has("events") else None
        return ComputedBlocks(values, spark_column_sources(spark, canonical, as_of=cutoff), universe)


def load_customer_360(paths: Paths | None = None) -> pd.DataFrame:
    """The profile written by :func:`run_customer_360` (notebook 04)."""
    paths = paths or get_paths()
    if not paths.customer_360.exists():
        raise FileNotFoundError(f"{paths.customer_360} not found: run notebook 04_customer_360 first.")
    return pd.read_parquet(paths.customer_360)


def public_view(profile: pd.DataFrame) -> pd.DataFrame:
    """The profile without direct identifiers (raw name, phone, e-mail, member id, address): what
    reports and notebooks may show. Masked columns stay.

    >>> public_view(pd.DataFrame(columns=["oneid", "phone", "phone_masked"])).columns.tolist()
    ['oneid', 'phone_masked']
    """
    direct = {d["name"] for d in profile.attrs.get("dictionary") or [] if d["pii"] == "direct"}
    direct |= {"name", "phone", "email", "member_id", "address"}
    return profile[[c for c in profile.columns if c not in direct]]
