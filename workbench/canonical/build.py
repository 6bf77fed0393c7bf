"""Building the canonical tables from the cleaned channels, their roles and the OneID registry.

Each mapping contributes to the tables its role feeds (see :mod:`workbench.canonical.schema`);
person traits and identifiers come from every role. The rules, each defined here once:

- **Order key** ``<channel>:<key fields>`` (``order_key`` of the mapping, default its
  ``order_id``); a mapping without order ids makes every row an order (key: the record id).
  Line items (``grain: line``) aggregate by it: the order's time is its first line's, its
  amount the sum of its lines that are not cancelled, its category and product those of its
  largest line, its OneID the one holding most of its amount.
- **Cancelled** orders stay (``is_order`` False, ``gross`` 0) so they can be counted; a
  missing status means paid.
- **Refunds**: an order row's ``refund_amount`` (at ``refunded_at``, else the order's own
  time — marketplace exports have no refund date) and every returns row (amount taken as
  positive) become rows of ``refunds``. A return names its order by the same key fields; it
  is ``matched`` when that order is in the data (in ``returns_of``, else in any orders
  mapping), else it stays a refund of its own.
- **Events**: the mapping's ``event_type`` (a vocabulary name), quantity (default 1); each
  ``extra_events`` entry adds an event where its quantity is > 0 or its time present.
- **Consents**: a profile's ``consent_<purpose>`` fields at the record's ``updated_at`` (else
  ``registered_at``) — an empty field says "unknown"; a consents row; an event of
  :data:`workbench.roles.CONSENT_EVENTS` (unsubscribe, WeChat follow / unfollow).
- **Campaign members**: one row per source row (campaign id, name, group, sent at); the
  campaign's results compare its groups' orders after ``sent_at`` (:mod:`workbench.campaigns`).
- **Traits** are ranked: profile mappings first, then the others in mapping order.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..mapping import ChannelMapping
from ..roles import CONSENT_EVENTS, EVENT_TYPES, ROLES, TRAITS
from .schema import conform, empty

__all__ = ["CanonicalBuild", "build_tables", "consent_purpose_key", "record_times", "string_isin"]


def _str(s: pd.Series | None, index: pd.Index) -> pd.Series:
    return s.astype("string") if s is not None else pd.Series(index=index, dtype="string")


def consent_purpose_key(values: pd.Series) -> pd.Series:
    """A consent purpose as both engines key it: Python's ``str.lower`` of each value, which is
    Spark SQL's ``lower`` (``engine/rules/canonical_consents.sql``) — not ``casefold`` (Spark has
    none: 'Straße' would become 'strasse') nor pandas' Arrow ``str.lower`` (code point by code
    point: a final 'Σ' would become 'σ', not 'ς'). Computed once per distinct value.

    >>> consent_purpose_key(pd.Series(["Email_Marketing", "Straße", "ΟΔΟΣ", None], dtype="string")).tolist()
    ['email_marketing', 'straße', 'οδος', <NA>]
    """
    values = values.astype("string")
    distinct = values.dropna().unique()
    return values.map(dict(zip(distinct, (str(v).lower() for v in distinct)))).astype("string")


def _num(s: pd.Series | None, index: pd.Index, default: float = np.nan) -> pd.Series:
    if s is None:
        return pd.Series(default, index=index, dtype="float64")
    return pd.to_numeric(s, errors="coerce").astype("float64")


def record_times(df: pd.DataFrame, mapping: ChannelMapping) -> pd.Series:
    """Each record's time: the first present of its role's time fields (profile: registered, then updated)."""
    at = pd.Series(pd.NaT, index=df.index, dtype="datetime64[us, UTC]")
    for f in ROLES[mapping.role].time_fields:
        if f in df.columns:
            at = at.fillna(pd.to_datetime(df[f], utc=True).astype("datetime64[us, UTC]"))
    return at


class CanonicalBuild:
    """Accumulates the canonical tables, mapping by mapping (see :func:`build_tables`)."""

    def __init__(self, mappings: dict[str, ChannelMapping]):
        self.mappings = mappings
        self.parts: dict[str, list[pd.DataFrame]] = {}
        self.ranks = {c: i for i, c in enumerate(
            [c for c, m in mappings.items() if m.role == "profile"]
            + [c for c, m in mappings.items() if m.role != "profile"])}
        self.counts: dict[str, dict[str, int]] = {}

    def add(self, table: str, df: pd.DataFrame, channel: str) -> None:
        if len(df):
            self.parts.setdefault(table, []).append(conform(df, table))
            self.counts.setdefault(channel, {})[table] = self.counts.get(channel, {}).get(table, 0) + len(df)

    def table(self, table: str) -> pd.DataFrame:
        parts = self.parts.get(table)
        if not parts:
            return empty(table)
        if len(parts) > 1:  # keep the concatenation instead of the parts: one copy in memory
            self.parts[table] = [pd.concat(parts, ignore_index=True)]
            parts.clear()
        return self.parts[table][0]

    # ------------------------------------------------------------------ per mapping
    def add_channel(self, df: pd.DataFrame, mapping: ChannelMapping) -> None:
        """``df``: the cleaned table of ``mapping`` with each record's ``oneid``."""
        c = mapping.channel
        at = record_times(df, mapping)
        base = pd.DataFrame({"oneid": df["oneid"], "record_id": df["record_id"], "channel": c})
        self.add("records", base.assign(role=mapping.role, at=at), c)
        self._traits(df, mapping, base, at)
        getattr(self, f"_{mapping.role}")(df, mapping, base, at)

    def _traits(self, df, mapping, base, at) -> None:
        c = mapping.channel
        for trait in TRAITS:
            if trait not in mapping.fields or trait not in df.columns:
                continue
            v = df[trait]
            if trait == "birth_date":
                v = pd.to_datetime(v, errors="coerce").dt.strftime("%Y-%m-%d")
            v = v.astype("string")
            keep = v.notna().to_numpy(bool).copy()
            ph = f"{trait}_placeholder"
            if ph in df.columns:  # a placeholder phone or e-mail is nobody's trait
                keep &= ~df[ph].fillna(False).to_numpy(bool)
            self.add("traits", base[keep].assign(role=mapping.role, rank=self.ranks[c], at=at[keep], trait=trait,
                                                 value=v[keep]), c)

    def _profile(self, df, mapping, base, at) -> None:
        c = mapping.channel
        prof = base.assign(at=at, member_id=_str(df.get("member_id"), df.index),
                           member_level=_str(df.get("member_level"), df.index),
                           registered_at=df.get("registered_at"), updated_at=df.get("updated_at"))
        self.add("profiles", prof, c)
        said = pd.to_datetime(df["updated_at"], utc=True).fillna(at) if "updated_at" in df.columns else at
        for purpose in mapping.consent_purposes:
            self.add("consents", base.assign(purpose=purpose, granted=df[f"consent_{purpose}"].astype("boolean"),
                                             at=said, event="profile record", priority=0), c)

    def _orders(self, df, mapping, base, at) -> None:
        c = mapping.channel
        idx = df.index
        status = _str(df.get("status"), idx).fillna("paid")
        cancelled = (status == "cancelled").to_numpy(bool)
        amount = _num(df["amount"], idx).fillna(0.0)
        key = order_keys(df, mapping)
        lines = pd.DataFrame({"oneid": df["oneid"], "record_id": df["record_id"], "channel": c, "order_key": key,
                              "ordered_at": df["ordered_at"], "category": _str(df.get("category"), idx),
                              "product": _str(df.get("product"), idx), "quantity": _num(df.get("quantity"), idx),
                              "amount": amount, "cancelled": cancelled})
        self.add("order_lines", lines, c)
        paid_amount = np.where(cancelled, 0.0, amount.to_numpy(float))
        sales = _str(df.get("sales_channel"), idx).fillna(c)
        store = _str(df.get("store"), idx)
        refund = np.where(cancelled, 0.0, _num(df.get("refund_amount"), idx).fillna(0.0).abs().to_numpy(float))
        if mapping.grain == "order":
            orders = lines.drop(columns=["amount", "cancelled"]).assign(
                order_id=_str(df.get("order_id"), idx), status=status, is_order=~cancelled, gross=paid_amount,
                lines=1, sales_channel=sales, store=store)
        else:
            orders = _aggregate_lines(lines.assign(paid=paid_amount, status=status, sales_channel=sales, store=store,
                                                   order_id=_str(df.get("order_id"), idx)))
        self.add("orders", orders, c)
        has_refund = refund > 0
        if has_refund.any():
            when = df["refunded_at"] if "refunded_at" in df.columns else pd.Series(pd.NaT, index=idx)
            when = pd.to_datetime(when, utc=True).fillna(pd.to_datetime(df["ordered_at"], utc=True))
            self.add("refunds", pd.DataFrame({"oneid": df["oneid"], "record_id": df["record_id"], "channel": c,
                                              "order_key": key, "refunded_at": when, "amount": refund, "matched": True,
                                              "source": "order", "sales_channel": sales})[has_refund], c)

    def _returns(self, df, mapping, base, at) -> None:
        # matched against the orders once every mapping is in (see finish())
        self.parts.setdefault("_returns", []).append(pd.DataFrame({
            "oneid": df["oneid"], "record_id": df["record_id"], "channel": mapping.channel,
            "ref": order_keys(df, mapping, prefix=False), "return_key": _return_keys(df, mapping),
            "refunded_at": df["returned_at"], "amount": _num(df["amount"], df.index).abs(),
            "sales_channel": _str(df.get("sales_channel"), df.index)}))

    def _events(self, df, mapping, base, at) -> None:
        c = mapping.channel
        idx = df.index
        common = {"campaign": _str(df.get("campaign"), idx), "product": _str(df.get("product"), idx),
                  "category": _str(df.get("category"), idx), "rating": _num(df.get("rating"), idx),
                  "platform": _str(df.get("platform"), idx)}
        parts = [base.assign(event_time=df["event_time"], event_type=df["event_type"],
                             quantity=_num(df.get("quantity"), idx, 1.0).fillna(1.0), value=_num(df.get("value"), idx),
                             duration_seconds=_num(df.get("duration_seconds"), idx), **common)]
        for e in mapping.extra_events:
            keep = np.ones(len(df), bool)
            qty = _num(df[e.quantity], idx).fillna(0.0) if e.quantity else pd.Series(1.0, index=idx)
            if e.quantity:
                keep &= (qty > 0).to_numpy(bool)
            when = df[e.time] if e.time else df["event_time"]
            if e.time:
                keep &= when.notna().to_numpy(bool)
            parts.append(base.assign(event_time=when, event_type=e.type, quantity=qty,
                                     value=_num(df[e.value], idx) if e.value else np.nan,
                                     duration_seconds=_num(df[e.duration], idx) if e.duration else np.nan,
                                     **common)[keep])
        ev = pd.concat(parts, ignore_index=True)
        typed = ev["event_type"].notna().to_numpy(bool)
        if not typed.all():
            ev = ev[typed]
        ev["family"] = _families(ev["event_type"])
        self.add("events", ev, c)
        hit = ev["event_type"].isin(list(CONSENT_EVENTS)).to_numpy(bool)
        if hit.any():
            x = ev[hit]
            purpose = x["event_type"].map({k: v[0] for k, v in CONSENT_EVENTS.items()})
            granted = x["event_type"].map({k: v[1] for k, v in CONSENT_EVENTS.items()}).astype("boolean")
            self.add("consents", pd.DataFrame({
                "oneid": x["oneid"], "record_id": x["record_id"], "channel": c, "purpose": purpose, "granted": granted,
                "at": x["event_time"], "event": x["event_type"],
                "priority": np.where(granted.to_numpy(bool), 2, 1)}), c)

    def _consents(self, df, mapping, base, at) -> None:
        self.add("consents", base.assign(purpose=consent_purpose_key(_str(df["purpose"], df.index)),
                                         granted=df["granted"].astype("boolean"), at=df["consented_at"],
                                         event="consent record", priority=0), mapping.channel)

    def _campaign_members(self, df, mapping, base, at) -> None:
        self.add("campaign_members", base.assign(
            campaign_id=_str(df["campaign_id"], df.index), campaign_name=_str(df.get("campaign_name"), df.index),
            group=_str(df["group"], df.index), sent_at=df["sent_at"],
            response_window_days=_num(df.get("response_window_days"), df.index)), mapping.channel)

    # ------------------------------------------------------------------ after every mapping
    def finish(self) -> None:
        """Match returns onto their orders (needs every orders mapping)."""
        rets = self.parts.pop("_returns", [])
        if not rets:
            return
        orders = self.table("orders")
        known = orders["order_key"].dropna()
        sold = orders.set_index("order_key")["sales_channel"]
        usual = orders.groupby("channel")["sales_channel"].agg(lambda s: s.mode().iloc[0] if s.notna().any() else pd.NA)
        order_channels = [c for c, m in self.mappings.items() if m.role == "orders"]
        for r in rets:
            channel = str(r["channel"].iloc[0]) if len(r) else ""
            m = self.mappings[channel]
            candidates = [m.returns_of] if m.returns_of else order_channels
            key = pd.Series(pd.NA, index=r.index, dtype="string")
            for oc in candidates:
                k = (oc + ":" + r["ref"]).astype("string")
                hit = string_isin(k, known) & key.isna().to_numpy(bool)
                key[hit] = k[hit]
            matched = key.notna().to_numpy(bool)
            # where it was sold: its order's sales channel; else its own, else that of the orders it belongs to
            sales = key.map(sold).astype("string").fillna(r["sales_channel"])
            if m.returns_of:
                sales = sales.fillna(usual.get(m.returns_of, pd.NA))
            key = key.fillna(r["return_key"])
            self.add("refunds", pd.DataFrame({"oneid": r["oneid"], "record_id": r["record_id"], "channel": channel,
                                              "order_key": key, "refunded_at": r["refunded_at"], "amount": r["amount"],
                                              "matched": matched, "source": "return",
                                              "sales_channel": sales.fillna(channel)}), channel)


