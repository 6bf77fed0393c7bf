"""The canonical customer layer: what every stage after the identity stage reads.

The identity stage's registry (record → OneID) and the cleaned channels become plain Parquet
tables keyed by OneID — ``records``, ``profiles``, ``traits``, ``orders`` (+ ``order_lines``,
``refunds``), ``events``, ``consents``, ``identifiers`` — built once per run from each
mapping's *role* (:mod:`workbench.roles`, :mod:`workbench.canonical.schema`). The customer
360, segments, models, reports, explorers, audiences and privacy requests read only this
layer, so any brand's channels work, whatever they are called.

Public API:

- :func:`run_canonical` — the stage: build, validate (pandera), write
  ``data/processed/canonical/`` and its ``manifest.json`` (the settings the run used, row
  counts per table and channel, the data's time window);
- :func:`load_canonical` — a :class:`CanonicalLayer` over the written tables, with as-of
  views: :meth:`CanonicalLayer.purchases` (orders with refunds netted — the one definition
  of an order and of net revenue), :meth:`CanonicalLayer.table` (any table before a date);
- :func:`totals_from_cleaned` — revenue and order counts computed straight from the cleaned
  tables, independently of the layer, for reconciliation.

Example:
    >>> layer = load_canonical()                                    # doctest: +SKIP
    >>> tx = layer.purchases(as_of="2026-06-01")                     # doctest: +SKIP
    >>> tx.groupby("oneid")["net"].sum().head()                      # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..config import Paths, get_paths
from ..mapping import ChannelMapping
from ..runconfig import AnalysisSettings, RunConfig
from ..timeutil import to_utc
from .build import build_tables, order_keys, record_times, string_isin
from .schema import COLUMNS, TABLES, empty, validate_table

__all__ = ["PURCHASE_COLUMNS", "TABLES", "COLUMNS", "CanonicalLayer", "identifier_rows", "load_canonical",
           "run_canonical", "totals_from_cleaned", "linked_cleaned"]

#: Columns of :meth:`CanonicalLayer.purchases`, in order.
PURCHASE_COLUMNS = ("oneid", "record_id", "channel", "sales_channel", "order_key", "ordered_at", "status",
                    "is_order", "category", "gross", "refund", "net", "refunded_at")
#: Which table's time column an as-of filter uses.
TIME_COLUMN = {"records": "at", "profiles": "at", "traits": "at", "orders": "ordered_at", "order_lines": "ordered_at",
               "refunds": "refunded_at", "events": "event_time", "consents": "at", "identifiers": "at",
               "campaign_members": "sent_at"}


def load_registry(paths: Paths) -> pd.DataFrame:
    """``record_id, channel, oneid`` written by the identity stage."""
    if not paths.registry.exists():
        raise FileNotFoundError(f"{paths.registry} not found: run the identity stage (notebook 03_id_matching) "
                                "first.")
    return pd.read_parquet(paths.registry, columns=["record_id", "channel", "oneid"])


def linked_cleaned(paths: Paths, channel: str, registry: pd.DataFrame, columns: list[str] | None = None
                   ) -> pd.DataFrame:
    """The cleaned table of ``channel`` (``columns`` that exist, or all) with each record's ``oneid``.

    Every record must have a OneID: a record the identity stage has not seen means the cleaned
    data changed after it ran, and raises with what to do.
    """
    from ..clean import load_cleaned

    df = load_cleaned(channel, paths, columns=None if columns is None else ["record_id", *columns])
    pos = np.flatnonzero((registry["channel"] == channel).to_numpy(bool))
    contiguous = len(pos) and pos[-1] - pos[0] + 1 == len(pos)   # the registry is written channel by channel
    reg = (registry.iloc[pos[0]:pos[-1] + 1] if contiguous else registry.iloc[pos])[["record_id", "oneid"]]
    if len(reg) == len(df) and _same_strings(reg["record_id"], df["record_id"]):
        # the registry keeps cleaned row order: no join
        oneid = reg["oneid"]
        return df.assign(oneid=oneid.array if oneid.dtype == _STR else oneid.to_numpy())
    out = df.merge(reg, on="record_id", how="left", validate="one_to_one")
    unresolved = int(out["oneid"].isna().sum())
    if unresolved:
        example = out.loc[out["oneid"].isna(), "record_id"].iloc[0]
        raise ValueError(f"{unresolved:,} records of '{channel}' have no OneID (e.g. {example}): the cleaned data "
                         "changed after the identity stage ran. Rerun notebook 03_id_matching.")
    return out


_STR = pd.StringDtype("pyarrow", na_value=np.nan)   # what pandas infers for an array of Python strings


def _same_strings(a: pd.Series, b: pd.Series) -> bool:
    """Whether two string columns of equal length hold the same values, position by position (no missing)."""
    try:
        x, y = pa.array(a.array), pa.array(b.array)
        if not (x.null_count or y.null_count):
            return bool(pc.all(pc.equal(x, y.cast(x.type))).as_py())
    except (pa.ArrowException, TypeError):
        pass
    return bool((a.to_numpy() == b.to_numpy()).all())


def identifier_rows(df: pd.DataFrame, mapping: ChannelMapping, config: RunConfig, at: pd.Series) -> pd.DataFrame:
    """Identifier values of a channel's records as 64-bit hashes (never the values), per OneID, in record order."""
    from ..identity.observations import observe

    spec = config.identity.sources.get(mapping.channel)
    if spec is None:
        return empty("identifiers")
    # only the identifiers: the fuzzy attributes observe() also derives are not needed here
    ids, _, _ = observe(df, dataclasses.replace(spec, attributes={}), config.identity, table=mapping.channel)
    if not len(ids):
        return empty("identifiers")
    # record order (observe() groups its rows by identifier): the same rows in the same order
    # whether a channel is observed whole or a batch of records at a time (the Spark engine)
    order = np.argsort(ids["rec"].to_numpy(), kind="stable")
    ids = ids.iloc[order].reset_index(drop=True)
    rec = ids["rec"].to_numpy()
    ident = ids["identifier"].astype("string")
    # the hash of "<identifier>\x1f<value>", joined and hashed as Arrow strings (same hash as Python strings)
    a, v = pa.array(ident.array), pa.array(ids["value"].astype("string").array)
    key = pc.binary_join_element_wise(a, v.cast(a.type), pa.scalar("\x1f", a.type))
    return pd.DataFrame({"oneid": pd.Series(df["oneid"].array.take(rec)).astype("string"), "identifier": ident,
                         "value_hash": pd.util.hash_array(pd.array(key, dtype="string")).astype("uint64"),
                         "at": at.array.take(rec)})


