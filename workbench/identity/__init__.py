"""OneID: one id per person across every channel, without gluing strangers together.

Public API (thin, over the stage modules):

- :func:`resolve_records` — any DataFrame of person records + which column is what → OneIDs;
- :func:`resolve_tables` — several tables (e.g. the cleaned channels) at once;
- :func:`run_identity` — the pipeline stage: cleaned channels in, ``data/processed`` out;
- :func:`explain` — the records and the links that made one person;
- :class:`IdentitySettings` — identifiers, attributes, blocking, threshold (YAML/JSON).

Example (a table you bring, with your own column names):
    >>> import pandas as pd
    >>> df = pd.DataFrame({"cust": ["M00000001", None, None], "mobile": ["13800138000", "+86 138 0013 8000", None],
    ...                    "mail": [None, "a@b.cn", "A@B.cn "]})
    >>> res = resolve_records(df, identifiers={"cust": "member_id", "mobile": "phone", "mail": "email"})
    >>> res.records["oneid"].nunique()
    1
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from ..config import Paths, get_paths
from ..stage_meter import StageMeter
from .deterministic import link_deterministic
from .evaluate import quality_report, truth_positions
from .observations import observe, phone_tail
from .oneid import assign_oneids
from .probabilistic import component_profiles, link_probabilistic
from .settings import IdentitySettings, SettingsError, SourceSpec

__all__ = ["IdentitySettings", "SettingsError", "Resolution", "check_sources", "resolve_records", "resolve_tables",
           "run_identity", "explain", "load_resolution", "quality_against_truth"]


@dataclass
class Resolution:
    """The outcome of identity resolution."""

    records: pd.DataFrame          # record_id, channel, oneid, anchored
    link_positions: pd.DataFrame   # rec_a, rec_b (record positions), how, value_hash, match_weight, match_probability
    over_limit: pd.DataFrame       # identifier values not used as links (too many persons)
    conflicts: pd.DataFrame        # unique-identifier conflicts and the links cut
    blocked: dict[str, int]        # placeholder / blocked values dropped, per identifier
    history: pd.DataFrame          # old_oneid -> new_oneid, why
    probabilistic: dict = field(default_factory=dict)
    scored_pairs: pd.DataFrame | None = None
    seconds: dict = field(default_factory=dict)
    observations: pd.DataFrame | None = None  # rec, identifier, value, vcode (in memory only, for diagnostics)
    peak_mb: dict = field(default_factory=dict)  # largest resident set (MB) during each step
    unmatched: dict = field(default_factory=dict)  # table -> column -> values that fit none of its identifiers
    quality: dict | None = None  # against the sample's ground truth (set by run_identity; None without truth)
    contributions: pd.DataFrame | None = None  # rec_a, rec_b, mw_<comparison>: each comparison's weight per fuzzy link

    def explain(self, oneid: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        return explain(oneid, self)

    @property
    def links(self) -> pd.DataFrame:
        """The evidence: record_a, record_b, how, value_hash, match_weight, match_probability."""
        return self.links_of(self.link_positions)

    def links_of(self, positions: pd.DataFrame) -> pd.DataFrame:
        """Links given by record positions, with the record ids put in."""
        rid = self.records["record_id"].array
        out = positions.drop(columns=["rec_a", "rec_b"])
        out.insert(0, "record_b", rid.take(positions["rec_b"].to_numpy()))
        out.insert(0, "record_a", rid.take(positions["rec_a"].to_numpy()))
        return out.reset_index(drop=True)

    def write_links(self, path: Path, rows: int = 2_000_000) -> None:
        """Write :attr:`links` to Parquet a slice at a time (a 50-million-link table never
        sits in memory with its record ids)."""
        import pyarrow.parquet as pq

        writer = None
        try:
            for lo in range(0, max(len(self.link_positions), 1), rows):
                part = self.links_of(self.link_positions.iloc[lo:lo + rows])
                part["how"] = _category_text(part["how"])
                table = pa.Table.from_pandas(part, preserve_index=False)
                writer = writer or pq.ParquetWriter(path, table.schema)
                writer.write_table(table)
        finally:
            if writer is not None:
                writer.close()


def _category_text(values: pd.Series) -> pd.Series:
    """``values.astype(str)`` of a categorical column, taken from its categories by Arrow
    (pandas builds a Python string per row).

    >>> _category_text(pd.Series(pd.Categorical(["b", None, "a", "b"]))).tolist()
    ['b', nan, 'a', 'b']
    """
    import pyarrow.compute as pc

    codes = values.cat.codes.to_numpy()
    text = pa.array([str(c) for c in values.cat.categories], pa.large_string())
    taken = pc.take(text, pa.array(codes, mask=codes < 0))
    return pd.Series(pd.array(taken, dtype="str"), index=values.index, name=values.name)


def resolve_tables(tables: Mapping[str, pd.DataFrame], settings: IdentitySettings | None = None, *,
                   sources: dict[str, SourceSpec] | None = None, record_ids: dict[str, pd.Series] | None = None,
                   previous: pd.DataFrame | None = None, decisions: pd.DataFrame | None = None,
                   keep_observations: bool = True, engine=None) -> Resolution:
    """Resolve several tables at once. ``sources`` (default: ``settings.sources``) says which
    column of each table is which identifier or attribute; ``record_ids`` default to each
    table's ``record_id`` column, else ``<table>:<row>``.

    ``decisions`` (``record_a``, ``record_b``, ``decision``: "accept" | "reject", from the
    match review in notebook 11) override the probabilistic stage: an accepted pair's
    components are joined (must-link); a rejected pair's direct fuzzy link is removed
    (cannot-link). Identifier links are never overridden: a shared member id or phone is
    fixed in the data, not in review.

    ``keep_observations`` keeps the identifier observations on the result (for the recall
    ceiling diagnostic); without it they are freed as soon as the graph is built.

    ``engine`` (:class:`workbench.engine.EngineSettings`, a mapping or a YAML path; default
    local): with ``engine: spark`` the deterministic graph (components, per-value limits) and
    the probabilistic stage's pair scoring run on Spark
    (:mod:`workbench.engine.spark_identity`); the result is the same.
    """
    from ..runconfig import resolve_engine

    settings = settings or IdentitySettings.from_yaml()
    eng = resolve_engine(None, engine) if engine is not None else None   # None: this process (local)
    link_graph, predict = link_deterministic, None
    if eng is not None and eng.is_spark:
        from functools import partial

        from ..engine.session import spark_session
        from ..engine.spark_identity import spark_link_deterministic, spark_predict

        spark = spark_session(eng)
        link_graph, predict = partial(spark_link_deterministic, spark), partial(spark_predict, spark)
    sources = sources or settings.sources
    missing = sorted(set(tables) - set(sources))
    if missing:
        raise SettingsError(f"No identity source spec for tables {missing}. Specs exist for {sorted(sources)}.")
    _check_attributes({t: sources[t] for t in tables}, settings)
    meter = StageMeter()
    unmatched: dict[str, dict[str, int]] = {}
    with meter("observe"):
        records, ids, attrs, blocked = _observe_tables(tables, sources, settings, record_ids, unmatched)
    with meter("deterministic"):
        det = link_graph(len(records), ids, settings)
        if keep_observations:  # with each (identifier, value)'s code, for the recall ceiling
            ids["vcode"] = det.observation_codes
        else:
            ids = None
    # the identifier links (evidence) depend on the deterministic stage only: they are made on
    # a second thread while Splink, whose DuckDB work releases the GIL, scores the profiles
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="identity-links") as pool:
        identifier_links = pool.submit(det.links)
        with meter("probabilistic"):
            anchored = np.zeros(len(records), bool)
            strong = det.edges[det.edges["identifier"].isin(settings.names_of_kind("unique", "strong"))]
            anchored[strong["rec"].to_numpy()] = True
            # a phone that was blocked or over its person limit is no evidence in part either:
            # withdraw its tail from the fuzzy attributes
            bad_phones = det.over_limit_values.loc[det.over_limit_values["identifier"] == "phone", "value"]
            bad_tails = set(phone_tail(pd.Series(list(bad_phones) + list(settings.blocked_values),
                                                 dtype="string")).dropna())
            if bad_tails and "phone_tail" in attrs:
                attrs.loc[attrs["phone_tail"].isin(bad_tails).fillna(False), "phone_tail"] = pd.NA
            attrs = _with_typo_identifiers(attrs, det, settings)
            profiles = component_profiles(det.labels, attrs, anchored)
            del attrs
            prob = link_probabilistic(profiles, settings, _guard_values(det, settings), predict=predict)
            applied = _apply_decisions(prob, det.labels, records["record_id"], decisions)
            labels = _join_components(det.labels, prob.merges)
        with meter("assign"):
            oneid, history = assign_oneids(records["record_id"], labels, previous)
            records["oneid"] = oneid.array
            comp_anchor = pd.Series(anchored).groupby(labels).max()
            records["anchored"] = comp_anchor.reindex(labels).to_numpy()
        with meter("evidence"):
            link_positions = _evidence(len(records), det, prob, identifier_links.result())
    info = {"prior": prob.prior, "threshold": prob.threshold, "pairs_above_threshold": prob.candidates,
            "merges": int(len(prob.merges)), "links_cut_by_guards": int(prob.cut), "components": int(det.labels.max() + 1) if len(det.labels) else 0,
            "unanchored_components": int((~profiles["anchored"]).sum()), **applied}
    return Resolution(records, link_positions, det.over_limit, det.conflicts, blocked, history, info,
                      prob.scored_pairs, dict(meter.seconds), ids, dict(meter.peak_mb), unmatched,
                      contributions=_contributions_by_record(prob, det.labels))


def _check_attributes(sources: Mapping[str, SourceSpec], settings: IdentitySettings) -> None:
    """Every source attribute is one of the settings, and every attribute of the settings is
    given by some source (``phone_tail`` also by a phone identifier): an attribute no table
    provides, or one the settings do not compare, would silently weigh nothing."""
    for name, spec in sources.items():
        for column, attr in spec.attributes.items():
            if attr not in settings.attributes:
                raise SettingsError(f"Source '{name}', column '{column}': unknown attribute {attr!r}. "
                                    f"Known attributes: {sorted(settings.attributes)}.")
    given = {a for spec in sources.values() for a in spec.attributes.values()}
    if any("phone" in (t if isinstance(t, list) else [t]) for spec in sources.values()
           for t in spec.identifiers.values()):
        given.add("phone_tail")
    missing = [a for a in settings.attributes if a not in given]
    if missing:
        raise SettingsError(f"The identity settings list the attributes {missing}, which no source provides. "
                            f"Sources and their attributes: "
                            f"{ {k: sorted(v.attributes) for k, v in sources.items()} }. Map a column to each "
                            "(`attributes: {column: attribute}`) or remove them from the settings.")


def _with_typo_identifiers(attrs: pd.DataFrame, det, settings: IdentitySettings) -> pd.DataFrame:
    """``attrs`` with a column per strong identifier compared with typos (the record's value),
    when the settings compare attributes at all."""
    names = [i.name for i in settings.identifiers if i.compares_typos]
    if not names or not settings.attributes or attrs.empty:
        return attrs
    e = det.edges
    for name in names:
        mine = e[(e["identifier"] == name).to_numpy()].drop_duplicates("rec")
        if mine.empty:
            continue
        value = pd.Series(det.values.iloc[mine["vcode"].to_numpy()].to_numpy(), index=mine["rec"].to_numpy())
        attrs[name] = pd.array(value.reindex(attrs["rec"].to_numpy()).to_numpy(), dtype="string")
    return attrs


def _guard_values(det, settings: IdentitySettings) -> pd.DataFrame:
    """(component, value code) of the identifier values no fuzzy link may put together, for the
    cluster guard: every unique identifier's, and a strong identifier's whose values the model
    does not compare (``typos: false``) — two persons known by different phones it cannot
    weigh stay apart, as they always did; a strong identifier compared with typos is evidence
    in the score instead."""
    names = settings.names_of_kind("unique") + [i.name for i in settings.identifiers
                                                if i.kind == "strong" and not i.compares_typos]
    e = det.edges[det.edges["identifier"].isin(names).to_numpy()]
    return pd.DataFrame({"component": det.labels[e["rec"].to_numpy()],
                         "value": e["vcode"].to_numpy()}).drop_duplicates().reset_index(drop=True)


def _contributions_by_record(prob, labels: np.ndarray) -> pd.DataFrame | None:
    """The per-comparison match weights of the links kept, by the first record of each side."""
    c = prob.contributions
    if c is None or not len(c) or not len(prob.merges):
        return None
    kept = set(zip(prob.merges["component_a"], prob.merges["component_b"]))
    c = c[[(a, b) in kept or (b, a) in kept for a, b in zip(c["a"], c["b"])]]
    first = pd.Series(np.arange(len(labels))).groupby(labels).min()
    return c.assign(rec_a=first.reindex(c["a"]).to_numpy(), rec_b=first.reindex(c["b"]).to_numpy()).drop(
        columns=["a", "b"]).reset_index(drop=True)


def _table_chunks(tables: Mapping[str, pd.DataFrame], name: str):
    """One table's rows, in slices when the mapping reads them lazily (see ``_ChannelTables``)."""
    if hasattr(tables, "chunks"):
        yield from tables.chunks(name)
    else:
        yield tables[name]


def _observe_tables(tables, sources, settings, record_ids, unmatched=None):
    """Records (record_id, channel), identifier observations, fuzzy attributes, blocked counts;
    ``unmatched`` receives table -> column -> values that fit none of the column's identifiers."""
    import duckdb

    id_parts, attr_parts, rec_parts, names, blocked, id_hashes = [], [], [], [], {}, []
    offset = 0

    def observe_table(name: str) -> list:
        """Each slice of one table observed (record positions from 0 within the slice)."""
        counts = {} if unmatched is None else unmatched[name]
        out = []
        for df in _table_chunks(tables, name):
            ids, attrs, b = observe(df, sources[name], settings, table=name, unmatched=counts)
            rid = (record_ids or {}).get(name)
            if rid is None:
                rid = df["record_id"] if "record_id" in df else name + ":" + pd.Series(np.arange(len(df))).astype(str)
            out.append((len(df), ids, attrs, b, pd.Series(rid, dtype="str").reset_index(drop=True)))
        return out

    if unmatched is not None:
        for name in tables:
            unmatched.setdefault(name, {})
    con = duckdb.connect()  # hashes the record ids (one C++ pass; pandas' hash goes through Python objects)
    # two tables at a time (much of observing runs in Arrow without the GIL); put together in order
    try:
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="identity-observe") as pool:
            for name, slices in zip(tables, pool.map(observe_table, list(tables))):
                for n_rows, ids, attrs, b, rid in slices:
                    ids["rec"] += offset
                    rec_parts.append(rid)  # Arrow strings: takes stay in C++
                    id_hashes.append(_hash_text(con, rid))
                    names.append(name)
                    id_parts.append(ids)
                    has = attrs.notna().any(axis=1).to_numpy()  # only records with fuzzy evidence are kept
                    attr_parts.append(attrs[has].assign(rec=np.flatnonzero(has) + offset))
                    for k, v in b.items():
                        blocked[k] = blocked.get(k, 0) + v
                    offset += n_rows
                del slices
    finally:
        con.close()
    sizes = pd.Series([len(r) for r in rec_parts]).groupby(names, sort=False).sum()
    records = pd.DataFrame({"record_id": pd.concat(rec_parts, ignore_index=True),
                            "channel": pd.Categorical.from_codes(np.repeat(np.arange(len(sizes)), sizes.to_numpy()),
                                                                 categories=list(sizes.index))})
    del rec_parts
    if not _unique(id_hashes, records["record_id"]):
        dup = records.loc[records["record_id"].duplicated(), "record_id"].head(3).tolist()
        raise ValueError(f"record ids must be unique across tables; repeated: {dup}")
    ids = pd.concat(id_parts, ignore_index=True)
    del id_parts
    pos_type = np.int32 if len(records) < 2**31 else np.int64  # record positions: half the memory
    ids["rec"] = ids["rec"].astype(pos_type)
    attrs = pd.concat(attr_parts, ignore_index=True)
    attrs["rec"] = attrs["rec"].astype(pos_type)
    return records, ids, attrs, blocked