def _families(event_type: pd.Series) -> pd.Series:
    """The family of each event type (``custom`` for a type of the brand's own), mapped once per type."""
    codes, uniques = pd.factorize(event_type)
    family = pa.array([EVENT_TYPES[t].family if t in EVENT_TYPES else "custom" for t in uniques] + ["custom"],
                      pa.large_string())
    codes = np.where(codes < 0, len(uniques), codes)
    return pd.Series(pd.array(family.take(pa.array(codes)), dtype="string"), index=event_type.index)


def string_isin(values: pd.Series, candidates: pd.Series) -> np.ndarray:
    """``values.isin(candidates)`` as a NumPy boolean array. For Arrow strings it is computed by
    Arrow in one pass: pandas' isin first builds a Python list of every candidate, which costs
    seconds for a hundred thousand order keys. Same result either way (a missing value matches a
    missing candidate)."""
    arrow = pd.StringDtype("pyarrow", na_value=pd.NA), pd.StringDtype("pyarrow", na_value=np.nan)
    if values.dtype not in arrow or candidates.dtype not in arrow:
        return values.isin(candidates).to_numpy(bool)
    arr = pa.array(values.array)
    value_set = pa.array(candidates.array)
    if isinstance(value_set, pa.ChunkedArray):
        value_set = value_set.combine_chunks()
    return np.asarray(pc.is_in(arr, value_set=pc.unique(value_set.cast(arr.type))), dtype=bool)


