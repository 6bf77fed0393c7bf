"""Scan outputs for raw phone numbers and e-mail addresses: the proof that none leaves ``data/``.

What counts as a raw value:

- ``cn_mobile``: 11 digits ``1[3-9]xxxxxxxxx``, optionally after ``+86``,
  ``0086``, ``86`` or ``(+86)`` and written with single spaces or dashes in the
  3-4-4 grouping (``138 0013 8000``, ``+86-138-0013-8000``);
- ``e164_phone``: ``+`` and 8-15 digits (groups may be split by single spaces
  or dashes) that ``phonenumbers`` accepts as a valid number;
- ``email``: ``local@domain.tld`` whose local part is not masked (``z***@...``)
  and not a hash (32+ hex characters);
- ``known_value``: any of the caller's ``known_values`` (e.g. the data set's raw
  phones and e-mails) as an exact substring, where the patterns found nothing;
- ``unreadable``: a file or part that could not be decoded (a compressed pickle
  in an unknown format, a broken Parquet file). The scan fails closed.

A number must stand on its own: a digit run inside a longer run (order ids such
as ``T100000081372``, epoch-millisecond timestamps, long numeric ids), a run next
to an ASCII letter (hashes, hex ids, base64), the decimals of a number
(``0.13800138000``) and a number followed by decimals other than ``.0`` do not
count; masked values (``138****8000``) have no 11-digit run and do not count
either. JSON string escapes (``\\n``, ``\\u624b``) are read as separators.

Files are scanned as bytes (the patterns are ASCII, so UTF-8 and GBK text scan
alike; UTF-16 text with a BOM is decoded first). Parquet files are read with
pyarrow: every text and numeric column, row by row, and the key-value metadata.
Pickles and joblib files are never unpickled: their bytes are scanned as they
are (after gzip/zlib/bz2/xz decompression), plus any UTF-32/UTF-16 text inside
them (numpy ``<U`` arrays). Strings packed without separators (the values
buffer of an Arrow string column inside a pickle, a numpy ``<U11`` array of
phones) are found when they are back-to-back 11-digit CN mobiles or e-mails,
otherwise only through ``known_values``. Full-width digits and URL-encoded ``%40`` are not recognised
by the patterns.

Placeholders flagged by :func:`~workbench.normalise.flag_placeholders`
(``13800000000``, ``test@test.com``, anything at example.com) are not personal
data and are skipped unless ``ignore_placeholders=False``.

Findings carry a masked excerpt (``138****8000``, ``c***@qq.com``), never the
raw value.

>>> [(f.kind, f.excerpt) for f in scan_text_for_pii("call 138-0013-8000 or zhang@qq.com; not 138****8000")]
[('cn_mobile', '138****8000'), ('email', 'z***@qq.com')]
"""

from __future__ import annotations

import bz2
import functools
import gzip
import json
import lzma
import os
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import phonenumbers

from workbench.normalise import flag_placeholders, mask_email, mask_phone
from workbench.privacy.keys import _text
from workbench.privacy.masking import mask_series

__all__ = ["DEFAULT_SUFFIXES", "FINDING_COLUMNS", "MIN_KNOWN_LENGTH", "Finding", "assert_no_pii", "scan_paths",
           "scan_text_for_pii"]

#: File suffixes :func:`scan_paths` reads inside folders.
DEFAULT_SUFFIXES: tuple[str, ...] = (".html", ".csv", ".json", ".ipynb", ".md", ".txt", ".yaml", ".joblib", ".pkl",
                                     ".parquet")
#: Columns of the :func:`scan_paths` result.
FINDING_COLUMNS = ["file", "part", "kind", "line", "position", "excerpt"]
#: Known values shorter than this (after stripping) are ignored: they would match everywhere.
MIN_KNOWN_LENGTH = 6

