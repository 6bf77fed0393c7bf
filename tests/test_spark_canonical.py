"""The canonical layer built by the Spark engine is the local engine's, file for file (local[2]).

The session's canonical layer (``resolved_paths``, local engine) and a copy rebuilt with
``engine: spark`` are read back as the later stages read them (``pd.read_parquet``): every table
must have the same columns, dtypes and rows in the same order (floats to 1e-12), and the manifest
the same counts (rows per table and channel, OneIDs, event types, purposes, matched refunds, window).
"""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from workbench.canonical import TABLES, load_canonical, run_canonical
from workbench.config import get_paths
from workbench.engine.spark_io import temp_view_names

pytestmark = pytest.mark.spark_stages   # make test-spark (see the README, "Tests and their cost")

@pytest.fixture(scope="module")
def spark_layer(spark, spark_engine, resolved_paths, tmp_path_factory):
    root = tmp_path_factory.mktemp("spark-canonical")
    shutil.copytree(resolved_paths.data, root / "data", ignore=shutil.ignore_patterns("canonical"))
    paths = get_paths(root / "data", root / "reports").ensure()
    before = temp_view_names(spark)
    layer = run_canonical(paths, engine=spark_engine, log=None)
    layer.views_left = temp_view_names(spark) - before
    return layer


def _manifest(paths):
    m = json.loads((paths.canonical / "manifest.json").read_text(encoding="utf-8"))
    for k in ("built_utc", "seconds", "seconds_per_channel"):
        m.pop(k)
    m["settings"].pop("engine")
    return m


@pytest.mark.parametrize("table", TABLES)
def test_spark_tables_equal_local(spark_layer, layer, table):
    local = pd.read_parquet(layer.paths.canonical / f"{table}.parquet")
    got = pd.read_parquet(spark_layer.paths.canonical / f"{table}.parquet")
    assert list(got.dtypes.astype(str)) == list(local.dtypes.astype(str))
    if table in ("records", "orders", "events", "traits", "consents", "refunds"):
        assert len(local) > 50, table   # a real comparison
    pd.testing.assert_frame_equal(got, local, rtol=1e-12)


def test_the_build_leaves_no_temporary_view_in_the_session(spark_layer):
    assert spark_layer.views_left == set()


def test_spark_manifest_and_reconciliation_equal_local(spark_layer, layer):
    assert _manifest(spark_layer.paths) == _manifest(layer.paths)
    assert json.loads((spark_layer.paths.canonical / "manifest.json").read_text())["settings"]["engine"]["engine"] \
        == "spark"
    back = load_canonical(spark_layer.paths)
    assert back.data_end == layer.data_end and back.last_order == layer.last_order
    pd.testing.assert_frame_equal(back.purchases(), layer.purchases())
    metrics = json.loads((spark_layer.paths.metrics / "canonical.json").read_text())
    assert metrics["totals"]["read"] == metrics["totals"]["kept"] == layer.manifest["rows"]["records"]


def test_consent_purposes_are_lower_cased_alike(spark):
    """The consents rule's ``lower(purpose)`` on Spark and ``consent_purpose_key`` on the local engine
    agree on text where lower-casing rules differ (ß, a final sigma, a dotted capital I, full-width)."""
    from workbench.canonical.build import consent_purpose_key

    values = ["Email_Marketing", "STRASSE", "Straße", "ΣΊΣΥΦΟΣ", "İstanbul", "ǅemal", "ＳＭＳ", "短信营销", None]
    rows = ", ".join(f"({i}, {'NULL' if v is None else repr(v)})" for i, v in enumerate(values))
    # plain SQL (no Python rows to ship to the JVM): ~1 s instead of ~9 s on a busy machine
    got = [r[0] for r in spark.sql(f"SELECT lower(purpose) FROM VALUES {rows} AS t(i, purpose) ORDER BY i").collect()]
    local = consent_purpose_key(pd.Series(values, dtype="string")).tolist()
    assert got == [None if v is pd.NA else v for v in local]
    assert local[3] == "σίσυφος" and local[2] == "straße"
