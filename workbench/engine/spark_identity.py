"""OneID's heavy steps on Spark: the deterministic graph and the probabilistic stage's all-pairs scoring.

What grows with the data runs as Spark SQL; the rest stays the identity stage's own code:

- **deterministic** (:func:`spark_link_deterministic`): the record–value edges go to Spark once;
  connected components (``identity_components_step.sql``, min-label propagation with pointer
  jumping, no GraphFrames) and the tier-by-tier per-value person limits
  (``identity_over_limit.sql``) run there. The few components that hold two values of a unique
  identifier are split on the driver by the local engine's own
  :func:`~workbench.identity.deterministic.split_unique_conflicts`, called on their records alone.
- **probabilistic** (:func:`spark_predict`): the model is trained on the component profiles by the
  local engine (DuckDB; the profiles fit the driver) and handed over as Splink's settings JSON;
  Splink's Spark backend scores every blocked pair. The pairs above the threshold are few: the
  local engine clusters them and applies the cluster guards.

The equality tests (``tests/test_spark_identity.py``) pin both to the local engine: the same
partition of records into persons, the same over-limit values and conflicts.

Example:
    >>> from workbench.engine import EngineSettings
    >>> from workbench.engine.session import spark_session
    >>> from workbench.identity import resolve_tables
    >>> spark = spark_session(EngineSettings(engine="spark"))                      # doctest: +SKIP
    >>> res = resolve_tables(tables, settings, engine=EngineSettings(engine="spark"))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from ..identity.deterministic import (DeterministicResult, components, deterministic_result, encode_values,
                                      over_limit_report, split_unique_conflicts)
from ..identity.settings import IdentitySettings
from .spark_io import drops_temporary_views, register_pandas, to_pandas
from .sql import rule

__all__ = ["spark_components", "spark_link_deterministic", "spark_predict"]

#: the tiers of the deterministic stage, strongest first (identifiers of each kind are trusted in turn)
TIERS = ("unique", "strong", "weak")


def spark_components(spark: Any, edges_view: str, *, start_view: str | None = None, max_steps: int = 200) -> Any:
    """Connected components of the record–value edges in the view ``edges_view`` (``rec``,
    ``vcode``): a Spark DataFrame (``rec``, ``label``) with one row per record that has an edge,
    ``label`` the smallest record of its component. Also left as the view ``cc_result``.

    ``start_view`` (``rec``, ``label``): labels to start from — those of a graph with fewer edges
    (each label is still a record of the same component, so the steps only finish the work).
    Only the graph's core iterates (``identity_components_core.sql``: records with two or more
    linking values); each step (``identity_components_step.sql``) is materialised (local
    checkpoint) so the plan does not grow with the steps, until a step changes no label; then
    the leaves and lone records are put back (``identity_components_attach.sql``).

    >>> labels = spark_components(spark, "kept_edges").toPandas()     # doctest: +SKIP
    """
    if not isinstance(max_steps, int) or max_steps < 1:
        raise ValueError(f"The 'max_steps' parameter must be a positive integer. Got {max_steps!r} instead.")
    spark.sql(f"SELECT rec, vcode FROM {edges_view}").createOrReplaceTempView("cc_all_edges")
    spark.sql(rule("identity_components_core")).localCheckpoint().createOrReplaceTempView("cc_edges")
    # a start label must be a core record of the same component (labels point at core records)
    start = (f"WITH core AS (SELECT DISTINCT rec FROM cc_edges), seed AS (SELECT s.rec, s.label FROM {start_view} s "
             "JOIN core c ON s.label = c.rec) SELECT c.rec, COALESCE(MIN(d.label), c.rec) AS label FROM core c "
             "LEFT JOIN seed d ON c.rec = d.rec GROUP BY c.rec") if start_view else \
        "SELECT DISTINCT rec, rec AS label FROM cc_edges"
    labels = spark.sql(start).localCheckpoint()
    for _ in range(max_steps):
        labels.createOrReplaceTempView("cc_labels")
        labels = spark.sql(rule("identity_components_step")).localCheckpoint()
        if labels.where("changed").limit(1).count() == 0:
            break
    else:
        raise RuntimeError(f"Connected components did not settle in {max_steps} steps (edges: {edges_view}).")
    labels.select("rec", "label").createOrReplaceTempView("cc_labels")
    labels = spark.sql(rule("identity_components_attach")).localCheckpoint()
    labels.createOrReplaceTempView("cc_result")
    return labels


def _labels_array(labels: Any, n_records: int) -> np.ndarray:
    """The local engine's labels (0..k-1, components numbered by their smallest record) from
    Spark's (``rec``, smallest record of the component); records without an edge are alone."""
    got = to_pandas(labels)
    lab = np.arange(n_records, dtype=np.int64)
    lab[got["rec"].to_numpy(np.int64)] = got["label"].to_numpy(np.int64)
    return pd.factorize(lab)[0]