def _hash_text(con, values: pd.Series) -> np.ndarray:
    """A 64-bit hash of each text (DuckDB's ``hash``, in no particular order: only for telling
    whether the texts repeat)."""
    arrow_values = pa.array(values.array)
    con.register("hash_input", pa.table({"v": arrow_values}))
    try:
        return con.sql("SELECT hash(v) AS h FROM hash_input").fetchnumpy()["h"]
    finally:
        con.unregister("hash_input")


def _unique(hashes: list[np.ndarray], values: pd.Series) -> bool:
    """Whether no record id repeats: the sorted 64-bit hashes of the ids (made table slice by
    table slice, 8 bytes per record) have no neighbours alike; a hash collision only sends
    the check on to the exact pandas test."""
    h = np.sort(np.concatenate(hashes)) if hashes else np.zeros(0, np.uint64)
    return bool((h[1:] != h[:-1]).all()) or bool(values.is_unique)


def _join_components(labels: np.ndarray, merges: pd.DataFrame) -> np.ndarray:
    """Labels after the chosen probabilistic links (each group holds at most one known person)."""
    if not len(merges):
        return labels.copy()
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    k = int(labels.max()) + 1
    graph = coo_matrix((np.ones(len(merges)), (merges["component_a"].to_numpy(), merges["component_b"].to_numpy())),
                       shape=(k, k))
    return connected_components(graph, directed=False)[1][labels]


