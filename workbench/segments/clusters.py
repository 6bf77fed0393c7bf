"""Behavioural clusters: KMeans on the customer feature table, with k chosen and explained,
stability across seeds, profiles, names derived from the profiles, and figures.

The input is a customer feature table: one row per customer (index = customer id) and
numeric behavioural columns; the caller says which columns to use. The steps, each a
public function, are:

1. :func:`prepare_features` — fill, ``log1p`` the heavy-tailed columns, clip the tails,
   standardise (a fitted, reusable :class:`FeatureTransform`);
2. :func:`choose_k` — inertia, sampled silhouette and Calinski–Harabasz for each k; the
   chosen k is the **smallest k whose silhouette is within ``tolerance`` (0.01) of the best**,
   with a one-sentence explanation (:class:`KChoice`);
3. :func:`fit_clusters` — KMeans, or above ``minibatch_threshold`` rows MiniBatchKMeans
   started from a KMeans on a sample; labels renumbered by cluster size (cluster 0 is the
   biggest) (:class:`ClusterResult`);
4. :func:`stability` — pairwise adjusted Rand index between fits with different seeds;
5. :func:`cluster_profiles` / :func:`name_clusters` — z-scores of the features' cluster
   means, and a unique descriptive name per cluster from a configurable vocabulary;
6. :func:`plot_profiles`, :func:`plot_projection`, :meth:`KChoice.plot` — figures;
7. :func:`segment_customers` — all of the above in one call (:class:`Clustering`);
8. :func:`agreement_with` — adjusted Rand index against known groups.

Determinism: every fit runs on the rows in a canonical order (sorted by a hash of the
customer id), so the same customers give the same labels whatever the input row order;
random choices (k-means++ seeds, mini-batches, silhouette and stability samples) come from
``random_state``. Bad arguments raise ``ValueError`` in scikit-learn style ("The 'x'
parameter must be ... Got ... instead.").
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "DEFAULT_VOCABULARY", "INIT_SAMPLE", "VALUE_COLUMNS", "ClusterResult", "Clustering", "FeatureTransform", "KChoice",
    "agreement_with", "choose_k", "cluster_profiles", "fit_clusters", "name_clusters", "plot_profiles",
    "plot_projection", "prepare_features", "segment_customers", "stability", "stability_summary",
]

#: ``{feature: (phrase when the cluster is high on it, phrase when it is low)}``. Used by
#: :func:`name_clusters`; a column not listed falls back to ``"high <column>"`` / ``"low <column>"``.
#: Phrases are noun phrases so that two of them read well after a value tier:
#: "low-value live-stream watchers, rare or non-buyers".
DEFAULT_VOCABULARY: dict[str, tuple[str, str]] = {
    "orders": ("frequent buyers", "rare or non-buyers"),
    "frequency": ("frequent buyers", "rare or non-buyers"),
    "net_revenue": ("big spenders", "small spenders"),
    "revenue": ("big spenders", "small spenders"),
    "monetary": ("big spenders", "small spenders"),
    "avg_order_value": ("big-basket buyers", "small-basket buyers"),
    "recency_days": ("lapsed", "recent buyers"),
    "days_since_last_order": ("lapsed buyers", "recent buyers"),
    "recency": ("lapsed", "recent buyers"),
    "tenure_days": ("long-standing customers", "newcomers"),
    "sessions": ("site and app browsers", "rarely on the site or app"),
    "application_opened": ("app users", "rarely in the app"),
    "product_viewed": ("product browsers", "few product views"),
    "live_stream_watched": ("live-stream regulars", "rarely at live streams"),
    "live_stream_watched_minutes": ("live-stream watchers", "little live-stream viewing"),
    "live_stream_commented": ("live-stream commenters", "silent at live streams"),
    "live_gift_sent": ("live-stream gifters", "no live-stream gifts"),
    "live_product_clicked": ("live-stream shoppers", "few live-stream product clicks"),
    "email_open_rate": ("email readers", "email ignorers"),
    "email_click_rate": ("email clickers", "rarely click emails"),
    "service_ticket_opened": ("frequent service contacts", "few service contacts"),
    "returns": ("frequent returners", "rare returners"),
    "channels_present": ("multichannel", "single-channel"),
    "n_channels": ("multichannel", "single-channel"),
}

#: Revenue-like columns that give the value tier in :func:`name_clusters` (first present wins).
VALUE_COLUMNS: tuple[str, ...] = ("net_revenue", "revenue", "monetary", "monetary_value", "total_spend",
                                  "spend", "gross_revenue", "clv")

_SIZE_COLUMNS = ("n_customers", "share")


# --------------------------------------------------------------------------- helpers
def _param_error(name: str, expected: str, got: Any) -> ValueError:
    return ValueError(f"The '{name}' parameter must be {expected}. Got {got!r} instead.")


def _check_int(value: Any, name: str, low: int, *, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low or (high is not None and value > high):
        bound = f"an int >= {low}" + (f" and <= {high}" if high is not None else "")
        raise _param_error(name, bound, value)
    return int(value)


def _canonical_order(index: pd.Index) -> np.ndarray:
    """Positions that put the rows in an order that depends on the customer ids only
    (sorted by a 64-bit hash of the id, stable), so results do not depend on input row order."""
    if index.has_duplicates:
        dup = index[index.duplicated()].unique()[:5].tolist()
        raise ValueError(f"The feature table must have one row per customer (a unique index). "
                         f"Got duplicated ids such as {dup} instead.")
    h = pd.util.hash_pandas_object(index, index=False).to_numpy()
    return np.argsort(h, kind="stable")


def _as_matrix(X: Any, name: str = "X", order: np.ndarray | None = None
               ) -> tuple[np.ndarray, pd.Index, list[str], np.ndarray]:
    """``X`` as a float64 matrix in canonical row order, with its index, column names and the order."""
    if isinstance(X, pd.DataFrame):
        bad = [c for c in X.columns if not (pd.api.types.is_numeric_dtype(X[c]) or pd.api.types.is_bool_dtype(X[c]))]
        if bad:
            raise ValueError(f"The '{name}' parameter must hold numeric columns only. Got non-numeric {bad} instead.")
        values = X.to_numpy(dtype="float64", na_value=np.nan)
        index, columns = X.index, [str(c) for c in X.columns]
    elif isinstance(X, np.ndarray) and X.ndim == 2:
        values = np.asarray(X, dtype="float64")
        index, columns = pd.RangeIndex(len(values)), [f"feature_{i}" for i in range(values.shape[1])]
    else:
        raise _param_error(name, "a pandas DataFrame or a 2-D numpy array", type(X).__name__)
    if values.shape[0] < 2 or values.shape[1] < 1:
        raise _param_error(name, "a table with at least 2 rows and 1 column", f"shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError(f"The '{name}' parameter must hold finite values only (run prepare_features first). "
                         f"Got NaN or infinite values instead.")
    if order is None:
        order = _canonical_order(index)
    return np.ascontiguousarray(values[order]), index, columns, order


def _check_k_range(k_range: Any, n_samples: int) -> list[int]:
    expected = f"a non-empty range or list of integers >= 2 and < n_samples (= {n_samples})"
    try:
        ks = list(k_range)
    except TypeError:
        raise _param_error("k_range", expected, k_range) from None
    if not ks or any(isinstance(k, bool) or not isinstance(k, Integral) or k < 2 or k >= n_samples for k in ks):
        raise _param_error("k_range", expected, k_range)
    return sorted({int(k) for k in ks})


#: Rows of the seeded sample on which KMeans finds the starting centres for MiniBatchKMeans.
INIT_SAMPLE = 50_000
_SINGLE_THREAD_BELOW = 50_000


def _fit_kmeans(values: np.ndarray, k: int, *, random_state: int, minibatch_threshold: int, n_init: int):
    """A fitted KMeans, or, above ``minibatch_threshold`` rows, MiniBatchKMeans started from the
    centres of a KMeans (``n_init`` runs) on a seeded sample of :data:`INIT_SAMPLE` rows.

    Why the sample start: on a million synthetic customers, MiniBatchKMeans with its own
    k-means++ start (``n_init=3``) reached different optima for different seeds (pairwise ARI
    0.60-0.97); started from the sample's KMeans centres the seeds agreed (ARI >= 0.99), the
    inertia was the lowest of the variants tried, and the fit took a third of the time.

    MiniBatchKMeans (steps of 4,096 rows) and KMeans on fewer than 50,000 rows run on one
    OpenMP thread: the work per parallel region is small, and on a busy shared machine threads
    waiting for each other made these fits 3-10x slower, not faster.
    """
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    def kmeans(x: np.ndarray) -> KMeans:
        model = KMeans(n_clusters=k, random_state=random_state, n_init=n_init)
        if len(x) < _SINGLE_THREAD_BELOW:
            with threadpool_limits(limits=1, user_api="openmp"):
                return model.fit(x)
        return model.fit(x)

    n = len(values)
    if n <= minibatch_threshold:
        return kmeans(values)
    start = kmeans(values[_sample_positions(n, max(INIT_SAMPLE, k + 1), random_state)]).cluster_centers_
    # batches of 4,096 rows (sklearn suggests >= 256 x cores): fewer, cheaper steps than the default 1,024
    model = MiniBatchKMeans(n_clusters=k, init=start, n_init=1, random_state=random_state, batch_size=4096,
                            max_no_improvement=10, reassignment_ratio=0.01)
    with threadpool_limits(limits=1, user_api="openmp"):
        return model.fit(values)


def _check_fit_options(n_init: Any, minibatch_threshold: Any) -> tuple[int, int]:
    return _check_int(n_init, "n_init", 1), _check_int(minibatch_threshold, "minibatch_threshold", 1)


def _check_seeds(seeds: Any) -> list[int]:
    out = list(seeds) if isinstance(seeds, Iterable) and not isinstance(seeds, str) else None
    if (out is None or len(out) < 2 or len(set(out)) != len(out)
            or any(isinstance(s, bool) or not isinstance(s, Integral) for s in out)):
        raise _param_error("seeds", "a list of at least 2 distinct integers", seeds)
    return [int(s) for s in out]


def _check_tolerance(tolerance: Any) -> float:
    if isinstance(tolerance, bool) or not isinstance(tolerance, Real) or not 0 <= tolerance < 1:
        raise _param_error("tolerance", "a float in [0, 1)", tolerance)
    return float(tolerance)


def _sample_positions(n: int, size: int | None, random_state: int) -> np.ndarray:
    if size is None or size >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(random_state).choice(n, size=size, replace=False))


def _relabel(labels: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """``mapping[old] = new``: clusters numbered by size (descending), ties by centroid coordinates."""
    k = len(centers)
    sizes = np.bincount(labels, minlength=k)
    keys = sorted(range(k), key=lambda c: (-sizes[c], tuple(np.round(centers[c], 9))))
    mapping = np.empty(k, dtype=np.int64)
    mapping[keys] = np.arange(k)
    return mapping


# --------------------------------------------------------------------------- 1. features
@dataclass
class FeatureTransform:
    """A fitted feature preparation: fill → ``log1p`` → clip → standardise, reusable on new rows.

    Fit it with :func:`prepare_features` (``return_transform=True``) or :meth:`fit`.
    """

    columns: list[str]
    fill_values: dict[str, float]
    log_columns: list[str]
    clip_bounds: dict[str, tuple[float, float]]
    scaler: Any = field(repr=False)  # a fitted sklearn StandardScaler

    @classmethod
    def fit(cls, profile: pd.DataFrame, *, columns: Sequence[str], log_columns: Sequence[str] | None = None,
            clip_quantile: float | None = 0.99, fill_values: Mapping[str, float | str] | None = None,
            skew_threshold: float = 1.0) -> FeatureTransform:
        """Learn the fill values, log columns, clip bounds and scaling from ``profile``
        (see :func:`prepare_features` for the options)."""
        return _fit_features(profile, columns=columns, log_columns=log_columns, clip_quantile=clip_quantile,
                             fill_values=fill_values, skew_threshold=skew_threshold)

    def transform(self, profile: pd.DataFrame) -> pd.DataFrame:
        """Apply the fitted steps to ``profile`` (same columns; any rows). Returns the scaled frame."""
        return _transform_features(self, profile)

    def describe(self) -> pd.DataFrame:
        """One row per feature: fill value, log1p or not, clip bounds (after log1p), mean and scale."""
        return pd.DataFrame({
            "fill_value": [self.fill_values[c] for c in self.columns],
            "log1p": [c in self.log_columns for c in self.columns],
            "clip_low": [self.clip_bounds.get(c, (np.nan, np.nan))[0] for c in self.columns],
            "clip_high": [self.clip_bounds.get(c, (np.nan, np.nan))[1] for c in self.columns],
            "mean": self.scaler.mean_, "scale": self.scaler.scale_,
        }, index=pd.Index(self.columns, name="feature"))


def _fit_features(profile: pd.DataFrame, *, columns: Sequence[str], log_columns: Sequence[str] | None,
              clip_quantile: float | None, fill_values: Mapping[str, float | str] | None,
              skew_threshold: float, order: np.ndarray | None = None) -> FeatureTransform:
    from sklearn.preprocessing import StandardScaler

    cols = _check_columns(profile, columns)
    if clip_quantile is not None and (isinstance(clip_quantile, bool) or not isinstance(clip_quantile, Real)
                                      or not 0.5 < clip_quantile <= 1):
        raise _param_error("clip_quantile", "a float in (0.5, 1] or None", clip_quantile)
    if not isinstance(skew_threshold, Real) or isinstance(skew_threshold, bool):
        raise _param_error("skew_threshold", "a number", skew_threshold)
    raw = profile[cols]
    # statistics on the rows in canonical order: independent of the input row order, to the last bit
    raw = raw.iloc[_canonical_order(raw.index) if order is None else order]
    fills = _fit_fill_values(raw, cols, fill_values)
    df = _numeric(raw, cols).fillna(fills)
    if log_columns is None:
        skew = df.skew()
        logs = [c for c in cols if df[c].min() >= 0 and skew[c] > skew_threshold]
    else:
        if isinstance(log_columns, str):
            raise _param_error("log_columns", "a list of column names or None", log_columns)
        logs = list(dict.fromkeys(log_columns))
        unknown = [c for c in logs if c not in cols]
        if unknown:
            raise ValueError(f"The 'log_columns' parameter must list columns of 'columns'. Got {unknown}, "
                             f"not in {cols}, instead.")
        negative = [c for c in logs if df[c].min() < 0]
        if negative:
            raise ValueError(f"The 'log_columns' parameter must list non-negative columns (log1p). "
                             f"Got {negative}, with negative values, instead.")
    logs = [c for c in cols if c in logs]
    values = df.to_numpy(dtype="float64", copy=True)
    is_log = np.array([c in logs for c in cols])
    values[:, is_log] = np.log1p(values[:, is_log])
    bounds: dict[str, tuple[float, float]] = {}
    if clip_quantile is not None and clip_quantile < 1:
        lo_q, hi_q = np.quantile(values, [1 - clip_quantile, clip_quantile], axis=0)
        for j, c in enumerate(cols):
            lo, hi = float(lo_q[j]), float(hi_q[j])
            col_min, col_max = float(values[:, j].min()), float(values[:, j].max())
            # a bound that would squash the column to one value (e.g. 99.5% zeros) is not used
            if hi <= col_min:
                hi = col_max
            if lo >= col_max:
                lo = col_min
            bounds[c] = (lo, hi)
        values = np.clip(values, [bounds[c][0] for c in cols], [bounds[c][1] for c in cols])
    scaler = StandardScaler().fit(values)
    return FeatureTransform(columns=cols, fill_values=fills, log_columns=logs, clip_bounds=bounds, scaler=scaler)


def _transform_features(tf: FeatureTransform, profile: pd.DataFrame) -> pd.DataFrame:
    cols = _check_columns(profile, tf.columns)
    df = _numeric(profile[cols], cols).fillna(tf.fill_values)
    values = df.to_numpy(dtype="float64", copy=True)
    is_log = np.array([c in tf.log_columns for c in cols])
    if is_log.any():
        if (values[:, is_log] < 0).any():
            neg = [c for c, lg in zip(cols, is_log) if lg and (df[c] < 0).any()]
            raise ValueError(f"The profile must be non-negative in the log1p columns. Got negative values in {neg} instead.")
        values[:, is_log] = np.log1p(values[:, is_log])
    if tf.clip_bounds:
        values = np.clip(values, [tf.clip_bounds[c][0] for c in cols], [tf.clip_bounds[c][1] for c in cols])
    scaled = tf.scaler.transform(values)
    return pd.DataFrame(scaled, index=profile.index, columns=cols)


def _check_columns(profile: Any, columns: Any) -> list[str]:
    if not isinstance(profile, pd.DataFrame):
        raise _param_error("profile", "a pandas DataFrame (one row per customer)", type(profile).__name__)
    if isinstance(columns, str) or not isinstance(columns, Iterable):
        raise _param_error("columns", "a non-empty list of column names", columns)
    cols = list(columns)
    if not cols or len(set(cols)) != len(cols):
        raise _param_error("columns", "a non-empty list of distinct column names", columns)
    missing = [c for c in cols if c not in profile.columns]
    if missing:
        raise ValueError(f"The 'columns' parameter lists column(s) missing from the profile: {missing}. "
                         f"Columns present: {list(profile.columns)}.")
    bad = [c for c in cols if not (pd.api.types.is_numeric_dtype(profile[c]) or pd.api.types.is_bool_dtype(profile[c]))]
    if bad:
        raise ValueError(f"The 'columns' parameter must name numeric columns. Got non-numeric {bad} "
                         f"({[str(profile[c].dtype) for c in bad]}) instead.")
    return cols


def _numeric(df: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    out = pd.DataFrame(df.to_numpy(dtype="float64", na_value=np.nan), index=df.index, columns=cols)
    inf = [c for c in cols if np.isinf(out[c].to_numpy()).any()]
    if inf:
        raise ValueError(f"The profile must hold finite values in the feature columns. Got infinite values in {inf} instead.")
    return out


def _fit_fill_values(raw: pd.DataFrame, cols: list[str], fill_values: Mapping[str, Any] | None) -> dict[str, float]:
    spec = dict(fill_values or {})
    unknown = [c for c in spec if c not in cols]
    if unknown:
        raise ValueError(f"The 'fill_values' parameter must use columns of 'columns' as keys. Got {unknown}, "
                         f"not in {cols}, instead.")
    out = {}
    for c in cols:
        how = spec.get(c, 0.0)
        s = pd.Series(raw[c].to_numpy(dtype="float64", na_value=np.nan))
        if isinstance(how, str) and how in ("median", "max", "min"):
            v = getattr(s, how)()
            out[c] = 0.0 if pd.isna(v) else float(v)
        elif isinstance(how, Real) and not isinstance(how, bool) and np.isfinite(how):
            out[c] = float(how)
        else:
            raise ValueError(f"The 'fill_values' parameter must map a column to a number or 'median', 'max' "
                             f"or 'min'. Got {c!r}: {how!r} instead.")
    return out


def prepare_features(profile: pd.DataFrame, *, columns: Sequence[str], log_columns: Sequence[str] | None = None,
                     clip_quantile: float | None = 0.99, fill_values: Mapping[str, float | str] | None = None,
                     skew_threshold: float = 1.0, return_transform: bool = False):
    """Select ``columns``, fill, ``log1p``, clip and standardise; same index as ``profile``.

    - **Missing values become 0** by default: in a behavioural table a missing count, amount
      or rate means the customer has no activity in that channel, and the median would invent
      activity. Where 0 is wrong, say so per column: ``fill_values={"recency_days": "max"}``
      (never bought → as lapsed as the most lapsed) — a number, ``"median"``, ``"max"`` or ``"min"``.
    - ``log1p`` applies to ``log_columns``; ``None`` (default) picks every column with
      skewness > ``skew_threshold`` (1.0) and no negative value (heavy-tailed counts and amounts).
    - Both tails are clipped at the ``1 - clip_quantile`` / ``clip_quantile`` quantiles (after
      ``log1p``); a bound that would collapse a column to one value (e.g. a column that is 0 for
      more than 99% of customers) is not applied. ``None`` or 1.0 disables clipping.
    - Then each column is standardised (mean 0, variance 1; a constant column becomes 0).

    With ``return_transform=True`` returns ``(X, transform)``; ``transform.transform(new_profile)``
    repeats the fitted steps exactly and ``transform.describe()`` shows them.

    >>> profile = pd.DataFrame({"orders": [0, 1, 2, 3, 50], "email_open_rate": [0.1, 0.5, None, 0.3, 0.2]},
    ...                        index=pd.Index(["a", "b", "c", "d", "e"], name="customer_id"))
    >>> X, tf = prepare_features(profile, columns=["orders", "email_open_rate"], return_transform=True)
    >>> tf.log_columns, tf.fill_values
    (['orders'], {'orders': 0.0, 'email_open_rate': 0.0})
    >>> X.round(2).to_dict("list")["orders"]
    [-1.07, -0.55, -0.24, -0.02, 1.87]
    """
    tf = FeatureTransform.fit(profile, columns=columns, log_columns=log_columns, clip_quantile=clip_quantile,
                              fill_values=fill_values, skew_threshold=skew_threshold)
    X = tf.transform(profile)
    return (X, tf) if return_transform else X


# --------------------------------------------------------------------------- 2. choosing k
@dataclass
class KChoice:
    """The scores of each k and the chosen one. ``table`` is indexed by k with columns
    ``inertia``, ``silhouette`` (on a sample of ``sample_size`` rows) and ``calinski_harabasz``."""

    table: pd.DataFrame
    k: int
    explanation: str
    tolerance: float
    sample_size: int
    algorithm: str
    elbow: int | None = None
    _models: dict = field(default_factory=dict, repr=False)

    def plot(self):
        """Inertia and silhouette against k, the chosen k marked. Returns the Figure."""
        import matplotlib.pyplot as plt

        fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
        ks = self.table.index.to_numpy()
        a1.plot(ks, self.table["inertia"], marker="o", color="#4C72B0")
        a1.set_ylabel("inertia (sum of squared distances, standardised units²)")
        a1.set_title("Inertia (lower = tighter clusters)")
        a2.plot(ks, self.table["silhouette"], marker="o", color="#55A868")
        a2.set_ylabel(f"mean silhouette (−1..1; sample of {self.sample_size:,} customers)")
        a2.set_title("Silhouette (higher = better separated)")
        for ax in (a1, a2):
            ax.axvline(self.k, color="#C44E52", ls="--", label=f"chosen k = {self.k}")
            ax.set_xlabel("number of clusters k")
            ax.set_xticks(ks)
            ax.legend(loc="best", fontsize=8)
        if self.elbow is not None and self.elbow != self.k:
            a1.axvline(self.elbow, color="grey", ls=":", label=f"inertia bend k = {self.elbow}")
            a1.legend(loc="best", fontsize=8)
        fig.suptitle(f"Choosing k ({self.algorithm}): {self.explanation}", fontsize=9, wrap=True)
        fig.tight_layout()
        return fig


def _elbow(ks: np.ndarray, inertia: np.ndarray) -> int | None:
    """The bend of the inertia curve: the k farthest below the chord from the first to the last
    point, both axes scaled to [0, 1] (the "kneedle" rule). None for fewer than 3 points."""
    if len(ks) < 3 or inertia[0] == inertia[-1]:
        return None
    x = (ks - ks[0]) / (ks[-1] - ks[0])
    y = (inertia - inertia[-1]) / (inertia[0] - inertia[-1])
    return int(ks[int(np.argmax((1 - x) - y))])


def _score_k(values: np.ndarray, ks: list[int], *, random_state: int, sample_size: int, n_init: int,
             minibatch_threshold: int) -> tuple[pd.DataFrame, dict, str]:
    from sklearn import config_context
    from sklearn.metrics import calinski_harabasz_score, silhouette_score

    n = len(values)
    pos = _sample_positions(n, sample_size, random_state)
    rows, models, algorithm = [], {}, ""
    for k in ks:
        model = _fit_kmeans(values, k, random_state=random_state, minibatch_threshold=minibatch_threshold,
                            n_init=n_init)
        algorithm = type(model).__name__
        labels = model.labels_
        sub = labels[pos]
        with config_context(working_memory=256):  # distance chunks of <= 256 MB instead of 1 GB
            sil = float(silhouette_score(values[pos], sub)) if len(np.unique(sub)) > 1 else np.nan
        ch = float(calinski_harabasz_score(values, labels)) if len(np.unique(labels)) > 1 else np.nan
        rows.append({"k": k, "inertia": float(model.inertia_), "silhouette": sil, "calinski_harabasz": ch})
        models[k] = model
    return pd.DataFrame(rows).set_index("k"), models, algorithm


def choose_k(X: pd.DataFrame | np.ndarray, *, k_range: Iterable[int] = range(2, 11), random_state: int = 0,
             sample_size: int = 20_000, n_init: int = 3, tolerance: float = 0.01,
             minibatch_threshold: int = 100_000) -> KChoice:
    """Score each k in ``k_range`` and choose one.

    For each k the clusters are fitted as in :func:`fit_clusters`; the scores are the inertia,
    the silhouette on one seeded sample of at most ``sample_size`` rows (the same rows for every
    k; silhouette costs O(n²)) and the Calinski–Harabasz index on all rows.

    **Rule**: the smallest k whose silhouette is within ``tolerance`` (default 0.01) of the
    highest — fewer clusters when the data do not clearly prefer more. The ``elbow`` (the bend
    of the inertia curve, "kneedle" rule) is reported in the explanation but does not decide.

    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame(np.r_[rng.normal(0, 0.3, (30, 2)), rng.normal(3, 0.3, (30, 2)),
    ...                        rng.normal((0, 3), 0.3, (30, 2))], columns=["f1", "f2"])
    >>> choice = choose_k(X, k_range=range(2, 6))
    >>> choice.k
    3
    >>> choice.explanation
    'k=3: silhouette 0.82 is the highest in 2..5 (next best k=4: 0.69), and the inertia curve bends at k=3.'
    """
    values, _, _, _ = _as_matrix(X)
    ks = _check_k_range(k_range, len(values))
    sample_size = _check_int(sample_size, "sample_size", 2)
    n_init, minibatch_threshold = _check_fit_options(n_init, minibatch_threshold)
    return _choose_k(values, ks, random_state=random_state, sample_size=sample_size, n_init=n_init,
                     tolerance=_check_tolerance(tolerance), minibatch_threshold=minibatch_threshold)


def _choose_k(values: np.ndarray, ks: list[int], *, random_state: int, sample_size: int, n_init: int,
              tolerance: float, minibatch_threshold: int) -> KChoice:
    table, models, algorithm = _score_k(values, ks, random_state=random_state, sample_size=sample_size,
                                        n_init=n_init, minibatch_threshold=minibatch_threshold)
    sil = table["silhouette"]
    if sil.isna().all():
        raise ValueError("Cannot choose k: every fit put the silhouette sample into a single cluster.")
    best_k = int(sil.idxmax())
    best = float(sil.max())
    k = int(min(kk for kk, s in sil.items() if s >= best - tolerance))
    elbow = _elbow(table.index.to_numpy(dtype=float), table["inertia"].to_numpy())
    where = f"in {ks[0]}..{ks[-1]}" if ks == list(range(ks[0], ks[-1] + 1)) else f"among k = {ks}"
    if k == best_k:
        others = sil.drop(k).dropna()
        nxt = f" (next best k={int(others.idxmax())}: {others.max():.2f})" if len(others) else ""
        head = f"k={k}: silhouette {best:.2f} is the highest {where}{nxt}"
    else:
        head = (f"k={k}: silhouette {sil[k]:.2f} is within {tolerance:g} of the highest {where} "
                f"(k={best_k}: {best:.2f}), so the smaller k is kept")
    if elbow is None:
        tail = "."
    elif elbow == k:
        tail = f", and the inertia curve bends at k={k}."
    else:
        tail = f"; the inertia curve bends at k={elbow}."
    return KChoice(table=table, k=k, explanation=head + tail, tolerance=float(tolerance),
                   sample_size=int(min(sample_size, len(values))), algorithm=algorithm, elbow=elbow, _models=models)


# --------------------------------------------------------------------------- 3. fitting
@dataclass
class ClusterResult:
    """A fitted clustering. Cluster 0 is the biggest; ``centers`` are in the scaled feature space."""

    labels: pd.Series             # cluster per customer, indexed like X, name "cluster"
    centers: pd.DataFrame         # k x features, index "cluster"
    sizes: pd.Series              # customers per cluster
    inertia: float
    algorithm: str                # "KMeans" or "MiniBatchKMeans"
    k: int
    random_state: int
    model: Any = field(repr=False)
    mapping: np.ndarray = field(repr=False)  # mapping[model label] = cluster

    def predict(self, X: pd.DataFrame | np.ndarray) -> pd.Series:
        """Cluster of new (already prepared) rows, with the same numbering."""
        values = X.to_numpy(dtype="float64") if isinstance(X, pd.DataFrame) else np.asarray(X, dtype="float64")
        index = X.index if isinstance(X, pd.DataFrame) else pd.RangeIndex(len(values))
        return pd.Series(self.mapping[self.model.predict(values)], index=index, name="cluster")


def _result(model, values: np.ndarray, index: pd.Index, columns: list[str], order: np.ndarray,
            random_state: int) -> ClusterResult:
    mapping = _relabel(model.labels_, model.cluster_centers_)
    canon = mapping[model.labels_]
    labels = np.empty(len(canon), dtype=np.int64)
    labels[order] = canon
    k = len(mapping)
    centers = np.empty_like(model.cluster_centers_)
    centers[mapping] = model.cluster_centers_
    sizes = pd.Series(np.bincount(canon, minlength=k), index=pd.RangeIndex(k, name="cluster"), name="n_customers")
    return ClusterResult(labels=pd.Series(labels, index=index, name="cluster"),
                         centers=pd.DataFrame(centers, index=pd.RangeIndex(k, name="cluster"), columns=columns),
                         sizes=sizes, inertia=float(model.inertia_), algorithm=type(model).__name__, k=k,
                         random_state=random_state, model=model, mapping=mapping)


def fit_clusters(X: pd.DataFrame | np.ndarray, *, k: int, random_state: int = 0, minibatch_threshold: int = 100_000,
                 n_init: int = 3) -> ClusterResult:
    """KMeans with ``k`` clusters (best of ``n_init`` k-means++ starts). When ``X`` has more than
    ``minibatch_threshold`` rows: MiniBatchKMeans (batches of 4,096 rows) over all rows, started
    from the centres of a KMeans on a seeded sample of :data:`INIT_SAMPLE` (50,000) rows — a
    million customers in seconds, and as seed-stable as KMeans (see ``_fit_kmeans``).

    Labels are renumbered by cluster size, biggest first (ties: by centroid coordinates), and
    the fit runs on the rows in an order fixed by the customer ids, so the same customers and
    ``random_state`` give the same label per customer in every run and for any row order.

    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame(np.r_[rng.normal(0, 0.3, (20, 2)), rng.normal(3, 0.3, (40, 2))], columns=["f1", "f2"])
    >>> res = fit_clusters(X, k=2)
    >>> res.sizes.tolist(), res.algorithm, int(res.labels.iloc[0])
    ([40, 20], 'KMeans', 1)
    """
    values, index, columns, order = _as_matrix(X)
    k = _check_int(k, "k", 2, high=len(values) - 1)
    n_init, minibatch_threshold = _check_fit_options(n_init, minibatch_threshold)
    model = _fit_kmeans(values, k, random_state=random_state, minibatch_threshold=minibatch_threshold, n_init=n_init)
    return _result(model, values, index, columns, order, random_state)


# --------------------------------------------------------------------------- 4. stability
def stability(X: pd.DataFrame | np.ndarray, *, k: int, seeds: Sequence[int] = (0, 1, 2, 3, 4),
              sample_size: int | None = None, random_state: int = 0, minibatch_threshold: int = 100_000,
              n_init: int = 3) -> pd.DataFrame:
    """Adjusted Rand index between the clusterings fitted with each pair of ``seeds``.

    Returns a seeds × seeds matrix (1.0 on the diagonal); ``.attrs["mean_ari"]`` and
    ``.attrs["min_ari"]`` hold the mean and minimum over the pairs (see also
    :func:`stability_summary`). With ``sample_size``, all fits use the same seeded sample of
    that many rows (drawn with ``random_state``) — enough to judge stability at a fraction of the
    cost; the algorithm then follows the sample's size, as in :func:`fit_clusters`.
    ARI near 1: the clusters do not depend on the seed; below ~0.8: treat them with care.

    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame(np.r_[rng.normal(0, 0.3, (30, 2)), rng.normal(3, 0.3, (30, 2))], columns=["f1", "f2"])
    >>> m = stability(X, k=2, seeds=(0, 1, 2))
    >>> m.attrs["mean_ari"], m.shape
    (1.0, (3, 3))
    """
    values, _, _, _ = _as_matrix(X)
    seeds = _check_seeds(seeds)
    if sample_size is not None:
        sample_size = _check_int(sample_size, "sample_size", 3)
    k = _check_int(k, "k", 2, high=min(len(values), sample_size or len(values)) - 1)
    n_init, minibatch_threshold = _check_fit_options(n_init, minibatch_threshold)
    return _stability(values, k=k, seeds=seeds, sample_size=sample_size, random_state=random_state,
                      minibatch_threshold=minibatch_threshold, n_init=n_init)


def _stability(values: np.ndarray, *, k: int, seeds: list[int], sample_size: int | None, random_state: int,
               minibatch_threshold: int, n_init: int) -> pd.DataFrame:
    from sklearn.metrics import adjusted_rand_score

    values = values[_sample_positions(len(values), sample_size, random_state)]
    labels = [_fit_kmeans(values, k, random_state=s, minibatch_threshold=minibatch_threshold, n_init=n_init).labels_
              for s in seeds]
    m = np.eye(len(seeds))
    for i in range(len(seeds)):
        for j in range(i + 1, len(seeds)):
            m[i, j] = m[j, i] = adjusted_rand_score(labels[i], labels[j])
    out = pd.DataFrame(m, index=pd.Index(seeds, name="seed"), columns=pd.Index(seeds, name="seed"))
    out.attrs.update(stability_summary(out))
    out.attrs["sample_size"] = len(values)
    return out


def stability_summary(matrix: pd.DataFrame) -> dict[str, float]:
    """``{"mean_ari": ..., "min_ari": ...}`` over the pairs (off-diagonal) of a :func:`stability` matrix."""
    m = matrix.to_numpy()
    off = m[~np.eye(len(m), dtype=bool)]
    return {"mean_ari": round(float(off.mean()), 6), "min_ari": round(float(off.min()), 6)}


# --------------------------------------------------------------------------- 5. profiles and names
def _aligned_labels(data: pd.DataFrame, labels: Any) -> np.ndarray:
    if isinstance(labels, pd.Series):
        lab = labels.reindex(data.index)
        if lab.isna().any():
            miss = data.index[lab.isna().to_numpy()]
            raise ValueError(f"The 'labels' parameter must have a cluster for every customer of the profile. "
                             f"Got none for {len(miss)} customers, e.g. {miss[:5].tolist()}, instead.")
        return lab.to_numpy()
    lab = np.asarray(labels)
    if lab.ndim != 1 or len(lab) != len(data):
        raise _param_error("labels", f"a Series indexed by customer or an array of length {len(data)}",
                           f"{type(labels).__name__} of shape {lab.shape}")
    return lab


def cluster_profiles(profile_or_X: pd.DataFrame, labels: pd.Series | np.ndarray, *,
                     columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Per cluster: the z-score of each feature's cluster mean, ``(mean in cluster − overall mean)
    / overall standard deviation``, then ``n_customers`` and ``share``.

    Pass the raw profile (z-scores of the raw means; missing values are skipped) or the prepared
    ``X``. ``labels`` is a Series indexed by customer (aligned by index) or an array in row order.
    ``columns`` defaults to every numeric column.

    >>> profile = pd.DataFrame({"orders": [5, 7, 0, 0], "live_stream_watched_minutes": [0, 10, 300, 500]})
    >>> cluster_profiles(profile, [0, 0, 1, 1]).round(2)  # doctest: +NORMALIZE_WHITESPACE
             orders  live_stream_watched_minutes  n_customers  share
    cluster
    0          0.97               -0.94            2    0.5
    1         -0.97                0.94            2    0.5
    """
    if isinstance(profile_or_X, np.ndarray) and profile_or_X.ndim == 2:
        profile_or_X = pd.DataFrame(profile_or_X, columns=[f"feature_{i}" for i in range(profile_or_X.shape[1])])
    if not isinstance(profile_or_X, pd.DataFrame):
        raise _param_error("profile_or_X", "a pandas DataFrame", type(profile_or_X).__name__)
    if columns is None:
        cols = [c for c in profile_or_X.columns if pd.api.types.is_numeric_dtype(profile_or_X[c])
                and not pd.api.types.is_bool_dtype(profile_or_X[c])]
    else:
        cols = _check_columns(profile_or_X, columns)
    lab = _aligned_labels(profile_or_X, labels)
    data = _numeric(profile_or_X[cols], cols)
    mean = data.mean()
    std = data.std(ddof=0).replace(0, np.nan)
    means = data.groupby(lab).mean()
    z = ((means - mean) / std).fillna(0.0)
    z.index = pd.Index(z.index, name="cluster")
    sizes = pd.Series(lab).value_counts().reindex(z.index)
    z["n_customers"] = sizes.to_numpy().astype("int64")
    z["share"] = z["n_customers"] / len(lab)
    return z


