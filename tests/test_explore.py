"""Interactive explorers: the pure functions behind them, and the widgets driven headless.

Two small data folders of their own (built once per module, so the tests do not depend on
other fixtures): the sample (its nine channels, with segments) and an events-only brand whose
channels have other names and which has no members, orders, phones or scores — everything in
``workbench.explore`` must work on both.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench import explore as ex
from workbench.config import get_paths
from workbench.identity import explain
from workbench.privacy.scan import scan_text_for_pii

SAMPLE_CHANNELS = ("crm_members", "ecommerce_orders", "web_events", "app_events", "pos_receipts", "pos_returns",
                   "livestream_interactions", "wechat_followers", "email_events", "service_tickets")


# ----------------------------------------------------------------------------- data folders
def _pipeline(paths, *, mappings=None, identity=None, segments=True):
    from workbench.canonical import run_canonical
    from workbench.clean import clean_all
    from workbench.customer360 import run_customer_360
    from workbench.identity import run_identity
    from workbench.ingest import ingest_all
    from workbench.segments.stage import run_clusters, run_engagement, run_rfm

    ingest_all(paths, mappings=mappings, progress=False, log=None)
    clean_all(paths, progress=False)
    run_identity(paths, settings=identity, evaluate=identity is None)
    run_canonical(paths, log=None)
    run_customer_360(paths)
    if segments:
        run_rfm(paths)
        run_clusters(paths)
        run_engagement(paths)
    return paths


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """The sample (400 persons) through identity, the canonical layer, the 360 and the segments
    (no model scores, no CLV: those are joined when present)."""
    from workbench.sample import make_sample

    root = tmp_path_factory.mktemp("explore-sample")
    make_sample(400, seed=5, out=root / "data" / "raw")
    return _pipeline(get_paths(root / "data", root / "reports").ensure())


@pytest.fixture(scope="module")
def brand(tmp_path_factory):
    """Another brand: only a site clickstream ('site') and an e-mail export ('mail') — no
    profile, no orders, no phones, no fuzzy attributes — under channel names of its own."""
    from workbench.identity.settings import IdentitySettings
    from workbench.mapping import ChannelMapping, load_mappings
    from workbench.sample import make_sample

    root = tmp_path_factory.mktemp("explore-brand")
    make_sample(300, seed=11, out=root / "data" / "raw")
    rename = {"web_events": "site", "email_events": "mail"}
    package = load_mappings()
    mappings = {new: ChannelMapping.from_dict({**package[old].to_dict(), "channel": new}) for old, new in rename.items()}
    s = IdentitySettings.from_yaml().to_dict()
    s.update(attributes={}, blocking_rules=[], sources={new: s["sources"][old] for old, new in rename.items()})
    return _pipeline(get_paths(root / "data", root / "reports").ensure(), mappings=mappings,
                     identity=IdentitySettings.from_dict(s))


@pytest.fixture(scope="module")
def profile(sample):
    from workbench.customer360 import load_customer_360

    return load_customer_360(sample)


@pytest.fixture(scope="module")
def rich_person(profile) -> str:
    """A member with a phone, an e-mail, orders and the most channels (ties: OneID)."""
    p = profile[profile["is_member"] & profile["phone"].notna() & profile["email"].notna() & (profile["orders"] > 0)]
    return str(p.sort_values(["n_channels", "oneid"], ascending=[False, True])["oneid"].iloc[0])


def _copy(paths, tmp_path):
    """A private copy of a data folder (processed, cleaned, metrics and the recorded settings)."""
    data = tmp_path / "data"
    for sub in ("processed", "interim/cleaned", "interim/metrics", "interim/settings"):
        if (paths.data / sub).exists():
            shutil.copytree(paths.data / sub, data / sub)
    return get_paths(data, tmp_path / "reports")


def _raw_contacts(paths, oneids: str | set[str]) -> list[str]:
    """Every raw phone and e-mail of the persons (cleaned columns named phone or email, and the
    canonical layer's phone and e-mail traits): what must never be shown."""
    from workbench.canonical import load_canonical
    from workbench.clean import load_cleaned

    oneids = {oneids} if isinstance(oneids, str) else set(oneids)
    reg = pd.read_parquet(paths.registry)
    recs = reg[reg["oneid"].isin(oneids)]
    values = []
    for channel, r in recs.groupby("channel"):
        df = load_cleaned(channel, paths, columns=["record_id", "phone", "email"])
        df = df[df["record_id"].isin(r["record_id"])]
        for col in ("phone", "email"):
            if col in df.columns:
                values += df[col].dropna().astype(str).tolist()
    traits = load_canonical(paths).table("traits")
    t = traits[traits["oneid"].isin(oneids) & traits["trait"].isin(["phone", "email"])]
    return sorted(set(values) | set(t["value"].dropna().astype(str)))


# ----------------------------------------------------------------------------- genericity
def test_no_sample_channel_or_column_names_in_the_module():
    source = Path(ex.__file__).read_text(encoding="utf-8")
    for name in SAMPLE_CHANNELS:
        assert name not in source, f"workbench/explore.py names the sample's channel {name!r}"
    for old in ("amount_cny", "watch_minutes", "live_watch_minutes", "web_sessions", "wechat_follower\"",
                "main_purchase_channel", "IdentitySettings.from_yaml", "oneid_records.parquet", "CNY\""):
        assert old not in source, old


# ----------------------------------------------------------------------------- segments
def _frame(n: int = 40, seed: int = 0) -> pd.DataFrame:
    """A synthetic segmentation frame like load_segmentation's."""
    rng = np.random.default_rng(seed)
    idx = pd.Index([f"OID-{i:04d}" for i in range(n)], name="oneid")
    orders = rng.integers(0, 6, n)
    seg = pd.Categorical(rng.choice(["Champions", "Lost", "At Risk"], n),
                         categories=["Champions", "At Risk", "Lost", "Never used"])
    churn = rng.uniform(0, 1, n)
    f = pd.DataFrame({
        "segment": seg,
        "cluster_name": pd.Series(rng.choice(["big spenders", "browsers"], n), index=idx).where(orders > 0),
        "group": rng.choice(["VIP care", "Dormant", "Occasional buyers"], n),
        "churn_risk": churn, "churn_risk_decile": pd.array(np.ceil(churn * 10).astype(int), dtype="Int64"),
        "orders": orders, "net_revenue": orders * 100.0, "clv_12m": orders * 20.0,
        "channels": rng.choice(["members,site", "site", "app,store"], n),
        "wechat_following": rng.random(n) < 0.3,
    }, index=idx)
    f.attrs["currency"] = "EUR"
    return f


def test_segment_table_sizes_order_and_means():
    f = _frame()
    t = ex.segment_table(f, by="segment")
    assert t["persons"].sum() == len(f) and t["share"].sum() == pytest.approx(1.0)
    assert list(t.index) == [c for c in ["Champions", "At Risk", "Lost"] if (f["segment"] == c).any()]
    lost = f[f["segment"] == "Lost"]
    assert t.loc["Lost", "revenue"] == pytest.approx(lost["net_revenue"].sum())
    assert t.loc["Lost", "mean_churn_risk"] == pytest.approx(lost["churn_risk"].mean())
    assert t["revenue_share"].sum() == pytest.approx(1.0) and t.attrs["currency"] == "EUR"
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
    # no revenue column (a brand without orders): sizes only
    assert list(ex.segment_table(f.drop(columns=["net_revenue", "clv_12m", "churn_risk"]), by="group").columns) \
        == ["persons", "share"]


def test_segment_table_errors_name_what_was_expected():
    with pytest.raises(KeyError, match=r"missing column\(s\) \['nope'\].*Columns present"):
        ex.segment_table(_frame(), by="nope")
    with pytest.raises(ValueError, match="'by' parameter"):
        ex.segment_table(_frame(), by=3)


def test_segment_profile_units_and_plot():
    f = _frame()
    prof = ex.segment_profile(f, by="group", segment="VIP care")
    vip = f[f["group"] == "VIP care"]
    assert prof.loc["orders", "segment"] == pytest.approx(vip["orders"].mean())
    assert prof.loc["orders", "everyone"] == pytest.approx(f["orders"].mean())
    assert prof.loc["wechat_following", "unit"] == "share 0–1"
    assert prof.loc["clv_12m", "unit"] == "EUR" and prof.loc["churn_risk", "unit"].startswith("probability")
    assert prof.loc["orders", "index"] == pytest.approx(round(100 * vip["orders"].mean() / f["orders"].mean(), 1))
    assert set(prof.index) <= set(ex.PROFILE_COLUMNS)
    # the profile's data dictionary gives the units when the frame carries it
    f.attrs["dictionary"] = [{"name": "orders", "unit": "paid orders"}]
    assert ex.segment_profile(f, by="group", segment="VIP care").loc["orders", "unit"] == "paid orders"
    with pytest.raises(ValueError, match="one of the segments"):
        ex.segment_profile(f, by="group", segment="nobody")
    fig = ex.plot_segment(f, by="group", segment="VIP care")
    assert len(fig.axes) >= 2 and all(ax.get_xlabel() and ax.get_ylabel() for ax in fig.axes[:2])
    assert "EUR" in fig.axes[0].get_xlabel() and "VIP care" in fig._suptitle.get_text()
    only_channels = ex.plot_segment(f.drop(columns="net_revenue"), by="group", segment="VIP care")
    assert [ax.get_title() for ax in only_channels.axes] == ["Channel mix"]


def test_load_segmentation_joins_what_exists(tmp_path):
    paths = get_paths(tmp_path / "data", tmp_path / "reports").ensure()
    ids = ["OID-b", "OID-a", "OID-c"]
    p = pd.DataFrame({"oneid": ids, "phone": ["+8613800138001"] * 3, "phone_masked": ["138****8001"] * 3,
                      "name": ["张伟"] * 3, "net_revenue": [1.0, 2.0, 0.0], "channels": ["site"] * 3})
    p.attrs = {"currency": "EUR", "dictionary": [{"name": "net_revenue", "unit": "EUR", "pii": "none"},
                                                 {"name": "phone", "unit": "", "pii": "direct"}]}
    p.to_parquet(paths.customer_360, index=False)
    pd.DataFrame({"segment": ["Lost", "Champions", "Lost"]}, index=pd.Index(ids, name="oneid")) \
        .to_parquet(paths.processed / "rfm_segments.parquet")
    pd.DataFrame({"cluster": [0], "cluster_name": ["buyers"]}, index=pd.Index(["OID-a"], name="oneid")) \
        .to_parquet(paths.processed / "clusters.parquet")
    frame = ex.load_segmentation(paths)
    assert list(frame.index) == ["OID-a", "OID-b", "OID-c"]
    assert {"phone", "name"}.isdisjoint(frame.columns) and "phone_masked" in frame.columns
    assert frame.loc["OID-a", "cluster_name"] == "buyers" and pd.isna(frame.loc["OID-b", "cluster_name"])
    assert "scores" in frame.attrs["missing"] and "clusters" in frame.attrs["sources"]
    assert frame.attrs["currency"] == "EUR" and frame.attrs["dictionary"]
    assert set(ex.available_segmentations(frame).values()) == {"segment", "cluster_name"}
    # one file per model, joined through load_scores
    pd.DataFrame({"oneid": ids, "churn_risk": [0.1, 0.9, 0.5], "churn_risk_decile": [10, 1, 5]}) \
        .to_parquet(paths.processed / "scores_churn.parquet", index=False)
    pd.DataFrame({"oneid": ["OID-c"], "purchase_propensity": [0.4], "purchase_propensity_decile": [1]}) \
        .to_parquet(paths.processed / "scores_propensity.parquet", index=False)
    frame = ex.load_segmentation(paths)
    assert frame.loc["OID-a", "churn_risk_decile"] == 1 and "scores" in frame.attrs["sources"]
    assert frame.loc["OID-c", "purchase_propensity_decile"] == 1 and pd.isna(frame.loc["OID-a", "purchase_propensity"])
    assert "Churn-risk decile (1 = highest risk)" in ex.available_segmentations(frame)


def test_load_segmentation_on_the_sample_and_another_brand(sample, brand):
    frame = ex.load_segmentation(sample)
    assert frame.index.is_unique and {"phone", "email", "name", "member_id", "address"}.isdisjoint(frame.columns)
    assert frame.attrs["sources"] == ["customer_360", "rfm_segments", "clusters", "engagement_value"]
    assert set(frame.attrs["missing"]) == {"clv", "scores"} and frame.attrs["currency"] == "CNY"
    assert {"segment", "cluster_name", "group", "member_level", "main_sales_channel"} \
        <= set(ex.available_segmentations(frame).values())
    other = ex.load_segmentation(brand)
    assert set(ex.available_segmentations(other).values()) == {"segment", "cluster_name"}
    t = ex.segment_table(other, by="segment")
    assert t["persons"].sum() == len(other) and "revenue" not in t.columns
    prof = ex.segment_profile(other, by="cluster_name", segment=ex.segment_table(other, by="cluster_name").index[0])
    assert "sessions" in prof.index and "orders" not in prof.index


def test_segment_explorer_responds_headless():
    f = _frame()
    w = ex.segment_explorer(f)
    c = w.controls
    assert c.segmentation.value == "segment" and c.segment.value == "Champions"
    assert c.chart.value[:4] == b"\x89PNG" and "orders" in c.profile.value and "EUR" in c.summary.value
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


def test_segment_explorer_on_a_brand_without_orders(brand):
    w = ex.segment_explorer(brand)
    c = w.controls
    assert c.segmentation.value == "segment" and "net revenue" not in c.summary.value
    assert c.chart.value[:4] == b"\x89PNG" and "sessions" in c.profile.value


# ----------------------------------------------------------------------------- finding a person
def test_find_customers_by_phone_email_and_oneid(profile, rich_person):
    row = profile.set_index("oneid").loc[rich_person]
    by_mask = ex.find_customers(profile, row["phone_masked"], limit=None)
    assert rich_person in set(by_mask["oneid"]) and (by_mask["phone_masked"] == row["phone_masked"]).all()
    by_tail = ex.find_customers(profile, row["phone"][-4:], limit=None)
    assert rich_person in set(by_tail["oneid"]) and by_tail["matched_on"].eq("phone last 4").all()
    assert by_tail["oneid"].is_monotonic_increasing
    by_mail = ex.find_customers(profile, "  " + row["email"].upper() + " ")
    assert by_mail["oneid"].tolist() == [rich_person] and by_mail["matched_on"].iloc[0] == "email"
    assert ex.find_customers(profile, row["phone"])["oneid"].tolist() == [rich_person]
    assert ex.find_customers(profile, rich_person)["matched_on"].tolist() == ["oneid"]
    prefix = ex.find_customers(profile, rich_person[:6].lower(), limit=5)
    assert len(prefix) <= 5 and prefix.attrs["matches"] >= len(prefix)
    assert prefix["oneid"].str.startswith(rich_person[:6]).all()
    for found in (by_mask, by_tail, by_mail, prefix):
        assert {"phone", "email", "name", "member_id"}.isdisjoint(found.columns)
        assert scan_text_for_pii(found.to_string(), known_values=[row["phone"], row["email"]]) == []
    assert ex.find_customers(profile, "nobody@nowhere.cn").empty
    assert ex.find_customers(profile, "   ").empty
    with pytest.raises(ValueError, match="'query' parameter"):
        ex.find_customers(profile, 13800138000)


def test_find_customers_without_raw_or_any_contact_columns(profile, rich_person, brand):
    from workbench.customer360 import load_customer_360, public_view

    row = profile.set_index("oneid").loc[rich_person]
    public = public_view(profile)  # masked columns only: full values are masked and compared
    assert rich_person in set(ex.find_customers(public, row["email"], limit=None)["oneid"])
    assert rich_person in set(ex.find_customers(public, row["phone"], limit=None)["oneid"])
    assert rich_person in set(ex.find_customers(public, row["phone"][-4:], limit=None)["oneid"])
    other = load_customer_360(brand)
    assert "phone" not in other.columns and "phone_masked" not in other.columns
    for q in ("8000", "138****8000", "13800138000"):
        found = ex.find_customers(other, q)
        assert found.empty and "no phone column" in found.attrs["note"]
    someone = other.dropna(subset=["email"]).iloc[0]
    assert someone["oneid"] in set(ex.find_customers(other, someone["email"])["oneid"])
    bare = ex.find_customers(other[["oneid", "channels"]], "a@b.cn")
    assert bare.empty and "no e-mail column" in bare.attrs["note"]


# ----------------------------------------------------------------------------- timeline
def test_timeline_covers_every_record_in_order_and_masked(sample, profile, rich_person):
    tl = ex.customer_timeline(sample, rich_person)
    reg = pd.read_parquet(sample.registry)
    recs = reg[reg["oneid"] == rich_person]
    assert list(tl.columns) == list(ex.TIMELINE_COLUMNS) and tl.attrs["currency"] == "CNY"
    assert set(tl["record_id"]) == set(recs["record_id"]) and len(tl) >= len(recs)
    assert tl["time"].dropna().is_monotonic_increasing and set(tl["channel"]) == set(recs["channel"])
    assert set(tl["kind"]) <= set(ex.TIMELINE_KINDS) and {"profile", "order", "event", "consent"} <= set(tl["kind"])
    # orders carry their paid amount, refunds a negative one: they add up to the profile's net revenue
    money = tl[tl["kind"].isin(["order", "refund"])]
    assert money["amount"].notna().all() and (tl.loc[tl["kind"] == "refund", "amount"] <= 0).all()
    assert money["amount"].sum() == pytest.approx(profile.set_index("oneid").loc[rich_person, "net_revenue"])
    # events by their canonical names, durations in minutes
    from workbench.canonical import load_canonical

    ev = load_canonical(sample).table("events")
    ev = ev[ev["oneid"] == rich_person]
    got = tl[tl["kind"] == "event"]
    assert sorted(got["event"]) == sorted(ev["event_type"])
    assert got["duration_minutes"].sum() == pytest.approx(ev["duration_seconds"].sum() / 60)
    raw = _raw_contacts(sample, rich_person)
    assert raw, "the person has raw contacts to hide"
    text = tl.to_string() + tl.to_html()
    assert scan_text_for_pii(text, known_values=raw) == []
    assert "****" in text and "***@" in text  # masked values are shown instead
    with pytest.raises(KeyError, match="Unknown OneID"):
        ex.customer_timeline(sample, "OID-does-not-exist")
    with pytest.raises(ValueError, match="'oneid' parameter"):
        ex.customer_timeline(sample, 7)


@pytest.mark.parametrize("which", ["sample", "brand"])
def test_timeline_of_many_persons_covers_their_records(which, request):
    paths = request.getfixturevalue(which)
    reg = pd.read_parquet(paths.registry)
    counts = reg.groupby("oneid").size().sort_values(kind="stable")
    people = list(counts.index[:3]) + list(counts.index[-3:])  # the smallest and the largest
    raw = _raw_contacts(paths, set(people))
    for oneid in people:
        tl = ex.customer_timeline(paths, oneid)
        assert set(tl["record_id"]) == set(reg.loc[reg["oneid"] == oneid, "record_id"]), oneid
        assert tl["time"].dropna().is_monotonic_increasing
        assert scan_text_for_pii(tl.to_string(), known_values=raw) == []
    if which == "brand":
        assert set(tl["channel"]) <= {"site", "mail"} and set(tl["kind"]) <= {"event", "consent", "record"}


def test_timeline_from_tables_lines_refunds_consents_and_bare_records():
    ts = pd.Timestamp("2026-01-10 08:00", tz="UTC")
    day = pd.Timedelta(days=1)
    rid = [f"shop:f:{i}" for i in range(1, 4)]
    tables = {
        "records": pd.DataFrame({"oneid": "p", "channel": ["shop"] * 3 + ["back", "back", "crm", "odd"],
                                 "record_id": rid + ["back:f:1", "back:f:2", "crm:f:1", "odd:f:1"],
                                 "role": ["orders"] * 3 + ["returns", "returns", "profile", "events"],
                                 "at": [ts, ts, ts, ts + 3 * day, ts + 4 * day, ts - 9 * day, pd.NaT]}),
        # a two-line order (lines shop:f:1 and shop:f:2), a cancelled single-line one
        "orders": pd.DataFrame({"oneid": "p", "record_id": ["shop:f:1", "shop:f:3"], "channel": "shop",
                                "order_key": ["shop:A", "shop:B"], "order_id": ["A", "B"],
                                "ordered_at": [ts, ts + day], "status": ["paid", "cancelled"],
                                "is_order": [True, False], "gross": [300.0, 0.0], "category": ["tea", "cups"],
                                "product": ["oolong", "mug"], "quantity": [3.0, 1.0], "lines": [2, 1],
                                "sales_channel": ["web", "store"], "store": [None, "S1"]}),
        "order_lines": pd.DataFrame({"oneid": "p", "record_id": rid, "channel": "shop",
                                     "order_key": ["shop:A", "shop:A", "shop:B"], "ordered_at": [ts, ts, ts + day],
                                     "category": ["tea", "tea", "cups"], "product": ["oolong", "green", "mug"],
                                     "quantity": [2.0, 1.0, 1.0], "amount": [200.0, 100.0, 15.0],
                                     "cancelled": [False, False, True]}),
        # a return of order A, and one whose order is not in the data
        "refunds": pd.DataFrame({"oneid": "p", "record_id": ["back:f:1", "back:f:2"], "channel": "back",
                                 "order_key": ["shop:A", "back:R9"], "refunded_at": [ts + 3 * day, ts + 4 * day],
                                 "amount": [100.0, 20.0], "matched": [True, False], "source": "return",
                                 "sales_channel": ["web", "store"]}),
        "profiles": pd.DataFrame({"oneid": "p", "record_id": ["crm:f:1"], "channel": "crm", "at": [ts - 9 * day],
                                  "member_id": ["M1"], "member_level": ["gold"], "registered_at": [ts - 9 * day],
                                  "updated_at": [ts - 2 * day]}),
        "consents": pd.DataFrame({"oneid": "p", "record_id": "crm:f:1", "channel": "crm",
                                  "purpose": ["sms", "email"], "granted": pd.array([True, pd.NA], dtype="boolean"),
                                  "at": [ts - 2 * day] * 2, "event": "profile record", "priority": 0}),
        "traits": pd.DataFrame({"oneid": "p", "record_id": ["crm:f:1", "crm:f:1", "back:f:1"],
                                "trait": ["name", "email", "phone"],
                                "value": ["张伟", "zhangwei@example.com", "+8613800138000"]}),
    }
    t = ex.timeline_from_tables(tables, currency="EUR")
    assert list(t.columns) == list(ex.TIMELINE_COLUMNS)
    assert set(t["record_id"]) == set(tables["records"]["record_id"])
    kinds = t.groupby("kind").size().to_dict()
    assert kinds == {"profile": 1, "consent": 1, "order": 2, "order line": 2, "refund": 2, "record": 1}
    order_a = t[(t["kind"] == "order") & (t["record_id"] == "shop:f:1")].iloc[0]
    assert order_a["event"] == "order (refunded)" and order_a["amount"] == 300.0
    assert "lines 2" in order_a["detail"] and "net 200.00 EUR" in order_a["detail"]
    assert t.loc[(t["kind"] == "order") & (t["record_id"] == "shop:f:3"), "event"].iloc[0] == "order (cancelled)"
    lines = t[t["kind"] == "order line"]
    assert lines["amount"].isna().all() and lines["detail"].str.contains("order 2026-01-10 via web").all()
    refunds = t[t["kind"] == "refund"].set_index("record_id")
    assert refunds["amount"].to_dict() == {"back:f:1": -100.0, "back:f:2": -20.0}
    assert "of the order 2026-01-10 via web" in refunds.loc["back:f:1", "detail"]
    assert "not in the data" in refunds.loc["back:f:2", "detail"]
    assert t.loc[t["kind"].isin(["order", "refund"]), "amount"].sum() == pytest.approx(180.0)
    consent = t[t["kind"] == "consent"].iloc[0]
    assert consent["event"] == "consents recorded" and "sms granted, email unknown" in consent["detail"]
    assert t["kind"].iloc[0] == "profile" and "level gold" in t["detail"].iloc[0]
    assert t["kind"].iloc[-1] == "record" and pd.isna(t["time"].iloc[-1])  # undated last
    text = t.to_string()
    assert "张*" in text and "z***@example.com" in text and "138****8000" in text
    assert scan_text_for_pii(text, known_values=["zhangwei@example.com", "+8613800138000", "13800138000"]) == []
    assert "张伟" not in text
    # nothing at all: an empty timeline with the columns
    assert list(ex.timeline_from_tables({}).columns) == list(ex.TIMELINE_COLUMNS)


def test_timeline_of_a_layer_older_than_the_registry(sample, tmp_path):
    paths = _copy(sample, tmp_path)
    reg = pd.read_parquet(paths.registry)
    extra = reg.iloc[[0]].assign(oneid="OID-newcomer", record_id="site:new:1")
    pd.concat([reg, extra], ignore_index=True).to_parquet(paths.registry, index=False)
    with pytest.raises(ValueError, match="older than the identity run"):
        ex.customer_timeline(paths, "OID-newcomer")


def test_person_evidence_is_explain(sample, rich_person):
    records, links = ex.person_evidence(sample, rich_person)
    r2, l2 = explain(rich_person, sample)
    assert records["record_id"].tolist() == r2["record_id"].tolist()
    key = ["record_a", "record_b", "how"]
    pd.testing.assert_frame_equal(links[key].astype(str).sort_values(key).reset_index(drop=True),
                                  l2[key].astype(str).sort_values(key).reset_index(drop=True))


def test_customer_lookup_headless(sample, profile, rich_person):
    w = ex.customer_lookup(sample, profile=profile)
    c = w.controls
    c.query.value = rich_person
    assert c.person.value == rich_person
    assert c.graph.value[:4] == b"\x89PNG" and "value_hash" in c.links.value and "records" in c.timeline.value
    assert "amount (CNY)" in c.timeline.value and "net revenue (CNY)" in c.card.value
    shown = c.results.value + c.card.value + c.timeline.value + c.links.value
    assert scan_text_for_pii(shown, known_values=_raw_contacts(sample, rich_person)) == []
    c.query.value = "nobody@nowhere.cn"
    assert "No person matches" in c.message.value and c.person.value is None and c.timeline.value == ""
    c.query.value = rich_person[:4]
    c.search.click()
    assert len(c.person.options) > 1


def test_customer_lookup_on_a_brand_without_phones(brand):
    w = ex.customer_lookup(brand)
    c = w.controls
    assert "138****8000" not in c.query.placeholder and "e-mail" in c.query.placeholder
    c.query.value = "8000"
    assert "no phone column" in c.message.value and c.person.value is None
    c.query.value = "OID-"
    c.search.click()
    assert c.person.value and c.graph.value[:4] == b"\x89PNG" and "<td>event</td>" in c.timeline.value


# ----------------------------------------------------------------------------- match review
@pytest.fixture()
def review(sample, tmp_path):
    """A copy of the sample with three extra probabilistic links of known probability and a
    scored-pairs file (rejected pairs), so the review queue is never empty. The records are the
    first of different persons in the channels whose identity sources name fuzzy attributes."""
    from workbench.runconfig import resolve_identity

    paths = _copy(sample, tmp_path)
    fuzzy = [c for c, s in resolve_identity(paths).sources.items() if s.attributes]
    reg = pd.read_parquet(paths.registry)
    firsts = reg[reg["channel"].isin(fuzzy)].drop_duplicates("oneid").sort_values("record_id") \
        .head(10)["record_id"].tolist()
    links = pd.read_parquet(paths.identity_links)
    extra = pd.DataFrame({"record_a": firsts[0:3], "record_b": firsts[3:6], "how": "probabilistic",
                          "value_hash": None, "match_weight": np.nan,
                          "match_probability": [0.995, 0.7, 0.9995]})
    extra["match_weight"] = np.log2(extra["match_probability"] / (1 - extra["match_probability"]))
    pd.concat([links, extra], ignore_index=True).to_parquet(paths.identity_links, index=False)
    scored = pd.DataFrame({"record_a": [firsts[6], firsts[7], firsts[8], firsts[0]],
                           "record_b": [firsts[7], firsts[8], firsts[9], firsts[3]],
                           # the second is just below the settings' threshold: a "below threshold" candidate
                           "match_probability": [0.6, ex._threshold(paths) - 0.02, 0.3, 0.995]})
    scored["match_weight"] = np.log2(scored["match_probability"] / (1 - scored["match_probability"]))
    scored.to_parquet(paths.processed / "identity_scored_pairs.parquet", index=False)
    return paths, firsts


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
    assert cand[["name_a", "name_b"]].notna().any().any() and cand[["phone_tail_a", "phone_tail_b"]].notna().any().any()
    assert cand["phone_tail_a"].dropna().str.fullmatch(r"\d{3}\*{4}\d{4}|\d{3}\*{4}\d{3,4}").all()
    assert cand["address_a"].dropna().str.endswith("-…").all()
    raw = _raw_contacts(review_paths, set(cand["oneid_a"]) | set(cand["oneid_b"]))
    assert scan_text_for_pii(cand.to_string(), known_values=raw) == []
    assert len(ex.review_candidates(review_paths, low=0.5, high=0.999, limit=2)) == 2
    with pytest.raises(ValueError, match="'low' parameter must be below 'high'"):
        ex.review_candidates(review_paths, low=0.9, high=0.5)


def test_review_uses_the_recorded_identity_settings(review):
    from workbench.runconfig import record, recorded

    review_paths, f = review
    settings = recorded(review_paths, "identity")
    assert ex._threshold(review_paths) == settings["match_threshold"]
    record(review_paths, "identity", {**settings, "match_threshold": 0.65})
    cand = ex.review_candidates(review_paths, low=0.5, high=0.999, limit=None)
    assert cand.attrs["threshold"] == 0.65
    below = cand[cand["source"] == "below threshold"]
    assert set(zip(below["record_a"], below["record_b"])) == {tuple(sorted((f[6], f[7])))}  # 0.6 < 0.65


def test_review_candidates_without_scored_pairs(review):
    review_paths, _ = review
    (review_paths.processed / "identity_scored_pairs.parquet").unlink()
    cand = ex.review_candidates(review_paths, low=0.5, high=0.999)
    assert set(cand["source"]) == {"accepted link"}


def test_review_on_a_brand_without_fuzzy_attributes(brand):
    cand = ex.review_candidates(brand)
    assert cand.empty and "threshold" in cand.attrs
    w = ex.match_review(brand)
    assert w.controls.accept.disabled and "No undecided pair" in w.controls.pair.value


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
        ex.save_decision(review_paths, f[0], "site:nowhere:1", "accept")
    with pytest.raises(ValueError, match="two different records"):
        ex.save_decision(review_paths, f[0], f[0], "accept")
    assert len(ex.load_decisions(review_paths)) == 2  # failed calls wrote nothing


def test_match_review_widget_saves_clicks(review):
    review_paths, _ = review
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


def test_explorer_output_has_no_raw_contacts_pattern_scan(sample, rich_person):
    """Pattern scan (no known values): nothing shown looks like a phone number or an e-mail."""
    tl = ex.customer_timeline(sample, rich_person)
    hits = scan_text_for_pii(tl.to_string())
    assert hits == [], hits[:3]
    assert not re.search(r"\b1[3-9]\d{9}\b", tl.to_string())