def _evidence(n_records: int, det, prob, links: pd.DataFrame | None = None) -> pd.DataFrame:
    """The links by record position: identifier links (a star per value, ``det.links()`` unless
    given) and probabilistic links; also maps the scored component pairs to one record of each
    side (in place)."""
    links = det.links() if links is None else links
    links["match_weight"] = np.nan
    links["match_probability"] = np.nan
    first_rec = pd.Series(np.arange(n_records)).groupby(det.labels).min()
    if prob.scored_pairs is not None and len(prob.scored_pairs):  # component pairs -> one record of each side
        sp = prob.scored_pairs
        prob.scored_pairs = sp.assign(rec_a=first_rec.reindex(sp["a"]).to_numpy(),
                                      rec_b=first_rec.reindex(sp["b"]).to_numpy())
    if len(prob.merges):
        pl = pd.DataFrame({"rec_a": first_rec.reindex(prob.merges["component_b"]).to_numpy(),
                           "rec_b": first_rec.reindex(prob.merges["component_a"]).to_numpy(),
                           "how": np.where(prob.merges["match_weight"].isna(), "review: accepted",
                                           "probabilistic"),
                           "value_hash": pd.array([None] * len(prob.merges), dtype="str"),
                           "match_weight": prob.merges["match_weight"].to_numpy(),
                           "match_probability": prob.merges["match_probability"].to_numpy()})
        how = list(links["how"].cat.categories) + ["probabilistic", "review: accepted"]
        links["how"] = links["how"].cat.set_categories(how)
        pl["how"] = pd.Categorical(pl["how"], categories=how)
        pl = pl.astype({"rec_a": links["rec_a"].dtype, "rec_b": links["rec_b"].dtype})
        links = pd.concat([links, pl], ignore_index=True)
    return links


