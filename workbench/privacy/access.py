"""Right of access: everything the workbench holds about one person, in one JSON file.

``access_request(paths, phone=...)`` (or ``email=`` / ``oneid=``) finds the person as
:func:`workbench.privacy.erasure.forget` does — the OneIDs whose records carry the
normalised phone or e-mail, then every record of those OneIDs — with the mappings and
settings the run recorded (:mod:`workbench.runconfig`), and writes one JSON document with

- ``records``: every linked record, per channel (every mapping, whatever its role), with
  all cleaned columns and its OneID;
- ``other_rows``: ingested rows that carry the person's identifiers but are no record of
  their own (older versions of a profile merged by the dedupe rule, exact duplicates);
- ``quarantined``: quarantined rows of the person (as the quarantine holds them);
- ``identifiers``: the identifier values on their records, per kind;
- ``canonical``: the person's rows of every table of the canonical layer
  (``processed/canonical/``: records, profiles, traits, orders, order lines, refunds,
  events, consents, identifiers);
- ``customer_360`` (``processed/customer_360.parquet``), ``segments`` (RFM and its
  migration, clusters, engagement/value), ``segment_snapshots``, ``scores`` (one entry per
  model: ``scores_<task>.parquet`` by task, and ``clv``) — each when the file exists;
- ``consents``: the reconciled consent ledger rows of the canonical layer
  (:func:`workbench.privacy.consent.consent_ledger`);
- ``identity_links``: the identity evidence between their records;
- ``other_tables``: the person's rows of any other Parquet under ``processed/`` (OneID
  history, scored pairs, the written consent ledger ...): every row the erasure would remove;
- ``audiences``: the audience exports (``reports/*/audiences/*.csv``) that list them.

So the file covers exactly what :func:`~workbench.privacy.erasure.forget` would remove
(besides the raw files, whose rows are the ``records``, ``other_rows`` and ``quarantined``,
and the sample's ground truth, which is evaluation data).

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

import csv
import io
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
from .keys import load_key
from .suppression import KEY_SEP, identifier_hash, isin_text, privacy_dir

__all__ = ["access_request", "json_records"]

#: Processed tables shown under ``segments`` when present.
SEGMENT_FILES = ("rfm_segments", "rfm_migration", "clusters", "engagement_value")
#: Model outputs shown under ``scores``: ``processed/scores_<task>.parquet`` by task, and these by name.
SCORES_PREFIX = "scores_"
MODEL_FILES = ("clv",)


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


def _audience_rows(path: Path, oneids: set[str]) -> list[dict[str, Any]]:
    """Rows of an audience export (CSV with a ``oneid`` column) that list one of ``oneids``."""
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    return [row for row in csv.DictReader(io.StringIO(text)) if row.get("oneid") in oneids]


def access_request(paths: Paths | None = None, *, phone: str | None = None, email: str | None = None,
                   oneid: str | None = None, out: str | os.PathLike | None = None,
                   mappings: dict[str, ChannelMapping] | None = None, max_oneids: int = 5) -> Path:
    """Write everything held about one person to one JSON file and return its path.

    Exactly one of ``phone``, ``email`` and ``oneid``. ``out`` defaults to
    ``data/privacy/access/<keyed hash>.json`` (the key is created on first use). A phone or
    e-mail nobody carries gives a file that says so (no OneIDs, no records). The mappings and
    settings are those the run recorded unless ``mappings`` are given. Changes nothing in
    ``data/`` but the file written.

    >>> path = access_request(get_paths(), email="Zhang.Wei@QQ.com")   # doctest: +SKIP
    """
    from ..canonical import load_canonical, load_registry
    from ..clean import load_cleaned
    from .consent import consent_ledger

    paths = paths or get_paths()
    mappings, settings, cfg = run_settings(paths, mappings)
    person = locate_person(paths, phone=phone, email=email, oneid=oneid, mappings=mappings, settings=settings,
                           cfg=cfg, max_oneids=max_oneids)
    plan = plan_erasure(paths, person, mappings, settings, cfg)
    key = load_key(create=True, log=None)
    ident = person.oneids[0] if person.kind == "oneid" else person.value
    digest = str(identifier_hash([ident], kind=person.kind, key=key).iloc[0])
    records = pd.Index(sorted(set(person.records.tolist())), dtype="string")
    registry = load_registry(paths)[["record_id", "oneid"]]
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

    # every linked record, per channel: the cleaned rows with their OneID
    by_channel: dict[str, list] = {}
    counts: dict[str, int] = {}
    for channel in mappings:
        if not (paths.cleaned / f"{channel}.parquet").exists():
            continue
        df = load_cleaned(channel, paths)
        mine = df[isin_text(df["record_id"], records)].merge(registry, on="record_id", how="left")
        if len(mine):
            by_channel[channel] = json_records(mine.reset_index(drop=True))
            counts[channel] = len(mine)
    doc["records"] = by_channel

    # the erasure plan says which rows of every other table are theirs
    other, quarantined = {}, {}
    canonical: dict[str, list] = {}
    segments: dict[str, list] = {}
    snapshots: dict[str, list] = {}
    scores: dict[str, list] = {}
    tables: dict[str, list] = {}
    doc["customer_360"] = [] if paths.customer_360.exists() else None
    for e in plan.tables:
        if e.path.parent.parent == paths.ingested:
            if not e.drop.any():
                continue
            df = pd.read_parquet(e.path).reset_index(drop=True)[e.drop]
            rid = (e.path.parent.name + ":" + df["_source_file"].astype("string") + ":"
                   + df["_source_row"].astype("string"))
            df = df[~isin_text(rid, records)]
            if len(df):
                other.setdefault(e.path.parent.name, []).extend(json_records(df.reset_index(drop=True)))
        elif e.path.parent == paths.quarantine:
            if e.drop.any():
                df = pd.read_parquet(e.path).reset_index(drop=True)[e.drop]
                quarantined[e.path.stem] = json_records(df.reset_index(drop=True))
        elif _inside(e.path, paths.processed):
            if e.path in (paths.registry, paths.identity_links):
                continue  # the registry is in ``records``; links below
            rows = json_records(_with_index(pd.read_parquet(e.path))[e.drop].reset_index(drop=True)) \
                if e.drop.any() else []
            if e.path.parent == paths.canonical:
                canonical[e.path.stem] = rows
            elif e.path == paths.customer_360:
                doc["customer_360"] = rows
            elif e.path.parent == paths.processed and e.path.stem in SEGMENT_FILES:
                segments[e.path.stem] = rows
            elif e.path.parent == paths.segments:
                snapshots[e.path.stem] = rows
            elif e.path.parent == paths.processed and e.path.stem.startswith(SCORES_PREFIX):
                scores[e.path.stem[len(SCORES_PREFIX):]] = rows
            elif e.path.parent == paths.processed and e.path.stem in MODEL_FILES:
                scores[e.path.stem] = rows
            elif rows:
                tables[e.path.relative_to(paths.processed).as_posix()] = rows
    doc["other_rows"] = other
    doc["quarantined"] = quarantined
    doc["canonical"] = canonical
    doc["segments"] = segments
    doc["segment_snapshots"] = snapshots
    doc["scores"] = scores

    if person.oneids and (paths.canonical / "manifest.json").exists():
        ledger = consent_ledger(load_canonical(paths))
        doc["consents"] = json_records(ledger[isin_text(ledger["oneid"], person.oneids)].reset_index(drop=True))
    else:
        doc["consents"] = []
    if paths.identity_links.exists() and len(records):
        links = pd.read_parquet(paths.identity_links)
        both = isin_text(links["record_a"], records) & isin_text(links["record_b"], records)
        doc["identity_links"] = json_records(links[both].reset_index(drop=True))
    else:
        doc["identity_links"] = []
    doc["other_tables"] = tables
    oneids = set(person.oneids)
    doc["audiences"] = {str(f.relative_to(paths.reports).as_posix()): _audience_rows(f, oneids)
                        for f in plan.audiences}
    doc["summary"] = {"records": int(sum(counts.values())), "records_per_channel": counts,
                      "other_rows": int(sum(len(v) for v in other.values())),
                      "quarantined_rows": int(sum(len(v) for v in quarantined.values())),
                      "canonical_rows": {t: len(v) for t, v in canonical.items()},
                      "identity_links": len(doc["identity_links"]), "audiences": len(doc["audiences"])}

    target = Path(out) if out is not None else privacy_dir(paths) / "access" / f"{digest}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(doc, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    os.replace(tmp, target)
    return target


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
        return True
    except ValueError:
        return False
