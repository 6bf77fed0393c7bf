"""Erasure (forget), the suppression hook for ingest, access requests and the consent ledger.

The erasure runs once per module on a private copy of the resolved sample (the session
fixtures stay untouched); the other tests read that copy, or the original, or build tiny
files of their own.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from workbench.config import get_paths
from workbench.ingest import _canonical, read_source
from workbench.mapping import ChannelMapping, load_mappings
from workbench.normalise import normalise_phones
from workbench.privacy.access import access_request
from workbench.privacy.consent import PURPOSES, consent_ledger, reconcile_consents, write_consent_ledger
from workbench.privacy.erasure import (AUDIT_FILE, SUPPRESSION_FILE, _rewrite_csv, _rewrite_raw, _verify_raw, forget,
                                       identifier_hash, privacy_dir, suppress, suppressed_records, suppressed_rows)
from workbench.privacy.keys import KEY_ENV
from workbench.privacy.scan import scan_paths, scan_text_for_pii
from workbench.truth import truth_records

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
BOM = b"\xef\xbb\xbf"
PHONE_COLUMNS = ("phone", "login_id", "user_id")  # cleaned columns that may hold a phone


def _digests(*roots: Path) -> dict[str, str]:
    out = {}
    for root in roots:
        for f in sorted(p for p in root.rglob("*") if p.is_file()):
            out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def _pick_person(paths) -> pd.Series:
    """First person (by id) seen in >= 3 channels incl. the BOM CSV and the GBK CSV, with a phone,
    and no device or household shared with someone else."""
    t = truth_records(paths)
    t["channel"] = t["record_id"].str.split(":", n=1).str[0]
    chans = t.groupby("person_id")["channel"].agg(set)
    ok = chans[chans.map(lambda s: len(s) >= 3 and {"crm_members", "ecommerce_orders"} <= s)].index
    persons = pd.read_parquet(paths.truth / "persons.parquet")
    persons = persons[persons["person_id"].isin(ok) & persons["phone"].notna() & ~persons["shares_family_device"]
                      & persons["household_partner"].isna()]
    return persons.sort_values("person_id").iloc[0]


def _messy(e164: str) -> str:
    nat = e164[3:] if e164.startswith("+86") else e164
    return f"{nat[:3]}-{nat[3:7]}-{nat[7:]}" if e164.startswith("+86") else e164


def _oneids_with_phone(paths, e164: str) -> set[str]:
    """OneIDs whose cleaned records carry the phone (any phone-like column), computed independently."""
    reg = pd.read_parquet(paths.processed / "oneid_records.parquet")
    recs = set()
    for f in sorted(paths.cleaned.glob("*.parquet")):
        df = pd.read_parquet(f)
        for col in PHONE_COLUMNS:
            if col not in df.columns:
                continue
            ph = normalise_phones(df[col].astype("string"))["e164"]
            flag = df.get(f"{col}_placeholder", pd.Series(False, index=df.index)).fillna(False).astype(bool)
            recs |= set(df.loc[(ph == e164).fillna(False) & ~flag, "record_id"])
    return set(reg.loc[reg["record_id"].isin(recs), "oneid"])


def _line_walk(old: list[bytes], new: list[bytes]) -> tuple[list[int], list[bytes]]:
    """Indexes of ``old`` skipped to get ``new`` as an in-order subsequence, and the kept lines."""
    skipped, kept, j = [], [], 0
    for i, line in enumerate(old):
        if j < len(new) and line == new[j]:
            kept.append(line)
            j += 1
        else:
            skipped.append(i)
    assert j == len(new), "the new file is not the old one with rows taken out"
    return skipped, kept


def _removed_rows(old, new, m: ChannelMapping, old_path: Path, new_path: Path) -> set[int]:
    """Original row numbers of the rows taken out of one raw file (checked byte by byte where lines are rows)."""
    if m.source.format in ("csv", "jsonl") and not m.source.newlines_in_values:
        o, n = old_path.read_bytes().splitlines(keepends=True), new_path.read_bytes().splitlines(keepends=True)
        head = 1 if m.source.format == "csv" else 0
        assert o[:head] == n[:head]  # header (and BOM) byte-identical
        skipped, kept = _line_walk(o[head:], n[head:])
        # a checksum of every other row: byte-identical and in order
        assert hashlib.sha256(b"".join(kept)).hexdigest() == hashlib.sha256(b"".join(n[head:])).hexdigest()
        return {i + 1 for i in skipped}
    ot = [tuple(r) for r in old.frame.drop(columns="_source_row").astype(str).itertuples(index=False)]
    nt = [tuple(r) for r in new.frame.drop(columns="_source_row").astype(str).itertuples(index=False)]
    skipped = {int(old.frame["_source_row"].iloc[i]) for i in _walk_tuples(ot, nt)}
    gone = set(old.bad_rows["record"]) - set(new.bad_rows["record"])
    return skipped | set(old.bad_rows.loc[old.bad_rows["record"].isin(gone), "_source_row"].astype(int))


def _walk_tuples(old: list[tuple], new: list[tuple]) -> list[int]:
    skipped, j = [], 0
    for i, row in enumerate(old):
        if j < len(new) and row == new[j]:
            j += 1
        else:
            skipped.append(i)
    assert j == len(new)
    return skipped


# ----------------------------------------------------------------------------- the erasure
@pytest.fixture(scope="module")
def erased(resolved_paths, tmp_path_factory):
    """A copy of the resolved sample (plus snapshots, scores, consents, an audience export and an
    access-request file), a dry run, then ``forget`` of one person by a messy spelling of their phone."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(KEY_ENV, KEY.hex())
        root = tmp_path_factory.mktemp("erasure")
        shutil.copytree(resolved_paths.data, root / "data")
        paths = get_paths(root / "data", root / "reports").ensure()
        person = _pick_person(paths)
        e164 = person["phone"]
        oneids = _oneids_with_phone(paths, e164)
        assert oneids, "the chosen person's phone is on no cleaned record"
        registry = pd.read_parquet(paths.processed / "oneid_records.parquet")
        others = sorted(set(registry["oneid"]) - oneids)[:40]
        members = sorted(oneids) + others
        seg = pd.DataFrame({"segment": ["Champions"] * len(members)}, index=pd.Index(members, name="oneid"))
        (paths.processed / "segments").mkdir(parents=True, exist_ok=True)
        seg.to_parquet(paths.processed / "segments" / "rfm_2026-11-01.parquet")
        pd.DataFrame({"oneid": members, "churn_risk": np.linspace(0, 1, len(members))}).to_parquet(
            paths.processed / "scores.parquet", index=False)
        write_consent_ledger(paths)
        aud = paths.reports / "20261101T000000Z" / "audiences"
        aud.mkdir(parents=True)
        pd.DataFrame({"oneid": members, "email_sha256": "e" * 64, "phone_sha256": "p" * 64}).to_csv(
            aud / "champions.csv", index=False)
        earlier_access = privacy_dir(paths) / "access" / "earlier-request.json"  # as access_request writes them
        earlier_access.parent.mkdir(parents=True)
        earlier_access.write_text(json.dumps({"oneids": sorted(oneids), "records": {}}), encoding="utf-8")
        unrelated_access = earlier_access.with_name("someone-else.json")
        unrelated_access.write_text(json.dumps({"oneids": others[:1], "records": {}}), encoding="utf-8")
        before = _digests(paths.data, paths.reports)
        dry_lines: list[str] = []
        dry = forget(paths, phone=_messy(e164), dry_run=True, log=dry_lines.append)
        after_dry = _digests(paths.data, paths.reports)
        lines: list[str] = []
        report = forget(paths, phone=_messy(e164), log=lines.append)
        mappings = load_mappings()
        removed = {}  # original row numbers taken out of each raw file, checked byte by byte where lines are rows
        for m in mappings.values():
            for f in m.files(resolved_paths.raw):
                rel = f.relative_to(resolved_paths.raw).as_posix()
                old, new = read_source(f, m), read_source(paths.raw / rel, m)
                removed[rel] = (m, old, new, _removed_rows(old, new, m, f, paths.raw / rel))
        ids = registry["record_id"].str.rsplit(":", n=1)
        rows = pd.DataFrame({"file": ids.str[0].str.split(":", n=1).str[1], "row": ids.str[1].astype(int),
                             "mine": registry["oneid"].isin(oneids)})
        yield SimpleNamespace(removed=removed, unrelated_access=unrelated_access, rows=rows, paths=paths,
                              orig=resolved_paths, person=person, e164=e164, oneids=oneids, registry=registry,
                              report=report, dry=dry, dry_lines=dry_lines, lines=lines, before=before,
                              after_dry=after_dry, earlier_access=earlier_access, audience=aud)


