"""How good is a customer score? Gains/lift tables, a one-line report and the usual figures.

scikit-learn has ROC/PR AUC, Brier score and calibration curves but no gains/lift table, so
this module adds a small, tested one: customers are ranked by score (highest first), cut into
equal-size bins, and each bin's response rate is compared to the overall rate.

**Ties.** Rows with the same score have no order of their own, so the table must not depend on
the order in which they arrive. By default (``tie_breaker=None``) a block of tied rows that
straddles a bin boundary shares its positives *pro rata*: every tied row counts as the block's
mean label, which is the expected value over all orderings of the tie. Bin counts stay whole
numbers; positives can be fractional. With ``tie_breaker`` (e.g. the customer ids), ties are
broken by that key, ascending, and positives are whole numbers (rows tied on both score and
key are again shared pro rata). Either way, shuffling the input rows does not change the result.

Example:
    >>> y = [1, 0, 1, 0, 0, 0, 1, 0, 0, 0]
    >>> s = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0]
    >>> gains_table(y, s, bins=5)[["bin", "count", "positives", "lift", "capture"]]
       bin  count  positives      lift   capture
    0    1      2        1.0  1.666667  0.333333
    1    2      2        1.0  1.666667  0.666667
    2    3      2        0.0  0.000000  0.666667
    3    4      2        1.0  1.666667  1.000000
    4    5      2        0.0  0.000000  1.000000
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

__all__ = ["gains_table", "lift_at", "capture_at", "classification_report_frame",
           "plot_gains", "plot_lift", "plot_calibration"]


# ---------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------

def _check_y(y_true: Any) -> np.ndarray:
    y = pd.Series(np.asarray(y_true).ravel() if not isinstance(y_true, pd.Series) else y_true.to_numpy())
    if y.empty:
        raise ValueError("The 'y_true' parameter must not be empty. Got 0 values instead.")
    if y.isna().any():
        raise ValueError(f"The 'y_true' parameter must be binary (0/1 or True/False) without missing values. "
                         f"Got {int(y.isna().sum())} missing values instead.")
    values = pd.unique(y)
    try:
        ok = all(v in (0, 1) and not isinstance(v, str) for v in values)
    except TypeError:
        ok = False
    if not ok:
        shown = sorted(pd.Series(values).tolist(), key=str)[:6]
        raise ValueError(f"The 'y_true' parameter must be binary (0/1 or True/False). Got values {shown} instead.")
    return y.to_numpy().astype(np.int8)


def _check_score(y_score: Any, n: int, name: str = "y_score") -> np.ndarray:
    try:
        s = np.asarray(y_score.to_numpy() if isinstance(y_score, pd.Series) else y_score, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise ValueError(f"The '{name}' parameter must be numeric scores. Got non-numeric values instead.") from None
    if len(s) != n:
        raise ValueError(f"The '{name}' parameter must have one score per row of 'y_true' ({n}). "
                         f"Got {len(s)} values instead.")
    if not np.isfinite(s).all():
        raise ValueError(f"The '{name}' parameter must hold finite numbers. "
                         f"Got {int((~np.isfinite(s)).sum())} missing or infinite values instead.")
    return s


def _check_positives(y: np.ndarray) -> None:
    if y.sum() == 0:
        raise ValueError("The 'y_true' parameter must contain at least one positive (1): lift and capture are "
                         "relative to the overall positive rate. Got only 0s instead.")


def _check_bins(bins: Any, n: int, name: str = "bins") -> int:
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 2:
        raise ValueError(f"The '{name}' parameter must be an integer >= 2. Got {bins!r} instead.")
    if bins > n:
        raise ValueError(f"The '{name}' parameter must be at most the number of rows ({n}) so no bin is empty. "
                         f"Got {bins} instead.")
    return int(bins)


def _check_fraction(fraction: Any) -> float:
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float, np.floating)) or not 0 < fraction <= 1:
        raise ValueError(f"The 'fraction' parameter must be a number in (0, 1], e.g. 0.1 for the top 10%. "
                         f"Got {fraction!r} instead.")
    return float(fraction)


def _check_scores_dict(scores: Any, n: int) -> dict[str, np.ndarray]:
    if not isinstance(scores, Mapping) or not scores:
        raise ValueError("The 'scores' parameter must be a non-empty dict of model name -> scores, "
                         f"e.g. {{'model': y_score}}. Got {type(scores).__name__} instead.")
    return {str(k): _check_score(v, n, name=f"scores[{k!r}]") for k, v in scores.items()}


# ---------------------------------------------------------------------------------------------
# Ranking
# ---------------------------------------------------------------------------------------------

def _ranked_labels(y: np.ndarray, s: np.ndarray, tie_breaker: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Labels and scores in rank order (highest score first), tied rows replaced by their
    block's mean label (so any function of prefixes is independent of the input order)."""
    if tie_breaker is None:
        order = np.argsort(-s, kind="stable")
        key = np.zeros(len(s), dtype=np.int64)
    else:
        raw = tie_breaker.to_numpy() if isinstance(tie_breaker, (pd.Series, pd.Index)) else np.asarray(tie_breaker)
        if raw.ndim != 1 or len(raw) != len(s):
            raise ValueError(f"The 'tie_breaker' parameter must have one key per row ({len(s)}). "
                             f"Got shape {raw.shape} instead.")
        key = pd.factorize(pd.Series(raw), sort=True)[0].astype(np.int64)
        if (key < 0).any():
            raise ValueError("The 'tie_breaker' parameter must not have missing values. "
                             f"Got {int((key < 0).sum())} instead.")
        order = np.lexsort((key, -s))
    ys, ss, ks = y[order].astype(np.float64), s[order], key[order]
    new_block = np.r_[True, (ss[1:] != ss[:-1]) | (ks[1:] != ks[:-1])]
    block = np.cumsum(new_block) - 1
    mean = np.bincount(block, weights=ys) / np.bincount(block)
    return mean[block], ss


