"""The canonical model: role validation, files read by two mappings, the canonical tables and views,
and the profile built from whatever roles exist."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from workbench.canonical import net_purchases, run_canonical
from workbench.canonical.build import build_tables
from workbench.config import get_paths
from workbench.customer360 import build_customer_360
from workbench.ingest import file_claims, ingest_all
from workbench.mapping import ChannelMapping, MappingError

ORDERS = {"channel": "shop", "role": "orders", "source": {"pattern": "shop/*.csv"},
          "fields": {"order_id": {"column": "no", "type": "key"},
                     "ordered_at": {"column": "t", "type": "timestamp"},
                     "amount": {"column": "a", "type": "amount"}}}


# ----------------------------------------------------------------------------- mapping validation
def test_every_role_error_says_what_is_expected():
    with pytest.raises(MappingError, match=r"role must be one of \['profile', 'orders'"):
        ChannelMapping.from_dict({**ORDERS, "role": "sales"})
    with pytest.raises(MappingError, match="missing keys \\['role'\\]"):
        ChannelMapping.from_dict({k: v for k, v in ORDERS.items() if k != "role"})
    bad = {**ORDERS, "fields": {**ORDERS["fields"], "ordered_at": {"column": "t", "type": "string"}}}
    with pytest.raises(MappingError, match=r"field 'ordered_at'.*must be one of \['timestamp', 'date'\]. Got 'string'"):
        ChannelMapping.from_dict(bad)
    status = {**ORDERS, "fields": {**ORDERS["fields"], "status": {"column": "s", "type": "category",
                                                                 "values": {"done": ["完成"]}}}}
    with pytest.raises(MappingError, match=r"codes must be among \['paid', 'cancelled', 'refunded'\]"):
        ChannelMapping.from_dict(status)
    events = {"channel": "app", "role": "events", "source": {"pattern": "app/*.csv"},
              "fields": {"event_time": {"column": "t", "type": "timestamp"},
                         "event_type": {"column": "e", "type": "category", "values": {"Product Viewd": ["view"]}}}}
    with pytest.raises(MappingError, match=r"event types \['Product Viewd'\] are not in the canonical vocabulary"):
        ChannelMapping.from_dict(events)
    events["custom_event_types"] = ["Product Viewd"]
    assert ChannelMapping.from_dict(events).role == "events"   # a type of the brand's own, declared
    trait = {**ORDERS, "fields": {**ORDERS["fields"], "phone": {"column": "p", "type": "string"}}}
    with pytest.raises(MappingError, match=r"reads 'phone' as the person's mobile phone; its type must be one of \['phone'\]"):
        ChannelMapping.from_dict(trait)


def test_mappings_round_trip_with_every_new_key():
    d = {"channel": "live", "role": "events", "source": {"pattern": "live/*.jsonl", "format": "jsonl"},
         "fields": {"event_time": {"column": "t", "type": "timestamp"},
                    "event_type": {"constant": "Live Stream Watched", "type": "category"},
                    "comments": {"column": "c", "type": "integer"}},
         "extra_events": [{"type": "Live Stream Commented", "quantity": "comments"}]}
    m = ChannelMapping.from_dict(d)
    assert ChannelMapping.from_dict(m.to_dict()).to_dict() == m.to_dict()
    assert m.constants == {"event_type": "Live Stream Watched"} and "t" in m.columns


# ----------------------------------------------------------------------------- a file read by two mappings
def _till(tmp_path):
    raw = tmp_path / "data" / "raw" / "till"
    raw.mkdir(parents=True)
    (raw / "till.csv").write_text(
        "no,t,kind,a,ref,card\n"
        "S1,2026-01-02 10:00:00,sale,100,,C1\n"
        "S2,2026-01-03 10:00:00,sale,50,,C2\n"
        "R1,2026-01-05 10:00:00,return,-30,S1,C1\n"
        "X1,2026-01-06 10:00:00,exchange,10,,C2\n"       # neither mapping keeps exchanges
        "R2,2026-01-07 10:00:00,return,-5,S9,C3\n", encoding="utf-8")   # a return of a sale not in the data
    kind = {"column": "kind", "type": "category", "values": {"sale": ["sale"], "return": ["return"],
                                                           "exchange": ["exchange"]}}
    sales = ChannelMapping.from_dict({
        "channel": "till_sales", "role": "orders", "source": {"pattern": "till/*.csv"},
        "filter": {"field": "kind", "values": ["sale"]},
        "fields": {"order_id": {"column": "no", "type": "key"}, "ordered_at": {"column": "t", "type": "timestamp"},
                   "amount": {"column": "a", "type": "amount"}, "kind": kind,
                   "member_id": {"column": "card", "type": "identifier"}}})
    returns = ChannelMapping.from_dict({
        "channel": "till_returns", "role": "returns", "source": {"pattern": "till/*.csv"},
        "filter": {"field": "kind", "values": ["return"]}, "returns_of": "till_sales",
        "fields": {"return_id": {"column": "no", "type": "key"}, "returned_at": {"column": "t", "type": "timestamp"},
                   "amount": {"column": "a", "type": "amount"}, "kind": kind,
                   "order_id": {"column": "ref", "type": "key"}, "member_id": {"column": "card", "type": "identifier"}}})
    return get_paths(tmp_path / "data", tmp_path / "reports"), {"till_sales": sales, "till_returns": returns}


def test_a_file_with_two_kinds_of_rows_counts_every_physical_row_once(tmp_path):
    paths, mappings = _till(tmp_path)
    result = ingest_all(paths, mappings=mappings, progress=False, log=None, workers=1)
    s = result.summary()
    assert s.loc["till_sales", ["read", "kept", "quarantined", "filtered"]].tolist() == [5, 2, 1, 2]
    assert s.loc["till_returns", ["read", "kept", "quarantined", "filtered"]].tolist() == [5, 2, 0, 3]
    assert result.totals() == {"read": 5, "kept": 4, "quarantined": 1, "suppressed": 0}
    q = pd.read_parquet(paths.quarantine / "till_sales.parquet")
    assert q["_source_row"].tolist() == [4]
    assert "no mapping of this file keeps this row: column 'kind' is 'exchange'" in q["reason"].iloc[0]
    ledger = json.loads(paths.ingest_ledger.read_text())
    assert ledger["version"] == 2 and set(ledger["files"]["till/till.csv"]) == {"till_sales", "till_returns"}


def test_overlapping_filters_are_refused(tmp_path):
    paths, mappings = _till(tmp_path)
    d = mappings["till_returns"].to_dict()
    d["filter"] = {"field": "kind", "values": ["return", "sale"]}
    mappings["till_returns"] = ChannelMapping.from_dict(d)
    with pytest.raises(MappingError, match="both keep rows with kind = 'sale'"):
        file_claims(mappings, paths.raw)


# ----------------------------------------------------------------------------- building the tables
def _linked(rows: list[dict], channel: str) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    df["record_id"] = [f"{channel}:f.csv:{i + 1}" for i in range(len(df))]
    for c in df.columns:
        if c.endswith("_at") or c == "event_time":
            df[c] = pd.to_datetime(df[c], utc=True)
    return df


def test_line_items_aggregate_and_returns_net_onto_their_order():
    lines = ChannelMapping.from_dict({
        "channel": "pos", "role": "orders", "grain": "line", "source": {"pattern": "pos/*.csv"},
        "fields": {"order_id": {"column": "no", "type": "key"}, "ordered_at": {"column": "t", "type": "timestamp"},
                   "amount": {"column": "a", "type": "amount"}, "category": {"column": "c", "type": "string"}}})
    rets = ChannelMapping.from_dict({
        "channel": "ret", "role": "returns", "source": {"pattern": "ret/*.csv"},
        "fields": {"order_id": {"column": "ref", "type": "key"}, "returned_at": {"column": "t", "type": "timestamp"},
                   "amount": {"column": "a", "type": "amount"}}})
    tables = {
        "pos": _linked([{"oneid": "A", "order_id": "1", "ordered_at": "2026-01-01", "amount": 80.0, "category": "tea"},
                        {"oneid": "A", "order_id": "1", "ordered_at": "2026-01-01", "amount": 20.0, "category": "cup"},
                        {"oneid": "B", "order_id": "2", "ordered_at": "2026-01-02", "amount": 40.0, "category": "tea"}],
                       "pos"),
        "ret": _linked([{"oneid": "A", "order_id": "1", "returned_at": "2026-01-10", "amount": -20.0},
                        {"oneid": "C", "order_id": "99", "returned_at": "2026-01-11", "amount": 15.0}], "ret")}
    b = build_tables(lambda m: tables[m.channel], {"pos": lines, "ret": rets})
    orders = b.table("orders").set_index("order_key")
    assert orders.loc["pos:1", ["gross", "lines", "category"]].tolist() == [100.0, 2, "tea"]
    assert len(b.table("order_lines")) == 3
    refunds = b.table("refunds").set_index("record_id")
    assert refunds.loc["ret:f.csv:1", ["order_key", "amount", "matched"]].tolist() == ["pos:1", 20.0, True]
    assert not refunds.loc["ret:f.csv:2", "matched"]
    tx = net_purchases(b.table("orders").assign(sales_channel="pos"), b.table("refunds"))
    assert round(tx["net"].sum(), 2) == 100.0 + 40.0 - 20.0 - 15.0
    a = tx.set_index("order_key").loc["pos:1"]
    assert (a["net"], a["status"], a["oneid"]) == (80.0, "refunded", "A")
    # before the return, the order is whole
    early = net_purchases(b.table("orders").assign(sales_channel="pos"),
                          b.table("refunds")[lambda r: r["refunded_at"] < pd.Timestamp("2026-01-05", tz="UTC")])
    assert early.set_index("order_key").loc["pos:1", "net"] == 100.0


def test_extra_events_and_consent_events_come_from_one_row():
    live = ChannelMapping.from_dict({
        "channel": "live", "role": "events", "source": {"pattern": "l/*.csv"},
        "fields": {"event_time": {"column": "t", "type": "timestamp"},
                   "event_type": {"constant": "Live Stream Watched", "type": "category"},
                   "duration_seconds": {"column": "s", "type": "integer"},
                   "comments": {"column": "c", "type": "integer"},
                   "unfollowed_at": {"column": "u", "type": "timestamp"}},
        "extra_events": [{"type": "Live Stream Commented", "quantity": "comments"},
                         {"type": "WeChat Unfollowed", "time": "unfollowed_at"}]})
    df = _linked([{"oneid": "A", "event_time": "2026-01-01", "event_type": "Live Stream Watched",
                   "duration_seconds": 600, "comments": 3, "unfollowed_at": "2026-02-01"},
                  {"oneid": "B", "event_time": "2026-01-02", "event_type": "Live Stream Watched",
                   "duration_seconds": 60, "comments": 0, "unfollowed_at": None}], "live")
    b = build_tables(lambda m: df, {"live": live})
    ev = b.table("events")
    assert ev.groupby("event_type")["quantity"].sum().to_dict() == {
        "Live Stream Commented": 3.0, "Live Stream Watched": 2.0, "WeChat Unfollowed": 1.0}
    c = b.table("consents")
    assert c[["oneid", "purpose", "granted"]].values.tolist() == [["A", "wechat", False]]


# ----------------------------------------------------------------------------- the layer and the profile
def test_orders_only_brand_gets_an_orders_only_profile(tmp_path):
    paths, mappings = _till(tmp_path)
    ingest_all(paths, mappings=mappings, progress=False, log=None, workers=1)
    from workbench.clean import clean_all
    from workbench.identity import IdentitySettings, run_identity

    clean_all(paths, mappings=mappings, progress=False, workers=1)
    settings = tmp_path / "identity.yaml"
    settings.write_text(IdentitySettings.from_dict({
        "identifiers": [{"name": "member_id", "kind": "unique"}],
        "sources": {"till_sales": {"identifiers": {"member_id": "member_id"}},
                    "till_returns": {"identifiers": {"member_id": "member_id"}}}}).to_yaml(), encoding="utf-8")
    run_identity(paths, settings=settings, evaluate=False)
    layer = run_canonical(paths, log=None)
    assert layer.has("orders") and layer.has("returns") and not layer.has("events") and not layer.has("profile")
    profile = build_customer_360(layer)
    assert "net_revenue" in profile and not any(c.startswith(("live_", "email_", "sessions")) for c in profile)
    assert round(profile["net_revenue"].sum(), 2) == round(layer.purchases()["net"].sum(), 2) == 100 + 50 - 30 - 5
    c1 = profile.set_index("oneid").loc[layer.table("records").set_index("record_id").loc[
        "till_sales:till/till.csv:1", "oneid"]]
    assert (c1["orders"], c1["net_revenue"], c1["refunded_orders"]) == (1, 70.0, 1)


def test_records_must_match_the_registry():
    """A registry record the canonical records lack (the cleaned data changed after identity) is refused."""
    from workbench.canonical import _check_records

    reg = pd.DataFrame({"record_id": ["a:f:1", "a:f:2", "b:f:1"], "channel": ["a", "a", "b"], "oneid": ["x", "x", "y"]})
    _check_records(reg[["record_id", "channel"]], reg)
    with pytest.raises(ValueError, match=r"do not match the OneID registry \(3\); e.g. missing \['a:f:2'\]"):
        _check_records(reg.iloc[[0, 2]][["record_id", "channel"]], reg)


def test_a_table_that_fails_its_schema_is_reported_check_by_check():
    """Tables that pass are not handed to pandera; any failure is, and every failed check is named."""
    from workbench.canonical.schema import conform, validate_table

    orders = conform(pd.DataFrame({"oneid": ["a", "b", "c"], "record_id": ["s:f:1", "s:f:2", "s:f:3"],
                                   "channel": "s", "order_key": ["s:1", "s:2", "s:3"],
                                   "ordered_at": pd.to_datetime(["2026-01-01"] * 3, utc=True),
                                   "is_order": True, "gross": [1.0, 2.0, 3.0], "quantity": 1.0, "lines": 1}), "orders")
    assert validate_table(orders, "orders") is orders
    bad = orders.assign(gross=[1.0, -2.0, 3.0], order_key=pd.array(["s:1", "s:1", None], dtype="string"))
    with pytest.raises(ValueError, match=r"gross: greater_than_or_equal_to\(0\).*order_key: not_nullable"):
        validate_table(bad, "orders")
    with pytest.raises(ValueError, match="multiple_fields_uniqueness"):
        validate_table(orders.assign(order_key=pd.array(["s:1", "s:1", "s:3"], dtype="string")), "orders")
    with pytest.raises(ValueError, match="does not fit its schema"):
        validate_table(orders.assign(lines=orders["lines"].astype("float64")), "orders")
    with pytest.raises(ValueError, match="does not fit its schema"):
        validate_table(orders.assign(extra=1), "orders")


def test_identifier_rows_do_not_depend_on_how_a_channel_is_batched(resolved_paths):
    """The Spark engine observes identifiers a batch of records at a time: the rows and their order
    must be those of the whole channel observed at once (the local engine)."""
    from types import SimpleNamespace

    from workbench.canonical import identifier_rows, linked_cleaned, load_registry
    from workbench.canonical.build import record_times
    from workbench.runconfig import resolve_identity, resolve_mappings

    identity, registry = resolve_identity(resolved_paths), load_registry(resolved_paths)
    config = SimpleNamespace(identity=identity)
    checked = 0
    for m in resolve_mappings(resolved_paths).values():
        if m.channel not in identity.sources:
            continue
        df = linked_cleaned(resolved_paths, m.channel, registry)
        whole = identifier_rows(df, m, config, record_times(df, m))
        cuts = [0, len(df) // 3, len(df) // 3 + 1, len(df)]
        parts = [df.iloc[a:b].reset_index(drop=True) for a, b in zip(cuts, cuts[1:])]
        batched = pd.concat([identifier_rows(p, m, config, record_times(p, m)) for p in parts], ignore_index=True)
        pd.testing.assert_frame_equal(batched, whole, obj=m.channel)
        checked += whole["identifier"].nunique() > 1   # a real test: rows of several identifiers interleave
    assert checked >= 3


def test_a_one_off_read_gives_the_kept_tables_rows(resolved_paths, monkeypatch):
    """``table(..., cache=False)`` reads only the columns asked for (and the time column to filter
    by) and keeps nothing: the next call reads the file again, the rows are those of the kept table."""
    from workbench.canonical import load_canonical

    reads = []
    read = pd.read_parquet
    monkeypatch.setattr(pd, "read_parquet", lambda f, **k: reads.append(k.get("columns")) or read(f, **k))
    layer = load_canonical(resolved_paths)
    cols = ["oneid", "trait", "value"]
    once = layer.table("traits", columns=cols, as_of="2026-01-01", cache=False)
    assert reads == [["oneid", "trait", "value", "at"]] and list(once.columns) == cols
    kept = layer.table("traits")                       # read whole and kept
    assert reads[-1] is None and len(reads) == 2
    pd.testing.assert_frame_equal(once, kept[kept["at"] < pd.Timestamp("2026-01-01", tz="UTC")][cols])
    assert 0 < len(once) < len(kept)
    layer.table("traits", columns=cols, cache=False)   # the kept table serves it now
    assert len(reads) == 2
