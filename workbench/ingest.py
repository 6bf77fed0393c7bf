"""Stage 1 — ingest: read every channel's files through its mapping into Parquet.

For each file the stage

1. reads it in its declared format and encoding (rows the parser cannot split into the
   header's number of fields are kept aside, with their row number),
2. checks that every mapped column is there — otherwise a :class:`MappingError` names the
   file, the missing columns and the columns that *are* there,
3. renames source columns to canonical fields and adds ``_source_file`` / ``_source_row``
   (1-based data row in the file, header excluded) so every record can be traced back,
4. validates with a pandera schema built from the mapping, lazily, so *every* failure is
   collected: required values missing, numbers that are not numbers,
5. writes kept rows to ``interim/ingested/<channel>/<file>.parquet`` and unusable rows to
   ``interim/quarantine/<channel>.parquet`` with the reason.

``read == kept + quarantined`` holds per file and per channel and is recorded in
``interim/metrics/ingest.json``. A checksum ledger makes reruns incremental: only new or
changed files are read again, and the result says which.

Example:
    >>> from workbench.ingest import ingest_all                       # doctest: +SKIP
    >>> result = ingest_all()                                         # doctest: +SKIP
    >>> result.summary()[["read", "kept", "quarantined"]].sum()       # doctest: +SKIP
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from .config import Paths, get_paths
from .mapping import ChannelMapping, MappingError, load_mappings
from .normalise import category_codes, is_missing, parse_number

NUMERIC_TYPES = ("integer", "float", "amount")


QUARANTINE_COLUMNS = ["stage", "_source_file", "_source_row", "reason", "record"]


# ----------------------------------------------------------------------------- reading
@dataclass
class RawRead:
    """What the parser made of one file: rows, rows it could not parse, total records seen.

    ``_source_row`` (in ``frame`` and ``bad_rows``) is the record's 1-based number among the
    file's data records — header excluded, empty lines skipped — which is the row number
    pyarrow gives it. A record is one line, except a record whose quoted field legitimately
    spans lines (a service ticket's description): it is one record, numbered once, so from
    there on row and line numbers differ. Lines that an unterminated quote swallowed are
    records of their own, numbered in file order after the damaged line that opened the
    quote (see :func:`_read_csv_records`). Reasons that point into the file name its
    physical *line* numbers (line 1 is the header), as an editor shows them.
    ``total == len(frame) + len(bad_rows)``.
    """

    frame: pd.DataFrame
    bad_rows: pd.DataFrame  # _source_row, reason, record
    total: int


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes (hex), read in 1 MiB chunks: the ledger's checksum."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _bad(rows: list[tuple[int, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["_source_row", "reason", "record"]).astype(
        {"_source_row": "int64", "reason": "string", "record": "string"})


def _encoding_message(path: Path, m: ChannelMapping, exc: Exception) -> str:
    """Say which encoding failed and, when one of the usual Chinese encodings fits, which one."""
    head = path.read_bytes()[: 1 << 16]
    fits = []
    for enc in ("utf-8", "gb18030", "big5"):
        if enc == m.source.encoding.lower():
            continue
        try:
            head.decode(enc)
            fits.append(enc)
        except UnicodeDecodeError:
            continue
    hint = f" The start of the file decodes as {fits[0]!r}: set `encoding: {fits[0]}`." if fits else ""
    return (f"{path}: cannot be read as {m.source.format} in encoding {m.source.encoding!r} ({exc}). "
            f"Check `source.encoding` in the '{m.channel}' mapping.{hint}")


def _read_header(path: Path, encoding: str, delimiter: str) -> list[str]:
    """The header's fields: the first non-empty line (pyarrow skips empty lines before it too)."""
    with open(path, encoding=encoding, newline="") as fh:
        for line in fh:
            line = line.lstrip("\ufeff")
            if line.strip("\r\n"):
                break
        else:
            return []
    if not line.strip():
        return []
    return next(csv.reader([line], delimiter=delimiter))


def _read_csv(path: Path, m: ChannelMapping) -> RawRead:
    """Read a CSV file with pyarrow. Where a parsed value holds a line break (records and lines
    differ) and an unterminated quote may be the cause, the file is read again by
    :func:`_read_csv_records`, which knows each record's lines."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    src = m.source
    enc = "utf-8" if src.encoding.lower() == "utf-8-sig" else src.encoding
    try:
        header = _read_header(path, src.encoding, src.delimiter)
    except UnicodeDecodeError as exc:
        raise MappingError(_encoding_message(path, m, exc)) from None
    if not header:
        raise MappingError(f"{path}: the file is empty — expected a header row with the columns "
                           f"{sorted(m.columns)}.")
    bad: list[tuple[int, str, str]] = []
    broken_lines = False  # an unparseable row that spans lines

    def on_invalid(row) -> str:  # pyarrow numbers rows from 1 with the header as row 1
        nonlocal broken_lines
        broken_lines = broken_lines or "\n" in row.text or "\r" in row.text
        bad.append((row.number - 1, f"row has {row.actual_columns} fields, expected {row.expected_columns} "
                                    f"(delimiter {src.delimiter!r})", row.text[:500]))
        return "skip"

    try:
        table = pcsv.read_csv(
            path,
            read_options=pcsv.ReadOptions(encoding=enc, use_threads=False, block_size=1 << 24),
            parse_options=pcsv.ParseOptions(delimiter=src.delimiter, newlines_in_values=src.newlines_in_values,
                                            invalid_row_handler=on_invalid),
            convert_options=pcsv.ConvertOptions(column_types={c: pa.string() for c in header},
                                                strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
    except (UnicodeDecodeError, pa.ArrowInvalid) as exc:
        raise MappingError(_encoding_message(path, m, exc)) from None
    multi = _columns_with_line_breaks(table)
    if broken_lines or multi:  # records and lines differ: text that spans lines, or a quote never closed?
        shapes = _first_field_shapes(table)
        if broken_lines or _may_hide_open_quote(table, m, multi, shapes):
            return _read_csv_records(path, m, shapes)
    df = table.to_pandas(types_mapper=pd.ArrowDtype).astype("string")
    total = len(df) + len(bad)
    rows = np.setdiff1d(np.arange(1, total + 1), np.array([b[0] for b in bad], dtype=np.int64))
    df["_source_row"] = rows
    return RawRead(df, _bad(bad), total)


# -- CSV records that span lines
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")  # a physical line with its line end (\r\n, \n or \r)
_CJK_RUN = "[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+"   # real characters: the same for re and RE2
_SHAPE = (("[0-9]+", "9"), ("[A-Za-z]+", "a"), (_CJK_RUN, "汉"))


def _columns_with_line_breaks(table) -> list[int]:
    """The columns in which some parsed value holds a line break (its record spans lines).

    Looks at the bytes of each text column's value buffer at once (UTF-8: a line-break byte is
    a line break), some 20 times faster than a regex over the values.
    """
    import pyarrow as pa

    out = []
    for i, col in enumerate(table.columns):
        if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
            continue
        width = np.int64 if pa.types.is_large_string(col.type) else np.int32
        for chunk in col.chunks:
            _, offsets, data = chunk.buffers()
            if len(chunk) == 0 or data is None:
                continue
            off = np.frombuffer(offsets, dtype=width)[chunk.offset:chunk.offset + len(chunk) + 1]
            low = np.frombuffer(data, dtype=np.uint8)[off[0]:off[-1]]
            low = low[low < 14]
            if ((low == 10) | (low == 13)).any():
                out.append(i)
                break
    return out


def _shape(value: str) -> str:
    """A value's shape: runs of digits, Latin letters and CJK characters collapsed ('TK000012218' -> 'a9')."""
    for pattern, repl in _SHAPE:
        value = re.sub(pattern, repl, value)
    return value


