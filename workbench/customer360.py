"""The customer 360 profile: one row per OneID with traits from every channel.

Built from the cleaned channel tables and the OneID registry; written to
``data/processed/customer_360.parquet`` with its data dictionary
(``customer_360_dictionary.csv``) and counts in ``interim/metrics/customer_360.json``.

Rules chosen here (all documented in the data dictionary):

- **Population**: every OneID that has a record before ``as_of`` (all OneIDs when
  ``as_of`` is None), anonymous visitors included (``is_known`` tells them apart).
- **Demographics** (name, gender, birth date, city) are reconciled by a declared rule:
  ``"source_priority"`` (default: CRM, then service tickets, POS, WeChat, e-commerce
  receiver; within a source the most recent record) or ``"most_recent"`` (the latest
  record of any source). E-commerce receivers come last: a parcel may be a gift.
- **Contacts**: the CRM phone/e-mail when present, else the value seen on most records
  (ties: the latest). Raw contacts stay inside ``data/``; reports use the ``*_masked``
  columns and exports hash them.
- **Orders and revenue** come from :mod:`workbench.transactions` (refunds and returns
  netted, CNY), so the profile's totals reconcile with the cleaned tables to the cent.
- **Sessions**: web events of one OneID more than 30 minutes apart start a new session;
  an app session is an ``app_open``.
- **Consent** (SMS, e-mail, WeChat, ads): the member's latest CRM consent; an e-mail
  unsubscribe later than that record revokes e-mail consent (latest wins).

Example:
    >>> from workbench.customer360 import build_customer_360
    >>> profile = build_customer_360(as_of="2026-11-01")    # doctest: +SKIP
    >>> profile.loc[profile["orders"] > 0, "net_revenue"].sum()   # doctest: +SKIP
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from . import normalise as nz
from .config import Paths, get_paths
from .transactions import load_linked, load_registry, load_transactions, to_utc

SESSION_GAP = pd.Timedelta(minutes=30)
DEMOGRAPHIC_RULES = ("source_priority", "most_recent")
#: (channel, column) pairs offering each demographic trait, in source priority order.
DEMOGRAPHIC_SOURCES: dict[str, list[tuple[str, str, str]]] = {
    # trait: [(channel, column, time column), ...]
    "name": [("crm_members", "name", "updated_at"), ("service_tickets", "name", "created_at"),
             ("pos_receipts", "name", "txn_time"), ("ecommerce_orders", "receiver_name", "ordered_at")],
    "gender": [("crm_members", "gender", "updated_at"), ("wechat_followers", "gender", "subscribed_at")],
    "birth_date": [("crm_members", "birth_date", "updated_at")],
    "city": [("crm_members", "city", "updated_at"), ("wechat_followers", "city", "subscribed_at"),
             ("ecommerce_orders", "city", "ordered_at")],
}
CONTACT_SOURCES: dict[str, list[tuple[str, str, str]]] = {
    "phone": [("crm_members", "phone", "updated_at"), ("service_tickets", "phone", "created_at"),
              ("pos_receipts", "phone", "txn_time"), ("wechat_followers", "phone", "subscribed_at"),
              ("livestream_interactions", "phone", "session_start")],
    "email": [("crm_members", "email", "updated_at"), ("service_tickets", "email", "created_at"),
              ("email_events", "email", "event_time")],
}
#: The time column of each channel (``as_of`` drops records at or after it).
TIME_COLUMNS = {
    "crm_members": "registered_at", "ecommerce_orders": "ordered_at", "web_events": "event_time",
    "app_events": "event_time", "pos_receipts": "txn_time", "livestream_interactions": "session_start",
    "wechat_followers": "subscribed_at", "email_events": "event_time", "service_tickets": "created_at",
}

#: Every column the profile reads from each cleaned table (each table is read once).
NEEDED_COLUMNS: dict[str, tuple[str, ...]] = {
    "crm_members": ("member_id", "member_level", "registered_at", "updated_at", "name", "gender", "birth_date",
                    "city", "phone", "email", "consent_sms", "consent_email", "consent_wechat", "consent_ads"),
    "ecommerce_orders": ("ordered_at", "receiver_name", "city"),
    "web_events": ("event_time", "event"),
    "app_events": ("event_time", "event"),
    "pos_receipts": ("txn_time", "name", "phone"),
    "livestream_interactions": ("session_start", "watch_seconds", "comments", "gifts", "gift_value",
                                "product_clicks", "phone"),
    "wechat_followers": ("subscribed_at", "unsubscribed_at", "gender", "city", "phone"),
    "email_events": ("campaign_id", "event", "event_time", "email"),
    "service_tickets": ("created_at", "category", "status", "satisfaction", "name", "phone", "email"),
}


@dataclass(frozen=True)
class Column:
    """One column of the profile, as the data dictionary shows it."""

    name: str
    meaning: str
    sources: str
    unit: str = ""
    pii: str = "none"


# ----------------------------------------------------------------------------- dictionary
_ID, _TX = "identity (all channels)", "ecommerce_orders, pos_receipts"
DICTIONARY: tuple[Column, ...] = (
    Column("oneid", "The person's OneID (stable across runs unless merged or split)", _ID, "", "pseudonym"),
    Column("is_known", "Has a member id, phone or e-mail (not only cookies/devices)", _ID),
    Column("channels", "Channels the person was seen in, comma-separated", _ID),
    Column("n_channels", "Number of channels the person was seen in", _ID, "channels"),
    Column("n_records", "Cleaned records linked to this OneID", _ID, "records"),
    Column("n_identifiers", "Distinct identifier values linked (member id, phone, e-mail, unionid, openid, "
           "buyer nick, viewer id, device, cookie)", _ID, "values"),
    Column("first_seen", "Earliest record of any channel", "all channels", "UTC timestamp"),
    Column("last_seen", "Latest record of any channel", "all channels", "UTC timestamp"),
    Column("is_member", "Has a CRM member record", "crm_members"),
    Column("member_id", "Brand member id (latest CRM record)", "crm_members", "", "direct"),
    Column("member_level", "Membership tier (latest CRM record)", "crm_members"),
    Column("member_since", "Earliest CRM registration", "crm_members", "UTC timestamp"),
    Column("name", "Reconciled name (raw; stays in data/)", "crm_members, service_tickets, pos_receipts, "
           "ecommerce_orders", "", "direct"),
    Column("name_masked", "Display form of the name (张*)", "derived from name", "", "masked"),
    Column("gender", "Reconciled gender (F/M)", "crm_members, wechat_followers", "", "quasi"),
    Column("birth_date", "Reconciled birth date", "crm_members", "date", "quasi"),
    Column("age", "Age in whole years at the profile's as-of date", "crm_members", "years", "quasi"),
    Column("city", "Reconciled city", "crm_members, wechat_followers, ecommerce_orders", "", "quasi"),
    Column("phone", "Best phone, E.164 (raw; stays in data/)", "crm_members, service_tickets, pos_receipts, "
           "wechat_followers, livestream_interactions", "", "direct"),
    Column("phone_masked", "Display form of the phone (138****8000)", "derived from phone", "", "masked"),
    Column("email", "Best e-mail, normalised (raw; stays in data/)", "crm_members, service_tickets, email_events",
           "", "direct"),
    Column("email_masked", "Display form of the e-mail (z***@example.com)", "derived from email", "", "masked"),
    Column("orders", "Paid orders (refunded ones included, cancelled excluded)", _TX, "orders"),
    Column("cancelled_orders", "Orders cancelled before payment", "ecommerce_orders", "orders"),
    Column("refunded_orders", "Orders with a refund or return", _TX, "orders"),
    Column("gross_revenue", "Paid order amounts before refunds", _TX, "CNY"),
    Column("refunds", "Refunds and returns", _TX, "CNY"),
    Column("net_revenue", "Gross revenue minus refunds and returns", _TX, "CNY"),
    Column("avg_order_value", "Net revenue per paid order (NaN without orders)", _TX, "CNY"),
    Column("first_order_at", "First paid order", _TX, "UTC timestamp"),
    Column("last_order_at", "Latest paid order", _TX, "UTC timestamp"),
    Column("days_since_last_order", "Days from the latest paid order to the as-of date", _TX, "days"),
    Column("favourite_category", "Category with the highest net spend (ties: alphabetical)", _TX),
    Column("top_categories", "Up to three categories by net spend, comma-separated", _TX),
    Column("revenue_tmall", "Net revenue on Tmall", "ecommerce_orders", "CNY"),
    Column("revenue_jd", "Net revenue on JD", "ecommerce_orders", "CNY"),
    Column("revenue_store", "Net revenue in shops (POS)", "pos_receipts", "CNY"),
    Column("main_purchase_channel", "Source (tmall, jd, store) with the highest net revenue", _TX),
    Column("web_sessions", "Web sessions (events more than 30 min apart start a new one)", "web_events", "sessions"),
    Column("web_events", "Events on the website", "web_events", "events"),
    Column("web_product_views", "Web product views", "web_events", "events"),
    Column("web_add_to_cart", "Web add-to-cart events", "web_events", "events"),
    Column("last_web_visit", "Latest web event", "web_events", "UTC timestamp"),
    Column("app_sessions", "App opens (one per session)", "app_events", "sessions"),
    Column("app_events", "Events in the mobile app", "app_events", "events"),
    Column("app_live_entries", "Live-stream entries from the app", "app_events", "events"),
    Column("last_app_visit", "Latest app event", "app_events", "UTC timestamp"),
    Column("live_sessions", "Live-stream sessions watched", "livestream_interactions", "sessions"),
    Column("live_watch_minutes", "Total live-stream watch time", "livestream_interactions", "minutes"),
    Column("live_comments", "Live-stream comments", "livestream_interactions", "comments"),
    Column("live_gifts", "Live-stream gifts sent", "livestream_interactions", "gifts"),
    Column("live_gift_value", "Value of live-stream gifts", "livestream_interactions", "CNY"),
    Column("live_product_clicks", "Product clicks during live streams", "livestream_interactions", "clicks"),
    Column("last_live_watch", "Latest live-stream session", "livestream_interactions", "UTC timestamp"),
    Column("wechat_follower", "Follows the WeChat official account now (subscribed, not unsubscribed)",
           "wechat_followers"),
    Column("wechat_subscribed_at", "Earliest WeChat subscription", "wechat_followers", "UTC timestamp"),
    Column("emails_sent", "Campaign e-mails sent", "email_events", "e-mails"),
    Column("email_open_rate", "Campaigns opened / campaigns sent (NaN when none sent)", "email_events", "share 0–1"),
    Column("email_click_rate", "Campaigns clicked / campaigns sent (NaN when none sent)", "email_events", "share 0–1"),
    Column("email_unsubscribed", "Unsubscribed from e-mail campaigns", "email_events"),
    Column("service_tickets", "Customer-service tickets", "service_tickets", "tickets"),
    Column("complaints", "Tickets in the complaint category (投诉)", "service_tickets", "tickets"),
    Column("open_tickets", "Tickets not yet resolved or closed", "service_tickets", "tickets"),
    Column("avg_satisfaction", "Mean satisfaction score of rated tickets", "service_tickets", "1–5"),
    Column("consent_sms", "SMS marketing consent (latest CRM record)", "crm_members"),
    Column("consent_email", "E-mail marketing consent (latest CRM record; a later unsubscribe revokes it)",
           "crm_members, email_events"),
    Column("consent_wechat", "WeChat marketing consent (latest CRM record)", "crm_members"),
    Column("consent_ads", "Consent to ad-platform audiences (latest CRM record)", "crm_members"),
)
COLUMNS = tuple(c.name for c in DICTIONARY)
#: Columns the model notebooks (07, 08) write back onto the profile.
SCORE_DICTIONARY: tuple[Column, ...] = (
    Column("churn_risk", "Probability of no paid order in the next 90 days (active customers; notebook 07)",
           "model on all channels", "probability 0–1"),
    Column("churn_risk_decile", "Decile of churn_risk, 1 = highest risk", "model on all channels", "decile"),
    Column("purchase_propensity", "Probability of a paid order in the next 30 days (known persons; notebook 08)",
           "model on all channels", "probability 0–1"),
    Column("purchase_propensity_decile", "Decile of purchase_propensity, 1 = most likely to buy",
           "model on all channels", "decile"),
)


def data_dictionary(profile: pd.DataFrame | None = None) -> pd.DataFrame:
    """The profile's data dictionary: column, meaning, sources, unit, personal-data class, type.

    >>> d = data_dictionary()
    >>> d.loc["net_revenue", "unit"]
    'CNY'
    """
    extra = [c for c in SCORE_DICTIONARY if profile is not None and c.name in profile.columns]
    d = pd.DataFrame([c.__dict__ for c in (*DICTIONARY, *extra)]).set_index("name")
    d.index.name = "column"
    d = d.rename(columns={"pii": "personal data"})
    if profile is not None:
        d["type"] = [str(profile[c].dtype) if c in profile.columns else "missing" for c in d.index]
    return d


# ----------------------------------------------------------------------------- traits
def _pick(candidates: pd.DataFrame, value: str, rule: str) -> pd.Series:
    """Per OneID, the value of the best candidate row (``rank`` then latest ``ts``)."""
    c = candidates.dropna(subset=[value])
    order = ["oneid", "rank", "ts"] if rule == "source_priority" else ["oneid", "ts", "rank"]
    asc = [True, True, False] if rule == "source_priority" else [True, False, True]
    c = c.sort_values(order + [value], ascending=asc + [True], kind="stable")
    return c.drop_duplicates("oneid").set_index("oneid")[value]


def _candidates(sources: list[tuple[str, str, str]], load) -> pd.DataFrame:
    parts = []
    for rank, (channel, column, ts) in enumerate(sources):
        df = load(channel, [column, ts])
        parts.append(pd.DataFrame({"oneid": df["oneid"], "value": df[column], "ts": df[ts], "rank": rank}))
    return pd.concat(parts, ignore_index=True)


def _demographics(load, rule: str) -> pd.DataFrame:
    out = {}
    for trait, sources in DEMOGRAPHIC_SOURCES.items():
        cand = _candidates(sources, load)
        if trait in ("name", "gender", "city"):
            cand["value"] = cand["value"].astype("string")
        out[trait] = _pick(cand, "value", rule)
    return pd.DataFrame(out)


def _contacts(load) -> pd.DataFrame:
    """CRM value first; else the value on most records, ties broken by the latest."""
    out = {}
    for kind, sources in CONTACT_SOURCES.items():
        cand = _candidates(sources, load)
        cand["value"] = cand["value"].astype("string")
        cand = cand.dropna(subset=["value"])
        stats = (cand.assign(crm=cand["rank"] == 0)
                 .groupby(["oneid", "value"], sort=False)
                 .agg(crm=("crm", "max"), n=("rank", "size"), ts=("ts", "max")).reset_index())
        stats = stats.sort_values(["oneid", "crm", "n", "ts", "value"], ascending=[True, False, False, False, True],
                                  kind="stable")
        out[kind] = stats.drop_duplicates("oneid").set_index("oneid")["value"]
    return pd.DataFrame(out)


def _commerce(tx: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    orders = tx[tx["is_order"]]
    g = tx.groupby("oneid", sort=False)
    out = pd.DataFrame({
        "orders": orders.groupby("oneid", sort=False).size(),
        "cancelled_orders": tx["status"].eq("cancelled").groupby(tx["oneid"], sort=False).sum(),
        "refunded_orders": (tx["is_order"] & (tx["refund"] > 0)).groupby(tx["oneid"], sort=False).sum(),
        "gross_revenue": g["gross"].sum(),
        "refunds": g["refund"].sum(),
        "net_revenue": g["net"].sum(),
        "first_order_at": orders.groupby("oneid", sort=False)["ordered_at"].min(),
        "last_order_at": orders.groupby("oneid", sort=False)["ordered_at"].max(),
    })
    by_cat = tx.groupby(["oneid", "category"], sort=False)["net"].sum().reset_index()
    by_cat = by_cat[by_cat["net"] > 0].sort_values(["oneid", "net", "category"], ascending=[True, False, True])
    top = by_cat.groupby("oneid", sort=False).head(3)
    out["favourite_category"] = top.drop_duplicates("oneid").set_index("oneid")["category"]
    out["top_categories"] = top.groupby("oneid", sort=False)["category"].agg(",".join)
    by_src = tx.pivot_table(index="oneid", columns="source", values="net", aggfunc="sum", fill_value=0.0)
    for src in ("tmall", "jd", "store"):
        out[f"revenue_{src}"] = by_src[src] if src in by_src.columns else 0.0
    src_cols = ["revenue_tmall", "revenue_jd", "revenue_store"]
    rev = out[src_cols].fillna(0.0)
    main = pd.Series(np.array(["tmall", "jd", "store"])[rev.to_numpy().argmax(axis=1)], index=out.index)
    out["main_purchase_channel"] = main.where(rev.max(axis=1) > 0)
    return out


def _sessions(times: pd.DataFrame) -> pd.Series:
    """Sessions per OneID: events more than :data:`SESSION_GAP` apart start a new one."""
    t = times.sort_values(["oneid", "event_time"], kind="stable")
    new_person = t["oneid"].ne(t["oneid"].shift())
    gap = t["event_time"].diff() > SESSION_GAP
    return (new_person | gap).groupby(t["oneid"], sort=False).sum()


def _web_app(load) -> pd.DataFrame:
    w = load("web_events", ["event_time", "event"])
    a = load("app_events", ["event_time", "event"])
    we, ae = w.groupby("oneid", sort=False), a.groupby("oneid", sort=False)
    return pd.DataFrame({
        "web_sessions": _sessions(w),
        "web_events": we.size(),
        "web_product_views": w["event"].eq("product_view").groupby(w["oneid"], sort=False).sum(),
        "web_add_to_cart": w["event"].eq("add_to_cart").groupby(w["oneid"], sort=False).sum(),
        "last_web_visit": we["event_time"].max(),
        "app_sessions": a["event"].eq("app_open").groupby(a["oneid"], sort=False).sum(),
        "app_events": ae.size(),
        "app_live_entries": a["event"].eq("live_entry").groupby(a["oneid"], sort=False).sum(),
        "last_app_visit": ae["event_time"].max(),
    })


def _livestream(load) -> pd.DataFrame:
    v = load("livestream_interactions", ["session_start", "watch_seconds", "comments", "gifts", "gift_value",
                                         "product_clicks"])
    g = v.groupby("oneid", sort=False)
    return pd.DataFrame({
        "live_sessions": g.size(),
        "live_watch_minutes": g["watch_seconds"].sum().astype(float) / 60.0,
        "live_comments": g["comments"].sum(),
        "live_gifts": g["gifts"].sum(),
        "live_gift_value": g["gift_value"].sum(),
        "live_product_clicks": g["product_clicks"].sum(),
        "last_live_watch": g["session_start"].max(),
    })


def _wechat(load, cutoff: pd.Timestamp) -> pd.DataFrame:
    f = load("wechat_followers", ["subscribed_at", "unsubscribed_at"])
    following = f["unsubscribed_at"].isna() | (f["unsubscribed_at"] >= cutoff)
    return pd.DataFrame({
        "wechat_follower": following.groupby(f["oneid"], sort=False).any(),
        "wechat_subscribed_at": f.groupby("oneid", sort=False)["subscribed_at"].min(),
    })


def _email(load) -> pd.DataFrame:
    m = load("email_events", ["campaign_id", "event", "event_time"])
    per = (m.assign(sent=m["event"] == "sent", opened=m["event"].isin(["open", "click"]),
                    clicked=m["event"] == "click")
           .groupby(["oneid", "campaign_id"], sort=False)[["sent", "opened", "clicked"]].max())
    g = per.groupby("oneid", sort=False)
    sent = g["sent"].sum()
    unsub = m[m["event"] == "unsubscribe"].groupby("oneid", sort=False)["event_time"].max()
    out = pd.DataFrame({
        "emails_sent": sent,
        "email_open_rate": (g["opened"].sum() / sent).where(sent > 0).astype(float),
        "email_click_rate": (g["clicked"].sum() / sent).where(sent > 0).astype(float),
    })
    out["email_unsubscribed"] = out.index.isin(unsub.index)
    out["_unsubscribed_at"] = unsub
    return out


def _service(load) -> pd.DataFrame:
    s = load("service_tickets", ["created_at", "category", "status", "satisfaction"])
    g = s.groupby("oneid", sort=False)
    return pd.DataFrame({
        "service_tickets": g.size(),
        "complaints": s["category"].eq("投诉").groupby(s["oneid"], sort=False).sum(),
        "open_tickets": (~s["status"].isin(["resolved", "closed"])).groupby(s["oneid"], sort=False).sum(),
        "avg_satisfaction": g["satisfaction"].mean().astype(float),
    })


def _crm(load) -> pd.DataFrame:
    c = load("crm_members", ["member_id", "member_level", "registered_at", "updated_at", "consent_sms",
                             "consent_email", "consent_wechat", "consent_ads"])
    latest = c.sort_values(["oneid", "updated_at", "member_id"], ascending=[True, False, True],
                           kind="stable").drop_duplicates("oneid").set_index("oneid")
    out = latest[["member_id", "member_level", "consent_sms", "consent_email", "consent_wechat",
                  "consent_ads"]].copy()
    out["_consent_at"] = latest["updated_at"]
    out["member_since"] = c.groupby("oneid", sort=False)["registered_at"].min()
    return out


# ----------------------------------------------------------------------------- build
def build_customer_360(paths: Paths | None = None, *, as_of: Any = None,
                       demographics_rule: str = "source_priority",
                       transactions: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per OneID (index ``oneid``, sorted) with the columns of :data:`DICTIONARY`.

    ``as_of`` (date or timestamp; default: all data) drops every record at or after it,
    so the profile can serve as leakage-free model features; ages and "days since" are
    measured at it (default: the day after the latest record). ``transactions`` may be
    passed when already loaded (:func:`workbench.transactions.load_transactions` with the
    same ``as_of``).
    """
    if demographics_rule not in DEMOGRAPHIC_RULES:
        raise ValueError(f"The 'demographics_rule' parameter must be one of {list(DEMOGRAPHIC_RULES)}. "
                         f"Got {demographics_rule!r} instead.")
    paths = paths or get_paths()
    cutoff = to_utc(as_of)
    registry = load_registry(paths)
    cache: dict[str, pd.DataFrame] = {}

    def load(channel: str, columns: list[str]) -> pd.DataFrame:
        if channel not in cache:  # every column the profile reads from this channel, in one read
            need = set(NEEDED_COLUMNS[channel]) | {TIME_COLUMNS[channel]}
            cache[channel] = load_linked(channel, sorted(need), paths=paths, registry=registry,
                                         time_col=TIME_COLUMNS[channel], as_of=cutoff)
        missing = set(columns) - set(cache[channel].columns)
        if missing:
            raise KeyError(f"Columns {sorted(missing)} of '{channel}' are read but not declared in NEEDED_COLUMNS.")
        return cache[channel]

    # population: OneIDs with a record before the cutoff, and when each was first/last seen
    seen = []
    for channel, tcol in TIME_COLUMNS.items():
        df = load(channel, [tcol])
        seen.append(pd.DataFrame({"oneid": df["oneid"], "ts": df[tcol], "channel": channel}))
    seen = pd.concat(seen, ignore_index=True)
    cutoff_given = cutoff if cutoff is not None else pd.Timestamp.max.tz_localize("UTC")
    latest_record = seen["ts"].max()
    if cutoff is None:
        cutoff = (latest_record + pd.Timedelta(days=1)).normalize()
    g = seen.groupby("oneid")
    profile = pd.DataFrame({"n_records": g.size(), "first_seen": g["ts"].min(), "last_seen": g["ts"].max()})
    chans = seen[["oneid", "channel"]].drop_duplicates().sort_values(["oneid", "channel"])
    profile["channels"] = chans.groupby("oneid")["channel"].agg(",".join)
    profile["n_channels"] = chans.groupby("oneid").size()
    profile["n_identifiers"] = _identifier_counts(paths, cache, profile.index, cutoff_given)

    tx = load_transactions(paths, as_of=cutoff, registry=registry) if transactions is None else transactions
    parts = [_crm(load), _demographics(load, demographics_rule), _contacts(load), _commerce(tx, cutoff),
             _web_app(load), _livestream(load), _wechat(load, cutoff), _email(load), _service(load)]
    for part in parts:
        profile = profile.join(part, how="left")

    # derived traits
    profile["is_member"] = profile["member_id"].notna()
    profile["is_known"] = profile["is_member"] | profile["phone"].notna() | profile["email"].notna()
    profile["name_masked"] = nz.mask_name(profile["name"])
    profile["phone_masked"] = nz.mask_phone(profile["phone"])
    profile["email_masked"] = nz.mask_email(profile["email"])
    bd = pd.to_datetime(profile["birth_date"])
    ref = cutoff.tz_convert(None)
    profile["age"] = ((ref.year - bd.dt.year) - ((bd.dt.month > ref.month) |
                      ((bd.dt.month == ref.month) & (bd.dt.day > ref.day))).astype(int)).astype("Int64")
    profile["avg_order_value"] = profile["net_revenue"] / profile["orders"]
    profile["days_since_last_order"] = (cutoff - profile["last_order_at"]).dt.total_seconds() / 86400
    revoked = profile["_unsubscribed_at"].notna() & (profile["_consent_at"].isna() |
                                                      (profile["_unsubscribed_at"] > profile["_consent_at"]))
    profile["consent_email"] = profile["consent_email"].astype("boolean").mask(revoked, False)

    counts = ["orders", "cancelled_orders", "refunded_orders", "web_sessions", "web_events", "web_product_views",
              "web_add_to_cart", "app_sessions", "app_events", "app_live_entries", "live_sessions", "live_comments",
              "live_gifts", "live_product_clicks", "emails_sent", "service_tickets", "complaints", "open_tickets"]
    for c in counts:
        profile[c] = profile[c].fillna(0).astype("int64")
    amounts = ["gross_revenue", "refunds", "net_revenue", "revenue_tmall", "revenue_jd", "revenue_store",
               "live_watch_minutes", "live_gift_value"]
    for c in amounts:
        profile[c] = profile[c].fillna(0.0).astype(float).round(6)
    for c in ("wechat_follower", "email_unsubscribed", "is_member", "is_known"):
        profile[c] = profile[c].fillna(False).astype(bool)
    for c in ("consent_sms", "consent_wechat", "consent_ads"):
        profile[c] = profile[c].astype("boolean")
    profile.index.name = "oneid"
    profile = profile.reset_index()[list(COLUMNS)].sort_values("oneid", kind="stable").reset_index(drop=True)
    profile.attrs["as_of"] = cutoff.isoformat()
    return profile


