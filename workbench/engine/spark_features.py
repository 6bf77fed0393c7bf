"""The models' order features at every cutoff in one Spark pass (shared rules ``purchases.sql``
and ``rfm_features.sql``).

:func:`spark_rfm_features` gives, per cutoff, the table
:func:`workbench.models.dataset.rfm_features` gives for the canonical layer's paid orders as
:func:`~workbench.models.dataset.build_features` asks for them (observed from the earliest
purchases row, or from the OneID's first record when later) — the order block of the model
features, for all training and scoring cutoffs at once.

Example:
    >>> feats = spark_rfm_features(spark, paths.canonical, cutoffs=["2026-03-01", "2026-06-01"])  # doctest: +SKIP
    >>> feats[pd.Timestamp("2026-06-01", tz="UTC")]["orders_90d"].sum()                          # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from ..models.dataset import RFM_WINDOWS
from .spark_io import register_canonical, to_pandas
from .spark_rfm import register_cutoffs
from .sql import rule

__all__ = ["spark_rfm_features"]


def _windows(windows: Sequence[int]) -> str:
    parts = []
    for w in windows:
        since = f"cutoff - INTERVAL {int(w)} DAYS"
        parts.append(f"CAST(COUNT_IF(ts >= {since}) AS DOUBLE) AS orders_{int(w)}d")
        parts.append(f"COALESCE(SUM(CASE WHEN ts >= {since} THEN value END), 0.0) AS revenue_{int(w)}d")
    return ",\n           ".join(parts)


def spark_rfm_features(spark: Any, canonical_dir: str | Path, *, cutoffs: Sequence[Any],
                       windows: Sequence[int] = RFM_WINDOWS) -> dict[pd.Timestamp, pd.DataFrame]:
    """Order features per OneID at each of ``cutoffs`` (UTC instants), computed in one Spark job:
    ``{cutoff: table}``, each table indexed by ``oneid`` (sorted) with rfm_features' columns.

    >>> spark_rfm_features(None, ".", cutoffs=[])
    Traceback (most recent call last):
    ...
    ValueError: The 'cutoffs' parameter must list at least one date. Got [] instead.
    """
    if not len(cutoffs) or any(c is None for c in cutoffs):
        raise ValueError(f"The 'cutoffs' parameter must list at least one date. Got {list(cutoffs)!r} instead.")
    if not windows or not all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in windows):
        raise ValueError(f"The 'windows' parameter must list positive whole numbers of days. Got {windows!r} instead.")
    register_canonical(spark, canonical_dir, ["orders", "refunds", "records"])
    when = register_cutoffs(spark, list(cutoffs))
    purchases = spark.sql(rule("purchases")).persist()   # read twice (orders, observation start)
    purchases.createOrReplaceTempView("purchases")
    sdf = spark.sql(rule("rfm_features", windows=_windows(windows)))
    try:
        df = to_pandas(sdf.orderBy("cutoff_id", "oneid"), strings=("oneid",))
    finally:
        purchases.unpersist()
    out = {}
    for i, c in enumerate(when):
        part = df[df["cutoff_id"] == i].drop(columns="cutoff_id").set_index("oneid")
        part.index.name = "oneid"
        out[c] = part.astype("float64")
    return out
