"""Declarative channel mappings: how one silo's files become canonical records.

A mapping is a YAML file (one per channel, in ``workbench/channels/`` or a folder you
pass) that says what the channel *is* (its role, see :mod:`workbench.roles`), where the
files are, how to read them, and what each column means::

    channel: till_sales
    role: orders                     # profile | orders | returns | events | consents
    source: {pattern: "till/*.csv", format: csv, encoding: utf-8}
    timezone: Asia/Shanghai          # for naive timestamps unless a field says otherwise
    currency: CNY
    filter: {field: txn_type, values: [sale]}   # the file also holds returns: another mapping reads those
    fields:
      order_id:     {column: receipt_no, type: key, required: true}
      phone:        {column: customer_phone, type: phone, region_field: store_region, pii: direct}
      ordered_at:   {column: txn_time, type: timestamp, formats: ["%d/%m/%Y %H:%M"], timezone_field: store_tz}
      amount:       {column: amount, type: amount, currency_field: currency, required: true}
      sales_channel: {constant: store}

Field names are the role's canonical fields where the role knows them (``ordered_at``,
``amount`` ...), person traits (``name``, ``phone`` ...), or names of your own (identity
evidence such as a cookie, or anything kept for the record).

``ChannelMapping.from_dict(d).to_dict() == d`` for every valid mapping (modulo defaults),
so mappings round-trip to YAML and JSON like splink's settings.

Example:
    >>> m = ChannelMapping.from_dict({"channel": "demo", "role": "profile", "source": {"pattern": "demo/*.csv"},
    ...     "fields": {"email": {"column": "E-mail", "type": "email", "pii": "direct"}}})
    >>> m.fields["email"].column
    'E-mail'
    >>> ChannelMapping.from_dict({**m.to_dict(), "role": "orders"})
    Traceback (most recent call last):
    ...
    workbench.mapping.MappingError: Channel 'demo': the orders role needs the fields ['ordered_at', 'amount'] (when the order was placed; amount paid (a line's amount with grain: line)). Mapped fields: ['email'].
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field, fields as dc_fields
from pathlib import Path
from typing import Any

import yaml

from ._dataclasses import build
from .config import PACKAGE_DIR
from .roles import EVENT_TYPES, ROLES, TRAITS

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
FORMATS = ("csv", "jsonl", "parquet", "excel", "sql")
ENCODINGS = ("utf-8", "utf-8-sig", "gbk", "gb18030", "gb2312", "big5", "utf-16")
PII_CLASSES = ("direct", "quasi", "none")


class MappingError(ValueError):
    """A mapping, or a file read through it, does not fit what the mapping declares."""


@dataclass
class SourceSpec:
    """Where a channel's rows are and how to parse them: files (``pattern``) or a SQL database.

    A database source (``format: sql``) names a SQLAlchemy ``url`` — or, better, the name of an
    environment variable holding it, so the password stays out of the mapping — and either a
    ``table`` (``schema.table`` allowed) or a ``query``; ``incremental`` names a watermark column
    (rows are read again only past the last value recorded in the ledger) and ``chunksize`` how
    many rows are read and validated at a time (see :mod:`workbench.sql_source`).

    >>> SourceSpec(format="sql", url="CRM_DATABASE_URL", table="crm.members", incremental="updated_at").validate("crm")
    >>> SourceSpec(format="sql", url="CRM_DATABASE_URL").validate("crm")
    Traceback (most recent call last):
    ...
    workbench.mapping.MappingError: Channel 'crm': a sql source needs either `table` (a table name, schema.table allowed) or `query` (a SELECT). Got neither.
    """

    pattern: str | None = None
    format: str = "csv"
    encoding: str = "utf-8"
    delimiter: str = ","
    newlines_in_values: bool = False
    sheet: str | int | None = None  # Excel only
    url: str | None = None          # sql only: SQLAlchemy URL, or the name of an environment variable holding it
    table: str | None = None        # sql only
    query: str | None = None        # sql only
    incremental: str | None = None  # sql only: watermark column
    chunksize: int = 50_000         # sql only: rows per read

    def validate(self, channel: str) -> None:
        if self.format not in FORMATS:
            raise MappingError(f"Channel '{channel}': source format must be one of {list(FORMATS)}. "
                               f"Got {self.format!r} instead.")
        if self.format == "sql":
            self._validate_sql(channel)
            return
        misplaced = [k for k in SQL_KEYS if getattr(self, k) is not None]
        if misplaced:
            raise MappingError(f"Channel '{channel}': {misplaced} belong to a database source (`format: sql`). "
                               f"This source's format is {self.format!r}.")
        if not isinstance(self.pattern, str) or not self.pattern:
            raise MappingError(f"Channel '{channel}': a {self.format} source needs `pattern`, the files under the "
                               f"raw folder (e.g. 'crm/*.csv'). Got {self.pattern!r} instead.")
        if self.encoding.lower() not in ENCODINGS:
            raise MappingError(f"Channel '{channel}': source encoding must be one of {list(ENCODINGS)}. "
                               f"Got {self.encoding!r} instead.")
        if len(self.delimiter) != 1:
            raise MappingError(f"Channel '{channel}': delimiter must be one character. Got {self.delimiter!r}.")

    def _validate_sql(self, channel: str) -> None:
        where = f"Channel '{channel}'"
        if self.pattern is not None or self.sheet is not None:
            raise MappingError(f"{where}: a sql source reads a database, not files: drop `pattern`/`sheet`. "
                               f"Got pattern={self.pattern!r}, sheet={self.sheet!r}.")
        if not isinstance(self.url, str) or not self.url.strip():
            raise MappingError(f"{where}: a sql source needs `url`: a SQLAlchemy URL such as "
                               "'postgresql+psycopg://user@host:5432/db', or the name of an environment variable "
                               f"holding one (keeps the password out of the mapping). Got {self.url!r} instead.")
        if (self.table is None) == (self.query is None):
            raise MappingError(f"{where}: a sql source needs either `table` (a table name, schema.table allowed) "
                               f"or `query` (a SELECT). Got {'both' if self.table is not None else 'neither'}.")
        for key in ("table", "query", "incremental"):
            v = getattr(self, key)
            if v is not None and (not isinstance(v, str) or not v.strip()):
                raise MappingError(f"{where}: source `{key}` must be a non-empty text. Got {v!r} instead.")
        if isinstance(self.chunksize, bool) or not isinstance(self.chunksize, int) or self.chunksize < 1:
            raise MappingError(f"{where}: source `chunksize` must be a positive whole number of rows. "
                               f"Got {self.chunksize!r} instead.")

    @property
    def label(self) -> str:
        """What the source reads, fit to show: the file pattern, or the table (or query) and the URL, password masked.

        >>> SourceSpec(format="sql", url="postgresql://crm:s3cret@db/crm", table="members").label
        "table 'members' at postgresql://crm:***@db/crm"
        """
        if self.format != "sql":
            return str(self.pattern)
        return f"{f'table {self.table!r}' if self.table is not None else 'the query'} at {mask_url(self.url)}"

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the keys that apply to this format; a password in a literal ``url`` is masked
        (``***``), so recorded settings never hold it.

        >>> SourceSpec(format="sql", url="postgresql://crm:s3cret@db/crm", table="members").to_dict()["url"]
        'postgresql://crm:***@db/crm'
        """
        d = asdict(self)
        if self.format == "sql":
            for k in ("pattern", "encoding", "delimiter", "newlines_in_values", "sheet"):
                d.pop(k)
            for k in ("table", "query", "incremental"):
                if d[k] is None:
                    d.pop(k)
            d["url"] = mask_url(self.url)
        else:
            for k in SQL_KEYS + ("chunksize",):
                d.pop(k)
        return d