def _first_field_shapes(table) -> frozenset[str]:
    """Shapes of the values in the file's first column (computed per distinct value, in pyarrow)."""
    import pyarrow.compute as pc

    if table.num_columns == 0 or table.num_rows == 0:
        return frozenset()
    col = pc.unique(table.column(0))
    for pattern, repl in _SHAPE:
        col = pc.replace_substring_regex(col, pattern, repl)
    return frozenset(v for v in pc.unique(col).to_pylist() if v is not None and "\n" not in v and "\r" not in v)


def _quote_open_at_end(text: str, delimiter: str) -> bool:
    """Whether a quoted field is still open at the end of ``text`` (CSV rules as pyarrow and the csv
    module apply them: a quote opens a field only at its start, ``""`` inside it is a quote, a lone
    quote closes it; quotes elsewhere are ordinary characters)."""
    in_quote, i = False, 0
    while True:
        j = text.find('"', i)
        if j < 0:
            return in_quote
        if in_quote:
            if text.startswith('"', j + 1):
                i = j + 2
                continue
            in_quote = False
        elif j == 0 or text[j - 1] in (delimiter, "\n", "\r"):
            in_quote = True
        i = j + 1


def _looks_like_row(line: str, n: int, delimiter: str, shapes: frozenset[str]) -> bool:
    """A line that, read on its own, is a complete row: the header's ``n`` fields, no quote left
    open, and a first field shaped like the first fields of the file's rows (an id, a date ...)."""
    body = line.rstrip("\r\n")
    if n < 2 or body.count(delimiter) < n - 1 or _quote_open_at_end(body, delimiter):
        return False
    fields = next(csv.reader([body], delimiter=delimiter))
    return len(fields) == n and _shape(fields[0]) in shapes


def _may_hide_open_quote(table, m: ChannelMapping, columns: list[int], shapes: frozenset[str]) -> bool:
    """Whether the multi-line values pyarrow read may be an unterminated quote rather than text
    that legitimately spans lines (then :func:`_read_csv_records` reads the file again).

    Yes when the mapping says values do not span lines, when a value of the last record ends
    with a line break (a quote that ran to the end of the file), or when an inner line of a
    multi-line value is a complete row on its own (:func:`_looks_like_row`). Vectorised: only
    inner lines with enough delimiters reach Python. A service ticket's multi-line description
    passes, so such files keep the plain pyarrow read.
    """
    import pyarrow.compute as pc

    if not m.source.newlines_in_values:
        return True
    n, d = table.num_columns, m.source.delimiter
    for i in columns:
        col = table.column(i)
        last = col[len(col) - 1].as_py() if len(col) else None
        if last and last.endswith(("\n", "\r")):  # a quote left open in the last record runs to the file's end
            return True
        multi = pc.match_substring_regex(col, "[\r\n]")
        inner = pc.list_flatten(pc.list_slice(pc.split_pattern_regex(pc.filter(col, multi), "\r\n|\r|\n"), 1))
        inner = pc.filter(inner, pc.greater_equal(pc.count_substring(inner, d), max(n - 1, 1)))
        if any(_looks_like_row(line, n, d, shapes) for line in inner.to_pylist()):
            return True
    return False


def _span(first: int, last: int) -> str:
    return f"line {first}" if first == last else f"lines {first}-{last}"