def test_dry_run_changes_nothing_and_reports_the_same_counts(erased):
    assert erased.after_dry == erased.before
    assert erased.dry.dry_run and erased.dry.audit is None
    assert erased.dry.rows_removed == erased.report.rows_removed
    assert erased.dry.oneids == erased.report.oneids
    assert any("would be removed" in line for line in erased.dry_lines)


def test_forget_finds_the_oneids_of_the_phone(erased):
    r = erased.report
    assert set(r.oneids) == erased.oneids
    old = erased.registry
    assert set(r.records) == set(old.loc[old["oneid"].isin(erased.oneids), "record_id"])
    assert r.total_rows > len(r.records)  # raw, ingested, cleaned, registry, links, truth...
    assert r.suppressed.get("phone", 0) >= 1
    assert any(line.startswith("  raw/") and "removed" in line for line in erased.lines)  # counts printed


def test_raw_files_lose_exactly_the_persons_rows(erased):
    mappings, rows = load_mappings(), erased.rows  # file, row and owner of every record before the erasure
    touched = 0
    assert len(erased.removed) == sum(len(m.files(erased.orig.raw)) for m in mappings.values())
    for rel, (m, old, new, removed) in erased.removed.items():
        f, new_path = erased.orig.raw / rel, erased.paths.raw / rel
        n = erased.report.rows_removed.get(f"raw/{rel}", 0)
        assert new.total == old.total - n, rel
        assert len(removed) == n, rel
        here = rows[rows["file"] == rel]
        assert set(here.loc[here["mine"], "row"]) <= removed, rel        # every record of the person
        assert not (set(here.loc[~here["mine"], "row"]) & removed), rel  # no record of anyone else
        if n == 0:
            assert new_path.read_bytes() == f.read_bytes()      # untouched files are untouched
        touched += n > 0
    assert touched >= 3
    crm = erased.paths.raw / "crm_members" / "crm_members_export.csv"
    assert crm.read_bytes().startswith(BOM)                          # UTF-8 with BOM stays so
    gbk = erased.paths.raw / "ecommerce_orders" / "orders_tmall_jd.csv"
    old_gbk = (erased.orig.raw / "ecommerce_orders" / "orders_tmall_jd.csv").read_bytes()
    assert gbk.read_bytes().split(b"\n", 1)[0] == old_gbk.split(b"\n", 1)[0]
    gbk.read_bytes().decode("gbk")                                  # still GBK
    with pytest.raises(UnicodeDecodeError):
        gbk.read_bytes().decode("utf-8")


