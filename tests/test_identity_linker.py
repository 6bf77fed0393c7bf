"""OneID as a general record linker (issue 15): comparison kinds, cluster-level guards,
typo'd strong identifiers, explained links, errors on unknown attributes.

Cost: one small resolution with Splink training (~600 records, a few seconds); the rest
evaluates comparison levels in DuckDB without training."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.identity import IdentitySettings, SettingsError, explain, resolve_records, resolve_tables
from workbench.identity.comparisons import compare_values, derived_blocking_rules, em_rules
from workbench.identity.probabilistic import cluster_with_guards
from workbench.identity.settings import SourceSpec

KINDS = IdentitySettings.from_dict({
    "identifiers": [{"name": "ssn", "kind": "strong"}, {"name": "card", "kind": "unique"}],
    "attributes": {"first": {"comparison": "forename", "term_frequency": True}, "last": {"comparison": "surname"},
                   "dob": {"comparison": "date"}, "pc": {"comparison": "postcode"},
                   "no": {"comparison": "house_number"}, "street": {"comparison": "address"},
                   "city": {"comparison": "exact"}, "age": {"comparison": "numeric"},
                   "nick": {"comparison": "jaro_winkler"}, "code": {"comparison": "levenshtein"},
                   "nm": {"comparison": "name"}}})


@pytest.mark.parametrize("left, right, expected", [
    # person names: exact, swapped forename/surname, Jaro-Winkler levels, null
    ({"first": "Anna", "last": "Smith"}, {"first": "anna ", "last": "smith"},
     {"first": "Exact match on first", "last": "Exact match on last"}),
    ({"first": "anna", "last": "smith"}, {"first": "smith", "last": "anna"},
     {"first": "first and last swapped", "last": "last and first swapped"}),
    ({"first": "jonathan", "last": "smith"}, {"first": "jonathon", "last": "smyth"},
     {"first": "Jaro-Winkler distance of first >= 0.92", "last": "Jaro-Winkler distance of last >= 0.88"}),
    ({"nm": "li"}, {}, {"nm": "nm is NULL"}),
    # dates: exact (two formats), transposed day/month, one character, one field, a month, ten years
    ({"dob": "19560409"}, {"dob": "1956-04-09"}, {"dob": "Exact match on dob"}),
    ({"dob": "19560409"}, {"dob": "19560904"}, {"dob": "day and month transposed"}),
    ({"dob": "19560409"}, {"dob": "19560408"}, {"dob": "one character off"}),
    ({"dob": "19560409"}, {"dob": "19561109"}, {"dob": "one of day, month, year off"}),
    ({"dob": "19560409"}, {"dob": "19560501"}, {"dob": "Abs difference of 'transformed dob <= 1 month'"}),
    ({"dob": "19560409"}, {"dob": "19571230"}, {"dob": "Abs difference of 'transformed dob <= 10 year'"}),
    ({"dob": "19560409"}, {"dob": "19800101"}, {"dob": "All other comparisons"}),
    # postcodes: full (spaces and case aside), one character, prefix
    ({"pc": "sw1a 1aa"}, {"pc": "SW1A1AA"}, {"pc": "Exact match on pc"}),
    ({"pc": "2119"}, {"pc": "2191"}, {"pc": "Damerau-Levenshtein distance of pc <= 1"}),
    ({"pc": "SW1A1AA"}, {"pc": "SW1A2BB"}, {"pc": "first 3 characters"}),
    ({"pc": "2119"}, {"pc": "3000"}, {"pc": "All other comparisons"}),
    # house numbers, free address text, exact, numeric distance, Jaro-Winkler, Levenshtein
    ({"no": "7"}, {"no": "7"}, {"no": "Exact match on no"}),
    ({"no": "7"}, {"no": "17"}, {"no": "All other comparisons"}),
    ({"street": "wallaby place"}, {"street": "wallaby  pl"}, {"street": "Jaro-Winkler distance of street >= 0.9"}),
    ({"city": "Sydney"}, {"city": "Sydney"}, {"city": "Exact match on city"}),
    ({"city": "Sydney"}, {"city": "Perth"}, {"city": "All other comparisons"}),
    ({"age": "30"}, {"age": "31"}, {"age": "Absolute difference of 'age' <= 1"}),
    ({"age": "30"}, {"age": "34.5"}, {"age": "Absolute difference of 'age' <= 5"}),
    ({"age": "30"}, {"age": "40"}, {"age": "All other comparisons"}),
    ({"nick": "martha"}, {"nick": "marhta"}, {"nick": "Jaro-Winkler distance of nick >= 0.92"}),
    ({"code": "abcd"}, {"code": "abdd"}, {"code": "Levenshtein distance of code <= 1"}),
    # a strong identifier one or two characters off is fuzzy evidence; a unique one is not compared
    ({"ssn": "1234567"}, {"ssn": "1234576"}, {"ssn": "Damerau-Levenshtein distance of ssn <= 1"}),
    ({"ssn": "1234567"}, {"ssn": "1243576"}, {"ssn": "Damerau-Levenshtein distance of ssn <= 2"}),
    ({"ssn": "1234567"}, {"ssn": "7654321"}, {"ssn": "All other comparisons"}),
])
def test_each_comparison_kind_puts_a_pair_in_its_level(left, right, expected):
    got = compare_values(KINDS, left, right)
    assert {k: got[k] for k in expected} == expected
    assert "card" not in got


def test_a_numeric_attribute_with_text_names_source_column_and_row():
    s = IdentitySettings.from_dict({"identifiers": [{"name": "id", "kind": "unique"}],
                                    "attributes": {"age": {"comparison": "numeric"}}})
    df = pd.DataFrame({"years": ["31", "40", "forty", None]})
    with pytest.raises(ValueError, match=r"Identity source 'table', column 'years': a numeric attribute needs numbers; "
                                         r"row 2 holds 'forty'"):
        resolve_records(df, identifiers={}, attributes={"years": "age"}, settings=s)


def test_derived_rules_block_on_names_dates_postcodes_and_train_every_comparison():
    present = ["first", "last", "dob", "pc", "no", "street", "ssn"]
    rules = derived_blocking_rules(KINDS, present)
    assert rules == [["first", "last"], ["dob"], ["pc"], ["no", "street"], ["swap:first:last"]]
    chosen = em_rules(rules, present)
    trained = set()
    for r in chosen:
        trained |= set(present) - set(r)
    assert trained == set(present) and len(chosen) == 2


def test_cluster_guard_cuts_a_fuzzy_chain_between_two_member_ids_at_its_weakest_link():
    # M1 - a - b - c - M2: every link is above the threshold; the weakest (a-b) is cut
    edges = pd.DataFrame({"a": [0, 1, 2, 3], "b": [1, 2, 3, 4], "match_weight": [12.0, 7.5, 11.0, 9.0]})
    unique = pd.DataFrame({"component": [0, 4], "value": [101, 202]})
    labels, cut = cluster_with_guards(edges, 6, unique, max_growth=25)
    assert labels[0] == labels[1] and labels[2] == labels[3] == labels[4] and labels[0] != labels[4]
    assert cut == 1 and labels[5] not in labels[:5]
    # the same chain without member ids is one cluster; with a growth cap of 2 links, it is split
    assert len(set(cluster_with_guards(edges, 6, unique.iloc[:0], 25)[0][:5])) == 1
    capped, cut = cluster_with_guards(edges, 6, unique.iloc[:0], max_growth=2)
    assert np.bincount(capped).max() == 3 and cut == 1


def _people(n: int, seed: int) -> pd.DataFrame:
    """``n`` persons, two records each: the second has small typos in names or date, and for a
    third of the persons a typed id number with two digits swapped."""
    rng = np.random.default_rng(seed)
    first = rng.choice(["anna", "ben", "chloe", "david", "emma", "felix", "grace", "henry", "isla", "jack",
                        "kate", "liam", "mia", "noah", "olivia", "paul", "ruby", "sam", "tara", "will"], n)
    last = np.array([f"{a}{b}" for a, b in zip(rng.choice(["mac", "o'", "van ", "de ", "", "fitz"], n),
                                                 rng.choice(["smith", "jones", "brown", "taylor", "wilson", "evans",
                                                             "thomas", "roberts", "walker", "wright", "green",
                                                             "hall", "wood", "clark", "baker", "king"], n))])
    dob = pd.to_datetime("1940-01-01") + pd.to_timedelta(rng.integers(0, 20000, n), unit="D")
    base = pd.DataFrame({"person": np.arange(n), "first": first, "last": last, "dob": dob.strftime("%Y%m%d"),
                         "pc": rng.integers(2000, 2400, n).astype(str), "ssn": rng.integers(10**6, 10**7, n).astype(str)})
    dup = base.copy()
    swap = rng.random(n) < 1 / 3
    dup.loc[swap, "ssn"] = [s[:3] + s[4] + s[3] + s[5:] for s in dup.loc[swap, "ssn"]]
    typo = rng.random(n) < 0.3
    dup.loc[typo, "first"] = dup.loc[typo, "first"].str[:-1] + "x"
    flip = rng.random(n) < 0.1
    dup.loc[flip, "dob"] = dup.loc[flip, "dob"].str[:4] + dup.loc[flip, "dob"].str[6:8] + dup.loc[flip, "dob"].str[4:6]
    out = pd.concat([base, dup], ignore_index=True)
    out["swapped_id"] = np.r_[np.zeros(n, bool), swap & (base["ssn"] != dup["ssn"])]
    return out


LINKER = {"identifiers": [{"name": "card", "kind": "unique"}, {"name": "ssn", "kind": "strong"}],
          "attributes": {"first": {"comparison": "forename", "term_frequency": True},
                         "last": {"comparison": "surname", "term_frequency": True},
                         "dob": {"comparison": "date"}, "pc": {"comparison": "postcode"}}}


def test_typod_strong_ids_link_as_fuzzy_evidence_but_two_member_ids_never_join_and_links_are_explained():
    people = _people(300, seed=3)
    # twins: every attribute alike, two member cards; a third record, no card, alike too
    twin = {"first": "zoe", "last": "quixote", "dob": "19800101", "pc": "2999"}
    extra = pd.DataFrame([{**twin, "card": "C1", "ssn": "9000001", "person": -1},
                          {**twin, "card": "C2", "ssn": "9000002", "person": -2},
                          {**twin, "card": None, "ssn": None, "person": -1}])
    df = pd.concat([people.assign(card=None), extra], ignore_index=True)
    df["rid"] = [f"r{i}" for i in range(len(df))]
    res = resolve_records(df, identifiers={"card": "card", "ssn": "ssn"},
                          attributes={c: c for c in ("first", "last", "dob", "pc")},
                          settings=IdentitySettings.from_dict(LINKER), record_id="rid")
    oneid = res.records.set_index("record_id")["oneid"].reindex(df["rid"]).to_numpy()
    n = len(people) // 2
    # a typed id two digits off is no conflict: those persons' two records are one OneID
    swapped = np.flatnonzero(df["swapped_id"].to_numpy())
    assert len(swapped) > 60
    same = oneid[swapped] == oneid[swapped - n]
    assert same.mean() >= 0.95, same.mean()
    # no two persons share a OneID, and the twins' member ids stay apart
    per_id = pd.Series(df["person"].to_numpy()).groupby(oneid).nunique()
    assert per_id.max() == 1
    tw = oneid[-3:]
    assert tw[0] != tw[1] and tw[2] in (tw[0], tw[1])
    assert res.probabilistic["links_cut_by_guards"] >= 1
    # explain: each comparison's match weight on a fuzzy link, adding up to the link's weight
    recs, links = explain(oneid[swapped[0]], res)
    fuzzy = links[links["how"] == "probabilistic"]
    assert len(recs) == 2 and len(fuzzy) == 1
    parts = [c for c in fuzzy.columns if c.startswith("mw_")]
    assert {"mw_first", "mw_last", "mw_dob", "mw_pc", "mw_ssn"} <= set(parts)
    prior = res.probabilistic["prior"]
    total = fuzzy[parts].sum(axis=1).iloc[0] + np.log2(prior / (1 - prior))
    assert total == pytest.approx(fuzzy["match_weight"].iloc[0], abs=1e-6)
    assert fuzzy["mw_ssn"].iloc[0] > 0, "a swapped-digit id counts for the match"


def test_an_attribute_no_source_provides_is_an_error():
    s = IdentitySettings.from_dict(LINKER)
    df = pd.DataFrame({"f": ["a"], "l": ["b"], "d": ["19800101"]})
    with pytest.raises(SettingsError, match=r"list the attributes \['pc'\], which no source provides"):
        resolve_records(df, identifiers={}, attributes={"f": "first", "l": "last", "d": "dob"}, settings=s)


def test_a_source_attribute_the_settings_do_not_know_is_an_error():
    s = IdentitySettings.from_dict(LINKER)
    df = pd.DataFrame({"f": ["a"], "l": ["b"], "d": ["19800101"], "p": ["2000"], "x": ["?"]})
    spec = SourceSpec(attributes={"f": "first", "l": "last", "d": "dob", "p": "pc", "x": "shoe_size"})
    with pytest.raises(SettingsError, match=r"column 'x': unknown attribute 'shoe_size'"):
        resolve_tables({"t": df}, s, sources={"t": spec})


@pytest.mark.parametrize("change, message", [
    ({"attributes": {"x": {"comparison": "soundex"}}}, r"comparison must be one of \[.*'forename'.*\]. Got 'soundex'"),
    ({"identifiers": [{"name": "cookie", "kind": "weak", "typos": True}]}, r"only a strong identifier can take typos"),
    ({"attributes": {"ssn": {"comparison": "exact"}}, "identifiers": [{"name": "ssn", "kind": "strong"}]},
     r"named both as identifiers and as attributes"),
    ({"attributes": {"pc": {"comparison": "postcode", "thresholds": [2.5]}}}, r"positive whole numbers. Got 2.5"),
])
def test_bad_linker_settings_say_what_was_expected(change, message):
    d = {"identifiers": [{"name": "card", "kind": "unique"}], **change}
    with pytest.raises(SettingsError, match=message):
        IdentitySettings.from_dict(d)


def test_linker_settings_round_trip():
    s = IdentitySettings.from_dict({**LINKER, "identifiers": [{"name": "ssn", "kind": "strong", "typos": False}]})
    assert IdentitySettings.from_dict(s.to_dict()) == s
    assert not s.identifier("ssn").compares_typos
