"""Probabilistic linking (Fellegi–Sunter with Splink on DuckDB) between deterministic components.

Records with no shared strong identifier — a till receipt with a name and a phone tail, a
Tmall buyer known only by nick, receiver name, address and masked phone, a FEBRL record whose
id number has a typo — are linked by their fuzzy attributes. Each deterministic component
gets a profile (its most frequent value of each attribute and of each identifier compared
with typos) and Splink scores profile pairs with the comparison kinds of the settings
(:mod:`workbench.identity.comparisons`):

- u probabilities from random sampling (seeded), with the matches taken out; m by EM on
  blocking rules (the settings' or derived from them); the prior — the probability that two
  random profiles match — **re-estimated on every table**, so it shrinks as the table grows
  and a fixed posterior threshold keeps its meaning instead of over-merging;
- pairs at or above the threshold are clustered by connected components, then the guards
  hold at cluster level: a cluster may not hold two different values of a ``unique``
  identifier, nor more than ``max_links_per_person + 1`` components joined by fuzzy links in
  one run. A cluster that breaks a guard is rebuilt from its links strongest first, each link
  taken only if the guards still hold: the weakest links are the ones cut. A strong
  identifier compared with typos never conflicts: a differing phone or id number is
  evidence against, weighed with the rest; one not compared (``typos: false``) keeps two
  persons it tells apart apart, like a unique one.
"""

from __future__ import annotations

import copy
import gc
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .comparisons import (comparison_columns, contribution_columns, derived_blocking_rules, em_rules, prior_rules,
                          splink_comparisons, splink_rule)
from .settings import IdentitySettings

#: scores the pairs of the profiles with a trained model: (model, profiles, term-frequency tables,
#: threshold=) -> (scored pairs, per-comparison weights of the pairs >= threshold); ``model(dialect)``
#: is the trained model as Splink settings in that SQL dialect (:func:`trained_model_in`)
Predictor = Callable[..., tuple[pd.DataFrame, pd.DataFrame]]


def component_profiles(labels: np.ndarray, attrs: pd.DataFrame, anchored: np.ndarray) -> pd.DataFrame:
    """One row per component: the most frequent value of each attribute (every column of
    ``attrs`` but ``rec``), anchored flag, size.

    ``attrs`` has one row per record (aligned with ``labels``) or, with a ``rec`` column, rows
    only for the records that carry fuzzy evidence.
    """
    df = attrs.drop(columns="rec") if "rec" in attrs else attrs.copy()
    columns = list(df.columns)
    df["component"] = labels[attrs["rec"].to_numpy()] if "rec" in attrs else labels
    prof = pd.DataFrame(index=pd.Index(np.unique(labels), name="component"))
    if df["component"].is_unique:  # one record with evidence per component: its values are the profile
        prof = prof.join(df.set_index("component")[columns])
        columns = []
    for col in columns:
        v = df[["component", col]].dropna()
        if v.empty:
            prof[col] = pd.Series(pd.NA, index=prof.index, dtype="string")
            continue
        counts = v.groupby(["component", col], observed=True).size().rename("n").reset_index()
        counts = counts.sort_values(["component", "n", col], ascending=[True, False, True], kind="stable")
        prof[col] = counts.drop_duplicates("component").set_index("component")[col].reindex(prof.index)
    anch = pd.Series(anchored, index=labels).groupby(level=0).max()
    prof["anchored"] = anch.reindex(prof.index).fillna(False).astype(bool)
    prof["records"] = pd.Series(labels).value_counts().reindex(prof.index).to_numpy()
    return prof


@dataclass
class ProbabilisticResult:
    merges: pd.DataFrame        # component_a, component_b, match_weight, match_probability (links kept)
    candidates: int             # scored pairs above the threshold before guards
    prior: float                # estimated probability two random profiles match
    threshold: float
    scored_pairs: pd.DataFrame  # every scored pair (for the weight histogram)
    cut: int = 0                # links above the threshold cut by the cluster guards
    contributions: pd.DataFrame | None = None  # a, b, then the match weight of each comparison (kept links)


