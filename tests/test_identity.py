"""OneID: guards, conflict splitting, anonymous -> known, shared devices, stable ids, generic API."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.identity import IdentitySettings, SettingsError, explain, resolve_records, resolve_tables
from workbench.identity.evaluate import cluster_quality, pairwise_quality
from workbench.identity.oneid import assign_oneids
from workbench.identity.settings import SourceSpec

BASE = {
    "identifiers": [
        {"name": "member_id", "kind": "unique", "pattern": r"^M\d+$"},
        {"name": "phone", "kind": "strong", "max_persons": 1},
        {"name": "email", "kind": "strong", "max_persons": 1},
        {"name": "device_id", "kind": "weak", "max_persons": 1},
        {"name": "cookie_id", "kind": "weak", "max_persons": 1},
    ],
    "attributes": {"name": {"comparison": "jaro_winkler"}, "phone_tail": {"comparison": "exact"},
                   "city": {"comparison": "exact"}},
    "blocking_rules": [["phone_tail"], ["name", "city"]],
    "blocked_values": ["+8613800000000"],
    "match_threshold": 0.99,
}


def settings(**changes) -> IdentitySettings:
    return IdentitySettings.from_dict({**BASE, **changes})


def id_settings(**changes) -> IdentitySettings:
    """BASE without fuzzy attributes: for tables of identifiers only (an attribute no table
    provides is an error)."""
    return settings(**{"attributes": {}, "blocking_rules": [], **changes})


def groups(res) -> list[set]:
    g = res.records.groupby("oneid")["record_id"].apply(set)
    return sorted(g.tolist(), key=lambda s: sorted(s))


def table(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    df["record_id"] = [f"r{i}" for i in range(len(df))]
    return df


IDS = {"member": "member_id", "phone": "phone", "email": "email", "device": "device_id", "cookie": "cookie_id"}


def resolve(rows, s=None):
    df = table(rows)
    cols = {c: IDS[c] for c in IDS if c in df.columns}
    return resolve_records(df, identifiers=cols, settings=s or id_settings(), record_id="record_id")


def test_shared_identifiers_link_across_formats():
    res = resolve([{"member": "M1", "phone": "13800138001"}, {"phone": "+86 138 0013 8001", "email": "A@x.cn"},
                   {"email": " a@x.cn"}, {"member": "M2"}])
    assert groups(res) == [{"r0", "r1", "r2"}, {"r3"}]


def test_blocked_and_placeholder_values_never_link():
    res = resolve([{"member": "M1", "phone": "13800000000"}, {"member": "M2", "phone": "13800000000"},
                   {"phone": "13800000000"}])
    assert groups(res) == [{"r0"}, {"r1"}, {"r2"}]
    assert res.blocked["phone"] == 3


def test_value_over_its_limit_is_not_a_link_and_is_reported():
    # one phone used by two different members (e.g. a shop's phone typed at the till)
    res = resolve([{"member": "M1", "phone": "13800138002"}, {"member": "M2", "phone": "13800138002"},
                   {"phone": "13800138002", "email": "x@y.cn"}])
    assert groups(res) == [{"r0"}, {"r1"}, {"r2"}]
    assert res.over_limit["identifier"].tolist() == ["phone"] and res.over_limit["persons"].tolist() == [2]


def test_family_tablet_links_neither_member_but_anonymous_cookie_joins_its_owner():
    res = resolve([
        {"member": "M1", "device": "tablet"}, {"member": "M2", "device": "tablet"},   # shared device
        {"device": "tablet"},                                                        # anonymous on it
        {"member": "M1", "cookie": "c1"}, {"cookie": "c1"}, {"cookie": "c1"},        # anonymous -> known
    ])
    g = groups(res)
    assert {"r0", "r3", "r4", "r5"} in g and {"r1"} in g and {"r2"} in g


def test_conflicting_member_ids_are_split_at_the_weakest_link():
    # M1 -phone- record -email- M2: the chain would glue two members; email is the weaker link
    s = id_settings(identifiers=[{"name": "member_id", "kind": "unique", "pattern": r"^M\d+$"},
                              {"name": "phone", "kind": "strong", "max_persons": 5},
                              {"name": "email", "kind": "strong", "max_persons": 5}])
    res = resolve([{"member": "M1", "phone": "13800138003"}, {"phone": "13800138003", "email": "e@x.cn"},
                   {"member": "M2", "email": "e@x.cn"}], s)
    assert groups(res) == [{"r0", "r1"}, {"r2"}]
    assert res.conflicts["dropped_identifier"].tolist() == ["email"]


def test_probabilistic_attaches_a_receipt_with_name_and_phone_tail():
    rng = np.random.default_rng(0)
    n = 400
    names = [f"name{i:03d}" for i in range(n)]
    phones = [f"139{i:08d}" for i in range(n)]
    crm = pd.DataFrame({"member": [f"M{i}" for i in range(n)], "phone": phones, "name": names,
                        "city": rng.choice(["sh", "bj", "gz"], n)})
    crm["phone_t"] = crm["phone"]
    pos = crm.sample(150, random_state=1).reset_index(drop=True)
    pos = pd.DataFrame({"name": pos["name"], "phone_t": pos["phone"].str[:3] + "****" + pos["phone"].str[-4:],
                        "city": pos["city"], "truth": pos["member"]})
    spec = {"crm": SourceSpec(identifiers={"member": "member_id", "phone": "phone"},
                              attributes={"name": "name", "phone_t": "phone_tail", "city": "city"}),
            "pos": SourceSpec(identifiers={}, attributes={"name": "name", "phone_t": "phone_tail", "city": "city"})}
    res = resolve_tables({"crm": crm, "pos": pos.drop(columns="truth")}, settings(), sources=spec)
    r = res.records
    crm_ids = r[r["channel"] == "crm"].set_index(crm["member"].to_numpy())["oneid"]
    pos_ids = r[r["channel"] == "pos"]["oneid"].to_numpy()
    right = (pos_ids == crm_ids.reindex(pos["truth"]).to_numpy()).mean()
    assert right > 0.95
    assert res.probabilistic["merges"] > 100 and 0 < res.probabilistic["prior"] < 1
    # a person is never merged with another *known* person by fuzzy evidence
    assert r[r["channel"] == "crm"]["oneid"].is_unique
    # Splink's objects (reference cycles holding DuckDB tables) are gone, not left for a
    # collection that may happen in a forked child
    import gc

    assert not [o for o in gc.get_objects() if type(o).__name__ == "Linker"]


def test_oneids_are_stable_when_data_grows_and_history_records_merges_and_splits():
    rid = pd.Series(["a", "b", "c", "d"])
    first, hist = assign_oneids(rid, np.array([0, 0, 1, 2]))
    assert hist.empty and first.nunique() == 3
    prev = pd.DataFrame({"record_id": rid, "oneid": first})
    # more data: a new record joins the first person; nothing else changes
    again, hist = assign_oneids(pd.Series(["a", "b", "c", "d", "e"]), np.array([0, 0, 1, 2, 0]), prev)
    assert again[:4].tolist() == first.tolist() and hist.empty
    # c and d turn out to be one person: the larger/smaller-id rule keeps one, history says merge
    merged, hist = assign_oneids(rid, np.array([0, 0, 1, 1]), prev)
    assert merged[0] == first[0] and merged[2] == merged[3] and merged[2] in {first[2], first[3]}
    assert hist["why"].tolist() == ["merge"]
    # a and b turn out to be two persons: the majority keeps the id (tie: smaller), history says split
    split, hist = assign_oneids(rid, np.array([0, 3, 1, 2]), prev)
    assert split[0] == first[0] and split[1] != first[0] and hist["why"].tolist() == ["split"]


def test_same_input_gives_same_oneids_without_a_registry():
    rows = [{"member": "M1", "phone": "13800138004"}, {"phone": "13800138004"}, {"member": "M9"}]
    assert resolve(rows).records["oneid"].tolist() == resolve(rows).records["oneid"].tolist()


def test_generic_entry_point_with_other_column_names_and_explain():
    df = pd.DataFrame({"KundenNr": ["M7", None, None], "Handy": ["13900000007", "139-0000-0007", None],
                       "cookie": [None, "ck", "ck"]})
    res = resolve_records(df, identifiers={"KundenNr": "member_id", "Handy": "phone", "cookie": "cookie_id"},
                          settings=id_settings())
    assert res.records["oneid"].nunique() == 1
    recs, links = explain(res.records["oneid"].iloc[0], res)
    assert len(recs) == 3 and set(links["how"]) == {"phone", "cookie_id"}
    assert not links["value_hash"].str.contains("139").any(), "evidence carries hashes, never values"
    with pytest.raises(SettingsError, match=r"Columns \['nope'\] are not in the table"):
        resolve_records(df, identifiers={"nope": "phone"}, settings=id_settings())


@pytest.mark.parametrize("change, message", [
    ({"identifiers": [{"name": "x", "kind": "sticky"}]}, r"kind must be one of \['unique', 'strong', 'weak'\]. Got 'sticky'"),
    ({"match_threshold": 1.5}, r"'match_threshold' setting must lie in \(0, 1\). Got 1.5"),
    ({"match_threshold": 0}, r"must lie in \(0, 1\). Got 0"),
    ({"blocking_rules": [["shoe_size"]]}, r"names \['shoe_size'\], which are not attributes"),
    ({"attributes": {"name": {"comparison": "soundex"}}}, r"comparison must be one of .*Got 'soundex'"),
    ({"sources": {"crm": {"identifiers": {"col": "passport"}}}}, r"unknown identifier 'passport'"),
    ({"colour": "red"}, r"Identity settings: unknown keys \[.colour.\]"),
])
def test_bad_settings_say_what_was_expected(change, message):
    with pytest.raises(SettingsError, match=message):
        IdentitySettings.from_dict({**BASE, **change})


def test_settings_round_trip_yaml_and_json():
    import json

    import yaml

    s = IdentitySettings.from_yaml()
    assert IdentitySettings.from_dict(yaml.safe_load(s.to_yaml())) == s
    assert IdentitySettings.from_dict(json.loads(s.to_json())) == s


def test_pairwise_and_cluster_quality_by_hand():
    pred = pd.Series(["x", "x", "x", "y"])
    truth = pd.Series([1, 1, 2, 2])
    q = pairwise_quality(pred, truth)
    assert q["precision"] == pytest.approx(1 / 3) and q["recall"] == pytest.approx(1 / 2)
    c = cluster_quality(pred, truth)
    assert c["over_merge_rate"] == 0.5 and c["under_merge_rate"] == 0.5


def test_a_new_placeholder_phone_on_half_a_percent_of_records_barely_moves_cluster_precision(cleaned_paths):
    """A dummy phone the block list does not know, typed on 0.5% of records across channels
    (cashiers, service agents), must not fuse strangers: the person limit catches it."""
    from workbench.clean import load_cleaned
    from workbench.identity import quality_against_truth

    s = IdentitySettings.from_yaml()
    tables = {c: load_cleaned(c, cleaned_paths) for c in s.sources}
    base = quality_against_truth(resolve_tables(tables, s), cleaned_paths)["clusters"]["cluster_precision"]
    rng = np.random.default_rng(5)
    dirty, hit = {}, 0
    for name, df in tables.items():
        df = df.copy()
        phone_cols = [c for c, t in s.sources[name].identifiers.items() if t == "phone"]
        if phone_cols:
            rows = rng.random(len(df)) < 0.005
            df.loc[rows, phone_cols[0]] = "+8613912345678"
            hit += int(rows.sum())
        dirty[name] = df
    res = resolve_tables(dirty, s)
    after = quality_against_truth(res, cleaned_paths)["clusters"]["cluster_precision"]
    assert hit > 100
    assert abs(base - after) < 0.001, (base, after)
    assert "phone" in set(res.over_limit["identifier"])


def _plain_quality(records: pd.DataFrame, person: pd.Series) -> dict:
    """The quality measures as first written (pandas groupby and map on the labels)."""
    df = pd.DataFrame({"p": records["oneid"].to_numpy(), "t": person.to_numpy()})
    ppc, cpp = df.groupby("p")["t"].nunique(), df.groupby("t")["p"].nunique()
    known = records.groupby("oneid")["anchored"].max()
    n_channels = records.groupby("oneid")["channel"].nunique()
    r = records.assign(known=records["oneid"].map(known), cross=records["oneid"].map(n_channels) > 1)
    rates = r.groupby("channel").agg(records=("oneid", "size"), known_person=("known", "mean"),
                                     linked_across_channels=("cross", "mean"))
    sizes = pd.cut(records["oneid"].value_counts(), bins=[0, 1, 5, 20, 100, 1000, np.inf],
                   labels=["1", "2–5", "6–20", "21–100", "101–1000", ">1000"]).value_counts()
    return {"clusters": {"clusters": len(ppc), "persons": len(cpp), "over_merge_rate": float((ppc > 1).mean()),
                         "under_merge_rate": float((cpp > 1).mean()), "cluster_precision": float((ppc == 1).mean())},
            "match_rate": rates.round(4).to_dict(orient="index"),
            "size_distribution": sizes.reindex(["1", "2–5", "6–20", "21–100", "101–1000", ">1000"]).to_dict()}


@pytest.mark.parametrize("seed", range(3))
def test_quality_on_integer_codes_equals_the_plain_pandas_measures(seed):
    from workbench.identity.evaluate import cluster_quality, quality_report

    rng = np.random.default_rng(seed)
    n = 3000
    records = pd.DataFrame({"oneid": pd.Series([f"OID-{i}" for i in rng.integers(0, 700, n)], dtype="str"),
                            "channel": pd.Categorical(rng.choice(["crm", "pos", "web"], n)),
                            "anchored": rng.random(n) < 0.3})
    person = pd.Series([f"P{i}" for i in rng.integers(0, 500, n)], dtype="str")
    q, plain = quality_report(records, person), _plain_quality(records, person)
    assert {k: q[k] for k in plain} == plain
    # missing labels take pandas' rules for NA groups
    gaps = person.where(rng.random(n) > 0.1)
    assert cluster_quality(records["oneid"], gaps) == _plain_quality(records, gaps)["clusters"]


def test_truth_positions_agree_with_the_join_on_the_text_of_the_keys():
    from workbench.identity.evaluate import truth_positions

    rng = np.random.default_rng(3)
    files = pd.Series(rng.choice(["a/x.csv", "b:c/y.csv", "z.json"], 500))
    truth = pd.DataFrame({"source_file": pd.Categorical(files), "source_row": rng.integers(-5, 10**6, 500)})
    truth = truth.drop_duplicates(["source_file", "source_row"]).reset_index(drop=True)
    keys = truth["source_file"].astype(str) + ":" + truth["source_row"].astype(str)
    ids = pd.concat([("ch:" + keys).sample(300, random_state=1),
                     pd.Series(["ch:a/x.csv:007", "ch:a/x.csv:+5", "nocolon", "ch:z.json", "ch:q.csv:1", "ch::1"])],
                    ignore_index=True).astype("str")
    text_key = ids.str.split(":", n=1).str[1]
    by_text = pd.Index(keys).get_indexer(text_key.fillna("\0"))
    assert truth_positions(ids, truth["source_file"], truth["source_row"]).tolist() == by_text.tolist()
    assert truth_positions(ids, truth["source_file"].astype(str), truth["source_row"]).tolist() == by_text.tolist()


def test_recall_ceiling_by_hand():
    from workbench.identity.evaluate import identifier_recall_ceiling

    obs = pd.DataFrame({"rec": [0, 1, 2], "identifier": ["phone"] * 3, "value": ["p", "p", "p"]})
    truth = pd.Series(["A", "A", "B", "A"])  # record 3 of A shares nothing; record 2 is B
    # A's pairs: (0,1) reachable, (0,3), (1,3) not -> ceiling 1/3
    assert identifier_recall_ceiling(obs, 4, truth) == pytest.approx(1 / 3)


# --------------------------------------------------------------------------- reviewed decisions
def test_review_decisions_override_the_probabilistic_stage(resolved_paths, tmp_path):
    import shutil

    from workbench.config import get_paths
    from workbench.identity import run_identity

    paths = get_paths(tmp_path / "data", tmp_path / "reports")
    shutil.copytree(resolved_paths.data, paths.data)
    links = pd.read_parquet(paths.processed / "identity_links.parquet")
    before = pd.read_parquet(paths.processed / "oneid_records.parquet").set_index("record_id")["oneid"]
    fuzzy = links[links["how"] == "probabilistic"].sort_values(["record_a", "record_b"]).iloc[0]
    # two known persons that nothing links
    known = before[before.index.str.startswith("crm_members:")]
    a, b = known.index[0], known[known != known.iloc[0]].index[0]
    assert before[a] != before[b] and before[fuzzy["record_a"]] == before[fuzzy["record_b"]]
    pd.DataFrame({"record_a": [fuzzy["record_a"], a], "record_b": [fuzzy["record_b"], b],
                  "decision": ["reject", "accept"]}).to_parquet(paths.processed / "match_decisions.parquet")
    res = run_identity(paths)
    after = res.records.set_index("record_id")["oneid"]
    assert after[fuzzy["record_a"]] != after[fuzzy["record_b"]], "a rejected fuzzy link is cut"
    assert after[a] == after[b], "an accepted pair is joined"
    assert res.probabilistic["review_rejected"] == 1 and res.probabilistic["review_accepted"] == 1
    assert (res.links["how"] == "review: accepted").sum() == 1
    review = pd.read_parquet(paths.processed / "identity_scored_pairs.parquet")
    assert len(review) and review["match_probability"].between(0.5, 1).all()
    assert set(review["record_a"]) <= set(after.index)


def test_bad_review_decision_is_refused(resolved_paths, tmp_path):
    import shutil

    from workbench.config import get_paths
    from workbench.identity import run_identity

    paths = get_paths(tmp_path / "data", tmp_path / "reports")
    shutil.copytree(resolved_paths.data, paths.data)
    rid = pd.read_parquet(paths.processed / "oneid_records.parquet")["record_id"]
    pd.DataFrame({"record_a": [rid[0]], "record_b": [rid[1]], "decision": ["maybe"]}).to_parquet(
        paths.processed / "match_decisions.parquet")
    with pytest.raises(ValueError, match="must be 'accept' or 'reject'. Got \\['maybe'\\]"):
        run_identity(paths)


def _persons_per_value_by_hand(edges: pd.DataFrame, kept: pd.DataFrame, labels: np.ndarray) -> dict:
    """The plain definition: per value, among the components it touches, the most components
    that carry the same trusted identifier type."""
    types_of = {}
    for r, ident in zip(kept["rec"], kept["identifier"]):
        types_of.setdefault(labels[r], set()).add(ident)
    out = {}
    for v, grp in edges.groupby("vcode"):
        comps = {labels[r] for r in grp["rec"]}
        counts = {}
        for c in comps:
            for ident in types_of.get(c, ()):
                counts[ident] = counts.get(ident, 0) + 1
        if counts:
            out[v] = max(counts.values())
    return out


@pytest.mark.parametrize("seed", range(5))
def test_persons_per_value_matches_the_plain_count_on_random_graphs(seed):
    """The fast count (array filters before the hash de-duplication) agrees with the plain
    definition wherever a value joins more than one person — the only counts a limit can
    exceed."""
    from workbench.identity.deterministic import _persons_per_value

    rng = np.random.default_rng(seed)
    n = 400
    labels = pd.factorize(rng.integers(0, 150, n))[0]
    kept_rec = rng.choice(n, 120, replace=False)
    kept = pd.DataFrame({"rec": kept_rec, "identifier": pd.Categorical(rng.choice(["member_id", "phone"], 120))})
    edges = pd.DataFrame({"rec": rng.integers(0, n, 900), "vcode": rng.integers(0, 250, 900)})
    fast = _persons_per_value(edges, kept, labels)
    plain = {v: k for v, k in _persons_per_value_by_hand(edges, kept, labels).items() if k > 1}
    assert len(plain) > 10  # the random graph has values that join several persons
    assert fast[fast > 1].to_dict() == plain


def test_a_pattern_is_optional_and_values_that_fail_one_are_counted():
    """Issue 13: the sample's `^M\\d{8}$` silently ignored every other id format."""
    rows = [{"member": "M1"}, {"member": "VIP-7"}, {"member": "VIP-7"}, {"member": "12345"}]
    with_pattern = resolve(rows)
    assert with_pattern.unmatched == {"table": {"member": 3}}   # counted per table and column, not dropped silently
    assert {"r1", "r2"} not in groups(with_pattern)
    no_pattern = resolve(rows, id_settings(identifiers=[{"name": "member_id", "kind": "unique"}]))
    assert {"r1", "r2"} in groups(no_pattern)          # 'VIP-7' is an id now
    assert not any(n for cols in no_pattern.unmatched.values() for n in cols.values())


