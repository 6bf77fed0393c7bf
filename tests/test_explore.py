"""Interactive explorers: the pure functions behind them, and the widgets driven headless."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from workbench import explore as ex
from workbench.config import get_paths
from workbench.identity import explain
from workbench.privacy.scan import scan_text_for_pii


# ----------------------------------------------------------------------------- helpers
def _frame(n: int = 40, seed: int = 0) -> pd.DataFrame:
    """A synthetic segmentation frame like load_segmentation's."""
    rng = np.random.default_rng(seed)
    idx = pd.Index([f"OID-{i:04d}" for i in range(n)], name="oneid")
    orders = rng.integers(0, 6, n)
    seg = pd.Categorical(rng.choice(["Champions", "Lost", "At Risk"], n),
                         categories=["Champions", "At Risk", "Lost", "Never used"])
    churn = rng.uniform(0, 1, n)
    return pd.DataFrame({
        "segment": seg,
        "cluster_name": pd.Series(rng.choice(["big spenders", "browsers"], n), index=idx).where(orders > 0),
        "group": rng.choice(["VIP care", "Dormant", "Occasional buyers"], n),
        "churn_risk": churn, "churn_risk_decile": pd.array(np.ceil(churn * 10).astype(int), dtype="Int64"),
        "orders": orders, "net_revenue": orders * 100.0, "clv_12m": orders * 20.0,
        "channels": rng.choice(["crm_members,web_events", "web_events", "app_events,pos_receipts"], n),
        "wechat_follower": rng.random(n) < 0.3,
    }, index=idx)


def _copy(paths, tmp_path):
    """A private copy of the resolved sample (the fixture is read-only): processed + cleaned + metrics."""
    data = tmp_path / "data"
    for sub in ("processed", "interim/cleaned", "interim/metrics"):
        if (paths.data / sub).exists():
            shutil.copytree(paths.data / sub, data / sub)
    return get_paths(data, tmp_path / "reports")


def _raw_contacts(paths, oneids: str | set[str]) -> list[str]:
    """Every raw phone and e-mail on the persons' cleaned records (what must never be shown)."""
    from workbench.clean import load_cleaned

    oneids = {oneids} if isinstance(oneids, str) else set(oneids)
    reg = pd.read_parquet(paths.processed / "oneid_records.parquet")
    recs = reg[reg["oneid"].isin(oneids)]
    values = []
    for channel, r in recs.groupby("channel"):
        df = load_cleaned(channel, paths)
        df = df[df["record_id"].isin(r["record_id"])]
        for col in ("phone", "email"):
            if col in df.columns:
                values += df[col].dropna().astype(str).tolist()
    return sorted(set(values))


@pytest.fixture(scope="module")
def rich_person(resolved_paths, profile_360) -> str:
    """A member with a phone, an e-mail, orders and the most channels (ties: OneID)."""
    p = profile_360[profile_360["is_member"] & profile_360["phone"].notna() & profile_360["email"].notna()
                    & (profile_360["orders"] > 0)]
    return str(p.sort_values(["n_channels", "oneid"], ascending=[False, True])["oneid"].iloc[0])


@pytest.fixture()
def review(resolved_paths, tmp_path):
    """A copy of the resolved sample with three extra probabilistic links of known probability
    and a scored-pairs file (rejected pairs), so the review queue is never empty."""
    paths = _copy(resolved_paths, tmp_path)
    reg = pd.read_parquet(paths.processed / "oneid_records.parquet")
    # records of different persons, from channels that carry fuzzy attributes
    firsts = reg[reg["channel"].isin(["pos_receipts", "ecommerce_orders", "crm_members"])] \
        .drop_duplicates("oneid").sort_values("record_id").head(10)["record_id"].tolist()
    links = pd.read_parquet(paths.processed / "identity_links.parquet")
    extra = pd.DataFrame({"record_a": firsts[0:3], "record_b": firsts[3:6], "how": "probabilistic",
                          "value_hash": None, "match_weight": np.nan,
                          "match_probability": [0.995, 0.7, 0.9995]})
    extra["match_weight"] = np.log2(extra["match_probability"] / (1 - extra["match_probability"]))
    pd.concat([links, extra], ignore_index=True).to_parquet(paths.processed / "identity_links.parquet", index=False)
    scored = pd.DataFrame({"record_a": [firsts[6], firsts[7], firsts[8], firsts[0]],
                           "record_b": [firsts[7], firsts[8], firsts[9], firsts[3]],
                           # the second is just below the settings' threshold: a "below threshold" candidate
                           "match_probability": [0.6, ex._threshold(paths) - 0.02, 0.3, 0.995]})
    scored["match_weight"] = np.log2(scored["match_probability"] / (1 - scored["match_probability"]))
    scored.to_parquet(paths.processed / "identity_scored_pairs.parquet", index=False)
    return paths, firsts


