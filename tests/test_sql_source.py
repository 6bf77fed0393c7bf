"""SQL databases as channel sources, against a real PostgreSQL server the tests start and stop.

The sample's CRM members and e-commerce orders are loaded into PostgreSQL tables exactly as
the CSV parser gave them; ingesting them through SQL mappings must give the same kept rows and
the same quarantine (reasons included) as ingesting the files. Incremental reads, ties at the
watermark, errors (wrong URL, wrong password, missing table or column) and the password staying
out of everything written are checked on the same server.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa  # the sql extra is in the locked environment: a missing package fails, never skips

from tests.pg_server import PgServer
from workbench.config import get_paths
from workbench.ingest import ingest_all, load_ingested, load_ledger, load_quarantine, read_source
from workbench.mapping import ChannelMapping, MappingError, load_mapping, load_mappings
from workbench.sql_source import SqlRead

CHANNELS = ("crm_members", "ecommerce_orders")
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sql_channels" / "01_crm_members.yaml"
URL_VAR = "WORKBENCH_TEST_PG_URL"


@pytest.fixture(scope="module")
def pg():
    """A PostgreSQL server for this module; its teardown fails if any of its processes is left."""
    server = PgServer.start()
    yield server
    server.stop(check=True)
    assert server.leftover() == []


@pytest.fixture(scope="module")
def engine(pg):
    eng = sa.create_engine(pg.url, poolclass=sa.pool.NullPool)
    yield eng
    eng.dispose()


def load_table(engine, table: str, frame: pd.DataFrame, *, schema: str | None = None, replace: bool = True) -> None:
    """``frame`` (text columns and ``_source_row``) into ``table``: every column TEXT, ``src_row`` the key (COPY)."""
    frame = frame.rename(columns={"_source_row": "src_row"})
    name = f'"{schema}"."{table}"' if schema else f'"{table}"'
    cols = ", ".join(f'"{c}"' for c in frame.columns)
    with engine.begin() as conn:
        if schema:
            conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        if replace:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))
            text = ", ".join(f'"{c}" TEXT' for c in frame.columns if c != "src_row")
            conn.execute(sa.text(f"CREATE TABLE {name} (src_row BIGINT PRIMARY KEY, {text})"))
        values = frame.astype(object).where(frame.notna(), None).itertuples(index=False, name=None)
        with conn.connection.driver_connection.cursor() as cur, cur.copy(f"COPY {name} ({cols}) FROM STDIN") as copy:
            for row in values:
                copy.write_row(row)


def sql_mapping(m: ChannelMapping, **source) -> ChannelMapping:
    d = m.to_dict()
    d["source"] = {"format": "sql", "url": URL_VAR, **source}
    return ChannelMapping.from_dict(d)


@pytest.fixture(scope="module")
def sample(session_raw, tmp_path_factory):
    """The file-based ingest of the two channels, and the rows the CSV parser gave (to load into PostgreSQL)."""
    mappings = load_mappings()
    root = tmp_path_factory.mktemp("sql-files")
    paths = get_paths(root / "data", root / "reports")
    for ch in CHANNELS:
        shutil.copytree(session_raw / ch, paths.raw / ch)
    files = {ch: mappings[ch] for ch in CHANNELS}
    for ch, bad in DIRTY.items():  # rows the ingest stage quarantines, so both quarantines have reasons to compare
        add_rows(files[ch].files(paths.raw)[0], files[ch], bad)
    ingest_all(paths, mappings=files, progress=False, log=None, workers=1)
    raw = {}
    for ch in CHANNELS:
        (f,) = files[ch].files(paths.raw)
        raw[ch] = read_source(f, files[ch])
    return paths, files, raw


DIRTY = {
    "crm_members": [{"会员编号": "", "姓名": "无编号", "更新时间": "2024-05-01 10:00:00"},
                    {"会员编号": "M99999901", "姓名": "无时间", "更新时间": ""}],
    "ecommerce_orders": [{"平台": "天猫", "订单编号": "T-BAD-1", "下单时间": "2024/05/01 10:00:00", "订单状态": "交易成功",
                          "实付金额": "十元", "数量": "2.5"},
                         {"平台": "京东", "订单编号": "", "下单时间": "2024/05/02 11:00:00", "订单状态": "已付款",
                          "实付金额": "88.00", "数量": "1"}],
}


def add_rows(path: Path, mapping: ChannelMapping, rows: list[dict[str, str]]) -> None:
    """Append rows (missing columns empty) to a CSV file in its own encoding."""
    import csv
    import io

    text = path.read_bytes().decode(mapping.source.encoding)
    header = next(csv.reader([text.lstrip("\ufeff").splitlines()[0]]))
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([[r.get(c, "") for c in header] for r in rows])
    sep = "" if text.endswith("\n") else "\n"
    path.write_bytes((text + sep + out.getvalue()).encode(mapping.source.encoding))


def comparable(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.drop(columns=["_source_file", "_source_row"])
    return frame.sort_values(list(frame.columns), kind="stable", na_position="first").reset_index(drop=True)


def quarantine_of(paths, channel: str, drop_rows=()) -> list[tuple[str, str]]:
    q = load_quarantine(channel, paths)
    q = q[~q["_source_row"].isin(list(drop_rows))]
    return sorted(zip(q["reason"], q["record"]))


def fresh_paths(tmp_path):
    return get_paths(tmp_path / "data", tmp_path / "reports")


def test_sql_ingest_equals_file_ingest(pg, engine, sample, tmp_path, monkeypatch):
    """Same kept rows, same quarantine (reasons and records), counts that reconcile, read in chunks."""
    file_paths, files, raw = sample
    monkeypatch.setenv(URL_VAR, pg.url)
    monkeypatch.setenv("CRM_DATABASE_URL", pg.url)
    load_table(engine, "members", raw["crm_members"].frame, schema="crm")
    load_table(engine, "orders", raw["ecommerce_orders"].frame, schema="shop")
    example = load_mapping(EXAMPLE)  # the users' example, as documented (smaller chunks, to read several)
    assert example.fields == files["crm_members"].fields and example.dedupe == files["crm_members"].dedupe
    d = example.to_dict()
    d["source"]["chunksize"] = 400
    mappings = {"crm_members": ChannelMapping.from_dict(d),
                "ecommerce_orders": sql_mapping(files["ecommerce_orders"], table="shop.orders", chunksize=700)}
    paths = fresh_paths(tmp_path)
    result = ingest_all(paths, mappings=mappings, progress=False, log=None, workers=1)
    summary = result.summary()
    for ch in CHANNELS:
        rows = raw[ch].frame
        assert len(rows) > 1000 and len(raw[ch].bad_rows) >= 0
        s = summary.loc[ch]
        assert s["read"] == len(rows) == s["kept"] + s["quarantined"] + s["suppressed"] + s["filtered"]
        assert s["quarantined"] >= 2, "the dirty rows reach the quarantine"
        pd.testing.assert_frame_equal(comparable(load_ingested(ch, paths)), comparable(load_ingested(ch, file_paths)))
        # the file's quarantine also holds rows the CSV parser could not split: those never reach a table
        assert quarantine_of(paths, ch) == quarantine_of(file_paths, ch, raw[ch].bad_rows["_source_row"])
    sizes = [len(c) for c in SqlRead(mappings["crm_members"]).chunks()]  # never the whole table at once
    assert max(sizes) == 400 and sum(sizes) == len(raw["crm_members"].frame)
    (batch,) = [f for f in result.files if f.channel == "ecommerce_orders"]
    assert batch.file == "sql/shop.orders/batch-000001" and batch.status == "ingested"


def test_incremental_reads_only_rows_past_the_watermark(pg, engine, sample, tmp_path, monkeypatch):
    """Three runs: the rows up to a cut-off; then the rest (only those are read: the rows at the watermark
    are fetched again and skipped); then nothing new. The batches together equal the file ingest."""
    file_paths, files, raw = sample
    monkeypatch.setenv(URL_VAR, pg.url)
    rows = raw["crm_members"].frame
    wm = rows["更新时间"]
    cut = wm.sort_values().iloc[int(len(wm) * 0.6)]
    first, rest = rows[wm <= cut], rows[wm > cut]
    load_table(engine, "crm_inc", first)
    m = {"crm_members": sql_mapping(files["crm_members"], table="crm_inc", incremental="更新时间", chunksize=300)}
    paths = fresh_paths(tmp_path)

    r1 = ingest_all(paths, mappings=m, progress=False, log=None)
    assert [(f.file, f.status, f.read) for f in r1.files] == [("sql/crm_inc/batch-000001", "ingested", len(first))]
    entry = load_ledger(paths)["sql/crm_inc/batch-000001"]["crm_members"]["sql"]
    assert entry["watermark"] == {"type": "str", "value": cut}
    assert len(entry["boundary"]) == (first["更新时间"] == cut).sum()

    load_table(engine, "crm_inc", rest, replace=False)
    r2 = ingest_all(paths, mappings=m, progress=False, log=None)
    new = [f for f in r2.files if f.status == "ingested"]
    assert [(f.file, f.read) for f in new] == [("sql/crm_inc/batch-000002", len(rest))]
    sql2 = load_ledger(paths)["sql/crm_inc/batch-000002"]["crm_members"]["sql"]
    ties = int((first["更新时间"] == cut).sum())
    assert (sql2["fetched"], sql2["reread"]) == (len(rest) + ties, ties)
    assert sql2["watermark"]["value"] == wm.max()

    r3 = ingest_all(paths, mappings=m, progress=False, log=None)
    assert {f.status for f in r3.files} == {"unchanged"} and len(r3.files) == 2
    pd.testing.assert_frame_equal(comparable(load_ingested("crm_members", paths)),
                                  comparable(load_ingested("crm_members", file_paths)))
    assert quarantine_of(paths, "crm_members") == quarantine_of(file_paths, "crm_members",
                                                                  raw["crm_members"].bad_rows["_source_row"])
    # force: the table is read whole again, one batch replaces the two
    r4 = ingest_all(paths, mappings=m, progress=False, log=None, force=True)
    assert [(f.file, f.read) for f in r4.files] == [("sql/crm_inc/batch-000001", len(rows))]
    assert len(load_ingested("crm_members", paths)) == len(load_ingested("crm_members", file_paths))


TINY = {"channel": "tiny", "role": "profile",
        "fields": {"member_id": {"column": "member", "type": "identifier", "required": True},
                   "email": {"column": "email", "type": "email", "pii": "direct"},
                   "updated_at": {"column": "updated_at", "type": "timestamp"}}}


def tiny(url: str, **source) -> dict[str, ChannelMapping]:
    return {"tiny": ChannelMapping.from_dict({**TINY, "source": {"format": "sql", "url": url, **source}})}


def test_ties_at_the_watermark_are_read_and_rows_without_one_are_reported(pg, engine, tmp_path):
    """A row committed later with the same watermark as the last run's newest rows is read (>= plus the
    fingerprints on record); one with an older watermark is not (documented); a row without a watermark
    is reported, naming the channel and column. Typed columns (timestamptz) arrive as ISO text."""
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS tiny"))
        conn.execute(sa.text("CREATE TABLE tiny (id SERIAL PRIMARY KEY, member TEXT, email TEXT, "
                             "updated_at TIMESTAMPTZ)"))
        conn.execute(sa.text("INSERT INTO tiny (member, email, updated_at) VALUES "
                             "('m1', 'a@x.cn', '2024-01-01 10:00+08'), ('m2', 'b@x.cn', '2024-01-01 10:00+08'), "
                             "('m0', 'c@x.cn', '2023-12-31 09:00+08')"))
    paths = fresh_paths(tmp_path)
    m = tiny(pg.url, table="tiny", incremental="updated_at")
    r1 = ingest_all(paths, mappings=m, progress=False, log=None)
    assert [f.read for f in r1.files] == [3]
    assert sorted(load_ingested("tiny", paths)["updated_at"]) == ["2023-12-31 01:00:00+00:00"] + \
        ["2024-01-01 02:00:00+00:00"] * 2
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO tiny (member, email, updated_at) VALUES "
                             "('m3', 'd@x.cn', '2024-01-01 10:00+08'), ('late', 'e@x.cn', '2023-06-01 00:00+08'), "
                             "('m4', NULL, NULL)"))
    with pytest.raises(MappingError, match=r"Channel 'tiny' \(table 'tiny' at postgresql\+psycopg://workbench:\*\*\*@"
                                           r".*1 row\(s\) have no value in the incremental column 'updated_at'"):
        ingest_all(paths, mappings=m, progress=False, log=None)
    ingested = load_ingested("tiny", paths)
    assert sorted(ingested["member_id"]) == ["m0", "m1", "m2", "m3"]  # the tie is in; 'late' and 'm4' are not
    batch2 = load_ledger(paths)["sql/tiny/batch-000002"]["tiny"]
    assert (batch2["read"], batch2["sql"]["fetched"], batch2["sql"]["reread"]) == (1, 3, 2)


def errors_of(paths, mappings) -> str:
    with pytest.raises(MappingError) as info:
        ingest_all(paths, mappings=mappings, progress=False, log=None)
    exc = info.value
    assert exc.__cause__ is None and (exc.__context__ is None or exc.__suppress_context__), \
        "a clear message, not a chained driver traceback"
    return str(exc)


def test_wrong_url_unreachable_server_and_missing_table_or_column_are_clear_errors(pg, engine, tmp_path,
                                                                                   monkeypatch):
    paths = fresh_paths(tmp_path)
    closed = pg.url.replace(f":{pg.port}/", ":1/")  # nothing listens on port 1
    msg = errors_of(paths, tiny(closed, table="tiny"))
    assert "Channel 'tiny' (table 'tiny' at postgresql+psycopg://workbench:***@127.0.0.1:1/postgres)" in msg
    assert "cannot be read (OperationalError" in msg and "Check the url" in msg and pg.password not in msg

    wrong = pg.url.replace(pg.password, "not-" + pg.password[::-1])
    msg = errors_of(paths, tiny(wrong, table="tiny"))
    assert "password authentication failed" in msg and pg.password[::-1] not in msg and pg.password not in msg

    msg = errors_of(paths, tiny("mysqll://u:secret@host/db", table="tiny"))
    assert "Channel 'tiny'" in msg and "dialect+driver://" in msg and "secret" not in msg

    msg = errors_of(paths, tiny(pg.url, table="no_such_table"))
    assert "Channel 'tiny' (table 'no_such_table' at postgresql+psycopg://workbench:***@" in msg
    assert "the table does not exist. Tables there: [" in msg and "'tiny'" in msg

    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS no_email"))
        conn.execute(sa.text("CREATE TABLE no_email (member TEXT, updated_at TEXT)"))
    msg = errors_of(paths, tiny(pg.url, table="no_email"))
    assert ("missing column(s) ['email'] required by the 'tiny' mapping (fields ['email']). "
            "Columns there: ['member', 'updated_at']") in msg

    msg = errors_of(paths, tiny(pg.url, query="SELECT member, email, updated_at FROM no_email_at_all"))
    assert "Channel 'tiny' (the query at postgresql+psycopg://workbench:***@" in msg and "no_email_at_all" in msg

    monkeypatch.delenv(URL_VAR, raising=False)
    msg = errors_of(paths, tiny(URL_VAR, table="tiny"))
    assert f"names the environment variable '{URL_VAR}', which is not set" in msg
    assert not list(paths.ingested.glob("tiny/*.parquet")), "a failed read leaves no half-written batch"


def test_password_never_lands_in_anything_written(pg, engine, tmp_path, capsys):
    """A literal URL with the password in the mapping: the recorded mappings, ledger, metrics, quarantine,
    ingested tables and printed log all hold the masked URL only; a query source reads the same way."""
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS leak"))
        conn.execute(sa.text("CREATE TABLE leak (member TEXT, email TEXT, updated_at TEXT)"))
        conn.execute(sa.text("INSERT INTO leak VALUES ('m1', 'a@x.cn', '2024-01-01'), (NULL, 'b@x.cn', '2024-01-02')"))
    paths = fresh_paths(tmp_path)
    m = tiny(pg.url, query="SELECT member, email, updated_at FROM leak WHERE email LIKE '%@x.cn'",
             incremental="updated_at")
    result = ingest_all(paths, mappings=m, progress=False)
    assert (result.totals()["kept"], result.totals()["quarantined"]) == (1, 1)
    assert "required value missing (column 'member')" in load_quarantine("tiny", paths)["reason"].iloc[0]
    written = [p for p in paths.data.rglob("*") if p.is_file()]
    assert len(written) >= 5
    for p in written:
        assert pg.password.encode() not in p.read_bytes(), p
    recorded = json.loads((paths.interim / "settings" / "mappings.json").read_text(encoding="utf-8"))
    assert recorded["tiny"]["source"]["url"] == pg.url.replace(pg.password, "***")
    assert pg.password not in capsys.readouterr().out
    assert pg.password not in m["tiny"].to_yaml() and pg.password not in repr(m["tiny"].to_dict())


def test_forget_on_a_database_channel_removes_the_rows_and_keeps_the_counts_honest(pg, engine, sample, tmp_path,
                                                                                 monkeypatch):
    """``workbench forget`` on channels read from PostgreSQL: the person's rows leave the ingested
    batches, no other row is renumbered (the table still holds them), the ledger moves the removed
    rows to ``suppressed`` so read = kept + quarantined + suppressed + filtered, and a forced re-read
    of the unchanged tables gives exactly the erased batches and counts."""
    from workbench.clean import clean_all, load_cleaned
    from workbench.identity import run_identity
    from workbench.identity.settings import IdentitySettings
    from workbench.privacy.erasure import forget

    _file_paths, files, raw = sample
    monkeypatch.setenv(URL_VAR, pg.url)
    load_table(engine, "erase_members", raw["crm_members"].frame)
    load_table(engine, "erase_orders", raw["ecommerce_orders"].frame)
    mappings = {"crm_members": sql_mapping(files["crm_members"], table="erase_members", chunksize=500),
                "ecommerce_orders": sql_mapping(files["ecommerce_orders"], table="erase_orders", chunksize=500)}
    paths = fresh_paths(tmp_path)
    ingest_all(paths, mappings=mappings, progress=False, log=None, workers=1)
    clean_all(paths, progress=False, workers=1)
    s = IdentitySettings.from_yaml().to_dict()
    s["sources"] = {ch: s["sources"][ch] for ch in CHANNELS}
    registry = run_identity(paths, settings=IdentitySettings.from_dict(s), evaluate=False).records
    # a person with a phone of their own and records in both channels
    crm = load_cleaned("crm_members", paths)
    owners = crm.dropna(subset=["phone"]).merge(registry[["record_id", "oneid"]], on="record_id")
    one = owners.groupby("phone")["oneid"].nunique()
    orders_of = registry.loc[registry["record_id"].astype(str).str.startswith("ecommerce_orders:"), "oneid"]
    candidates = owners[owners["phone"].isin(one[one == 1].index) & owners["oneid"].isin(set(orders_of))]
    person = candidates.sort_values("record_id").iloc[0]
    batches = sorted(load_ledger(paths))
    before = {ch: load_ingested(ch, paths) for ch in CHANNELS}
    ledger_before = load_ledger(paths)

    report = forget(paths, phone=person["phone"], log=None)

    ledger = load_ledger(paths)
    assert sorted(ledger) == batches   # the same batches, none added or dropped
    removed = {}
    for ch in CHANNELS:
        after = load_ingested(ch, paths)
        gone = ~before[ch]["_source_row"].isin(after["_source_row"])
        removed[ch] = int(gone.sum())
        assert removed[ch] >= 1, f"{ch}: none of the person's rows was removed"
        # the other rows are untouched: same values, same _source_row (no renumbering)
        pd.testing.assert_frame_equal(after.reset_index(drop=True),
                                      before[ch][~gone].reset_index(drop=True))
        (rel,) = [r for r, by in ledger.items() if ch in by]
        e, e0 = ledger[rel][ch], ledger_before[rel][ch]
        assert (e["read"], e["sha256"]) == (e0["read"], e0["sha256"])
        assert e["kept"] == len(after) == e0["kept"] - removed[ch]
        assert e["suppressed"] - e0["suppressed"] == removed[ch] + (e0["quarantined"] - e["quarantined"])
        assert e["read"] == e["kept"] + e["quarantined"] + e["suppressed"] + e["filtered"], e
    assert person["phone"] not in set(load_cleaned("crm_members", paths)["phone"].dropna())
    assert set(report.oneids) == {person["oneid"]}
    # the tables still hold the rows: a forced re-read suppresses them and numbers the rest as before
    erased = {ch: load_ingested(ch, paths) for ch in CHANNELS}
    ingest_all(paths, mappings=mappings, progress=False, log=None, workers=1, force=True)
    reread = load_ledger(paths)
    for ch in CHANNELS:
        pd.testing.assert_frame_equal(load_ingested(ch, paths).reset_index(drop=True),
                                      erased[ch].reset_index(drop=True))
        (rel,) = [r for r, by in reread.items() if ch in by]
        counts = ("read", "kept", "quarantined", "suppressed", "filtered")
        assert {k: reread[rel][ch][k] for k in counts} == {k: ledger[rel][ch][k] for k in counts}, ch
