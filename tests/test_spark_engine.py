"""The Spark engine gives the local engine's answers on the test sample (local[2], one session).

Each heavy stage with a Spark implementation is run both ways on the same canonical layer and
compared: the purchases view and RFM summaries / scores / segments exactly (floats to 1e-9), the
stage's written ``rfm_segments.parquet``, the customer 360 aggregates to float tolerance.
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from workbench.config import get_paths
from workbench.engine import EngineSettings
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


def test_rfm_stage_on_spark_writes_the_same_file(spark, resolved_paths, tmp_path):
    from workbench.customer360 import run_customer_360
    from workbench.runconfig import record
    from workbench.segments.stage import RFM_FILE, run_rfm

    shutil.copytree(resolved_paths.data, tmp_path / "data")
    paths = get_paths(tmp_path / "data", tmp_path / "reports").ensure()
    run_customer_360(paths)
    local = run_rfm(paths, engine={"engine": "local"})
    written_local = pd.read_parquet(paths.processed / RFM_FILE)
    shutil.rmtree(paths.processed / "segments")     # no snapshot of the first run: both compare the same way
    record(paths, "engine", EngineSettings(engine="spark", master="local[2]", shuffle_partitions=2).to_dict())
    on_spark = run_rfm(paths)                        # the recorded engine
    written_spark = pd.read_parquet(paths.processed / RFM_FILE)
    pd.testing.assert_frame_equal(written_spark, written_local, check_dtype=False, rtol=1e-9)
    assert written_spark.attrs == written_local.attrs
    assert on_spark.migration.movers.equals(local.migration.movers)
    pd.testing.assert_frame_equal(on_spark.summary, local.summary)


def test_customer_360_aggregates_equal(spark, layer, profile_360):
    from workbench.customer360 import build_customer_360
    from workbench.engine.spark_360 import spark_customer_aggregates

    for as_of in (None, _earlier(layer)):
        local = profile_360 if as_of is None else build_customer_360(layer, as_of=as_of)
        got = spark_customer_aggregates(spark, layer.paths.canonical, as_of=as_of,
                                        session_gap_minutes=layer.analysis.session_gap_minutes)
        assert got["oneid"].tolist() == local["oneid"].tolist()
        cols = [c for c in got.columns if c != "oneid"]
        missing = sorted(set(cols) - set(local.columns))
        assert not missing, f"Spark columns the local profile lacks: {missing}"
        for must in ("n_records", "channels", "n_identifiers", "orders", "net_revenue", "days_since_last_order",
                     "sessions", "last_touch_at"):
            assert must in cols
        assert len(cols) >= 30 and local["sessions"].sum() > 0 and local["orders"].sum() > 0
        for c in cols:
            a, b = got[c], local[c]
            if pd.api.types.is_float_dtype(b.dtype):
                np.testing.assert_allclose(a.to_numpy(float), b.to_numpy(float), rtol=1e-9, atol=1e-9,
                                           equal_nan=True, err_msg=c)
            else:
                assert a.astype(object).where(a.notna(), None).tolist() == \
                    b.astype(object).where(b.notna(), None).tolist(), c


def test_model_order_features_at_all_cutoffs_equal(spark, layer):
    from workbench.engine.spark_features import spark_rfm_features
    from workbench.models.dataset import build_features, rfm_features

    cutoffs = [layer.data_end - pd.Timedelta(days=d) for d in (300, 180, 30)]
    got = spark_rfm_features(spark, layer.paths.canonical, cutoffs=cutoffs)
    for cutoff in cutoffs:
        tx = layer.purchases(as_of=cutoff)
        paid = tx[tx["is_order"].to_numpy(bool)]
        first_seen = layer.table("records", as_of=cutoff).groupby("oneid")["at"].min()
        local = rfm_features(paid, customer_id_col="oneid", datetime_col="ordered_at", monetary_value_col="net",
                             cutoff=cutoff, observation_start=tx["ordered_at"].min(), first_seen=first_seen)
        g = got[cutoff]
        assert len(local) > 100 and g.index.tolist() == local.index.astype(str).tolist()
        pd.testing.assert_frame_equal(g, local, check_dtype=False, check_index_type=False, check_names=False,
                                      rtol=1e-9)
    # the same numbers build_features puts in the model's table (the order block)
    f = build_features(layer, cutoff=cutoffs[-1])
    g = got[cutoffs[-1]]
    np.testing.assert_allclose(f.loc[g.index, "orders_per_30d"], g["orders_per_30d"], rtol=1e-9)
    np.testing.assert_allclose(f.loc[g.index, "recency_ratio"], g["recency_ratio"], rtol=1e-9, equal_nan=True)
