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

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .config import Paths, get_paths

__all__ = ["TwoModelUplift", "qini_curve", "qini_coefficient", "cross_fitted_scores", "uplift_dataset",
           "evaluate_uplift", "score_population", "run_uplift", "load_uplift_scores", "UpliftRun"]


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


# ----------------------------------------------------------------------------- the next campaign
def score_population(layer: Any, X: pd.DataFrame, y: Any, treatment: Any, *, campaigns: list[str],
                     like_campaign: str, as_of: Any = None, seed: int = 0) -> pd.DataFrame:
    """Everyone's uplift for the next campaign: two models fitted on every past campaign member
    (``X``, ``y``, ``treatment`` from :func:`uplift_dataset`), applied to each person's features at
    ``as_of`` (default: the day after the data ends) as if they received ``like_campaign`` (its
    campaign indicator set, the others not).

    Returns one row per OneID (index ``oneid``, sorted): ``uplift`` (predicted conversion if
    treated − if not) and ``uplift_decile`` (1 … 10, 10 = the most persuadable tenth) — the
    columns an audience expression reads (``"uplift_decile >= 9 and not churn_high"``).

    >>> score_population(layer, X, y, t, campaigns=["WB-2026-03"], like_campaign="WB-2026-03")  # doctest: +SKIP
    """
    from threadpoolctl import threadpool_limits

    from .models.dataset import build_features
    from .timeutil import day_after

    if like_campaign not in campaigns:
        raise ValueError(f"The 'like_campaign' parameter must be one of {sorted(campaigns)}. "
                         f"Got {like_campaign!r} instead.")
    as_of = day_after(layer.data_end) if as_of is None else as_of
    Xn = _numeric(X)
    with threadpool_limits(limits=1, user_api="openmp"):
        model = TwoModelUplift(seed=seed).fit(Xn, y, treatment)
        now = build_features(layer, cutoff=as_of)
        x = now.assign(**{f"campaign_{c}": float(c == like_campaign) for c in campaigns})
        xn = _numeric(x).reindex(columns=Xn.columns, fill_value=0.0)
        out = pd.DataFrame({"uplift": model.predict_uplift(xn)}, index=pd.Index(now.index.astype("string"), name="oneid"))
    n = len(out)
    out["uplift_decile"] = (np.floor(out["uplift"].rank(method="first").to_numpy() * 10 / (n + 1e-9)).astype("int64")
                            + 1 if n else np.array([], dtype="int64"))
    out["uplift_decile"] = out["uplift_decile"].clip(1, 10)
    out.attrs.update(like_campaign=like_campaign, as_of=f"{pd.Timestamp(as_of):%Y-%m-%d}")
    return out.sort_index()


@dataclass
class UpliftRun:
    """What the uplift stage found: ``qini`` (uplift, response, random) on held-out people,
    the cross-fitted ``heldout`` scores of the campaign members, everyone's ``population``
    scores for the next campaign, and ``info`` (members, campaigns, the campaign scored like, as-of
    date, folds, seed; or the reason there is no model)."""

    qini: dict[str, float] = field(default_factory=dict)
    heldout: pd.DataFrame | None = None
    population: pd.DataFrame | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def fitted(self) -> bool:
        return self.population is not None


def _write_atomic(df_or_text: Any, path) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    if isinstance(df_or_text, pd.DataFrame):
        df_or_text.to_parquet(tmp)
    else:
        tmp.write_text(df_or_text, encoding="utf-8")
    os.replace(tmp, path)


def run_uplift(paths: Paths | None = None, *, folds: int = 5, seed: int = 0, min_members: int = 300,
               like_campaign: str | None = None, as_of: Any = None) -> UpliftRun:
    """The uplift stage: from the members and outcomes of past campaigns
    (``campaign_outcomes.parquet``, written by :func:`workbench.campaigns.run_campaign_results`),
    judge the two-model uplift against a response model and random targeting on held-out people
    (:func:`evaluate_uplift`), then score everyone for the next campaign
    (:func:`score_population`, like ``like_campaign``; default the most recently sent one).
    Writes ``data/processed/uplift_scores.parquet`` (OneIDs only) and ``uplift.json``; with fewer
    than ``min_members`` members or a single group, an empty score table and the reason.

    >>> run = run_uplift()                                # doctest: +SKIP
    >>> run.population["uplift_decile"].value_counts()    # doctest: +SKIP
    """
    from .canonical import load_canonical

    for name, v in (("folds", folds), ("min_members", min_members)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < (2 if name == "folds" else 1):
            raise ValueError(f"The {name!r} parameter must be an integer >= {2 if name == 'folds' else 1}. "
                             f"Got {v!r} instead.")
    paths = (paths or get_paths()).ensure()
    layer = load_canonical(paths)
    src = paths.processed / "campaign_outcomes.parquet"
    outcomes = pd.read_parquet(src) if src.exists() else pd.DataFrame(columns=["campaign_id", "group", "converted"])
    campaigns = (outcomes.groupby("campaign_id")["sent_at"].min().sort_values().index.astype(str).tolist()
                 if len(outcomes) else [])
    info: dict[str, Any] = {"members": int(len(outcomes)), "campaigns": campaigns, "folds": folds, "seed": seed,
                            "min_members": min_members}
    run = UpliftRun(info=info)
    if len(outcomes) < min_members or outcomes["group"].nunique() < 2:
        info["reason"] = (f"Uplift needs at least {min_members} campaign members with outcomes in both groups; "
                          f"this data has {len(outcomes)}.")
        empty = pd.DataFrame({"uplift": pd.Series(dtype="float64"), "uplift_decile": pd.Series(dtype="int64")},
                             index=pd.Index([], name="oneid", dtype="string"))
        _write_atomic(empty, paths.processed / "uplift_scores.parquet")
    else:
        like = like_campaign if like_campaign is not None else campaigns[-1]
        X, y, t = uplift_dataset(layer, outcomes)
        ev = evaluate_uplift(X, y, t, folds=folds, seed=seed)
        run.qini, run.heldout = ev["qini"], ev["scores"]
        run.population = score_population(layer, X, y, t, campaigns=campaigns, like_campaign=like, as_of=as_of,
                                          seed=seed)
        info.update(like_campaign=like, as_of=run.population.attrs["as_of"], qini=run.qini,
                    persons_scored=int(len(run.population)))
        _write_atomic(run.population, paths.processed / "uplift_scores.parquet")
    _write_atomic(json.dumps(info, indent=2, ensure_ascii=False, default=str), paths.processed / "uplift.json")
    return run


def load_uplift_scores(paths: Paths | None = None) -> pd.DataFrame:
    """This run's uplift scores (index ``oneid``; empty when the stage did not run or had too
    little data).

    >>> load_uplift_scores().columns.tolist()[-2:]     # doctest: +SKIP
    ['uplift', 'uplift_decile']
    """
    f = (paths or get_paths()).processed / "uplift_scores.parquet"
    if not f.exists():
        return pd.DataFrame(index=pd.Index([], name="oneid", dtype="string"))
    df = pd.read_parquet(f)
    df.index = df.index.astype("string")
    return df
