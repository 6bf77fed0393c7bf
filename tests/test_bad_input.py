"""A hand-made corpus of real export faults, each run through the real stages.

Principle: bad input gets a clear error naming file, column, row and what was expected, and
nothing is lost — unusable rows go to the quarantine with their reason, and the counts
reconcile per file and mapping (read = kept + quarantined + suppressed + filtered), counting
physical records honestly.

1. an unterminated quote in a CSV (``newlines_in_values`` false and true);
2. one channel failing ingest does not stop the clean stage for the others;
3. ISO strings and epoch milliseconds mixed in one timestamp column;
4. a row wrong in two fields reports both.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from workbench.clean import clean_all, load_cleaned
from workbench.config import get_paths
from workbench.ingest import _read_csv_records, ingest_all, load_ingested, load_quarantine, read_source
from workbench.mapping import ChannelMapping, MappingError, load_mappings
from workbench.normalise import parse_timestamps

# 2026-03-01 10:00:00 in Shanghai is 2026-03-01 02:00:00 UTC is 1772330400000 ms after the epoch
TEN_AM_SHANGHAI = pd.Timestamp("2026-03-01 02:00:00", tz="UTC")
EPOCH_MS = "1772330400000"


@pytest.fixture
def paths(tmp_path):
    return get_paths(tmp_path / "data", tmp_path / "reports")


def put(paths, rel: str, text: str, encoding: str = "utf-8") -> None:
    f = paths.raw / rel
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_bytes(text.encode(encoding))


def ingest(paths, *mappings: ChannelMapping, strict: bool = True):
    return ingest_all(paths, mappings={m.channel: m for m in mappings}, progress=False, log=None, strict=strict)


def reconciles(result) -> None:
    for f in result.files:
        assert f.read == f.kept + f.quarantined + f.suppressed + f.filtered, f


def members(newlines: bool = False, channel: str = "members") -> ChannelMapping:
    return ChannelMapping.from_dict({
        "channel": channel, "role": "profile",
        "source": {"pattern": f"{channel}/*.csv", "newlines_in_values": newlines},
        "fields": {"member_id": {"column": "id", "type": "identifier", "required": True, "pii": "direct"},
                   "name": {"column": "name", "type": "name", "pii": "direct"},
                   "phone": {"column": "phone", "type": "phone", "pii": "direct"},
                   "city": {"column": "city", "type": "string"}}})


def tickets() -> ChannelMapping:
    """Like the sample's service tickets: descriptions span lines inside quotes, CRLF line ends."""
    return ChannelMapping.from_dict({
        "channel": "tickets", "role": "events",
        "source": {"pattern": "tickets/*.csv", "newlines_in_values": True},
        "fields": {"ticket_id": {"column": "ticket_id", "type": "key", "required": True},
                   "event_time": {"column": "created_at", "type": "timestamp", "required": True},
                   "event_type": {"constant": "Service Ticket Opened", "type": "category"},
                   "phone": {"column": "phone", "type": "phone", "pii": "direct"},
                   "description": {"column": "description", "type": "string"},
                   "status": {"column": "status", "type": "string"}}})


# ============================================================================ 1. unterminated quote
HEADER = "id,name,phone,city\n"


@pytest.mark.parametrize("newlines", [False, True])
def test_unterminated_quote_quarantines_the_line_and_recovers_the_rows_it_swallowed(paths, newlines):
    # line 3 opens a quote in 'name' that never closes; the quote in line 5 ends it, so the
    # parser used to see ONE good-looking record for lines 3-5 (read 4, kept 4): rows 16 and 18 lost
    put(paths, "members/a.csv", HEADER
        + "15,王芳,13800138001,上海\n"
        + '17,"broken name,13800138000,北京\n'
        + "16,李娜,13800138002,广州\n"
        + '18,"赵敏",13800138003,深圳\n'
        + "19,孙丽,13800138004,杭州\n")
    r = ingest(paths, members(newlines))
    reconciles(r)
    s = r.summary().loc["members"]
    assert (s["read"], s["kept"], s["quarantined"]) == (5, 4, 1)  # every physical data line counted
    kept = load_ingested("members", paths)
    assert kept["member_id"].tolist() == ["15", "16", "18", "19"]
    assert kept["_source_row"].tolist() == [1, 3, 4, 5]
    assert kept.loc[kept["member_id"] == "18", "name"].item() == "赵敏"
    q = load_quarantine("members", paths)
    assert q["_source_row"].tolist() == [2]
    reason = q["reason"].item()
    assert reason.startswith("unterminated quote opened in line 3 (column 'name') swallowed lines 4-5")
    assert ("newlines_in_values: true" in reason) is (not newlines)  # the hint only where the mapping forbids it
    assert q["record"].item() == '17,"broken name,13800138000,北京'


