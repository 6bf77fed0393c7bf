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
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from . import normalise as nz
from .canonical import CanonicalLayer, load_canonical, totals_from_cleaned
from .config import Paths, get_paths
from .roles import EVENT_TYPES, SESSION_FAMILIES, TRAITS, event_slug
from .timeutil import to_utc

__all__ = ["Column", "DEMOGRAPHIC_RULES", "SCORE_DICTIONARY", "build_customer_360", "data_dictionary",
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


class _Profile:
    """Collects the profile's columns (aligned on the population index) and their dictionary."""

    def __init__(self, index: pd.Index):
        self.index = index
        self.data: dict[str, Any] = {}
        self.dictionary: list[Column] = []

    def add(self, name: str, values: Any, meaning: str, sources: str | list[str], unit: str = "",
            pii: str = "none") -> None:
        if isinstance(values, pd.Series):
            values = values.reindex(self.index)
        self.data[name] = values
        src = ", ".join(sources) if isinstance(sources, list) else sources
        self.dictionary.append(Column(name, meaning, src, unit, pii))

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


# ----------------------------------------------------------------------------- blocks
def _core(p: _Profile, records: pd.DataFrame, idents: pd.DataFrame) -> None:
    g = records.groupby("oneid", sort=False)
    srcs = _channels(records)
    p.add("n_records", g.size(), "Source records linked to this OneID", "identity (all channels)", "records")
    p.add("first_seen", g["at"].min(), "Earliest dated record of any channel", "all channels", "UTC timestamp")
    p.add("last_seen", g["at"].max(), "Latest dated record of any channel", "all channels", "UTC timestamp")
    chans = records[["oneid", "channel"]].drop_duplicates().sort_values(["oneid", "channel"])
    p.add("channels", chans.groupby("oneid", sort=False)["channel"].agg(",".join),
          "Channels the person was seen in, comma-separated", srcs)
    p.add("n_channels", chans.groupby("oneid", sort=False).size(), "Number of channels the person was seen in",
          srcs, "channels")
    n_ids = idents.drop_duplicates(["oneid", "identifier", "value_hash"]).groupby("oneid", sort=False).size()
    p.add("n_identifiers", n_ids.reindex(p.index, fill_value=0), "Distinct identifier values linked (the identity "
          "settings' identifiers)", "identity (all channels)", "values")


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


def _pick(cand: pd.DataFrame, rule: str) -> pd.Series:
    """Per OneID, the value of the best candidate (source rank then latest, or latest then rank)."""
    order = ["oneid", "rank", "at"] if rule == "source_priority" else ["oneid", "at", "rank"]
    asc = [True, True, False] if rule == "source_priority" else [True, False, True]
    c = cand.sort_values(order + ["value"], ascending=asc + [True], kind="stable", na_position="last")
    return c.drop_duplicates("oneid").set_index("oneid")["value"]


def _contact(cand: pd.DataFrame) -> pd.Series:
    """A profile's value first; else the value on most records, ties broken by the latest."""
    stats = (cand.assign(prof=cand["role"] == "profile")
             .groupby(["oneid", "value"], sort=False)
             .agg(prof=("prof", "max"), n=("rank", "size"), at=("at", "max")).reset_index())
    stats = stats.sort_values(["oneid", "prof", "n", "at", "value"], ascending=[True, False, False, False, True],
                              kind="stable", na_position="last")
    return stats.drop_duplicates("oneid").set_index("oneid")["value"]


def _traits_block(p: _Profile, traits: pd.DataFrame, rule: str, cutoff: pd.Timestamp) -> None:
    masks = {"name": nz.mask_name, "phone": nz.mask_phone, "email": nz.mask_email}
    for trait in ("name", "gender", "birth_date", "city", "phone", "email"):
        cand = traits[(traits["trait"] == trait).to_numpy(bool)]
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
            ref = cutoff.tz_convert(None)
            age = (ref.year - bd.dt.year) - ((bd.dt.month > ref.month)
                                             | ((bd.dt.month == ref.month) & (bd.dt.day > ref.day))).astype(int)
            p.add("age", age.astype("Int64"), "Age in whole years at the as-of date", srcs, "years", "quasi")
            continue
        p.add(trait, value.astype("string"), f"{TRAITS[trait].meaning.capitalize()} ({how}; raw values stay in "
              "data/)" if pii == "direct" else f"{TRAITS[trait].meaning.capitalize()} ({how})", srcs, "", pii)
        if trait in masks:
            p.add(f"{trait}_masked", masks[trait](p.data[trait]), f"Display form of {trait}", "derived", "", "masked")


def _orders_block(p: _Profile, tx: pd.DataFrame, cutoff: pd.Timestamp, currency: str,
                  sales_channels: list[str]) -> None:
    srcs = _channels(tx)
    orders = tx[tx["is_order"].to_numpy(bool)]
    g = tx.groupby("oneid", sort=False)
    og = orders.groupby("oneid", sort=False)
    n = og.size().reindex(p.index, fill_value=0)
    p.add("orders", n, "Paid orders (refunded ones included, cancelled excluded)", srcs, "orders")
    p.add("cancelled_orders", tx["status"].eq("cancelled").groupby(tx["oneid"], sort=False).sum()
          .reindex(p.index, fill_value=0), "Orders cancelled before payment", srcs, "orders")
    p.add("refunded_orders", (tx["is_order"] & (tx["refund"] > 0)).groupby(tx["oneid"], sort=False).sum()
          .reindex(p.index, fill_value=0), "Orders with a refund or return", srcs, "orders")
    for col, what in (("gross", "gross_revenue"), ("refund", "refunds"), ("net", "net_revenue")):
        meaning = {"gross_revenue": "Paid order amounts before refunds",
                   "refunds": "Refunds and returns (returns whose order is not in the data included)",
                   "net_revenue": "Gross revenue minus refunds and returns"}[what]
        p.add(what, g[col].sum().reindex(p.index, fill_value=0.0).round(6), meaning, srcs, currency)
    p.add("avg_order_value", (p.data["net_revenue"] / n.where(n > 0)), "Net revenue per paid order (empty without "
          "orders)", srcs, currency)
    p.add("first_order_at", og["ordered_at"].min(), "First paid order", srcs, "UTC timestamp")
    p.add("last_order_at", og["ordered_at"].max(), "Latest paid order", srcs, "UTC timestamp")
    p.add("days_since_last_order", _days(cutoff, p.data["last_order_at"]), "Days from the latest paid order to "
          "the as-of date", srcs, "days")
    if tx["category"].notna().any():
        by_cat = tx.groupby(["oneid", "category"], sort=False)["net"].sum().reset_index()
        by_cat = by_cat[by_cat["net"] > 0].sort_values(["oneid", "net", "category"], ascending=[True, False, True])
        top = by_cat.groupby("oneid", sort=False).head(3)
        p.add("favourite_category", top.drop_duplicates("oneid").set_index("oneid")["category"],
              "Category with the highest net spend (ties: alphabetical)", srcs)
        p.add("top_categories", top.groupby("oneid", sort=False)["category"].agg(",".join),
              "Up to three categories by net spend, comma-separated", srcs)
    sales = tx["sales_channel"].fillna(tx["channel"])
    if 1 < len(sales_channels) <= MAX_SALES_CHANNEL_COLUMNS:
        by = (tx.assign(sc=sales).pivot_table(index="oneid", columns="sc", values="net", aggfunc="sum", fill_value=0.0)
              .reindex(index=p.index, columns=sales_channels).fillna(0.0))
        for s in sales_channels:
            p.add(f"revenue_{event_slug(s)}", by[s], f"Net revenue sold through '{s}'",
                  _channels(tx[(sales == s).to_numpy(bool)]), currency)
        best = pd.Series(np.asarray(by.columns)[by.to_numpy().argmax(axis=1)], index=by.index)
        p.add("main_sales_channel", best.where(by.max(axis=1) > 0).astype("string"),
              "Sales channel with the highest net revenue", srcs)


def _sessions(ev: pd.DataFrame, gap: pd.Timedelta) -> pd.Series:
    """Sessions per OneID: events more than ``gap`` apart start a new one."""
    t = ev[["oneid", "event_time"]].dropna().sort_values(["oneid", "event_time"], kind="stable")
    new = t["oneid"].ne(t["oneid"].shift()) | (t["event_time"].diff() > gap)
    return new.groupby(t["oneid"], sort=False).sum()


def event_universe(layer: CanonicalLayer) -> pd.DataFrame:
    """The event types of the whole layer (vocabulary order), with whether each carries durations,
    money, ratings or categories — so a profile at any as-of date has the same columns."""
    ev = layer.table("events")
    if not len(ev):
        return pd.DataFrame(columns=["duration", "value", "rating", "category"])
    g = ev.groupby("event_type", sort=False)
    u = pd.DataFrame({"duration": g["duration_seconds"].count() > 0, "value": g["value"].count() > 0,
                      "rating": g["rating"].count() > 0, "category": g["category"].count() > 0})
    order = sorted(u.index, key=lambda t: (list(EVENT_TYPES).index(t) if t in EVENT_TYPES else len(EVENT_TYPES), t))
    return u.loc[order]


def _events_block(p: _Profile, ev: pd.DataFrame, layer: CanonicalLayer) -> None:
    universe = event_universe(layer)
    srcs_of = (layer.table("events", columns=["event_type", "channel"]).drop_duplicates()
               .groupby("event_type", sort=False)["channel"].agg(lambda c: sorted(set(c))))
    # one grouped pass per measure over (type, person), instead of a copy of the events per type
    g = ev.groupby(["event_type", "oneid"], sort=False)
    sums = g[["quantity", "duration_seconds", "value"]].sum()
    last = g["event_time"].max()
    present = set(sums.index.get_level_values(0))

    def per_person(series: pd.Series, t: str) -> pd.Series:
        return series.xs(t, level="event_type") if t in present else pd.Series(dtype=series.dtype)

    for t, flags in universe.iterrows():
        slug, srcs = event_slug(t), list(srcs_of.get(t, []))
        meaning = EVENT_TYPES[t].meaning if t in EVENT_TYPES else "a custom event type of the brand"
        p.add(slug, per_person(sums["quantity"], t).reindex(p.index, fill_value=0.0), f"'{t}' events ({meaning})",
              srcs, "events")
        if flags["duration"]:
            p.add(f"{slug}_minutes", (per_person(sums["duration_seconds"], t) / 60.0).reindex(p.index, fill_value=0.0),
                  f"Total duration of '{t}'", srcs, "minutes")
        if flags["value"]:
            p.add(f"{slug}_value", per_person(sums["value"], t).reindex(p.index, fill_value=0.0), f"Money of '{t}'",
                  srcs, layer.base_currency)
        p.add(f"last_{slug}_at", per_person(last, t).astype(ev["event_time"].dtype), f"Latest '{t}'", srcs,
              "UTC timestamp")
    del g, sums, last
    digital = ev[ev["family"].isin(SESSION_FAMILIES).to_numpy(bool)]
    if any(EVENT_TYPES[t].family in SESSION_FAMILIES for t in universe.index if t in EVENT_TYPES):
        gap = pd.Timedelta(minutes=layer.analysis.session_gap_minutes)
        p.add("sessions", _sessions(digital, gap).reindex(p.index, fill_value=0),
              f"Digital sessions (site and app events; {layer.analysis.session_gap_minutes} minutes without an "
              "event start a new one)", sorted({c for t in universe.index if t in EVENT_TYPES
                                                and EVENT_TYPES[t].family in SESSION_FAMILIES
                                                for c in srcs_of.get(t, [])}), "sessions")
    if "Email Sent" in universe.index:
        m = ev[(ev["family"] == "email").to_numpy(bool)]
        per = (m.assign(sent=m["event_type"] == "Email Sent",
                        opened=m["event_type"].isin(["Email Opened", "Email Link Clicked"]),
                        clicked=m["event_type"] == "Email Link Clicked", campaign=m["campaign"].fillna(m["record_id"]))
               .groupby(["oneid", "campaign"], sort=False)[["sent", "opened", "clicked"]].max())
        g = per.groupby("oneid", sort=False)
        sent = g["sent"].sum()
        srcs = _channels(m)
        p.add("email_open_rate", (g["opened"].sum() / sent).where(sent > 0).astype(float),
              "Campaigns opened or clicked / campaigns sent (empty when none sent)", srcs, "share 0–1")
        p.add("email_click_rate", (g["clicked"].sum() / sent).where(sent > 0).astype(float),
              "Campaigns clicked / campaigns sent (empty when none sent)", srcs, "share 0–1")
    if "WeChat Followed" in universe.index:
        w = ev[(ev["family"] == "wechat").to_numpy(bool)]
        fol = w[w["event_type"] == "WeChat Followed"].groupby("oneid", sort=False)["event_time"].max()
        unf = w[w["event_type"] == "WeChat Unfollowed"].groupby("oneid", sort=False)["event_time"].max()
        has = pd.Series(True, index=w["oneid"].unique())
        following = has & ~(unf.reindex(has.index) >= fol.reindex(has.index)).fillna(False)
        following &= ~(unf.reindex(has.index).notna() & fol.reindex(has.index).isna())
        p.add("wechat_following", following.reindex(p.index, fill_value=False).astype(bool),
              "Follows the WeChat account at the as-of date (latest follow later than any unfollow)", _channels(w))
    if "Service Ticket Opened" in universe.index:
        s = ev[(ev["event_type"] == "Service Ticket Opened").to_numpy(bool)]
        srcs = list(srcs_of.get("Service Ticket Opened", []))
        problems = layer.analysis.problem_ticket_categories
        if problems and universe.loc["Service Ticket Opened", "category"]:
            p.add("problem_tickets", s["category"].isin(problems).groupby(s["oneid"], sort=False).sum()
                  .reindex(p.index, fill_value=0), f"Service tickets in the problem categories {problems}", srcs,
                  "tickets")
        if universe.loc["Service Ticket Opened", "rating"]:
            p.add("service_rating", s.groupby("oneid", sort=False)["rating"].mean(), "Mean rating of rated service "
                  "tickets", srcs, "rating")
    p.add("last_touch_at", ev.groupby("oneid", sort=False)["event_time"].max(), "Latest event of any kind",
          _channels(ev), "UTC timestamp")


def _consents_block(p: _Profile, layer: CanonicalLayer, cutoff: pd.Timestamp | None) -> None:
    from .privacy.consent import reconcile_consents

    purposes = layer.manifest.get("consent_purposes") or []
    if not purposes:
        return
    ev = layer.table("consents", as_of=cutoff)
    decided = reconcile_consents(ev.rename(columns={"channel": "source", "record_id": "source_record_id"}))
    for purpose in purposes:
        d = decided[decided["purpose"] == purpose].set_index("oneid")["status"]
        value = d.map({"granted": True, "revoked": False}).astype("boolean").reindex(p.index)
        p.add(f"consent_{purpose}", value, f"Consent for {purpose} marketing (latest consent event wins; empty = "
              "unknown)", _channels(layer.table("consents")[lambda d: d["purpose"] == purpose]))


# ----------------------------------------------------------------------------- build
def build_customer_360(layer: CanonicalLayer | Paths | None = None, *, as_of: Any = None,
                       demographics_rule: str = "source_priority") -> pd.DataFrame:
    """One row per OneID (column ``oneid``, sorted) with the columns the data supports (see the
    module docstring). ``attrs`` holds ``as_of`` and the data dictionary.

    ``layer`` is a :class:`~workbench.canonical.CanonicalLayer` (or the paths of one; default:
    the data folder's).
    """
    if demographics_rule not in DEMOGRAPHIC_RULES:
        raise ValueError(f"The 'demographics_rule' parameter must be one of {list(DEMOGRAPHIC_RULES)}. "
                         f"Got {demographics_rule!r} instead.")
    if not isinstance(layer, CanonicalLayer):
        layer = load_canonical(layer if isinstance(layer, Paths) else None)
    cutoff = to_utc(as_of)
    records = layer.table("records", as_of=cutoff)
    ref = cutoff if cutoff is not None else (layer.data_end or pd.Timestamp.now(tz="UTC").normalize())
    index = pd.Index(np.sort(records["oneid"].unique().astype(str)), name="oneid", dtype="string")
    p = _Profile(index)
    _core(p, records, layer.table("identifiers", as_of=cutoff))
    is_member = _profile_block(p, layer, cutoff) if layer.has("profile") else pd.Series(False, index=index)
    _traits_block(p, layer.table("traits", as_of=cutoff), demographics_rule, ref)
    if layer.has("orders"):
        every = layer.purchases()
        names = sorted(every["sales_channel"].fillna(every["channel"]).unique().tolist())
        _orders_block(p, layer.purchases(as_of=cutoff) if cutoff is not None else every, ref, layer.base_currency,
                      names)
    if layer.has("events"):  # columns from the whole layer's event types, values from before as_of
        _events_block(p, layer.table("events", as_of=cutoff), layer)
    _consents_block(p, layer, cutoff)
    known = is_member.to_numpy(bool).copy()
    for c in ("phone", "email"):
        if c in p.data:
            known |= p.data[c].notna().to_numpy(bool)
    unique = layer.config.identity.names_of_kind("unique")   # member or customer numbers, on any record
    idents = layer.table("identifiers", as_of=cutoff, columns=["oneid", "identifier"])
    known |= index.isin(idents.loc[idents["identifier"].isin(unique).to_numpy(bool), "oneid"].unique())
    p.add("is_known", pd.Series(known, index=index), "A member, or has a member / customer number, a phone or an "
          "e-mail (not only cookies or devices)", "identity (all channels)")
    profile = p.frame()
    profile.attrs = {"as_of": ref.isoformat(), "as_of_given": cutoff is not None,
                     "currency": layer.base_currency, "demographics_rule": demographics_rule,
                     "dictionary": [asdict(c) for c in [Column("oneid", "The person's OneID (stable across runs "
                                                               "unless merged or split)", "identity", "", "pseudonym"),
                                                        *p.dictionary]]}
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
    d["type"] = [str(profile[c].dtype) if c in profile.columns else "missing" for c in d.index]
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
                     layer: CanonicalLayer | None = None) -> pd.DataFrame:
    """The stage: build the profile from the canonical layer and write it, its dictionary and
    its metrics (``customer_360.parquet``, ``customer_360_dictionary.csv``,
    ``metrics/customer_360.json``). Returns the profile."""
    t0 = time.perf_counter()
    paths = (paths or get_paths()).ensure()
    layer = layer or load_canonical(paths)
    profile = build_customer_360(layer, as_of=as_of, demographics_rule=demographics_rule)
    profile.to_parquet(paths.customer_360, index=False)
    data_dictionary(profile).to_csv(paths.processed / "customer_360_dictionary.csv", encoding="utf-8")
    rec = reconcile(profile, layer)
    totals = {"oneids": int(len(profile)), "known": int(profile["is_known"].sum())}
    if "orders" in profile.columns:
        totals.update(customers=int((profile["orders"] > 0).sum()), orders=int(profile["orders"].sum()),
                      net_revenue=round(float(profile["net_revenue"].sum()), 2))
    metrics = {"stage": "customer_360", "seconds": round(time.perf_counter() - t0, 3),
               "as_of": profile.attrs["as_of"], "demographics_rule": demographics_rule, "columns": len(profile.columns),
               "totals": totals, "reconciles": bool(rec["ok"].all())}
    (paths.metrics / "customer_360.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    return profile


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