def order_keys(df: pd.DataFrame, mapping: ChannelMapping, *, prefix: bool = True) -> pd.Series:
    """``<channel>:<key fields>`` of each row (the record id when the mapping has no order ids).

    >>> from workbench.mapping import ChannelMapping
    >>> m = ChannelMapping.from_dict({"channel": "shop", "role": "orders", "source": {"pattern": "x"},
    ...     "order_key": ["sales_channel", "order_id"], "fields": {"order_id": {"column": "no", "type": "key"},
    ...     "ordered_at": {"column": "t", "type": "timestamp"}, "amount": {"column": "a", "type": "amount"},
    ...     "sales_channel": {"column": "p", "type": "string"}}})
    >>> order_keys(pd.DataFrame({"record_id": ["shop:f:1"], "sales_channel": ["tmall"], "order_id": ["42"]}), m).tolist()
    ['shop:tmall:42']
    """
    fields = mapping.key_fields
    if not fields:
        return df["record_id"].astype("string")
    key = df[fields[0]].astype("string")
    for f in fields[1:]:
        key = key + ":" + df[f].astype("string")
    return (mapping.channel + ":" + key).astype("string") if prefix else key.astype("string")


def _return_keys(df: pd.DataFrame, mapping: ChannelMapping) -> pd.Series:
    """A return's own key (``<channel>:<return_id>``, else its record id) for unmatched returns."""
    if "return_id" in df.columns:
        own = (mapping.channel + ":" + df["return_id"].astype("string")).astype("string")
        return own.fillna(df["record_id"].astype("string"))
    return df["record_id"].astype("string")


