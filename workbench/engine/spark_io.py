"""Reading the canonical Parquet into Spark and bringing results back as the local engine's tables.

Example:
    >>> from workbench.engine import EngineSettings
    >>> from workbench.engine.session import spark_session
    >>> spark = spark_session(EngineSettings(engine="spark"))                  # doctest: +SKIP
    >>> register_canonical(spark, paths.canonical, ["orders", "refunds"])     # doctest: +SKIP
    >>> spark.sql("SELECT COUNT(*) FROM orders").first()[0]                    # doctest: +SKIP
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

__all__ = ["drops_temporary_views", "merge_parts", "register_canonical", "register_pandas", "temp_view_names",
           "temporary_views", "to_pandas"]


def temp_view_names(spark: Any) -> set[str]:
    """The session's temporary views (``SHOW VIEWS``: ``catalog.listTables`` fails when Spark runs
    interpreted, as the tests do)."""
    return {r["viewName"] for r in spark.sql("SHOW VIEWS").collect() if r["isTemporary"]}


@contextmanager
def temporary_views(spark: Any) -> Iterator[None]:
    """Drop, on leaving the block, every temporary view made inside it: a stage's views (tables,
    rule steps, populations) do not pile up in a long-lived session (a notebook's, the tests').
    Views that existed before the block are left alone (one the block replaced keeps its name).

    >>> with temporary_views(spark):                                                   # doctest: +SKIP
    ...     register_canonical(spark, paths.canonical, ["orders"])
    >>> "orders" in temp_view_names(spark)                                              # doctest: +SKIP
    False
    """
    before = temp_view_names(spark)
    try:
        yield
    finally:
        for name in sorted(temp_view_names(spark) - before):
            spark.catalog.dropTempView(name)


def drops_temporary_views(func: Callable) -> Callable:
    """Decorate a function whose first argument is the Spark session and whose result holds no
    lazy DataFrame: its temporary views are dropped when it returns (:func:`temporary_views`)."""
    @functools.wraps(func)
    def wrapper(spark: Any, *args: Any, **kwargs: Any) -> Any:
        with temporary_views(spark):
            return func(spark, *args, **kwargs)
    return wrapper


def register_canonical(spark: Any, canonical_dir: str | Path, names: Iterable[str]) -> None:
    """Each canonical table of ``names`` as a temporary view of the same name (read from its Parquet).

    A table the layer lacks raises FileNotFoundError saying which stage writes it."""
    for name in names:
        f = Path(canonical_dir) / f"{name}.parquet"
        if not f.exists():
            raise FileNotFoundError(f"{f} not found: build the canonical layer first (notebook 04_customer_360, "
                                    "or workbench.canonical.run_canonical).")
        spark.read.parquet(str(f)).createOrReplaceTempView(name)


def register_pandas(spark: Any, name: str, df: pd.DataFrame, schema: str | None = None) -> None:
    """A small pandas table (a population, a segment map) as the temporary view ``name``."""
    df = df.reset_index(drop=True)
    for c in df.columns:   # Arrow-backed / nullable extension strings as plain objects for Spark
        if pd.api.types.is_string_dtype(df[c].dtype):
            df[c] = df[c].astype(object).where(df[c].notna(), None)
    sdf = spark.createDataFrame(df, schema=schema) if len(df) or schema else spark.createDataFrame(df, schema=schema)
    sdf.createOrReplaceTempView(name)


def to_pandas(sdf: Any, *, times: Iterable[str] = (), strings: Iterable[str] = ()) -> pd.DataFrame:
    """A Spark result as pandas: ``times`` as UTC instants (``datetime64[us, UTC]``, the canonical
    tables' type), ``strings`` as pandas strings."""
    df = sdf.toPandas()
    df.attrs.clear()   # Spark Connect puts its plan metrics here; they are no data and do not go to Parquet
    for c in times:
        s = pd.to_datetime(df[c])
        df[c] = (s.dt.tz_localize("UTC") if s.dt.tz is None else s.dt.tz_convert("UTC")).astype("datetime64[us, UTC]")
    for c in strings:
        df[c] = df[c].astype("string")
    return df


def merge_parts(parts_dir: str | Path, target: str | Path, schema: Any, *, batch_rows: int = 1 << 20) -> int:
    """Copy the Parquet part files Spark wrote into ``parts_dir`` (in their name order: a sorted
    DataFrame's order) into the one file ``target``, cast to ``schema`` (an Arrow schema; its pandas
    metadata makes pandas read the local engine's dtypes). Streams ``batch_rows`` rows at a time:
    the table is never whole in memory. Returns the rows written.

    >>> import pyarrow as pa, pyarrow.parquet as pq, tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> pq.write_table(pa.table({"a": [1, 2]}), d / "part-00000.parquet")
    >>> pq.write_table(pa.table({"a": [3]}), d / "part-00001.parquet")
    >>> merge_parts(d, d / "all.parquet", pa.schema([("a", pa.float64())]))
    3
    >>> pq.read_table(d / "all.parquet")["a"].to_pylist()
    [1.0, 2.0, 3.0]
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = sorted(p for p in Path(parts_dir).glob("part-*") if p.name.endswith(".parquet"))
    rows = 0
    with pq.ParquetWriter(str(target), schema) as writer:
        for f in files:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=batch_rows, columns=schema.names):
                if batch.num_rows:
                    t = pa.Table.from_batches([batch]).select(schema.names).cast(schema)
                    writer.write_table(t)
                    rows += batch.num_rows
    return rows
