"""Stage 2 — clean and standardise every ingested channel.

Per field type (declared in the channel mapping) the cleaner writes:

=============  ====================================================================
type           columns in ``interim/cleaned/<channel>.parquet``
=============  ====================================================================
phone          ``F`` (E.164 or NA), ``F_status``, ``F_masked`` (partial evidence), ``F_placeholder``
masked_phone   ``F`` (canonical ``138****8000``), ``F_status``
email          ``F`` (lower-case, validated), ``F_status``, ``F_placeholder``
name           ``F`` (display form), ``F_pinyin``, ``F_key`` (matching key)
identifier     ``F`` (trimmed), ``F_placeholder``
timestamp      ``F`` in UTC
date           ``F`` (naive date)
amount         ``F`` in the base currency, ``F_original`` as written
category       ``F`` as a code from the mapping's ``values``
boolean        ``F`` as a nullable boolean
=============  ====================================================================

plus ``record_id`` (``<channel>:<file>:<row>``, stable across runs), ``_source_file`` and
``_source_row``. Exact duplicate rows are removed and counted; near duplicates collapse
through the mapping's ``dedupe`` rule (e.g. a CRM re-export keeps the latest version);
rows whose required timestamp or currency cannot be used go to the quarantine. For every
channel ``in = kept + quarantined + exact_duplicates + merged``; the stage records it in
``interim/metrics/clean.json`` and a data-quality table in ``interim/quality/``.

Example:
    >>> from workbench.clean import clean_all       # doctest: +SKIP
    >>> result = clean_all()                         # doctest: +SKIP
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import normalise as nz
from .config import Paths, get_paths
from .clean_slices import (Companions, DistinctValues, InvalidValues, dedupe_drops, exact_repeats,
                           iter_slices, parquet_rows, slice_rows_setting)
from .ingest import QUARANTINE_COLUMNS, ingested_parts, load_ingested, run_per_channel, write_quarantine
from .normalise import arrow_strings, is_missing, normalise_text
from .mapping import ChannelMapping, MappingError
from .runconfig import record, resolve_cleaning, resolve_mappings

#: field types whose values identify a person (checked for placeholders)
IDENTITY_TYPES = ("phone", "email", "identifier")


# ----------------------------------------------------------------------------- per-field work
_TRUE = {"y", "yes", "true", "t", "1", "是", "同意", "已同意", "on"}
_FALSE = {"n", "no", "false", "f", "0", "否", "不同意", "未同意", "off"}


def _boolean(s: pd.Series) -> pd.Series:
    t = normalise_text(s).str.casefold()
    out = pd.Series(pd.NA, index=s.index, dtype="boolean")
    out[t.isin(_TRUE).fillna(False)] = True
    out[t.isin(_FALSE).fillna(False)] = False
    return out


def _timezones(df: pd.DataFrame, spec, mapping: ChannelMapping, cfg: dict) -> str | pd.Series:
    if spec.timezone_field:
        z = normalise_text(df[spec.timezone_field])
        z = z.str.upper().map(cfg["region_timezones"]).fillna(z)  # region codes -> zones
        return z.fillna(spec.timezone or mapping.timezone).astype(str)
    return spec.timezone or mapping.timezone


@dataclass
class FieldQuality:
    """Before/after numbers for one field (one row of the data-quality table)."""

    channel: str
    field: str
    type: str
    pii: str
    rows: int
    present_before: int
    conforming_before: int
    present_after: int
    valid_after: int
    distinct_after: int
    placeholders: int = 0
    inconsistent: int = 0
    top_invalid: list[str] = field(default_factory=list)


def _mask_value(v: Any, pii: str) -> str:
    """Top-invalid examples are shown masked when the field is personal data."""
    s = str(v)
    if pii == "none" or len(s) <= 2:
        return s
    keep = max(1, len(s) // 4)
    return s[:keep] + "*" * (len(s) - 2 * keep) + s[-keep:]


def _top_invalid(raw: pd.Series, bad: pd.Series, pii: str, k: int = 5) -> list[str]:
    vals = raw[bad.fillna(False).to_numpy(bool)]
    if vals.empty:
        return []
    counts = vals.astype(str).value_counts().head(k)
    return [f"{_mask_value(v, pii)} ×{n}" for v, n in counts.items()]


class SliceTally:
    """What :func:`standardise` saw in every slice of a channel, for the whole channel's
    ``distinct_after`` and ``top_invalid`` (see :mod:`workbench.clean_slices`).

    >>> t = SliceTally(); t.invalid("phone", pd.Series(["1", "1"])); t.top_invalid("phone", "none")
    ['1 ×2']
    """

    def __init__(self) -> None:
        self.distinct: dict[str, DistinctValues] = {}
        self.invalids: dict[str, InvalidValues] = {}

    def invalid(self, name: str, values: pd.Series) -> None:
        """Take one slice's invalid values of field ``name`` (as text)."""
        self.invalids.setdefault(name, InvalidValues()).add(values)

    def values(self, name: str, values: pd.Series) -> None:
        """Take one slice's cleaned values of field ``name``."""
        self.distinct.setdefault(name, DistinctValues()).add(values)

    def top_invalid(self, name: str, pii: str, k: int = 5) -> list[str]:
        """The ``k`` most frequent invalid values of ``name``, masked as :func:`_top_invalid` does."""
        got = self.invalids[name].top(k) if name in self.invalids else []
        return [f"{_mask_value(v, pii)} ×{n}" for v, n in got]


