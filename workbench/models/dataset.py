"""Leakage-free model datasets: features before a cutoff, labels in the window after it.

A dataset is a snapshot at a **cutoff** date ``c``:

- **features** use only records strictly before ``c`` (the customer 360 profile built with
  ``as_of=c`` plus recent-activity windows derived from the same records, with every date turned
  into "days before the cutoff");
- **labels** use only paid orders in the window ``[c, c + horizon)``: an order exactly at ``c``
  counts, an order at ``c + horizon`` does not.

Two tasks:

- ``"churn"`` — population: *active* customers, ≥ 1 paid order in ``[c - lookback, c)``;
  ``y = 1`` when they place **no** paid order in the horizon (90 days by default).
- ``"propensity"`` — population: every *known* OneID (member, phone or e-mail) seen before
  ``c``; ``y = 1`` when they place ≥ 1 paid order in the horizon (30 days by default). The
  boolean group ``engaged_never_bought`` (no order before ``c`` but some web, app, live-stream or
  WeChat engagement) is kept in :attr:`Dataset.groups` so metrics can be reported for it.

Two builders: :func:`make_dataset` reads the workbench's cleaned channel tables (all channels),
:func:`dataset_from_transactions` needs nothing but a plain purchases table (customer id, date,
amount; RFM-style features). Both return a :class:`Dataset` whose rows are sorted by customer id.

**Point-in-time rules** (what "before the cutoff" means for fields that change over time):

- CRM records are exported as snapshots: a record's membership tier is as of its ``updated_at``.
  ``member_level`` is therefore taken from the latest CRM record *updated* before the cutoff
  (``"unknown"`` when every record of the member was updated later); marketing consents are not
  used as features (snapshot fields that say who may be contacted, not how they behave).
- A service ticket's ``status`` is a current-state field without a timestamp (a ticket open at
  the cutoff may be closed in the export), so ``open_tickets`` is dropped. Satisfaction ratings
  are kept: they are assumed to be given at the contact (the export has no rating date).
- Known, documented residuals: CRM demographics (gender, city) are treated as static (the
  profile takes them from the latest CRM record registered before the cutoff, which may have
  been updated later); e-commerce refund status has no refund date (a refund after the cutoff
  lowers the net revenue of an order placed before it); OneIDs come from the identity stage run
  on all data (later records can merge two identities). None can be fixed without history tables.
- ``festival_days_in_window`` (6.18 / Double-11 days inside the label window) is the only
  feature about the window itself: a public calendar fact known at the cutoff, not data.

Example:
    >>> tx = pd.DataFrame({"customer_id": ["a", "a", "b", "b", "c"],
    ...                    "date": ["2024-01-05", "2024-02-20", "2024-01-10", "2024-03-02", "2024-02-01"],
    ...                    "amount": [10.0, 20.0, 5.0, 7.0, 30.0]})
    >>> ds = dataset_from_transactions(tx, customer_id_col="customer_id", datetime_col="date",
    ...                                monetary_value_col="amount", cutoff="2024-02-15",
    ...                                task="propensity", horizon_days=16, lookback_days=90)
    >>> ds.y.to_dict()          # b's order on 2024-03-02 is at cutoff + 16 days: outside the window
    {'a': 1, 'b': 0, 'c': 0}
    >>> ds.X.loc["a", ["orders", "days_since_last_order", "revenue_90d"]].tolist()
    [1.0, 41.0, 10.0]
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from ..config import Paths, get_paths
from ..transactions import load_linked, load_registry, load_transactions, to_utc

__all__ = ["Dataset", "TASKS", "DEFAULT_HORIZON_DAYS", "build_features", "make_dataset",
           "dataset_from_transactions", "rfm_features", "festival_days"]

TASKS = ("churn", "propensity")
#: Label window length in days when ``horizon_days`` is not given.
DEFAULT_HORIZON_DAYS = {"churn": 90, "propensity": 30}
#: Windows (days before the cutoff) of the RFM order/revenue counts.
RFM_WINDOWS = (30, 90, 180, 365)
#: Windows of the recent web/app/live/e-mail activity counts.
ACTIVITY_WINDOWS = (30, 90)
#: Categorical features of the customer 360 dataset (one-hot encoded by the pipelines).
CATEGORICAL_360 = ("gender", "city", "member_level", "favourite_category", "main_purchase_channel")
#: Profile columns that are not features: direct identifiers and their masked forms (from the
#: data dictionary), free-text lists, the raw birth date (``age`` is kept), snapshot fields.
_DROP_360 = ("birth_date", "channels", "top_categories", "open_tickets",
             "consent_sms", "consent_email", "consent_wechat", "consent_ads")
_DAY = pd.Timedelta(days=1)
#: Service-ticket categories that signal a problem (complaint, product quality, return/exchange).
PROBLEM_TICKETS = ("投诉", "产品质量", "退换货")
#: China's biggest shopping festivals (6.18, Double 11), month-day in China time.
FESTIVAL_DAYS = ("06-18", "11-11")


@dataclass
class Dataset:
    """A model dataset at one cutoff: features ``X`` (index: customer id, sorted), labels ``y``.

    ``y`` is None for an unlabelled scoring set (``make_dataset(..., label=False)``).
    ``groups`` holds boolean columns marking sub-populations (``engaged_never_bought``) with the
    same index as ``X``; ``numeric`` and ``categorical`` split ``feature_columns`` for the
    pipelines.
    """

    X: pd.DataFrame
    y: pd.Series | None
    cutoff: pd.Timestamp
    task: str
    label_definition: str
    feature_columns: list[str]
    population: str
    horizon_days: int
    lookback_days: int
    numeric: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    groups: pd.DataFrame | None = None
    data_end: pd.Timestamp | None = None
    source: str = "customer_360"

    @property
    def label_window(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """``(cutoff, cutoff + horizon)``: the half-open window the labels come from."""
        return self.cutoff, self.cutoff + pd.Timedelta(days=self.horizon_days)

    @property
    def base_rate(self) -> float:
        """Share of positives (NaN when unlabelled)."""
        return float("nan") if self.y is None or len(self.y) == 0 else float(self.y.mean())

    def __len__(self) -> int:
        return len(self.X)

    def subset(self, index: Any) -> "Dataset":
        """The same dataset restricted to the customers in ``index`` (kept sorted).

        >>> ds = Dataset(pd.DataFrame({"x": [1.0, 2.0]}, index=["a", "b"]), pd.Series([0, 1], index=["a", "b"]),
        ...              pd.Timestamp("2024-01-01", tz="UTC"), "churn", "", ["x"], "", 90, 180, ["x"])
        >>> ds.subset(["b"]).y.tolist()
        [1]
        """
        idx = self.X.index.intersection(pd.Index(index)).sort_values()
        return replace(self, X=self.X.loc[idx], y=None if self.y is None else self.y.loc[idx],
                       groups=None if self.groups is None else self.groups.loc[idx])

    def summary(self) -> dict[str, Any]:
        """Plain-JSON description (for model cards): cutoff, label window, size, base rate."""
        start, end = self.label_window
        return {"task": self.task, "source": self.source, "cutoff": start.isoformat(),
                "label_window": [start.isoformat(), end.isoformat()], "horizon_days": self.horizon_days,
                "lookback_days": self.lookback_days, "n": int(len(self.X)),
                "positives": None if self.y is None else int(self.y.sum()),
                "base_rate": None if self.y is None else round(self.base_rate, 6),
                "population": self.population, "label_definition": self.label_definition,
                "data_end": None if self.data_end is None else self.data_end.isoformat(),
                "groups": {} if self.groups is None else {c: int(self.groups[c].sum()) for c in self.groups}}


# ----------------------------------------------------------------------------- checks
def _check_task(task: Any) -> str:
    if task not in TASKS:
        raise ValueError(f"The 'task' parameter must be one of {list(TASKS)}. Got {task!r} instead.")
    return task


def _check_days(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"The '{name}' parameter must be a positive whole number of days. Got {value!r} instead.")
    return int(value)


def _check_cutoff(cutoff: Any) -> pd.Timestamp:
    if cutoff is None:
        raise ValueError("The 'cutoff' parameter must be a date or timestamp such as '2026-02-01'. Got None instead.")
    return to_utc(cutoff, "cutoff")


def _check_horizon(cutoff: pd.Timestamp, horizon_days: int, data_start: pd.Timestamp,
                   data_end: pd.Timestamp) -> None:
    """The label window must lie inside the data: it may end at the end of the last day with data."""
    if pd.isna(data_end):
        raise ValueError("The transactions hold no purchase: there is nothing to label.")
    end = cutoff + pd.Timedelta(days=horizon_days)
    last_day_end = data_end.normalize() + _DAY
    if end > last_day_end:
        latest = last_day_end - pd.Timedelta(days=horizon_days)
        raise ValueError(
            f"The label window [{cutoff:%Y-%m-%d}, {end:%Y-%m-%d}) runs past the last transaction date "
            f"{data_end:%Y-%m-%d}: with horizon_days={horizon_days} the 'cutoff' parameter must be on or before "
            f"{latest:%Y-%m-%d}. Got {cutoff:%Y-%m-%d} instead.")
    if cutoff <= data_start:
        raise ValueError(f"The 'cutoff' parameter must be after the first transaction ({data_start:%Y-%m-%d}) so "
                         f"there is history to learn from. Got {cutoff:%Y-%m-%d} instead.")


def _days_before(cutoff: pd.Timestamp, ts: pd.Series) -> pd.Series:
    return (cutoff - ts).dt.total_seconds() / 86400.0


# ----------------------------------------------------------------------------- shared pieces
def rfm_features(purchases: pd.DataFrame, *, customer_id_col: str = "customer_id", datetime_col: str = "date",
                 monetary_value_col: str = "amount", cutoff: Any, windows: tuple[int, ...] = RFM_WINDOWS,
                 observation_start: Any = None, first_seen: pd.Series | None = None) -> pd.DataFrame:
    """Recency, frequency, monetary and tenure features at ``cutoff`` from purchases before it.

    One row per customer with a purchase before the cutoff (index: customer id, sorted). Every
    row of ``purchases`` is one purchase; rows at or after the cutoff are ignored. Columns:
    ``orders``, ``purchase_days`` (distinct days with a purchase), ``revenue``,
    ``avg_order_value``, ``days_since_first_order`` (tenure), ``days_since_last_order``
    (recency), ``mean_days_between_orders`` (between purchase days; NaN with one day),
    ``recency_ratio`` (recency ÷ mean gap: > 1 means overdue), ``orders_per_30d`` (orders per
    30 days observed, floored at 30 days; a customer is observed from ``observation_start``
    — default: the earliest purchase in the table — or from ``first_seen`` when later, e.g. the
    first record of any channel), ``orders_<w>d`` / ``revenue_<w>d`` for each window ``w`` and
    ``order_trend_90d`` (orders in the last 90 days minus the 90 before).

    >>> p = pd.DataFrame({"customer_id": ["a", "a", "a"], "date": pd.to_datetime(
    ...     ["2024-01-01", "2024-01-21", "2024-02-10"], utc=True), "amount": [10.0, 20.0, 30.0]})
    >>> f = rfm_features(p, cutoff="2024-03-01", windows=(30,))
    >>> f.loc["a", ["orders", "days_since_last_order", "mean_days_between_orders", "orders_30d"]].tolist()
    [3.0, 20.0, 20.0, 1.0]
    """
    cutoff = _check_cutoff(cutoff)
    missing = [c for c in (customer_id_col, datetime_col, monetary_value_col) if c not in purchases.columns]
    if missing:
        raise ValueError(f"The 'purchases' DataFrame is missing the columns {missing}. "
                         f"Columns present: {list(purchases.columns)}.")
    ts = purchases[datetime_col]
    p = pd.DataFrame({"id": purchases[customer_id_col].to_numpy(), "ts": ts.to_numpy(),
                      "value": purchases[monetary_value_col].astype(float).fillna(0.0).to_numpy()})
    p = p[(p["ts"] < cutoff).to_numpy(bool)]
    start = p["ts"].min() if observation_start is None else to_utc(observation_start, "observation_start")
    p["day"] = p["ts"].dt.floor("D")
    g = p.groupby("id", sort=True)
    first, last = g["ts"].min(), g["ts"].max()
    out = pd.DataFrame({"orders": g.size().astype(float), "purchase_days": g["day"].nunique().astype(float),
                        "revenue": g["value"].sum()})
    out["avg_order_value"] = out["revenue"] / out["orders"]
    out["days_since_first_order"] = _days_before(cutoff, first)
    out["days_since_last_order"] = _days_before(cutoff, last)
    span = (g["day"].max() - g["day"].min()).dt.total_seconds() / 86400.0
    out["mean_days_between_orders"] = (span / (out["purchase_days"] - 1)).where(out["purchase_days"] > 1)
    out["recency_ratio"] = out["days_since_last_order"] / out["mean_days_between_orders"]
    since = pd.Series(start, index=out.index, dtype=first.dtype)
    if first_seen is not None:
        later = first_seen.reindex(out.index)
        since = since.where(~(later > since), later)
    since = since.where(since <= first, first)  # never after the first purchase
    out["orders_per_30d"] = out["orders"] / np.maximum(_days_before(cutoff, since), 30.0) * 30.0
    for w in windows:
        recent = p[(p["ts"] >= cutoff - pd.Timedelta(days=w)).to_numpy(bool)].groupby("id", sort=True)
        out[f"orders_{w}d"] = recent.size().reindex(out.index, fill_value=0).astype(float)
        out[f"revenue_{w}d"] = recent["value"].sum().reindex(out.index, fill_value=0.0)
    prev = p[((p["ts"] >= cutoff - pd.Timedelta(days=180)) & (p["ts"] < cutoff - pd.Timedelta(days=90))).to_numpy(bool)]
    last90 = p[(p["ts"] >= cutoff - pd.Timedelta(days=90)).to_numpy(bool)]
    out["order_trend_90d"] = (last90.groupby("id").size().reindex(out.index, fill_value=0)
                              - prev.groupby("id").size().reindex(out.index, fill_value=0)).astype(float)
    out.index.name = customer_id_col
    return out


def _purchased_in(purchases: pd.DataFrame, ids: pd.Index, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
    """Per id: True when a purchase (columns ``id``, ``ts``) falls in ``[start, end)``."""
    inside = purchases[((purchases["ts"] >= start) & (purchases["ts"] < end)).to_numpy(bool)]
    return pd.Series(ids.isin(pd.Index(inside["id"].unique())), index=ids)


def _label_text(task: str, horizon: int, what: str = "paid order") -> str:
    if task == "churn":
        return (f"y = 1 (churned) when the customer places no {what} in [cutoff, cutoff + {horizon} days); "
                f"an order exactly at the cutoff counts, one at cutoff + {horizon} days does not.")
    return (f"y = 1 (purchased) when the customer places at least one {what} in [cutoff, cutoff + {horizon} days); "
            f"an order exactly at the cutoff counts, one at cutoff + {horizon} days does not.")


def _finish(X: pd.DataFrame, y: pd.Series | None, *, cutoff, task, horizon, lookback, population, label_definition,
            numeric, categorical, groups, data_end, source) -> Dataset:
    X = X.sort_index(kind="stable")
    columns = list(numeric) + list(categorical)
    X = X[columns]
    if y is not None:
        y = y.loc[X.index].astype("int64").rename(task)
    if groups is not None:
        groups = groups.loc[X.index]
    return Dataset(X=X, y=y, cutoff=cutoff, task=task, label_definition=label_definition, feature_columns=columns,
                   population=population, horizon_days=horizon, lookback_days=lookback, numeric=list(numeric),
                   categorical=list(categorical), groups=groups, data_end=data_end, source=source)


# ----------------------------------------------------------------------------- plain transactions
def dataset_from_transactions(transactions: pd.DataFrame, *, customer_id_col: str = "customer_id",
                              datetime_col: str = "date", monetary_value_col: str = "amount", cutoff: Any,
                              task: str = "propensity", horizon_days: int | None = None,
                              lookback_days: int = 180, label: bool = True) -> Dataset:
    """A churn or propensity dataset from a plain purchases table (one row per purchase).

    Features are :func:`rfm_features` at ``cutoff`` (purchases strictly before it). Population:
    churn — customers with ≥ 1 purchase in ``[cutoff - lookback_days, cutoff)``; propensity —
    every customer with a purchase before the cutoff. Labels from ``[cutoff, cutoff + horizon)``;
    a window running past the last purchase date raises. Naive datetimes are read as UTC.

    >>> tx = pd.DataFrame({"id": [1, 1, 2], "when": ["2024-01-01", "2024-03-01", "2024-02-01"],
    ...                    "usd": [5.0, 6.0, 7.0]})
    >>> ds = dataset_from_transactions(tx, customer_id_col="id", datetime_col="when", monetary_value_col="usd",
    ...                                cutoff="2024-02-15", task="churn", horizon_days=16)
    >>> ds.y.to_dict(), ds.population
    ({1: 0, 2: 1}, 'customers with at least one purchase in [cutoff - 180 days, cutoff)')
    """
    task = _check_task(task)
    horizon = _check_days(DEFAULT_HORIZON_DAYS[task] if horizon_days is None else horizon_days, "horizon_days")
    lookback = _check_days(lookback_days, "lookback_days")
    cutoff = _check_cutoff(cutoff)
    if not isinstance(transactions, pd.DataFrame):
        raise ValueError(f"The 'transactions' parameter must be a pandas DataFrame. "
                         f"Got {type(transactions).__name__} instead.")
    missing = [c for c in (customer_id_col, datetime_col, monetary_value_col) if c not in transactions.columns]
    if missing:
        raise ValueError(f"The 'transactions' DataFrame is missing the columns {missing}. "
                         f"Columns present: {list(transactions.columns)}.")
    raw = transactions[datetime_col]
    try:
        ts = pd.to_datetime(raw)
    except (TypeError, ValueError) as exc:
        bad = raw[pd.to_datetime(raw, errors="coerce", format="mixed").isna() & raw.notna()].head(3).tolist()
        raise ValueError(f"The '{datetime_col}' column must hold dates. Got values such as {bad} instead.") from exc
    ts = ts.dt.tz_localize("UTC") if ts.dt.tz is None else ts.dt.tz_convert("UTC")
    if ts.isna().any() or transactions[customer_id_col].isna().any():
        raise ValueError(f"The '{datetime_col}' and '{customer_id_col}' columns must not have missing values. "
                         f"Got {int(ts.isna().sum())} missing dates and "
                         f"{int(transactions[customer_id_col].isna().sum())} missing ids instead.")
    purchases = pd.DataFrame({"id": transactions[customer_id_col].to_numpy(), "ts": ts.to_numpy(),
                              "value": pd.to_numeric(transactions[monetary_value_col]).to_numpy(float)})
    data_end = purchases["ts"].max() if len(purchases) else pd.NaT
    if label:
        _check_horizon(cutoff, horizon, purchases["ts"].min(), data_end)
    X = rfm_features(purchases, customer_id_col="id", datetime_col="ts", monetary_value_col="value", cutoff=cutoff)
    if task == "churn":
        X = X[X["days_since_last_order"] <= lookback]
        population = f"customers with at least one purchase in [cutoff - {lookback} days, cutoff)"
    else:
        population = "every customer with a purchase before the cutoff"
    X.index.name = customer_id_col
    y = None
    if label:
        bought = _purchased_in(purchases, X.index, cutoff, cutoff + pd.Timedelta(days=horizon))
        y = (~bought if task == "churn" else bought).astype("int64")
    return _finish(X, y, cutoff=cutoff, task=task, horizon=horizon, lookback=lookback, population=population,
                   label_definition=_label_text(task, horizon, "purchase"), numeric=list(X.columns), categorical=[],
                   groups=None, data_end=data_end, source="transactions")


# ----------------------------------------------------------------------------- customer 360
def festival_days(cutoff: Any, horizon_days: int) -> float:
    """Shopping-festival days (:data:`FESTIVAL_DAYS`, China dates) in ``[cutoff, cutoff + horizon)``.

    A calendar fact known in advance, so a legitimate feature: it lets a model trained on
    snapshots from several seasons tell a label window with 6.18 or Double 11 from one without.

    >>> festival_days("2026-05-02", 90), festival_days("2026-02-01", 90), festival_days("2025-11-11", 1)
    (1.0, 0.0, 1.0)
    """
    start = _check_cutoff(cutoff).tz_convert("Asia/Shanghai").normalize()
    days = pd.date_range(start, periods=_check_days(horizon_days, "horizon_days"), freq="D").strftime("%m-%d")
    return float(np.isin(np.asarray(days), FESTIVAL_DAYS).sum())


def _member_level_at(paths: Paths, registry: pd.DataFrame, cutoff: pd.Timestamp, ids: pd.Index) -> pd.Series:
    """Tier of the latest CRM record updated before the cutoff; 'unknown' for members updated only later."""
    c = load_linked("crm_members", ["member_id", "member_level", "updated_at"], paths=paths, registry=registry,
                    time_col="updated_at", as_of=cutoff)
    c = c.sort_values(["oneid", "updated_at", "member_id"], ascending=[True, False, True], kind="stable")
    return c.drop_duplicates("oneid").set_index("oneid")["member_level"].astype("string").reindex(ids)


def _recent_activity(paths: Paths, registry: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """Counts of web, app, live-stream, e-mail and service activity in the windows before the cutoff
    (missing = none), and days since the last service ticket / problem ticket (missing = never)."""
    def load(channel, cols, tcol):
        df = load_linked(channel, cols, paths=paths, registry=registry, time_col=tcol, as_of=cutoff)
        return df.rename(columns={tcol: "ts"})

    web = load("web_events", ["event_time", "event"], "event_time")
    app = load("app_events", ["event_time", "event"], "event_time")
    live = load("livestream_interactions", ["session_start", "watch_seconds", "product_clicks"], "session_start")
    mail = load("email_events", ["event_time", "event", "campaign_id"], "event_time")
    svc = load("service_tickets", ["created_at", "category", "satisfaction"], "created_at")
    svc["problem"] = svc["category"].isin(PROBLEM_TICKETS).to_numpy(bool)
    svc["unhappy"] = (svc["satisfaction"].astype(float) <= 2).to_numpy(bool)
    parts: dict[str, pd.Series] = {}
    for w in ACTIVITY_WINDOWS:
        start = cutoff - pd.Timedelta(days=w)

        def recent(df):
            return df[(df["ts"] >= start).to_numpy(bool)]

        wb, ap, lv, ml, sv = recent(web), recent(app), recent(live), recent(mail), recent(svc)
        parts[f"web_events_{w}d"] = wb.groupby("oneid").size()
        parts[f"web_active_days_{w}d"] = wb["ts"].dt.floor("D").groupby(wb["oneid"]).nunique()
        parts[f"web_add_to_cart_{w}d"] = wb["event"].eq("add_to_cart").groupby(wb["oneid"]).sum()
        parts[f"app_events_{w}d"] = ap.groupby("oneid").size()
        parts[f"app_active_days_{w}d"] = ap["ts"].dt.floor("D").groupby(ap["oneid"]).nunique()
        parts[f"app_add_to_cart_{w}d"] = ap["event"].eq("add_to_cart").groupby(ap["oneid"]).sum()
        parts[f"live_sessions_{w}d"] = lv.groupby("oneid").size()
        parts[f"live_watch_minutes_{w}d"] = lv["watch_seconds"].astype(float).groupby(lv["oneid"]).sum() / 60.0
        parts[f"live_product_clicks_{w}d"] = lv["product_clicks"].astype(float).groupby(lv["oneid"]).sum()
        opened = ml[ml["event"].isin(["open", "click"])]
        parts[f"email_opens_{w}d"] = opened.groupby("oneid")["campaign_id"].nunique()
        parts[f"email_clicks_{w}d"] = ml["event"].eq("click").groupby(ml["oneid"]).sum()
        parts[f"emails_sent_{w}d"] = ml["event"].eq("sent").groupby(ml["oneid"]).sum()
        parts[f"service_tickets_{w}d"] = sv.groupby("oneid").size()
        parts[f"problem_tickets_{w}d"] = sv["problem"].groupby(sv["oneid"]).sum()
        parts[f"unhappy_tickets_{w}d"] = sv["unhappy"].groupby(sv["oneid"]).sum()
    counts = pd.DataFrame(parts).astype(float)
    since = pd.DataFrame({
        "days_since_last_ticket": _days_before(cutoff, svc.groupby("oneid")["ts"].max()),
        "days_since_last_problem_ticket": _days_before(cutoff, svc[svc["problem"]].groupby("oneid")["ts"].max()),
    })
    return counts, since


def build_features(paths: Paths | None = None, *, cutoff: Any, transactions_before: pd.DataFrame | None = None
                   ) -> pd.DataFrame:
    """Every OneID seen before ``cutoff`` with its model features (index ``oneid``, sorted).

    Built only from records strictly before the cutoff: the customer 360 profile at
    ``as_of=cutoff`` (direct identifiers, masked contacts, free-text lists and snapshot fields
    dropped; dates turned into ``days_since_*``; channel list turned into ``has_<channel>``
    flags), :func:`rfm_features` of the paid orders, activity counts in the last 30/90 days (web,
    app, live-stream, e-mail, service tickets incl. problem tickets and ratings of 1–2), days since
    the last ticket / problem ticket / touch of any kind, ``engagement_trend_90d`` (touches in the
    last 90 days ÷ the person's usual 90 days), ``festival_order_share`` (share of orders placed on
    6.18 or 11.11) and ``store_revenue_share``. Also holds ``is_known`` and
    ``engaged_never_bought`` (no paid order before the cutoff, some web, app, live-stream or
    WeChat engagement). Booleans are 0/1 floats; categoricals are strings (missing = NaN).
    ``transactions_before`` may pass ``load_transactions(paths, as_of=cutoff)`` when already loaded.

    Example:
        >>> f = build_features(cutoff="2026-02-01")          # doctest: +SKIP
        >>> f.loc[f["engaged_never_bought"] == 1, "orders"].max()   # doctest: +SKIP
        0.0
    """
    from ..customer360 import DICTIONARY, TIME_COLUMNS, build_customer_360

    paths = paths or get_paths()
    cutoff = _check_cutoff(cutoff)
    registry = load_registry(paths)
    tx = load_transactions(paths, as_of=cutoff, registry=registry) if transactions_before is None \
        else transactions_before
    if len(tx) and not (tx["ordered_at"] < cutoff).all():
        raise ValueError("The 'transactions_before' parameter must only hold orders before the cutoff "
                         f"({cutoff:%Y-%m-%d}): pass load_transactions(paths, as_of=cutoff). Got orders up to "
                         f"{tx['ordered_at'].max():%Y-%m-%d} instead.")
    profile = build_customer_360(paths, as_of=cutoff, transactions=tx).set_index("oneid")

    identifiers = [c.name for c in DICTIONARY if c.pii in ("direct", "masked")]
    f = profile.drop(columns=identifiers + list(_DROP_360))
    listed = profile["channels"].fillna("").str.split(",")
    f = f.assign(**{f"has_{ch}": listed.apply(lambda cs, ch=ch: ch in cs) for ch in TIME_COLUMNS})
    dates = [c for c in f.columns if pd.api.types.is_datetime64_any_dtype(f[c])]
    for c in dates:
        name = {"member_since": "member_days", "wechat_subscribed_at": "wechat_follower_days"}.get(c)
        name = name or "days_since_" + c.removesuffix("_at")
        f[name] = _days_before(cutoff, f[c])
    f = f.drop(columns=dates)
    member = f["is_member"].astype(bool)
    level = _member_level_at(paths, registry, cutoff, f.index)
    f["member_level"] = level.where(member).mask(member & level.isna(), "unknown")

    paid = tx[tx["is_order"].to_numpy(bool)]
    data_start = tx["ordered_at"].min() if len(tx) else cutoff
    rfm = rfm_features(paid, customer_id_col="oneid", datetime_col="ordered_at", monetary_value_col="net",
                       cutoff=cutoff, observation_start=data_start, first_seen=profile["first_seen"])
    f = f.drop(columns=[c for c in rfm.columns if c in f.columns])
    f = f.join(rfm, how="left")
    counts = [c for c in rfm.columns if c.startswith(("orders", "revenue", "purchase_days"))]
    f[counts] = f[counts].fillna(0.0)
    activity, since = _recent_activity(paths, registry, cutoff)
    f = f.join(activity, how="left").join(since, how="left").copy()  # copy: one block, not hundreds
    f[list(activity.columns)] = f[list(activity.columns)].fillna(0.0)
    # engagement now vs usual: touches (web + app events, live sessions) in the last 90 days
    # relative to the person's average per 90 days since first seen (or the data start)
    touches = f["web_events"] + f["app_events"] + f["live_sessions"]
    recent = f["web_events_90d"] + f["app_events_90d"] + f["live_sessions_90d"]
    observed = np.clip(np.minimum(f["days_since_first_seen"], (cutoff - data_start) / _DAY), 90.0, None)
    f["engagement_trend_90d"] = (recent / (touches * 90.0 / observed)).where(touches > 0)
    stamp = paid["ordered_at"].dt.tz_convert("Asia/Shanghai").dt.strftime("%m-%d")
    f["festival_order_share"] = (stamp.isin(FESTIVAL_DAYS).groupby(paid["oneid"]).mean()
                                 .reindex(f.index).astype(float))
    f["store_revenue_share"] = (f["revenue_store"] / f["net_revenue"]).where(f["net_revenue"] > 0)
    f["days_since_last_touch"] = f[["days_since_last_order", "days_since_last_web_visit",
                                    "days_since_last_app_visit", "days_since_last_live_watch"]].min(axis=1)
    engaged = ((f["live_sessions"] > 0) | (f["web_sessions"] > 0) | (f["app_sessions"] > 0)
               | f["wechat_follower"].astype(bool))
    f["engaged_never_bought"] = (f["orders"] == 0) & engaged

    categorical = [c for c in CATEGORICAL_360 if c in f.columns]
    for c in categorical:
        f[c] = f[c].astype("string").astype("str")  # missing values become NaN
    numeric = sorted(c for c in f.columns if c not in categorical)
    f = pd.concat([f[numeric].astype("float64"), f[categorical]], axis=1).sort_index(kind="stable")
    f.index.name = "oneid"
    f.attrs = {"cutoff": cutoff.isoformat(), "categorical": categorical}
    return f


def make_dataset(paths: Paths | None = None, *, cutoff: Any, task: str = "churn", horizon_days: int | None = None,
                 lookback_days: int = 180, transactions: pd.DataFrame | None = None,
                 features: pd.DataFrame | None = None, label: bool = True) -> Dataset:
    """The churn or propensity dataset of the workbench's data at ``cutoff``.

    ``horizon_days`` defaults to 90 (churn) or 30 (propensity). ``transactions`` may pass the
    full purchases table (``load_transactions(paths)``, all dates; loaded when None): it is read
    only for the labels and the data's end date. ``features`` may pass
    ``build_features(paths, cutoff=cutoff)`` to reuse it across tasks. ``label=False`` builds
    an unlabelled scoring set (``y`` None, no horizon check), e.g. at today's date.
    A label window running past the last transaction date raises ``ValueError``.

    Example:
        >>> ds = make_dataset(cutoff="2026-02-01", task="churn")      # doctest: +SKIP
        >>> ds.X.shape, round(ds.base_rate, 2)                        # doctest: +SKIP
    """
    task = _check_task(task)
    horizon = _check_days(DEFAULT_HORIZON_DAYS[task] if horizon_days is None else horizon_days, "horizon_days")
    lookback = _check_days(lookback_days, "lookback_days")
    cutoff = _check_cutoff(cutoff)
    paths = paths or get_paths()
    purchases = data_end = None
    if label:
        tx = load_transactions(paths) if transactions is None else transactions
        missing = [c for c in ("oneid", "ordered_at", "is_order") if c not in tx.columns]
        if missing:
            raise ValueError(f"The 'transactions' DataFrame is missing the columns {missing}. "
                             f"Columns present: {list(tx.columns)}.")
        paid = tx[tx["is_order"].to_numpy(bool)]
        purchases = pd.DataFrame({"id": paid["oneid"].to_numpy(), "ts": paid["ordered_at"].to_numpy()})
        data_end = tx["ordered_at"].max()
        _check_horizon(cutoff, horizon, tx["ordered_at"].min(), data_end)
    if features is None:
        features = build_features(paths, cutoff=cutoff)
    elif features.attrs.get("cutoff") != cutoff.isoformat():
        raise ValueError(f"The 'features' parameter must be built at the same cutoff ({cutoff.isoformat()}). "
                         f"Got features built at {features.attrs.get('cutoff')!r} instead.")
    categorical = list(features.attrs.get("categorical", [c for c in CATEGORICAL_360 if c in features.columns]))
    numeric = [c for c in features.columns if c not in categorical] + ["festival_days_in_window"]
    if task == "churn":
        X = features[features["days_since_last_order"] <= lookback]
        population = f"active customers: at least one paid order in [cutoff - {lookback} days, cutoff)"
    else:
        X = features[features["is_known"] == 1]
        population = ("every known OneID (member, phone or e-mail) with a record before the cutoff, "
                      "buyers and non-buyers alike")
    X = X.assign(festival_days_in_window=festival_days(cutoff, horizon))
    groups = pd.DataFrame({"engaged_never_bought": X["engaged_never_bought"].astype(bool)}, index=X.index)
    y = None
    if label:
        bought = _purchased_in(purchases, X.index, cutoff, cutoff + pd.Timedelta(days=horizon))
        y = (~bought if task == "churn" else bought).astype("int64")
    return _finish(X, y, cutoff=cutoff, task=task, horizon=horizon, lookback=lookback, population=population,
                   label_definition=_label_text(task, horizon), numeric=numeric, categorical=categorical,
                   groups=groups, data_end=data_end, source="customer_360")
