"""CDNOW as a US online retailer would export it: one CSV of orders, no order numbers.

The vendored ``tests/data/cdnow/CDNOW_master.txt.gz`` (Fader & Hardie's CDNOW cohort, 69,659
purchases of 23,570 customers, January 1997 to June 1998) becomes
``orders/cdnow_order_history.csv`` under the raw folder, with the retailer's own column
names::

    Customer ID,Order Date,Units,Order Total
    00002,01/12/1997 10:47 AM,1,$12.00
    00002,01/12/1997 11:04 AM,5,$77.00

- ``Order Date`` is US Eastern wall time, ``MM/DD/YYYY hh:mm AM/PM``. The source has dates
  only; the time of day is made up, deterministically: a customer-day's first purchase at
  8:00 AM or later, drawn from a hash of (customer, date), each further purchase of that day
  17 minutes after the one before, the last one by 10:59 PM (the date is never changed). Two
  purchases of one customer on one day therefore never share a timestamp — the source has
  255 rows that repeat another row exactly (same customer, day, units and dollars), and with
  dates only the clean stage would take them for an export overlap and drop them, $4,332.88
  of revenue (see the note in ``tests/test_brands.py``).
- ``Order Total`` in US dollars with ``$`` and thousands separators (``$1,286.01``).
- Every row is one purchase of one customer: the ground truth of each row is its customer id
  (``_truth/records.parquet``), and ``_truth/sample.json`` holds the number of customers.

The mapping is ``tests/brands/cdnow/mappings/`` and the identity settings
``tests/brands/cdnow/identity.yaml`` (see :data:`CDNOW_MAPPINGS`, :data:`CDNOW_IDENTITY`).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
MASTER = HERE.parent / "data" / "cdnow" / "CDNOW_master.txt.gz"
#: the mapping folder and identity settings of the CDNOW export
CDNOW_MAPPINGS = HERE / "cdnow" / "mappings"
CDNOW_IDENTITY = HERE / "cdnow" / "identity.yaml"
#: where the export goes, relative to the raw folder
CDNOW_FILE = "orders/cdnow_order_history.csv"
CDNOW_CHANNEL = "cdnow_orders"
#: the rate the workbench converts with (workbench/conf/cleaning.yaml)
USD_TO_CNY = 7.20

__all__ = ["CDNOW_MAPPINGS", "CDNOW_IDENTITY", "CDNOW_FILE", "CDNOW_CHANNEL", "USD_TO_CNY", "read_master",
           "write_cdnow", "cdnow_raw_revenue"]


def read_master(path: str | Path = MASTER) -> pd.DataFrame:
    """The master file as customer_id (zero-padded text), date (YYYYMMDD text), quantity, amount."""
    return pd.read_csv(path, sep=r"\s+", header=0, names=["customer_id", "date", "quantity", "amount"],
                       dtype={"customer_id": str, "date": str})


def _times_of_day(df: pd.DataFrame) -> np.ndarray:
    """Minutes after midnight per row: a hash of (customer, date) puts the day's first purchase
    at 8:00 AM or later; the k-th further purchase that day comes 17·k minutes after it, and the
    day's last purchase is at 10:59 PM at the latest (never past midnight)."""
    key = pd.util.hash_pandas_object(df[["customer_id", "date"]], index=False).to_numpy()
    g = df.groupby(["customer_id", "date"], sort=False)
    rank = g.cumcount().to_numpy()
    later = 17 * (g["date"].transform("size").to_numpy() - 1)  # minutes from the day's first to its last
    room = np.maximum(1, 15 * 60 - later).astype(np.uint64)
    first = 8 * 60 + (key % room).astype(np.int64)
    return first + 17 * rank


def _us_money(x: np.ndarray) -> list[str]:
    return [f"${v:,.2f}" for v in x]


def write_cdnow(raw_dir: str | Path, *, master: str | Path = MASTER) -> dict:
    """Write the CDNOW order export and its ground truth under ``raw_dir``.

    Returns ``{"path": <the CSV>, "rows": <data rows>, "customers": <distinct customers>,
    "revenue_usd": <sum of Order Total>, "truth": <records.parquet>}``.
    """
    raw_dir = Path(raw_dir)
    df = read_master(master)
    minutes = _times_of_day(df)
    day = pd.to_datetime(df["date"], format="%Y%m%d")
    when = day + pd.to_timedelta(minutes, unit="min")
    out = pd.DataFrame({
        "Customer ID": df["customer_id"],
        "Order Date": when.dt.strftime("%m/%d/%Y %I:%M %p"),
        "Units": df["quantity"].astype(int),
        "Order Total": _us_money(df["amount"].to_numpy(float)),
    })
    path = raw_dir / CDNOW_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(path, index=False, encoding="utf-8", lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)

    truth = raw_dir / "_truth"
    truth.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"channel": CDNOW_CHANNEL, "source_file": CDNOW_FILE,
                  "source_row": np.arange(1, len(df) + 1, dtype=np.int64),
                  "person_id": df["customer_id"].to_numpy()}).to_parquet(truth / "records.parquet", index=False)
    customers = int(df["customer_id"].nunique())
    summary = {"brand": "CDNOW", "persons": customers, "rows": int(len(df)),
               "files": {CDNOW_CHANNEL: {"path": CDNOW_FILE, "rows": int(len(df))}}}
    (truth / "sample.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return {"path": path, "rows": int(len(df)), "customers": customers,
            "revenue_usd": round(float(df["amount"].sum()), 2), "truth": truth / "records.parquet"}


def cdnow_raw_revenue(raw_dir: str | Path) -> float:
    """Revenue of the export in US dollars, read straight from the CSV (the ``$`` and thousands
    separators stripped by hand, summed in integer cents)."""
    cents = 0
    with open(Path(raw_dir) / CDNOW_FILE, encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            text = row["Order Total"].strip().replace("$", "").replace(",", "")
            dollars, _, frac = text.partition(".")
            cents += int(dollars) * 100 + int((frac + "00")[:2])
    return cents / 100