def test_a_source_spec_naming_a_missing_column_lists_the_table_columns():
    df = table([{"member": "M1", "phone": "13800138001"}])
    spec = SourceSpec(identifiers={"member_no": "member_id"})
    with pytest.raises(KeyError, match=r"the columns \['member_no'\] named in the identity settings are not in the "
                                       r"cleaned table. Its columns: \['member', 'phone', 'record_id'\]"):
        resolve_tables({"shop": df}, id_settings(), sources={"shop": spec})


def test_a_mapped_channel_without_a_source_spec_gets_a_spec_to_paste():
    from workbench.identity import check_sources
    from workbench.mapping import ChannelMapping

    m = ChannelMapping.from_dict({"channel": "shop", "role": "orders", "source": {"pattern": "shop/*.csv"},
                                  "fields": {"member_id": {"column": "会员", "type": "identifier"},
                                             "mobile": {"column": "手机", "type": "phone"},
                                             "ordered_at": {"column": "时间", "type": "timestamp", "required": True},
                                             "amount": {"column": "金额", "type": "amount", "required": True}}})
    with pytest.raises(SettingsError, match=r"(?s)No identity source spec for the mapped channel\(s\) \['shop'\].*"
                                            r"sources:\n  shop:\n    identifiers: \{member_id: member_id, mobile: phone\}"):
        check_sources(settings(), {"shop": m})
