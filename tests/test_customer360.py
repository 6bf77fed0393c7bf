"""Customer 360 profile and the purchases table it is built from."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.config import get_paths
from workbench.customer360 import (DICTIONARY, _pick, _sessions, build_customer_360, data_dictionary, public_view,
                                   reconcile)
from workbench.transactions import expected_totals, load_registry, load_transactions


def test_one_row_per_oneid_and_totals_reconcile(resolved_paths, profile_360):
    registry = load_registry(resolved_paths)
    assert profile_360["oneid"].is_unique
    assert set(profile_360["oneid"]) == set(registry["oneid"])
    rec = reconcile(profile_360, resolved_paths)
    assert rec["ok"].all(), rec
    assert profile_360["orders"].sum() > 0 and profile_360["n_records"].sum() == len(registry)


def test_as_of_drops_later_records_and_still_reconciles(resolved_paths, profile_360):
    cutoff = pd.Timestamp("2026-01-01", tz="UTC")
    early = build_customer_360(resolved_paths, as_of="2026-01-01")
    assert (early["last_seen"] < cutoff).all()
    assert early["last_order_at"].dropna().lt(cutoff).all()
    assert len(early) < len(profile_360)
    assert reconcile(early, resolved_paths)["ok"].all()
    exp = expected_totals(resolved_paths, as_of="2026-01-01")
    assert round(early["net_revenue"].sum(), 2) == exp["net_revenue"]
    assert (early["days_since_last_order"].dropna() > 0).all()


def test_dictionary_describes_every_column(profile_360):
    d = data_dictionary(profile_360)
    assert list(d.index) == list(profile_360.columns)
    assert (d["type"] != "missing").all()
    assert d["meaning"].str.len().gt(10).all()
    assert set(d["personal data"]) <= {"none", "direct", "quasi", "masked", "pseudonym"}


def test_public_view_has_no_raw_contacts(profile_360):
    view = public_view(profile_360)
    direct = {c.name for c in DICTIONARY if c.pii == "direct"}
    assert direct and not direct & set(view.columns)
    phones = profile_360["phone"].dropna()
    assert len(phones) and not view.astype(str).isin(set(phones)).any().any()
    masked = profile_360["phone_masked"].dropna()
    assert masked.str.fullmatch(r"(1\d\d\*{4}\d{4})|(\+\d{1,3} .*)").all()


def test_email_unsubscribe_revokes_consent(profile_360):
    unsub = profile_360[profile_360["email_unsubscribed"]]
    assert len(unsub) > 0
    # only a CRM consent given after the unsubscribe can keep e-mail consent
    assert not unsub.loc[~unsub["is_member"], "consent_email"].fillna(False).any()


def test_pick_follows_the_declared_rule():
    cand = pd.DataFrame({
        "oneid": ["a", "a", "a", "b"],
        "value": ["张伟", "张 伟2", "张三", "李四"],
        "ts": pd.to_datetime(["2025-01-01", "2026-01-01", "2025-06-01", "2025-01-01"], utc=True),
        "rank": [0, 2, 0, 1],  # 0 = CRM
    })
    by_priority = _pick(cand, "value", "source_priority")
    assert by_priority["a"] == "张三"  # CRM wins; within CRM the latest
    assert _pick(cand, "value", "most_recent")["a"] == "张 伟2"
    assert _pick(cand.sample(frac=1, random_state=3), "value", "source_priority").equals(by_priority)


def test_sessions_split_on_thirty_minute_gaps():
    t = pd.to_datetime(["2026-01-01 10:00", "2026-01-01 10:20", "2026-01-01 10:51", "2026-01-01 10:00",
                        "2026-01-02 10:00"], utc=True)
    ev = pd.DataFrame({"oneid": ["a", "a", "a", "b", "b"], "event_time": t})
    s = _sessions(ev.iloc[::-1])
    assert s.to_dict() == {"a": 2, "b": 2}


def test_bad_rule_is_explained(resolved_paths):
    with pytest.raises(ValueError, match="'demographics_rule' parameter must be one of"):
        build_customer_360(resolved_paths, demographics_rule="newest")


def _write_tables(tmp_path, pos: pd.DataFrame, ecom: pd.DataFrame):
    paths = get_paths(tmp_path / "data", tmp_path / "reports").ensure()
    pos.to_parquet(paths.cleaned / "pos_receipts.parquet", index=False)
    ecom.to_parquet(paths.cleaned / "ecommerce_orders.parquet", index=False)
    reg = pd.concat([pd.DataFrame({"record_id": pos["record_id"], "channel": "pos_receipts", "oneid": pos["who"]}),
                     pd.DataFrame({"record_id": ecom["record_id"], "channel": "ecommerce_orders",
                                   "oneid": ecom["who"]})])
    reg.to_parquet(paths.processed / "oneid_records.parquet", index=False)
    return paths


def test_returns_are_netted_onto_their_sale_and_orphans_kept(tmp_path):
    ts = pd.to_datetime(["2026-01-01", "2026-01-05", "2026-01-03", "2026-02-01"], utc=True)
    pos = pd.DataFrame({
        "record_id": ["p1", "p2", "p3", "p4"], "who": ["A", "A", "B", "B"], "store_code": "BJ001",
        "receipt_no": ["S1", "R1", "S2", "R9"], "txn_time": ts, "txn_type": ["sale", "return", "sale", "return"],
        "original_receipt": [None, "S1", None, "S0"], "category": "skincare",
        "amount": [100.0, -40.0, 50.0, -30.0]})
    ecom = pd.DataFrame({
        "record_id": ["e1", "e2", "e3"], "who": ["A", "B", "B"], "platform": "tmall",
        "order_id": ["T1", "T2", "T3"], "ordered_at": pd.to_datetime(["2026-01-02"] * 3, utc=True),
        "status": ["completed", "refunded", "cancelled"], "category": "makeup",
        "amount": [200.0, 80.0, 60.0], "refund_amount": [0.0, 80.0, 0.0]})
    paths = _write_tables(tmp_path, pos, ecom)
    tx = load_transactions(paths).set_index("order_key")
    assert tx.loc["pos:S1", ["gross", "refund", "net"]].tolist() == [100.0, 40.0, 60.0]
    assert tx.loc["pos:R9", "net"] == -30.0 and not tx.loc["pos:R9", "is_order"]
    assert "pos:R1" not in tx.index
    assert tx.loc["tmall:T2", "net"] == 0.0 and tx.loc["tmall:T2", "is_order"]
    assert tx.loc["tmall:T3", "net"] == 0.0 and not tx.loc["tmall:T3", "is_order"]
    assert tx["net"].sum() == pytest.approx(expected_totals(paths)["net_revenue"]) == 280.0
    assert int(tx["is_order"].sum()) == expected_totals(paths)["orders"] == 4
    # a return after the cutoff is not netted; the sale is
    early = load_transactions(paths, as_of="2026-01-04").set_index("order_key")
    assert early.loc["pos:S1", "net"] == 100.0 and "pos:R9" not in early.index


def test_unresolved_records_are_refused(tmp_path):
    pos = pd.DataFrame({"record_id": ["p1"], "who": ["A"], "store_code": "BJ001", "receipt_no": ["S1"],
                        "txn_time": pd.to_datetime(["2026-01-01"], utc=True), "txn_type": ["sale"],
                        "original_receipt": [None], "category": "skincare", "amount": [1.0]})
    ecom = pd.DataFrame({"record_id": ["e1"], "who": ["A"], "platform": "jd", "order_id": ["J1"],
                         "ordered_at": pd.to_datetime(["2026-01-02"], utc=True), "status": ["completed"],
                         "category": "makeup", "amount": [2.0], "refund_amount": [np.nan]})
    paths = _write_tables(tmp_path, pos, ecom)
    pd.DataFrame({"record_id": ["e1"], "channel": ["ecommerce_orders"], "oneid": ["A"]}).to_parquet(
        paths.processed / "oneid_records.parquet", index=False)
    with pytest.raises(ValueError, match="have no OneID.*Rerun notebook 03"):
        load_transactions(paths)
