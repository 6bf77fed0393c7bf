"""Benchmark of the customer models: churn / propensity classifiers and BG/NBD + Gamma-Gamma CLV.

    python -m tests.benchmarks.models --customers 200000
    python -m tests.benchmarks.models --customers 20000        # quick

Each model runs in a fresh process, so ``peak_mb`` (the process's maximum resident set) is its
own; ``data_mb`` is the resident set just before the first timed step (Python, libraries and
the generated data). Data generation is never timed.

Classifiers (``workbench.models.classifiers.make_pipeline`` with the project defaults:
:data:`~workbench.models.classifiers.HGB_DEFAULTS`, :data:`~workbench.models.classifiers.LOGISTIC_DEFAULTS`,
``random_state=0``, OpenMP capped at 1 thread as ``fit_and_evaluate`` does by default): a seeded
synthetic customer feature table of ``--customers`` rows × 40 features (36 numeric: skewed
negative-binomial counts, log-normal amounts, rates, recencies with missing values for
customers who never did the thing; 4 categoricals with 3–8 levels, one of them rare) with two
binary labels driven by some of the features through a logistic link — ``churned`` (recency,
orders, app use, service tickets; base rate ≈ 30%) and ``will_buy`` (cart adds, sessions, email
opens, recency of the last visit; ≈ 10%). ``fit_seconds`` is ``pipeline.fit`` on the table,
``score_seconds`` is ``predict_proba`` on a second table of the same size (another seed), whose
ROC AUC is reported as a sanity check that the model learned something.

CLV (``workbench.models.clv``): seeded synthetic transactions from the BG/NBD process itself —
customers acquired uniformly over the first year of a two-year window, each with a Poisson
purchase rate λ ~ Gamma(r, α) and a dropout probability p ~ Beta(a, b) after every repeat
purchase, log-normal spend around a customer-level mean, times of day uniform. Timed
separately: ``summary_data_from_transactions`` (daily periods, ``prepare_seconds``), the BG/NBD
fit plus the Gamma-Gamma fit on the repeat buyers (``fit_seconds``), and 12-month discounted CLV
with P(alive) for every customer (``score_seconds``). The fitted parameters are reported next to
the ones that generated the data.

Results go to ``reports/benchmarks/models.json`` and ``reports/benchmarks/models.md``.
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
# (name, pipeline kind, label column)
CLASSIFIERS = (("churn HGB", "hgb", "churned"), ("churn logistic", "logistic", "churned"),
               ("propensity HGB", "hgb", "will_buy"), ("propensity logistic", "logistic", "will_buy"))
CATEGORICAL = ["region", "acquisition_channel", "membership_tier", "preferred_device"]
# BG/NBD process of the synthetic transactions (time in days) and spend
TRUE_BGNBD = {"r": 0.5, "alpha": 60.0, "a": 1.0, "b": 3.0}
SPAN_DAYS = 730
ACQUISITION_DAYS = 365
CLV_MONTHS = 12
MONTHLY_DISCOUNT = 0.01

from tests.benchmarks.child import run_child


def _max_rss_mb() -> float:
    return round(max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                     resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024, 1)


# ----------------------------------------------------------------------------- data
def make_feature_table(n: int, *, random_state: int = 42) -> pd.DataFrame:
    """A seeded customer feature table: 36 numeric and 4 categorical features plus the labels
    ``churned`` and ``will_buy`` (0/1), indexed by ``customer_id``."""
    rng = np.random.default_rng(random_state)
    engagement = rng.normal(0.0, 1.0, n)          # latent: how active the customer is
    spend_level = rng.normal(0.0, 1.0, n)         # latent: how much they spend

    def nb(mean, dispersion=1.2):                 # negative-binomial counts, heavy right tail
        mean = np.maximum(mean, 1e-9)
        return rng.negative_binomial(dispersion, dispersion / (dispersion + mean))

    activity = np.exp(0.8 * engagement)
    orders_30 = nb(0.4 * activity)
    orders_90 = orders_30 + nb(0.8 * activity)
    orders_180 = orders_90 + nb(0.9 * activity)
    orders_365 = orders_180 + nb(1.6 * activity)
    aov = np.round(np.exp(4.6 + 0.5 * spend_level + rng.normal(0, 0.3, n)), 2)

    def revenue(orders):
        return np.round(orders * aov * rng.lognormal(0, 0.2, n), 2)

    tenure = np.round(rng.uniform(30, 1500, n))
    bought = orders_365 > 0
    days_since_order = np.where(bought, np.minimum(365, np.round(rng.exponential(150 / np.sqrt(1 + orders_365)))),
                                np.nan)
    web_30, app_30 = nb(2.0 * activity), nb(3.0 * activity * (rng.random(n) < 0.6))
    emails_sent = rng.poisson(12, n) * (rng.random(n) < 0.9)
    opens = rng.binomial(emails_sent, np.clip(0.15 + 0.1 * engagement, 0.01, 0.9))
    tickets = rng.poisson(0.1 + 0.1 * orders_365)
    cart_30 = nb(1.0 * activity)
    days_since_visit = np.round(rng.exponential(40 / activity))
    X = pd.DataFrame({
        "orders_30d": orders_30, "orders_90d": orders_90, "orders_180d": orders_180, "orders_365d": orders_365,
        "net_revenue_30d": revenue(orders_30), "net_revenue_90d": revenue(orders_90),
        "net_revenue_180d": revenue(orders_180), "net_revenue_365d": revenue(orders_365),
        "avg_order_value": np.where(bought, aov, np.nan),
        "max_order_value": np.where(bought, np.round(aov * rng.lognormal(0.3, 0.3, n), 2), np.nan),
        "days_since_last_order": days_since_order,
        "days_since_first_order": np.where(bought, np.maximum(days_since_order, np.round(tenure * rng.uniform(0.3, 1, n))),
                                           np.nan),
        "tenure_days": tenure,
        "distinct_products": nb(2.5 * orders_365 + 0.1), "distinct_categories": nb(0.8 * orders_365 + 0.1, 3.0),
        "returns_365d": rng.binomial(orders_365, 0.06),
        "return_rate": np.nan, "discount_share": np.where(bought, np.round(rng.beta(1.5, 4, n), 3), np.nan),
        "web_sessions_30d": web_30, "web_sessions_90d": web_30 + nb(4.0 * activity),
        "app_sessions_30d": app_30, "app_sessions_90d": app_30 + nb(5.0 * activity * (app_30 > 0)),
        "live_sessions_90d": nb(1.5 * activity * (rng.random(n) < 0.3)),
        "live_watch_minutes_90d": 0.0,
        "email_sent_90d": emails_sent, "email_opens_90d": opens, "email_clicks_90d": rng.binomial(opens, 0.2),
        "email_open_rate": np.where(emails_sent > 0, np.round(opens / np.maximum(emails_sent, 1), 3), np.nan),
        "service_tickets_365d": tickets,
        "avg_ticket_rating": np.where(tickets > 0, np.round(rng.uniform(1, 5, n), 1), np.nan),
        "cart_adds_30d": cart_30, "wishlist_items": nb(np.full(n, 1.5)), "coupon_uses_365d": rng.binomial(orders_365, 0.3),
        "points_balance": np.round(revenue(orders_365) * rng.uniform(0, 1, n)),
        "days_since_last_visit": days_since_visit,
        "age": np.where(rng.random(n) < 0.2, np.nan, np.round(rng.normal(36, 11, n).clip(16, 85))),
    }, index=pd.Index([f"C{i:08d}" for i in range(n)], name="customer_id"))
    X["return_rate"] = np.where(bought, X["returns_365d"] / np.maximum(orders_365, 1), np.nan).round(3)
    X["live_watch_minutes_90d"] = np.round(X["live_sessions_90d"] * rng.gamma(2.0, 12.0, n), 1)
    regions = np.array(["north", "south", "east", "west", "central", "northeast", "southwest", "overseas"])
    X["region"] = regions[rng.choice(8, n, p=[0.2, 0.2, 0.18, 0.14, 0.12, 0.08, 0.075, 0.005])]
    X["acquisition_channel"] = np.array(["search", "social", "referral", "store", "marketplace"])[
        rng.choice(5, n, p=[0.3, 0.25, 0.1, 0.2, 0.15])]
    X["membership_tier"] = np.array(["none", "silver", "gold", "platinum"])[
        np.clip((0.7 * spend_level + 0.5 * engagement + rng.normal(0, 0.8, n) + 1.2).astype(int), 0, 3)]
    X["preferred_device"] = np.array(["ios", "android", "desktop"])[rng.choice(3, n, p=[0.35, 0.45, 0.2])]

    recency = X["days_since_last_order"].fillna(400.0).to_numpy()
    churn_logit = (-1.6 + 0.008 * recency - 0.45 * np.log1p(orders_365) - 0.25 * np.log1p(app_30)
                   + 0.35 * tickets + 0.3 * (X["membership_tier"].to_numpy() == "none") + rng.normal(0, 0.5, n))
    buy_logit = (-2.6 + 0.6 * np.log1p(cart_30) + 0.3 * np.log1p(web_30) + 1.2 * X["email_open_rate"].fillna(0).to_numpy()
                 - 0.015 * np.minimum(days_since_visit, 120) + 0.3 * (X["region"].to_numpy() == "east")
                 + rng.normal(0, 0.5, n))
    X["churned"] = (rng.random(n) < 1 / (1 + np.exp(-churn_logit))).astype(np.int8)
    X["will_buy"] = (rng.random(n) < 1 / (1 + np.exp(-buy_logit))).astype(np.int8)
    return X


def synthetic_bgnbd_transactions(customers: int, *, random_state: int = 42) -> pd.DataFrame:
    """Seeded transactions (customer_id, timestamp, amount) from the BG/NBD process of :data:`TRUE_BGNBD`
    (days), within a :data:`SPAN_DAYS`-day window; customers acquired in the first :data:`ACQUISITION_DAYS`."""
    rng = np.random.default_rng(random_state)
    r, alpha, a, b = TRUE_BGNBD.values()
    lam = rng.gamma(r, 1 / alpha, customers)
    p = rng.beta(a, b, customers)
    start = rng.uniform(0, ACQUISITION_DAYS, customers)
    cust_parts, day_parts = [np.arange(customers)], [start]
    t, alive = start.copy(), np.ones(customers, dtype=bool)
    while alive.any():                             # next purchase at a Poisson(λ) time, dropout w.p. p after it
        idx = np.flatnonzero(alive)
        t[idx] += rng.exponential(1 / lam[idx])
        ok = t[idx] <= SPAN_DAYS
        idx = idx[ok]
        cust_parts.append(idx)
        day_parts.append(t[idx])
        alive[:] = False
        alive[idx] = rng.random(len(idx)) >= p[idx]
    cust, days = np.concatenate(cust_parts), np.concatenate(day_parts)
    level = rng.normal(3.5, 0.5, customers)
    amount = np.round(np.exp(level[cust] + rng.normal(0, 0.6, len(cust))), 2)
    order = np.lexsort((cust, days))
    epoch = np.datetime64("2023-01-01T00:00:00", "s")
    ids = np.array([f"C{i:08d}" for i in range(customers)], dtype=object)
    return pd.DataFrame({"customer_id": ids[cust[order]],
                         "timestamp": epoch + (days[order] * 86_400).astype("int64").astype("timedelta64[s]"),
                         "amount": amount[order]})


# ----------------------------------------------------------------------------- children
def _classifier_child(name: str, customers: int, seed: int) -> dict:
    from sklearn.metrics import roc_auc_score
    from threadpoolctl import threadpool_limits

    from workbench.models.classifiers import make_pipeline

    kind, label = {n: (k, lab) for n, k, lab in CLASSIFIERS}[name]
    train = make_feature_table(customers, random_state=seed)
    score = make_feature_table(customers, random_state=seed + 1)
    features = [c for c in train.columns if c not in ("churned", "will_buy")]
    numeric = [c for c in features if c not in CATEGORICAL]
    pipe = make_pipeline(kind, numeric=numeric, categorical=CATEGORICAL, random_state=0)
    data_mb = _max_rss_mb()
    with threadpool_limits(limits=1, user_api="openmp"):
        t0, c0 = time.perf_counter(), time.process_time()
        pipe.fit(train[features], train[label])
        fit_s, fit_cpu = time.perf_counter() - t0, time.process_time() - c0
        t0, c0 = time.perf_counter(), time.process_time()
        proba = pipe.predict_proba(score[features])[:, 1]
        score_s, score_cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"model": name, "customers": customers, "features": len(features), "numeric": len(numeric),
            "categorical": len(CATEGORICAL), "transactions": None, "prepare_seconds": None,
            "fit_seconds": fit_s, "score_seconds": score_s, "fit_cpu_seconds": fit_cpu, "score_cpu_seconds": score_cpu,
            "data_mb": data_mb, "peak_mb": _max_rss_mb(),
            "quality": {"base_rate": round(float(train[label].mean()), 4),
                        "roc_auc_on_scored_table": round(float(roc_auc_score(score[label], proba)), 4)}}


def _clv_child(customers: int, seed: int) -> dict:
    from workbench.models.clv import (BetaGeoFitter, GammaGammaFitter, customer_lifetime_value,
                                      summary_data_from_transactions)

    tx = synthetic_bgnbd_transactions(customers, random_state=seed)
    end = pd.Timestamp("2023-01-01") + pd.Timedelta(days=SPAN_DAYS)
    data_mb = _max_rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    s = summary_data_from_transactions(tx, customer_id_col="customer_id", datetime_col="timestamp",
                                       monetary_value_col="amount", observation_period_end=end, freq="D")
    prep_s, prep_cpu = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    bgf = BetaGeoFitter().fit(s["frequency"], s["recency"], s["T"])
    bg_s = time.perf_counter() - t0
    repeat = s[s["frequency"] > 0]
    ggf = GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])
    fit_s, fit_cpu = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    clv = customer_lifetime_value(bgf, ggf, s["frequency"], s["recency"], s["T"], s["monetary_value"],
                                  time=CLV_MONTHS, discount_rate=MONTHLY_DISCOUNT, freq="D")
    p_alive = bgf.conditional_probability_alive(s["frequency"], s["recency"], s["T"])
    score_s, score_cpu = time.perf_counter() - t0, time.process_time() - c0
    distinct = len(s[["frequency", "recency", "T"]].drop_duplicates())
    return {"model": "BG/NBD + Gamma-Gamma CLV", "customers": len(s), "features": None, "numeric": None,
            "categorical": None, "transactions": len(tx), "prepare_seconds": prep_s,
            "fit_seconds": fit_s, "score_seconds": score_s, "fit_cpu_seconds": fit_cpu, "score_cpu_seconds": score_cpu,
            "prepare_cpu_seconds": prep_cpu, "data_mb": data_mb, "peak_mb": _max_rss_mb(),
            "quality": {"bgnbd_fit_seconds": round(bg_s, 3), "gamma_gamma_fit_seconds": round(fit_s - bg_s, 3),
                        "distinct_summary_rows": distinct, "repeat_buyers": len(repeat),
                        "bgnbd_params": {k: round(v, 4) for k, v in bgf.params_.items()},
                        "bgnbd_true_params": TRUE_BGNBD,
                        "gamma_gamma_params": {k: round(v, 4) for k, v in ggf.params_.items()},
                        "clv_12m_mean": round(float(clv.mean()), 2), "clv_12m_total": round(float(clv.sum()), 2),
                        "p_alive_mean": round(float(p_alive.mean()), 4)}}


def _spawn(model: str, customers: int, seed: int) -> dict:
    return run_child("tests.benchmarks.models", "--child", model, "--customers", customers,
                     "--seed", seed)


# ----------------------------------------------------------------------------- report
def markdown(rows: list[dict]) -> str:
    def sec(v):
        return "" if v is None else f"{v:.2f}"

    lines = ["| model | customers | transactions | summary seconds | fit seconds | score seconds | peak MB | check |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        q = r["quality"]
        if "roc_auc_on_scored_table" in q:
            check = f"ROC AUC {q['roc_auc_on_scored_table']:.3f} (base rate {q['base_rate']:.1%})"
        else:
            p, t = q["bgnbd_params"], q["bgnbd_true_params"]
            check = ("r, α, a, b = " + ", ".join(f"{p[k]:.3g}" for k in t) + " (true " + ", ".join(f"{t[k]:g}" for k in t)
                     + f"); {q['distinct_summary_rows']:,} distinct summary rows")
        tx = "" if r["transactions"] is None else f"{r['transactions']:,}"
        lines.append(f"| {r['model']} | {r['customers']:,} | {tx} | {sec(r['prepare_seconds'])} | {sec(r['fit_seconds'])} | "
                     f"{sec(r['score_seconds'])} | {r['peak_mb']:,.0f} | {check} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--customers", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--child", choices=[n for n, _, _ in CLASSIFIERS] + ["clv"], help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.customers < 1000:
        ap.error(f"--customers must be at least 1000. Got {a.customers} instead.")
    if a.child:
        r = _clv_child(a.customers, a.seed) if a.child == "clv" else _classifier_child(a.child, a.customers, a.seed)
        print("RESULT " + json.dumps(r))
        return 0

    rows = []
    for model in [n for n, _, _ in CLASSIFIERS] + ["clv"]:
        r = _spawn(model, a.customers, a.seed)
        for k in ("prepare_seconds", "fit_seconds", "score_seconds", "fit_cpu_seconds", "score_cpu_seconds",
                  "prepare_cpu_seconds"):
            if r.get(k) is not None:
                r[k] = round(r[k], 3)
        r["load_average_1min"] = round(os.getloadavg()[0], 2)
        rows.append(r)
        print(json.dumps(r), flush=True)

    from workbench.config import get_paths
    from workbench.models.classifiers import HGB_DEFAULTS, LOGISTIC_DEFAULTS

    out = get_paths().reports / "benchmarks"
    out.mkdir(parents=True, exist_ok=True)
    doc = {"name": "models", "measured_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
           "seed": a.seed, "openmp_threads": 1,
           "timed": {"classifiers": "make_pipeline(kind, numeric=36 columns, categorical=4 columns, random_state=0): "
                                    "fit on the table, predict_proba on a second table of the same size",
                     "clv": "summary_data_from_transactions (freq='D'); BetaGeoFitter.fit + GammaGammaFitter.fit "
                            f"(repeat buyers); customer_lifetime_value(time={CLV_MONTHS}, "
                            f"discount_rate={MONTHLY_DISCOUNT}, freq='D') + conditional_probability_alive"},
           "hgb_defaults": HGB_DEFAULTS, "logistic_defaults": LOGISTIC_DEFAULTS, "results": rows}
    (out / "models.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")
    table = markdown(rows)
    note = ("\n\nData generation is not timed; peak MB is each model's own process (data included). "
            "Classifiers: OpenMP 1 thread, project defaults; score = predict_proba on another "
            f"{a.customers:,} customers. CLV: fit = BG/NBD + Gamma-Gamma, score = {CLV_MONTHS}-month CLV + P(alive).")
    (out / "models.md").write_text(table + note + "\n", encoding="utf-8")
    print("\n" + table + note)
    print(f"\nwritten: {out / 'models.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
