"""Comparison kinds of the probabilistic stage, on Splink's comparison library.

Each fuzzy attribute of the settings has a kind (``AttributeSpec.comparison``); this module
turns the kinds into Splink comparisons (levels from :mod:`splink.comparison_level_library`,
term frequencies where asked), normalises the raw values of each kind, and derives blocking
rules, EM training rules and the prior's rules from the settings when they list none.

Levels per kind (first that holds; a null on either side is "no evidence"):

==============  ====================================================================
kind            levels
==============  ====================================================================
exact           exact (term frequency optional), else
jaro_winkler    exact, Jaro-Winkler >= each threshold (default 0.92, 0.8), else
levenshtein     exact, edit distance <= each threshold (default 1, 2), else
name            exact, Jaro-Winkler >= 0.92, 0.88, 0.7, else (Splink's NameComparison)
forename        as name, plus "swapped with the surname" after exact
surname         as name, plus "swapped with the forename" after exact
date            exact, day and month transposed, one character off, one of day/month/
                year off, <= 1 month, <= 1 year, <= 10 years apart, else
postcode        exact, one character off, same first ``thresholds[0]`` (3) characters, else
house_number    exact, else
address         exact, Jaro-Winkler >= 0.9, >= 0.8, else
numeric         exact, absolute difference <= each threshold (default 1, 5), else
(identifier)    a strong identifier with typos: exact, Damerau-Levenshtein <= 1, <= 2, else
==============  ====================================================================

Example:
    >>> from workbench.identity.settings import IdentitySettings
    >>> s = IdentitySettings.from_dict({"identifiers": [{"name": "ssn", "kind": "strong"}],
    ...     "attributes": {"first": {"comparison": "forename"}, "last": {"comparison": "surname"},
    ...                    "dob": {"comparison": "date"}}})
    >>> derived_blocking_rules(s, ["first", "last", "dob", "ssn"])
    [['first', 'last'], ['dob'], ['swap:first:last']]
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from .settings import IdentitySettings

#: kinds whose single value is specific enough to block on alone (derived rules)
_BLOCK_ALONE = ("date", "postcode", "levenshtein")
_NAME_KINDS = ("name", "forename", "surname")


def comparison_columns(settings: IdentitySettings, present: list[str]) -> list[str]:
    """Identifiers compared with typos that take part: only beside at least one attribute (a
    typed id alone is no evidence)."""
    if not any(c in settings.attributes for c in present):
        return []
    return [i.name for i in settings.identifiers if i.compares_typos and i.name in present]


def _swap_pair(settings: IdentitySettings, present: list[str]) -> tuple[str, str] | None:
    """The (forename, surname) attributes compared swapped: exactly one of each present."""
    fore = [c for c in present if c in settings.attributes and settings.attributes[c].comparison == "forename"]
    sur = [c for c in present if c in settings.attributes and settings.attributes[c].comparison == "surname"]
    return (fore[0], sur[0]) if len(fore) == 1 and len(sur) == 1 else None


def splink_comparisons(settings: IdentitySettings, present: list[str], *, dialect: str = "duckdb") -> list:
    """Splink comparisons for the attributes and typo-compared identifiers in ``present``, for
    the SQL ``dialect`` ("duckdb" or "spark": the same levels, written for that engine).

    >>> s = IdentitySettings.from_dict({"identifiers": [{"name": "member_id", "kind": "unique"}],
    ...     "attributes": {"dob": {"comparison": "date"}}})
    >>> [lv["sql_condition"] for lv in splink_comparisons(s, ["dob"], dialect="spark")[0]
    ...  .create_comparison_dict("spark")["comparison_levels"]][2][:36]
    'SUBSTRING(`dob_l`, 1, 4) = SUBSTRING'
    """
    if dialect not in ("duckdb", "spark"):
        raise ValueError(f"The 'dialect' parameter must be 'duckdb' or 'spark'. Got {dialect!r} instead.")
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl

    swap = _swap_pair(settings, present)
    out = []
    for name in present:
        if name not in settings.attributes:  # an identifier compared with typos
            out.append(cl.DamerauLevenshteinAtThresholds(name, [1, 2]))
            continue
        spec = settings.attributes[name]
        kind, th, tf = spec.comparison, spec.thresholds, spec.term_frequency
        if kind == "jaro_winkler":
            c = cl.JaroWinklerAtThresholds(name, th or [0.92, 0.8])
        elif kind == "levenshtein":
            c = cl.LevenshteinAtThresholds(name, [int(t) for t in (th or [1, 2])])
        elif kind in _NAME_KINDS:
            levels = [cll.NullLevel(name), _exact(cll, name, tf)]
            if swap is not None and name in swap:
                other = swap[1] if name == swap[0] else swap[0]
                levels.append(cll.CustomLevel(f'"{name}_l" = "{other}_r" AND "{name}_r" = "{other}_l"',
                                              label_for_charts=f"{name} and {other} swapped",
                                              base_dialect_str="duckdb"))
            levels += [cll.JaroWinklerLevel(name, t) for t in (th or [0.92, 0.88, 0.7])]
            c = cl.CustomComparison(levels + [cll.ElseLevel()], output_column_name=name)
            tf = False  # on the exact level already
        elif kind == "date":
            c = _date_comparison(cll, cl, name, dialect)
        elif kind == "postcode":
            n = int((th or [3])[0])
            c = cl.CustomComparison([
                cll.NullLevel(name), _exact(cll, name, tf), cll.DamerauLevenshteinLevel(name, 1),
                cll.CustomLevel(f'substr("{name}_l", 1, {n}) = substr("{name}_r", 1, {n})',
                                label_for_charts=f"first {n} characters", base_dialect_str="duckdb"),
                cll.ElseLevel()], output_column_name=name)
            tf = False
        elif kind == "address":
            c = cl.JaroWinklerAtThresholds(name, th or [0.9, 0.8])
        elif kind == "numeric":
            c = cl.CustomComparison([cll.NullLevel(name), cll.ExactMatchLevel(name)]
                                    + [cll.AbsoluteDifferenceLevel(name, t) for t in (th or [1, 5])]
                                    + [cll.ElseLevel()], output_column_name=name)
            tf = False
        else:  # exact, house_number
            c = cl.ExactMatch(name)
        out.append(c.configure(term_frequency_adjustments=True) if tf else c)
    return out


def _exact(cll, name: str, tf: bool):
    level = cll.ExactMatchLevel(name)
    return level.configure(tf_adjustment_column=name) if tf else level


def _date_comparison(cll, cl, name: str, dialect: str = "duckdb"):
    """Dates as ``YYYY-MM-DD`` text (see :func:`normalise_values`); a typed date that is no
    calendar date (``1956-13-04``) still compares by its characters."""
    y, m, d = (f'substr("{name}_{{s}}", {a}, {b})' for a, b in ((1, 4), (6, 2), (9, 2)))

    def part(expr: str, side: str) -> str:
        return expr.format(s=side)

    transposed = (f"{part(y, 'l')} = {part(y, 'r')} AND {part(m, 'l')} = {part(d, 'r')} AND "
                  f"{part(d, 'l')} = {part(m, 'r')}")
    same = [f"{part(x, 'l')} = {part(x, 'r')}" for x in (y, m, d)]
    one_off = " OR ".join(f"({a} AND {b})" for a, b in ((same[0], same[1]), (same[0], same[2]), (same[1], same[2])))
    levels = [cll.NullLevel(name), cll.ExactMatchLevel(name),
              cll.CustomLevel(transposed, label_for_charts="day and month transposed", base_dialect_str="duckdb"),
              cll.DamerauLevenshteinLevel(name, 1).configure(label_for_charts="one character off"),
              cll.CustomLevel(one_off, label_for_charts="one of day, month, year off", base_dialect_str="duckdb")]
    for t, metric in ((1, "month"), (1, "year"), (10, "year")):
        levels.append(cll.AbsoluteDateDifferenceLevel(name, input_is_string=True, threshold=t, metric=metric,
                                                      datetime_format="%Y-%m-%d" if dialect == "duckdb" else "yyyy-MM-dd"))
    return cl.CustomComparison(levels + [cll.ElseLevel()], output_column_name=name)


# ----------------------------------------------------------------------------- values
def normalise_values(values: pd.Series, kind: str, *, where: str = "") -> pd.Series:
    """The text a comparison of ``kind`` compares (NA for missing values).

    >>> normalise_values(pd.Series(["19560409", "1956-4-9", "19561304", None, "x"]), "date").tolist()
    ['1956-04-09', '1956-04-09', '1956-13-04', <NA>, <NA>]
    >>> normalise_values(pd.Series([" Mc Carthy ", "ab 12 "]), "surname").tolist()
    ['mc carthy', 'ab 12']
    >>> normalise_values(pd.Series(["sw1a 1aa", "2119"]), "postcode").tolist()
    ['SW1A1AA', '2119']
    """
    s = values.astype("string").str.strip().replace("", pd.NA)
    if kind == "date":
        return _dates(s)
    if kind == "postcode":
        return s.str.upper().str.replace(r"\s+", "", regex=True)
    if kind == "numeric":
        num = pd.to_numeric(s, errors="coerce")
        bad = s.notna() & num.isna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise ValueError(f"{where}: a numeric attribute needs numbers; row {row} holds {s.iloc[row]!r} "
                             f"({int(bad.sum())} such values).")
        return num.map(lambda x: pd.NA if pd.isna(x) else repr(float(x))).astype("string")
    if kind in (*_NAME_KINDS, "address", "house_number"):
        return s.str.casefold().str.replace(r"\s+", " ", regex=True)
    return s


def _dates(s: pd.Series) -> pd.Series:
    """``YYYY-MM-DD``: eight digits are cut as year, month, day without checking the calendar
    (a typed 13th month stays comparable by its characters); other text is parsed as a date."""
    out = pd.Series(pd.NA, index=s.index, dtype="string")
    digits = s.str.fullmatch(r"\d{8}").fillna(False).to_numpy(bool)
    d = s[digits]
    out[digits] = d.str[:4] + "-" + d.str[4:6] + "-" + d.str[6:8]
    rest = s.notna().to_numpy() & ~digits
    if rest.any():
        parsed = pd.to_datetime(s[rest], errors="coerce", format="mixed")
        out[rest] = parsed.dt.strftime("%Y-%m-%d").astype("string")
    return out


# ----------------------------------------------------------------------------- derived rules
def derived_blocking_rules(settings: IdentitySettings, present: list[str]) -> list[list[str]]:
    """Blocking rules when the settings list none: each full name (forename and surname), each
    date, postcode and edit-distance attribute alone, a house number with its street, the
    swapped name; else every attribute alone. (Not an identifier: records that share one are
    one component already; a typo'd one is found by the other rules.) ``swap:<forename>:<surname>``
    stands for "forename = the other's surname and surname = the other's forename"."""
    kinds = {c: settings.attributes[c].comparison for c in present if c in settings.attributes}
    rules: list[list[str]] = []
    names = [c for c, k in kinds.items() if k in _NAME_KINDS]
    if names:
        rules.append(names[:2])
    rules += [[c] for c, k in kinds.items() if k in _BLOCK_ALONE]
    house = [c for c, k in kinds.items() if k == "house_number"]
    street = [c for c, k in kinds.items() if k == "address"]
    if house and street:
        rules.append([house[0], street[0]])
    swap = _swap_pair(settings, present)
    if swap is not None:
        rules.append([f"swap:{swap[0]}:{swap[1]}"])
    if not rules:
        rules = [[c] for c in kinds]
    return rules


def splink_rule(rule: list[str]):
    """A Splink blocking rule from a rule of the settings (a list of columns that agree)."""
    from splink import block_on

    if len(rule) == 1 and rule[0].startswith("swap:"):
        from splink.blocking_rule_library import CustomRule

        _, a, b = rule[0].split(":")
        return CustomRule(f'l."{a}" = r."{b}" AND l."{b}" = r."{a}"', sql_dialect="duckdb")
    return block_on(*rule)


def em_rules(rules: list[list[str]], compared: list[str]) -> list[list[str]]:
    """The fewest blocking rules (in order, most specific first) whose EM sessions together
    train every comparison: a rule trains each comparison it does not fix.

    >>> em_rules([["a", "b"], ["d"], ["e"]], ["a", "b", "d", "e"])
    [['d'], ['e']]
    """
    plain = [r for r in rules if not r[0].startswith("swap:")]
    single = [r for r in plain if len(r) == 1] + [r for r in plain if len(r) > 1]
    chosen, trained = [], set()
    for r in single:
        gain = set(compared) - set(r) - trained
        if gain:
            chosen.append(r)
            trained |= gain
        if trained >= set(compared):
            break
    return chosen


def prior_rules(settings: IdentitySettings, rules: list[list[str]], present: list[str]) -> list[list[str]]:
    """Rules nearly every pair they catch is a match, for the prior: the names with the date;
    else the configured rules of two columns or more (as before), else the first rule. (An
    identifier alone catches no pair: records that share one are one component already.)"""
    kinds = {c: settings.attributes[c].comparison for c in present if c in settings.attributes}
    names = [c for c, k in kinds.items() if k in _NAME_KINDS][:2]
    dates = [c for c, k in kinds.items() if k == "date"][:1]
    out = [names + dates] if names and dates else []
    if out:
        return out
    plain = [r for r in rules if not r[0].startswith("swap:")]
    return [r for r in plain if len(r) >= 2] or plain[:1]


def contribution_columns(columns) -> list[str]:
    """The per-comparison match weight columns of Splink's predictions (``mw_<name>``, also
    the term-frequency adjustments ``mw_tf_adj_<name>``)."""
    return [c for c in columns if re.match(r"^mw_", c)]


def compare_values(settings: IdentitySettings, left: dict, right: dict) -> dict[str, str]:
    """The comparison level each attribute (and typo-compared identifier) of two records falls
    in, by its label — what the probabilistic stage sees of the pair, without training.

    ``left`` and ``right`` map attribute names to raw values (normalised here as the stage
    does); attributes missing from either are compared as nulls.

    >>> s = IdentitySettings.from_dict({"identifiers": [{"name": "ssn", "kind": "strong"}],
    ...     "attributes": {"dob": {"comparison": "date"}}})
    >>> compare_values(s, {"dob": "19560409", "ssn": "1804974"}, {"dob": "19560904", "ssn": "1804947"})
    {'dob': 'day and month transposed', 'ssn': 'Damerau-Levenshtein distance of ssn <= 1'}
    """
    import duckdb

    present = list(settings.attributes) + [i.name for i in settings.identifiers if i.compares_typos]
    row = {}
    for name in present:
        kind = settings.attributes[name].comparison if name in settings.attributes else "exact"
        for side, rec in (("l", left), ("r", right)):
            v = normalise_values(pd.Series([rec.get(name)], dtype="string"), kind, where=f"compare_values {name!r}")
            v = v.iloc[0]
            row[f"{name}_{side}"] = [None if pd.isna(v) else (float(v) if kind == "numeric" else str(v))]
    comparisons = [c.get_comparison("duckdb") for c in splink_comparisons(settings, present)]
    out = {}
    con = duckdb.connect()
    try:
        con.register("pair", pd.DataFrame(row))
        for name, comp in zip(present, comparisons):
            levels = comp.comparison_levels
            case = "CASE " + " ".join(lv._when_then_comparison_vector_value_sql for lv in levels) + " END"
            value = con.sql(f"SELECT {case} FROM pair").fetchall()[0][0]
            out[name] = next(lv.label_for_charts for lv in levels if lv.comparison_vector_value == value)
    finally:
        con.close()
    return out