def run_canonical(paths: Paths | None = None, *, analysis_settings: Any = None, engine: Any = None,
                  log=print) -> "CanonicalLayer":
    """Build the canonical layer from the cleaned channels and the OneID registry, validate every
    table against its schema, and write ``data/processed/canonical/`` (replacing the previous
    layer as a whole). The settings come from what ingest, clean and identity recorded;
    ``analysis_settings`` (a path; default: the package's) are introduced here and recorded.

    ``engine`` (settings, a mapping or a YAML path; default: the run's recorded engine, else local):
    with ``engine: spark`` the tables are built by Spark SQL (:mod:`workbench.engine.spark_canonical`,
    the same rules) and written as the same Parquet files, without holding a table in memory.

    >>> layer = run_canonical()          # doctest: +SKIP
    """
    from ..runconfig import (record, resolve_analysis, resolve_cleaning, resolve_engine, resolve_identity,
                             resolve_mappings)

    t0 = time.perf_counter()
    paths = (paths or get_paths()).ensure()
    analysis = resolve_analysis(paths, analysis_settings, introduce=True)
    config = RunConfig(paths, resolve_mappings(paths), resolve_cleaning(paths), resolve_identity(paths), analysis,
                       resolve_engine(paths, engine))
    record(paths, "analysis", analysis.to_dict())
    out = paths.canonical
    tmp = out.with_name(out.name + f".{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if config.engine.is_spark:
        manifest, tables = _write_on_spark(paths, config, tmp), {}
        records_read = manifest.pop("_records_read")
    else:
        manifest, records_read, tables = _write_local(paths, config, tmp)
    manifest["seconds"] = round(time.perf_counter() - t0, 3)
    manifest["seconds_per_channel"] = manifest.pop("_seconds_per_channel")
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False, default=str),
                                       encoding="utf-8")
    if out.exists():
        old = out.with_name(out.name + f".{os.getpid()}.old")
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)
    metrics = {"stage": "canonical", "seconds": manifest["seconds"], "engine": config.engine.engine,
               "totals": {"read": records_read, "kept": manifest["rows"]["records"], "quarantined": 0},
               "tables": manifest["rows"], "roles": manifest["roles"]}
    paths.metrics.mkdir(parents=True, exist_ok=True)
    (paths.metrics / "canonical.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    if log:
        log(f"canonical layer ({config.engine.engine} engine): {records_read:,} records of {manifest['oneids']:,} "
            "OneIDs -> " + ", ".join(f"{k} {v:,}" for k, v in manifest["rows"].items())
            + f" in {manifest['seconds']:.1f} s")
    layer = CanonicalLayer(paths)
    layer._cache.update(tables)   # the tables just written, equal to reading them back: no second read
    return layer


def _write_local(paths: Paths, config: RunConfig, tmp: Any) -> tuple[dict[str, Any], int, dict[str, pd.DataFrame]]:
    """The local engine: every table built in memory (:func:`build_tables`), checked and written to ``tmp``."""
    registry = load_registry(paths)
    seconds: dict[str, float] = {}
    ident_parts = []

    def read(m: ChannelMapping) -> tuple[pd.DataFrame, pd.DataFrame]:
        t = time.perf_counter()
        df = linked_cleaned(paths, m.channel, registry)
        idents = identifier_rows(df, m, config, record_times(df, m))
        seconds[m.channel] = round(time.perf_counter() - t, 3)
        return df, idents

    # channels are read (and their identifiers observed) by worker threads a little ahead of the
    # build, which takes them in mapping order: Arrow's reads and string kernels run without the GIL
    workers = _workers()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="canonical-reader") as readers:
        ahead = _Ahead(readers, read, list(config.mappings.values()), workers)

        def load(m: ChannelMapping) -> pd.DataFrame:
            df, idents = ahead.next(m)
            ident_parts.append(idents)
            return df

        build = build_tables(load, config.mappings)
    idents = [p for p in ident_parts if len(p)]
    ident_parts.clear()
    build.parts["identifiers"] = [pd.concat(idents, ignore_index=True)] if idents else []
    del idents
    facts: dict[str, Any] = {}
    tables: dict[str, pd.DataFrame] = {}
    # one table at a time: built, checked, then written by a second thread (Arrow encodes and
    # compresses without the GIL) while the next one is checked
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="canonical-writer") as writer:
        written = []
        for name in TABLES:
            df = build.table(name)
            build.parts.pop(name, None)
            if name == "records":
                _check_records(df, registry)
            validate_table(df, name)
            written.append(writer.submit(df.to_parquet, tmp / f"{name}.parquet", index=False))
            facts[name] = _facts(df, name)
            tables[name] = df
            del df
        for w in written:
            w.result()
    manifest = _manifest(facts, build.counts, config, int(registry["oneid"].nunique()))
    manifest["_seconds_per_channel"] = seconds
    return manifest, int(len(registry)), tables


