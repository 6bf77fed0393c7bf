"""One table of purchases across every selling channel, each row tied to a OneID.

The customer 360 profile, RFM and the models read purchases from here, so "an order"
and "net revenue" are defined once:

- **ecommerce_orders** (Tmall, JD): one row per order. ``cancelled`` orders were never
  paid: they stay in the table (``is_order`` False, net 0) so cancellations can be
  counted. ``refunded`` orders are orders; their refund is netted (``net = amount -
  refund_amount``). Marketplace exports carry no refund date, so a refund counts at the
  order's time.
- **pos_receipts** (shops): a sale is an order. A return names its original receipt and
  is netted onto that sale (``refund`` and ``net`` of the sale's row, ``refunded_at`` =
  the return's time) when the sale is in the data and the return happened before
  ``as_of``; a return whose sale is not in the data stays a row of its own (negative net,
  ``is_order`` False), so revenue still reconciles to the cent.

Amounts are the cleaned, currency-converted amounts (CNY, see ``conf/cleaning.yaml``).

Example:
    >>> from workbench.transactions import load_transactions
    >>> tx = load_transactions(as_of="2026-06-01")        # doctest: +SKIP
    >>> tx.groupby("oneid")["net"].sum().head()           # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .config import Paths, get_paths

#: Columns of :func:`load_transactions`, in order.
TRANSACTION_COLUMNS = ("oneid", "record_id", "channel", "source", "order_key", "ordered_at", "status",
                       "is_order", "category", "gross", "refund", "net", "refunded_at")


def to_utc(value: Any, name: str = "as_of") -> pd.Timestamp | None:
    """A date or timestamp as a UTC ``Timestamp`` (a date means its midnight, UTC).

    >>> to_utc("2026-06-01")
    Timestamp('2026-06-01 00:00:00+0000', tz='UTC')
    >>> to_utc(None) is None
    True
    """
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"The '{name}' parameter must be a date or timestamp such as '2026-06-01'. "
                         f"Got {value!r} instead.") from exc
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def load_registry(paths: Paths | None = None) -> pd.DataFrame:
    """``record_id → oneid`` written by the identity stage (``data/processed/oneid_records.parquet``)."""
    paths = paths or get_paths()
    f = paths.processed / "oneid_records.parquet"
    if not f.exists():
        raise FileNotFoundError(f"{f} not found: run the identity stage (notebook 03_id_matching) first.")
    return pd.read_parquet(f, columns=["record_id", "channel", "oneid"])


def load_linked(channel: str, columns: list[str], *, paths: Paths | None = None,
                registry: pd.DataFrame | None = None, time_col: str | None = None,
                as_of: Any = None) -> pd.DataFrame:
    """The cleaned table of ``channel`` (chosen columns) with each record's ``oneid``.

    Rows at or after ``as_of`` (by ``time_col``) are dropped. Every record must have a
    OneID; a record the identity stage has not seen raises an error (rerun identity).
    """
    from .clean import load_cleaned

    paths = paths or get_paths()
    registry = load_registry(paths) if registry is None else registry
    cols = list(dict.fromkeys(["record_id", *columns]))
    df = load_cleaned(channel, paths)
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise KeyError(f"Columns {missing} are not in the cleaned table '{channel}'. "
                       f"Columns: {list(df.columns)}.")
    df = df[cols]
    reg = registry.loc[registry["channel"] == channel, ["record_id", "oneid"]]
    if len(reg) == len(df) and (reg["record_id"].to_numpy() == df["record_id"].to_numpy()).all():
        out = df.assign(oneid=reg["oneid"].to_numpy())  # the registry keeps cleaned row order: no join needed
    else:
        out = df.merge(reg, on="record_id", how="left", validate="one_to_one")
    unresolved = int(out["oneid"].isna().sum())
    if unresolved:
        example = out.loc[out["oneid"].isna(), "record_id"].iloc[0]
        raise ValueError(f"{unresolved:,} records of '{channel}' have no OneID (e.g. {example}): the cleaned "
                         f"data changed after the identity stage ran. Rerun notebook 03_id_matching.")
    cutoff = to_utc(as_of)
    if cutoff is not None and time_col is not None:
        out = out[(out[time_col] < cutoff).fillna(False).to_numpy(bool)]
    return out


def _ecommerce(paths: Paths, registry: pd.DataFrame, cutoff: pd.Timestamp | None) -> pd.DataFrame:
    e = load_linked("ecommerce_orders", ["platform", "order_id", "ordered_at", "status", "category", "amount",
                                         "refund_amount"], paths=paths, registry=registry,
                    time_col="ordered_at", as_of=cutoff)
    paid = (e["status"] != "cancelled").fillna(True).to_numpy(bool)
    amount = e["amount"].fillna(0.0).to_numpy(float)
    refund = np.where(paid, e["refund_amount"].fillna(0.0).to_numpy(float), 0.0)
    gross = np.where(paid, amount, 0.0)
    return pd.DataFrame({
        "oneid": e["oneid"], "record_id": e["record_id"], "channel": "ecommerce_orders",
        "source": e["platform"].astype("string"),
        "order_key": e["platform"].astype("string") + ":" + e["order_id"].astype("string"),
        "ordered_at": e["ordered_at"], "status": e["status"].astype("string"), "is_order": paid,
        "category": e["category"].astype("string"), "gross": gross, "refund": refund, "net": gross - refund,
        "refunded_at": pd.Series(pd.NaT, index=e.index, dtype=e["ordered_at"].dtype).where(refund <= 0, e["ordered_at"]),
    })


def _pos(paths: Paths, registry: pd.DataFrame, cutoff: pd.Timestamp | None) -> pd.DataFrame:
    p = load_linked("pos_receipts", ["store_code", "receipt_no", "txn_time", "txn_type", "original_receipt",
                                     "category", "amount"], paths=paths, registry=registry,
                    time_col="txn_time", as_of=cutoff)
    sale = (p["txn_type"] == "sale").fillna(False).to_numpy(bool)
    sales, returns = p[sale], p[~sale]
    # net each return onto the sale it names; returns of sales we do not hold stay rows of their own
    known = returns["original_receipt"].isin(sales["receipt_no"]).to_numpy(bool)
    matched = (returns[known].groupby("original_receipt", sort=False)
               .agg(refund=("amount", lambda a: -a.sum()), refunded_at=("txn_time", "max")))
    s = sales.join(matched, on="receipt_no")
    refund = s["refund"].fillna(0.0).to_numpy(float)
    gross = s["amount"].fillna(0.0).to_numpy(float)
    sale_rows = pd.DataFrame({
        "oneid": s["oneid"], "record_id": s["record_id"], "channel": "pos_receipts", "source": "store",
        "order_key": "pos:" + s["receipt_no"].astype("string"), "ordered_at": s["txn_time"],
        "status": np.where(refund > 0, "refunded", "completed"), "is_order": True,
        "category": s["category"].astype("string"), "gross": gross, "refund": refund, "net": gross - refund,
        "refunded_at": s["refunded_at"].astype(s["txn_time"].dtype),
    })
    o = returns[~known]
    orphan_rows = pd.DataFrame({
        "oneid": o["oneid"], "record_id": o["record_id"], "channel": "pos_receipts", "source": "store",
        "order_key": "pos:" + o["receipt_no"].astype("string"), "ordered_at": o["txn_time"],
        "status": "return_without_sale", "is_order": False, "category": o["category"].astype("string"),
        "gross": 0.0, "refund": -o["amount"].fillna(0.0).to_numpy(float),
        "net": o["amount"].fillna(0.0).to_numpy(float), "refunded_at": o["txn_time"],
    })
    return pd.concat([sale_rows, orphan_rows], ignore_index=True)


def load_transactions(paths: Paths | None = None, *, as_of: Any = None,
                      registry: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every purchase before ``as_of`` (all when None), one row per order, with its OneID.

    Columns: see :data:`TRANSACTION_COLUMNS`. ``gross``, ``refund`` and ``net`` are CNY;
    ``is_order`` is False for cancelled orders and for returns whose sale is not in the
    data. Sorted by ``ordered_at`` then ``order_key`` (independent of file order).
    """
    paths = paths or get_paths()
    registry = load_registry(paths) if registry is None else registry
    cutoff = to_utc(as_of)
    tx = pd.concat([_ecommerce(paths, registry, cutoff), _pos(paths, registry, cutoff)], ignore_index=True)
    for c in ("oneid", "record_id", "channel", "source", "order_key", "status", "category"):
        tx[c] = tx[c].astype("string")
    tx["is_order"] = tx["is_order"].astype(bool)
    return tx.sort_values(["ordered_at", "order_key"], kind="stable").reset_index(drop=True)[list(TRANSACTION_COLUMNS)]


def expected_totals(paths: Paths | None = None, *, as_of: Any = None) -> dict[str, float]:
    """Revenue and order counts computed straight from the cleaned tables, for reconciliation.

    Independent of :func:`load_transactions` (no netting logic): net revenue = paid
    e-commerce amounts - their refunds + every POS amount (returns are negative).
    """
    from .clean import load_cleaned

    paths = paths or get_paths()
    cutoff = to_utc(as_of)
    e = load_cleaned("ecommerce_orders", paths)
    p = load_cleaned("pos_receipts", paths)
    if cutoff is not None:
        e = e[(e["ordered_at"] < cutoff).fillna(False).to_numpy(bool)]
        p = p[(p["txn_time"] < cutoff).fillna(False).to_numpy(bool)]
    paid = e[e["status"] != "cancelled"]
    return {
        "net_revenue": round(float(paid["amount"].sum() - paid["refund_amount"].fillna(0).sum()
                                   + p["amount"].sum()), 2),
        "orders": int(len(paid) + (p["txn_type"] == "sale").sum()),
        "cancelled_orders": int((e["status"] == "cancelled").sum()),
    }
