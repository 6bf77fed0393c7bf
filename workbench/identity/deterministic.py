"""Deterministic linking: records joined by shared identifier values, with guards.

The graph has a node per record and per identifier value; an edge says "this record carries
this value". Connected components (``scipy.sparse.csgraph``, linear in edges) are persons.
Before anything is merged:

1. **blocked values** never enter (done by :mod:`observations`: placeholders, block list);
2. **limits**: tier by tier (unique → strong → weak), a value seen with more distinct persons
   than its ``max_persons`` — persons counted by the identifiers of the stronger tiers: two
   member ids or two phones are two persons — is not used as a link and is reported (a
   family tablet used by two members links neither);
3. **unique conflicts**: a component holding two different values of a unique identifier
   (two member ids) is split at its weakest links — the lowest-priority identifier's edges
   inside it are dropped, repeatedly, until no conflict is left — and the conflict is logged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .settings import IdentitySettings


def components(n_records: int, rec: np.ndarray, node: np.ndarray, n_nodes: int) -> np.ndarray:
    """Component label per record of the bipartite record–value graph (labels 0..k-1).

    Labels are canonical: components are numbered in the order of their smallest record.
    """
    size = n_records + n_nodes
    a = coo_matrix((np.ones(len(rec), dtype=np.int8), (rec, n_records + node)), shape=(size, size))
    _, labels = connected_components(a, directed=False)
    # canonical: numbered in order of first appearance (one hash pass, no sort)
    return pd.factorize(labels[:n_records])[0]


def value_hash(values: pd.Series) -> pd.Series:
    """A short SHA-256 of identifier values for the evidence trail (never the value itself):
    the first 16 hex digits of the SHA-256 of the value's UTF-8 text, computed by DuckDB once
    per distinct value.

    >>> import hashlib
    >>> vals = ["+8613800138000", "ck_1", "ck_1"]
    >>> value_hash(pd.Series(vals)).tolist() == [hashlib.sha256(v.encode()).hexdigest()[:16] for v in vals]
    True
    """
    import duckdb
    import pyarrow as pa

    codes, uniq = pd.factorize(values.astype("str"))
    con = duckdb.connect()
    try:
        con.register("distinct_values", pa.table({"v": pa.array(uniq, type=pa.large_string())}))
        hashed = con.sql("SELECT left(sha256(v), 16) AS h FROM distinct_values").arrow()
        hashed = hashed.read_all() if hasattr(hashed, "read_all") else hashed  # DuckDB 2 gives a reader
    finally:
        con.close()
    out = pd.array(hashed.column("h").combine_chunks(), dtype="str") if len(uniq) else pd.array([], dtype="str")
    return pd.Series(out.take(codes), index=values.index)


@dataclass
class DeterministicResult:
    labels: np.ndarray          # component per record
    edges: pd.DataFrame         # kept (rec, identifier, value, vcode)
    over_limit: pd.DataFrame    # identifier, value_hash, persons, max_persons
    conflicts: pd.DataFrame     # component, unique values, identifier dropped, records
    over_limit_values: pd.DataFrame | None = None  # identifier, value (in memory only, never written)
    values: pd.Series | None = None  # the identifier value of each vcode (edges hold integer codes only)
    observation_codes: np.ndarray | None = None  # the vcode of each observation given (aligned with its rows)

    def links(self) -> pd.DataFrame:
        """Evidence: each record linked to the first record that shares the value (a star per value)."""
        v, r = self.edges["vcode"].to_numpy(), self.edges["rec"].to_numpy()
        order = np.lexsort((r, v))  # by value, then record
        v, r = v[order], r[order]
        start = np.r_[True, v[1:] != v[:-1]] if len(v) else np.zeros(0, bool)
        first = r[np.maximum.accumulate(np.where(start, np.arange(len(v)), 0))]
        keep = r != first
        rows = order[keep]
        return pd.DataFrame({"rec_a": first[keep], "rec_b": r[keep],
                             "how": self.edges["identifier"].iloc[rows].astype("category").cat.remove_unused_categories().array,
                             "value_hash": _hash_codes(self.values, v[keep])})


def _hash_codes(values: pd.Series, vcodes: np.ndarray) -> pd.array:
    """``value_hash`` of ``values[vcodes]``, hashing each distinct value once."""
    used, inverse = np.unique(vcodes, return_inverse=True)
    hashed = value_hash(values.iloc[used].reset_index(drop=True))
    return hashed.array.take(inverse)


def encode_values(ids: pd.DataFrame) -> tuple[np.ndarray, pd.Series]:
    """An integer code per (identifier, value) observation, and the value of each code.

    Values are factorised one identifier at a time (no concatenated key strings), so the
    cost is one hash table per identifier.
    """
    ident = ids["identifier"]
    codes_of_ident = ident.cat.codes.to_numpy() if isinstance(ident.dtype, pd.CategoricalDtype) \
        else pd.factorize(ident)[0]
    vcode = np.empty(len(ids), dtype=np.int32 if len(ids) < 2**31 else np.int64)
    uniques, offset = [], 0
    for k in np.unique(codes_of_ident):
        m = codes_of_ident == k
        codes, uniq = pd.factorize(ids["value"][m])
        vcode[m] = codes + offset
        offset += len(uniq)
        uniques.append(pd.Series(uniq, dtype="str"))
    values = pd.concat(uniques, ignore_index=True) if uniques else pd.Series(dtype="str")
    return vcode, values


def _persons_per_value(edges: pd.DataFrame, kept: pd.DataFrame, labels: np.ndarray) -> pd.Series:
    """How many distinct persons each value of ``edges`` would join.

    Persons are counted by the identifiers already trusted (``kept``): among the components
    the value touches, the largest number of separate components that carry the same
    identifier type — two components with a member id each are two persons (the stronger
    tiers would have joined them otherwise); one component with a member id and another with
    only a unionid are not; one person with two phones is one component. A value touching
    no trusted identifier joins at most one person; such values, and values touching one
    known component, are left out of the result.
    """
    if edges.empty or kept.empty:
        return pd.Series(dtype="int64")
    # Only components that carry a trusted identifier count, and a value touching one such
    # component joins one person at most (every limit is >= 1). Both filters are array
    # lookups, so the hash-based de-duplication sees only edges on known components (most
    # edges are cookies of anonymous events) and the merge only values that join several.
    kc = labels[kept["rec"].to_numpy()]
    is_known = np.zeros(int(labels.max()) + 1, dtype=bool)
    is_known[kc] = True
    ec = labels[edges["rec"].to_numpy()]
    on_known = is_known[ec]
    touch = pd.DataFrame({"vcode": edges["vcode"].to_numpy()[on_known], "c": ec[on_known]}).drop_duplicates()
    touch = touch[touch["vcode"].duplicated(keep=False).to_numpy()]
    if touch.empty:
        return pd.Series(dtype="int64")
    is_touched = np.zeros_like(is_known)
    is_touched[touch["c"].to_numpy()] = True
    mine = is_touched[kc]
    known = pd.DataFrame({"c": kc[mine], "identifier": kept["identifier"].array[mine]}).drop_duplicates()
    joined = touch.merge(known, on="c")
    if joined.empty:
        return pd.Series(dtype="int64")
    # per identifier type: how many separate components carrying that type the value touches
    return joined.groupby(["vcode", "identifier"], observed=True).size().groupby(level=0).max()


def over_limit_report(tier_edges: pd.DataFrame, over: pd.Series, values: pd.Series,
                      max_persons: dict[str, int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The report of the values ``over`` (vcode -> persons) not used as links: (identifier,
    value_hash, persons, max_persons) to write, and (identifier, value) kept in memory only.

    >>> e = pd.DataFrame({"rec": [0, 1], "identifier": ["phone", "phone"], "vcode": [0, 0]})
    >>> report, shown = over_limit_report(e, pd.Series({0: 3}), pd.Series(["+8613800138000"]), {"phone": 2})
    >>> report[["identifier", "persons", "max_persons"]].to_dict("records"), shown["value"].tolist()
    ([{'identifier': 'phone', 'persons': 3, 'max_persons': 2}], ['+8613800138000'])
    """
    info = tier_edges[tier_edges["vcode"].isin(over.index)].drop_duplicates("vcode")
    info = info.assign(identifier=info["identifier"].astype(str),
                       value=values.iloc[info["vcode"].to_numpy()].to_numpy())
    report = pd.DataFrame({
        "identifier": info["identifier"].to_numpy(), "value_hash": value_hash(info["value"]).to_numpy(),
        "persons": over.reindex(info["vcode"]).to_numpy(),
        "max_persons": info["identifier"].map(max_persons).to_numpy()})
    return report, info[["identifier", "value"]]


