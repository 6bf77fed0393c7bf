"""Right of access: everything the workbench holds about one person, in one JSON file.

``access_request(paths, phone=...)`` (or ``email=`` / ``oneid=``) finds the person as
:func:`workbench.privacy.erasure.forget` does — the OneIDs whose records carry the
normalised phone or e-mail, then every record of those OneIDs — and writes one JSON
document with

- ``records``: every linked record, per channel, with all cleaned columns and its OneID;
- ``other_rows``: ingested rows that carry the person's identifiers but are no record of
  their own (older CRM versions merged by the dedupe rule, exact duplicates);
- ``quarantined``: quarantined rows of the person (as the quarantine holds them);
- ``identifiers``: the identifier values on their records, per kind;
- ``customer_360`` (``processed/customer_360.parquet``), ``segments`` (RFM, clusters,
  engagement/value), ``segment_snapshots``, ``scores`` — each when the file exists;
- ``consents``: the reconciled consent ledger rows (:mod:`workbench.privacy.consent`);
- ``identity_links``: the identity evidence between their records.

The file holds personal data, so it stays inside ``data/``: by default
``data/privacy/access/<keyed hash of the request>.json`` (:func:`~workbench.privacy.erasure.identifier_hash`,
never the value itself). A later :func:`~workbench.privacy.erasure.forget` of the person
deletes it. Timestamps are ISO 8601 (UTC ones end in ``Z``), missing values are ``null``.

Example:
    >>> from workbench.privacy.access import access_request
    >>> path = access_request(phone="138 0013 8000")            # doctest: +SKIP
    >>> json.loads(path.read_text(encoding="utf-8"))["oneids"]   # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from ..config import Paths, get_paths
from ..mapping import ChannelMapping
from .erasure import locate_person, plan_erasure, run_settings
from .suppression import KEY_SEP, identifier_hash, isin_text, privacy_dir
from .keys import load_key

__all__ = ["access_request", "json_records"]

#: Processed tables shown under ``segments`` when present.
SEGMENT_FILES = ("rfm_segments", "clusters", "engagement_value")


def json_records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-safe dicts: ISO timestamps, ``None`` for missing values, plain numbers.

    >>> json_records(pd.DataFrame({"at": pd.to_datetime(["2026-01-01"], utc=True),
    ...                            "n": pd.array([None], dtype="Int64")}))
    [{'at': '2026-01-01T00:00:00.000Z', 'n': None}]
    """
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"The 'df' parameter must be a pandas DataFrame. Got {type(df).__name__} instead.")
    if df.empty:
        return []
    return json.loads(df.to_json(orient="records", date_format="iso", force_ascii=False, default_handler=str))


def _with_index(df: pd.DataFrame) -> pd.DataFrame:
    """A table written with ``oneid`` as its index gets it back as a column."""
    if "oneid" not in df.columns and df.index.name == "oneid":
        return df.reset_index()
    return df.reset_index(drop=True)


def _rows_of(path: Path, oneids: list[str]) -> list[dict[str, Any]] | None:
    if not path.exists():
        return None
    df = _with_index(pd.read_parquet(path))
    if "oneid" not in df.columns:
        return None
    return json_records(df[isin_text(df["oneid"], oneids)].reset_index(drop=True))