SQL_KEYS = ("url", "table", "query", "incremental")


def mask_url(url: str | None) -> str | None:
    """``url`` with any password replaced by ``***`` (the user:password@ part and password=... options).

    >>> mask_url("postgresql+psycopg://crm:p@ss:w0rd@db.example:5432/crm?sslmode=require&password=x")
    'postgresql+psycopg://crm:***@db.example:5432/crm?sslmode=require&password=***'
    >>> mask_url("CRM_DATABASE_URL")
    'CRM_DATABASE_URL'
    """
    if url is None:
        return None
    url = re.sub(r"(://[^/?#@:]*):[^/?#]*@", r"\1:***@", url)
    return re.sub(r"(?i)((?:password|passwd|pwd)=)[^&;\s]*", r"\1***", url)


@dataclass
class FieldSpec:
    """One canonical field: which source column feeds it (or a constant) and how to read it."""

    column: str | None = None
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
    constant: str | None = None  # the same value on every row, instead of a column

    def validate(self, channel: str, name: str, field_names: set[str]) -> None:
        where = f"Channel '{channel}', field '{name}'"
        if (self.column is None) == (self.constant is None):
            raise MappingError(f"{where}: give either `column` (the source column) or `constant` (a value for "
                               f"every row). Got {'both' if self.column is not None else 'neither'}.")
        if self.constant is not None and self.type not in ("string", "category"):
            raise MappingError(f"{where}: a constant field must have type string or category. "
                               f"Got {self.type!r} instead.")
        if self.type not in FIELD_TYPES:
            raise MappingError(f"{where}: type must be one of {sorted(FIELD_TYPES)}. Got {self.type!r} instead.")
        if self.pii not in PII_CLASSES:
            raise MappingError(f"{where}: pii must be one of {list(PII_CLASSES)}. Got {self.pii!r} instead.")
        if self.unit not in (None, "s", "ms"):
            raise MappingError(f"{where}: unit must be 's' or 'ms'. Got {self.unit!r} instead.")
        if self.unit is not None and self.type != "timestamp":
            raise MappingError(f"{where}: `unit` (epoch seconds or milliseconds) belongs to timestamp fields. "
                               f"This field's type is {self.type!r}.")
        if self.formats is not None and (not isinstance(self.formats, list)
                                         or not all(isinstance(f, str) and f for f in self.formats)):
            raise MappingError(f"{where}: formats must be a list of strftime patterns such as "
                               f"['%Y/%m/%d %H:%M:%S']. Got {self.formats!r} instead.")
        if self.timezone is not None:
            from zoneinfo import ZoneInfo

            try:
                ZoneInfo(self.timezone)
            except Exception:  # ZoneInfoNotFoundError, ValueError, TypeError
                raise MappingError(f"{where}: timezone must be an IANA time-zone name such as 'Asia/Shanghai'. "
                                   f"Got {self.timezone!r} instead.") from None
        if self.type == "category" and not self.values and self.constant is None:
            raise MappingError(f"{where}: a category needs `values` (code -> list of spellings).")
        for ref in ("timezone_field", "region_field", "currency_field"):
            target = getattr(self, ref)
            if target is not None and target not in field_names:
                raise MappingError(f"{where}: {ref} names '{target}', which is not a field of this "
                                   f"mapping. Fields: {sorted(field_names)}.")


