"""Customer 360 aggregates on the Spark engine: the heavy blocks of the profile as Spark SQL.

The always-present columns (records, first / last seen, channels, identifiers), the orders block
(from the purchases view) and the events block (per event type: count, minutes, money, latest;
sessions; latest touch) are the scans of the largest canonical tables (records, orders, events).
:func:`spark_customer_aggregates` computes them with the shared rules ``c360_core.sql``,
``c360_orders.sql``, ``c360_events.sql`` and ``c360_sessions.sql`` and returns them with the local
profile's column names and types (one row per OneID with a record before the as-of date, sorted),
so tests pin them to :func:`workbench.customer360.build_customer_360` column by column.

Example:
    >>> agg = spark_customer_aggregates(spark, paths.canonical, as_of="2026-06-01")   # doctest: +SKIP
    >>> agg[["oneid", "orders", "net_revenue", "sessions"]].head()                     # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from ..roles import EVENT_TYPES, SESSION_FAMILIES, event_slug
from ..timeutil import to_utc
from .spark_io import register_canonical, to_pandas
from .spark_rfm import spark_purchases
from .sql import rule, string_literal, timestamp_literal

__all__ = ["spark_column_sources", "spark_customer_aggregates", "spark_event_universe", "spark_sales_channels"]


def _manifest(canonical_dir: Path) -> dict[str, Any]:
    f = canonical_dir / "manifest.json"
    if not f.exists():
        raise FileNotFoundError(f"{f} not found: build the canonical layer first (notebook 04_customer_360, "
                                "or workbench.canonical.run_canonical).")
    return json.loads(f.read_text(encoding="utf-8"))


def _has(manifest: dict[str, Any], role: str, table: str) -> bool:
    return bool(manifest["roles"].get(role)) and manifest["rows"].get(table, 0) > 0


def _before(column: str, cutoff: pd.Timestamp | None) -> str:
    return "TRUE" if cutoff is None else f"{column} < {timestamp_literal(cutoff)}"


def spark_event_universe(spark: Any, canonical_dir: str | Path | None = None) -> pd.DataFrame:
    """The event types of the ``events`` view (registered from ``canonical_dir`` when given) in
    vocabulary order, with whether each carries durations, money, ratings and categories (as
    :func:`workbench.customer360.event_universe`)."""
    if canonical_dir is not None:
        register_canonical(spark, canonical_dir, ["events"])
    u = to_pandas(spark.sql("SELECT event_type, COUNT(duration_seconds) > 0 AS duration, COUNT(value) > 0 AS value, "
                            "COUNT(rating) > 0 AS rating, COUNT(category) > 0 AS category "
                            "FROM events WHERE event_type IS NOT NULL GROUP BY event_type"))
    vocab = list(EVENT_TYPES)
    order = sorted(u["event_type"], key=lambda t: (vocab.index(t) if t in vocab else len(vocab), t))
    return u.set_index("event_type").loc[order]


def _measures(universe: pd.DataFrame) -> tuple[str, list[str], list[str]]:
    """The events rule's per-type aggregates; the count / money / minutes columns and the time columns."""
    parts, floats, times = [], [], []
    for name, flags in universe.iterrows():
        slug, lit = event_slug(name), string_literal(str(name))
        parts.append(f"COALESCE(SUM(CASE WHEN event_type = {lit} THEN quantity END), 0.0) AS `{slug}`")
        floats.append(slug)
        if flags["duration"]:
            parts.append(f"COALESCE(SUM(CASE WHEN event_type = {lit} THEN duration_seconds END), 0.0) / 60.0 "
                         f"AS `{slug}_minutes`")
            floats.append(f"{slug}_minutes")
        if flags["value"]:
            parts.append(f"COALESCE(SUM(CASE WHEN event_type = {lit} THEN value END), 0.0) AS `{slug}_value`")
            floats.append(f"{slug}_value")
        parts.append(f"MAX(CASE WHEN event_type = {lit} THEN event_time END) AS `last_{slug}_at`")
        times.append(f"last_{slug}_at")
    return ",\n           ".join(parts), floats, times