def _identifier_counts(paths: Paths, cache: dict, oneids: pd.Index, cutoff: pd.Timestamp) -> pd.Series:
    """Distinct identifier values per OneID, read through the identity settings' observation rules."""
    from .clean import load_cleaned
    from .identity import IdentitySettings
    from .identity.observations import observe

    settings = IdentitySettings.from_yaml(None)
    parts = []
    for channel, spec in settings.sources.items():
        if channel not in cache:
            continue
        linked = cache[channel]  # records kept by as_of, with their OneIDs
        df = load_cleaned(channel, paths)
        if len(linked) < len(df):  # the same cutoff filter load_linked applied, in the same row order
            tcol = TIME_COLUMNS[channel]
            df = df[(df[tcol] < cutoff).fillna(False).to_numpy(bool)].reset_index(drop=True)
        if len(df) != len(linked) or not (df["record_id"].to_numpy() == linked["record_id"].to_numpy()).all():
            df = df.set_index("record_id").loc[linked["record_id"]].reset_index()
        ids, _, _ = observe(df, spec, settings)
        parts.append(pd.DataFrame({"oneid": linked["oneid"].to_numpy()[ids["rec"].to_numpy()],
                                   "identifier": ids["identifier"].to_numpy(), "value": ids["value"].to_numpy()}))
    obs = pd.concat(parts, ignore_index=True)
    return obs.drop_duplicates().groupby("oneid").size().reindex(oneids, fill_value=0)