def _read_csv_records(path: Path, m: ChannelMapping, shapes: frozenset[str] = frozenset()) -> RawRead:
    """Read a CSV file record by record, knowing the physical lines of each record.

    Used (by :func:`_read_csv`) for files where a parsed value holds a line break and an
    unterminated quote may be the cause. A record that spans lines is a **damaged** one — a
    quote that was opened and never closed, swallowing the lines after it — when

    - the mapping says values do not span lines (``newlines_in_values: false``), or
    - it does not split into the header's number of fields, or
    - its quote is still open at the end of the file, or
    - one of the lines it swallowed is a complete row on its own (:func:`_looks_like_row`).

    The line that opened the quote is quarantined, with the lines it swallowed named
    (``unterminated quote opened in line 5 (column 'name') swallowed lines 6-7``), and
    reading starts again at the next line, so each swallowed line is read as what it is: a
    row (validated and kept or quarantined like any other) or a fragment (quarantined with
    its line number). Nothing is lost and every line is counted. A legitimately multi-line
    record passes these checks and stays one record.

    The csv module finds the records and their lines; the values of the good records come
    from pyarrow reading them again, so they are exactly what the plain pyarrow read gives.
    """
    import itertools

    import pyarrow as pa
    import pyarrow.csv as pcsv

    src = m.source
    d = src.delimiter
    try:
        text = path.read_bytes().decode(src.encoding)
    except UnicodeDecodeError as exc:
        raise MappingError(_encoding_message(path, m, exc)) from None
    lines = _LINE.findall(text.removeprefix("\ufeff"))
    del text
    source = iter(lines)
    reader, base = csv.reader(source, delimiter=d), 0  # lines[base] is the reader's first line
    good: list[list[int]] = []                         # [first line, end line] of runs of good records
    rows: list[int] = []
    bad: list[tuple[int, str, str]] = []
    swallowed_by: dict[int, int] = {}  # line index -> index of the line whose quote swallowed it
    header: tuple[int, int] | None = None
    names: list[str] = []
    n, ordinal = 0, 0
    limit = csv.field_size_limit()
    csv.field_size_limit(2**31 - 1)  # a quote that never closes makes one huge field
    try:
        while True:
            s = base + reader.line_num
            try:
                fields = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:  # the csv module's own complaint: a row of its own, quarantined
                e = base + reader.line_num
                ordinal += 1
                bad.append((ordinal, f"cannot be split into fields ({exc}) in {_span(s + 1, e)}",
                            "".join(lines[s:e]).rstrip("\r\n")[:500]))
                reader, base = csv.reader(source, delimiter=d), e
                continue
            e = base + reader.line_num
            if not fields:  # an empty line
                continue
            if header is None:
                header, names, n = (s, e), fields, len(fields)
                continue
            open_at_end = e == len(lines) and _quote_open_at_end("".join(lines[s:e]), d)
            damaged = open_at_end or (e - s > 1 and (
                not src.newlines_in_values or len(fields) != n
                or any(_looks_like_row(lines[j], n, d, shapes) for j in range(s + 1, e))))
            ordinal += 1
            if damaged:
                opener = lines[s].rstrip("\r\n")
                k = len(next(csv.reader([opener], delimiter=d))) - 1  # the field whose quote stays open
                column = repr(names[k]) if k < n else f"{k + 1} (the header has {n})"
                what = (f"swallowed {_span(s + 2, e)}" + (" (to the end of the file)" if open_at_end else "")
                        if e - s > 1 else "is never closed")
                reason = f"unterminated quote opened in line {s + 1} (column {column}) {what}"
                if e - s > 1:
                    reason += "; this line is quarantined and the swallowed lines are read on their own"
                if not src.newlines_in_values:
                    reason += (" (the mapping says values do not span lines; if they do in this file, set "
                               "`newlines_in_values: true`)")
                if s in swallowed_by:
                    reason += f"; itself swallowed by the quote opened in line {swallowed_by[s] + 1}"
                bad.append((ordinal, reason, opener[:500]))
                for j in range(s + 1, e):
                    swallowed_by.setdefault(j, s)
                # read the swallowed lines again, from a fresh record
                reader, base = csv.reader(itertools.chain(lines[s + 1:e], source), delimiter=d), s + 1
            elif len(fields) != n:
                reason = f"row has {len(fields)} fields, expected {n} (delimiter {d!r}) in {_span(s + 1, e)}"
                if s in swallowed_by:
                    reason += f", a line swallowed by the unterminated quote opened in line {swallowed_by[s] + 1}"
                bad.append((ordinal, reason, "".join(lines[s:e]).rstrip("\r\n")[:500]))
            else:
                if good and good[-1][1] == s:
                    good[-1][1] = e
                else:
                    good.append([s, e])
                rows.append(ordinal)
    finally:
        csv.field_size_limit(limit)
    if header is None:
        raise MappingError(f"{path}: the file is empty — expected a header row with the columns "
                           f"{sorted(m.columns)}.")
    # the good records again, through pyarrow: the same values as a plain read would give
    body = "".join(itertools.chain(lines[header[0]:header[1]], *(lines[s:e] for s, e in good)))
    if good and not body.endswith(("\n", "\r")):
        body += "\n"
    try:
        table = pcsv.read_csv(
            pa.BufferReader(body.encode("utf-8")),
            read_options=pcsv.ReadOptions(use_threads=False, block_size=1 << 24),
            parse_options=pcsv.ParseOptions(delimiter=d, newlines_in_values=True),
            convert_options=pcsv.ConvertOptions(column_types={c: pa.string() for c in names},
                                                strings_can_be_null=False, quoted_strings_can_be_null=False))
        agree = table.num_rows == len(rows)
    except pa.ArrowInvalid:
        agree = False
    if not agree:  # pragma: no cover - the csv module and pyarrow disagree on where a record ends
        raise MappingError(f"{path}: the records of this file cannot be told apart (the csv module and pyarrow "
                           "split them differently); check its quoting.")
    df = table.to_pandas(types_mapper=pd.ArrowDtype).astype("string")
    df["_source_row"] = np.asarray(rows, dtype=np.int64)
    return RawRead(df, _bad(bad), len(rows) + len(bad))


def _read_jsonl(path: Path, m: ChannelMapping) -> RawRead:
    import pyarrow as pa
    import pyarrow.json as pjson

    if path.stat().st_size == 0:
        raise MappingError(f"{path}: the file is empty — expected JSON lines with the keys {sorted(m.columns)}.")
    try:
        table = pjson.read_json(path)
        # pyarrow turns ISO-looking text into timestamps, dropping the zone ("…+08:00" becomes naive UTC,
        # which the clean stage would then read as local time): read such columns again as the text they are
        stamped = [f.name for f in table.schema if pa.types.is_timestamp(f.type) or pa.types.is_date(f.type)]
        if stamped:
            table = pjson.read_json(path, parse_options=pjson.ParseOptions(
                explicit_schema=pa.schema([(c, pa.string()) for c in stamped]), unexpected_field_behavior="infer"))
        df = table.to_pandas()
        df = df.astype({c: "string" for c in df.columns if df[c].dtype == object})
        df["_source_row"] = np.arange(1, len(df) + 1)
        return RawRead(df, _bad([]), len(df))
    except Exception:  # a malformed line: fall back to line-by-line so one bad line costs one row
        pass
    records, rows, bad = [], [], []
    with open(path, encoding=m.source.encoding) as fh:
        for i, line in enumerate(fh, start=1):
            try:
                obj = json.loads(line)
                if not isinstance(obj, dict):
                    raise ValueError("not a JSON object")
            except ValueError as exc:
                bad.append((i, f"line is not a JSON object ({exc})", line[:500]))
                continue
            records.append(obj)
            rows.append(i)
    df = pd.DataFrame.from_records(records)
    df = df.astype({c: "string" for c in df.columns if df[c].dtype == object})
    df["_source_row"] = np.asarray(rows, dtype=np.int64)
    return RawRead(df, _bad(bad), len(rows) + len(bad))


