"""The canonical tables: their columns and one pandera schema per table.

Every table is keyed by ``oneid`` and traces each row back to its source record
(``record_id`` = ``<channel>:<file>:<row>``). Written to ``data/processed/canonical/`` by
:func:`workbench.canonical.run_canonical`; everything after the identity stage reads only
these tables.

=============  ===========================================================================
table          one row per
=============  ===========================================================================
records        source record: its OneID, channel, role and time (``at``)
profiles       record of a profile mapping: member id, tier, registered / updated at
traits         person trait seen on a record (name, gender, birth date, city, phone, e-mail,
               address) with the record's time and the source's rank
orders         order (line items aggregated by their order key); ``gross`` is what was paid
               (0 for a cancelled order); refunds are in ``refunds``
order_lines    line item (an order of an order-grain mapping is its own single line)
refunds        refund: from an order row's refund amount, or a returns row; ``order_key`` of
               the order it is netted onto (``matched``), else the return's own key
events         event of the canonical vocabulary (one source row may give several)
consents       consent event: purpose, granted (True / False / unknown), time, what said it
identifiers    identifier value observed on a record (a 64-bit hash, never the value)
campaign_      person in a past campaign (campaign id and name, group treatment / control,
members        sent at), from a campaign_members mapping
=============  ===========================================================================
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["COLUMNS", "NON_NEGATIVE", "REQUIRED", "TABLES", "UNIQUE", "schema", "validate_table"]

_TS = "datetime64[us, UTC]"
#: Columns of every canonical table, with their pandas dtypes.
COLUMNS: dict[str, dict[str, str]] = {
    "records": {"oneid": "string", "record_id": "string", "channel": "string", "role": "string", "at": _TS},
    "profiles": {"oneid": "string", "record_id": "string", "channel": "string", "at": _TS, "member_id": "string",
                 "member_level": "string", "registered_at": _TS, "updated_at": _TS},
    "traits": {"oneid": "string", "record_id": "string", "channel": "string", "role": "string", "rank": "int64",
               "at": _TS, "trait": "string", "value": "string"},
    "orders": {"oneid": "string", "record_id": "string", "channel": "string", "order_key": "string",
               "order_id": "string", "ordered_at": _TS, "status": "string", "is_order": "bool", "gross": "float64",
               "category": "string", "product": "string", "quantity": "float64", "lines": "int64",
               "sales_channel": "string", "store": "string"},
    "order_lines": {"oneid": "string", "record_id": "string", "channel": "string", "order_key": "string",
                    "ordered_at": _TS, "category": "string", "product": "string", "quantity": "float64",
                    "amount": "float64", "cancelled": "bool"},
    "refunds": {"oneid": "string", "record_id": "string", "channel": "string", "order_key": "string",
                "refunded_at": _TS, "amount": "float64", "matched": "bool", "source": "string",
                "sales_channel": "string"},
    "events": {"oneid": "string", "record_id": "string", "channel": "string", "event_time": _TS,
               "event_type": "string", "family": "string", "quantity": "float64", "value": "float64",
               "duration_seconds": "float64", "campaign": "string", "product": "string", "category": "string",
               "rating": "float64", "platform": "string"},
    "consents": {"oneid": "string", "record_id": "string", "channel": "string", "purpose": "string",
                 "granted": "boolean", "at": _TS, "event": "string", "priority": "int64"},
    "identifiers": {"oneid": "string", "identifier": "string", "value_hash": "uint64", "at": _TS},
    "campaign_members": {"oneid": "string", "record_id": "string", "channel": "string", "campaign_id": "string",
                         "campaign_name": "string", "group": "string", "sent_at": _TS,
                         "response_window_days": "float64"},
}
TABLES = tuple(COLUMNS)


def empty(table: str) -> pd.DataFrame:
    """An empty table with the right columns and dtypes."""
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in COLUMNS[table].items()})


def conform(df: pd.DataFrame, table: str) -> pd.DataFrame:
    """``df`` with exactly the table's columns, in order, cast to their dtypes (missing columns NA)."""
    out = {}
    for c, t in COLUMNS[table].items():
        s = df[c] if c in df.columns else pd.Series(pd.NA if t != "bool" else False, index=df.index)
        if t == _TS:
            s = pd.to_datetime(s, utc=True).astype(_TS)
        elif t == "bool":
            s = s.fillna(False).astype(bool)
        elif t == "string":
            s = s.astype("string")
        else:
            s = s.astype(t)
        out[c] = s.reset_index(drop=True)
    return pd.DataFrame(out)


