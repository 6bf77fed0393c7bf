"""Drafting mappings from data files (workbench.draft, `workbench map FILE`)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from workbench.config import get_paths
from workbench.draft import Draft, draft_mapping, main, map_command, sniff_source
from workbench.ingest import FileReport, ingest_all, load_quarantine
from workbench.mapping import ChannelMapping, MappingError, load_mappings
from workbench.normalise import is_missing, parse_dates, parse_timestamps
from workbench.sample import make_sample

SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗")
GIVEN = list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂")


def _names(rng: np.random.Generator, n: int) -> list[str]:
    return [rng.choice(SURNAMES) + "".join(rng.choice(GIVEN, size=rng.integers(1, 3))) for _ in range(n)]


def _phones(rng: np.random.Generator, n: int) -> list[str]:
    return [f"1{rng.choice([3, 5, 8, 9])}{rng.integers(0, 10)}{rng.integers(10_000_000, 99_999_999)}"
            for _ in range(n)]


def _ingest(tmp: Path, file: Path, draft: Draft | dict, tag: str) -> FileReport:
    """Ingest ``file`` alone through the drafted mapping in a fresh data folder; check the counts."""
    mapping = draft.mapping if isinstance(draft, Draft) else draft
    m = ChannelMapping.from_dict(mapping)
    paths = get_paths(tmp / tag / "data", tmp / tag / "reports")
    pattern = m.source.pattern
    dest = paths.raw / (Path(pattern).parent if "/" in pattern else Path(".")) / file.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(file, dest)
    result = ingest_all(paths, mappings={m.channel: m}, progress=False, log=None, workers=1)
    assert not result.errors
    (rep,) = result.files
    assert rep.read > 0
    assert rep.read == rep.kept + rep.quarantined + rep.suppressed + rep.filtered
    q = load_quarantine(m.channel, paths)
    assert len(q) == rep.quarantined
    assert q["reason"].astype(str).str.len().gt(0).all()
    return rep


def _parses(values: pd.Series, spec: dict) -> float:
    """Share of the present values a drafted time field parses."""
    values = values[~is_missing(values.astype("string"))].astype(str)
    if spec["type"] == "date":
        return float(parse_dates(values, formats=spec.get("formats")).notna().mean())
    return float(parse_timestamps(values, formats=spec.get("formats"), unit=spec.get("unit"),
                                  timezone="Asia/Shanghai").notna().mean())


# ----------------------------------------------------------------------------- the embedded sample
@pytest.fixture(scope="module")
def sample_raw(tmp_path_factory) -> Path:
    raw = tmp_path_factory.mktemp("draft_sample") / "data" / "raw"
    make_sample(300, seed=3, out=raw)
    return raw


SAME = [{"identifier", "key"}, {"string", "category"}]


def _same_type(a: str, b: str) -> bool:
    return a == b or any({a, b} <= group for group in SAME)


def test_sample_files_draft_validate_and_ingest(sample_raw, tmp_path):
    truth: dict[str, ChannelMapping] = {}
    for m in load_mappings().values():  # the first mapping of a file (in file order) says its role
        for f in m.files(sample_raw):
            truth.setdefault(f.relative_to(sample_raw).as_posix(), m)
    assert len(truth) == 10
    wrong_roles, type_hits, type_misses = [], 0, []
    for rel, true in truth.items():
        f = sample_raw / rel
        d = draft_mapping(f, raw_dir=sample_raw)
        ChannelMapping.from_dict(d.mapping)
        assert yaml.safe_load(d.yaml) == d.mapping
        assert d.mapping["channel"] == true.channel.replace("pos_returns", "pos_receipts")
        assert d.mapping["source"]["pattern"] == true.source.pattern
        assert d.mapping["source"]["format"] == true.source.format
        if true.source.format == "csv":
            want = "gb18030" if true.source.encoding == "gbk" else true.source.encoding
            assert (d.mapping["source"]["encoding"], d.mapping["source"]["delimiter"]) == (want, ",")
            assert d.mapping["source"].get("newlines_in_values", False) == true.source.newlines_in_values
        if d.role != true.role:
            wrong_roles.append(f"{rel}: drafted {d.role} ({d.role_note}), true {true.role}")
            d = draft_mapping(f, raw_dir=sample_raw, role=true.role)   # what a user does: set the role
        # field types against the sample's own mapping, column by column
        drafted = {s["column"]: s for s in d.mapping["fields"].values() if "column" in s}
        for spec in true.fields.values():
            if spec.column is None:
                continue
            got = drafted[spec.column]
            if _same_type(got["type"], spec.type):
                type_hits += 1
            else:
                type_misses.append(f"{rel} {spec.column}: drafted {got['type']}, true {spec.type}")
            if spec.type == "timestamp" and spec.formats and true.source.format == "csv":  # (JSON: pyarrow parses)
                assert got.get("formats") == spec.formats, (rel, spec.column)
            if spec.unit:
                assert got.get("unit") == spec.unit, (rel, spec.column)
        rep = _ingest(tmp_path, f, d, rel.split("/")[0])
        assert rep.kept >= 0.95 * rep.read, (rel, rep)
    assert len(wrong_roles) <= 1, wrong_roles
    assert type_hits >= 0.85 * (type_hits + len(type_misses)), type_misses


def test_sample_time_fields_parse(sample_raw):
    """Every drafted time field parses (almost) all of its sampled values with the drafted formats."""
    for f in [sample_raw / "crm_members" / "crm_members_export.csv", sample_raw / "pos_receipts" / "pos_receipts.csv",
              sample_raw / "email_events" / "email_events.csv", sample_raw / "service_tickets" / "service_tickets.csv"]:
        d = draft_mapping(f, raw_dir=sample_raw)
        enc = d.mapping["source"]["encoding"]
        df = pd.read_csv(f, dtype=str, encoding=enc, on_bad_lines="skip")
        for name, spec in d.mapping["fields"].items():
            if spec.get("type") in ("timestamp", "date"):
                assert _parses(df[spec["column"]], spec) >= 0.98, (f.name, name, spec)


# ----------------------------------------------------------------------------- hand-made files
@pytest.fixture()
def rng():
    return np.random.default_rng(11)


def test_gbk_csv_with_chinese_headers(tmp_path, rng):
    n = 80
    status = rng.choice(["交易成功", "已完成", "已退款", "交易关闭", "已取消"], size=n, p=[.5, .2, .1, .1, .1])
    amounts = rng.uniform(-80, 3000, size=n).round(2)
    df = pd.DataFrame({
        "订单编号": [f"E{100000 + i}" for i in range(n)],
        "下单时间": [f"2025年{rng.integers(1, 13)}月{rng.integers(1, 29):02d}日 "
                 f"{rng.integers(0, 24):02d}:{rng.integers(0, 60):02d}" for _ in range(n)],
        "买家手机": _phones(rng, n),
        "收货人": _names(rng, n),
        "订单状态": status,
        "实付金额": [f"￥{a:,.2f}" if a >= 0 else f"-￥{-a:,.2f}" for a in amounts],
        "数量": rng.integers(1, 5, size=n).astype(str),
        "商品类目": rng.choice(["护肤", "彩妆", "香水"], size=n),
    })
    f = tmp_path / "shop_orders" / "orders_2025.csv"
    f.parent.mkdir()
    df.to_csv(f, index=False, encoding="gbk")
    d = draft_mapping(f, raw_dir=tmp_path)
    src = d.mapping["source"]
    assert (src["pattern"], src["format"], src["encoding"], src["delimiter"]) == (
        "shop_orders/*.csv", "csv", "gb18030", ",")
    assert d.mapping["channel"] == "shop_orders"
    assert d.role == "orders"
    fields = d.mapping["fields"]
    assert fields["order_id"]["column"] == "订单编号" and fields["order_id"]["type"] == "key"
    assert fields["ordered_at"] == {"column": "下单时间", "type": "timestamp", "required": True,
                                    "formats": ["%Y年%m月%d日 %H:%M"]}
    assert fields["amount"]["type"] == "amount" and fields["amount"]["required"] is True
    assert fields["amount"]["currency"] == "CNY"
    assert fields["phone"] == {"column": "买家手机", "type": "phone", "pii": "direct"}
    assert d.field("receiver_name").type == "name"
    assert fields["quantity"]["type"] == "integer"
    assert set(fields["status"]["values"]["paid"]) == {"交易成功", "已完成"}
    assert fields["status"]["values"]["refunded"] == ["已退款"]
    assert set(fields["status"]["values"]["cancelled"]) == {"交易关闭", "已取消"}
    assert fields["category"]["type"] == "category"
    assert "grain" not in d.mapping
    rep = _ingest(tmp_path, f, d, "gbk")
    assert rep.kept == n


def test_utf8_bom_semicolon_member_file(tmp_path, rng):
    n = 60
    days = rng.integers(1, 29, size=n)
    df = pd.DataFrame({
        "member_no": [f"VIP{i:06d}" for i in range(n)],
        "name": [f"{rng.choice(['ZHANG', 'WANG', 'LI', 'Chen'])} {rng.choice(['Wei', 'Fang', 'Na', 'Lei'])}"
                 for _ in range(n)],
        "mobile": _phones(rng, n),
        "email": [f"user{i}@example.cn" for i in range(n)],
        "gender": rng.choice(["M", "F", "1", "2"], size=n),
        "birthday": [f"{d:02d}/{rng.integers(1, 13):02d}/{rng.integers(1960, 2005)}" for d in days],
        "city": rng.choice(["上海", "北京", "深圳"], size=n),
        "points": rng.integers(0, 5000, size=n).astype(str),
    })
    f = tmp_path / "members.csv"
    f.write_bytes(df.to_csv(index=False, sep=";").encode("utf-8-sig"))
    s = sniff_source(f)
    assert (s.format, s.encoding, s.delimiter, s.header) == ("csv", "utf-8-sig", ";", True)
    d = draft_mapping(f)
    assert d.mapping["source"] == {"pattern": "members.csv", "format": "csv", "encoding": "utf-8-sig",
                                   "delimiter": ";"}
    assert d.role == "profile"
    fields = d.mapping["fields"]
    assert fields["member_id"]["column"] == "member_no" and fields["member_id"]["type"] in ("identifier", "key")
    assert fields["name"]["type"] == "name" and fields["email"]["type"] == "email"
    assert fields["phone"]["type"] == "phone"
    assert {k: set(v) for k, v in fields["gender"]["values"].items()} == {"M": {"M", "1"}, "F": {"F", "2"}}
    assert fields["birth_date"] == {"column": "birthday", "type": "date", "formats": ["%d/%m/%Y"], "pii": "quasi"}
    assert fields["city"]["pii"] == "quasi"
    assert fields["points"]["type"] == "integer"
    _ingest(tmp_path, f, d, "bom")


def test_utf16_tab_separated_returns(tmp_path, rng):
    n = 40
    df = pd.DataFrame({
        "return_no": [f"R{i:05d}" for i in range(n)],
        "original_order": [f"HK001-{rng.integers(1000, 9999)}" for _ in range(n)],
        "return_time": [f"2025-{rng.integers(1, 13):02d}-{rng.integers(1, 29):02d}"
                        f"T{rng.integers(0, 24):02d}:15:00+08:00" for _ in range(n)],
        "refund_amount": [f"HK${v:,.2f}" for v in rng.uniform(50, 2500, size=n)],
        "reason": rng.choice(["质量问题", "尺寸不合适", "不想要了"], size=n),
        "customer_phone": [f"+852 {rng.choice([5, 6, 9])}{rng.integers(100, 999)} {rng.integers(1000, 9999)}"
                           for _ in range(n)],
    })
    f = tmp_path / "store_returns" / "returns_2025.txt"
    f.parent.mkdir()
    f.write_text(df.to_csv(index=False, sep="\t"), encoding="utf-16")
    d = draft_mapping(f, raw_dir=tmp_path)
    assert d.mapping["source"] == {"pattern": "store_returns/*.txt", "format": "csv", "encoding": "utf-16",
                                   "delimiter": "\t"}
    assert d.role == "returns"
    fields = d.mapping["fields"]
    assert fields["order_id"]["column"] == "original_order" and fields["order_id"]["required"] is True
    assert fields["return_id"]["column"] == "return_no" and fields["return_id"]["type"] == "key"
    assert fields["returned_at"]["formats"] == ["%Y-%m-%dT%H:%M:%S%z"]
    assert fields["amount"]["column"] == "refund_amount" and fields["amount"]["currency"] == "HKD"
    assert fields["phone"]["type"] == "phone"
    assert _parses(df["return_time"], fields["returned_at"]) == 1.0
    rep = _ingest(tmp_path, f, d, "utf16")
    assert rep.kept == n


def test_jsonl_event_log_with_its_own_event_names(tmp_path, rng):
    n = 400
    actions = rng.choice(["浏览", "加购", "search", "purchase", "share", "login"], size=n)
    t0 = 1_740_000_000_000
    with open(tmp_path / "behaviour_log.jsonl", "w", encoding="utf-8") as fh:
        for i in range(n):
            rec = {"uid": f"U{rng.integers(1, 60):04d}", "device": f"d{rng.integers(1, 90):05x}",
                   "ts": int(t0 + i * 61_000), "action": str(actions[i]), "sku": f"SKU{rng.integers(1, 300)}",
                   "price": round(float(rng.uniform(10, 500)), 2) if actions[i] == "purchase" else None}
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    f = tmp_path / "behaviour_log.jsonl"
    d = draft_mapping(f)
    assert d.mapping["source"] == {"pattern": "behaviour_log.jsonl", "format": "jsonl", "encoding": "utf-8"}
    assert d.role == "events"
    fields = d.mapping["fields"]
    assert fields["event_time"] == {"column": "ts", "type": "timestamp", "required": True, "unit": "ms"}
    values = fields["event_type"]["values"]
    assert values["Product Viewed"] == ["浏览"] and values["Product Added"] == ["加购"]
    assert values["Products Searched"] == ["search"] and values["Order Completed"] == ["purchase"]
    assert values["Signed In"] == ["login"] and values["Share"] == ["share"]
    assert d.mapping["custom_event_types"] == ["Share"]
    assert fields["event_type"]["required"] is True
    assert "# guess:" in d.yaml.split("event_type:")[1].splitlines()[0]
    ids = {s["column"]: s for s in fields.values() if s.get("type") == "identifier"}
    assert set(ids) == {"uid", "device"} and ids["device"]["pii"] == "quasi" and ids["uid"]["pii"] == "direct"
    assert fields["value"]["column"] == "price" and fields["value"]["type"] == "amount"
    rep = _ingest(tmp_path, f, d, "jsonl")
    assert rep.kept == n


def test_line_item_till_export(tmp_path, rng):
    rows = []
    for r in range(70):
        when = f"2025/03/{rng.integers(1, 29):02d} {rng.integers(9, 22):02d}:{rng.integers(0, 60):02d}:05"
        card = f"C{rng.integers(10_000, 10_100)}" if rng.random() < 0.7 else ""
        for line in range(int(rng.integers(1, 5))):
            qty = int(rng.integers(1, 4))
            price = float(rng.choice([59.0, 129.0, 268.0]))
            rows.append({"receipt_no": f"SH01-{r:06d}", "line_no": line + 1, "txn_time": when, "member_card": card,
                         "sku": f"SK{rng.integers(100, 140)}", "qty": qty, "unit_price": f"{price:.2f}",
                         "line_total": f"{qty * price:.2f}"})
    df = pd.DataFrame(rows)
    f = tmp_path / "till" / "till_lines.csv"
    f.parent.mkdir()
    df.to_csv(f, index=False)
    d = draft_mapping(f, raw_dir=tmp_path)
    assert d.role == "orders"
    assert d.mapping["grain"] == "line"
    fields = d.mapping["fields"]
    assert fields["order_id"] == {"column": "receipt_no", "type": "key"}
    assert fields["ordered_at"]["formats"] == ["%Y/%m/%d %H:%M:%S"]
    assert fields["amount"]["column"] == "line_total" and fields["amount"]["type"] == "amount"
    assert fields["quantity"]["column"] == "qty" and fields["quantity"]["type"] == "integer"
    assert fields["product"]["column"] == "sku"
    assert fields["member_id"]["type"] == "identifier" and fields["member_id"]["pii"] == "direct"
    assert "dedupe" not in d.mapping
    rep = _ingest(tmp_path, f, d, "till")
    assert rep.kept == len(df)


def test_excel_member_sheet(tmp_path, rng):
    n = 30
    df = pd.DataFrame({
        "会员卡号": [f"88{rng.integers(10**7, 10**8 - 1)}" for _ in range(n)],
        "姓名": _names(rng, n),
        "手机号码": _phones(rng, n),
        "性别": rng.choice(["男", "女"], size=n),
        "生日": pd.to_datetime([f"19{rng.integers(60, 99)}-{rng.integers(1, 13):02d}-{rng.integers(1, 29):02d}"
                              for _ in range(n)]),
        "会员等级": rng.choice(["金卡", "银卡", "普卡"], size=n),
        "注册日期": pd.to_datetime("2024-01-01") + pd.to_timedelta(rng.integers(0, 400, size=n), unit="D")
        + pd.to_timedelta(rng.integers(0, 86_400, size=n), unit="s"),
    })
    f = tmp_path / "vip" / "会员名单.xlsx"
    f.parent.mkdir()
    df.to_excel(f, index=False)
    d = draft_mapping(f, raw_dir=tmp_path)
    assert d.mapping["source"] == {"pattern": "vip/*.xlsx", "format": "excel"}
    assert d.role == "profile"
    fields = d.mapping["fields"]
    assert fields["member_id"]["column"] == "会员卡号" and fields["member_id"]["type"] in ("identifier", "key")
    assert fields["name"]["type"] == "name" and fields["phone"]["type"] == "phone"
    assert {k: set(v) for k, v in fields["gender"]["values"].items()} == {"M": {"男"}, "F": {"女"}}
    assert fields["birth_date"]["type"] == "date"
    assert fields["registered_at"]["type"] == "timestamp"
    assert set(fields["member_level"]["values"]) == {"gold", "silver", "standard"}
    _ingest(tmp_path, f, d, "excel")


# ----------------------------------------------------------------------------- sniffing details and errors
def test_header_less_csv_says_it_needs_a_header(tmp_path, rng):
    n = 30
    lines = [f"M{i:05d},{_phones(rng, 1)[0]},2025-01-{(i % 28) + 1:02d} 10:00:00,{rng.uniform(1, 99):.2f}"
             for i in range(n)]
    f = tmp_path / "noheader" / "export.csv"
    f.parent.mkdir()
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    d = draft_mapping(f, raw_dir=tmp_path)
    assert d.source.header is False
    assert [c.column for c in d.columns if c.column] == ["col_1", "col_2", "col_3", "col_4"]
    assert "NO HEADER ROW" in d.yaml and "col_1,col_2,col_3,col_4" in d.yaml
    types = {c.column: c.type for c in d.columns if c.column}
    assert types["col_2"] == "phone" and types["col_3"] == "timestamp"
    # the reader takes the first line as the header: with the suggested line on top, the draft ingests
    fixed = tmp_path / "with_header" / "export.csv"
    fixed.parent.mkdir()
    fixed.write_text("col_1,col_2,col_3,col_4\n" + f.read_text(encoding="utf-8"), encoding="utf-8")
    rep = _ingest(tmp_path, fixed, d, "noheader")
    assert rep.read == n


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiters(tmp_path, delimiter):
    f = tmp_path / "a.csv"
    f.write_text(delimiter.join(["id", "name", "amount"]) + "\n"
                 + "".join(delimiter.join([f"X{i}", "a, b; c" if delimiter != "," else "ab", "1.5"]) + "\n"
                           for i in range(20)), encoding="utf-8")
    assert sniff_source(f).delimiter == delimiter


def test_encodings(tmp_path):
    text = "会员编号,姓名\nM1,张三\nM2,李四\n"
    for enc, want in (("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("gbk", "gb18030"), ("gb18030", "gb18030"),
                      ("utf-16", "utf-16")):
        f = tmp_path / f"{enc}.csv"
        f.write_bytes(text.encode(enc))
        assert sniff_source(f).encoding == want, enc
    # GB18030-only characters (not in GBK) are found too
    f = tmp_path / "rare.csv"
    f.write_bytes("姓名\n㐀先生\n".encode("gb18030"))
    assert sniff_source(f).encoding == "gb18030"


def test_formats_from_extension_and_content(tmp_path):
    pd.DataFrame({"a": [1, 2]}).to_parquet(tmp_path / "x.parquet")
    assert sniff_source(tmp_path / "x.parquet").format == "parquet"
    (tmp_path / "x.ndjson").write_text('{"a": 1}\n{"a": 2}\n')
    assert sniff_source(tmp_path / "x.ndjson").format == "jsonl"
    (tmp_path / "x.tsv").write_text("a\tb\n1\t2\n")
    s = sniff_source(tmp_path / "x.tsv")
    assert (s.format, s.delimiter) == ("csv", "\t")
    (tmp_path / "export.data").write_text("a,b\n1,2\n")
    s = sniff_source(tmp_path / "export.data")
    assert s.format == "csv" and any("unknown extension" in n for n in s.notes)


def test_errors_say_what_was_expected_and_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="file not found. Expected a data file"):
        draft_mapping(tmp_path / "nope.csv")
    (tmp_path / "blob.bin").write_bytes(b"\x00\x01\x02\x03" * 100)
    with pytest.raises(MappingError, match="unknown format '.bin'.*Expected one of the extensions"):
        draft_mapping(tmp_path / "blob.bin")
    (tmp_path / "arr.json").write_text('[{"a": 1}]')
    with pytest.raises(MappingError, match="a JSON array. Expected JSON lines"):
        draft_mapping(tmp_path / "arr.json")
    (tmp_path / "fake.parquet").write_text("a,b\n1,2\n")
    with pytest.raises(MappingError, match="does not start like a parquet file"):
        draft_mapping(tmp_path / "fake.parquet")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(MappingError, match="the file is empty"):
        draft_mapping(tmp_path / "empty.csv")
    (tmp_path / "ok.csv").write_text("order_no,order_time,amount\nA1,2025-01-01 10:00:00,5.00\n")
    with pytest.raises(MappingError, match=r"role must be one of \[.*\]. Got 'sales'"):
        draft_mapping(tmp_path / "ok.csv", role="sales")
    with pytest.raises(MappingError, match="consents role needs the fields"):
        draft_mapping(tmp_path / "ok.csv", role="consents")
    with pytest.raises(ValueError, match="'sample_rows' parameter must be a positive integer"):
        draft_mapping(tmp_path / "ok.csv", sample_rows=0)


def test_role_can_be_set(tmp_path):
    f = tmp_path / "ok.csv"
    f.write_text("order_no,order_time,amount\nA1,2025-01-01 10:00:00,5.00\nA2,2025-01-02 11:00:00,7.00\n")
    d = draft_mapping(f, role="events", channel="my_events")
    assert (d.role, d.mapping["channel"]) == ("events", "my_events")
    assert d.mapping["fields"]["event_time"]["column"] == "order_time"
    ChannelMapping.from_dict(d.mapping)


def test_map_command_prints_or_writes(tmp_path, capsys):
    f = tmp_path / "raw" / "shop" / "orders.csv"
    f.parent.mkdir(parents=True)
    f.write_text("order_no,order_time,amount\nA1,2025-01-01 10:00:00,5.00\nA2,2025-01-02 11:00:00,7.00\n")
    assert map_command(str(f), out=None, channel=None, role=None, raw_dir=str(tmp_path / "raw")) == 0
    printed = capsys.readouterr().out
    assert "pattern: shop/*.csv" in printed and "role: orders" in printed
    assert yaml.safe_load(printed)["role"] == "orders"
    out = tmp_path / "maps" / "10_shop.yaml"
    assert main([str(f), "--out", str(out), "--raw-dir", str(tmp_path / "raw"), "--channel", "shop_pos"]) == 0
    assert f"written to {out}" in capsys.readouterr().out
    assert ChannelMapping.from_dict(yaml.safe_load(out.read_text(encoding="utf-8"))).channel == "shop_pos"
    assert map_command(str(f), out=str(out), channel=None, role=None, raw_dir=None) == 2
    assert "already exists" in capsys.readouterr().err
    assert map_command(str(tmp_path / "missing.csv"), out=None, channel=None, role=None, raw_dir=None) == 2
    assert "file not found" in capsys.readouterr().err


def test_yaml_comments_mark_guesses(sample_raw):
    d = draft_mapping(sample_raw / "pos_receipts" / "pos_receipts.csv", raw_dir=sample_raw)
    head = d.yaml.split("\nchannel:")[0]
    assert "role: orders" in head and "identity columns" in head
    assert "# guess:" in d.yaml
    low = [g for g in d.columns if g.confidence != "high"]
    for g in low:
        line = next(ln for ln in d.yaml.splitlines() if ln.startswith(f"  {g.field}:"))
        assert "# guess:" in line and line.endswith("; check")
    assert "second mapping with role returns" in d.yaml


def test_big_file_drafts_in_seconds(tmp_path):
    n = 150_000
    r = np.random.default_rng(0)
    df = pd.DataFrame({"order_id": np.arange(n).astype(str), "member_id": (r.integers(0, 40_000, n)).astype(str),
                       "order_time": pd.Timestamp("2025-01-01") + pd.to_timedelta(r.integers(0, 3e7, n), unit="s"),
                       "amount": r.uniform(1, 999, n).round(2), "channel": r.choice(["tmall", "jd", "store"], n)})
    df["member_id"] = "M" + df["member_id"]
    f = tmp_path / "big_orders.csv"
    df.to_csv(f, index=False)
    t0 = time.perf_counter()
    d = draft_mapping(f)
    took = time.perf_counter() - t0
    assert d.rows_sampled == 50_000 and d.role == "orders"
    assert took < 10, took  # about 1 s on an idle machine


# ----------------------------------------------------------------------------- the two test brands
@pytest.mark.parametrize("brand", ["cdnow", "lotus"])
def test_brand_files_draft_and_ingest_after_at_most_the_role_and_identity_columns(brand, tmp_path):
    """Every raw file of the two brands unlike the sample (tests/brands): the draft ingests the file
    once at most its role and the identifier / key types of its identity columns are set as the
    brand's own mapping has them."""
    from tests.brands import BOUTIQUE_MAPPINGS, CDNOW_MAPPINGS, write_boutique, write_cdnow

    raw = tmp_path / "data" / "raw"
    if brand == "cdnow":
        write_cdnow(raw)
        folder = CDNOW_MAPPINGS
    else:
        write_boutique(raw, persons=200, seed=4)
        folder = BOUTIQUE_MAPPINGS
    truth = {f.relative_to(raw).as_posix(): m for m in load_mappings(folder).values() for f in m.files(raw)}
    assert truth
    fixed_roles, fixed_ids = [], []
    for rel, true in truth.items():
        f = raw / rel
        d = draft_mapping(f, raw_dir=raw)
        if d.role != true.role:
            fixed_roles.append(rel)
            d = draft_mapping(f, raw_dir=raw, role=true.role)
        mapping = d.mapping
        ids = {s.column: s.type for s in true.fields.values() if s.type in ("identifier", "key") and s.column}
        for field in mapping["fields"].values():
            if field.get("column") in ids and field["type"] in ("identifier", "key") and field["type"] != ids[field["column"]]:
                field["type"] = ids[field["column"]]   # the identity columns, as the brand declares them
                fixed_ids.append(f"{rel} {field['column']}")
        rep = _ingest(tmp_path / "ingest", f, mapping, rel.replace("/", "_"))
        assert rep.kept >= 0.95 * rep.read, (rel, rep)
    assert len(fixed_roles) <= 1, fixed_roles
