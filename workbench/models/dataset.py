"""Leakage-free model datasets: features before a cutoff, labels in the window after it.

A dataset is a snapshot at a **cutoff** date ``c``:

- **features** use only canonical rows strictly before ``c`` (the customer 360 profile built
  with ``as_of=c`` plus recent-activity windows per event type, with every date turned into
  "days before the cutoff") — whatever roles and event types the brand's data has;
- **labels** use only paid orders in the window ``[c, c + horizon)``: an order exactly at ``c``
  counts, an order at ``c + horizon`` does not.

Two tasks:

- ``"churn"`` — population: *active* customers, ≥ 1 paid order in ``[c - lookback, c)``;
  ``y = 1`` when they place **no** paid order in the horizon (90 days by default).
- ``"propensity"`` — population: every *known* OneID (member, phone or e-mail) seen before
  ``c``; ``y = 1`` when they place ≥ 1 paid order in the horizon (30 days by default). The
  boolean group ``engaged_never_bought`` (no order before ``c`` but some event) is kept in
  :attr:`Dataset.groups` so metrics can be reported for it.

Two builders: :func:`make_dataset` reads the canonical layer (every role),
:func:`dataset_from_transactions` needs nothing but a plain purchases table (customer id, date,
amount; RFM-style features). Both return a :class:`Dataset` whose rows are sorted by customer id.
Cutoffs default to dates derived from the data (:func:`derive_cutoffs`).

**Point-in-time rules** (what "before the cutoff" means for fields that change over time):

- Profile records are snapshots: a record's membership tier is as of its ``updated_at``, so
  ``member_level`` is the tier of the latest profile record *updated* before the cutoff
  (``"unknown"`` when every record of the member was updated later); consents are not used as
  features (snapshot fields that say who may be contacted, not how they behave).
- Service-ticket ratings are assumed to be given at the contact (exports carry no rating date).
- Known, documented residuals: profile demographics (gender, city) are treated as static; a
  refund without a refund date counts at its order's time; OneIDs come from the identity stage
  run on all data (later records can merge two identities). None can be fixed without history
  tables.
- ``peak_days_in_window`` (the brand's peak days inside the label window, from the analysis
  settings) is the only feature about the window itself: a calendar fact known at the cutoff.

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
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..config import Paths
from ..timeutil import to_utc

__all__ = ["Dataset", "TASKS", "DEFAULT_HORIZON_DAYS", "build_features", "derive_cutoffs", "make_dataset",
           "dataset_from_transactions", "rfm_features", "peak_days_in_window"]

TASKS = ("churn", "propensity")
#: Label window length in days when ``horizon_days`` is not given.
DEFAULT_HORIZON_DAYS = {"churn": 90, "propensity": 30}
#: Windows (days before the cutoff) of the RFM order/revenue counts.
RFM_WINDOWS = (30, 90, 180, 365)
#: Windows of the recent web/app/live/e-mail activity counts.
ACTIVITY_WINDOWS = (30, 90)
#: Categorical features of the customer 360 dataset (one-hot encoded by the pipelines).
CATEGORICAL_360 = ("gender", "city", "member_level", "favourite_category", "main_sales_channel")
_DAY = pd.Timedelta(days=1)


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


# ----------------------------------------------------------------------------- the canonical layer
def peak_days_in_window(cutoff: Any, horizon_days: int, peak_days: Sequence[str], *,
                        timezone: str = "Asia/Shanghai") -> float:
    """The brand's peak days (month-day, :class:`~workbench.runconfig.AnalysisSettings`) inside
    ``[cutoff, cutoff + horizon)``, counted in local dates.

    A calendar fact known in advance, so a legitimate feature: it lets a model trained on
    snapshots from several seasons tell a label window with a sales festival from one without.

    >>> peak_days_in_window("2026-05-02", 90, ["06-18", "11-11"]), peak_days_in_window("2025-11-11", 1, ["11-11"])
    (1.0, 1.0)
    >>> peak_days_in_window("2026-02-01", 90, [])
    0.0
    """
    if not peak_days:
        return 0.0
    start = _check_cutoff(cutoff).tz_convert(timezone).normalize()
    days = pd.date_range(start, periods=_check_days(horizon_days, "horizon_days"), freq="D").strftime("%m-%d")
    return float(np.isin(np.asarray(days), list(peak_days)).sum())


def _layer(layer: Any):
    from ..canonical import CanonicalLayer, load_canonical

    return layer if isinstance(layer, CanonicalLayer) else load_canonical(layer if isinstance(layer, Paths) else None)


def _positions(values: pd.Series, index: pd.Index) -> np.ndarray:
    """Position of each value in ``index`` (-1 when absent or missing), looking up each distinct value once."""
    codes, uniques = pd.factorize(values)
    pos = index.get_indexer(pd.Index(np.asarray(uniques, dtype=object)))
    return np.where(codes >= 0, np.append(pos, -1)[codes], -1)


def _sum_by(key: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """Per integer ``key`` in ``range(size)``: the sum of ``values`` (pandas' NaN-skipping,
    compensated sum, in row order; 0 where a key has no rows)."""
    if not len(key):
        return np.zeros(size)
    sums = pd.Series(values, copy=False).groupby(key, sort=False).sum()
    out = np.zeros(size)
    out[sums.index.to_numpy()] = sums.to_numpy(float)
    return out


def _windows(ev: pd.DataFrame, cutoff: pd.Timestamp, ids: pd.Index, problems: list[str],
             universe: pd.DataFrame) -> pd.DataFrame:
    """Recent activity per OneID: per event type of the layer (``universe``) and window,
    quantity-weighted counts (and minutes where the type has durations); active days of digital
    events; problem tickets and low ratings (≤ 2) of service tickets.

    Computed on integer codes of person and event type (one grouped sum per window and measure),
    not on copies of the events per type."""
    from ..roles import SESSION_FAMILIES, event_slug

    n, types = len(ids), list(universe.index)
    person = _positions(ev["oneid"], ids)
    kind = _positions(ev["event_type"], pd.Index(types, dtype=object))
    keep = (person >= 0) & (kind >= 0)
    person, kind = person[keep], kind[keep]
    at = ev["event_time"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()[keep]   # naive UTC datetime64
    qty = ev["quantity"].to_numpy(float, na_value=np.nan)[keep]
    dur = ev["duration_seconds"].to_numpy(float, na_value=np.nan)[keep]
    digital = ev["family"].isin(SESSION_FAMILIES).to_numpy(bool)[keep]
    svc_kind = types.index("Service Ticket Opened") if "Service Ticket Opened" in types else -1
    with_category = svc_kind >= 0 and bool(problems) and bool(universe.loc["Service Ticket Opened", "category"])
    with_rating = svc_kind >= 0 and bool(universe.loc["Service Ticket Opened", "rating"])
    problem = ev["category"].isin(problems).to_numpy(bool)[keep] if with_category else None
    low = (ev["rating"].to_numpy(float, na_value=np.nan)[keep] <= 2) if with_rating else None
    day = at.astype("datetime64[D]").astype(np.int64)
    parts: dict[str, np.ndarray] = {}
    for w in ACTIVITY_WINDOWS:
        recent = at >= np.datetime64((cutoff - pd.Timedelta(days=w)).tz_convert(None))
        key = kind[recent] * n + person[recent]
        counts = _sum_by(key, qty[recent], len(types) * n).reshape(len(types), n)
        minutes = _sum_by(key, dur[recent], len(types) * n).reshape(len(types), n) / 60.0
        for j, (t, flags) in enumerate(universe.iterrows()):
            slug = event_slug(t)
            parts[f"{slug}_{w}d"] = counts[j]
            if flags["duration"]:
                parts[f"{slug}_minutes_{w}d"] = minutes[j]
        d = recent & digital
        pairs = np.unique(person[d].astype(np.int64) * (day.max(initial=0) + 1) + day[d]) if d.any() else np.array([], np.int64)
        parts[f"active_days_{w}d"] = np.bincount(pairs // (day.max(initial=0) + 1), minlength=n).astype(float)
        svc = recent & (kind == svc_kind)
        if with_category:
            parts[f"problem_tickets_{w}d"] = np.bincount(person[svc & problem], minlength=n).astype(float)
        if with_rating:
            parts[f"low_rating_tickets_{w}d"] = np.bincount(person[svc & low], minlength=n).astype(float)
    out = pd.DataFrame(parts, index=ids)
    if with_category:
        hit = (kind == svc_kind) & problem
        last = np.full(n, np.datetime64("NaT"), dtype=at.dtype)
        if hit.any():
            latest = pd.Series(at[hit], copy=False).groupby(person[hit]).max()
            last[latest.index.to_numpy()] = latest.to_numpy()
        out["days_since_last_problem_ticket"] = _days_before(cutoff, pd.Series(last).dt.tz_localize("UTC")).to_numpy()
    return out


def build_features(layer: Any = None, *, cutoff: Any, order_features: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every OneID seen before ``cutoff`` with its model features (index ``oneid``, sorted).

    Built only from canonical rows strictly before the cutoff, from what the brand's data holds:
    the customer 360 profile at ``as_of=cutoff`` (direct identifiers, masked contacts, free-text
    lists and consent snapshots dropped; dates turned into ``days_since_*``; the channel list into
    ``has_<channel>`` flags), :func:`rfm_features` of the paid orders, activity per event type in
    the last 30 / 90 days, ``engagement_trend_90d`` (events in the last 90 days ÷ the person's
    usual 90 days), ``peak_day_order_share`` (share of orders on the brand's peak days),
    ``<sales channel>_revenue_share`` and ``engaged_never_bought`` (no paid order, some event).
    Booleans are 0/1 floats; categoricals are strings (missing = NaN). ``layer`` is a
    :class:`~workbench.canonical.CanonicalLayer` (default: the data folder's).

    ``order_features``: the :func:`rfm_features` block at this cutoff computed elsewhere — the
    Spark engine's :func:`workbench.engine.spark_features.spark_rfm_features`, as the feature
    store passes it when the run's engine is ``spark`` — taken instead of computing it here.

    Example:
        >>> f = build_features(cutoff="2026-02-01")          # doctest: +SKIP
        >>> f.loc[f["engaged_never_bought"] == 1, "orders"].max()   # doctest: +SKIP
        0.0
    """
    from ..customer360 import build_customer_360, event_universe

    layer = _layer(layer)
    cutoff = _check_cutoff(cutoff)
    profile = build_customer_360(layer, as_of=cutoff)
    personal = {d["name"]: d["pii"] for d in profile.attrs.get("dictionary") or []}  # the data dictionary's class
    direct = [c for c in profile.columns if personal[c] in ("direct", "masked")]
    profile = profile.set_index("oneid")
    drop = direct + [c for c in profile.columns if c.startswith("consent_")] + \
        [c for c in ("birth_date", "channels", "top_categories") if c in profile.columns]
    f = profile.drop(columns=drop)
    listed = "," + profile["channels"].fillna("").astype(str) + ","   # channel names hold no comma
    f = f.assign(**{f"has_{ch}": listed.str.contains(f",{ch},", regex=False).astype(bool) for ch in layer.channels})
    for c in [c for c, dtype in f.dtypes.items() if pd.api.types.is_datetime64_any_dtype(dtype)]:
        name = {"member_since": "member_days"}.get(c) or "days_since_" + c.removesuffix("_at")
        f[name] = _days_before(cutoff, f[c])
        f = f.drop(columns=c)
    if "member_level" in f.columns:  # members whose every record was updated after the cutoff
        member = f["is_member"].astype(bool)
        f["member_level"] = f["member_level"].where(member).mask(member & f["member_level"].isna(), "unknown")
    analysis = layer.analysis
    by_sales_channel = [c for c in profile.columns if c.startswith("revenue_")]
    tx = layer.purchases(as_of=cutoff) if layer.has("orders") else None
    if tx is not None:
        paid = tx[tx["is_order"].to_numpy(bool)]
        start = tx["ordered_at"].min() if len(tx) else cutoff
        if order_features is None:
            rfm = rfm_features(paid, customer_id_col="oneid", datetime_col="ordered_at", monetary_value_col="net",
                               cutoff=cutoff, observation_start=start, first_seen=profile["first_seen"])
        else:
            rfm = _checked_order_features(order_features, f.index)
        f = f.drop(columns=[c for c in rfm.columns if c in f.columns]).join(rfm, how="left")
        counts = [c for c in rfm.columns if c.startswith(("orders", "revenue", "purchase_days"))]
        f[counts] = f[counts].fillna(0.0)
        if analysis.peak_days:
            local = paid["ordered_at"].dt.tz_convert(layer.local_timezone).dt.strftime("%m-%d")
            f["peak_day_order_share"] = (local.isin(analysis.peak_days).groupby(paid["oneid"]).mean()
                                         .reindex(f.index).astype(float))
        for c in by_sales_channel:
            f[f"{c.removeprefix('revenue_')}_revenue_share"] = (f[c] / f["net_revenue"]).where(f["net_revenue"] > 0)
    if layer.has("events"):
        ev = layer.table("events", as_of=cutoff)
        f = f.join(_windows(ev, cutoff, f.index, analysis.problem_ticket_categories, event_universe(layer)),
                   how="left")
        touches = ev.groupby("oneid", sort=False)["quantity"].sum().reindex(f.index).fillna(0.0)
        recent = (ev[(ev["event_time"] >= cutoff - pd.Timedelta(days=90)).to_numpy(bool)]
                  .groupby("oneid", sort=False)["quantity"].sum().reindex(f.index).fillna(0.0))
        data_start = ev["event_time"].min()
        observed = np.clip(np.minimum(f["days_since_first_seen"], (cutoff - data_start) / _DAY), 90.0, None)
        f["engagement_trend_90d"] = (recent / (touches * 90.0 / observed)).where(touches > 0)
        engaged = touches > 0
    else:
        engaged = pd.Series(False, index=f.index)
    if "orders" in f.columns:
        f["engaged_never_bought"] = (f["orders"] == 0) & engaged
    categorical = [c for c in CATEGORICAL_360 if c in f.columns]
    for c in categorical:
        f[c] = f[c].astype("string").astype("str")  # missing values become NaN
    numeric = sorted(c for c in f.columns if c not in categorical)
    f = pd.concat([f[numeric].astype("float64"), f[categorical]], axis=1).sort_index(kind="stable")
    f.index.name = "oneid"
    f.attrs = {"cutoff": cutoff.isoformat(), "categorical": categorical,
               "peak_days": list(analysis.peak_days), "timezone": layer.local_timezone}
    return f


