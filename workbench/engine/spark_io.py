"""Reading the canonical Parquet into Spark and bringing results back as the local engine's tables.

Example:
    >>> from workbench.engine import EngineSettings
    >>> from workbench.engine.session import spark_session
    >>> spark = spark_session(EngineSettings(engine="spark"))                  # doctest: +SKIP
    >>> register_canonical(spark, paths.canonical, ["orders", "refunds"])     # doctest: +SKIP
    >>> spark.sql("SELECT COUNT(*) FROM orders").first()[0]                    # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import pandas as pd

__all__ = ["register_canonical", "register_pandas", "to_pandas"]


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
    for c in times:
        s = pd.to_datetime(df[c])
        df[c] = (s.dt.tz_localize("UTC") if s.dt.tz is None else s.dt.tz_convert("UTC")).astype("datetime64[us, UTC]")
    for c in strings:
        df[c] = df[c].astype("string")
    return df
