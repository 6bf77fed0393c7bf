"""Erasure (forget), the suppression hook for ingest, access requests and the consent ledger.

The module builds its own small pipeline once (a 400-person sample through ingest, clean,
identity, the canonical layer and the customer 360, plus the tables later stages write:
the consent ledger, segments and a snapshot, two models' scores) and keeps it read-only;
each erasure works on a copy of it. The other tests read the pipeline, or build tiny files
of their own.
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
from workbench.ingest import _canonical, load_ledger, read_source
from workbench.mapping import ChannelMapping
from workbench.normalise import normalise_phones
from workbench.privacy.access import access_request
from workbench.privacy.consent import PURPOSES, consent_ledger, reconcile_consents, write_consent_ledger
from workbench.privacy.erasure import (AUDIT_FILE, SUPPRESSION_FILE, _renumber_ids, _rewrite_csv, _rewrite_raw,
                                       _verify_raw, forget, identifier_hash, privacy_dir, suppress,
                                       suppressed_records, suppressed_rows)
from workbench.privacy.keys import KEY_ENV
from workbench.privacy.scan import scan_paths, scan_text_for_pii
from workbench.runconfig import resolve_mappings, settings_dir
from workbench.truth import record_key

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
BOM = b"\xef\xbb\xbf"
PHONE_COLUMNS = ("phone", "login_id", "user_id")  # cleaned columns that may hold a phone
PERSONS, SEED = 400, 5


# ----------------------------------------------------------------------------- helpers
def _digests(*roots: Path) -> dict[str, str]:
    out = {}
    for root in roots:
        for f in sorted(p for p in root.rglob("*") if p.is_file()):
            out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def _truth(paths) -> pd.DataFrame:
    """Ground truth per raw row: ``record_key`` (file:row), the generating channel, ``person_id``."""
    t = pd.read_parquet(paths.truth / "records.parquet")
    t["record_key"] = t["source_file"].astype(str) + ":" + t["source_row"].astype(str)
    return t[["record_key", "channel", "person_id"]].astype({"channel": str})


def _readers(paths, mappings) -> dict[str, list[str]]:
    """raw file -> the channels that read it (a till file holds sales and returns: two mappings)."""
    out: dict[str, list[str]] = {}
    for c, m in mappings.items():
        for f in m.files(paths.raw):
            out.setdefault(f.relative_to(paths.raw).as_posix(), []).append(c)
    return out


def _till(paths, mappings) -> tuple[str, str, str]:
    """(file, sales channel, returns channel) of the file read by an orders and a returns mapping."""
    (rel, chans), = [(r, c) for r, c in _readers(paths, mappings).items() if len(c) > 1]
    sales, = [c for c in chans if mappings[c].role == "orders"]
    returns, = [c for c in chans if mappings[c].role == "returns"]
    return rel, sales, returns


def _pick_person(paths) -> pd.Series:
    """First person (by id) seen in >= 3 channels incl. the BOM CSV and the GBK CSV, with a phone,
    and no device or household shared with someone else."""
    t = _truth(paths)
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


def _identifier_values(paths, mappings) -> pd.DataFrame:
    """``value, oneid`` of every identifier-typed cleaned value that is not a placeholder."""
    reg = pd.read_parquet(paths.registry, columns=["record_id", "oneid"])
    parts = []
    for c, m in mappings.items():
        df = pd.read_parquet(paths.cleaned / f"{c}.parquet")
        for f in m.fields_of_type("identifier"):
            if f not in df.columns:
                continue
            flag = df.get(f"{f}_placeholder", pd.Series(False, index=df.index)).fillna(False).astype(bool)
            part = df.loc[df[f].notna() & ~flag, ["record_id", f]].rename(columns={f: "value"})
            parts.append(part.astype({"value": str}))
    return pd.concat(parts, ignore_index=True).merge(reg, on="record_id")[["value", "oneid"]]


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


def _raw_removals(orig, paths, mappings) -> dict[str, tuple]:
    """file -> (mapping, old read, new read, original rows removed), every raw file once."""
    out = {}
    for rel, chans in _readers(orig, mappings).items():
        m = mappings[chans[0]]
        f = orig.raw / rel
        old, new = read_source(f, m), read_source(paths.raw / rel, m)
        out[rel] = (m, old, new, _removed_rows(old, new, m, f, paths.raw / rel))
    return out


def _record_rows(registry: pd.DataFrame, oneids) -> pd.DataFrame:
    """file, row, channel and whether the record is the person's, for every record of the registry."""
    key = record_key(registry["record_id"]).str.rsplit(":", n=1)
    return pd.DataFrame({"file": key.str[0], "row": key.str[1].astype(int), "channel": registry["channel"],
                         "mine": registry["oneid"].isin(oneids)})