def spark_customer_aggregates(spark: Any, canonical_dir: str | Path, *, as_of: Any = None,
                              session_gap_minutes: int = 30,
                              problem_ticket_categories: Sequence[str] = (),
                              max_sales_channels: int | None = None,
                              unique_identifiers: Sequence[str] | None = None) -> pd.DataFrame:
    """The profile's always-present, orders and events aggregates per OneID at ``as_of`` (None: all
    data), computed by Spark from the canonical Parquet in ``canonical_dir``.

    Days-since columns are measured at ``as_of``, else at the day after the latest dated row (the
    layer's ``data_end``, as the local profile). Columns are the local profile's of these blocks,
    e-mail rates, WeChat following and service tickets (``problem_ticket_categories``: the analysis
    settings') included, favourite / top categories, and revenue per sales channel with the main
    one when the layer has 2 to ``max_sales_channels`` sales channels (the profile's limit; None:
    no such columns).

    ``unique_identifiers``: the identity settings' identifiers of kind unique (member / customer
    numbers). Given (a list, empty included), the result has ``has_unique_identifier``: whether
    one of the OneID's identifier values of those kinds is dated before ``as_of`` — the part of the
    profile's ``is_known`` that reads the identifiers table, so the profile's local part does not
    have to. None: no such column.
    """
    canonical_dir = Path(canonical_dir)
    if isinstance(session_gap_minutes, bool) or not isinstance(session_gap_minutes, int) or session_gap_minutes < 1:
        raise ValueError("The 'session_gap_minutes' parameter must be a positive whole number. "
                         f"Got {session_gap_minutes!r} instead.")
    manifest = _manifest(canonical_dir)
    cutoff = to_utc(as_of)
    last = manifest["window"]["last"]
    reference = cutoff if cutoff is not None else (
        (pd.Timestamp(last) + pd.Timedelta(days=1)).normalize() if last else pd.Timestamp.now(tz="UTC").normalize())
    register_canonical(spark, canonical_dir, ["records", "identifiers"])
    unique = ", ".join(string_literal(str(u)) for u in unique_identifiers or ()) or "NULL"
    cached = spark.sql(rule("c360_core", before_records=_before("at", cutoff), before_identifiers=_before("at", cutoff),
                            unique_identifiers=unique)).persist()   # read by every block
    core = cached if unique_identifiers is not None else cached.drop("has_unique_identifier")
    core.createOrReplaceTempView("c360_core")
    spark.sql("SELECT oneid FROM c360_core").createOrReplaceTempView("population")
    out = core
    times, strings = ["first_seen", "last_seen"], ["oneid", "channels"]
    if _has(manifest, "orders", "orders"):
        names = spark_sales_channels(spark, canonical_dir)   # (the whole layer's: before the view at the cutoff)
        spark_purchases(spark, canonical_dir, as_of=cutoff, collect=False).createOrReplaceTempView("purchases")
        orders = spark.sql(rule("c360_orders", reference=timestamp_literal(reference)))
        out = out.join(orders, "oneid", "left")
        times += ["first_order_at", "last_order_at"]
        if spark.sql("SELECT COUNT(category) > 0 FROM purchases").first()[0]:
            out = out.join(spark.sql(rule("c360_categories")), "oneid", "left")
            strings += ["favourite_category", "top_categories"]
        if max_sales_channels is not None and 1 < len(names) <= max_sales_channels:
            out = out.join(spark.sql(_sales_channel_rule(names)), "oneid", "left")
            strings.append("main_sales_channel")
    if _has(manifest, "events", "events"):
        register_canonical(spark, canonical_dir, ["events"])
        universe = spark_event_universe(spark)
        measures, counts, event_times = _measures(universe)
        columns = ", ".join([f"COALESCE(per.`{c}`, 0.0) AS `{c}`" for c in counts] + [f"per.`{c}`" for c in event_times])
        before = _before("event_time", cutoff)
        out = out.join(spark.sql(rule("c360_events", before_events=before, measures=measures, columns=columns)),
                       "oneid", "left")
        times += [*event_times, "last_touch_at"]
        if any(EVENT_TYPES[t].family in SESSION_FAMILIES for t in universe.index if t in EVENT_TYPES):
            families = ", ".join(string_literal(f) for f in SESSION_FAMILIES)
            sessions = spark.sql(rule("c360_sessions", before_events=before, families=families,
                                      gap_minutes=session_gap_minutes))
            out = out.join(sessions, "oneid", "left")
        if "Email Sent" in universe.index:
            out = out.join(spark.sql(rule("c360_email", before_events=before)), "oneid", "left")
        if "WeChat Followed" in universe.index:
            out = out.join(spark.sql(rule("c360_wechat", before_events=before)), "oneid", "left")
        if "Service Ticket Opened" in universe.index:
            flags = universe.loc["Service Ticket Opened"]
            problems = list(problem_ticket_categories)
            tickets = spark.sql(rule("c360_tickets", before_events=before,
                                     problems=", ".join(string_literal(c) for c in problems) or "NULL"))
            keep = (["problem_tickets"] if problems and flags["category"] else []) + \
                (["service_rating"] if flags["rating"] else [])
            if keep:
                out = out.join(tickets.select("oneid", *keep), "oneid", "left")
    try:
        df = to_pandas(out.orderBy("oneid"), times=times, strings=strings)
    finally:
        cached.unpersist()
    return df.reset_index(drop=True)