def _bin_edges(n: int, bins: int) -> np.ndarray:
    """Row offsets of ``bins`` equal-size groups; the first n % bins groups get one extra row."""
    sizes = np.full(bins, n // bins)
    sizes[: n % bins] += 1
    return np.r_[0, np.cumsum(sizes)]


def _top_k(n: int, fraction: float) -> int:
    return max(1, math.ceil(round(fraction * n, 9)))


# ---------------------------------------------------------------------------------------------
# Tables and numbers
# ---------------------------------------------------------------------------------------------

def gains_table(y_true: Any, y_score: Any, *, bins: int = 10, tie_breaker: Any = None) -> pd.DataFrame:
    """Gains/lift table: customers ranked by ``y_score`` (highest first) in ``bins`` equal groups.

    Bin 1 holds the highest scores; when the rows do not divide evenly, the first ``n % bins``
    bins get one extra row. Columns: ``bin``, ``count``, ``min_score``, ``max_score``,
    ``positives``, ``response_rate`` (positives / count), ``lift`` (response rate / overall
    rate), ``cumulative_count``, ``cumulative_positives``, ``capture`` (cumulative share of all
    positives), ``cumulative_lift`` (cumulative response rate / overall rate). Ties: see the
    module docstring (``tie_breaker`` optional; the result never depends on row order).

    Example:
        >>> t = gains_table([1, 1, 0, 0], [0.9, 0.5, 0.5, 0.1], bins=2)   # 0.5 is tied across the cut
        >>> t["positives"].tolist(), t["capture"].tolist()
        ([1.5, 0.5], [0.75, 1.0])
    """
    y = _check_y(y_true)
    s = _check_score(y_score, len(y))
    bins = _check_bins(bins, len(y))
    _check_positives(y)
    labels, ranked_scores = _ranked_labels(y, s, tie_breaker)
    n, total = len(y), float(y.sum())
    edges = _bin_edges(n, bins)
    cum = np.r_[0.0, np.cumsum(labels)]
    base_rate = total / n
    count = np.diff(edges)
    positives = np.diff(cum[edges])
    cum_count = edges[1:]
    cum_pos = cum[edges[1:]]
    table = pd.DataFrame({
        "bin": np.arange(1, bins + 1),
        "count": count,
        "min_score": ranked_scores[edges[1:] - 1],
        "max_score": ranked_scores[edges[:-1]],
        "positives": positives,
        "response_rate": positives / count,
        "lift": positives / count / base_rate,
        "cumulative_count": cum_count,
        "cumulative_positives": cum_pos,
        "capture": cum_pos / total,
        "cumulative_lift": cum_pos / cum_count / base_rate,
    })
    # the running sums accumulate rounding error of order 1e-16; keep whole numbers whole
    for col in ("positives", "cumulative_positives"):
        table[col] = table[col].round(9)
    return table


def _top_positives(y_true: Any, y_score: Any, fraction: float, tie_breaker: Any) -> tuple[float, int, np.ndarray]:
    y = _check_y(y_true)
    s = _check_score(y_score, len(y))
    fraction = _check_fraction(fraction)
    _check_positives(y)
    labels, _ = _ranked_labels(y, s, tie_breaker)
    k = _top_k(len(y), fraction)
    return float(labels[:k].sum()), k, y


def lift_at(y_true: Any, y_score: Any, *, fraction: float = 0.1, tie_breaker: Any = None) -> float:
    """Response rate among the top ``fraction`` of customers by score, divided by the overall rate.

    The top group is ceil(fraction · n) rows (the same as bin 1 of ``gains_table`` with
    ``bins = 1 / fraction``). A perfect score has lift min(1/fraction, 1/base rate).

    Example:
        >>> lift_at([1, 0, 0, 0, 1, 0, 0, 0, 0, 0], [9, 8, 7, 6, 5, 4, 3, 2, 1, 0], fraction=0.2)
        2.5
    """
    pos, k, y = _top_positives(y_true, y_score, fraction, tie_breaker)
    return float(pos / k / y.mean())


def capture_at(y_true: Any, y_score: Any, *, fraction: float = 0.1, tie_breaker: Any = None) -> float:
    """Share of all positives found in the top ``fraction`` of customers by score.

    Example:
        >>> capture_at([1, 0, 0, 0, 1, 0, 0, 0, 0, 0], [9, 8, 7, 6, 5, 4, 3, 2, 1, 0], fraction=0.2)
        0.5
    """
    pos, _, y = _top_positives(y_true, y_score, fraction, tie_breaker)
    return float(pos / y.sum())


def classification_report_frame(y_true: Any, y_score: Any) -> pd.Series:
    """One-line summary of a score: n, base_rate, roc_auc, average_precision (PR AUC),
    brier_score, top_decile_lift, top_decile_capture.

    ``brier_score`` is NaN when the scores are not probabilities (outside [0, 1]); ranking
    metrics work with any score. Both classes must be present.

    Example:
        >>> classification_report_frame([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]).round(4)
        n                     4.0000
        base_rate             0.5000
        roc_auc               0.7500
        average_precision     0.8333
        brier_score           0.1581
        top_decile_lift       2.0000
        top_decile_capture    0.5000
        Name: score, dtype: float64
    """
    y = _check_y(y_true)
    s = _check_score(y_score, len(y))
    if y.min() == y.max():
        raise ValueError("The 'y_true' parameter must contain both classes (0 and 1) for ROC and PR AUC. "
                         f"Got only {int(y[0])}s instead.")
    is_prob = s.min() >= 0 and s.max() <= 1
    return pd.Series({
        "n": float(len(y)),
        "base_rate": float(y.mean()),
        "roc_auc": float(roc_auc_score(y, s)),
        "average_precision": float(average_precision_score(y, s)),
        "brier_score": float(brier_score_loss(y, s)) if is_prob else float("nan"),
        "top_decile_lift": lift_at(y, s, fraction=0.1),
        "top_decile_capture": capture_at(y, s, fraction=0.1),
    }, name="score")


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------

def _new_ax(ax, figsize):
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
    return ax.figure, ax


def plot_gains(y_true: Any, scores: Mapping[str, Any], *, tie_breaker: Any = None, ax=None):
    """Cumulative gains curves (share of positives captured vs share of customers targeted,
    highest scores first) for several models, with the random and the perfect line.

    Example:
        >>> fig = plot_gains([1, 0, 1, 0, 0], {"model": [0.9, 0.2, 0.6, 0.4, 0.1]})
        >>> fig.axes[0].get_ylabel()
        'positives captured (% of all positives)'
    """
    import seaborn as sns

    y = _check_y(y_true)
    scores = _check_scores_dict(scores, len(y))
    _check_positives(y)
    fig, ax = _new_ax(ax, (6.5, 5))
    n, total = len(y), y.sum()
    share = np.arange(n + 1) / n * 100
    palette = sns.color_palette("deep", len(scores))
    for colour, (name, s) in zip(palette, scores.items()):
        labels, _ = _ranked_labels(y, s, tie_breaker)
        ax.plot(share, np.r_[0.0, np.cumsum(labels)] / total * 100, color=colour, lw=2,
                label=f"{name} (top 10%: {capture_at(y, s, fraction=0.1, tie_breaker=tie_breaker):.0%})")
    ax.plot([0, 100], [0, 100], color="grey", ls="--", lw=1, label="random")
    ax.plot([0, total / n * 100, 100], [0, 100, 100], color="grey", ls=":", lw=1, label="perfect")
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 101)
    ax.set_xlabel("customers targeted, highest score first (% of all customers)")
    ax.set_ylabel("positives captured (% of all positives)")
    ax.set_title("Cumulative gains")
    ax.legend(loc="lower right", fontsize=8)
    return fig


