"""Probabilistic linking (Fellegi–Sunter with Splink on DuckDB) between deterministic components.

Records with no shared strong identifier — a till receipt with a name and a phone tail, a
Tmall buyer known only by nick, receiver name, address and masked phone — end up in small
*unanchored* components. Each component gets a profile (its most frequent name key, phone
tail, address key, city, birth date) and Splink scores profile pairs:

- u probabilities from random sampling (seeded), m probabilities by EM on each blocking rule;
- the prior — the probability that two random profiles match — is **re-estimated on every
  table** from deterministic rules (same phone tail and name), so it shrinks as the table
  grows and a fixed posterior threshold keeps its meaning instead of over-merging;
- guards bound clusters: only an unanchored component is ever attached, by exactly one link
  — to its best known person above the threshold, else to its best unknown component. With
  one outgoing link per unknown component and none from known persons, every group of
  linked components holds at most one known person, so two known persons are never merged
  by fuzzy evidence however the links chain. A known person receives at most
  ``max_links_per_person`` direct attachments (the best ones).
"""

from __future__ import annotations

import gc
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .observations import ATTRIBUTE_COLUMNS
from .settings import IdentitySettings


def component_profiles(labels: np.ndarray, attrs: pd.DataFrame, anchored: np.ndarray) -> pd.DataFrame:
    """One row per component: the most frequent value of each attribute, anchored flag, size.

    ``attrs`` has one row per record (aligned with ``labels``) or, with a ``rec`` column, rows
    only for the records that carry fuzzy evidence.
    """
    df = attrs.drop(columns="rec") if "rec" in attrs else attrs.copy()
    df["component"] = labels[attrs["rec"].to_numpy()] if "rec" in attrs else labels
    prof = pd.DataFrame(index=pd.Index(np.unique(labels), name="component"))
    for col in ATTRIBUTE_COLUMNS:
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
    merges: pd.DataFrame        # component_a (unanchored), component_b, match_weight, match_probability
    candidates: int             # scored pairs above the threshold before guards
    prior: float                # estimated probability two random profiles match
    threshold: float
    scored_pairs: pd.DataFrame  # every scored pair (for the weight histogram)


def _comparisons(settings: IdentitySettings, present: list[str]):
    import splink.comparison_library as cl

    out = []
    for name in present:
        spec = settings.attributes[name]
        if spec.comparison == "jaro_winkler":
            c = cl.JaroWinklerAtThresholds(name, spec.thresholds or [0.92, 0.8])
        elif spec.comparison == "levenshtein":
            c = cl.LevenshteinAtThresholds(name, [int(t) for t in (spec.thresholds or [1, 2])])
        else:
            c = cl.ExactMatch(name)
        out.append(c.configure(term_frequency_adjustments=True) if spec.term_frequency else c)
    return out


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


def _splink_predictions(df: pd.DataFrame, present: list[str], rules: list[list[str]], settings: IdentitySettings,
                        con) -> tuple[pd.DataFrame, float] | None:
    """Splink's scored pairs of the profiles ``df`` (u by random sampling, the matches taken out
    of it, m by EM per blocking rule) and the prior, on the DuckDB connection ``con``; None when
    no pair agrees on the prior's rules."""
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    db = DuckDBAPI(connection=con)
    creator = SettingsCreator(
        link_type="dedupe_only",
        comparisons=_comparisons(settings, present),
        blocking_rules_to_generate_predictions=[block_on(*r) for r in rules],
        retain_matching_columns=False, additional_columns_to_retain=["anchored"],
    )
    linker = Linker(db.register(df), creator, log_level=logging.ERROR)
    for c in present:
        if settings.attributes[c].term_frequency:
            linker.table_management.register_term_frequency_lookup(db.register(_pair_excluded_tf(df[c])), c)
    # the prior from deterministic rules on *this* table (shrinks as the table grows)
    det_rules = [block_on(*r) for r in rules if len(r) >= 2] or [block_on(*rules[0])]
    try:
        linker.training.estimate_probability_two_random_records_match(det_rules, recall=0.8)
    except (ValueError, ZeroDivisionError):  # no pair agrees on the rules: no fuzzy evidence to weigh
        return None
    linker.training.estimate_u_using_random_sampling(max_pairs=2e6, seed=settings.random_seed)
    for r in rules:
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(block_on(*r))
        except Exception:  # a rule that fixes every comparison cannot train them: skip it
            continue
    prior = float(linker._settings_obj._probability_two_random_records_match)
    _remove_matches_from_u(linker._settings_obj.comparisons, prior, max_pairs=2e6)
    return linker.inference.predict(threshold_match_weight=-5).as_pandas_dataframe(), prior


def link_probabilistic(profiles: pd.DataFrame, settings: IdentitySettings) -> ProbabilisticResult:
    """Score profile pairs with Splink and pick guarded merges."""
    empty = pd.DataFrame(columns=["component_a", "component_b", "match_weight", "match_probability"])
    present = [c for c in settings.attributes if c in profiles and profiles[c].notna().sum() > 1]
    rules = [r for r in settings.blocking_rules if all(c in present for c in r)]
    unanchored = profiles.index[~profiles["anchored"]]
    if not present or not rules or len(unanchored) == 0 or len(profiles) < 3:
        return ProbabilisticResult(empty, 0, float("nan"), settings.match_threshold, empty)
    # only profiles that carry at least one attribute take part
    df = profiles[profiles[present].notna().any(axis=1)][present + ["anchored"]].copy()
    df = df.reset_index().rename(columns={"component": "unique_id"})
    for c in present:
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
        predicted = _splink_predictions(df, present, rules, settings, con)
    finally:
        con.close()
        gc.collect()
    if predicted is None:
        return ProbabilisticResult(empty, 0, float("nan"), settings.match_threshold, empty)
    pred, prior = predicted
    pred = pred.rename(columns={"unique_id_l": "a", "unique_id_r": "b"})
    scored = pred[["a", "b", "match_weight", "match_probability"]].copy()
    above = pred[pred["match_probability"] >= settings.match_threshold]
    # orient each pair from an unanchored component to the other side; drop anchored-anchored
    left = above[~above["anchored_l"]].rename(columns={"a": "component_a", "b": "component_b"})
    right = above[~above["anchored_r"]].rename(columns={"b": "component_a", "a": "component_b"})
    cand = pd.concat([left, right], ignore_index=True)[["component_a", "component_b", "match_weight",
                                                         "match_probability"]]
    n_candidates = len(above)
    if cand.empty:
        return ProbabilisticResult(empty, n_candidates, prior, settings.match_threshold, scored)
    # each unanchored component takes one link: its best *known* person above the threshold,
    # else its best unknown component (ties: the smaller component id)
    anchored = profiles["anchored"]
    cand["to_known"] = cand["component_b"].map(anchored).astype(bool)
    cand = cand.sort_values(["component_a", "to_known", "match_weight", "component_b"],
                            ascending=[True, False, False, True], kind="stable").drop_duplicates("component_a")
    # at most max_links_per_person direct attachments per known person, the best ones
    direct = cand[cand["to_known"]].sort_values(["component_b", "match_weight"], ascending=[True, False],
                                                 kind="stable")
    direct = direct.groupby("component_b", sort=False).head(settings.max_links_per_person)
    cand = pd.concat([direct, cand[~cand["to_known"]]])
    merges = cand.drop(columns="to_known").sort_values(["component_a"]).reset_index(drop=True)
    return ProbabilisticResult(merges, n_candidates, prior, settings.match_threshold, scored)