def resolve_records(df: pd.DataFrame, *, identifiers: dict[str, str | list[str]],
                    attributes: dict[str, str] | None = None, settings: IdentitySettings | None = None,
                    record_id: str | None = None) -> Resolution:
    """Resolve one table you bring, with columns named your way.

    ``identifiers`` maps your columns to identifier names of the settings (``member_id``,
    ``phone``, ``email`` and whatever else they list, e.g. a WeChat unionid or a device id; a
    list means the column may hold any of them). ``attributes`` maps columns to fuzzy attributes
    (``name``, ``phone_tail``, ``address_key``, ``city``, ``birth_date``); name columns should
    hold a matching key (see :func:`workbench.normalise.normalise_names`). With your own
    ``settings``, any attribute they list is yours to compare: each must be mapped (an
    attribute no column provides is an error, as is a column mapped to an attribute they do
    not list), and its ``comparison`` kind says how (``forename``, ``surname``, ``date``,
    ``postcode``, ``house_number``, ``address``, ``exact``, ``numeric`` ...). Without
    ``settings``, the defaults' attributes that your mapping provides are compared.

    Example (records with typos, no shared id):
        >>> df = pd.DataFrame({"first": ["anna", "anna", "bob"], "last": ["smith", "smyth", "jones"],
        ...                    "born": ["19800102", "19800201", "19700101"], "zip": ["2000", "2000", "3000"]})
        >>> s = IdentitySettings.from_dict({"identifiers": [{"name": "member_id", "kind": "unique"}],
        ...     "attributes": {"first": {"comparison": "forename"}, "last": {"comparison": "surname"},
        ...                    "born": {"comparison": "date"}, "zip": {"comparison": "postcode"}}})
        >>> res = resolve_records(df, identifiers={}, attributes={c: c for c in df}, settings=s)
        >>> len(res.records)
        3
    """
    if settings is None:
        settings = IdentitySettings.from_yaml()
        mapped = set((attributes or {}).values())
        keep = [a for a in settings.attributes if a in mapped or (a == "phone_tail" and "phone" in
                                                                  _targets(identifiers))]
        d = settings.to_dict()
        d["attributes"] = {a: d["attributes"][a] for a in keep}
        d["blocking_rules"] = [r for r in d["blocking_rules"] if all(c in keep for c in r)]
        d["sources"] = {}  # the defaults' channels are not this table
        settings = IdentitySettings.from_dict(d)
    unknown = [c for c in list(identifiers) + list(attributes or {}) if c not in df.columns]
    if unknown:
        raise SettingsError(f"Columns {unknown} are not in the table. Columns: {list(df.columns)}.")
    src = SourceSpec(identifiers=dict(identifiers), attributes=dict(attributes or {}))
    probe = IdentitySettings.from_dict({**settings.to_dict(), "sources": {"table": src.__dict__}})
    rid = {"table": df[record_id]} if record_id else None
    return resolve_tables({"table": df}, probe, sources={"table": src}, record_ids=rid)