def standardise(df: pd.DataFrame, mapping: ChannelMapping, cfg: dict, *,
                tally: SliceTally | None = None) -> tuple[pd.DataFrame, pd.Series, list[FieldQuality]]:
    """Standardise every mapped field of an ingested frame.

    Returns the cleaned frame, a per-row quarantine reason (NA for rows that are fine) and
    one :class:`FieldQuality` per field. With ``tally``, ``df`` is one slice of a channel and
    the values the whole channel's distinct counts and top invalid values need are added to it.
    """
    out = pd.DataFrame(index=df.index)
    reasons = pd.Series(pd.NA, index=df.index, dtype="string")
    quality: list[FieldQuality] = []
    lo, hi = (pd.Timestamp(x, tz="UTC") for x in cfg.get("plausible_time_range", ["2000-01-01", "2030-12-31"]))

    def add_reason(mask: pd.Series, text: str) -> None:
        nonlocal reasons
        mask = mask.fillna(False).to_numpy(bool)
        if not mask.any():
            return
        reasons = reasons.where(~mask, reasons.fillna("").str.cat([text] * len(reasons), sep="; ").str.lstrip("; "))

    def _top(raw: pd.Series, bad: pd.Series, pii: str) -> list[str]:
        if tally is not None:
            tally.invalid(name, raw[bad.fillna(False).to_numpy(bool)].astype(str))
        return _top_invalid(raw, bad, pii)

    for name, spec in mapping.fields.items():
        raw = df[name]
        present_b = ~is_missing(raw)
        n = len(raw)
        q = FieldQuality(mapping.channel, name, spec.type, spec.pii, n, int(present_b.sum()), 0, 0, 0, 0)
        t = spec.type
        if t == "phone":
            regions = normalise_text(df[spec.region_field]) if spec.region_field else None
            ph = nz.normalise_phones(raw, default_region=spec.region or mapping.phone_region or
                                     cfg["default_phone_region"], regions=regions)
            out[name] = ph["e164"]
            out[f"{name}_status"] = ph["phone_status"].astype("string")
            out[f"{name}_masked"] = ph["masked"]
            valid = ph["phone_status"] == "valid"
            q.conforming_before = int((raw.astype("string") == ph["e164"]).fillna(False).sum())
            q.top_invalid = _top(raw, ph["phone_status"] == "invalid", spec.pii)
        elif t == "masked_phone":
            ph = nz.normalise_phones(raw, default_region=mapping.phone_region)
            out[name] = ph["masked"]
            out[f"{name}_status"] = ph["phone_status"].astype("string")
            valid = ph["phone_status"].isin(["masked", "valid"])
            q.conforming_before = int((raw.astype("string") == ph["masked"]).fillna(False).sum())
            q.top_invalid = _top(raw, ph["phone_status"] == "invalid", spec.pii)
        elif t == "email":
            em = nz.normalise_emails(raw)
            out[name] = em["email"]
            out[f"{name}_status"] = em["email_status"].astype("string")
            valid = em["email_status"] == "valid"
            q.conforming_before = int((raw.astype("string") == em["email"]).fillna(False).sum())
            q.top_invalid = _top(raw, em["email_status"] == "invalid", spec.pii)
        elif t == "name":
            nm = nz.normalise_names(raw)
            out[name] = nm["name"]
            out[f"{name}_pinyin"] = nm["name_pinyin"]
            out[f"{name}_key"] = nm["name_key"]
            valid = nm["name"].notna()
            q.conforming_before = int((raw.astype("string") == nm["name"]).fillna(False).sum())
            q.top_invalid = _top(raw, present_b & nm["name"].isna(), spec.pii)
        elif t == "timestamp":
            values = raw if spec.unit is None else raw.mask(is_missing(raw))
            opts = dict(formats=spec.formats, unit=spec.unit, dayfirst=spec.dayfirst)
            zones = _timezones(df, spec, mapping, cfg)
            lost = pd.Series(False, index=df.index)  # rows whose zone (timezone_field) is no time zone
            if isinstance(zones, pd.Series):  # a zone per row is data: an unknown one is that row's fault

                def _is_zone(z: str) -> bool:
                    try:
                        nz._check_timezone(z.strip() or "UTC")
                        return True
                    except ValueError:
                        return False

                lost = zones.isin([z for z in zones.unique() if not _is_zone(z)])
                zones = zones.where(~lost, "UTC")
            ts = nz.parse_timestamps(values, timezone=zones, **opts)
            if lost.any():  # a local time needs its zone; an instant with its own offset (or an epoch) does not
                placed = ts[lost]
                elsewhere = nz.parse_timestamps(values[lost], timezone="Etc/GMT-5", **opts)
                lost = (placed.notna() & (elsewhere != placed)).reindex(df.index, fill_value=False)
                ts = ts.mask(lost)
            if spec.unit is not None:  # an epoch in the other unit lands in 1970 or after 9999: not a time
                odd = (ts < lo) | (ts > hi)
                if odd.any():
                    hint = nz._epoch_unit(raw[odd])
                    ts = ts.mask((hint.isin(["s", "ms"]) & (hint != spec.unit)).reindex(df.index, fill_value=False))
            out[name] = ts
            valid = ts.notna()
            bad = present_b & ts.isna()
            if spec.required and bad.any():
                # a reason per row, worded once per distinct value: what was expected, what was there
                like = f" like {spec.formats[0]}" if spec.formats else ""
                units = {"s": "seconds", "ms": "milliseconds"}
                codes, uniques = pd.factorize(raw[bad])
                texts = []
                for v, u in zip(uniques, nz._epoch_unit(pd.Series(uniques, dtype=object)).tolist()):
                    got = repr(str(v)[:40])
                    if u in units and u != spec.unit:
                        fix = (f"; add `unit: {u}` to the field to read it" if spec.unit is None
                               else f", but the field says `unit: {spec.unit}`")
                        texts.append(f"column '{spec.column}': {got} looks like epoch {units[u]}{fix}")
                    else:
                        texts.append(f"column '{spec.column}': expected "
                                     f"{'epoch ' + units[spec.unit] + ' or ' if spec.unit else ''}"
                                     f"a timestamp{like} (got {got})")
                msg = pd.Series(pd.NA, index=df.index, dtype="string")
                msg[bad] = pd.array(texts, dtype="string").take(codes)
                if lost.any():
                    zone = spec.timezone_field
                    msg[lost] = (f"column '{mapping.fields[zone].column or zone}': "
                                 + normalise_text(df.loc[lost, zone]).map(repr)
                                 + " is not a time zone (an IANA name such as 'Asia/Shanghai') nor a region of "
                                   f"`region_timezones` {sorted(cfg['region_timezones'])}, so the local time in "
                                   f"column '{spec.column}' cannot be placed")
                has = msg.notna()
                reasons = reasons.where(~has, reasons.fillna("").str.cat(msg.fillna(""), sep="; ").str.lstrip("; "))
            q.inconsistent = int(((ts < lo) | (ts > hi)).fillna(False).sum())
            q.conforming_before = int(valid.sum())
            q.top_invalid = _top(raw, bad, spec.pii)
        elif t == "date":
            d = nz.parse_dates(raw, formats=spec.formats, dayfirst=spec.dayfirst)
            out[name] = d
            valid = d.notna()
            q.conforming_before = int(raw.astype("string").str.fullmatch(r"\d{4}-\d{2}-\d{2}").fillna(False).sum())
            q.top_invalid = _top(raw, present_b & d.isna(), spec.pii)
        elif t == "amount":
            codes = _currency_codes(df[spec.currency_field] if spec.currency_field else
                                    pd.Series(spec.currency or mapping.currency, index=df.index))
            known = set(cfg["currency_rates"]) | {cfg["base_currency"]}
            unknown = codes.notna() & ~codes.isin(known)
            if spec.required:
                add_reason(unknown | codes.isna(), f"column '{spec.column}': currency missing or not in "
                                                   f"the rates table {sorted(known)}")
            usable = codes.where(~unknown)
            out[name] = nz.convert_currency(raw, usable, rates=cfg["currency_rates"], base=cfg["base_currency"])
            out[f"{name}_original"] = raw.astype("float64")
            valid = out[name].notna()
            q.conforming_before = int((codes == cfg["base_currency"]).sum())
            q.top_invalid = _top(codes, unknown, "none")
        elif spec.constant is not None:
            out[name] = pd.Series(spec.constant, index=df.index, dtype="string")
            valid = out[name].notna()
            q.conforming_before = n
        elif t == "category":
            out[name] = nz.category_codes(raw, spec.values)
            valid = out[name].notna()
            unknown = present_b & out[name].isna()
            if spec.required:  # an unknown spelling of a required code (an event name the mapping lacks)
                add_reason(unknown, f"column '{spec.column}': value not in the mapping's `values` "
                                    f"(codes {sorted(spec.values)}); add its spelling there")
            q.conforming_before = int(raw.astype("string").isin(list(spec.values)).sum())
            q.top_invalid = _top(raw, unknown, spec.pii)
        elif t == "boolean":
            out[name] = _boolean(raw)
            valid = out[name].notna()
            q.conforming_before = int(raw.astype("string").str.lower().isin(["true", "false"]).sum())
            q.top_invalid = _top(raw, present_b & out[name].isna(), spec.pii)
        elif t in ("integer", "float"):
            out[name] = raw
            valid = raw.notna()
            q.conforming_before = int(valid.sum())
        else:  # string, identifier
            out[name] = normalise_text(raw)
            valid = out[name].notna()
            q.conforming_before = int((raw.astype("string") == out[name]).fillna(False).sum())
        q.present_after = int(out[name].notna().sum())
        q.valid_after = int(valid.fillna(False).sum())
        q.distinct_after = int(out[name].nunique(dropna=True))
        if tally is not None:
            tally.values(name, out[name])
        quality.append(q)
    return out, reasons, quality