def _pair_excluded_tf(values: pd.Series) -> pd.DataFrame:
    """Term frequencies that leave the compared pair out: ``(count - 2) / n`` for values held by
    three or more profiles; rarer values are not listed, so they take the attribute's general
    u probability.

    Plain term frequencies (``count / n``) cannot go below ``1 / n``: on the sample's 31,000
    profiles a phone tail seen exactly twice — the piece and its owner — counts as about ten
    times more common among strangers than tails are (u, once the matches are taken out of
    it, is about 1 / 170,000), and a true match loses most of its weight. Leaving the pair
    out keeps the penalty where it belongs: on values many *other* profiles share (a common
    name, a shop's phone).

    >>> _pair_excluded_tf(pd.Series(["a", "a", "b", "b", "b", "b", None, "c"], name="city")).to_dict("records")
    [{'city': 'b', 'tf_city': 0.2857142857142857}]
    """
    v = values.dropna()
    counts = v.value_counts()
    counts = counts[counts >= 3].sort_index()
    name = values.name
    return pd.DataFrame({name: counts.index.astype(object), f"tf_{name}": (counts.to_numpy() - 2) / max(len(v), 1)})


def _remove_matches_from_u(comparisons, prior: float, *, max_pairs: float) -> None:
    """Take the true matches out of u probabilities estimated by random sampling (in place).

    u is P(agree | non-match), but random pairs include matches: a fraction ``prior`` of them,
    agreeing with probability m. Splink assumes that share is negligible; for a rare,
    reliable value it is not — on the sample most random pairs that agree on a phone tail
    are the same person, and the raw u made a shared tail look 5× more common among
    strangers than it is. Corrected: ``u' = (u - prior * m) / (1 - prior)``, never below one
    sampled pair (``1 / max_pairs``); the "all other" level takes what is left.
    """
    floor = 1.0 / max_pairs
    for comp in comparisons:
        levels = [lv for lv in comp.comparison_levels if not lv.is_null_level]
        agree = [lv for lv in levels if not lv._is_else_level]
        other = [lv for lv in levels if lv._is_else_level]
        if not other or any(lv.m_probability is None or lv.u_probability is None for lv in agree):
            continue
        for lv in agree:
            lv.u_probability = max((lv.u_probability - prior * lv.m_probability) / (1 - prior), floor)
        other[0].u_probability = max(1.0 - sum(lv.u_probability for lv in agree), floor)


def splink_settings(settings: IdentitySettings, present: list[str], rules: list[list[str]], *,
                    dialect: str = "duckdb"):
    """Splink's settings (untrained) of the probabilistic stage, in the SQL ``dialect``: the
    comparisons of ``present`` and the blocking ``rules``; the profile's ``anchored`` flag is kept."""
    from splink import SettingsCreator

    return SettingsCreator(
        link_type="dedupe_only",
        comparisons=splink_comparisons(settings, present, dialect=dialect),
        blocking_rules_to_generate_predictions=[splink_rule(r) for r in rules],
        retain_matching_columns=False, retain_intermediate_calculation_columns=True,
        additional_columns_to_retain=["anchored"],
    )