_ALNUM = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_DIGITS = frozenset("0123456789")
_CN_CORE = re.compile(r"1[3-9][0-9](?:[ \-]?[0-9]{4}){2}")  # starts with a literal: fast scanning
_PACKED_CN = re.compile(r"(?:1[3-9][0-9]{9}){2,}")
_CN_PREFIX = re.compile(r"(?:\(\+?86\)|\+86|0086|86)[ \-]?$")
_E164 = re.compile(r"\+[1-9][0-9]*(?:[ \-][0-9]+)*")
_EMAIL_DOMAIN = re.compile(r"@((?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24})(?![A-Za-z0-9\-])")
_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9._%+\-*]+$")
_HEX_LOCAL = re.compile(r"[0-9a-f]{32,}")
_NOT_TLDS = frozenset({"png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "bmp", "css", "js", "mjs", "json", "html",
                       "htm", "py", "ipynb", "md", "txt", "csv", "pdf", "yaml", "yml", "xml", "zip", "gz"})
_ESCAPE = re.compile(r"\\(?:u[0-9a-fA-F]{4}|.)", re.S)
_BINARY_SUFFIXES = frozenset({".joblib", ".pkl", ".pickle"})


@dataclass(frozen=True)
class Finding:
    """One raw value found in text: where it is and its masked form (never the value itself)."""

    kind: str
    start: int
    end: int
    line: int
    excerpt: str


# --------------------------------------------------------------------------- patterns
def _blank_escapes(text: str) -> str:
    """JSON/Python string escapes to spaces of the same length, so ``\\u673a138...`` is not letter-adjacent."""
    if "\\" not in text:
        return text
    return _ESCAPE.sub(lambda m: " " * len(m.group()), text)


def _decimals_follow(text: str, end: int) -> bool:
    """True where a number continues with decimals other than a bare ``.0`` (amounts, not phones)."""
    if text[end:end + 1] != "." or text[end + 1:end + 2] not in _DIGITS:
        return False
    return not (text[end + 1] == "0" and text[end + 2:end + 3] not in _DIGITS)


def _free_before(text: str, start: int) -> bool:
    """Nothing number- or word-like right before ``start`` (and not the decimals of a number)."""
    if start == 0:
        return True
    before = text[start - 1]
    if before in _ALNUM:
        return False
    return not (before == "." and start >= 2 and text[start - 2] in _DIGITS)


def _cn_mobiles(text: str) -> Iterator[tuple[int, int, str]]:
    n = len(text)
    for m in _CN_CORE.finditer(text):
        s, e = m.span()
        if (e < n and text[e] in _ALNUM) or _decimals_follow(text, e):
            continue
        grouped = not m.group().isdigit()
        if grouped and re.match(r"[ \-][0-9]", text[e:e + 2]):
            continue  # part of a longer spaced run of digits
        prefix = _CN_PREFIX.search(text, max(0, s - 7), s)
        if prefix and _free_before(text, prefix.start()):
            start = prefix.start()
        elif _free_before(text, s) and not (grouped and re.match(r"[0-9][ \-]$", text[max(0, s - 2):s])):
            start = s
        else:
            continue
        yield start, e, "+86" + re.sub("[^0-9]", "", m.group())


@functools.lru_cache(maxsize=65536)
def _valid_e164(digits: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse("+" + digits, None))
    except phonenumbers.NumberParseException:
        return False


def _e164_numbers(text: str) -> Iterator[tuple[int, int, str]]:
    n = len(text)
    for m in _E164.finditer(text):
        s, e = m.span()
        if not _free_before(text, s):
            continue
        groups = re.split("[ \\-]", m.group()[1:])
        ends = np.cumsum([len(g) + 1 for g in groups]) + s  # end offset after each group
        for k in range(len(groups), 0, -1):  # the longest valid reading that ends at a group boundary
            digits = "".join(groups[:k])
            end = int(ends[k - 1])
            if k == len(groups) and ((end < n and text[end] in _ALNUM) or _decimals_follow(text, end)):
                continue
            if 8 <= len(digits) <= 15 and _valid_e164(digits):
                yield s, end, "+" + digits
                break