def _phrase(feature: str, high: bool, vocabulary: Mapping[str, tuple[str, str]]) -> str:
    if feature in vocabulary:
        return vocabulary[feature][0 if high else 1]
    return f"{'high' if high else 'low'} {feature}"


def name_clusters(profiles: pd.DataFrame, *, vocabulary: Mapping[str, tuple[str, str]] | None = None,
                  value_column: str | None = "auto", min_z: float = 0.4,
                  tier_thresholds: tuple[float, float] = (-0.25, 0.25), low_weight: float = 0.5,
                  low_activity_share: float = 0.8) -> dict[int, str]:
    """A descriptive, unique name per cluster from its :func:`cluster_profiles` row.

    The rule, in order:

    1. **Value tier** from ``value_column`` (``"auto"``: the first of :data:`VALUE_COLUMNS`
       present; ``None``: no tier): z ≥ 0.25 → "high-value", z ≤ −0.25 → "low-value", else none
       (``tier_thresholds``; a quarter of a standard deviation is a real difference for a
       right-skewed amount, whose standard deviation is inflated by a few big spenders).
    2. **Low activity**: if at least ``low_activity_share`` (80%) of the other features are
       below average, none is a full standard deviation above it and the tier is not high, the
       name is "low-activity", plus the phrase of the most above-average feature if its z ≥
       ``min_z`` (e.g. "low-activity, lapsed"). A cluster with one standout feature is named
       by it instead ("low-value email readers").
    3. Otherwise the **top 1–2 distinguishing features** (value column excluded) are ranked by
       salience = z above average, ``low_weight`` × |z| below (what a cluster does describes it
       better than what it does not: "frequent buyers" rather than "little live-stream viewing").
       The first is used if its |z| ≥ ``min_z``; the second is the next feature with |z| ≥
       ``min_z``, salience at least half the first's and a phrase that repeats no word of the
       first (not "live-stream regulars, live-stream watchers"). Phrases come from
       ``vocabulary`` ``{feature: (high phrase, low phrase)}``, merged over
       :data:`DEFAULT_VOCABULARY`; unknown columns read "high <column>" / "low <column>".
       Name = tier + phrases, e.g. "low-value live-stream watchers, rare or non-buyers".
       No feature with |z| ≥ ``min_z``: "typical customers".
    4. **Unique**: clusters sharing a name each get their next-ranked feature phrase appended
       in brackets until the names differ (last resort: "#<cluster>").

    >>> profiles = pd.DataFrame({"orders": [0.9, -0.8, -0.6], "net_revenue": [1.2, -0.7, -0.5],
    ...                          "live_stream_watched_minutes": [-0.3, 1.5, -0.6], "email_open_rate": [0.2, -0.1, -0.5]})
    >>> name_clusters(profiles)
    {0: 'high-value frequent buyers', 1: 'low-value live-stream watchers', 2: 'low-activity'}
    """
    if not isinstance(profiles, pd.DataFrame) or profiles.empty:
        raise _param_error("profiles", "a non-empty DataFrame from cluster_profiles", type(profiles).__name__)
    vocab = dict(DEFAULT_VOCABULARY)
    if vocabulary is not None:
        if not isinstance(vocabulary, Mapping) or any(
                not (isinstance(v, (tuple, list)) and len(v) == 2 and all(isinstance(p, str) for p in v))
                for v in vocabulary.values()):
            raise _param_error("vocabulary", "a dict {feature: (high phrase, low phrase)}", vocabulary)
        vocab.update({k: tuple(v) for k, v in vocabulary.items()})
    lo_t, hi_t = tier_thresholds
    features = [c for c in profiles.columns if c not in _SIZE_COLUMNS]
    if value_column == "auto":
        value_column = next((c for c in VALUE_COLUMNS if c in features), None)
    elif value_column is not None and value_column not in features:
        raise ValueError(f"The 'value_column' parameter must be a column of the profiles, 'auto' or None. "
                         f"Got {value_column!r} instead; columns: {features}.")
    descr = [c for c in features if c != value_column]
    names: dict[Hashable, str] = {}
    ranked: dict[Hashable, list[str]] = {}
    for cluster, row in profiles[features].astype("float64").iterrows():
        tier = ""
        if value_column is not None:
            v = row[value_column]
            tier = "high-value" if v >= hi_t else "low-value" if v <= lo_t else ""
        z = row[descr]
        sal = {c: z[c] if z[c] > 0 else low_weight * abs(z[c]) for c in descr}
        order = sorted(descr, key=lambda c: (-sal[c], str(c)))
        ranked[cluster] = [_phrase(c, z[c] > 0, vocab) for c in order]
        parts: list[str] = []
        if descr and (z < 0).mean() >= low_activity_share and z.max() < 1.0 and tier != "high-value":
            pos = [c for c in order if z[c] >= min_z]
            name = "low-activity" + (f", {_phrase(pos[0], True, vocab)}" if pos else "")
            used = {_phrase(pos[0], True, vocab)} if pos else set()
        else:
            if order and abs(z[order[0]]) >= min_z:
                parts.append(ranked[cluster][0])
                words = set(parts[0].replace(",", " ").split())
                for c, phrase in zip(order[1:], ranked[cluster][1:]):
                    if abs(z[c]) < min_z or sal[c] < sal[order[0]] / 2:
                        break
                    if not words & set(phrase.replace(",", " ").split()):
                        parts.append(phrase)
                        break
            desc = ", ".join(parts) if parts else "typical customers"
            name = f"{tier} {desc}" if tier else desc
            used = set(parts)
        names[cluster] = name
        ranked[cluster] = [p for p in ranked[cluster] if p not in used]
    extras: dict[Hashable, list[str]] = {c: [] for c in names}
    full = dict(names)
    while True:
        counts = pd.Series(full).value_counts()
        dups = [c for c, nm in full.items() if counts[nm] > 1]
        if not dups:
            break
        progressed = False
        for c in dups:
            if ranked[c]:
                extras[c].append(ranked[c].pop(0))
                progressed = True
            full[c] = f"{names[c]} ({', '.join(extras[c])})" if extras[c] else names[c]
        if not progressed:
            for c in dups:
                full[c] = f"{full[c]} #{c}"
            break
    return {(int(c) if isinstance(c, Integral) else c): nm for c, nm in full.items()}