def trained_model_in(trained: dict, settings: IdentitySettings, present: list[str], rules: list[list[str]], *,
                     dialect: str) -> dict:
    """The model ``trained`` on DuckDB (Splink's settings JSON) written for another SQL
    ``dialect``: the same comparisons and rules built for that engine, with the trained m and u
    of every level and the prior. Splink does not translate a saved model's SQL itself.

    >>> s = IdentitySettings.from_dict({"identifiers": [{"name": "member_id", "kind": "unique"}],
    ...     "attributes": {"city": {"comparison": "exact"}}})
    >>> t = splink_settings(s, ["city"], [["city"]]).create_settings_dict("duckdb")
    >>> t["comparisons"][0]["comparison_levels"][1].update(m_probability=0.9, u_probability=0.01)
    >>> t["probability_two_random_records_match"] = 0.001
    >>> m = trained_model_in(t, s, ["city"], [["city"]], dialect="spark")
    >>> m["comparisons"][0]["comparison_levels"][1]["sql_condition"], m["probability_two_random_records_match"]
    ('`city_l` = `city_r`', 0.001)
    """
    out = splink_settings(settings, present, rules, dialect=dialect).create_settings_dict(dialect)
    theirs = trained["comparisons"]
    if [c.get("output_column_name") for c in out["comparisons"]] != [c.get("output_column_name") for c in theirs]:
        raise ValueError("The trained model's comparisons are not the settings' "
                         f"({[c.get('output_column_name') for c in theirs]}).")
    for mine, trained_comparison in zip(out["comparisons"], theirs):
        levels, trained_levels = mine["comparison_levels"], trained_comparison["comparison_levels"]
        if [lv.get("label_for_charts") for lv in levels] != [lv.get("label_for_charts") for lv in trained_levels]:
            raise ValueError(f"The trained model's levels of {mine.get('output_column_name')!r} are not the settings'.")
        for lv, tl in zip(levels, trained_levels):
            for key in ("m_probability", "u_probability"):
                if tl.get(key) is not None:
                    lv[key] = tl[key]
    out["probability_two_random_records_match"] = trained["probability_two_random_records_match"]
    return out


def _splink_predictions(df: pd.DataFrame, present: list[str], rules: list[list[str]], settings: IdentitySettings,
                        con, predict: Predictor | None = None) -> tuple[pd.DataFrame, pd.DataFrame, float] | None:
    """Splink's scored pairs of the profiles ``df`` (u by random sampling, the matches taken out
    of it, m by EM on rules that together train every comparison), the per-comparison match
    weights of the pairs at or above the threshold, and the prior, on the DuckDB connection
    ``con``; None when no pair agrees on the prior's rules. With ``predict``, the model is
    trained here and the pairs are scored by ``predict`` (e.g. on Spark)."""
    from splink import DuckDBAPI, Linker

    db = DuckDBAPI(connection=con)
    creator = splink_settings(settings, present, rules, dialect="duckdb")
    linker = Linker(db.register(df), creator, log_level=logging.ERROR)
    tf_tables = {c: _pair_excluded_tf(df[c]) for c in present
                 if c in settings.attributes and settings.attributes[c].term_frequency}
    for c, tf in tf_tables.items():
        linker.table_management.register_term_frequency_lookup(db.register(tf), c)
    # the prior from rules on *this* table (shrinks as the table grows)
    try:
        linker.training.estimate_probability_two_random_records_match(
            [splink_rule(r) for r in prior_rules(settings, rules, present)], recall=0.8)
    except (ValueError, ZeroDivisionError):  # no pair agrees on the rules: no fuzzy evidence to weigh
        return None
    if not 0 < float(linker._settings_obj._probability_two_random_records_match) < 1:
        return None  # the rules caught no pair between components
    # u from a sample of 20 pairs per profile, between 100,000 and 2 million pairs: Splink estimates
    # each comparison on its own and stops once every level has 100 observations, but a rare level
    # (a swapped name, a transposed date, an id two characters off) never gets there and takes
    # the whole sample: on a small table that sample, not the data, set the run time
    max_pairs = float(min(2e6, max(1e5, 20 * len(df))))
    # a small sample is read in one go per comparison (Splink's ten chunks and probe, there to
    # stop early on a large one, cost more SQL runs than the pairs)
    linker.training.estimate_u_using_random_sampling(max_pairs=max_pairs, seed=settings.random_seed,
                                                     num_chunks=1 if max_pairs <= 5e5 else 10)
    for r in (em_rules(rules, present) if not settings.blocking_rules else rules):
        saved = copy.deepcopy(linker._settings_obj.core_model_settings)
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(
                splink_rule(r), estimate_without_term_frequencies=True)
        except Exception:  # a rule that fixes every comparison cannot train them: skip it
            # (a failed session leaves the model without the comparisons its rule fixed)
            linker._settings_obj.core_model_settings = saved
            continue
    prior = float(linker._settings_obj._probability_two_random_records_match)
    _remove_matches_from_u(linker._settings_obj.comparisons, prior, max_pairs=max_pairs)
    if predict is not None:
        trained = linker.misc.save_model_to_json()

        def model(dialect: str) -> dict:
            return trained_model_in(trained, settings, present, rules, dialect=dialect)

        pred, contrib = predict(model, df, tf_tables, threshold=float(settings.match_threshold))
        return pred, contrib, prior
    rel = linker.inference.predict(threshold_match_weight=-5).as_duckdbpyrelation()
    core = ["unique_id_l", "unique_id_r", "match_weight", "match_probability", "anchored_l", "anchored_r"]
    pred = rel.select(*core).df()
    mw = contribution_columns(rel.columns)  # a match weight per comparison and term-frequency adjustment
    contrib = rel.filter(f"match_probability >= {float(settings.match_threshold)!r}").select(
        "unique_id_l", "unique_id_r", *mw).df().rename(columns={"unique_id_l": "a", "unique_id_r": "b"})
    return pred, contrib, prior