def test_no_layer_keeps_the_person(erased):
    p, r = erased.paths, erased.report
    person = erased.person
    old_reg = erased.registry
    member_ids = set()
    for f in sorted(erased.orig.cleaned.glob("*.parquet")):
        df = pd.read_parquet(f)
        if "member_id" in df.columns:
            mine = df["record_id"].isin(r.records)
            member_ids |= set(df.loc[mine, "member_id"].dropna())
    for f in sorted(p.cleaned.glob("*.parquet")):
        new, old = pd.read_parquet(f), pd.read_parquet(erased.orig.cleaned / f.name)
        assert len(new) == len(old) - r.rows_removed.get(f"interim/cleaned/{f.name}", 0)
        ids = ["record_id", "_source_row"]  # renumbered; everything else of everyone else is as it was
        pd.testing.assert_frame_equal(new.drop(columns=ids),
                                      old[~old["record_id"].isin(r.records)].drop(columns=ids).reset_index(drop=True))
        for col in PHONE_COLUMNS:
            if col in new.columns:
                assert not (normalise_phones(new[col].astype("string"))["e164"] == erased.e164).any(), f.name
        if "email" in new.columns and isinstance(person["email"], str):
            assert not (new["email"] == person["email"]).any(), f.name
        if "member_id" in new.columns and member_ids:
            assert not new["member_id"].isin(member_ids).any(), f.name
    for f in sorted(p.ingested.rglob("*.parquet")):
        df = pd.read_parquet(f)
        if "member_id" in df.columns and member_ids:
            assert not df["member_id"].astype("string").str.strip().isin(member_ids).any(), f.name
    for f in sorted(p.processed.rglob("*.parquet")):
        df = pd.read_parquet(f)
        df = df.reset_index() if df.index.name == "oneid" else df
        for col in [c for c in df.columns if c == "oneid" or c.endswith("_oneid")]:
            assert not df[col].isin(erased.oneids).any(), f
    links_old = pd.read_parquet(erased.orig.processed / "identity_links.parquet")
    links_new = pd.read_parquet(p.processed / "identity_links.parquet")
    gone = links_old["record_a"].isin(r.records) | links_old["record_b"].isin(r.records)
    assert len(links_new) == len(links_old) - int(gone.sum())
    # the registry still lines up with the cleaned tables and with the (renumbered) ground truth
    from workbench.transactions import load_linked, load_registry

    reg = load_registry(p)
    assert len(reg) == len(old_reg) - len(r.records)
    for channel in load_mappings():
        load_linked(channel, [], paths=p, registry=reg)
    t = truth_records(p)
    joined = reg.merge(t, on="record_id", how="left")
    assert joined["person_id"].notna().all()
    if r.rows_removed.get("raw/_truth/persons.parquet"):
        assert person["person_id"] not in set(pd.read_parquet(p.truth / "persons.parquet")["person_id"])
    # the audience export lost the person's rows and kept everyone else's bytes
    new_csv = (erased.audience / "champions.csv").read_text(encoding="utf-8").splitlines()
    assert not any(line.split(",")[0] in erased.oneids for line in new_csv[1:])
    assert len(new_csv) == 1 + 40
    # consents and the earlier access-request file
    assert not pd.read_parquet(p.processed / "consents.parquet")["oneid"].isin(erased.oneids).any()
    assert not erased.earlier_access.exists() and erased.unrelated_access.exists()
    assert r.deleted_files == [erased.earlier_access.relative_to(p.data).as_posix()]