# ----------------------------------------------------------------------------- segments
def test_segment_table_sizes_order_and_means():
    f = _frame()
    t = ex.segment_table(f, by="segment")
    assert t["persons"].sum() == len(f) and t["share"].sum() == pytest.approx(1.0)
    assert list(t.index) == [c for c in ["Champions", "At Risk", "Lost"] if (f["segment"] == c).any()]
    lost = f[f["segment"] == "Lost"]
    assert t.loc["Lost", "revenue"] == pytest.approx(lost["net_revenue"].sum())
    assert t.loc["Lost", "mean_churn_risk"] == pytest.approx(lost["churn_risk"].mean())
    assert t["revenue_share"].sum() == pytest.approx(1.0)
    # deciles in numeric order (10 after 9), clusters by size with the not-segmented ones last
    d = ex.segment_table(f, by="churn_risk_decile")
    assert [int(x) for x in d.index] == sorted(int(x) for x in d.index)
    c = ex.segment_table(f, by="cluster_name")
    assert c.index[-1] == ex.NOT_SEGMENTED and c["persons"].sum() == len(f)
    assert c.loc[ex.NOT_SEGMENTED, "persons"] == int(f["cluster_name"].isna().sum())
    # another value column; same result whatever the row order
    v = ex.segment_table(f, by="group", value="clv_12m")
    assert v["revenue"].sum() == pytest.approx(f["clv_12m"].sum())
    pd.testing.assert_frame_equal(v, ex.segment_table(f.sample(frac=1, random_state=1), by="group", value="clv_12m"))


def test_segment_table_errors_name_what_was_expected():
    with pytest.raises(KeyError, match=r"missing column\(s\) \['nope'\].*Columns present"):
        ex.segment_table(_frame(), by="nope")
    with pytest.raises(ValueError, match="'by' parameter"):
        ex.segment_table(_frame(), by=3)


def test_segment_profile_and_plot():
    f = _frame()
    prof = ex.segment_profile(f, by="group", segment="VIP care")
    vip = f[f["group"] == "VIP care"]
    assert prof.loc["orders", "segment"] == pytest.approx(vip["orders"].mean())
    assert prof.loc["orders", "everyone"] == pytest.approx(f["orders"].mean())
    assert prof.loc["wechat_follower", "unit"] == "share 0–1"
    assert prof.loc["orders", "index"] == pytest.approx(round(100 * vip["orders"].mean() / f["orders"].mean(), 1))
    with pytest.raises(ValueError, match="one of the segments"):
        ex.segment_profile(f, by="group", segment="nobody")
    fig = ex.plot_segment(f, by="group", segment="VIP care")
    assert len(fig.axes) >= 2 and all(ax.get_xlabel() and ax.get_ylabel() for ax in fig.axes[:2])
    assert "VIP care" in fig._suptitle.get_text()