def _ledger_without_seconds(ledger: dict) -> dict:
    return {rel: {c: {k: v for k, v in e.items() if k != "seconds"} for c, e in by.items()}
            for rel, by in ledger.items()}


def _ingest_output(paths, channel: str, rel: str) -> Path:
    return paths.ingested / channel / (rel.replace("/", "__").rsplit(".", 1)[0] + ".parquet")


def _check_ledger(paths, mappings) -> dict:
    """Every entry of every file: the file's checksum, and its counts agree with the ingested rows."""
    ledger = load_ledger(paths)
    for rel, chans in _readers(paths, mappings).items():
        by = ledger[rel]
        assert sorted(by) == sorted(chans), rel  # one entry per mapping of the file
        digest = hashlib.sha256((paths.raw / rel).read_bytes()).hexdigest()
        total = read_source(paths.raw / rel, mappings[chans[0]]).total
        for c, e in by.items():
            assert e["sha256"] == digest, (rel, c)
            assert e["read"] == total == e["kept"] + e["quarantined"] + e["suppressed"] + e["filtered"], (rel, c, e)
            assert e["kept"] == len(pd.read_parquet(_ingest_output(paths, c, rel))), (rel, c)
            q = pd.read_parquet(paths.quarantine / f"{c}.parquet")
            assert e["quarantined"] == int(((q["stage"] == "ingest") & (q["_source_file"] == rel)).sum()), (rel, c)
    return ledger


def _nothing_left_is_suppressed(paths, mappings) -> None:
    """No remaining ingested row of anyone is on the suppression list (shared values are not on it)."""
    for c, m in mappings.items():
        for f in sorted((paths.ingested / c).glob("*.parquet")):
            df = pd.read_parquet(f)
            assert not suppressed_rows(df, m, paths).any(), f


# ----------------------------------------------------------------------------- the pipeline
@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """The module's own pipeline (read-only for the tests; erasures work on copies)."""
    from workbench.canonical import run_canonical
    from workbench.clean import clean_all
    from workbench.customer360 import run_customer_360
    from workbench.identity import run_identity
    from workbench.ingest import ingest_all
    from workbench.sample import make_sample

    root = tmp_path_factory.mktemp("privacy-pipeline")
    make_sample(PERSONS, seed=SEED, out=root / "data" / "raw")
    paths = get_paths(root / "data", root / "reports").ensure()
    ingest_all(paths, progress=False, log=None)
    clean_all(paths, progress=False)
    run_identity(paths)
    run_canonical(paths, log=None)
    profile = run_customer_360(paths)
    write_consent_ledger(paths)
    # what the segment and model stages write: one row per OneID (a snapshot indexed by OneID)
    oneids = profile["oneid"].astype(str).sort_values().to_numpy()
    rank = np.linspace(0, 1, len(oneids))
    pd.DataFrame({"segment": np.where(rank > 0.5, "Champions", "Hibernating")},
                 index=pd.Index(oneids, name="oneid")).to_parquet(paths.processed / "rfm_segments.parquet")
    pd.DataFrame({"clv_12m": rank * 100}, index=pd.Index(oneids, name="oneid")).to_parquet(
        paths.processed / "clv.parquet")
    pd.DataFrame({"oneid": oneids, "engagement": rank, "value": rank[::-1]}).to_parquet(
        paths.processed / "engagement_value.parquet", index=False)
    paths.segments.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"segment": "Champions"}, index=pd.Index(oneids, name="oneid")).to_parquet(
        paths.segments / "rfm_2026-11-01.parquet")
    for task, col in (("churn", "churn_risk"), ("propensity", "purchase_propensity")):
        pd.DataFrame({"oneid": oneids, col: rank, f"{col}_decile": (rank * 9).astype(int) + 1}).to_parquet(
            paths.processed / f"scores_{task}.parquet", index=False)
    return paths


def _copy(pipeline, tmp_path_factory, name: str):
    root = tmp_path_factory.mktemp(name)
    shutil.copytree(pipeline.data, root / "data")
    return get_paths(root / "data", root / "reports").ensure()


