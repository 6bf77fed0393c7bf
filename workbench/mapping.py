"""Declarative channel mappings: how one silo's files become canonical records.

A mapping is a YAML file (one per channel, in ``workbench/channels/`` or a folder you
pass) that says where the files are, how to read them, and what each column means::

    channel: pos_receipts
    source: {pattern: "pos_receipts/*.csv", format: csv, encoding: utf-8}
    timezone: Asia/Shanghai          # for naive timestamps unless a field says otherwise
    currency: CNY
    fields:
      receipt_no:   {column: receipt_no, type: string, required: true}
      phone:        {column: customer_phone, type: phone, region_field: store_region, pii: direct}
      txn_time:     {column: txn_time, type: timestamp, formats: ["%d/%m/%Y %H:%M"], timezone_field: store_tz}
      amount:       {column: amount, type: amount, currency_field: currency, required: true}

``ChannelMapping.from_dict(d).to_dict() == d`` for every valid mapping (modulo defaults),
so mappings round-trip to YAML and JSON like splink's settings.

Example:
    >>> m = ChannelMapping.from_dict({"channel": "demo", "source": {"pattern": "demo/*.csv"},
    ...     "fields": {"email": {"column": "E-mail", "type": "email", "pii": "direct"}}})
    >>> m.fields["email"].column
    'E-mail'
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields as dc_fields
from pathlib import Path
from typing import Any

import yaml

from ._dataclasses import build
from .config import PACKAGE_DIR

#: Canonical field types and what cleaning does with each.
FIELD_TYPES = {
    "string": "trimmed text (NFKC)",
    "category": "text mapped through `values` to a fixed set of codes",
    "boolean": "yes/no in any common spelling (Y/N, 是/否, 1/0, true/false)",
    "integer": "whole number; unparseable values quarantine the row",
    "float": "decimal number; unparseable values quarantine the row",
    "amount": "money; converted to the base currency via `currency` / `currency_field`",
    "timestamp": "instant; parsed with `formats`/`unit`, localised with `timezone`, stored in UTC",
    "date": "calendar date (e.g. birth date)",
    "phone": "phone number; E.164 with phonenumbers (region from `region` / `region_field`)",
    "masked_phone": "a platform-masked phone such as 138****8000: partial evidence, never an identifier",
    "email": "e-mail address; lower-cased and validated",
    "name": "person name; NFKC, spacing, case, pinyin key",
    "identifier": "an opaque id of a person or their device (member id, cookie, openid ...); trimmed, placeholders flagged",
    "key": "an id of the record itself (order number, receipt, ticket); trimmed, never used to link persons",
}
FORMATS = ("csv", "jsonl", "parquet", "excel")
ENCODINGS = ("utf-8", "utf-8-sig", "gbk", "gb18030", "gb2312", "big5", "utf-16")
PII_CLASSES = ("direct", "quasi", "none")


class MappingError(ValueError):
    """A mapping, or a file read through it, does not fit what the mapping declares."""


@dataclass
class SourceSpec:
    """Where a channel's files are and how to parse them."""

    pattern: str
    format: str = "csv"
    encoding: str = "utf-8"
    delimiter: str = ","
    newlines_in_values: bool = False
    sheet: str | int | None = None  # Excel only

    def validate(self, channel: str) -> None:
        if self.format not in FORMATS:
            raise MappingError(f"Channel '{channel}': source format must be one of {list(FORMATS)}. "
                               f"Got {self.format!r} instead.")
        if self.encoding.lower() not in ENCODINGS:
            raise MappingError(f"Channel '{channel}': source encoding must be one of {list(ENCODINGS)}. "
                               f"Got {self.encoding!r} instead.")
        if len(self.delimiter) != 1:
            raise MappingError(f"Channel '{channel}': delimiter must be one character. Got {self.delimiter!r}.")


@dataclass
class FieldSpec:
    """One canonical field: which source column feeds it and how to read it."""

    column: str
    type: str = "string"
    required: bool = False
    pii: str = "none"
    description: str = ""
    formats: list[str] | None = None
    unit: str | None = None
    timezone: str | None = None
    timezone_field: str | None = None
    region: str | None = None
    region_field: str | None = None
    currency: str | None = None
    currency_field: str | None = None
    values: dict[str, list[str]] | None = None
    dayfirst: bool = False

    def validate(self, channel: str, name: str, field_names: set[str]) -> None:
        where = f"Channel '{channel}', field '{name}'"
        if self.type not in FIELD_TYPES:
            raise MappingError(f"{where}: type must be one of {sorted(FIELD_TYPES)}. Got {self.type!r} instead.")
        if self.pii not in PII_CLASSES:
            raise MappingError(f"{where}: pii must be one of {list(PII_CLASSES)}. Got {self.pii!r} instead.")
        if self.unit not in (None, "s", "ms"):
            raise MappingError(f"{where}: unit must be 's' or 'ms'. Got {self.unit!r} instead.")
        if self.type == "category" and not self.values:
            raise MappingError(f"{where}: a category needs `values` (code -> list of spellings).")
        for ref in ("timezone_field", "region_field", "currency_field"):
            target = getattr(self, ref)
            if target is not None and target not in field_names:
                raise MappingError(f"{where}: {ref} names '{target}', which is not a field of this "
                                   f"mapping. Fields: {sorted(field_names)}.")


