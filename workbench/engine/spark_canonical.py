"""The canonical layer on the Spark engine: every table but ``identifiers`` built by the shared rules
``canonical_*.sql`` from the cleaned Parquet and the OneID registry, written by Spark, then merged
into the layer's one Parquet file per table with the local engine's Arrow schema.

The rules are those of :mod:`workbench.canonical.build` (its module docstring lists them); the
mapping plumbing here only says which column is which canonical field (:func:`source_select`).
Each table is sorted as the local engine writes it — mapping order, then the record's position in
its cleaned file (then the part of the rule: the trait, the consent purpose, the extra event;
orders of line items by order key) — so the files are equal, row for row
(``tests/test_spark_canonical.py`` pins them to :func:`workbench.canonical.build.build_tables`).

Nothing is collected to the driver but counts: Spark writes part files, and
:func:`workbench.engine.spark_io.merge_parts` copies them into one file row group by row group.

Example:
    >>> spark = spark_session(EngineSettings(engine="spark"))                            # doctest: +SKIP
    >>> facts = write_canonical_tables(spark, paths=paths, mappings=config.mappings,
    ...                                out=tmp_dir, scratch=tmp_dir / "_spark")           # doctest: +SKIP
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import pandas as pd

from ..canonical.schema import COLUMNS, NON_NEGATIVE, REQUIRED, UNIQUE, empty
from ..config import Paths
from ..mapping import ChannelMapping
from ..roles import CONSENT_EVENTS, EVENT_TYPES, NUMBER_TYPES, ROLES, TIME_TYPES, TRAITS
from .spark_io import merge_parts, register_pandas
from .sql import rule, string_literal

__all__ = ["SORT_COLUMNS", "WINDOW_TIMES", "identifier_sources", "inspect_table", "source_select", "table_schema",
           "write_canonical_tables"]

#: The columns every rule adds to order its rows as the local engine does (dropped when written).
SORT_COLUMNS = ("_m", "_sub", "_row", "_key")
#: The time column of each table the manifest's data window comes from.
WINDOW_TIMES = {"orders": "ordered_at", "events": "event_time", "refunds": "refunded_at", "records": "at"}
_SPARK_TYPES = {"string": "STRING", "int64": "BIGINT", "float64": "DOUBLE", "bool": "BOOLEAN",
                "boolean": "BOOLEAN", "datetime64[us, UTC]": "TIMESTAMP"}


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _typed(column: str | None, kind: str) -> str:
    """A cleaned column as the type the local engine reads it as (``_str``, ``_num``, a time)."""
    if column is None:
        return f"CAST(NULL AS {kind})"
    q = f"c.{_quote(column)}"
    if kind == "DOUBLE":
        return f"TRY_CAST({q} AS DOUBLE)"
    return f"CAST({q} AS {kind})"


def _field_kind(types: tuple[str, ...]) -> str:
    if any(t in TIME_TYPES for t in types):
        return "TIMESTAMP"
    if all(t in (*NUMBER_TYPES, "amount") for t in types):
        return "DOUBLE"
    if types == ("boolean",):
        return "BOOLEAN"
    return "STRING"


def source_select(mapping: ChannelMapping, columns: list[str], m: int) -> str:
    """The SQL of the channel's ``src`` view (rule ``canonical_source``): its role's canonical fields
    typed (NULL when the cleaned table lacks them), each trait's text and placeholder flag
    (``t_<trait>``, ``p_<trait>``), each ``consent_<purpose>``, the extra events' fields
    (``x_<field>``), and the order key (orders), the reference and own key (returns).

    >>> from workbench.mapping import ChannelMapping
    >>> mp = ChannelMapping.from_dict({"channel": "web", "role": "events", "source": {"pattern": "x"},
    ...     "fields": {"event_time": {"column": "t", "type": "timestamp"},
    ...                "event_type": {"column": "e", "type": "category", "values": {"Page Viewed": ["view"]}}}})
    >>> "CAST(c.`event_type` AS STRING) AS `event_type`" in source_select(mp, ["record_id", "event_time", "event_type"], 0)
    True
    """
    have = set(columns)
    role = ROLES[mapping.role]
    fields = []
    for name, spec in role.fields.items():
        if name in TRAITS and mapping.role == "profile":
            continue   # traits: as t_<trait> below
        fields.append(f"{_typed(name if name in have else None, _field_kind(spec.types))} AS {_quote(name)}")
    for trait in TRAITS:
        present = trait in mapping.fields and trait in have
        if trait == "birth_date" and present:
            value = f"date_format(TRY_CAST(c.{_quote(trait)} AS TIMESTAMP), 'yyyy-MM-dd')"
        else:
            value = _typed(trait if present else None, "STRING")
        ph = f"{trait}_placeholder"
        flag = f"CAST(c.{_quote(ph)} AS BOOLEAN)" if ph in have else "FALSE"
        fields += [f"{value} AS {_quote('t_' + trait)}", f"{flag} AS {_quote('p_' + trait)}"]
    for purpose in mapping.consent_purposes:
        fields.append(f"{_typed('consent_' + purpose, 'BOOLEAN')} AS {_quote('consent_' + purpose)}")
    for e in mapping.extra_events:
        for f, kind in ((e.quantity, "DOUBLE"), (e.time, "TIMESTAMP"), (e.value, "DOUBLE"), (e.duration, "DOUBLE")):
            if f:
                fields.append(f"{_typed(f, kind)} AS {_quote('x_' + f)}")
    if mapping.role in ("orders", "returns"):
        fields.append(f"{_key_expr(mapping, prefix=mapping.role == 'orders')} AS "
                      f"{'order_key' if mapping.role == 'orders' else 'ref'}")
    if mapping.role == "returns":
        own = ("COALESCE(concat(" + string_literal(mapping.channel + ":") + ", CAST(c.`return_id` AS STRING)), "
               "c.record_id)") if "return_id" in have else "c.record_id"
        fields.append(f"{own} AS return_key")
    times = [f"CAST(c.{_quote(f)} AS TIMESTAMP)" for f in role.time_fields if f in have]
    at = ("COALESCE(" + ", ".join(times) + ")") if len(times) > 1 else (times[0] if times else "CAST(NULL AS TIMESTAMP)")
    return rule("canonical_source", channel=string_literal(mapping.channel), role=string_literal(mapping.role),
                m=m, at=at, fields="".join(", " + f for f in fields))


def _key_expr(mapping: ChannelMapping, *, prefix: bool) -> str:
    """``<channel>:<key fields>`` (``order_keys`` of the local engine); NULL when a key field is."""
    keys = mapping.key_fields
    if not keys:
        return "c.record_id"
    parts = []
    for f in keys:
        parts += [f"CAST(c.{_quote(f)} AS STRING)", "':'"]
    parts = parts[:-1]
    if prefix:
        parts = [string_literal(mapping.channel + ":")] + parts
    return "concat(" + ", ".join(parts) + ")"


def _register_source(spark: Any, paths: Paths, registry: Any, mapping: ChannelMapping, m: int, scratch: Path
                     ) -> tuple[Any, list[str]]:
    """The channel's ``src`` rows, written once to ``scratch`` (every rule of the channel reads them),
    and the cleaned table's columns."""
    f = paths.cleaned / f"{mapping.channel}.parquet"
    if not f.exists():
        raise FileNotFoundError(f"No cleaned data for channel '{mapping.channel}' at {f}. Run the clean stage "
                                "(notebook 02_clean) first.")
    cleaned = spark.read.parquet(str(f))
    cleaned.selectExpr("*", "_metadata.row_index AS _row").createOrReplaceTempView("cleaned")
    registry.where(f"channel = {string_literal(mapping.channel)}").select("record_id", "oneid") \
        .createOrReplaceTempView("registry")
    out = scratch / "src" / f"{m:03d}"
    spark.sql(source_select(mapping, cleaned.columns, m)).write.mode("overwrite").parquet(str(out))
    return spark.read.parquet(str(out)), list(cleaned.columns)