def spark_sales_channels(spark: Any, canonical_dir: str | Path) -> list[str]:
    """The sales channels of the whole layer's purchases (the order's, else its channel), sorted."""
    spark_purchases(spark, canonical_dir, collect=False).createOrReplaceTempView("all_purchases")
    rows = spark.sql("SELECT DISTINCT COALESCE(sales_channel, channel) FROM all_purchases").collect()
    return sorted(str(r[0]) for r in rows if r[0] is not None)


def _sales_channel_rule(names: list[str]) -> str:
    """The revenue-per-sales-channel rule for the layer's sales channels ``names``."""
    cols = [f"revenue_{event_slug(n)}" for n in names]
    revenues = ", ".join(f"SUM(CASE WHEN sales = {string_literal(n)} THEN net END) AS `{c}`" for n, c in zip(names, cols))
    filled = ", ".join(f"COALESCE(per.`{c}`, 0.0) AS `{c}`" for c in cols)
    top = f"GREATEST({', '.join(f'`{c}`' for c in cols)})"
    main = (f"CASE WHEN {top} > 0 THEN CASE " + " ".join(f"WHEN `{c}` = {top} THEN {string_literal(n)}"
                                                          for n, c in zip(names, cols)) + " END END")
    return rule("c360_sales_channels", revenues=revenues, filled=filled, main=main)


def spark_column_sources(spark: Any, canonical_dir: str | Path, *, as_of: Any = None) -> dict[str, Any]:
    """The channels behind :func:`spark_customer_aggregates`' columns, as the profile's data
    dictionary names them: ``"records"``, ``"purchases"``, ``"events"``, ``"email"`` and ``"wechat"``
    (events of those families) — the channels of each before ``as_of`` (sorted; purchases / events
    only when the layer has them); ``"sales_channels"``: ``{sales channel of the layer: the channels
    of its purchases before as_of}``; ``"purchase_categories"``: whether those purchases carry
    categories; and
    ``"event_types"``: ``{event type: its channels}`` over the whole layer.

    Example:
        >>> spark_column_sources(spark, paths.canonical, as_of="2026-06-01")["records"]   # doctest: +SKIP
        ['app_log', 'members', 'pos', 'shop', 'web']
    """
    canonical_dir = Path(canonical_dir)
    manifest = _manifest(canonical_dir)
    cutoff = to_utc(as_of)

    def channels(sql: str) -> list[str]:
        return sorted(str(r[0]) for r in spark.sql(sql).collect())

    register_canonical(spark, canonical_dir, ["records"])
    out: dict[str, Any] = {"records": channels("SELECT DISTINCT channel FROM records WHERE channel IS NOT NULL "
                                               f"AND {_before('at', cutoff)}")}
    if _has(manifest, "orders", "orders"):
        names = spark_sales_channels(spark, canonical_dir)
        spark_purchases(spark, canonical_dir, as_of=cutoff, collect=False).createOrReplaceTempView("purchases")
        out["purchases"] = channels("SELECT DISTINCT channel FROM purchases WHERE channel IS NOT NULL")
        out["purchase_categories"] = bool(spark.sql("SELECT COUNT(category) > 0 FROM purchases").first()[0])
        pairs = to_pandas(spark.sql("SELECT DISTINCT COALESCE(sales_channel, channel) AS sales, channel FROM purchases "
                                    "WHERE channel IS NOT NULL"))
        per = {str(k): sorted(str(c) for c in g) for k, g in pairs.groupby("sales")["channel"]}
        out["sales_channels"] = {n: per.get(n, []) for n in names}
    if _has(manifest, "events", "events"):
        register_canonical(spark, canonical_dir, ["events"])
        for key, only in (("events", ""), ("email", " AND family = 'email'"), ("wechat", " AND family = 'wechat'")):
            out[key] = channels("SELECT DISTINCT channel FROM events WHERE channel IS NOT NULL "
                                f"AND {_before('event_time', cutoff)}{only}")
        pairs = to_pandas(spark.sql("SELECT DISTINCT event_type, channel FROM events "
                                    "WHERE event_type IS NOT NULL AND channel IS NOT NULL"))
        out["event_types"] = {str(t): sorted(str(c) for c in g) for t, g in pairs.groupby("event_type")["channel"]}
    return out