def _emails(text: str) -> Iterator[tuple[int, int, str]]:
    for m in _EMAIL_DOMAIN.finditer(text):
        at = m.start()
        if m.group(1).rsplit(".", 1)[1].lower() in _NOT_TLDS:
            continue
        window_start = max(0, at - 64)
        local = _EMAIL_LOCAL.search(text, window_start, at)
        if local is None or (local.start() == window_start and window_start > 0):
            continue  # no local part, or one longer than e-mail allows
        start = local.start()
        while start < at and text[start] in ".-+":
            start += 1
        part = text[start:at].lower()
        if not part or "*" in part or _HEX_LOCAL.fullmatch(part):
            continue  # nothing, masked or hashed
        yield start, m.end(), part + "@" + m.group(1).lower()


def _packed_cn_mobiles(text: str) -> Iterator[tuple[int, int, str]]:
    """CN mobiles stored back to back (the values buffer of a pickled Arrow string array)."""
    for m in _PACKED_CN.finditer(text):
        s, e = m.span()
        if _free_before(text, s) and not (e < len(text) and text[e] in _DIGITS):
            for a in range(s, e, 11):
                yield a, a + 11, "+86" + text[a:a + 11]


def _pattern_hits(text: str, *, packed: bool = False) -> list[tuple[str, int, int, str]]:
    """(kind, start, end, raw) of every pattern match; later kinds skip spans already taken.

    With ``packed`` (binary data), runs of back-to-back CN mobiles count too.
    """
    text = _blank_escapes(text)
    hits = [("cn_mobile", s, e, v) for s, e, v in _cn_mobiles(text)]
    if packed:
        hits += [("cn_mobile", s, e, v) for s, e, v in _packed_cn_mobiles(text)]
    taken = sorted((s, e) for _, s, e, _ in hits)
    starts = np.array([s for s, _ in taken], dtype=np.int64)
    ends = np.array([e for _, e in taken], dtype=np.int64)
    for s, e, v in _e164_numbers(text):
        i = int(np.searchsorted(starts, e, side="left")) - 1  # last taken span starting before e
        if i >= 0 and ends[i] > s:
            continue
        hits.append(("e164_phone", s, e, v))
    hits += [("email", s, e, v) for s, e, v in _emails(text)]
    return hits