# ----------------------------------------------------------------------------- the erasure
@pytest.fixture(scope="module")
def erased(pipeline, tmp_path_factory):
    """A copy of the pipeline (plus an audience export and access-request files), a dry run, then
    ``forget`` of one person by a messy spelling of their phone."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(KEY_ENV, KEY.hex())
        paths = _copy(pipeline, tmp_path_factory, "erasure")
        person = _pick_person(paths)
        e164 = person["phone"]
        oneids = _oneids_with_phone(paths, e164)
        assert oneids, "the chosen person's phone is on no cleaned record"
        registry = pd.read_parquet(paths.processed / "oneid_records.parquet")
        others = sorted(set(registry["oneid"]) - oneids)[:40]
        members = sorted(oneids) + others
        aud = paths.reports / "20261101T000000Z" / "audiences"
        aud.mkdir(parents=True)
        pd.DataFrame({"oneid": members, "email_sha256": "e" * 64, "phone_sha256": "p" * 64}).to_csv(
            aud / "champions.csv", index=False)
        earlier_access = privacy_dir(paths) / "access" / "earlier-request.json"  # as access_request writes them
        earlier_access.parent.mkdir(parents=True)
        earlier_access.write_text(json.dumps({"oneids": sorted(oneids), "records": {}}), encoding="utf-8")
        unrelated_access = earlier_access.with_name("someone-else.json")
        unrelated_access.write_text(json.dumps({"oneids": others[:1], "records": {}}), encoding="utf-8")
        ledger_before = load_ledger(paths)
        before = _digests(paths.data, paths.reports)
        dry_lines: list[str] = []
        dry = forget(paths, phone=_messy(e164), dry_run=True, log=dry_lines.append)
        after_dry = _digests(paths.data, paths.reports)
        lines: list[str] = []
        report = forget(paths, phone=_messy(e164), log=lines.append)
        mappings = resolve_mappings(paths)
        yield SimpleNamespace(removed=_raw_removals(pipeline, paths, mappings), unrelated_access=unrelated_access,
                              rows=_record_rows(registry, oneids), paths=paths, orig=pipeline, person=person,
                              e164=e164, oneids=oneids, registry=registry, report=report, dry=dry,
                              dry_lines=dry_lines, lines=lines, before=before, after_dry=after_dry,
                              earlier_access=earlier_access, audience=aud, mappings=mappings,
                              ledger_before=ledger_before)


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
    assert r.total_rows > len(r.records)  # raw, ingested, cleaned, registry, links, canonical, truth...
    assert r.suppressed.get("phone", 0) >= 1
    assert any(line.startswith("  raw/") and "removed" in line for line in erased.lines)  # counts printed


def test_raw_files_lose_exactly_the_persons_rows(erased):
    rows = erased.rows  # file, row and owner of every record before the erasure
    touched = 0
    assert len(erased.removed) == len({f for m in erased.mappings.values() for f in m.files(erased.orig.raw)})
    for rel, (m, old, new, removed) in erased.removed.items():
        f, new_path = erased.orig.raw / rel, erased.paths.raw / rel
        n = erased.report.rows_removed.get(f"raw/{rel}", 0)
        assert new.total == old.total - n, rel
        assert len(removed) == n, rel
        here = rows[rows["file"] == rel]  # records of every mapping of the file
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
    from workbench.canonical import linked_cleaned, load_registry

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
    for f in sorted(p.processed.rglob("*.parquet")):  # the canonical layer, 360, segments, scores, consents ...
        df = pd.read_parquet(f)
        df = df.reset_index() if df.index.name == "oneid" else df
        for col in [c for c in df.columns if c == "oneid" or c.endswith("_oneid")]:
            assert not df[col].isin(erased.oneids).any(), f
    for name in ("scores_churn", "scores_propensity", "clv", "rfm_segments", "engagement_value", "customer_360"):
        old, new = (pd.read_parquet(x.processed / f"{name}.parquet") for x in (erased.orig, p))
        old, new = (df.reset_index() if df.index.name == "oneid" else df for df in (old, new))
        assert len(new) == len(old) - int(old["oneid"].isin(erased.oneids).sum()) and len(new) < len(old), name
    links_old = pd.read_parquet(erased.orig.processed / "identity_links.parquet")
    links_new = pd.read_parquet(p.processed / "identity_links.parquet")
    gone = links_old["record_a"].isin(r.records) | links_old["record_b"].isin(r.records)
    assert len(links_new) == len(links_old) - int(gone.sum())
    # the registry still lines up with the cleaned tables, the canonical layer and the (renumbered) ground truth
    reg = load_registry(p)
    assert len(reg) == len(old_reg) - len(r.records)
    for channel in erased.mappings:
        linked_cleaned(p, channel, reg)  # raises when a cleaned record has no OneID
    ids = set(reg["record_id"])
    canon = p.canonical
    assert set(pd.read_parquet(canon / "records.parquet")["record_id"]) == ids
    for f in sorted(canon.glob("*.parquet")):
        df = pd.read_parquet(f)
        old = pd.read_parquet(erased.orig.canonical / f.name)
        assert len(df) == len(old) - int(old["oneid"].isin(erased.oneids).sum()), f.name  # identifiers: by OneID
        if "record_id" in df.columns:
            assert set(df["record_id"]) <= ids, f.name  # renumbered with the records
        if "order_key" in df.columns:
            keyed_by_record = df["order_key"].astype(str).str.contains("/")
            assert set(df.loc[keyed_by_record, "order_key"]) <= ids, f.name
    # renumbered ids still point at the same raw rows: everyone else's truth is as it was, record by record
    kept = old_reg[~old_reg["record_id"].isin(r.records)].reset_index(drop=True)
    assert (reg["channel"].to_numpy() == kept["channel"].to_numpy()).all()

    def persons_of(ids, truth):
        return pd.DataFrame({"record_key": record_key(ids)}).merge(truth, on="record_key", how="left")["person_id"]

    now, then = persons_of(reg["record_id"], _truth(p)), persons_of(kept["record_id"], _truth(erased.orig))
    assert now.notna().all() and (now.to_numpy() == then.to_numpy()).all()
    assert (reg["record_id"] != kept["record_id"]).any()  # rows after the removed ones moved up
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


def test_canonical_manifest_counts_follow_the_erasure(erased):
    """The manifest's row counts are recounted from the erased tables; settings and window stay as built."""
    p = erased.paths
    old = json.loads((erased.orig.canonical / "manifest.json").read_text(encoding="utf-8"))
    new = json.loads((p.canonical / "manifest.json").read_text(encoding="utf-8"))
    tables = {f.stem: pd.read_parquet(f) for f in sorted(p.canonical.glob("*.parquet"))}
    assert new["rows"] == {t: len(df) for t, df in tables.items()}
    assert new["rows"]["records"] < old["rows"]["records"]
    assert new["oneids"] == tables["records"]["oneid"].nunique() == old["oneids"] - len(erased.oneids)
    for channel, by in new["rows_per_channel"].items():
        for t, n in by.items():
            assert n == int((tables[t]["channel"] == channel).sum()), (channel, t)
    assert new["event_types"] == tables["events"]["event_type"].value_counts().sort_index().to_dict()
    assert sum(new["refunds"].values()) == len(tables["refunds"])
    assert new["erased_utc"].endswith("Z")
    for k in ("settings", "roles", "window", "built_utc"):
        assert new[k] == old[k], k


