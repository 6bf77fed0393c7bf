"""Channel sources in SQL databases: read a table or a query in chunks, as text, past a watermark.

A mapping whose source is ``format: sql`` reads a database through SQLAlchemy instead of
files under ``data/raw``::

    source:
      format: sql
      url: CRM_DATABASE_URL          # an environment variable holding the SQLAlchemy URL (or the URL itself)
      table: crm.members             # or  query: "SELECT ... FROM ..."
      incremental: updated_at        # optional watermark column
      chunksize: 50000               # rows read, validated and written at a time

Every value arrives as **text**, as a CSV file would give it (timestamps as ISO 8601, decimals
exactly as stored), so the mapping's fields, the validation and the quarantine of
:mod:`workbench.ingest` apply unchanged. Rows come in a fixed order (the watermark, then the
table's primary key, else every column read), so ``_source_row`` — the row's place in the
batch — is deterministic.

**Incremental reads.** The ledger records the highest watermark value read and a short
fingerprint of each row *at* that value. The next run asks for rows with
``watermark >= last value`` — not ``>``: rows that share the last value but were committed
after the previous read (ties) are read then — and skips the rows whose fingerprint is on
record, so nothing is read twice and no tie is lost. A row updated with a new watermark value
comes again as a new version (the mapping's ``dedupe`` keeps the latest). Rows whose
watermark is missing cannot be placed and are not read: their count is reported as an error
naming the channel and column. Rows committed late with a value *below* the last one are not
seen by an incremental read (no watermark can see them): use a watermark the database sets at
commit, or rerun with ``force`` to read the whole table again.

**Credentials.** The password never leaves this module: URLs are shown and recorded through
:func:`workbench.mapping.mask_url`, and driver messages are scrubbed of it. Prefer an
environment variable (``url: CRM_DATABASE_URL``), so the mapping file holds no secret at all.

Example (SQLite stands in for any database SQLAlchemy has a dialect for):
    >>> import sqlite3, tempfile, os
    >>> db = os.path.join(tempfile.mkdtemp(), "crm.db")
    >>> con = sqlite3.connect(db)
    >>> _ = con.execute("CREATE TABLE members (id TEXT PRIMARY KEY, phone TEXT, updated_at TEXT)")
    >>> _ = con.executemany("INSERT INTO members VALUES (?, ?, ?)", [("m1", "13800138000", "2024-01-02"),
    ...                                                              ("m2", None, "2024-01-01")])
    >>> con.commit()
    >>> from workbench.mapping import ChannelMapping
    >>> m = ChannelMapping.from_dict({"channel": "crm", "role": "profile", "source": {"format": "sql",
    ...     "url": f"sqlite:///{db}", "table": "members", "incremental": "updated_at", "chunksize": 1},
    ...     "fields": {"member_id": {"column": "id", "type": "identifier"},
    ...                "phone": {"column": "phone", "type": "phone"}}})
    >>> read = SqlRead(m)
    >>> [chunk[["id", "phone", "_source_row"]].values.tolist() for chunk in read.chunks()]
    [[['m2', <NA>, 1]], [['m1', '13800138000', 2]]]
    >>> read.fetched, read.watermark
    (2, {'type': 'str', 'value': '2024-01-02'})
    >>> again = SqlRead(m, after=read.watermark, boundary=read.boundary)
    >>> sum(len(c) for c in again.chunks()), again.fetched, again.reread   # the tie at 2024-01-02 is on record
    (0, 1, 1)
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import os
import re
from collections import Counter
from dataclasses import replace
from typing import Any, Iterator

import pandas as pd

from .mapping import ChannelMapping, MappingError, mask_url

__all__ = ["SqlRead", "describe_source", "resolve_url", "decode_watermark", "encode_watermark"]

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
CONNECT_TIMEOUT_SECONDS = 10


def resolve_url(mapping: ChannelMapping) -> str:
    """The SQLAlchemy URL of a sql source: ``url`` itself, or the environment variable it names.

    >>> from workbench.mapping import ChannelMapping
    >>> m = ChannelMapping.from_dict({"channel": "crm", "role": "profile", "source": {"format": "sql",
    ...     "url": "WORKBENCH_DOCTEST_UNSET_URL", "table": "t"}, "fields": {"email": {"column": "e", "type": "email"}}})
    >>> resolve_url(m)
    Traceback (most recent call last):
    ...
    workbench.mapping.MappingError: Channel 'crm': source url names the environment variable 'WORKBENCH_DOCTEST_UNSET_URL', which is not set. Set it to a SQLAlchemy URL such as postgresql+psycopg://user:password@host:5432/database.
    """
    url = (mapping.source.url or "").strip()
    if "://" in url:
        return url
    if _ENV_NAME.match(url):
        value = os.environ.get(url, "").strip()
        if not value:
            raise MappingError(f"Channel '{mapping.channel}': source url names the environment variable '{url}', "
                               "which is not set. Set it to a SQLAlchemy URL such as "
                               "postgresql+psycopg://user:password@host:5432/database.")
        if "://" not in value:
            raise MappingError(f"Channel '{mapping.channel}': the environment variable '{url}' must hold a "
                               "SQLAlchemy URL (dialect+driver://user:password@host:port/database). "
                               f"Got {mask_url(value)!r} instead.")
        return value
    raise MappingError(f"Channel '{mapping.channel}': source url must be a SQLAlchemy URL "
                       "(dialect+driver://user:password@host:port/database) or the name of an environment variable "
                       f"holding one. Got {mask_url(url)!r} instead.")


def describe_source(mapping: ChannelMapping, *, url: str | None = None) -> str:
    """What a sql source reads (``url``: the resolved URL, default the mapping's), password masked.

    >>> from workbench.mapping import ChannelMapping
    >>> m = ChannelMapping.from_dict({"channel": "crm", "role": "profile", "source": {"format": "sql",
    ...     "url": "CRM_DATABASE_URL", "table": "members"}, "fields": {"email": {"column": "e", "type": "email"}}})
    >>> describe_source(m), describe_source(m, url="postgresql://crm:s3cret@db/crm")
    ("table 'members' at CRM_DATABASE_URL", "table 'members' at postgresql://crm:***@db/crm")
    """
    src = mapping.source
    return src.label if url is None else replace(src, url=url).label


# ----------------------------------------------------------------------------- values as text
def as_text(value: Any) -> str | None:
    """A database value as the text a CSV export would hold (None stays missing).

    >>> as_text(decimal.Decimal("12.50")), as_text(True), as_text(dt.datetime(2024, 3, 1, 9, 5)), as_text(None)
    ('12.50', 'true', '2024-03-01 09:05:00', None)
    """
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return None if value != value else repr(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return str(value)


_WM_TYPES = {"datetime": dt.datetime.fromisoformat, "date": dt.date.fromisoformat, "int": int,
             "decimal": decimal.Decimal, "float": float, "str": str}


def encode_watermark(value: Any) -> dict[str, str]:
    """A watermark value as plain JSON for the ledger (:func:`decode_watermark` reads it back).

    >>> encode_watermark(dt.datetime(2024, 3, 1, 9, 5, tzinfo=dt.timezone.utc))
    {'type': 'datetime', 'value': '2024-03-01T09:05:00+00:00'}
    >>> decode_watermark(encode_watermark(decimal.Decimal("7.5")))
    Decimal('7.5')
    """
    for name, kind in (("datetime", dt.datetime), ("date", dt.date), ("decimal", decimal.Decimal),
                       ("float", float), ("str", str)):
        if isinstance(value, kind):
            return {"type": name, "value": value.isoformat() if name in ("datetime", "date") else str(value)}
    if isinstance(value, int) and not isinstance(value, bool):
        return {"type": "int", "value": str(value)}
    raise MappingError(f"A watermark must be a timestamp, date, number or text. Got {type(value).__name__} "
                       f"({value!r}) instead.")


def decode_watermark(doc: dict[str, str]) -> Any:
    """The value :func:`encode_watermark` recorded."""
    return _WM_TYPES[doc["type"]](doc["value"])


def _fingerprint(values: list[str | None]) -> str:
    return hashlib.sha256(json.dumps(values, ensure_ascii=False).encode("utf-8")).hexdigest()[:20]


# ----------------------------------------------------------------------------- reading
class SqlRead:
    """One read of a sql source: :meth:`chunks` yields frames of text, at most ``chunksize`` rows each.

    ``after`` (an encoded watermark) and ``boundary`` (fingerprints of the rows at that value)
    come from the ledger of the previous run; after the chunks are consumed, ``fetched`` counts
    the rows the database returned, ``reread`` those skipped as already ingested, ``missing``
    the rows without a watermark (not read), and ``watermark`` / ``boundary`` are what the ledger
    should record next. Each frame has the source columns the mapping reads (as ``string``) and
    ``_source_row``, the row's 1-based place among the rows this read keeps.
    """

    def __init__(self, mapping: ChannelMapping, *, after: dict[str, str] | None = None,
                 boundary: list[str] | set[str] | None = None):
        if mapping.source.format != "sql":
            raise MappingError(f"Channel '{mapping.channel}': SqlRead reads sources with `format: sql`. "
                               f"Got format {mapping.source.format!r} instead.")
        self.mapping = mapping
        self.after = after
        self.old_boundary = Counter(boundary or ())  # a fingerprint per row: identical rows count twice
        self.fetched = 0
        self.reread = 0
        self.missing = 0
        self.watermark: dict[str, str] | None = after
        self.boundary: list[str] = sorted(self.old_boundary.elements())
        self._sha = hashlib.sha256()
        self._url: str | None = None

    @property
    def sha256(self) -> str:
        """SHA-256 of the rows this read kept (their text values, in order): the batch's checksum."""
        return self._sha.hexdigest()

    @property
    def new_rows(self) -> int:
        """Rows read that were not ingested before: ``fetched - reread``."""
        return self.fetched - self.reread

    @property
    def where(self) -> str:
        """The channel and what it reads, password masked (starts every error message)."""
        return f"Channel '{self.mapping.channel}' ({describe_source(self.mapping, url=self._url)})"

    def columns(self) -> list[str]:
        """Source columns read: the mapped ones, then the watermark column if it is not mapped."""
        cols = list(self.mapping.columns)
        inc = self.mapping.source.incremental
        return cols + [inc] if inc is not None and inc not in cols else cols

    def chunks(self) -> Iterator[pd.DataFrame]:
        """Read the rows past the watermark in order, ``chunksize`` at a time (never the whole table).

        Raises :class:`MappingError` naming the channel (and table) for a bad URL, a server that
        cannot be reached, a missing table or column, or an error of the query — never a driver traceback.
        """
        try:
            import sqlalchemy as sa
        except ImportError:  # pragma: no cover - the sql extra is part of the locked environment
            raise MappingError(f"Channel '{self.mapping.channel}': a sql source needs SQLAlchemy and a database "
                               "driver: pip install 'workbench[sql]' (SQLAlchemy and psycopg for PostgreSQL).") from None
        self._url = resolve_url(self.mapping)
        engine = None
        try:
            engine = self._engine(sa)
            with engine.connect() as conn:
                stmt, table, inc_col = self._statement(sa, conn)
                if inc_col is not None:
                    self.missing = int(conn.execute(
                        sa.select(sa.func.count()).select_from(table).where(inc_col.is_(None))).scalar_one())
                stream = conn.execution_options(stream_results=True, max_row_buffer=self.mapping.source.chunksize)
                yield from self._frames(stream.execute(stmt))
        except MappingError:
            raise
        except Exception as exc:  # SQLAlchemy and driver errors, a driver that is not installed
            raise MappingError(self._message(exc)) from None
        finally:
            if engine is not None:
                engine.dispose()

    # -- pieces
    def _engine(self, sa):
        url = sa.engine.make_url(self._url)
        connect_args = {"connect_timeout": CONNECT_TIMEOUT_SECONDS} if url.get_backend_name() == "postgresql" else {}
        return sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args=connect_args)

    def _statement(self, sa, conn):
        """The SELECT of the needed columns, ordered, past the watermark; checks table and columns."""
        src, cols = self.mapping.source, self.columns()
        if src.table is not None:
            schema, _, name = src.table.rpartition(".")
            inspector = sa.inspect(conn)
            if not inspector.has_table(name, schema=schema or None):
                tables = sorted(inspector.get_table_names(schema=schema or None))
                raise MappingError(f"{self.where}: the table does not exist. Tables there: "
                                   f"{tables[:30]}{' ...' if len(tables) > 30 else ''}.")
            table = sa.Table(name, sa.MetaData(), autoload_with=conn, schema=schema or None)
            order_key = [c.name for c in table.primary_key.columns]
        else:
            probe = conn.execute(sa.text(f"SELECT * FROM ({src.query}) AS src WHERE 1 = 0"))
            keys = list(probe.keys())
            probe.close()
            table = sa.text(src.query).columns(*[sa.column(k) for k in keys]).subquery("src")
            order_key = []
        present = [c.name for c in table.c]
        missing = [c for c in cols if c not in present]
        if missing:
            fields = [self.mapping.columns.get(c, "incremental") for c in missing]
            raise MappingError(f"{self.where}: missing column(s) {missing} required by the '{self.mapping.channel}' "
                               f"mapping (fields {fields}). Columns there: {present}.")
        stmt = sa.select(*[table.c[c] for c in cols])
        inc_col = table.c[src.incremental] if src.incremental is not None else None
        order = ([inc_col] if inc_col is not None else []) + [table.c[c] for c in (order_key or cols)
                                                              if c != src.incremental]
        if inc_col is not None:
            stmt = stmt.where(inc_col.is_not(None))
            if self.after is not None:
                stmt = stmt.where(inc_col >= decode_watermark(self.after))
        return stmt.order_by(*order), table, inc_col

    def _frames(self, result) -> Iterator[pd.DataFrame]:
        cols = self.columns()
        inc = self.mapping.source.incremental
        wi = cols.index(inc) if inc is not None else None
        last = decode_watermark(self.after) if self.after is not None else None
        top, at_top, unseen = last, list(self.old_boundary.elements()), Counter(self.old_boundary)
        kept = 0
        for part in result.partitions(self.mapping.source.chunksize):
            rows = []
            for raw in part:
                self.fetched += 1
                values = [as_text(v) for v in raw]
                if wi is not None:
                    wm = raw[wi]
                    fp = _fingerprint(values)
                    if last is not None and wm == last and unseen[fp] > 0:  # ingested by an earlier run
                        unseen[fp] -= 1
                        self.reread += 1
                        continue
                    if top is None or wm != top:
                        top, at_top = wm, []
                    at_top.append(fp)
                rows.append(values)
                self._sha.update(json.dumps(values, ensure_ascii=False).encode("utf-8") + b"\n")
            if not rows:
                continue
            frame = pd.DataFrame(rows, columns=cols, dtype="string")
            frame["_source_row"] = pd.RangeIndex(kept + 1, kept + len(rows) + 1).to_numpy(dtype="int64")
            kept += len(rows)
            yield frame
        if wi is not None and top is not None:
            self.watermark, self.boundary = encode_watermark(top), sorted(at_top)

    def _message(self, exc: Exception) -> str:
        """A driver's error as one clear line naming the channel and table, password removed."""
        orig = getattr(exc, "orig", None) or exc
        text = " ".join(str(orig).split()) or type(orig).__name__
        text = re.sub(r"\s*\(Background on this error at: [^)]*\)", "", text)
        text = text.split(" [SQL:", 1)[0]
        password = None
        try:
            import sqlalchemy as sa

            password = sa.engine.make_url(self._url).password if self._url else None
        except Exception:
            pass
        if password:
            text = text.replace(str(password), "***")
        text = mask_url(text)
        kind = type(orig).__name__
        if isinstance(exc, ModuleNotFoundError):
            hint = " Install the database's driver (for PostgreSQL: pip install 'psycopg[binary]')."
        elif kind in ("OperationalError", "InterfaceError"):
            hint = " Check the url (host, port, database, user, password) and that the server is running."
        elif kind in ("ArgumentError", "NoSuchModuleError"):
            hint = " The url must look like dialect+driver://user:password@host:port/database."
        elif self.mapping.source.query is not None:
            hint = " Check the source's `query`."
        else:
            hint = ""
        return f"{self.where}: cannot be read ({kind}: {text[:400]}).{hint}"