def _aggregate_lines(lines: pd.DataFrame) -> pd.DataFrame:
    """Orders from line items (see the module docstring)."""
    lines = lines.sort_values(["order_key", "ordered_at", "record_id"], kind="stable")
    g = lines.groupby("order_key", sort=False)
    first = g.head(1).set_index("order_key")
    biggest = lines.sort_values(["order_key", "amount", "record_id"], ascending=[True, False, True],
                                kind="stable").groupby("order_key", sort=False).head(1).set_index("order_key")
    owner = (lines.groupby(["order_key", "oneid"], sort=False)["amount"].sum().reset_index()
             .sort_values(["order_key", "amount", "oneid"], ascending=[True, False, True], kind="stable")
             .drop_duplicates("order_key").set_index("order_key")["oneid"])
    cancelled = g["cancelled"].all()
    status = g["status"].agg(lambda s: "cancelled" if (s == "cancelled").all()
                             else ("refunded" if (s == "refunded").any() else "paid"))
    out = pd.DataFrame({
        "oneid": owner, "record_id": first["record_id"], "channel": first["channel"],
        "order_id": first["order_id"], "ordered_at": first["ordered_at"], "status": status, "is_order": ~cancelled,
        "gross": g["paid"].sum(), "category": biggest["category"], "product": biggest["product"],
        "quantity": g["quantity"].sum(min_count=1), "lines": g.size(), "sales_channel": first["sales_channel"],
        "store": first["store"]})
    out.index.name = "order_key"
    return out.reset_index()


def build_tables(load: Callable[[ChannelMapping], pd.DataFrame], mappings: dict[str, ChannelMapping]
                 ) -> CanonicalBuild:
    """Run every mapping through its role's builder; ``load(mapping)`` gives its linked cleaned table."""
    b = CanonicalBuild(mappings)
    for m in mappings.values():
        b.add_channel(load(m), m)
    b.finish()
    return b