def link_deterministic(n_records: int, ids: pd.DataFrame, settings: IdentitySettings) -> DeterministicResult:
    """Resolve ``n_records`` records from their identifier observations (rec, identifier, value)."""
    vcode, values = encode_values(ids)
    ids = pd.DataFrame({"rec": ids["rec"].to_numpy(), "identifier": ids["identifier"], "vcode": vcode})
    n_vals = len(values)
    kind = ids["identifier"].map({i.name: i.kind for i in settings.identifiers})
    max_persons = {i.name: i.max_persons for i in settings.identifiers}
    over_rows, over_values = [], []

    def cc(e: pd.DataFrame) -> np.ndarray:
        return components(n_records, e["rec"].to_numpy(), e["vcode"].to_numpy(), n_vals)

    kept = ids[kind == "unique"]
    labels = cc(kept)
    for tier in ("strong", "weak"):
        tier_edges = ids[kind == tier]
        persons = _persons_per_value(tier_edges, kept, labels)
        over = persons.iloc[0:0]
        if len(persons):
            limit_of_value = tier_edges.groupby("vcode", observed=True)["identifier"].first().astype(str).map(max_persons)
            over = persons[persons > limit_of_value.reindex(persons.index).to_numpy()]
        if len(over):
            report, shown = over_limit_report(tier_edges, over, values, max_persons)
            over_rows.append(report)
            over_values.append(shown)
        kept = pd.concat([kept, tier_edges[~tier_edges["vcode"].isin(over.index)]], ignore_index=True)
        labels = cc(kept)

    kept, labels, conflicts = split_unique_conflicts(n_records, kept, labels, settings, n_values=n_vals)
    return deterministic_result(labels, kept, over_rows, over_values, conflicts, values, vcode)