@pytest.mark.parametrize("newlines", [False, True])
def test_unterminated_quote_running_to_the_end_of_the_file(paths, newlines):
    put(paths, "members/a.csv", HEADER
        + "15,王芳,13800138001,上海\n"
        + '17,"broken name,13800138000,北京\n'
        + "16,李娜,13800138002,广州\n"
        + "19,孙丽,13800138004,杭州\n")
    r = ingest(paths, members(newlines))
    reconciles(r)
    s = r.summary().loc["members"]
    assert (s["read"], s["kept"], s["quarantined"]) == (4, 3, 1)
    assert load_ingested("members", paths)["member_id"].tolist() == ["15", "16", "19"]
    reason = load_quarantine("members", paths)["reason"].item()
    assert "unterminated quote opened in line 3 (column 'name') swallowed lines 4-5 (to the end of the file)" in reason


def test_a_swallowed_line_that_is_no_row_is_quarantined_with_its_line_number(paths):
    put(paths, "members/a.csv", HEADER
        + '17,"broken name,13800138000,北京\n'
        + "16,李娜,13800138002\n"            # one field short, on its own line 3
        + '18,"赵敏",13800138003,深圳\n')
    r = ingest(paths, members())
    reconciles(r)
    q = load_quarantine("members", paths).set_index("_source_row")
    assert sorted(q.index) == [1, 2] and load_ingested("members", paths)["member_id"].tolist() == ["18"]
    assert q.loc[1, "reason"].startswith("unterminated quote opened in line 2 (column 'name') swallowed lines 3-4")
    assert q.loc[2, "reason"] == ("row has 3 fields, expected 4 (delimiter ',') in line 3, a line swallowed by "
                                  "the unterminated quote opened in line 2")


TICKETS = ("ticket_id,created_at,phone,description,status\r\n"
           'TK1,2024-11-01T09:03:07+08:00,13800138001,"客户反馈:\r\n物流查询, 希望尽快处理",closed\r\n'
           "TK2,2024-11-01T10:49:31+08:00,13800138002,使用咨询,closed\r\n"
           'TK3,2024-11-01T11:17:36+08:00,13800138003,"客户反馈:\r\n产品质量, 希望尽快处理\r\n谢谢",open\r\n'
           "TK4,2024-11-01T12:16:39+08:00,13800138004,退换货,closed\r\n")


def test_legitimately_multi_line_fields_stay_one_record(paths):
    put(paths, "tickets/t.csv", TICKETS)
    r = ingest(paths, tickets())
    reconciles(r)
    s = r.summary().loc["tickets"]
    assert (s["read"], s["kept"], s["quarantined"]) == (4, 4, 0)  # 4 records on 7 lines
    df = load_ingested("tickets", paths)
    assert df["_source_row"].tolist() == [1, 2, 3, 4]  # records, not lines: the record ids stay as they were
    assert df["description"].tolist()[:3] == ["客户反馈:\r\n物流查询, 希望尽快处理", "使用咨询",
                                              "客户反馈:\r\n产品质量, 希望尽快处理\r\n谢谢"]