# --------------------------------------------------------------------------- 6. figures
def plot_profiles(profiles: pd.DataFrame, names: Mapping[int, str] | None = None):
    """Heatmap of the standardised cluster means (clusters × features), annotated, diverging
    palette centred at 0, clusters labelled with their names and sizes. Returns the Figure.

    >>> profiles = pd.DataFrame({"orders": [1.0, -1.0], "live_stream_watched_minutes": [-0.9, 0.9], "n_customers": [6, 4]})
    >>> fig = plot_profiles(profiles, {0: "buyers", 1: "watchers"})
    >>> fig.axes[0].get_xlabel()
    'feature'
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    features = [c for c in profiles.columns if c not in _SIZE_COLUMNS]
    z = profiles[features].astype("float64")
    names = dict(names or {})
    ylabels = []
    for c in z.index:
        label = f"{c}: {names[c]}" if c in names else str(c)
        if "n_customers" in profiles:
            label += f" (n={int(profiles.loc[c, 'n_customers']):,})"
        ylabels.append(label)
    width = 2.5 + 0.07 * max((len(t) for t in ylabels), default=0) + 0.75 * len(features)
    fig, ax = plt.subplots(figsize=(max(7.0, width), max(3.0, 1.6 + 0.55 * len(z))), layout="constrained")
    lim = max(1.0, float(np.nanmax(np.abs(z.to_numpy()))) if z.size else 1.0)
    sns.heatmap(z, ax=ax, cmap="RdBu_r", center=0, vmin=-lim, vmax=lim, annot=True, fmt=".1f",
                annot_kws={"fontsize": 8}, linewidths=0.5, yticklabels=ylabels,
                cbar_kws={"label": "z-score (SDs from overall mean)"})
    ax.set_xlabel("feature")
    ax.set_ylabel("cluster")
    ax.set_title("Cluster profiles: standardised mean of each feature")
    ax.tick_params(axis="x", labelrotation=45)
    for t in ax.get_xticklabels():
        t.set_horizontalalignment("right")
    ax.tick_params(axis="y", labelrotation=0)
    return fig


def plot_projection(X: pd.DataFrame | np.ndarray, labels: pd.Series | np.ndarray,
                    names: Mapping[int, str] | None = None, *, random_state: int = 0, sample: int = 5000):
    """Scatter of the customers on the first two principal components of ``X`` (fitted on all
    rows), ``sample`` customers drawn with ``random_state``, coloured by cluster. Axes show the
    share of variance each component explains. Returns the Figure.

    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame(rng.normal(size=(40, 3)), columns=["a", "b", "c"])
    >>> fig = plot_projection(X, np.arange(40) % 2, {0: "even", 1: "odd"})
    >>> fig.axes[0].get_xlabel().startswith("PC1")
    True
    """
    import matplotlib.pyplot as plt
    import seaborn as sns
    from sklearn.decomposition import PCA

    values, index, _, order = _as_matrix(X)
    if values.shape[1] < 2:
        raise _param_error("X", "a table with at least 2 feature columns", f"{values.shape[1]} column")
    sample = _check_int(sample, "sample", 1)
    frame = pd.DataFrame(index=index)
    lab = _aligned_labels(frame, labels)[order]
    pca = PCA(n_components=2, random_state=random_state).fit(values)
    pos = _sample_positions(len(values), sample, random_state)
    xy = pca.transform(values[pos])
    names = dict(names or {})
    clusters = pd.unique(lab[pos]).tolist()
    try:
        clusters = sorted(clusters)
    except TypeError:
        clusters = sorted(clusters, key=str)
    legend = {c: f"{c}: {names[c]}" if c in names else str(c) for c in clusters}
    palette = dict(zip(clusters, sns.color_palette("tab10" if len(clusters) <= 10 else "husl", len(clusters))))
    width = 7.5 + 0.065 * max((len(t) for t in legend.values()), default=0)
    fig, ax = plt.subplots(figsize=(width, 6), layout="constrained")
    for c in clusters:
        m = lab[pos] == c
        ax.scatter(xy[m, 0], xy[m, 1], s=8, alpha=0.6, color=palette[c], label=legend[c])
    ev = pca.explained_variance_ratio_ * 100
    ax.set_xlabel(f"PC1 ({ev[0]:.1f}% of variance, standardised units)")
    ax.set_ylabel(f"PC2 ({ev[1]:.1f}% of variance, standardised units)")
    ax.set_title(f"Clusters on the first two principal components\n({len(pos):,} of {len(values):,} customers shown)")
    ax.legend(title="cluster", fontsize=8, markerscale=2, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    return fig


# --------------------------------------------------------------------------- 7. all in one
@dataclass
class Clustering:
    """Everything :func:`segment_customers` produced."""

    transform: FeatureTransform
    X: pd.DataFrame = field(repr=False)    # prepared features
    k_choice: KChoice | None               # None when k was given
    result: ClusterResult = field(repr=False)
    labels: pd.Series                      # cluster per customer (0 = biggest)
    profiles: pd.DataFrame                 # z-scores of the raw features' cluster means + sizes
    names: dict[int, str]
    stability: pd.DataFrame | None         # seeds x seeds adjusted Rand index
    stability_summary: dict
    seconds: dict = field(default_factory=dict)

    @property
    def k(self) -> int:
        return self.result.k

    @property
    def named_labels(self) -> pd.Series:
        """The cluster name per customer."""
        return self.labels.map(self.names).rename("segment")

    def summary(self) -> pd.DataFrame:
        """One row per cluster: name, customers, share."""
        return pd.DataFrame({"name": pd.Series(self.names), "n_customers": self.profiles["n_customers"],
                             "share": self.profiles["share"]}).rename_axis("cluster")

    def plot_profiles(self):
        return plot_profiles(self.profiles, self.names)

    def plot_projection(self, *, random_state: int = 0, sample: int = 5000):
        return plot_projection(self.X, self.labels, self.names, random_state=random_state, sample=sample)

    def plot_k(self):
        if self.k_choice is None:
            raise ValueError("k was given, not chosen: there is no k choice to plot.")
        return self.k_choice.plot()


def segment_customers(profile: pd.DataFrame, *, columns: Sequence[str], k_range: Iterable[int] = range(2, 11),
                      k: int | None = None, random_state: int = 0, log_columns: Sequence[str] | None = None,
                      clip_quantile: float | None = 0.99, fill_values: Mapping[str, float | str] | None = None,
                      sample_size: int = 20_000, tolerance: float = 0.01, minibatch_threshold: int = 100_000,
                      n_init: int = 3, stability_seeds: Sequence[int] | None = (0, 1, 2, 3, 4),
                      stability_sample: int | None = 50_000,
                      vocabulary: Mapping[str, tuple[str, str]] | None = None) -> Clustering:
    """Prepare the features, choose k (unless ``k`` is given), fit, check stability, profile and name.

    The final fit is the :func:`choose_k` fit for the chosen k (same data, seed and settings as
    :func:`fit_clusters`), so it is not repeated. Stability uses ``stability_seeds`` on a sample
    of ``stability_sample`` rows (``None``: all rows; ``stability_seeds=None``: skipped), fitted
    with the main fit's algorithm. Profiles are z-scores of the *raw* columns' cluster means;
    names come from :func:`name_clusters` with ``vocabulary``. ``seconds`` times each step.

    >>> rng = np.random.default_rng(0)
    >>> buyers = pd.DataFrame({"orders": rng.poisson(6, 40), "net_revenue": rng.gamma(2, 300, 40),
    ...                        "live_stream_watched_minutes": rng.poisson(2, 40)})
    >>> watchers = pd.DataFrame({"orders": 0, "net_revenue": 0.0, "live_stream_watched_minutes": rng.poisson(90, 30)},
    ...                         index=range(40, 70))
    >>> seg = segment_customers(pd.concat([buyers, watchers]), columns=["orders", "net_revenue", "live_stream_watched_minutes"],
    ...                         k_range=range(2, 5), stability_seeds=(0, 1))
    >>> seg.k, seg.names
    (2, {0: 'high-value frequent buyers, little live-stream viewing', 1: 'low-value live-stream watchers'})
    >>> seg.stability_summary["mean_ari"]
    1.0
    """
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    # every option is checked before any work; the canonical row order is computed once
    cols = _check_columns(profile, columns)
    n = len(profile)
    if k is None:
        ks = _check_k_range(k_range, n)
    else:
        k = _check_int(k, "k", 2, high=n - 1)
    sample_size = _check_int(sample_size, "sample_size", 2)
    n_init, minibatch_threshold = _check_fit_options(n_init, minibatch_threshold)
    tolerance = _check_tolerance(tolerance)
    seeds = None if stability_seeds is None else _check_seeds(stability_seeds)
    if stability_sample is not None:
        stability_sample = _check_int(stability_sample, "stability_sample", 3)
    order = _canonical_order(profile.index)
    tf = _fit_features(profile, columns=cols, log_columns=log_columns, clip_quantile=clip_quantile,
                       fill_values=fill_values, skew_threshold=1.0, order=order)
    X = tf.transform(profile)
    values, index, cols, order = _as_matrix(X, order=order)
    seconds["prepare"] = time.perf_counter() - t
    t = time.perf_counter()
    if k is None:
        choice = _choose_k(values, ks, random_state=random_state, sample_size=sample_size, n_init=n_init,
                           tolerance=tolerance, minibatch_threshold=minibatch_threshold)
        model = choice._models[choice.k]
        seconds["choose_k_and_fit"] = time.perf_counter() - t
    else:
        choice = None
        model = _fit_kmeans(values, k, random_state=random_state, minibatch_threshold=minibatch_threshold,
                            n_init=n_init)
        seconds["fit"] = time.perf_counter() - t
    result = _result(model, values, index, cols, order, random_state)
    t = time.perf_counter()
    if seeds is None:
        stab, summary = None, {}
    else:
        k_stab = min(result.k, min(n, stability_sample or n) - 1)
        # the same algorithm as the main fit, also when the sample is below the threshold
        stab_threshold = minibatch_threshold if n <= minibatch_threshold else 0
        stab = _stability(values, k=k_stab, seeds=seeds, random_state=random_state, sample_size=stability_sample,
                          minibatch_threshold=stab_threshold, n_init=n_init)
        summary = {**stability_summary(stab), "seeds": seeds, "sample_size": stab.attrs["sample_size"]}
    seconds["stability"] = time.perf_counter() - t
    t = time.perf_counter()
    profiles = cluster_profiles(profile, result.labels, columns=tf.columns)
    names = name_clusters(profiles, vocabulary=vocabulary)
    seconds["profiles_and_names"] = time.perf_counter() - t
    return Clustering(transform=tf, X=X, k_choice=choice, result=result, labels=result.labels, profiles=profiles,
                      names=names, stability=stab, stability_summary=summary,
                      seconds={k_: round(v, 3) for k_, v in seconds.items()})


# --------------------------------------------------------------------------- 8. agreement
def agreement_with(labels: pd.Series | np.ndarray, truth: pd.Series | np.ndarray) -> float:
    """Adjusted Rand index between ``labels`` and known groups ``truth`` (1 = same partition,
    ~0 = chance). Two Series are aligned on their common index (customers missing from either,
    or with a missing value, are left out); arrays must have the same length.

    >>> agreement_with(pd.Series([0, 0, 1, 1], index=list("abcd")), pd.Series(["y", "y", "x", "x"], index=list("dcba")))
    1.0
    """
    from sklearn.metrics import adjusted_rand_score

    if isinstance(labels, pd.Series) and isinstance(truth, pd.Series):
        common = labels.index.intersection(truth.index)
        if len(common) < 1:
            raise ValueError("The 'labels' and 'truth' parameters must share at least 1 index value. "
                             f"Got no common index value (labels e.g. {labels.index[:3].tolist()}, "
                             f"truth e.g. {truth.index[:3].tolist()}) instead.")
        a, b = labels.loc[common], truth.loc[common]
    elif isinstance(labels, pd.Series) or isinstance(truth, pd.Series):
        raise ValueError("The 'labels' and 'truth' parameters must both be Series (aligned by index) or both "
                         f"arrays. Got {type(labels).__name__} and {type(truth).__name__} instead.")
    else:
        a, b = pd.Series(np.asarray(labels)), pd.Series(np.asarray(truth))
        if len(a) != len(b) or len(a) < 1:
            raise ValueError(f"The 'labels' and 'truth' parameters must have the same, non-zero length. "
                             f"Got {len(a)} and {len(b)} instead.")
    ok = a.notna().to_numpy() & b.notna().to_numpy()
    if not ok.any():
        raise ValueError("The 'labels' and 'truth' parameters have no customer with a value in both.")
    return float(adjusted_rand_score(a.to_numpy()[ok], b.to_numpy()[ok]))
