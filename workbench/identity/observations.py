"""Identity observations: what each record says about who it is.

From a cleaned table and its :class:`SourceSpec`, build

- ``ids``: one row per (record, identifier, value) — the deterministic evidence, with
  placeholders and blocked values removed (and counted);
- ``attrs``: one row per record with the fuzzy attributes of the settings (any names; the
  values normalised for their comparison kind) — the probabilistic evidence.
"""

from __future__ import annotations


import numpy as np
import pandas as pd

from .. import normalise as nz
from .comparisons import normalise_values
from .settings import IdentitySettings, SourceSpec

#: attributes of the embedded sample whose values are made by a key function of their own
#: (whatever their comparison kind): a phone's tail, an address's numbers, a city without suffix
KEYED_ATTRIBUTES = ("phone_tail", "address_key", "city", "birth_date")


def per_distinct(values: pd.Series, fn) -> pd.Series:
    """``fn`` (an element-wise text function that maps NA to NA) computed once per distinct
    value and spread back: a phone or an address repeats on every event of its person.

    >>> per_distinct(pd.Series(["北京市", None, "北京市"]), city_key).tolist()
    ['北京', <NA>, '北京']
    """
    codes, uniques = pd.factorize(values)
    out = fn(pd.Series(uniques, dtype=values.dtype) if len(uniques) else values.iloc[:0])
    return pd.Series(out.array.take(codes, allow_fill=True), index=values.index, name=out.name)


def _casefold_in(values: pd.Series, casefolded: set[str]) -> np.ndarray:
    """Whether each value's ``str.casefold()`` is in ``casefolded`` (NA: False). ASCII text —
    nearly all identifiers — is lower-cased by Arrow (for ASCII, casefold is lower); the
    rest by Python.

    >>> _casefold_in(pd.Series(["Test@Test.com", "STRASSE", "Straße", None], dtype="string"), {"test@test.com", "strasse"}).tolist()
    [True, True, True, False]
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if not casefolded or not len(values):
        return np.zeros(len(values), bool)
    arr = pa.array(values.array)
    ascii_ = pc.fill_null(pc.string_is_ascii(arr), True).to_numpy(zero_copy_only=False)
    hit = pc.fill_null(pc.is_in(pc.ascii_lower(arr), value_set=pa.array(sorted(casefolded), arr.type)),
                       False).to_numpy(zero_copy_only=False) & ascii_
    other = np.flatnonzero(~ascii_)
    if len(other):
        hit[other] = values.iloc[other].str.casefold().isin(casefolded).to_numpy(bool)
    return hit


def phone_tail(values: pd.Series) -> pd.Series:
    """Partial phone evidence ``138****8000`` from E.164 numbers or platform-masked phones.

    >>> phone_tail(pd.Series(["+8613800138000", "138****8000", "+85291234567", None])).tolist()
    ['138****8000', '138****8000', '912****4567', <NA>]
    """
    s = values.astype("string")
    # "^\+861" -> "1" is "^\+86(?=1)" -> "" without the look-ahead Arrow's regex engine lacks
    nat = s.str.replace(r"^\+861", "1", regex=True).str.replace(r"^\+852", "", regex=True)
    nat = nat.str.replace(r"^\+\d{1,3}", "", regex=True)
    digits_ok = nat.str.fullmatch(r"\d{3}[\d*]*\d{4}").fillna(False)
    return (nat.str[:3] + "****" + nat.str[-4:]).where(digits_ok).astype("string")


def address_key(values: pd.Series) -> pd.Series:
    """The numbers of an address (road number, building, room) — robust to 栋/幢 and dropped 室.

    >>> address_key(pd.Series(["北京市丰台区新华路152号9栋1020室", "丰台区新华路152号9幢1020", "北京"])).tolist()
    ['152-9-1020', '152-9-1020', <NA>]
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    s = values.astype("string")
    arr = pa.array(s.array)
    # ASCII and unified CJK ideographs are left alone by NFKC and hold no digits but 0-9:
    # their key is found by Arrow; other text (full-width digits ...) goes through Python
    plain = pc.fill_null(pc.match_substring_regex(arr, r"^[\x00-\x7f\x{3400}-\x{4dbf}\x{4e00}-\x{9fff}]*$"),
                         True).to_numpy(zero_copy_only=False)
    runs = pc.utf8_trim(pc.replace_substring_regex(arr, "[^0-9]+", "-"), "-")
    key = pd.Series(pd.array(pc.if_else(pc.match_substring(runs, "-"), runs, pa.scalar(None, runs.type)),
                             dtype="string"), index=values.index)
    if not plain.all():
        other = s[~plain].str.normalize("NFKC").str.findall(r"\d+")
        key[~plain] = other.map(lambda xs: "-".join(xs) if isinstance(xs, list) and len(xs) >= 2 else None)
    return key.astype("string")


def city_key(values: pd.Series) -> pd.Series:
    """City names without the administrative suffix: 北京市 / 北京 -> 北京."""
    return values.astype("string").str.strip().str.replace(r"(市|特别行政区)$", "", regex=True)