def deterministic_result(labels, kept: pd.DataFrame, over_rows: list, over_values: list, conflicts: list,
                         values, vcode) -> "DeterministicResult":
    """Assemble a :class:`DeterministicResult` from the graph's parts (shared by the local and Spark engines).

    ``over_rows`` / ``over_values`` are the per-tier over-limit reports (empty lists give empty tables
    with the report's columns).
    """
    over_limit = (pd.concat(over_rows, ignore_index=True) if over_rows
                  else pd.DataFrame(columns=["identifier", "value_hash", "persons", "max_persons"]))
    over = (pd.concat(over_values, ignore_index=True) if over_values
            else pd.DataFrame(columns=["identifier", "value"]))
    return DeterministicResult(labels, kept.reset_index(drop=True), over_limit, pd.DataFrame(conflicts), over,
                               values, vcode)


def split_unique_conflicts(n_records: int, kept: pd.DataFrame, labels: np.ndarray, settings: IdentitySettings, *,
                           n_values: int) -> tuple[pd.DataFrame, np.ndarray, list[dict]]:
    """Split each component holding two values of a unique identifier at its weakest links:
    the lowest-priority identifier's edges inside the conflicting components are dropped,
    repeatedly, until no conflict is left (or only unique identifiers are left to cut).

    ``kept`` (rec, identifier, vcode) are the edges kept so far and ``labels`` their components
    (:func:`components`); returns the edges still kept (a row subset of ``kept``, in its order,
    with its index), the new labels and one conflict entry per split component. Only the
    conflicting components change, so the Spark engine calls this on their records alone.

    >>> s = IdentitySettings.from_dict({"identifiers": [{"name": "member_id", "kind": "unique"},
    ...                                                 {"name": "phone", "kind": "strong"}]})
    >>> e = pd.DataFrame({"rec": [0, 1, 0, 1], "identifier": ["member_id", "member_id", "phone", "phone"],
    ...                   "vcode": [0, 1, 2, 2]})
    >>> kept, labels, conflicts = split_unique_conflicts(2, e, np.array([0, 0]), s, n_values=3)
    >>> labels.tolist(), kept.index.tolist(), conflicts[0]["dropped_identifier"]
    ([0, 1], [0, 1], 'phone')
    """
    prio = {i.name: k for k, i in enumerate(settings.identifiers)}
    unique_names = set(settings.names_of_kind("unique"))
    conflicts = []
    for _ in range(len(settings.identifiers) + 1):
        u = kept[kept["identifier"].isin(unique_names)]
        per = pd.DataFrame({"c": labels[u["rec"].to_numpy()], "v": u["vcode"].to_numpy()}).drop_duplicates()
        n_unique = per.groupby("c").size()
        bad = n_unique[n_unique > 1].index.to_numpy()
        if bad.size == 0:
            break
        in_bad = np.isin(labels[kept["rec"].to_numpy()], bad)
        sub = kept[in_bad]
        weakest = sub["identifier"].astype(str).map(prio).max()
        name = settings.identifiers[int(weakest)].name
        if name in unique_names:  # nothing weaker left to cut: records genuinely carry two ids
            break
        sizes = np.bincount(labels)  # records per component, one pass (not one scan per conflict)
        for c in bad:
            conflicts.append({"component_records": int(sizes[c]), "unique_values": int(n_unique[c]),
                              "dropped_identifier": name})
        kept = kept[~(in_bad & (kept["identifier"] == name).to_numpy())]
        labels = components(n_records, kept["rec"].to_numpy(), kept["vcode"].to_numpy(), n_values)
    return kept, labels, conflicts