def _order_feature_columns() -> list[str]:
    """The columns of :func:`rfm_features` (default windows), from a one-purchase example."""
    one = pd.DataFrame({"oneid": ["a"], "ts": pd.to_datetime(["1999-12-01"], utc=True), "net": [1.0]})
    return list(rfm_features(one, customer_id_col="oneid", datetime_col="ts", monetary_value_col="net",
                             cutoff="2000-01-01").columns)


def _checked_order_features(order_features: Any, ids: pd.Index) -> pd.DataFrame:
    """``order_features`` as :func:`rfm_features` gives them: its columns, OneIDs among ``ids``."""
    expected = _order_feature_columns()
    if not isinstance(order_features, pd.DataFrame) or list(order_features.columns) != expected:
        got = list(order_features.columns) if isinstance(order_features, pd.DataFrame) else type(order_features).__name__
        raise ValueError(f"The 'order_features' parameter must be rfm_features' table (columns {expected}). "
                         f"Got {got} instead.")
    unknown = order_features.index.difference(ids)
    if len(unknown):
        raise ValueError(f"The 'order_features' table has {len(unknown)} OneIDs not seen before the cutoff "
                         f"(e.g. {list(unknown[:3])}).")
    return order_features


def make_dataset(layer: Any = None, *, cutoff: Any, task: str = "churn", horizon_days: int | None = None,
                 lookback_days: int = 180, transactions: pd.DataFrame | None = None,
                 features: pd.DataFrame | None = None, label: bool = True) -> Dataset:
    """The churn or propensity dataset of the canonical layer at ``cutoff``.

    ``horizon_days`` defaults to 90 (churn) or 30 (propensity). ``transactions`` may pass the
    full purchases table (``layer.purchases()``, all dates; read when None): it is read only for
    the labels and the data's end date. ``features`` may pass ``build_features(layer,
    cutoff=cutoff)`` to reuse it across tasks. ``label=False`` builds an unlabelled scoring set
    (``y`` None, no horizon check), e.g. at today's date. A label window running past the last
    order date raises ``ValueError``.

    Example:
        >>> ds = make_dataset(cutoff="2026-02-01", task="churn")      # doctest: +SKIP
        >>> ds.X.shape, round(ds.base_rate, 2)                        # doctest: +SKIP
    """
    task = _check_task(task)
    horizon = _check_days(DEFAULT_HORIZON_DAYS[task] if horizon_days is None else horizon_days, "horizon_days")
    lookback = _check_days(lookback_days, "lookback_days")
    cutoff = _check_cutoff(cutoff)
    layer = _layer(layer)
    if not layer.has("orders"):
        raise ValueError("The churn and propensity models need orders, and the canonical layer has none "
                         "(no mapping with the orders role).")
    purchases = data_end = None
    if label:
        tx = layer.purchases() if transactions is None else transactions
        missing = [c for c in ("oneid", "ordered_at", "is_order") if c not in tx.columns]
        if missing:
            raise ValueError(f"The 'transactions' DataFrame is missing the columns {missing}. "
                             f"Columns present: {list(tx.columns)}.")
        paid = tx[tx["is_order"].to_numpy(bool)]
        purchases = pd.DataFrame({"id": paid["oneid"].to_numpy(), "ts": paid["ordered_at"].to_numpy()})
        data_end = tx["ordered_at"].max()
        _check_horizon(cutoff, horizon, tx["ordered_at"].min(), data_end)
    if features is None:
        features = build_features(layer, cutoff=cutoff)
    elif features.attrs.get("cutoff") != cutoff.isoformat():
        raise ValueError(f"The 'features' parameter must be built at the same cutoff ({cutoff.isoformat()}). "
                         f"Got features built at {features.attrs.get('cutoff')!r} instead.")
    categorical = list(features.attrs.get("categorical", [c for c in CATEGORICAL_360 if c in features.columns]))
    numeric = [c for c in features.columns if c not in categorical] + ["peak_days_in_window"]
    if task == "churn":
        X = features[features["days_since_last_order"] <= lookback]
        population = f"active customers: at least one paid order in [cutoff - {lookback} days, cutoff)"
    else:
        X = features[features["is_known"] == 1]
        population = ("every known OneID (member, phone or e-mail) with a record before the cutoff, "
                      "buyers and non-buyers alike")
    X = X.assign(peak_days_in_window=peak_days_in_window(cutoff, horizon, features.attrs.get("peak_days", []),
                                                         timezone=features.attrs.get("timezone", "UTC")))
    groups = (pd.DataFrame({"engaged_never_bought": X["engaged_never_bought"].astype(bool)}, index=X.index)
              if "engaged_never_bought" in X.columns else None)
    y = None
    if label:
        bought = _purchased_in(purchases, X.index, cutoff, cutoff + pd.Timedelta(days=horizon))
        y = (~bought if task == "churn" else bought).astype("int64")
    return _finish(X, y, cutoff=cutoff, task=task, horizon=horizon, lookback=lookback, population=population,
                   label_definition=_label_text(task, horizon), numeric=numeric, categorical=categorical,
                   groups=groups, data_end=data_end, source="canonical layer")