def test_rerun_keeps_them_out_and_row_numbers_agree(erased):
    from workbench.ingest import ingest_all

    p = erased.paths
    res = ingest_all(p, progress=False, log=None)
    assert res.changed == []  # the ledger knows the rewritten files
    channels = ["crm_members", "pos_receipts", "service_tickets", "livestream_interactions"]
    before = {f: pd.read_parquet(f) for c in channels for f in sorted((p.ingested / c).glob("*.parquet"))}
    quarantine = pd.read_parquet(p.quarantine / "pos_receipts.parquet")
    ingest_all(p, progress=False, log=None, force=True, channels=channels, workers=1)
    for f, df in before.items():  # a forced re-read of the rewritten files numbers rows as the erasure did
        pd.testing.assert_frame_equal(pd.read_parquet(f), df)
    pd.testing.assert_frame_equal(pd.read_parquet(p.quarantine / "pos_receipts.parquet"), quarantine)


def test_suppression_hook_flags_the_persons_rows_in_an_old_backup(erased):
    """Ingest of the ORIGINAL raw files (a backup from before the erasure): the hook flags every row
    that the erasure took out of each file, and no other row."""
    flagged_total = 0
    for rel, (m, old, _new, removed) in erased.removed.items():
        canon = _canonical(old.frame, m, rel)
        flags = suppressed_rows(canon, m, erased.paths)
        assert isinstance(flags, np.ndarray) and flags.dtype == bool and len(flags) == len(canon)
        flagged = set(canon.loc[flags, "_source_row"].astype(int))
        bad = old.bad_rows
        if len(bad):
            bflags = suppressed_records(bad["record"], m, erased.paths)
            flagged |= set(bad.loc[bflags, "_source_row"].astype(int))
        assert flagged == removed, rel
        flagged_total += len(flagged)
    assert flagged_total == sum(n for k, n in erased.report.rows_removed.items()
                                if k.startswith("raw/") and not k.startswith("raw/_truth"))