def test_unterminated_quote_among_multi_line_records(paths):
    # TK2's description opens a quote that never closes. It swallows TK3 and TK4 (full rows of
    # their own) up to TK5's quote; reading again from line 5 gives TK3, TK4 and TK5 back whole.
    text = ("ticket_id,created_at,phone,description,status\r\n"
            'TK1,2024-11-01T09:03:07+08:00,13800138001,"客户反馈:\r\n物流查询, 希望尽快处理",closed\r\n'
            'TK2,2024-11-01T10:49:31+08:00,13800138002,"使用咨询,closed\r\n'
            "TK3,2024-11-01T11:17:36+08:00,13800138003,退换货,closed\r\n"
            "TK4,2024-11-01T12:16:39+08:00,13800138004,会员积分,open\r\n"
            'TK5,2024-11-01T14:01:01+08:00,13800138005,"客户反馈:\r\n产品质量, 希望尽快处理",closed\r\n'
            "TK6,2024-11-01T15:27:24+08:00,13800138006,物流查询,closed\r\n")
    put(paths, "tickets/t.csv", text)
    r = ingest(paths, tickets())
    reconciles(r)
    s = r.summary().loc["tickets"]
    assert (s["read"], s["kept"], s["quarantined"]) == (6, 5, 1)
    df = load_ingested("tickets", paths).set_index("ticket_id")
    assert df.index.tolist() == ["TK1", "TK3", "TK4", "TK5", "TK6"]
    assert df["_source_row"].tolist() == [1, 3, 4, 5, 6]
    assert df.loc["TK5", "description"] == "客户反馈:\r\n产品质量, 希望尽快处理"
    q = load_quarantine("tickets", paths)
    assert q["_source_row"].tolist() == [2]
    assert q["reason"].item().startswith("unterminated quote opened in line 4 (column 'description') "
                                         "swallowed lines 5-7")