@drops_temporary_views
def spark_link_deterministic(spark: Any, n_records: int, ids: pd.DataFrame,
                             settings: IdentitySettings) -> DeterministicResult:
    """:func:`workbench.identity.deterministic.link_deterministic` with the graph on Spark: the
    same result (labels, kept edges in the same order, over-limit values, conflicts).

    ``ids`` are the identifier observations (``rec``, ``identifier``, ``value``).

    >>> det = spark_link_deterministic(spark, len(records), ids, settings)     # doctest: +SKIP
    """
    if not isinstance(settings, IdentitySettings):
        raise TypeError(f"The 'settings' parameter must be IdentitySettings. Got {type(settings).__name__} instead.")
    vcode, values = encode_values(ids)
    names = [i.name for i in settings.identifiers]
    code_of = {n: k for k, n in enumerate(names)}
    # per observation the identifier's code and tier, through the identifier's categories (a few
    # names), not a Python string per observation (the driver's peak at 200k persons, 5.4 GB)
    ident = ids["identifier"].astype("category")
    seen = [str(c) for c in ident.cat.categories]
    codes = ident.cat.codes.to_numpy()
    used = np.unique(codes[codes >= 0])
    unknown = sorted({seen[k] for k in used} - set(code_of)) + (["<missing>"] if (codes < 0).any() else [])
    if unknown:
        raise ValueError(f"Observed identifiers {unknown} are not in the identity settings ({names}).")
    tier_of = {i.name: TIERS.index(i.kind) for i in settings.identifiers}
    tier_code = np.array([tier_of.get(n, -1) for n in seen], dtype=np.int32)[codes]
    ids = pd.DataFrame({"rec": ids["rec"].to_numpy(), "identifier": ids["identifier"], "vcode": vcode})
    max_persons = {i.name: i.max_persons for i in settings.identifiers}
    register_pandas(spark, "id_edges", pd.DataFrame({
        "rec": ids["rec"].to_numpy(np.int64),
        "identifier": np.array([code_of.get(n, -1) for n in seen], dtype=np.int32)[codes],
        "vcode": vcode.astype(np.int64), "tier": tier_code}))
    spark.table("id_edges").localCheckpoint().createOrReplaceTempView("id_edges")
    register_pandas(spark, "limits", pd.DataFrame({"identifier": np.arange(len(names), dtype=np.int32),
                                                   "max_persons": [int(max_persons[n]) for n in names]}))
    register_pandas(spark, "over_values", pd.DataFrame({"vcode": pd.Series([], dtype="int64")}), schema="vcode BIGINT")
    over_rows, over_values, over_codes = [], [], []
    spark.sql("SELECT rec, identifier, vcode FROM id_edges WHERE tier = 0").createOrReplaceTempView("kept_edges")
    spark_components(spark, "kept_edges")
    for t in range(1, len(TIERS)):
        spark.sql(f"SELECT rec, identifier, vcode FROM id_edges WHERE tier = {t}").createOrReplaceTempView("tier_edges")
        over = to_pandas(spark.sql(rule("identity_over_limit")))
        if len(over):
            tier_edges = ids[tier_code == t]
            persons = pd.Series(over["persons"].to_numpy(np.int64), index=over["vcode"].to_numpy(np.int64))
            report, shown = over_limit_report(tier_edges, persons, values, max_persons)
            over_rows.append(report)
            over_values.append(shown)
            over_codes.append(over["vcode"].to_numpy(np.int64))
            register_pandas(spark, "over_values", pd.DataFrame({"vcode": np.concatenate(over_codes)}),
                            schema="vcode BIGINT")
        spark.sql(f"SELECT e.rec, e.identifier, e.vcode FROM id_edges e LEFT ANTI JOIN over_values o "
                  f"ON e.vcode = o.vcode WHERE e.tier <= {t}").localCheckpoint().createOrReplaceTempView("kept_edges")
        spark.table("cc_result").localCheckpoint().createOrReplaceTempView("cc_before")
        cc = spark_components(spark, "kept_edges", start_view="cc_before")
    labels = _labels_array(cc, n_records)
    # the kept edges on the driver, in the local engine's order (tier by tier, observations' order)
    dropped = np.isin(vcode, np.concatenate(over_codes)) if over_codes else np.zeros(len(ids), bool)
    kept = pd.concat([ids[(tier_code == t) & ~dropped] for t in range(len(TIERS))], ignore_index=True)
    kept, labels, conflicts = _split_conflicts_on_driver(kept, labels, settings, len(values))
    return deterministic_result(labels, kept, over_rows, over_values, conflicts, values, vcode)


