"""The Spark engine gives the local engine's answers on the test sample (local[2], one session).

Each heavy stage with a Spark implementation is run both ways on the same canonical layer and
compared: the purchases view and RFM summaries / scores / segments exactly (floats to 1e-9), the
stage's written ``rfm_segments.parquet``; the customer 360 stage's written profile (columns, order,
types, data dictionary) with the Spark blocks in it, and the Spark aggregates at an earlier as-of
date column by column; the feature store's model features at three cutoffs with the order features
from Spark (floats to 1e-9).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from workbench.canonical import CanonicalLayer
from workbench.config import get_paths
from workbench.engine.spark_io import temp_view_names
from workbench.segments import rfm as R

_COLUMNS = dict(customer_id_col="oneid", datetime_col="ordered_at", monetary_value_col="net", order_id_col="order_key")


def _earlier(layer):
    """An as-of date inside the data (the stage test covers the latest one)."""
    return layer.data_end - pd.Timedelta(days=120)


def test_purchases_view_equal(spark, layer):
    from workbench.engine.spark_rfm import spark_purchases

    for as_of in (None, _earlier(layer)):
        local = layer.purchases(as_of=as_of)
        got = spark_purchases(spark, layer.paths.canonical, as_of=as_of)
        assert len(got) == len(local) > 0
        key = ["order_key", "record_id"]
        a = local.sort_values(key).reset_index(drop=True)
        b = got.sort_values(key).reset_index(drop=True)[list(a.columns)]
        pd.testing.assert_frame_equal(a, b, check_dtype=False, rtol=1e-12)


def test_rfm_segments_equal(spark, layer, profile_360):
    from workbench.engine.spark_rfm import spark_rfm_segments

    m = R.load_segment_map()
    for as_of in (_earlier(layer),):
        local = R.rfm_segments(layer.purchases(as_of=as_of), **_COLUMNS, as_of=as_of,
                               customers=profile_360["oneid"], segment_map=m)
        got = spark_rfm_segments(spark, layer.paths.canonical, as_of=as_of, population=profile_360["oneid"],
                                 segment_map=m)
        assert got.index.tolist() == local.index.tolist()
        assert (local["frequency"] > 0).sum() > 100 and local["segment"].nunique() >= 5   # a real comparison
        pd.testing.assert_frame_equal(got, local, check_dtype=False, check_index_type=False, rtol=1e-9)
        assert got["segment"].tolist() == local["segment"].tolist()
        assert got.attrs["as_of"] == local.attrs["as_of"]


def test_rfm_stage_on_spark_writes_the_same_file(spark, spark_engine, resolved_paths, tmp_path):
    from workbench.customer360 import run_customer_360
    from workbench.runconfig import record
    from workbench.segments.stage import RFM_FILE, run_rfm

    shutil.copytree(resolved_paths.data, tmp_path / "data")
    paths = get_paths(tmp_path / "data", tmp_path / "reports").ensure()
    run_customer_360(paths)
    local = run_rfm(paths, engine={"engine": "local"})
    written_local = pd.read_parquet(paths.processed / RFM_FILE)
    shutil.rmtree(paths.processed / "segments")     # no snapshot of the first run: both compare the same way
    record(paths, "engine", spark_engine.to_dict())
    views = temp_view_names(spark)
    on_spark = run_rfm(paths)                        # the recorded engine
    assert temp_view_names(spark) == views, "the stage's temporary views are dropped"
    written_spark = pd.read_parquet(paths.processed / RFM_FILE)
    pd.testing.assert_frame_equal(written_spark, written_local, check_dtype=False, rtol=1e-9)
    assert written_spark.attrs == written_local.attrs
    assert on_spark.migration.movers.equals(local.migration.movers)
    pd.testing.assert_frame_equal(on_spark.summary, local.summary)


def test_customer_360_stage_on_spark_writes_the_same_profile(spark, spark_engine, resolved_paths, tmp_path, monkeypatch):
    import workbench.customer360 as C
    from workbench.runconfig import record

    shutil.copytree(resolved_paths.data, tmp_path / "data")
    paths = get_paths(tmp_path / "data", tmp_path / "reports").ensure()
    C.run_customer_360(paths, engine={"engine": "local"})
    written_local = pd.read_parquet(paths.customer_360)
    dictionary_local = (paths.processed / "customer_360_dictionary.csv").read_text(encoding="utf-8")
    seen, loaded = [], []
    build = C.build_customer_360
    monkeypatch.setattr(C, "build_customer_360", lambda *a, **k: seen.append(k["computed"]) or build(*a, **k))
    table = CanonicalLayer.table
    monkeypatch.setattr(CanonicalLayer, "table", lambda self, name, **k: loaded.append(name) or table(self, name, **k))
    record(paths, "engine", spark_engine.to_dict())
    views = temp_view_names(spark)
    C.run_customer_360(paths)                          # the recorded engine
    assert temp_view_names(spark) == views, "the stage's temporary views are dropped"
    # the population and is_known came from Spark too: the driver never loads the largest tables
    assert loaded and not {"records", "identifiers", "events", "orders"} & set(loaded), sorted(set(loaded))
    written_spark = pd.read_parquet(paths.customer_360)
    computed = seen[0]
    assert computed is not None and len(computed.columns) >= 30       # the heavy blocks came from Spark
    for must in ("n_records", "channels", "n_identifiers", "orders", "net_revenue", "days_since_last_order",
                 "favourite_category", "top_categories", "main_sales_channel", "sessions", "email_open_rate",
                 "wechat_following", "problem_tickets", "service_rating", "last_touch_at"):
        assert must in computed.columns
    assert sum(c.startswith("revenue_") for c in computed.columns) >= 2
    assert written_local["orders"].sum() > 0 and written_local["sessions"].sum() > 0
    pd.testing.assert_frame_equal(written_spark, written_local, check_exact=False, rtol=1e-9, atol=1e-9)
    assert written_spark.attrs == written_local.attrs                  # as_of, currency, the data dictionary
    assert (paths.processed / "customer_360_dictionary.csv").read_text(encoding="utf-8") == dictionary_local
    metrics = json.loads((paths.metrics / "customer_360.json").read_text(encoding="utf-8"))
    assert metrics["engine"] == "spark" and metrics["reconciles"]


def test_customer_360_aggregates_equal(spark, layer):
    """The Spark blocks at an earlier as-of date (the stage test covers all data)."""
    from workbench.customer360 import MAX_SALES_CHANNEL_COLUMNS, ComputedBlocks, build_customer_360
    from workbench.engine.spark_360 import spark_column_sources, spark_customer_aggregates, spark_event_universe

    unique = layer.config.identity.names_of_kind("unique")
    assert unique, "the sample's identity settings have a member number"
    for as_of in (_earlier(layer),):
        local = build_customer_360(layer, as_of=as_of)
        got = spark_customer_aggregates(spark, layer.paths.canonical, as_of=as_of,
                                        session_gap_minutes=layer.analysis.session_gap_minutes,
                                        problem_ticket_categories=layer.analysis.problem_ticket_categories,
                                        max_sales_channels=MAX_SALES_CHANNEL_COLUMNS,
                                        unique_identifiers=unique)
        assert got["oneid"].tolist() == local["oneid"].tolist()
        ids = layer.table("identifiers", as_of=as_of)
        numbered = set(ids.loc[ids["identifier"].isin(unique), "oneid"])
        assert got["has_unique_identifier"].tolist() == local["oneid"].isin(numbered).tolist()
        assert 0 < got["has_unique_identifier"].sum() < len(got)
        assert not (got["has_unique_identifier"] & ~local["is_known"]).any()
        cols = [c for c in got.columns if c not in ("oneid", "has_unique_identifier")]
        missing = sorted(set(cols) - set(local.columns))
        assert not missing, f"Spark columns the local profile lacks: {missing}"
        for must in ("n_records", "channels", "n_identifiers", "orders", "net_revenue", "days_since_last_order",
                     "top_categories", "main_sales_channel", "sessions", "email_click_rate", "wechat_following", "problem_tickets", "service_rating",
                     "last_touch_at"):
            assert must in cols
        assert len(cols) >= 30 and local["sessions"].sum() > 0 and local["orders"].sum() > 0
        for c in cols:
            a, b = got[c], local[c]
            assert a.dtype == b.dtype, c
            if pd.api.types.is_float_dtype(b.dtype):
                np.testing.assert_allclose(a.to_numpy(float), b.to_numpy(float), rtol=1e-9, atol=1e-9,
                                           equal_nan=True, err_msg=c)
            else:
                assert a.astype(object).where(a.notna(), None).tolist() == \
                    b.astype(object).where(b.notna(), None).tolist(), c
        # the whole profile at that date from them: population, is_known and the rest as the local one
        blocks = ComputedBlocks(got, spark_column_sources(spark, layer.paths.canonical, as_of=as_of),
                                spark_event_universe(spark, layer.paths.canonical))
        pd.testing.assert_frame_equal(build_customer_360(layer, as_of=as_of, computed=blocks), local)


def test_feature_store_on_spark_builds_the_same_features(spark, spark_engine, layer, tmp_path):
    """The models' features (the feature store's snapshots) with the order block from Spark, at
    three cutoffs in one Spark pass, equal the local engine's; the order block itself is
    ``rfm_features``' table, so this pins ``rfm_features.sql`` to it."""
    from workbench.models.dataset import build_features
    from workbench.models.feature_store import FeatureStore, cutoff_key

    cutoffs = [cutoff_key(layer.data_end - pd.Timedelta(days=d)) for d in (300, 180, 30)]
    given = []

    def build(lay, *, cutoff, **kw):
        given.append((cutoff, kw.get("order_features")))
        return build_features(lay, cutoff=cutoff, **kw)

    local = FeatureStore(layer, root=tmp_path / "local").features(cutoffs)
    store = FeatureStore(layer, root=tmp_path / "spark", build=build,
                         engine=spark_engine)
    got = store.features(cutoffs)
    assert store.stats["built"] == 3 and store.key == FeatureStore(layer, root=tmp_path / "local").key
    assert sorted(c for c, orders in given if orders is not None) == sorted(cutoffs)   # the order block from Spark
    for c in cutoffs:
        orders = dict(given)[c]
        assert len(orders) > 100 and {"orders_per_30d", "recency_ratio", "revenue_365d"} <= set(orders.columns)
        pd.testing.assert_frame_equal(got[c], local[c], check_exact=False, rtol=1e-9, atol=1e-9)
        assert got[c].attrs == local[c].attrs
        assert got[c].loc[orders.index, "orders_90d"].sum() == orders["orders_90d"].sum() > 0