_NUMBERS = itertools.count(1)


class _Views:
    """The temporary views a build's rules read, each under a name of its own.

    A rule names its tables (``FROM src``, ``JOIN lines``); the view behind a name changes from
    channel to channel. Spark Connect resolves a query's view names when the query finally runs,
    not when it is made, so every rule's text is given the unique name of the view that was
    current when the rule was made (the local master resolves them at once; same result). Its
    common table expressions (``WITH part AS (…)``) are renamed per query too: Spark Connect
    mixes up same-named ones of different queries in one plan (the parts of a table's union)."""

    def __init__(self, spark: Any):
        self.spark, self.names = spark, {}

    def view(self, name: str, sdf: Any) -> None:
        unique = f"wb_canonical_{name}_{next(_NUMBERS)}"   # unique in the process: a query made
        sdf.createOrReplaceTempView(unique)                 # earlier may still name an older view
        self.names[name] = unique

    def sql(self, text: str) -> Any:
        n = next(_NUMBERS)
        ctes = {m.group(2): f"{m.group(2)}_{n}"
                for m in re.finditer(r"(\bWITH\s+|\)\s*,\s*)(\w+)(\s+AS\s*\()", text, flags=re.I)}
        if ctes:
            text = re.sub(r"(\bWITH\s+|\)\s*,\s*)(" + "|".join(ctes) + r")(\s+AS\s*\()",
                          lambda m: m.group(1) + ctes[m.group(2)] + m.group(3), text, flags=re.I)
        names = {**self.names, **ctes}
        if names:
            pattern = r"\b(FROM|JOIN)(\s+)(" + "|".join(map(re.escape, names)) + r")\b"
            text = re.sub(pattern, lambda m: m.group(1) + m.group(2) + names[m.group(3)], text, flags=re.I)
        return self.spark.sql(text)