def test_settings_hold_no_personal_data_and_stay_as_recorded(erased):
    p, person = erased.paths, erased.person
    orig = settings_dir(erased.orig)
    files = sorted(settings_dir(p).glob("*.json"))
    assert {f.name for f in files} >= {"mappings.json", "cleaning.json", "identity.json", "analysis.json"}
    for f in files:
        assert f.read_bytes() == (orig / f.name).read_bytes(), f.name
    known = [erased.e164, erased.e164[3:]] + [v for v in (person["email"], person["member_id"]) if isinstance(v, str)]
    found = scan_paths(files + [p.canonical / "manifest.json"], known_values=known)
    assert found[found["kind"] == "known_value"].empty


def test_ingest_ledger_follows_every_mapping_of_a_rewritten_file(erased):
    p = erased.paths
    ledger = _check_ledger(p, erased.mappings)
    till, sales, returns = _till(p, erased.mappings)
    assert sorted(ledger[till]) == sorted([sales, returns])
    for rel, (_m, _old, _new, removed) in erased.removed.items():
        for c, e in ledger[rel].items():
            before = erased.ledger_before[rel][c]
            assert before["read"] - e["read"] == len(removed), (rel, c)
            if not removed:
                assert e == before


def test_rerun_keeps_them_out_and_row_numbers_agree(erased):
    from workbench.ingest import ingest_all

    p = erased.paths
    res = ingest_all(p, progress=False, log=None)
    assert res.changed == []  # the ledger knows the rewritten files
    ledger = _ledger_without_seconds(load_ledger(p))
    touched = {rel for rel, (*_, removed) in erased.removed.items() if removed}
    channels = sorted({c for rel in touched for c in _readers(p, erased.mappings)[rel]})
    before = {f: pd.read_parquet(f) for c in channels for f in sorted((p.ingested / c).glob("*.parquet"))}
    quarantine = {c: pd.read_parquet(p.quarantine / f"{c}.parquet") for c in channels}
    ingest_all(p, progress=False, log=None, force=True, channels=channels, workers=1)
    for f, df in before.items():  # a forced re-read of the rewritten files numbers rows as the erasure did
        pd.testing.assert_frame_equal(pd.read_parquet(f), df)
    for c, q in quarantine.items():
        pd.testing.assert_frame_equal(pd.read_parquet(p.quarantine / f"{c}.parquet"), q)
    assert _ledger_without_seconds(load_ledger(p)) == ledger  # the erasure's counts are the ingest's


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


