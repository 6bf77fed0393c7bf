"""Uplift: who is persuadable, learnt from past campaigns with control groups.

A **two-model** (T-learner) estimate in scikit-learn: one classifier of conversion for the
treated, one for the control group; uplift = P(convert | treated, x) − P(convert | control, x).
Judged beside a plain **response model** (conversion among the treated, what a marketer would
score without a control group) and beside random targeting, by **Qini curves** on held-out
people: every person's score comes from models fitted on the other folds (cross-fitting).

Features are the leakage-free model features at each campaign's send
(:func:`workbench.models.dataset.build_features`, rows strictly before the send date).

Example:
    >>> rng = np.random.default_rng(0)
    >>> n = 4000
    >>> X = pd.DataFrame({"a": rng.random(n), "b": rng.random(n)})
    >>> t = rng.random(n) < 0.5
    >>> y = rng.random(n) < 0.1 + 0.3 * t * (X["a"] > 0.5)
    >>> s = cross_fitted_scores(X, y, t, seed=0)
    >>> qini_coefficient(y, t, s["uplift"]) > qini_coefficient(y, t, rng.random(n))
    True
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["TwoModelUplift", "qini_curve", "qini_coefficient", "cross_fitted_scores", "uplift_dataset",
           "evaluate_uplift"]


def _classifier(seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(max_iter=150, learning_rate=0.05, max_depth=3, min_samples_leaf=20,
                                          l2_regularization=1.0, random_state=seed)


def _numeric(X: pd.DataFrame) -> pd.DataFrame:
    """Numbers only (categoricals one-hot, booleans 0/1): what the tree models take."""
    num = X.select_dtypes(include=["number", "bool"]).astype(float)
    cat = X.select_dtypes(exclude=["number", "bool"])
    if cat.shape[1]:
        num = pd.concat([num, pd.get_dummies(cat.astype("string"), dummy_na=False, dtype=float)], axis=1)
    return num


class TwoModelUplift:
    """Two classifiers, one per group; ``predict_uplift`` = P(y | treated) − P(y | control).

    >>> m = TwoModelUplift(seed=0)      # doctest: +SKIP
    >>> m.fit(X, y, treatment).predict_uplift(X)   # doctest: +SKIP
    """

    def __init__(self, *, seed: int = 0):
        self.seed = seed

    def fit(self, X: pd.DataFrame, y: Any, treatment: Any) -> "TwoModelUplift":
        y, t = np.asarray(y, bool), np.asarray(treatment, bool)
        if len(np.unique(t)) < 2:
            raise ValueError("TwoModelUplift needs people of both groups (treatment and control); got one group.")
        self.model_t_ = _classifier(self.seed).fit(X[t], y[t])
        self.model_c_ = _classifier(self.seed).fit(X[~t], y[~t])
        return self

    def predict_uplift(self, X: pd.DataFrame) -> np.ndarray:
        return self.model_t_.predict_proba(X)[:, 1] - self.model_c_.predict_proba(X)[:, 1]


def qini_curve(y: Any, treatment: Any, score: Any) -> tuple[np.ndarray, np.ndarray]:
    """The Qini curve: for the top ``k`` people by ``score``, responders among the treated minus
    responders among the control scaled to the treated count. Returns ``(k, qini)`` from 0 to n.

    >>> qini_curve([1, 0, 0, 1], [1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1])[1].tolist()
    [0.0, 1.0, 1.0, 1.0, 0.0]
    """
    y, t, s = np.asarray(y, float), np.asarray(treatment, bool), np.asarray(score, float)
    order = np.argsort(-s, kind="stable")
    y, t = y[order], t[order]
    nt, nc = np.cumsum(t), np.cumsum(~t)
    yt, yc = np.cumsum(y * t), np.cumsum(y * ~t)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = yt - np.where(nc > 0, yc * nt / nc, 0.0)
    return np.arange(len(y) + 1), np.concatenate([[0.0], q])


def qini_coefficient(y: Any, treatment: Any, score: Any) -> float:
    """Area between the Qini curve and random targeting, over the same area for a perfect
    ranking (treated responders first, control responders last) — scikit-uplift's
    ``qini_auc_score`` definition: 0 is random, 1 perfect.

    >>> qini_coefficient([1, 0, 0, 1], [1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1])
    1.0
    """
    y, t = np.asarray(y, float), np.asarray(treatment, bool)
    k, q = qini_curve(y, t, score)
    random_area = q[-1] * k[-1] / 2
    _, qp = qini_curve(y, t, y * t - y * ~t)
    best = np.trapezoid(qp, k) - random_area
    return float((np.trapezoid(q, k) - random_area) / best) if best else float("nan")


def cross_fitted_scores(X: pd.DataFrame, y: Any, treatment: Any, *, folds: int = 5, seed: int = 0
                        ) -> pd.DataFrame:
    """Held-out scores for everyone: uplift (two models) and response (conversion among the
    treated), each from models fitted on the other folds (folds stratified by group × outcome).
    One OpenMP thread, as the churn and propensity fits: at this size a second one saves ~1 s and,
    beside another notebook on a 2-core machine, costs far more in contention (same scores)."""
    from sklearn.model_selection import StratifiedKFold
    from threadpoolctl import threadpool_limits

    Xn = _numeric(X)
    y, t = np.asarray(y, bool), np.asarray(treatment, bool)
    uplift, response = np.full(len(y), np.nan), np.full(len(y), np.nan)
    split = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with threadpool_limits(limits=1, user_api="openmp"):
        for train, test in split.split(Xn, 2 * t + y):
            m = TwoModelUplift(seed=seed).fit(Xn.iloc[train], y[train], t[train])
            uplift[test] = m.predict_uplift(Xn.iloc[test])
            response[test] = m.model_t_.predict_proba(Xn.iloc[test])[:, 1]
    return pd.DataFrame({"uplift": uplift, "response": response}, index=X.index)


def uplift_dataset(layer: Any, outcomes: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """``(X, y, treatment)`` for the members of :func:`workbench.campaigns.campaign_results`'s
    outcomes: each member's features at their campaign's send date, plus the campaign as a
    one-hot column; y = converted in the response window."""
    from .models.dataset import build_features

    parts = []
    for cid, g in outcomes.groupby("campaign_id", sort=True):
        cutoff = pd.Timestamp(g["sent_at"].min()).tz_convert("UTC").normalize().tz_localize(None)
        f = build_features(layer, cutoff=cutoff)
        x = f.reindex(g["oneid"].to_numpy())
        x.index = g.index
        parts.append(x.assign(**{f"campaign_{cid}": 1.0}))
    X = pd.concat(parts).reindex(outcomes.index)
    camp = [c for c in X.columns if c.startswith("campaign_")]
    X[camp] = X[camp].fillna(0.0)
    return X, outcomes["converted"].to_numpy(bool), (outcomes["group"] == "treatment").to_numpy(bool)


def evaluate_uplift(X: pd.DataFrame, y: Any, treatment: Any, *, folds: int = 5, seed: int = 0) -> dict:
    """Cross-fitted uplift and response scores and their Qini coefficients (random: 0).

    >>> evaluate_uplift(X, y, t)["qini"]        # doctest: +SKIP
    {'uplift': 0.31, 'response': 0.12, 'random': 0.0}
    """
    s = cross_fitted_scores(X, y, treatment, folds=folds, seed=seed)
    qini = {"uplift": qini_coefficient(y, treatment, s["uplift"]),
            "response": qini_coefficient(y, treatment, s["response"]), "random": 0.0}
    return {"scores": s, "qini": qini}