def plot_lift(y_true: Any, scores: Mapping[str, Any], *, bins: int = 10, tie_breaker: Any = None, ax=None):
    """Lift per score bin (bin 1 = highest scores) as grouped bars, one colour per model, with
    the lift-1 line of random targeting.

    Example:
        >>> fig = plot_lift([1, 0, 1, 0, 0, 0], {"a": [6, 5, 4, 3, 2, 1], "b": [1, 2, 3, 4, 5, 6]}, bins=3)
        >>> fig.axes[0].get_title()
        'Lift per score bin (3 bins of ~2 customers)'
    """
    import seaborn as sns

    y = _check_y(y_true)
    scores = _check_scores_dict(scores, len(y))
    bins = _check_bins(bins, len(y))
    frames = [gains_table(y, s, bins=bins, tie_breaker=tie_breaker).assign(model=name) for name, s in scores.items()]
    data = pd.concat(frames, ignore_index=True)
    fig, ax = _new_ax(ax, (max(6.5, 0.6 * bins + 2), 4.5))
    sns.barplot(data=data, x="bin", y="lift", hue="model", ax=ax, palette="deep")
    ax.axhline(1, color="grey", ls="--", lw=1, label="random (lift 1)")
    ax.set_xlabel("score bin (1 = highest scores)")
    ax.set_ylabel("lift (bin response rate ÷ overall rate, ×)")
    ax.set_title(f"Lift per score bin ({bins} bins of ~{len(y) // bins:,} customers)")
    ax.legend(fontsize=8)
    return fig