def _targets(identifiers: dict) -> set[str]:
    """The identifier names a column mapping points to (``buyer_nick@channel`` -> buyer_nick)."""
    return {str(t).split("@", 1)[0] for ts in identifiers.values() for t in (ts if isinstance(ts, list) else [ts])}


def _apply_decisions(prob, labels: np.ndarray, record_ids: pd.Series, decisions: pd.DataFrame | None) -> dict:
    """Apply reviewed must-link / cannot-link decisions to the probabilistic merges (in place)."""
    out = {"review_accepted": 0, "review_rejected": 0, "review_unknown_records": 0}
    if decisions is None or not len(decisions):
        return out
    bad = set(decisions["decision"]) - {"accept", "reject"}
    if bad:
        raise ValueError(f"Match decisions must be 'accept' or 'reject'. Got {sorted(bad)} instead.")
    pos = pd.Series(np.arange(len(record_ids)), index=pd.Index(record_ids))
    known = decisions["record_a"].isin(pos.index) & decisions["record_b"].isin(pos.index)
    out["review_unknown_records"] = int((~known).sum())  # records erased or not in this run
    d = decisions[known]
    ca = labels[pos.reindex(d["record_a"]).to_numpy()]
    cb = labels[pos.reindex(d["record_b"]).to_numpy()]
    acc = d["decision"].to_numpy() == "accept"
    m = prob.merges
    if (~acc).any() and len(m):
        rejected = {frozenset(p) for p in zip(ca[~acc], cb[~acc])}
        keep = [frozenset((a, b)) not in rejected for a, b in zip(m["component_a"], m["component_b"])]
        out["review_rejected"] = int(len(m) - sum(keep))
        m = m[keep]
    extra = pd.DataFrame({"component_a": ca[acc], "component_b": cb[acc], "match_weight": np.nan,
                          "match_probability": 1.0})
    extra = extra[extra["component_a"] != extra["component_b"]]
    out["review_accepted"] = int(len(extra))
    prob.merges = pd.concat([m, extra], ignore_index=True) if len(extra) else m.reset_index(drop=True)
    return out