def test_load_segmentation_joins_what_exists(tmp_path):
    paths = get_paths(tmp_path / "data", tmp_path / "reports").ensure()
    ids = ["OID-b", "OID-a", "OID-c"]
    pd.DataFrame({"oneid": ids, "phone": ["+8613800138001"] * 3, "phone_masked": ["138****8001"] * 3,
                  "name": ["张伟"] * 3, "net_revenue": [1.0, 2.0, 0.0], "channels": ["web_events"] * 3}) \
        .to_parquet(paths.processed / "customer_360.parquet", index=False)
    pd.DataFrame({"segment": ["Lost", "Champions", "Lost"]}, index=pd.Index(ids, name="oneid")) \
        .to_parquet(paths.processed / "rfm_segments.parquet")
    pd.DataFrame({"cluster": [0], "cluster_name": ["buyers"]}, index=pd.Index(["OID-a"], name="oneid")) \
        .to_parquet(paths.processed / "clusters.parquet")
    frame = ex.load_segmentation(paths)
    assert list(frame.index) == ["OID-a", "OID-b", "OID-c"]
    assert {"phone", "name"}.isdisjoint(frame.columns) and "phone_masked" in frame.columns
    assert frame.loc["OID-a", "cluster_name"] == "buyers" and pd.isna(frame.loc["OID-b", "cluster_name"])
    assert "scores" in frame.attrs["missing"] and "clusters" in frame.attrs["sources"]
    assert set(ex.available_segmentations(frame).values()) == {"segment", "cluster_name"}
    pd.DataFrame({"oneid": ids, "churn_risk": [0.1, 0.9, 0.5], "churn_risk_decile": [1, 10, 5]}) \
        .to_parquet(paths.processed / "scores.parquet", index=False)
    frame = ex.load_segmentation(paths)
    assert frame.loc["OID-a", "churn_risk_decile"] == 10 and "scores" in frame.attrs["sources"]


def test_segment_explorer_responds_headless():
    f = _frame()
    w = ex.segment_explorer(f)
    c = w.controls
    assert c.segmentation.value == "segment" and c.segment.value == "Champions"
    assert c.chart.value[:4] == b"\x89PNG" and "orders" in c.profile.value
    c.segmentation.value = "churn_risk_decile"
    assert [int(x) for x in c.segment.options] == sorted(int(x) for x in c.segment.options)
    first_chart = c.chart.value
    c.segment.value = c.segment.options[-1]
    n = int((f["churn_risk_decile"].astype("string") == c.segment.value).sum())
    assert f"{n:,} person" in c.summary.value and c.chart.value != first_chart
    c.segmentation.value = "cluster_name"
    assert ex.NOT_SEGMENTED in c.segment.options and "big spenders" in c.table.value
    with pytest.raises(ValueError, match="no segmentation column"):
        ex.segment_explorer(f[["orders"]])


# ----------------------------------------------------------------------------- one customer
def test_find_customers_by_phone_email_and_oneid(profile_360, rich_person):
    row = profile_360.set_index("oneid").loc[rich_person]
    by_mask = ex.find_customers(profile_360, row["phone_masked"], limit=None)
    assert rich_person in set(by_mask["oneid"]) and (by_mask["phone_masked"] == row["phone_masked"]).all()
    by_tail = ex.find_customers(profile_360, row["phone"][-4:], limit=None)
    assert rich_person in set(by_tail["oneid"]) and by_tail["matched_on"].eq("phone last 4").all()
    assert by_tail["oneid"].is_monotonic_increasing
    by_mail = ex.find_customers(profile_360, "  " + row["email"].upper() + " ")
    assert by_mail["oneid"].tolist() == [rich_person] and by_mail["matched_on"].iloc[0] == "email"
    assert ex.find_customers(profile_360, row["phone"])["oneid"].tolist() == [rich_person]
    assert ex.find_customers(profile_360, rich_person)["matched_on"].tolist() == ["oneid"]
    prefix = ex.find_customers(profile_360, rich_person[:6].lower(), limit=5)
    assert len(prefix) <= 5 and prefix.attrs["matches"] >= len(prefix)
    assert prefix["oneid"].str.startswith(rich_person[:6]).all()
    for found in (by_mask, by_tail, by_mail, prefix):
        assert {"phone", "email", "name", "member_id"}.isdisjoint(found.columns)
        assert scan_text_for_pii(found.to_string(), known_values=[row["phone"], row["email"]]) == []
    assert ex.find_customers(profile_360, "nobody@nowhere.cn").empty
    assert ex.find_customers(profile_360, "   ").empty
    with pytest.raises(ValueError, match="'query' parameter"):
        ex.find_customers(profile_360, 13800138000)