# --------------------------------------------------------------------------- known values
class _KnownValues:
    """Exact multi-string search over bytes.

    Every ``k``-byte window of the data (``k`` = the shortest needle, at most 8)
    is read as one uint64 and hashed into a bit table of the needles' first
    ``k`` bytes (numpy, no Python loop over the data); the few windows that pass
    are checked against the sorted prefixes, and only exact prefix matches are
    compared with the needles themselves.
    """

    def __init__(self, values: Iterable[Any], ignore_placeholders: bool = True):
        values = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
        values = values.dropna()
        all_text = pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty")
        texts = (values.astype("str") if all_text
                 else pd.Series([_text(v) for v in values.tolist()], dtype="str")).str.strip()
        texts = texts[(texts.str.len() >= MIN_KNOWN_LENGTH).to_numpy(bool)].drop_duplicates()
        if ignore_placeholders and len(texts):
            texts = texts[~flag_placeholders(texts).to_numpy()]
        originals = texts.tolist()
        forms = [t.encode("utf-8") for t in originals]
        for text in texts.tolist():
            if not text.isascii():  # GBK files, and JSON written with ensure_ascii
                for form in (text.encode("gb18030", errors="ignore"), json.dumps(text)[1:-1].encode("ascii")):
                    if len(form) >= MIN_KNOWN_LENGTH:
                        forms.append(form)
                        originals.append(text)
        self.count = len(forms)
        if not forms:
            return
        self.k = min(8, min(map(len, forms)))
        self.mask = np.uint64((1 << (8 * self.k)) - 1)
        keys = np.array(forms, dtype="S8").view("<u8") & self.mask  # the first k bytes, little-endian
        order = np.argsort(keys, kind="stable")
        self.all_keys = keys[order]
        self.forms = np.array(forms, dtype=object)[order].tolist()
        self.originals = np.array(originals, dtype=object)[order].tolist()
        self.keys = np.unique(self.all_keys)
        self.bits = int(np.clip(np.ceil(np.log2(len(self.keys))) + 4, 12, 24))
        self.table = np.zeros(1 << self.bits, dtype=bool)
        self.table[self._slot(self.keys)] = True

    def __bool__(self) -> bool:
        return self.count > 0

    def _slot(self, words: np.ndarray) -> np.ndarray:
        return (words * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(64 - self.bits)

    def find(self, data: bytes, chunk: int = 1 << 20) -> list[tuple[int, int, str]]:
        n = len(data) - self.k + 1
        if not self.count or n <= 0:
            return []
        padded = data + b"\0" * 8
        hits = []
        for offset in range(0, n, chunk):
            m = min(chunk, n - offset)
            words = np.ndarray((m,), dtype="<u8", buffer=padded, offset=offset, strides=(1,)) & self.mask
            candidates = np.flatnonzero(self.table[self._slot(words)])
            if not len(candidates):
                continue
            found = words[candidates]
            lo = np.minimum(np.searchsorted(self.all_keys, found, side="left"), len(self.all_keys) - 1)
            exact = self.all_keys[lo] == found
            for pos, i, key in zip((candidates[exact] + offset).tolist(), lo[exact].tolist(), found[exact].tolist()):
                while i < len(self.forms) and self.all_keys[i] == key:  # every needle with this prefix
                    if data.startswith(self.forms[i], pos):
                        hits.append((pos, pos + len(self.forms[i]), self.originals[i]))
                    i += 1
        return hits


# --------------------------------------------------------------------------- one buffer
def _scan_bytes(data: bytes, known: _KnownValues | None, ignore_placeholders: bool,
                packed: bool = False) -> list[tuple[str, int, int, str]]:
    """(kind, start, end, raw) in byte offsets, sorted by position."""
    hits = _pattern_hits(data.decode("latin-1"), packed=packed)  # one char per byte: offsets stay byte offsets
    if hits and ignore_placeholders:
        placeholder = flag_placeholders(pd.Series([h[3] for h in hits], dtype="str")).to_numpy()
        hits = [h for h, p in zip(hits, placeholder) if not p]
    if known:
        spans = sorted((s, e) for _, s, e, _ in hits)
        starts = np.array([s for s, _ in spans], dtype=np.int64)
        ends = np.array([e for _, e in spans], dtype=np.int64)
        reach = -1
        for s, e, value in sorted(known.find(data), key=lambda h: (h[0], -h[1])):
            i = int(np.searchsorted(starts, e, side="left")) - 1
            if e <= reach or (i >= 0 and ends[i] > s):
                continue  # inside a longer known value, or the pattern scan reported it already
            hits.append(("known_value", s, e, value))
            reach = e
    return sorted(hits, key=lambda h: (h[1], h[0]))


def _mask_hits(kinds: list[str], raws: list[str]) -> list[str]:
    """Masked excerpts, one vectorised call per kind."""
    out = [""] * len(kinds)
    frame = pd.DataFrame({"kind": kinds, "raw": pd.Series(raws, dtype="str")})
    for kind, rows in frame.groupby("kind", sort=False).groups.items():
        raw = frame.loc[rows, "raw"]
        if kind in ("cn_mobile", "e164_phone"):
            masked = mask_phone(raw)
        elif kind == "email":
            masked = mask_email(raw)
        elif kind == "known_value":
            masked = mask_series(raw, "email").fillna(mask_series(raw, "phone")).fillna(mask_series(raw, "id"))
        else:
            masked = raw
        for i, text in zip(rows, masked.fillna("****").tolist()):
            out[i] = text
    return out


def _known(values: Iterable[str] | str | None, ignore_placeholders: bool) -> _KnownValues | None:
    if values is None:
        return None
    return _KnownValues([values] if isinstance(values, str) else values, ignore_placeholders)


def _line_numbers(data: bytes, positions: list[int]) -> np.ndarray:
    newlines = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
    return np.searchsorted(newlines, np.asarray(positions, dtype=np.int64), side="left") + 1


def scan_text_for_pii(text: str, *, known_values: Iterable[str] | None = None,
                      ignore_placeholders: bool = True) -> list[Finding]:
    """Raw phone numbers and e-mail addresses in ``text`` (see the module docstring for the rules).

    ``start``/``end`` are character offsets into ``text``, ``line`` is 1-based
    and ``excerpt`` is the masked value. With ``ignore_placeholders`` values
    that :func:`~workbench.normalise.flag_placeholders` flags (``13800000000``,
    ``test@test.com``, anything at example.com) are not personal data and are
    not reported.

    >>> [f.kind for f in scan_text_for_pii("+852 9123 4567, +86 138 0013 8000, 0.13800138000, T100000081372")]
    ['e164_phone', 'cn_mobile']
    """
    if not isinstance(text, str):
        raise ValueError(f"The 'text' parameter must be a str. Got {type(text).__name__} instead.")
    data = text.encode("utf-8")
    known = _known(known_values, ignore_placeholders)
    hits = _scan_bytes(data, known, ignore_placeholders)
    if not hits:
        return []
    starts = [h[1] for h in hits]
    ends = [h[2] for h in hits]
    if not text.isascii():  # byte offsets to character offsets
        char_at = np.cumsum((np.frombuffer(data + b"\0", dtype=np.uint8) & 0xC0) != 0x80) - 1
        starts, ends = char_at[starts].tolist(), char_at[ends].tolist()
    excerpts = _mask_hits([h[0] for h in hits], [h[3] for h in hits])
    lines = _line_numbers(data, [h[1] for h in hits]).tolist()
    return [Finding(h[0], s, e, line, x) for h, s, e, line, x in zip(hits, starts, ends, lines, excerpts)]


# --------------------------------------------------------------------------- files
def _runs(data: bytes, width: int, min_chars: int = 6) -> tuple[bytes, np.ndarray, np.ndarray]:
    """Printable-ASCII runs of a little-endian wide encoding (UTF-16/32) inside binary data.

    Returns the runs as UTF-8 joined by newlines, where each run starts in that
    text and where it starts in ``data``. Vectorised: a character is a printable
    byte followed by ``width - 1`` zero bytes; runs are found per offset modulo
    ``width``.
    """
    raw = np.frombuffer(data, dtype=np.uint8)
    n = len(raw) - width + 1
    if n <= 0:
        return b"", np.zeros(0, np.int64), np.zeros(0, np.int64)
    char = ((raw[:n] >= 0x20) & (raw[:n] <= 0x7E)) | (raw[:n] == 0x09) | (raw[:n] == 0x0A) | (raw[:n] == 0x0D)
    for k in range(1, width):
        char &= raw[k:k + n] == 0
    found: list[tuple[int, int]] = []
    for r in range(width):
        lane = np.concatenate([[False], char[r::width], [False]]).astype(np.int8)
        edges = np.flatnonzero(np.diff(lane))
        for a, b in zip(edges[0::2].tolist(), edges[1::2].tolist()):
            if b - a >= min_chars:
                found.append((r + width * a, b - a))
    found.sort()
    pieces, view_starts, file_starts, at = [], [], [], 0
    for start, length in found:
        piece = raw[start:start + width * length:width].tobytes()
        pieces.append(piece)
        view_starts.append(at)
        file_starts.append(start)
        at += length + 1
    return b"\n".join(pieces), np.array(view_starts, dtype=np.int64), np.array(file_starts, dtype=np.int64)


def _decompress(data: bytes) -> tuple[bytes | None, str | None]:
    """The decompressed stream of gzip/zlib/bz2/xz data (None if not compressed), or an error note."""
    try:
        if data[:2] == b"\x1f\x8b":
            return gzip.decompress(data), None
        if data[:3] == b"BZh":
            return bz2.decompress(data), None
        if data[:6] == b"\xfd7zXZ\x00":
            return lzma.decompress(data), None
        if len(data) > 2 and data[0] == 0x78 and (data[0] * 256 + data[1]) % 31 == 0:
            return zlib.decompressobj().decompress(data), None
        if data[:4] in (b"\x04\x22\x4d\x18", b"\x28\xb5\x2f\xfd"):
            return None, "lz4/zstd-compressed: cannot be read without extra packages"
    except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError) as exc:
        return None, f"compressed data that does not decompress ({type(exc).__name__})"
    return None, None