def _currency_codes(s: pd.Series) -> pd.Series:
    t = normalise_text(s).str.upper()
    return t.map(nz.CURRENCY_ALIASES).fillna(t).astype("string")


def flag_identity_placeholders(out: pd.DataFrame, mapping: ChannelMapping, cfg: dict) -> dict[str, int]:
    """Add ``F_placeholder`` for phone/email/identifier fields; return counts per field.

    A value is a placeholder when the block list or the built-in patterns say so, or when it
    sits next to more than ``max_distinct_companions`` distinct combinations of the row's
    other identifiers — one phone typed for many different members is not anyone's phone.
    """
    pcfg = cfg["placeholders"]
    limit = pcfg.get("max_distinct_companions")
    ident = [f for f, s in mapping.fields.items() if s.type in IDENTITY_TYPES + ("name",)]
    counts = {}
    for name, spec in mapping.fields.items():
        if spec.type not in IDENTITY_TYPES:
            continue
        flag = nz.flag_placeholders(out[name], blocklist=pcfg.get("blocklist", []))
        others = [(f"{f}_key" if mapping.fields[f].type == "name" else f) for f in ident if f != name]
        if limit and others:
            sub = out[[name] + others].dropna(subset=[name])
            companions = sub.drop_duplicates().groupby(name, observed=True).size()
            crowded = companions[companions > limit].index
            flag = flag | out[name].isin(crowded).fillna(False)
        out[f"{name}_placeholder"] = flag.astype(bool)
        counts[name] = int(flag.sum())
    return counts