def reconcile(profile: pd.DataFrame, paths: Paths | None = None) -> pd.DataFrame:
    """The profile's totals beside the same totals computed straight from the cleaned tables.

    Returns one row per check (``profile``, ``cleaned``, ``difference``, ``ok``); revenue
    must match to the cent and counts exactly.
    """
    from .transactions import expected_totals

    exp = expected_totals(paths, as_of=profile.attrs.get("as_of"))
    got = {"net_revenue": round(float(profile["net_revenue"].sum()), 2), "orders": int(profile["orders"].sum()),
           "cancelled_orders": int(profile["cancelled_orders"].sum())}
    rows = []
    for k, v in exp.items():
        diff = round(got[k] - v, 2)
        rows.append({"check": k, "profile": got[k], "cleaned": v, "difference": diff, "ok": abs(diff) < 0.005})
    rows.append({"check": "one row per OneID", "profile": len(profile), "cleaned": profile["oneid"].nunique(),
                 "difference": len(profile) - profile["oneid"].nunique(), "ok": profile["oneid"].is_unique})
    return pd.DataFrame(rows).set_index("check")


def write_customer_360(paths: Paths | None = None, *, as_of: Any = None,
                       demographics_rule: str = "source_priority") -> pd.DataFrame:
    """Build the profile and write it, its dictionary and its metrics. Returns the profile."""
    t0 = time.perf_counter()
    paths = (paths or get_paths()).ensure()
    profile = build_customer_360(paths, as_of=as_of, demographics_rule=demographics_rule)
    profile.to_parquet(paths.processed / "customer_360.parquet", index=False)
    data_dictionary(profile).to_csv(paths.processed / "customer_360_dictionary.csv", encoding="utf-8")
    rec = reconcile(profile, paths)
    metrics = {"stage": "customer_360", "seconds": round(time.perf_counter() - t0, 3),
               "as_of": profile.attrs["as_of"], "demographics_rule": demographics_rule,
               "totals": {"oneids": int(len(profile)), "known": int(profile["is_known"].sum()),
                          "customers": int((profile["orders"] > 0).sum()),
                          "net_revenue": float(rec.loc["net_revenue", "profile"]),
                          "orders": int(rec.loc["orders", "profile"])},
               "reconciles": bool(rec["ok"].all())}
    (paths.metrics / "customer_360.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    return profile


def load_customer_360(paths: Paths | None = None) -> pd.DataFrame:
    """The profile written by :func:`write_customer_360` (notebook 04)."""
    paths = paths or get_paths()
    f = paths.processed / "customer_360.parquet"
    if not f.exists():
        raise FileNotFoundError(f"{f} not found: run notebook 04_customer_360 first.")
    return pd.read_parquet(f)


def public_view(profile: pd.DataFrame) -> pd.DataFrame:
    """The profile without direct identifiers (raw name, phone, e-mail, member id): what
    reports and notebooks may show. Masked columns stay.

    >>> public_view(pd.DataFrame(columns=["oneid", "phone", "phone_masked"])).columns.tolist()
    ['oneid', 'phone_masked']
    """
    direct = {c.name for c in DICTIONARY if c.pii == "direct"}
    return profile[[c for c in profile.columns if c not in direct]]
