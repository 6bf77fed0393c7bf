"""RFM on the Spark engine: the purchases view, the RFM summary, scores and segments as Spark SQL
(the shared rules ``purchases.sql``, ``rfm_summary.sql``, ``rfm_scores.sql``).

:func:`spark_rfm_segments` returns the table :func:`workbench.segments.rfm.rfm_segments` returns
for the canonical layer's purchases (index ``oneid``, the same columns and types), so the RFM
stage writes the same ``rfm_segments.parquet`` whichever engine ran.

Example:
    >>> spark = spark_session(EngineSettings(engine="spark"))                          # doctest: +SKIP
    >>> rfm = spark_rfm_segments(spark, paths.canonical, as_of="2026-06-01",
    ...                          population=profile["oneid"])                           # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..segments.rfm import SegmentMap
from ..timeutil import to_utc
from .spark_io import drops_temporary_views, register_canonical, register_pandas, to_pandas
from .sql import rule, string_literal, timestamp_literal

__all__ = ["register_cutoffs", "spark_purchases", "spark_rfm_segments"]

_PURCHASE_STRINGS = ("oneid", "record_id", "channel", "sales_channel", "order_key", "status", "category")


def register_cutoffs(spark: Any, cutoffs: list[Any]) -> list[pd.Timestamp | None]:
    """The view ``cutoffs`` (cutoff_id = position, cutoff: a UTC instant, or NULL for no cutoff)."""
    when = [to_utc(c) for c in cutoffs]
    rows = pd.DataFrame({"cutoff_id": np.arange(len(when), dtype="int32"),
                         "cutoff": [None if c is None else c.tz_convert("UTC").tz_localize(None).to_pydatetime()
                                    for c in when]})
    spark.createDataFrame(rows.astype({"cutoff": object}), schema="cutoff_id INT, cutoff TIMESTAMP_NTZ") \
        .selectExpr("cutoff_id", "CAST(cutoff AS TIMESTAMP) AS cutoff").createOrReplaceTempView("cutoffs")
    return when


def spark_purchases(spark: Any, canonical_dir: str | Path, *, as_of: Any = None, collect: bool = True) -> Any:
    """The purchases view (:meth:`workbench.canonical.CanonicalLayer.purchases`) at ``as_of`` on Spark:
    a pandas table with the same columns, sorted by time then order key (``collect=False``: the
    Spark DataFrame, unsorted, with ``cutoff_id`` 0, for further SQL)."""
    register_canonical(spark, canonical_dir, ["orders", "refunds"])
    register_cutoffs(spark, [as_of])
    sdf = spark.sql(rule("purchases"))
    if not collect:
        return sdf
    df = to_pandas(sdf.drop("cutoff_id").orderBy("ordered_at", "order_key"), times=("ordered_at", "refunded_at"),
                   strings=_PURCHASE_STRINGS)
    df["is_order"] = df["is_order"].astype(bool)
    return df


@drops_temporary_views
def spark_rfm_segments(spark: Any, canonical_dir: str | Path, *, as_of: Any, population: pd.Series,
                       segment_map: SegmentMap) -> pd.DataFrame:
    """RFM summary, scores and segment of every OneID of ``population`` (and every buyer) at
    ``as_of``, from the canonical layer's orders and refunds, computed by Spark.

    The result equals ``rfm_segments(layer.purchases(as_of), customer_id_col="oneid",
    datetime_col="ordered_at", monetary_value_col="net", order_id_col="order_key", as_of=as_of,
    customers=population, segment_map=segment_map)`` (tests/test_spark_engine.py pins it).
    """
    if not isinstance(segment_map, SegmentMap):
        raise TypeError(f"The 'segment_map' parameter must be a SegmentMap. Got {type(segment_map).__name__} instead.")
    cutoff = to_utc(as_of)
    if cutoff is None:
        raise ValueError(f"The 'as_of' parameter must be a date or time. Got {as_of!r} instead.")
    # each view is read by several parts of the next query: kept once in memory (spilled to disk
    # when large) rather than recomputed from the Parquet for each
    purchases = spark_purchases(spark, canonical_dir, as_of=cutoff, collect=False).persist()
    purchases.createOrReplaceTempView("purchases")
    who = pd.DataFrame({"oneid": pd.Series(population, dtype="string").dropna().unique()})
    register_pandas(spark, "population", who, schema="oneid STRING")
    cells = [(r, f, s.name) for s in segment_map.segments for r in s.r for f in s.f]
    register_pandas(spark, "segment_map", pd.DataFrame(cells, columns=["r", "f", "segment"]),
                    schema="r INT, f INT, segment STRING")
    summary = spark.sql(rule("rfm_summary", as_of=timestamp_literal(cutoff))).persist()
    summary.createOrReplaceTempView("summary")
    sdf = spark.sql(rule("rfm_scores", bins=segment_map.bins, no_purchase=string_literal(segment_map.no_purchase)))
    try:
        df = to_pandas(sdf, times=("first_purchase", "last_purchase"), strings=("oneid",))
    finally:
        summary.unpersist()
        purchases.unpersist()
    return _as_local(df, cutoff, segment_map)


def _as_local(df: pd.DataFrame, cutoff: pd.Timestamp, m: SegmentMap) -> pd.DataFrame:
    """The Spark result in the local engine's shape: index ``oneid`` (sorted), its dtypes and attrs."""
    df = df.sort_values("oneid", kind="stable").set_index("oneid")
    out = pd.DataFrame({"recency_days": df["recency_days"].astype("float64"),
                        "frequency": df["frequency"].astype("int64"),
                        "monetary": df["monetary"].astype("float64"),
                        "first_purchase": df["first_purchase"], "last_purchase": df["last_purchase"]},
                       index=df.index)
    for c in ("r_score", "f_score", "m_score"):
        out[c] = pd.array(df[c].to_numpy(dtype="float64", na_value=np.nan), dtype="Int64")
    cell = out["r_score"].astype("string") + out["f_score"].astype("string") + out["m_score"].astype("string")
    out["rfm_cell"] = cell.astype("str")      # as rfm_scores writes it (the rule's rfm_cell, NA as rfm_scores shows it)
    out["segment"] = pd.Categorical(df["segment"].to_numpy(object), categories=list(m.order), ordered=True)
    out.index.name = "oneid"
    out.attrs = {"as_of": cutoff, "rfm_bins": m.bins}
    return out