def _read_parquet(path: Path, m: ChannelMapping) -> RawRead:
    df = pd.read_parquet(path)
    df = df.astype({c: "string" for c in df.columns if df[c].dtype == object})
    df["_source_row"] = np.arange(1, len(df) + 1)
    return RawRead(df, _bad([]), len(df))


def _read_excel(path: Path, m: ChannelMapping) -> RawRead:
    df = pd.read_excel(path, sheet_name=m.source.sheet or 0, dtype=str).astype("string")
    df["_source_row"] = np.arange(1, len(df) + 1)
    return RawRead(df, _bad([]), len(df))


READERS = {"csv": _read_csv, "jsonl": _read_jsonl, "parquet": _read_parquet, "excel": _read_excel}


def read_source(path: str | Path, mapping: ChannelMapping) -> RawRead:
    """Parse one file as its mapping declares; check every mapped column is present."""
    path = Path(path)
    if not path.exists():
        raise MappingError(f"{path}: file not found (channel '{mapping.channel}', pattern "
                           f"'{mapping.source.pattern}').")
    raw = READERS[mapping.source.format](path, mapping)
    check_columns(raw.frame.columns, mapping, path)
    return raw


def check_columns(present: Iterable[str], mapping: ChannelMapping, path: str | Path) -> None:
    """Raise :class:`MappingError` naming the file, the missing and the present columns."""
    present = [c for c in present if c != "_source_row"]
    missing = [c for c in mapping.columns if c not in present]
    if missing:
        raise MappingError(
            f"{path}: missing column(s) {missing} required by the '{mapping.channel}' mapping "
            f"(fields {[mapping.columns[c] for c in missing]}). Columns in the file: {present}.")


# ----------------------------------------------------------------------------- validation
def build_schema(mapping: ChannelMapping):
    """A pandera schema for the canonical frame: required values and parseable numbers."""
    import pandera.pandas as pa

    columns = {}
    for name, spec in mapping.fields.items():
        checks = []
        if spec.required:
            # ignore_na=False: pandera skips nulls by default, and a null is exactly what
            # a required check must catch (JSON, Parquet and Excel carry real nulls)
            checks.append(pa.Check(lambda s: ~is_missing(s), element_wise=False, ignore_na=False,
                                   error=f"required value missing (column '{spec.column}')",
                                   name="required"))
        if spec.type in NUMERIC_TYPES:
            checks.append(pa.Check(lambda s: is_missing(s) | parse_number(s).notna(), element_wise=False,
                                   error=f"expected a number in column '{spec.column}'", name="number"))
            if spec.type == "integer":
                checks.append(pa.Check(lambda s: is_missing(s) | (parse_number(s) % 1 == 0).fillna(False),
                                       element_wise=False, error=f"expected a whole number in column "
                                       f"'{spec.column}'", name="integer"))
        columns[name] = pa.Column(checks=checks, nullable=True, required=True)
    return pa.DataFrameSchema(columns, name=mapping.channel, strict=False)


def validate(frame: pd.DataFrame, mapping: ChannelMapping) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a canonical frame into (kept, failures). Failures has one row per failed check.

    Every failure is reported (pandera lazy validation), not just the first.
    """
    import pandera.errors as pe

    schema = build_schema(mapping)
    try:
        schema.validate(frame, lazy=True)
        return frame, pd.DataFrame(columns=["index", "field", "check", "value"])
    except pe.SchemaErrors as err:
        fc = err.failure_cases
    fc = fc[fc["index"].notna()].copy()
    fc = pd.DataFrame({"index": fc["index"].astype("int64"), "field": fc["column"].astype(str),
                       "check": fc["check"].astype(str), "value": fc["failure_case"].astype(str)})
    return frame.drop(index=fc["index"].unique()), fc


def _canonical(raw: pd.DataFrame, mapping: ChannelMapping, rel: str) -> pd.DataFrame:
    out = pd.DataFrame(index=raw.index)
    for col, name in mapping.columns.items():
        out[name] = raw[col]
    for name, value in mapping.constants.items():
        out[name] = pd.Series(value, index=raw.index, dtype="string")
    out.insert(0, "_source_file", pd.Series(rel, index=raw.index, dtype="string"))
    out.insert(1, "_source_row", raw["_source_row"].astype("int64"))
    return out


def _finalise(kept: pd.DataFrame, mapping: ChannelMapping) -> pd.DataFrame:
    """Cast numeric fields (validated above) and give every other field a string dtype."""
    kept = kept.copy()
    for name, spec in mapping.fields.items():
        if spec.type in NUMERIC_TYPES:
            v = parse_number(kept[name])
            kept[name] = v.astype("Int64") if spec.type == "integer" else v
        elif not pd.api.types.is_string_dtype(kept[name]) and spec.type != "timestamp":
            kept[name] = kept[name].astype("string")
    return kept.reset_index(drop=True)


# ----------------------------------------------------------------------------- files read by several mappings
@dataclass(frozen=True)
class FileClaims:
    """How the mappings that read one file share its rows.

    A file that holds two kinds of thing (sales and returns) is read by two mappings whose
    ``filter`` keep disjoint codes of one category field. ``others`` maps the codes the other
    mappings keep to their channel; the ``first`` mapping (in mapping order) is the one that
    reports the rows nobody can take — rows the parser cannot split, and rows whose code no
    mapping keeps — so every physical row is counted exactly once.
    """

    others: dict[str, str]
    first: bool = True


def file_claims(mappings: dict[str, ChannelMapping], raw_dir: Path) -> dict[tuple[str, str], FileClaims]:
    """``(channel, file) -> FileClaims`` for every file read by more than one mapping.

    Raises :class:`MappingError` when the mappings of one file do not split it cleanly (a
    mapping without a filter, filters on different fields, or a code kept twice).
    """
    readers: dict[str, list[ChannelMapping]] = {}
    for m in mappings.values():
        for f in m.files(raw_dir):
            readers.setdefault(f.relative_to(raw_dir).as_posix(), []).append(m)
    out: dict[tuple[str, str], FileClaims] = {}
    for rel, ms in readers.items():
        if len(ms) < 2:
            continue
        names = [m.channel for m in ms]
        fields = {m.filter.field if m.filter else None for m in ms}
        if None in fields or len(fields) != 1:
            raise MappingError(f"{rel} is read by the mappings {names}: give each a `filter` on the same category "
                               "field (e.g. {field: txn_type, values: [sale]}) so every row belongs to one of them.")
        kept: dict[str, str] = {}
        for m in ms:
            for code in m.filter.values:
                if code in kept:
                    raise MappingError(f"{rel}: the mappings '{kept[code]}' and '{m.channel}' both keep rows with "
                                       f"{m.filter.field} = {code!r}; every row must belong to one mapping.")
                kept[code] = m.channel
        for i, m in enumerate(ms):
            out[(m.channel, rel)] = FileClaims({c: ch for c, ch in kept.items() if ch != m.channel}, first=i == 0)
    return out


def _split_rows(canon: pd.DataFrame, mapping: ChannelMapping, claims: FileClaims | None
                ) -> tuple[np.ndarray, np.ndarray, pd.Series]:
    """(mine, unclaimed, codes) of a filtered mapping: rows it keeps, rows no mapping of the file
    keeps (reported by the first mapping only), and each row's filter code."""
    flt = mapping.filter
    codes = category_codes(canon[flt.field], mapping.fields[flt.field].values)
    mine = codes.isin(flt.values).fillna(False).to_numpy(bool)
    others = set((claims.others if claims else {}))
    theirs = codes.isin(others).fillna(False).to_numpy(bool) if others else np.zeros(len(canon), bool)
    first = claims.first if claims is not None else True
    unclaimed = ~mine & ~theirs & first
    return mine, unclaimed, codes