def test_audit_log_and_suppression_list_hold_no_raw_values(erased):
    p, person = erased.paths, erased.person
    log = privacy_dir(p) / AUDIT_FILE
    assert erased.report.audit == log
    entries = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert len(entries) == 1  # the dry run wrote nothing
    e = entries[0]
    assert e["request"] == "phone" and set(e["oneids"]) == erased.oneids
    assert e["identifier_hash"] == identifier_hash([erased.e164], kind="phone", key=KEY).iloc[0]
    assert e["rows_removed"] == erased.report.rows_removed
    assert pd.Timestamp(e["time_utc"]).tzinfo is not None
    nat = erased.e164[3:]
    known = [erased.e164, nat, _messy(erased.e164)] + [v for v in (person["email"], person["member_id"])
                                                       if isinstance(v, str)]
    text = log.read_text(encoding="utf-8")
    assert scan_text_for_pii(text, known_values=known) == []
    assert nat not in text
    sup = pd.read_parquet(privacy_dir(p) / SUPPRESSION_FILE)
    assert set(sup.columns) >= {"kind", "hash", "key_fingerprint"} and sup["hash"].str.fullmatch("[0-9a-f]{64}").all()
    assert scan_paths([privacy_dir(p) / SUPPRESSION_FILE, log], known_values=known).empty


# ----------------------------------------------------------------------------- access requests
def test_access_request_holds_every_record_of_the_person(resolved_paths, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY.hex())
    person = _pick_person(resolved_paths)
    before = _digests(resolved_paths.data)
    out = access_request(resolved_paths, phone=_messy(person["phone"]), out=tmp_path / "a.json")
    assert _digests(resolved_paths.data) == before  # an access request changes nothing
    doc = json.loads(out.read_text(encoding="utf-8"))
    reg = pd.read_parquet(resolved_paths.processed / "oneid_records.parquet")
    oneids = set(doc["oneids"])
    assert oneids == _oneids_with_phone(resolved_paths, person["phone"])
    held = {r["record_id"] for rows in doc["records"].values() for r in rows}
    assert held == set(reg.loc[reg["oneid"].isin(oneids), "record_id"])
    truth = truth_records(resolved_paths)
    of_person = set(truth.loc[truth["person_id"] == person["person_id"], "record_id"])
    in_oneids = of_person & set(reg.loc[reg["oneid"].isin(oneids), "record_id"])
    assert in_oneids and in_oneids <= held
    assert len(in_oneids) >= 0.9 * len(of_person)  # OneID may split a person, but not much
    assert all(r["oneid"] in oneids for rows in doc["records"].values() for r in rows)
    assert len(doc["records"]) >= 3
    crm = doc["records"]["crm_members"][0]
    assert crm["phone"] == person["phone"] and isinstance(crm["updated_at"], str)
    assert len(doc["consents"]) == len(PURPOSES) * len(oneids)
    assert person["phone"] in doc["identifiers"]["phone"]
    assert all(a in held and b in held for a, b in ((x["record_a"], x["record_b"]) for x in doc["identity_links"]))
    assert doc["request"]["identifier_hash"] == identifier_hash([person["phone"]], kind="phone", key=KEY).iloc[0]
    # the same person by OneID
    one = sorted(oneids)[0]
    by_id = json.loads(access_request(resolved_paths, oneid=one, out=tmp_path / "b.json").read_text())
    assert by_id["oneids"] == [one]
    assert {r["record_id"] for rows in by_id["records"].values() for r in rows} == \
        set(reg.loc[reg["oneid"] == one, "record_id"])


def test_requests_are_validated(resolved_paths, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY.hex())
    with pytest.raises(ValueError, match="Exactly one"):
        forget(resolved_paths, phone="13800138000", email="a@b.cn", dry_run=True, log=None)
    with pytest.raises(ValueError, match="'phone' parameter"):
        forget(resolved_paths, phone="12", dry_run=True, log=None)
    with pytest.raises(KeyError, match="Unknown OneID"):
        forget(resolved_paths, oneid="OID-nobody", dry_run=True, log=None)
    nobody = forget(resolved_paths, email="nobody.here@example.org", dry_run=True, log=None)
    assert nobody.oneids == [] and nobody.rows_removed == {}