@dataclass
class FilterSpec:
    """Keep only the rows whose ``field`` (a category) has one of ``values`` (its codes).

    For a file that holds two kinds of thing (sales and returns): each of its mappings keeps
    its own rows, and every row must belong to exactly one of them.
    """

    field: str
    values: list[str]


@dataclass
class ExtraEventSpec:
    """A further event derived from each row of an events mapping (only where it happened).

    ``quantity`` names a count field (the event exists where it is > 0), ``time`` a time field
    (the event exists where it is present; default: the row's ``event_time``), ``value`` and
    ``duration`` fields carry over.
    """

    type: str
    quantity: str | None = None
    time: str | None = None
    value: str | None = None
    duration: str | None = None


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
    role: str
    source: SourceSpec
    fields: dict[str, FieldSpec]
    description: str = ""
    timezone: str = "Asia/Shanghai"
    currency: str = "CNY"
    phone_region: str = "CN"
    dedupe: DedupeSpec | None = None
    filter: FilterSpec | None = None
    grain: str = "order"                   # orders: "order" (a row is an order) or "line" (a line item)
    order_key: list[str] | None = None     # orders/returns: fields that identify an order (default [order_id])
    returns_of: str | None = None          # returns: the orders channel they belong to (default: any)
    extra_events: list[ExtraEventSpec] = field(default_factory=list)
    custom_event_types: list[str] = field(default_factory=list)  # event types outside the vocabulary
    path: str | None = field(default=None, compare=False)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, d: dict[str, Any], *, path: str | None = None) -> "ChannelMapping":
        if not isinstance(d, dict):
            raise MappingError(f"{path or 'mapping'}: expected a mapping (YAML object). Got {type(d).__name__}.")
        missing = [k for k in ("channel", "role", "source", "fields") if k not in d]
        if missing:
            hint = (f" `role` says what the channel is: one of {list(ROLES)} (see workbench.roles)."
                    if "role" in missing else "")
            raise MappingError(f"{path or 'mapping'}: missing keys {missing}. Present keys: {sorted(d)}.{hint}")
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
        dd, ff = d.get("dedupe"), d.get("filter")
        extra = d.get("extra_events") or []
        if not isinstance(extra, list):
            raise MappingError(f"Channel '{channel}': `extra_events` must be a list. Got {extra!r} instead.")
        m = cls(channel=channel, role=str(d["role"]), source=src, fields=flds, description=d.get("description", ""),
                timezone=d.get("timezone", "Asia/Shanghai"), currency=d.get("currency", "CNY"),
                phone_region=d.get("phone_region", "CN"),
                dedupe=_build(DedupeSpec, dd, f"Channel '{channel}' dedupe") if dd else None,
                filter=_build(FilterSpec, ff, f"Channel '{channel}' filter") if ff else None,
                grain=d.get("grain", "order"), order_key=d.get("order_key"), returns_of=d.get("returns_of"),
                extra_events=[_build(ExtraEventSpec, e, f"Channel '{channel}' extra_events[{i}]")
                              for i, e in enumerate(extra)],
                custom_event_types=list(d.get("custom_event_types") or []), path=path)
        m.validate()
        return m

    def validate(self) -> None:
        if not self.channel or any(c in self.channel for c in ":/\\") or self.channel != self.channel.strip():
            raise MappingError(f"Channel name {self.channel!r}: use a plain name without ':', '/' or spaces around "
                               "it (it starts every record id).")
        self.source.validate(self.channel)
        names = set(self.fields)
        for name, spec in self.fields.items():
            spec.validate(self.channel, name, names)
        cols = [f.column for f in self.fields.values() if f.column is not None]
        dupes = sorted({c for c in cols if cols.count(c) > 1})
        if dupes:
            raise MappingError(f"Channel '{self.channel}': source columns mapped twice: {dupes}.")
        if self.dedupe:
            bad = [k for k in self.dedupe.key + ([self.dedupe.order_by] if self.dedupe.order_by else [])
                   if k not in names]
            if bad:
                raise MappingError(f"Channel '{self.channel}': dedupe refers to unknown fields {bad}. "
                                   f"Fields: {sorted(names)}.")
        self._validate_role()

    def _validate_role(self) -> None:
        """The role's canonical fields have fitting types and codes; what the role needs is mapped."""
        where = f"Channel '{self.channel}'"
        if self.role not in ROLES:
            raise MappingError(f"{where}: role must be one of {list(ROLES)}. Got {self.role!r} instead.")
        role = ROLES[self.role]
        known = {**TRAITS, **role.fields}
        for name, spec in self.fields.items():
            canon = known.get(name)
            if canon is None and self.role == "profile" and name.startswith("consent_"):
                if spec.type != "boolean":
                    raise MappingError(f"{where}, field '{name}': a consent field must have type boolean. "
                                       f"Got {spec.type!r} instead.")
                continue
            if canon is None:
                continue
            if spec.type not in canon.types:
                raise MappingError(f"{where}, field '{name}': the {self.role} role reads '{name}' as "
                                   f"{canon.meaning}; its type must be one of {list(canon.types)}. "
                                   f"Got {spec.type!r} instead (name the field otherwise if it is something else).")
            codes = set(spec.values or {}) | ({spec.constant} if spec.constant is not None else set())
            if canon.codes is not None and codes - set(canon.codes):
                raise MappingError(f"{where}, field '{name}': codes must be among {list(canon.codes)} (map your "
                                   f"spellings onto them with `values`). Got {sorted(codes - set(canon.codes))} "
                                   "instead.")
        missing = [n for n, f in role.fields.items() if f.required and n not in self.fields]
        if missing:
            raise MappingError(f"{where}: the {self.role} role needs the fields {missing} "
                               f"({'; '.join(role.fields[n].meaning for n in missing)}). Mapped fields: "
                               f"{sorted(self.fields)}.")
        for group in role.one_of:
            if not set(group) & set(self.fields):
                raise MappingError(f"{where}: the {self.role} role needs at least one of the fields {list(group)}. "
                                   f"Mapped fields: {sorted(self.fields)}.")
        if self.role == "events":
            allowed = set(EVENT_TYPES) | set(self.custom_event_types)
            et = self.fields["event_type"]
            codes = set(et.values or {}) | ({et.constant} if et.constant is not None else set())
            bad = sorted(codes - allowed) + sorted({e.type for e in self.extra_events} - allowed)
            if bad:
                raise MappingError(f"{where}: event types {bad} are not in the canonical vocabulary "
                                   "(workbench.roles.EVENT_TYPES, e.g. 'Product Viewed', 'Email Opened'); map "
                                   "them onto it, or list a type of your own under `custom_event_types`.")
            for i, e in enumerate(self.extra_events):
                for ref in ("quantity", "time", "value", "duration"):
                    target = getattr(e, ref)
                    if target is not None and target not in self.fields:
                        raise MappingError(f"{where}, extra_events[{i}]: {ref} names '{target}', which is not a "
                                           f"field of this mapping. Fields: {sorted(self.fields)}.")
                if e.quantity is None and e.time is None:
                    raise MappingError(f"{where}, extra_events[{i}]: say when the event exists: `quantity` (a "
                                       "count field, > 0) or `time` (a time field, present).")
        elif self.extra_events or self.custom_event_types:
            raise MappingError(f"{where}: `extra_events` and `custom_event_types` belong to the events role. "
                               f"This mapping's role is {self.role!r}.")
        if self.grain not in ("order", "line"):
            raise MappingError(f"{where}: grain must be 'order' or 'line'. Got {self.grain!r} instead.")
        if self.grain == "line" and self.role != "orders":
            raise MappingError(f"{where}: `grain: line` belongs to the orders role (line items of orders).")
        if self.grain == "line" and "order_id" not in self.fields:
            raise MappingError(f"{where}: line items need `order_id` to aggregate to orders.")
        if self.order_key is not None:
            if self.role not in ("orders", "returns"):
                raise MappingError(f"{where}: `order_key` belongs to the orders and returns roles.")
            bad = [k for k in self.order_key if k not in self.fields]
            if bad or "order_id" not in self.order_key:
                raise MappingError(f"{where}: order_key must list fields of this mapping including 'order_id'. "
                                   f"Got {self.order_key!r} (fields: {sorted(self.fields)}).")
        if self.returns_of is not None and self.role != "returns":
            raise MappingError(f"{where}: `returns_of` belongs to the returns role.")
        if self.filter is not None:
            f = self.fields.get(self.filter.field)
            if f is None or f.type != "category":
                raise MappingError(f"{where}: filter field {self.filter.field!r} must be a category field of this "
                                   f"mapping. Category fields: {self.fields_of_type('category')}.")
            bad = sorted(set(self.filter.values) - set(f.values or {}))
            if bad or not self.filter.values:
                raise MappingError(f"{where}: filter values must be codes of '{self.filter.field}' "
                                   f"({sorted(f.values or {})}). Got {self.filter.values!r} instead.")

    @property
    def consent_purposes(self) -> list[str]:
        """Purposes of the ``consent_<purpose>`` fields of a profile mapping."""
        return [n.removeprefix("consent_") for n in self.fields if n.startswith("consent_")
                and self.fields[n].type == "boolean"] if self.role == "profile" else []

    @property
    def key_fields(self) -> list[str]:
        """Fields that identify an order (orders and returns roles)."""
        return list(self.order_key) if self.order_key else (["order_id"] if "order_id" in self.fields else [])

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (no defaults dropped) that :meth:`from_dict` reads back unchanged."""
        d = asdict(self)
        d.pop("path")
        d["source"] = self.source.to_dict()
        d["fields"] = {k: {kk: vv for kk, vv in v.items() if vv not in (None, False, "")}
                       for k, v in d["fields"].items()}
        for k in ("dedupe", "filter", "order_key", "returns_of"):
            if d[k] is None:
                d.pop(k)
        for k in ("extra_events", "custom_event_types"):
            if not d[k]:
                d.pop(k)
            elif k == "extra_events":
                d[k] = [{kk: vv for kk, vv in e.items() if vv is not None} for e in d[k]]
        if d["grain"] == "order":
            d.pop("grain")
        return d

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), allow_unicode=True, sort_keys=False)

    # ------------------------------------------------------------------ helpers
    @property
    def columns(self) -> dict[str, str]:
        """source column -> canonical field (constant fields have no column)."""
        return {spec.column: name for name, spec in self.fields.items() if spec.column is not None}

    @property
    def constants(self) -> dict[str, str]:
        """canonical field -> the constant value of every row."""
        return {name: spec.constant for name, spec in self.fields.items() if spec.constant is not None}

    def fields_of_type(self, *types: str) -> list[str]:
        return [n for n, s in self.fields.items() if s.type in types]

    def pii_fields(self) -> dict[str, str]:
        return {n: s.pii for n, s in self.fields.items() if s.pii != "none"}

    def files(self, raw_dir: str | os.PathLike) -> list[Path]:
        """Files under ``raw_dir`` that match the pattern, sorted by name (none for a database source)."""
        if self.source.format == "sql":
            return []
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
    check_mappings(out)
    return out


def check_mappings(mappings: dict[str, ChannelMapping]) -> None:
    """Checks across mappings: a returns mapping names an orders mapping that exists.

    >>> check_mappings({})
    """
    orders = [c for c, m in mappings.items() if m.role == "orders"]
    for c, m in mappings.items():
        if m.role != "returns":
            continue
        if not orders:
            raise MappingError(f"Channel '{c}' holds returns, but no mapping has the orders role: returns are "
                               "netted onto orders.")
        if m.returns_of is not None and m.returns_of not in orders:
            raise MappingError(f"Channel '{c}': returns_of names {m.returns_of!r}, which is not an orders mapping. "
                               f"Orders mappings: {orders}.")
