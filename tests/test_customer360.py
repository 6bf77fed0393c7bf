"""Customer 360 profile built from the canonical layer."""

from __future__ import annotations

import pandas as pd
import pytest

from workbench.canonical import linked_cleaned, load_registry, totals_from_cleaned
from workbench.customer360 import _contact, _pick, _sessions, build_customer_360, data_dictionary, public_view, reconcile


def test_one_row_per_oneid_and_totals_reconcile(resolved_paths, layer, profile_360):
    registry = load_registry(resolved_paths)
    assert profile_360["oneid"].is_unique
    assert set(profile_360["oneid"]) == set(registry["oneid"])
    rec = reconcile(profile_360, layer)
    assert rec["ok"].all(), rec
    assert profile_360["orders"].sum() > 0 and profile_360["n_records"].sum() == len(registry)


def test_as_of_drops_later_records_and_still_reconciles(resolved_paths, layer, profile_360):
    cutoff = pd.Timestamp("2026-01-01", tz="UTC")
    early = build_customer_360(layer, as_of="2026-01-01")
    assert (early["last_seen"] < cutoff).all()
    assert early["last_order_at"].dropna().lt(cutoff).all()
    assert len(early) < len(profile_360)
    assert reconcile(early, layer)["ok"].all()
    exp = totals_from_cleaned(resolved_paths, layer.config.mappings, as_of="2026-01-01")
    assert round(early["net_revenue"].sum(), 2) == exp["net_revenue"]
    assert (early["days_since_last_order"].dropna() > 0).all()
    # the same columns at every as-of date (model features need one schema)
    assert list(early.columns) == list(profile_360.columns)


def test_profile_columns_follow_the_event_types_present(layer, profile_360):
    types = set(layer.table("events")["event_type"])
    assert {"live_stream_watched", "live_stream_watched_minutes", "email_opened", "sessions"} <= set(profile_360)
    assert "Live Stream Watched" in types and "Email Opened" in types
    # counts per type equal the canonical events (quantity-weighted)
    ev = layer.table("events")
    watched = ev[ev["event_type"] == "Live Stream Watched"].groupby("oneid")["quantity"].sum()
    got = profile_360.set_index("oneid")["live_stream_watched"]
    assert (got.reindex(watched.index) == watched).all() and got.sum() == watched.sum()


def test_dictionary_describes_every_column(profile_360):
    d = data_dictionary(profile_360)
    assert list(d.index) == list(profile_360.columns)
    assert (d["type"] != "missing").all()
    assert d["meaning"].str.len().gt(10).all()
    assert set(d["personal data"]) <= {"none", "direct", "quasi", "masked", "pseudonym"}
    assert d["sources"].str.len().gt(0).all()


def test_public_view_has_no_raw_contacts(profile_360):
    view = public_view(profile_360)
    direct = {c for c, pii in data_dictionary(profile_360)["personal data"].items() if pii == "direct"}
    assert direct and not direct & set(view.columns)
    phones = profile_360["phone"].dropna()
    assert len(phones) and not view.astype(str).isin(set(phones)).any().any()
    masked = profile_360["phone_masked"].dropna()
    assert masked.str.fullmatch(r"(1\d\d\*{4}\d{4})|(\+\d{1,3} .*)").all()


def test_email_unsubscribe_revokes_consent(layer, profile_360):
    ev = layer.table("events")
    unsub = set(ev.loc[ev["event_type"] == "Unsubscribed", "oneid"])
    p = profile_360.set_index("oneid")
    assert len(unsub) > 0
    # only a profile consent given after the unsubscribe can keep e-mail consent
    assert not p.loc[list(unsub)].query("not is_member")["consent_email"].fillna(False).any()


