"""Benchmark of :func:`workbench.segments.rfm.rfm_segments` on synthetic transactions.

    python -m tests.benchmarks.rfm --sizes 200000 1000000 --transactions 10000000
    python -m tests.benchmarks.rfm --sizes 20000 --transactions 0      # quick

For each size a seeded synthetic transactions table is generated in one process and written
to Parquet (not timed). A fresh process then reads it (not timed) and runs ``rfm_segments``
(summary + scores + named segments, with order ids, so returns are netted per order); its
time is the ``seconds`` column and ``peak_mb`` is that process's maximum resident set
(``ru_maxrss``: the loaded table plus the work). ``data_mb`` is the resident set just
before the clock starts, i.e. Python, pandas and the loaded table. ``cpu_seconds`` is the
process's CPU time for the same call: on a shared machine it says more than the wall-clock
``seconds``, and the 1-minute load average at the end of each run is recorded in the JSON.

Synthetic data: per customer 1 + Poisson(λ) purchases, λ ~ Gamma(0.5, mean 2) (most
customers buy once or twice, a few very often), purchase times uniform between the
customer's first purchase and the end of a 3-year window, lognormal amounts around a
customer-level mean, and 6% of purchases returned later in full or in part (a negative row
with the same order id). ``--sizes`` are customer counts; ``--transactions`` adds a run with
enough customers for at least that many transaction rows.

Results go to ``reports/benchmarks/rfm.json`` and ``reports/benchmarks/rfm.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).parents[2]
MEAN_EXTRA_PURCHASES = 2.0  # E[λ]; purchases per customer = 1 + Poisson(λ)
RETURN_RATE = 0.06
SPAN_DAYS = 3 * 365

from tests.benchmarks.child import run_child


def synthetic_transactions(customers: int, *, random_state: int = 42):
    """Seeded synthetic transactions (customer_id, order_id, date, amount), in time order."""
    import pandas as pd

    rng = np.random.default_rng(random_state)
    lam = rng.gamma(0.5, MEAN_EXTRA_PURCHASES / 0.5, customers)
    counts = 1 + rng.poisson(lam)
    cust = np.repeat(np.arange(customers), counts)
    start = rng.uniform(0, SPAN_DAYS, customers)
    days = start[cust] + rng.uniform(0, 1, len(cust)) * (SPAN_DAYS - start[cust])
    # the first purchase of each customer is at its start: position of each customer's first row
    first_row = np.concatenate([[0], np.cumsum(counts)[:-1]])
    days[first_row] = start
    level = rng.normal(3.6, 0.6, customers)
    amount = np.round(np.exp(level[cust] + rng.normal(0, 0.7, len(cust))), 2)
    order_id = np.arange(len(cust), dtype="int64")

    returned = rng.random(len(cust)) < RETURN_RATE
    share = np.where(rng.random(returned.sum()) < 0.7, 1.0, rng.uniform(0.2, 0.9, returned.sum()))
    r_cust, r_order = cust[returned], order_id[returned]
    r_days = days[returned] + rng.uniform(1, 30, returned.sum())
    r_amount = -np.round(amount[returned] * share, 2)

    epoch = np.datetime64("2022-01-01T00:00:00", "s")
    all_days = np.concatenate([days, r_days])
    order = np.argsort(all_days, kind="stable")
    ids = np.array([f"C{i:08d}" for i in range(customers)], dtype=object)
    return pd.DataFrame({
        "customer_id": pd.array(ids[np.concatenate([cust, r_cust])[order]], dtype="str"),
        "order_id": np.concatenate([order_id, r_order])[order],
        "date": epoch + (all_days[order] * 86_400).astype("int64").astype("timedelta64[s]"),
        "amount": np.concatenate([amount, r_amount])[order],
    })


def customers_for(transactions: int) -> int:
    """Customers whose expected transaction rows exceed ``transactions`` by 1% (so the run has at least as many)."""
    per_customer = (1 + MEAN_EXTRA_PURCHASES) * (1 + RETURN_RATE)
    return math.ceil(transactions * 1.01 / per_customer)


def _max_rss_mb() -> float:
    return round(max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                     resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024, 1)


def _child(a) -> int:
    if a.child == "prepare":
        df = synthetic_transactions(a.customers, random_state=a.seed)
        df.to_parquet(a.data, index=False)
        print("RESULT " + json.dumps({"transactions": len(df)}))
        return 0
    import pandas as pd

    from workbench.segments.rfm import load_segment_map, rfm_segments

    df = pd.read_parquet(a.data)
    df["customer_id"] = df["customer_id"].astype("str")
    segment_map = load_segment_map()
    data_mb = _max_rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    rfm = rfm_segments(df, order_id_col="order_id", segment_map=segment_map)
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    print("RESULT " + json.dumps({"transactions": len(df), "customers": len(rfm), "seconds": seconds,
                                  "cpu_seconds": cpu_seconds, "data_mb": data_mb, "peak_mb": _max_rss_mb()}))
    return 0


def _spawn(kind: str, data: Path, customers: int, seed: int) -> dict:
    return run_child("tests.benchmarks.rfm", "--child", kind, "--data", data, "--customers", customers,
                     "--seed", seed)


def markdown(rows: list[dict]) -> str:
    lines = ["| customers | transactions | seconds | transactions/s | CPU seconds | peak MB | of which data loaded (MB) |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['customers']:,} | {r['transactions']:,} | {r['seconds']:.2f} | {r['transactions_per_s']:,} | "
              f"{r['cpu_seconds']:.2f} | {r['peak_mb']:,.0f} | {r['data_mb']:,.0f} |" for r in rows]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[200_000, 1_000_000], help="customers per run")
    ap.add_argument("--transactions", type=int, default=10_000_000,
                    help="an extra run with at least this many transaction rows (0 = none)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--child", choices=["prepare", "rfm"])
    ap.add_argument("--data")
    ap.add_argument("--customers", type=int)
    a = ap.parse_args(argv)
    if a.child:
        return _child(a)

    runs = [int(n) for n in a.sizes] + ([customers_for(a.transactions)] if a.transactions else [])
    rows = []
    for customers in runs:
        root = Path(tempfile.mkdtemp(prefix=f"wb-rfmbench-{customers}-"))
        try:
            data = root / "transactions.parquet"
            _spawn("prepare", data, customers, a.seed)
            r = _spawn("rfm", data, customers, a.seed)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        row = {"customers": r["customers"], "transactions": r["transactions"], "seconds": round(r["seconds"], 3),
               "cpu_seconds": round(r["cpu_seconds"], 3), "transactions_per_s": round(r["transactions"] / r["seconds"]),
               "peak_mb": r["peak_mb"], "data_mb": r["data_mb"], "load_average_1min": round(os.getloadavg()[0], 2)}
        rows.append(row)
        print(json.dumps(row), flush=True)

    growth = None
    if len(rows) >= 2:
        lo, hi = min(rows, key=lambda x: x["transactions"]), max(rows, key=lambda x: x["transactions"])
        if hi["transactions"] > lo["transactions"]:
            growth = round(math.log(hi["seconds"] / lo["seconds"]) / math.log(hi["transactions"] / lo["transactions"]), 2)
    from workbench.config import get_paths

    out = get_paths().reports / "benchmarks"
    out.mkdir(parents=True, exist_ok=True)
    doc = {"name": "rfm", "measured_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
           "function": "workbench.segments.rfm.rfm_segments(transactions, order_id_col='order_id')",
           "seed": a.seed, "results": rows, "time_growth_exponent": growth}
    (out / "rfm.json").write_text(json.dumps(doc, indent=2), encoding="utf-8")
    table = markdown(rows)
    if growth is not None:
        table += ("\n\nTime growth exponent in transactions between the smallest and largest run "
                  f"(1.0 = linear): {growth}")
    (out / "rfm.md").write_text(table + "\n", encoding="utf-8")
    print("\n" + table)
    print(f"\nwritten: {out / 'rfm.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
