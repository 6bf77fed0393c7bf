"""The suppression list: identifiers of erased persons, kept out of every later ingest.

``workbench forget`` (:mod:`workbench.privacy.erasure`) puts a person's identifiers here as
keyed hashes (:func:`identifier_hash`, HMAC with the local key); the ingest stage asks
:func:`suppressed_rows` about every row it reads, so a restored backup cannot bring the
person back. Values are normalised with the normalisers the clean stage uses and typed as the
identity stage types them, so ``138-0013-8000`` typed into a site's login field is the same
phone as ``+86 138 0013 8000`` in the member table.

This module sits low in the package: it needs the mappings, the normalisers, the key and
the recorded run settings, and no stage.

Example:
    >>> import tempfile
    >>> paths = get_paths(tempfile.mkdtemp(), tempfile.mkdtemp())
    >>> suppress(paths, {"email": ["Zhang.Wei@Example.com "]}, key=bytes(range(32)))
    1
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..config import Paths, get_paths
from ..mapping import ChannelMapping
from ..normalise import arrow_strings, normalise_emails, normalise_phones, normalise_text, typed_values
from ..runconfig import resolve_cleaning, resolve_identity
from .keys import key_fingerprint, load_key, pseudonymise

__all__ = ["IDENTITY_TYPES", "KEY_SEP", "SUPPRESSION_FILE", "add_suppression", "empty_observations", "field_kinds",
           "identifier_hash", "isin_text", "load_suppression", "normalise_request", "observation_keys",
           "observe_identifiers", "privacy_dir", "suppress", "suppressed_records", "suppressed_rows",
           "text_observations"]

#: Field types whose values identify a person (the clean stage's IDENTITY_TYPES).
IDENTITY_TYPES = ("phone", "email", "identifier")
#: The suppression list, inside :func:`privacy_dir`.
SUPPRESSION_FILE = "suppression.parquet"
SUPPRESSION_COLUMNS = ["kind", "hash", "key_fingerprint", "added_utc"]
KEY_SEP = "\x1f"
_EMPTY_OBS = {"row": "int64", "kind": "string", "value": "string", "placeholder": "bool"}



def privacy_dir(paths: Paths) -> Path:
    """``<data>/privacy``: audit log, suppression list and access-request files (personal data stays in data/).

    >>> privacy_dir(get_paths("/srv/crm-data")).as_posix()
    '/srv/crm-data/privacy'
    """
    return paths.data / "privacy"


def identifier_hash(values: pd.Series | Iterable[Any], *, kind: str, key: bytes | None = None) -> pd.Series:
    """Keyed hash (HMAC-SHA-256, 64 hex) of *normalised* identifier values of one kind.

    The namespace is ``suppression:<kind>``, so a phone and a member id never share a hash.
    Used for the suppression list, the audit log and access-request file names.

    >>> identifier_hash(["+8613800138000"], kind="phone", key=bytes(range(32))).str[:12].tolist()
    ['639d0e75ece2']
    """
    if not isinstance(kind, str) or not kind:
        raise ValueError(f"The 'kind' parameter must be a non-empty string. Got {kind!r} instead.")
    return pseudonymise(values, key=key, namespace=f"suppression:{kind}")


def field_kinds(mapping: ChannelMapping, settings) -> dict[str, list[tuple[str, str | None]]]:
    """Identity field -> [(identifier kind, pattern)], from the identity settings' sources.

    Fields the settings do not name are their own kind (phone / email / the field name).
    """
    src = settings.sources.get(mapping.channel)
    out = {}
    for name, spec in mapping.fields.items():
        if spec.type not in IDENTITY_TYPES:
            continue
        target = src.identifiers.get(name) if src is not None else None
        if target is None:
            kinds = [spec.type if spec.type in ("phone", "email") else name]
        else:
            kinds = [str(t).partition("@")[0] for t in (target if isinstance(target, list) else [target])]
        pairs = []
        for k in kinds:
            try:
                pattern = settings.identifier(k).pattern
            except Exception:  # a kind the settings do not list
                pattern = None
            pairs.append((k, pattern))
        out[name] = pairs
    return out


# ----------------------------------------------------------------------------- observations
def empty_observations() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in _EMPTY_OBS.items()})


def observe_identifiers(df: pd.DataFrame, mapping: ChannelMapping, settings, cfg: dict, *, standardised: bool) -> pd.DataFrame:
    """Identifier values of every row: ``row`` (position), ``kind``, ``value``, ``placeholder``.

    ``standardised=False`` takes canonical raw values (ingested rows) and standardises the
    identity fields with the normalisers the clean stage uses; ``True`` takes cleaned rows
    (with their ``*_placeholder`` flags). Values are then typed as the identity stage types
    them (:func:`workbench.normalise.typed_values`).
    """
    kinds = field_kinds(mapping, settings)
    fields = [f for f in kinds if f in df.columns]
    if not fields or len(df) == 0:
        return empty_observations()
    df = df.reset_index(drop=True)
    std = df if standardised else _standardise_identity(df, mapping, fields, cfg)
    blocked = pd.Index([str(b).strip().casefold() for b in settings.blocked_values], dtype="string")
    parts = []
    for f in fields:
        remaining = std[f].astype("string")
        flag_col = f"{f}_placeholder"
        flag = (std[flag_col].fillna(False).to_numpy(bool) if standardised and flag_col in std.columns
                else np.zeros(len(std), bool))
        for kind, pattern in kinds[f]:
            vals = typed_values(remaining, kind, pattern)
            take = vals.notna().to_numpy(bool)
            if not take.any():
                continue
            remaining = remaining.where(~take)
            v = vals[take].astype("string")
            ph = flag[take] | v.str.casefold().isin(blocked).fillna(False).to_numpy(bool)
            parts.append(pd.DataFrame({"row": np.flatnonzero(take).astype("int64"), "kind": kind,
                                       "value": v.to_numpy(), "placeholder": ph}))
    if not parts:
        return empty_observations()
    out = pd.concat(parts, ignore_index=True)
    return out.astype(_EMPTY_OBS)


def _standardise_identity(df: pd.DataFrame, mapping: ChannelMapping, fields: list[str], cfg: dict) -> pd.DataFrame:
    """The identity fields of raw canonical rows as the clean stage writes them (E.164 phones with
    the field's region, lower-case e-mails, trimmed ids), with the normalisers it uses."""
    out = pd.DataFrame(index=df.index)
    for f in fields:
        spec = mapping.fields[f]
        if spec.type == "phone":
            regions = (normalise_text(df[spec.region_field]) if spec.region_field and spec.region_field in df.columns
                       else None)
            out[f] = normalise_phones(df[f], default_region=spec.region or mapping.phone_region
                                      or cfg.get("default_phone_region", "CN"), regions=regions)["e164"]
        elif spec.type == "email":
            out[f] = normalise_emails(df[f])["email"]
        else:
            out[f] = normalise_text(df[f])
    return out


def isin_text(values: pd.Series | pd.Index, lookup: Iterable[Any]) -> np.ndarray:
    """``values.isin(lookup)`` for text, hashed in pyarrow (pandas' string ``isin`` loops over ``lookup``)."""
    import pyarrow.compute as pc


    s = pd.Series(values) if not isinstance(values, pd.Series) else values
    if len(s) == 0:
        return np.zeros(0, bool)
    lk = pd.Series(list(lookup) if not isinstance(lookup, (pd.Index, pd.Series, np.ndarray)) else lookup,
                   dtype="string").dropna()
    if len(lk) == 0:
        return np.zeros(len(s), bool)
    hit = pc.is_in(arrow_strings(s.astype("string")), value_set=arrow_strings(lk.reset_index(drop=True)))
    return pc.fill_null(hit, False).to_numpy(zero_copy_only=False).astype(bool)


def observation_keys(obs: pd.DataFrame) -> pd.Series:
    return (obs["kind"].astype("string") + KEY_SEP + obs["value"].astype("string")).astype("string")


def _record_fields(texts: pd.Series, delimiter: str) -> tuple[list[int], list[str], list[int], list[dict]]:
    """Split quarantined record texts into values: JSON objects by key, other text as CSV."""
    rows, tokens, json_rows, json_objs = [], [], [], []
    for i, t in enumerate(texts.tolist()):
        if t is None or t is pd.NA or (isinstance(t, float) and np.isnan(t)):
            continue
        t = str(t)
        obj = None
        if t.lstrip().startswith("{"):
            try:
                obj = json.loads(t)
            except ValueError:
                obj = None
        if isinstance(obj, dict):
            json_rows.append(i)
            json_objs.append(obj)
            vals = [str(v) for v in obj.values() if v is not None and not isinstance(v, (dict, list))]
        else:
            try:
                vals = [x for r in csv.reader(io.StringIO(t), delimiter=delimiter) for x in r]
            except csv.Error:
                vals = re.split(r"[\r\n" + re.escape(delimiter) + "]", t)
        for v in vals:
            rows.append(i)
            tokens.append(v)
    return rows, tokens, json_rows, json_objs


def text_observations(texts: pd.Series, mapping: ChannelMapping, settings, cfg: dict) -> pd.DataFrame:
    """Identifier candidates in free-form record texts (quarantine ``record``).

    JSON records of canonical fields are read as rows of the channel (as ingest would);
    besides, every value is tried as a phone, an e-mail and as each identifier kind.
    """

    rows, tokens, json_rows, json_objs = _record_fields(texts, mapping.source.delimiter)
    parts = []
    if json_objs:
        frame = pd.DataFrame.from_records(json_objs)
        for f in mapping.fields:
            frame[f] = frame[f].astype("string") if f in frame.columns else pd.Series(pd.NA, index=frame.index,
                                                                                     dtype="string")
        obs = observe_identifiers(frame, mapping, settings, cfg, standardised=False)
        obs["row"] = np.asarray(json_rows, dtype="int64")[obs["row"].to_numpy()]
        parts.append(obs)
    if tokens:
        tok = pd.Series(tokens, dtype="string")
        pos = np.asarray(rows, dtype="int64")
        ph = normalise_phones(tok, default_region=cfg.get("default_phone_region", "CN"))
        ok = (ph["phone_status"] == "valid").to_numpy(bool)
        parts.append(pd.DataFrame({"row": pos[ok], "kind": "phone", "value": ph["e164"][ok].to_numpy(),
                                   "placeholder": False}))
        em = normalise_emails(tok)
        ok = (em["email_status"] == "valid").to_numpy(bool)
        parts.append(pd.DataFrame({"row": pos[ok], "kind": "email", "value": em["email"][ok].to_numpy(),
                                   "placeholder": False}))
        text = normalise_text(tok)
        ok = text.notna().to_numpy(bool)
        other = sorted({k for pairs in field_kinds(mapping, settings).values() for k, _ in pairs} - {"phone", "email"})
        for k in other:
            parts.append(pd.DataFrame({"row": pos[ok], "kind": k, "value": text[ok].to_numpy(),
                                       "placeholder": False}))
    if not parts:
        return empty_observations()
    return pd.concat(parts, ignore_index=True).astype(_EMPTY_OBS)


def normalise_request(kind: str, value: Any, cfg: dict) -> str:
    """The requested phone / e-mail as stored (E.164, lower-case); never echoes the value in errors."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"The '{kind}' parameter must be a non-empty string. Got {type(value).__name__} instead.")
    if kind == "phone":
        ph = normalise_phones(pd.Series([value], dtype="string"), default_region=cfg.get("default_phone_region", "CN"))
        if ph["phone_status"].iloc[0] != "valid":
            raise ValueError(f"The 'phone' parameter must be a full phone number (E.164 or national). Got a value "
                             f"read as '{ph['phone_status'].iloc[0]}' instead.")
        return str(ph["e164"].iloc[0])
    em = normalise_emails(pd.Series([value], dtype="string"))
    if em["email_status"].iloc[0] != "valid":
        raise ValueError(f"The 'email' parameter must be an e-mail address such as name@example.com. Got a value "
                         f"read as '{em['email_status'].iloc[0]}' instead.")
    return str(em["email"].iloc[0])


# ----------------------------------------------------------------------------- suppression list
def load_suppression(paths: Paths | None = None) -> pd.DataFrame:
    """The suppression list (columns ``kind``, ``hash``, ``key_fingerprint``, ``added_utc``); empty if none.

    >>> import tempfile
    >>> paths = get_paths(tempfile.mkdtemp(), tempfile.mkdtemp())
    >>> len(load_suppression(paths))
    0
    >>> _ = suppress(paths, {"email": ["A@B.cn"]}, key=bytes(range(32)))
    >>> load_suppression(paths)[["kind", "key_fingerprint"]].values.tolist()
    [['email', '630dcd29']]
    """
    paths = paths or get_paths()
    f = privacy_dir(paths) / SUPPRESSION_FILE
    if not f.exists():
        return pd.DataFrame({"kind": pd.Series(dtype="string"), "hash": pd.Series(dtype="string"),
                             "key_fingerprint": pd.Series(dtype="string"),
                             "added_utc": pd.Series(dtype="datetime64[us, UTC]")})
    return pd.read_parquet(f)


def _write_atomic_parquet(df: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    df.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def add_suppression(paths: Paths, keys: Iterable[str], key: bytes) -> dict[str, int]:
    """Hash ``kind\\x1fvalue`` keys and add them to the list; returns values per kind."""
    keys = sorted(set(keys))
    if not keys:
        return {}
    kv = pd.Series(keys, dtype="string").str.split(KEY_SEP, n=1, expand=True)
    rows = []
    for kind, vals in kv.groupby(0, sort=True)[1]:
        rows.append(pd.DataFrame({"kind": kind, "hash": identifier_hash(vals.reset_index(drop=True), kind=kind,
                                                                          key=key)}))
    new = pd.concat(rows, ignore_index=True)
    new["key_fingerprint"] = key_fingerprint(key)
    new["added_utc"] = pd.Timestamp.now(tz="UTC").floor("s")
    old = load_suppression(paths)
    if len(old) and (old["key_fingerprint"] != key_fingerprint(key)).any():
        raise ValueError(f"The suppression list {privacy_dir(paths) / SUPPRESSION_FILE} was made with another "
                         f"pseudonymisation key (fingerprint {sorted(set(old['key_fingerprint']))}); the key in use "
                         f"has fingerprint {key_fingerprint(key)!r}. Restore the original key.")
    allv = pd.concat([old, new], ignore_index=True) if len(old) else new
    allv = allv.astype({"kind": "string", "hash": "string", "key_fingerprint": "string"})
    allv["added_utc"] = pd.to_datetime(allv["added_utc"], utc=True)
    allv = allv.sort_values(["kind", "hash", "added_utc"], kind="stable").drop_duplicates(["kind", "hash"])
    _write_atomic_parquet(allv[SUPPRESSION_COLUMNS].reset_index(drop=True), privacy_dir(paths) / SUPPRESSION_FILE)
    return new.groupby("kind").size().astype(int).to_dict()


def suppress(paths: Paths | None, values: Mapping[str, Iterable[str]], *, key: bytes | None = None,
             cleaning_config: dict | str | None = None) -> int:
    """Put identifier values on the suppression list without erasing anything; returns how many.

    ``values`` maps a kind (``phone``, ``email``, or an identifier of the identity settings such
    as ``member_id``) to raw values; phones and e-mails are normalised (E.164, lower-case) and
    other values trimmed before hashing.

    >>> import tempfile
    >>> paths = get_paths(tempfile.mkdtemp(), tempfile.mkdtemp())
    >>> suppress(paths, {"phone": ["138-0013-8001"], "member_id": [" M00000001 "]}, key=bytes(range(32)))
    2
    """
    paths = paths or get_paths()
    if not isinstance(values, Mapping):
        raise ValueError(f"The 'values' parameter must be a mapping of kind -> values. Got {type(values).__name__} "
                         "instead.")
    cfg = resolve_cleaning(paths, cleaning_config)
    keys = []
    for kind, vals in values.items():
        vals = [vals] if isinstance(vals, str) else list(vals)
        for v in vals:
            if kind in ("phone", "email"):
                keys.append(kind + KEY_SEP + normalise_request(kind, v, cfg))
            else:
                t = str(v).strip()
                if t:
                    keys.append(kind + KEY_SEP + t)
    key = load_key(create=True) if key is None else key
    return int(sum(add_suppression(paths, keys, key).values()))


def _suppressed_keys(paths: Paths, key: bytes | None) -> tuple[pd.Index, bytes | None]:
    sup = load_suppression(paths)
    if sup.empty:
        return pd.Index([], dtype="string"), key
    key = load_key() if key is None else key
    fp = key_fingerprint(key)
    if (sup["key_fingerprint"] != fp).any():
        raise ValueError(f"The suppression list {privacy_dir(paths) / SUPPRESSION_FILE} was made with another "
                         f"pseudonymisation key (fingerprints {sorted(set(sup['key_fingerprint']))}); the key in use "
                         f"has fingerprint {fp!r}. Restore the original key, or rows of erased persons would be "
                         "ingested again.")
    return pd.Index((sup["kind"] + KEY_SEP + sup["hash"]).astype("string")), key


def _hash_hits(obs: pd.DataFrame, listed: pd.Index, key: bytes, n: int) -> np.ndarray:
    mask = np.zeros(n, bool)
    if obs.empty:
        return mask
    for kind, part in obs.groupby("kind", sort=True):
        h = identifier_hash(part["value"].reset_index(drop=True), kind=str(kind), key=key)
        hit = isin_text(str(kind) + KEY_SEP + h, listed)
        mask[part["row"].to_numpy()[hit]] = True
    return mask


def suppressed_rows(df: pd.DataFrame, mapping: ChannelMapping, paths: Paths | None = None, *,
                    key: bytes | None = None, settings=None, cleaning_config: dict | str | None = None) -> np.ndarray:
    """True for rows of ``df`` whose phone, e-mail or identifier fields are on the suppression list.

    ``df`` holds one channel's canonical fields with raw values (as ingest reads them,
    before validation); values are normalised as the clean stage normalises them, typed as
    the identity stage types them (a phone typed into a login field is a phone) and hashed
    with :func:`identifier_hash`. Without a suppression list nothing is suppressed (and no
    key is needed).

    >>> import tempfile
    >>> paths = get_paths(tempfile.mkdtemp(), tempfile.mkdtemp())
    >>> key = bytes(range(32))
    >>> _ = suppress(paths, {"phone": ["+86 138 0013 8001"]}, key=key)
    >>> till = ChannelMapping.from_dict({"channel": "till", "role": "profile", "source": {"pattern": "till/*.csv"},
    ...     "fields": {"member_id": {"column": "card", "type": "identifier"},
    ...                "phone": {"column": "tel", "type": "phone"}, "name": {"column": "who", "type": "name"}}})
    >>> rows = pd.DataFrame({"member_id": [None, "M00000002"], "phone": ["138-0013-8001", "13900139000"],
    ...                      "name": ["张伟", "李娜"]})
    >>> suppressed_rows(rows, till, paths, key=key).tolist()
    [True, False]
    """
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"The 'df' parameter must be a pandas DataFrame. Got {type(df).__name__} instead.")
    paths = paths or get_paths()
    listed, key = _suppressed_keys(paths, key)
    if len(listed) == 0 or len(df) == 0:
        return np.zeros(len(df), bool)
    settings = resolve_identity(paths, settings)
    cfg = resolve_cleaning(paths, cleaning_config)
    obs = observe_identifiers(df, mapping, settings, cfg, standardised=False)
    return _hash_hits(obs, listed, key, len(df))


def suppressed_records(records: pd.Series, mapping: ChannelMapping, paths: Paths | None = None, *,
                       key: bytes | None = None, settings=None,
                       cleaning_config: dict | str | None = None) -> np.ndarray:
    """True for record *texts* (rows ingest cannot parse, kept for the quarantine) that carry a
    suppressed identifier: JSON objects of canonical fields, or a raw CSV line.

    >>> import tempfile
    >>> paths = get_paths(tempfile.mkdtemp(), tempfile.mkdtemp())
    >>> key = bytes(range(32))
    >>> _ = suppress(paths, {"member_id": ["M00000001"]}, key=key)
    >>> till = ChannelMapping.from_dict({"channel": "till", "role": "profile", "source": {"pattern": "till/*.csv"},
    ...     "fields": {"member_id": {"column": "card", "type": "identifier"}, "phone": {"column": "tel", "type": "phone"}}})
    >>> texts = pd.Series(["SH01,,CN,R1,M00000001,,x", "SH01,,CN,R2,M00000002,,y"])
    >>> suppressed_records(texts, till, paths, key=key).tolist()
    [True, False]
    """
    paths = paths or get_paths()
    records = pd.Series(records)
    listed, key = _suppressed_keys(paths, key)
    if len(listed) == 0 or len(records) == 0:
        return np.zeros(len(records), bool)
    settings = resolve_identity(paths, settings)
    cfg = resolve_cleaning(paths, cleaning_config)
    return _hash_hits(text_observations(records, mapping, settings, cfg), listed, key, len(records))