def test_a_backup_ingested_later_keeps_them_out(erased, tmp_path):
    """The original raw files ingested with the erasure's suppression list: every mapping of every
    file keeps what the erasure left, and read = kept + quarantined + suppressed + filtered."""
    from workbench.ingest import ingest_all

    paths = get_paths(tmp_path / "data", tmp_path / "reports")
    shutil.copytree(erased.orig.raw, paths.raw)
    shutil.copytree(privacy_dir(erased.paths), privacy_dir(paths))
    res = ingest_all(paths, progress=False, log=None, workers=1)
    erased_ledger = load_ledger(erased.paths)
    ledger = load_ledger(paths)
    for rel, (_m, _old, _new, removed) in erased.removed.items():
        assert sum(e["suppressed"] for e in ledger[rel].values()) == len(removed), rel
        for c, e in ledger[rel].items():
            assert e["read"] == e["kept"] + e["quarantined"] + e["suppressed"] + e["filtered"], (rel, c)
            assert (e["kept"], e["quarantined"]) == (erased_ledger[rel][c]["kept"],
                                                    erased_ledger[rel][c]["quarantined"]), (rel, c)
    assert res.totals()["suppressed"] == sum(len(x[3]) for x in erased.removed.values())


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


# ----------------------------------------------------------------------------- a till file read by two mappings
@pytest.fixture(scope="module")
def till_erased(pipeline, tmp_path_factory):
    """``forget`` of a person with a sale and a return in the till file (read by a sales and a returns
    mapping) who shares a device value with someone else."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(KEY_ENV, KEY.hex())
        paths = _copy(pipeline, tmp_path_factory, "till-erasure")
        mappings = resolve_mappings(paths)
        till, sales, returns = _till(paths, mappings)
        registry = pd.read_parquet(paths.registry)
        t = _truth(paths)
        j = registry.assign(record_key=record_key(registry["record_id"])).merge(t[["record_key", "person_id"]],
                                                                                on="record_key")
        kinds = j.groupby("person_id")["channel"].agg(set)
        both = set(kinds[kinds.map(lambda s: {sales, returns} <= s)].index)
        persons = pd.read_parquet(paths.truth / "persons.parquet")
        persons = persons[persons["person_id"].isin(both) & persons["phone"].notna()].sort_values("person_id")
        values = _identifier_values(paths, mappings)
        owners = values.groupby("value")["oneid"].agg(set)
        chosen = None
        for _, person in persons.iterrows():  # the first whose OneIDs share a value with another OneID
            oneids = _oneids_with_phone(paths, person["phone"])
            mine = j[j["oneid"].isin(oneids) & (j["person_id"] == person["person_id"])]
            if not ({sales, returns} <= set(mine["channel"])):
                continue
            shared = {v for v, o in owners.items() if o & oneids and o - oneids}
            if shared:
                chosen = (person, oneids, shared)
                break
        assert chosen is not None, "no person with a sale, a return and a shared value in the sample"
        person, oneids, shared = chosen
        ledger_before = load_ledger(paths)
        report = forget(paths, phone=person["phone"], log=None)
        yield SimpleNamespace(paths=paths, orig=pipeline, mappings=mappings, till=till, sales=sales,
                              returns=returns, person=person, oneids=oneids, shared=shared, registry=registry,
                              report=report, ledger_before=ledger_before)


def test_erasing_a_sale_and_a_return_of_one_till_file(till_erased):
    from workbench.canonical import load_registry
    from workbench.clean import clean_all
    from workbench.ingest import ingest_all

    e = till_erased
    p, rel, sales, returns = e.paths, e.till, e.sales, e.returns
    rows = _record_rows(e.registry, e.oneids)
    mine = rows[rows["mine"] & (rows["file"] == rel)]
    assert {sales, returns} <= set(mine["channel"])  # a sale and a return of theirs
    m = e.mappings[sales]
    old, new = read_source(e.orig.raw / rel, m), read_source(p.raw / rel, m)
    removed = _removed_rows(old, new, m, e.orig.raw / rel, p.raw / rel)
    assert set(mine["row"]) <= removed  # both kinds of row are gone from the file
    others = rows[~rows["mine"] & (rows["file"] == rel)]
    assert not (set(others["row"]) & removed)
    assert e.report.rows_removed[f"raw/{rel}"] == len(removed)
    for c in (sales, returns):  # ... and from both mappings' tables
        cleaned = pd.read_parquet(p.cleaned / f"{c}.parquet")
        old_cleaned = pd.read_parquet(e.orig.cleaned / f"{c}.parquet")
        gone = old_cleaned["record_id"].isin(e.report.records)
        assert gone.any() and len(cleaned) == len(old_cleaned) - int(gone.sum())
        ingested = pd.read_parquet(_ingest_output(p, c, rel))
        old_ingested = pd.read_parquet(_ingest_output(e.orig, c, rel))
        assert len(ingested) == len(old_ingested) - int(old_ingested["_source_row"].isin(removed).sum())
        entry, before = load_ledger(p)[rel][c], e.ledger_before[rel][c]
        assert before["read"] - entry["read"] == len(removed)
        assert before["kept"] - entry["kept"] == len(old_ingested) - len(ingested)
    _check_ledger(p, e.mappings)
    # a forced re-ingest and re-clean of both mappings give the same rows and record ids
    ledger = _ledger_without_seconds(load_ledger(p))
    tables = [_ingest_output(p, c, rel) for c in (sales, returns)] + [
        p.cleaned / f"{c}.parquet" for c in (sales, returns)] + [p.quarantine / f"{c}.parquet" for c in (sales, returns)]
    before = {f: pd.read_parquet(f) for f in tables}
    ingest_all(p, progress=False, log=None, force=True, channels=[sales, returns], workers=1)
    clean_all(p, channels=[sales, returns], progress=False, workers=1)
    for f, df in before.items():
        pd.testing.assert_frame_equal(pd.read_parquet(f), df, obj=str(f))
    assert _ledger_without_seconds(load_ledger(p)) == ledger
    reg = load_registry(p)
    records = pd.read_parquet(p.canonical / "records.parquet")
    for c in (sales, returns):
        ids = set(pd.read_parquet(p.cleaned / f"{c}.parquet")["record_id"])
        assert set(reg.loc[reg["channel"] == c, "record_id"]) == ids
        assert set(records.loc[records["channel"] == c, "record_id"]) == ids
    assert set(pd.read_parquet(p.canonical / "orders.parquet").query("channel == @sales")["record_id"]) <= set(
        reg["record_id"])
    assert set(pd.read_parquet(p.canonical / "refunds.parquet")["record_id"]) <= set(reg["record_id"])


def test_shared_values_are_never_suppressed(till_erased, erased):
    e = till_erased
    assert e.report.shared_values >= 1
    # the other OneIDs' records that carry the shared values are still there
    values = _identifier_values(e.paths, e.mappings)
    assert values[values["value"].isin(e.shared)]["oneid"].nunique() >= 1
    assert not values["oneid"].isin(e.oneids).any()
    for x in (e, erased):  # no remaining row of anyone is on the suppression list
        _nothing_left_is_suppressed(x.paths, x.mappings)


# ----------------------------------------------------------------------------- access requests
def test_access_request_holds_every_record_of_the_person(pipeline, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY.hex())
    p = pipeline
    person = _pick_person(p)
    before = _digests(p.data)
    out = access_request(p, phone=_messy(person["phone"]), out=tmp_path / "a.json")
    assert _digests(p.data) == before  # an access request changes nothing
    doc = json.loads(out.read_text(encoding="utf-8"))
    reg = pd.read_parquet(p.processed / "oneid_records.parquet")
    oneids = set(doc["oneids"])
    assert oneids == _oneids_with_phone(p, person["phone"])
    mine = reg["oneid"].isin(oneids)
    held = {r["record_id"] for rows in doc["records"].values() for r in rows}
    assert held == set(reg.loc[mine, "record_id"])
    truth = _truth(p)
    of_person = set(truth.loc[truth["person_id"] == person["person_id"], "record_key"])
    in_oneids = of_person & set(record_key(reg.loc[mine, "record_id"]))
    assert in_oneids and in_oneids <= set(record_key(pd.Series(sorted(held))))
    assert len(in_oneids) >= 0.9 * len(of_person)  # OneID may split a person, but not much
    assert all(r["oneid"] in oneids for rows in doc["records"].values() for r in rows)
    assert set(doc["records"]) == set(reg.loc[mine, "channel"]) and len(doc["records"]) >= 3
    crm = doc["records"]["crm_members"][0]
    assert crm["phone"] == person["phone"] and isinstance(crm["updated_at"], str)
    # every canonical table: exactly the person's rows
    assert set(doc["canonical"]) == {f.stem for f in p.canonical.glob("*.parquet")}
    for table, rows in doc["canonical"].items():
        df = pd.read_parquet(p.canonical / f"{table}.parquet")
        assert len(rows) == int(df["oneid"].isin(oneids).sum()), table
        assert all(r["oneid"] in oneids for r in rows), table
    assert len(doc["canonical"]["records"]) == len(held) and doc["canonical"]["identifiers"]
    assert sorted(r["oneid"] for r in doc["customer_360"]) == sorted(oneids)
    assert set(doc["segments"]) == {"rfm_segments", "engagement_value"}
    assert all(sorted(r["oneid"] for r in rows) == sorted(oneids) for rows in doc["segments"].values())
    assert sorted(r["oneid"] for r in doc["segment_snapshots"]["rfm_2026-11-01"]) == sorted(oneids)
    assert set(doc["scores"]) == {"churn", "propensity", "clv"}
    assert sorted(r["oneid"] for r in doc["scores"]["clv"]) == sorted(oneids)
    assert [r["oneid"] for r in doc["scores"]["churn"]] == sorted(oneids) and "churn_risk" in doc["scores"]["churn"][0]
    assert len(doc["consents"]) == len(PURPOSES) * len(oneids)
    assert {r["purpose"] for r in doc["consents"]} == set(PURPOSES)
    assert [r["oneid"] for r in doc["other_tables"]["consents.parquet"]] == [r["oneid"] for r in doc["consents"]]
    assert person["phone"] in doc["identifiers"]["phone"]
    assert doc["identity_links"]
    assert all(a in held and b in held for a, b in ((x["record_a"], x["record_b"]) for x in doc["identity_links"]))
    assert doc["request"]["identifier_hash"] == identifier_hash([person["phone"]], kind="phone", key=KEY).iloc[0]
    assert doc["summary"]["records"] == len(held)
    # the same person by OneID
    one = sorted(oneids)[0]
    by_id = json.loads(access_request(p, oneid=one, out=tmp_path / "b.json").read_text())
    assert by_id["oneids"] == [one]
    assert {r["record_id"] for rows in by_id["records"].values() for r in rows} == \
        set(reg.loc[reg["oneid"] == one, "record_id"])


def test_requests_are_validated(pipeline, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY.hex())
    with pytest.raises(ValueError, match="Exactly one"):
        forget(pipeline, phone="13800138000", email="a@b.cn", dry_run=True, log=None)
    with pytest.raises(ValueError, match="'phone' parameter"):
        forget(pipeline, phone="12", dry_run=True, log=None)
    with pytest.raises(ValueError, match="'max_oneids' parameter"):
        forget(pipeline, phone="13800138000", dry_run=True, log=None, max_oneids=0)
    with pytest.raises(KeyError, match="Unknown OneID"):
        forget(pipeline, oneid="OID-nobody", dry_run=True, log=None)
    nobody = forget(pipeline, email="nobody.here@example.org", dry_run=True, log=None)
    assert nobody.oneids == [] and nobody.rows_removed == {}


def test_a_value_of_more_oneids_than_max_oneids_is_refused(pipeline, tmp_path, monkeypatch):
    """Two OneIDs carry a phone (one of the records of a OneID that carry it moved to a OneID of its
    own): refused with max_oneids=1, changing nothing; both found with 2."""
    monkeypatch.setenv(KEY_ENV, KEY.hex())
    paths = get_paths(tmp_path / "data", tmp_path / "reports")
    for part in (pipeline.cleaned, settings_dir(pipeline)):
        shutil.copytree(part, paths.data / part.relative_to(pipeline.data))
    reg = pd.read_parquet(pipeline.registry)
    parts = []
    for f in sorted(pipeline.cleaned.glob("*.parquet")):
        df = pd.read_parquet(f)
        if "phone" in df.columns:
            flag = df.get("phone_placeholder", pd.Series(False, index=df.index)).fillna(False).astype(bool)
            parts.append(df.loc[df["phone"].notna() & ~flag, ["record_id", "phone"]])
    carried = pd.concat(parts).merge(reg[["record_id", "oneid"]], on="record_id")
    n = carried.groupby("phone")["record_id"].transform("size")
    phone, moved = carried.loc[n >= 2].sort_values(["phone", "record_id"]).iloc[0][["phone", "record_id"]]
    oneids = set(carried.loc[carried["phone"] == phone, "oneid"])
    assert len(oneids) == 1
    reg.loc[reg["record_id"] == moved, "oneid"] = "OID-split"
    paths.registry.parent.mkdir(parents=True)
    reg.to_parquet(paths.registry, index=False)
    before = _digests(paths.data)
    with pytest.raises(ValueError, match="more than max_oneids=1"):
        forget(paths, phone=phone, max_oneids=1, log=None)
    with pytest.raises(ValueError, match="more than max_oneids=1"):
        access_request(paths, phone=phone, max_oneids=1, out=tmp_path / "x.json")
    assert _digests(paths.data) == before and not (tmp_path / "x.json").exists()
    dry = forget(paths, phone=phone, max_oneids=2, dry_run=True, log=None)
    assert set(dry.oneids) == oneids | {"OID-split"}


# ----------------------------------------------------------------------------- consent ledger
def test_consent_ledger_agrees_with_the_profile(pipeline):
    ledger = consent_ledger(pipeline)
    reg = pd.read_parquet(pipeline.processed / "oneid_records.parquet")
    profile = pd.read_parquet(pipeline.customer_360)
    assert len(ledger) == len(PURPOSES) * reg["oneid"].nunique()
    assert not ledger.duplicated(["oneid", "purpose"]).any()
    assert set(ledger["status"]) <= {"granted", "revoked", "unknown"}
    email = ledger[ledger["purpose"] == "email"].set_index("oneid")["status"]
    expected = profile.set_index("oneid")["consent_email"].map({True: "granted", False: "revoked"})
    expected = expected.astype("string").fillna("unknown")
    assert (email.reindex(expected.index) == expected).all()
    decided = ledger[ledger["status"] != "unknown"]
    assert decided["source"].notna().all() and decided["source_record_id"].notna().all()
    assert (decided.loc[decided["status"] == "granted", "granted_at"].notna()).all()
    assert (decided.loc[decided["status"] == "revoked", "revoked_at"].notna()).all()
    # latest wins, also across sources: an unsubscribe after the profile's consent revokes e-mail
    unsub = ledger[(ledger["purpose"] == "email") & (ledger["event"] == "Unsubscribed")]
    assert len(unsub) and (unsub["status"] == "revoked").all()
    assert consent_ledger(pipeline, as_of="2025-01-01")["status"].eq("unknown").mean() > \
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
    return ChannelMapping.from_dict({"channel": "demo", "role": "profile",
                                     "source": {"pattern": pattern, "format": fmt, "encoding": encoding,
                                                "newlines_in_values": newlines},
                                     "fields": {"member_id": {"column": "A", "type": "identifier"},
                                                "b": {"column": "B"}}})


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
    m = ChannelMapping.from_dict({"channel": "mail", "role": "profile", "source": {"pattern": "mail/*.csv"},
                                  "fields": {"email": {"column": "to", "type": "email"},
                                             "campaign": {"column": "c"}}})
    rows = pd.DataFrame({"email": [" Zhang.Wei@QQ.com ", "li.na@163.com"], "campaign": ["c1", "c1"]})
    assert not suppressed_rows(rows, m, paths, key=KEY).any()  # no list yet: nothing suppressed
    assert suppress(paths, {"email": ["zhang.wei@qq.com"]}, key=KEY) == 1
    assert suppressed_rows(rows, m, paths, key=KEY).tolist() == [True, False]
    with pytest.raises(ValueError, match="another pseudonymisation key"):
        suppressed_rows(rows, m, paths, key=OTHER_KEY)


def test_record_ids_of_rewritten_files_are_renumbered():
    ids = pd.Series(["crm:a/b.csv:1", "crm:a/b.csv:5", "pos:p.csv:3", None, "crm:a/b.csv:9", "web:a/b.csv.x:5"],
                    dtype="string")
    new, changed = _renumber_ids(ids, {"a/b.csv": np.array([2, 4]), "p.csv": np.array([1])})
    assert changed
    assert new.to_pylist() == ["crm:a/b.csv:1", "crm:a/b.csv:3", "pos:p.csv:2", None, "crm:a/b.csv:7",
                               "web:a/b.csv.x:5"]
    assert _renumber_ids(ids, {"a/b.csv": np.array([10])})[1] is False  # rows before the removed one stay


def test_record_ids_of_every_mapping_of_a_shared_file_are_renumbered():
    """Sales and returns of one till file: one row numbering, two channels' record ids."""
    ids = pd.Series(["sales:till/t.csv:1", "back:till/t.csv:3", "sales:till/t.csv:6", "back:till/t.csv:8",
                     "sales:till/u.csv:6"], dtype="string")
    new, changed = _renumber_ids(ids, {"till/t.csv": np.array([2, 5])})  # a sale and a return removed
    assert changed
    assert new.to_pylist() == ["sales:till/t.csv:1", "back:till/t.csv:2", "sales:till/t.csv:4",
                               "back:till/t.csv:6", "sales:till/u.csv:6"]