# ----------------------------------------------------------------------------- ledger + stage
@dataclass
class FileReport:
    """Outcome of one source file for one mapping: ``read = kept + quarantined + suppressed + filtered``.

    ``filtered`` counts rows the mapping's ``filter`` leaves to another mapping of the file.
    """

    channel: str
    file: str
    sha256: str
    status: str  # ingested | unchanged | removed
    read: int = 0
    kept: int = 0
    quarantined: int = 0
    seconds: float = 0.0
    suppressed: int = 0  # rows of persons erased by `workbench forget` (suppression list)
    filtered: int = 0    # rows another mapping of the same file keeps


@dataclass
class IngestResult:
    """Per-file outcomes of one ingestion run, with per-channel totals."""

    files: list[FileReport] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> pd.DataFrame:
        """One row per channel: files, read, kept, quarantined, suppressed, filtered (all files on record)."""
        cols = ["files", "new_or_changed", "read", "kept", "quarantined", "suppressed", "filtered"]
        df = pd.DataFrame([asdict(f) for f in self.files if f.status != "removed"])
        if df.empty:
            return pd.DataFrame(columns=cols)
        g = df.groupby("channel", sort=False)
        return pd.DataFrame({"files": g.size(), "new_or_changed": g["status"].apply(lambda s: (s == "ingested").sum()),
                             "read": g["read"].sum(), "kept": g["kept"].sum(), "quarantined": g["quarantined"].sum(),
                             "suppressed": g["suppressed"].sum(), "filtered": g["filtered"].sum()})[cols]

    def totals(self) -> dict[str, int]:
        """Physical rows: a file read by several mappings counts once in ``read``; each of its rows is
        kept, quarantined or suppressed by exactly one of them, so read = kept + quarantined + suppressed."""
        df = pd.DataFrame([asdict(f) for f in self.files if f.status != "removed"])
        if df.empty:
            return {k: 0 for k in ("read", "kept", "quarantined", "suppressed")}
        out = {"read": int(df.groupby("file")["read"].max().sum())}
        out.update({k: int(df[k].sum()) for k in ("kept", "quarantined", "suppressed")})
        return out

    @property
    def changed(self) -> list[str]:
        return list(dict.fromkeys(f.file for f in self.files if f.status == "ingested"))

    @property
    def unchanged(self) -> list[str]:
        return list(dict.fromkeys(f.file for f in self.files if f.status == "unchanged"))


LEDGER_VERSION = 2


def load_ledger(paths: Paths) -> dict[str, dict[str, dict]]:
    """The ingest ledger: ``{file: {channel: entry}}`` (SHA-256, counts) of every file ingested.

    A ledger of the first format (one entry per file) is read as such.
    """
    if not paths.ingest_ledger.exists():
        return {}
    doc = json.loads(paths.ingest_ledger.read_text(encoding="utf-8"))
    if doc.get("version") == LEDGER_VERSION:
        return doc["files"]
    return {rel: {e["channel"]: e} for rel, e in doc.items() if isinstance(e, dict) and "channel" in e}


def save_ledger(paths: Paths, ledger: dict[str, dict[str, dict]]) -> None:
    """Write the ledger atomically (files and channels sorted, so it diffs well)."""
    doc = {"version": LEDGER_VERSION, "files": {rel: dict(sorted(by.items())) for rel, by in sorted(ledger.items())
                                                if by}}
    paths.ingest_ledger.parent.mkdir(parents=True, exist_ok=True)
    tmp = paths.ingest_ledger.with_name(paths.ingest_ledger.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, paths.ingest_ledger)


def _output_path(paths: Paths, channel: str, rel: str) -> Path:
    stem = rel.replace("/", "__").rsplit(".", 1)[0]
    return paths.ingested / channel / f"{stem}.parquet"