def test_timeline_is_ordered_complete_and_masked(resolved_paths, rich_person):
    tl = ex.customer_timeline(resolved_paths, rich_person)
    reg = pd.read_parquet(resolved_paths.processed / "oneid_records.parquet")
    recs = reg[reg["oneid"] == rich_person]
    assert list(tl.columns) == list(ex.TIMELINE_COLUMNS)
    assert set(tl["record_id"]) == set(recs["record_id"]) and len(tl) >= len(recs)
    assert tl["time"].dropna().is_monotonic_increasing and set(tl["channel"]) == set(recs["channel"])
    orders = tl[tl["channel"] == "ecommerce_orders"]
    assert orders.empty or orders["amount_cny"].notna().all()
    raw = _raw_contacts(resolved_paths, rich_person)
    assert raw, "the person has raw contacts to hide"
    text = tl.to_string() + tl.to_html()
    assert scan_text_for_pii(text, known_values=raw) == []
    assert "****" in text  # masked values are shown instead
    with pytest.raises(KeyError, match="Unknown OneID"):
        ex.customer_timeline(resolved_paths, "OID-does-not-exist")


def test_person_evidence_is_explain(resolved_paths, rich_person):
    records, links = ex.person_evidence(resolved_paths, rich_person)
    r2, l2 = explain(rich_person, resolved_paths)
    assert records["record_id"].tolist() == r2["record_id"].tolist()
    key = ["record_a", "record_b", "how"]
    pd.testing.assert_frame_equal(links[key].astype(str).sort_values(key).reset_index(drop=True),
                                  l2[key].astype(str).sort_values(key).reset_index(drop=True))


def test_customer_lookup_headless(resolved_paths, profile_360, rich_person):
    w = ex.customer_lookup(resolved_paths, profile=profile_360)
    c = w.controls
    c.query.value = rich_person
    assert c.person.value == rich_person
    assert c.graph.value[:4] == b"\x89PNG" and "value_hash" in c.links.value and "records" in c.timeline.value
    shown = c.results.value + c.card.value + c.timeline.value + c.links.value
    assert scan_text_for_pii(shown, known_values=_raw_contacts(resolved_paths, rich_person)) == []
    c.query.value = "nobody@nowhere.cn"
    assert "No person matches" in c.message.value and c.person.value is None and c.timeline.value == ""
    c.query.value = rich_person[:4]
    c.search.click()
    assert len(c.person.options) > 1


# ----------------------------------------------------------------------------- match review
def test_review_candidates_window_order_and_evidence(review):
    review_paths, f = review
    cand = ex.review_candidates(review_paths, low=0.5, high=0.999, limit=None)
    assert cand["match_probability"].between(0.5, 0.999, inclusive="left").all()
    assert (cand["record_a"] < cand["record_b"]).all()
    pairs = set(zip(cand["record_a"], cand["record_b"]))
    assert tuple(sorted((f[0], f[3]))) in pairs and tuple(sorted((f[1], f[4]))) in pairs
    assert tuple(sorted((f[2], f[5]))) not in pairs  # 0.9995 ≥ high
    below = cand[cand["source"] == "below threshold"]
    assert set(zip(below["record_a"], below["record_b"])) == {tuple(sorted((f[6], f[7]))), tuple(sorted((f[7], f[8])))}
    # most borderline first: distance of the weight from the threshold's weight
    t = cand.attrs["threshold"]
    dist = (cand["match_weight"] - np.log2(t / (1 - t))).abs()
    assert dist.is_monotonic_increasing
    # evidence is there, masked
    assert cand["oneid_a"].notna().all() and cand["channel_b"].notna().all()
    assert cand["phone_tail_a"].dropna().str.fullmatch(r"\d{3}\*{4}\d{4}|\d{3}\*{4}\d{3,4}").all()
    assert cand["address_a"].dropna().str.endswith("-…").all()
    raw = _raw_contacts(review_paths, set(cand["oneid_a"]) | set(cand["oneid_b"]))
    assert scan_text_for_pii(cand.to_string(), known_values=raw) == []
    assert len(ex.review_candidates(review_paths, low=0.5, high=0.999, limit=2)) == 2
    with pytest.raises(ValueError, match="'low' parameter must be below 'high'"):
        ex.review_candidates(review_paths, low=0.9, high=0.5)