def _write_on_spark(paths: Paths, config: RunConfig, tmp: Any) -> dict[str, Any]:
    """The Spark engine: every table but ``identifiers`` built and written by Spark
    (:func:`workbench.engine.spark_canonical.write_canonical_tables`, part files merged into the
    layer's files), the identifiers observed channel by channel in batches of rows."""
    from ..engine.session import spark_session
    from ..engine.spark_canonical import identifier_sources, table_schema, write_canonical_tables
    from ..engine.spark_io import temporary_views

    spark = spark_session(config.engine)
    scratch = tmp / "_spark"
    try:
        with temporary_views(spark):   # the rules' ~50 views go with the build
            done = write_canonical_tables(spark, paths=paths, mappings=config.mappings, out=tmp, scratch=scratch)
            sources = identifier_sources(spark, paths=paths, mappings=config.mappings, identity=config.identity,
                                         scratch=scratch)
        facts = done["facts"]
        facts["identifiers"] = _write_identifiers(sources, config, tmp / "identifiers.parquet",
                                                  table_schema("identifiers"))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    facts = {name: facts[name] for name in TABLES}
    manifest = _manifest(facts, done["counts"], config, done["oneids"])
    manifest["_seconds_per_channel"] = {}
    manifest["_records_read"] = sum(done["registry"].values())
    return manifest