def write_quarantine(paths: Paths, channel: str, stage: str, replace_files: set[str] | None,
                      rows: pd.DataFrame) -> None:
    """Replace ``stage``'s rows for ``replace_files`` (None = all of that stage) with ``rows``."""
    q = paths.quarantine / f"{channel}.parquet"
    old = pd.read_parquet(q) if q.exists() else pd.DataFrame(columns=QUARANTINE_COLUMNS)
    drop = old["stage"] == stage
    if replace_files is not None:
        drop &= old["_source_file"].isin(replace_files)
    new = pd.concat([old[~drop], rows[QUARANTINE_COLUMNS]], ignore_index=True) if len(rows) else old[~drop]
    new = new.astype({"stage": "string", "_source_file": "string", "_source_row": "int64",
                      "reason": "string", "record": "string"})
    q.parent.mkdir(parents=True, exist_ok=True)
    new.sort_values(["stage", "_source_file", "_source_row"], kind="stable").to_parquet(q, index=False)


def _records_json(frame: pd.DataFrame) -> list[str]:
    return frame.drop(columns=["_source_file", "_source_row"]).to_json(
        orient="records", lines=True, force_ascii=False).splitlines() if len(frame) else []


@dataclass
class ProcessedRows:
    """Rows of one file (or one chunk of a database read) after mapping, filtering and validation."""

    kept: pd.DataFrame
    quarantined: pd.DataFrame  # _source_file, _source_row, reason, record, stage
    suppressed: int
    filtered: int


def process_rows(raw: RawRead, mapping: ChannelMapping, paths: Paths, rel: str, *,
                 claims: FileClaims | None = None) -> ProcessedRows:
    """Map, filter, suppress and validate the rows a reader gave: what a file and a database chunk share.

    ``rel`` names where the rows came from (``_source_file``); ``claims`` says how the rows are
    shared when several mappings read the same file (see :func:`file_claims`).

    Example:
        >>> done = process_rows(read_source(path, mapping), mapping, paths, "shop/a.csv")   # doctest: +SKIP
        >>> len(done.kept) + len(done.quarantined) + done.suppressed + done.filtered          # doctest: +SKIP
    """
    from .privacy.suppression import suppressed_records, suppressed_rows

    canon = _canonical(raw.frame, mapping, rel)
    # rows the parser could not split: reported once per file (by its first mapping)
    bad_rows = raw.bad_rows if claims is None or claims.first else raw.bad_rows.iloc[0:0]
    filtered, orphans = 0, canon.iloc[0:0]
    if mapping.filter is not None:
        mine, orphan, _ = _split_rows(canon, mapping, claims)
        filtered = int((~mine & ~orphan).sum())
        canon, orphans = canon[mine], canon[orphan]
    # persons erased by `workbench forget` stay out, even from an old copy of a file
    sup = suppressed_rows(canon, mapping, paths)
    canon = canon[~sup]
    osup = suppressed_rows(orphans, mapping, paths) if len(orphans) else np.zeros(0, bool)
    orphans = orphans[~osup]
    bsup = suppressed_records(bad_rows["record"], mapping, paths) if len(bad_rows) else np.zeros(0, bool)
    bad_rows = bad_rows[~bsup]
    kept, failures = validate(canon, mapping)
    q_parts = []
    if len(bad_rows):
        b = bad_rows.copy()
        b["_source_file"] = rel
        q_parts.append(b)
    if len(orphans):
        spec = mapping.fields[mapping.filter.field]
        kept_by = "; ".join([f"{mapping.filter.values} ({mapping.channel})"]
                            + [f"{c!r} ({ch})" for c, ch in sorted((claims.others if claims else {}).items())])
        got = orphans[mapping.filter.field].astype("string").fillna("<missing>").map(repr)
        q_parts.append(pd.DataFrame({
            "_source_file": rel, "_source_row": orphans["_source_row"].to_numpy(),
            "reason": (f"no mapping of this file keeps this row: column '{spec.column}' is " + got
                       + f"; the mappings keep {kept_by}").to_numpy(),
            "record": _records_json(orphans)}))
    if len(failures):
        reasons = (failures.assign(msg=failures["check"] + " (got " + failures["value"].str.slice(0, 40)
                                   .map(repr) + ")")
                   .groupby("index")["msg"].agg("; ".join))
        bad = canon.loc[reasons.index]
        q_parts.append(pd.DataFrame({
            "_source_file": rel, "_source_row": bad["_source_row"].to_numpy(),
            "reason": reasons.to_numpy(), "record": _records_json(bad)}))
    quarantined = (pd.concat(q_parts, ignore_index=True) if q_parts
                   else pd.DataFrame(columns=["_source_file", "_source_row", "reason", "record"]))
    quarantined["stage"] = "ingest"
    return ProcessedRows(_finalise(kept, mapping), quarantined, int(sup.sum() + osup.sum() + bsup.sum()),
                         filtered + (len(raw.bad_rows) if claims is not None and not claims.first else 0))


def ingest_file(path: Path, mapping: ChannelMapping, paths: Paths, digest: str | None = None,
                claims: FileClaims | None = None) -> tuple[FileReport, pd.DataFrame]:
    """Ingest one file; returns its report and its quarantined rows.

    ``claims`` says how the file's rows are shared when several mappings read it
    (see :func:`file_claims`); without it the mapping reads the file alone.
    """
    t0 = time.perf_counter()
    rel = path.relative_to(paths.raw).as_posix()
    raw = read_source(path, mapping)
    done = process_rows(raw, mapping, paths, rel, claims=claims)
    out = _output_path(paths, mapping.channel, rel)
    out.parent.mkdir(parents=True, exist_ok=True)
    done.kept.to_parquet(out, index=False)
    rep = FileReport(mapping.channel, rel, digest or file_sha256(path), "ingested", read=raw.total,
                     kept=len(done.kept), quarantined=len(done.quarantined), suppressed=done.suppressed,
                     filtered=done.filtered, seconds=round(time.perf_counter() - t0, 3))
    if rep.read != rep.kept + rep.quarantined + rep.suppressed + rep.filtered:
        raise AssertionError(f"{rel} ({mapping.channel}): counts do not reconcile: {rep}")
    return rep, done.quarantined


