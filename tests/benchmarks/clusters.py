"""Benchmark of behavioural clustering: :func:`workbench.segments.clusters.segment_customers`
end to end on synthetic customer feature tables.

    python -m tests.benchmarks.clusters                          # 200,000 and 1,000,000 customers
    python -m tests.benchmarks.clusters --sizes 20000 200000     # quicker

For each size a fresh process generates the table (seeded: six latent behaviour groups,
13 features with realistic skew — negative-binomial counts, log-normal amounts, rates in
0..1, ``recency_days`` missing for customers who never ordered — not timed) and then times
one call of ``segment_customers`` with k in 2..8: feature preparation, the fits for every k
(above 100,000 customers MiniBatchKMeans over all rows, started from KMeans on a 50,000-customer
sample; silhouette on a 20,000-customer sample; Calinski-Harabasz on all rows), stability with
3 seeds on a 50,000-customer sample (same algorithm as the main fit), profiles and names. ``peak_mb`` is the process's
maximum resident set (data generation included; ``data_mb`` is the resident set before the
timed call). ``ari_vs_truth`` is the adjusted Rand index against the latent groups.

Results go to ``reports/benchmarks/clusters.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).parents[2]
COLUMNS = ["orders", "net_revenue", "avg_order_value", "recency_days", "web_sessions", "app_sessions",
           "live_sessions", "live_watch_minutes", "live_comments", "live_gifts", "email_open_rate",
           "service_tickets", "channels_present"]
K_RANGE = range(2, 9)
STABILITY_SEEDS = (0, 1, 2)

# latent groups: share, mean orders, P(buys), mean basket (CNY), web, app, live sessions, email open rate
_GROUPS = {
    "low_activity":     (0.35, 0.6, 0.35, 120, 1.0, 0.3, 0.1, 0.05),
    "web_buyers":       (0.20, 4.0, 0.95, 220, 14.0, 1.0, 0.2, 0.25),
    "app_loyal":        (0.15, 9.0, 1.00, 320, 3.0, 40.0, 1.0, 0.35),
    "live_watchers":    (0.15, 0.3, 0.15, 90, 1.0, 6.0, 25.0, 0.08),
    "live_shoppers":    (0.10, 6.0, 0.98, 260, 2.0, 12.0, 30.0, 0.15),
    "email_engaged":    (0.05, 2.5, 0.80, 180, 6.0, 2.0, 0.3, 0.70),
}

from tests.benchmarks.child import run_child


def make_feature_table(n: int, seed: int = 42) -> tuple[pd.DataFrame, pd.Series]:
    """A synthetic customer feature table (index ``customer_id``) and its latent group per customer."""
    rng = np.random.default_rng(seed)
    names = list(_GROUPS)
    p = np.array([g[0] for g in _GROUPS.values()])
    group = rng.choice(len(names), size=n, p=p / p.sum())
    par = np.array([g[1:] for g in _GROUPS.values()])[group]
    mu_orders, p_buy, basket, web, app, live, open_rate = par.T

    def nb(mean, dispersion=1.5):  # negative binomial counts with the given mean (heavy right tail)
        return rng.negative_binomial(dispersion, dispersion / (dispersion + np.maximum(mean, 1e-9)))

    buys = rng.random(n) < p_buy
    orders = np.where(buys, 1 + nb(mu_orders), 0)
    aov = np.where(orders > 0, basket * rng.lognormal(0, 0.6, n), 0.0)
    revenue = np.round(orders * aov * rng.lognormal(0, 0.15, n), 2)
    recency = np.where(orders > 0, np.minimum(730, rng.exponential(240 / np.sqrt(1 + orders))).round(), np.nan)
    live_s = nb(live, 1.2)
    watch = np.round(live_s * rng.gamma(2.0, 12.0, n), 1)
    df = pd.DataFrame({
        "orders": orders, "net_revenue": revenue, "avg_order_value": np.round(aov, 2), "recency_days": recency,
        "web_sessions": nb(web), "app_sessions": nb(app), "live_sessions": live_s, "live_watch_minutes": watch,
        "live_comments": rng.poisson(watch / 15.0), "live_gifts": rng.poisson(watch / 200.0),
        "email_open_rate": np.clip(rng.beta(2, 2 / np.maximum(open_rate, 0.01) - 2), 0, 1).round(3),
        "service_tickets": rng.poisson(0.1 + 0.15 * orders),
    }, index=pd.Index([f"C{i:08d}" for i in range(n)], name="customer_id"))
    df["channels_present"] = ((df["web_sessions"] > 0).astype(int) + (df["app_sessions"] > 0)
                              + (df["live_sessions"] > 0) + (df["email_open_rate"] > 0) + (df["orders"] > 0))
    # a few emails never sent: the open rate is missing, not 0
    df.loc[rng.random(n) < 0.05, "email_open_rate"] = np.nan
    return df, pd.Series(np.array(names)[group], index=df.index, name="group")


def _child(n: int, seed: int) -> dict:
    from workbench.segments.clusters import agreement_with, segment_customers

    profile, truth = make_feature_table(n, seed)
    data_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    seg = segment_customers(profile, columns=COLUMNS, k_range=K_RANGE, random_state=0,
                            fill_values={"recency_days": "max"}, stability_seeds=STABILITY_SEEDS,
                            stability_sample=50_000, sample_size=20_000)
    seconds = time.perf_counter() - t0
    return {"customers": n, "features": len(COLUMNS), "seconds": round(seconds, 2),
            "customers_per_s": round(n / seconds), "data_mb": round(data_mb, 1),
            "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "chosen_k": seg.k, "algorithm": seg.result.algorithm, "explanation": seg.k_choice.explanation,
            "stability_mean_ari": seg.stability_summary["mean_ari"],
            "ari_vs_truth": round(agreement_with(seg.labels, truth), 4),
            "names": {str(k): v for k, v in seg.names.items()},
            "steps_seconds": seg.seconds}


def _spawn(n: int, seed: int) -> dict:
    return run_child("tests.benchmarks.clusters", "--child", n, "--seed", seed)


def markdown(rows: list[dict]) -> str:
    lines = ["| customers | features | seconds | customers/s | peak MB | chosen k | algorithm | stability ARI | ARI vs truth |",
             "|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    lines += [f"| {r['customers']:,} | {r['features']} | {r['seconds']:.1f} | {r['customers_per_s']:,} | "
              f"{r['peak_mb']:,.0f} | {r['chosen_k']} | {r['algorithm']} | {r['stability_mean_ari']:.3f} | "
              f"{r['ari_vs_truth']:.3f} |" for r in rows]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[200_000, 1_000_000])
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        print("RESULT " + json.dumps(_child(a.child, a.seed), default=float))
        return 0
    rows = []
    for n in a.sizes:
        r = _spawn(n, a.seed)
        rows.append(r)
        print(f"{n:>10,} customers  {r['seconds']:>7.1f} s  {r['customers_per_s']:>9,}/s  peak {r['peak_mb']:>7,.0f} MB  "
              f"k={r['chosen_k']} ({r['algorithm']})  steps {r['steps_seconds']}", flush=True)
    from workbench.config import get_paths

    out = get_paths().reports / "benchmarks"
    out.mkdir(parents=True, exist_ok=True)
    doc = {"name": "clusters", "measured_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
           "timed": "segment_customers end to end: prepare, choose k in 2..8 (fits + silhouette on 20,000 "
                    "customers), stability with 3 seeds on 50,000 customers, profiles and names; data generation "
                    "not timed (peak_mb includes it, data_mb is the resident set before the timed call)",
           "results": rows}
    (out / "clusters.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")
    table = markdown(rows)
    notes = "\n\n" + "\n".join(f"- {r['customers']:,}: {r['explanation']} Steps (s): {r['steps_seconds']}" for r in rows)
    (out / "clusters.md").write_text(table + notes + "\n", encoding="utf-8")
    print("\n" + table + notes)
    print(f"\nwritten: {out / 'clusters.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