@dataclass
class DedupeSpec:
    """How to collapse several versions of one record (e.g. CRM re-exports)."""

    key: list[str]
    keep: str = "latest"
    order_by: str | None = None


@dataclass
class ChannelMapping:
    """The full mapping of one channel. Build with :meth:`from_dict` or :func:`load_mapping`."""

    channel: str
    source: SourceSpec
    fields: dict[str, FieldSpec]
    description: str = ""
    timezone: str = "Asia/Shanghai"
    currency: str = "CNY"
    phone_region: str = "CN"
    dedupe: DedupeSpec | None = None
    path: str | None = field(default=None, compare=False)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, d: dict[str, Any], *, path: str | None = None) -> "ChannelMapping":
        if not isinstance(d, dict):
            raise MappingError(f"{path or 'mapping'}: expected a mapping (YAML object). Got {type(d).__name__}.")
        missing = [k for k in ("channel", "source", "fields") if k not in d]
        if missing:
            raise MappingError(f"{path or 'mapping'}: missing keys {missing}. Present keys: {sorted(d)}.")
        known = {f.name for f in dc_fields(cls)} - {"path"}
        unknown = sorted(set(d) - known)
        if unknown:
            raise MappingError(f"{path or d['channel']}: unknown keys {unknown}. Allowed: {sorted(known)}.")
        channel = str(d["channel"])
        src = _build(SourceSpec, d["source"], f"Channel '{channel}' source")
        if not isinstance(d["fields"], dict) or not d["fields"]:
            raise MappingError(f"Channel '{channel}': `fields` must be a non-empty mapping of field -> spec.")
        flds = {name: _build(FieldSpec, spec, f"Channel '{channel}', field '{name}'")
                for name, spec in d["fields"].items()}
        dd = d.get("dedupe")
        m = cls(channel=channel, source=src, fields=flds, description=d.get("description", ""),
                timezone=d.get("timezone", "Asia/Shanghai"), currency=d.get("currency", "CNY"),
                phone_region=d.get("phone_region", "CN"),
                dedupe=_build(DedupeSpec, dd, f"Channel '{channel}' dedupe") if dd else None, path=path)
        m.validate()
        return m

    def validate(self) -> None:
        self.source.validate(self.channel)
        names = set(self.fields)
        for name, spec in self.fields.items():
            spec.validate(self.channel, name, names)
        cols = [f.column for f in self.fields.values()]
        dupes = sorted({c for c in cols if cols.count(c) > 1})
        if dupes:
            raise MappingError(f"Channel '{self.channel}': source columns mapped twice: {dupes}.")
        if self.dedupe:
            bad = [k for k in self.dedupe.key + ([self.dedupe.order_by] if self.dedupe.order_by else [])
                   if k not in names]
            if bad:
                raise MappingError(f"Channel '{self.channel}': dedupe refers to unknown fields {bad}. "
                                   f"Fields: {sorted(names)}.")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (no defaults dropped) that :meth:`from_dict` reads back unchanged."""
        d = asdict(self)
        d.pop("path")
        d["fields"] = {k: {kk: vv for kk, vv in v.items() if vv not in (None, False, "") or kk == "column"}
                       for k, v in d["fields"].items()}
        if d["dedupe"] is None:
            d.pop("dedupe")
        return d

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), allow_unicode=True, sort_keys=False)

    # ------------------------------------------------------------------ helpers
    @property
    def columns(self) -> dict[str, str]:
        """source column -> canonical field."""
        return {spec.column: name for name, spec in self.fields.items()}

    def fields_of_type(self, *types: str) -> list[str]:
        return [n for n, s in self.fields.items() if s.type in types]

    def pii_fields(self) -> dict[str, str]:
        return {n: s.pii for n, s in self.fields.items() if s.pii != "none"}

    def files(self, raw_dir: str | os.PathLike) -> list[Path]:
        """Files under ``raw_dir`` that match the pattern, sorted by name."""
        return sorted(p for p in Path(raw_dir).glob(self.source.pattern) if p.is_file())


def _build(cls, spec: Any, where: str):
    return build(cls, spec, where, MappingError)


DEFAULT_MAPPINGS_DIR = PACKAGE_DIR / "channels"


def load_mapping(path: str | os.PathLike) -> ChannelMapping:
    """Read one YAML mapping file."""
    path = Path(path)
    try:
        d = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise MappingError(f"{path}: not valid YAML ({exc}).") from None
    return ChannelMapping.from_dict(d, path=str(path))


def load_mappings(directory: str | os.PathLike | None = None) -> dict[str, ChannelMapping]:
    """All mappings in ``directory`` (default: the package's own), keyed by channel, in file order."""
    directory = Path(directory) if directory else DEFAULT_MAPPINGS_DIR
    if not directory.is_dir():
        raise MappingError(f"Mappings folder {directory} does not exist.")
    out: dict[str, ChannelMapping] = {}
    for p in sorted(directory.glob("*.yaml")):
        m = load_mapping(p)
        if m.channel in out:
            raise MappingError(f"Channel '{m.channel}' is mapped twice: {out[m.channel].path} and {p}.")
        out[m.channel] = m
    if not out:
        raise MappingError(f"No *.yaml mappings in {directory}.")
    return out