def cluster_with_guards(edges: pd.DataFrame, n: int, unique: pd.DataFrame, max_growth: int) -> tuple[np.ndarray, int]:
    """Cluster label per component from the links ``edges`` (``a``, ``b``, ``match_weight``),
    by connected components, with the guards at cluster level.

    ``unique`` (``component``, ``value``) lists the unique-identifier values each component
    holds. A cluster that would hold two different values, or more than ``max_growth + 1``
    components, is rebuilt from its links strongest first (ties: smaller ids first), each
    link taken only if the guards still hold — a chain of fuzzy links that would join two
    member ids is cut at its weakest link. Returns (labels, links cut).

    >>> e = pd.DataFrame({"a": [0, 1, 2], "b": [1, 2, 3], "match_weight": [9.0, 3.0, 8.0]})
    >>> labels, cut = cluster_with_guards(e, 4, pd.DataFrame({"component": [0, 3], "value": [10, 11]}), 25)
    >>> labels.tolist(), cut
    ([0, 0, 1, 1], 1)
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    a, b = edges["a"].to_numpy(np.int64), edges["b"].to_numpy(np.int64)
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    labels = connected_components(graph, directed=False)[1]
    sizes = np.bincount(labels, minlength=n)
    held = pd.DataFrame({"c": labels[unique["component"].to_numpy(np.int64)], "v": unique["value"].to_numpy()})
    held = held.drop_duplicates()
    redo = set(held.loc[held["c"].duplicated(), "c"].tolist()) | set(np.flatnonzero(sizes > max_growth + 1).tolist())
    if not redo:
        return labels, 0
    in_redo = np.isin(labels[a], list(redo))
    sub = edges[in_redo].sort_values(["match_weight", "a", "b"], ascending=[False, True, True], kind="stable")
    values: dict[int, frozenset] = {}
    for c, v in zip(unique["component"].to_numpy(np.int64), unique["value"].to_numpy()):
        if labels[c] in redo:
            values[c] = values.get(c, frozenset()) | {v}
    parent: dict[int, int] = {}
    count: dict[int, int] = {}

    def find(x: int) -> int:
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(x, x) != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    cut = 0
    for x, y in zip(sub["a"].to_numpy(np.int64), sub["b"].to_numpy(np.int64)):
        rx, ry = find(int(x)), find(int(y))
        if rx == ry:
            continue
        vx, vy = values.get(rx, frozenset()), values.get(ry, frozenset())
        if (vx and vy and vx != vy) or count.get(rx, 1) + count.get(ry, 1) > max_growth + 1:
            cut += 1
            continue
        parent[ry] = rx
        count[rx] = count.get(rx, 1) + count.get(ry, 1)
        values[rx] = vx | vy
    # the rebuilt clusters take fresh labels after the untouched ones
    members = np.flatnonzero(np.isin(labels, list(redo)))
    roots = np.array([find(int(m)) for m in members])
    labels = labels.copy()
    labels[members] = n + pd.factorize(roots)[0]
    return pd.factorize(labels)[0], cut


def link_probabilistic(profiles: pd.DataFrame, settings: IdentitySettings,
                       unique: pd.DataFrame | None = None, *, predict: Predictor | None = None) -> ProbabilisticResult:
    """Score profile pairs with Splink and keep the links of the guarded clusters.

    ``unique`` (``component``, ``value``): the identifier values of each component no cluster
    may hold two of (unique identifiers, strong ones not compared with typos). ``predict``
    scores the pairs with the trained model instead of DuckDB (the Spark engine's
    :func:`workbench.engine.spark_identity.spark_predict`): ``predict(model, profiles,
    term_frequency_tables, threshold=...)`` -> (scored pairs, contributions), ``model(dialect)``
    the trained model as Splink settings for that SQL dialect."""
    empty = pd.DataFrame(columns=["component_a", "component_b", "match_weight", "match_probability"])
    attr_cols = [c for c in settings.attributes if c in profiles and profiles[c].notna().sum() > 1]
    typo_ids = [c for c in comparison_columns(settings, attr_cols + list(profiles.columns))
                if profiles[c].notna().sum() > 1]
    present = attr_cols + typo_ids
    rules = [r for r in settings.blocking_rules if all(c in present for c in r)] if settings.blocking_rules \
        else derived_blocking_rules(settings, present)
    if not any(c in settings.attributes for c in present) or not rules or len(profiles) < 3:
        return ProbabilisticResult(empty, 0, float("nan"), settings.match_threshold, empty)
    # only profiles that carry at least one attribute take part
    df = profiles[profiles[attr_cols].notna().any(axis=1)][present + ["anchored"]].copy()
    df = df.reset_index().rename(columns={"component": "unique_id"})
    for c in present:
        if c in settings.attributes and settings.attributes[c].comparison == "numeric":
            df[c] = pd.to_numeric(df[c]).astype(float)
        else:
            df[c] = df[c].astype(object).where(df[c].notna(), None)
    for name in ("splink", "splink.internals"):
        logging.getLogger(name).setLevel(logging.ERROR)
    import duckdb

    # one DuckDB thread: its parallel sums made the EM's weights differ in the last bits and the
    # scored pairs come out in another order from run to run; one thread is reproducible to
    # the byte (and no slower on two cores: the tables are small). Splink's linker and the
    # DuckDB tables it registered sit in reference cycles: the connection is closed and they are
    # collected here, not whenever the collector runs next — in a child of a process that
    # forked workers meanwhile, freeing them crashed the child.
    con = duckdb.connect(config={"threads": 1})
    try:
        predicted = _splink_predictions(df, present, rules, settings, con, predict)
    finally:
        con.close()
        gc.collect()
    if predicted is None:
        return ProbabilisticResult(empty, 0, float("nan"), settings.match_threshold, empty)
    pred, contrib, prior = predicted
    pred = pred.rename(columns={"unique_id_l": "a", "unique_id_r": "b"})
    scored = pred[["a", "b", "match_weight", "match_probability"]].copy()
    above = pred[pred["match_probability"] >= settings.match_threshold][["a", "b", "match_weight",
                                                                         "match_probability"]]
    n_candidates = len(above)
    if above.empty:
        return ProbabilisticResult(empty, 0, prior, settings.match_threshold, scored)
    n = int(profiles.index.max()) + 1
    unique = unique if unique is not None else pd.DataFrame({"component": [], "value": []})
    labels, cut = cluster_with_guards(above, n, unique, settings.max_links_per_person)
    kept = above[labels[above["a"].to_numpy()] == labels[above["b"].to_numpy()]]
    merges = kept.rename(columns={"a": "component_a", "b": "component_b"}).sort_values(
        ["component_a", "component_b"]).reset_index(drop=True)
    return ProbabilisticResult(merges, n_candidates, prior, settings.match_threshold, scored, cut, contrib)