# ----------------------------------------------------------------------------- the stage
class _ChannelTables(Mapping):
    """The cleaned channels, each read (identity columns only) when it is asked for, so that
    resolution holds one raw table at a time."""

    def __init__(self, paths: Paths, settings: IdentitySettings, channels: list[str] | None = None):
        self.paths, self.settings = paths, settings
        self.channels = list(settings.sources) if channels is None else list(channels)

    def __getitem__(self, channel: str) -> pd.DataFrame:
        from ..clean import load_cleaned

        return load_cleaned(channel, self.paths, columns=self._columns(channel))

    def chunks(self, channel: str, rows: int = 1_000_000):
        """The channel's identity columns in slices of ``rows`` rows (bounds the memory of
        observing a 20-million-row event table)."""
        import pyarrow.parquet as pq

        from ..clean import load_cleaned

        path = self.paths.cleaned / f"{channel}.parquet"
        if not path.exists():
            yield load_cleaned(channel, self.paths)  # raises the helpful error
            return
        pf = pq.ParquetFile(path)
        cols = [c for c in self._columns(channel) if c in set(pf.schema_arrow.names)]
        for batch in pf.iter_batches(batch_size=rows, columns=cols):
            yield batch.to_pandas()

    def _columns(self, channel: str) -> list[str]:
        spec = self.settings.sources[channel]
        cols = set(spec.identifiers) | set(spec.attributes) | {"record_id"}
        cols |= {f"{c}_placeholder" for c in spec.identifiers}
        cols |= {str(t).split("@", 1)[1] for ts in spec.identifiers.values()
                 for t in (ts if isinstance(ts, list) else [ts]) if "@" in str(t)}
        return sorted(cols)

    def __iter__(self):
        return iter(self.channels)

    def __len__(self) -> int:
        return len(self.channels)


def check_sources(settings: IdentitySettings, mappings: Mapping) -> None:
    """Every mapped channel has an identity source spec, and every spec a mapped channel.

    A missing spec fails with the channel's name and a spec to paste, drafted from the
    mapping's identifier, phone, e-mail and name fields.
    """
    missing = [c for c in mappings if c not in settings.sources]
    if missing:
        drafts = []
        for c in missing:
            m = mappings[c]
            known = {i.name for i in settings.identifiers}
            ids = {}
            for f, spec in m.fields.items():
                if spec.type in ("phone", "email"):
                    ids[f] = spec.type
                elif spec.type == "identifier":
                    ids[f] = f if f in known else f"{f}  # add '{f}' to identifiers: (kind unique/strong/weak)"
            attrs = {f"{f}_key": "name" for f, spec in m.fields.items() if spec.type == "name"}
            lines = [f"  {c}:", "    identifiers: {" + ", ".join(f"{k}: {v.split('  #')[0]}" for k, v in ids.items()) + "}"]
            if attrs:
                lines.append("    attributes: {" + ", ".join(f"{k}: {v}" for k, v in attrs.items()) + "}")
            notes = [v.split("  # ", 1)[1] for v in ids.values() if "  # " in v]
            drafts.append("\n".join(lines) + ("".join(f"\n    # {n}" for n in notes)))
        raise SettingsError(f"No identity source spec for the mapped channel(s) {missing}: the identity stage must "
                            "know which of their columns identify a person. Add under `sources:` in the identity "
                            "settings (a draft from the mapping; check the kinds):\nsources:\n"
                            + "\n".join(drafts))
    extra = [c for c in settings.sources if c not in mappings]
    if extra:
        raise SettingsError(f"The identity settings have source specs for {extra}, which are not mapped channels. "
                            f"Mapped channels: {list(mappings)}. Remove them, or pass the identity settings of "
                            "these mappings (notebook parameter `identity_settings`).")