def _write_identifiers(sources: list[tuple[ChannelMapping, list[Any]]], config: RunConfig, target: Any,
                       schema: pa.Schema, *, batch_rows: int = 1 << 18) -> dict[str, Any]:
    """The identifiers table from each channel's linked rows (Parquet part files in record order),
    ``batch_rows`` records at a time; returns its facts (rows)."""
    import pyarrow.parquet as pq

    rows = 0
    with pq.ParquetWriter(str(target), schema) as writer:
        for m, files in sources:
            for f in files:
                for batch in pq.ParquetFile(f).iter_batches(batch_size=batch_rows):
                    df = batch.to_pandas()
                    if not len(df):
                        continue
                    ids = identifier_rows(df, m, config, record_times(df, m))
                    if len(ids):
                        validate_table(ids, "identifiers")
                        writer.write_table(pa.Table.from_pandas(ids, schema=schema, preserve_index=False))
                        rows += len(ids)
    return {"rows": rows}


def _workers() -> int:
    """Threads for the per-channel work: ``$WORKBENCH_WORKERS`` or min(2, CPUs), as the other stages."""
    env = os.environ.get("WORKBENCH_WORKERS")
    return max(1, int(env)) if env else max(1, min(2, os.cpu_count() or 1))


class _Ahead:
    """``fn(item)`` for ``items``, asked for in their order and computed by ``pool`` up to ``ahead``
    items beyond the one asked for: at most that many results wait in memory."""

    def __init__(self, pool: ThreadPoolExecutor, fn: Any, items: list[Any], ahead: int):
        self.pool, self.fn, self.items, self.ahead = pool, fn, items, ahead
        self.futures: dict[int, Any] = {}
        self.submitted = self.done = 0

    def next(self, item: Any) -> Any:
        i = self.done
        if self.items[i] is not item:
            raise RuntimeError(f"{item!r} asked for out of order (expected {self.items[i]!r}).")
        while self.submitted < len(self.items) and self.submitted <= i + self.ahead:
            self.futures[self.submitted] = self.pool.submit(self.fn, self.items[self.submitted])
            self.submitted += 1
        self.done += 1
        return self.futures.pop(i).result()


def _check_records(records: pd.DataFrame, registry: pd.DataFrame) -> None:
    """The canonical records are exactly the registry's. Every record comes from a cleaned row
    joined to its registry entry (:func:`linked_cleaned` raises on a row without one) and record
    ids are unique (the schema checks it), so equal counts per channel mean equal sets — without
    a set of every id string, which would cost several times the table's memory."""
    have = {str(k): int(v) for k, v in records["channel"].value_counts().items()}
    if have == {str(k): int(v) for k, v in registry["channel"].value_counts().items()}:
        return
    missing = registry.loc[~registry["record_id"].isin(records["record_id"]).to_numpy(bool), "record_id"]
    raise ValueError(f"The canonical records ({len(records):,}) do not match the OneID registry "
                     f"({len(registry):,}); e.g. missing {missing.head(3).tolist()}. Rerun the identity stage.")


_WINDOW_TIMES = {"orders": "ordered_at", "events": "event_time", "refunds": "refunded_at", "records": "at"}


def _facts(df: pd.DataFrame, name: str) -> dict[str, Any]:
    """What the manifest needs of one table, so the table itself can be released once written."""
    f: dict[str, Any] = {"rows": int(len(df))}
    col = _WINDOW_TIMES.get(name)
    if col is not None and len(df):
        f["first"], f["last"] = df[col].min(), df[col].max()
    if name == "orders":
        paid = df.loc[df["is_order"].to_numpy(bool), "ordered_at"].dropna()
        f["first_order"], f["last_order"] = (paid.min(), paid.max()) if len(paid) else (None, None)
    elif name == "events":
        f["event_types"] = {str(k): int(v) for k, v in df["event_type"].value_counts().sort_index().items()}
    elif name == "consents":
        f["purposes"] = sorted(df["purpose"].dropna().unique().tolist())
    elif name == "refunds":
        f["matched"] = int(df["matched"].sum())
    return f


