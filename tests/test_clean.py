"""Cleaning on the test session's sample and on small hand-made tables."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from workbench.clean import clean_all, load_cleaned
from workbench.runconfig import load_cleaning_config
from workbench.config import get_paths
from workbench.ingest import ingest_all, load_quarantine
from workbench.mapping import ChannelMapping, load_mappings

E164 = r"^\+[1-9]\d{6,14}$"


def test_every_channel_reconciles(cleaned_paths):
    metrics = json.loads((cleaned_paths.metrics / "clean.json").read_text())
    for channel, c in metrics["channels"].items():
        assert c["rows_in"] == c["kept"] + c["quarantined"] + c["exact_duplicates"] + c["merged"], channel


def test_phones_are_e164_or_null_and_masked_phones_never_identifiers(cleaned_paths):
    for channel, m in load_mappings().items():
        df = load_cleaned(channel, cleaned_paths)
        for f in m.fields_of_type("phone"):
            assert df[f].dropna().str.fullmatch(E164).all(), f"{channel}.{f}"
            assert set(df[f"{f}_status"].dropna()) <= {"valid", "invalid", "masked", "missing"}
    orders = load_cleaned("ecommerce_orders", cleaned_paths)
    assert orders["receiver_phone"].dropna().str.fullmatch(r"\d{3}\*{4}\d{4}").all()


def test_placeholders_are_flagged(cleaned_paths):
    crm = load_cleaned("crm_members", cleaned_paths)
    flagged = crm.loc[crm["phone_placeholder"], "phone"]
    assert {"+8613800000000", "+8613888888888"} & set(flagged)
    assert not crm.loc[~crm["phone_placeholder"], "phone"].isin(["+8613800000000", "+8613888888888"]).any()
    assert crm.loc[crm["email"] == "test@test.com", "email_placeholder"].all()
    pos = load_cleaned("pos_receipts", cleaned_paths)
    assert pos.loc[pos["phone"] == "+8613800000000", "phone_placeholder"].all()
    # real member ids are never flagged (record keys like receipt numbers are not companions)
    assert not pos["member_id_placeholder"].any()


def test_crm_re_exports_keep_the_latest_version(cleaned_paths):
    crm = load_cleaned("crm_members", cleaned_paths)
    assert crm["member_id"].is_unique
    metrics = json.loads((cleaned_paths.metrics / "clean.json").read_text())["channels"]["crm_members"]
    assert metrics["merged"] > 0 and metrics["exact_duplicates"] > 0


def test_hkd_is_converted_and_hong_kong_times_are_utc(cleaned_paths):
    pos = load_cleaned("pos_receipts", cleaned_paths)
    rate = load_cleaning_config()["currency_rates"]["HKD"]
    hk = pos[pos["currency"] == "HKD"]
    assert len(hk) > 0
    assert (hk["amount"] - hk["amount_original"] * rate).abs().max() < 1e-9
    assert str(pos["ordered_at"].dt.tz) == "UTC"
    hk_hour = hk["ordered_at"].dt.tz_convert("Asia/Hong_Kong")   # day-first local times in the store's zone
    assert hk_hour.notna().all()


def test_names_get_a_pinyin_key(cleaned_paths):
    crm = load_cleaned("crm_members", cleaned_paths)
    key = crm["name_key"].dropna()
    assert key.str.fullmatch(r"[a-z]+").all()


# --------------------------------------------------------------------- hand-made tables
def _pos_mapping() -> ChannelMapping:
    return ChannelMapping.from_dict({
        "channel": "till", "role": "orders", "source": {"pattern": "till/*.csv"},
        "fields": {
            "order_id": {"column": "receipt", "type": "key", "required": True},
            "region": {"column": "region", "type": "string"},
            "phone": {"column": "phone", "type": "phone", "region_field": "region", "pii": "direct"},
            "ordered_at": {"column": "at", "type": "timestamp", "formats": ["%d/%m/%Y %H:%M"],
                           "timezone_field": "region", "required": True},
            "currency": {"column": "currency", "type": "string"},
            "amount": {"column": "amount", "type": "amount", "currency_field": "currency", "required": True},
        },
        "dedupe": {"key": ["order_id"], "keep": "first"},
    })


def test_small_table_end_to_end(tmp_path):
    paths = get_paths(tmp_path / "data", tmp_path / "reports")
    (paths.raw / "till").mkdir(parents=True)
    (paths.raw / "till" / "t.csv").write_text(
        "receipt,region,phone,at,currency,amount\n"
        "R1,CN,+86 138 0013 8000,05/03/2025 14:22,CNY,100\n"
        "R2,HK,9123 4567,05/03/2025 14:22,HKD,100\n"
        "R3,CN,13800138000,31/02/2025 10:00,CNY,1\n"     # impossible date -> clean quarantine
        "R4,CN,,05/03/2025 10:00,XYZ,1\n"                # unknown currency -> clean quarantine
        "R1,CN,+86 138 0013 8000,05/03/2025 14:22,CNY,100\n"  # exact duplicate of R1
        "R5,CN,abc,06/03/2025 09:00,RMB,\"1,299.00\"\n", encoding="utf-8")
    m = {"till": _pos_mapping()}
    ingest_all(paths, mappings=m, progress=False, log=None)
    r = clean_all(paths, mappings=m, progress=False)
    rep = r.channels[0]
    assert (rep.rows_in, rep.kept, rep.quarantined, rep.exact_duplicates, rep.merged) == (6, 3, 2, 1, 0)
    df = load_cleaned("till", paths).set_index("order_id")
    assert df.loc["R1", "phone"] == "+8613800138000"
    assert df.loc["R2", "phone"] == "+85291234567"
    assert df.loc["R2", "ordered_at"] == pd.Timestamp("2025-03-05 06:22", tz="UTC")
    assert df.loc["R2", "amount"] == pytest.approx(92.0)
    assert df.loc["R5", "amount"] == pytest.approx(1299.0) and df.loc["R5", "phone_status"] == "invalid"
    q = load_quarantine("till", paths).set_index("_source_row")
    assert "expected a timestamp like %d/%m/%Y %H:%M" in q.loc[3, "reason"]
    assert "currency missing or not in the rates table" in q.loc[4, "reason"]


def test_record_ids_keep_the_callers_index():
    from workbench.clean import record_ids

    files = pd.Series(["a.csv", "b.csv"], index=[10, 42], dtype="string")
    ids = record_ids("crm", files, pd.Series([3, 4], index=[10, 42]))
    assert ids.tolist() == ["crm:a.csv:3", "crm:b.csv:4"] and ids.index.tolist() == [10, 42]