def _column_texts(table: Any, prefix: str = "") -> Iterator[tuple[str, bytes]]:
    """(column name, the column's values as text joined by newlines) for text and numeric columns."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for name, column in zip(table.column_names, table.columns):
        array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        label = prefix + str(name)
        kind = array.type
        if pa.types.is_dictionary(kind):
            array, kind = array.dictionary_decode(), array.type.value_type
        if pa.types.is_struct(kind):
            fields = [array.field(i) for i in range(kind.num_fields)]
            yield from _column_texts(pa.table(fields, names=[f.name for f in kind]), label + ".")
            continue
        if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
            yield from _column_texts(pa.table([pc.list_flatten(array)], names=["[]"]), label)
            continue
        if pa.types.is_map(kind):
            yield from _column_texts(pa.table([array.keys, array.items], names=["{key}", "{value}"]), label)
            continue
        if pa.types.is_floating(kind):  # integral floats (phones read as float) as integers
            values = array.to_numpy(zero_copy_only=False)
            whole = np.isfinite(values) & (np.abs(values) < 1e17) & (values == np.round(values))
            integers = pc.cast(pa.array(np.where(whole, values, 0).astype(np.int64)), pa.large_string())
            array = pc.if_else(pa.array(whole), integers, pc.cast(array, pa.large_string()))
        elif pa.types.is_integer(kind) or pa.types.is_decimal(kind):
            array = pc.cast(array, pa.large_string())
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
            array = pc.cast(array, pa.large_string())
        elif pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_fixed_size_binary(kind):
            array = pc.cast(array, pa.large_binary())
        else:
            continue  # timestamps, dates, booleans: no phones or e-mails
        binary = pa.types.is_large_binary(array.type)
        array = pc.fill_null(array, pa.scalar(b"" if binary else "", array.type))
        lists = pa.LargeListArray.from_arrays(pa.array([0, len(array)], pa.int64()), array)
        joined = pc.binary_join(lists, pa.scalar(b"\n" if binary else "\n", array.type))
        value = joined[0].as_py()
        yield label, value if isinstance(value, bytes) else value.encode("utf-8")


def _parts(path: Path) -> Iterator[tuple[str, bytes | None, Any]]:
    """(part name, bytes to scan or None if unreadable, offset mapping or note) of one file."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(path)
            metadata = pf.schema_arrow.metadata or {}
            table = pf.read()
        except Exception as exc:  # not Parquet after all: fail closed, and still scan the bytes
            yield "unreadable", None, f"Parquet file that pyarrow cannot read ({type(exc).__name__})"
            yield "bytes", path.read_bytes(), None
            return
        if metadata:
            yield "metadata", b"\n".join(k + b"=" + v for k, v in sorted(metadata.items())), None
        for name, text in _column_texts(table):
            yield f"column {name}", text, None
        return
    data = path.read_bytes()
    if suffix in _BINARY_SUFFIXES:
        streams = [("bytes", data)]
        inner, note = _decompress(data)
        if note:
            yield "unreadable", None, note
        if inner is not None:
            streams.append(("decompressed", inner))
        for name, stream in streams:
            yield name, stream, None
            for width, codec in ((4, "utf-32-le"), (2, "utf-16-le")):
                text, view_starts, file_starts = _runs(stream, width)
                if text:
                    yield f"{name}, {codec} strings", text, (view_starts, file_starts, width)
        return
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        yield "utf-16 text", data.decode("utf-16").encode("utf-8"), None
        return
    yield "text", data, None