def run_identity(paths: Paths | None = None, *, settings: IdentitySettings | str | Path | None = None,
                 evaluate: bool = True, engine=None) -> Resolution:
    """The OneID stage: resolve every cleaned channel and write ``data/processed``:

    ``oneid_records.parquet`` (record → OneID; also the registry the next run keeps ids
    from), ``identity_links.parquet`` (evidence), ``oneid_history.parquet`` (merges and
    splits, appended), ``identity_over_limit.parquet`` and ``metrics/identity.json``
    (with the quality against the sample's ground truth, unless ``evaluate`` is False; also
    kept on ``res.quality``).

    ``engine`` (settings, a mapping or a YAML path; default: the run's recorded engine, else
    local): with ``engine: spark`` the graph and the pair scoring run on Spark
    (:mod:`workbench.engine.spark_identity`) — the same OneIDs, written to the same files.
    """
    from ..runconfig import record, resolve_engine, resolve_identity, resolve_mappings

    t0 = time.perf_counter()
    paths = (paths or get_paths()).ensure()
    settings = resolve_identity(paths, settings, introduce=True)
    mappings = resolve_mappings(paths)
    check_sources(settings, mappings)
    record(paths, "identity", settings.to_dict())
    registry = paths.processed / "oneid_records.parquet"  # the last run's ids
    previous = pd.read_parquet(registry, columns=["record_id", "oneid"]) if registry.exists() else None
    decisions_file = paths.processed / "match_decisions.parquet"
    decisions = pd.read_parquet(decisions_file) if decisions_file.exists() else None
    res = resolve_tables(_ChannelTables(paths, settings, list(mappings)), settings, previous=previous,
                         decisions=decisions, keep_observations=evaluate, engine=resolve_engine(paths, engine))
    del previous
    # the quality against the truth only reads the resolution: it is measured on a second
    # thread while the files are written (Arrow, NumPy and Parquet work on both release the GIL)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="identity-quality") as pool:
        quality_job = pool.submit(quality_against_truth, res, paths) if evaluate else None
        _write_resolution(res, paths)
        metrics = _metrics(res, t0)
        res.quality = quality_job.result() if quality_job is not None else None
    if res.quality is not None:
        metrics["quality"] = res.quality
    (paths.metrics / "identity.json").write_text(json.dumps(metrics, indent=2, default=float), encoding="utf-8")
    return res


def _write_resolution(res: Resolution, paths: Paths) -> None:
    """The registry, scored pairs, links, over-limit values and the appended id history."""
    meter = StageMeter()
    with meter("write"):
        res.records.to_parquet(paths.processed / "oneid_records.parquet", index=False)
        _scored_pairs(res).to_parquet(paths.processed / "identity_scored_pairs.parquet", index=False)
        res.write_links(paths.processed / "identity_links.parquet")
        res.over_limit.to_parquet(paths.processed / "identity_over_limit.parquet", index=False)
        hist_path = paths.processed / "oneid_history.parquet"
        hist = res.history.assign(run_utc=pd.Timestamp.now(tz="UTC").floor("s"))
        if hist_path.exists():
            hist = pd.concat([pd.read_parquet(hist_path), hist], ignore_index=True)
        hist.to_parquet(hist_path, index=False)
    res.seconds.update(meter.seconds)
    res.peak_mb.update(meter.peak_mb)


