"""Right to erasure: :func:`forget` a person everywhere, and keep them out of later ingests.

``forget(paths, phone=...)`` (or ``email=`` / ``oneid=``) finds the person, removes every
row they left in every layer, writes a keyed-hash audit entry and puts their identifiers
on a suppression list that the ingest stage consults (:func:`suppressed_rows`).

**Who is the person.** The OneIDs whose cleaned records carry the normalised phone or
e-mail (normalised as the clean stage does, in every channel's phone/e-mail/identifier
fields: a phone typed into a site's login field counts), or the given OneID; then every record
of those OneIDs in the registry (``processed/oneid_records.parquet``). Placeholder and
blocked values (``13800000000``) never identify anyone.

**The person's identifiers** are the phone, e-mail, member id, unionid, openid, buyer nick,
viewer id, device and cookie values on those records — except values that records of
*other* OneIDs carry too (a family tablet, a shared shop phone): those are not the
person's alone, so they neither remove other rows nor go on the suppression list (the
person's records carrying them are still removed, by OneID). Rows that never got a
record id — older CRM versions merged by the dedupe rule, exact duplicates, quarantined
rows — are found by these identifiers; identifiers found on them (an old phone) are
added when no other OneID carries them.

**Layers.** ``raw/`` (each file rewritten in its own format: CSV bytes of every other
row, the header, BOM, encoding and line ends are kept — only the person's records go;
JSON lines drop lines; Parquet and Excel are rewritten without the rows; every rewrite is
re-read with :func:`workbench.ingest.read_source` and checked row by row before it
replaces the original; a file read by several mappings — sales and returns in one till
export — is rewritten once, read as the first of its mappings declares), every mapping's
``interim/ingested``, ``interim/quarantine`` (rows of the removed source rows, or whose
content carries the identifiers), ``interim/cleaned``, every Parquet under ``processed/``
with a ``oneid`` / ``*_oneid`` or ``record_id`` / ``record_a`` / ``record_b`` /
``*_record_id`` column: the OneID registry and identity links, the canonical layer
(``processed/canonical/``: records, profiles, traits, orders, order lines, refunds,
events, consents and ``identifiers`` — whose rows carry only the OneID, so they go by
OneID), the customer 360, segments and their snapshots, ``scores_<task>.parquet``,
``consents.parquet``; audience exports ``reports/*/audiences/*.csv``, the sample's ground
truth (``raw/_truth``: the rows of the removed source rows; persons left without any
record) and earlier access-request files of the person (``data/privacy/access``).

**What is left as it is.** ``interim/settings/*.json`` (the mappings and settings each
stage recorded: no rows of anyone), ``interim/metrics`` and the quality table (counts and
masked examples of a run, refreshed by the next run). The canonical layer's
``manifest.json`` holds no personal data but counts rows: the erasure rewrites its row
counts (``rows``, ``rows_per_channel``, ``oneids``, ``event_types``, ``refunds``,
``consent_purposes``) from the erased tables and notes the time in ``erased_utc``; the
build's settings, time window and timings stay as built until the next canonical build
refreshes them.

**Row numbers.** A record id is ``<channel>:<file>:<row>`` with the row's position in the
raw file. Removing rows shifts the rows after them, so every stored row number and record
id of the rewritten files (ingested, quarantine, cleaned, processed — ``order_key`` too,
which is the record id of an order without an order number —, ground truth) is
renumbered to the new file, for every mapping that reads the file: the data is as if the
person had never been in it, a forced re-ingest gives the same record ids, and the ingest
ledger's entry of every mapping of the file (``{file: {channel: entry}}``) gets the new
checksum and counts (``read``, ``kept``, ``quarantined``, ``filtered``), so the next
(incremental) ingest does not re-read the files.

**Database sources.** A channel read from a database (``format: sql``) has no raw file: the
person's rows leave its ingested batches (``sql/<table>/batch-NNNNNN``) and quarantine, and
every later layer, but no row is renumbered — the table still holds the rows until the brand
deletes them there, and a new read numbers them as before and drops them as suppressed. The
batch's ledger entry keeps ``read`` and its checksum and moves the removed rows from ``kept`` /
``quarantined`` to ``suppressed``, so the counts still reconcile.

**Audit and suppression** (``data/privacy/``): ``erasure_log.jsonl`` gets one line per
request — UTC time, request kind, the keyed hash of the identifier (never the value),
OneIDs, rows removed per file. ``suppression.parquet`` holds
:func:`identifier_hash` values (HMAC with the local key, namespace per identifier kind) of
every identifier of the person and of the requested value itself, so a later ingest of an
old file (a backup restored) drops their rows. A phone or e-mail nobody carries is still
suppressed. The key must stay the same: the list records its fingerprint and
:func:`suppressed_rows` refuses another key.

Example:
    >>> from workbench.privacy.erasure import forget
    >>> report = forget(phone="138 0013 8000", dry_run=True)       # doctest: +SKIP
    >>> report.rows_removed                                         # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..config import Paths, get_paths
from ..mapping import ChannelMapping
from ..normalise import arrow_strings
from ..runconfig import resolve_cleaning, resolve_identity, resolve_mappings
from .keys import key_fingerprint, load_key
from .suppression import (KEY_SEP, SUPPRESSION_FILE, add_suppression, empty_observations, identifier_hash, isin_text,
                          load_suppression, normalise_request, observation_keys, observe_identifiers, privacy_dir,
                          suppress, suppressed_records, suppressed_rows, text_observations)

__all__ = ["AUDIT_FILE", "SUPPRESSION_FILE", "ErasureReport", "file_readers", "forget", "identifier_hash",
           "load_suppression", "locate_person", "plan_erasure", "privacy_dir", "refresh_manifest", "run_settings",
           "sql_batches", "suppress", "suppressed_records", "suppressed_rows"]

#: The audit log, inside :func:`privacy_dir`.
AUDIT_FILE = "erasure_log.jsonl"
#: Columns holding record ids in processed tables (besides ``*_record_id``): rows go with the record.
RECORD_COLUMNS = ("record_id", "record_a", "record_b")
#: Columns that may hold a record id (an order or return without its own number is keyed by its
#: record id): renumbered with the record ids, never used to find the person's rows.
ID_TEXT_COLUMNS = ("order_key",)
#: The canonical layer's manifest (inside ``processed/canonical``): row counts refreshed by an erasure.
MANIFEST_FILE = "manifest.json"


def run_settings(paths: Paths, mappings=None, settings=None, cleaning_config=None):
    """(mappings, identity settings, cleaning settings): the given ones, else those the run recorded."""
    mappings = mappings if mappings is not None else resolve_mappings(paths)
    return mappings, resolve_identity(paths, settings), resolve_cleaning(paths, cleaning_config)


# ----------------------------------------------------------------------------- finding the person
@dataclass
class _Person:
    kind: str
    value: str | None
    oneids: list[str]
    records: pd.Index                # record ids of the OneIDs (registry)
    keys: set[str]                   # "kind\x1fvalue" carried by the person only
    others: pd.Index                 # keys carried by records of other OneIDs
    shared: int = 0                  # the person's values also carried by other OneIDs
    own: set[str] = field(default_factory=set)  # every value on the person's records (shared ones too)
    linked: dict[str, pd.Series] = field(default_factory=dict)  # channel -> record ids of the registry


def _registry(paths: Paths) -> pd.DataFrame:
    from ..canonical import load_registry

    return load_registry(paths)


def _cleaned_observations(paths: Paths, mappings, settings, cfg, registry: pd.DataFrame) -> pd.DataFrame:
    """``record_id, kind, value, placeholder`` of every cleaned record (all channels)."""
    from ..clean import load_cleaned

    parts = []
    by_channel = dict(tuple(registry.groupby("channel", sort=False)["record_id"]))
    for channel, m in mappings.items():
        if not (paths.cleaned / f"{channel}.parquet").exists():
            continue
        df = load_cleaned(channel, paths)
        reg = by_channel.get(channel, pd.Series([], dtype="string"))
        same_order = len(reg) == len(df) and (reg.to_numpy() == df["record_id"].to_numpy()).all()
        stale = np.zeros(len(df), bool) if same_order else ~isin_text(df["record_id"], reg)
        if stale.any():
            raise ValueError(f"{int(stale.sum()):,} records of '{channel}' are not in the OneID registry: the cleaned "
                             "data changed after the identity stage ran. Rerun the identity stage (notebook "
                             "03_id_matching) before an erasure or access request.")
        obs = observe_identifiers(df, m, settings, cfg, standardised=True)
        obs["record_id"] = df["record_id"].astype("string").to_numpy()[obs["row"].to_numpy()]
        parts.append(obs.drop(columns="row"))
    if not parts:
        raise FileNotFoundError(f"No cleaned tables in {paths.cleaned}: run the ingest and clean stages first.")
    out = pd.concat(parts, ignore_index=True)
    out["key"] = observation_keys(out)
    return out


def locate_person(paths: Paths, *, phone: str | None, email: str | None, oneid: str | None, mappings, settings,
            cfg: dict, max_oneids: int) -> _Person:
    given = {k: v for k, v in (("phone", phone), ("email", email), ("oneid", oneid)) if v is not None}
    if len(given) != 1:
        raise ValueError("Exactly one of the 'phone', 'email' and 'oneid' parameters must be given. "
                         f"Got {sorted(given) or 'none'} instead.")
    if not isinstance(max_oneids, (int, np.integer)) or isinstance(max_oneids, bool) or max_oneids < 1:
        raise ValueError(f"The 'max_oneids' parameter must be a positive integer. Got {max_oneids!r} instead.")
    (kind, raw), = given.items()
    value = None if kind == "oneid" else normalise_request(kind, raw, cfg)
    registry = _registry(paths)
    if kind == "oneid" and (not isinstance(raw, str) or not (registry["oneid"] == raw).any()):
        raise KeyError(f"Unknown OneID {raw!r}: it is not in {paths.processed / 'oneid_records.parquet'}.")
    obs = _cleaned_observations(paths, mappings, settings, cfg, registry)
    if kind == "oneid":
        oneids = [raw]
    else:
        hit = obs[(obs["kind"] == kind).to_numpy(bool) & (obs["value"] == value).fillna(False).to_numpy(bool)]
        usable = hit[~hit["placeholder"].to_numpy(bool)]
        if usable.empty and len(hit):
            raise ValueError(f"The {kind} given is a placeholder or blocked value in the data ({len(hit)} records, "
                             "e.g. a shop's default number): it identifies nobody. Erase by 'oneid' instead.")
        rec = registry[isin_text(registry["record_id"], usable["record_id"])]
        oneids = sorted(pd.unique(rec["oneid"].astype(str)).tolist())
    if len(oneids) > max_oneids:
        raise ValueError(f"The {kind} given is carried by records of {len(oneids)} OneIDs, more than max_oneids="
                         f"{max_oneids}: it is probably shared, not one person's. Check with an access request, "
                         "then erase by 'oneid' or raise 'max_oneids'.")
    mine = isin_text(registry["oneid"], oneids)
    records = pd.Index(registry.loc[mine, "record_id"].astype("string"))
    of_person = isin_text(obs["record_id"], records)
    others = pd.Index(pd.unique(obs.loc[~of_person, "key"]), dtype="string")
    own = pd.unique(obs.loc[of_person & ~obs["placeholder"].to_numpy(bool), "key"])
    own = pd.Index(own, dtype="string")
    shared = isin_text(pd.Series(own, dtype="string"), others)
    keys = set(own[~shared].tolist())
    if value is not None:
        k = kind + KEY_SEP + value
        if k not in others:
            keys.add(k)
    linked = {str(c): r.reset_index(drop=True) for c, r in registry.groupby("channel", sort=False)["record_id"]}
    return _Person(kind, value, oneids, records, keys, others, int(shared.sum()), set(own.tolist()), linked)


# ----------------------------------------------------------------------------- raw files
_LINES_B = re.compile(rb"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")
_LINES_S = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


def _quote_open(line, in_quote: bool, delimiter, quote) -> bool:
    """Whether a quoted field is still open at the end of ``line`` (pyarrow's CSV rules).

    A quote opens a field only at the start of the field; inside, ``""`` is a quote and a
    single quote closes the field. Quotes elsewhere are ordinary characters.
    """
    fresh, i = not in_quote, 0
    while True:
        j = line.find(quote, i)
        if j < 0:
            return in_quote
        if in_quote:
            if line[j + 1:j + 2] == quote:
                i = j + 2
                continue
            in_quote = False
        elif (j == 0 and fresh) or (j > 0 and line[j - 1:j] == delimiter):
            in_quote = True
        i = j + 1


def _pieces(data, *, csv_rules: bool, delimiter: str = ",", blank_is_record: bool = False) -> list[tuple[Any, bool]]:
    """Split file content into (chunk, is_record) pieces, each with its line ends.

    ``csv_rules``: a record spans lines while a quoted field is open, and only empty lines
    are skipped (pyarrow's CSV reader); otherwise (JSON lines) every line is a record and
    whitespace-only lines are skipped, unless ``blank_is_record`` (the line-by-line reader).
    """
    is_bytes = isinstance(data, bytes)
    lines = (_LINES_B if is_bytes else _LINES_S).findall(data)
    quote = b'"' if is_bytes else '"'
    delim = delimiter.encode("ascii") if is_bytes else delimiter
    ends = (b"\r\n", b"\n", b"\r") if is_bytes else ("\r\n", "\n", "\r")
    out, buf, open_quote = [], None, False
    for ln in lines:
        if buf is None:
            blank = (ln in ends) if csv_rules else not ln.strip()
            if blank and not blank_is_record:
                out.append((ln, False))
                continue
            buf, open_quote = ln, False
        else:
            buf += ln
        if csv_rules and quote in ln:
            open_quote = _quote_open(ln, open_quote, delim, quote)
        if not open_quote:
            out.append((buf, True))
            buf = None
    if buf is not None:
        out.append((buf, True))
    return out


def _drop_pieces(pieces: list[tuple[Any, bool]], drop: set[int], *, header: bool) -> list:
    kept, n, seen_header = [], 0, not header
    for chunk, is_record in pieces:
        if is_record:
            if not seen_header:
                seen_header = True
            else:
                n += 1
                if n in drop:
                    continue
        kept.append(chunk)
    return kept


def _rewrite_csv(src: Path, dst: Path, mapping: ChannelMapping, drop: set[int]) -> None:
    data = src.read_bytes()
    enc = mapping.source.encoding.lower()
    if enc.startswith("utf-16"):  # not ASCII-compatible: work on text, keep the byte order and BOM
        if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            codec, bom, body = ("utf-16-le" if data[:2] == b"\xff\xfe" else "utf-16-be"), data[:2], data[2:]
        else:
            codec, bom, body = "utf-16-le", b"", data
        text = body.decode(codec)
        pieces = _pieces(text, csv_rules=True, delimiter=mapping.source.delimiter)
        out = bom + "".join(_drop_pieces(pieces, drop, header=True)).encode(codec)
    else:  # utf-8, gbk, gb18030, big5: newline and quote bytes never occur inside a character
        pieces = _pieces(data, csv_rules=True, delimiter=mapping.source.delimiter)
        out = b"".join(_drop_pieces(pieces, drop, header=True))
    dst.write_bytes(out)


def _rewrite_jsonl(src: Path, dst: Path, drop: set[int], *, physical: bool) -> None:
    data = src.read_bytes()
    dst.write_bytes(b"".join(_drop_pieces(_pieces(data, csv_rules=False, blank_is_record=physical), drop,
                                          header=False)))


def _rewrite_parquet_rows(src: Path, dst: Path, drop: set[int]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    t = pq.read_table(src)
    keep = ~np.isin(np.arange(1, t.num_rows + 1), np.fromiter(drop, dtype=np.int64, count=len(drop)))
    pq.write_table(t.filter(pa.array(keep)), dst)


def _rewrite_excel(src: Path, dst: Path, mapping: ChannelMapping, drop: set[int]) -> None:
    import openpyxl

    wb = openpyxl.load_workbook(src)
    sheet = mapping.source.sheet
    ws = wb[sheet] if isinstance(sheet, str) else wb.worksheets[sheet or 0]
    data_rows, header_seen = [], False
    for idx, values in enumerate(ws.iter_rows(values_only=True), start=1):
        if all(v is None or (isinstance(v, str) and not v.strip()) for v in values):
            continue
        if not header_seen:
            header_seen = True
            continue
        data_rows.append(idx)
    for n in sorted(drop, reverse=True):
        if 1 <= n <= len(data_rows):
            ws.delete_rows(data_rows[n - 1])
    wb.save(dst)


def _plain(values: pd.Series) -> list:
    s = values.astype(object)
    return s.where(pd.notna(s), None).tolist()


def _verify_raw(old, new, drop: np.ndarray, rel: str) -> None:
    """The rewritten file reads as the old one without the dropped rows (renumbered)."""
    problem = None
    if new.total != old.total - len(drop):
        problem = f"it reads {new.total} rows, expected {old.total} - {len(drop)}"
    else:
        keep = ~old.frame["_source_row"].isin(drop).to_numpy(bool)
        exp = old.frame[keep].reset_index(drop=True).copy()
        exp["_source_row"] = _shift(exp["_source_row"].to_numpy(np.int64), drop)
        got = new.frame.reset_index(drop=True)
        if sorted(exp.columns) != sorted(got.columns) or len(exp) != len(got):
            problem = "its columns or row count differ"
        else:
            for c in exp.columns:
                if not exp[c].equals(got[c]) and _plain(exp[c]) != _plain(got[c]):
                    problem = f"column {c!r} differs"
                    break
        bk = ~old.bad_rows["_source_row"].isin(drop).to_numpy(bool)
        eb = old.bad_rows[bk].reset_index(drop=True)
        if problem is None and (_shift(eb["_source_row"].to_numpy(np.int64), drop).tolist()
                                != new.bad_rows["_source_row"].tolist()
                                or eb["record"].tolist() != new.bad_rows["record"].tolist()):
            problem = "its unparseable rows differ"
    if problem:
        raise RuntimeError(f"Erasure stopped before changing anything: the rewrite of raw/{rel} does not read back "
                           f"as the original without the person's rows ({problem}). The raw file may use a layout "
                           "the row splitter does not know; remove the rows by hand.")


def _rewrite_raw(src: Path, dst: Path, mapping: ChannelMapping, drop: np.ndarray, rel: str) -> None:
    from ..ingest import read_source

    old = read_source(src, mapping)
    d = set(int(x) for x in drop)
    fmt = mapping.source.format
    if fmt == "csv":
        _rewrite_csv(src, dst, mapping, d)
    elif fmt == "jsonl":
        _rewrite_jsonl(src, dst, d, physical=len(old.bad_rows) > 0)
    elif fmt == "parquet":
        _rewrite_parquet_rows(src, dst, d)
    elif fmt == "excel":
        _rewrite_excel(src, dst, mapping, d)
    else:  # pragma: no cover - mappings validate formats
        raise ValueError(f"Unknown format {fmt!r}.")
    _verify_raw(old, read_source(dst, mapping), drop, rel)


def file_readers(paths: Paths, mappings: Mapping[str, ChannelMapping]) -> dict[str, list[str]]:
    """Raw file (relative to ``raw/``) -> the channels whose mappings read it, in mapping order.

    A file holding two kinds of rows (sales and returns) is read by two filtered mappings.

    >>> import tempfile
    >>> paths = get_paths(tempfile.mkdtemp(), tempfile.mkdtemp())
    >>> (paths.raw / "till").mkdir(parents=True)
    >>> _ = (paths.raw / "till" / "t.csv").write_text("no,kind\\n1,sale\\n", encoding="utf-8")
    >>> def till(name, code):
    ...     return ChannelMapping.from_dict({"channel": name, "role": "profile", "source": {"pattern": "till/*.csv"},
    ...         "filter": {"field": "kind", "values": [code]}, "fields": {
    ...         "member_id": {"column": "no", "type": "identifier"},
    ...         "kind": {"column": "kind", "type": "category", "values": {"sale": ["sale"], "ret": ["ret"]}}}})
    >>> file_readers(paths, {"sales": till("sales", "sale"), "back": till("back", "ret")})
    {'till/t.csv': ['sales', 'back']}
    """
    out: dict[str, list[str]] = {}
    for channel, m in mappings.items():
        for f in m.files(paths.raw):
            out.setdefault(f.relative_to(paths.raw).as_posix(), []).append(channel)
    return out


# ----------------------------------------------------------------------------- renumbering
def _shift(rows: np.ndarray, drop: np.ndarray) -> np.ndarray:
    """Row numbers after removing the (sorted) ``drop`` rows: minus the removed rows before each."""
    return rows - np.searchsorted(drop, rows, side="left")


def _renumber_rows(files: pd.Series, rows: np.ndarray, shifts: dict[str, np.ndarray]) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.int64).copy()
    f = files.astype("string").to_numpy(dtype=object, na_value="")
    for rel, drop in shifts.items():
        m = f == rel
        if m.any():
            rows[m] = _shift(rows[m], drop)
    return rows


def _renumber_ids(ids, shifts: dict[str, np.ndarray]):
    """``<channel>:<file>:<row>`` ids (any text array) with the rows of rewritten files renumbered.

    Returns ``(pyarrow large_string array, changed)``; the work is done in pyarrow.
    """
    import pyarrow as pa
    import pyarrow.compute as pc


    arr = arrow_strings(pd.Series(ids).astype("string")).combine_chunks()
    changed = False
    for rel, drop in shifts.items():
        ex = pc.extract_regex(arr, f"^(?P<head>[^:]*:{re.escape(rel)}:)(?P<row>[0-9]+)$")
        valid = pc.fill_null(pc.is_valid(ex), False)
        idx = np.flatnonzero(valid.to_numpy(zero_copy_only=False))
        if not len(idx):
            continue
        sub = pc.take(ex, pa.array(idx))
        rows = pc.cast(pc.struct_field(sub, "row"), pa.int64()).to_numpy()
        new = _shift(rows, drop)
        if np.array_equal(new, rows):
            continue
        head = pc.cast(pc.struct_field(sub, "head"), pa.large_string())
        new_ids = pc.binary_join_element_wise(head, pc.cast(pa.array(new), pa.large_string()),
                                              pa.scalar("", pa.large_string()))
        arr = pc.replace_with_mask(arr, valid, new_ids)
        changed = True
    return arr, changed


# ----------------------------------------------------------------------------- the plan
@dataclass
class _TableEdit:
    path: Path
    drop: np.ndarray                      # bool per row
    renumber: list[tuple[str, str]]       # (row column, file column) pairs
    renumber_ids: list[str]               # record-id columns (and columns that may hold record ids)


@dataclass
class _Plan:
    raw_drop: dict[str, np.ndarray] = field(default_factory=dict)       # rel -> sorted rows
    # per (file, channel): a file read by several mappings has one ledger entry per mapping
    ingested_drop: dict[tuple[str, str], int] = field(default_factory=dict)    # ingested rows removed
    quarantine_drop: dict[tuple[str, str], int] = field(default_factory=dict)  # ingest-stage quarantined rows
    tables: list[_TableEdit] = field(default_factory=list)
    audiences: dict[Path, int] = field(default_factory=dict)
    access_files: list[Path] = field(default_factory=list)
    records: set[str] = field(default_factory=set)
    truth_persons: set[str] = field(default_factory=set)


def _in_rows(files: pd.Series, rows: np.ndarray, drop: Mapping[str, Iterable[int]]) -> np.ndarray:
    """True where (file, row) is one of the ``drop`` rows."""
    f = files.astype("string").to_numpy(dtype=object, na_value="")
    rows = np.asarray(rows, dtype=np.int64)
    out = np.zeros(len(rows), bool)
    for rel, rs in drop.items():
        m = f == rel
        if m.any():
            out[m] = np.isin(rows[m], np.fromiter(rs, dtype=np.int64))
    return out


def _is_text(t) -> bool:
    import pyarrow as pa

    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _count(target: dict[tuple[str, str], int], files: pd.Series, channel: str) -> None:
    """Add the rows per file of ``files`` to ``target[(file, channel)]``."""
    for rel, n in files.astype(str).value_counts().items():
        target[(rel, channel)] = target.get((rel, channel), 0) + int(n)


def _add_rows(target: dict[str, set], files: pd.Series, rows: np.ndarray) -> None:
    for f, r in zip(files.astype(str).tolist(), np.asarray(rows).tolist()):
        target.setdefault(f, set()).add(int(r))


def _ingested_hits(ingested: list, person: _Person) -> list[np.ndarray]:
    hits = []
    records = pd.Index(person.records)
    keys = list(person.keys)
    for _f, _channel, _df, rid, obs in ingested:
        hit = isin_text(rid, records)
        hit[obs["row"].to_numpy()[isin_text(obs["key"], keys)]] = True
        hits.append(hit)
    return hits


def plan_erasure(paths: Paths, person: _Person, mappings, settings, cfg) -> _Plan:
    import pyarrow.parquet as pq

    from ..clean import record_ids

    plan = _Plan()
    drop_rows: dict[str, set] = {}
    # 1. ingested rows: the person's records, and rows that carry the person's identifiers
    ingested = []
    for channel, m in mappings.items():
        for f in sorted((paths.ingested / channel).glob("*.parquet")):
            df = pd.read_parquet(f).reset_index(drop=True)
            rid = record_ids(channel, df["_source_file"], df["_source_row"]).reset_index(drop=True)
            # a linked record is the person's exactly when its OneID is (no other OneID's record carries
            # the person's identifiers); only rows without a record id are looked at value by value
            unlinked = np.flatnonzero(~isin_text(rid, person.linked.get(channel, [])))
            obs = observe_identifiers(df.iloc[unlinked], m, settings, cfg, standardised=False)
            obs["row"] = unlinked[obs["row"].to_numpy()]
            obs["key"] = observation_keys(obs)
            ingested.append((f, channel, df[["_source_file", "_source_row"]], rid, obs))
    for _ in range(5):  # identifiers on rows found by identifier (an older phone) find further rows
        hits = _ingested_hits(ingested, person)
        new_keys = set()
        for (_f, _c, _df, _rid, obs), hit in zip(ingested, hits):
            extra = obs[hit[obs["row"].to_numpy()] & ~obs["placeholder"].to_numpy(bool)]
            new_keys |= set(extra["key"].tolist()) - person.keys
        new_keys = {k for k in new_keys if k not in person.others}
        if not new_keys:
            break
        person.keys |= new_keys
    hits = _ingested_hits(ingested, person)
    for (_f, _c, df, _rid, _obs), hit in zip(ingested, hits):
        _add_rows(drop_rows, df.loc[hit, "_source_file"], df.loc[hit, "_source_row"].to_numpy())
    # 2. quarantine: rows of those source rows, or whose content carries the identifiers
    quarantined = []
    for channel, m in mappings.items():
        q = paths.quarantine / f"{channel}.parquet"
        if not q.exists():
            continue
        qd = pd.read_parquet(q, columns=["stage", "_source_file", "_source_row", "record"]).reset_index(drop=True)
        hit = _in_rows(qd["_source_file"], qd["_source_row"].to_numpy(), drop_rows)
        obs = text_observations(qd["record"], m, settings, cfg) if len(qd) else empty_observations()
        if len(obs):
            hit[obs["row"].to_numpy()[isin_text(observation_keys(obs), person.keys)]] = True
        if hit.any():
            _add_rows(drop_rows, qd.loc[hit, "_source_file"], qd.loc[hit, "_source_row"].to_numpy())
        quarantined.append((q, channel, qd))
    # every removed source row goes from every table of every mapping that read its file
    plan.raw_drop = {rel: np.array(sorted(rows), dtype=np.int64) for rel, rows in sorted(drop_rows.items())}
    for (f, channel, df, _rid, _obs) in ingested:
        hit = _in_rows(df["_source_file"], df["_source_row"].to_numpy(), plan.raw_drop)
        _count(plan.ingested_drop, df.loc[hit, "_source_file"], channel)
        plan.tables.append(_TableEdit(f, hit, [("_source_row", "_source_file")], []))
    for q, channel, qd in quarantined:
        hit = _in_rows(qd["_source_file"], qd["_source_row"].to_numpy(), plan.raw_drop)
        _count(plan.quarantine_drop, qd.loc[hit & (qd["stage"].astype(str) == "ingest").to_numpy(bool),
                                            "_source_file"], channel)
        plan.tables.append(_TableEdit(q, hit, [("_source_row", "_source_file")], []))
    # 3. cleaned: the person's records and any record of a removed source row
    person_records = pd.Index(person.records)
    for channel in mappings:
        c = paths.cleaned / f"{channel}.parquet"
        if not c.exists():
            continue
        cd = pq.read_table(c, columns=["record_id", "_source_file", "_source_row"]).to_pandas()
        hit = isin_text(cd["record_id"], person_records)
        hit |= _in_rows(cd["_source_file"], cd["_source_row"].to_numpy(), plan.raw_drop)
        plan.records |= set(cd.loc[hit, "record_id"].astype(str))
        plan.tables.append(_TableEdit(c, hit, [("_source_row", "_source_file")], ["record_id"]))
    records = pd.Index(sorted(plan.records | set(person.records.tolist())), dtype="string")
    # 4. processed: rows of the OneIDs or of the removed records
    if paths.processed.exists():
        for f in sorted(paths.processed.rglob("*.parquet")):
            schema = pq.read_schema(f)
            names = schema.names
            oid = [c for c in names if c == "oneid" or c.endswith("_oneid")]
            rec = [c for c in names if c in RECORD_COLUMNS or c.endswith("_record_id")]
            if not oid and not rec:
                continue
            t = pq.read_table(f, columns=oid + rec)  # arrow columns: an index named oneid is a column here
            hit = np.zeros(t.num_rows, bool)
            for col in oid:
                hit |= isin_text(t.column(col).to_pandas(), person.oneids)
            for col in rec:
                hit |= isin_text(t.column(col).to_pandas(), records)
            plan.tables.append(_TableEdit(f, hit, [], rec + [c for c in names if c in ID_TEXT_COLUMNS
                                                          and _is_text(schema.field(c).type)]))
    # 5. ground truth of the sample: rows of the removed source rows
    truth = paths.truth / "records.parquet"
    if truth.exists():
        td = pq.read_table(truth, columns=["source_file", "source_row", "person_id"]).to_pandas()
        hit = _in_rows(td["source_file"], td["source_row"].to_numpy(), plan.raw_drop)
        # persons whose every record goes (persons who never had a record stay)
        plan.truth_persons = set(td.loc[hit, "person_id"].astype(str)) - set(td.loc[~hit, "person_id"].astype(str))
        plan.tables.append(_TableEdit(truth, hit, [("source_row", "source_file")], []))
    # 6. audience exports and earlier access-request files
    if paths.reports.exists():
        for f in sorted(paths.reports.glob("*/audiences/*.csv")):
            if f.parent.parent.is_symlink():  # reports/latest -> a run folder listed anyway
                continue
            n = _audience_rows(f, set(person.oneids), count_only=True)
            if n:
                plan.audiences[f] = n
    access = privacy_dir(paths) / "access"
    if access.exists() and person.oneids:
        for f in sorted(access.glob("*.json")):
            try:
                held = set(json.loads(f.read_text(encoding="utf-8")).get("oneids", []))
            except (ValueError, OSError, AttributeError):
                continue
            if held & set(person.oneids):
                plan.access_files.append(f)
    return plan


def _audience_rows(path: Path, oneids: set[str], *, count_only: bool) -> int:
    data = path.read_bytes()
    pieces = _pieces(data, csv_rules=True)
    header_idx = next((i for i, (_, rec) in enumerate(pieces) if rec), None)
    if header_idx is None:
        return 0
    header = next(csv.reader([pieces[header_idx][0].decode("utf-8-sig", errors="replace")]))
    if "oneid" not in header:
        return 0
    col = header.index("oneid")
    kept, n = [], 0
    for i, (chunk, rec) in enumerate(pieces):
        if rec and i > header_idx:
            fields = next(csv.reader(io.StringIO(chunk.decode("utf-8", errors="replace"))), [])
            if len(fields) > col and fields[col] in oneids:
                n += 1
                continue
        kept.append(chunk)
    if n and not count_only:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(b"".join(kept))
        os.replace(tmp, path)
    return n


# ----------------------------------------------------------------------------- applying it
def _apply_table(edit: _TableEdit, shifts: dict[str, np.ndarray]) -> int:
    """Rewrite one Parquet file without the dropped rows, renumbering rows of rewritten files.

    A file with nothing to drop and nothing to renumber is left as it is.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    n_drop = int(edit.drop.sum())
    if not n_drop and not (shifts and (edit.renumber or edit.renumber_ids)):
        return 0
    t = pq.read_table(edit.path)
    changed = bool(n_drop)
    if n_drop:
        t = t.filter(pa.array(~edit.drop))
    for row_col, file_col in (edit.renumber if shifts else []):
        rows = t.column(row_col).to_numpy()
        new = _renumber_rows(t.column(file_col).to_pandas(), rows, shifts)
        if not np.array_equal(new, rows):
            i = t.schema.get_field_index(row_col)
            t = t.set_column(i, t.schema.field(i), pa.array(new, type=t.schema.field(i).type))
            changed = True
    for col in (edit.renumber_ids if shifts else []):
        new, moved = _renumber_ids(t.column(col).to_pandas(), shifts)
        if moved:
            i = t.schema.get_field_index(col)
            t = t.set_column(i, t.schema.field(i), new.cast(t.schema.field(i).type))
            changed = True
    if changed:
        tmp = edit.path.with_name(edit.path.name + ".tmp")
        pq.write_table(t, tmp)
        os.replace(tmp, edit.path)
    return n_drop


def sql_batches(ledger: Mapping[str, Mapping[str, dict]]) -> set[str]:
    """The ledger's database batches (``sql/<table>/batch-NNNNNN``): entries of a SQL source, no raw file.

    >>> sorted(sql_batches({"crm/a.csv": {"crm": {"read": 3}}, "sql/crm.members/batch-000001": {"crm": {"sql": {}}}}))
    ['sql/crm.members/batch-000001']
    """
    return {rel for rel, by in ledger.items() if any("sql" in e for e in by.values())}


def _ledger_after(ledger: dict[str, dict[str, dict]], plan: _Plan, digests: dict[str, str]
                  ) -> dict[str, dict[str, dict]]:
    """The ingest ledger once the rewritten files (``digests``: file -> new SHA-256) replace the old.

    Every mapping's entry of a rewritten file gets the new checksum; ``read`` loses the removed
    rows, ``kept`` / ``quarantined`` the removed rows that mapping had kept / quarantined, and
    ``filtered`` the rest (rows another mapping of the file kept), so
    read = kept + quarantined + suppressed + filtered still holds per entry.

    A database batch keeps its ``read`` and checksum (the rows were read, and the table still
    holds them): its removed kept and quarantined rows move to ``suppressed``, which is what a
    new read of the table would count them as.
    """
    out = {rel: {c: dict(e) for c, e in by.items()} for rel, by in ledger.items()}
    for rel in sorted(sql_batches(ledger) & set(plan.raw_drop)):
        for channel, e in out[rel].items():
            kept = plan.ingested_drop.get((rel, channel), 0)
            quarantined = plan.quarantine_drop.get((rel, channel), 0)
            new = {"kept": int(e.get("kept", 0)) - kept, "quarantined": int(e.get("quarantined", 0)) - quarantined,
                   "suppressed": int(e.get("suppressed", 0)) + kept + quarantined}
            if min(new.values()) < 0:
                raise RuntimeError(f"Erasure stopped before changing anything: the ingest ledger's counts of the "
                                   f"database batch {rel} ({channel}: {e}) do not fit the ingested rows ({kept} kept "
                                   f"and {quarantined} quarantined to remove). Run the ingest stage with force=True, "
                                   "then erase again.")
            e.update(new)
    for rel, digest in digests.items():
        n = len(plan.raw_drop.get(rel, ()))
        for channel, e in out.get(rel, {}).items():
            kept = plan.ingested_drop.get((rel, channel), 0)
            quarantined = plan.quarantine_drop.get((rel, channel), 0)
            new = {"read": int(e.get("read", 0)) - n, "kept": int(e.get("kept", 0)) - kept,
                   "quarantined": int(e.get("quarantined", 0)) - quarantined,
                   "filtered": int(e.get("filtered", 0)) - (n - kept - quarantined)}
            if min(new.values()) < 0:
                raise RuntimeError(f"Erasure stopped before changing anything: the ingest ledger's counts of "
                                   f"raw/{rel} ({channel}: {e}) do not fit the ingested rows ({kept} kept and "
                                   f"{quarantined} quarantined of the {n} rows to remove). Run the ingest stage "
                                   "with force=True, then erase again.")
            e.update(new, sha256=digest)
    return out


def refresh_manifest(paths: Paths) -> dict[str, Any] | None:
    """Recount the row counts of the canonical layer's manifest from its (erased) tables.

    ``rows`` (every table), ``rows_per_channel``, ``oneids``, ``event_types``, ``refunds``
    (matched / unmatched) and ``consent_purposes`` are recounted and ``erased_utc`` is set;
    the settings, the data's time window and the timings stay as built — the next canonical
    build refreshes them. Returns the manifest written (None without a manifest).

    >>> import tempfile
    >>> paths = get_paths(tempfile.mkdtemp(), tempfile.mkdtemp())
    >>> paths.canonical.mkdir(parents=True)
    >>> pd.DataFrame({"oneid": ["a", "b"], "record_id": ["s:f:1", "s:f:2"], "channel": ["s", "s"]}).to_parquet(
    ...     paths.canonical / "records.parquet")
    >>> _ = (paths.canonical / MANIFEST_FILE).write_text(json.dumps({"rows": {"records": 3}, "oneids": 3,
    ...     "rows_per_channel": {"s": {"records": 3}}, "window": {"last": "2026-01-01"}}), encoding="utf-8")
    >>> m = refresh_manifest(paths)
    >>> m["rows"], m["oneids"], m["rows_per_channel"], m["window"]
    ({'records': 2}, 2, {'s': {'records': 2}}, {'last': '2026-01-01'})
    """
    import pyarrow.parquet as pq

    f = paths.canonical / MANIFEST_FILE
    if not f.exists():
        return None
    manifest = json.loads(f.read_text(encoding="utf-8"))

    def read(name: str, columns: list[str]) -> pd.DataFrame | None:
        p = paths.canonical / f"{name}.parquet"
        if not p.exists():
            return None
        have = set(pq.read_schema(p).names)
        return pd.read_parquet(p, columns=[c for c in columns if c in have])

    rows = dict(manifest.get("rows") or {})
    for p in sorted(paths.canonical.glob("*.parquet")):
        rows[p.stem] = int(pq.read_metadata(p).num_rows)
    manifest["rows"] = rows
    per_channel: dict[str, dict[str, int]] = {c: {t: 0 for t in by} for c, by in
                                               (manifest.get("rows_per_channel") or {}).items()}
    for name in rows:
        df = read(name, ["channel"])
        if df is None or "channel" not in df.columns:
            continue
        for c, n in df["channel"].astype("string").value_counts().items():
            per_channel.setdefault(str(c), {})[name] = int(n)
    if "rows_per_channel" in manifest or per_channel:
        manifest["rows_per_channel"] = per_channel
    records = read("records", ["oneid"])
    if records is not None and "oneid" in records.columns:
        manifest["oneids"] = int(records["oneid"].nunique())
    events = read("events", ["event_type"])
    if events is not None and "event_types" in manifest and "event_type" in events.columns:
        manifest["event_types"] = {str(k): int(v) for k, v in events["event_type"].value_counts().sort_index().items()}
    refunds = read("refunds", ["matched"])
    if refunds is not None and "refunds" in manifest and "matched" in refunds.columns:
        matched = refunds["matched"].fillna(False).to_numpy(bool)
        manifest["refunds"] = {"matched": int(matched.sum()), "unmatched": int((~matched).sum())}
    consents = read("consents", ["purpose"])
    if consents is not None and "consent_purposes" in manifest and "purpose" in consents.columns:
        manifest["consent_purposes"] = sorted(consents["purpose"].dropna().astype(str).unique().tolist())
    manifest["erased_utc"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    tmp = f.with_name(f.name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    os.replace(tmp, f)
    return manifest


def _rel(paths: Paths, p: Path) -> str:
    try:
        return p.relative_to(paths.data).as_posix()
    except ValueError:
        try:
            return "reports/" + p.relative_to(paths.reports).as_posix()
        except ValueError:
            return str(p)


@dataclass
class ErasureReport:
    """What :func:`forget` removed (or, with ``dry_run``, would remove)."""

    oneids: list[str]
    records: list[str]                     # record ids removed (as they were before the erasure)
    rows_removed: dict[str, int]           # file (relative to data/, or reports/...) -> rows
    audit: Path | None                     # the audit log the entry went to (None in a dry run)
    dry_run: bool = False
    suppressed: dict[str, int] = field(default_factory=dict)   # identifier kind -> values on the list
    shared_values: int = 0                 # values also carried by other OneIDs: kept, not suppressed
    deleted_files: list[str] = field(default_factory=list)     # earlier access-request files

    @property
    def total_rows(self) -> int:
        return int(sum(self.rows_removed.values()))

    def summary(self) -> pd.DataFrame:
        """Rows removed per file, largest first."""
        s = pd.Series(self.rows_removed, dtype="int64", name="rows_removed")
        s.index.name = "file"
        return s.sort_values(ascending=False, kind="stable").reset_index()


def forget(paths: Paths | None = None, *, phone: str | None = None, email: str | None = None,
           oneid: str | None = None, dry_run: bool = False, log: Callable[[str], None] | None = print,
           mappings: dict[str, ChannelMapping] | None = None, max_oneids: int = 5) -> ErasureReport:
    """Erase one person (by phone, e-mail or OneID) from every layer; see the module docstring.

    Exactly one of ``phone``, ``email``, ``oneid``. Refuses a value that records of more
    than ``max_oneids`` OneIDs carry (a shared or default number). ``dry_run`` computes
    and prints the counts without changing anything (and needs no key). Holds the data
    folder's run lock while it works; the raw rewrites are all checked before the first
    file is replaced.

    >>> report = forget(get_paths(), phone="+86 138 0013 8000", dry_run=True)   # doctest: +SKIP
    >>> report.summary()                                                        # doctest: +SKIP
    """
    paths = paths or get_paths()
    if not isinstance(dry_run, bool):
        raise ValueError(f"The 'dry_run' parameter must be True or False. Got {dry_run!r} instead.")
    mappings, settings, cfg = run_settings(paths, mappings)
    if dry_run:
        return _forget(paths, phone=phone, email=email, oneid=oneid, dry_run=True, log=log, mappings=mappings,
                       settings=settings, cfg=cfg, max_oneids=max_oneids)
    from ..lock import data_lock

    with data_lock(paths.data, owner="workbench forget", log=log):
        return _forget(paths, phone=phone, email=email, oneid=oneid, dry_run=False, log=log, mappings=mappings,
                       settings=settings, cfg=cfg, max_oneids=max_oneids)


def _forget(paths: Paths, *, phone, email, oneid, dry_run: bool, log, mappings, settings, cfg,
            max_oneids: int) -> ErasureReport:
    from ..ingest import file_sha256, load_ledger, save_ledger

    emit = log or (lambda _msg: None)
    person = locate_person(paths, phone=phone, email=email, oneid=oneid, mappings=mappings, settings=settings, cfg=cfg,
                     max_oneids=max_oneids)
    plan = plan_erasure(paths, person, mappings, settings, cfg)
    ledger = load_ledger(paths)
    # a database batch has no raw file to rewrite, and its rows keep their numbers: the table still
    # holds the person's rows, and a new read numbers them as before (and suppresses them)
    batches = sql_batches(ledger) & set(plan.raw_drop)
    shifts = {rel: rows for rel, rows in plan.raw_drop.items() if rel not in batches}
    rows_removed: dict[str, int] = {}
    for rel, rows in shifts.items():
        if (paths.raw / rel).exists():
            rows_removed[f"raw/{rel}"] = len(rows)
    for e in plan.tables:
        if e.drop.any():
            rows_removed[_rel(paths, e.path)] = int(e.drop.sum())
    for f, n in plan.audiences.items():
        rows_removed[_rel(paths, f)] = n
    n_persons = _truth_persons(paths, plan.truth_persons, count_only=True)
    if n_persons:
        rows_removed[_rel(paths, paths.truth / "persons.parquet")] = n_persons
    kinds = pd.Series([k.split(KEY_SEP, 1)[0] for k in person.keys], dtype="string")
    suppressed = {str(k): int(v) for k, v in kinds.value_counts().sort_index().items()}
    records = sorted(plan.records | set(person.records.tolist()))
    report = ErasureReport(person.oneids, records, dict(sorted(rows_removed.items())), None, dry_run, suppressed,
                           person.shared, [_rel(paths, f) for f in plan.access_files])
    prefix = "forget (dry run)" if dry_run else "forget"
    if not person.oneids:
        emit(f"{prefix}: no record carries the {person.kind} given; nothing to remove"
             + ("" if dry_run else "; the value goes on the suppression list."))
    else:
        emit(f"{prefix}: {len(person.oneids)} OneID(s), {len(records):,} record(s), "
             f"{report.total_rows:,} row(s) in {len(rows_removed)} file(s); {sum(suppressed.values())} identifier "
             f"value(s) to suppress, {person.shared} shared value(s) kept")
        for f, n in report.rows_removed.items():
            emit(f"  {f}: {n:,} row(s) {'would be ' if dry_run else ''}removed")
        for f in report.deleted_files:
            emit(f"  {f}: access-request file {'would be ' if dry_run else ''}deleted")
    if dry_run:
        return report

    key = load_key(create=True, log=log)
    readers = file_readers(paths, mappings)
    tmp_dir = paths.data / ".erasure-tmp"
    try:
        # 1. every raw rewrite is made and checked, and the ledger worked out, before anything changes
        staged: dict[str, Path] = {}
        for rel, rows in shifts.items():
            src = paths.raw / rel
            if not src.exists():
                continue
            channels = readers.get(rel)
            if not channels:
                raise RuntimeError(f"Erasure stopped before changing anything: no channel mapping reads raw/{rel}.")
            by_channel = ledger.get(rel) or {}
            digest = file_sha256(src)
            unknown = [c for c in channels if c not in by_channel]
            stale = sorted(c for c, e in by_channel.items() if e.get("sha256") != digest)
            if not by_channel:
                raise RuntimeError(f"Erasure stopped before changing anything: raw/{rel} is not in the ingest "
                                   "ledger, so its row numbers may not match the ingested rows. Run the ingest "
                                   "stage first, then erase again.")
            if stale or unknown:
                raise RuntimeError(f"Erasure stopped before changing anything: raw/{rel} changed since it was "
                                   "ingested (the ingest ledger has " + "; ".join(
                                       ([f"no entry for the mapping(s) {unknown}"] if unknown else [])
                                       + ([f"another checksum for {stale}"] if stale else []))
                                   + "), so its row numbers may not match the ingested rows. Run the ingest stage "
                                   "first, then erase again.")
            tmp_dir.mkdir(parents=True, exist_ok=True)
            dst = tmp_dir / f"{len(staged)}{src.suffix}"
            _rewrite_raw(src, dst, mappings[channels[0]], rows, rel)  # the mappings of a file share its format
            staged[rel] = dst
        new_ledger = _ledger_after(ledger, plan, {rel: file_sha256(dst) for rel, dst in staged.items()})
        # 2. the suppression list first: whatever happens next, the person stays out of later ingests
        add_suppression(paths, person.keys, key)
        # 3. raw files and the ingest ledger (new checksums and counts: the next ingest skips them)
        for rel, dst in staged.items():
            os.replace(dst, paths.raw / rel)
        if (staged or batches) and paths.ingest_ledger.exists():
            save_ledger(paths, new_ledger)
        # 4. every derived table, renumbered; the canonical manifest's row counts
        for e in plan.tables:
            _apply_table(e, shifts)
        if any(e.drop.any() and e.path.parent == paths.canonical for e in plan.tables):
            refresh_manifest(paths)
        _truth_persons(paths, plan.truth_persons)
        for f in plan.audiences:
            _audience_rows(f, set(person.oneids), count_only=False)
        for f in plan.access_files:
            f.unlink(missing_ok=True)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    # 5. the audit entry: keyed hash of the request, never the value
    ident = person.oneids[0] if person.kind == "oneid" else person.value
    ident = str(identifier_hash([ident], kind=person.kind, key=key).iloc[0])
    entry = {"time_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "request": person.kind,
             "identifier_hash": ident, "key_fingerprint": key_fingerprint(key), "oneids": person.oneids,
             "records": len(records), "rows_removed": report.rows_removed, "suppressed_values": suppressed,
             "shared_values_kept": person.shared, "deleted_files": report.deleted_files}
    audit = privacy_dir(paths) / AUDIT_FILE
    audit.parent.mkdir(parents=True, exist_ok=True)
    with open(audit, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry, ensure_ascii=False, sort_keys=False) + "\n")
    report.audit = audit
    emit(f"forget: done; audit entry in {audit}")
    return report


def _truth_persons(paths: Paths, gone: set[str], *, count_only: bool = False) -> int:
    """Drop the ground-truth persons ``gone`` (all their records removed; the row holds their contacts)."""
    persons = paths.truth / "persons.parquet"
    if not gone or not persons.exists():
        return 0
    import pyarrow as pa
    import pyarrow.parquet as pq

    removed = 0
    # the persons (their contacts), and their rows in the truth of the sample's past campaigns
    for f in (persons, paths.truth / "campaign_members.parquet"):
        if not f.exists():
            continue
        t = pq.read_table(f)
        drop = np.array([p in gone for p in t.column("person_id").to_pylist()], dtype=bool)
        if drop.any() and not count_only:
            tmp = f.with_name(f.name + ".tmp")
            pq.write_table(t.filter(pa.array(~drop)), tmp)
            os.replace(tmp, f)
        if f == persons:
            removed = int(drop.sum())
    return removed