def derive_cutoffs(layer: Any = None, *, horizon_days: int, n_train: int = 4, step_days: int | None = None,
                   lookback_days: int = 0, peak_days: Sequence[str] | None = None,
                   timezone: str = "UTC") -> tuple[list[pd.Timestamp], pd.Timestamp]:
    """Train and test cutoffs from the data.

    The scores are used from the end of the data (the day after the last paid order) for the
    next ``horizon_days``. The test cutoff is the latest one whose label window lies inside the
    data and **has the same number of the brand's peak days as that scoring window** — a model
    used across Double 11 is judged on a window with a sales festival, one used in a quiet
    quarter on a quiet window. Without peak days (or when no window within a year matches) it is
    simply the end of the data minus the horizon. The ``n_train`` training cutoffs step back from
    the test cutoff by ``step_days`` (default: the horizon, so no two label windows overlap);
    cutoffs without ``lookback_days`` of orders before them are left out, and at least one must
    remain.

    >>> from types import SimpleNamespace
    >>> fake = SimpleNamespace(first_order=pd.Timestamp("2023-01-01", tz="UTC"),
    ...                        last_order=pd.Timestamp("2024-12-31 18:00", tz="UTC"))
    >>> train, test = derive_cutoffs(fake, horizon_days=90, n_train=2)
    >>> [f"{c:%Y-%m-%d}" for c in train], f"{test:%Y-%m-%d}"
    (['2024-04-06', '2024-07-05'], '2024-10-03')
    >>> train, test = derive_cutoffs(fake, horizon_days=30, n_train=2, peak_days=["01-15"])
    >>> [f"{c:%Y-%m-%d}" for c in train], f"{test:%Y-%m-%d}"   # the scoring window [2025-01-01, 2025-01-31) holds 01-15
    (['2023-11-16', '2023-12-16'], '2024-01-15')
    """
    horizon = _check_days(horizon_days, "horizon_days")
    step = _check_days(horizon if step_days is None else step_days, "step_days")
    n = _check_days(n_train, "n_train")
    first, last = getattr(layer, "first_order", None), getattr(layer, "last_order", None)
    if first is None or last is None:
        raise ValueError("The data holds no paid order: there are no cutoffs to derive.")
    score_at = (pd.Timestamp(last) + _DAY).normalize()
    test = score_at - pd.Timedelta(days=horizon)
    if peak_days:
        wanted = peak_days_in_window(score_at, horizon, peak_days, timezone=timezone)
        for back in range(0, 366):
            c = test - pd.Timedelta(days=back)
            if peak_days_in_window(c, horizon, peak_days, timezone=timezone) == wanted:
                test = c
                break
    train = [test - pd.Timedelta(days=step * k) for k in range(n, 0, -1)]
    earliest = pd.Timestamp(first) + pd.Timedelta(days=lookback_days)
    train = [c for c in train if c > earliest]
    if not train or test <= earliest:
        raise ValueError(f"The data's orders ({pd.Timestamp(first):%Y-%m-%d} to {pd.Timestamp(last):%Y-%m-%d}) are "
                         f"too short for a {horizon}-day horizon with training cutoffs {step} days apart: give "
                         "'train_cutoffs' and 'test_cutoff' explicitly, or a shorter horizon.")
    return train, test