def _metrics(res: Resolution, t0: float) -> dict:
    """``metrics/identity.json`` without the quality (``t0``: when the stage started)."""
    import pyarrow.compute as pc

    return {
        "stage": "identity", "seconds": round(time.perf_counter() - t0, 3), "step_seconds": res.seconds,
        "step_peak_mb": res.peak_mb,
        "channels": {c: {"records": int(n)} for c, n in res.records["channel"].value_counts().sort_index().items()},
        "totals": {"records": int(len(res.records)),
                   "oneids": int(pc.count_distinct(pa.array(res.records["oneid"])).as_py())},
        "blocked_values": res.blocked, "over_limit_values": int(len(res.over_limit)),
        "unmatched_values": {t: c for t, c in res.unmatched.items() if c},
        "conflicts": int(len(res.conflicts)), "probabilistic": res.probabilistic,
        "history": res.history["why"].value_counts().to_dict() if len(res.history) else {},
    }


def _scored_pairs(res: Resolution, low: float = 0.5) -> pd.DataFrame:
    """Scored component pairs with P(match) >= ``low`` as record pairs (first record of each
    component), for the match review."""
    cols = ["record_a", "record_b", "match_weight", "match_probability"]
    sp = res.scored_pairs
    if sp is None or not len(sp):
        return pd.DataFrame({c: pd.Series(dtype="string" if c.startswith("record") else "float64") for c in cols})
    sp = sp[sp["match_probability"] >= low]
    rid = res.records["record_id"].array
    return sp.assign(record_a=rid.take(sp["rec_a"].to_numpy()), record_b=rid.take(sp["rec_b"].to_numpy()))[cols].reset_index(drop=True)


def load_resolution(paths: Paths | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(records, links) written by the last :func:`run_identity`."""
    paths = paths or get_paths()
    f = paths.processed / "oneid_records.parquet"
    if not f.exists():
        raise FileNotFoundError(f"{f} not found: run the identity stage (notebook 03_id_matching) first.")
    return pd.read_parquet(f), pd.read_parquet(paths.processed / "identity_links.parquet")


def explain(oneid: str, source: Resolution | Paths | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The records of one OneID and the links (identifier hash or match weight) that joined them.

    From a :class:`Resolution`, a fuzzy link also shows each comparison's contribution:
    ``mw_<comparison>`` is its match weight (log2 Bayes factor; ``mw_tf_adj_<comparison>`` the
    term-frequency adjustment), which with the prior's sum to the link's ``match_weight`` —
    Splink's waterfall, one row per link."""
    if isinstance(source, Resolution):
        mine = (source.records["oneid"] == oneid).to_numpy()
        if not mine.any():
            raise KeyError(f"Unknown OneID {oneid!r}.")
        lp = source.link_positions
        lp = lp[mine[lp["rec_a"].to_numpy()] | mine[lp["rec_b"].to_numpy()]]
        c = source.contributions
        if c is not None and len(c):  # each comparison's match weight on the fuzzy links
            both = pd.concat([c, c.rename(columns={"rec_a": "rec_b", "rec_b": "rec_a"})], ignore_index=True)
            both = both.drop_duplicates(["rec_a", "rec_b"]).astype({"rec_a": lp["rec_a"].dtype,
                                                                     "rec_b": lp["rec_b"].dtype})
            lp = lp.merge(both, on=["rec_a", "rec_b"], how="left")
        return source.records[mine].reset_index(drop=True), source.links_of(lp)
    records, links = load_resolution(source)
    recs = records[records["oneid"] == oneid]
    if recs.empty:
        raise KeyError(f"Unknown OneID {oneid!r}.")
    ids = set(recs["record_id"])
    lk = links[links["record_a"].isin(ids) | links["record_b"].isin(ids)]
    return recs.reset_index(drop=True), lk.reset_index(drop=True)


def quality_against_truth(res: Resolution, paths: Paths) -> dict | None:
    """Pairwise and cluster quality against the sample's ground truth (None without truth).

    :func:`run_identity` measures it once and keeps it on ``res.quality``."""
    f = paths.truth / "records.parquet"
    if not f.exists():
        return None
    t = pd.read_parquet(f, columns=["source_file", "source_row", "person_id"])
    pos = truth_positions(res.records["record_id"], t["source_file"], t["source_row"])
    if pos is not None:  # matched on integer keys
        r = res.records.assign(person_id=t["person_id"].array.take(pos, allow_fill=True))
    else:  # matched on the text of the keys
        from ..truth import record_key, truth_records

        r = res.records.assign(record_key=record_key(res.records["record_id"])).merge(
            truth_records(paths), on="record_key", how="left")
    del t
    if r["person_id"].isna().any():
        raise ValueError(f"{int(r['person_id'].isna().sum())} records have no ground truth.")
    q = quality_report(r, r["person_id"], res.observations, res.scored_pairs)
    sample = paths.truth / "sample.json"
    q["sample_persons"] = json.loads(sample.read_text(encoding="utf-8")).get("persons") if sample.exists() else None
    return q