def _ingest_channel(m: ChannelMapping, paths: Paths, ledger: dict, force: bool,
                    claims: dict[tuple[str, str], FileClaims]) -> tuple[list, dict, list]:
    """Ingest one channel's new or changed files.

    Returns (file reports, ledger entries to set — None to delete — keyed by file, errors).
    """
    if m.source.format == "sql":
        return _ingest_sql_channel(m, paths, ledger, force)
    files = m.files(paths.raw)
    if not files:
        return [], {}, [f"Channel '{m.channel}': no file matches '{m.source.pattern}' under {paths.raw}."]
    reports, updates, errors = [], {}, []
    seen, changed_files, q_parts = set(), set(), []
    for f in files:
        rel = f.relative_to(paths.raw).as_posix()
        seen.add(rel)
        entry = ledger.get(rel, {}).get(m.channel)
        digest = file_sha256(f)
        if entry and not force and entry["sha256"] == digest and _output_path(paths, m.channel, rel).exists():
            reports.append(FileReport(**{"filtered": 0, **entry, "status": "unchanged"}))
            continue
        try:
            rep, q = ingest_file(f, m, paths, digest, claims.get((m.channel, rel)))
        except MappingError as exc:
            errors.append(str(exc))
            continue
        updates[rel] = {k: v for k, v in asdict(rep).items() if k != "status"}
        changed_files.add(rel)
        q_parts.append(q)
        reports.append(rep)
    gone = {rel for rel, by in ledger.items() if m.channel in by and rel not in seen}
    for rel in sorted(gone):  # a source file was withdrawn: withdraw what it contributed
        _output_path(paths, m.channel, rel).unlink(missing_ok=True)
        reports.append(FileReport(**{"filtered": 0, **ledger[rel][m.channel], "status": "removed"}))
        updates[rel] = None
    if changed_files or gone:
        qs = pd.concat(q_parts, ignore_index=True) if q_parts else pd.DataFrame(columns=QUARANTINE_COLUMNS)
        write_quarantine(paths, m.channel, "ingest", changed_files | gone, qs)
    return reports, updates, errors


def _sql_batch_path(paths: Paths, channel: str, rel: str) -> Path:
    return paths.ingested / channel / (rel.replace("/", "__") + ".parquet")


def _report_of(entry: dict, status: str) -> FileReport:
    return FileReport(**{k: entry[k] for k in FileReport.__dataclass_fields__ if k in entry and k != "status"},
                      status=status)