def _build(spark: Any, paths: Paths, mappings: dict[str, ChannelMapping], registry: Any, scratch: Path
           ) -> tuple[dict[str, list[Any]], list[tuple[int, Any, ChannelMapping]]]:
    """Every table's parts (Spark DataFrames, lazily), and the returns channels (matched later)."""
    register_pandas(spark, "families", pd.DataFrame(
        {"event_type": list(EVENT_TYPES), "family": [t.family for t in EVENT_TYPES.values()]}),
        schema="event_type STRING, family STRING")
    register_pandas(spark, "consent_events", pd.DataFrame(
        [(k, p, g) for k, (p, g) in CONSENT_EVENTS.items()], columns=["event_type", "purpose", "granted"]),
        schema="event_type STRING, purpose STRING, granted BOOLEAN")
    order = [c for c, mp in mappings.items() if mp.role == "profile"] + \
            [c for c, mp in mappings.items() if mp.role != "profile"]
    ranks = {c: i for i, c in enumerate(order)}
    views = _Views(spark)
    parts: dict[str, list[Any]] = {}
    returns = []
    for m, mp in enumerate(mappings.values()):
        src, cleaned_columns = _register_source(spark, paths, registry, mp, m, scratch)
        views.view("src", src)
        add = lambda table, sdf: parts.setdefault(table, []).append(sdf)  # noqa: E731
        add("records", views.sql(rule("canonical_records")))
        for sub, trait in enumerate(TRAITS):
            if trait in mp.fields and trait in cleaned_columns:
                add("traits", views.sql(rule("canonical_traits", trait=string_literal(trait), value=f"t_{trait}",
                                             placeholder=f"p_{trait}", rank=ranks[mp.channel], sub=sub)))
        if mp.role == "profile":
            add("profiles", views.sql(rule("canonical_profiles")))
            for sub, purpose in enumerate(mp.consent_purposes):
                add("consents", views.sql(rule("canonical_profile_consents", purpose=string_literal(purpose),
                                               granted=_quote("consent_" + purpose), sub=sub)))
        elif mp.role == "orders":
            lines = views.sql(rule("canonical_order_lines"))
            views.view("lines", lines)
            add("order_lines", lines)
            add("orders", views.sql(rule("canonical_orders" if mp.grain == "order" else "canonical_orders_from_lines")))
            add("refunds", views.sql(rule("canonical_order_refunds")))
        elif mp.role == "returns":
            returns.append((m, src, mp))
        elif mp.role == "events":
            ev = [views.sql(rule("canonical_events", event_time="event_time", event_type="event_type",
                                 quantity="COALESCE(quantity, 1.0)", value="`value`", duration="duration_seconds",
                                 keep="TRUE", sub=0))]
            for i, e in enumerate(mp.extra_events):
                qty = f"COALESCE(x_{e.quantity}, 0.0)" if e.quantity else "1.0"
                keep = [f"{qty} > 0"] if e.quantity else []
                if e.time:
                    keep.append(f"x_{e.time} IS NOT NULL")
                ev.append(views.sql(rule(
                    "canonical_events", event_time=f"x_{e.time}" if e.time else "event_time",
                    event_type=string_literal(e.type), quantity=qty,
                    value=f"x_{e.value}" if e.value else "CAST(NULL AS DOUBLE)",
                    duration=f"x_{e.duration}" if e.duration else "CAST(NULL AS DOUBLE)",
                    keep=" AND ".join(keep) or "TRUE", sub=i + 1)))
            events = _union(ev)
            add("events", events)
            views.view("events_of_channel", events)
            add("consents", views.sql(rule("canonical_event_consents")))
        elif mp.role == "consents":
            add("consents", views.sql(rule("canonical_consents")))
        elif mp.role == "campaign_members":
            add("campaign_members", views.sql(rule("canonical_campaign_members")))
    return parts, returns