def _window(facts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    iso = lambda v: None if v is None or pd.isna(v) else pd.Timestamp(v).isoformat()  # noqa: E731
    firsts = [f["first"] for t, f in facts.items() if t in _WINDOW_TIMES and not pd.isna(f.get("first"))]
    lasts = [f["last"] for t, f in facts.items() if t in _WINDOW_TIMES and not pd.isna(f.get("last"))]
    o = facts["orders"]
    return {"first": iso(min(firsts)) if firsts else None, "last": iso(max(lasts)) if lasts else None,
            "first_order": iso(o.get("first_order")), "last_order": iso(o.get("last_order"))}


def _manifest(facts: dict[str, dict[str, Any]], counts: dict[str, dict[str, int]], config: RunConfig,
              oneids: int) -> dict[str, Any]:
    return {
        "built_utc": pd.Timestamp.now(tz="UTC").floor("s").isoformat(),
        "settings": config.to_dict(),
        "roles": {r: [c for c, m in config.mappings.items() if m.role == r]
                  for r in ("profile", "orders", "returns", "events", "consents", "campaign_members")},
        "rows": {t: f["rows"] for t, f in facts.items()},
        "rows_per_channel": counts,
        "oneids": oneids,
        "event_types": facts["events"].get("event_types", {}),
        "consent_purposes": facts["consents"].get("purposes", []),
        "refunds": {"matched": facts["refunds"].get("matched", 0),
                    "unmatched": facts["refunds"]["rows"] - facts["refunds"].get("matched", 0)},
        "window": _window(facts),
    }


class CanonicalLayer:
    """The written canonical layer: tables (read once, then cached), as-of views, the run's settings.

    >>> layer = load_canonical()                   # doctest: +SKIP
    >>> layer.has("events"), layer.data_end        # doctest: +SKIP
    """

    def __init__(self, paths: Paths):
        self.paths = paths
        self._cache: dict[str, pd.DataFrame] = {}
        self._derived: dict[Any, Any] = {}   # facts computed from the cached tables (see memo())
        self._purchases: dict[Any, pd.DataFrame] = {}   # purchases() of the last few as-of dates

    @cached_property
    def manifest(self) -> dict[str, Any]:
        f = self.paths.canonical / "manifest.json"
        if not f.exists():
            raise FileNotFoundError(f"{f} not found: build the canonical layer first (notebook 04_customer_360, "
                                    "or workbench.canonical.run_canonical).")
        return json.loads(f.read_text(encoding="utf-8"))

    @cached_property
    def config(self) -> RunConfig:
        """The settings the run used (recorded in the manifest): mappings, cleaning, identity, analysis."""
        from ..identity.settings import IdentitySettings

        s = self.manifest["settings"]
        return RunConfig(self.paths, {c: ChannelMapping.from_dict(d) for c, d in s["mappings"].items()},
                         s["cleaning"], IdentitySettings.from_dict(s["identity"]),
                         AnalysisSettings.from_dict(s["analysis"]), s.get("engine"))

    @property
    def analysis(self) -> AnalysisSettings:
        return self.config.analysis

    @property
    def base_currency(self) -> str:
        return self.config.base_currency

    @property
    def local_timezone(self) -> str:
        """The zone calendar days are counted in (see :attr:`RunConfig.local_timezone`)."""
        return self.config.local_timezone

    def has(self, role: str) -> bool:
        """Whether any mapping of ``role`` fed the layer (and left rows)."""
        table = {"profile": "profiles", "orders": "orders", "returns": "refunds", "events": "events",
                 "consents": "consents", "campaign_members": "campaign_members"}[role]
        return bool(self.manifest["roles"].get(role)) and self.manifest["rows"].get(table, 0) > 0

    @property
    def channels(self) -> list[str]:
        return list(self.manifest["settings"]["mappings"])

    @property
    def data_end(self) -> pd.Timestamp | None:
        """The day after the latest dated row (the default as-of date)."""
        last = self.manifest["window"]["last"]
        return None if last is None else (pd.Timestamp(last) + pd.Timedelta(days=1)).normalize()

    @property
    def last_order(self) -> pd.Timestamp | None:
        v = self.manifest["window"]["last_order"]
        return None if v is None else pd.Timestamp(v)

    @property
    def first_order(self) -> pd.Timestamp | None:
        v = self.manifest["window"]["first_order"]
        return None if v is None else pd.Timestamp(v)

    def table(self, name: str, *, as_of: Any = None, columns: list[str] | None = None,
              cache: bool = True) -> pd.DataFrame:
        """One canonical table (rows dated before ``as_of`` when given; undated rows then drop out).

        The whole table is read once and kept for later calls; ``cache=False`` (a one-off use whose
        result the caller keeps in another form) reads only ``columns`` and keeps nothing, unless
        the table is already kept."""
        if name not in COLUMNS:
            raise ValueError(f"The 'name' parameter must be one of {list(TABLES)}. Got {name!r} instead.")
        if name in self._cache:
            df = self._cache[name]
        else:
            f = self.paths.canonical / f"{name}.parquet"
            if not f.exists():
                raise FileNotFoundError(f"{f} not found: build the canonical layer first (notebook 04_customer_360).")
            if cache:
                df = self._cache[name] = pd.read_parquet(f)
            else:
                df = pd.read_parquet(f, columns=None if columns is None else
                                     list(dict.fromkeys([*columns, TIME_COLUMN[name]])))
        cutoff = to_utc(as_of)
        if cutoff is None:
            return df if columns is None else df[columns]
        keep = (df[TIME_COLUMN[name]] < cutoff).fillna(False).to_numpy(bool)
        if columns is not None:  # only the columns asked for are filtered
            df = df[columns]
        return df.copy(deep=False) if keep.all() else df[keep]

    def purchases(self, as_of: Any = None) -> pd.DataFrame:
        """Every order before ``as_of`` (all when None), one row per order, refunds before ``as_of``
        netted onto it; refunds whose order is not in the data stay rows of their own (negative
        net, ``is_order`` False), so revenue reconciles to the cent. Columns
        :data:`PURCHASE_COLUMNS`; amounts in the base currency; sorted by time then key.

        The views of the last few dates are kept (models and segments ask for the same dates again)."""
        cutoff = to_utc(as_of)
        if cutoff not in self._purchases:
            while len(self._purchases) >= _PURCHASES_KEPT:
                self._purchases.pop(next(iter(self._purchases)))
            self._purchases[cutoff] = net_purchases(self.table("orders", as_of=cutoff),
                                                    self.table("refunds", as_of=cutoff))
        return self._purchases[cutoff].copy(deep=False)   # copy-on-write: a caller's change stays its own

    def memo(self, key: Any, make: Any) -> Any:
        """``make()``, computed once per layer and ``key`` and kept with the cached tables — for facts
        derived from whole tables (codes, sort orders) that views at many as-of dates reuse."""
        if key not in self._derived:
            self._derived[key] = make()
        return self._derived[key]


_PURCHASES_KEPT = 6


def net_purchases(orders: pd.DataFrame, refunds: pd.DataFrame) -> pd.DataFrame:
    """The purchases view of :meth:`CanonicalLayer.purchases` from its two tables (already cut at a date).

    >>> o = pd.DataFrame({"oneid": ["a"], "record_id": ["s:f:1"], "channel": ["s"], "sales_channel": ["store"],
    ...                   "order_key": ["s:1"], "ordered_at": pd.to_datetime(["2026-01-01"], utc=True),
    ...                   "status": ["paid"], "is_order": [True], "category": ["x"], "gross": [100.0]})
    >>> r = pd.DataFrame({"oneid": ["a", "b"], "record_id": ["s:f:2", "s:f:3"], "channel": ["r", "r"],
    ...                   "order_key": ["s:1", "r:9"], "refunded_at": pd.to_datetime(["2026-01-05", "2026-01-06"], utc=True),
    ...                   "amount": [30.0, 5.0], "matched": [True, False]})
    >>> net_purchases(o, r)[["oneid", "status", "is_order", "net"]].values.tolist()
    [['a', 'refunded', True, 70.0], ['b', 'return_without_order', False, -5.0]]
    """
    known = refunds["matched"].to_numpy(bool) & string_isin(refunds["order_key"], orders["order_key"])
    on = refunds[known].groupby("order_key", sort=False).agg(refund=("amount", "sum"), refunded_at=("refunded_at", "max"))
    o = orders.join(on, on="order_key")
    refund = o["refund"].fillna(0.0).to_numpy(float)
    gross = o["gross"].to_numpy(float)
    status = np.where(o["status"].to_numpy(object) == "cancelled", "cancelled",
                      np.where((refund > 0) | (o["status"].to_numpy(object) == "refunded"), "refunded", "paid"))
    rows = pd.DataFrame({"oneid": o["oneid"], "record_id": o["record_id"], "channel": o["channel"],
                         "sales_channel": o["sales_channel"], "order_key": o["order_key"],
                         "ordered_at": o["ordered_at"], "status": status, "is_order": o["is_order"].to_numpy(bool),
                         "category": o["category"], "gross": gross, "refund": refund, "net": gross - refund,
                         "refunded_at": o["refunded_at"]})
    orphans = refunds[~known]
    amount = orphans["amount"].to_numpy(float)
    rows_o = pd.DataFrame({"oneid": orphans["oneid"], "record_id": orphans["record_id"], "channel": orphans["channel"],
                           "sales_channel": orphans["sales_channel"].fillna(orphans["channel"])
                           if "sales_channel" in orphans else orphans["channel"], "order_key": orphans["order_key"],
                           "ordered_at": orphans["refunded_at"], "status": "return_without_order", "is_order": False,
                           "category": pd.NA, "gross": 0.0, "refund": amount, "net": -amount,
                           "refunded_at": orphans["refunded_at"]})
    tx = pd.concat([rows, rows_o], ignore_index=True) if len(rows_o) else rows
    for c in ("oneid", "record_id", "channel", "sales_channel", "order_key", "status", "category"):
        tx[c] = tx[c].astype("string")
    tx["is_order"] = tx["is_order"].astype(bool)
    tx["refunded_at"] = pd.to_datetime(tx["refunded_at"], utc=True)
    return tx.sort_values(["ordered_at", "order_key"], kind="stable").reset_index(drop=True)[list(PURCHASE_COLUMNS)]


def load_canonical(paths: Paths | None = None) -> CanonicalLayer:
    """The canonical layer written by :func:`run_canonical` (tables are read when first asked for)."""
    layer = CanonicalLayer(paths or get_paths())
    _ = layer.manifest  # fail early with what to run
    return layer


def totals_from_cleaned(paths: Paths, mappings: dict[str, ChannelMapping], *, as_of: Any = None) -> dict[str, float]:
    """Net revenue, paid orders and cancelled orders straight from the cleaned tables, without the
    canonical layer's netting logic — an independent check of it.

    Net revenue = the amounts of every orders row that is not cancelled − their refund amounts −
    the absolute amounts of every returns row (each before ``as_of`` by its own time). Orders
    are counted by distinct order key.
    """
    from ..clean import load_cleaned

    cutoff = to_utc(as_of)
    net, orders, cancelled = 0.0, 0, 0
    for c, m in mappings.items():
        if m.role not in ("orders", "returns"):
            continue
        time_col = "ordered_at" if m.role == "orders" else "returned_at"
        wanted = [time_col, "amount"] if m.role == "returns" else \
            ["record_id", time_col, "amount", "status", "refund_amount", *m.key_fields]
        df = load_cleaned(c, paths, columns=list(dict.fromkeys(wanted)))   # only what the totals read
        t = df[time_col]
        if cutoff is not None:
            df = df[(t < cutoff).fillna(False).to_numpy(bool)]
        if m.role == "returns":
            net -= float(df["amount"].abs().sum())
            continue
        status = df["status"].astype("string").fillna("paid") if "status" in df.columns else pd.Series("paid", index=df.index)
        paid = df[(status != "cancelled").to_numpy(bool)]
        net += float(paid["amount"].sum())
        if "refund_amount" in paid.columns:
            net -= float(paid["refund_amount"].abs().sum())
        keys = order_keys(df, m)
        per_order = pd.DataFrame({"key": keys, "cancelled": (status == "cancelled").to_numpy(bool)})
        all_cancelled = per_order.groupby("key")["cancelled"].all()
        orders += int((~all_cancelled).sum())
        cancelled += int(all_cancelled.sum())
    return {"net_revenue": round(net, 2), "orders": orders, "cancelled_orders": cancelled}