# ----------------------------------------------------------------------------- consent ledger
def test_consent_ledger_agrees_with_the_profile(resolved_paths, profile_360):
    ledger = consent_ledger(resolved_paths)
    reg = pd.read_parquet(resolved_paths.processed / "oneid_records.parquet")
    assert len(ledger) == len(PURPOSES) * reg["oneid"].nunique()
    assert not ledger.duplicated(["oneid", "purpose"]).any()
    assert set(ledger["status"]) <= {"granted", "revoked", "unknown"}
    email = ledger[ledger["purpose"] == "email"].set_index("oneid")["status"]
    expected = profile_360.set_index("oneid")["consent_email"].map({True: "granted", False: "revoked"})
    expected = expected.astype("string").fillna("unknown")
    assert (email.reindex(expected.index) == expected).all()
    decided = ledger[ledger["status"] != "unknown"]
    assert decided["source"].notna().all() and decided["source_record_id"].notna().all()
    assert (decided.loc[decided["status"] == "granted", "granted_at"].notna()).all()
    assert (decided.loc[decided["status"] == "revoked", "revoked_at"].notna()).all()
    # latest wins, also across sources: an unsubscribe after the CRM consent revokes e-mail
    unsub = ledger[(ledger["purpose"] == "email") & (ledger["event"] == "email_unsubscribe")]
    assert len(unsub) and (unsub["status"] == "revoked").all()
    assert consent_ledger(resolved_paths, as_of="2025-01-01")["status"].eq("unknown").mean() > \
        ledger["status"].eq("unknown").mean()


def test_reconcile_latest_event_wins_and_ties_go_to_the_crm():
    t = pd.to_datetime(["2026-01-01", "2026-02-01", "2026-02-01", "2026-03-01"], utc=True)
    ev = pd.DataFrame({"oneid": ["A", "A", "B", "B"], "purpose": ["wechat"] * 4,
                       "granted": pd.array([False, True, True, False], dtype="boolean"), "at": t[[0, 1, 1, 1]],
                       "source": ["crm_members", "wechat_followers", "crm_members", "wechat_followers"],
                       "source_record_id": ["c:1", "w:1", "c:2", "w:2"], "event": ["crm_record", "wechat_subscribe",
                                                                                 "crm_record", "wechat_unsubscribe"],
                       "priority": [0, 2, 0, 1]})
    out = reconcile_consents(ev).set_index("oneid")
    assert out.loc["A", "status"] == "granted" and out.loc["A", "source"] == "wechat_followers"
    assert out.loc["A", "revoked_at"] == t[0] and out.loc["A", "granted_at"] == t[1]
    assert out.loc["B", "status"] == "granted" and out.loc["B", "source_record_id"] == "c:2"  # tie: CRM wins
    shuffled = reconcile_consents(ev.sample(frac=1, random_state=3)).set_index("oneid")
    pd.testing.assert_frame_equal(shuffled, out)
    with pytest.raises(KeyError, match="not in the events table"):
        reconcile_consents(ev.drop(columns="at"))


# ----------------------------------------------------------------------------- raw rewrites, unit level
def _mapping(fmt: str, encoding: str = "utf-8", *, newlines: bool = False, pattern: str = "x/*") -> ChannelMapping:
    return ChannelMapping.from_dict({"channel": "demo", "source": {"pattern": pattern, "format": fmt,
                                                                   "encoding": encoding,
                                                                   "newlines_in_values": newlines},
                                     "fields": {"a": {"column": "A"}, "b": {"column": "B"}}})


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gbk", "utf-16"])
def test_csv_rewrite_keeps_bytes_encoding_and_line_ends(tmp_path, encoding):
    body = 'A,B\r\n张,"多\r\n行"\r\n2,3,4\r\n\r\n5,六\r\n7,8'
    data = body.encode("utf-8-sig" if encoding == "utf-8-sig" else encoding)
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    src.write_bytes(data)
    m = _mapping("csv", encoding, newlines=True)
    assert read_source(src, m).total == 4  # two rows, an unparseable one, and the last one without a line end
    _rewrite_raw(src, dst, m, np.array([1, 4]), "in.csv")  # checked by reading it back
    expected = 'A,B\r\n2,3,4\r\n\r\n5,六\r\n'.encode("utf-8-sig" if encoding == "utf-8-sig" else encoding)
    assert dst.read_bytes() == expected
    with pytest.raises(RuntimeError, match="does not read back"):  # a wrong rewrite is caught
        _rewrite_csv(src, dst, m, {3})
        _verify_raw(read_source(src, m), read_source(dst, m), np.array([2]), "in.csv")