def _returns_refunds(spark: Any, mappings: dict[str, ChannelMapping], returns: list[tuple[int, Any, ChannelMapping]],
                     orders_written: Any) -> list[Any]:
    """Returns rows matched onto the written orders (rule ``canonical_returns``)."""
    if not returns:
        return []
    views = _Views(spark)
    views.view("order_keys", orders_written.select("order_key", "sales_channel", "channel"))
    order_channels = [c for c, mp in mappings.items() if mp.role == "orders"]
    out = []
    for m, src, mp in returns:
        cands = [mp.returns_of] if mp.returns_of else order_channels
        views.view("candidates", spark.createDataFrame(pd.DataFrame({"pos": range(len(cands)), "channel": cands}),
                                                       schema="pos INT, channel STRING"))
        if mp.returns_of:
            usual = views.sql(rule("canonical_usual_sales_channel", channel=string_literal(mp.returns_of)))
        else:
            usual = spark.sql("SELECT CAST(NULL AS STRING) AS sales_channel WHERE FALSE")
        views.view("usual", usual)
        views.view("src", src)
        out.append(views.sql(rule("canonical_returns", m=len(mappings) + m)))
    return out


def _union(sdfs: list[Any]) -> Any:
    out = sdfs[0]
    for x in sdfs[1:]:
        out = out.unionByName(x)
    return out


def _write(spark: Any, name: str, sdfs: list[Any], out: Path, scratch: Path) -> Any:
    """Sort, type and write one table (part files in ``scratch``, then one file in ``out``); returns
    the written rows as a Spark DataFrame (read back from the part files)."""
    target = out / f"{name}.parquet"
    if not sdfs:
        empty(name).to_parquet(target, index=False)
        return None
    cols = [f"CAST({_quote(c)} AS {_SPARK_TYPES[t]}) AS {_quote(c)}" for c, t in COLUMNS[name].items()]
    where = scratch / "tables" / name
    _union(sdfs).orderBy(*SORT_COLUMNS).selectExpr(*cols).write.mode("overwrite").parquet(str(where))
    merge_parts(where, target, table_schema(name))
    return spark.read.parquet(str(where))


def table_schema(name: str):
    """The Arrow schema (with pandas' metadata) the local engine writes table ``name`` with.

    >>> str(table_schema("consents").field("granted").type)
    'bool'
    """
    import pyarrow as pa

    return pa.Schema.from_pandas(empty(name), preserve_index=False)