def _split_conflicts_on_driver(kept: pd.DataFrame, labels: np.ndarray, settings: IdentitySettings,
                               n_values: int) -> tuple[pd.DataFrame, np.ndarray, list[dict]]:
    """The components holding two values of a unique identifier (few), split by the local
    engine's :func:`split_unique_conflicts` on their records alone; the rest is untouched."""
    unique = kept[kept["identifier"].isin(settings.names_of_kind("unique")).to_numpy()]
    per = pd.DataFrame({"c": labels[unique["rec"].to_numpy()], "v": unique["vcode"].to_numpy()}).drop_duplicates()
    n_unique = per.groupby("c").size()
    bad = n_unique[n_unique > 1].index.to_numpy()
    if bad.size == 0:
        return kept, labels, []
    recs = np.flatnonzero(np.isin(labels, bad))                    # sorted: the subset keeps the records' order
    sub = kept[np.isin(labels[kept["rec"].to_numpy()], bad)]
    sub = sub.assign(rec=np.searchsorted(recs, sub["rec"].to_numpy()))
    sub_labels = components(len(recs), sub["rec"].to_numpy(), sub["vcode"].to_numpy(), n_values)
    still, new_labels, conflicts = split_unique_conflicts(len(recs), sub, sub_labels, settings, n_values=n_values)
    kept = kept.drop(index=sub.index.difference(still.index))
    lab = labels.astype(np.int64)
    lab[recs] = lab.max() + 1 + new_labels
    return kept, pd.factorize(lab)[0], conflicts


@drops_temporary_views
def spark_predict(spark: Any, model: Callable[[str], dict], profiles: pd.DataFrame, term_frequencies: dict[str, pd.DataFrame], *,
                  threshold: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score every blocked pair of ``profiles`` with the trained Splink model on Splink's Spark
    backend; ``model("spark")`` gives it as Splink settings written in Spark SQL
    (:func:`workbench.identity.probabilistic.trained_model_in`).

    ``term_frequencies`` (attribute -> its lookup table, ``attribute``, ``tf_attribute``) are the
    ones the model was trained with. Returns the scored pairs (``unique_id_l``, ``unique_id_r``,
    ``match_weight``, ``match_probability``, ``anchored_l``, ``anchored_r``; match weight >= -5,
    as the local engine keeps) and, for the pairs at or above ``threshold``, each comparison's
    match weight (``a``, ``b``, ``mw_*``), both sorted by the pair.

    >>> pred, contrib = spark_predict(spark, lambda d: trained_model_in(trained, s, cols, rules, dialect=d),
    ...                               profiles, {}, threshold=0.9)                       # doctest: +SKIP
    """
    import logging

    from splink import Linker
    from splink.backends.spark import SparkAPI

    from ..identity.comparisons import contribution_columns

    if not callable(model):
        raise TypeError("The 'model' parameter must be a function of the SQL dialect giving the trained model. "
                        f"Got {type(model).__name__} instead.")
    if not 0 <= float(threshold) <= 1:
        raise ValueError(f"The 'threshold' parameter must be a probability in [0, 1]. Got {threshold!r} instead.")
    db = SparkAPI(spark_session=spark, break_lineage_method="persist")
    linker = Linker(db.register(profiles), model("spark"), log_level=logging.ERROR)
    for column, table in term_frequencies.items():
        linker.table_management.register_term_frequency_lookup(db.register(table), column)
    scored = linker.inference.predict(threshold_match_weight=-5).as_spark_dataframe()
    scored.persist()
    try:
        core = ["unique_id_l", "unique_id_r", "match_weight", "match_probability", "anchored_l", "anchored_r"]
        pred = to_pandas(scored.select(*core)).sort_values(["unique_id_l", "unique_id_r"], kind="stable")
        mw = contribution_columns(scored.columns)
        contrib = (to_pandas(scored.where(scored["match_probability"] >= float(threshold))
                             .select("unique_id_l", "unique_id_r", *mw))
                   .rename(columns={"unique_id_l": "a", "unique_id_r": "b"}).sort_values(["a", "b"], kind="stable"))
    finally:
        scored.unpersist()
    return pred.reset_index(drop=True), contrib.reset_index(drop=True)