def test_review_candidates_without_scored_pairs(review):
    review_paths, f = review
    (review_paths.processed / "identity_scored_pairs.parquet").unlink()
    cand = ex.review_candidates(review_paths, low=0.5, high=0.999)
    assert set(cand["source"]) == {"accepted link"}


def test_decisions_round_trip_latest_wins_and_validation(review):
    review_paths, f = review
    assert ex.load_decisions(review_paths).empty
    ex.save_decision(review_paths, f[3], f[0], "accept", reviewer="li", note="same receiver")
    d = ex.load_decisions(review_paths)
    assert list(d.columns) == list(ex.DECISION_COLUMNS) and len(d) == 1
    assert (d.loc[0, "record_a"], d.loc[0, "record_b"]) == tuple(sorted((f[0], f[3])))
    assert d.loc[0, "decision"] == "accept" and d.loc[0, "reviewer"] == "li"
    assert str(d["decided_at"].dtype) == "datetime64[us, UTC]"
    first_at = d.loc[0, "decided_at"]
    ex.save_decision(review_paths, f[0], f[3], "reject")
    ex.save_decision(review_paths, f[1], f[4], "reject")
    d = ex.load_decisions(review_paths)
    assert len(d) == 2
    row = d[(d["record_a"] == min(f[0], f[3])) & (d["record_b"] == max(f[0], f[3]))].iloc[0]
    assert row["decision"] == "reject" and row["decided_at"] >= first_at and pd.isna(row["reviewer"])
    # decided pairs leave the review queue unless asked for
    cand = ex.review_candidates(review_paths, limit=None)
    assert tuple(sorted((f[0], f[3]))) not in set(zip(cand["record_a"], cand["record_b"]))
    every = ex.review_candidates(review_paths, limit=None, include_decided=True)
    assert set(every["decision"].dropna()) == {"reject"}
    with pytest.raises(ValueError, match=r"'decision' parameter must be one of \['accept', 'reject'\].*'maybe'"):
        ex.save_decision(review_paths, f[0], f[3], "maybe")
    with pytest.raises(KeyError, match="not in the OneID registry"):
        ex.save_decision(review_paths, f[0], "web_events:nowhere:1", "accept")
    with pytest.raises(ValueError, match="two different records"):
        ex.save_decision(review_paths, f[0], f[0], "accept")
    assert len(ex.load_decisions(review_paths)) == 2  # failed calls wrote nothing


def test_match_review_widget_saves_clicks(review):
    review_paths, f = review
    w = ex.match_review(review_paths, low=0.5, high=0.999, limit=3, reviewer="wang")
    c = w.controls
    n = len(c.candidates)
    assert n == 3 and f"pair 1 of {n}" in c.counter.value and "make report" in w.children[0].value
    first = c.candidates.iloc[0]
    assert first["record_a"] in c.pair.value and f"{first['match_probability']:.4f}" in c.pair.value
    c.note.value = "same phone tail and name"
    c.accept.click()
    c.reject.click()
    c.skip.click()
    d = ex.load_decisions(review_paths)
    assert len(d) == 2 and set(d["reviewer"]) == {"wang"}
    got = dict(zip(zip(d["record_a"], d["record_b"]), d["decision"]))
    assert got[(first["record_a"], first["record_b"])] == "accept"
    second = c.candidates.iloc[1]
    assert got[(second["record_a"], second["record_b"])] == "reject"
    assert d.set_index("record_a").loc[first["record_a"], "note"] == "same phone tail and name"
    assert c.accept.disabled and "No more candidates" in c.pair.value and "skipped 1" in c.counter.value
    # the next review starts with the pair that was skipped
    again = ex.match_review(review_paths, low=0.5, high=0.999, limit=3)
    assert again.controls.candidates.iloc[0]["record_a"] == c.candidates.iloc[2]["record_a"]
    # nothing to review: the widget says so and cannot save
    empty = ex.match_review(review_paths, low=0.0001, high=0.0002)
    assert empty.controls.candidates.empty and empty.controls.accept.disabled
    assert "No undecided pair" in empty.controls.pair.value