# ----------------------------------------------------------------------------- the stage
@dataclass
class ChannelCleanReport:
    channel: str
    rows_in: int
    kept: int
    quarantined: int
    exact_duplicates: int
    merged: int
    placeholders: dict[str, int]
    seconds: float
    identical_kept: int = 0  # identical rows of a purchases table without order numbers: kept as purchases

    def reconciles(self) -> bool:
        return self.rows_in == self.kept + self.quarantined + self.exact_duplicates + self.merged


def record_ids(channel: str, files: pd.Series, rows: pd.Series) -> pd.Series:
    """Stable record ids ``<channel>:<file>:<row>`` (vectorised with pyarrow).

    >>> record_ids("pos", pd.Series(["a.csv"]), pd.Series([7])).tolist()
    ['pos:a.csv:7']
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    f = arrow_strings(files)
    r = pc.cast(pa.array(rows.to_numpy()), pa.large_string())
    joined = pc.binary_join_element_wise(pa.scalar(channel, pa.large_string()), f, r,
                                        pa.scalar(":", pa.large_string()))
    out = joined.to_pandas(types_mapper=pd.ArrowDtype).astype("string")
    out.index = files.index  # positional, never aligned
    return out


def clean_channel(mapping: ChannelMapping, paths: Paths, cfg: dict) -> tuple[ChannelCleanReport, list[FieldQuality]]:
    """Clean one channel from its ingested Parquet into ``interim/cleaned/<channel>.parquet``.

    A channel of more rows than the cleaning setting ``slice_rows`` is read, standardised and
    written a slice at a time (memory no longer grows with the channel); the whole-channel steps
    (exact duplicates, placeholders, the dedupe rule, quality counts) give the same result as
    cleaning it at once.

    >>> rep, quality = clean_channel(mapping, get_paths(), resolve_cleaning(get_paths()))  # doctest: +SKIP
    """
    t0 = time.perf_counter()
    parts = ingested_parts(mapping.channel, paths)
    size = slice_rows_setting(cfg)
    rows_in = parquet_rows(parts)
    if size is None or rows_in <= size:
        rep, quality = _clean_at_once(mapping, paths, cfg, load_ingested(mapping.channel, paths))
    else:
        rep, quality = _clean_in_slices(mapping, paths, cfg, parts, rows=size)
    rep.seconds = round(time.perf_counter() - t0, 3)
    if not rep.reconciles():
        raise AssertionError(f"clean counts do not reconcile for {mapping.channel}: {rep}")
    return rep, quality


def _keyless(mapping: ChannelMapping) -> bool:
    """A purchases table without order numbers: two identical rows are two purchases."""
    return mapping.role in ("orders", "returns") and not mapping.key_fields and "return_id" not in mapping.fields


def _quarantine_rows(df: pd.DataFrame, reasons: pd.Series, fields: list[str]) -> pd.DataFrame:
    bad = reasons.notna()
    return pd.DataFrame({
        "stage": "clean", "_source_file": df.loc[bad, "_source_file"], "_source_row": df.loc[bad, "_source_row"],
        "reason": reasons[bad],
        "record": df.loc[bad, fields].to_json(orient="records", lines=True, force_ascii=False).splitlines()
        if bad.any() else [],
    })


def _with_record_ids(out: pd.DataFrame, df: pd.DataFrame, channel: str) -> pd.DataFrame:
    out.insert(0, "record_id", record_ids(channel, df["_source_file"], df["_source_row"]))
    out.insert(1, "_source_file", df["_source_file"])
    out.insert(2, "_source_row", df["_source_row"])
    return out


def _clean_at_once(mapping: ChannelMapping, paths: Paths, cfg: dict,
                   df: pd.DataFrame) -> tuple[ChannelCleanReport, list[FieldQuality]]:
    rows_in = len(df)
    fields = list(mapping.fields)
    # 1. exact duplicates: the same values in every mapped field (an export overlap) — except in a
    #    purchases table without order numbers, where two identical rows are two purchases (CDNOW has
    #    255: the same customer, day, units and amount); they are counted, not dropped
    dup = df.duplicated(subset=fields, keep="first")
    keyless = _keyless(mapping)
    identical_kept = int(dup.sum()) if keyless else 0
    if keyless:
        dup[:] = False
    n_exact = int(dup.sum())
    df = df[~dup]
    # 2. standardise
    out, reasons, quality = standardise(df, mapping, cfg)
    out = _with_record_ids(out, df, mapping.channel)
    # 3. quarantine rows that cannot be used
    bad = reasons.notna()
    write_quarantine(paths, mapping.channel, "clean", None, _quarantine_rows(df, reasons, fields))
    out = out[~bad]
    # 4. placeholders, then near duplicates through the mapping's dedupe rule
    placeholders = flag_identity_placeholders(out, mapping, cfg)
    merged = 0
    if mapping.dedupe:
        d = mapping.dedupe
        keyed = out[d.key].notna().all(axis=1)
        if d.order_by:
            out = out.sort_values([*d.key, d.order_by], kind="stable", na_position="first")
        keep = "last" if d.keep == "latest" else "first"
        drop = out.duplicated(subset=d.key, keep=keep) & keyed.reindex(out.index)
        merged = int(drop.sum())
        out = out[~drop].sort_index()
    out = out.reset_index(drop=True)
    paths.cleaned.mkdir(parents=True, exist_ok=True)
    out.to_parquet(paths.cleaned / f"{mapping.channel}.parquet", index=False)
    for fq in quality:
        fq.placeholders = placeholders.get(fq.field, 0)
    rep = ChannelCleanReport(mapping.channel, rows_in, len(out), int(bad.sum()), n_exact, merged,
                             placeholders, 0.0, identical_kept)
    return rep, quality


_SUMMED = ("rows", "present_before", "conforming_before", "present_after", "valid_after", "inconsistent")


def _clean_in_slices(mapping: ChannelMapping, paths: Paths, cfg: dict, parts: list,
                     *, rows: int) -> tuple[ChannelCleanReport, list[FieldQuality]]:
    """:func:`_clean_at_once` a slice of ``rows`` rows at a time, in two passes.

    Pass 0 finds the exact duplicates (64-bit row hashes, repeats compared exactly). Pass 1
    standardises and quarantines each slice and writes it to a scratch file, keeping what the
    whole-channel steps need: the distinct values and invalid-value counts per field, the
    distinct companions of each identity value, the dedupe rule's key columns. Pass 2 adds the
    crowded-placeholder flags, drops the rows the dedupe rule merges and writes the cleaned file.
    """
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq

    channel, fields = mapping.channel, list(mapping.fields)
    repeats = exact_repeats(parts, fields, rows=rows)
    rows_in = len(repeats)
    identical_kept = int(repeats.sum()) if _keyless(mapping) else 0
    if identical_kept:
        repeats[:] = False
    n_exact = int(repeats.sum())
    pcfg = cfg["placeholders"]
    limit = pcfg.get("max_distinct_companions")
    ident = [f for f, s in mapping.fields.items() if s.type in IDENTITY_TYPES + ("name",)]
    id_fields = [f for f, s in mapping.fields.items() if s.type in IDENTITY_TYPES]
    others = {name: [(f"{f}_key" if mapping.fields[f].type == "name" else f) for f in ident if f != name]
              for name in id_fields}
    companions = {name: Companions(name) for name in id_fields if limit and others[name]}
    d = mapping.dedupe
    rule_cols = ([*d.key, d.order_by] if d.order_by else list(d.key)) if d else []
    tally, totals, quarantined, keys, written = SliceTally(), {}, [], [], []
    n_bad = n_written = 0
    scratch = paths.cleaned / f".{channel}.slices"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        # pass 1: standardise, quarantine, flag listed placeholders; keep what the whole needs
        for df in iter_slices(parts, rows=rows):
            df = df[~repeats[df.index.start:df.index.stop]]
            if df.empty:
                continue
            out, reasons, quality = standardise(df, mapping, cfg, tally=tally)
            for q in quality:
                if q.field not in totals:
                    totals[q.field] = q
                else:
                    for k in _SUMMED:
                        setattr(totals[q.field], k, getattr(totals[q.field], k) + getattr(q, k))
            out = _with_record_ids(out, df, channel)
            bad = reasons.notna()
            n_bad += int(bad.sum())
            if bad.any():
                quarantined.append(_quarantine_rows(df, reasons, fields))
            out = out[~bad]
            for name in id_fields:
                out[f"{name}_placeholder"] = nz.flag_placeholders(
                    out[name], blocklist=pcfg.get("blocklist", [])).astype(bool)
                if name in companions:
                    companions[name].add(out[[name] + others[name]].dropna(subset=[name]))
            if d:
                keys.append(out.loc[out[d.key].notna().all(axis=1), rule_cols])
            written.append(scratch / f"{len(written):06d}.parquet")
            out.to_parquet(written[-1], index=True)
            n_written += len(out)
        write_quarantine(paths, channel, "clean", None,
                         pd.concat(quarantined) if quarantined else pd.DataFrame(columns=QUARANTINE_COLUMNS))
        crowded = {name: c.crowded(limit) for name, c in companions.items()}
        drops = (dedupe_drops(pd.concat(keys), key=list(d.key), order_by=d.order_by, keep=d.keep)
                 if d and keys else np.array([], dtype=np.int64))
        del keys, companions
        # pass 2: crowded placeholders, the dedupe rule, the cleaned file
        placeholders = {name: 0 for name in id_fields}
        target = scratch / "cleaned.parquet"
        writer = schema = None
        for p in written:
            out = pd.read_parquet(p)
            for name, values in crowded.items():
                col = f"{name}_placeholder"
                out[col] = (out[col] | out[name].isin(values).fillna(False)).astype(bool)
            for name in id_fields:
                placeholders[name] += int(out[f"{name}_placeholder"].sum())
            if len(out):
                lo, hi = np.searchsorted(drops, [out.index[0], out.index[-1] + 1])
                out = out.drop(index=drops[lo:hi])
            table = pa.Table.from_pandas(out.reset_index(drop=True), preserve_index=False)
            if writer is None:
                schema = _common_schema(table.schema, written)
                writer = pq.ParquetWriter(target, schema)
            writer.write_table(table.cast(schema))
        if writer is not None:
            writer.close()
        paths.cleaned.mkdir(parents=True, exist_ok=True)
        target.replace(paths.cleaned / f"{channel}.parquet")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    quality = list(totals.values())
    for fq in quality:
        fq.distinct_after = tally.distinct[fq.field].count()
        fq.top_invalid = tally.top_invalid(fq.field, fq.pii if fq.type != "amount" else "none")
        fq.placeholders = placeholders.get(fq.field, 0)
    rep = ChannelCleanReport(channel, rows_in, n_written - len(drops), n_bad, n_exact, len(drops),
                             placeholders, 0.0, identical_kept)
    return rep, quality


def _common_schema(first, files: list) -> "pa.Schema":
    """``first`` with each all-missing (null-typed) column given the type a later slice has."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {f.name: f.type for f in first}
    for p in files:
        if not any(pa.types.is_null(t) for t in types.values()):
            break
        for f in pq.read_schema(p):
            if f.name in types and pa.types.is_null(types[f.name]):
                types[f.name] = f.type
    return pa.schema([pa.field(n, t) for n, t in types.items()], metadata=first.metadata)