def observe(df: pd.DataFrame, source: SourceSpec, settings: IdentitySettings, *,
            record_offset: int = 0, table: str = "table",
            unmatched: dict[str, int] | None = None) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """Identity evidence of one table.

    Returns ``(ids, attrs, blocked)``: ``ids`` has columns rec (``record_offset`` + row
    position), identifier, value; ``attrs`` is indexed like ``df`` with a column per attribute
    of the settings (in their order);
    ``blocked`` counts values dropped per identifier (placeholders and blocked values).
    ``unmatched`` (when given) receives, per column, how many present values fit none of the
    column's identifiers (a member id that fails the identifier's ``pattern``): they are not
    used, and the identity stage reports them.

    >>> s = IdentitySettings.from_dict({"identifiers": [{"name": "member_id", "kind": "unique",
    ...                                                  "pattern": "^M[0-9]{8}$"}]})
    >>> counts = {}
    >>> ids, _, _ = observe(pd.DataFrame({"card": ["M00000001", "VIP-7", None]}),
    ...                     SourceSpec(identifiers={"card": "member_id"}), s, unmatched=counts)
    >>> ids["value"].tolist(), counts
    (['M00000001'], {'card': 1})
    """
    missing = sorted({c for c in list(source.identifiers) + list(source.attributes) if c not in df.columns} |
                     {t.split("@", 1)[1] for ts in source.identifiers.values()
                      for t in (ts if isinstance(ts, list) else [ts]) if "@" in str(t)} - set(df.columns))
    if missing:
        raise KeyError(f"Identity source '{table}': the columns {missing} named in the identity settings are not in "
                       f"the cleaned table. Its columns: {[c for c in df.columns if not c.startswith('_')]}.")
    blocked_set = {str(b).strip().casefold() for b in settings.blocked_values}
    rec = np.arange(len(df), dtype=np.int64) + record_offset
    parts, blocked = [], {}
    phone_tails = None
    for column, target in source.identifiers.items():
        targets = target if isinstance(target, list) else [target]
        remaining = df[column].astype("string")
        flag_col = f"{column}_placeholder"
        flagged = df[flag_col].fillna(False).to_numpy(bool) if flag_col in df.columns else np.zeros(len(df), bool)
        for t in targets:
            ident, _, scope = str(t).partition("@")
            spec = settings.identifier(ident)
            vals = nz.typed_values(remaining, ident, spec.pattern)
            take = vals.notna().to_numpy()
            remaining = remaining.where(~take)  # a value goes to the first identifier it fits
            is_blocked = take & (flagged | _casefold_in(vals, blocked_set))
            if is_blocked.any():
                blocked[ident] = blocked.get(ident, 0) + int(is_blocked.sum())
            keep = take & ~is_blocked
            if not keep.any():
                continue
            v = vals[keep]
            if scope:
                v = df[scope].astype("string")[keep] + ":" + v
            names = [i.name for i in settings.identifiers]
            parts.append(pd.DataFrame({
                "rec": rec[keep],
                "identifier": pd.Categorical.from_codes(np.full(int(keep.sum()), names.index(ident), dtype=np.int8),
                                                        categories=names),
                "value": v.astype("str").array}))
            if ident == "phone":  # a full phone is also partial evidence for fuzzy matching
                tails = per_distinct(vals.where(keep), phone_tail)
                phone_tails = tails if phone_tails is None else phone_tails.fillna(tails)
        if unmatched is not None:
            left = int(remaining.str.strip().replace("", pd.NA).notna().sum())
            if left:
                unmatched[column] = unmatched.get(column, 0) + left
    ids = (pd.concat(parts, ignore_index=True) if parts
           else pd.DataFrame({"rec": pd.Series(dtype="int64"),
                              "identifier": pd.Categorical([], categories=[i.name for i in settings.identifiers]),
                              "value": pd.Series(dtype="str")}))
    attrs = pd.DataFrame(index=df.index, columns=list(settings.attributes), dtype="string")
    for column, attr in source.attributes.items():
        col = df[column]
        if attr == "phone_tail":
            val = per_distinct(col, phone_tail)
        elif attr == "address_key":
            val = per_distinct(col, address_key)
        elif attr == "city":
            val = per_distinct(col, city_key)
        elif attr == "birth_date":
            val = pd.to_datetime(col, errors="coerce").dt.strftime("%Y-%m-%d").astype("string")
        else:
            kind, where = settings.attributes[attr].comparison, f"Identity source '{table}', column '{column}'"
            if kind == "numeric":  # row by row: a bad value is reported at its row
                val = normalise_values(col, kind, where=where)
            else:
                val = per_distinct(col, lambda v, k=kind, w=where: normalise_values(v, k, where=w))
        attrs[attr] = attrs[attr].fillna(val.astype("string"))
    if phone_tails is not None and "phone_tail" in attrs:
        attrs["phone_tail"] = attrs["phone_tail"].fillna(pd.Series(phone_tails.to_numpy(), index=attrs.index))
    return ids, attrs.reset_index(drop=True), blocked