def inspect_table(sdf: Any, name: str) -> tuple[dict[str, Any], dict[str, int]]:
    """One written table's checks and facts, from one grouped pass (plus one for unique keys, event
    types and purposes): the schema's checks (required values present, amounts not negative, keys
    unique; a failure raises naming the column and a few record ids), then what the manifest needs
    (rows, time window, first / last paid order, event types, purposes, matched refunds — the facts
    the local engine takes of its tables) and the rows per channel."""
    required = [c for c in COLUMNS[name] if c in ("oneid", "record_id", "channel") or (name, c) in REQUIRED]
    checks = {f"{c}: missing": f"{_quote(c)} IS NULL" for c in required}
    checks.update({f"{c}: negative": f"{_quote(c)} < 0" for c in COLUMNS[name] if (name, c) in NON_NEGATIVE})
    exprs = ["COUNT(*) AS n"] + [f"COUNT_IF({cond}) AS `c{i}`" for i, cond in enumerate(checks.values())]
    col = WINDOW_TIMES.get(name)
    if col is not None:
        exprs += [f"MIN({_quote(col)}) AS lo", f"MAX({_quote(col)}) AS hi"]
    if name == "orders":
        exprs += ["MIN(CASE WHEN is_order THEN ordered_at END) AS lo_paid",
                  "MAX(CASE WHEN is_order THEN ordered_at END) AS hi_paid"]
    if name == "refunds":
        exprs.append("COUNT_IF(matched) AS matched")
    rows = sdf.groupBy("channel").agg(*[_expr(e) for e in exprs]).collect()
    counts = {str(r["channel"]): int(r["n"]) for r in rows}
    bad = []
    for i, (what, cond) in enumerate(checks.items()):
        n = sum(int(r[f"c{i}"]) for r in rows)
        if n:
            key = "record_id" if "record_id" in sdf.columns else "oneid"
            eg = [r[0] for r in sdf.where(cond).select(key).limit(3).collect()]
            bad.append(f"{what} in {n:,} rows (e.g. {', '.join(map(str, eg))})")
    for c in UNIQUE.get(name, []):
        dup = sdf.selectExpr(f"COUNT(*) - COUNT(DISTINCT {_quote(c)}) AS d").first()["d"]
        if dup:
            bad.append(f"{c}: {dup:,} duplicated values")
    if bad:
        raise ValueError(f"The canonical table '{name}' does not fit its schema: {'; '.join(bad)}.")
    f: dict[str, Any] = {"rows": sum(counts.values())}
    if col is not None and f["rows"]:
        f["first"] = _ts(min((r["lo"] for r in rows if r["lo"] is not None), default=None))
        f["last"] = _ts(max((r["hi"] for r in rows if r["hi"] is not None), default=None))
    if name == "orders":
        f["first_order"] = _ts(min((r["lo_paid"] for r in rows if r["lo_paid"] is not None), default=None))
        f["last_order"] = _ts(max((r["hi_paid"] for r in rows if r["hi_paid"] is not None), default=None))
    elif name == "events":
        f["event_types"] = {str(r[0]): int(r[1]) for r in sdf.groupBy("event_type").count().orderBy("event_type")
                            .collect()}
    elif name == "consents":
        f["purposes"] = sorted(str(r[0]) for r in sdf.select("purpose").where("purpose IS NOT NULL").distinct()
                               .collect())
    elif name == "refunds":
        f["matched"] = sum(int(r["matched"]) for r in rows)
    return f, counts


def _expr(text: str) -> Any:
    from pyspark.sql import functions as F

    return F.expr(text)


def _ts(v: Any) -> pd.Timestamp | None:
    """A timestamp collected from Spark (a naive UTC datetime in a UTC session) as a UTC instant."""
    return None if v is None else pd.Timestamp(v).tz_localize("UTC") if pd.Timestamp(v).tz is None \
        else pd.Timestamp(v).tz_convert("UTC")


def write_canonical_tables(spark: Any, *, paths: Paths, mappings: dict[str, ChannelMapping], out: Path,
                           scratch: Path) -> dict[str, Any]:
    """Build and write every canonical table but ``identifiers`` into ``out`` (``<table>.parquet``),
    using ``scratch`` for Spark's part files. Returns ``{"facts": {table: facts},
    "counts": {channel: {table: rows}}, "registry": {channel: records}, "oneids": n}``.

    Raises when a cleaned record has no OneID or the records do not match the registry (rerun the
    identity stage), or when a table fails its schema's checks."""
    if not paths.registry.exists():
        raise FileNotFoundError(f"{paths.registry} not found: run the identity stage (notebook 03_id_matching) "
                                "first.")
    spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    registry = spark.read.parquet(str(paths.registry)).select("record_id", "channel", "oneid")
    reg_counts = {str(r[0]): int(r[1]) for r in registry.groupBy("channel").count().collect()}
    oneids = int(registry.select("oneid").distinct().count())
    parts, returns = _build(spark, paths, mappings, registry, scratch)
    facts: dict[str, Any] = {}
    counts: dict[str, dict[str, int]] = {}
    for name in COLUMNS:
        if name == "identifiers":
            continue
        sdfs = parts.get(name, [])
        if name == "refunds":
            orders = spark.read.parquet(str(scratch / "tables" / "orders")) if parts.get("orders") else None
            if orders is not None:
                sdfs = sdfs + _returns_refunds(spark, mappings, returns, orders)
            elif returns:
                sdfs = sdfs + _returns_refunds(spark, mappings, returns, spark.createDataFrame(
                    [], "order_key STRING, sales_channel STRING, channel STRING"))
        written = _write(spark, name, sdfs, out, scratch)
        if written is None:
            facts[name] = {"rows": 0}
            continue
        if name == "records":
            _check_records(written, reg_counts)
        facts[name], per_channel = inspect_table(written, name)
        for channel, n in per_channel.items():
            counts.setdefault(channel, {})[name] = n
    return {"facts": facts, "counts": counts, "registry": reg_counts, "oneids": oneids}