@dataclass
class CleanResult:
    channels: list[ChannelCleanReport]
    quality: pd.DataFrame
    seconds: float
    errors: list[str] = field(default_factory=list)

    def summary(self) -> pd.DataFrame:
        cols = [f for f in ChannelCleanReport.__dataclass_fields__ if f != "placeholders"]
        return pd.DataFrame([{k: v for k, v in r.__dict__.items() if k != "placeholders"}
                             for r in self.channels], columns=cols).set_index("channel")


def _clean_or_error(mapping: ChannelMapping, paths: Paths, cfg: dict):
    """:func:`clean_channel`, or the reason it could not run (no ingested data for the channel)."""
    try:
        return clean_channel(mapping, paths, cfg)
    except FileNotFoundError as exc:
        return str(exc)


def clean_all(paths: Paths | None = None, *, mappings: dict[str, ChannelMapping] | None = None,
              config: str | Path | dict | None = None, channels=None, progress: bool = True,
              workers: int | None = None, strict: bool = True) -> CleanResult:
    """Clean every ingested channel; write cleaned Parquet, quality table and metrics.

    ``mappings`` default to those the ingest stage recorded, ``config`` to the package's
    cleaning settings; the settings used are recorded for the later stages
    (:mod:`workbench.runconfig`). A channel without ingested data (its ingest failed) does not
    stop the others: every channel that can be cleaned is, then the channels that could not
    are reported once — raised as one error with ``strict`` (the default), else listed in
    ``CleanResult.errors`` and the metrics. Channels run in ``workers`` processes (default:
    ``$WORKBENCH_WORKERS`` or min(2, CPUs)).
    """
    t0 = time.perf_counter()
    paths = (paths or get_paths()).ensure()
    mappings = mappings if mappings is not None else resolve_mappings(paths)
    cfg = resolve_cleaning(paths, config, introduce=True)
    slice_rows_setting(cfg)  # a bad setting stops the stage before any channel starts
    record(paths, "cleaning", cfg)
    if channels is not None:
        mappings = {c: mappings[c] for c in channels}
    reports, quality, errors = [], [], []
    for out in run_per_channel(_clean_or_error, mappings, (paths, cfg), workers=workers,
                               progress=progress, desc="clean"):
        if isinstance(out, str):
            errors.append(out)
            continue
        reports.append(out[0])
        quality.extend(out[1])
    qdf = pd.DataFrame([q.__dict__ for q in quality], columns=list(FieldQuality.__dataclass_fields__))
    qdf["top_invalid"] = qdf["top_invalid"].map(lambda xs: " | ".join(xs))
    paths.quality.mkdir(parents=True, exist_ok=True)
    qdf.to_parquet(paths.quality / "field_quality.parquet", index=False)
    result = CleanResult(reports, qdf, round(time.perf_counter() - t0, 3), errors)
    s = result.summary()
    doc = {"stage": "clean", "seconds": result.seconds,
           "channels": {c: {k: (int(v) if k != "seconds" else float(v)) for k, v in row.items()}
                        for c, row in s.iterrows()},
           "totals": {"read": int(s["rows_in"].sum()), "kept": int(s["kept"].sum()),
                      "quarantined": int(s["quarantined"].sum()),
                      "exact_duplicates": int(s["exact_duplicates"].sum()), "merged": int(s["merged"].sum())},
           "placeholders": {r.channel: r.placeholders for r in reports}, "errors": errors}
    (paths.metrics / "clean.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")
    if errors and strict:
        raise MappingError(f"Cleaned {len(reports)} channel(s); {len(errors)} could not be cleaned:\n- "
                           + "\n- ".join(errors))
    return result


def load_cleaned(channel: str, paths: Paths | None = None, *, columns: list[str] | None = None) -> pd.DataFrame:
    """The cleaned table of one channel (only ``columns`` that exist, when given)."""
    paths = paths or get_paths()
    p = paths.cleaned / f"{channel}.parquet"
    if not p.exists():
        raise FileNotFoundError(f"No cleaned data for channel '{channel}' at {p}. Run the clean stage "
                                f"(notebook 02_clean) first.")
    if columns is not None:
        import pyarrow.parquet as pq

        present = set(pq.read_schema(p).names)
        columns = [c for c in columns if c in present]
    return pd.read_parquet(p, columns=columns)