def access_request(paths: Paths | None = None, *, phone: str | None = None, email: str | None = None,
                   oneid: str | None = None, out: str | os.PathLike | None = None,
                   mappings: dict[str, ChannelMapping] | None = None, max_oneids: int = 5) -> Path:
    """Write everything held about one person to one JSON file and return its path.

    Exactly one of ``phone``, ``email`` and ``oneid``. ``out`` defaults to
    ``data/privacy/access/<keyed hash>.json`` (the key is created on first use). A phone or
    e-mail nobody carries gives a file that says so (no OneIDs, no records).

    >>> path = access_request(get_paths(), email="Zhang.Wei@QQ.com")   # doctest: +SKIP
    """
    from ..clean import load_cleaned
    from .consent import consent_ledger

    paths = paths or get_paths()
    mappings, settings, cfg = run_settings(paths, mappings)
    person = locate_person(paths, phone=phone, email=email, oneid=oneid, mappings=mappings, settings=settings, cfg=cfg,
                     max_oneids=max_oneids)
    plan = plan_erasure(paths, person, mappings, settings, cfg)
    key = load_key(create=True, log=None)
    ident = person.oneids[0] if person.kind == "oneid" else person.value
    digest = str(identifier_hash([ident], kind=person.kind, key=key).iloc[0])
    records = pd.Index(sorted(set(person.records.tolist())), dtype="string")
    registry = pd.read_parquet(paths.processed / "oneid_records.parquet", columns=["record_id", "oneid"])
    registry = registry[isin_text(registry["record_id"], records)]

    doc: dict[str, Any] = {
        "generated_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "request": {"kind": person.kind, "identifier_hash": digest},
        "oneids": person.oneids,
    }
    ids: dict[str, list[str]] = defaultdict(list)
    for k in sorted(person.own | person.keys):
        kind, _, value = k.partition(KEY_SEP)
        ids[kind].append(value)
    doc["identifiers"] = dict(ids)

    by_channel: dict[str, list] = {}
    counts: dict[str, int] = {}
    for channel in mappings:
        f = paths.cleaned / f"{channel}.parquet"
        if not f.exists():
            continue
        df = load_cleaned(channel, paths)
        mine = df[isin_text(df["record_id"], records)].merge(registry, on="record_id", how="left")
        if len(mine):
            by_channel[channel] = json_records(mine)
            counts[channel] = len(mine)
    doc["records"] = by_channel

    other, quarantined = {}, {}
    for e in plan.tables:
        if not e.drop.any():
            continue
        if e.path.parent.parent == paths.ingested:
            df = pd.read_parquet(e.path).reset_index(drop=True)[e.drop]
            rid = (e.path.parent.name + ":" + df["_source_file"].astype("string") + ":"
                   + df["_source_row"].astype("string"))
            df = df[~isin_text(rid, records)]
            if len(df):
                other.setdefault(e.path.parent.name, []).extend(json_records(df))
        elif e.path.parent == paths.quarantine:
            df = pd.read_parquet(e.path).reset_index(drop=True)[e.drop]
            quarantined[e.path.stem] = json_records(df)
    doc["other_rows"] = other
    doc["quarantined"] = quarantined
    doc["summary"] = {"records": int(sum(counts.values())), "records_per_channel": counts,
                      "other_rows": int(sum(len(v) for v in other.values())),
                      "quarantined_rows": int(sum(len(v) for v in quarantined.values()))}

    doc["customer_360"] = _rows_of(paths.processed / "customer_360.parquet", person.oneids)
    doc["segments"] = {name: rows for name in SEGMENT_FILES
                       if (rows := _rows_of(paths.processed / f"{name}.parquet", person.oneids)) is not None}
    snaps = paths.processed / "segments"
    doc["segment_snapshots"] = ({f.stem: rows for f in sorted(snaps.glob("*.parquet"))
                                 if (rows := _rows_of(f, person.oneids)) is not None} if snaps.exists() else {})
    doc["scores"] = _rows_of(paths.processed / "scores.parquet", person.oneids)
    if person.oneids:
        ledger = consent_ledger(paths)
        doc["consents"] = json_records(ledger[isin_text(ledger["oneid"], person.oneids)].reset_index(drop=True))
    else:
        doc["consents"] = []
    links_file = paths.processed / "identity_links.parquet"
    if links_file.exists() and len(records):
        links = pd.read_parquet(links_file)
        both = isin_text(links["record_a"], records) & isin_text(links["record_b"], records)
        doc["identity_links"] = json_records(links[both].reset_index(drop=True))
    else:
        doc["identity_links"] = []

    target = Path(out) if out is not None else privacy_dir(paths) / "access" / f"{digest}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(doc, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    os.replace(tmp, target)
    return target
