"""Tests for workbench.segments.clusters on small synthetic feature tables with a known structure."""

from __future__ import annotations

import re

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from workbench.segments.clusters import (
    DEFAULT_VOCABULARY, agreement_with, choose_k, cluster_profiles, fit_clusters, name_clusters, plot_profiles,
    plot_projection, prepare_features, segment_customers, stability,
)

COLUMNS = ["orders", "net_revenue", "live_stream_watched_minutes", "application_opened", "email_open_rate", "recency_days"]
SIZES = {"app_buyers": 160, "live_watchers": 120, "email_readers": 80, "lapsed": 40}


def make_groups(seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Four behaviour groups in six features, with heavy-tailed counts and amounts."""
    rng = np.random.default_rng(seed)
    parts = []
    for group, n in SIZES.items():
        if group == "app_buyers":
            orders = 3 + rng.poisson(8, n)
            d = dict(orders=orders, net_revenue=orders * rng.gamma(4, 60, n), live_stream_watched_minutes=rng.poisson(0.2, n),
                     application_opened=10 + rng.negative_binomial(2, 0.05, n), email_open_rate=rng.beta(2, 6, n),
                     recency_days=rng.exponential(15, n))
        elif group == "live_watchers":  # watch a lot, never buy
            d = dict(orders=np.zeros(n, int), net_revenue=np.zeros(n), live_stream_watched_minutes=30 + rng.gamma(2, 150, n),
                     application_opened=rng.poisson(2, n), email_open_rate=rng.beta(1, 9, n),
                     recency_days=np.full(n, np.nan))
        elif group == "email_readers":
            orders = 1 + rng.poisson(1, n)
            d = dict(orders=orders, net_revenue=orders * rng.gamma(4, 30, n), live_stream_watched_minutes=np.zeros(n),
                     application_opened=rng.poisson(0.3, n), email_open_rate=rng.beta(16, 3, n),
                     recency_days=30 + rng.exponential(30, n))
        else:  # lapsed one-time buyers
            d = dict(orders=np.ones(n, int), net_revenue=rng.gamma(3, 25, n), live_stream_watched_minutes=np.zeros(n),
                     application_opened=np.zeros(n, int), email_open_rate=rng.beta(1, 12, n),
                     recency_days=400 + rng.exponential(150, n))
        part = pd.DataFrame(d)
        part["group"] = group
        parts.append(part)
    df = pd.concat(parts, ignore_index=True)
    no_email = (rng.random(len(df)) < 0.05) & (df["group"] != "email_readers").to_numpy()
    df.loc[no_email, "email_open_rate"] = np.nan  # some never got an email
    df.index = pd.Index([f"C{i:05d}" for i in rng.permutation(len(df))], name="customer_id")
    df = df.sample(frac=1.0, random_state=1)
    return df[COLUMNS], df["group"]


FILL = {"recency_days": "max"}


@pytest.fixture(scope="module")
def data():
    return make_groups()


@pytest.fixture(scope="module")
def X(data):
    return prepare_features(data[0], columns=COLUMNS, fill_values=FILL)


@pytest.fixture(scope="module")
def seg(data):
    return segment_customers(data[0], columns=COLUMNS, k_range=range(2, 9), fill_values=FILL,
                             stability_seeds=(0, 1, 2))


# --------------------------------------------------------------------------- features
def test_prepare_features_fills_logs_clips_and_scales(data):
    profile, _ = data
    X, tf = prepare_features(profile, columns=COLUMNS, fill_values=FILL, return_transform=True)
    assert X.index.equals(profile.index) and list(X.columns) == COLUMNS
    assert not X.isna().any().any()
    np.testing.assert_allclose(X.mean(), 0, atol=1e-9)
    np.testing.assert_allclose(X.std(ddof=0), 1, atol=1e-9)
    # heavy-tailed counts/amounts are logged: exactly the columns with skew > 1 (none is negative)
    assert {"net_revenue", "live_stream_watched_minutes", "application_opened"} <= set(tf.log_columns)
    filled = profile.fillna({"email_open_rate": 0, "recency_days": profile["recency_days"].max()})
    assert tf.log_columns == [c for c in COLUMNS if filled[c].skew() > 1]
    # fill: 0 by default, "max" where asked
    assert tf.fill_values["email_open_rate"] == 0.0
    assert tf.fill_values["recency_days"] == pytest.approx(profile["recency_days"].max())
    # the fitted transform reproduces X, also on a subset of rows in another order
    sub = profile.iloc[::-3]
    pd.testing.assert_frame_equal(tf.transform(sub), X.loc[sub.index])
    assert list(tf.describe().index) == COLUMNS


def test_prepare_features_clips_tails_and_explicit_log_list():
    rng = np.random.default_rng(3)
    profile = pd.DataFrame({"a": rng.normal(size=1000), "b": rng.normal(size=1000)})
    profile.loc[0, "a"] = 1000.0  # one absurd value
    X, tf = prepare_features(profile, columns=["a", "b"], log_columns=[], clip_quantile=0.99, return_transform=True)
    assert tf.log_columns == []
    lo, hi = tf.clip_bounds["a"]
    assert hi < 5 and lo > -5
    assert X.loc[0, "a"] == pytest.approx(X["a"].max())
    assert X["a"].max() < 4  # without clipping the outlier would sit at ~31 standard deviations
    # a column that is 0 for more than 99% of customers is not squashed to a constant
    rare = pd.DataFrame({"gifts": np.r_[np.zeros(995), np.arange(1, 6)]})
    Xr = prepare_features(rare, columns=["gifts"])
    assert Xr["gifts"].nunique() == 6


def test_prepare_features_errors(data):
    profile, _ = data
    with pytest.raises(ValueError, match=r"missing from the profile: \['visits'\]\. Columns present: \["):
        prepare_features(profile, columns=["orders", "visits"])
    with pytest.raises(ValueError, match=r"The 'clip_quantile' parameter must be .* Got 0\.3 instead\."):
        prepare_features(profile, columns=COLUMNS, clip_quantile=0.3)
    neg = pd.DataFrame({"x": [-1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match=r"The 'log_columns' parameter must list non-negative columns"):
        prepare_features(neg, columns=["x"], log_columns=["x"])
    with pytest.raises(ValueError, match=r"The 'fill_values' parameter must map a column to a number"):
        prepare_features(profile, columns=COLUMNS, fill_values={"orders": "mode"})
    dup = profile.iloc[[0, 0, 1]]
    with pytest.raises(ValueError, match=r"one row per customer"):
        prepare_features(dup, columns=COLUMNS)


# --------------------------------------------------------------------------- k, fit, stability
def test_choose_k_finds_the_four_groups(X):
    choice = choose_k(X, k_range=range(2, 9), sample_size=300)
    assert choice.k == 4
    assert list(choice.table.index) == list(range(2, 9))
    assert list(choice.table.columns) == ["inertia", "silhouette", "calinski_harabasz"]
    assert choice.table["silhouette"].idxmax() == 4
    assert choice.table["inertia"].is_monotonic_decreasing
    assert choice.explanation.startswith("k=4: silhouette ") and "2..8" in choice.explanation
    assert choice.sample_size == 300
    # seeded silhouette sample: the same table again
    pd.testing.assert_frame_equal(choose_k(X, k_range=range(2, 9), sample_size=300).table, choice.table)


def test_choose_k_near_tie_rule_keeps_the_smaller_k(X):
    choice = choose_k(X, k_range=[3, 4, 5], tolerance=0.9)
    sil = choice.table["silhouette"]
    assert choice.k == 3  # within 0.9 of the best: the smallest k wins
    assert sil[4] > sil[3]
    assert "within 0.9 of the highest" in choice.explanation and "so the smaller k is kept" in choice.explanation


def test_fit_recovers_groups_deterministically_and_independent_of_row_order(data, X):
    _, truth = data
    res = fit_clusters(X, k=4, random_state=0)
    assert res.algorithm == "KMeans"
    assert agreement_with(res.labels, truth) > 0.9
    assert res.labels.index.equals(X.index)
    # cluster 0 is the biggest, sizes descending
    assert res.sizes.is_monotonic_decreasing
    assert res.sizes.tolist() == sorted(SIZES.values(), reverse=True)
    assert res.labels.value_counts().sort_index().tolist() == res.sizes.tolist()
    # the same seed gives identical labels
    pd.testing.assert_series_equal(fit_clusters(X, k=4, random_state=0).labels, res.labels)
    # shuffled rows: the same label per customer
    shuffled = X.sample(frac=1.0, random_state=7)
    again = fit_clusters(shuffled, k=4, random_state=0)
    pd.testing.assert_series_equal(again.labels.loc[X.index], res.labels)
    # predict uses the same numbering
    pd.testing.assert_series_equal(res.predict(X), res.labels)


def test_minibatch_path_above_threshold_still_recovers_groups(data, X, monkeypatch):
    import workbench.segments.clusters as clusters

    _, truth = data
    monkeypatch.setattr(clusters, "INIT_SAMPLE", 150)  # start from KMeans on 150 of the 400 rows
    res = fit_clusters(X, k=4, random_state=0, minibatch_threshold=100)
    assert res.algorithm == "MiniBatchKMeans"
    assert agreement_with(res.labels, truth) > 0.9
    assert res.model.n_steps_ > 0  # it did refine on mini-batches of all rows
    choice = choose_k(X, k_range=range(3, 6), minibatch_threshold=100)
    assert choice.algorithm == "MiniBatchKMeans" and choice.k == 4
    m = stability(X, k=4, seeds=(0, 1, 2), minibatch_threshold=100)
    assert m.attrs["mean_ari"] > 0.95


def test_stability_is_high_for_well_separated_groups(X):
    m = stability(X, k=4, seeds=(0, 1, 2, 3))
    assert m.shape == (4, 4) and list(m.index) == [0, 1, 2, 3]
    np.testing.assert_allclose(np.diag(m), 1.0)
    assert m.attrs["mean_ari"] > 0.95 and m.attrs["min_ari"] > 0.9
    assert m.attrs["sample_size"] == len(X)
    # with too many clusters for the structure, fits disagree more
    loose = stability(X, k=8, seeds=(0, 1, 2, 3), sample_size=200)
    assert loose.attrs["sample_size"] == 200
    assert loose.attrs["mean_ari"] < m.attrs["mean_ari"]


# --------------------------------------------------------------------------- profiles and names
def test_cluster_profiles_are_z_scores_of_cluster_means(data, seg):
    profile, _ = data
    prof = cluster_profiles(profile, seg.labels)
    col = "net_revenue"
    raw = profile[col]
    c0 = seg.labels.index[seg.labels == 0]
    expected = (raw.loc[c0].mean() - raw.mean()) / raw.std(ddof=0)
    assert prof.loc[0, col] == pytest.approx(expected)
    assert prof["n_customers"].sum() == len(profile) and prof["share"].sum() == pytest.approx(1.0)
    assert list(prof.columns) == [*COLUMNS, "n_customers", "share"]
    with pytest.raises(ValueError, match=r"must have a cluster for every customer"):
        cluster_profiles(profile, seg.labels.iloc[1:])


def test_segment_customers_end_to_end(data, seg):
    profile, truth = data
    assert seg.k == 4 and seg.k_choice.k == 4
    assert agreement_with(seg.labels, truth) > 0.9
    assert seg.stability_summary["mean_ari"] > 0.95 and seg.stability_summary["seeds"] == [0, 1, 2]
    assert seg.labels.index.equals(profile.index)
    assert list(seg.summary()["n_customers"]) == sorted(SIZES.values(), reverse=True)
    assert set(seg.seconds) == {"prepare", "choose_k_and_fit", "stability", "profiles_and_names"}
    # the given-k path
    fixed = segment_customers(profile, columns=COLUMNS, k=4, fill_values=FILL, stability_seeds=None)
    assert fixed.k_choice is None and fixed.stability is None
    pd.testing.assert_series_equal(fixed.labels, seg.labels)


def test_names_are_unique_deterministic_and_reflect_the_profile(data, seg):
    profile, truth = data
    names = seg.names
    assert sorted(names) == [0, 1, 2, 3]
    assert len(set(names.values())) == 4
    # the cluster holding the live-stream watchers (high watch minutes, zero orders)
    watchers = int(seg.labels[truth == "live_watchers"].mode()[0])
    assert seg.profiles.loc[watchers, "live_stream_watched_minutes"] > 1
    name = names[watchers]
    assert "live-stream" in name and ("low-value" in name or "non-buy" in name), name
    # the big app buyers are high value
    buyers = int(seg.labels[truth == "app_buyers"].mode()[0])
    assert names[buyers].startswith("high-value"), names[buyers]
    lapsed = int(seg.labels[truth == "lapsed"].mode()[0])
    assert "lapsed" in names[lapsed], names[lapsed]
    # deterministic, including for shuffled input rows
    assert name_clusters(seg.profiles) == names
    again = segment_customers(profile.sample(frac=1.0, random_state=3), columns=COLUMNS, k_range=range(2, 9),
                              fill_values=FILL, stability_seeds=None)
    assert again.names == names
    pd.testing.assert_series_equal(again.labels.loc[profile.index], seg.labels)
    assert seg.named_labels.loc[truth.index[truth == "live_watchers"][0]] == name


def test_name_rules_collisions_vocabulary_and_fallback():
    profiles = pd.DataFrame({
        "orders": [1.2, 1.0, -0.1, 0.0],
        "application_opened": [0.1, 0.05, 0.0, -0.1],
        "loyalty_points": [0.9, -0.8, 1.5, 0.0],
        "n_customers": [10, 9, 8, 7], "share": [0.3, 0.26, 0.24, 0.2],
    })
    names = name_clusters(profiles, value_column=None)
    # clusters 0 and 1 share their top feature ("frequent buyers"): the next one tells them apart
    assert names[0] != names[1] and names[0].startswith("frequent buyers") and names[1].startswith("frequent buyers")
    assert names[0] == "frequent buyers, high loyalty_points"  # unknown column: its name
    assert names[2] == "high loyalty_points"
    assert names[3] == "typical customers"
    custom = name_clusters(profiles, value_column=None,
                           vocabulary={"loyalty_points": ("points collectors", "points ignorers")})
    assert custom[2] == "points collectors"
    # low activity: nearly everything below average and no standout feature
    quiet = pd.DataFrame({"orders": [-0.5, -0.5], "sessions": [-0.6, -0.6], "application_opened": [-0.4, -0.4],
                          "email_open_rate": [-0.3, 1.6], "recency_days": [0.7, -0.2], "net_revenue": [-0.5, -0.5]})
    assert name_clusters(quiet) == {0: "low-activity, lapsed", 1: "low-value email readers"}
    # identical profiles: brackets, then the cluster number as a last resort
    same = pd.DataFrame({"orders": [1.0, 1.0, -1.0], "net_revenue": [0.0, 0.0, 0.0]})
    out = name_clusters(same)
    assert len(set(out.values())) == 3 and re.search(r"#1$", out[1])
    assert set(COLUMNS) - {"net_revenue"} <= set(DEFAULT_VOCABULARY)


# --------------------------------------------------------------------------- errors and agreement
def test_bad_parameters_raise_sklearn_style_messages(X):
    with pytest.raises(ValueError, match=re.escape("The 'k_range' parameter must be a non-empty range or list of "
                                                   "integers >= 2 and < n_samples (= 400). Got range(1, 5) instead.")):
        choose_k(X, k_range=range(1, 5))
    with pytest.raises(ValueError, match=r"The 'k_range' parameter must be .* Got \[2, 400\] instead\."):
        choose_k(X, k_range=[2, 400])
    with pytest.raises(ValueError, match=r"The 'k_range' parameter must be .* Got \[2, 3\.5\] instead\."):
        choose_k(X, k_range=[2, 3.5])
    with pytest.raises(ValueError, match=r"The 'k_range' parameter must be .* Got range\(2, 2\) instead\."):
        segment_customers(X, columns=list(X.columns), k_range=range(2, 2))
    with pytest.raises(ValueError, match=r"The 'k' parameter must be an int >= 2 and <= 399\. Got 1 instead\."):
        fit_clusters(X, k=1)
    with pytest.raises(ValueError, match=r"The 'seeds' parameter must be a list of at least 2 distinct integers\. "
                                         r"Got \(0,\) instead\."):
        stability(X, k=3, seeds=(0,))
    with pytest.raises(ValueError, match=r"The 'tolerance' parameter must be a float in \[0, 1\)\. Got -0\.1 instead\."):
        choose_k(X, tolerance=-0.1)
    with pytest.raises(ValueError, match=r"The 'X' parameter must hold finite values only"):
        fit_clusters(X.assign(orders=np.nan), k=3)


def test_agreement_with_aligns_by_index():
    a = pd.Series([0, 0, 1, 1, 2], index=list("abcde"))
    b = pd.Series(["y", "z", "z", "x", "x"], index=list("edcba"))  # same partition, other names and order
    assert agreement_with(a, b) == pytest.approx(1.0)
    assert agreement_with(a, pd.Series([0, 1, 0, 1, 0], index=list("abcde"))) < 0.5
    assert agreement_with(a, b.iloc[:4]) == pytest.approx(1.0)  # only the common customers count
    with pytest.raises(ValueError, match=r"must share at least 1 index value"):
        agreement_with(a, pd.Series([1, 2], index=["x", "y"]))
    with pytest.raises(ValueError, match=r"same, non-zero length"):
        agreement_with(np.array([0, 1]), np.array([0, 1, 1]))


# --------------------------------------------------------------------------- figures
def _labelled(ax) -> bool:
    return bool(ax.get_xlabel()) and bool(ax.get_ylabel()) and bool(ax.get_title())


def test_plots_return_labelled_figures(seg):
    import matplotlib.pyplot as plt

    assert matplotlib.get_backend().lower() == "agg"
    fig = seg.plot_k()
    assert isinstance(fig, Figure) and len(fig.axes) == 2 and all(_labelled(ax) for ax in fig.axes)
    assert fig.axes[1].get_xlabel() == "number of clusters k" and "silhouette" in fig.axes[1].get_ylabel()
    fig2 = plot_profiles(seg.profiles, seg.names)
    ax = fig2.axes[0]
    assert isinstance(fig2, Figure) and _labelled(ax)
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert all(seg.names[c] in t for c, t in zip(range(4), ticks))
    assert "z-score" in fig2.axes[1].get_ylabel()  # the colour bar
    fig3 = plot_projection(seg.X, seg.labels, seg.names, sample=200)
    ax3 = fig3.axes[0]
    assert isinstance(fig3, Figure) and _labelled(ax3)
    assert re.match(r"PC1 \(\d+\.\d% of variance", ax3.get_xlabel())
    assert sum(len(c.get_offsets()) for c in ax3.collections) == 200
    plt.close("all")
