"""OneID on Spark gives the local engine's answer (local[2], the session's one Spark session).

Each rule re-expressed as Spark SQL is pinned to the local function on a small crafted table —
connected components, the per-value person limit, a blocked placeholder, two member ids in one
component — and the whole stage on the test sample: the same partition of records into persons,
the same over-limit values, conflicts and evidence.
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from workbench.config import get_paths
from workbench.engine.spark_io import temp_view_names
from workbench.identity import resolve_tables
from workbench.identity.deterministic import components, link_deterministic
from workbench.identity.settings import IdentitySettings, SourceSpec

pytestmark = pytest.mark.spark_stages   # make test-spark (see the README, "Tests and their cost")


def _partition(record_ids: pd.Series, oneids: pd.Series) -> set[frozenset]:
    """The persons as sets of record ids: equal partitions are the same OneIDs up to relabelling."""
    return {frozenset(g) for _, g in pd.Series(record_ids.to_numpy()).groupby(oneids.to_numpy())}


def test_components_equal_on_a_random_graph(spark):
    from workbench.engine.spark_identity import spark_components

    rng = np.random.default_rng(7)
    n_records, n_values = 400, 300
    rec = rng.integers(0, n_records, 500)
    node = rng.integers(0, n_values, 500)
    # and a long chain (rec k and k+1 share value k), which min-label propagation walks step by step
    rec = np.r_[rec, np.arange(50), np.arange(1, 51)] % n_records
    node = np.r_[node, n_values + np.arange(50), n_values + np.arange(50)]
    spark.createDataFrame(pd.DataFrame({"rec": rec.astype(np.int64), "vcode": node.astype(np.int64)})
                          ).createOrReplaceTempView("test_edges")
    got = spark_components(spark, "test_edges").toPandas()
    lab = np.arange(n_records)
    lab[got["rec"].to_numpy()] = got["label"].to_numpy()
    local = components(n_records, rec, node, n_values + 50)
    assert pd.factorize(lab)[0].tolist() == local.tolist()
    assert 1 < len(np.unique(local)) < n_records - 100        # a real graph: merges and singletons


def _guard_settings() -> IdentitySettings:
    return IdentitySettings.from_dict({
        "identifiers": [{"name": "member_id", "kind": "unique"},
                        {"name": "phone", "kind": "strong", "max_persons": 1, "typos": False},
                        {"name": "email", "kind": "strong", "max_persons": 2, "typos": False},
                        {"name": "cookie_id", "kind": "weak", "max_persons": 3}],
        "blocked_values": ["+8613800000000"], "attributes": {},
        "sources": {"t": {"identifiers": {"member": "member_id", "phone": "phone", "email": "email",
                                          "cookie": "cookie_id"}}}})


def _guard_table() -> pd.DataFrame:
    """Crafted: a phone two members share (over its limit of 1); a placeholder phone on three
    records (blocked); an e-mail within its limit of 2 that two member ids share — the conflict
    the split must undo at its weakest link; a cookie over 3 persons; a chain of cookies."""
    return pd.DataFrame({
        "record_id": [f"r{k}" for k in range(14)],
        "member": ["M00000001", "M00000002", None, None, None, "M00000003", "M00000004", None,
                   "M00000005", "M00000006", "M00000007", "M00000008", None, None],
        "phone": ["13900000001", "13900000001", "13800000000", "13800000000", "13800000000", None, None,
                  None, None, None, None, None, "13900000009", None],
        "email": [None, None, None, None, None, "a@b.cn", None, "a@b.cn", None, None, None, None, None, None],
        "cookie": [None, None, "ck1", "ck2", None, None, "ck3", "ck3", "ck9", "ck9", "ck9", "ck9", "ck4", "ck4"],
    })


def test_guards_equal_on_a_crafted_table(spark, spark_engine):
    """The per-value limit (SQL), blocked placeholders and the unique-id split give the local answers."""
    s = _guard_settings()
    df = _guard_table()
    src = {"t": SourceSpec(identifiers=dict(s.sources["t"].identifiers), attributes={})}
    local = resolve_tables({"t": df}, s, sources=src)
    on_spark = resolve_tables({"t": df}, s, sources=src, engine=spark_engine)
    assert _partition(local.records["record_id"], local.records["oneid"]) == \
        _partition(on_spark.records["record_id"], on_spark.records["oneid"])
    # the crafted table reaches every guard
    assert set(local.over_limit["identifier"]) == {"phone", "cookie_id"}
    assert local.blocked.get("phone", 0) == 3 and len(local.conflicts) == 1
    pd.testing.assert_frame_equal(on_spark.over_limit, local.over_limit, check_dtype=False)
    pd.testing.assert_frame_equal(on_spark.conflicts, local.conflicts)
    assert on_spark.blocked == local.blocked
    pd.testing.assert_frame_equal(on_spark.links, local.links)


def test_deterministic_equal_with_and_without_conflicts(spark):
    """Labels, kept edges (same order) and reports equal the local function's, exactly."""
    from workbench.engine.spark_identity import spark_link_deterministic

    s = _guard_settings()
    rng = np.random.default_rng(3)
    n = 300
    ids = pd.DataFrame({"rec": np.r_[np.arange(0, n, 3), rng.integers(0, n, 200), rng.integers(0, n, 400)],
                        "identifier": ["member_id"] * 100 + ["email"] * 200 + ["cookie_id"] * 400,
                        "value": np.r_[np.arange(100), rng.integers(0, 150, 200), rng.integers(0, 300, 400)].astype(str)})
    ids["identifier"] = ids["identifier"].astype("category")
    local = link_deterministic(n, ids, s)
    got = spark_link_deterministic(spark, n, ids, s)
    assert got.labels.tolist() == local.labels.tolist()
    pd.testing.assert_frame_equal(got.edges, local.edges)
    pd.testing.assert_frame_equal(got.over_limit, local.over_limit, check_dtype=False)
    pd.testing.assert_frame_equal(got.conflicts, local.conflicts)
    assert len(local.over_limit) and len(local.conflicts)          # both guards were reached
    # observations of an identifier the settings do not have are refused, naming it (unused categories are not)
    odd = ids.assign(identifier=ids["identifier"].cat.add_categories(["fax", "pager"]))
    odd.loc[odd.index[-3:], "identifier"] = "fax"
    with pytest.raises(ValueError, match=r"Observed identifiers \['fax'\] are not in the identity settings"):
        spark_link_deterministic(spark, n, odd, s)