def _ingest_sql_channel(m: ChannelMapping, paths: Paths, ledger: dict, force: bool) -> tuple[list, dict, list]:
    """Ingest a database source (:mod:`workbench.sql_source`) in chunks, as one batch per run.

    Each run that reads rows writes one batch, ``sql/<table>/batch-NNNNNN``: its kept rows in
    one Parquet file (written chunk by chunk), its quarantined rows under that name, and a
    ledger entry with the counts, the watermark reached and the source (password masked). With
    ``incremental`` the next run reads only rows past the watermark and adds a batch; without it,
    or when the source changed, or with ``force``, the table is read whole and replaces every
    earlier batch. Returns (reports, ledger updates keyed by batch — None to delete — , errors).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .sql_source import SqlRead, describe_source, resolve_url

    t0 = time.perf_counter()
    src = m.source
    mine = {rel: by[m.channel] for rel, by in sorted(ledger.items()) if m.channel in by}
    try:  # the source as recorded: the resolved URL with its password masked (another database: a full read)
        identity = {"source": describe_source(m, url=resolve_url(m)), "incremental": src.incremental}
    except MappingError as exc:
        return [_report_of(e, "unchanged") for e in mine.values()], {}, [str(exc)]
    same = bool(mine) and all(e.get("sql", {}).get("identity") == identity for e in mine.values())
    incremental = src.incremental is not None and same and not force
    last = mine[max(mine)]["sql"] if incremental else {}
    read = SqlRead(m, after=last.get("watermark"), boundary=last.get("boundary"))
    label = re.sub(r"[^\w.-]", "_", src.table) if src.table is not None else "query"
    number = 1 + max((int(r.rsplit("-", 1)[1]) for r in mine), default=0) if incremental else 1
    rel = f"sql/{label}/batch-{number:06d}"
    out = _sql_batch_path(paths, m.channel, rel)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + f".{os.getpid()}.tmp")
    writer, schema, q_parts = None, None, []
    kept = quarantined = suppressed = filtered = 0
    try:
        for chunk in read.chunks():
            done = process_rows(RawRead(chunk, _bad([]), len(chunk)), m, paths, rel)
            table = pa.Table.from_pandas(done.kept, preserve_index=False)
            if writer is None:
                schema = table.schema
                writer = pq.ParquetWriter(tmp, schema)
            writer.write_table(table.cast(schema))
            q_parts.append(done.quarantined)
            kept, quarantined = kept + len(done.kept), quarantined + len(done.quarantined)
            suppressed, filtered = suppressed + done.suppressed, filtered + done.filtered
    except MappingError as exc:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)  # what is on record stays as it was
        return [_report_of(e, "unchanged") for e in mine.values()], {}, [str(exc)]
    errors = []
    if read.missing:
        errors.append(f"Channel '{m.channel}' ({identity['source']}): {read.missing} row(s) have no value in the "
                      f"incremental column '{src.incremental}'; an incremental read cannot tell when they changed, "
                      "so they are not read. Fill the column, or drop `incremental` to read the whole source "
                      "every run.")
    reports = [_report_of(e, "unchanged") for e in mine.values()] if incremental else []
    if incremental and read.new_rows == 0:  # nothing past the watermark: the batches on record stand
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
        return reports, {}, errors
    if writer is None:  # an empty source still leaves a (empty) batch, so the channel has its table
        frame = _finalise(_canonical(pd.DataFrame({c: pd.Series(dtype="string") for c in read.columns()}
                                                  | {"_source_row": pd.Series(dtype="int64")}), m, rel), m)
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp)
    else:
        writer.close()
    os.replace(tmp, out)
    updates: dict[str, dict | None] = {}
    if not incremental:  # a full read replaces every earlier batch
        for old in mine:
            if old != rel:  # (a file, if the channel read files before)
                old_out = _sql_batch_path if "sql" in mine[old] else _output_path
                old_out(paths, m.channel, old).unlink(missing_ok=True)
                updates[old] = None
    rep = FileReport(m.channel, rel, read.sha256, "ingested", read=read.new_rows, kept=kept, quarantined=quarantined,
                     suppressed=suppressed, filtered=filtered, seconds=round(time.perf_counter() - t0, 3))
    if rep.read != rep.kept + rep.quarantined + rep.suppressed + rep.filtered:
        raise AssertionError(f"{rel} ({m.channel}): counts do not reconcile: {rep}")
    updates[rel] = {**{k: v for k, v in asdict(rep).items() if k != "status"},
                    "sql": {"identity": identity, "watermark": read.watermark, "boundary": read.boundary,
                            "fetched": read.fetched, "reread": read.reread}}
    qs = pd.concat(q_parts, ignore_index=True) if q_parts else pd.DataFrame(columns=QUARANTINE_COLUMNS)
    write_quarantine(paths, m.channel, "ingest", set(updates), qs)
    return reports + [rep], updates, errors


def run_per_channel(func, mappings: dict, args: tuple, *, workers: int | None, progress: bool, desc: str) -> list:
    """Run ``func(mapping, *args)`` for every channel, in a process pool when ``workers`` > 1.

    Results come back in mapping order whatever order the workers finish in, so the outputs
    (and the files each channel writes) do not depend on scheduling.
    """
    items = list(mappings.values())
    workers = min(workers if workers is not None else default_workers(), len(items)) or 1
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(items), desc=desc, unit="channel")
    results: dict[str, Any] = {}
    if workers <= 1:
        for m in items:
            results[m.channel] = func(m, *args)
            bar and bar.update(1)
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
        # biggest inputs first so the two workers finish together
        order = sorted(items, key=lambda m: -sum(f.stat().st_size for f in m.files(args[0].raw)))
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futures = {pool.submit(func, m, *args): m.channel for m in order}
            for fut in as_completed(futures):
                results[futures[fut]] = fut.result()
                bar and bar.update(1)
    if bar:
        bar.close()
    return [results[m.channel] for m in items]


def default_workers() -> int:
    """Worker processes for per-channel stages: ``$WORKBENCH_WORKERS`` or min(2, CPUs)."""
    env = os.environ.get("WORKBENCH_WORKERS")
    return max(1, int(env)) if env else max(1, min(2, os.cpu_count() or 1))


def ingest_all(paths: Paths | None = None, *, mappings: dict[str, ChannelMapping] | None = None,
               channels: Iterable[str] | None = None, force: bool = False, strict: bool = True,
               progress: bool = True, workers: int | None = None, log=print) -> IngestResult:
    """Ingest every mapped channel; only new or changed files unless ``force``.

    A channel with no files, a missing column or an unreadable file is an error: all such
    errors are collected and, with ``strict`` (the default), raised together at the end as
    one :class:`MappingError` after the other channels were ingested. Channels run in
    ``workers`` processes (default: :func:`default_workers`). The mappings used are recorded
    (:mod:`workbench.runconfig`) for every later stage.
    """
    from .runconfig import record

    t0 = time.perf_counter()
    paths = (paths or get_paths()).ensure()
    mappings = mappings if mappings is not None else load_mappings()
    claims = file_claims(mappings, paths.raw)
    record(paths, "mappings", {c: m.to_dict() for c, m in mappings.items()})
    selected = mappings
    if channels is not None:
        unknown = sorted(set(channels) - set(mappings))
        if unknown:
            raise MappingError(f"Unknown channel(s) {unknown}. Mapped channels: {sorted(mappings)}.")
        selected = {c: mappings[c] for c in channels}
    ledger = load_ledger(paths)
    result = IngestResult()
    outcomes = run_per_channel(_ingest_channel, selected, (paths, ledger, force, claims), workers=workers,
                               progress=progress, desc="ingest")
    for m, (reports, updates, errors) in zip(selected.values(), outcomes):
        result.files.extend(reports)
        result.errors.extend(errors)
        for rel, entry in updates.items():
            if entry is None:
                ledger.get(rel, {}).pop(m.channel, None)
            else:
                ledger.setdefault(rel, {})[m.channel] = entry
    save_ledger(paths, ledger)
    result.seconds = round(time.perf_counter() - t0, 3)
    _write_metrics(paths, result)
    if log:
        if result.changed:
            log(f"ingested {len(result.changed)} new or changed file(s): {', '.join(result.changed)}")
        if result.unchanged:
            log(f"skipped {len(result.unchanged)} unchanged file(s) (checksum on record)")
    if result.errors and strict:
        raise MappingError("Ingestion found problems:\n- " + "\n- ".join(result.errors))
    return result


def _write_metrics(paths: Paths, result: IngestResult) -> None:
    s = result.summary()
    doc = {
        "stage": "ingest", "seconds": result.seconds,
        "channels": {c: {k: int(v) for k, v in row.items()} for c, row in s.iterrows()},
        "totals": result.totals(),
        "files_changed": result.changed, "files_unchanged": result.unchanged, "errors": result.errors,
    }
    paths.metrics.mkdir(parents=True, exist_ok=True)
    (paths.metrics / "ingest.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")


def ingested_parts(channel: str, paths: Paths | None = None) -> list[Path]:
    """The ingested Parquet files of one channel (one per source file), in the order they are read.

    >>> ingested_parts("site_clicks")  # doctest: +SKIP
    [PosixPath('data/interim/ingested/site_clicks/site_clicks__site_clicks.parquet')]
    """
    paths = paths or get_paths()
    parts = sorted((paths.ingested / channel).glob("*.parquet"))
    if not parts:
        raise FileNotFoundError(f"No ingested data for channel '{channel}' in {paths.ingested}. "
                                f"Run the ingest stage (notebook 01_ingest) first.")
    return parts


def load_ingested(channel: str, paths: Paths | None = None) -> pd.DataFrame:
    """All ingested rows of one channel (every file on record), in file then row order."""
    return pd.concat([pd.read_parquet(p) for p in ingested_parts(channel, paths)], ignore_index=True)


def load_quarantine(channel: str, paths: Paths | None = None) -> pd.DataFrame:
    """Quarantined rows of one channel, from every stage, with their reasons."""
    paths = paths or get_paths()
    q = paths.quarantine / f"{channel}.parquet"
    return pd.read_parquet(q) if q.exists() else pd.DataFrame(columns=QUARANTINE_COLUMNS)