def test_pick_follows_the_declared_rule():
    cand = pd.DataFrame({
        "oneid": ["a", "a", "a", "b"],
        "value": ["张伟", "张 伟2", "张三", "李四"],
        "at": pd.to_datetime(["2025-01-01", "2026-01-01", "2025-06-01", "2025-01-01"], utc=True),
        "rank": [0, 2, 0, 1],  # 0 = a profile mapping
    })
    by_priority = _pick(cand, "source_priority")
    assert by_priority["a"] == "张三"  # the profile wins; within it the latest
    assert _pick(cand, "most_recent")["a"] == "张 伟2"
    assert _pick(cand.sample(frac=1, random_state=3), "source_priority").equals(by_priority)


def test_contact_prefers_the_profile_then_the_most_frequent():
    cand = pd.DataFrame({"oneid": ["a"] * 4 + ["b"] * 3, "role": ["events"] * 3 + ["profile"] + ["orders"] * 3,
                         "value": ["x", "x", "x", "p", "u", "v", "v"], "rank": 0,
                         "at": pd.to_datetime(["2026-01-0%d" % i for i in range(1, 8)], utc=True)})
    assert _contact(cand).to_dict() == {"a": "p", "b": "v"}


def test_sessions_split_on_thirty_minute_gaps():
    t = pd.to_datetime(["2026-01-01 10:00", "2026-01-01 10:20", "2026-01-01 10:51", "2026-01-01 10:00",
                        "2026-01-02 10:00"], utc=True)
    ev = pd.DataFrame({"oneid": ["a", "a", "a", "b", "b"], "event_time": t})
    s = _sessions(ev.iloc[::-1], pd.Timedelta(minutes=30))
    assert s.to_dict() == {"a": 2, "b": 2}


def test_bad_rule_is_explained(layer):
    with pytest.raises(ValueError, match="'demographics_rule' parameter must be one of"):
        build_customer_360(layer, demographics_rule="newest")


def test_unresolved_records_are_refused(resolved_paths):
    registry = load_registry(resolved_paths)
    channel = registry["channel"].iloc[0]
    with pytest.raises(ValueError, match="have no OneID.*Rerun notebook 03"):
        linked_cleaned(resolved_paths, channel, registry.iloc[1:])


def test_computed_always_present_block_gives_the_population(resolved_paths, layer, monkeypatch):
    """Blocks another engine computed (the Spark engine's path, checked here without Spark): when they
    cover the always-present columns, their OneIDs are the population and their unique-identifier flag
    is used, so the build never reads the identifiers; the profile is the one built here alone."""
    from workbench.canonical import CanonicalLayer, load_canonical
    from workbench.customer360 import ComputedBlocks

    as_of = "2026-01-01"
    local = build_customer_360(layer, as_of=as_of)
    ids = layer.table("identifiers", as_of=as_of)
    numbered = ids.loc[ids["identifier"].isin(layer.config.identity.names_of_kind("unique")), "oneid"]
    core = ["n_records", "first_seen", "last_seen", "channels", "n_channels", "n_identifiers"]
    values = local[["oneid", *core]].assign(has_unique_identifier=local["oneid"].isin(set(numbered)).to_numpy())
    assert 0 < values["has_unique_identifier"].sum() < len(values)
    sources = {"records": sorted(layer.table("records", as_of=as_of)["channel"].unique().tolist())}
    loaded = []
    table = CanonicalLayer.table
    monkeypatch.setattr(CanonicalLayer, "table", lambda self, name, **k: loaded.append(name) or table(self, name, **k))
    fresh = load_canonical(resolved_paths)          # nothing of it loaded yet
    got = build_customer_360(fresh, as_of=as_of, computed=ComputedBlocks(values, sources))
    assert "identifiers" not in loaded and "events" in loaded, sorted(set(loaded))
    pd.testing.assert_frame_equal(got, local)       # the local events block found its rows without the core's
    assert got.attrs == local.attrs
    with pytest.raises(ValueError, match="present, unique and sorted. Got 0 missing, 0 repeated, not sorted"):
        build_customer_360(fresh, as_of=as_of, computed=ComputedBlocks(values.iloc[::-1], sources))
    with pytest.raises(ValueError, match=r"give every column of a block or none"):
        build_customer_360(fresh, as_of=as_of, computed=ComputedBlocks(values.drop(columns="channels"), sources))