def test_sample_service_tickets_read_as_pyarrow_reads_them(session_raw):
    """The sample's tickets (quoted multi-line descriptions, CRLF) go through the line-aware reader:
    the same values and row numbers as pyarrow's reading, so no record id changes."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    m = load_mappings()["service_tickets"]
    (f,) = m.files(session_raw)
    raw = read_source(f, m)
    assert len(raw.bad_rows) == 0
    assert f.read_bytes().count(b"\n") > raw.total + 1  # lines outnumber records
    names = raw.frame.columns.drop("_source_row").tolist()
    table = pcsv.read_csv(f, parse_options=pcsv.ParseOptions(newlines_in_values=True),
                          convert_options=pcsv.ConvertOptions(column_types={c: pa.string() for c in names},
                                                              strings_can_be_null=False))
    expected = table.to_pandas(types_mapper=pd.ArrowDtype).astype("string")
    pd.testing.assert_frame_equal(raw.frame.drop(columns="_source_row"), expected)
    assert raw.frame["_source_row"].tolist() == list(range(1, len(expected) + 1))
    # the line-aware reader, had it been needed, reads the same
    pd.testing.assert_frame_equal(_read_csv_records(f, m).frame, raw.frame)


@pytest.mark.parametrize("body", [
    'A,B\r\n张,"多\r\n行"\r\n2,3,4\r\n\r\n5,六\r\n7,8',  # CRLF, a bad row, an empty line, no last line end
    'A,B\n1,5"6\n   \n7,"x\ny"\n8,"q""r"\n9,"p"z\n',                  # quotes inside fields, a row of spaces
])
def test_line_aware_reader_agrees_with_pyarrow_where_nothing_is_broken(tmp_path, body):
    f = tmp_path / "x.csv"
    f.write_bytes(body.encode("utf-8"))
    m = ChannelMapping.from_dict({"channel": "x", "role": "profile", "source": {"pattern": "*.csv",
                                                                                 "newlines_in_values": True},
                                  "fields": {"member_id": {"column": "A", "type": "identifier"},
                                             "b": {"column": "B"}}})
    plain, aware = read_source(f, m), _read_csv_records(f, m)
    pd.testing.assert_frame_equal(aware.frame, plain.frame)
    assert aware.total == plain.total
    assert aware.bad_rows["_source_row"].tolist() == plain.bad_rows["_source_row"].tolist()
    assert aware.bad_rows["record"].tolist() == plain.bad_rows["record"].tolist()


def test_header_after_empty_lines_is_found(paths):
    put(paths, "members/a.csv", "\n\n" + HEADER + "15,王芳,13800138001,上海\n")
    ingest(paths, members())
    assert load_ingested("members", paths)["member_id"].tolist() == ["15"]


# ============================================================================ 2. one channel fails ingest
def orders(channel: str) -> ChannelMapping:
    return ChannelMapping.from_dict({
        "channel": channel, "role": "orders", "source": {"pattern": f"{channel}/*.csv"},
        "fields": {"order_id": {"column": "oid", "type": "key", "required": True},
                   "ordered_at": {"column": "ts", "type": "timestamp", "required": True},
                   "amount": {"column": "amount", "type": "amount", "required": True}}})


GOOD_ORDERS = "oid,ts,amount\nO1,2026-03-01 10:00:00,10\nO2,2026-03-02 11:00:00,20\n"


@pytest.mark.parametrize("broken", ["oid,ts\nO1,2026-03-01 10:00:00\n", ""], ids=["missing_column", "empty_file"])
def test_one_channel_failing_ingest_leaves_the_others_to_clean(paths, broken):
    chans = [orders("shop_a"), orders("shop_b"), orders("shop_c")]  # the failing one in the middle
    put(paths, "shop_a/a.csv", GOOD_ORDERS)
    put(paths, "shop_b/b.csv", broken)
    put(paths, "shop_c/c.csv", GOOD_ORDERS)
    r = ingest(paths, *chans, strict=False)
    assert len(r.errors) == 1 and "shop_b/b.csv" in r.errors[0]
    mappings = {m.channel: m for m in chans}

    with pytest.raises(MappingError) as err:  # strict: raised once, after the others were cleaned
        clean_all(paths, mappings=mappings, progress=False)
    msg = str(err.value)
    assert msg.count("shop_b") == 1 and "shop_a" not in msg and "shop_c" not in msg
    assert msg.startswith("Cleaned 2 channel(s); 1 could not be cleaned")
    assert len(load_cleaned("shop_a", paths)) == len(load_cleaned("shop_c", paths)) == 2

    result = clean_all(paths, mappings=mappings, progress=False, strict=False)
    assert result.summary().index.tolist() == ["shop_a", "shop_c"]
    assert result.summary()["kept"].tolist() == [2, 2]
    assert len(result.errors) == 1 and "'shop_b'" in result.errors[0]
    metrics = json.loads((paths.metrics / "clean.json").read_text(encoding="utf-8"))
    assert metrics["errors"] == result.errors and sorted(metrics["channels"]) == ["shop_a", "shop_c"]
    assert metrics["totals"]["kept"] == 4


# ============================================================================ 3. ISO text and epoch ms
def test_parse_timestamps_reads_iso_and_epoch_ms_in_one_column():
    values = pd.Series(["2026-03-01 10:00:00", EPOCH_MS, 1772330400000, "2026-03-01T02:00:00Z",
                        "01.03.2026 10:00", "junk", None], dtype=object, index=list("abcdefg"))
    out = parse_timestamps(values, unit="ms", formats=["%d.%m.%Y %H:%M"], timezone="Asia/Shanghai")
    assert out.index.tolist() == list("abcdefg")
    assert (out.iloc[:5] == TEN_AM_SHANGHAI).all()  # text in the field's zone, epochs as UTC instants
    assert out.iloc[5:].isna().all()
    # seconds too, and a time zone per row applies to the text only
    zones = pd.Series(["Asia/Shanghai", "Europe/London"])
    out = parse_timestamps(pd.Series(["2026-03-01 10:00:00", "1772330400"]), unit="s", timezone=zones)
    assert (out == TEN_AM_SHANGHAI).all()
    # without a unit, numbers stay unparsed (the clean stage explains why)
    assert parse_timestamps(pd.Series([EPOCH_MS]), timezone="Asia/Shanghai").isna().all()


def test_parse_timestamps_mixed_column_is_still_fast():
    n = 200_000
    stamps = pd.Timestamp("2026-01-01") + pd.to_timedelta(np.arange(n) * 37, unit="s")
    iso = pd.Series(stamps.strftime("%Y-%m-%d %H:%M:%S"), dtype="string")
    ms = pd.Series(((stamps - pd.Timedelta(hours=8)).asi8 // 1000).astype(str), dtype="string")
    mixed = iso.where(np.arange(n) % 2 == 0, ms)
    out = parse_timestamps(mixed, unit="ms", timezone="Asia/Shanghai")
    assert (out.dt.tz_localize(None) == stamps - pd.Timedelta(hours=8)).all()


def events(unit: str | None, fmt: str = "csv") -> ChannelMapping:
    ts = {"column": "ts", "type": "timestamp", "required": True, "formats": ["%Y-%m-%d %H:%M:%S"]}
    if unit:
        ts["unit"] = unit
    return ChannelMapping.from_dict({
        "channel": "clicks", "role": "events", "source": {"pattern": f"clicks/*.{fmt}", "format": fmt},
        "fields": {"cookie": {"column": "cookie", "type": "identifier", "required": True},
                   "event_time": ts,
                   "event_type": {"constant": "Page Viewed", "type": "category"}}})


CLICKS = f"cookie,ts\nc1,2026-03-01 10:00:00\nc2,{EPOCH_MS}\nc3,2026/03/01 10:00\n"


def test_mixed_iso_and_epoch_ms_are_both_kept_when_the_field_has_a_unit(paths):
    put(paths, "clicks/c.csv", CLICKS)
    m = events("ms")
    ingest(paths, m)
    r = clean_all(paths, mappings={"clicks": m}, progress=False)
    assert (r.channels[0].kept, r.channels[0].quarantined) == (3, 0)
    assert (load_cleaned("clicks", paths)["event_time"] == TEN_AM_SHANGHAI).all()


def test_mixed_json_numbers_and_strings_are_both_kept(paths):
    put(paths, "clicks/c.jsonl", '{"cookie": "c1", "ts": "2026-03-01 10:00:00"}\n'
                                 f'{{"cookie": "c2", "ts": {EPOCH_MS}}}\n')
    m = events("ms", "jsonl")
    reconciles(ingest(paths, m))
    r = clean_all(paths, mappings={"clicks": m}, progress=False)
    assert (r.channels[0].kept, r.channels[0].quarantined) == (2, 0)
    assert (load_cleaned("clicks", paths)["event_time"] == TEN_AM_SHANGHAI).all()


def test_epoch_ms_without_a_unit_is_quarantined_saying_what_to_add(paths):
    put(paths, "clicks/c.csv", CLICKS + "c4,1772330400\nc5,soon\n")
    m = events(None)
    ingest(paths, m)
    r = clean_all(paths, mappings={"clicks": m}, progress=False)
    assert (r.channels[0].rows_in, r.channels[0].kept, r.channels[0].quarantined) == (5, 2, 3)
    q = load_quarantine("clicks", paths).set_index("_source_row")["reason"]
    assert q[2] == (f"column 'ts': '{EPOCH_MS}' looks like epoch milliseconds; "
                    "add `unit: ms` to the field to read it")
    assert q[4] == "column 'ts': '1772330400' looks like epoch seconds; add `unit: s` to the field to read it"
    assert q[5] == "column 'ts': expected a timestamp like %Y-%m-%d %H:%M:%S (got 'soon')"


def test_epoch_in_the_wrong_unit_says_so(paths):
    put(paths, "clicks/c.csv", f"cookie,ts\nc1,1772330400\nc2,{EPOCH_MS}\nc3,soon\n")
    m = events("s")
    ingest(paths, m)
    clean_all(paths, mappings={"clicks": m}, progress=False)
    q = load_quarantine("clicks", paths).set_index("_source_row")["reason"]
    assert q[2] == f"column 'ts': '{EPOCH_MS}' looks like epoch milliseconds, but the field says `unit: s`"
    assert q[3] == "column 'ts': expected epoch seconds or a timestamp like %Y-%m-%d %H:%M:%S (got 'soon')"


@pytest.mark.parametrize(("spec", "message"), [
    ({"formats": "%Y-%m-%d"}, r"formats must be a list of strftime patterns .* Got '%Y-%m-%d' instead"),
    ({"timezone": "Asia/Shang hai"}, r"timezone must be an IANA time-zone name .* Got 'Asia/Shang hai' instead"),
])
def test_timestamp_options_are_checked_when_the_mapping_is_read(spec, message):
    d = events("ms").to_dict()
    d["fields"]["event_time"].update(spec)
    with pytest.raises(MappingError, match=message):
        ChannelMapping.from_dict(d)


def test_unit_belongs_to_timestamps():
    d = members().to_dict()
    d["fields"]["city"]["unit"] = "ms"
    with pytest.raises(MappingError, match=r"field 'city': `unit` .* belongs to timestamp fields"):
        ChannelMapping.from_dict(d)


# ============================================================================ 4. two bad fields in one row
def till() -> ChannelMapping:
    return ChannelMapping.from_dict({
        "channel": "till", "role": "orders", "source": {"pattern": "till/*.csv"},
        "fields": {"order_id": {"column": "receipt", "type": "key", "required": True},
                   "region": {"column": "region", "type": "string"},
                   "ordered_at": {"column": "at", "type": "timestamp", "required": True,
                                  "formats": ["%d/%m/%Y %H:%M"], "timezone_field": "region"},
                   "currency": {"column": "currency", "type": "string"},
                   "amount": {"column": "amount", "type": "amount", "currency_field": "currency", "required": True},
                   "quantity": {"column": "qty", "type": "integer"}}})


TILL = ("receipt,region,at,currency,amount,qty\n"
        "R1,CN,01/03/2026 10:00,CNY,100,1\n"
        ",CN,01/03/2026 10:00,CNY,abc,1\n"             # 2: ingest: receipt missing AND amount not a number
        "R3,CN,31/02/2026 10:00,XYZ,5,1\n"             # 3: clean: impossible date AND unknown currency
        f"R4,CN,{EPOCH_MS},XYZ,5,1\n"                  # 4: clean: epoch without unit AND unknown currency
        "R5,Mars,01/03/2026 10:00,XYZ,5,1\n"           # 5: clean: unknown time zone AND unknown currency
        "R6,Mars,2026-03-01T10:00:00+08:00,CNY,5,1\n"  # 6: fine: the time carries its own offset
        "R7,,,XYZ,5,1\n")                              # 7: ingest: time missing; clean: unknown currency


def test_two_bad_fields_in_one_row_are_both_reported(paths):
    put(paths, "till/t.csv", TILL)
    m = till()
    reconciles(ingest(paths, m))
    r = clean_all(paths, mappings={"till": m}, progress=False)  # an unknown zone used to stop the whole stage
    assert (r.channels[0].rows_in, r.channels[0].kept, r.channels[0].quarantined) == (5, 2, 3)
    assert load_cleaned("till", paths)["order_id"].tolist() == ["R1", "R6"]
    q = load_quarantine("till", paths).set_index("_source_row")
    currency = "column 'amount': currency missing or not in the rates table"
    assert q.loc[2, "stage"] == "ingest"
    assert q.loc[2, "reason"] == ("required value missing (column 'receipt') (got ''); "
                                  "expected a number in column 'amount' (got 'abc')")
    assert q.loc[3, "reason"].startswith("column 'at': expected a timestamp like %d/%m/%Y %H:%M "
                                         "(got '31/02/2026 10:00'); " + currency)
    assert q.loc[4, "reason"].startswith(f"column 'at': '{EPOCH_MS}' looks like epoch milliseconds; add `unit: ms` "
                                         "to the field to read it; " + currency)
    assert q.loc[5, "reason"].startswith("column 'region': 'Mars' is not a time zone (an IANA name such as "
                                         "'Asia/Shanghai') nor a region of `region_timezones`")
    assert "so the local time in column 'at' cannot be placed; " + currency in q.loc[5, "reason"]


@pytest.mark.xfail(strict=True, reason="a row the ingest stage quarantines never reaches the clean stage's checks "
                                       "(time format, currency, codes); fixing it belongs in ingest validation")
def test_row_quarantined_at_ingest_also_names_its_clean_stage_fault(paths):
    put(paths, "till/t.csv", TILL)
    m = till()
    ingest(paths, m)
    clean_all(paths, mappings={"till": m}, progress=False)
    reason = load_quarantine("till", paths).set_index("_source_row").loc[7, "reason"]
    assert "required value missing (column 'at')" in reason and "currency" in reason
