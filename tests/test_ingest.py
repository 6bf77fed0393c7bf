"""Ingestion: mapping-driven reading, clear errors, quarantine, reconciliation, increments."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from workbench.config import get_paths
from workbench.ingest import ingest_all, load_ingested, load_quarantine, read_source
from workbench.mapping import ChannelMapping, MappingError


def mapping(**source) -> ChannelMapping:
    return ChannelMapping.from_dict({
        "channel": "shop", "role": "profile",
        "source": {"pattern": "shop/*.csv", "format": "csv", **source},
        "fields": {
            "member_id": {"column": "会员编号", "type": "identifier", "required": True},
            "name": {"column": "姓名", "type": "name", "pii": "direct"},
            "amount": {"column": "金额", "type": "amount", "required": True},
            "qty": {"column": "数量", "type": "integer"},
        },
    })


@pytest.fixture
def paths(tmp_path):
    p = get_paths(tmp_path / "data", tmp_path / "reports")
    (p.raw / "shop").mkdir(parents=True)
    return p


def write(paths, name: str, text: str, encoding: str = "utf-8") -> None:
    (paths.raw / "shop" / name).write_bytes(text.encode(encoding))


GOOD = "会员编号,姓名,金额,数量\nM1,张伟,10.5,1\nM2,李娜,20,2\n"


def test_missing_column_names_file_missing_and_present_columns(paths):
    write(paths, "a.csv", "会员编号,姓名,数量\nM1,张伟,1\n")
    with pytest.raises(MappingError) as err:
        ingest_all(paths, mappings={"shop": mapping()}, progress=False, log=None)
    msg = str(err.value)
    assert "shop/a.csv" in msg and "['金额']" in msg and "amount" in msg
    assert "Columns in the file: ['会员编号', '姓名', '数量']" in msg


def test_gbk_file_is_read_when_the_mapping_says_gbk(paths):
    write(paths, "a.csv", GOOD, encoding="gbk")
    r = ingest_all(paths, mappings={"shop": mapping(encoding="gbk")}, progress=False, log=None)
    df = load_ingested("shop", paths)
    assert df["name"].tolist() == ["张伟", "李娜"] and r.summary().loc["shop", "kept"] == 2


def test_gbk_file_read_as_utf8_is_a_clear_error(paths):
    write(paths, "a.csv", GOOD, encoding="gbk")
    with pytest.raises(MappingError, match=r"shop/a.csv.*encoding 'utf-8'.*source.encoding"):
        ingest_all(paths, mappings={"shop": mapping()}, progress=False, log=None)


def test_utf8_bom_header_is_matched(paths):
    write(paths, "a.csv", GOOD, encoding="utf-8-sig")
    ingest_all(paths, mappings={"shop": mapping(encoding="utf-8-sig")}, progress=False, log=None)
    assert len(load_ingested("shop", paths)) == 2


def test_broken_rows_are_quarantined_with_row_number_and_reason(paths):
    text = ("会员编号,姓名,金额,数量\n"
            "M1,张伟,10.5,1\n"        # row 1 fine
            "M2,李,娜,20,2\n"          # row 2: one field too many
            ",王芳,5,1\n"              # row 3: required member id missing
            "M4,赵敏,N/A,1\n"          # row 4: amount missing
            "M5,孙丽,abc,1.5\n"        # row 5: amount not a number AND qty not whole: both reported
            "M6,周杰,7\n"              # row 6: one field short
            "M7,吴军,8,3\n")           # row 7 fine
    write(paths, "a.csv", text)
    r = ingest_all(paths, mappings={"shop": mapping()}, progress=False, log=None)
    s = r.summary().loc["shop"]
    assert (s["read"], s["kept"], s["quarantined"]) == (7, 2, 5)
    assert load_ingested("shop", paths)["_source_row"].tolist() == [1, 7]
    q = load_quarantine("shop", paths).set_index("_source_row")
    assert sorted(q.index) == [2, 3, 4, 5, 6]
    assert "5 fields, expected 4" in q.loc[2, "reason"]
    assert "required value missing (column '会员编号')" in q.loc[3, "reason"]
    assert "required value missing (column '金额')" in q.loc[4, "reason"]
    assert "expected a number in column '金额'" in q.loc[5, "reason"]
    assert "expected a whole number in column '数量'" in q.loc[5, "reason"]  # every failure, not the first
    assert json.loads(q.loc[5, "record"])["member_id"] == "M5"


def test_empty_file_is_a_clear_error_and_other_channels_still_ingest(paths):
    write(paths, "a.csv", "")
    other = ChannelMapping.from_dict({"channel": "other", "role": "profile", "source": {"pattern": "other/*.csv"},
                                      "fields": {"member_id": {"column": "x", "type": "identifier"}}})
    (paths.raw / "other").mkdir()
    (paths.raw / "other" / "o.csv").write_text("x\n1\n")
    with pytest.raises(MappingError, match=r"shop/a.csv: the file is empty — expected a header row"):
        ingest_all(paths, mappings={"shop": mapping(), "other": other}, progress=False, log=None)
    assert len(load_ingested("other", paths)) == 1
    r = ingest_all(paths, mappings={"shop": mapping(), "other": other}, progress=False, log=None, strict=False)
    assert any("empty" in e for e in r.errors)


def test_header_only_file_gives_zero_rows(paths):
    write(paths, "a.csv", "会员编号,姓名,金额,数量\n")
    r = ingest_all(paths, mappings={"shop": mapping()}, progress=False, log=None)
    assert r.summary().loc["shop", "read"] == 0


def test_channel_without_files_is_an_error(paths):
    with pytest.raises(MappingError, match=r"Channel 'shop': no file matches 'shop/\*.csv'"):
        ingest_all(paths, mappings={"shop": mapping()}, progress=False, log=None)


def test_incremental_ingestion_reads_only_new_or_changed_files(paths):
    m = {"shop": mapping()}
    write(paths, "a.csv", GOOD)
    r1 = ingest_all(paths, mappings=m, progress=False, log=None)
    assert r1.changed == ["shop/a.csv"]
    r2 = ingest_all(paths, mappings=m, progress=False, log=None)
    assert r2.changed == [] and r2.unchanged == ["shop/a.csv"]
    write(paths, "b.csv", "会员编号,姓名,金额,数量\nM9,钱多,1,1\n")
    r3 = ingest_all(paths, mappings=m, progress=False, log=None)
    assert r3.changed == ["shop/b.csv"] and r3.unchanged == ["shop/a.csv"]
    assert r3.summary().loc["shop", "read"] == 3
    write(paths, "a.csv", GOOD + "M3,王五,x,1\n")  # changed: one more (bad) row
    r4 = ingest_all(paths, mappings=m, progress=False, log=None)
    assert r4.changed == ["shop/a.csv"]
    s = r4.summary().loc["shop"]
    assert (s["read"], s["kept"], s["quarantined"]) == (4, 3, 1)
    assert len(load_quarantine("shop", paths)) == 1
    ingest_all(paths, mappings=m, progress=False, log=None, force=True)
    assert len(load_quarantine("shop", paths)) == 1, "forced re-ingest must not duplicate quarantine rows"
    (paths.raw / "shop" / "a.csv").unlink()
    r5 = ingest_all(paths, mappings=m, progress=False, log=None)
    assert [f.file for f in r5.files if f.status == "removed"] == ["shop/a.csv"]
    assert len(load_ingested("shop", paths)) == 1 and len(load_quarantine("shop", paths)) == 0


def test_raw_files_are_never_modified(paths):
    write(paths, "a.csv", GOOD)
    before = (paths.raw / "shop" / "a.csv").read_bytes()
    ingest_all(paths, mappings={"shop": mapping()}, progress=False, log=None, force=True)
    assert (paths.raw / "shop" / "a.csv").read_bytes() == before


def test_jsonl_with_a_broken_line_quarantines_only_that_line(tmp_path):
    p = get_paths(tmp_path / "data", tmp_path / "reports")
    (p.raw / "ev").mkdir(parents=True)
    (p.raw / "ev" / "e.jsonl").write_text('{"id": "a", "n": 1}\n{"id": "b", "n": \n{"id": "c", "n": 3}\n')
    m = ChannelMapping.from_dict({"channel": "ev", "role": "profile",
                                  "source": {"pattern": "ev/*.jsonl", "format": "jsonl"},
                                  "fields": {"member_id": {"column": "id", "type": "identifier", "required": True},
                                             "n": {"column": "n", "type": "integer"}}})
    r = ingest_all(p, mappings={"ev": m}, progress=False, log=None)
    assert r.summary().loc["ev", "kept"] == 2
    q = load_quarantine("ev", p)
    assert q["_source_row"].tolist() == [2] and "not a JSON object" in q["reason"].iloc[0]


def test_missing_file_is_named(tmp_path):
    with pytest.raises(MappingError, match="nope.csv: file not found"):
        read_source(tmp_path / "nope.csv", mapping())


def test_sample_ingests_and_reconciles_against_truth(cleaned_paths, session_raw):
    truth = pd.read_parquet(session_raw / "_truth" / "records.parquet")
    metrics = json.loads((cleaned_paths.metrics / "ingest.json").read_text())
    for channel, c in metrics["channels"].items():
        assert c["read"] == c["kept"] + c["quarantined"] + c["suppressed"] + c["filtered"], channel
    # every physical row of every file is counted once: a file read by two mappings too
    ledger = json.loads(cleaned_paths.ingest_ledger.read_text())["files"]
    for rel, by in ledger.items():
        rows = int((truth["source_file"] == rel).sum())
        assert all(e["read"] == rows for e in by.values()), rel
        assert sum(e["kept"] + e["quarantined"] + e["suppressed"] for e in by.values()) == rows, rel
    t = metrics["totals"]
    assert t["read"] == len(truth) == t["kept"] + t["quarantined"] + t["suppressed"]
    assert set(ledger["pos_receipts/pos_receipts.csv"]) == {"pos_receipts", "pos_returns"}
    pos_q = load_quarantine("pos_receipts", cleaned_paths)
    assert (pos_q["stage"] == "ingest").sum() == 5  # 3 broken rows + 2 amounts the till could not print


def test_excel_source_is_read_through_its_mapping(tmp_path):
    p = get_paths(tmp_path / "data", tmp_path / "reports")
    (p.raw / "xl").mkdir(parents=True)
    pd.DataFrame({"会员编号": ["M1", "M2", None], "金额": ["10", "x", "3"]}).to_excel(
        p.raw / "xl" / "members.xlsx", index=False, sheet_name="导出")
    m = ChannelMapping.from_dict({"channel": "xl", "role": "profile",
                                  "source": {"pattern": "xl/*.xlsx", "format": "excel", "sheet": "导出"},
                                  "fields": {"member_id": {"column": "会员编号", "type": "identifier", "required": True},
                                             "amount": {"column": "金额", "type": "amount"}}})
    r = ingest_all(p, mappings={"xl": m}, progress=False, log=None)
    s = r.summary().loc["xl"]
    assert (s["read"], s["kept"], s["quarantined"]) == (3, 1, 2)
    assert load_ingested("xl", p)["member_id"].tolist() == ["M1"]
    assert sorted(load_quarantine("xl", p)["_source_row"]) == [2, 3]


def test_required_value_that_is_a_real_null_is_quarantined(tmp_path):
    p = get_paths(tmp_path / "data", tmp_path / "reports")
    (p.raw / "ev").mkdir(parents=True)
    (p.raw / "ev" / "e.jsonl").write_text('{"id": "a"}\n{"id": null}\n{"other": 1}\n')
    m = ChannelMapping.from_dict({"channel": "ev", "role": "profile",
                                  "source": {"pattern": "ev/*.jsonl", "format": "jsonl"},
                                  "fields": {"member_id": {"column": "id", "type": "identifier", "required": True}}})
    r = ingest_all(p, mappings={"ev": m}, progress=False, log=None)
    assert (r.summary().loc["ev", "kept"], r.summary().loc["ev", "quarantined"]) == (1, 2)
    assert load_quarantine("ev", p)["reason"].str.contains("required value missing").all()