def _check_records(records: Any, registry_counts: dict[str, int]) -> None:
    """Every cleaned record has a OneID, and the records per channel are the registry's."""
    rows = records.groupBy("channel").agg(_expr("COUNT(*) AS n"), _expr("COUNT_IF(oneid IS NULL) AS missing"),
                                          _expr("MIN(CASE WHEN oneid IS NULL THEN record_id END) AS eg")).collect()
    missing = sum(int(r["missing"]) for r in rows)
    if missing:
        eg = min(r["eg"] for r in rows if r["eg"] is not None)
        raise ValueError(f"{missing:,} cleaned records have no OneID (e.g. {eg}): the cleaned data changed after "
                         "the identity stage ran. Rerun notebook 03_id_matching.")
    have = {str(r["channel"]): int(r["n"]) for r in rows}
    if have != registry_counts:
        raise ValueError(f"The canonical records ({sum(have.values()):,}) do not match the OneID registry "
                         f"({sum(registry_counts.values()):,}): per channel {have} against {registry_counts}. "
                         "Rerun the identity stage.")


def identifier_sources(spark: Any, *, paths: Paths, mappings: dict[str, ChannelMapping], identity: Any,
                       scratch: Path) -> list[tuple[ChannelMapping, list[Path]]]:
    """For each channel the identity settings observe: its records' OneIDs beside the cleaned columns
    the observation reads (identifier columns, their placeholder flags, the record's time fields),
    written by Spark in cleaned row order. Returns ``(mapping, part files in order)`` per channel:
    the identifiers' hashes are then computed by :func:`workbench.canonical.identifier_rows` (the
    identity stage's own normalisation, in Python) a batch of rows at a time."""
    registry = spark.read.parquet(str(paths.registry)).select("record_id", "channel", "oneid")
    out = []
    for m, mp in enumerate(mappings.values()):
        spec = identity.sources.get(mp.channel)
        if spec is None:
            continue
        cleaned = spark.read.parquet(str(paths.cleaned / f"{mp.channel}.parquet"))
        scoped = {str(t).split("@", 1)[1] for ts in spec.identifiers.values()
                  for t in (ts if isinstance(ts, list) else [ts]) if "@" in str(t)}
        wanted = [*spec.identifiers, *scoped, *(f"{c}_placeholder" for c in spec.identifiers),
                  *ROLES[mp.role].time_fields]
        cols = [c for c in dict.fromkeys(wanted) if c in cleaned.columns and c != "record_id"]
        cleaned.selectExpr("*", "_metadata.row_index AS _row").createOrReplaceTempView("cleaned")
        registry.where(f"channel = {string_literal(mp.channel)}").select("record_id", "oneid") \
            .createOrReplaceTempView("registry")
        where = scratch / "ids" / f"{m:03d}"
        spark.sql("SELECT r.oneid, c.record_id" + "".join(f", c.{_quote(c)}" for c in cols)
                  + " FROM cleaned c LEFT JOIN registry r ON r.record_id = c.record_id ORDER BY c._row") \
            .write.mode("overwrite").parquet(str(where))
        out.append((mp, sorted(p for p in where.glob("part-*") if p.name.endswith(".parquet"))))
    return out