def test_csv_rows_follow_the_csv_readers_rules(tmp_path):
    """A quote opens a field only at its start; a blank-looking line of spaces is a row."""
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    src.write_bytes(b'A,B\n1,5"6\n   \n7,"x\ny"\n8,"q""r"\n9,"p"z\n')
    m = _mapping("csv", newlines=True)
    _rewrite_raw(src, dst, m, np.array([1, 3, 5]), "in.csv")
    assert dst.read_bytes() == b'A,B\n   \n8,"q""r"\n'


def test_jsonl_parquet_and_excel_rewrites(tmp_path):
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_bytes(b'{"A":"1","B":"x"}\nnot json\n{"A":"2","B":"y"}\n{"A":"3","B":"z"}\n')
    _rewrite_raw(src, dst, _mapping("jsonl"), np.array([3]), "in.jsonl")
    assert dst.read_bytes() == b'{"A":"1","B":"x"}\nnot json\n{"A":"3","B":"z"}\n'
    df = pd.DataFrame({"A": ["1", "2", "3"], "B": ["x", None, "z"]})
    df.to_parquet(tmp_path / "in.parquet", index=False)
    _rewrite_raw(tmp_path / "in.parquet", tmp_path / "out.parquet", _mapping("parquet"), np.array([2]), "p")
    assert pd.read_parquet(tmp_path / "out.parquet")["A"].tolist() == ["1", "3"]
    df.to_excel(tmp_path / "in.xlsx", index=False)
    _rewrite_raw(tmp_path / "in.xlsx", tmp_path / "out.xlsx", _mapping("excel"), np.array([1, 3]), "x")
    assert pd.read_excel(tmp_path / "out.xlsx", dtype=str)["A"].tolist() == ["2"]


def test_suppression_needs_the_same_key(tmp_path):
    paths = get_paths(tmp_path / "data", tmp_path / "reports")
    m = load_mappings()["email_events"]
    rows = pd.DataFrame({"email": [" Zhang.Wei@QQ.com ", "li.na@163.com"], "campaign_id": ["c1", "c1"],
                         "event": ["sent", "sent"], "event_time": ["x", "y"]})
    assert not suppressed_rows(rows, m, paths, key=KEY).any()  # no list yet: nothing suppressed
    assert suppress(paths, {"email": ["zhang.wei@qq.com"]}, key=KEY) == 1
    assert suppressed_rows(rows, m, paths, key=KEY).tolist() == [True, False]
    with pytest.raises(ValueError, match="another pseudonymisation key"):
        suppressed_rows(rows, m, paths, key=OTHER_KEY)


def test_record_ids_of_rewritten_files_are_renumbered():
    from workbench.privacy.erasure import _renumber_ids

    ids = pd.Series(["crm:a/b.csv:1", "crm:a/b.csv:5", "pos:p.csv:3", None, "crm:a/b.csv:9", "web:a/b.csv.x:5"],
                    dtype="string")
    new, changed = _renumber_ids(ids, {"a/b.csv": np.array([2, 4]), "p.csv": np.array([1])})
    assert changed
    assert new.to_pylist() == ["crm:a/b.csv:1", "crm:a/b.csv:3", "pos:p.csv:2", None, "crm:a/b.csv:7",
                               "web:a/b.csv.x:5"]
    assert _renumber_ids(ids, {"a/b.csv": np.array([10])})[1] is False  # rows before the removed one stay