def test_identity_stage_on_spark_gives_the_same_oneids(spark, spark_engine, cleaned_paths, resolved_paths, tmp_path):
    """run_identity with the recorded Spark engine: the same persons, links and files as the local
    engine's run of the session (``resolved_paths``)."""
    import json

    from workbench.identity import run_identity
    from workbench.runconfig import record

    shutil.copytree(cleaned_paths.data, tmp_path / "data", ignore=shutil.ignore_patterns("processed"))
    sp = get_paths(tmp_path / "data", tmp_path / "reports").ensure()
    record(sp, "engine", spark_engine.to_dict())
    views = temp_view_names(spark)
    on_spark = run_identity(sp, evaluate=False)
    assert temp_view_names(spark) == views, "the stage's temporary views (Splink's too) are dropped"
    lp = resolved_paths
    local = json.loads((lp.metrics / "identity.json").read_text(encoding="utf-8"))
    a = pd.read_parquet(lp.processed / "oneid_records.parquet")
    b = pd.read_parquet(sp.processed / "oneid_records.parquet")
    assert a["record_id"].tolist() == b["record_id"].tolist()
    assert _partition(a["record_id"], a["oneid"]) == _partition(b["record_id"], b["oneid"])
    assert a["oneid"].nunique() < len(a) and local["probabilistic"]["merges"] > 0     # real merges, fuzzy ones too
    assert (a["anchored"] == b["anchored"]).all()
    assert on_spark.probabilistic["merges"] == local["probabilistic"]["merges"]
    assert on_spark.probabilistic["prior"] == pytest.approx(local["probabilistic"]["prior"], rel=1e-12)
    assert on_spark.probabilistic["pairs_above_threshold"] == local["probabilistic"]["pairs_above_threshold"]
    pd.testing.assert_frame_equal(pd.read_parquet(sp.processed / "identity_over_limit.parquet"),
                                  pd.read_parquet(lp.processed / "identity_over_limit.parquet"))
    # evidence: the same identifier links; the fuzzy links' weights to float tolerance
    key = ["record_a", "record_b", "how"]
    la, lb = (pd.read_parquet(p.processed / "identity_links.parquet").sort_values(key).reset_index(drop=True)
              for p in (lp, sp))
    assert (la["how"] == "probabilistic").any()
    pd.testing.assert_frame_equal(lb, la, check_dtype=False, rtol=1e-9)
    pa_, pb = (pd.read_parquet(p.processed / "identity_scored_pairs.parquet").sort_values(["record_a", "record_b"])
               .reset_index(drop=True) for p in (lp, sp))
    assert len(pa_) > 0
    pd.testing.assert_frame_equal(pb, pa_, rtol=1e-9)
