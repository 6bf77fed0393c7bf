"""The segmentation stages: RFM segments, behavioural clusters, engagement × value.

Each stage reads the customer 360 profile and the canonical layer, writes its own tables and
returns what the notebooks show. The CLI runs the same functions (``workbench stage rfm``).

==============  ==========================================================  ==============
function        writes (``data/processed/``)                               notebook
==============  ==========================================================  ==============
run_rfm         ``rfm_segments.parquet``, ``rfm_migration.parquet``,       05_rfm
                ``segments/rfm_<as_of>.parquet`` (snapshot for migration)
run_clusters    ``clusters.parquet``                                        06_kmeans
run_engagement  ``engagement_value.parquet``                                06_kmeans
==============  ==========================================================  ==============

Example:
    >>> run = run_rfm(as_of="2026-06-01")                     # doctest: +SKIP
    >>> run.summary["customers"].sum() == len(run.rfm)         # doctest: +SKIP
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from ..canonical import load_canonical
from ..config import Paths, get_paths
from ..customer360 import load_customer_360
from ..runconfig import resolve_engine
from ..timeutil import to_utc
from . import rfm as R
from .behaviour import behaviour_features
from .clusters import Clustering, segment_customers
from .engagement import available_signals, engagement_value
from .snapshots import previous_snapshot, save_snapshot

__all__ = ["RFMRun", "run_rfm", "run_clusters", "run_engagement", "RFM_FILE", "MIGRATION_FILE", "CLUSTERS_FILE",
           "ENGAGEMENT_FILE"]

RFM_FILE, MIGRATION_FILE = "rfm_segments.parquet", "rfm_migration.parquet"
CLUSTERS_FILE, ENGAGEMENT_FILE = "clusters.parquet", "engagement_value.parquet"
_COLUMNS = dict(customer_id_col="oneid", datetime_col="ordered_at", monetary_value_col="net", order_id_col="order_key")


@dataclass
class RFMRun:
    """What :func:`run_rfm` computed: segments per OneID, their summary, the migration."""

    rfm: pd.DataFrame
    summary: pd.DataFrame
    migration: R.Migration
    previous_label: str
    as_of: pd.Timestamp
    segment_map: R.SegmentMap
    transactions: pd.DataFrame
    has_orders: bool


def run_rfm(paths: Paths | None = None, *, as_of: Any = None, segment_map: R.SegmentMap | str | Path | None = None,
            compare_days: int = 90, engine: Any = None) -> RFMRun:
    """RFM segments of every OneID of the profile at ``as_of`` (default: the profile's as-of date).

    Purchases are the canonical layer's (:meth:`~workbench.canonical.CanonicalLayer.purchases`:
    orders with refunds netted, one row per order). Migration compares with the newest earlier
    snapshot of a previous run, else with the same data ``compare_days`` earlier. A brand without
    orders gets every OneID in the map's ``no_purchase`` segment (``has_orders`` False).

    ``engine`` (settings, a mapping or a YAML path; default: the run's recorded engine, else local):
    with ``engine: spark`` the purchases, summaries, scores and segments are computed by Spark SQL
    (:mod:`workbench.engine.spark_rfm`) — the same table, written to the same file.
    """
    paths = (paths or get_paths()).ensure()
    layer = load_canonical(paths)
    profile = load_customer_360(paths)
    cutoff = to_utc(as_of) or to_utc(profile.attrs["as_of"])
    m = R.load_segment_map(segment_map) if not isinstance(segment_map, R.SegmentMap) else segment_map
    has_orders = layer.has("orders")
    eng = resolve_engine(paths, engine)
    spark = None
    if eng.is_spark:
        from ..engine.session import spark_session
        from ..engine.spark_io import temporary_views
        from ..engine.spark_rfm import spark_purchases, spark_rfm_segments

        spark = spark_session(eng)
        with temporary_views(spark):
            tx = spark_purchases(spark, paths.canonical, as_of=cutoff) if has_orders else None
    else:
        tx = layer.purchases(as_of=cutoff) if has_orders else None

    def segments(purchases, when):
        if spark is not None and purchases is not None:
            return spark_rfm_segments(spark, paths.canonical, as_of=when, population=profile["oneid"], segment_map=m)
        if purchases is None:  # no orders at all: everyone is a prospect
            return R.rfm_segments(pd.DataFrame({"oneid": pd.Series([], dtype="string"),
                                                "ordered_at": pd.Series([], dtype="datetime64[us, UTC]"),
                                                "net": pd.Series([], dtype="float64"),
                                                "order_key": pd.Series([], dtype="string")}),
                                  **_COLUMNS, as_of=when, customers=profile["oneid"], segment_map=m)
        return R.rfm_segments(purchases, **_COLUMNS, as_of=when, customers=profile["oneid"], segment_map=m)

    rfm = segments(tx, cutoff)
    prev = previous_snapshot(paths, kind="rfm", as_of=cutoff)
    if prev is not None:
        label, previous = prev
    else:
        before = cutoff - pd.Timedelta(days=compare_days)
        label = f"{before:%Y-%m-%d} (same data, {compare_days} days earlier)"
        previous = segments((True if spark is not None else layer.purchases(as_of=before)) if has_orders else None,
                            before)
    migration = R.segment_migration(previous, rfm, order=m.order)
    keep = rfm[["recency_days", "frequency", "monetary", "r_score", "f_score", "m_score", "rfm_cell", "segment"]].copy()
    keep.attrs = {"as_of": cutoff.isoformat(), "has_orders": has_orders, "currency": layer.base_currency}
    keep.to_parquet(paths.processed / RFM_FILE)
    save_snapshot(keep, paths, kind="rfm", as_of=cutoff)
    movers = migration.movers.copy()
    movers.attrs = {"previous": label, "as_of": cutoff.isoformat()}
    movers.to_parquet(paths.processed / MIGRATION_FILE, index=False)
    empty_tx = pd.DataFrame(columns=["oneid", "ordered_at", "net", "order_key"])
    return RFMRun(rfm, R.segment_summary(rfm, segment_map=m), migration, label, cutoff, m,
                  tx if tx is not None else empty_tx, has_orders)


def run_clusters(paths: Paths | None = None, *, population: str = "known", columns: Sequence[str] | None = None,
                 k_range: Sequence[int] = range(3, 11), random_state: int = 0, silhouette_sample: int = 5000,
                 stability_seeds: Sequence[int] | None = (0, 1, 2),
                 stability_sample: int | None = 10_000) -> tuple[Clustering | None, pd.DataFrame]:
    """KMeans clusters of the ``population``'s behaviour features (those the profile has); writes
    ``clusters.parquet`` (cluster, cluster_name per OneID). Returns (clustering, features);
    the clustering is None — and nothing is written — when fewer than two features vary or there
    are too few persons to choose k (the notebook says so)."""
    paths = (paths or get_paths()).ensure()
    profile = load_customer_360(paths)
    X = behaviour_features(profile, population=population, columns=columns)
    out = paths.processed / CLUSTERS_FILE
    ks = [k for k in k_range if 2 <= k < len(X)]
    if X.shape[1] < 2 or len(ks) < 1:
        out.unlink(missing_ok=True)
        return None, X
    seg = segment_customers(X, columns=list(X.columns), k_range=ks, random_state=random_state,
                            sample_size=silhouette_sample, stability_seeds=stability_seeds,
                            stability_sample=stability_sample)
    pd.DataFrame({"cluster": seg.labels, "cluster_name": seg.named_labels}).to_parquet(out)
    return seg, X


def run_engagement(paths: Paths | None = None, *, engagement_quantile: float = 0.75,
                   value_quantile: float = 0.75, signals: Sequence[str] | None = None) -> pd.DataFrame | None:
    """Engagement × value group of every OneID from the engagement signals the profile has; writes
    ``engagement_value.parquet``. None — and nothing written — when the profile has no engagement
    signal or no orders (the notebook says so)."""
    paths = (paths or get_paths()).ensure()
    profile = load_customer_360(paths).set_index("oneid")
    signals = available_signals(profile) if signals is None else list(signals)
    out = paths.processed / ENGAGEMENT_FILE
    if not signals or "orders" not in profile.columns:
        out.unlink(missing_ok=True)
        return None
    ev = engagement_value(profile, signals=signals, engagement_quantile=engagement_quantile,
                          value_quantile=value_quantile)
    ev.attrs["currency"] = profile.attrs.get("currency", "CNY")
    ev.drop(columns=["buyer"]).assign(group=ev["group"].astype(str)).to_parquet(out)
    return ev