def plot_calibration(y_true: Any, scores: Mapping[str, Any], *, n_bins: int = 10, strategy: str = "uniform", ax=None):
    """Reliability diagram: observed positive rate vs mean predicted probability per bin
    (``sklearn.calibration.calibration_curve``), one line per model, with the diagonal.

    Scores must be probabilities in [0, 1]. ``strategy`` is 'uniform' (equal-width bins) or
    'quantile' (equal-count bins).

    Example:
        >>> fig = plot_calibration([0, 0, 1, 1, 1, 0], {"model": [0.1, 0.3, 0.7, 0.9, 0.6, 0.4]}, n_bins=2)
        >>> fig.axes[0].get_xlabel()
        'mean predicted probability in the bin'
    """
    import seaborn as sns

    y = _check_y(y_true)
    scores = _check_scores_dict(scores, len(y))
    n_bins = _check_bins(n_bins, len(y), name="n_bins")
    if strategy not in ("uniform", "quantile"):
        raise ValueError(f"The 'strategy' parameter must be 'uniform' or 'quantile'. Got {strategy!r} instead.")
    for name, s in scores.items():
        if s.min() < 0 or s.max() > 1:
            raise ValueError(f"The 'scores' parameter must hold probabilities in [0, 1] for a calibration plot. "
                             f"Got scores[{name!r}] in [{s.min():g}, {s.max():g}] instead.")
    fig, ax = _new_ax(ax, (5.5, 5.5))
    ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=1, label="perfectly calibrated")
    palette = sns.color_palette("deep", len(scores))
    for colour, (name, s) in zip(palette, scores.items()):
        observed, predicted = calibration_curve(y, s, n_bins=n_bins, strategy=strategy)
        brier = brier_score_loss(y, s)
        ax.plot(predicted, observed, "o-", color=colour, label=f"{name} (Brier {brier:.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("mean predicted probability in the bin")
    ax.set_ylabel("observed share of positives in the bin")
    ax.set_title(f"Calibration ({n_bins} {strategy} bins)")
    ax.legend(loc="upper left", fontsize=8)
    return fig
