"""Tags: every rule tag of the package's tags.yaml against an independent pandas computation on
the profile, mistakes in tag files, brands without some inputs, snapshots and changes, and the
expression language the rules and audiences share."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from workbench.config import get_paths
from workbench.expressions import ExpressionError, evaluate, parse
from workbench.tags import compute_tags, load_tags, parse_tags, run_tags, tag_changes


@pytest.fixture(scope="module")
def tag_paths(resolved_paths, tmp_path_factory):
    """A private copy of the resolved sample with the profile, RFM segments and clusters written
    (no model scores: the model tags that read them are left out) and the tags run once."""
    from workbench.customer360 import run_customer_360
    from workbench.segments.stage import run_clusters, run_rfm

    root = tmp_path_factory.mktemp("tags")
    shutil.copytree(resolved_paths.data, root / "data")
    paths = get_paths(root / "data", root / "reports").ensure()
    run_customer_360(paths)
    run_rfm(paths)
    run_clusters(paths, k_range=range(3, 5), stability_seeds=None)
    return paths


@pytest.fixture(scope="module")
def tag_run(tag_paths):
    return run_tags(tag_paths)


def _tag(tid: str, rule: str | None = "orders >= 1", **extra) -> dict:
    t = {"id": tid, "kind": "rule", "name_zh": "标签", "name_en": "Tag", "description": "A tag.", "rule": rule}
    if rule is None:
        t.pop("rule")
    return {**t, **extra}


def _independent(tid: str, profile: pd.DataFrame, layer) -> pd.Series:
    """Each rule tag of the package's tags.yaml computed again from its description, with pandas
    on the profile and the canonical orders — not with the expression evaluator."""
    p = profile
    paid = layer.purchases()
    paid = paid[paid["is_order"]]
    end = layer.data_end
    orders_365 = paid[paid["ordered_at"] >= end - pd.Timedelta(days=365)].groupby("oneid").size()
    orders_365 = orders_365.reindex(p.index, fill_value=0)
    day = paid["ordered_at"].dt.tz_convert(layer.local_timezone).dt.strftime("%m-%d")
    peak = day.isin(layer.analysis.peak_days).groupby(paid["oneid"]).sum().reindex(p.index, fill_value=0)
    orders = p["orders"]

    def top(col: str, share: float) -> pd.Series:
        v = p[col].astype(float)
        cut = np.quantile(v[v > 0].to_numpy(), 1 - share)
        return (v > 0) & (v >= cut)

    rules = {
        "frequent_rebuyer": lambda: orders_365 >= 3,
        "top_spender": lambda: top("net_revenue", 0.1),
        "discount_driven": lambda: (orders >= 2) & (peak / orders.where(orders > 0) > 0.5),
        "lapsing_buyer": lambda: (orders >= 1) & (p["days_since_last_order"] > 180),
        "multichannel": lambda: p["n_channels"] >= 3,
        "live_stream_fan": lambda: top("live_stream_watched_minutes", 0.25),
        "live_gifter": lambda: p["live_gift_sent"] > 0,
        "live_viewer_never_bought": lambda: top("live_stream_watched_minutes", 0.25) & (orders == 0),
        "email_engaged": lambda: p["email_open_rate"] >= 0.5,
        "wechat_follower": lambda: p["wechat_following"].astype("boolean"),
        "service_complainer": lambda: p["problem_tickets"] >= 2,
    }
    assert tid in rules, f"rule tag {tid!r} has no independent computation in this test: add one"
    return pd.Series(rules[tid](), index=p.index).astype("boolean").fillna(False).astype(bool)


def test_every_rule_tag_agrees_with_an_independent_computation(tag_paths, tag_run):
    from workbench.canonical import load_canonical
    from workbench.customer360 import load_customer_360

    layer = load_canonical(tag_paths)
    profile = load_customer_360(tag_paths).set_index("oneid").sort_index()
    table = tag_run.result.table
    assert table.index.equals(profile.index)
    rule_tags = [t for t in load_tags().tags if t.kind == "rule"]
    assert len(rule_tags) >= 8
    for t in rule_tags:
        assert t.id in table.columns, (t.id, tag_run.result.notes.get(t.id))
        expected = _independent(t.id, profile, layer)
        got = table[t.id]
        assert 0 < int(got.sum()) < len(got), f"{t.id} tags nobody or everybody on the sample"
        diff = got.to_numpy() != expected.to_numpy()
        assert not diff.any(), f"{t.id}: {int(diff.sum())} persons differ, e.g. {list(table.index[diff][:3])}"


def test_tag_table_file_list_column_and_model_tags_without_scores(tag_paths, tag_run):
    written = pd.read_parquet(tag_paths.processed / "tags.parquet").set_index("oneid")
    ids = [c for c in written.columns if c != "tags"]
    assert ids == list(tag_run.result.tags) and all(written[c].dtype == bool for c in ids)
    for row, tags in zip(written[ids].to_numpy(bool), written["tags"]):
        assert list(np.asarray(ids)[row]) == list(tags)
    # clusters were written: one tag per cluster, matching the cluster table
    clusters = pd.read_parquet(tag_paths.processed / "clusters.parquet")
    clusters = (clusters.set_index("oneid") if "oneid" in clusters.columns else clusters)["cluster_name"]
    cluster_tags = [c for c in ids if c.startswith("cluster_")]
    assert len(cluster_tags) == clusters.nunique() >= 3
    assert int(written[cluster_tags].sum(axis=1).max()) == 1
    assert int(written[cluster_tags].to_numpy().sum()) == int(clusters.notna().sum())
    # no scores were written: the churn and propensity tags are left out with a note, not a crash
    for tid in ("churn_high", "churn_medium", "churn_low", "propensity_top_decile", "clv_top"):
        assert tid not in written.columns and tid in tag_run.result.notes
    assert "churn_risk_decile" in tag_run.result.notes["churn_high"]
    metrics = json.loads((tag_paths.metrics / "tags.json").read_text(encoding="utf-8"))
    assert metrics["tags"]["frequent_rebuyer"] == int(written["frequent_rebuyer"].sum())


def test_model_tags_on_scores_and_segment_values():
    frame = pd.DataFrame({"churn_risk_decile": pd.array([1, 2, 3, 5, 6, 10, None], dtype="Int64"),
                          "purchase_propensity_decile": pd.array([1, 4, 3, None, 2, 1, 10], dtype="Int64"),
                          "cluster_name": ["a b", "a b", "c", None, "c", "c", "a b"]},
                         index=pd.Index(list("ABCDEFG"), name="oneid"))
    result = compute_tags(frame, load_tags())
    t = result.table
    d = frame["churn_risk_decile"]
    assert t["churn_high"].tolist() == (d <= 2).fillna(False).tolist()
    assert t["churn_medium"].tolist() == d.isin([3, 4, 5]).fillna(False).tolist()
    assert t["churn_low"].tolist() == (d >= 6).fillna(False).tolist()
    assert t["propensity_top_30"].tolist() == (frame["purchase_propensity_decile"] <= 3).fillna(False).tolist()
    assert t["cluster_a_b"].tolist() == (frame["cluster_name"] == "a b").fillna(False).tolist()
    assert result.tags["cluster_a_b"]["name_en"] == "Cluster: a b"
    # not one of the three bands is set for a person without a score
    assert not t.loc["G", ["churn_high", "churn_medium", "churn_low"]].any()


def test_a_brand_without_live_stream_data_leaves_those_tags_out_with_a_note():
    frame = pd.DataFrame({"orders": [0, 3, 5], "orders_365d": [0, 3, 1], "n_channels": [1, 3, 2]},
                         index=pd.Index(["a", "b", "c"], name="oneid"))
    result = compute_tags(frame, load_tags())
    assert result.table["frequent_rebuyer"].tolist() == [False, True, False]
    assert "live_stream_fan" not in result.table and "live_viewer_never_bought" not in result.table
    assert "live_stream_watched_minutes" in result.notes["live_stream_fan"]
    assert "live_stream_fan" in result.notes["live_viewer_never_bought"]
    assert "Live-stream fan (直播粉丝) is not available for this data" in result.notes["live_stream_fan"]


@pytest.mark.parametrize("tags, message", [
    ([_tag("x", colour="red")], "Tag 'x' has an unknown field 'colour'"),
    ([_tag("x", rule="live_stream_wached_minutes > 10")],
     "Tag 'x': its rule names the column 'live_stream_wached_minutes', which no profile, segment table or score "
     "has. Did you mean 'live_stream_watched_minutes'?"),
    ([_tag("x", rule="churn_risk_decile <= 11")],
     "Tag 'x': the threshold of 'churn_risk_decile' must be a number in [1, 10]. Got 11 instead."),
    ([_tag("x", rule="peak_day_order_share > 1.5")], "the threshold of 'peak_day_order_share' must be a number in [0, 1]"),
    ([_tag("x", rule="orders >= -1")], "Tag 'x': the threshold of 'orders' must be a number in [0, inf]. Got -1"),
    ([_tag("x", rule="top(net_revenue, 1.5)")], "Tag 'x': The share of 'top(net_revenue, 1.5)'"),
    ([_tag("x", rule="orders >= 'many'")], "the threshold of 'orders' must be a number in [0, inf]. Got 'many'"),
    ([_tag("x", name_zh="")], "Tag 'x': the 'name_zh' field must be a non-empty text. Got '' instead."),
    ([_tag("x"), _tag("x")], "Tag 'x' is declared twice."),
    ([_tag("x", kind="magic")], "Tag 'x': the 'kind' field must be one of ['rule', 'model']. Got 'magic' instead."),
    ([_tag("x", rule=None)], "Tag 'x' must have exactly one of 'rule'"),
    ([_tag("x", rule=None, each="cluster_name")], "with 'each', name_zh and name_en must contain '{value}'"),
    ([_tag("x", rule=None, each="clustr_name", name_zh="{value}", name_en="{value}")],
     "Tag 'x': 'each' names the column 'clustr_name'"),
    ([_tag("orders")], "Tag 'orders' has the name of a profile, segment or score column"),
    ([_tag("Bad-Id")], "a tag id must be lower-case letters"),
    ([_tag("y", rule="x and orders > 1"), _tag("x")], "its rule names the column 'x'"),   # tags are used after they are declared
])
def test_tag_definitions_with_mistakes_fail_with_a_clear_message(tags, message):
    with pytest.raises(ValueError) as e:
        parse_tags({"tags": tags})
    assert message in str(e.value), str(e.value)


def test_rules_may_name_per_channel_and_per_purpose_columns_of_any_brand():
    defs = parse_tags({"tags": [_tag("x", rule="consent_sms and revenue_web > 0 and email_link_clicked >= 1")]})
    frame = pd.DataFrame({"consent_sms": pd.array([True, None, True], dtype="boolean"), "revenue_web": [1.0, 2, 0],
                          "email_link_clicked": [1, 1, 1]})
    assert compute_tags(frame, defs).table["x"].tolist() == [True, False, False]


def test_a_rule_comparing_numbers_with_text_fails_when_evaluated():
    defs = parse_tags({"tags": [_tag("x", rule="net_revenue >= 'many'")]})   # a column without a known range
    with pytest.raises(ValueError, match=r"Tag 'x': 'net_revenue' in \"net_revenue >= 'many'\" holds numbers"):
        compute_tags(pd.DataFrame({"net_revenue": [1.0, 2.0]}), defs)


def test_unknown_top_level_key_and_the_package_file_loads():
    with pytest.raises(ValueError, match="unknown top-level key 'tag'"):
        parse_tags({"tag": []})
    tags = load_tags()
    assert all(t.name_zh and t.name_en and t.description for t in tags.tags)
    assert {"frequent_rebuyer", "live_stream_fan", "discount_driven", "churn_high", "cluster"} <= set(tags.ids)


def test_snapshots_and_changes_since_an_earlier_data_date(tag_paths, tag_run, tmp_path):
    paths = get_paths(tmp_path / "data", tmp_path / "reports").ensure()
    shutil.copytree(tag_paths.processed, paths.processed, dirs_exist_ok=True)
    shutil.copytree(tag_paths.metrics.parent, paths.interim, dirs_exist_ok=True)
    folder = paths.processed / "tags"
    current = next(folder.glob("tags_*.parquet"))
    # an earlier run: one person had lost frequent_rebuyer since, two others gained it
    earlier = pd.read_parquet(current)
    fr = earlier["frequent_rebuyer"].to_numpy().copy()
    on, off = np.flatnonzero(fr)[:2], np.flatnonzero(~fr)[:1]
    fr[on], fr[off] = False, True
    earlier["frequent_rebuyer"] = fr
    earlier.drop(columns="multichannel").to_parquet(folder / "tags_2000-01-01.parquet", index=False)
    run = run_tags(paths)
    assert run.previous == "tags_2000-01-01.parquet"
    assert run.changes.loc["frequent_rebuyer", ["gained", "lost"]].tolist() == [2, 1]
    assert run.changes.loc["live_stream_fan", ["gained", "lost"]].tolist() == [0, 0]
    # a tag the earlier snapshot did not have: all its persons are gained
    assert run.changes.loc["multichannel", "gained"] == run.changes.loc["multichannel", "now"] > 0
    assert tag_run.previous is None   # the first run had nothing to compare with


def test_tag_changes_counts_persons_new_and_gone():
    now = pd.DataFrame({"t": [True, False, True]}, index=["a", "b", "new"])
    before = pd.DataFrame({"t": [True, True, True]}, index=["a", "b", "gone"])
    assert tag_changes(now, before).loc["t"].to_dict() == {"before": 3, "now": 2, "gained": 1, "lost": 2}


# --- the expression language ---------------------------------------------------------------------

FRAME = pd.DataFrame({"vip": [True, False, True, False], "orders": [5.0, 1.0, np.nan, 0.0],
                      "segment": ["Champions", "Lost", None, "Loyal"],
                      "decile": pd.array([1, 2, None, 10], dtype="Int64")}, index=list("abcd"))


@pytest.mark.parametrize("text, expected", [
    ("vip", [True, False, True, False]),
    ("not vip", [False, True, False, True]),
    ("vip and orders >= 3", [True, False, False, False]),
    ("orders < 3", [False, True, False, True]),          # a missing value satisfies no comparison
    ("not orders < 3", [True, False, True, False]),
    ("segment in ['Champions', 'Loyal']", [True, False, False, True]),
    ("segment not in ['Champions']", [False, True, False, True]),
    ("segment != 'Lost'", [True, False, False, True]),
    ("decile <= 2 or vip", [True, True, True, False]),
    ("(vip or segment == 'Lost') and not decile == 1", [False, True, True, False]),
    ("top(orders, 0.5)", [True, False, False, False]),
])
def test_expressions_evaluate_like_pandas(text, expected):
    assert evaluate(text, FRAME).tolist() == expected


@pytest.mark.parametrize("text, error, message", [
    ("vip and not vipp", KeyError, "Unknown name 'vipp' in the expression 'vip and not vipp'. Did you mean 'vip'?"),
    ("__import__('os').system('true')", ExpressionError, "the only functions are ['top']"),
    ("[x for x in ()]", ExpressionError, "is not allowed"),
    ("open('x')", ExpressionError, "calls 'open'; the only functions are ['top']"),
    ("vip.real", ExpressionError, "is not allowed"),
    ("orders > decile", ExpressionError, "only a number, a quoted text or a list"),
    ("1 < orders < 3", ExpressionError, "must be a name, one of"),
    ("segment in 'Lost'", ExpressionError, "'in' and 'not in' take a list"),
    ("vip and", ExpressionError, "is not valid syntax"),
    ("", ExpressionError, "non-empty text"),
    ("top(orders, 2)", ExpressionError, "must be in (0, 1). Got 2 instead."),
    ("orders", ExpressionError, "'orders' in 'orders' is not a yes/no column"),
    ("segment > 'A'", ExpressionError, "does not hold numbers"),
    ("orders == 'five'", ExpressionError, "holds numbers; it cannot be compared with 'five'"),
])
def test_expression_errors_name_what_is_wrong(text, error, message):
    with pytest.raises(error) as e:
        evaluate(parse(text, names=FRAME.columns), FRAME)
    assert message in (e.value.args[0] if isinstance(e.value, KeyError) else str(e.value))