#: Columns whose values must be unique, per table.
UNIQUE: dict[str, list[str]] = {"records": ["record_id"], "orders": ["order_key"]}
#: Columns that may not be missing (besides every table's oneid, record_id and channel).
REQUIRED = frozenset({("orders", "order_key"), ("events", "event_type"), ("consents", "purpose"),
                      ("refunds", "order_key"), ("traits", "trait"), ("identifiers", "identifier"),
                      ("identifiers", "oneid"),
                      ("campaign_members", "campaign_id"), ("campaign_members", "group"),
                      ("campaign_members", "sent_at")})
#: Amounts and quantities that may not be negative.
NON_NEGATIVE = frozenset({("orders", "gross"), ("refunds", "amount"), ("events", "quantity")})


def _required(table: str, column: str) -> bool:
    return column in ("oneid", "record_id", "channel") or (table, column) in REQUIRED


def schema(table: str, *, unique: bool = True):
    """The pandera schema of one canonical table (dtypes, keys present, amounts not negative, ...);
    ``unique=False`` leaves out the uniqueness of its keys (:data:`UNIQUE`)."""
    import pandera.pandas as pa

    cols = {c: pa.Column(t if t != _TS else pd.DatetimeTZDtype("us", "UTC"), nullable=not _required(table, c),
                         checks=[pa.Check.ge(0)] if (table, c) in NON_NEGATIVE else [])
            for c, t in COLUMNS[table].items()}
    return pa.DataFrameSchema(cols, name=f"canonical {table}", strict=True, ordered=True,
                              unique=UNIQUE.get(table) if unique else None)


# dtypes pandera accepts for a column of each type (the string types: both Arrow-backed kinds of missing)
_PASSING_DTYPES = {_TS: (pd.DatetimeTZDtype("us", "UTC"),),
                   "string": (pd.StringDtype("pyarrow", na_value=pd.NA), pd.StringDtype("pyarrow", na_value=np.nan))}


def _plainly_valid(df: pd.DataFrame, table: str) -> bool:
    """Whether ``df`` passes every check of :func:`schema` by plain pandas tests: exactly the
    table's columns in order, each of exactly its dtype, required ones never missing, amounts
    never negative, keys unique. False means pandera has to look (and say what fails)."""
    if list(df.columns) != list(COLUMNS[table]):
        return False
    for c, t in COLUMNS[table].items():
        s = df[c]
        if s.dtype not in _PASSING_DTYPES.get(t, (pd.api.types.pandas_dtype(t),)):
            return False
        if _required(table, c) and s.isna().any():
            return False
        if (table, c) in NON_NEGATIVE and (s < 0).any():
            return False
    return all(df[c].is_unique for c in UNIQUE.get(table, []))


def validate_table(df: pd.DataFrame, table: str) -> pd.DataFrame:
    """Validate lazily; raise one error listing every failed check (column, check, examples).

    A table that passes the same checks made plainly (:func:`_plainly_valid`) is not handed to
    pandera: importing it and its own checks cost ~0.5 s per run. Any other table is, and pandera
    reports every failure."""
    if _plainly_valid(df, table):
        return df
    import pandera.errors as pe

    try:
        return schema(table).validate(df, lazy=True)
    except pe.SchemaErrors as err:
        fc = err.failure_cases
        lines = (fc.groupby(["column", "check"], dropna=False)["failure_case"]
                 .agg(lambda v: ", ".join(map(str, v.head(3)))).reset_index())
        detail = "; ".join(f"{r.column}: {r.check} (e.g. {r.failure_case})" for r in lines.itertuples())
        raise ValueError(f"The canonical table '{table}' does not fit its schema: {detail}.") from None