def _files(paths: Any, suffixes: tuple[str, ...]) -> list[Path]:
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    wanted = {s.lower() for s in suffixes}
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            for root, dirs, names in os.walk(p):  # symlinked folders (reports/latest) are not followed
                dirs.sort()
                files += [Path(root) / n for n in sorted(names)
                          if Path(n).suffix.lower() in wanted and (Path(root) / n).is_file()]
        elif p.is_file():
            files.append(p)  # named explicitly: scanned whatever its suffix
        else:
            raise FileNotFoundError(f"The 'paths' parameter must name existing files or folders. Got {str(p)!r}, "
                                    "which does not exist, instead.")
    return list(dict.fromkeys(files))


def scan_paths(paths: str | os.PathLike | Iterable[str | os.PathLike], *,
               known_values: Iterable[str] | None = None,
               suffixes: tuple[str, ...] = DEFAULT_SUFFIXES, ignore_placeholders: bool = True) -> pd.DataFrame:
    """Scan files (folders recursively, by ``suffixes``) for raw phones and e-mails; one row per finding.

    Columns: ``file``, ``part`` (``text``; ``bytes``/``decompressed`` and their
    ``utf-32-le``/``utf-16-le`` strings for pickles; ``column <name>`` or
    ``metadata`` for Parquet; ``unreadable`` when part of a file could not be
    read), ``kind`` (``cn_mobile``, ``e164_phone``, ``email``, ``known_value``,
    ``unreadable``), ``line`` (1-based line of text parts; the 1-based row for
    Parquet columns), ``position`` (byte offset in the file, or in the
    decompressed stream / column text) and ``excerpt`` (masked, never the raw
    value). Files named explicitly are scanned whatever their suffix; symlinked
    folders are not followed. ``known_values`` are searched as exact substrings
    (UTF-8, and GB18030 and JSON-escaped forms for non-ASCII values; values of
    under 6 characters are ignored). Placeholders are skipped as in
    :func:`scan_text_for_pii`.

    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "report.html").write_text("<td>13800138000</td><td>138****8000</td>")
    >>> scan_paths(folder)[["part", "kind", "line", "excerpt"]]
       part       kind  line      excerpt
    0  text  cn_mobile     1  138****8000
    >>> import shutil; shutil.rmtree(folder)
    """
    if isinstance(suffixes, str) or not all(isinstance(s, str) and s.startswith(".") for s in suffixes):
        raise ValueError(f"The 'suffixes' parameter must be a tuple of suffixes such as ('.html',). "
                         f"Got {suffixes!r} instead.")
    known = _known(known_values, ignore_placeholders)
    rows: list[tuple] = []
    raws: list[str] = []
    for path in _files(paths, tuple(suffixes)):
        for part, data, extra in _parts(path):
            if data is None:
                rows.append((str(path), part, "unreadable", pd.NA, pd.NA))
                raws.append(extra)
                continue
            hits = _scan_bytes(data, known, ignore_placeholders, packed=part.startswith(("bytes", "decompressed")))
            if not hits:
                continue
            positions = np.array([h[1] for h in hits], dtype=np.int64)
            lines = _line_numbers(data, positions.tolist()) if part == "text" or part.startswith(
                ("column ", "utf-16 text")) else [pd.NA] * len(hits)
            if isinstance(extra, tuple):  # offsets in the extracted wide strings -> offsets in the stream
                view_starts, file_starts, width = extra
                i = np.searchsorted(view_starts, positions, side="right") - 1
                positions = file_starts[i] + width * (positions - view_starts[i])
            for (kind, _, _, raw), line, pos in zip(hits, lines, positions.tolist()):
                rows.append((str(path), part, kind, line, pos))
                raws.append(raw)
    excerpts = _mask_hits([r[2] for r in rows], raws)
    out = pd.DataFrame(rows, columns=FINDING_COLUMNS[:-1])
    out["excerpt"] = pd.Series(excerpts, dtype="str")
    for column in ("file", "part", "kind"):
        out[column] = out[column].astype("str")
    for column in ("line", "position"):
        out[column] = out[column].astype("Int64")
    return out


def assert_no_pii(paths: str | os.PathLike | Iterable[str | os.PathLike], **kwargs: Any) -> None:
    """Raise ``AssertionError`` listing (masked) up to 20 findings and their count if :func:`scan_paths` finds any.

    Keyword arguments go to :func:`scan_paths`.

    >>> assert_no_pii([])
    """
    findings = scan_paths(paths, **kwargs)
    if findings.empty:
        return
    shown = [f"  {r.file}:{'' if pd.isna(r.line) else r.line} [{r.part}] {r.kind}: {r.excerpt}"
             for r in findings.head(20).itertuples()]
    more = f"\n  ... and {len(findings) - 20} more" if len(findings) > 20 else ""
    raise AssertionError(f"{len(findings)} raw personal value(s) found in {findings['file'].nunique()} file(s) "
                         "(excerpts are masked):\n" + "\n".join(shown) + more)
